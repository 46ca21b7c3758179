// Package master is the fleet master (`skyfleet master`, issue 4): a mesh node
// running with the operator's master key, the report receiver that feeds the
// registry, and the operator's HTTP side: the dashboard, the JSON API and the
// tunnels `skyfleet ssh/exec/cp` open to a node's SSH port through the mesh.
//
// Only the operator may reach it: [node] status is loopback by default, and a
// request from any other address must come over TLS (tls.go: a key derived from
// the master key, which the CLI pins) and carry the token in
// <data>/master.token.
// Every request must name this master in its Host header (an IP address,
// localhost, this machine's name, or a name given in Options.AllowedHosts), so a
// web page whose DNS name an attacker points at the master (DNS rebinding) is
// refused; and the one state-changing API a browser could post to, POST /api/log,
// takes only JSON, which a cross-site form cannot send.
package master

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/skyfleet/skyfleet/internal/boltdb"
	"github.com/skyfleet/skyfleet/internal/durable"
	"github.com/skyfleet/skyfleet/internal/fleetconf"
	"github.com/skyfleet/skyfleet/internal/ratelog"
	"github.com/skyfleet/skyfleet/services/control"
	"github.com/skyfleet/skyfleet/services/control/dashboard"
	"github.com/skyfleet/skyfleet/services/control/registry"
	"github.com/skyfleet/skyfleet/services/identity"
	"github.com/skyfleet/skyfleet/services/mesh"
	"github.com/skyfleet/skyfleet/services/mesh/topology"
	"github.com/skyfleet/skyfleet/services/meshd"
)

// Files in [node] data.
const (
	RegistryFile = "registry.db"
	TokenFile    = "master.token"
)

// OfflineGrace is how long after a missed periodic report a node is shown offline:
// a node is online while its last report is at most report_interval + OfflineGrace
// old.
const OfflineGrace = 20 * time.Second

// TunnelProtocol is the Upgrade token of POST /api/tunnel.
const TunnelProtocol = "skyfleet-tunnel"

// NodeKeyHeader is the header of the tunnel's 101 response naming, in hex, the
// 33-byte key of the node the master resolved and connected to. The client
// has the node prove it holds that key inside the SSH session.
const NodeKeyHeader = "Skyfleet-Node-Key"

// Options configure Run.
type Options struct {
	Config   fleetconf.Config
	Problems []fleetconf.Problem
	// Key is the master key (`skyfleet keygen -o master.key`). Required.
	Key     *identity.Key
	Version string
	Logf    func(format string, args ...any)
	// Listener, if set, serves the dashboard and API instead of [node] status.
	Listener net.Listener
	// Ready, if set, is called once everything runs.
	Ready func(m *Master)
	// AnnounceInterval overrides the mesh gossip period (tests of big fleets).
	AnnounceInterval time.Duration
	// AllowedHosts are further names the dashboard may be reached by (the
	// Host header), e.g. "master.lan"; IP addresses, localhost and this
	// machine's host name are always allowed. Case does not matter; a port
	// must not be given.
	AllowedHosts []string
}

// Master is a running master.
type Master struct {
	Node     *meshd.Node
	Registry *registry.Registry
	// URL is where the dashboard is served, e.g. http://127.0.0.1:8080/, or
	// https://192.168.1.5:8080/ off loopback.
	URL string
	// TLSPin is the hex SHA-256 of the TLS key's SubjectPublicKeyInfo, which
	// clients off loopback pin (TLSPin of the master key).
	TLSPin string
	token  string
	opts   Options
	pub    []byte
	hosts  map[string]bool // allowed Host names besides IP addresses and localhost

	refusedLog ratelog.Limiter // refused reports
	hostLog    ratelog.Limiter // requests for other hosts
}

