package main

import (
	"encoding/hex"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/skyfleet/skyfleet/internal/apiauth"
	"github.com/skyfleet/skyfleet/internal/fleetconf"
)

// PID 1 passes the messaging mode on the status service's command line, never
// the passphrase, which the status service reads from fleet.toml itself.
func TestStatusArgsMessaging(t *testing.T) {
	const pass = "kit seven, channel 3"
	for _, c := range []struct {
		toml string
		want []string
	}{
		{"", nil},
		{"[messaging]\nopen = true\n", []string{"--messaging", "open"}},
		{"[messaging]\npassphrase = \"" + pass + "\"\n", []string{"--messaging", "passphrase", "--config", bootConfig}},
		{"[messaging]\npassphrase = \"short\"\nopen = true\n", nil},
	} {
		cfg, _ := fleetconf.Parse([]byte(c.toml), true)
		args := statusArgs(cfg, strings.Repeat("02", 33), "/perm")
		i := slices.Index(args, "--messaging")
		var got []string
		if i >= 0 {
			got = args[i:]
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%q: args %q, want them to end in %q", c.toml, args, c.want)
		}
		if strings.Contains(strings.Join(args, " "), "kit seven") {
			t.Errorf("%q: the passphrase is on the command line: %q", c.toml, args)
		}
	}

	path := filepath.Join(t.TempDir(), "fleet.toml")
	os.WriteFile(path, []byte("[messaging]\npassphrase = \""+pass+"\"\n"), 0o600)
	mc, err := messagingConfig(apiauth.MessagingPassphrase, path, t.Logf)
	if err != nil || mc.Passphrase != pass {
		t.Errorf("messagingConfig from %s: %+v %v", path, mc, err)
	}
	var logged []string
	mc, err = messagingConfig(apiauth.MessagingPassphrase, filepath.Join(t.TempDir(), "gone.toml"), func(f string, a ...any) { logged = append(logged, f) })
	if err != nil || mc != (apiauth.MessagingConfig{}) || len(logged) != 1 {
		t.Errorf("no file: %+v %v %q, want closed and a log line", mc, err, logged)
	}
	if mc, _ := messagingConfig(apiauth.MessagingOpen, "", t.Logf); !mc.Open {
		t.Error("--messaging open: not open")
	}
	if _, err := messagingConfig("wide-open", "", t.Logf); err == nil {
		t.Error("an unknown mode was accepted")
	}
}

// On a Pi the status service serves the page and the login itself, and proxies
// the messaging API to the mesh service once the session admits it.
func TestStatusMessaging(t *testing.T) {
	node, _ := secp256k1.GeneratePrivateKey()
	const pass = "kit seven, channel 3"
	h, err := statusHandler(t.TempDir(), hex.EncodeToString(node.PubKey().SerializeCompressed()), "",
		apiauth.MessagingConfig{Passphrase: pass}, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	defer ts.Close()
	srv := ts.URL
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	do := func(method, path, body string) int {
		req, _ := http.NewRequest(method, srv+path, strings.NewReader(body))
		if method == "POST" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// The mesh service is not running here: an admitted API request gets 502
	// from the proxy, a refused one 401 before it.
	for _, p := range []struct {
		method, path, body string
		want               int
	}{
		{"GET", "/msg/", "", 200},
		{"GET", "/msg/static/app.js", "", 200},
		{"GET", "/msg/inbox", "", 401},
		{"POST", "/msg/login", `{"passphrase": "wrong one, surely"}`, 401},
		{"POST", "/msg/login", `{"passphrase": "` + pass + `"}`, 200},
		{"GET", "/msg/inbox", "", 502},
		{"GET", "/msg/outbox", "", 502},
		{"POST", "/msg/send", `{"to": "*", "text": "hi"}`, 502},
		{"GET", "/msg/stats", "", 502},
		{"GET", "/mesh/links", "", 401},
		{"GET", "/services/mesh/log", "", 401},
		{"POST", "/msg/logout", "{}", 200},
		{"GET", "/msg/inbox", "", 401},
	} {
		if got := do(p.method, p.path, p.body); got != p.want {
			t.Errorf("%s %s: %d, want %d", p.method, p.path, got, p.want)
		}
	}
}
