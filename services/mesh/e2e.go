package mesh

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/skyfleet/skyfleet/services/identity"
	"github.com/skyfleet/skyfleet/services/mesh/forward"
	"github.com/skyfleet/skyfleet/services/mesh/link"
	"github.com/skyfleet/skyfleet/services/mesh/stream"
	"github.com/skyfleet/skyfleet/services/mesh/topology"
)

// Sizes inside a route payload (forward.RouteMTU bytes).
const (
	// appMTU is the largest application frame inside the end-to-end session: a
	// route payload less the session's overhead (the same link.Session framing a
	// neighbour link uses).
	appMTU = forward.RouteMTU - forward.LinkOverhead
	// appHeader is kind (1) | source port (2) | destination port (2).
	appHeader = 5
	// MaxDatagram is the largest datagram PacketConn.WriteTo carries, in bytes.
	MaxDatagram = appMTU - appHeader
)

// Application frame kinds inside the end-to-end session.
const (
	appDgram    = 1
	appStream   = 2
	appEchoReq  = 3
	appEchoResp = 4
)

// Errors of the end-to-end layer.
var (
	// ErrNoRoute means the topology holds no path to the destination.
	ErrNoRoute = errors.New("mesh: no route to destination")
	// ErrUnreachable means routes were found but none could be set up, or the
	// destination did not answer the end-to-end handshake.
	ErrUnreachable = errors.New("mesh: destination unreachable")
	// ErrPortInUse is returned by Listen and ListenPacket for a taken port.
	ErrPortInUse = errors.New("mesh: port in use")
)

// Addr is a mesh socket address: a node's public key and a port (1-65535).
type Addr struct {
	Key  topology.Key
	Port uint16
}

// Network returns "skyfleet".
func (a Addr) Network() string { return "skyfleet" }

// String returns "address:port" with the node's Skycoin-format address.
func (a Addr) String() string { return shortKey(a.Key) + ":" + strconv.Itoa(int(a.Port)) }

type streamKey struct{ local, remote uint16 }

// peer is the end-to-end state towards one destination node.
type peer struct {
	e   *endToEnd
	key topology.Key

	mu   sync.Mutex
	sess *link.Session
	// olds are sessions sess replaced, oldest first, still readable: under loss
	// the peer may have finished the handshake of any of them, and it sends on
	// that one until it hears otherwise (at most maxOldSessions).
	olds      []*link.Session
	pending   *link.Pending
	pendingAt time.Time
	ready     chan struct{} // closed when the first session is up
	routes    []*forward.Route
	version   int // bumped when routes change
	lastTry   time.Time
	// used is when p was last used (UnixNano): a ping, dial or handshake
	// through peerFor, an app frame sent or received. Atomic, so that forget can
	// tell under e.mu alone whether a peer it judged idle was used since.
	used    atomic.Int64
	avoid   map[topology.Key]time.Time
	rr      uint32
	streams map[streamKey]*stream.Conn
	queued  [][]byte // responses waiting for a route back
	// changed is closed when one of the routes comes up or fails (watch), so that
	// ensureRoute waits for exactly that rather than polling; made only while
	// someone waits.
	changed chan struct{}
	// fails counts routes of p that failed, for ensureRoute's back-off.
	fails int
	// back is the rule (out-side local) the peer's latest authenticated
	// end-to-end datagram arrived on. While p has no route of its own up, control
	// datagrams (the handshake answer above all) go back along it
	// (routes.sendBack), so that answering a first contact does not wait for a
	// route back to be set up.
	back atomic.Pointer[forward.Rule]
	// resets and resetsAt count the stream resets sent to the peer in the
	// second from resetsAt (allowReset).
	resets   int
	resetsAt time.Time
}

// pendingFor is how long an unanswered end-to-end handshake's index is kept.
const pendingFor = 10 * time.Second

// Bounds on the end-to-end state that other nodes (and API callers) can make this
// node hold. A peer is created by a ping, a dial or an arriving handshake, so its
// map is keyed by outside input: it gets a cap and an expiry.
const (
	// MaxPeers caps the destinations with end-to-end state. When it is reached,
	// the peer idle longest (no streams, no routes) is forgotten to make room;
	// if none is idle the new one is refused (countPeerCap).
	MaxPeers = 4096
	// PeerExpiry is how long a peer without traffic, streams or routes is kept
	// before its state (sessions, indexes) is forgotten.
	PeerExpiry = 10 * time.Minute
	// MaxStreamsPerPeer caps the open streams with one peer; further SYNs are
	// dropped (countPeerCap).
	MaxStreamsPerPeer = 256
	// maxAddrCache caps the address-to-key cache Resolve fills from the graph.
	maxAddrCache = 4 * topology.MaxNodes
)

// ErrTooManyPeers is returned (wrapped) when MaxPeers destinations are active.
var ErrTooManyPeers = errors.New("mesh: too many end-to-end peers are active")

// endToEnd is the layer between routes and applications.
type endToEnd struct {
	r *Router
	// sessions holds the end-to-end sessions and handshakes in flight by local
	// index, under a Handshaker of their own: its replay state must not mix
	// with the links'.
	sessions *link.Table[*peer]

	mu        sync.Mutex
	peers     map[topology.Key]*peer
	listeners map[uint16]*listener
	packets   map[uint16]*PacketConn
	pings     map[uint32]chan struct{}
	addrs     map[string]topology.Key
	closed    bool

	// initsSent counts end-to-end handshake Inits sent, retransmissions included
	// (tests count them).
	initsSent atomic.Uint64
}

func newEndToEnd(r *Router) *endToEnd {
	return &endToEnd{
		r:         r,
		sessions:  link.NewTable[*peer](link.NewHandshaker(link.Config{Private: r.cfg.Key, PSK: r.cfg.PSK})),
		peers:     make(map[topology.Key]*peer),
		listeners: make(map[uint16]*listener),
		packets:   make(map[uint16]*PacketConn),
		pings:     make(map[uint32]chan struct{}),
		addrs:     make(map[string]topology.Key),
	}
}

