package forward

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skyfleet/skyfleet/services/mesh/perhop"
)

// Per-hop store and forward (seeds/004; package perhop holds the state machines).
// Route data crosses every link inside Reliable frames that the neighbour
// acknowledges, and is kept here until it does; a hop sends a route's data only
// into the credit the next hop granted for that route, so a slow link fills the
// route's buffers back to the source instead of dropping packets at a full queue.
//
//	Reliable  seq (4) | base (4) | frames: Data, DataRT and Credit frames. base is the
//	          sender's oldest unacknowledged seq. Sent again, under the same seq,
//	          until a LinkAck covers it; the receiver processes each seq once.
//	LinkAck   cum (4) | sack (8 × 0..16): every seq before cum arrived, and
//	          cum+1+64w+i for each bit i of sack word w (trailing zero words left out).
//	Credit    route ID (4) | limit (8): the sender takes up to limit bytes
//	          (cumulative, payload bytes) of the route whose ID on this link is route
//	          ID. Limits only grow; the first is perhop.InitialCredit.
//	DataRT    route ID (4) | payload: Data of the real-time class, sent before bulk.
const (
	// reliableOverhead is what a Reliable frame adds around its frames.
	reliableOverhead = frameHeader + 8

	frameReliable = 0x0c
	frameLinkAck  = 0x0d
	frameCredit   = 0x0e
	frameDataRT   = 0x0f
)

// Buffer sizes.
const (
	// A route's buffer at a hop holds what is in flight on its out-link (up to
	// the link's window) and what the upstream neighbour sends during a credit
	// round trip: twice the out-link's window, plus minRouteBuffer for the
	// in-link (whose rate and round trip this hop only sees once data flows),
	// at most maxRouteBuffer. A buffer too small for both makes the route crawl
	// at buffer ÷ two link round trips, whatever the links could carry.
	minRouteBuffer = 256 << 10
	maxRouteBuffer = 8 << 20
	// NodeBufferCap caps the route bytes one node holds for all routes together;
	// at the cap a hop grants no new credit until bytes leave.
	NodeBufferCap = 64 << 20
	// linkWindowFloor and linkWindowCeil bound a link's unacknowledged bytes,
	// which otherwise follow twice the measured bandwidth-delay product. The
	// floor covers what the minimum RTT misses: on a fast link the round trip
	// of a busy node's acks is mostly its scheduling, many times the minimum.
	// (What is in flight sits in the link's FIFO, where real-time frames cannot
	// overtake it: on a slow link the floor would be queueing delay, which the
	// link's pacing keeps short; perhop/pace.go.)
	linkWindowFloor = 64 << 10
	linkWindowCeil  = 8 << 20
	// radioWindow is an amateur link's window, floor and ceiling: two full
	// datagrams, about 20 s of air at 1200 bit/s. A radio channel's queue is
	// its transmitter (seconds a datagram); a window of 64 KB there filled it
	// for minutes, every datagram timed out in the queue and was sent again,
	// and the channel carried copies (AX.25's MAXFRAME, 4 or 7 frames, is
	// the same idea).
	radioWindow = 3 << 10
	// plainQueueCap is a link's queue under Config.PlainForwarding, which drops
	// beyond it (the 1024 datagrams of the forwarding before store and forward).
	plainQueueCap = 1024 * 1400
	// sourceBufferFactor: a route's buffer at its source is this many times a
	// hop's.
	sourceBufferFactor = 16
	// bulkShare: when both classes wait, every bulkShare-th data frame is bulk,
	// so bulk never starves.
	bulkShare = 4
	// ackRepeats is how many more datagrams going to a neighbour anyway carry
	// the latest link ack again.
	ackRepeats = 2
	// ctrlHold: a link ack or credit waits up to this long for a datagram that
	// goes to the neighbour anyway (route data, a frame of the other direction)
	// before it goes in one of its own; an ack goes at once after ackEvery
	// reliable datagrams (or a copy, which says an ack was lost). Without the
	// wait, a link carrying a stream's data one way and its acks the other sent
	// about one small datagram of acks and credits for every data datagram: at a
	// 20 Mbit/s bottleneck 5% of the wire and half the datagrams. The sender
	// sees at most ctrlHold more round trip, far below its RTO floor.
	ctrlHold = time.Millisecond
	ackEvery = 2
	// radioCtrlHold and radioAckEvery are the same on an amateur link, where a
	// datagram of acks alone costs a keying of the transmitter (its TXDELAY)
	// and a second of air at 1200 bit/s, and keeps the other station, which is
	// waiting for the channel, off it. Over Dire Wolf the receiver of a burst
	// sent one such datagram per datagram received, and they took half the
	// channel. AX.25 waits the same way before it acknowledges (its T2,
	// "response delay", 2.2 §6.7.1.2). The sender's RTO, which measures acks,
	// takes the hold in.
	radioCtrlHold = 2 * time.Second
	radioAckEvery = 4
	// paceBurst and paceBurstBytes bound the pacing budget a link may save up:
	// a millisecond of its pacing rate, at least two full datagrams.
	paceBurst      = time.Millisecond
	paceBurstBytes = 2 * 1500
	// paceLate bounds the budget a late wake-up makes up for.
	paceLate = 10 * time.Millisecond
	// linkRTOFloor bounds the link retransmission timeout from below.
	linkRTOFloor = 5 * time.Millisecond
	// creditRefresh: a credit the upstream neighbour has not used up is sent
	// again this often while the route is in use, in case it was lost.
	creditRefresh = 100 * time.Millisecond
	// creditIdle: a route unused this long gets no more refreshes.
	creditIdle = 2 * time.Second
	// radioCreditRefresh and radioCreditIdle are the same on an amateur link:
	// its routes end at the neighbour (one hop; amateur.go), whose buffers
	// drain as data arrives, so a credit there is rarely the bottleneck, and a
	// refresh every 100 ms went on the air in a datagram of its own.
	radioCreditRefresh = 20 * time.Second
	radioCreditIdle    = 2 * time.Minute
)

