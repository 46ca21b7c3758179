package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/services/identity"
)

// skyfleet update build --from and update verify: a bundle verifies under its
// release key and the right board, and is refused, with the reason, otherwise.
func TestUpdateBuildVerify(t *testing.T) {
	dir := t.TempDir()
	slot := filepath.Join(dir, "slot")
	for name, content := range map[string]string{"vmlinuz": "kernel", "overlays/x.dtbo": "overlay", "VERSION": "2.0.1\n",
		"cmdline.a.txt": "skyfleet.slot=a\n", "cmdline.b.txt": "skyfleet.slot=b\n"} {
		p := filepath.Join(slot, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	keyFile, otherFile := filepath.Join(dir, "release.key"), filepath.Join(dir, "other.key")
	key, err := identity.CreateKeyFile(keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := identity.CreateKeyFile(otherFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "x.sfu")
	stdout = &bytes.Buffer{}
	defer func() { stdout = os.Stdout }()
	if err := cmdUpdate([]string{"build", "--board", "rpi3b", "--key", keyFile, "--from", slot, "--minimum", "2.0", "-o", out}); err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	stdout = &got
	if err := cmdUpdate([]string{"verify", "--release-key", other.PublicKeyHex(), "--release-key", key.PublicKeyHex(), "--board", "rpi3b", "--running", "2.0.0", "--json", out}); err != nil {
		t.Fatalf("verify: %v", err)
	}
	var doc struct {
		Board, Version, Minimum, Key string
		Files                        []struct{ Name string }
	}
	if err := json.Unmarshal(got.Bytes(), &doc); err != nil {
		t.Fatalf("verify --json: %v: %s", err, got.String())
	}
	if doc.Board != "rpi3b" || doc.Version != "2.0.1" || doc.Minimum != "2.0" || doc.Key != key.PublicKeyHex() || len(doc.Files) != 5 || doc.Files[3].Name != "overlays/x.dtbo" {
		t.Errorf("manifest %+v", doc)
	}
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"--release-key", other.PublicKeyHex(), "--board", "rpi3b"}, "not among the 1 release keys"},
		{[]string{"--release-key", key.PublicKeyHex(), "--board", "rpi4b"}, "built for rpi3b, this is rpi4b"},
		{[]string{"--release-key", key.PublicKeyHex(), "--board", "rpi3b", "--running", "1.9"}, "updates 2.0 or later"},
		{[]string{"--board", "rpi3b"}, "no release key is configured"},
		{[]string{"--release-key", "02abc", "--board", "rpi3b"}, "66 hex characters"},
	} {
		err := cmdUpdate(append(append([]string{"verify"}, tc.args...), out))
		if err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("verify %v: %v, want an error saying %q", tc.args, err, tc.says)
		}
	}
	// A delta against that bundle carries what changed; verify checks it
	// against a running slot's folder as the device would.
	if err := os.WriteFile(filepath.Join(slot, "VERSION"), []byte("2.0.2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	delta := filepath.Join(dir, "delta.sfu")
	got.Reset()
	if err := cmdUpdate([]string{"build", "--board", "rpi3b", "--key", keyFile, "--from", slot, "--delta-from", out, "-o", delta}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got.String(), "delta against 2.0.1") {
		t.Errorf("build --delta-from says %q", got.String())
	}
	running := filepath.Join(dir, "running")
	os.MkdirAll(filepath.Join(running, "overlays"), 0o755)
	os.WriteFile(filepath.Join(running, "vmlinuz"), []byte("kernel"), 0o644)
	os.WriteFile(filepath.Join(running, "overlays", "x.dtbo"), []byte("overlay"), 0o644)
	verify := []string{"verify", "--release-key", key.PublicKeyHex(), "--board", "rpi3b"}
	got.Reset()
	if err := cmdUpdate(append(verify, "--slot", running, delta)); err != nil {
		t.Fatalf("verify the delta: %v", err)
	}
	if !strings.Contains(got.String(), "a delta against 2.0.1") || !strings.Contains(got.String(), "* vmlinuz") || strings.Contains(got.String(), "* VERSION") {
		t.Errorf("verify of the delta says:\n%s", got.String())
	}
	if err := cmdUpdate(append(verify, delta)); err == nil || !strings.Contains(err.Error(), "no running slot") {
		t.Errorf("verify a delta without --slot: %v", err)
	}
	os.WriteFile(filepath.Join(running, "vmlinuz"), []byte("kernex"), 0o644)
	if err := cmdUpdate(append(verify, "--slot", running, delta)); err == nil || !strings.Contains(err.Error(), "send the full bundle") {
		t.Errorf("verify a delta against another kernel: %v", err)
	}
	if err := cmdUpdate([]string{"build", "--board", "rpi3b", "--key", keyFile, "--from", slot, "--version", "2.0.1", "--delta-from", out, "-o", delta}); err == nil || !strings.Contains(err.Error(), "later version") {
		t.Errorf("a delta to its own base's version: %v", err)
	}
	// A release needs a release version; a file the slot cannot hold is refused.
	if err := cmdUpdate([]string{"build", "--board", "rpi3b", "--key", keyFile, "--from", slot, "--version", "dev", "-o", out}); err == nil || !strings.Contains(err.Error(), "cannot be released") {
		t.Errorf("build --version dev: %v", err)
	}
	if err := os.WriteFile(filepath.Join(slot, "cmdline.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cmdUpdate([]string{"build", "--board", "rpi3b", "--key", keyFile, "--from", slot, "-o", out}); err == nil || !strings.Contains(err.Error(), "once per slot") {
		t.Errorf("build from a slot with a cmdline.txt: %v", err)
	}
	os.Remove(filepath.Join(slot, "cmdline.txt"))
	if err := os.WriteFile(filepath.Join(slot, "bad name"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cmdUpdate([]string{"build", "--board", "rpi3b", "--key", keyFile, "--from", slot, "-o", out}); err == nil || !strings.Contains(err.Error(), "bad name") {
		t.Errorf("build with a file named %q: %v", "bad name", err)
	}
}

// update push sends the bundle with the credential and follows the node to its
// verdict: committed exits 0, rolled back is an error with the node's reason.
func TestUpdatePush(t *testing.T) {
	defer func(d time.Duration) { updatePoll = d }(updatePoll)
	updatePoll = 10 * time.Millisecond
	for _, verdict := range []string{"committed", "rolled back"} {
		t.Run(verdict, func(t *testing.T) {
			var got []byte
			polls := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case r.Method == "PUT" && r.URL.Path == "/update":
					if r.Header.Get("Authorization") != "Bearer tok" {
						w.WriteHeader(http.StatusUnauthorized)
						return
					}
					got, _ = io.ReadAll(r.Body)
					w.WriteHeader(http.StatusAccepted)
					io.WriteString(w, `{"result":"trial","version":"2.0","slot":"b","message":"installed; rebooting into slot b once"}`)
				case r.URL.Path == "/status":
					polls++
					last := `{"result":"trial","version":"2.0","slot":"b"}`
					if got != nil && polls > 2 {
						last = `{"result":"` + verdict + `","version":"2.0","slot":"b","reason":"health check failed: mesh"}`
					}
					io.WriteString(w, `{"version":"1.0","boot_ms":5,"update":{"running_slot":"a","other_slot_version":"0.9","last_update":`+last+`}}`)
				}
			}))
			defer srv.Close()
			file := filepath.Join(t.TempDir(), "x.sfu")
			os.WriteFile(file, []byte("SKYFLUPD bundle bytes"), 0o644)
			t.Setenv("SKYFLEET_NODE_TOKEN", "tok")
			var out bytes.Buffer
			stdout = &out
			defer func() { stdout = os.Stdout }()
			err := cmdUpdate([]string{"push", "--node", strings.TrimPrefix(srv.URL, "http://"), "--wait", "1m", file})
			if string(got) != "SKYFLUPD bundle bytes" {
				t.Fatalf("the node got %q", got)
			}
			if verdict == "committed" && (err != nil || !strings.Contains(out.String(), "committed")) {
				t.Errorf("push: %v\n%s", err, out.String())
			}
			if verdict == "rolled back" && (err == nil || !strings.Contains(err.Error(), "health check failed: mesh")) {
				t.Errorf("push of a rolled-back update: %v", err)
			}
		})
	}
}
