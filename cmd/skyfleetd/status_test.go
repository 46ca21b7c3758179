package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/skyfleet/skyfleet/internal/apiauth"
)

// The status proxy answers 502 naming the service when the service behind it
// fails, and stays quiet when the client is the one that left.
func TestProxyError(t *testing.T) {
	var logged bytes.Buffer
	log.SetOutput(&logged)
	defer log.SetOutput(os.Stderr)
	h := proxyError("the mesh service")

	w := httptest.NewRecorder()
	h(w, httptest.NewRequest("GET", "/mesh/status", nil), errors.New("dial unix /run/mesh.sock: connect: no such file"))
	if w.Code != http.StatusBadGateway || !strings.Contains(w.Body.String(), "the mesh service did not answer: dial unix") {
		t.Errorf("service down: %d %q", w.Code, w.Body)
	}
	if !strings.Contains(logged.String(), "GET /mesh/status: the mesh service did not answer") {
		t.Errorf("service down not logged: %q", logged.String())
	}

	logged.Reset()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w = httptest.NewRecorder()
	h(w, httptest.NewRequest("GET", "/status", nil).WithContext(ctx), context.Canceled)
	if logged.Len() != 0 || w.Body.Len() != 0 {
		t.Errorf("client gone: logged %q, answered %q", logged.String(), w.Body)
	}
}

// On a Pi the status service is the node's API on the LAN: only GET /status is
// public; a service's log and the mesh API need the token or the master's key.
func TestStatusAccess(t *testing.T) {
	node, _ := secp256k1.GeneratePrivateKey()
	master, _ := secp256k1.GeneratePrivateKey()
	data := t.TempDir()
	h, err := statusHandler(data, hex.EncodeToString(node.PubKey().SerializeCompressed()),
		hex.EncodeToString(master.PubKey().SerializeCompressed()), apiauth.MessagingConfig{}, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	tok, err := apiauth.ReadToken(filepath.Join(data, apiauth.TokenFile))
	if err != nil {
		t.Fatalf("no token made: %v", err)
	}
	do := func(method, path string, cred apiauth.Credential) int {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		if cred != nil {
			if err := cred.Authorize(srv.Client(), req); err != nil {
				t.Fatal(err)
			}
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// PID 1 and the mesh service are not running here: an admitted request gets
	// 502 from the proxy, a refused one 401 before it.
	if got := do("GET", "/status", nil); got != http.StatusBadGateway {
		t.Errorf("GET /status without a credential: %d, want it let through (502 here)", got)
	}
	for _, p := range []struct{ method, path string }{
		{"GET", "/services/mesh/log"}, {"GET", "/mesh/links"}, {"GET", "/mesh/graph"},
		{"POST", "/mesh/ping?addr=x"}, {"GET", "/mesh/recv?port=9"}, {"POST", "/mesh/send?addr=x&port=9"},
	} {
		if got := do(p.method, p.path, nil); got != http.StatusUnauthorized {
			t.Errorf("%s %s without a credential: %d, want 401", p.method, p.path, got)
		}
		if got := do(p.method, p.path, apiauth.Token(tok)); got != http.StatusBadGateway {
			t.Errorf("%s %s with the token: %d, want it let through (502 here)", p.method, p.path, got)
		}
		if got := do(p.method, p.path, apiauth.MasterKey{Key: master}); got != http.StatusBadGateway {
			t.Errorf("%s %s signed by the master: %d, want it let through (502 here)", p.method, p.path, got)
		}
	}
	if got := do("POST", "/poweroff", apiauth.Token(tok)); got != http.StatusNotFound {
		t.Errorf("POST /poweroff on the network API: %d, want 404", got)
	}
}

// The README's security section names every path the node's APIs serve, with
// who may call it.
func TestREADMEListsEveryPath(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range statusRoutes(nil) {
		p := rt.Pattern
		method, path, ok := strings.Cut(p, " ")
		if ok {
			p = path
		}
		if strings.HasSuffix(p, "{$}") {
			// An exact path ("GET /msg/{$}") is listed as "`GET /msg/`".
			p = "`" + method + " " + strings.TrimSuffix(p, "{$}") + "`"
		}
		if !strings.Contains(string(readme), p) {
			t.Errorf("README does not list %s (%s)", rt.Pattern, rt.Access)
		}
	}
}
