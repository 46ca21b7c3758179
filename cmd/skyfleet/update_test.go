package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/skyfleet/skyfleet/services/control"
	"github.com/skyfleet/skyfleet/services/identity"
	"github.com/skyfleet/skyfleet/services/update/bundle"
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
				case r.URL.Path == "/update/held":
					io.WriteString(w, `{"have":0}`)
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
			want := testBundle(t, "2.0", 100)
			out, err := pushTo(t, srv, want)
			if !bytes.Equal(got, want) {
				t.Fatalf("the node got %q", got)
			}
			if verdict == "committed" && (err != nil || !strings.Contains(out, "committed")) {
				t.Errorf("push: %v\n%s", err, out)
			}
			if verdict == "rolled back" && (err == nil || !strings.Contains(err.Error(), "health check failed: mesh")) {
				t.Errorf("push of a rolled-back update: %v", err)
			}
		})
	}
}

// TestVerdict: a push is judged on the outcome the node reports after it, not
// the one it had before (the same version may have failed there earlier), and
// not on the failed trial's own report while it still runs the new slot.
func TestVerdict(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	earlier := &control.UpdateOutcome{Result: "rolled back", Version: "2.0", Slot: "b", Reason: "old reason", At: t0}
	st := func(running string, last *control.UpdateOutcome) pushStatus {
		var s pushStatus
		s.Version, s.Update.Running, s.Update.Last = "1.0", running, last
		return s
	}
	at := t0.Add(time.Hour)
	for _, c := range []struct {
		name     string
		before   *control.UpdateOutcome
		st       pushStatus
		done     bool
		errMatch string // "" for a commit
	}{
		{"no outcome yet", nil, st("a", nil), false, ""},
		{"the earlier failure of the same version", earlier, st("a", earlier), false, ""},
		{"another version's outcome", nil, st("a", &control.UpdateOutcome{Result: "committed", Version: "1.0", At: at}), false, ""},
		{"on trial", earlier, st("b", &control.UpdateOutcome{Result: "trial", Version: "2.0", Slot: "b", At: at}), false, ""},
		{"committed", earlier, st("b", &control.UpdateOutcome{Result: "committed", Version: "2.0", Slot: "b", At: at}), true, ""},
		{"the failed trial, still on b", earlier, st("b", &control.UpdateOutcome{Result: "rolled back", Version: "2.0", Slot: "b", Reason: "health", At: at}), false, ""},
		{"rolled back, back on a", earlier, st("a", &control.UpdateOutcome{Result: "rolled back", Version: "2.0", Slot: "b", Reason: "health check failed: mesh", At: at}), true, "health check failed: mesh"},
		{"refused", nil, st("a", &control.UpdateOutcome{Result: "refused", Version: "2.0", Reason: "signed by an unlisted key", At: at}), true, "unlisted key"},
	} {
		var out bytes.Buffer
		stdout = &out
		done, err := verdict("pi-1", "2.0", c.before, c.st)
		stdout = os.Stdout
		if done != c.done || (c.errMatch == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.errMatch)) {
			t.Errorf("%s: done %v, err %v; want done %v, error with %q", c.name, done, err, c.done, c.errMatch)
		}
	}
}

// TestUpdatePushResumes: a link that breaks mid-transfer is resumed where it
// stopped: the node's GET /update/held says how much it holds, and the next PUT
// names the bundle and that offset and carries only the rest.
func TestUpdatePushResumes(t *testing.T) {
	defer func(d, r time.Duration) { updatePoll, retryPause = d, r }(updatePoll, retryPause)
	updatePoll, retryPause = 10*time.Millisecond, 10*time.Millisecond
	content := testBundle(t, "2.0", 100<<10)
	sum := sha256.Sum256(content)
	id := hex.EncodeToString(sum[:])
	var held []byte
	var puts []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/update/held":
			if r.URL.Query().Get("id") != id {
				t.Errorf("held asked for %q, want the file's SHA-256", r.URL.Query().Get("id"))
			}
			fmt.Fprintf(w, `{"id":%q,"have":%d}`, id, len(held))
		case r.Method == "PUT" && r.URL.Path == "/update":
			puts = append(puts, r.URL.RawQuery)
			if r.URL.Query().Get("offset") != fmt.Sprint(len(held)) {
				w.WriteHeader(http.StatusConflict)
				fmt.Fprintf(w, `{"error":"offset","have":%d}`, len(held))
				return
			}
			if len(puts) == 1 {
				// The link breaks after 30,000 bytes.
				buf := make([]byte, 30000)
				n, _ := io.ReadFull(r.Body, buf)
				held = append(held, buf[:n]...)
				conn, _, _ := http.NewResponseController(w).Hijack()
				conn.Close()
				return
			}
			rest, _ := io.ReadAll(r.Body)
			held = append(held, rest...)
			w.WriteHeader(http.StatusAccepted)
			io.WriteString(w, `{"result":"trial","version":"2.0","slot":"b","message":"installed"}`)
		case r.URL.Path == "/status":
			last := `null`
			if len(puts) == 2 {
				last = `{"result":"committed","version":"2.0","slot":"b","at":"2026-12-04T10:00:00Z"}`
			}
			io.WriteString(w, `{"version":"1.0","boot_ms":5,"update":{"running_slot":"b","other_slot_version":"1.0","last_update":`+last+`}}`)
		}
	}))
	defer srv.Close()
	if out, err := pushTo(t, srv, content); err != nil {
		t.Fatalf("push: %v\n%s", err, out)
	}
	if !bytes.Equal(held, content) {
		t.Fatalf("the node holds %d bytes, want the %d of the file, in order", len(held), len(content))
	}
	if len(puts) != 2 || puts[0] != "id="+id+"&offset=0" || puts[1] != "id="+id+"&offset=30000" {
		t.Errorf("PUTs %q, want offset 0 then 30000", puts)
	}
}

