// Package perhop is per-hop store and forward (seeds/004, "Meshnet Routing: Store and
// Forward"): what one node keeps for the next one until it has it. It holds the two
// acknowledgements between neighbours as plain state machines, with no goroutines
// and no I/O, so the router (services/mesh) drives them and tests can too:
//
//   - the link ack: Sender numbers the reliable datagrams of one link and keeps
//     their frames until the neighbour's Receiver acknowledges them (a cumulative
//     sequence number and a bitmap of up to MaxSACKWords·64 after it);
//     unacknowledged ones are sent again, under the same number, so the receiver
//     recognises copies. The Sender also paces a link that has shown a FIFO of
//     its own (pace.go), so that bulk waits where real-time frames overtake it.
//   - the credit: Buffer is one route's room at this hop, advertised upstream as a
//     cumulative byte limit; Credit is the upstream side, which sends a route's
//     data only below that limit. Congestion then fills buffers upstream, back to
//     the source, instead of dropping packets at a full queue.
//
// Sequence numbers are 32-bit serial numbers (RFC 1982): comparisons are modulo
// 2^32, and a sender never has more than MaxInFlight datagrams outstanding, far
// below 2^31.
package perhop

import (
	"math/bits"
	"time"
)

// MaxInFlight caps the unacknowledged reliable datagrams of one link; the receiver
// remembers that many sequence numbers, so a copy is recognised however late it
// comes.
const MaxInFlight = 1024

// before reports a < b in serial number arithmetic.
func before(a, b uint32) bool { return int32(a-b) < 0 }

// Pending is one reliable datagram's frames awaiting the link ack.
type Pending struct {
	Seq    uint32
	Frames []byte
	Sent   time.Time
	Tries  int
	// Routes says what the datagram's frames count against route buffers (the
	// caller sets it; the sender only keeps it).
	Routes []RouteBytes
	// Queued is free for the caller: the router marks a datagram waiting to be
	// sent again, so it is queued once.
	Queued bool
}

// RouteBytes says how many bytes of one route a datagram carries, so that the
// route's buffer at this hop frees them when the datagram is acknowledged.
type RouteBytes struct {
	Key   uint64 // the caller's route key
	Bytes int
}

// Sender is the sending side of one link's reliability: it numbers reliable
// datagrams, keeps them until acknowledged, and says which to send again.
type Sender struct {
	next uint32
	// ring holds the outstanding datagrams by seq % MaxInFlight; every one is in
	// [base, next), so acks and timers walk at most MaxInFlight slots, not a map.
	ring     [MaxInFlight]*Pending
	base     uint32 // the oldest outstanding seq (next when none)
	count    int
	inflight int // bytes of frames outstanding
	highAck  uint32
	haveAck  bool
	// ackedSent is when the most recently sent datagram known to have arrived
	// was sent (first transmissions only: the ack of one sent twice could be
	// the first copy's).
	ackedSent time.Time

	srtt, rttvar, minRTT time.Duration
	// delivery-rate estimate, bytes per second, over roughly one round trip
	rate         float64
	rateBytes    int
	rateSince    time.Time
	retransmits  uint64
	lostForGood  uint64
	maxInFlightB int
	pace         pacer
}

// NewSender returns a sender whose first sequence number is first (random, so a
// restarted link does not collide with copies of the old one).
func NewSender(first uint32) *Sender {
	return &Sender{next: first, base: first}
}

func (s *Sender) get(seq uint32) *Pending {
	if !before(seq, s.next) || before(seq, s.base) {
		return nil
	}
	p := s.ring[seq%MaxInFlight]
	if p == nil || p.Seq != seq {
		return nil
	}
	return p
}

// advance moves base past acknowledged slots.
func (s *Sender) advance() {
	for s.base != s.next && s.ring[s.base%MaxInFlight] == nil {
		s.base++
	}
}

// Base returns the oldest unacknowledged sequence number (the next one when
// none is outstanding): receivers may forget everything before it.
func (s *Sender) Base() uint32 { return s.base }

// Pending returns the outstanding datagram seq, if it still is.
func (s *Sender) Pending(seq uint32) (*Pending, bool) {
	p := s.get(seq)
	return p, p != nil
}

// Outstanding returns the datagrams and frame bytes awaiting acknowledgement.
func (s *Sender) Outstanding() (datagrams, bytes int) { return s.count, s.inflight }

// Retransmits returns how many datagrams were sent again.
func (s *Sender) Retransmits() uint64 { return s.retransmits }

