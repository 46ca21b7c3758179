// Package meshd runs a mesh node from fleet.toml: the node key in [node] data, the
// transports of [node] listen, the peers, relays and LAN discovery of [network], the
// router, and the HTTP status API on [node] status. `skyfleet node` on a host and the
// mesh service of skyfleetd on a Pi both run it, so a host mesh tests the device code.
package meshd

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/skyfleet/skyfleet/internal/fleetconf"
	"github.com/skyfleet/skyfleet/services/control"
	"github.com/skyfleet/skyfleet/services/identity"
	"github.com/skyfleet/skyfleet/services/mesh"
	"github.com/skyfleet/skyfleet/services/mesh/discovery"
	"github.com/skyfleet/skyfleet/services/mesh/transport"
)

// Options configure Run.
type Options struct {
	// Config is the parsed fleet.toml; Problems its config_errors, shown in /status.
	Config   fleetconf.Config
	Problems []fleetconf.Problem
	// Version is the software version shown in /status.
	Version string
	// Logf receives log lines. Default: discard.
	Logf func(format string, args ...any)
	// Listener, if set, serves the status API instead of listening on
	// Config.Node.Status (a Unix socket under skyfleetd, a test's listener).
	Listener net.Listener
	// Ready, if set, is called once the router runs and the API listens.
	Ready func(n *Node)
	// Key, if set, is the node key to use instead of node.key in [node] data (the
	// master runs with the key file the operator made).
	Key *identity.Key
	// Describe, if set, fills what the node reports to its master beyond the mesh:
	// board, slot, uptime and service states (PID 1 knows them on a Pi). Default:
	// board "host", the mesh service running, this process's uptime.
	Describe func() control.Report
	// AnnounceInterval overrides the router's gossip period (tests of big fleets).
	AnnounceInterval time.Duration
}

// Node is a running mesh node.
type Node struct {
	Router  *mesh.Router
	Key     *identity.Key
	Created bool // the key was made on this start
	Status  string
	started time.Time
	opts    Options
	disc    *discovery.Discovery

	stopControl func()
}

// Run starts the node and serves until ctx ends. Errors: the data directory or key
// cannot be used, a listen address cannot be opened, the status address is taken.
func Run(ctx context.Context, opts Options) error {
	n, err := Start(ctx, opts)
	if err != nil {
		return err
	}
	defer n.Close()
	ln := opts.Listener
	if ln == nil {
		ln, err = net.Listen("tcp", opts.Config.Node.Status)
		if err != nil {
			return fmt.Errorf("status API on %s: %w", opts.Config.Node.Status, err)
		}
	}
	n.Status = ln.Addr().String()
	return Serve(ctx, ln, n.Handler(), func() {
		n.logf("node %s: status API on http://%s", n.Router.Address(), n.Status)
		if opts.Ready != nil {
			opts.Ready(n)
		}
	})
}

// Serve serves h on ln until ctx ends (then shuts down, giving requests 2 s) or the
// server fails. started, if set, runs once the server runs.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, started func()) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if started != nil {
		started()
	}
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		return nil
	case err := <-errc:
		return err
	}
}