// linkTiming is how long a link's control frames wait: fastTiming on an IP
// link, radioTiming on an amateur one.
type linkTiming struct {
	ctrlHold      time.Duration
	ackEvery      int
	creditRefresh time.Duration
	creditIdle    time.Duration
}

var (
	fastTiming  = linkTiming{ctrlHold, ackEvery, creditRefresh, creditIdle}
	radioTiming = linkTiming{radioCtrlHold, radioAckEvery, radioCreditRefresh, radioCreditIdle}
)

// sfRule is a rule's store-and-forward state, guarded by mu (a leaf lock).
type sfRule struct {
	mu sync.Mutex
	// buf is the route's bytes held at this node: queued or in flight on the
	// out-link (or, at the source, waiting to be sent).
	buf perhop.Buffer
	// credit is what the next hop granted for this route (out-side links only).
	credit perhop.Credit
	// granted is the last limit advertised upstream, and grantedAt when.
	granted   uint64
	grantedAt time.Time
	// retransmits counts the route's frames sent again on the out-link.
	retransmits atomic.Uint64
}

// routeQueue holds one route's frames waiting on an out-link for credit or room.
type routeQueue struct {
	rid    uint32
	ru     *Rule
	frames []*[]byte // whole Data or DataRT frames, in pooled buffers (getBuf) given back once packed
	bytes  int       // payload bytes queued
	rt     bool
	active bool // on the link's active list
}

// linkSF is a link's store-and-forward state: its reliable sender and receiver and
// the route queues waiting to use it.
type linkSF struct {
	mu    sync.Mutex
	snd   *perhop.Sender
	rcv   perhop.Receiver
	sack  []uint64 // scratch for the acks pack builds
	inner []byte   // scratch for the frames pack gathers into one datagram
	// ackRepeats counts the datagrams that may still carry the latest ack again.
	ackRepeats int
	// ackCount counts the reliable datagrams received since the last ack;
	// ctrlSince is when the oldest waiting ack or credit became due (zero when
	// none waits). See ctrlHold.
	ackCount  int
	ctrlSince time.Time
	queues    map[uint64]*routeQueue // by qkey: a route's two classes queue apart
	activeRT  []*routeQueue
	activeBK  []*routeQueue
	resend    []*perhop.Pending
	credits   map[*Rule]bool // rules whose credit to advertise on this link
	granted   map[*Rule]bool // rules granted credit on this link lately (refreshed by sfTimers)
	turn      int
	queued    int // payload bytes in queues
	refreshed time.Time
	nextDue   time.Time
	plain     bool // Config.PlainForwarding
	leaves    []pendingLeave
	// paceTokens is the pacing budget in bytes (perhop.Sender.PacingRate), last
	// refilled at paceLast; route data goes while it is positive.
	paceTokens float64
	paceLast   time.Time
	paceHeld   bool // bulk is waiting for the pacing budget
	// floor and ceil bound the window: linkWindowFloor and linkWindowCeil,
	// or radioWindow on an amateur link.
	floor, ceil int
	// window mirrors snd.Window(floor, ceil) for readers that
	// must not take mu (capacity).
	window atomic.Int64
	kick   chan struct{}
	// tm is fastTiming, or radioTiming on an amateur link.
	tm linkTiming
}

