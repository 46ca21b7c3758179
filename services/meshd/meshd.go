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
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/net/netutil"

	"github.com/skyfleet/skyfleet/drivers/radio/ax25"
	"github.com/skyfleet/skyfleet/internal/apiauth"
	"github.com/skyfleet/skyfleet/internal/fleetconf"
	"github.com/skyfleet/skyfleet/internal/walltime"
	"github.com/skyfleet/skyfleet/services/control"
	"github.com/skyfleet/skyfleet/services/identity"
	"github.com/skyfleet/skyfleet/services/mesh"
	"github.com/skyfleet/skyfleet/services/mesh/discovery"
	"github.com/skyfleet/skyfleet/services/mesh/radio"
	"github.com/skyfleet/skyfleet/services/mesh/transport"
	"github.com/skyfleet/skyfleet/services/msg"
	"github.com/skyfleet/skyfleet/services/msg/web"
	"github.com/skyfleet/skyfleet/services/saf"
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
	// TrustedListener says Listener is a Unix socket that only root on this
	// machine can reach (skyfleetd's mesh socket, behind the status service that
	// enforces access itself): every request on it is served without asking for
	// a credential. Otherwise only GET /status is public and everything else
	// needs the master's signature or the API token (package apiauth).
	TrustedListener bool
	// TrustSystemClock says the host's clock keeps real time (a host with a
	// real-time clock and its own time daemon, as under `skyfleet node`): the
	// node's wall clock takes it from the start. A Pi has no real-time clock and
	// boots at 1970, so skyfleetd leaves this false and the time comes from
	// [time] servers and the mesh.
	TrustSystemClock bool
	// USBSticks imports and exports the bundles of every USB stick plugged in
	// with a skyfleet-bundles/ folder (package usbstick; Linux, as root):
	// skyfleetd on a Pi sets it, `skyfleet node` on a host does not.
	USBSticks bool
}

// Node is a running mesh node.
type Node struct {
	// Router is the mesh router; nil when the node refuses every link because
	// fleet.toml failed closed (see Refused).
	Router  *mesh.Router
	Key     *identity.Key
	Created bool // the key was made on this start
	Status  string
	// Refused, when not "", says why the node opened no transport and links with
	// nobody: fleet.toml has a problem that fails closed (fleetconf.FailClosed).
	Refused string
	// Radios are the radio channels among the node's transports ([node]
	// listen's kiss+ and afsk+ entries), in listen order, for their counters.
	Radios []*radio.Transport
	// Guard enforces the API's access classes; nil when TrustedListener.
	Guard   *apiauth.Guard
	started time.Time
	opts    Options
	disc    *discovery.Discovery

	// SAF is the store-and-forward engine and Msg the messaging service; nil
	// while the node refuses every link.
	SAF      *saf.Engine
	Msg      *msg.Service
	safStore *saf.Store
	// Wall is the node's wall-clock time (package walltime, see wallclock.go).
	Wall *walltime.Clock

	stopControl func()
	master      masterLink // reports to the master, when one is configured
	stopSticks  func()     // stops the USB stick watcher; nil unless it runs
	stopWall    func()     // stops the clock's goroutines; nil until they run
	untime      func()     // stops stamping announcements with the time
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
	h := n.Handler()
	if !opts.TrustedListener {
		tok, err := apiauth.LoadOrCreateToken(opts.Config.Node.Data)
		if err != nil {
			return err
		}
		var master []byte
		if b, err := hex.DecodeString(opts.Config.Master.PublicKey); err == nil && len(b) == 33 {
			master = b
		}
		n.Guard, err = apiauth.NewGuard(apiauth.Config{Node: n.Key.PublicKey(), Master: master, Token: tok, Logf: opts.Logf,
			Messaging: apiauth.MessagingConfig{Passphrase: opts.Config.Messaging.Passphrase, Open: opts.Config.Messaging.Open}})
		if err != nil {
			return err
		}
		h = n.Guard.Handler(n.Routes())
	}
	return Serve(ctx, ln, h, func() {
		n.logf("node %s: status API on http://%s (control paths need the master's signature or the token in %s)",
			n.Address(), n.Status, filepath.Join(opts.Config.Node.Data, apiauth.TokenFile))
		if n.Guard != nil {
			n.logf("node %s: messaging page for phones on http://%s/msg/ (messaging %s)", n.Address(), n.Status, n.Guard.Stats().Messaging)
		}
		if opts.Ready != nil {
			opts.Ready(n)
		}
	})
}

