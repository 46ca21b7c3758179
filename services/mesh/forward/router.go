// Package forward is the forwarding core of the Skyfleet mesh: encrypted links to
// neighbours over any Transport, flooding of signed neighbour lists, source routes
// set up hop by hop and forwarded by route ID, and per-hop store and forward with
// credits (docs/architecture.md §Mesh). What is addressed to this node goes up to
// the end-to-end layer (package services/mesh) through Upper.
//
// The layers, bottom up:
//
//   - Transport (transport.go): datagrams to endpoints; UDP and TCP in package
//     services/mesh/transport, radio later.
//   - link (package services/mesh/link): Noise IKpsk2 over secp256k1 per neighbour,
//     keys per direction, rekeyed every second of traffic, replay window; one
//     link.Table dispatches the handshakes and sessions.
//   - neighbour (neighbour.go): one link's session, queues and metrics; a datagram
//     carries several frames (wire.go).
//   - per-hop store and forward (sf.go, package services/mesh/perhop): a route's
//     data leaves a hop only into the next hop's credit and is kept until that hop
//     acknowledges it.
//   - topology (package services/mesh/topology): signed neighbour lists, the graph and
//     route search.
//   - forwarding (table.go, routes.go): Setup travels hop by hop along the source's
//     chosen path; each hop allocates a route ID and installs
//     (in-link, route ID) -> (out-link, next route ID); Confirm travels back.
//     Routes are one-way, but a destination can send back along one (a Back
//     frame) until its own route to the source is up: that answers a first
//     contact in one round trip.
package forward

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/skyfleet/skyfleet/services/identity"
	"github.com/skyfleet/skyfleet/services/mesh/link"
	"github.com/skyfleet/skyfleet/services/mesh/perhop"
	"github.com/skyfleet/skyfleet/services/mesh/topology"
	"github.com/skyfleet/skyfleet/services/mesh/transport"
)

// Peer is a configured neighbour: fleet.toml [network] peers and relays.
type Peer struct {
	// Network is the transport scheme, "udp" or "tcp".
	Network string
	// Address is the configured host:port.
	Address string
	// Key is the peer's 33-byte compressed public key.
	Key []byte
	// Relay marks a public node this node keeps an outbound link to so that it is
	// reachable through it from behind NAT.
	Relay bool
}

// Config configures a Router. Zero durations take the defaults given.
type Config struct {
	// Key is the node's static key; its public key is the node's mesh identity.
	Key *secp256k1.PrivateKey
	// PSK is the network key: datagrams made without it are dropped unanswered.
	PSK [32]byte
	// Transports carry the links; the router reads from all of them.
	Transports []Transport
	// Peers are static neighbours, redialled for as long as the router runs.
	Peers []Peer
	// KnownPeersOnly refuses links from keys not in Peers (or added with AddKnown).
	KnownPeersOnly bool
	// Properties are announced in gossip, e.g. "gateway", "master", "relay".
	Properties []string
	// Padding pads every link datagram to a multiple of this many bytes (0: none).
	Padding int
	// Routes is how many link-disjoint routes the router keeps to each destination it
	// talks to (multi-route). Default 2.
	Routes int
	// Clock returns monotonic handshake timestamps (link.Handshaker.Initiate); it must
	// keep increasing across restarts (see Timestamps). Default: wall-clock ns made
	// monotonic within the process.
	Clock func() uint64
	// Logf receives one line per notable event. Default: discard.
	Logf func(format string, args ...any)

	// PingInterval is how often each link is pinged for RTT and loss. Default 250 ms.
	PingInterval time.Duration
	// DeadAfter declares a link dead after this long without an authenticated
	// datagram. Default 1.5 s.
	DeadAfter time.Duration
	// RadioPingInterval and RadioDeadAfter are PingInterval and DeadAfter for
	// links over amateur transports (transport.go), where one ping and its
	// answer take a few seconds of a shared channel. Defaults 60 s and 200 s
	// (three pings lost, and their round trips).
	RadioPingInterval time.Duration
	RadioDeadAfter    time.Duration
	// AnnounceInterval is how often the node re-floods its neighbour list even when
	// nothing changed. Default 10 s; entries expire after 4.5 intervals.
	AnnounceInterval time.Duration
	// RouteIdle removes forwarding rules unused for this long. Default 30 s.
	RouteIdle time.Duration
	// PlainForwarding turns per-hop store and forward off (sf.go): route data
	// crosses links without link acks or credit, a full queue drops, and only
	// end-to-end retransmission recovers a loss. It is the forwarding before
	// store and forward, kept as the baseline its benchmarks compare against;
	// every node of a mesh must agree on it.
	PlainForwarding bool
}