// Run starts the master and serves until ctx ends. Errors: no key, its config
// failed closed (fleetconf.FailClosed: a master that cannot link controls
// nothing, so it refuses to start rather than run open or blind), the data
// directory or registry cannot be used (another master has it open), the mesh or
// the status address cannot be opened.
func Run(ctx context.Context, opts Options) error {
	if opts.Key == nil {
		return errors.New("master: no master key")
	}
	if fleetconf.FailClosed(opts.Problems) {
		return errors.New("master: its fleet.toml has errors that would leave the mesh open (listed above, marked fatal); fix them and start again")
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	cfg := opts.Config
	// The master's own fleet.toml may name it as the master or say nothing.
	cfg.Master.PublicKey = opts.Key.PublicKeyHex()
	cfg.Master.Addresses = nil
	opts.Config = cfg
	if err := os.MkdirAll(cfg.Node.Data, 0o700); err != nil {
		return fmt.Errorf("master: data directory: %w", err)
	}
	reg, err := registry.Open(filepath.Join(cfg.Node.Data, RegistryFile), cfg.Master.Interval()+OfflineGrace)
	if err != nil {
		return err
	}
	defer reg.Close()
	if rec := reg.Recovery(); rec != nil {
		opts.Logf("master: WARNING: registry: %s", rec)
	}
	token, err := loadToken(filepath.Join(cfg.Node.Data, TokenFile))
	if err != nil {
		return err
	}
	node, err := meshd.Start(ctx, meshd.Options{
		Config: cfg, Problems: opts.Problems, Version: opts.Version, Logf: opts.Logf,
		Key: opts.Key, AnnounceInterval: opts.AnnounceInterval,
		// The master runs on a host, whose clock keeps real time: its
		// announcements carry it, and nodes take it as the master's time.
		TrustSystemClock: true,
	})
	if err != nil {
		return err
	}
	defer node.Close()
	m := &Master{Node: node, Registry: reg, token: token, opts: opts, pub: opts.Key.PublicKey(), hosts: allowedHosts(opts.AllowedHosts)}

	reports, err := node.Router.Listen(control.ReportPort)
	if err != nil {
		return err
	}
	defer reports.Close()
	rc := &control.Receiver{
		Master:  m.pub,
		PeerKey: peerKey,
		Accept: func(s *control.Signed) error {
			n, err := reg.Record(s, time.Now())
			if err == nil && n.FirstSeen.Equal(n.LastSeen) {
				opts.Logf("master: node %s (%q) registered", n.Address, n.Name)
			}
			return err
		},
		Refused: m.refused,
	}
	go rc.Serve(reports)
	go m.sweep(ctx)

	tlsCfg, pin, err := tlsConfig(opts.Key)
	if err != nil {
		return err
	}
	m.TLSPin = pin
	ln := opts.Listener
	if ln == nil {
		ln, err = net.Listen("tcp", cfg.Node.Status)
		if err != nil {
			return fmt.Errorf("dashboard on %s: %w", cfg.Node.Status, err)
		}
	}
	// One port for both: TLS for anyone, plain HTTP for loopback peers only
	// (the browser and CLI on the master's own host need no certificate).
	m.URL = "http://" + ln.Addr().String() + "/"
	if !isLoopback(ln.Addr()) {
		m.URL = "https://" + ln.Addr().String() + "/"
	}
	sniff := newSniffListener(meshd.Limit(ln), tlsCfg)
	return meshd.Serve(ctx, sniff, m.Handler(), func() {
		opts.Logf("master %s: dashboard and API on %s (TLS pin %s; token in %s for other hosts)", node.Router.Address(), m.URL,
			pin, filepath.Join(cfg.Node.Data, TokenFile))
		if opts.Ready != nil {
			opts.Ready(m)
		}
	})
}

// peerKey is the mesh key at the far end of a stream.
func peerKey(a net.Addr) []byte {
	if ma, ok := a.(mesh.Addr); ok {
		return ma.Key[:]
	}
	return nil
}

func addressOf(pub []byte) string {
	if a, err := identity.AddressFromPublicKey(pub); err == nil {
		return a.String()
	}
	return hex.EncodeToString(pub)
}

// refused records a refused report in the registry's refusal log, apart from
// the operator's actions, and on the master's log at most one line per 10 s
// (with a count of those it left out): anyone holding the network key can send
// refusals as fast as the mesh carries them.
func (m *Master) refused(from []byte, err error) {
	addr := addressOf(from)
	now := time.Now()
	m.Registry.LogRefusal(registry.Action{Time: now, Node: addr, Action: "refused", Detail: "report: " + err.Error()})
	if skipped, ok := m.refusedLog.Allow(now); ok {
		more := ""
		if skipped > 0 {
			more = fmt.Sprintf(" (%d more refused since the last line)", skipped)
		}
		m.opts.Logf("master: refused report from %s: %q%s", addr, err.Error(), more)
	}
}

// sweep marks quiet nodes offline (and writes queued refusals) every 2 s, and
// forgets nodes gone for registry.ForgetAfter once an hour.
func (m *Master) sweep(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	var forgot time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			gone, err := m.Registry.Sweep(now)
			if err != nil {
				m.opts.Logf("master: registry: %v", err)
			}
			for _, n := range gone {
				m.opts.Logf("master: node %s (%q) offline: last report at %s", n.Address, n.Name, n.LastSeen.Format(time.TimeOnly))
			}
			if now.Sub(forgot) < time.Hour {
				continue
			}
			forgot = now
			old, err := m.Registry.Forget(now)
			if err != nil {
				m.opts.Logf("master: registry: %v", err)
			}
			for _, n := range old {
				m.opts.Logf("master: forgot node %s (%q): no report since %s", n.Address, n.Name, n.LastSeen.Format(time.DateTime))
			}
		}
	}
}

