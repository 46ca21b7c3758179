// Package relay is a UDP relay that impairs what it forwards: it drops, delays,
// jitters, reorders, duplicates and rate-limits datagrams, separately in each
// direction. It stands in for sch_netem, which the test machines lack.
//
// A Relay listens on one UDP address. The first datagram from a client address C
// opens a forwarding socket for C, connected to the target; C's datagrams go out of
// that socket, and the target's replies to it come back to C from the listening
// address. So the target sees one peer per client, and the client talks to the relay
// as if it were the target.
//
//	r, err := relay.Start("127.0.0.1:0", "127.0.0.1:7000",
//		relay.Symmetric(relay.Impairment{Loss: 0.05, Delay: 20 * time.Millisecond}), 1)
//	...
//	defer r.Close()
//	send to r.Addr() instead of 127.0.0.1:7000
//
// Random choices come from a generator seeded by the seed given to Start, one stream
// per direction, drawn in the order datagrams arrive: the same traffic in the same
// order meets the same fate.
package relay

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// maxDatagram is the largest UDP payload the relay reads.
const maxDatagram = 65535

// maxPending caps the datagrams waiting in one direction, whatever the delay; past
// it they are dropped and counted as QueueDropped.
const maxPending = 1 << 17

// defaultIdle is how long a silent client keeps its forwarding socket when
// Params.Idle is 0.
const defaultIdle = 2 * time.Minute

// Relay forwards datagrams between the clients of one listening address and one
// target, impairing them on the way. Its methods may be called from any goroutine.
type Relay struct {
	ln     *net.UDPConn
	target *net.UDPAddr
	listen string

	ab, ba *pipe

	mu      sync.Mutex
	params  Params
	clients map[netip.AddrPort]*client
	closed  bool

	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// client is one client address and its forwarding socket.
type client struct {
	addr netip.AddrPort
	conn *net.UDPConn
	last atomic.Int64 // unix nanoseconds of the last datagram either way
}

// DirStats counts what one direction did. Received = Forwarded + Dropped +
// QueueDropped + Errors + Pending - Duplicated, once the counters settle.
type DirStats struct {
	// Received counts datagrams that came in to be forwarded.
	Received uint64 `json:"received"`
	// Forwarded counts datagrams written out, duplicates included.
	Forwarded uint64 `json:"forwarded"`
	// Bytes counts the payload bytes written out.
	Bytes uint64 `json:"bytes"`
	// Dropped counts datagrams dropped by Loss.
	Dropped uint64 `json:"dropped"`
	// QueueDropped counts copies dropped because the Rate queue was full.
	QueueDropped uint64 `json:"queue_dropped"`
	// Duplicated counts datagrams that Dup sent twice.
	Duplicated uint64 `json:"duplicated"`
	// Reordered counts copies that Reorder held back.
	Reordered uint64 `json:"reordered"`
	// Errors counts copies the relay failed to write (e.g. the target's port closed).
	Errors uint64 `json:"errors"`
	// Pending is the number of copies waiting to leave now.
	Pending int `json:"pending"`
}

// Stats is a snapshot of a relay's counters.
type Stats struct {
	// Listen is the address the relay listens on.
	Listen string `json:"listen"`
	// Target is the address it forwards to.
	Target string `json:"target"`
	// Params are the impairments in force, as Params.String renders them.
	Params string `json:"params"`
	// Clients is the number of client addresses with an open forwarding socket.
	Clients int `json:"clients"`
	// AB counts client-to-target traffic.
	AB DirStats `json:"ab"`
	// BA counts target-to-client traffic.
	BA DirStats `json:"ba"`
}

// Start listens on listen (host:port; port 0 picks one, see Addr) and relays to target
// with the impairments p, drawing random choices from seed. Close stops it.
func Start(listen, target string, p Params, seed int64) (*Relay, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	taddr, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		return nil, fmt.Errorf("relay target: %w", err)
	}
	laddr, err := net.ResolveUDPAddr("udp", listen)
	if err != nil {
		return nil, fmt.Errorf("relay listen: %w", err)
	}
	ln, err := net.ListenUDP("udp", laddr)
	if err != nil {
		return nil, fmt.Errorf("relay listen: %w", err)
	}
	setBuffers(ln, 4<<20)
	r := &Relay{
		ln:      ln,
		target:  taddr,
		listen:  ln.LocalAddr().String(),
		params:  p,
		clients: make(map[netip.AddrPort]*client),
		done:    make(chan struct{}),
	}
	r.ab = newPipe(p.AB, uint64(seed), 0x61622d2d3e, r.done, func(c *client, b []byte) error {
		_, err := c.conn.Write(b)
		return err
	})
	r.ba = newPipe(p.BA, uint64(seed), 0x62612d2d3e, r.done, func(c *client, b []byte) error {
		_, err := r.ln.WriteToUDPAddrPort(b, c.addr)
		return err
	})
	r.wg.Add(4)
	go func() { defer r.wg.Done(); r.ab.run() }()
	go func() { defer r.wg.Done(); r.ba.run() }()
	go func() { defer r.wg.Done(); r.readClients() }()
	go func() { defer r.wg.Done(); r.reap() }()
	return r, nil
}