func newLinkSF(first uint32, amateur bool) *linkSF {
	l := &linkSF{snd: perhop.NewSender(first), queues: make(map[uint64]*routeQueue),
		credits: make(map[*Rule]bool), granted: make(map[*Rule]bool), kick: make(chan struct{}, 1),
		floor: linkWindowFloor, ceil: linkWindowCeil, tm: fastTiming}
	if amateur {
		l.floor, l.ceil, l.tm = radioWindow, radioWindow, radioTiming
	}
	return l
}

func (l *linkSF) wake() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// parseCredit decodes a Credit frame body: route ID and cumulative limit.
func parseCredit(b []byte) (rid uint32, limit uint64, err error) {
	if len(b) != 12 {
		return 0, 0, fmt.Errorf("credit: %w: %d bytes", errFrameBody, len(b))
	}
	return binary.BigEndian.Uint32(b), binary.BigEndian.Uint64(b[4:]), nil
}

// parseLinkAck decodes a LinkAck frame body: the cumulative seq and the SACK
// bitmap's words, appended to sack[:0].
func parseLinkAck(b []byte, sack []uint64) (cum uint32, words []uint64, err error) {
	if len(b) < 4 || (len(b)-4)%8 != 0 || (len(b)-4)/8 > perhop.MaxSACKWords {
		return 0, nil, fmt.Errorf("link ack: %w: %d bytes", errFrameBody, len(b))
	}
	sack = sack[:0]
	for i := 4; i < len(b); i += 8 {
		sack = append(sack, binary.BigEndian.Uint64(b[i:]))
	}
	return binary.BigEndian.Uint32(b), sack, nil
}

// appendLinkAck appends a LinkAck frame: cum and the SACK words.
func appendLinkAck(dst []byte, cum uint32, sack []uint64) []byte {
	n := 4 + 8*len(sack)
	dst = append(dst, frameLinkAck, byte(n>>8), byte(n))
	dst = binary.BigEndian.AppendUint32(dst, cum)
	for _, w := range sack {
		dst = binary.BigEndian.AppendUint64(dst, w)
	}
	return dst
}

// parseReliable splits a Reliable frame body: seq, base and the inner frames.
func parseReliable(b []byte) (seq, base uint32, frames []byte, err error) {
	if len(b) < 8 {
		return 0, 0, nil, fmt.Errorf("reliable: %w: %d bytes", errFrameBody, len(b))
	}
	return binary.BigEndian.Uint32(b), binary.BigEndian.Uint32(b[4:]), b[8:], nil
}

// qkey names a route's queue of one class on a link: the real-time frames of a
// route do not wait behind its bulk ones.
func qkey(rid uint32, rt bool) uint64 {
	k := uint64(rid) << 1
	if rt {
		k |= 1
	}
	return k
}

// ruleKey packs a rule's in-side into the key acknowledgements carry.
func ruleKey(in hop) uint64 { return uint64(in.link)<<32 | uint64(in.rid) }

// capacity is the buffer a route gets at this node towards out (nil: local
// delivery): minRouteBuffer plus twice out's window, at most maxRouteBuffer;
// nothing more once the node holds NodeBufferCap.
func (r *Router) capacity(out *neighbour) int {
	c := minRouteBuffer
	if out != nil {
		// Read without out's lock: a link's pack holds its own lock while it
		// asks for other links' capacity.
		c = min(minRouteBuffer+2*int(out.sf.window.Load()), maxRouteBuffer)
	}
	if r.held.Load() >= NodeBufferCap {
		return 0
	}
	return c
}

