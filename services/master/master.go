// Package master is the fleet master (`skyfleet master`, issue 4): a mesh node
// running with the operator's master key, the report receiver that feeds the
// registry, and the operator's HTTP side: the dashboard, the JSON API and the
// tunnels `skyfleet ssh/exec/cp` open to a node's SSH port through the mesh.
//
// Only the operator may reach it: [node] status is loopback by default, and a
// request from any other address must carry the token in <data>/master.token.
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
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/skyfleet/skyfleet/internal/fleetconf"
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
}

// Master is a running master.
type Master struct {
	Node     *meshd.Node
	Registry *registry.Registry
	// URL is where the dashboard is served, e.g. http://127.0.0.1:8080/.
	URL   string
	token string
	opts  Options
	pub   []byte
}

// Run starts the master and serves until ctx ends. Errors: no key, the data
// directory or registry cannot be used (another master has it open), the mesh or
// the status address cannot be opened.
func Run(ctx context.Context, opts Options) error {
	if opts.Key == nil {
		return errors.New("master: no master key")
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
	token, err := loadToken(filepath.Join(cfg.Node.Data, TokenFile))
	if err != nil {
		return err
	}
	node, err := meshd.Start(ctx, meshd.Options{
		Config: cfg, Problems: opts.Problems, Version: opts.Version, Logf: opts.Logf,
		Key: opts.Key, AnnounceInterval: opts.AnnounceInterval,
	})
	if err != nil {
		return err
	}
	defer node.Close()
	m := &Master{Node: node, Registry: reg, token: token, opts: opts, pub: opts.Key.PublicKey()}

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
				opts.Logf("master: node %s (%s) registered", n.Address, n.Name)
			}
			return err
		},
		Refused: m.refused,
	}
	go rc.Serve(reports)
	go m.sweep(ctx)

	ln := opts.Listener
	if ln == nil {
		ln, err = net.Listen("tcp", cfg.Node.Status)
		if err != nil {
			return fmt.Errorf("dashboard on %s: %w", cfg.Node.Status, err)
		}
	}
	m.URL = "http://" + ln.Addr().String() + "/"
	return meshd.Serve(ctx, ln, m.Handler(), func() {
		opts.Logf("master %s: dashboard and API on %s (token in %s for other hosts)", node.Router.Address(), m.URL,
			filepath.Join(cfg.Node.Data, TokenFile))
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

// refused logs a refused report on the master and in the registry's action log.
func (m *Master) refused(from []byte, err error) {
	addr := addressOf(from)
	m.opts.Logf("master: refused report from %s: %v", addr, err)
	m.Registry.LogAction(registry.Action{Time: time.Now(), Node: addr, Action: "refused", Detail: "report: " + err.Error()})
}

// sweep marks quiet nodes offline every 2 s.
func (m *Master) sweep(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
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
				m.opts.Logf("master: node %s (%s) offline: last report at %s", n.Address, n.Name, n.LastSeen.Format(time.TimeOnly))
			}
		}
	}
}