// peerFor returns the peer state for k, making it if needed. Errors: MaxPeers
// peers are held and none is idle enough to forget (ErrTooManyPeers).
func (e *endToEnd) peerFor(k topology.Key) (*peer, error) {
	e.mu.Lock()
	p := e.peers[k]
	if p != nil {
		p.touch(time.Now()) // under e.mu: forget sees it (see forget)
		e.mu.Unlock()
		return p, nil
	}
	if len(e.peers) >= MaxPeers {
		e.mu.Unlock()
		if !e.evictIdlest() {
			e.r.count(countPeerCap)
			return nil, fmt.Errorf("%w (%d)", ErrTooManyPeers, MaxPeers)
		}
		e.mu.Lock()
		if p := e.peers[k]; p != nil {
			p.touch(time.Now())
			e.mu.Unlock()
			return p, nil
		}
	}
	p = &peer{e: e, key: k, ready: make(chan struct{}), avoid: make(map[topology.Key]time.Time),
		streams: make(map[streamKey]*stream.Conn)}
	p.touch(time.Now())
	e.peers[k] = p
	e.mu.Unlock()
	return p, nil
}

func (p *peer) touch(now time.Time) { p.used.Store(now.UnixNano()) }

func (p *peer) lastUsed() time.Time { return time.Unix(0, p.used.Load()) }

// idle reports whether p has no streams and no routes, and when it was last used
// (UnixNano).
func (p *peer) idle() (bool, int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.streams) == 0 && len(p.routes) == 0, p.used.Load()
}

// evictIdlest forgets the peer unused longest among those with no streams and no
// routes. It reports whether one was forgotten.
func (e *endToEnd) evictIdlest() bool {
	e.mu.Lock()
	ps := make([]*peer, 0, len(e.peers))
	for _, p := range e.peers {
		ps = append(ps, p)
	}
	e.mu.Unlock()
	var victim *peer
	var oldest int64
	for _, p := range ps {
		if idle, used := p.idle(); idle && (victim == nil || used < oldest) {
			victim, oldest = p, used
		}
	}
	if victim == nil {
		return false
	}
	return e.forget(map[*peer]int64{victim: oldest}) > 0
}

// forget drops each given peer that has not been used since the time given with
// it (UnixNano, read when it was judged idle), with every session index that
// belongs to it, and returns how many it dropped. peerFor marks a peer used under
// e.mu, so a peer handed out concurrently is kept. A frame already being
// delivered to a dropped peer may still open a stream on it; that stream lives
// out its life and is then reaped, and the next handshake makes a new peer.
func (e *endToEnd) forget(gone map[*peer]int64) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for p, seen := range gone {
		if p.used.Load() != seen || e.peers[p.key] != p {
			delete(gone, p)
			continue
		}
		delete(e.peers, p.key)
		n++
	}
	if n > 0 {
		e.sessions.DropIf(func(x link.Entry[*peer]) bool {
			_, ok := gone[x.Owner]
			return ok && x.Owner != nil
		})
	}
	return n
}

// Resolve turns a node address (Skycoin format) or a 66-hex-character public key into
// the node's key. Addresses are looked up among the nodes in the topology graph.
func (r *Router) Resolve(s string) (topology.Key, error) {
	var k topology.Key
	if len(s) == 2*keyLen {
		b, err := hex.DecodeString(s)
		if err == nil {
			if _, err := secp256k1.ParsePubKey(b); err != nil {
				return k, fmt.Errorf("mesh: %s… is not a public key on secp256k1: %v", s[:8], err)
			}
			copy(k[:], b)
			return k, nil
		}
	}
	if _, err := identity.ParseAddress(s); err != nil {
		return k, fmt.Errorf("mesh: %q is neither a node address nor a public key: %v", s, err)
	}
	e := r.e2e
	e.mu.Lock()
	k, ok := e.addrs[s]
	e.mu.Unlock()
	if ok {
		return k, nil
	}
	for _, n := range append(r.graph.Nodes(), r.self) {
		a, err := identity.AddressFromPublicKey(n[:])
		if err != nil {
			continue
		}
		e.mu.Lock()
		if len(e.addrs) >= maxAddrCache {
			clear(e.addrs) // nodes come and go: start the cache afresh
		}
		e.addrs[a.String()] = n
		e.mu.Unlock()
		if a.String() == s {
			return n, nil
		}
	}
	return k, fmt.Errorf("%w: %s is not in the topology (yet)", ErrNoRoute, s)
}

// connect makes sure p has an up route and an end-to-end session.
func (e *endToEnd) connect(ctx context.Context, k topology.Key) (*peer, error) {
	if k == e.r.self {
		return nil, errors.New("mesh: that is this node's own address")
	}
	// A key the topology does not know has no route. Its announcement may be
	// on its way (a node that has just started, a master a fresh node reports
	// to), so wait for it a little, as route setup would, but without making
	// state for the key: asking for arbitrary keys then costs a timer, not memory.
	e.mu.Lock()
	known := e.peers[k] != nil
	e.mu.Unlock()
	if !known {
		if err := e.awaitTopology(ctx, k); err != nil {
			return nil, err
		}
	}
	p, err := e.peerFor(k)
	if err != nil {
		return nil, err
	}
	if err := p.ensureRoute(ctx); err != nil {
		return nil, err
	}
	// The Init goes out at once; it is resent after handshakeRTO, doubling, in
	// case it or its answer was lost. gap is the wait that has just passed:
	// initiate sends at most one Init per gap, so concurrent connects share it.
	wait := p.handshakeRTO()
	gap := wait
	for {
		p.mu.Lock()
		if p.sess != nil && p.sess.Clear() == p.amateurLocked() {
			p.mu.Unlock()
			return p, nil
		}
		ready := p.ready
		if p.sess != nil {
			// A session of the other kind (the way changed between radio and
			// IP): wait for the next one, which setSession announces.
			if p.changed == nil {
				p.changed = make(chan struct{})
			}
			ready = p.changed
		}
		p.mu.Unlock()
		p.initiate(time.Now(), gap)
		t := time.NewTimer(wait)
		select {
		case <-ready:
			t.Stop()
		case <-t.C:
			ceil, _ := p.handshakeCeil()
			gap, wait = wait, min(2*wait, max(wait, ceil))
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w: no end-to-end handshake answer from %s", ErrUnreachable, shortKey(k))
		}
	}
}

// topologyWait is how long connect waits for an unknown key to appear in the
// topology before it answers ErrNoRoute (less when ctx ends first).
const topologyWait = time.Second

// awaitTopology waits until k is in the topology graph, for at most topologyWait
// or until ctx ends. It wakes when the graph changes (Router.graphWatch), so the
// key's announcement is taken the moment it arrives. Errors: ErrNoRoute when it
// did not appear.
func (e *endToEnd) awaitTopology(ctx context.Context, k topology.Key) error {
	t := time.NewTimer(topologyWait)
	defer t.Stop()
	for {
		changed := e.r.GraphWatch() // before looking: a change in between wakes us
		if _, ok := e.r.graph.Get(k); ok {
			return nil
		}
		select {
		case <-changed:
		case <-t.C:
			return fmt.Errorf("%w: %s is not in the topology (yet)", ErrNoRoute, shortKey(k))
		case <-ctx.Done():
			return fmt.Errorf("%w: %s is not in the topology (yet)", ErrNoRoute, shortKey(k))
		}
	}
}

