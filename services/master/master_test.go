package master

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/internal/fleetconf"
	"github.com/skyfleet/skyfleet/services/control"
	"github.com/skyfleet/skyfleet/services/control/registry"
	"github.com/skyfleet/skyfleet/services/identity"
)

// testOpts are what tests set of a master: its log, and its data directory
// (a new temporary one if "").
type testOpts struct {
	logf    func(string, ...any)
	dataDir string
}

// startMaster runs a master on loopback with its API on a test listener, also
// answering to the host name master.lan.
func startMaster(t *testing.T, opts *testOpts) *Master {
	t.Helper()
	if opts == nil {
		opts = &testOpts{}
	}
	key, err := identity.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cfg := fleetconf.Defaults(false)
	cfg.Node.Data = opts.dataDir
	if cfg.Node.Data == "" {
		cfg.Node.Data = t.TempDir()
	}
	cfg.Node.Listen = []string{"udp://127.0.0.1:0"}
	cfg.Network.LANDiscovery = false
	cfg.Master.ReportInterval = "10s"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *Master, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Config: cfg, Key: key, Version: "test", Listener: ln, Logf: opts.logf,
			AllowedHosts: []string{"master.lan"}, Ready: func(m *Master) { ready <- m }})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	select {
	case m := <-ready:
		return m
	case err := <-done:
		t.Fatal(err)
	}
	return nil
}

func TestAPI(t *testing.T) {
	m := startMaster(t, nil)
	node, _ := identity.Generate(rand.Reader)
	s := &control.Signed{Seq: 1, Report: control.Report{Name: "kit-9", Board: "rpi4b", Version: "v2",
		Links: []control.Link{{Address: m.Node.Router.Address(), Up: true, RTTms: 3}, {Address: "peer-x", Up: true}}}}
	copy(s.Node[:], node.PublicKey())
	if _, err := m.Registry.Record(s, time.Now()); err != nil {
		t.Fatal(err)
	}
	c := &Client{Addr: strings.TrimPrefix(strings.TrimSuffix(m.URL, "/"), "http://")}
	nodes, err := c.Nodes(context.Background())
	if err != nil || len(nodes) != 1 || nodes[0].Name != "kit-9" || !nodes[0].Online || nodes[0].Address != node.Address().String() {
		t.Fatalf("nodes: %v %+v", err, nodes)
	}
	d, err := c.Node(context.Background(), "kit-9")
	if err != nil || d.Report.Board != "rpi4b" || len(d.History) != 1 {
		t.Fatalf("node: %v %+v", err, d)
	}
	if _, err := c.Node(context.Background(), "nobody"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("unknown node: %v", err)
	}
	var g Graph
	getJSON(t, m.URL+"api/graph", &g)
	// The master and kit-9; kit-9's link to the master is drawn from the master's
	// side only, its other link from its report.
	if len(g.Nodes) != 2 || !g.Nodes[0].Master || len(g.Edges) != 1 || g.Edges[0].To != "peer-x" {
		t.Fatalf("graph: %+v", g)
	}
	if err := c.Log(context.Background(), registry.Action{Node: "kit-9", Action: "exec", Detail: "uname: exit 0"}); err != nil {
		t.Fatal(err)
	}
	var log []registry.Action
	getJSON(t, m.URL+"api/log", &log)
	if len(log) != 1 || log[0].Detail != "uname: exit 0" || log[0].Time.IsZero() {
		t.Fatalf("log: %+v", log)
	}
	// A tunnel to a node the master cannot find is refused with the reason.
	if _, err := c.Tunnel(context.Background(), "nobody", "ssh", ""); err == nil || !strings.Contains(err.Error(), "no node") {
		t.Fatalf("tunnel to nobody: %v", err)
	}
	// The dashboard is at /.
	resp, err := http.Get(m.URL)
	if err != nil || resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("dashboard: %v %v", err, resp)
	}
	resp.Body.Close()
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// Off loopback every request needs the token: as a Bearer header, a cookie, or
// once in the query (which sets the cookie for a browser).
func TestAuthOffLoopback(t *testing.T) {
	m := &Master{token: strings.Repeat("ab", 24), opts: Options{Logf: func(string, ...any) {}}}
	h := m.auth(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "in") }))
	do := func(remote, target string, hdr map[string]string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", target, nil)
		r.RemoteAddr = remote
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for _, c := range []struct {
		name, remote, target string
		hdr                  map[string]string
		want                 int
	}{
		{"loopback", "127.0.0.1:5000", "/api/nodes", nil, 200},
		{"loopback v6", "[::1]:5000", "/api/nodes", nil, 200},
		{"LAN without token", "192.0.2.7:5000", "/api/nodes", nil, 401},
		{"LAN wrong token", "192.0.2.7:5000", "/api/nodes", map[string]string{"Authorization": "Bearer nope"}, 401},
		{"LAN bearer", "192.0.2.7:5000", "/api/nodes", map[string]string{"Authorization": "Bearer " + m.token}, 200},
		{"LAN cookie", "192.0.2.7:5000", "/", map[string]string{"Cookie": "skyfleet_token=" + m.token}, 200},
		{"LAN query", "192.0.2.7:5000", "/?token=" + m.token, nil, 200},
	} {
		w := do(c.remote, c.target, c.hdr)
		if w.Code != c.want {
			t.Errorf("%s: %d, want %d", c.name, w.Code, c.want)
		}
		if c.name == "LAN query" && (!strings.Contains(w.Header().Get("Set-Cookie"), "skyfleet_token="+m.token) || strings.Contains(w.Header().Get("Set-Cookie"), "Secure")) {
			t.Errorf("a token in the query did not set the cookie (not Secure over plain HTTP): %q", w.Header().Get("Set-Cookie"))
		}
	}
	// Over TLS the cookie is Secure: the browser never sends it in the clear.
	r := httptest.NewRequest("GET", "/?token="+m.token, nil)
	r.RemoteAddr, r.TLS = "192.0.2.7:5000", &tls.ConnectionState{}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 200 || !strings.Contains(w.Header().Get("Set-Cookie"), "; Secure") {
		t.Errorf("token over TLS: %d, Set-Cookie %q", w.Code, w.Header().Get("Set-Cookie"))
	}
}

func TestTokenFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), TokenFile)
	a, err := loadToken(p)
	if err != nil || len(a) != 48 {
		t.Fatalf("%q %v", a, err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v", fi.Mode())
	}
	if b, err := loadToken(p); err != nil || b != a {
		t.Fatalf("second load: %q %v, want %q", b, err, a)
	}
	os.WriteFile(p, []byte("short\n"), 0o600)
	if _, err := loadToken(p); err == nil {
		t.Fatal("a short token was accepted")
	}
	// A token already there (written by another master, or by hand) is used
	// and left as it is, never replaced.
	mine := strings.Repeat("cd", 24) + "\n"
	os.WriteFile(p, []byte(mine), 0o640)
	if got, err := loadToken(p); err != nil || got+"\n" != mine {
		t.Fatalf("existing token: %q %v", got, err)
	}
	if b, _ := os.ReadFile(p); string(b) != mine {
		t.Errorf("the existing token file was rewritten: %q", b)
	}
}

// A master whose fleet.toml failed closed refuses to start, with the reason,
// instead of running without its mesh (or with defaults more open than written).
func TestRunRefusesFailedConfig(t *testing.T) {
	key, err := identity.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cfg, problems := fleetconf.Parse([]byte("[network]\npsk = \"not hex\"\n"), false)
	if !fleetconf.FailClosed(problems) {
		t.Fatal("the test's config does not fail closed")
	}
	cfg.Node.Data = t.TempDir()
	err = Run(context.Background(), Options{Config: cfg, Problems: problems, Key: key})
	if err == nil || !strings.Contains(err.Error(), "fatal") {
		t.Fatalf("Run with a failed config: %v", err)
	}
	if strings.Contains(err.Error(), "not hex") {
		t.Errorf("the error shows the psk: %v", err)
	}
}