// Start brings the node up without serving the API.
func Start(ctx context.Context, opts Options) (*Node, error) {
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	cfg := opts.Config
	key, created := opts.Key, false
	if key == nil {
		var err error
		key, created, err = identity.LoadOrCreate(cfg.Node.Data, rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("node key in %s: %w", cfg.Node.Data, err)
		}
	}
	clock, err := Timestamps(cfg.Node.Data)
	if err != nil {
		return nil, fmt.Errorf("handshake clock: %w", err)
	}
	var psk [32]byte
	if b, err := cfg.Network.PSKBytes(); err != nil {
		return nil, err
	} else if b == nil {
		opts.Logf("WARNING: [network] psk is not set: using the all-zero network key, so any Skyfleet node can link to this one")
	} else {
		copy(psk[:], b)
	}
	var trs []mesh.Transport
	for _, u := range cfg.Node.Listen {
		tr, err := transport.Open(u)
		if err != nil {
			for _, t := range trs {
				t.Close()
			}
			return nil, fmt.Errorf("[node] listen %s: %w", u, err)
		}
		trs = append(trs, tr)
	}
	var peers []mesh.Peer
	ps, _ := cfg.Network.PeerList()
	for _, p := range ps {
		peers = append(peers, mesh.Peer{Network: p.Scheme, Address: p.Address, Key: p.PublicKey})
	}
	rs, _ := cfg.Network.RelayList()
	for _, p := range rs {
		peers = append(peers, mesh.Peer{Network: p.Scheme, Address: p.Address, Key: p.PublicKey, Relay: true})
	}
	master, _ := hex.DecodeString(cfg.Master.PublicKey)
	isMaster := bytes.Equal(master, key.PublicKey())
	if len(master) == 33 && !isMaster {
		// [master] addresses are hints: direct links to the master's key.
		for _, a := range cfg.Master.Addresses {
			if u, err := url.Parse(a); err == nil {
				peers = append(peers, mesh.Peer{Network: u.Scheme, Address: u.Host, Key: master})
			}
		}
	}
	r, err := mesh.New(mesh.Config{
		Key:            key.PrivateKey(),
		PSK:            psk,
		Transports:     trs,
		Peers:          peers,
		KnownPeersOnly: cfg.Network.KnownPeersOnly,
		Properties:     cfg.Network.Roles,
		Clock:          clock,
		Logf:           opts.Logf,

		AnnounceInterval: opts.AnnounceInterval,
	})
	if err != nil {
		return nil, err
	}
	if err := r.Start(ctx); err != nil {
		return nil, err
	}
	n := &Node{Router: r, Key: key, Created: created, started: time.Now(), opts: opts}
	if len(master) == 33 && !isMaster {
		if err := n.startControl(ctx, master, clock); err != nil {
			r.Close()
			return nil, err
		}
	}
	if cfg.Network.LANDiscovery {
		if port := udpPort(trs); port != 0 {
			d, err := discovery.Start(discovery.Config{
				PSK:       psk,
				PublicKey: key.PublicKey(),
				MeshPort:  port,
				Found:     r.Discovered,
			})
			if err != nil {
				opts.Logf("LAN discovery off: %v", err)
			} else {
				n.disc = d
			}
		}
	}
	return n, nil
}

// udpPort returns the port of the first UDP transport, 0 if none.
func udpPort(trs []mesh.Transport) uint16 {
	for _, t := range trs {
		if t.Network() != "udp" {
			continue
		}
		ap, err := netip.ParseAddrPort(strings.TrimPrefix(t.LocalAddr(), "udp://"))
		if err == nil {
			return ap.Port()
		}
	}
	return 0
}

// Close stops discovery, fleet control and the router.
func (n *Node) Close() error {
	if n.disc != nil {
		n.disc.Close()
	}
	if n.stopControl != nil {
		n.stopControl()
	}
	return n.Router.Close()
}

func (n *Node) logf(format string, args ...any) { n.opts.Logf(format, args...) }

// NodeStatus is the /status document of `skyfleet node`.
type NodeStatus struct {
	Address       string              `json:"address"`
	PublicKey     string              `json:"public_key"`
	Name          string              `json:"name,omitempty"`
	Version       string              `json:"version"`
	UptimeSeconds float64             `json:"uptime_s"`
	Listen        []string            `json:"listen"`
	LinksUp       int                 `json:"links_up"`
	Nodes         int                 `json:"nodes"` // in the topology, this one included
	ConfigErrors  []fleetconf.Problem `json:"config_errors"`
}

// State returns the node's status document.
func (n *Node) State() NodeStatus {
	st := NodeStatus{
		Address:       n.Router.Address(),
		PublicKey:     hex.EncodeToString(n.Key.PublicKey()),
		Name:          n.opts.Config.Node.Name,
		Version:       n.opts.Version,
		UptimeSeconds: time.Since(n.started).Seconds(),
		Listen:        n.opts.Config.Node.Listen,
		ConfigErrors:  n.opts.Problems,
		Nodes:         len(n.Router.Graph().Nodes()),
	}
	if st.ConfigErrors == nil {
		st.ConfigErrors = []fleetconf.Problem{}
	}
	for _, l := range n.Router.Links() {
		if l.Up {
			st.LinksUp++
		}
	}
	return st
}

// Handler serves GET /status (NodeStatus) and the router's /mesh/ API.
func (n *Node) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/mesh/", n.Router.Handler())
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, n.State())
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, n.State())
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