// HTTP server limits shared by the node's API and the master's. A stranger who
// opens connections and sends nothing, or a request slowly, is cut off; the
// handlers that carry long transfers (POST /mesh/send, GET /mesh/recv) extend
// their own deadlines through http.ResponseController.
const (
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = 90 * time.Second // above /mesh/ping's longest wait (60 s)
	IdleTimeout       = 120 * time.Second
	MaxHeaderBytes    = 16 << 10
	// MaxConns caps the API's open connections; more wait in the kernel's
	// accept queue until one closes.
	MaxConns = 256
)

// NewServer returns an http.Server for h with the limits above.
func NewServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: ReadHeaderTimeout, ReadTimeout: ReadTimeout,
		WriteTimeout: WriteTimeout, IdleTimeout: IdleTimeout, MaxHeaderBytes: MaxHeaderBytes}
}

// Limit caps ln at MaxConns open connections, MaxConnsPerSource of them from
// one source address: the kernel's accept queue holds the rest until one
// closes, and a source over its share is closed at once. Serve applies it; a
// listener that does work per connection before Serve sees it (the master's
// TLS sniffer) applies it beneath that work too.
func Limit(ln net.Listener) net.Listener {
	return netutil.LimitListener(limitPerSource(ln, MaxConnsPerSource), MaxConns)
}

// Serve serves h on ln until ctx ends (then shuts down, giving requests 2 s) or the
// server fails, with NewServer's limits and at most MaxConns connections at once,
// MaxConnsPerSource of them from one source address.
// started, if set, runs once the server runs.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, started func()) error {
	srv := NewServer(h)
	ln = Limit(ln)
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

// Start brings the node up without serving the API. When fleet.toml failed
// closed (fleetconf.FailClosed), it loads the key but opens no transport, starts
// no discovery and no fleet control: the node serves its status, with the
// errors, and links with nobody until the file is fixed and the node restarted.
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
	n := &Node{Key: key, Created: created, started: time.Now(), opts: opts}
	if err := n.openWall(); err != nil {
		return nil, fmt.Errorf("wall clock: %w", err)
	}
	if fleetconf.FailClosed(opts.Problems) {
		n.Refused = "fleet.toml has errors that would leave this node open (see config_errors): it links with nobody until they are fixed and the node restarts"
		opts.Logf("REFUSING every mesh link: %s", n.Refused)
		for _, p := range opts.Problems {
			if p.Fatal {
				opts.Logf("  %s", p)
			}
		}
		n.runWall(ctx)
		return n, nil
	}
	clk, err := OpenClock(cfg.Node.Data, opts.Logf)
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
	var callsign ax25.Address
	if cfg.Radio.Callsign != "" {
		var err error
		if callsign, err = ax25.ParseAddress(cfg.Radio.Callsign); err != nil {
			return nil, fmt.Errorf("[radio] callsign: %w", err) // fleetconf checked it
		}
	}
	for _, u := range cfg.Node.Listen {
		if fleetconf.IsRadioListen(u) {
			// Without a callsign it receives only (config_errors says so).
			// A device that is not there yet is retried in the background;
			// an entry radio cannot honour (a bad option) leaves that
			// channel closed, said in config_errors, and the rest of the
			// node running: a typo in a radio option must not take the IP
			// mesh down with it.
			rt, err := radio.Listen(u, callsign, opts.Logf)
			if err != nil {
				opts.Logf("radio channel %s not opened: %v", u, err)
				n.opts.Problems = append(n.opts.Problems, fleetconf.Problem{Key: "node.listen",
					Message: fmt.Sprintf("%v: the channel stays closed until fleet.toml is fixed and the node restarts", err)})
				continue
			}
			n.Radios = append(n.Radios, rt)
			trs = append(trs, rt)
			continue
		}
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
		Clock:          clk.Next,
		Logf:           opts.Logf,

		AnnounceInterval: opts.AnnounceInterval,
		// [network] link_timeout: a link is pinged six times in it, so one or
		// two lost pings never end it.
		DeadAfter:    cfg.Network.Timeout(),
		PingInterval: cfg.Network.Timeout() / 6,
	})
	if err != nil {
		return nil, err
	}
	n.stampAnnouncements() // before Start, which signs the first announcement
	if err := r.Start(ctx); err != nil {
		n.closeWall()
		return nil, err
	}
	n.Router = r
	if len(master) == 33 && !isMaster {
		if err := n.startControl(ctx, master, clk.Next); err != nil {
			r.Close()
			n.closeWall()
			return nil, err
		}
	}
	if err := n.startMessaging(ctx, psk); err != nil {
		n.Close()
		return nil, err
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
	n.runWall(ctx)
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
	if n.stopSticks != nil {
		n.stopSticks()
	}
	if n.SAF != nil {
		n.SAF.Close()
	}
	if n.safStore != nil {
		n.safStore.Close()
	}
	if n.Msg != nil {
		n.Msg.Close()
	}
	n.closeWall() // writes the floor
	if n.Router == nil {
		return nil
	}
	return n.Router.Close()
}

