package saf

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Mesh is what the engine needs of the router (services/mesh; tests use an
// in-memory one). Streams are reliable and authenticated: the key a Listener
// reports is the one the stream's end-to-end session proved.
type Mesh interface {
	// Self is this node's key.
	Self() Key
	// NextHop returns the neighbour to hand a bundle for dst to (the first hop of
	// the best path, avoiding the given nodes where another path exists, and
	// never starting with a link to one of notFirst); ok is false when the
	// topology holds no such path.
	NextHop(dst Key, avoid, notFirst []Key) (next Key, ok bool)
	// Neighbours returns the keys of the neighbours whose links are up.
	Neighbours() []Key
	// Radio reports whether the way to neighbour k is an amateur-radio link
	// (and no other is up): only bundles in clear may cross it (RegisterClear).
	Radio(k Key) bool
	// Dial opens a stream to port on neighbour k.
	Dial(ctx context.Context, k Key, port uint16) (net.Conn, error)
	// Listen accepts streams on port.
	Listen(port uint16) (Listener, error)
}

// Listener accepts custody streams and says who opened each.
type Listener interface {
	Accept() (net.Conn, Key, error)
	Close() error
}

// DeliverFunc hands a bundle to a local application. It must be idempotent (a
// crash between it and the store's release delivers the bundle again after the
// restart) and must return nil only once the application holds the bundle durably.
type DeliverFunc func(id ID, b *Bundle) error

// Ports of the applications carried by bundles.
const (
	// PortMsg is services/msg's messages and receipts.
	PortMsg = 1
)

// Tunables of the engine.
const (
	// Window is how many Transfers may await their CustodyAck on one neighbour
	// stream.
	Window = 64
	// ackTimeout closes a stream whose oldest Transfer has had no CustodyAck this
	// long; its bundles are sent again (the receiver answers duplicate if it had
	// them).
	ackTimeout = 10 * time.Second
	// dialTimeout bounds the dial of a custody stream.
	dialTimeout = 10 * time.Second
	// radioAckTimeout and radioDialTimeout are ackTimeout and dialTimeout
	// towards a neighbour whose way is a radio link (Mesh.Radio), where a
	// round trip is 5-20 s of air and CSMA: with 10 s the stream to a
	// neighbour across two Dire Wolf TNCs broke before its first ack, again
	// and again, and no bundle ever crossed.
	radioAckTimeout  = 3 * time.Minute
	radioDialTimeout = 2 * time.Minute
	// sessionIdle closes a custody stream that had nothing to send this long;
	// radioSessionIdle towards a radio neighbour, where opening the next one
	// costs a round trip of 6-10 s of air (the stream's SYN) before the
	// bundle can go: a message on a warm Dire Wolf link took three round
	// trips, 25-33 s, with the stream closed after 10 s.
	sessionIdle      = 10 * time.Second
	radioSessionIdle = 4 * time.Minute
	// maxServe bounds the Transfers of one incoming stream being committed at
	// once; they share group commits.
	maxServe = Window
	// scheduleEvery is how often held bundles are looked at, so a new link or
	// route is used within this long even without a wake-up.
	scheduleEvery = 250 * time.Millisecond
	// peerIdle ends a neighbour's sender goroutine after this long with nothing
	// to send.
	peerIdle = 5 * time.Minute
)

// ErrFull is returned by Send when the store is at its cap.
var ErrFull = errors.New("saf: the store is full")

// Options configure New.
type Options struct {
	Mesh  Mesh
	Store *Store
	// Logf receives notable events. Default: discard.
	Logf func(format string, args ...any)
	// Released, if set, is called when custody of a bundle made here passes to
	// a neighbour (to) or ends otherwise (status says how).
	Released func(id ID, to Key, status Status)
}

// Engine moves bundles: it takes custody of those its neighbours send, hands held
// ones on towards their destinations, and delivers those for this node.
type Engine struct {
	opts  Options
	mesh  Mesh
	store *Store
	self  Key

	mu         sync.Mutex
	apps       map[uint16]DeliverFunc
	peers      map[Key]*outPeer
	busy       map[ID]Key          // unicast bundles queued or in flight, and to whom
	sentTo     map[ID]map[Key]bool // broadcast bundles: neighbours that have them
	delivering map[ID]bool
	keep       map[ID]bool // in flight, but a copy came back: see returning
	releasing  map[ID]bool // custody ending after an ack, this instant
	extraStats map[string]func() any
	// clearFns recognise payloads in clear per port (RegisterClear); clear
	// caches their answer per held bundle (forgetBundle drops it).
	clearFns map[uint16]func(payload []byte) bool
	clear    map[ID]bool

	wake chan struct{}
	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup

	// Counters (Stats).
	transfersSent, transfersRecv, refused, delivered, streamFailures atomic.Uint64
	// heldOffRadio counts scheduling rounds in which a sealed bundle's only
	// next hop was a radio link, so it stayed (Stats.HeldOffRadio).
	heldOffRadio atomic.Uint64
	acks         [numStatus]atomic.Uint64
}

// New makes an engine; Start runs it.
func New(opts Options) *Engine {
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	return &Engine{opts: opts, mesh: opts.Mesh, store: opts.Store, self: opts.Mesh.Self(),
		apps: make(map[uint16]DeliverFunc), peers: make(map[Key]*outPeer), busy: make(map[ID]Key),
		sentTo: make(map[ID]map[Key]bool), delivering: make(map[ID]bool),
		keep: make(map[ID]bool), releasing: make(map[ID]bool), wake: make(chan struct{}, 1),
		clearFns: make(map[uint16]func([]byte) bool), clear: make(map[ID]bool)}
}

// RegisterClear tells the engine how to recognise a payload of port that
// carries nothing encrypted (services/msg: msg.IsClear). Only such bundles are
// handed to a neighbour over an amateur-radio link (Mesh.Radio), where nothing
// may be encrypted (47 CFR 97.113(a)(4)); a port without one never crosses
// radio, and its bundles wait for another way.
func (e *Engine) RegisterClear(port uint16, clear func(payload []byte) bool) {
	e.mu.Lock()
	e.clearFns[port] = clear
	e.mu.Unlock()
	e.poke()
}

// isClear reports whether held bundle id (of port) may cross a radio link,
// reading it once and caching the answer.
func (e *Engine) isClear(id ID, port uint16) bool {
	e.mu.Lock()
	c, ok := e.clear[id]
	fn := e.clearFns[port]
	e.mu.Unlock()
	if ok || fn == nil {
		return c
	}
	enc, _, ok := e.store.Get(id)
	if !ok {
		return false
	}
	b, err := Parse(enc)
	if err != nil {
		return false
	}
	c = fn(b.Payload)
	e.mu.Lock()
	e.clear[id] = c
	e.mu.Unlock()
	return c
}

// Register makes fn the receiver of bundles for port on this node. Register
// before Start, so that bundles held across a restart find their application.
func (e *Engine) Register(port uint16, fn DeliverFunc) {
	e.mu.Lock()
	e.apps[port] = fn
	e.mu.Unlock()
	e.poke()
}

// Start listens for custody streams and runs the scheduler until Close.
// Errors: the custody port cannot be opened.
func (e *Engine) Start(ctx context.Context) error {
	ln, err := e.mesh.Listen(CustodyPort)
	if err != nil {
		return fmt.Errorf("saf: custody port %d: %w", CustodyPort, err)
	}
	e.ctx, e.stop = context.WithCancel(ctx)
	e.wg.Add(2)
	go e.acceptLoop(ln)
	go e.scheduleLoop()
	go func() { <-e.ctx.Done(); ln.Close() }()
	return nil
}

// Close stops the engine and waits for it. Bundles in flight stay held; they are
// sent again after the next start.
func (e *Engine) Close() {
	if e.stop == nil {
		return
	}
	e.stop()
	e.mu.Lock()
	for _, p := range e.peers {
		p.close()
	}
	e.mu.Unlock()
	e.wg.Wait()
}

func (e *Engine) poke() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Send takes custody of a bundle made on this node and returns its ID once it is
// durable; the engine then hands it on. Errors: a malformed bundle (ErrMalformed),
// ErrFull, an expired one, a failed commit.
func (e *Engine) Send(b *Bundle) (ID, error) {
	if b.Seq == 0 {
		var s [8]byte
		rand.Read(s[:])
		b.Seq = binary.BigEndian.Uint64(s[:])
	}
	enc, err := b.Marshal()
	if err != nil {
		return ID{}, err
	}
	id, st, err := e.store.Accept(enc, 0, Key{})
	if err != nil {
		return id, err
	}
	switch st {
	case StatusAccepted, StatusDuplicate:
		e.poke()
		return id, nil
	case StatusFull:
		return id, ErrFull
	default:
		return id, fmt.Errorf("saf: bundle refused: %s", st)
	}
}

// Import takes custody of a bundle from a data-mule file (see ParseFile). It
// returns the status: accepted, duplicate, expired or full. Errors: malformed
// file, failed commit.
func (e *Engine) Import(file []byte) (ID, Status, error) {
	t, _, err := ParseFile(file)
	if err != nil {
		return ID{}, StatusRefused, err
	}
	id, st, err := e.store.Accept(t.Bundle, t.Age, Key{})
	if err == nil && st == StatusAccepted {
		e.poke()
	}
	return id, st, err
}

// Export calls fn with a data-mule file for every held bundle not for this node,
// so a USB stick can carry them; the node keeps custody (the stick acknowledges
// nothing), and duplicates are recognised by ID wherever they arrive.
func (e *Engine) Export(fn func(id ID, file []byte) error) (int, error) {
	n := 0
	for _, en := range e.store.snapshot() {
		if en.dst == e.self {
			continue
		}
		enc, age, ok := e.store.Get(en.id)
		if !ok {
			continue
		}
		if err := fn(en.id, MarshalFile(age, enc)); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// acceptLoop takes custody streams from neighbours.
func (e *Engine) acceptLoop(ln Listener) {
	defer e.wg.Done()
	for {
		c, from, err := ln.Accept()
		if err != nil {
			return
		}
		e.wg.Add(1)
		go e.serve(c, from)
	}
}

// serve reads Transfers from neighbour from, commits them (concurrently, so they
// share group commits) and answers each with a CustodyAck.
func (e *Engine) serve(c net.Conn, from Key) {
	defer e.wg.Done()
	defer c.Close()
	ackWait := ackTimeout
	if e.mesh.Radio(from) {
		ackWait = radioAckTimeout
	}
	stop := context.AfterFunc(e.ctx, func() { c.Close() })
	defer stop()
	r := bufio.NewReaderSize(c, 64<<10)
	var wmu sync.Mutex
	sem := make(chan struct{}, maxServe)
	var wg sync.WaitGroup
	defer wg.Wait()
	var buf []byte
	for {
		typ, body, err := readFrame(r, buf)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && e.ctx.Err() == nil {
				e.refused.Add(1)
			}
			return
		}
		buf = body[:0]
		if typ != frameTransfer || len(body) < 8 {
			e.refused.Add(1)
			return
		}
		e.transfersRecv.Add(1)
		t, b, perr := ParseTransfer(body)
		if perr != nil {
			// The sender's copy is no better: tell it to drop it.
			e.refused.Add(1)
			wmu.Lock()
			c.Write(AppendCustodyAck(nil, IDOf(body[8:]), StatusRefused))
			wmu.Unlock()
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			id := IDOf(t.Bundle)
			kept, releasing := e.returning(id)
			id, st, err := e.store.Accept(t.Bundle, t.Age, from)
			switch {
			case err != nil:
				e.opts.Logf("saf: custody of a bundle from %s: %v", from, err)
				st = StatusFull // not held: the sender keeps it and tries again
			case st == StatusDuplicate && kept:
				// Our copy is in flight and this one came back round: the
				// ack of ours must not end our custody, or both would let go.
				st = StatusAccepted
			case st == StatusDuplicate && releasing:
				// Our copy is being released this instant: ask for it again.
				st = StatusFull
			}
			wmu.Lock()
			c.SetWriteDeadline(time.Now().Add(ackWait))
			_, werr := c.Write(AppendCustodyAck(nil, id, st))
			wmu.Unlock()
			if werr != nil {
				c.Close()
			}
			if st == StatusAccepted && (b.Destination == e.self || b.Destination.IsBroadcast()) {
				e.deliverLocal(id, b.Destination.IsBroadcast())
			} else if st == StatusAccepted {
				e.poke()
			}
		}()
	}
}

// returning is called when a Transfer of id arrives. If this node has its own copy
// in flight (unicast, queued or sent to a neighbour), that copy's custody ack must
// not release it: the bundle came back round (a route changed), and the sender of
// this one will let go when we answer. kept reports that. releasing reports that
// our copy is being released right now (its ack arrived).
func (e *Engine) returning(id ID) (kept, releasing bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.releasing[id] {
		return false, true
	}
	if _, busy := e.busy[id]; busy {
		e.keep[id] = true
		return true, false
	}
	return false, false
}

// deliverLocal hands a held bundle to its application; a bundle for this node is
// then released (its ID kept as delivered), a broadcast one marked delivered and
// kept to be forwarded.
func (e *Engine) deliverLocal(id ID, broadcast bool) {
	e.mu.Lock()
	if e.delivering[id] {
		e.mu.Unlock()
		return
	}
	e.delivering[id] = true
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.delivering, id)
		e.mu.Unlock()
	}()
	// The callers decided from what they saw before: the schedule loop's
	// snapshot can predate a delivery that the accepting stream finished
	// since (a broadcast arriving from two neighbours at once reached an
	// application twice).
	if e.store.Delivered(id) {
		return
	}
	enc, _, ok := e.store.Get(id)
	if !ok {
		return
	}
	b, err := Parse(enc)
	if err != nil {
		return
	}
	e.mu.Lock()
	fn := e.apps[b.Port]
	e.mu.Unlock()
	if fn == nil {
		return // kept until an application registers or the bundle expires
	}
	if err := fn(id, b); err != nil {
		e.opts.Logf("saf: delivering bundle %s: %v (will retry)", id.String()[:16], err)
		return
	}
	e.delivered.Add(1)
	if broadcast {
		err = e.store.MarkDelivered(id)
	} else {
		err = e.store.Release(id, true)
	}
	if err != nil {
		e.opts.Logf("saf: %v", err)
	}
}

