package forward

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skyfleet/skyfleet/services/mesh/topology"
)

// Route states.
const (
	routePending = iota
	routeUp
	routeFailed
)

// setupTimeout fails a route setup that got neither Confirm nor SetupFail. The
// Setup is resent meanwhile (see setupRTO), a few times on a slow path, about ten
// on a fast one.
const setupTimeout = 5 * time.Second

// Setup retransmission (setupRTO).
const (
	// setupHopSlack is added per hop to twice the path's measured round trip:
	// the time a node takes to handle the Setup or Confirm, which link pings
	// (answered at once) do not measure.
	setupHopSlack = 5 * time.Millisecond
	// unknownHopRTT stands in for a link of the path no RTT is known for yet.
	unknownHopRTT = 50 * time.Millisecond
	// unknownRadioRTT stands in for an amateur first link with no RTT yet: a
	// short frame each way at 1200 bit/s, with the transmitters' key-up.
	unknownRadioRTT = 3 * time.Second
	// maxSetupRTO bounds the back-off of Setup retransmissions (unless one
	// round trip of the path is longer).
	maxSetupRTO = time.Second
)

// Route is a source Route this node set up: the path it chose, and the Route ID
// to use on its first link.
type Route struct {
	id      uint64 // local identity (stream path ID)
	dst     topology.Key
	path    topology.Path // self first, destination last
	nonce   uint64
	first   *neighbour
	rid     uint32 // route ID on the first link, known once confirmed
	rule    *Rule  // the local-origin rule, for route errors coming back
	created time.Time

	state    atomic.Int32
	setupMsg []byte // the Setup body, resent until confirmed
	// rto is the first retransmission timeout of the Setup (setupRTO); retx
	// resends it, doubling the wait with every try. Both guarded by routes.mu.
	rto time.Duration
	// timeout fails the setup: setupTimeout, or three first RTOs on a slow
	// path (a radio hop's round trip is seconds).
	timeout  time.Duration
	retx     *time.Timer
	tries    int
	setup    time.Duration         // setup round trip
	failErr  atomic.Pointer[error] // why it failed; set once, just after state turns routeFailed
	done     chan struct{}         // closed when the route leaves pending
	lastSent atomic.Int64
	rtt      atomic.Int64 // last end-to-end echo round trip over the route, ns
	packets  atomic.Uint64
	bytes    atomic.Uint64
	// onFail is called once when an up or pending route fails (from the router's
	// goroutines; it must not block).
	onFail func(rt *Route, reporter topology.Key, reason byte)
	// roomCh is signalled when bytes of the route leave this node (the first hop
	// acknowledged them), for senders waiting for room (sendWait).
	roomCh chan struct{}
}

// send queues one payload on the route's first link, in the real-time class when
// rt is set. It reports false when the route is not up, or (bulk only) when the
// route already holds its buffer's worth at this node, queued or unacknowledged:
// the caller waits (sendWait) or treats it as loss, as a stream does.
func (rt *Route) send(payload []byte, realTime bool) bool {
	if rt.state.Load() != routeUp || rt.rule == nil {
		return false
	}
	ru := rt.rule
	r := rt.first.r
	if !r.clearFor(rt.first, payload) {
		return false
	}
	// The source holds more than a transit hop: a stream's window (which backs
	// off when its round trip shows this queue) should not meet the cap first.
	capa := sourceBufferFactor * max(r.capacity(rt.first), minRouteBuffer)
	ru.sf.mu.Lock()
	if !realTime && ru.sf.buf.Held()+len(payload) > capa {
		ru.sf.credit.Stalls++
		ru.sf.mu.Unlock()
		return false
	}
	ru.sf.buf.Hold(len(payload))
	ru.sf.mu.Unlock()
	r.held.Add(int64(len(payload)))
	rt.first.enqueue(ru, rt.rid, realTime, payload)
	now := time.Now().UnixNano()
	rt.lastSent.Store(now)
	if ru := rt.rule; ru != nil {
		ru.used.Store(now) // a route in use does not expire here
	}
	rt.packets.Add(1)
	rt.bytes.Add(uint64(len(payload)))
	return true
}

