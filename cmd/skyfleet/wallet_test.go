package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// deriveWith runs wallet derive with args and stdin (not a terminal, unless
// terminal is set, when readPassword answers pass) and returns stdout,
// stderr and the error.
func deriveWith(t *testing.T, args []string, stdin string, terminal bool, pass string) (string, string, error) {
	t.Helper()
	out, errOut := fakeKeyIO(t, stdin, terminal, pass)
	err := cmdWallet(append([]string{"derive"}, args...))
	return out.String(), errOut.String(), err
}

const abandon = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"

// The addresses are the published ones: BIP84's and BIP86's vectors for
// Bitcoin, Skycoin's golden file for its deterministic chain; the mnemonic
// comes on stdin and never appears on stderr.
func TestWalletDerive(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "skycoin", "seed-0000.golden"))
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Seed []byte
		Keys []struct{ Address string }
	}
	if err := json.Unmarshal(b, &g); err != nil || len(g.Seed) == 0 || len(g.Keys) < 5 {
		t.Fatalf("seed-0000.golden: %v", err)
	}
	var sky []string
	for _, k := range g.Keys[:5] {
		sky = append(sky, k.Address)
	}
	cases := []struct {
		args  []string
		stdin string
		want  []string
	}{
		{[]string{"--coin", "bitcoin", "-n", "2"}, abandon + "\n", []string{"bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu", "bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g"}},
		{[]string{"--coin", "bitcoin", "--change"}, abandon, []string{"bc1q8c6fshw2dlwun7ekn9qwf37cu2rn755upcp6el"}},
		{[]string{"--coin", "bitcoin", "--taproot", "-n", "2", "--mnemonic", "-"}, abandon, []string{"bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr", "bc1p4qhjn9zdvkux4e44uhx8tc55attvtyu358kutcqkudyccelu0was9fqzwh"}},
		{[]string{"--coin", "bitcoin", "--taproot", "--change"}, abandon, []string{"bc1p3qkhfews2uk44qtvauqyr2ttdsw7svhkl9nkm9s9c3x4ax5h60wqwruhk7"}},
		{[]string{"-n", "5"}, string(g.Seed) + "\n", sky},
	}
	for _, c := range cases {
		out, errOut, err := deriveWith(t, c.args, c.stdin, false, "")
		if err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		if got := strings.Fields(out); strings.Join(got, " ") != strings.Join(c.want, " ") {
			t.Errorf("%v: %q, want %q", c.args, got, c.want)
		}
		if strings.Contains(errOut, "abandon") || strings.Contains(errOut, string(g.Seed)) {
			t.Errorf("%v: stderr shows the mnemonic: %q", c.args, errOut)
		}
	}
}

// A passphrase changes every address; --mnemonic WORDS works but warns; a
// mnemonic with a wrong word is refused without being quoted; flags that do
// not apply to the coin are refused.
func TestWalletDeriveOptionsAndRefusals(t *testing.T) {
	plain, _, _ := deriveWith(t, []string{"--coin", "bitcoin"}, abandon, false, "")
	withPass, _, err := deriveWith(t, []string{"--coin", "bitcoin", "--passphrase-prompt", "--mnemonic", "-"}, abandon, true, "TREZOR")
	if err != nil || withPass == plain || !strings.HasPrefix(withPass, "bc1q") {
		t.Errorf("with a passphrase: %q (%v), without: %q", withPass, err, plain)
	}
	out, errOut, err := deriveWith(t, []string{"--coin", "bitcoin", "--mnemonic", abandon}, "", false, "")
	if err != nil || strings.TrimSpace(out) != "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu" || !strings.Contains(errOut, "warning") {
		t.Errorf("--mnemonic WORDS: %q %q %v", out, errOut, err)
	}
	bad := strings.Replace(abandon, "about", "above", 1)
	_, _, err = deriveWith(t, []string{"--coin", "bitcoin"}, bad, false, "")
	if err == nil || strings.Contains(err.Error(), "abandon") || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("a wrong last word: %v", err)
	}
	for _, args := range [][]string{
		{"--coin", "dogecoin"},
		{"--coin", "bitcoin", "--bip44"},
		{"--taproot"},
		{"--account", "1"},
		{"-n", "0"},
		{"-n", "10001"},
		{"extra"},
	} {
		if _, _, err := deriveWith(t, args, abandon, false, ""); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	if _, _, err := deriveWith(t, []string{"--passphrase-prompt"}, abandon, false, ""); err == nil {
		t.Error("--passphrase-prompt without a terminal accepted")
	}
}

// Skycoin's BIP44 chain is coin type 8000's: the account's xpub children,
// the same as the private path's keys.
func TestWalletDeriveSkycoinBIP44(t *testing.T) {
	out, _, err := deriveWith(t, []string{"--bip44", "-n", "3"}, abandon, false, "")
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Fields(out)
	if len(got) != 3 || got[0] == got[1] {
		t.Fatalf("%q", got)
	}
	acct1, _, err := deriveWith(t, []string{"--bip44", "--account", "1"}, abandon, false, "")
	if err != nil || strings.TrimSpace(acct1) == got[0] {
		t.Errorf("account 1 gives %q (%v), the same as account 0", acct1, err)
	}
}
