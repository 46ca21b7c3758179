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

	"github.com/skyfleet/skyfleet/board"
	"github.com/skyfleet/skyfleet/internal/fleetconf"
	"github.com/skyfleet/skyfleet/services/update"
	"github.com/skyfleet/skyfleet/services/update/bundle"
	"github.com/skyfleet/skyfleet/services/update/slot"
)

// PUT /update on PID 1's socket: a good bundle is answered 202 and then the
// board reboots with tryboot; a refused one gets 422 and the reason, and
// /status says what happened.
func TestPutUpdate(t *testing.T) {
	boot, key, st := updatableNode(t)
	rebooted := make(chan bool, 1)
	st.updater.Reboot = func(tryboot bool) error { rebooted <- tryboot; return nil }
	var remounts []bool
	st.updater.Remount = func(w bool) error { remounts = append(remounts, w); return nil }
	srv := httptest.NewServer(st.handler(func() (any, any) { return []any{}, []any{} }, nil, nil))
	defer srv.Close()

	mk := func(signer *secp256k1.PrivateKey) []byte { return smallBundle(t, signer, "vmlinuz") }
	put := func(b []byte) (int, map[string]string) {
		req, _ := http.NewRequest("PUT", srv.URL+"/update", bytes.NewReader(b))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var doc map[string]string
		json.NewDecoder(resp.Body).Decode(&doc)
		return resp.StatusCode, doc
	}
	stranger := secp256k1.PrivKeyFromBytes(bytes.Repeat([]byte{6}, 32))
	if code, doc := put(mk(stranger)); code != http.StatusUnprocessableEntity || !strings.Contains(doc["error"], "not among") {
		t.Errorf("bundle of another key: %d %v", code, doc)
	}
	if code, doc := put(mk(key)); code != http.StatusAccepted || doc["slot"] != "b" || doc["version"] != "1.1" {
		t.Fatalf("good bundle: %d %v", code, doc)
	}
	select {
	case <-rebooted:
		t.Fatal("rebooted before the status service asked (it would stop before passing the answer on)")
	default:
	}
	resp, err := http.Post(srv.URL+"/update/reboot", "", nil)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /update/reboot: %v %v", resp, err)
	}
	resp.Body.Close()
	select {
	case tryboot := <-rebooted:
		if !tryboot {
			t.Error("rebooted without tryboot")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no reboot after the answer")
	}
	resp, err = http.Get(srv.URL + "/status")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Update update.Status }
	json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if u := doc.Update; u.Running != "a" || u.Default != "a" || u.Trial != "b" || u.OtherVersion != "" || u.Last == nil || u.Last.Result != update.ResultTrial {
		t.Errorf("status update %+v", doc.Update)
	}
	if len(remounts) != 2 || !remounts[0] || remounts[1] {
		t.Errorf("remounts %v: want writable for the good bundle only, then read-only", remounts)
	}
	if n, tr, _ := (slot.Card{Dir: boot}).Active(); n != "a" || tr != "b" {
		t.Errorf("config.txt: normal %s, trial %s", n, tr)
	}
}

// When nobody asks for the trial reboot after a 202 (the status service
// crashed or was stopped before it could), PID 1 reboots into the trial itself
// once trialRebootFallback has passed.
func TestPutUpdateRebootsWithoutAsking(t *testing.T) {
	defer func(d time.Duration) { trialRebootFallback = d }(trialRebootFallback)
	trialRebootFallback = 100 * time.Millisecond
	_, key, st := updatableNode(t)
	rebooted := make(chan bool, 2)
	st.updater.Reboot = func(tryboot bool) error { rebooted <- tryboot; return nil }
	st.updater.Remount = func(bool) error { return nil }
	srv := httptest.NewServer(st.handler(func() (any, any) { return []any{}, []any{} }, nil, nil))
	defer srv.Close()
	req, _ := http.NewRequest("PUT", srv.URL+"/update", bytes.NewReader(smallBundle(t, key, "vmlinuz")))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("PUT /update: %v %v", resp, err)
	}
	resp.Body.Close()
	select {
	case tryboot := <-rebooted:
		if !tryboot {
			t.Error("rebooted without tryboot")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no reboot into the trial although nobody asked for it")
	}
}

