package forward

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skyfleet/skyfleet/services/mesh/link"
	"github.com/skyfleet/skyfleet/services/mesh/topology"
	"github.com/skyfleet/skyfleet/services/mesh/transport"
)

// linkOverhead bounds what the link layer adds to an unpadded payload: the 16-byte
// header, the 16-byte tag, the 1-byte kind, and 2 bytes to spare (a padded length).
// With padding, link.PayloadCapacity gives the exact room.
const linkOverhead = 35

// Sizes along a route. Every link is assumed to carry at least RouteMTU bytes of
// route payload (1452-byte UDP datagrams); narrower links (radio) will fragment.
const (
	// RouteMTU is the largest route payload in bytes (Route.Send, SendBack): a UDP
	// link datagram less the link overhead, the Reliable frame around route data
	// (reliableOverhead), the Data frame's header and the route ID.
	RouteMTU = 1452 - linkOverhead - reliableOverhead - frameHeader - 4 - ctrlRoom
	// LinkOverhead is what a link.Session adds to an unpadded payload, in bytes
	// (see linkOverhead); the end-to-end session inside a route payload adds the same.
	LinkOverhead = linkOverhead
)

// endpoint is where a neighbour is reached: a transport and an endpoint on it.
type endpoint struct {
	tr Transport
	ep transport.Endpoint
}

// neighbour is one link: the encrypted session to a directly reachable node, its
// send queues and its metrics. The queues are drained by one sender goroutine that
// packs as many frames as fit into each datagram.
type neighbour struct {
	r   *Router
	id  uint32 // link ID in forwarding rules, never 0
	key [keyLen]byte
	// static neighbours (configured peers and relays) are redialled forever;
	// others are forgotten some time after their link dies.
	static bool
	relay  bool
	// amateur marks a link over an amateur transport (transport.go): clear
	// sessions, radio timing, rate-limited gossip, routes of one hop.
	amateur bool
	// gossiped is, on an amateur link, what gossip went out last per origin
	// (radioGossip); guarded by mu.
	gossiped map[topology.Key]gossipRec
	// configured is the peer's configured scheme://host:port ("" if learnt).
	configured string

	at   atomic.Pointer[endpoint]
	sess atomic.Pointer[link.Session]

	ctrl chan *[]byte // control frames, sent first
	data chan *[]byte // other unreliable frames (Back)
	quit chan struct{}
	// sf is the link's store and forward: route queues, link acks, credit (sf.go).
	sf *linkSF

	nextRID atomic.Uint32

	lastRecv atomic.Int64 // unix ns of the last authenticated datagram

	// Counters for /mesh/links.
	txPackets, txBytes, rxPackets, rxBytes atomic.Uint64
	txDrops                                atomic.Uint64

	mu       sync.Mutex // guards the fields below
	up       bool
	upSince  time.Time
	greeted  time.Time // when the graph was last sent again on an up link (installSession)
	greetDue bool      // a greeting put off by greetInterval, for tickLinks
	downAt   time.Time
	pending  *link.Pending
	prevSess *link.Session // the session before sess, still accepted
	lastInit time.Time
	tries    int
	pings    [32]pingRec
	pingSeq  uint32
	lastPing time.Time
	srtt     time.Duration
	rttvar   time.Duration
	// rate is the throughput in bytes/s over the last measuring interval.
	rateTx, rateRx         float64
	rateAt                 time.Time
	rateTxBase, rateRxBase uint64
}

type pingRec struct {
	id       uint32
	sent     time.Time
	answered bool
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

func getBuf() *[]byte { b := bufPool.Get().(*[]byte); *b = (*b)[:0]; return b }
func putBuf(b *[]byte) {
	if cap(*b) <= 1<<16 {
		bufPool.Put(b)
	}
}

func newNeighbour(r *Router, id uint32, key [keyLen]byte, amateur bool) *neighbour {
	n := &neighbour{
		r:       r,
		id:      id,
		key:     key,
		amateur: amateur,
		ctrl:    make(chan *[]byte, 256),
		data:    make(chan *[]byte, 1024),
		quit:    make(chan struct{}),
		sf:      newLinkSF(r.rand32(), amateur),
	}
	n.sf.plain = r.cfg.PlainForwarding
	n.nextRID.Store(r.rand32() | 1)
	go n.sender()
	return n
}

// allocRID returns a fresh route ID for a rule whose in-side is this link. IDs are
// chosen by the receiving node, so they are unique per in-link.
func (n *neighbour) allocRID() uint32 {
	for {
		id := n.nextRID.Add(1)
		if id != 0 && n.r.table.lookup(hop{n.id, id}) == nil {
			return id
		}
	}
}

// isUp reports whether the link has a working session.
func (n *neighbour) isUp() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.up
}

// rtt returns the smoothed round-trip time, or 0 before the first sample.
func (n *neighbour) rtt() time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.srtt
}

// send queues one frame. Control frames go first; data frames are dropped (and
// counted) when the queue is full, as a congested network would.
func (n *neighbour) send(ctrl bool, typ byte, parts ...[]byte) bool {
	b := getBuf()
	*b = appendFrame(*b, typ, parts...)
	q := n.data
	if ctrl {
		q = n.ctrl
	}
	select {
	case q <- b:
		return true
	default:
		putBuf(b)
		n.txDrops.Add(1)
		return false
	}
}