// End-to-end handshake retransmission (handshakeRTO).
const (
	// handshakeWork is what handshakeRTO adds to the route's round trip for the
	// elliptic-curve work of the two ends, which the route setup it is scaled
	// from did not include (a few ms on a slow Pi).
	handshakeWork = 20 * time.Millisecond
	// maxHandshakeRTO bounds handshakeRTO and its back-off, and is the wait when
	// no route has a measured round trip.
	maxHandshakeRTO = time.Second
	// maxRadioHandshakeRTO is maxHandshakeRTO for a peer whose way is a radio
	// link, and radioHandshakeRTO its wait before a route's round trip is
	// known: a handshake and its answer are seconds of air each way, behind
	// whatever else waits for the channel. At one Init a second, each new one
	// replacing the last, the Inits filled a 1200 bit/s channel and no answer
	// ever matched.
	maxRadioHandshakeRTO = time.Minute
	radioHandshakeRTO    = 15 * time.Second
)

// handshakeRTO is how long to wait for the answer to an end-to-end handshake before
// sending it again: three times the best route's setup round trip (RFC 6298's
// first timeout from one RTT sample: the answer takes one round trip when it comes
// back along the route, two when an older node on the path drops Back frames and
// the peer answers over a route of its own), plus handshakeWork; at most
// maxHandshakeRTO (maxRadioHandshakeRTO over radio). It only times
// retransmissions: the first Init goes out at once.
func (p *peer) handshakeRTO() time.Duration {
	rt := p.bestRoute()
	ceil, none := p.handshakeCeil()
	if rt == nil {
		return none
	}
	return min(3*rt.SetupRTT()+handshakeWork, ceil)
}

// handshakeCeil returns handshakeRTO's bound and its wait without a measured
// route: maxHandshakeRTO for both, or the radio ones when p's way is radio.
func (p *peer) handshakeCeil() (ceil, none time.Duration) {
	p.mu.Lock()
	radio := p.amateurLocked()
	p.mu.Unlock()
	if radio {
		return maxRadioHandshakeRTO, radioHandshakeRTO
	}
	return maxHandshakeRTO, maxHandshakeRTO
}

// initiate sends an end-to-end handshake over p's best route, at most once per
// interval.
func (p *peer) initiate(now time.Time, interval time.Duration) {
	p.mu.Lock()
	if p.pending != nil && now.Sub(p.pendingAt) < interval*9/10 {
		p.mu.Unlock()
		return
	}
	e := p.e
	init := e.sessions.Initiate
	if p.amateurLocked() {
		init = e.sessions.InitiateClear // the way to p is a radio link
	}
	msg, pend, err := init(p.key[:], p, e.r.cfg.Clock(), now)
	if err != nil {
		p.mu.Unlock()
		return
	}
	p.pending, p.pendingAt = pend, now
	p.mu.Unlock()
	e.initsSent.Add(1)
	p.sendRaw(msg, true)
}

// maxRouteBackoff bounds ensureRoute's back-off between rounds of failed setups.
const maxRouteBackoff = time.Second

// ensureRoute waits until p has an up route, starting setups as needed, and returns
// as soon as one is up: the others carry on in the background. It waits on events,
// not timers: a route of p coming up or failing (watch), and, while no setup is in
// flight because the topology offers no path, the graph changing. After setups
// failed it backs off before the next round, from the time the failed round took
// (a round trip to where the setup was refused), doubling up to maxRouteBackoff.
// With nothing in flight for topologyWait it gives up (ErrNoRoute, ErrUnreachable).
func (p *peer) ensureRoute(ctx context.Context) error {
	fails := p.failCount()
	round := time.Now() // when the last round of setups started
	var (
		retryAt time.Time     // no new round before this (back-off)
		backoff time.Duration // the last back-off
		idle    time.Time     // since when no setup was in flight
		lastErr error
	)
	for {
		changed, graph := p.watch(), p.e.r.GraphWatch() // before looking: nothing missed
		if p.upRoute() != nil {
			return nil
		}
		now := time.Now()
		if f := p.failCount(); f != fails {
			fails = f
			backoff = min(max(2*backoff, now.Sub(round)), maxRouteBackoff)
			retryAt = now.Add(backoff)
		}
		if !now.Before(retryAt) {
			round = now
			if _, err := p.maintain(now, true); err != nil {
				lastErr = err
			}
		}
		var timer *time.Timer
		if p.settling() {
			idle = time.Time{}
			graph = nil // a setup in flight: its outcome is what to wait for
		} else {
			if idle.IsZero() {
				idle = now
			}
			left := topologyWait - now.Sub(idle)
			if left <= 0 {
				if lastErr == nil {
					lastErr = fmt.Errorf("%w: no route to %s could be set up", ErrUnreachable, shortKey(p.key))
				}
				return lastErr
			}
			if now.Before(retryAt) {
				left = min(left, retryAt.Sub(now))
				graph = nil // backing off: not one round per announcement
			}
			timer = time.NewTimer(left)
		}
		var fired <-chan time.Time
		if timer != nil {
			fired = timer.C
		}
		select {
		case <-changed:
		case <-graph:
		case <-fired:
		case <-ctx.Done():
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			if p.upRoute() != nil {
				return nil
			}
			return fmt.Errorf("%w: route setup to %s timed out", ErrUnreachable, shortKey(p.key))
		}
	}
}

// watch returns a channel closed when one of p's routes next comes up or fails.
// Take it before looking at the routes, so that a change in between is not missed.
func (p *peer) watch() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.changed == nil {
		p.changed = make(chan struct{})
	}
	return p.changed
}

// notifyLocked wakes the watchers of p's routes; p.mu must be held.
func (p *peer) notifyLocked() {
	if p.changed != nil {
		close(p.changed)
		p.changed = nil
	}
}

func (p *peer) failCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fails
}

// settling reports whether a route setup of p is in flight.
func (p *peer) settling() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, rt := range p.routes {
		if rt.Pending() {
			return true
		}
	}
	return false
}