// RTT returns the smoothed round trip of acknowledged datagrams and its minimum
// (0 before the first sample).
func (s *Sender) RTT() (srtt, min time.Duration) { return s.srtt, s.minRTT }

// Rate returns the delivery-rate estimate in bytes per second (0 before there is one).
func (s *Sender) Rate() float64 { return s.rate }

// Window returns how many frame bytes may be outstanding: twice the bandwidth-delay
// product measured from acknowledgements (delivery rate × minimum RTT), at least
// floor bytes, at most ceil. Before measurements it is floor.
func (s *Sender) Window(floor, ceil int) int {
	w := floor
	if s.rate > 0 && s.minRTT > 0 {
		bdp := int(s.rate * s.minRTT.Seconds() * 2)
		w = max(floor, min(bdp, ceil))
	}
	return w
}

// CanSend reports whether a datagram of n frame bytes fits the window.
func (s *Sender) CanSend(n, window int) bool {
	return s.next-s.base < MaxInFlight && (s.inflight == 0 || s.inflight+n <= window)
}

// Add numbers a reliable datagram's frames and keeps them, without a copy: the
// caller hands frames over and must not change them afterwards. It returns the
// Pending to send.
func (s *Sender) Add(frames []byte, routes []RouteBytes, now time.Time) *Pending {
	p := &Pending{Seq: s.next, Frames: frames, Sent: now, Tries: 1, Routes: routes}
	s.next++
	s.ring[p.Seq%MaxInFlight] = p
	s.count++
	s.inflight += len(p.Frames)
	return p
}

// OnAck applies an acknowledgement: every sequence number before cum, and
// cum+1+64w+i for each bit i set in word w of sack, has arrived (Receiver.Ack). It returns the datagrams newly
// acknowledged (their route bytes leave this hop's buffers) and those judged lost
// because three later ones arrived (fast retransmit: send them again now).
func (s *Sender) OnAck(cum uint32, sack []uint64, now time.Time) (acked, lost []*Pending) {
	ack := func(seq uint32) {
		p := s.get(seq)
		if p == nil {
			return
		}
		s.ring[seq%MaxInFlight] = nil
		s.count--
		s.inflight -= len(p.Frames)
		if p.Tries == 1 { // Karn: no RTT sample from a datagram sent twice
			s.sample(now.Sub(p.Sent))
			if p.Sent.After(s.ackedSent) {
				s.ackedSent = p.Sent
			}
		}
		s.deliver(len(p.Frames), now)
		acked = append(acked, p)
	}
	if before(s.next, cum) || before(cum, s.base) {
		// An ack of what was never sent, or from before this sender's oldest
		// outstanding datagram: the receiver's state is from an earlier link
		// (this node restarted, or reset the link). Taking it would acknowledge
		// datagrams that never arrived; the receiver starts again at our base
		// with the next datagram it gets, and its acks count from then.
		return nil, nil
	}
	for seq := s.base; before(seq, cum); seq++ {
		ack(seq)
	}
	high := cum - 1
	for w, word := range sack[:min(len(sack), MaxSACKWords)] {
		for ; word != 0; word &= word - 1 {
			seq := cum + 1 + uint32(64*w+bits.TrailingZeros64(word))
			ack(seq)
			high = seq
		}
	}
	if !s.haveAck || before(s.highAck, high) {
		s.highAck, s.haveAck = high, true
	}
	s.advance()
	// Anything unacknowledged three or more below the highest acknowledged was
	// passed over, and is lost if a datagram sent after its last transmission
	// has arrived (RFC 8985 §6.2, RACK): a copy sent again is not judged by the
	// datagrams that overtook the first one, or every loss would be sent twice.
	for seq := s.base; before(seq, s.highAck-2); seq++ {
		if p := s.get(seq); p != nil && p.Sent.Before(s.ackedSent) {
			lost = append(lost, p)
		}
	}
	return acked, lost
}

// RTO returns the retransmission timeout (RFC 6298 §2: srtt + 4·rttvar), at
// least 1.5 × srtt + 2 ms (a link's acks wait for the neighbour's scheduling,
// which a steady rttvar underrates) and floor; 3 × floor before the first sample.
func (s *Sender) RTO(floor time.Duration) time.Duration {
	if s.srtt == 0 {
		return 3 * floor
	}
	return max(s.srtt+4*s.rttvar, s.srtt*3/2+2*time.Millisecond, floor)
}

// MaxBackoff bounds the doubled wait of Due: at most this long, or one rto when
// that is longer. On a link whose RTO is milliseconds it never binds; on a radio
// link, whose RTO is seconds, 32 RTOs would be minutes of silence after a burst
// of loss.
const MaxBackoff = 30 * time.Second