// Addr is the address the relay listens on; clients send here.
func (r *Relay) Addr() *net.UDPAddr { return r.ln.LocalAddr().(*net.UDPAddr) }

// Target is the address the relay forwards to.
func (r *Relay) Target() *net.UDPAddr { return r.target }

// Params returns the impairments in force.
func (r *Relay) Params() Params {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.params
}

// SetParams changes the impairments from now on; datagrams already waiting keep the
// departure times they were given. Loss 1 in both directions partitions the link.
func (r *Relay) SetParams(p Params) error {
	if err := p.Validate(); err != nil {
		return err
	}
	r.mu.Lock()
	r.params = p
	r.mu.Unlock()
	r.ab.setImpairment(p.AB)
	r.ba.setImpairment(p.BA)
	return nil
}

// Stats returns the relay's counters now.
func (r *Relay) Stats() Stats {
	r.mu.Lock()
	s := Stats{Listen: r.listen, Target: r.target.String(), Params: r.params.String(), Clients: len(r.clients)}
	r.mu.Unlock()
	s.AB = r.ab.stats()
	s.BA = r.ba.stats()
	return s
}

// Close stops listening, closes every forwarding socket, discards datagrams still
// waiting and returns when the relay's goroutines are gone. It may be called more than
// once.
func (r *Relay) Close() error {
	var err error
	r.closeOnce.Do(func() {
		r.mu.Lock()
		r.closed = true
		err = r.ln.Close()
		for _, c := range r.clients {
			c.conn.Close()
		}
		r.mu.Unlock()
		close(r.done)
		r.wg.Wait()
	})
	return err
}

// readClients reads the listening socket and hands each datagram to the a→b pipe.
func (r *Relay) readClients() {
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := r.ln.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // e.g. a truncated read or an ICMP error; keep serving
		}
		now := time.Now()
		c := r.client(from)
		if c == nil {
			r.ab.c.received.Add(1)
			r.ab.c.errors.Add(1) // no forwarding socket could be opened
			continue
		}
		c.last.Store(now.UnixNano())
		r.ab.admit(c, append([]byte(nil), buf[:n]...), now)
	}
}

// client returns the forwarding state for addr, opening its socket on first use; nil
// if the socket cannot be opened or the relay is closed.
func (r *Relay) client(addr netip.AddrPort) *client {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.clients[addr]; ok {
		return c
	}
	if r.closed {
		return nil
	}
	conn, err := net.DialUDP("udp", nil, r.target)
	if err != nil {
		return nil
	}
	setBuffers(conn, 1<<20)
	c := &client{addr: addr, conn: conn}
	c.last.Store(time.Now().UnixNano())
	r.clients[addr] = c
	r.wg.Add(1)
	go func() { defer r.wg.Done(); r.readTarget(c) }()
	return c
}

// readTarget reads the target's replies to one client and hands them to the b→a pipe.
func (r *Relay) readTarget(c *client) {
	buf := make([]byte, maxDatagram)
	for {
		n, err := c.conn.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// ECONNREFUSED and the like: the target's port is closed for now.
			select {
			case <-r.done:
				return
			default:
			}
			continue
		}
		now := time.Now()
		c.last.Store(now.UnixNano())
		r.ba.admit(c, append([]byte(nil), buf[:n]...), now)
	}
}

// reap closes the forwarding sockets of clients silent for longer than Params.Idle.
func (r *Relay) reap() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-r.done:
			return
		case now := <-t.C:
			r.mu.Lock()
			idle := r.params.Idle
			if idle == 0 {
				idle = defaultIdle
			}
			for addr, c := range r.clients {
				if now.Sub(time.Unix(0, c.last.Load())) > idle {
					c.conn.Close()
					delete(r.clients, addr)
				}
			}
			r.mu.Unlock()
		}
	}
}

// dirCounters are a pipe's counters.
type dirCounters struct {
	received, forwarded, bytes, dropped, queueDropped, duplicated, reordered, errors atomic.Uint64
}

// packet is one copy of a datagram waiting to leave.
type packet struct {
	due  time.Time
	seq  uint64
	data []byte
	to   *client
}

// pipe is one direction of a relay: it decides each datagram's fate and departure
// time, and sends the datagrams in order of departure.
type pipe struct {
	send func(*client, []byte) error
	done <-chan struct{}
	wake chan struct{}
	c    dirCounters

	mu       sync.Mutex
	imp      Impairment
	rng      *rand.Rand
	q        []*packet // min-heap on (due, seq)
	seq      uint64
	lastDue  time.Time // departure of the last in-order copy: later ones never leave before it
	linkFree time.Time // when the Rate queue has drained
}