// enqueue queues a route frame on link n (the rule's out-link) for the route whose
// ID on n is rid. It never drops: credit bounds what arrives.
func (n *neighbour) enqueue(ru *Rule, rid uint32, rt bool, payload []byte) {
	typ := byte(frameData)
	if rt {
		typ = frameDataRT
	}
	f := getBuf()
	*f = appendFrame(*f, typ, u32(rid), payload)
	l := n.sf
	l.mu.Lock()
	if n.r.cfg.PlainForwarding && l.queued+len(payload) > plainQueueCap {
		l.mu.Unlock()
		putBuf(f)
		n.r.leave(ru, len(payload))
		n.r.count(CountForwardDrop)
		return
	}
	q := l.queues[qkey(rid, rt)]
	if q == nil {
		q = &routeQueue{rid: rid, ru: ru, rt: rt}
		l.queues[qkey(rid, rt)] = q
	}
	q.frames = append(q.frames, f)
	q.bytes += len(payload)
	l.queued += len(payload)
	l.activateLocked(q)
	l.mu.Unlock()
	l.wake()
}

func (l *linkSF) activateLocked(q *routeQueue) {
	if q.active || len(q.frames) == 0 {
		return
	}
	q.active = true
	if q.rt {
		l.activeRT = append(l.activeRT, q)
	} else {
		l.activeBK = append(l.activeBK, q)
	}
}

// arrive accounts n payload bytes of route ru arriving at this node; false when
// they exceed the credit this node granted (the upstream neighbour ignored it).
func (r *Router) arrive(ru *Rule, n int) bool {
	ru.sf.mu.Lock()
	ok := true
	if r.cfg.PlainForwarding {
		ru.sf.buf.Hold(n) // no credit to check
	} else {
		ok = ru.sf.buf.Arrive(n)
	}
	ru.sf.mu.Unlock()
	if ok {
		r.held.Add(int64(n))
	}
	return ok
}

// leave accounts n payload bytes of ru leaving this node (acknowledged by the next
// hop, delivered, or dropped), and has the credit advertised upstream.
func (r *Router) leave(ru *Rule, n int) {
	ru.sf.mu.Lock()
	ru.sf.buf.Leave(n)
	ru.sf.mu.Unlock()
	r.held.Add(-int64(n))
	if ru.in.link == local {
		if rt := ru.route; rt != nil {
			rt.room()
		}
		return
	}
	if r.cfg.PlainForwarding {
		return // no credit to advertise
	}
	if in := r.neighbourByLink(ru.in.link); in != nil {
		in.sf.mu.Lock()
		in.sf.credits[ru] = true
		in.sf.ctrlDue(time.Now())
		in.sf.mu.Unlock()
		in.sf.wake()
	}
}

// release accounts the route bytes of a datagram that left this node (acked by
// the neighbour, or lost with its link when lost is set). A rule removed since
// (torn down, expired, its link gone) still gives its bytes back to the node's
// total, or the node would drift towards NodeBufferCap and stop granting credit.
func (r *Router) release(routes []perhop.RouteBytes, lost bool) {
	for _, rb := range routes {
		if lost {
			r.count(CountLinkLost)
		}
		ru := r.table.lookup(hop{uint32(rb.Key >> 32), uint32(rb.Key)})
		if ru == nil {
			r.held.Add(-int64(rb.Bytes))
			continue
		}
		r.leave(ru, rb.Bytes)
	}
}

// grant applies a Credit frame from n for the route whose ID on n is rid.
func (r *Router) grant(n *neighbour, rid uint32, limit uint64) {
	ru := r.table.lookupReverse(hop{n.id, rid})
	if ru == nil {
		return
	}
	ru.sf.mu.Lock()
	more := ru.sf.credit.Grant(limit)
	ru.sf.mu.Unlock()
	if !more {
		return
	}
	l := n.sf
	l.mu.Lock()
	for _, rt := range []bool{true, false} {
		if q := l.queues[qkey(rid, rt)]; q != nil {
			l.activateLocked(q)
		}
	}
	l.mu.Unlock()
	l.wake()
}