// upRoute returns one up route to p, spreading use round robin, or nil. Routes
// over IP come first: one over a radio link (of one hop, in clear) is taken only
// when no other is up.
func (p *peer) upRoute() *forward.Route {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.routes)
	var radio *forward.Route
	for i := 0; i < n; i++ {
		p.rr++
		rt := p.routes[int(p.rr)%n]
		if rt.Up() {
			if !rt.Amateur() {
				return rt
			}
			if radio == nil {
				radio = rt
			}
		}
	}
	return radio
}

// amateurLocked reports whether p's traffic goes over a radio link, so that its
// end-to-end session must be a clear one: p has an up route over radio and none
// over IP, or, with no route up, its traffic last arrived over radio (a first
// contact is answered back along it). p.mu must be held.
func (p *peer) amateurLocked() bool {
	radio := false
	for _, rt := range p.routes {
		if rt.Up() {
			if !rt.Amateur() {
				return false
			}
			radio = true
		}
	}
	if radio {
		return true
	}
	ru := p.back.Load()
	return ru != nil && ru.Amateur()
}

// kindFits reports whether s, p's session, is of the kind the way rt (or back,
// or, both nil, p's preferred way) needs: clear over a radio link, encrypted
// elsewhere. Otherwise it starts a handshake of the right kind: the router
// refuses an encrypted payload on radio, and a clear one does not fit an IP
// route's datagrams (radio.MTU has room for the signatures, UDP does not).
func (p *peer) kindFits(s *link.Session, rt *forward.Route, back *forward.Rule) bool {
	p.mu.Lock()
	var radio bool
	switch {
	case back != nil:
		radio = back.Amateur()
	case rt != nil:
		radio = rt.Amateur()
	default:
		radio = p.amateurLocked()
	}
	p.mu.Unlock()
	if s.Clear() == radio {
		return true
	}
	p.e.r.count(countSessionKind)
	p.initiate(time.Now(), p.handshakeRTO())
	return false
}

// bestRoute returns the up route with the fewest hops (then the fastest setup), or nil.
func (p *peer) bestRoute() *forward.Route {
	p.mu.Lock()
	defer p.mu.Unlock()
	var best *forward.Route
	for _, rt := range p.routes {
		if !rt.Up() {
			continue
		}
		if best == nil || len(rt.Path()) < len(best.Path()) || (len(rt.Path()) == len(best.Path()) && rt.SetupRTT() < best.SetupRTT()) {
			best = rt
		}
	}
	return best
}

// maintain starts route setups until p has Config.Routes routes (up or pending). It
// returns the setups it started. force skips the once-a-second rate limit.
func (p *peer) maintain(now time.Time, force bool) ([]*forward.Route, error) {
	r := p.e.r
	p.mu.Lock()
	if !force && now.Sub(p.lastTry) < time.Second {
		p.mu.Unlock()
		return nil, nil
	}
	have := len(p.routes)
	if have >= r.cfg.Routes {
		p.mu.Unlock()
		return nil, nil
	}
	p.lastTry = now
	avoid := make([]topology.Key, 0, len(p.avoid))
	for k, t := range p.avoid {
		if now.Sub(t) > 5*time.Second {
			delete(p.avoid, k)
			continue
		}
		avoid = append(avoid, k)
	}
	existing := make([]topology.Path, 0, len(p.routes))
	for _, rt := range p.routes {
		existing = append(existing, rt.Path())
	}
	p.mu.Unlock()

	paths, err := r.graph.Disjoint(p.key, r.cfg.Routes, true)
	if err != nil || len(paths) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNoRoute, shortKey(p.key))
	}
	if len(avoid) > 0 {
		var kept []topology.Path
		for _, path := range paths {
			if !pathUses(path, avoid) {
				kept = append(kept, path)
			}
		}
		if len(kept) == 0 {
			if alt, err := r.graph.Avoiding(p.key, avoid, true); err == nil {
				kept = append(kept, alt)
			}
		}
		paths = kept
	}
	var started []*forward.Route
	for _, path := range paths {
		if have >= r.cfg.Routes {
			break
		}
		dup := false
		for _, ex := range existing {
			if samePath(ex, path) {
				dup = true
				break
			}
		}
		if dup {
			continue
		}
		rt, err := r.SetupRoute(path, p.routeFailed)
		if err != nil {
			continue
		}
		have++
		p.mu.Lock()
		p.routes = append(p.routes, rt)
		p.version++
		p.mu.Unlock()
		started = append(started, rt)
		go p.awaitRoute(rt)
	}
	if len(started) == 0 && p.upRoute() == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnreachable, shortKey(p.key))
	}
	return started, nil
}

// awaitRoute flushes queued handshake messages the moment rt is up, and wakes
// ensureRoute. (A failed rt is routeFailed's.)
func (p *peer) awaitRoute(rt *forward.Route) {
	<-rt.Done()
	if !rt.Up() {
		return
	}
	p.mu.Lock()
	p.version++
	q := p.queued
	p.queued = nil
	p.notifyLocked()
	p.mu.Unlock()
	for _, b := range q {
		rt.Send(b, true)
	}
}

// routeFailed drops a failed route and remembers the node after the reporter (the
// broken hop) to route around it for a few seconds.
func (p *peer) routeFailed(rt *forward.Route, reporter topology.Key, reason byte) {
	now := time.Now()
	p.mu.Lock()
	for i, x := range p.routes {
		if x == rt {
			p.routes = append(p.routes[:i:i], p.routes[i+1:]...)
			p.version++
			break
		}
	}
	for i, k := range rt.Path() {
		if k == reporter && i+1 < len(rt.Path())-1 {
			p.avoid[rt.Path()[i+1]] = now
		}
	}
	p.lastTry = time.Time{}
	p.fails++
	p.notifyLocked()
	// The destination itself no longer knows the route: it has most likely
	// restarted, and lost with it the end-to-end session this node sends on,
	// whose datagrams it now drops as an unknown session without a word.
	// Handshake afresh; the answer replaces the session and streams carry on
	// over the new one.
	restarted := reporter == p.key && reason == forward.ReasonNoRoute && p.sess != nil
	if restarted {
		p.pending = nil
	}
	p.mu.Unlock()
	p.e.r.CloseRoute(rt)
	p.e.r.cfg.Logf("mesh: route to %s via %d hops failed: %v", shortKey(p.key), len(rt.Path())-1, rt.Err())
	if restarted {
		p.e.r.count(countPeerRestarts)
		p.initiate(time.Now(), p.handshakeRTO())
	}
}