// scheduleLoop looks at held bundles on every wake-up and every scheduleEvery.
func (e *Engine) scheduleLoop() {
	defer e.wg.Done()
	t := time.NewTicker(scheduleEvery)
	defer t.Stop()
	var lastExpire, lastSave time.Time
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-e.wake:
		case <-t.C:
		}
		now := time.Now()
		if now.Sub(lastExpire) >= time.Second {
			lastExpire = now
			if ids, err := e.store.Expire(); err != nil {
				e.opts.Logf("%v", err)
			} else {
				for _, id := range ids {
					e.forgetBundle(id)
					if e.opts.Released != nil {
						e.opts.Released(id, Key{}, StatusExpired)
					}
				}
			}
		}
		if now.Sub(lastSave) >= tickSave {
			lastSave = now
			e.store.SaveTicks()
		}
		e.schedule()
	}
}

func (e *Engine) forgetBundle(id ID) {
	e.mu.Lock()
	delete(e.sentTo, id)
	delete(e.clear, id)
	e.mu.Unlock()
}

// schedule queues every held bundle that can move towards a neighbour: real-time
// first, then by the time this node took custody.
func (e *Engine) schedule() {
	es := e.store.snapshot()
	sort.Slice(es, func(i, j int) bool {
		if es[i].class != es[j].class {
			return es[i].class > es[j].class
		}
		return es[i].arrival < es[j].arrival
	})
	neigh := e.mesh.Neighbours()
	hops := make(map[Key]*Key)
	e.pruneClear(es)
	for i := range es {
		en := &es[i]
		switch {
		case en.dst == e.self:
			if e.hasApp(en.port) {
				go e.deliverLocal(en.id, false)
			}
		case en.dst.IsBroadcast():
			if en.flags&flagDelivered == 0 && en.src != e.self && e.hasApp(en.port) {
				go e.deliverLocal(en.id, true)
			}
			for _, n := range neigh {
				if n == en.prev || n == en.src {
					continue
				}
				if e.mesh.Radio(n) && !e.isClear(en.id, en.port) {
					continue // sealed: never on amateur radio
				}
				e.mu.Lock()
				done := e.sentTo[en.id][n]
				e.mu.Unlock()
				if !done {
					e.peer(n).enqueue(en.id)
				}
			}
		default:
			e.mu.Lock()
			_, busy := e.busy[en.id]
			e.mu.Unlock()
			if busy {
				continue
			}
			next, seen := hops[en.dst]
			if !seen {
				if k, ok := e.mesh.NextHop(en.dst, e.failing(), nil); ok {
					next = &k
				}
				hops[en.dst] = next
			}
			if next != nil && e.mesh.Radio(*next) && !e.isClear(en.id, en.port) {
				// Sealed, and the best way is a radio hop: take another way
				// if there is one, else wait here for one. Not back to
				// where it came from: that node does not know the hop is
				// radio (the topology does not say), and would send it
				// straight back.
				next = nil
				notFirst := e.radioNeighbours(neigh)
				if en.prev != (Key{}) {
					notFirst = append(notFirst, en.prev)
				}
				if k, ok := e.mesh.NextHop(en.dst, e.failing(), notFirst); ok && !e.mesh.Radio(k) {
					next = &k
				} else {
					e.heldOffRadio.Add(1)
				}
			}
			if next == nil {
				continue // no path now: held until one appears
			}
			e.mu.Lock()
			e.busy[en.id] = *next
			e.mu.Unlock()
			e.peer(*next).enqueue(en.id)
		}
	}
}