func newPipe(imp Impairment, seed, stream uint64, done <-chan struct{}, send func(*client, []byte) error) *pipe {
	return &pipe{
		send: send,
		done: done,
		wake: make(chan struct{}, 1),
		imp:  imp,
		rng:  rand.New(rand.NewPCG(seed, stream)),
	}
}

func (p *pipe) setImpairment(imp Impairment) {
	p.mu.Lock()
	p.imp = imp
	p.mu.Unlock()
}

func (p *pipe) stats() DirStats {
	p.mu.Lock()
	pending := len(p.q)
	p.mu.Unlock()
	return DirStats{
		Received:     p.c.received.Load(),
		Forwarded:    p.c.forwarded.Load(),
		Bytes:        p.c.bytes.Load(),
		Dropped:      p.c.dropped.Load(),
		QueueDropped: p.c.queueDropped.Load(),
		Duplicated:   p.c.duplicated.Load(),
		Reordered:    p.c.reordered.Load(),
		Errors:       p.c.errors.Load(),
		Pending:      pending,
	}
}

// admit decides the fate of a datagram that arrived at now for c, and queues the
// copies that survive.
func (p *pipe) admit(c *client, data []byte, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.c.received.Add(1)
	imp := p.imp
	if imp.Loss > 0 && p.rng.Float64() < imp.Loss {
		p.c.dropped.Add(1)
		return
	}
	copies := 1
	if imp.Dup > 0 && p.rng.Float64() < imp.Dup {
		copies = 2
		p.c.duplicated.Add(1)
	}
	queued := false
	for range copies {
		due := now
		if imp.Rate > 0 {
			start := now
			if p.linkFree.After(start) {
				start = p.linkFree
			}
			limit := imp.Queue
			if limit == 0 {
				limit = max(imp.Rate, 64<<10)
			}
			waiting := int64(start.Sub(now).Seconds() * float64(imp.Rate))
			if waiting+int64(len(data)) > limit {
				p.c.queueDropped.Add(1)
				continue
			}
			p.linkFree = start.Add(time.Duration(float64(len(data)) / float64(imp.Rate) * float64(time.Second)))
			due = p.linkFree
		}
		if len(p.q) >= maxPending {
			p.c.queueDropped.Add(1)
			continue
		}
		due = due.Add(imp.Delay)
		if imp.Jitter > 0 {
			due = due.Add(time.Duration(p.rng.Int64N(int64(imp.Jitter) + 1)))
		}
		if imp.Reorder > 0 && p.rng.Float64() < imp.Reorder {
			hold := imp.Hold
			if hold == 0 {
				hold = max(imp.Delay+4*imp.Jitter, 10*time.Millisecond)
			}
			due = due.Add(hold)
			p.c.reordered.Add(1)
		} else {
			if due.Before(p.lastDue) {
				due = p.lastDue
			}
			p.lastDue = due
		}
		p.push(&packet{due: due, seq: p.seq, data: data, to: c})
		p.seq++
		queued = true
	}
	if queued {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

// run sends queued copies when they are due, until done is closed.
func (p *pipe) run() {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		var pkt *packet
		wait := time.Duration(-1)
		p.mu.Lock()
		if len(p.q) > 0 {
			if d := time.Until(p.q[0].due); d <= 0 {
				pkt = p.pop()
			} else {
				wait = d
			}
		}
		p.mu.Unlock()
		if pkt != nil {
			if err := p.send(pkt.to, pkt.data); err != nil {
				p.c.errors.Add(1)
			} else {
				p.c.forwarded.Add(1)
				p.c.bytes.Add(uint64(len(pkt.data)))
			}
			select {
			case <-p.done:
				return
			default:
			}
			continue
		}
		if wait < 0 {
			select {
			case <-p.wake:
			case <-p.done:
				return
			}
			continue
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-p.wake:
			timer.Stop()
		case <-p.done:
			timer.Stop()
			return
		}
	}
}

func (a *packet) before(b *packet) bool {
	if a.due.Equal(b.due) {
		return a.seq < b.seq
	}
	return a.due.Before(b.due)
}

// push adds x to the heap q.
func (p *pipe) push(x *packet) {
	p.q = append(p.q, x)
	i := len(p.q) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if !p.q[i].before(p.q[parent]) {
			break
		}
		p.q[i], p.q[parent] = p.q[parent], p.q[i]
		i = parent
	}
}

// pop removes and returns the earliest packet of the heap q.
func (p *pipe) pop() *packet {
	top := p.q[0]
	last := len(p.q) - 1
	p.q[0] = p.q[last]
	p.q[last] = nil
	p.q = p.q[:last]
	i := 0
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(p.q) && p.q[l].before(p.q[m]) {
			m = l
		}
		if r < len(p.q) && p.q[r].before(p.q[m]) {
			m = r
		}
		if m == i {
			break
		}
		p.q[i], p.q[m] = p.q[m], p.q[i]
		i = m
	}
	return top
}