func pathUses(path topology.Path, nodes []topology.Key) bool {
	for _, k := range path[1 : len(path)-1] {
		for _, a := range nodes {
			if k == a {
				return true
			}
		}
	}
	return false
}

func samePath(a, b topology.Path) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// sendRaw sends an end-to-end datagram over one of p's up routes. With none up, a
// control datagram (a handshake message or an answer to one) goes back along the
// route the peer's traffic arrives on when there is one (sendBack), and is queued
// for p's first route up otherwise; either way a route to p is started at once,
// since later traffic needs one.
func (p *peer) sendRaw(b []byte, ctrl bool) bool {
	if rt := p.upRoute(); rt != nil {
		return rt.Send(b, ctrl)
	}
	if !ctrl {
		return false
	}
	sent := p.sendBack(b)
	if !sent {
		p.mu.Lock()
		if len(p.queued) < 4 {
			p.queued = append(p.queued, append([]byte(nil), b...))
		}
		p.mu.Unlock()
	}
	go p.maintain(time.Now(), true)
	return sent
}

// sendBack sends the control datagram b backwards along the route the peer's
// traffic last arrived on (peer.back); false when there is none or it is gone.
func (p *peer) sendBack(b []byte) bool {
	ru := p.back.Load()
	return ru != nil && p.e.r.SendBack(ru, b, true)
}

// sendApp seals an application frame and sends it on rt (or any up route when nil).
func (p *peer) sendApp(rt *forward.Route, kind byte, sport, dport uint16, body []byte) error {
	return p.sendAppOn(rt, nil, kind, sport, dport, body)
}

// sendAppOn is sendApp, sending backwards along back (routes.sendBack) when it is
// not nil.
func (p *peer) sendAppOn(rt *forward.Route, back *forward.Rule, kind byte, sport, dport uint16, body []byte) error {
	p.touch(time.Now())
	p.mu.Lock()
	s := p.sess
	p.mu.Unlock()
	if s == nil {
		return fmt.Errorf("%w: no end-to-end session", ErrUnreachable)
	}
	if !p.kindFits(s, rt, back) {
		return fmt.Errorf("%w: a new end-to-end session with %s is being set up (the way to it changed between radio and IP)", ErrUnreachable, shortKey(p.key))
	}
	if len(body) > appMTU-appHeader {
		return fmt.Errorf("mesh: %d-byte payload exceeds %d", len(body), appMTU-appHeader)
	}
	f := getBuf()
	defer putBuf(f)
	*f = append(*f, kind, byte(sport>>8), byte(sport), byte(dport>>8), byte(dport))
	*f = append(*f, body...)
	d := getBuf()
	defer putBuf(d)
	var err error
	*d, err = s.Seal(*d, *f)
	if err != nil {
		return err
	}
	ctrl := kind != appStream && kind != appDgram
	if back != nil {
		if !p.e.r.SendBack(back, *d, ctrl) {
			return fmt.Errorf("mesh: the way back to %s is gone or congested", shortKey(p.key))
		}
		return nil
	}
	if rt == nil {
		rt = p.upRoute()
		if rt == nil {
			// An echo reply before this node's own route back is up (a first
			// contact) goes back along the route the request came on.
			if ctrl && p.sendBack(*d) {
				return nil
			}
			return fmt.Errorf("%w: no route up", ErrUnreachable)
		}
	}
	if kind == appDgram {
		// A datagram sender waits for room rather than lose the datagram: the
		// route's buffer at this node is full only while the path is slower
		// than the sender (seeds/004: buffers fill upstream, nothing drops).
		ctx, cancel := context.WithTimeout(context.Background(), dgramWait)
		defer cancel()
		if err := rt.SendWait(ctx, *d, false); err != nil {
			return fmt.Errorf("mesh: route to %s: %w", shortKey(p.key), err)
		}
		return nil
	}
	if !rt.Send(*d, ctrl) {
		if rt.Up() {
			return errCongested
		}
		return fmt.Errorf("mesh: route to %s is down", shortKey(p.key))
	}
	return nil
}

// dgramWait bounds how long PacketConn.WriteTo waits for room on a route.
const dgramWait = 5 * time.Second

// errCongested: the route is up but holds its buffer's worth at this node.
var errCongested = errors.New("mesh: route congested")

// Deliver (forward.Upper) handles a route payload addressed to this node: an
// end-to-end datagram.
func (e *endToEnd) Deliver(ru *forward.Rule, b []byte, now time.Time) {
	if len(b) == unknownNoticeLen && b[0] == unknownNotice {
		e.unknownSession(ru, binary.BigEndian.Uint32(b[4:]), now)
		return
	}
	d := getBuf()
	defer putBuf(d)
	// A payload that crossed a radio link is clear, and is opened as such;
	// one that did not must be encrypted: nobody can talk this node into a
	// clear session where it need not be one.
	receive := e.sessions.Receive
	if ru.Amateur() {
		receive = e.sessions.ReceiveClear
	}
	ev, err := receive(b, *d, now, nil)
	switch {
	case ev.Type == 0 || errors.Is(err, link.ErrType):
		e.r.count(countBadFrame)
		return
	case (ev.Type == link.TypeData || ev.Type == link.TypeClearData) && errors.Is(err, link.ErrUnknownIndex):
		e.r.count(countUnknownIndex)
		e.noticeUnknown(ru, ev.Index, now)
		return
	case err != nil:
		e.r.countLinkErr(err)
		return
	}
	switch ev.Type {
	case link.TypeInit, link.TypeClearInit:
		var k topology.Key
		copy(k[:], ev.Session.Remote())
		p, err := e.peerFor(k)
		if err != nil {
			e.sessions.Drop(ev.Index)
			return
		}
		if ru.Delivers() { // not a Back frame at a route's source
			ru.SetSource(k)
			p.noteBack(ru) // answer along it until a route back is up
		}
		e.sessions.Bind(ev.Index, p)
		p.setSession(ev.Session)
		p.sendRaw(ev.Reply, true)
	case link.TypeResp, link.TypeClearResp:
		ev.Owner.noteBack(ru)
		ev.Owner.setSession(ev.Session)
	case link.TypeData, link.TypeClearData:
		p := ev.Owner
		if p == nil { // answered, not yet bound
			e.r.count(countUnknownIndex)
			return
		}
		p.noteBack(ru)
		if ev.Reply != nil {
			p.sendRaw(ev.Reply, true)
		}
		if ev.Payload != nil {
			p.touch(now)
			if !ev.Session.Initiator() {
				p.follow(ev.Session) // the peer uses this one; send on it too
			}
			e.app(p, ev.Payload, now)
		}
	}
}