// pruneClear drops the cached answers of isClear for bundles no longer held
// (held lists every one that is), so the cache stays within the store's size.
func (e *Engine) pruneClear(held []entry) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.clear) <= len(held) {
		return
	}
	keep := make(map[ID]bool, len(held))
	for i := range held {
		keep[held[i].id] = true
	}
	for id := range e.clear {
		if !keep[id] {
			delete(e.clear, id)
		}
	}
}

// radioNeighbours returns those of neigh whose way is a radio link.
func (e *Engine) radioNeighbours(neigh []Key) []Key {
	var out []Key
	for _, n := range neigh {
		if e.mesh.Radio(n) {
			out = append(out, n)
		}
	}
	return out
}

func (e *Engine) hasApp(port uint16) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.apps[port] != nil
}

// failing returns the neighbours whose custody streams keep failing, for NextHop
// to route around.
func (e *Engine) failing() []Key {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Key
	now := time.Now()
	for k, p := range e.peers {
		p.mu.Lock()
		if p.failures >= 2 && now.Before(p.retryAt) {
			out = append(out, k)
		}
		p.mu.Unlock()
	}
	return out
}

// peer returns the sender towards neighbour k, starting it if needed.
func (e *Engine) peer(k Key) *outPeer {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.peers[k]
	if p == nil {
		p = &outPeer{e: e, key: k, queued: make(map[ID]bool), inflight: make(map[ID]time.Time),
			kick: make(chan struct{}, 1)}
		e.peers[k] = p
		e.wg.Add(1)
		go p.run()
	}
	return p
}

