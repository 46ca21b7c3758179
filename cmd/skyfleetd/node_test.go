package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skyfleet/skyfleet/gokrazy/supervise"
	"github.com/skyfleet/skyfleet/internal/fleetconf"
)

// GET /status carries every field the issue and the operator rely on, with its type.
func TestStatusDocument(t *testing.T) {
	st := &nodeState{Address: "2Niqzo12tZ9ioZq5vwPHMVR4g7UVpp9TCmP", PublicKey: "02abc", Board: "rpi3b", Version: "v1", Slot: "a", BootMS: 1234,
		ConfigErrors: []fleetconf.Problem{{Line: 4, Message: "expected ]"}}, Degraded: []string{}}
	live := func() (any, any) {
		return []supervise.ServiceStatus{{Name: "status", State: supervise.Running, Restarts: 2}}, []string{}
	}
	logs := func(name string) ([]byte, bool) { return []byte("hello\n"), name == "status" }
	srv := httptest.NewServer(st.handler(live, logs, nil))
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/status")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for key, kind := range map[string]string{"address": "string", "public_key": "string", "board": "string", "version": "string",
		"slot": "string", "uptime_s": "number", "boot_ms": "number", "config_errors": "array", "services": "array", "degraded": "array", "perm": "object"} {
		v, ok := doc[key]
		if !ok {
			t.Errorf("status lacks %q", key)
			continue
		}
		got := "?"
		switch v.(type) {
		case string:
			got = "string"
		case float64:
			got = "number"
		case []any:
			got = "array"
		case map[string]any:
			got = "object"
		}
		if got != kind {
			t.Errorf("%s is %s (%v), want %s", key, got, v, kind)
		}
	}
	if doc["boot_ms"].(float64) != 1234 || doc["address"] != st.Address {
		t.Errorf("values: %v", doc)
	}
	svc := doc["services"].([]any)[0].(map[string]any)
	if svc["name"] != "status" || svc["state"] != "running" || svc["restarts"].(float64) != 2 {
		t.Errorf("service entry %v", svc)
	}
	if ce := doc["config_errors"].([]any)[0].(map[string]any); ce["line"].(float64) != 4 {
		t.Errorf("config error %v", ce)
	}

	if r, _ := http.Get(srv.URL + "/services/status/log"); r.StatusCode != 200 {
		t.Errorf("log of a known service: %s", r.Status)
	}
	if r, _ := http.Get(srv.URL + "/services/nope/log"); r.StatusCode != 404 {
		t.Errorf("log of an unknown service: %s", r.Status)
	}
}

func TestHostname(t *testing.T) {
	cfg := fleetconf.Defaults(true)
	for _, c := range []struct{ system, name, want string }{
		{"", "", "skyfleet"},
		{"", "kit-07", "kit-07"},
		{"", "Kit 07 (north)", "skyfleet"},
		{"relay-1", "kit-07", "relay-1"},
		{"-bad", "kit-07", "kit-07"},
		{"", strings.Repeat("a", 64), "skyfleet"},
	} {
		cfg.System.Hostname, cfg.Node.Name = c.system, c.name
		if got := hostname(cfg); got != c.want {
			t.Errorf("hostname(%q, %q) = %q, want %q", c.system, c.name, got, c.want)
		}
	}
}

// PID 1 comes up on a fleet.toml that fails closed, with the device defaults (so
// the network and status come up), and its status page says the mesh links with
// nobody; a file that only misses its psk does not fail closed.
func TestLoadConfigFailClosed(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[network]\npsk = 0x"+strings.Repeat("ab", 32)+"\n"), 0o644)
	st := &nodeState{ConfigErrors: []fleetconf.Problem{}}
	cfg := loadConfig(st, bad)
	if st.LinksRefused == "" || len(st.ConfigErrors) != 1 || !st.ConfigErrors[0].Fatal {
		t.Errorf("bad psk: links_refused %q, problems %+v", st.LinksRefused, st.ConfigErrors)
	}
	if cfg.Node.Status != fleetconf.DeviceStatus {
		t.Errorf("status address %q, want the device default so status is served", cfg.Node.Status)
	}
	b, _ := json.Marshal(statusDoc{nodeState: st})
	if strings.Contains(string(b), "abab") {
		t.Errorf("status echoes the psk: %s", b)
	}
	ok := filepath.Join(dir, "ok.toml")
	os.WriteFile(ok, []byte("[node]\nname = \"kit-07\"\n"), 0o644)
	st = &nodeState{ConfigErrors: []fleetconf.Problem{}}
	loadConfig(st, ok)
	if st.LinksRefused != "" {
		t.Errorf("a file without a psk failed closed: %q", st.LinksRefused)
	}
}