// Address returns the node's address (Skycoin format), whether or not it links.
func (n *Node) Address() string { return n.Key.Address().String() }

func (n *Node) logf(format string, args ...any) { n.opts.Logf(format, args...) }

// NodeStatus is the /status document of `skyfleet node`. It is public: nothing
// in it may be secret (config_errors never hold a secret value).
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
	// LinksRefused, when set, says why this node links with nobody.
	LinksRefused string `json:"links_refused,omitempty"`
	// API counts refused and admitted control requests (absent on a trusted socket).
	API *apiauth.Stats `json:"api,omitempty"`
	// Clock is the node's wall-clock time: whether it knows the date, from
	// where, how well, and the clock's counts (walltime.Status).
	Clock *walltime.Status `json:"clock,omitempty"`
	// Master is the link to the master fleet.toml names: how many reports it
	// acknowledged; absent when no master is configured.
	Master *MasterLink `json:"master,omitempty"`
	// Radio lists the radio channels, each with its counters (frames,
	// airtime, datagrams refused for want of a callsign); absent without one.
	Radio []RadioChannel `json:"radio,omitempty"`
}

// RadioChannel is one radio channel in /status.
type RadioChannel struct {
	// Listen is the fleet.toml listen entry.
	Listen string `json:"listen"`
	// Callsign is the AX.25 source of what it transmits; "" when the node
	// has none and the channel only receives.
	Callsign string      `json:"callsign"`
	Stats    radio.Stats `json:"stats"`
}

// State returns the node's status document.
func (n *Node) State() NodeStatus {
	st := NodeStatus{
		Address:       n.Address(),
		PublicKey:     hex.EncodeToString(n.Key.PublicKey()),
		Name:          n.opts.Config.Node.Name,
		Version:       n.opts.Version,
		UptimeSeconds: time.Since(n.started).Seconds(),
		Listen:        n.opts.Config.Node.Listen,
		ConfigErrors:  n.opts.Problems,
		LinksRefused:  n.Refused,
	}
	if st.ConfigErrors == nil {
		st.ConfigErrors = []fleetconf.Problem{}
	}
	if n.Guard != nil {
		s := n.Guard.Stats()
		st.API = &s
	}
	if n.Wall != nil {
		c := n.Wall.Status()
		st.Clock = &c
	}
	st.Master = n.master.status(time.Now())
	for _, rt := range n.Radios {
		st.Radio = append(st.Radio, RadioChannel{Listen: rt.URL(), Callsign: rt.Callsign(), Stats: rt.Stats()})
	}
	if n.Router == nil {
		st.Listen = []string{}
		return st
	}
	st.Nodes = len(n.Router.Graph().Nodes())
	for _, l := range n.Router.Links() {
		if l.Up {
			st.LinksUp++
		}
	}
	return st
}

// Routes is the node's API and who may call each path (package apiauth):
//
//	GET /status, GET /   public   NodeStatus
//	/mesh/...            control  the router's API (mesh.Router.Handler); 503
//	                              while the node refuses every link
//	/saf/...             control  store and forward (saf.Engine.Handler); 503 likewise
//	/msg/...             as web.Routes declares: the phone page and its login
//	                     public, send/inbox/outbox/stats messaging, the rest
//	                     control; messages (msg.Service.Handler), 503 likewise
//
// Run serves them behind a Guard; on a trusted socket they are served as they are.
func (n *Node) Routes() []apiauth.Route {
	status := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, n.State()) })
	var meshAPI http.Handler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		json.NewEncoder(w).Encode(map[string]string{"error": n.Refused})
	})
	safAPI, msgAPI := meshAPI, meshAPI
	if n.Router != nil {
		meshAPI = n.Router.Handler()
		safAPI = n.SAF.Handler()
		msgAPI = n.Msg.Handler(n.resolve)
	}
	return append([]apiauth.Route{
		{Pattern: "GET /status", Access: apiauth.Public, Handler: status},
		{Pattern: "GET /{$}", Access: apiauth.Public, Handler: status},
		{Pattern: "/mesh/", Access: apiauth.Control, Handler: meshAPI},
		{Pattern: "/saf/", Access: apiauth.Control, Handler: safAPI},
	}, web.Routes(n.Guard, msgAPI)...)
}

// Handler serves Routes without asking for credentials: for a trusted socket,
// or behind a server that enforces access itself.
func (n *Node) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range n.Routes() {
		mux.Handle(rt.Pattern, rt.Handler)
	}
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