// onAck handles a CustodyAck from neighbour to.
func (e *Engine) onAck(to Key, id ID, st Status) {
	e.acks[st].Add(1)
	en, held := e.store.lookup(id)
	if held && en.dst.IsBroadcast() {
		// A broadcast bundle stays held until it expires, to reach neighbours
		// that link later; this one has it (or cannot take it now).
		if st == StatusAccepted || st == StatusDuplicate {
			e.mu.Lock()
			if e.sentTo[id] == nil {
				e.sentTo[id] = make(map[Key]bool)
			}
			e.sentTo[id][to] = true
			e.mu.Unlock()
			return
		}
		if st == StatusFull {
			return
		}
	}
	e.mu.Lock()
	if e.keep[id] || st == StatusFull {
		// Full: try again later, maybe elsewhere. Kept: a copy came back while
		// this one was in flight, and this node holds it again (see returning).
		delete(e.keep, id)
		if e.busy[id] == to {
			delete(e.busy, id)
		}
		e.mu.Unlock()
		e.poke()
		return
	}
	e.releasing[id] = true
	e.mu.Unlock()
	if err := e.store.Release(id, false); err != nil {
		e.opts.Logf("%v", err)
	}
	e.mu.Lock()
	delete(e.releasing, id)
	delete(e.busy, id)
	delete(e.sentTo, id)
	e.mu.Unlock()
	if held && en.src == e.self && e.opts.Released != nil {
		e.opts.Released(id, to, st)
	}
}