// loadToken reads the API token, making a random one on first start. The new
// token is written durably (fsync of the file and the directory) with mode
// 0600, and never over an existing file: if another master wrote one first,
// that one is used.
func loadToken(path string) (string, error) {
	for range 2 {
		if b, err := os.ReadFile(path); err == nil {
			if t := strings.TrimSpace(string(b)); len(t) >= 32 {
				return t, nil
			}
			return "", fmt.Errorf("master: %s holds no usable token (delete it to make a new one)", path)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		var b [24]byte
		rand.Read(b[:])
		t := hex.EncodeToString(b[:])
		err := durable.CreateFile(path, []byte(t+"\n"), 0o600)
		if err == nil {
			return t, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("master: writing the API token: %w", err)
		}
		// Created meanwhile: read that one.
	}
	return "", fmt.Errorf("master: %s: cannot read or create the API token", path)
}

// Status is GET /api/status.
type Status struct {
	Address         string  `json:"address"`
	PublicKey       string  `json:"public_key"`
	Version         string  `json:"version"`
	Nodes           int     `json:"nodes"`
	Online          int     `json:"online"`
	ReportIntervalS float64 `json:"report_interval_s"`
	LinksUp         int     `json:"links_up"`
	// DuplicateNames counts the nodes whose name another node reports too.
	DuplicateNames int `json:"duplicate_names"`
	// Refusals is the number of refused reports kept (GET /api/refusals), and
	// RefusalsDropped the number dropped to keep that log small.
	Refusals        int    `json:"refusals"`
	RefusalsDropped uint64 `json:"refusals_dropped"`
	// RegistryRecovery is set when the registry file was damaged at start:
	// what was wrong and where the damaged file went.
	RegistryRecovery *boltdb.Recovery `json:"registry_recovery,omitempty"`
	// CorruptRecords counts damaged registry records met since the start.
	CorruptRecords uint64 `json:"registry_corrupt_records"`
	// TLSPin is the pin of the API's TLS key (Master.TLSPin), to give to
	// operators who reach the master from other hosts with the token.
	TLSPin string `json:"tls_pin"`
}

// Graph is GET /api/graph: the fleet as the master sees it, from each node's last
// report (its links) and the master's own links.
type Graph struct {
	Nodes []GraphNode `json:"nodes"`
	Edges []GraphEdge `json:"edges"`
}

// GraphNode is a node of Graph.
type GraphNode struct {
	Address string `json:"address"`
	Name    string `json:"name"`
	Online  bool   `json:"online"`
	Master  bool   `json:"master"`
}

// GraphEdge is a link from a node's report: From reported it.
type GraphEdge struct {
	From  string  `json:"from"`
	To    string  `json:"to"`
	Up    bool    `json:"up"`
	RTTms float64 `json:"rtt_ms"`
	Loss  float64 `json:"loss"`
}

// Handler serves the dashboard at / and the API:
//
//	GET  /api/status          Status
//	GET  /api/nodes           []registry.Node (?online=true|false, ?q=substring)
//	GET  /api/nodes/{id}      registry.Detail; id is an address, key hex or name
//	                          (409 with registry.AmbiguousNameError's JSON for a
//	                          name several nodes report)
//	GET  /api/graph           Graph
//	GET  /api/log             []registry.Action, newest first (?limit=N, default
//	                          200): the operator's actions and the refused
//	                          reports, each from its own log; ?kind=actions or
//	                          ?kind=refusals for one of them
//	POST /api/log             appends one registry.Action (Content-Type
//	                          application/json; no control characters) from the CLI
//	GET  /api/refusals        registry.RefusalLog (?limit=N, default 200)
//	POST /api/tunnel?node=ID&action=ssh|exec|cp&detail=TEXT
//	                          upgrades to a raw byte stream to the node's SSH port
//	                          (409 as above for an ambiguous name)
//	GET  /mesh/...            the master's own mesh API
//
// Every request must name an allowed host (421 otherwise). Requests from other
// than loopback need the token (Authorization: Bearer, the skyfleet_token
// cookie, or ?token= which also sets the cookie for a browser).
func (m *Master) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", dashboard.Handler())
	mux.Handle("/mesh/", m.Node.Router.Handler())
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, _ *http.Request) {
		nodes, _ := m.Registry.Nodes(time.Now())
		st := Status{
			Address: m.Node.Router.Address(), PublicKey: hex.EncodeToString(m.pub), Version: m.opts.Version,
			Nodes: len(nodes), ReportIntervalS: m.opts.Config.Master.Interval().Seconds(),
			RegistryRecovery: m.Registry.Recovery(), TLSPin: m.TLSPin,
		}
		for _, n := range nodes {
			if n.Online {
				st.Online++
			}
			if n.DuplicateName {
				st.DuplicateNames++
			}
		}
		if r, err := m.Registry.Refusals(0); err == nil {
			st.Refusals, st.RefusalsDropped = r.Kept, r.Dropped
		}
		st.CorruptRecords = m.Registry.CorruptRecords()
		for _, l := range m.Node.Router.Links() {
			if l.Up {
				st.LinksUp++
			}
		}
		writeJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("GET /api/nodes", m.serveNodes)
	mux.HandleFunc("GET /api/nodes/{id}", func(w http.ResponseWriter, r *http.Request) {
		d, err := m.Registry.Lookup(r.PathValue("id"), time.Now())
		if err != nil {
			writeLookupError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, d)
	})
	mux.HandleFunc("GET /api/graph", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, m.graph())
	})
	mux.HandleFunc("GET /api/log", m.serveLog)
	mux.HandleFunc("POST /api/log", m.postLog)
	mux.HandleFunc("GET /api/refusals", func(w http.ResponseWriter, r *http.Request) {
		ref, err := m.Registry.Refusals(limit(r))
		if err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		writeJSON(w, http.StatusOK, ref)
	})
	mux.HandleFunc("POST /api/tunnel", m.serveTunnel)
	return m.checkHost(m.auth(mux))
}