// Clear (forward.Upper) reports whether route payload b carries nothing
// encrypted: a clear end-to-end handshake or datagram (link.IsClear), or an
// unknown-session notice. What an application puts inside clear data is the
// application's to judge (services/saf keeps sealed bundles off radio).
func (e *endToEnd) Clear(b []byte) bool {
	return link.IsClear(b) || (len(b) == unknownNoticeLen && b[0] == unknownNotice)
}

// noteBack records ru as the rule p's traffic arrives on, when it is one that
// delivers here (not the source's own rule, which Back frames arrive on).
func (p *peer) noteBack(ru *forward.Rule) {
	if ru.Delivers() && p.back.Load() != ru {
		p.back.Store(ru)
	}
}

// An unknown-session notice travels back along a route (a Back frame) from a
// destination that got end-to-end data for a session it does not hold, most
// likely because it restarted and the source still seals with the session it had:
//
//	type 0xf0 (not a link.Header type) | 3 zero bytes | receiver index (4)
//
// It is not authenticated (the destination holds no key to authenticate it
// with), so all it can make a source do is a new handshake, and only for the
// session it currently sends on with the route's destination, at most once per
// handshake timeout (initiate's own limit).
const (
	unknownNotice    = 0xf0
	unknownNoticeLen = 8
	// noticeEvery bounds the notices one rule sends.
	noticeEvery = 500 * time.Millisecond
)

// noticeUnknown answers data for an unknown session index with a notice back
// along the arriving rule, at most once per noticeEvery per rule.
func (e *endToEnd) noticeUnknown(ru *forward.Rule, idx uint32, now time.Time) {
	if ru == nil {
		return
	}
	if !ru.AllowNotice(now, noticeEvery) {
		return
	}
	b := make([]byte, unknownNoticeLen)
	b[0] = unknownNotice
	binary.BigEndian.PutUint32(b[4:], idx)
	e.r.SendBack(ru, b, true)
}

// unknownSession handles a notice arriving back on the source route of ru: if the
// index is that of the session this node sends on to the route's destination, the
// destination has forgotten it; handshake afresh (see routeFailed).
func (e *endToEnd) unknownSession(ru *forward.Rule, idx uint32, now time.Time) {
	if ru == nil || ru.Route() == nil {
		return
	}
	e.mu.Lock()
	p := e.peers[ru.Route().Dst()]
	e.mu.Unlock()
	if p == nil {
		return
	}
	rto := p.handshakeRTO()
	p.mu.Lock()
	forgot := p.sess != nil && p.sess.RemoteIndex() == idx
	if forgot && p.pending != nil && now.Sub(p.pendingAt) < rto {
		forgot = false // a new handshake is under way
	}
	if forgot {
		p.pending = nil
	}
	p.mu.Unlock()
	if forgot {
		e.r.count(countPeerRestarts)
		p.initiate(now, rto)
	}
}

// maxOldSessions is how many replaced end-to-end sessions of one peer stay
// readable. A lossy path can lose the answers to some of the handshakes a
// source retries, and the source keeps the session of whichever answer it got
// last; forgetting all but one older session here once left the source sending
// on a session this node no longer knew, with no echo ever coming back.
const maxOldSessions = 8

// setSession makes s the session p sends on. The ones it replaces stay readable
// (see maxOldSessions); beyond that the oldest is forgotten.
func (p *peer) setSession(s *link.Session) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.replaceLocked(s)
	p.pending = nil
	select {
	case <-p.ready:
	default:
		close(p.ready)
	}
	p.notifyLocked() // a connect waiting for a session of the other kind
}

// follow makes s, a session the peer has just used, the one p sends on.
func (p *peer) follow(s *link.Session) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.replaceLocked(s)
}

func (p *peer) replaceLocked(s *link.Session) {
	if p.sess == s {
		return
	}
	p.olds = slices.DeleteFunc(p.olds, func(o *link.Session) bool { return o == s })
	if p.sess != nil {
		p.olds = append(p.olds, p.sess)
	}
	p.sess = s
	for len(p.olds) > maxOldSessions {
		p.e.sessions.Drop(p.olds[0].LocalIndex())
		p.olds = p.olds[1:]
	}
}

// app dispatches one decrypted application frame from p.
func (e *endToEnd) app(p *peer, f []byte, now time.Time) {
	if len(f) < appHeader {
		e.r.count(countBadFrame)
		return
	}
	kind := f[0]
	sport := binary.BigEndian.Uint16(f[1:])
	dport := binary.BigEndian.Uint16(f[3:])
	body := f[appHeader:]
	switch kind {
	case appDgram:
		e.mu.Lock()
		pc := e.packets[dport]
		e.mu.Unlock()
		if pc != nil {
			pc.push(Addr{Key: p.key, Port: sport}, body)
		}
	case appStream:
		e.streamSegment(p, sport, dport, body)
	case appEchoReq:
		p.sendApp(nil, appEchoResp, dport, sport, body)
	case appEchoResp:
		if len(body) >= 4 {
			id := binary.BigEndian.Uint32(body)
			e.mu.Lock()
			ch := e.pings[id]
			delete(e.pings, id)
			e.mu.Unlock()
			if ch != nil {
				close(ch)
			}
		}
	default:
		e.r.count(countBadFrame)
	}
}

// Tick (forward.Upper) rekeys end-to-end sessions, keeps routes to active peers at strength and
// closes routes to idle ones.
func (e *endToEnd) Tick(now time.Time) {
	e.sessions.DropIf(func(x link.Entry[*peer]) bool {
		return x.Pending && now.Sub(x.Created) > pendingFor // its answer never came
	})
	e.mu.Lock()
	ps := make([]*peer, 0, len(e.peers))
	for _, p := range e.peers {
		ps = append(ps, p)
	}
	e.mu.Unlock()
	var gone map[*peer]int64
	for _, p := range ps {
		if idle, used := p.idle(); idle && now.Sub(time.Unix(0, used)) > PeerExpiry {
			if gone == nil {
				gone = make(map[*peer]int64)
			}
			gone[p] = used
			continue
		}
		p.mu.Lock()
		s := p.sess
		pending := p.pending != nil // read here, under p.mu: setSession clears it
		idle := now.Sub(p.lastUsed()) > 2*time.Minute && len(p.streams) == 0
		var rtt time.Duration
		for _, rt := range p.routes {
			if rt.Up() && (rtt == 0 || rt.SetupRTT() < rtt) {
				rtt = rt.SetupRTT()
			}
		}
		p.mu.Unlock()
		if s != nil {
			if out := s.Tick(now, rtt); out != nil {
				p.sendRaw(out, true)
			}
		}
		if idle {
			p.mu.Lock()
			rs := p.routes
			p.routes = nil
			p.version++
			p.mu.Unlock()
			for _, rt := range rs {
				e.r.CloseRoute(rt)
			}
			continue
		}
		if s != nil || pending {
			p.maintain(now, false)
		}
		if s != nil && pending {
			// A re-handshake (the peer restarted, see routeFailed) nobody waits
			// on in connect: resend it here until it is answered.
			p.initiate(now, p.handshakeRTO())
		}
	}
	if gone != nil {
		e.forget(gone)
	}
}