// outPeer sends Transfers to one neighbour over one custody stream at a time.
type outPeer struct {
	e   *Engine
	key Key

	mu       sync.Mutex
	order    []ID // queued, in order
	queued   map[ID]bool
	inflight map[ID]time.Time
	failures int
	retryAt  time.Time
	conn     net.Conn
	kick     chan struct{}
}

func (p *outPeer) enqueue(id ID) {
	p.mu.Lock()
	if p.queued[id] {
		p.mu.Unlock()
		return
	}
	if _, ok := p.inflight[id]; ok {
		p.mu.Unlock()
		return
	}
	p.queued[id] = true
	p.order = append(p.order, id)
	p.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

func (p *outPeer) close() {
	p.mu.Lock()
	if p.conn != nil {
		p.conn.Close()
	}
	p.mu.Unlock()
}

// run keeps a stream to the neighbour while there is something to send.
func (p *outPeer) run() {
	e := p.e
	defer e.wg.Done()
	active := time.Now()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-p.kick:
		case <-time.After(scheduleEvery):
		}
		p.mu.Lock()
		wait := time.Until(p.retryAt)
		empty := len(p.order) == 0
		p.mu.Unlock()
		if empty {
			if time.Since(active) > peerIdle {
				// A neighbour with nothing to send for a while (or gone): let
				// the goroutine go; the scheduler makes a new one when needed.
				e.mu.Lock()
				p.mu.Lock()
				if len(p.order) == 0 && e.peers[p.key] == p {
					delete(e.peers, p.key)
					p.mu.Unlock()
					e.mu.Unlock()
					return
				}
				p.mu.Unlock()
				e.mu.Unlock()
			}
			continue
		}
		active = time.Now()
		if wait > 0 {
			select {
			case <-e.ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		err := p.session()
		p.mu.Lock()
		// Whatever was in flight goes back to the scheduler.
		for id := range p.inflight {
			delete(p.inflight, id)
			p.release(id)
		}
		for _, id := range p.order {
			p.release(id)
		}
		p.order, p.queued = nil, make(map[ID]bool)
		if err != nil && e.ctx.Err() == nil {
			p.failures++
			p.retryAt = time.Now().Add(min(time.Second<<min(p.failures-1, 5), 30*time.Second))
			e.streamFailures.Add(1)
		}
		p.mu.Unlock()
		e.poke()
	}
}

// release hands a bundle queued for this peer back to the scheduler (p.mu held).
func (p *outPeer) release(id ID) {
	e := p.e
	e.mu.Lock()
	if e.busy[id] == p.key {
		delete(e.busy, id)
		delete(e.keep, id) // no ack will come for this copy
	}
	e.mu.Unlock()
}

// session runs one custody stream until the queue stays empty, the stream fails
// or the engine stops.
func (p *outPeer) session() error {
	e := p.e
	dialWait, ackWait, idleWait := dialTimeout, ackTimeout, sessionIdle
	if e.mesh.Radio(p.key) {
		dialWait, ackWait, idleWait = radioDialTimeout, radioAckTimeout, radioSessionIdle
	}
	ctx, cancel := context.WithTimeout(e.ctx, dialWait)
	c, err := e.mesh.Dial(ctx, p.key, CustodyPort)
	cancel()
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.conn = c
	p.mu.Unlock()
	defer c.Close()
	stop := context.AfterFunc(e.ctx, func() { c.Close() })
	defer stop()
	readErr := make(chan error, 1)
	go func() { readErr <- p.readAcks(c) }()
	var out []byte
	idle := time.Now()
	for {
		// Fill the window.
		p.mu.Lock()
		var batch []ID
		for len(p.order) > 0 && len(p.inflight)+len(batch) < Window {
			id := p.order[0]
			p.order = p.order[1:]
			delete(p.queued, id)
			batch = append(batch, id)
		}
		now := time.Now()
		var oldest time.Time
		for _, t := range p.inflight {
			if oldest.IsZero() || t.Before(oldest) {
				oldest = t
			}
		}
		for _, id := range batch {
			p.inflight[id] = now
		}
		pending := len(p.inflight)
		p.mu.Unlock()
		if !oldest.IsZero() && now.Sub(oldest) > ackWait {
			return errors.New("custody acks stopped coming")
		}
		out = out[:0]
		for _, id := range batch {
			enc, age, ok := e.store.Get(id)
			if !ok {
				p.mu.Lock()
				delete(p.inflight, id)
				p.mu.Unlock()
				p.release(id)
				continue
			}
			out = AppendTransfer(out, age, enc)
			e.transfersSent.Add(1)
		}
		if len(out) > 0 {
			c.SetWriteDeadline(time.Now().Add(ackWait))
			if _, err := c.Write(out); err != nil {
				return err
			}
			idle = time.Now()
		}
		if pending == 0 && len(batch) == 0 && time.Since(idle) > idleWait {
			return nil // nothing to send for a while: let the stream go
		}
		select {
		case <-e.ctx.Done():
			return e.ctx.Err()
		case err := <-readErr:
			return err
		case <-p.kick:
		case <-time.After(scheduleEvery):
		}
	}
}

// readAcks reads CustodyAcks until the stream ends.
func (p *outPeer) readAcks(c net.Conn) error {
	r := bufio.NewReader(c)
	var buf []byte
	for {
		typ, body, err := readFrame(r, buf)
		if err != nil {
			return err
		}
		buf = body[:0]
		if typ != frameCustodyAck {
			return malformed("frame type %d on a custody stream", typ)
		}
		id, st, err := ParseCustodyAck(body)
		if err != nil {
			return err
		}
		p.mu.Lock()
		_, was := p.inflight[id]
		delete(p.inflight, id)
		p.failures = 0
		p.mu.Unlock()
		if !was {
			continue
		}
		p.e.onAck(p.key, id, st)
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
}

// EngineStats are the engine's counters (GET /saf/stats).
type EngineStats struct {
	TransfersSent     uint64 `json:"transfers_sent"`
	TransfersReceived uint64 `json:"transfers_received"`
	Refused           uint64 `json:"refused_malformed"`
	Delivered         uint64 `json:"delivered_here"`
	StreamFailures    uint64 `json:"stream_failures"`
	// HeldOffRadio counts scheduling rounds (every 250 ms) in which a sealed
	// bundle stayed because its only way on was a radio link.
	HeldOffRadio uint64            `json:"held_off_radio"`
	Acks         map[string]uint64 `json:"custody_acks"`
	Neighbours   []PeerStats       `json:"neighbours"`
}

// PeerStats describe the custody stream towards one neighbour.
type PeerStats struct {
	Key      string `json:"key"`
	Queued   int    `json:"queued"`
	InFlight int    `json:"in_flight"`
	Failures int    `json:"failures"`
}

// AddStats makes GET /saf/stats also hold fn's value under name (e.g.
// "usb_stick"), beside "store" and "engine", which it cannot replace. fn is
// called on every request, concurrently; it must be cheap and return a value
// encoding/json can encode.
func (e *Engine) AddStats(name string, fn func() any) {
	if name == "store" || name == "engine" {
		return
	}
	e.mu.Lock()
	if e.extraStats == nil {
		e.extraStats = map[string]func() any{}
	}
	e.extraStats[name] = fn
	e.mu.Unlock()
}

// statsDoc is the GET /saf/stats document.
func (e *Engine) statsDoc() map[string]any {
	doc := map[string]any{"store": e.store.Stats(), "engine": e.Stats()}
	e.mu.Lock()
	extra := make(map[string]func() any, len(e.extraStats))
	for k, fn := range e.extraStats {
		extra[k] = fn
	}
	e.mu.Unlock()
	for k, fn := range extra {
		doc[k] = fn()
	}
	return doc
}

// Stats returns the engine's counters.
func (e *Engine) Stats() EngineStats {
	st := EngineStats{TransfersSent: e.transfersSent.Load(), TransfersReceived: e.transfersRecv.Load(),
		Refused: e.refused.Load(), Delivered: e.delivered.Load(), StreamFailures: e.streamFailures.Load(),
		HeldOffRadio: e.heldOffRadio.Load(), Acks: make(map[string]uint64)}
	for i := range e.acks {
		st.Acks[Status(i).String()] = e.acks[i].Load()
	}
	e.mu.Lock()
	ps := make([]*outPeer, 0, len(e.peers))
	for _, p := range e.peers {
		ps = append(ps, p)
	}
	e.mu.Unlock()
	for _, p := range ps {
		p.mu.Lock()
		st.Neighbours = append(st.Neighbours, PeerStats{Key: fmt.Sprintf("%x", p.key[:]), Queued: len(p.order),
			InFlight: len(p.inflight), Failures: p.failures})
		p.mu.Unlock()
	}
	sort.Slice(st.Neighbours, func(i, j int) bool { return st.Neighbours[i].Key < st.Neighbours[j].Key })
	return st
}