// limit is the request's ?limit=, 200 if unset or not a positive number.
func limit(r *http.Request) int {
	if v, err := strconv.Atoi(r.URL.Query().Get("limit")); err == nil && v > 0 {
		return v
	}
	return 200
}

// serveLog is GET /api/log: the operator's actions and the refusals, each read
// from its own log, merged newest first.
func (m *Master) serveLog(w http.ResponseWriter, r *http.Request) {
	n := limit(r)
	kind := r.URL.Query().Get("kind")
	if kind != "" && kind != "actions" && kind != "refusals" {
		writeError(w, http.StatusBadRequest, fmt.Errorf("kind is actions or refusals, not %q", kind))
		return
	}
	out := []registry.Action{}
	if kind != "refusals" {
		a, err := m.Registry.Actions(n)
		if err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		out = append(out, a...)
	}
	if kind != "actions" {
		ref, err := m.Registry.Refusals(n)
		if err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		out = append(out, ref.Refusals...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.After(out[j].Time) })
	writeJSON(w, http.StatusOK, out[:min(n, len(out))])
}

// Limits of POST /api/log's fields, in bytes.
const (
	maxLogBody   = 8 << 10
	maxLogNode   = 256
	maxLogAction = 32
	maxLogDetail = 4 << 10
)

// postLog is POST /api/log: the CLI's record of how a remote action ended. It
// takes JSON only: a cross-site HTML form can post text/plain or a form
// encoding without asking, but never application/json. No field may hold a
// control or line-breaking character, so an entry cannot forge a line of the
// master's log.
func (m *Master) postLog(w http.ResponseWriter, r *http.Request) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, fmt.Errorf("want Content-Type application/json, not %q", r.Header.Get("Content-Type")))
		return
	}
	var a registry.Action
	dec := json.NewDecoder(io.LimitReader(r.Body, maxLogBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("want a JSON action {node, action, detail}: %v", err))
		return
	}
	if err := checkAction(a.Action); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if err := checkText("node", a.Node, maxLogNode); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if err := checkText("detail", a.Detail, maxLogDetail); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	a.Time = time.Now()
	m.logAction(a.Node, a.Action, a.Detail)
	w.WriteHeader(http.StatusNoContent)
}