// Close (forward.Upper) closes every listener and PacketConn; the router closes next.
func (e *endToEnd) Close() {
	e.mu.Lock()
	e.closed = true
	ls := make([]*listener, 0, len(e.listeners))
	for _, l := range e.listeners {
		ls = append(ls, l)
	}
	pcs := make([]*PacketConn, 0, len(e.packets))
	for _, pc := range e.packets {
		pcs = append(pcs, pc)
	}
	e.mu.Unlock()
	for _, l := range ls {
		l.Close()
	}
	for _, pc := range pcs {
		pc.Close()
	}
}

// PingResult is the answer to Router.Ping.
type PingResult struct {
	// RTT is the end-to-end round trip of the echo over the route.
	RTT time.Duration
	// Path lists the node addresses of the route used, this node first.
	Path []string
	// SetupTime is how long the route took to set up (0 if it already existed).
	SetupTime time.Duration
}

// Ping sends an end-to-end echo to the node with key k over an existing or new
// route and waits for the answer (bounded by ctx). Errors: ErrNoRoute when the
// topology has no path, ErrUnreachable when no answer came.
func (r *Router) Ping(ctx context.Context, k topology.Key) (PingResult, error) {
	start := time.Now()
	e := r.e2e
	hadRoute := false
	e.mu.Lock()
	known := e.peers[k]
	e.mu.Unlock()
	if known != nil {
		hadRoute = known.upRoute() != nil
	}
	p, err := e.connect(ctx, k)
	if err != nil {
		return PingResult{}, err
	}
	var res PingResult
	missed := 0
	if !hadRoute {
		res.SetupTime = time.Since(start)
	}
	for {
		rt := p.bestRoute()
		if rt == nil {
			return res, fmt.Errorf("%w: route lost", ErrUnreachable)
		}
		id := r.rand32()
		ch := make(chan struct{})
		e.mu.Lock()
		e.pings[id] = ch
		e.mu.Unlock()
		t0 := time.Now()
		if err := p.sendApp(rt, appEchoReq, 0, 0, binary.BigEndian.AppendUint32(nil, id)); err != nil {
			return res, err
		}
		t := time.NewTimer(time.Second)
		select {
		case <-ch:
			t.Stop()
			res.RTT = time.Since(t0)
			rt.SetRTT(res.RTT)
			for _, k := range rt.Path() {
				res.Path = append(res.Path, shortKey(k))
			}
			return res, nil
		case <-t.C:
			e.mu.Lock()
			delete(e.pings, id)
			e.mu.Unlock()
			// Two echoes unanswered over an up route: the session this node
			// sends on may be one the peer has forgotten. Handshake afresh;
			// the answer replaces it, and the old one stays readable.
			if missed++; missed >= 2 {
				p.initiate(time.Now(), p.handshakeRTO())
			}
		case <-ctx.Done():
			t.Stop()
			e.mu.Lock()
			delete(e.pings, id)
			e.mu.Unlock()
			return res, fmt.Errorf("%w: no echo from %s", ErrUnreachable, shortKey(k))
		}
	}
}