// loadToken reads the API token, making a random one on first start.
func loadToken(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		if t := strings.TrimSpace(string(b)); len(t) >= 32 {
			return t, nil
		}
		return "", fmt.Errorf("master: %s holds no usable token (delete it to make a new one)", path)
	} else if !os.IsNotExist(err) {
		return "", err
	}
	var b [24]byte
	rand.Read(b[:])
	t := hex.EncodeToString(b[:])
	if err := os.WriteFile(path, []byte(t+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("master: writing the API token: %w", err)
	}
	return t, nil
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
//	GET  /api/graph           Graph
//	GET  /api/log             []registry.Action, newest first (?limit=N, default 200)
//	POST /api/log             appends one registry.Action (JSON) from the CLI
//	POST /api/tunnel?node=ID&action=ssh|exec|cp&detail=TEXT
//	                          upgrades to a raw byte stream to the node's SSH port
//	GET  /mesh/...            the master's own mesh API
//
// Requests from other than loopback need the token (Authorization: Bearer, the
// skyfleet_token cookie, or ?token= which also sets the cookie for a browser).
func (m *Master) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", dashboard.Handler())
	mux.Handle("/mesh/", m.Node.Router.Handler())
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, _ *http.Request) {
		nodes, _ := m.Registry.Nodes(time.Now())
		st := Status{
			Address: m.Node.Router.Address(), PublicKey: hex.EncodeToString(m.pub), Version: m.opts.Version,
			Nodes: len(nodes), ReportIntervalS: m.opts.Config.Master.Interval().Seconds(),
		}
		for _, n := range nodes {
			if n.Online {
				st.Online++
			}
		}
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
		if errors.Is(err, registry.ErrUnknownNode) {
			writeError(w, http.StatusNotFound, err)
			return
		} else if err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		writeJSON(w, http.StatusOK, d)
	})
	mux.HandleFunc("GET /api/graph", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, m.graph())
	})
	mux.HandleFunc("GET /api/log", func(w http.ResponseWriter, r *http.Request) {
		limit := 200
		if v, err := strconv.Atoi(r.URL.Query().Get("limit")); err == nil && v > 0 {
			limit = v
		}
		a, err := m.Registry.Actions(limit)
		if err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		writeJSON(w, http.StatusOK, a)
	})
	mux.HandleFunc("POST /api/log", func(w http.ResponseWriter, r *http.Request) {
		var a registry.Action
		if err := json.NewDecoder(io.LimitReader(r.Body, 8<<10)).Decode(&a); err != nil || a.Action == "" {
			writeError(w, http.StatusBadRequest, fmt.Errorf("want a JSON action {node, action, detail}: %v", err))
			return
		}
		a.Time = time.Now()
		m.opts.Logf("master: remote %s on %s: %s", a.Action, a.Node, a.Detail)
		m.Registry.LogAction(a)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /api/tunnel", m.serveTunnel)
	return m.auth(mux)
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

// auth lets loopback through and asks everyone else for the token.
func (m *Master) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil && ap.Addr().Unmap().IsLoopback() {
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
			http.SetCookie(w, &http.Cookie{Name: "skyfleet_token", Value: got, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
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
	id := q.Get("node")
	key, addr, err := m.resolve(id)
	if err != nil {
		writeError(w, http.StatusNotFound, err)
		return
	}
	action, detail := q.Get("action"), q.Get("detail")
	if action == "" {
		action = "ssh"
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
	m.logAction(addr, action, detail+" (tunnel from "+r.RemoteAddr+")")
	fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: %s\r\nConnection: Upgrade\r\n%s: %x\r\n\r\n",
		TunnelProtocol, NodeKeyHeader, key[:])
	if err := rw.Flush(); err != nil {
		return
	}
	start := time.Now()
	splice(conn, c, rw.Reader)
	m.opts.Logf("master: tunnel to %s (%s) closed after %s", addr, action, time.Since(start).Round(time.Millisecond))
}

func (m *Master) logAction(node, action, detail string) {
	m.opts.Logf("master: remote %s on %s: %s", action, node, detail)
	m.Registry.LogAction(registry.Action{Time: time.Now(), Node: node, Action: action, Detail: detail})
}

// resolve finds a node's key by registry name/address/key, or a mesh address.
func (m *Master) resolve(id string) (topology.Key, string, error) {
	var k topology.Key
	if d, err := m.Registry.Lookup(id, time.Now()); err == nil {
		b, _ := hex.DecodeString(d.Node.PublicKey)
		copy(k[:], b)
		return k, d.Node.Address, nil
	}
	k, err := m.Node.Router.Resolve(id)
	if err != nil {
		return k, "", fmt.Errorf("no node %q in the registry or the mesh: %w", id, err)
	}
	return k, addressOf(k[:]), nil
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