// Due returns the datagrams unacknowledged for longer than rto (doubled per try,
// up to MaxBackoff) at now.
func (s *Sender) Due(now time.Time, rto time.Duration) []*Pending {
	var out []*Pending
	for seq := s.base; seq != s.next; seq++ {
		if p := s.get(seq); p != nil && now.Sub(p.Sent) >= min(rto<<min(p.Tries-1, 5), max(rto, MaxBackoff)) {
			out = append(out, p)
		}
	}
	return out
}

// Resent records that p was sent again at now, under its own sequence number.
func (s *Sender) Resent(p *Pending, now time.Time) {
	p.Sent = now
	p.Tries++
	s.retransmits++
}

// Drop forgets every outstanding datagram (the link died) and returns them.
func (s *Sender) Drop() []*Pending {
	out := make([]*Pending, 0, s.count)
	for seq := s.base; seq != s.next; seq++ {
		if p := s.get(seq); p != nil {
			out = append(out, p)
		}
	}
	clear(s.ring[:])
	s.base, s.count, s.inflight = s.next, 0, 0
	s.lostForGood += uint64(len(out))
	return out
}

func (s *Sender) sample(r time.Duration) {
	if r <= 0 {
		r = time.Microsecond
	}
	if s.minRTT == 0 || r < s.minRTT {
		s.minRTT = r
	}
	if s.pace.roundMin == 0 || r < s.pace.roundMin {
		s.pace.roundMin = r
	}
	if s.srtt == 0 {
		s.srtt, s.rttvar = r, r/2
		return
	}
	d := s.srtt - r
	if d < 0 {
		d = -d
	}
	s.rttvar = (3*s.rttvar + d) / 4
	s.srtt = (7*s.srtt + r) / 8
}

// deliver updates the delivery-rate estimate with n acknowledged bytes.
func (s *Sender) deliver(n int, now time.Time) {
	if s.rateSince.IsZero() {
		s.rateSince = now
	}
	s.rateBytes += n
	span := max(s.srtt, 10*time.Millisecond)
	if el := now.Sub(s.rateSince); el >= span {
		r := float64(s.rateBytes) / el.Seconds()
		if s.rate == 0 {
			s.rate = r
		} else {
			s.rate = 0.75*s.rate + 0.25*r
		}
		s.pace.endInterval(r, el, s.minRTT)
		s.rateBytes, s.rateSince = 0, now
	}
}

// Receiver is the receiving side of one link's reliability: it recognises copies
// and builds acknowledgements.
type Receiver struct {
	cum     uint32 // every sequence number before cum has arrived
	started bool
	seen    [MaxInFlight / 64]uint64 // bit (seq % MaxInFlight): arrived, for seq in [cum, cum+MaxInFlight)
	// AckDue is set when a reliable datagram arrived and no ack has gone since.
	AckDue bool
}

func (r *Receiver) bit(seq uint32) (int, uint64) {
	i := seq % MaxInFlight
	return int(i / 64), 1 << (i % 64)
}

// Accept records reliable datagram seq, sent when the sender's oldest
// unacknowledged datagram was base (Sender.Base), and reports whether it is new
// (its frames are to be processed) rather than a copy.
//
// A sender numbers datagrams below base+MaxInFlight, and its base never passes
// this receiver's cum (everything before base was acknowledged, so it arrived),
// nor lags it by more than MaxInFlight. A frame that breaks this comes from a
// sender that started again (the neighbour restarted and numbers from a new
// random first seq): the receiver starts again at its base instead of taking its
// datagrams for copies. A seq at or past base+MaxInFlight is refused.
func (r *Receiver) Accept(seq, base uint32) bool {
	r.AckDue = true
	if seq-base >= MaxInFlight {
		return false
	}
	if !r.started || before(r.cum, base) || r.cum-base > MaxInFlight {
		r.reset(base)
	}
	if before(seq, r.cum) {
		return false
	}
	// Here cum <= seq < base+MaxInFlight <= cum+MaxInFlight: seq has its own bit.
	w, b := r.bit(seq)
	if r.seen[w]&b != 0 {
		return false
	}
	r.seen[w] |= b
	for {
		w, b := r.bit(r.cum)
		if r.seen[w]&b == 0 {
			break
		}
		r.seen[w] &^= b
		r.cum++
	}
	return true
}

// reset starts the receiver again at base, forgetting what arrived: only a sender
// that started again (or the first frame of a link) moves base past cum.
func (r *Receiver) reset(base uint32) {
	clear(r.seen[:])
	r.cum, r.started = base, true
}

