package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skyfleet/skyfleet/services/identity"
)

// A key from Skycoin's own golden file (testdata/skycoin/seed-0000.golden).
const (
	goldenSecret  = "6614f0956f4e08e07ec2d4c2767b9f7121449fc2269e2b22f1a549d63e9f719b"
	goldenPublic  = "03b79123b2a3100420b19cccbfc688aa39f510b8491b67bdd296a92a021a3d0d8e"
	goldenAddress = "cfb24jWcms9pZtvEx3UjUuLPdT6rbx6r9M"
)

// fakeKeyIO points keyIO and stdout at buffers until the test ends: stdin
// reads stdin, the terminal check answers terminal and a prompt reads typed.
// It returns stdout's and stderr's buffers.
func fakeKeyIO(t *testing.T, stdin string, terminal bool, typed string) (*bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	var out, errOut bytes.Buffer
	saved, savedOut := keyIO, stdout
	t.Cleanup(func() { keyIO, stdout = saved, savedOut })
	stdout = &out
	keyIO.stdin = strings.NewReader(stdin)
	keyIO.stderr = &errOut
	keyIO.isTerminal = func() bool { return terminal }
	keyIO.readPassword = func() ([]byte, error) { return []byte(typed), nil }
	return &out, &errOut
}

// inspectWith runs key inspect with args, stdin and whether stdin is a terminal
// (a prompt reads stdin too), and returns stdout, stderr and the error.
func inspectWith(t *testing.T, args []string, stdin string, terminal bool) (string, string, error) {
	t.Helper()
	out, errOut := fakeKeyIO(t, stdin, terminal, stdin)
	err := cmdKey(append([]string{"inspect"}, args...))
	return out.String(), errOut.String(), err
}

func checkGolden(t *testing.T, out string) {
	t.Helper()
	var got struct {
		PublicKey string `json:"public_key"`
		Address   string `json:"address"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || got.PublicKey != goldenPublic || got.Address != goldenAddress {
		t.Fatalf("output %q (%v), want public key %s and address %s", out, err, goldenPublic, goldenAddress)
	}
}

func TestKeyInspectSecretForms(t *testing.T) {
	file := filepath.Join(t.TempDir(), "node.key")
	if err := os.WriteFile(file, []byte(goldenSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		args     []string
		stdin    string
		terminal bool
		warn     bool
	}{
		{"secret file", []string{"--secret-file", file}, "", true, false},
		{"--secret -", []string{"--secret", "-"}, goldenSecret + "\n", true, false},
		{"piped stdin", nil, "  " + goldenSecret + "\r\n", false, false},
		{"terminal prompt", nil, goldenSecret, true, false},
		{"--secret HEX", []string{"--secret", goldenSecret}, "", false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, err := inspectWith(t, c.args, c.stdin, c.terminal)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, out)
			warned := strings.Contains(errOut, "warning") && strings.Contains(errOut, "ps")
			if warned != c.warn {
				t.Errorf("stderr %q: warned %v, want %v", errOut, warned, c.warn)
			}
			if strings.Contains(errOut, goldenSecret) {
				t.Error("the secret was written to stderr")
			}
		})
	}
}

// No error message carries the secret or any character of it. The secrets have
// a character (Q, ☃) that appears in no message of ours, so an error that
// quotes the offending character shows up.
func TestKeyInspectErrorsHideSecret(t *testing.T) {
	dir := t.TempDir()
	bad := []string{
		goldenSecret[:63] + "Q",                     // not hex
		goldenSecret[:60] + "Q☃",                    // wrong length
		strings.Repeat("f", 64),                     // not below the curve order
		goldenSecret[:32] + "Q" + goldenSecret[33:], // not hex, in the middle
	}
	for i, secret := range bad {
		file := filepath.Join(dir, "key"+string(rune('a'+i)))
		os.WriteFile(file, []byte(secret+"\n"), 0o600)
		for _, form := range []struct {
			args  []string
			stdin string
		}{
			{[]string{"--secret", secret}, ""},
			{[]string{"--secret", "-"}, secret},
			{nil, secret},
			{[]string{"--secret-file", file}, ""},
		} {
			_, errOut, err := inspectWith(t, form.args, form.stdin, false)
			if err == nil {
				t.Fatalf("secret %d accepted", i)
			}
			for _, s := range []string{err.Error(), errOut} {
				if strings.ContainsAny(s, "Q☃") || strings.Contains(s, secret[:16]) || strings.Contains(s, secret[48:]) {
					t.Errorf("message %q repeats (part of) the secret", s)
				}
			}
		}
	}
	// The error still says what is wrong.
	_, _, err := inspectWith(t, []string{"--secret", "-"}, goldenSecret[:63]+"Q", false)
	if !strings.Contains(err.Error(), "not hex") {
		t.Errorf("error %q does not say the secret is not hex", err)
	}
}

func TestKeyInspectInputErrors(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	os.WriteFile(big, bytes.Repeat([]byte("a"), maxSecretInput+1), 0o600)
	for name, c := range map[string]struct {
		args  []string
		stdin string
		want  string
	}{
		"missing file":  {[]string{"--secret-file", filepath.Join(dir, "nope")}, "", "no such file"},
		"huge file":     {[]string{"--secret-file", big}, "", "more than"},
		"empty stdin":   {[]string{"--secret", "-"}, " \n", "no secret key"},
		"both":          {[]string{"--secret", "-", "--secret-file", big}, "", "not both"},
		"stray operand": {[]string{goldenSecret}, "", "unexpected arguments"},
	} {
		_, _, err := inspectWith(t, c.args, c.stdin, false)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error mentioning %q", name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), goldenSecret) {
			t.Errorf("%s: the error repeats the secret", name)
		}
	}
	// Callers can still tell the kinds of bad secret apart.
	if _, _, err := inspectWith(t, []string{"--secret", "-"}, goldenSecret[:63]+"Q", false); !errors.Is(err, identity.ErrSecretNotHex) {
		t.Errorf("non-hex secret: %v, want identity.ErrSecretNotHex", err)
	}
}