// testBundle is a small bundle of version, signed by a throwaway key, whose
// kernel is size bytes.
func testBundle(t *testing.T, version string, size int) []byte {
	t.Helper()
	key, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"vmlinuz": bytes.Repeat([]byte("k"), size), "cmdline.a.txt": []byte("a"), "cmdline.b.txt": []byte("b")}
	var srcs []bundle.Source
	for name, c := range files {
		srcs = append(srcs, bundle.Source{Name: name, Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(c)), nil }})
	}
	var buf bytes.Buffer
	if _, err := bundle.Write(&buf, key, bundle.Header{Board: "rpi3b", Version: version, Created: time.Unix(1, 0)}, srcs); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestUpdatePushAnswerLost: a node that took the whole bundle but whose answer
// was lost (the link broke as it installed) is not sent the bundle again:
// while it is busy the push waits, and once its status shows the new trial the
// push goes on to wait for the verdict.
func TestUpdatePushAnswerLost(t *testing.T) {
	defer func(d, r time.Duration) { updatePoll, retryPause = d, r }(updatePoll, retryPause)
	updatePoll, retryPause = 10*time.Millisecond, 10*time.Millisecond
	content := testBundle(t, "2.0", 1000)
	puts, statuses := 0, 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/update/held":
			io.WriteString(w, `{"have":0}`)
		case "/update":
			puts++
			io.ReadAll(r.Body)
			if puts > 1 {
				// Still installing the first one when the push comes back.
				w.WriteHeader(http.StatusConflict)
				io.WriteString(w, `{"error":"update: another update is in progress"}`)
				return
			}
			conn, _, _ := http.NewResponseController(w).Hijack()
			conn.Close() // took it all, but the link broke before the answer
		case "/status":
			statuses++
			last := `{"result":"committed","version":"1.0","slot":"a","at":"2026-12-01T10:00:00Z"}`
			if puts > 1 {
				last = `{"result":"trial","version":"2.0","slot":"b","at":"2026-12-04T10:00:00Z"}`
			}
			if statuses > 3 {
				last = `{"result":"committed","version":"2.0","slot":"b","at":"2026-12-04T10:01:00Z"}`
			}
			io.WriteString(w, `{"version":"1.0","boot_ms":5,"update":{"running_slot":"b","last_update":`+last+`}}`)
		}
	}))
	defer srv.Close()
	out, err := pushTo(t, srv, content)
	if err != nil {
		t.Fatalf("push: %v\n%s", err, out)
	}
	if puts != 2 || !strings.Contains(out, "answer was lost") || !strings.Contains(out, "committed: version") {
		t.Errorf("%d PUTs, want the broken one and one the busy node refused; output:\n%s", puts, out)
	}
}

// pushTo runs skyfleet update push of a bundle file holding content to the
// node srv fakes, with a token, and returns what it printed.
func pushTo(t *testing.T, srv *httptest.Server, content []byte) (string, error) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "x.sfu")
	os.WriteFile(file, content, 0o644)
	t.Setenv("SKYFLEET_NODE_TOKEN", "tok")
	var out bytes.Buffer
	stdout = &out
	defer func() { stdout = os.Stdout }()
	err := cmdUpdate([]string{"push", "--node", strings.TrimPrefix(srv.URL, "http://"), "--wait", "1m", file})
	return out.String(), err
}