// linkAck applies a LinkAck from n: acknowledged route bytes leave this node's
// buffers; datagrams passed over are queued to be sent again.
func (r *Router) linkAck(n *neighbour, cum uint32, sack []uint64, now time.Time) {
	l := n.sf
	l.mu.Lock()
	acked, lost := l.snd.OnAck(cum, sack, now)
	l.window.Store(int64(l.snd.Window(l.floor, l.ceil)))
	for _, p := range lost {
		if !p.Queued {
			p.Queued = true
			l.resend = append(l.resend, p)
		}
	}
	l.mu.Unlock()
	for _, p := range acked {
		r.release(p.Routes, false)
	}
	if len(lost) > 0 || len(acked) > 0 {
		l.wake()
	}
}

// reliable handles a Reliable frame from n: its inner frames once per seq.
func (r *Router) reliable(n *neighbour, body []byte, now time.Time) {
	seq, base, inner, err := parseReliable(body)
	if err != nil {
		r.count(CountBadFrame)
		return
	}
	l := n.sf
	l.mu.Lock()
	fresh := l.rcv.Accept(seq, base)
	l.ackCount++
	if !fresh {
		l.ackCount = l.tm.ackEvery // a copy: our ack was lost, send it now
	}
	l.ctrlDue(now)
	l.mu.Unlock()
	l.wake() // an ack is due (now, or when ctrlHold ends: the sender sets its timer)
	if !fresh {
		r.count(CountLinkCopies)
		return
	}
	b := inner
	for len(b) > 0 {
		typ, fb, rest, err := nextFrame(b)
		if err != nil {
			r.count(CountBadFrame)
			return
		}
		b = rest
		switch typ {
		case frameData, frameDataRT:
			rid, err := parseRouteID(fb, false)
			if err != nil {
				r.count(CountBadFrame)
				continue
			}
			r.forward(n, rid, fb[4:], typ == frameDataRT, now)
		case frameCredit:
			rid, limit, err := parseCredit(fb)
			if err != nil {
				r.count(CountBadFrame)
				continue
			}
			r.grant(n, rid, limit)
		default:
			r.count(CountBadFrame)
		}
	}
}