func (c *Config) defaults() {
	if c.PingInterval == 0 {
		c.PingInterval = 250 * time.Millisecond
	}
	if c.DeadAfter == 0 {
		c.DeadAfter = 1500 * time.Millisecond
	}
	if c.RadioPingInterval == 0 {
		c.RadioPingInterval = time.Minute
	}
	if c.RadioDeadAfter == 0 {
		c.RadioDeadAfter = 200 * time.Second
	}
	if c.AnnounceInterval == 0 {
		c.AnnounceInterval = 10 * time.Second
	}
	if c.RouteIdle == 0 {
		c.RouteIdle = 30 * time.Second
	}
	if c.Routes == 0 {
		c.Routes = 2
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	if c.Clock == nil {
		var last atomic.Uint64
		c.Clock = func() uint64 {
			now := uint64(time.Now().UnixNano())
			for {
				l := last.Load()
				if now <= l {
					now = l + 1
				}
				if last.CompareAndSwap(l, now) {
					return now
				}
			}
		}
	}
}

// Counters, by the names Router.Counters reports. The drop counters tell what
// strangers and broken peers cost the node. The end-to-end layer (package mesh)
// keeps counters of its own; the node's API shows both together.
const (
	CountMalformed       counter = iota // not a link datagram at all
	CountNoPSK                          // handshake or datagram without the network key (no ECDH done)
	CountHandshakeRepl                  // replayed or stale handshake
	CountRefused                        // valid handshake from a key not allowed (known-peers-only)
	CountAuth                           // failed decryption
	CountUnknownIndex                   // data or response for no session we hold
	CountDataReplay                     // replayed data datagram
	CountBadFrame                       // malformed frame inside an authenticated datagram
	CountNoRule                         // route ID without a rule
	CountForwardDrop                    // next hop's queue full or its link down
	CountHandshakes                     // handshakes answered
	CountLinksUp                        // links that came up
	CountPacketsForward                 // route packets forwarded
	CountPacketsLocal                   // route packets delivered here
	CountGraphFull                      // announcement of a new origin refused: topology.MaxNodes held
	CountLinkCopies                     // reliable datagram received again (its ack was lost): recognised, not processed twice
	CountLinkLost                       // route data lost with a link that died before the neighbour acknowledged it
	CountCreditViolation                // route data beyond the credit this node granted: dropped (a broken or hostile neighbour)
	CountNotClear                       // route payload the layer above did not call clear, refused on an amateur link
	numCounters
)

// counter indexes Router's counters.
type counter int

var counterNames = [numCounters]string{
	"drop_malformed", "drop_no_psk", "drop_handshake_replay", "drop_refused", "drop_auth",
	"drop_unknown_session", "drop_data_replay", "drop_bad_frame", "drop_no_route",
	"drop_forward", "handshakes_answered", "links_up_total", "packets_forwarded",
	"packets_delivered", "drop_graph_full", "link_copies", "drop_link_lost",
	"drop_credit_violation", "drop_not_clear",
}

// Router is the forwarding core of one mesh node (package mesh puts the end-to-end
// layer on top). Create it with New, run it with Start, stop it with Close.
type Router struct {
	cfg  Config
	self topology.Key
	addr string
	hs   *link.Handshaker
	// links holds the neighbour links' sessions and handshakes in flight by
	// local index (the end-to-end layer has a table of its own).
	links *link.Table[*neighbour]

	graph *topology.Graph
	table *table

	// graphCh is closed when the graph gains or replaces an announcement, so that
	// a first contact waiting for a destination's announcement (or for the one
	// that completes a path to it) wakes when it arrives instead of polling. It is
	// made only while someone waits (GraphWatch); guarded by graphMu.
	graphMu sync.Mutex
	graphCh chan struct{}

	mu sync.RWMutex
	// byKey holds the neighbours by key and kind of link: a node heard over
	// IP and over radio has two links (neighbourByKey picks).
	byKey     map[linkKey]*neighbour
	byLink    map[uint32]*neighbour
	known     map[topology.Key]bool
	nextLink  uint32
	announced time.Time
	dirty     bool
	seq       uint64

	counters [numCounters]atomic.Uint64

	// held is the route bytes this node holds for store and forward (sf.go),
	// capped by NodeBufferCap; linkRetransmits counts reliable datagrams sent again.
	held            atomic.Int64
	linkRetransmits atomic.Uint64

	routes *routes
	upper  Upper

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Upper is the layer above forwarding, the end-to-end layer (package mesh): the
// router hands it what is addressed to this node and runs its timers. Its methods
// are called from the router's goroutines and must not block.
type Upper interface {
	// Deliver takes a route payload addressed to this node: on a rule that
	// delivers here (Rule.Delivers), or in a Back frame on a route this node set
	// up (Rule.Route non-nil). payload is the router's buffer, valid until
	// Deliver returns.
	Deliver(in *Rule, payload []byte, now time.Time)
	// Tick runs with the router's timer, about every 50 ms.
	Tick(now time.Time)
	// Clear reports whether a route payload this node sends carries nothing
	// encrypted, so that it may go onto an amateur link (transport.go): the
	// router refuses any other there (CountNotClear).
	Clear(payload []byte) bool
	// Close runs first in Router.Close.
	Close()
}

// nopUpper is the Upper of a router nothing is attached to: it drops what is
// delivered (a pure forwarding node, and tests of forwarding alone).
type nopUpper struct{}

func (nopUpper) Deliver(*Rule, []byte, time.Time) {}
func (nopUpper) Tick(time.Time)                   {}
func (nopUpper) Clear([]byte) bool                { return false }
func (nopUpper) Close()                           {}

// Attach makes u the layer above this router. Call it once, before Start.
func (r *Router) Attach(u Upper) { r.upper = u }

// New checks cfg and builds a router; nothing runs until Start.
func New(cfg Config) (*Router, error) {
	if cfg.Key == nil {
		return nil, errors.New("mesh: no node key")
	}
	if len(cfg.Transports) == 0 {
		return nil, errors.New("mesh: no transport to listen on")
	}
	cfg.defaults()
	r := &Router{
		cfg:    cfg,
		hs:     link.NewHandshaker(link.Config{Private: cfg.Key, PSK: cfg.PSK, Padding: cfg.Padding}),
		table:  newTable(),
		byKey:  make(map[linkKey]*neighbour),
		byLink: make(map[uint32]*neighbour),
		known:  make(map[topology.Key]bool),
	}
	r.links = link.NewTable[*neighbour](r.hs)
	copy(r.self[:], r.hs.PublicKey()) // derived in constant time; zero for a zero key, refused below
	a, err := identity.AddressFromPublicKey(r.self[:])
	if err != nil {
		return nil, err
	}
	r.addr = a.String()
	r.graph = topology.NewGraph(r.self)
	r.routes = newRoutes(r)
	r.upper = nopUpper{}
	for _, p := range cfg.Peers {
		if len(p.Key) != keyLen {
			return nil, fmt.Errorf("mesh: peer %s: public key must be %d bytes", p.Address, keyLen)
		}
		var k topology.Key
		copy(k[:], p.Key)
		r.known[k] = true
	}
	return r, nil
}

// Config returns the router's configuration, defaults filled in. The layer above
// reads it (Routes, Clock, Key, PSK, Logf, PlainForwarding); it must not be
// modified.
func (r *Router) Config() Config { return r.cfg }

// Self returns the node's 33-byte public key.
func (r *Router) Self() topology.Key { return r.self }

// Address returns the node's Skycoin-format address.
func (r *Router) Address() string { return r.addr }

// Graph returns the topology graph the router keeps (read-only use).
func (r *Router) Graph() *topology.Graph { return r.graph }

// AddKnown allows links from key when KnownPeersOnly is set.
func (r *Router) AddKnown(key []byte) {
	var k topology.Key
	copy(k[:], key)
	r.mu.Lock()
	r.known[k] = true
	r.mu.Unlock()
}

// Start resolves the configured peers, starts reading every transport and runs the
// timers. It returns at once; Close stops everything.
func (r *Router) Start(ctx context.Context) error {
	r.ctx, r.cancel = context.WithCancel(ctx)
	for _, p := range r.cfg.Peers {
		if err := r.AddPeer(p); err != nil {
			r.cfg.Logf("mesh: peer %s://%s: %v (retrying in the background)", p.Network, p.Address, err)
		}
	}
	for _, tr := range r.cfg.Transports {
		r.wg.Add(1)
		go r.readLoop(tr)
	}
	r.wg.Add(1)
	go r.tickLoop()
	r.announce(time.Now())
	return nil
}

// Close tears down routes, stops the timers and closes the transports.
func (r *Router) Close() error {
	if r.cancel == nil {
		return nil
	}
	r.cancel()
	r.upper.Close()
	for _, tr := range r.cfg.Transports {
		tr.Close()
	}
	r.wg.Wait()
	r.mu.Lock()
	for _, n := range r.byLink {
		n.stop()
	}
	r.mu.Unlock()
	return nil
}

// AddPeer adds a static neighbour, redialled for as long as the router runs, and
// starts its handshake. A peer already linked is left alone; an error says why the
// address cannot be used.
func (r *Router) AddPeer(p Peer) error { return r.addPeer(p, true) }

func (r *Router) addPeer(p Peer, static bool) error {
	var k topology.Key
	copy(k[:], p.Key)
	if k == r.self {
		return nil
	}
	var tr Transport
	for _, t := range r.cfg.Transports {
		if t.Network() == p.Network {
			tr = t
			break
		}
	}
	if tr == nil {
		return fmt.Errorf("no %s transport configured in [node] listen", p.Network)
	}
	n := r.neighbourFor(k, isAmateur(tr), true)
	n.mu.Lock()
	n.static = n.static || static
	n.relay = n.relay || p.Relay
	if static {
		n.configured = p.Network + "://" + p.Address
	}
	up := n.up
	n.mu.Unlock()
	ep, err := tr.Resolve(p.Address)
	if err != nil {
		return err
	}
	if !up || n.at.Load() == nil {
		n.at.Store(&endpoint{tr: tr, ep: ep})
		r.initiate(n, time.Now())
	}
	return nil
}

// Discovered is called for a neighbour found on the LAN: it links to it unless a
// link exists or KnownPeersOnly refuses the key.
func (r *Router) Discovered(pub []byte, endpoint string) {
	var k topology.Key
	copy(k[:], pub)
	r.mu.RLock()
	n := r.byKey[linkKey{key: k}]
	allowed := !r.cfg.KnownPeersOnly || r.known[k]
	r.mu.RUnlock() // before n.isUp: the lock order is neighbour, then router
	if !allowed || k == r.self || (n != nil && n.isUp()) {
		return
	}
	r.addPeer(Peer{Network: "udp", Address: endpoint, Key: pub}, false)
}

// linkKey names one link to a neighbour: its key, and whether the link is over
// an amateur transport.
type linkKey struct {
	key     topology.Key
	amateur bool
}

// neighbourFor returns the link to k of the given kind, made when create is set.
func (r *Router) neighbourFor(k topology.Key, amateur, create bool) *neighbour {
	r.mu.Lock()
	defer r.mu.Unlock()
	lk := linkKey{k, amateur}
	if n := r.byKey[lk]; n != nil || !create {
		return n
	}
	r.nextLink++
	n := newNeighbour(r, r.nextLink, [keyLen]byte(k), amateur)
	r.byKey[lk] = n
	r.byLink[n.id] = n
	return n
}

func (r *Router) neighbourByLink(id uint32) *neighbour {
	r.mu.RLock()
	n := r.byLink[id]
	r.mu.RUnlock()
	return n
}

// neighbourByKey returns the link to k that routes take: the one over IP when it
// is up, else the one over radio when that is up, else whichever exists (nil
// when none does).
func (r *Router) neighbourByKey(k topology.Key) *neighbour {
	r.mu.RLock()
	ip, radio := r.byKey[linkKey{k, false}], r.byKey[linkKey{k, true}]
	r.mu.RUnlock() // before isUp: the lock order is neighbour, then router
	switch {
	case ip != nil && ip.isUp():
		return ip
	case radio != nil && radio.isUp():
		return radio
	case ip != nil:
		return ip
	}
	return radio
}

func (r *Router) count(c counter) { r.counters[c].Add(1) }

// GraphWatch returns a channel that is closed at the graph's next change. Take it
// before looking at the graph, so that a change in between is not missed.
func (r *Router) GraphWatch() <-chan struct{} {
	r.graphMu.Lock()
	defer r.graphMu.Unlock()
	if r.graphCh == nil {
		r.graphCh = make(chan struct{})
	}
	return r.graphCh
}

// graphChanged wakes every GraphWatch waiter. Package topology has no
// notification of its own, so the router calls this wherever it changes the
// graph (Update, SetSelf). Without waiters it costs a lock and nothing else.
func (r *Router) graphChanged() {
	r.graphMu.Lock()
	if r.graphCh != nil {
		close(r.graphCh)
		r.graphCh = nil
	}
	r.graphMu.Unlock()
}

// Counters returns the router's event and drop counters by name: drop_no_psk,
// drop_handshake_replay, drop_refused, drop_data_replay, packets_forwarded, ...
func (r *Router) Counters() map[string]uint64 {
	out := make(map[string]uint64, numCounters)
	for i := range r.counters {
		out[counterNames[i]] = r.counters[i].Load()
	}
	return out
}

func (r *Router) rand32() uint32 {
	var b [4]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}

func (r *Router) rand64() uint64 {
	var b [8]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:])
}