// A PUT /update naming its bundle by SHA-256 leaves what arrived for a resume:
// GET /update/held says how much, a PUT at another offset gets 409 and the
// count, and one at that offset with the rest is installed.
func TestPutUpdateResumes(t *testing.T) {
	boot, key, st := updatableNode(t)
	st.updater.Reboot = func(bool) error { return nil }
	st.updater.Remount = func(bool) error { return nil }
	srv := httptest.NewServer(st.handler(func() (any, any) { return []any{}, []any{} }, nil, nil))
	defer srv.Close()

	b := smallBundle(t, key, strings.Repeat("kernel ", 4000))
	sum := sha256.Sum256(b)
	id := hex.EncodeToString(sum[:])
	call := func(method, query string, body []byte) (int, map[string]any) {
		req, _ := http.NewRequest(method, srv.URL+"/update"+query, bytes.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var doc map[string]any
		json.NewDecoder(resp.Body).Decode(&doc)
		return resp.StatusCode, doc
	}
	half := len(b) / 2
	if code, doc := call("PUT", "?id="+id+"&offset=0", b[:half]); code == http.StatusAccepted {
		t.Fatalf("half a bundle was taken: %v", doc)
	}
	if code, doc := call("GET", "/held?id="+id, nil); code != http.StatusOK || doc["have"] != float64(half) {
		t.Fatalf("held after half: %d %v, want %d", code, doc, half)
	}
	if code, doc := call("GET", "/held?id="+strings.Repeat("0", 64), nil); code != http.StatusOK || doc["have"] != float64(0) {
		t.Errorf("held of another bundle: %d %v", code, doc)
	}
	if code, doc := call("PUT", "?id="+id+"&offset=7", b[7:]); code != http.StatusConflict || doc["have"] != float64(half) {
		t.Errorf("resume at the wrong offset: %d %v", code, doc)
	}
	for _, q := range []string{"?id=xyz", "?id=" + id + "&offset=-1", "?id=" + id + "&offset=a"} {
		if code, doc := call("PUT", q, b); code != http.StatusBadRequest {
			t.Errorf("PUT /update%s: %d %v, want 400", q, code, doc)
		}
	}
	if code, doc := call("PUT", fmt.Sprintf("?id=%s&offset=%d", id, half), b[half:]); code != http.StatusAccepted || doc["slot"] != "b" {
		t.Fatalf("the rest: %d %v", code, doc)
	}
	if n, tr, _ := (slot.Card{Dir: boot}).Active(); n != "a" || tr != "b" {
		t.Errorf("config.txt after the resumed bundle: normal %s, trial %s", n, tr)
	}
}

// updatableNode is PID 1's state on an rpi3b card running slot a, whose
// fleet.toml accepts bundles signed by the returned release key: the boot
// partition's directory, the key and the state with its updater.
func updatableNode(t *testing.T) (string, *secp256k1.PrivateKey, *nodeState) {
	t.Helper()
	p, _ := board.Get("rpi3b")
	boot := t.TempDir()
	for name, c := range map[string]string{"config.txt": p.ConfigTXT("a", ""), "a/VERSION": "dev\n", "b/VERSION": "empty\n"} {
		os.MkdirAll(filepath.Join(boot, filepath.Dir(name)), 0o755)
		os.WriteFile(filepath.Join(boot, name), []byte(c), 0o644)
	}
	key := secp256k1.PrivKeyFromBytes(bytes.Repeat([]byte{5}, 32)) // a test vector
	st := &nodeState{Board: "rpi3b", Slot: "a", Degraded: []string{}, ConfigErrors: []fleetconf.Problem{}}
	cfg := fleetconf.Defaults(true)
	cfg.Release.Keys = []string{hex.EncodeToString(key.PubKey().SerializeCompressed())}
	st.updater = newUpdater(st, cfg, boot, t.TempDir(), nil)
	return boot, key, st
}

// smallBundle is an rpi3b bundle of version 1.1 signed by signer: vmlinuz
// holds kernel, the cmdline files their own names.
func smallBundle(t *testing.T, signer *secp256k1.PrivateKey, kernel string) []byte {
	t.Helper()
	var buf bytes.Buffer
	files := []bundle.Source{{Name: "vmlinuz", Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(kernel)), nil }}}
	for _, name := range []string{"cmdline.a.txt", "cmdline.b.txt"} {
		files = append(files, bundle.Source{Name: name, Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(name)), nil }})
	}
	if _, err := bundle.Write(&buf, signer, bundle.Header{Board: "rpi3b", Version: "1.1", Created: time.Unix(1, 0)}, files); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