// checkAction accepts the actions the CLI logs: a lower-case word such as
// ssh, exec or cp; "refused" is the refusal log's.
func checkAction(a string) error {
	if a == "" || len(a) > maxLogAction || a == "refused" || strings.TrimLeft(a, "abcdefghijklmnopqrstuvwxyz-") != "" {
		return fmt.Errorf("action must be a lower-case word such as ssh, exec or cp, not %q", a)
	}
	return nil
}

// checkText refuses text that is not UTF-8, longer than max bytes, or holds a
// control character (a newline would start a forged line in the master's log,
// an escape sequence would drive the terminal showing it), a line or paragraph
// separator, or a formatting character (bidirectional overrides reorder what
// the operator sees).
func checkText(field, s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%s is longer than %d bytes", field, max)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not UTF-8", field)
	}
	for _, c := range s {
		if unicode.In(c, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp) {
			return fmt.Errorf("%s holds the control character %U: quote it", field, c)
		}
	}
	return nil
}

func (m *Master) serveNodes(w http.ResponseWriter, r *http.Request) {
	nodes, err := m.Registry.Nodes(time.Now())
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	q := r.URL.Query()
	out := nodes[:0]
	for _, n := range nodes {
		if o := q.Get("online"); o != "" && strconv.FormatBool(n.Online) != o {
			continue
		}
		if s := q.Get("q"); s != "" && !strings.Contains(n.Name+" "+n.Address+" "+n.Version+" "+n.Board, s) {
			continue
		}
		out = append(out, n)
	}
	writeJSON(w, http.StatusOK, out)
}

func (m *Master) graph() Graph {
	self := m.Node.Router.Address()
	g := Graph{Nodes: []GraphNode{{Address: self, Name: "master", Online: true, Master: true}}, Edges: []GraphEdge{}}
	for _, l := range m.Node.Router.Links() {
		g.Edges = append(g.Edges, GraphEdge{From: self, To: l.Address, Up: l.Up, RTTms: l.RTTms, Loss: l.Loss})
	}
	entries, _ := m.Registry.Reports(time.Now())
	for _, e := range entries {
		n := e.Node
		g.Nodes = append(g.Nodes, GraphNode{Address: n.Address, Name: n.Name, Online: n.Online})
		if !n.Online {
			continue // its links are as old as its last report
		}
		for _, l := range e.Report.Links {
			if l.Address == self {
				continue // the master's own view of that link is fresher
			}
			g.Edges = append(g.Edges, GraphEdge{From: n.Address, To: l.Address, Up: l.Up, RTTms: l.RTTms, Loss: l.Loss})
		}
	}
	return g
}