// room wakes a sender waiting for room on the route.
func (rt *Route) room() {
	select {
	case rt.roomCh <- struct{}{}:
	default:
	}
}

// sendWait is send that waits, until ctx ends, for room when the route's buffer
// is full. Errors: ErrRouteDown, ctx's error.
func (rt *Route) sendWait(ctx context.Context, payload []byte, realTime bool) error {
	for {
		if rt.send(payload, realTime) {
			return nil
		}
		if rt.state.Load() != routeUp {
			return ErrRouteDown
		}
		select {
		case <-rt.roomCh:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// fail marks the route failed, once, whether it was pending or up, and tells its
// owner. A route goes pending -> up -> failed or pending -> failed; done closes on
// leaving pending.
func (rt *Route) fail(err error, reporter topology.Key, reason byte) {
	for {
		st := rt.state.Load()
		if st == routeFailed {
			return
		}
		if !rt.state.CompareAndSwap(st, routeFailed) {
			continue
		}
		rt.failErr.Store(&err)
		if st == routePending {
			close(rt.done)
		}
		if rt.onFail != nil {
			rt.onFail(rt, reporter, reason)
		}
		return
	}
}

// confirm marks a pending route up with the route ID of its first link.
func (rt *Route) confirm(rid uint32, now time.Time) {
	if rt.state.Load() != routePending {
		return
	}
	rt.rid = rid
	rt.setup = now.Sub(rt.created)
	if rt.state.CompareAndSwap(routePending, routeUp) {
		close(rt.done)
	}
}

// transitSetup is a Setup this node forwarded and awaits the Confirm for.
type transitSetup struct {
	in      uint32 // link the Setup came from
	ridIn   uint32 // route ID allocated for it on that link
	expires time.Time
}

type transitKey struct {
	out   uint32
	nonce uint64
}

// seenSetup remembers a Setup this node handled, keyed by (in-link, nonce), so that a
// retransmitted Setup (the source resends until confirmed; links lose datagrams) is
// answered with the same route ID instead of allocating another.
type seenSetup struct {
	ridIn     uint32
	next      uint32 // link the Setup went on; local when this node is the destination
	fwd       []byte // the forwarded Setup body
	confirmed bool
	at        time.Time
}

// maxRules bounds the forwarding table (about 400 bytes a rule): a neighbour holding
// the network key cannot grow it without limit with Setups.
const maxRules = 200_000

// seenFor is how long a handled Setup is remembered.
const seenFor = 2 * setupTimeout

// routes runs the route setup protocol, as source and as transit hop.
type routes struct {
	r          *Router
	mu         sync.Mutex
	pendingSrc map[uint64]*Route // by nonce
	transit    map[transitKey]transitSetup
	seen       map[transitKey]*seenSetup // key.out is the in-link here
	byID       map[uint64]*Route
	errSent    map[hop]time.Time // rate limit for "no such route" errors
	nextID     uint64
	nextLocal  uint32

	// setupsSent counts Setup transmissions of routes this node originates,
	// retransmissions included (tests count them).
	setupsSent atomic.Uint64
}

func newRoutes(r *Router) *routes {
	return &routes{
		r:          r,
		pendingSrc: make(map[uint64]*Route),
		transit:    make(map[transitKey]transitSetup),
		seen:       make(map[transitKey]*seenSetup),
		byID:       make(map[uint64]*Route),
		errSent:    make(map[hop]time.Time),
	}
}

// errNoLink is returned when a path's first hop is not a live neighbour.
var errNoLink = errors.New("no live link to the first hop")

// errAmateurTransit is returned for a path that goes on past an amateur first
// link: radio links carry routes of one hop only (transport.go).
var errAmateurTransit = errors.New("the first hop is over radio, which carries routes of one hop only")

// start sends a Setup along path (self first) and returns the pending route; its
// done channel closes on Confirm, SetupFail or timeout.
func (rs *routes) start(path topology.Path, onFail func(*Route, topology.Key, byte)) (*Route, error) {
	if len(path) < 2 || path[0] != rs.r.self {
		return nil, fmt.Errorf("mesh: bad path of %d nodes", len(path))
	}
	if len(path)-2 > maxSetupHops {
		return nil, fmt.Errorf("mesh: path of %d hops is longer than %d", len(path)-1, maxSetupHops+1)
	}
	first := rs.r.neighbourByKey(path[1])
	if first == nil || !first.isUp() {
		return nil, errNoLink
	}
	if first.amateur && len(path) > 2 {
		return nil, errAmateurTransit
	}
	now := time.Now()
	rt := &Route{
		dst:     path[len(path)-1],
		path:    path,
		nonce:   rs.r.rand64(),
		first:   first,
		created: now,
		done:    make(chan struct{}),
		roomCh:  make(chan struct{}, 1),
		onFail:  onFail,
	}
	m := setupMsg{nonce: rt.nonce}
	for _, k := range path[2:] {
		m.rest = append(m.rest, [keyLen]byte(k))
	}
	rt.setupMsg = m.append(nil)
	rt.rto = rs.setupRTO(path, first)
	rt.timeout = max(setupTimeout, 3*rt.rto)
	rs.mu.Lock()
	rs.nextID++
	rt.id = rs.nextID
	rs.pendingSrc[rt.nonce] = rt
	rs.byID[rt.id] = rt
	rt.retx = time.AfterFunc(rt.rto, func() { rs.resend(rt) })
	rs.mu.Unlock()
	rs.setupsSent.Add(1)
	first.send(true, frameSetup, rt.setupMsg)
	return rt, nil
}

// resend retransmits rt's Setup if it is still pending and arms the next try with
// twice the wait: a lost Setup or Confirm costs a retry, not the route. A Setup
// sent again is answered as before by every hop that saw it (seenSetup).
func (rs *routes) resend(rt *Route) {
	rs.mu.Lock()
	if rs.pendingSrc[rt.nonce] != rt || time.Since(rt.created) > rt.timeout || (rs.r.ctx != nil && rs.r.ctx.Err() != nil) {
		// Confirmed, refused or closed meanwhile; or past its time (tick fails
		// it), or the router is closing: no more tries.
		rs.mu.Unlock()
		return
	}
	rt.tries++
	wait := min(rt.rto<<min(rt.tries, 10), max(rt.rto, maxSetupRTO))
	rt.retx.Reset(wait)
	rs.mu.Unlock()
	rs.setupsSent.Add(1)
	rt.first.send(true, frameSetup, rt.setupMsg)
}

// stopResendLocked stops rt's Setup retransmissions and lets the timer go (an up
// route keeps no timer); rs.mu must be held, and rt must have left pendingSrc
// under it, so that resend does not re-arm.
func (rt *Route) stopResendLocked() {
	if rt.retx != nil {
		rt.retx.Stop()
		rt.retx = nil
	}
}

// setupRTO is how long the source waits for a Confirm before it resends a Setup
// along path: twice the path's round trip plus setupHopSlack a hop. The round trip
// is measured, not assumed: the first link's own smoothed RTT, and for each later
// link the RTT its ends announce in the topology (the mean of the two), but never
// less than the first link's, since a link that has just come up announces 1 ms
// until its first ping is answered. Until the first link has an RTT sample,
// unknownHopRTT stands in for it.
func (rs *routes) setupRTO(path topology.Path, first *neighbour) time.Duration {
	floor := first.rtt()
	switch {
	case floor == 0 && first.amateur:
		floor = unknownRadioRTT
	case floor == 0:
		floor = unknownHopRTT
	}
	est := floor
	for i := 1; i+1 < len(path); i++ {
		est += max(announcedRTT(rs.r.graph, path[i], path[i+1]), floor)
	}
	hops := time.Duration(len(path) - 1)
	return 2*est + hops*setupHopSlack
}

// announcedRTT is the RTT of the link a-b as its ends announce it (the mean when
// both do), 0 when neither does.
func announcedRTT(g *topology.Graph, a, b topology.Key) time.Duration {
	var sum time.Duration
	n := 0
	for _, e := range [2][2]topology.Key{{a, b}, {b, a}} {
		ann, ok := g.Get(e[0])
		if !ok {
			continue
		}
		for _, nb := range ann.Neighbours {
			if nb.Key == e[1] {
				sum += nb.RTT
				n++
				break
			}
		}
	}
	if n == 0 {
		return 0
	}
	return sum / time.Duration(n)
}

// sendBack sends payload backwards along the route ru delivers here (a rule whose
// out-side is local), towards the route's source, in a Back frame; ctrl picks the
// first link's queue as for route.send. It reports false when the rule is gone or
// its in-link is down or congested.
func (rs *routes) sendBack(ru *Rule, payload []byte, ctrl bool) bool {
	if ru == nil || ru.out.link != local || ru.in.link == local || rs.r.table.lookup(ru.in) != ru {
		return false
	}
	in := rs.r.neighbourByLink(ru.in.link)
	if in == nil || !in.isUp() || !rs.r.clearFor(in, payload) {
		return false
	}
	if !in.send(ctrl, frameBack, u32(ru.in.rid), payload) {
		return false
	}
	ru.used.Store(time.Now().UnixNano())
	return true
}

// close tears the route down along its path and forgets it.
func (rs *routes) close(rt *Route) {
	rs.mu.Lock()
	delete(rs.byID, rt.id)
	delete(rs.pendingSrc, rt.nonce)
	rt.stopResendLocked()
	rs.mu.Unlock()
	if rt.state.Load() == routeUp {
		rt.first.send(true, frameTeardown, u32(rt.rid))
	}
	if rt.rule != nil {
		rs.r.table.remove(rt.rule)
	}
	rt.onFail = nil
	rt.fail(errors.New("closed"), rs.r.self, ReasonShutdown)
}

// list returns every source route.
func (rs *routes) list() []*Route {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	out := make([]*Route, 0, len(rs.byID))
	for _, rt := range rs.byID {
		out = append(out, rt)
	}
	return out
}

// handle processes a route-control frame from link n.
func (rs *routes) handle(n *neighbour, typ byte, body []byte, now time.Time) error {
	r := rs.r
	switch typ {
	case frameSetup:
		m, err := parseSetup(body)
		if err != nil {
			return err
		}
		sk := transitKey{n.id, m.nonce}
		rs.mu.Lock()
		if seen := rs.seen[sk]; seen != nil {
			// A retransmission: answer as before.
			confirmed, rid, next, fwd := seen.confirmed, seen.ridIn, seen.next, seen.fwd
			rs.mu.Unlock()
			if confirmed {
				n.send(true, frameConfirm, confirmMsg{nonce: m.nonce, rid: rid}.append(nil))
			} else if out := r.neighbourByLink(next); out != nil {
				out.send(true, frameSetup, fwd)
			}
			return nil
		}
		rs.mu.Unlock()
		if r.table.len() >= maxRules {
			n.send(true, frameSetupFail, failMsg{id: m.nonce, reason: ReasonFull, reporter: r.self}.appendSetupFail(nil))
			return nil
		}
		if len(m.rest) == 0 {
			// We are the destination: deliver locally.
			rid := n.allocRID()
			r.table.install(&Rule{in: hop{n.id, rid}, out: hop{local, 0}, amateur: n.amateur}, now)
			rs.mu.Lock()
			rs.seen[sk] = &seenSetup{ridIn: rid, next: local, confirmed: true, at: now}
			rs.mu.Unlock()
			n.send(true, frameConfirm, confirmMsg{nonce: m.nonce, rid: rid}.append(nil))
			return nil
		}
		next := r.neighbourByKey(m.rest[0])
		if next == nil || !next.isUp() || next == n {
			n.send(true, frameSetupFail, failMsg{id: m.nonce, reason: ReasonNoLink, reporter: r.self}.appendSetupFail(nil))
			return nil
		}
		if n.amateur || next.amateur {
			// No transit to or from a radio link: what crosses one hop of
			// radio and goes on is store and forward's (transport.go).
			n.send(true, frameSetupFail, failMsg{id: m.nonce, reason: ReasonAmateur, reporter: r.self}.appendSetupFail(nil))
			return nil
		}
		rid := n.allocRID()
		fwd := setupMsg{nonce: m.nonce, rest: m.rest[1:]}.append(nil)
		rs.mu.Lock()
		rs.transit[transitKey{next.id, m.nonce}] = transitSetup{in: n.id, ridIn: rid, expires: now.Add(setupTimeout)}
		rs.seen[sk] = &seenSetup{ridIn: rid, next: next.id, fwd: fwd, at: now}
		rs.mu.Unlock()
		next.send(true, frameSetup, fwd)
	case frameConfirm:
		m, err := parseConfirm(body)
		if err != nil {
			return err
		}
		k := transitKey{n.id, m.nonce}
		rs.mu.Lock()
		ts, isTransit := rs.transit[k]
		delete(rs.transit, k)
		rt := rs.pendingSrc[m.nonce]
		if rt != nil && rt.first == n {
			delete(rs.pendingSrc, m.nonce)
			rt.stopResendLocked()
		} else {
			rt = nil
		}
		if rt != nil {
			rs.nextLocal++
			rt.rule = &Rule{in: hop{local, rs.nextLocal}, out: hop{n.id, m.rid}, route: rt, amateur: n.amateur}
		}
		rs.mu.Unlock()
		switch {
		case isTransit:
			rs.mu.Lock()
			if seen := rs.seen[transitKey{ts.in, m.nonce}]; seen != nil {
				seen.confirmed = true
			}
			rs.mu.Unlock()
			in := r.neighbourByLink(ts.in)
			if in == nil || !in.isUp() {
				// The way back died meanwhile; the downstream rules will expire.
				n.send(true, frameTeardown, u32(m.rid))
				return nil
			}
			r.table.install(&Rule{in: hop{ts.in, ts.ridIn}, out: hop{n.id, m.rid}}, now)
			in.send(true, frameConfirm, confirmMsg{nonce: m.nonce, rid: ts.ridIn}.append(nil))
		case rt != nil:
			r.table.install(rt.rule, now)
			rt.confirm(m.rid, now)
		}
	case frameSetupFail:
		m, err := parseSetupFail(body)
		if err != nil {
			return err
		}
		k := transitKey{n.id, m.id}
		rs.mu.Lock()
		ts, isTransit := rs.transit[k]
		delete(rs.transit, k)
		rt := rs.pendingSrc[m.id]
		if rt != nil && rt.first == n {
			delete(rs.pendingSrc, m.id)
			rt.stopResendLocked()
		} else {
			rt = nil
		}
		rs.mu.Unlock()
		switch {
		case isTransit:
			if in := r.neighbourByLink(ts.in); in != nil {
				in.send(true, frameSetupFail, body)
			}
		case rt != nil:
			rt.fail(fmt.Errorf("setup refused by %s: %s", shortKey(m.reporter), reasonString(m.reason)), topology.Key(m.reporter), m.reason)
		}
	case frameRouteErr:
		m, err := parseRouteErr(body)
		if err != nil {
			return err
		}
		ru := r.table.lookupReverse(hop{n.id, uint32(m.id)})
		if ru == nil || !r.table.remove(ru) {
			return nil
		}
		r.ruleBrokenBy(ru, n.id, m.reason, topology.Key(m.reporter))
	case frameTeardown, frameKeepalive:
		rid, err := parseRouteID(body, true)
		if err != nil {
			return err
		}
		ru := r.table.lookup(hop{n.id, rid})
		if ru == nil {
			return nil
		}
		if typ == frameTeardown {
			r.table.remove(ru)
		} else {
			ru.used.Store(now.UnixNano())
		}
		if ru.out.link != local {
			if out := r.neighbourByLink(ru.out.link); out != nil {
				out.send(true, typ, u32(ru.out.rid))
			}
		}
	}
	return nil
}

// noRule answers data for an unknown route ID with a route error, at most once a
// second per (link, route ID), so the source learns its route is gone.
func (rs *routes) noRule(n *neighbour, rid uint32, now time.Time) {
	k := hop{n.id, rid}
	rs.mu.Lock()
	last, ok := rs.errSent[k]
	if ok && now.Sub(last) < time.Second {
		rs.mu.Unlock()
		return
	}
	rs.errSent[k] = now
	rs.mu.Unlock()
	n.send(true, frameRouteErr, failMsg{id: uint64(rid), reason: ReasonNoRoute, reporter: rs.r.self}.appendRouteErr(nil))
}

// linkDown fails source routes still being set up over the dead link and drops
// transit setups through it.
func (rs *routes) linkDown(linkID uint32) {
	rs.mu.Lock()
	var failed []*Route
	for nonce, rt := range rs.pendingSrc {
		if rt.first.id == linkID {
			failed = append(failed, rt)
			delete(rs.pendingSrc, nonce)
			rt.stopResendLocked()
		}
	}
	for k, ts := range rs.transit {
		if k.out == linkID || ts.in == linkID {
			delete(rs.transit, k)
		}
	}
	rs.mu.Unlock()
	for _, rt := range failed {
		rt.fail(errors.New("first hop's link died during setup"), rs.r.self, ReasonLinkDown)
	}
}

// tick expires setups and sends keepalives on idle source routes.
func (rs *routes) tick(now time.Time) {
	rs.mu.Lock()
	var expired, idle []*Route
	for nonce, rt := range rs.pendingSrc {
		if now.Sub(rt.created) > rt.timeout {
			expired = append(expired, rt)
			delete(rs.pendingSrc, nonce)
			rt.stopResendLocked()
		}
	}
	for k, ts := range rs.transit {
		if now.After(ts.expires) {
			delete(rs.transit, k)
		}
	}
	for k, seen := range rs.seen {
		if now.Sub(seen.at) > seenFor {
			delete(rs.seen, k)
		}
	}
	for k, t := range rs.errSent {
		if now.Sub(t) > time.Second {
			delete(rs.errSent, k)
		}
	}
	keep := rs.r.cfg.RouteIdle / 3
	for _, rt := range rs.byID {
		k := keep
		if rt.first.amateur {
			k = radioRouteIdle / 3 // a keepalive is seconds of air
		}
		if rt.state.Load() == routeUp && now.Sub(time.Unix(0, rt.lastSent.Load())) > k {
			idle = append(idle, rt)
		}
	}
	rs.mu.Unlock()
	for _, rt := range expired {
		rt.fail(errors.New("route setup timed out"), rs.r.self, 0)
	}
	for _, rt := range idle {
		rt.first.send(true, frameKeepalive, u32(rt.rid))
		rt.lastSent.Store(now.UnixNano())
		if ru := rt.rule; ru != nil {
			ru.used.Store(now.UnixNano())
		}
	}
}

// ruleBroken handles a rule removed because link broke on one of its sides.
func (r *Router) ruleBroken(ru *Rule, broken uint32, reason byte) {
	r.ruleBrokenBy(ru, broken, reason, r.self)
}

// ruleBrokenBy tells the source (route error backwards) when the out-side broke, and
// the rest of the path (teardown forwards) when the in-side broke.
func (r *Router) ruleBrokenBy(ru *Rule, broken uint32, reason byte, reporter topology.Key) {
	if ru.out.link == broken {
		if ru.in.link == local {
			if ru.route != nil {
				ru.route.fail(fmt.Errorf("route broken at %s: %s", shortKey(reporter), reasonString(reason)), reporter, reason)
			}
			return
		}
		if in := r.neighbourByLink(ru.in.link); in != nil {
			in.send(true, frameRouteErr, failMsg{id: uint64(ru.in.rid), reason: reason, reporter: reporter}.appendRouteErr(nil))
		}
		return
	}
	if ru.out.link != local {
		if out := r.neighbourByLink(ru.out.link); out != nil {
			out.send(true, frameTeardown, u32(ru.out.rid))
		}
	}
}

// ruleExpired handles a rule removed for idleness.
func (r *Router) ruleExpired(ru *Rule) {
	if ru.in.link == local && ru.route != nil {
		ru.route.fail(errors.New("route expired"), r.self, 0)
	}
}

// ErrRouteDown is returned by Route.SendWait when the route failed or was closed.
var ErrRouteDown = errors.New("mesh: route down")

// What the layer above (Upper) uses of a source route.

// ID is the route's local identity, unique among this router's routes (a stream
// path's ID).
func (rt *Route) ID() uint64 { return rt.id }

// Path is the route's path, this node first and the destination last. It must not
// be modified.
func (rt *Route) Path() topology.Path { return rt.path }

// Amateur reports whether the route's first link is over an amateur transport
// (transport.go): it then has one hop, and carries only clear payloads
// (Upper.Clear).
func (rt *Route) Amateur() bool { return rt.first.amateur }

// Pending reports whether the route is still being set up.
func (rt *Route) Pending() bool { return rt.state.Load() == routePending }

// Up reports whether the route is confirmed and has not failed.
func (rt *Route) Up() bool { return rt.state.Load() == routeUp }

// Done is closed when the route leaves pending: it came up or failed.
func (rt *Route) Done() <-chan struct{} { return rt.done }

// Err is why the route failed (nil while it has not). The onFail callback given to
// SetupRoute sees it set.
func (rt *Route) Err() error {
	if e := rt.failErr.Load(); e != nil {
		return *e
	}
	if rt.state.Load() == routeFailed {
		return ErrRouteDown
	}
	return nil
}

// SetupRTT is how long the route took from Setup to Confirm; valid once it is up.
func (rt *Route) SetupRTT() time.Duration { return rt.setup }

// RTT is the last end-to-end round trip measured over the route (SetRTT), 0 before
// the first.
func (rt *Route) RTT() time.Duration { return time.Duration(rt.rtt.Load()) }

// SetRTT records an end-to-end round trip measured over the route (an echo); the
// status page shows it.
func (rt *Route) SetRTT(d time.Duration) { rt.rtt.Store(int64(d)) }

// Send queues one payload (at most RouteMTU bytes, copied) on the route, in the
// real-time class when realTime is set. It reports false when the route is not up
// or (bulk only) its buffer at this node is full: the caller waits (SendWait) or
// treats it as a loss.
func (rt *Route) Send(payload []byte, realTime bool) bool { return rt.send(payload, realTime) }

// SendWait is Send that waits, until ctx ends, for room in the route's buffer.
// Errors: ErrRouteDown, ctx's error.
func (rt *Route) SendWait(ctx context.Context, payload []byte, realTime bool) error {
	return rt.sendWait(ctx, payload, realTime)
}

// SetupRoute sends a Setup along path (this node first, at most 17 hops) and
// returns the pending route; Done closes on Confirm, SetupFail or timeout (5 s).
// onFail, if set, is called once when the route fails, pending or up, from the
// router's goroutines (it must not block), with the node that reported the
// failure and the reason code (wire.go). Errors: a bad or too long path, no live
// link to the first hop.
func (r *Router) SetupRoute(path topology.Path, onFail func(rt *Route, reporter topology.Key, reason byte)) (*Route, error) {
	return r.routes.start(path, onFail)
}

// CloseRoute tears rt down along its path and forgets it; onFail is not called.
func (r *Router) CloseRoute(rt *Route) { r.routes.close(rt) }

// SendBack sends payload (copied) backwards along ru, a rule that delivers here,
// towards its route's source, in a Back frame; ctrl picks the link's control
// queue. It reports false when the rule is gone or its link is down or congested.
func (r *Router) SendBack(ru *Rule, payload []byte, ctrl bool) bool {
	return r.routes.sendBack(ru, payload, ctrl)
}

// Dst is the route's destination, the last node of its path.
func (rt *Route) Dst() topology.Key { return rt.dst }

// SetupsSent counts the route Setups this node sent as a source, retransmissions
// included.
func (r *Router) SetupsSent() uint64 { return r.routes.setupsSent.Load() }