// readLoop reads one transport until it closes.
func (r *Router) readLoop(tr Transport) {
	defer r.wg.Done()
	buf := make([]byte, 1<<16)
	plain := make([]byte, 0, 1<<16)
	for {
		n, from, err := tr.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || r.ctx.Err() != nil {
				return
			}
			r.cfg.Logf("mesh: %s: read: %v", tr.LocalAddr(), err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		plain = r.handleDatagram(tr, buf[:n], from, plain)
	}
}

// handleDatagram processes one datagram from a transport; plain is scratch space.
//
// Nothing is ever written to an endpoint before a datagram from it has been
// authenticated (the psk MAC and the handshake): the TCP transport takes the
// first write to a connection it accepted as that connection's authentication,
// and evicts connections that never get one (services/mesh/transport/tcp.go).
func (r *Router) handleDatagram(tr Transport, b []byte, from transport.Endpoint, plain []byte) []byte {
	now := time.Now()
	receive := r.links.Receive
	amateur := isAmateur(tr)
	if amateur {
		receive = r.links.ReceiveClear // nothing encrypted is answered or opened there
	}
	ev, err := receive(b, plain[:0], now, r.accept)
	if err != nil {
		if (ev.Type == link.TypeInit || ev.Type == link.TypeClearInit) && errors.Is(err, link.ErrReplay) {
			r.count(CountHandshakeRepl)
		} else {
			r.countLinkErr(err)
		}
		return plain
	}
	switch ev.Type {
	case link.TypeInit, link.TypeClearInit:
		r.answered(tr, from, ev, now)
	case link.TypeResp, link.TypeClearResp:
		r.finished(tr, from, ev, now)
	case link.TypeData, link.TypeClearData:
		n := ev.Owner
		if n == nil || n.amateur != amateur {
			// Not yet bound (answered binds it at once), or a session of the
			// other kind of link: a clear session is made on, and belongs to,
			// a radio channel only.
			r.count(CountUnknownIndex)
			return plain
		}
		n.lastRecv.Store(now.UnixNano())
		n.rxPackets.Add(1)
		n.rxBytes.Add(uint64(len(b)))
		if at := n.at.Load(); at == nil || at.tr != tr || at.ep != from {
			// The peer roamed (or NAT rebound); authenticated, so follow it.
			n.at.Store(&endpoint{tr: tr, ep: from})
		}
		if ev.Reply != nil {
			n.writeRaw(nil, ev.Reply)
		}
		if ev.Payload != nil {
			r.handleFrames(n, ev.Payload, now)
			return ev.Payload
		}
	}
	return plain
}

func (r *Router) countLinkErr(err error) {
	switch {
	case errors.Is(err, link.ErrUnknownIndex):
		r.count(CountUnknownIndex)
	case errors.Is(err, link.ErrMAC):
		r.count(CountNoPSK)
	case errors.Is(err, link.ErrReplay):
		r.count(CountDataReplay)
	case errors.Is(err, link.ErrRefused):
		r.count(CountRefused)
	case errors.Is(err, link.ErrAuth):
		r.count(CountAuth)
	default:
		r.count(CountMalformed)
	}
}

func (r *Router) accept(remote []byte) bool {
	if !r.cfg.KnownPeersOnly {
		return true
	}
	var k topology.Key
	copy(k[:], remote)
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.known[k]
}

// initiate starts a handshake with n unless one is in flight.
func (r *Router) initiate(n *neighbour, now time.Time) {
	at := n.at.Load()
	if at == nil {
		return
	}
	again := 500 * time.Millisecond
	if n.amateur {
		again = 5 * time.Second // a ClearInit and its answer take seconds of air
	}
	n.mu.Lock()
	if n.pending != nil && now.Sub(n.lastInit) < again {
		n.mu.Unlock()
		return
	}
	if n.pending != nil {
		r.links.Drop(n.pending.LocalIndex())
	}
	initiate := r.links.Initiate
	if n.amateur {
		initiate = r.links.InitiateClear
	}
	msg, p, err := initiate(n.key[:], n, r.cfg.Clock(), now)
	if err != nil {
		n.mu.Unlock()
		r.cfg.Logf("mesh: handshake to %x: %v", n.key[:4], err)
		return
	}
	n.pending = p
	n.lastInit = now
	n.tries++
	n.mu.Unlock()
	n.writeRaw(at, msg)
}

// rehandshake forces a new handshake after the session refused to seal.
func (r *Router) rehandshake(n *neighbour) {
	n.mu.Lock()
	n.pending = nil
	n.mu.Unlock()
	r.initiate(n, time.Now())
}

// answered takes the session of an Init the link table answered: the link to its
// initiator comes up (or takes the new session) and the Resp goes back.
func (r *Router) answered(tr Transport, from transport.Endpoint, ev link.Event[*neighbour], now time.Time) {
	r.count(CountHandshakes)
	var k topology.Key
	copy(k[:], ev.Session.Remote())
	n := r.neighbourFor(k, isAmateur(tr), true)
	r.links.Bind(ev.Index, n)
	at := &endpoint{tr: tr, ep: from}
	n.at.Store(at)
	n.writeRaw(at, ev.Reply)
	r.installSession(n, ev.Session, now)
}

// finished takes the session of a handshake this node initiated, answered by its
// neighbour's Resp.
func (r *Router) finished(tr Transport, from transport.Endpoint, ev link.Event[*neighbour], now time.Time) {
	n := ev.Owner
	if n.amateur != isAmateur(tr) {
		// A handshake answered over the other kind of link than it was made
		// for: the table matched the index, but the session is not for here.
		r.links.Drop(ev.Index)
		r.count(CountUnknownIndex)
		return
	}
	n.mu.Lock()
	if n.pending != nil && n.pending.LocalIndex() == ev.Index {
		n.pending = nil
	}
	n.mu.Unlock()
	n.at.Store(&endpoint{tr: tr, ep: from})
	r.installSession(n, ev.Session, now)
}

// greetInterval is the shortest time between two graphs sent to a neighbour
// whose link was already up when it handshook again.
const greetInterval = time.Second

// installSession makes s n's sending session and brings the link up. The session it
// replaces stays readable until the next one arrives: when both ends initiate at once
// each sends on the session it finished last, and the other must still read it.
func (r *Router) installSession(n *neighbour, s *link.Session, now time.Time) {
	old := n.sess.Swap(s)
	n.lastRecv.Store(now.UnixNano())
	n.mu.Lock()
	wasUp := n.up
	n.up = true
	n.tries = 0
	if !wasUp {
		n.upSince = now
	}
	older := n.prevSess
	if old != s {
		n.prevSess = old
	}
	// A new handshake on a link that is up is most often the neighbour
	// restarted within DeadAfter: it knows nothing, and would wait a whole
	// AnnounceInterval for the graph (and with it any route, custody
	// included). Greet it as a new link, at most once per greetInterval: a
	// node holding the psk that handshakes again and again (from a forged
	// address, too) gets one graph a second, not one per handshake; the
	// greeting put off is sent by tickLinks.
	greet := !wasUp
	if wasUp && old != s {
		if now.Sub(n.greeted) >= greetInterval {
			greet, n.greeted = true, now
		} else {
			n.greetDue = true
		}
	}
	n.mu.Unlock()
	if older != nil && older != s {
		r.links.Drop(older.LocalIndex())
	}
	if !wasUp {
		r.count(CountLinksUp)
		r.cfg.Logf("mesh: link up to %s", shortKey(n.key))
	}
	if greet {
		r.greet(n, now)
	}
}

// greet gives a neighbour whose link came up (or who handshook again) the whole
// graph, and has this node announce itself to everyone.
func (r *Router) greet(n *neighbour, now time.Time) {
	n.ping(now)
	n.forgetGossip()
	for _, a := range r.graph.All() {
		if enc, err := a.MarshalBinary(); err == nil {
			n.gossip(a, enc, now)
		}
	}
	r.markDirty()
}

// linkDown declares n's link dead: its rules are removed and their sources told.
func (r *Router) linkDown(n *neighbour, now time.Time) {
	n.mu.Lock()
	if !n.up {
		n.mu.Unlock()
		return
	}
	n.up = false
	n.downAt = now
	n.pending = nil
	n.mu.Unlock()
	if s := n.sess.Swap(nil); s != nil {
		r.links.Drop(s.LocalIndex())
	}
	n.mu.Lock()
	if n.prevSess != nil {
		r.links.Drop(n.prevSess.LocalIndex())
		n.prevSess = nil
	}
	n.mu.Unlock()
	r.cfg.Logf("mesh: link down to %s", shortKey(n.key))
	n.dropSF()
	for _, ru := range r.table.takeLink(n.id) {
		r.ruleBroken(ru, n.id, ReasonLinkDown)
	}
	r.routes.linkDown(n.id)
	r.markDirty()
}

func (r *Router) markDirty() {
	r.mu.Lock()
	r.dirty = true
	r.mu.Unlock()
}

// tickLoop runs the timers: pings, rekeys, dead links, redials, gossip, expiry.
func (r *Router) tickLoop() {
	defer r.wg.Done()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	var lastSlow time.Time
	for {
		select {
		case <-r.ctx.Done():
			return
		case now := <-t.C:
			r.tickLinks(now)
			r.upper.Tick(now)
			r.mu.Lock()
			due := (r.dirty && now.Sub(r.announced) >= 200*time.Millisecond) ||
				now.Sub(r.announced) >= r.cfg.AnnounceInterval
			r.mu.Unlock()
			if due {
				r.announce(now)
			}
			if now.Sub(lastSlow) >= time.Second {
				lastSlow = now
				r.graph.Expire(now, r.expiry())
				for _, ru := range r.table.expire(now.Add(-r.cfg.RouteIdle), now.Add(-radioRouteIdle)) {
					r.ruleExpired(ru)
				}
				r.routes.tick(now)
				for _, n := range r.neighbours() {
					n.measure(now)
				}
			}
		}
	}
}

// neighbours returns a snapshot of every neighbour, so callers can lock each one
// without holding the router's lock (the lock order is neighbour, then router).
func (r *Router) neighbours() []*neighbour {
	r.mu.RLock()
	defer r.mu.RUnlock()
	ns := make([]*neighbour, 0, len(r.byLink))
	for _, n := range r.byLink {
		ns = append(ns, n)
	}
	return ns
}

func (r *Router) tickLinks(now time.Time) {
	for _, n := range r.neighbours() {
		n.mu.Lock()
		up, static, pending := n.up, n.static, n.pending != nil
		lastInit, lastPing, tries, srtt := n.lastInit, n.lastPing, n.tries, n.srtt
		downAt := n.downAt
		n.mu.Unlock()
		if up {
			n.mu.Lock()
			greet := n.greetDue && now.Sub(n.greeted) >= greetInterval
			if greet {
				n.greetDue, n.greeted = false, now
			}
			n.mu.Unlock()
			if greet {
				r.greet(n, now)
			}
			if s := n.sess.Load(); s != nil {
				if out := s.Tick(now, srtt); out != nil {
					n.writeRaw(nil, out)
				}
			}
			ping, dead := r.cfg.PingInterval, r.cfg.DeadAfter
			if n.amateur {
				ping, dead = r.cfg.RadioPingInterval, r.cfg.RadioDeadAfter
			}
			if now.Sub(lastPing) >= ping {
				n.ping(now)
			}
			if now.Sub(time.Unix(0, n.lastRecv.Load())) > dead {
				r.linkDown(n, now)
			}
			continue
		}
		// Down: redial static peers with backoff (0.5 s doubling to 4 s; over
		// radio, where a handshake takes seconds, 5 s doubling to 40 s); forget
		// learnt ones after a minute.
		backoff := 500 * time.Millisecond << min(tries, 3)
		if n.amateur {
			backoff *= 10
		}
		if static || (pending && tries < 3) {
			if now.Sub(lastInit) >= backoff {
				r.initiate(n, now)
			}
		} else if !downAt.IsZero() && now.Sub(downAt) > time.Minute {
			r.forget(n)
		}
	}
}

func (r *Router) forget(n *neighbour) {
	r.mu.Lock()
	if lk := (linkKey{topology.Key(n.key), n.amateur}); r.byKey[lk] == n {
		delete(r.byKey, lk)
		delete(r.byLink, n.id)
	}
	r.mu.Unlock()
	n.stop()
}

// announce signs and floods the node's neighbour list (topology.Announcement).
func (r *Router) announce(now time.Time) {
	r.mu.Lock()
	r.dirty = false
	r.announced = now
	if hs := r.graph.HighestSeenSelfSeq(); hs >= r.seq {
		// A pre-restart announcement of ours is still around: jump above it.
		r.seq = hs
	}
	r.seq++
	seq := r.seq
	r.mu.Unlock()
	a := &topology.Announcement{Origin: r.self, Seq: seq, Properties: r.cfg.Properties}
	var ups []*neighbour
	for _, n := range r.neighbours() {
		n.mu.Lock()
		if n.up {
			rtt := n.srtt
			if rtt == 0 {
				rtt = time.Millisecond
			}
			a.Neighbours = append(a.Neighbours, topology.Neighbour{Key: topology.Key(n.key), RTT: rtt, Loss: n.lossLocked(now)})
			ups = append(ups, n)
		}
		n.mu.Unlock()
	}
	if len(a.Neighbours) > maxAnnounced {
		a.Neighbours = a.Neighbours[:maxAnnounced]
	}
	if err := a.Sign(r.cfg.Key); err != nil {
		r.cfg.Logf("mesh: announce: %v", err)
		return
	}
	r.graph.SetSelf(a, now)
	r.graphChanged() // a new link of ours may complete a path someone waits for
	enc, err := a.MarshalBinary()
	if err != nil {
		r.cfg.Logf("mesh: announce: %v", err)
		return
	}
	for _, n := range ups {
		n.gossip(a, enc, now)
	}
}

// maxAnnounced keeps an announcement inside one datagram (topology's limit is 255).
const maxAnnounced = 32

// handleFrames processes the frames of one authenticated datagram from n.
func (r *Router) handleFrames(n *neighbour, b []byte, now time.Time) {
	for len(b) > 0 {
		typ, body, rest, err := nextFrame(b)
		if err != nil {
			r.count(CountBadFrame)
			return
		}
		b = rest
		switch typ {
		case frameReliable:
			r.reliable(n, body, now)
		case frameLinkAck:
			var words [perhop.MaxSACKWords]uint64
			cum, sack, err := parseLinkAck(body, words[:0])
			if err != nil {
				r.count(CountBadFrame)
				continue
			}
			r.linkAck(n, cum, sack, now)
		case frameCredit:
			rid, limit, err := parseCredit(body)
			if err != nil {
				r.count(CountBadFrame)
				continue
			}
			r.grant(n, rid, limit)
		case frameData, frameDataRT:
			// Route data travels inside Reliable frames; bare, it would bypass
			// the link ack and credit, unless both ends forward plainly.
			if !r.cfg.PlainForwarding {
				r.count(CountBadFrame)
				continue
			}
			rid, err := parseRouteID(body, false)
			if err != nil {
				r.count(CountBadFrame)
				continue
			}
			r.forward(n, rid, body[4:], typ == frameDataRT, now)
		case frameBack:
			rid, err := parseRouteID(body, false)
			if err != nil {
				r.count(CountBadFrame)
				continue
			}
			r.forwardBack(n, rid, body[4:], now)
		case framePing:
			if _, err := parseRouteID(body, true); err == nil {
				n.send(true, framePong, body)
			}
		case framePong:
			if id, err := parseRouteID(body, true); err == nil {
				n.pong(id, now)
			}
		case frameGossip:
			r.handleGossip(n, body, now)
		case frameSetup, frameConfirm, frameSetupFail, frameRouteErr, frameTeardown, frameKeepalive:
			if err := r.routes.handle(n, typ, body, now); err != nil {
				r.count(CountBadFrame)
			}
		default:
			r.count(CountBadFrame)
		}
	}
}

func (r *Router) handleGossip(from *neighbour, body []byte, now time.Time) {
	a, err := topology.Unmarshal(body)
	if err != nil {
		r.count(CountBadFrame)
		return
	}
	stored, err := r.graph.Update(a, now)
	if errors.Is(err, topology.ErrGraphFull) {
		r.count(CountGraphFull)
	}
	if err != nil || !stored {
		if a.Origin == r.self && a.Seq >= r.seq {
			r.markDirty() // someone holds a newer one of ours: re-announce above it
		}
		return
	}
	r.graphChanged()
	enc := append([]byte(nil), body...)
	for _, n := range r.neighbours() {
		if n != from && n.isUp() {
			n.gossip(a, enc, now)
		}
	}
}

// forward handles a Data (or DataRT, rt set) frame for route ID rid arriving on
// link n inside a Reliable frame. The bytes count against the route's buffer here
// until the next hop acknowledges them; they are never dropped for lack of room,
// because the upstream neighbour sends only into the credit this node granted.
func (r *Router) forward(n *neighbour, rid uint32, payload []byte, rt bool, now time.Time) {
	ru := r.table.lookup(hop{n.id, rid})
	if ru == nil {
		r.count(CountNoRule)
		r.routes.noRule(n, rid, now)
		return
	}
	ru.used.Store(now.UnixNano())
	ru.packets.Add(1)
	ru.bytes.Add(uint64(len(payload)))
	if !r.arrive(ru, len(payload)) {
		r.count(CountCreditViolation)
		return
	}
	if ru.out.link == local {
		r.count(CountPacketsLocal)
		r.upper.Deliver(ru, payload, now)
		r.leave(ru, len(payload))
		return
	}
	out := r.neighbourByLink(ru.out.link)
	if out == nil || !out.isUp() || !r.clearFor(out, payload) {
		r.leave(ru, len(payload))
		r.count(CountForwardDrop)
		return
	}
	out.enqueue(ru, ru.out.rid, rt, payload)
	r.count(CountPacketsForward)
}

// forwardBack handles a Back frame (routes.go) arriving on link n with route ID rid:
// a packet travelling a route against its direction, from its destination towards
// its source. rid is the ID this node's rule sends forward packets with on link n,
// so the rule is found by its out-side (as route errors find it), and the packet
// continues on the rule's in-link with the rule's in-side ID, or is delivered here
// when this node is the route's source.
//
// An unknown ID is dropped and counted but not answered: a route error names an ID
// of the forward direction, and this one is not.
func (r *Router) forwardBack(n *neighbour, rid uint32, payload []byte, now time.Time) {
	ru := r.table.lookupReverse(hop{n.id, rid})
	if ru == nil {
		r.count(CountNoRule)
		return
	}
	ru.used.Store(now.UnixNano())
	ru.packets.Add(1)
	ru.bytes.Add(uint64(len(payload)))
	if ru.in.link == local {
		r.count(CountPacketsLocal)
		r.upper.Deliver(ru, payload, now)
		return
	}
	in := r.neighbourByLink(ru.in.link)
	if in == nil || !in.isUp() || !r.clearFor(in, payload) {
		r.count(CountForwardDrop)
		return
	}
	if !in.send(false, frameBack, u32(ru.in.rid), payload) {
		r.count(CountForwardDrop)
		return
	}
	r.count(CountPacketsForward)
}

// Address is the node address (Skycoin format) of key k, or the hex of its first 6
// bytes when k is not a valid key.
func Address(k topology.Key) string { return shortKey(k) }

func shortKey(k [keyLen]byte) string {
	a, err := identity.AddressFromPublicKey(k[:])
	if err != nil {
		return fmt.Sprintf("%x", k[:6])
	}
	return a.String()
}