// allowedHosts are the names besides IP addresses and localhost the master
// answers to: this machine's host name (also as name.local, for mDNS) and the
// operator's extra names.
func allowedHosts(extra []string) map[string]bool {
	hosts := map[string]bool{}
	add := func(h string) {
		if h = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), "."); h != "" {
			hosts[h] = true
		}
	}
	if h, err := os.Hostname(); err == nil {
		add(h)
		if short, _, _ := strings.Cut(h, "."); short != "" {
			add(short)
			add(short + ".local")
		}
	}
	for _, h := range extra {
		add(h)
	}
	return hosts
}

// hostAllowed says whether a Host header names this master. IP addresses pass
// whatever they are: DNS rebinding needs a name the attacker's DNS answers for,
// and a page that reaches the master by its address is the master's own. The
// port is not checked, for the same reason (and an SSH tunnel changes it).
func (m *Master) hostAllowed(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.TrimSuffix(strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")), ".")
	if h == "" {
		return false
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	return h == "localhost" || strings.HasSuffix(h, ".localhost") || m.hosts[h]
}

// checkHost refuses requests whose Host header does not name this master, with
// 421 Misdirected Request.
func (m *Master) checkHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !m.hostAllowed(r.Host) {
			if skipped, ok := m.hostLog.Allow(time.Now()); ok {
				m.opts.Logf("master: refused %s %q from %s: Host %q is not this master's (%d more refused since the last line)", r.Method, r.URL.Path, r.RemoteAddr, r.Host, skipped)
			}
			writeError(w, http.StatusMisdirectedRequest, fmt.Errorf("this master does not answer to the host name %q (a guard against DNS rebinding): use its IP address or localhost, or start it with --allow-host NAME", r.Host))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// auth lets loopback through and asks everyone else for the token.
func (m *Master) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if OnLoopback(r.RemoteAddr) {
			next.ServeHTTP(w, r)
			return
		}
		got := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if c, err := r.Cookie("skyfleet_token"); err == nil && got == "" {
			got = c.Value
		}
		fromQuery := false
		if t := r.URL.Query().Get("token"); t != "" {
			got, fromQuery = t, true
		}
		if subtle.ConstantTimeCompare([]byte(got), []byte(m.token)) != 1 {
			m.opts.Logf("master: refused %s %s from %s: no valid token", r.Method, r.URL.Path, r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="skyfleet master"`)
			writeError(w, http.StatusUnauthorized, errors.New("this master needs its API token (see master.token in its data directory)"))
			return
		}
		if fromQuery {
			// Secure: a cookie set over TLS is never sent back in the clear.
			http.SetCookie(w, &http.Cookie{Name: "skyfleet_token", Value: got, Path: "/", HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
		}
		next.ServeHTTP(w, r)
	})
}

// serveTunnel upgrades the request's connection to a raw byte stream spliced to
// the node's SSH port through the mesh. The SSH session inside is between the
// operator's CLI (which holds the master key) and the node; the master logs that
// the tunnel was opened, for what, and when it closed.
func (m *Master) serveTunnel(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), TunnelProtocol) {
		writeError(w, http.StatusBadRequest, fmt.Errorf("want Upgrade: %s", TunnelProtocol))
		return
	}
	q := r.URL.Query()
	action, detail := q.Get("action"), q.Get("detail")
	if action == "" {
		action = "ssh"
	}
	if err := checkAction(action); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if err := checkText("detail", detail, maxLogDetail); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	id := q.Get("node")
	key, addr, err := m.resolve(id)
	if err != nil {
		writeLookupError(w, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 20*time.Second)
	conn, err := m.Node.Router.Dial(ctx, key, control.SSHPort)
	cancel()
	if err != nil {
		m.logAction(addr, action, fmt.Sprintf("%s: could not reach the node: %v", detail, err))
		writeError(w, http.StatusBadGateway, fmt.Errorf("node %s: %w", addr, err))
		return
	}
	defer conn.Close()
	hj, ok := w.(http.Hijacker)
	if !ok {
		writeError(w, http.StatusInternalServerError, errors.New("connection cannot be upgraded"))
		return
	}
	c, rw, err := hj.Hijack()
	if err != nil {
		return
	}
	defer c.Close()
	// The server's read and write timeouts set deadlines on the connection
	// for the request; the tunnel lives as long as the session.
	c.SetDeadline(time.Time{})
	m.logAction(addr, action, detail+" (tunnel from "+r.RemoteAddr+")")
	writeSwitch(rw, key[:])
	if err := rw.Flush(); err != nil {
		return
	}
	start := time.Now()
	splice(conn, c, rw.Reader)
	m.opts.Logf("master: tunnel to %s (%s) closed after %s", addr, action, time.Since(start).Round(time.Millisecond))
}

// writeSwitch writes the tunnel's 101 answer, naming the node's key.
func writeSwitch(w io.Writer, key []byte) {
	fmt.Fprintf(w, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: %s\r\nConnection: Upgrade\r\n%s: %x\r\n\r\n",
		TunnelProtocol, NodeKeyHeader, key)
}

// logAction writes an operator's action to the master's log (quoted: the
// detail is what the operator typed) and to the registry's action log.
func (m *Master) logAction(node, action, detail string) {
	m.opts.Logf("master: remote %s on %q: %q", action, node, detail)
	if err := m.Registry.LogAction(registry.Action{Time: time.Now(), Node: node, Action: action, Detail: detail}); err != nil {
		m.opts.Logf("master: registry: %v", err)
	}
}

// resolve finds a node's key by registry name/address/key, or a mesh address
// or key (a node that has not reported yet). A name must be one node's: an
// ambiguous name is an error (*registry.AmbiguousNameError), never a guess,
// and the mesh is not asked instead.
func (m *Master) resolve(id string) (topology.Key, string, error) {
	var k topology.Key
	d, err := m.Registry.Lookup(id, time.Now())
	if err == nil {
		b, _ := hex.DecodeString(d.Node.PublicKey)
		copy(k[:], b)
		return k, d.Node.Address, nil
	}
	if !errors.Is(err, registry.ErrUnknownNode) {
		return k, "", err
	}
	k, err = m.Node.Router.Resolve(id)
	if err != nil {
		return k, "", fmt.Errorf("%w: no node %q in the registry or the mesh: %v", registry.ErrUnknownNode, id, err)
	}
	return k, addressOf(k[:]), nil
}

// writeLookupError answers a failed node lookup: 404 for an unknown node, 409
// with the candidates (registry.AmbiguousNameError's JSON and its message as
// "error") for a name several nodes report, 500 otherwise.
func writeLookupError(w http.ResponseWriter, err error) {
	var amb *registry.AmbiguousNameError
	switch {
	case errors.As(err, &amb):
		writeJSON(w, http.StatusConflict, ambiguousBody{Error: amb.Error(), AmbiguousNameError: amb})
	case errors.Is(err, registry.ErrUnknownNode):
		writeError(w, http.StatusNotFound, err)
	default:
		writeError(w, http.StatusInternalServerError, err)
	}
}

// ambiguousBody is the 409 answer to a lookup of an ambiguous name.
type ambiguousBody struct {
	Error string `json:"error"`
	*registry.AmbiguousNameError
}

// splice copies both ways until one side ends, then closes both.
func splice(a net.Conn, b net.Conn, br *bufio.Reader) {
	done := make(chan struct{}, 2)
	go func() {
		io.Copy(a, br) // br holds anything the client sent after its request
		if cw, ok := a.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		done <- struct{}{}
	}()
	go func() {
		io.Copy(b, a)
		done <- struct{}{}
	}()
	<-done
	a.Close()
	b.Close()
	<-done
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}