// sender drains the queues, packing frames into datagrams up to the link MTU:
// control frames first, then an ack and credits, then one reliable part (a
// datagram sent again, or route data within the link's window and each route's
// credit, real-time before bulk; sf.go).
func (n *neighbour) sender() {
	// Sized for a UDP datagram; a TCP link's larger ones grow them on first use.
	plain := make([]byte, 0, 2048)
	out := make([]byte, 0, 2048)
	var carry *[]byte
	timer := time.NewTimer(50 * time.Millisecond)
	defer timer.Stop()
	for {
		if carry == nil && len(n.ctrl) == 0 && len(n.data) == 0 && !n.sf.ready() {
			select {
			case carry = <-n.ctrl:
			case carry = <-n.data:
			case <-n.sf.kick:
			case <-timer.C:
			case <-n.quit:
				return
			}
		}
		now := time.Now()
		timer.Reset(n.sfTimers(now))
		for {
			at := n.at.Load()
			if fc, ok := flowControl(at); ok {
				// A radio channel: build the datagram when it can go, with
				// all that queued up meanwhile (amateur.go).
				if !fc.WaitRoom(n.quit) {
					select {
					case <-n.quit:
						return
					default:
					}
				}
				now = time.Now()
			}
			s := n.sess.Load()
			max := 1400
			switch {
			case at != nil && s != nil:
				max = s.PayloadCapacity(at.tr.MTU(at.ep)) // a clear session's overhead is its own
			case at != nil:
				max = link.PayloadCapacity(at.tr.MTU(at.ep), n.r.cfg.Padding)
			}
			plain = plain[:0]
			if carry != nil {
				plain = append(plain, *carry...)
				putBuf(carry)
				carry = nil
			}
		pack:
			for {
				var g *[]byte
				select {
				case g = <-n.ctrl:
				default:
					select {
					case g = <-n.ctrl:
					case g = <-n.data:
					default:
						break pack
					}
				}
				if len(plain)+len(*g) > max {
					carry = g
					break
				}
				plain = append(plain, *g...)
				putBuf(g)
			}
			if s == nil || at == nil {
				if len(plain) > 0 {
					n.txDrops.Add(1)
				}
				// Route data stays queued until the link is up (or dies, and
				// dropSF forgets it); wait rather than spin.
				select {
				case <-timer.C:
					timer.Reset(50 * time.Millisecond)
				case <-n.quit:
					return
				}
				break
			}
			plain = n.pack(plain, max, now)
			if n.sf.plain {
				n.runLeaves()
			}
			if len(plain) == 0 {
				break
			}
			var err error
			out, err = s.Seal(out[:0], plain)
			if err != nil {
				n.txDrops.Add(1)
				if errors.Is(err, link.ErrExpired) {
					n.r.rehandshake(n) // the counter ran out: a new session
				}
				break
			}
			n.writeRaw(at, out)
			if carry == nil && len(n.ctrl) == 0 && len(n.data) == 0 && !n.sf.ready() {
				break
			}
		}
	}
}

// writeRaw sends a finished datagram (handshake, rekey or sealed frames).
func (n *neighbour) writeRaw(at *endpoint, b []byte) {
	if at == nil {
		at = n.at.Load()
		if at == nil {
			return
		}
	}
	if err := at.tr.WriteTo(b, at.ep); err != nil {
		n.txDrops.Add(1)
		return
	}
	n.txPackets.Add(1)
	n.txBytes.Add(uint64(len(b)))
}

// ping sends a link ping, recording its time for the RTT and loss estimates.
func (n *neighbour) ping(now time.Time) {
	n.mu.Lock()
	n.pingSeq++
	id := n.pingSeq
	n.pings[id%uint32(len(n.pings))] = pingRec{id: id, sent: now}
	n.lastPing = now
	n.mu.Unlock()
	n.send(true, framePing, u32(id))
}

// pong records the answer to ping id.
func (n *neighbour) pong(id uint32, now time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := &n.pings[id%uint32(len(n.pings))]
	if p.id != id || p.answered {
		return
	}
	p.answered = true
	sample := now.Sub(p.sent)
	if n.srtt == 0 {
		n.srtt, n.rttvar = sample, sample/2
		return
	}
	// RFC 6298 §2.3 smoothing.
	d := n.srtt - sample
	if d < 0 {
		d = -d
	}
	n.rttvar = (3*n.rttvar + d) / 4
	n.srtt = (7*n.srtt + sample) / 8
}

// loss is the fraction of pings unanswered among the last ones old enough to judge.
func (n *neighbour) lossLocked(now time.Time) float64 {
	grace := 2*n.srtt + 100*time.Millisecond
	sent, lost := 0, 0
	for _, p := range n.pings {
		if p.id == 0 || now.Sub(p.sent) < grace {
			continue
		}
		sent++
		if !p.answered {
			lost++
		}
	}
	if sent == 0 {
		return 0
	}
	return float64(lost) / float64(sent)
}

// measure updates the throughput estimate; called once a second.
func (n *neighbour) measure(now time.Time) {
	tx, rx := n.txBytes.Load(), n.rxBytes.Load()
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.rateAt.IsZero() {
		if dt := now.Sub(n.rateAt).Seconds(); dt > 0 {
			n.rateTx = float64(tx-n.rateTxBase) / dt
			n.rateRx = float64(rx-n.rateRxBase) / dt
		}
	}
	n.rateAt, n.rateTxBase, n.rateRxBase = now, tx, rx
}

func (n *neighbour) stop() {
	select {
	case <-n.quit:
	default:
		close(n.quit)
	}
}

// ctrlRoom is what a full route payload leaves in its datagram for a link ack
// without SACK (3+4) and one credit (3+12), so that they ride with the data.
const ctrlRoom = frameHeader + 4 + frameHeader + 12