// pack fills plain (after the unreliable frames already in it) with this link's
// reliable part: a datagram to send again, or new credit and data frames within
// the link's window and each route's credit. It returns the new plain.
func (n *neighbour) pack(plain []byte, max int, now time.Time) (out []byte) {
	r := n.r
	l := n.sf
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(plain) == 0 && !l.ctrlRipe(now) && !l.dataReady(now) {
		// Nothing goes but, maybe, an ack or credit that may still wait
		// (ctrlHold) for a datagram going anyway.
		return plain
	}
	defer func() {
		if !l.ctrlPending() {
			l.ctrlSince = time.Time{}
		}
	}()
	acked := false
	if l.rcv.AckDue {
		var cum uint32
		cum, l.sack = l.rcv.Ack(l.sack)
		if len(plain)+frameHeader+4+8*len(l.sack) <= max {
			plain = appendLinkAck(plain, cum, l.sack)
			acked, l.ackRepeats, l.ackCount = true, ackRepeats, 0
		} else {
			l.rcv.AckDue = true // the next datagram carries it
		}
	}
	// The latest ack rides again on the next datagrams that go anyway (credits,
	// data of the other direction): a lost ack then costs the neighbour no
	// retransmission timeout and no copy sent for nothing.
	defer func() {
		// Not while an ack is due: it did not fit here and goes whole in the
		// next datagram (Ack would clear AckDue).
		if acked || l.rcv.AckDue || l.ackRepeats == 0 || len(out) == 0 || !l.rcv.Started() {
			return
		}
		cum, sack := l.rcv.Ack(l.sack)
		l.sack = sack
		if len(out)+frameHeader+4+8*len(sack) <= max {
			out = appendLinkAck(out, cum, sack)
			l.ackRepeats--
		}
	}()
	// Credits for routes arriving over this link, unreliable: the window of
	// this direction must not hold back the credit of the other, and a lost one
	// is sent again (sfTimers).
	for ru := range l.credits {
		if len(plain)+frameHeader+12 > max {
			break
		}
		delete(l.credits, ru)
		out := r.neighbourByLink(ru.out.link)
		capa := r.capacity(out)
		ru.sf.mu.Lock()
		limit := ru.sf.buf.Limit(capa)
		send := limit > ru.sf.granted || now.Sub(ru.sf.grantedAt) >= l.tm.creditRefresh
		if send {
			ru.sf.granted, ru.sf.grantedAt = limit, now
		}
		ru.sf.mu.Unlock()
		if send {
			var b [12]byte
			binary.BigEndian.PutUint32(b[:], ru.in.rid)
			binary.BigEndian.PutUint64(b[4:], limit)
			plain = appendFrame(plain, frameCredit, b[:])
			l.granted[ru] = true
		}
	}
	room := max - len(plain) - frameHeader - 8
	if room <= 0 {
		return plain
	}
	// A datagram passed over, or timed out, goes again first, alone, as it was.
	for len(l.resend) > 0 {
		p := l.resend[0]
		l.resend = l.resend[1:]
		p.Queued = false
		if _, still := l.snd.Pending(p.Seq); !still {
			continue
		}
		if len(p.Frames) > room {
			continue // cannot happen: it fitted once under the same MTU
		}
		l.snd.Resent(p, now)
		for _, rb := range p.Routes {
			if ru := r.table.lookup(hop{uint32(rb.Key >> 32), uint32(rb.Key)}); ru != nil {
				ru.sf.retransmits.Add(1)
			}
		}
		r.linkRetransmits.Add(1)
		return appendReliable(plain, p.Seq, l.snd.Base(), p.Frames)
	}
	if r.cfg.PlainForwarding {
		return n.packPlain(plain, max)
	}
	if !l.windowOpen() {
		return plain
	}
	// Past the pacing rate only real-time frames go (they are few and must
	// not wait; bulk waits here rather than in a FIFO below the router).
	paced := !l.paceOK(now)
	l.paceHeld = paced && len(l.activeBK) > 0
	if paced && len(l.activeRT) == 0 {
		return plain
	}
	inner := l.inner[:0] // built here, then copied once to its exact size for the Sender
	defer func() { l.inner = inner[:0] }()
	// Data: real-time first, every bulkShare-th frame bulk when both wait.
	var routes []perhop.RouteBytes
	dry := false
	for {
		rtTurn := len(l.activeRT) > 0 && (paced || len(l.activeBK) == 0 || l.turn%bulkShare != 0)
		list := &l.activeBK
		if rtTurn {
			list = &l.activeRT
		} else if paced {
			break
		}
		if len(*list) == 0 {
			dry = true
			break
		}
		q := (*list)[0]
		f := q.frames[0]
		if len(inner)+len(*f) > room {
			break
		}
		payload := len(*f) - frameHeader - 4
		ok := true
		if q.ru.out.link != local {
			q.ru.sf.mu.Lock()
			ok = q.ru.sf.credit.Take(payload)
			q.ru.sf.mu.Unlock()
		}
		*list = (*list)[1:]
		if !ok {
			q.active = false // back when credit comes (grant)
			continue
		}
		l.turn++
		inner = append(inner, (*f)...)
		putBuf(f)
		q.frames[0] = nil
		q.frames = q.frames[1:]
		q.bytes -= payload
		l.queued -= payload
		routes = addRouteBytes(routes, ruleKey(q.ru.in), payload)
		if len(q.frames) > 0 {
			*list = append(*list, q) // round robin
		} else {
			// Empty: forget it, so routes that come and go do not grow the map.
			q.active = false
			q.frames = nil
			delete(l.queues, qkey(q.rid, q.rt))
		}
	}
	if dry {
		l.snd.AppLimited()
	}
	if len(inner) == 0 {
		return plain
	}
	if l.snd.PacingRate() > 0 {
		l.paceTokens -= float64(len(inner))
	}
	p := l.snd.Add(append(make([]byte, 0, len(inner)), inner...), routes, now)
	return appendReliable(plain, p.Seq, l.snd.Base(), p.Frames)
}

// packPlain is pack under Config.PlainForwarding: route frames go bare, with no
// ack to wait for, and leave this node's buffers as they are sent. l.mu is held.
func (n *neighbour) packPlain(plain []byte, max int) []byte {
	l := n.sf
	for _, list := range []*[]*routeQueue{&l.activeRT, &l.activeBK} {
		for len(*list) > 0 {
			q := (*list)[0]
			f := q.frames[0]
			if len(plain)+len(*f) > max {
				return plain
			}
			payload := len(*f) - frameHeader - 4
			plain = append(plain, (*f)...)
			putBuf(f)
			q.frames[0] = nil
			q.frames = q.frames[1:]
			q.bytes -= payload
			l.queued -= payload
			*list = (*list)[1:]
			if len(q.frames) > 0 {
				*list = append(*list, q)
			} else {
				q.active, q.frames = false, nil
				delete(l.queues, qkey(q.rid, q.rt))
			}
			// leave takes other links' locks: not under l.mu (runLeaves).
			l.leaves = append(l.leaves, pendingLeave{q.ru, payload})
		}
	}
	return plain
}