// listener is a net.Listener for streams arriving on one port.
type listener struct {
	e    *endToEnd
	port uint16
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

// Listen accepts streams to port (1-65535) from any node.
func (r *Router) Listen(port uint16) (net.Listener, error) {
	e := r.e2e
	e.mu.Lock()
	defer e.mu.Unlock()
	if port == 0 || e.listeners[port] != nil {
		return nil, fmt.Errorf("%w: %d", ErrPortInUse, port)
	}
	l := &listener{e: e, port: port, ch: make(chan net.Conn, 64), done: make(chan struct{})}
	e.listeners[port] = l
	return l, nil
}

// Accept waits for the next stream.
func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting; streams already accepted live on.
func (l *listener) Close() error {
	l.once.Do(func() {
		close(l.done)
		l.e.mu.Lock()
		if l.e.listeners[l.port] == l {
			delete(l.e.listeners, l.port)
		}
		l.e.mu.Unlock()
	})
	return nil
}

// Addr is this node's address and the port.
func (l *listener) Addr() net.Addr { return Addr{Key: l.e.r.self, Port: l.port} }

// streamPaths presents p's up routes to one stream as stream.Paths.
type streamPaths struct {
	p            *peer
	sport, dport uint16 // ours, theirs

	mu        sync.Mutex
	version   int
	cacheBack *forward.Rule // p.back when cache was made
	cache     []stream.Path
}

// Paths lists p's up routes. With none up, it lists the way back along the route
// the peer's traffic arrives on (backPath), if there is one: a stream accepted on
// a first contact arrives before this node's own route back is up, and its SYN-ACK
// and acknowledgements need not wait for that route (the Conn would poll for it).
// Once a route is up the way back leaves the set.
func (sp *streamPaths) Paths() []stream.Path {
	p := sp.p
	p.mu.Lock()
	v := p.version
	routes := p.routes
	p.mu.Unlock()
	back := p.back.Load()
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if v == sp.version && back == sp.cacheBack && sp.cache != nil {
		return sp.cache
	}
	out := make([]stream.Path, 0, len(routes))
	for _, rt := range routes {
		if rt.Up() {
			out = append(out, &streamPath{sp: sp, rt: rt})
		}
	}
	if len(out) == 0 && back != nil {
		out = append(out, &backPath{sp: sp, ru: back})
	}
	sp.version, sp.cacheBack, sp.cache = v, back, out
	return out
}

// backPath is a stream's way back along the route the peer's traffic arrives on
// (routes.sendBack), for while the peer has no route of its own up.
type backPath struct {
	sp *streamPaths
	ru *forward.Rule
}

func (b *backPath) Send(seg []byte) error {
	return b.sp.p.sendAppOn(nil, b.ru, appStream, b.sp.sport, b.sp.dport, seg)
}

func (b *backPath) MTU() int { return appMTU - appHeader }

// ID sets the way back apart from routes (whose IDs count up from 1), one ID per
// rule (forward.Rule.ID).
func (b *backPath) ID() uint64 { return b.ru.ID() }

type streamPath struct {
	sp *streamPaths
	rt *forward.Route
}

var errRouteDown = errors.New("mesh: route down")

func (s *streamPath) Send(seg []byte) error {
	if !s.rt.Up() {
		return errRouteDown
	}
	err := s.sp.p.sendApp(s.rt, appStream, s.sp.sport, s.sp.dport, seg)
	if errors.Is(err, errCongested) {
		// The route's buffer here is full: the segment is lost to the stream,
		// whose congestion control backs off, not a broken route.
		return nil
	}
	return err
}

func (s *streamPath) MTU() int   { return appMTU - appHeader }
func (s *streamPath) ID() uint64 { return s.rt.ID() }

// Dial opens a reliable, ordered, end-to-end encrypted stream to port on the node
// with key k, spread over up to Config.Routes routes.
func (r *Router) Dial(ctx context.Context, k topology.Key, port uint16) (net.Conn, error) {
	e := r.e2e
	p, err := e.connect(ctx, k)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	var sport uint16
	for {
		sport = uint16(49152 + r.rand32()%16384)
		if p.streams[streamKey{sport, port}] == nil {
			break
		}
	}
	sp := &streamPaths{p: p, sport: sport, dport: port}
	c := stream.Dial(sp, Addr{Key: r.self, Port: sport}, Addr{Key: k, Port: port}, r.streamConfig(p.amateurLocked()))
	p.streams[streamKey{sport, port}] = c
	p.mu.Unlock()
	go e.reap(p, streamKey{sport, port}, c)
	return c, nil
}

// streamSegment routes a stream segment to its Conn, accepting new streams on
// listening ports.
func (e *endToEnd) streamSegment(p *peer, sport, dport uint16, seg []byte) {
	key := streamKey{dport, sport}
	p.mu.Lock()
	c := p.streams[key]
	p.mu.Unlock()
	if c != nil {
		c.Deliver(seg, nil)
		return
	}
	if !stream.IsSYN(seg) {
		// A stream this node does not know: it ended here, or this node
		// restarted since. Say so, or the peer sends into the void until its
		// idle timeout.
		if rst := stream.ResetFor(seg); rst != nil && p.allowReset(time.Now()) {
			p.sendStreamReset(dport, sport, rst)
		}
		return
	}
	e.mu.Lock()
	l := e.listeners[dport]
	e.mu.Unlock()
	if l == nil {
		return
	}
	p.mu.Lock()
	full := len(p.streams) >= MaxStreamsPerPeer
	radio := p.amateurLocked()
	p.mu.Unlock()
	if full {
		e.r.count(countPeerCap)
		return
	}
	sp := &streamPaths{p: p, sport: dport, dport: sport}
	c, err := stream.Accept(sp, Addr{Key: e.r.self, Port: dport}, Addr{Key: p.key, Port: sport}, e.r.streamConfig(radio), seg)
	if err != nil {
		return
	}
	p.mu.Lock()
	p.streams[key] = c
	p.mu.Unlock()
	go e.reap(p, key, c)
	select {
	case l.ch <- c:
	default:
		c.Close()
	}
}

// reap forgets a stream once it has ended.
func (e *endToEnd) reap(p *peer, key streamKey, c *stream.Conn) {
	<-c.Done()
	p.mu.Lock()
	if p.streams[key] == c {
		delete(p.streams, key)
	}
	p.mu.Unlock()
}

// streamConfig is the configuration of the router's streams: over store and
// forward, late packets are not taken for lost ones. A stream whose way is a
// radio link (radio set) runs on its timescale: at 1200 bit/s a full segment
// is ten seconds of air, so a 2 s RTO ceiling filled the channel with copies
// and a 30 s idle timeout gave up on a link that was merely busy. The RTO
// starts at radioStreamMinRTO: a radio route is one hop, and the link below
// it sends its datagrams again itself (forward/sf.go), so the stream's own
// copies only cover a link that died; with a 1 s floor, a dial over Dire
// Wolf sent eight SYNs before the first answer came back.
func (r *Router) streamConfig(radio bool) stream.Config {
	c := stream.Config{PerHopReliable: !r.cfg.PlainForwarding}
	if radio {
		c.Window = radioStreamWindow
		c.MinRTO, c.MaxRTO = radioStreamMinRTO, 2*time.Minute
		// A probe every 90 s: store and forward keeps a radio neighbour's
		// custody stream open for minutes between messages (saf's
		// radioSessionIdle), and at 30 s its probes were a few percent of
		// the channel for nothing.
		c.KeepAlive, c.IdleTimeout = 90*time.Second, 5*time.Minute
	}
	return c
}

// radioStreamWindow is a radio stream's bytes in flight: about 27 s of air at
// 1200 bit/s, a little more than the radio link's own window (forward/sf.go)
// so that the link does not wait for the stream. With 16 KB (two minutes of
// air) the segments queued behind the link timed out before they were on
// the air and were sent again: over Dire Wolf a 20 KB file put 80 KB on the
// air in 11 minutes, and over the built-in modem it did not arrive.
const radioStreamWindow = 4 << 10

// radioStreamMinRTO is a radio stream's least RTO: above the time a full
// window takes to go on the air and be acknowledged at 1200 bit/s (27 s of
// air, a datagram of the other station's and the link's ack hold).
const radioStreamMinRTO = 45 * time.Second

// maxResetsPerSecond caps the stream resets sent to one peer (streamSegment).
const maxResetsPerSecond = 20

// allowReset reports whether another stream reset may go to p now.
func (p *peer) allowReset(now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if now.Sub(p.resetsAt) >= time.Second {
		p.resetsAt, p.resets = now, 0
	}
	if p.resets >= maxResetsPerSecond {
		return false
	}
	p.resets++
	return true
}

// sendStreamReset sends a stream's RST segment from port sport here to dport at p:
// on a route of this node's own if one is up, else back along the route p's
// traffic arrives on (a node that has just restarted has no route of its own).
func (p *peer) sendStreamReset(sport, dport uint16, rst []byte) {
	if rt := p.upRoute(); rt != nil {
		p.sendApp(rt, appStream, sport, dport, rst)
		return
	}
	if back := p.back.Load(); back != nil {
		p.sendAppOn(nil, back, appStream, sport, dport, rst)
	}
}
