package main

import (
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skyfleet/skyfleet/internal/apiauth"
	"github.com/skyfleet/skyfleet/internal/fleetconf"
)

// The ui service's credential finds the API token even when the status
// service writes it after the ui service started: before, a request fails
// saying so (and never the token); after, it carries the token.
func TestTokenFileLate(t *testing.T) {
	dir := t.TempDir()
	f := &tokenFile{path: filepath.Join(dir, apiauth.TokenFile)}
	req := httptest.NewRequest("GET", "/mesh/links", nil)
	if err := f.Authorize(nil, req); err == nil || req.Header.Get("Authorization") != "" {
		t.Fatalf("no token file: %v, header %q", err, req.Header.Get("Authorization"))
	}
	tok, err := apiauth.LoadOrCreateToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Authorize(nil, req); err != nil || req.Header.Get("Authorization") != "Bearer "+tok {
		t.Fatalf("after the token appeared: %v, header %q", err, req.Header.Get("Authorization"))
	}
	os.WriteFile(filepath.Join(dir, apiauth.TokenFile), []byte("garbage secret-ish\n"), 0o600)
	g := &tokenFile{path: filepath.Join(dir, apiauth.TokenFile)}
	if err := g.Authorize(nil, req); err == nil || strings.Contains(err.Error(), "secret-ish") {
		t.Errorf("a bad token file: %v", err)
	}
}

// PID 1 starts the ui service for a named screen, or for auto with a
// framebuffer, and never for none.
func TestWantUI(t *testing.T) {
	cfg := fleetconf.Defaults(true)
	for _, c := range []struct {
		screen string
		fb     bool
		want   bool
	}{{"auto", true, true}, {"auto", false, false}, {"none", true, false}, {"ili9486", false, true}, {"fbdev", false, true}} {
		cfg.Display.Screen = c.screen
		if got := wantUI(cfg, func() bool { return c.fb }); got != c.want {
			t.Errorf("screen %q, /dev/fb0 %v: start %v, want %v", c.screen, c.fb, got, c.want)
		}
	}
	if loopbackOf("0.0.0.0:80") != "127.0.0.1:80" || loopbackOf("[::]:8080") != "127.0.0.1:8080" || loopbackOf("10.0.0.5:81") != "10.0.0.5:81" {
		t.Error("loopbackOf")
	}
}

// The approval API's caller is named from PID 1's list: a running service's
// process is that service; a process of none, a stopped service's old
// process, PID 1 itself and a broken answer are refused.
func TestSupervisedService(t *testing.T) {
	doc := `{"address":"x","services":[{"name":"mesh","state":"running","pid":210},{"name":"wallet","state":"running","pid":305},{"name":"radio","state":"backoff","pid":0},{"name":"old","state":"stopped","pid":400}]}`
	id := supervisedService(func() ([]byte, error) { return []byte(doc), nil })
	if name, err := id(305); err != nil || name != "wallet" {
		t.Fatalf("pid 305: %q, %v", name, err)
	}
	for _, pid := range []int32{0, 1, 999, 400} {
		if name, err := id(pid); err == nil {
			t.Errorf("pid %d named %q", pid, name)
		}
	}
	broken := supervisedService(func() ([]byte, error) { return []byte("<html>"), nil })
	if _, err := broken(305); err == nil {
		t.Error("a malformed status named a caller")
	}
	down := supervisedService(func() ([]byte, error) { return nil, errors.New("connection refused") })
	if _, err := down(305); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("PID 1 unreachable: %v", err)
	}
}