type pendingLeave struct {
	ru *Rule
	n  int
}

// runLeaves accounts the bytes packPlain sent, outside the link's lock.
func (n *neighbour) runLeaves() {
	l := n.sf
	l.mu.Lock()
	ls := l.leaves
	l.leaves = nil
	l.mu.Unlock()
	for _, x := range ls {
		n.r.leave(x.ru, x.n)
	}
}

func addRouteBytes(rs []perhop.RouteBytes, key uint64, n int) []perhop.RouteBytes {
	for i := range rs {
		if rs[i].Key == key {
			rs[i].Bytes += n
			return rs
		}
	}
	return append(rs, perhop.RouteBytes{Key: key, Bytes: n})
}

func appendReliable(dst []byte, seq, base uint32, frames []byte) []byte {
	n := 8 + len(frames)
	dst = append(dst, frameReliable, byte(n>>8), byte(n))
	dst = binary.BigEndian.AppendUint32(dst, seq)
	dst = binary.BigEndian.AppendUint32(dst, base)
	return append(dst, frames...)
}

// sfTimers queues timed-out datagrams to be sent again and re-advertises credit a
// neighbour may have missed; it returns when the link next needs a look.
func (n *neighbour) sfTimers(now time.Time) time.Duration {
	floor := max(linkRTOFloor, n.rtt())
	if n.amateur {
		floor = max(floor, radioRTOFloor(n.at.Load()))
	}
	l := n.sf
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.refreshed) >= l.tm.creditRefresh {
		l.refreshed = now
		for ru := range l.granted {
			if now.Sub(time.Unix(0, ru.used.Load())) > l.tm.creditIdle {
				delete(l.granted, ru)
				continue
			}
			ru.sf.mu.Lock()
			stale := ru.sf.granted > ru.sf.buf.Received() && now.Sub(ru.sf.grantedAt) >= l.tm.creditRefresh
			ru.sf.mu.Unlock()
			if stale {
				l.credits[ru] = true
				l.ctrlDue(now)
			}
		}
	}
	rto := l.snd.RTO(floor)
	if !now.Before(l.nextDue) {
		// Walking the outstanding datagrams costs; a quarter RTO is precise enough.
		l.nextDue = now.Add(max(rto/4, time.Millisecond))
		for _, p := range l.snd.Due(now, rto) {
			if !p.Queued {
				p.Queued = true
				l.resend = append(l.resend, p)
			}
		}
	}
	wait := 50 * time.Millisecond
	if d, _ := l.snd.Outstanding(); d > 0 || l.ctrlPending() {
		wait = max(rto/4, time.Millisecond)
	} else if len(l.granted) > 0 {
		wait = l.tm.creditRefresh
	}
	if l.ctrlPending() && !l.ctrlRipe(now) {
		wait = min(wait, max(l.ctrlSince.Add(l.tm.ctrlHold).Sub(now), 50*time.Microsecond))
	}
	if len(l.activeBK) > 0 && l.windowOpen() && !l.paceOK(now) {
		wait = min(wait, l.paceWait())
	}
	return wait
}

// ready reports whether pack has something to send now.
func (l *linkSF) ready() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	return l.ctrlRipe(now) || l.dataReady(now)
}

// dataReady reports whether pack would send a reliable datagram now: one to send
// again, or route data within the window (and, for bulk, the pacing). l.mu is held.
func (l *linkSF) dataReady(now time.Time) bool {
	if len(l.resend) > 0 {
		return true
	}
	if len(l.activeRT)+len(l.activeBK) > 0 && l.plain {
		return true
	}
	if len(l.activeRT)+len(l.activeBK) == 0 || !l.windowOpen() {
		return false
	}
	return len(l.activeRT) > 0 || l.paceOK(now)
}

// ctrlPending reports whether a link ack or a credit waits to go. l.mu is held.
func (l *linkSF) ctrlPending() bool { return l.rcv.AckDue || len(l.credits) > 0 }

