package master

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/services/control"
	"github.com/skyfleet/skyfleet/services/control/registry"
	"github.com/skyfleet/skyfleet/services/identity"
)

// logLines collects a master's log lines.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logf(format string, a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, a...))
}

func (l *logLines) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

func clientOf(m *Master) *Client {
	return &Client{Addr: strings.TrimPrefix(strings.TrimSuffix(m.URL, "/"), "http://")}
}

func record(t *testing.T, m *Master, name string, seen time.Time) *identity.Key {
	t.Helper()
	k, err := identity.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s := &control.Signed{Seq: 1, Report: control.Report{Name: name, Board: "rpi4b"}}
	copy(s.Node[:], k.PublicKey())
	if _, err := m.Registry.Record(s, seen); err != nil {
		t.Fatal(err)
	}
	return k
}

// A request naming a host other than this master (a page on evil.example
// whose DNS now answers with the master's address: DNS rebinding) is refused
// before it reaches the API; the old master served it /api/nodes.
func TestHostHeader(t *testing.T) {
	m := startMaster(t, nil)
	record(t, m, "kit-1", time.Now())
	get := func(host string) (int, string) {
		req, _ := http.NewRequest("GET", m.URL+"api/nodes", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	port := m.URL[strings.LastIndex(m.URL, ":")+1 : len(m.URL)-1]
	for _, host := range []string{"evil.example", "evil.example:" + port, "127.0.0.1.evil.example:" + port, "localhost.evil.example"} {
		code, body := get(host)
		if code != http.StatusMisdirectedRequest || strings.Contains(body, "kit-1") || !strings.Contains(body, "DNS rebinding") {
			t.Errorf("Host %q: %d %s", host, code, body)
		}
	}
	for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port, "LocalHost:9999", "[::1]:" + port, "192.0.2.7:" + port, "master.lan:" + port, "MASTER.LAN."} {
		if code, body := get(host); code != http.StatusOK || !strings.Contains(body, "kit-1") {
			t.Errorf("Host %q: %d %s", host, code, body)
		}
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		if code, _ := get(h + ":" + port); code != http.StatusOK {
			t.Errorf("this machine's name %q: %d", h, code)
		}
	}
}

func post(t *testing.T, url, contentType, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, contentType, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// POST /api/log takes JSON only (a cross-site form can send text/plain or form
// encodings without a preflight, never JSON) and no control characters, so an
// entry can neither be forged from a web page nor forge a line of the log.
func TestPostLog(t *testing.T) {
	var log logLines
	m := startMaster(t, &testOpts{logf: log.logf})
	url := m.URL + "api/log"
	good := `{"node":"kit-1","action":"exec","detail":"\"uname -a\": exit 0"}`
	for _, ct := range []string{"text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""} {
		if code, body := post(t, url, ct, good); code != http.StatusUnsupportedMediaType {
			t.Errorf("Content-Type %q: %d %s", ct, code, body)
		}
	}
	for _, body := range []string{
		`{"node":"kit-1","action":"exec","detail":"ok\nmaster: remote exec on kit-2: rm -rf /"}`,
		`{"node":"kit-1","action":"exec","detail":"ok\r13:00:00.000 master: forged"}`,
		`{"node":"kit-1\u001b[2J","action":"exec","detail":"ok"}`,
		`{"node":"kit-1","action":"exec","detail":"a\u2028b"}`,
		`{"node":"kit-1","action":"exec","detail":"\u202egnp.exe"}`,
		`{"node":"kit-1","action":"exec\n","detail":"ok"}`,
		`{"node":"kit-1","action":"refused","detail":"a fake refusal"}`,
		`{"node":"kit-1","action":"","detail":"ok"}`,
		`{"node":"kit-1","action":"exec","detail":"ok","time":"2020-01-01T00:00:00Z","extra":1}`,
		`not json`,
	} {
		if code, resp := post(t, url, "application/json", body); code != http.StatusBadRequest {
			t.Errorf("%s: %d %s", body, code, resp)
		}
	}
	if code, body := post(t, url, "application/json; charset=utf-8", good); code != http.StatusNoContent {
		t.Fatalf("a good entry: %d %s", code, body)
	}
	var got []registry.Action
	getJSON(t, url+"?kind=actions", &got)
	if len(got) != 1 || got[0].Detail != `"uname -a": exit 0` {
		t.Fatalf("log %+v", got)
	}
	for _, l := range log.all() {
		if strings.ContainsAny(l, "\n\r\x1b") || strings.Contains(l, "forged") {
			t.Errorf("log line %q", l)
		}
	}
}

// Refused reports go to their own capped log: a flood of 6000 leaves the
// operator's actions in place (before, they shared the 5000-entry action log,
// so a network-key holder could flush it), is counted, and is logged on the
// master once per 10 s, not 6000 times.
func TestRefusalFlood(t *testing.T) {
	var log logLines
	m := startMaster(t, &testOpts{logf: log.logf})
	c := clientOf(m)
	if err := c.Log(context.Background(), registry.Action{Node: "kit-1", Action: "exec", Detail: "the operator's"}); err != nil {
		t.Fatal(err)
	}
	stranger, _ := identity.Generate(rand.Reader)
	for i := range 6000 {
		m.refused(stranger.PublicKey(), fmt.Errorf("%w: %d after %d", registry.ErrReplay, i, i))
	}
	var all []registry.Action
	getJSON(t, m.URL+"api/log?limit=10000", &all)
	found := false
	for _, a := range all {
		found = found || a.Detail == "the operator's"
	}
	if !found {
		t.Fatalf("the operator's action is gone after the flood (%d entries)", len(all))
	}
	var ref registry.RefusalLog
	getJSON(t, m.URL+"api/refusals?limit=5", &ref)
	if len(ref.Refusals) != 5 || ref.Kept != registry.MaxRefusals || ref.Dropped != 6000-registry.MaxRefusals ||
		!strings.Contains(ref.Refusals[0].Detail, "5999 after 5999") || ref.Refusals[0].Node != stranger.Address().String() {
		t.Fatalf("refusals: %+v", ref)
	}
	var st Status
	getJSON(t, m.URL+"api/status", &st)
	if st.Refusals != registry.MaxRefusals || st.RefusalsDropped != 6000-registry.MaxRefusals {
		t.Errorf("status: %+v", st)
	}
	n := 0
	for _, l := range log.all() {
		if strings.Contains(l, "refused report") {
			n++
		}
	}
	if n < 1 || n > 3 {
		t.Errorf("%d log lines for 6000 refusals", n)
	}
}

// Two nodes call themselves kit-07: a tunnel to "kit-07" is refused with both
// candidates, and nothing is opened or logged as done. The old master took the
// first in key order.
func TestAmbiguousNameRefused(t *testing.T) {
	var log logLines
	m := startMaster(t, &testOpts{logf: log.logf})
	a := record(t, m, "kit-07", time.Now().Add(-time.Hour))
	b := record(t, m, "kit-07", time.Now())
	c := clientOf(m)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.Tunnel(ctx, "kit-07", "exec", `"uname -a"`)
	var amb *registry.AmbiguousNameError
	if !errors.As(err, &amb) || len(amb.Candidates) != 2 || amb.Name != "kit-07" {
		t.Fatalf("tunnel to an ambiguous name: %v", err)
	}
	// The one seen last, online, first.
	if amb.Candidates[0].Address != b.Address().String() || amb.Candidates[1].Address != a.Address().String() {
		t.Errorf("candidates %+v", amb.Candidates)
	}
	if _, err := c.Node(ctx, "kit-07"); !errors.As(err, &amb) {
		t.Errorf("node detail of an ambiguous name: %v", err)
	}
	var nodes []registry.Node
	getJSON(t, m.URL+"api/nodes", &nodes)
	var st Status
	getJSON(t, m.URL+"api/status", &st)
	if len(nodes) != 2 || !nodes[0].DuplicateName || !nodes[1].DuplicateName || st.DuplicateNames != 2 {
		t.Errorf("nodes %+v, status %+v", nodes, st)
	}
	for _, l := range log.all() {
		if strings.Contains(l, "remote exec") {
			t.Errorf("logged as done: %q", l)
		}
	}
	// By address it goes through to the node (which is not on the mesh here).
	if _, err := c.Tunnel(ctx, b.Address().String(), "exec", "x"); err == nil || errors.As(err, &amb) || !strings.Contains(err.Error(), "502") {
		t.Errorf("tunnel by address: %v", err)
	}
}

// A registry moved aside at start is logged and in /api/status.
func TestRegistryRecoveryShown(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, RegistryFile), bytes.Repeat([]byte("not bbolt"), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	var log logLines
	m := startMaster(t, &testOpts{logf: log.logf, dataDir: dir})
	var st Status
	getJSON(t, m.URL+"api/status", &st)
	if st.RegistryRecovery == nil || !strings.HasPrefix(st.RegistryRecovery.MovedTo, filepath.Join(dir, RegistryFile+".corrupt-")) {
		t.Fatalf("status: %+v", st)
	}
	if !strings.Contains(strings.Join(log.all(), "\n"), "WARNING: registry: "+filepath.Join(dir, RegistryFile)+" was damaged") {
		t.Errorf("log: %q", log.all())
	}
}

func TestCheckText(t *testing.T) {
	for s, ok := range map[string]bool{
		"uname -a: exit 0": true, `"rm -rf /tmp/x"`: true, "héllo wörld ✓": true,
		"a\nb": false, "a\tb": false, "\x1b[31m": false, "a\u0085b": false, "a\u2029b": false, "\u202e": false, "\xff": false,
	} {
		if err := checkText("detail", s, 100); (err == nil) != ok {
			t.Errorf("%q: %v", s, err)
		}
	}
	if checkText("detail", strings.Repeat("x", 101), 100) == nil {
		t.Error("too long accepted")
	}
}

// FuzzPostLog posts arbitrary bodies to POST /api/log. Whatever they are: no
// panic; an entry is accepted (204) or refused with 400, never a server error;
// what is accepted is logged as one line and stored with no control
// character in any field, and no more than was sent.
func FuzzPostLog(f *testing.F) {
	for _, s := range []string{
		`{"node":"kit-1","action":"exec","detail":"\"uname -a\": exit 0"}`,
		`{"node":"sky1abc","action":"cp","detail":"put /boot/fleet.toml: 812 bytes"}`,
		`{"node":"kit-1","action":"exec","detail":"ok\nmaster: forged"}`,
		`{"node":"kit-1\u001b[2J","action":"ssh","detail":"x"}`,
		`{"action":"refused"}`, `{}`, `[]`, `null`, `{"node":1}`,
	} {
		f.Add([]byte(s))
	}
	reg, err := registry.Open(filepath.Join(f.TempDir(), "registry.db"), time.Minute)
	if err != nil {
		f.Fatal(err)
	}
	defer reg.Close()
	var log logLines
	m := &Master{Registry: reg, opts: Options{Logf: log.logf}}
	f.Fuzz(func(t *testing.T, body []byte) {
		before := len(log.all())
		req := httptest.NewRequest("POST", "http://127.0.0.1/api/log", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		m.postLog(w, req)
		lines := log.all()[before:]
		switch w.Code {
		case http.StatusNoContent:
			if len(lines) != 1 {
				t.Fatalf("accepted, logged as %d lines", len(lines))
			}
			if strings.ContainsAny(lines[0], "\n\r\x1b") {
				t.Fatalf("log line %q", lines[0])
			}
			got, err := reg.Actions(1)
			if err != nil || len(got) != 1 {
				t.Fatal(err)
			}
			a := got[0]
			for _, s := range []string{a.Node, a.Action, a.Detail} {
				assertPrintable(t, s)
			}
			if len(a.Node)+len(a.Action)+len(a.Detail) > len(body) {
				t.Fatalf("stored more than was sent: %+v", a)
			}
		case http.StatusBadRequest:
			if len(lines) != 0 {
				t.Fatalf("refused, yet logged %q", lines)
			}
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
	})
}