// Started reports whether any reliable datagram has arrived (only then is there
// an ack to send).
func (r *Receiver) Started() bool { return r.started }

// MaxSACKWords is the most 64-bit words of SACK bitmap an acknowledgement carries:
// enough to cover every datagram a sender may have outstanding.
const MaxSACKWords = MaxInFlight / 64

// Ack returns the acknowledgement to send, and clears AckDue: the cumulative
// sequence number and the SACK bitmap after it (bit i of word w: cum+1+64w+i
// arrived), appended to sack[:0], without trailing zero words, at most
// MaxSACKWords. A bitmap as long as the window matters: a datagram the ack
// cannot mention waits for the hole before it to be filled, and a sender
// would time it out and send it again for nothing.
func (r *Receiver) Ack(sack []uint64) (cum uint32, words []uint64) {
	r.AckDue = false
	sack = sack[:0]
	for w := 0; w < MaxSACKWords; w++ {
		var word uint64
		for i := 0; i < 64; i++ {
			wi, b := r.bit(r.cum + 1 + uint32(64*w+i))
			if r.seen[wi]&b != 0 {
				word |= 1 << i
			}
		}
		sack = append(sack, word)
	}
	for len(sack) > 0 && sack[len(sack)-1] == 0 {
		sack = sack[:len(sack)-1]
	}
	return r.cum, sack
}

// InitialCredit is the credit a route has at the next hop before its first credit
// update: every hop gives every new route at least this much room.
const InitialCredit = 16 << 10

// Credit is the upstream side of one route's credit at the next hop: the bytes of
// the route sent so far and the limit the next hop granted, both cumulative, so a
// lost or reordered update costs nothing but time.
type Credit struct {
	sent  uint64
	limit uint64
	// Stalls counts the times a send found no credit.
	Stalls uint64
}

// NewCredit returns the credit of a new route: InitialCredit. The zero Credit is
// the same.
func NewCredit() Credit { return Credit{limit: InitialCredit} }

func (c *Credit) eff() uint64 { return max(c.limit, InitialCredit) }

// Grant applies a credit update: limit is the cumulative byte count the next hop
// will take. Older (smaller) limits are ignored.
func (c *Credit) Grant(limit uint64) bool {
	if limit > c.limit {
		c.limit = limit
		return true
	}
	return false
}

// Avail returns the bytes that may be sent now.
func (c *Credit) Avail() int64 { return int64(c.eff() - c.sent) }

// Take spends n bytes of credit, or reports false (and counts a stall) when there
// is not enough.
func (c *Credit) Take(n int) bool {
	if c.sent+uint64(n) > c.eff() {
		c.Stalls++
		return false
	}
	c.sent += uint64(n)
	return true
}

// Buffer is one route's room at this hop: bytes received from upstream and held
// here until the next hop acknowledges them (or they are delivered locally).
type Buffer struct {
	received   uint64 // cumulative bytes received from upstream
	advertised uint64 // the highest limit granted upstream
	held       int
	// Peak is the most bytes ever held.
	Peak int
}

// Arrive records n bytes received from upstream and held. It reports false when
// they exceed the limit granted (upstream ignored its credit: a broken or hostile
// neighbour); the caller drops them and counts it.
func (b *Buffer) Arrive(n int) bool {
	if b.received+uint64(n) > max(b.advertised, InitialCredit) {
		return false
	}
	b.received += uint64(n)
	b.held += n
	b.Peak = max(b.Peak, b.held)
	return true
}

// Hold records n bytes made at this node (the route's source, which has no
// upstream to grant credit to) and held until handed on.
func (b *Buffer) Hold(n int) {
	b.received += uint64(n)
	b.held += n
	b.Peak = max(b.Peak, b.held)
}

// Received returns the bytes received (or made) so far, cumulative.
func (b *Buffer) Received() uint64 { return b.received }

// Leave records n bytes handed on (acknowledged by the next hop) or delivered.
func (b *Buffer) Leave(n int) { b.held = max(b.held-n, 0) }

// Held returns the bytes held now.
func (b *Buffer) Held() int { return b.held }

// Limit returns the cumulative limit to advertise upstream for a buffer of
// capacity bytes: what was received plus the room left, never less than a limit
// already granted (a grant cannot be taken back).
func (b *Buffer) Limit(capacity int) uint64 {
	room := max(capacity-b.held, 0)
	b.advertised = max(b.advertised, b.received+uint64(room), InitialCredit)
	return b.advertised
}