// ctrlDue notes that an ack or credit became due at now. l.mu is held.
func (l *linkSF) ctrlDue(now time.Time) {
	if l.ctrlSince.IsZero() {
		l.ctrlSince = now
	}
}

// ctrlRipe reports whether the waiting ack or credits go now, in a datagram of
// their own if need be: l.tm.ackEvery datagrams are unacknowledged, or the
// oldest has waited l.tm.ctrlHold (see ctrlHold). l.mu is held.
func (l *linkSF) ctrlRipe(now time.Time) bool {
	return l.ctrlPending() && (l.ackCount >= l.tm.ackEvery || now.Sub(l.ctrlSince) >= l.tm.ctrlHold)
}

// paceOK refills the pacing budget up to now and reports whether bulk route
// data may go. The budget holds at most paceBurst of the rate (at least
// paceBurstBytes), so an idle link does not save up a flood. l.mu is held.
func (l *linkSF) paceOK(now time.Time) bool {
	rate := l.snd.PacingRate()
	if rate == 0 {
		return true
	}
	if d := now.Sub(l.paceLast); d > 0 {
		limit := max(paceBurstBytes, rate*paceBurst.Seconds())
		if l.paceHeld {
			// Bulk was waiting for this budget: a timer that fired late
			// does not lower the rate (but not without bound).
			limit = max(limit, rate*min(d, paceLate).Seconds())
		}
		l.paceTokens = min(l.paceTokens+rate*d.Seconds(), limit)
		l.paceLast = now
	}
	return l.paceTokens > 0
}

// paceWait is how long until paceOK holds again (0 if it does). l.mu is held.
func (l *linkSF) paceWait() time.Duration {
	rate := l.snd.PacingRate()
	if rate == 0 || l.paceTokens > 0 {
		return 0
	}
	return time.Duration(-l.paceTokens/rate*float64(time.Second)) + time.Microsecond
}

// windowOpen reports whether route data may go: fewer bytes in flight than the
// window (the last datagram may overshoot it by up to one MTU). ready and pack
// must agree on it exactly: were ready true while pack sent nothing, the sender
// would spin (it did, at 2 cores, with a window just short of full).
func (l *linkSF) windowOpen() bool {
	return l.snd.CanSend(1, l.snd.Window(l.floor, l.ceil))
}

// dropSF forgets a dead link's queues and unacknowledged datagrams: their route
// bytes leave this node's buffers (the routes through the link are broken).
func (n *neighbour) dropSF() {
	r := n.r
	l := n.sf
	l.mu.Lock()
	gone := l.snd.Drop()
	var qs []*routeQueue
	for _, q := range l.queues {
		qs = append(qs, q)
	}
	l.queues = make(map[uint64]*routeQueue)
	l.activeRT, l.activeBK, l.resend = nil, nil, nil
	l.queued = 0
	clear(l.credits)
	clear(l.granted)
	l.ctrlSince, l.ackCount = time.Time{}, 0
	l.snd = perhop.NewSender(r.rand32())
	l.rcv = perhop.Receiver{}
	l.mu.Unlock()
	for _, p := range gone {
		r.release(p.Routes, true)
	}
	for _, q := range qs {
		if q.bytes > 0 {
			r.leave(q.ru, q.bytes)
			r.count(CountLinkLost)
		}
	}
}

// sfStatus is a link's store-and-forward figures for /mesh/links.
type sfStatus struct {
	QueueBytes    int     `json:"queue_bytes"`     // route bytes waiting for credit or window
	InFlightBytes int     `json:"in_flight_bytes"` // sent, not yet acknowledged
	Retransmits   uint64  `json:"retransmits"`
	WindowBytes   int     `json:"window_bytes"`
	RateBps       float64 `json:"delivery_rate_Bps"`
}

func (n *neighbour) sfStatus() sfStatus {
	l := n.sf
	l.mu.Lock()
	defer l.mu.Unlock()
	_, infl := l.snd.Outstanding()
	return sfStatus{QueueBytes: l.queued, InFlightBytes: infl, Retransmits: l.snd.Retransmits(),
		WindowBytes: l.snd.Window(l.floor, l.ceil), RateBps: l.snd.Rate()}
}

// Held is the route bytes this node holds for store and forward now: queued or
// sent and not yet acknowledged by the next hop (at most NodeBufferCap).
func (r *Router) Held() int64 { return r.held.Load() }
