package stream

import (
	"sort"
	"time"
)

// pathState is what a Conn knows about one route.
type pathState struct {
	id      uint64
	p       Path
	present bool
	mtu     int

	// round trip, measured from our ack-eliciting packets sent on this path
	hasRTT   bool
	srtt     time.Duration
	rttvar   time.Duration
	minRTT   time.Duration
	minRTTAt time.Time
	latest   time.Duration
	// the current round (one srtt) and its smallest sample
	roundStart time.Time
	roundMin   time.Duration

	// sending
	cwnd     int
	ssthresh int
	lastCut  time.Time
	inflight int
	nextSend time.Time // pacing
	seq      uint64    // per-path send sequence
	queue    []uint64  // packet numbers in flight on this path, in send order
	qhead    int

	// loss detection
	hasAcked     bool
	largestSeq   uint64 // per-path sequence of the newest acknowledged packet
	reorderThr   uint64
	timeThr      float64
	lossTime     time.Time
	lastSpurious time.Time
	rtoTime      time.Time
	lastAck      time.Time
	lastElicit   time.Time
	backoff      uint

	// liveness
	dead       bool
	failAt     time.Time // last RTO or death: only packets sent since count as life
	sendErr    bool
	nextProbe  time.Time
	probeTries uint

	// statistics
	sent, acked, lost, spurious uint64
	lossRate                    float64
}

// sentPacket remembers one packet we sent.
type sentPacket struct {
	t       time.Time
	path    *pathState
	pathSeq uint64
	off     uint64
	n       int // data bytes
	size    int
	state   pktState
	data    bool
	fin     bool
	rto     bool // declared lost by a retransmission timeout
}

type pktState uint8

const (
	pktNone        pktState = iota // not ack-eliciting: nothing to track
	pktOutstanding                 // in flight
	pktAcked
	pktLost
)

// outSeg is a segment built under the lock, sent after it is released.
type outSeg struct {
	x   *pathState
	p   Path
	seg []byte
	pn  uint64
	ack bool // carries an ack section
}

func (x *pathState) rttOrInitial() time.Duration {
	if x.hasRTT {
		return x.srtt
	}
	return initialRTT
}

// rto is the path's base retransmission timeout (without backoff).
func (x *pathState) rto(cfg *Config) time.Duration {
	d := initialRTO
	if x.hasRTT {
		d = x.srtt + max(4*x.rttvar, time.Millisecond) + maxAckDelay
	}
	return min(max(d, cfg.MinRTO), cfg.MaxRTO)
}

func (x *pathState) lossDelay() time.Duration {
	r := max(x.srtt, x.latest)
	return max(time.Duration(x.timeThr*float64(r)), time.Millisecond)
}

func (x *pathState) usable() bool { return x.present && !x.dead && x.mtu >= minUsableMTU }

// firstOutstanding is the oldest packet in flight on x, pruning the queue front.
func (c *Conn) firstOutstanding(x *pathState) *sentPacket {
	for x.qhead < len(x.queue) {
		if p := c.pkt(x.queue[x.qhead]); p != nil && p.state == pktOutstanding {
			return p
		}
		x.qhead++
	}
	x.queue, x.qhead = x.queue[:0], 0
	return nil
}

func (c *Conn) pkt(pn uint64) *sentPacket {
	if pn < c.sentBase || pn-c.sentBase >= uint64(len(c.sent)) {
		return nil
	}
	return &c.sent[pn-c.sentBase]
}

func (c *Conn) initialCwnd(x *pathState) int {
	return min(initialCwndPkts*max(x.mtu, 1200), c.cfg.Window)
}

// pump refreshes the paths, runs due timers, sends what can be sent and arms
// the timer. Segments are sent outside the lock.
//
// Only one goroutine builds and sends at a time, so that segments leave in
// packet-number order; a pump requested meanwhile is run by that goroutine
// (or, after a few rounds, by the timer goroutine), never waited for.
func (c *Conn) pump() {
	c.pumpReq.Store(true)
	for rounds := 0; ; {
		if !c.sendMu.TryLock() {
			return
		}
		for rounds < 8 && c.pumpReq.Swap(false) {
			c.pumpOnce()
			rounds++
		}
		c.sendMu.Unlock()
		if !c.pumpReq.Load() {
			return
		}
		if rounds >= 8 {
			c.mu.Lock()
			if c.state != stateDone {
				c.armed = time.Time{}
				c.timer.Reset(0)
			}
			c.mu.Unlock()
			return
		}
	}
}

func (c *Conn) pumpOnce() {
	for range 4 {
		var ps []Path
		if c.paths != nil {
			ps = c.paths.Paths()
		}
		c.mu.Lock()
		now := time.Now()
		var out []outSeg
		if c.state != stateDone {
			c.refreshPathsLocked(ps, now)
			c.timeoutsLocked(now)
		} else if c.rstPending {
			c.refreshPathsLocked(ps, now)
		}
		out = c.buildLocked(now, out)
		if c.state != stateDone {
			c.checkFinishedLocked(now)
			c.armLocked(now)
		}
		c.mu.Unlock()
		failed := false
		for _, o := range out {
			if err := o.p.Send(o.seg); err != nil {
				c.mu.Lock()
				c.sendFailedLocked(o, time.Now())
				c.mu.Unlock()
				failed = true
			}
		}
		if !failed {
			return
		}
	}
}

// refreshPathsLocked merges the router's current path set into byID.
func (c *Conn) refreshPathsLocked(ps []Path, now time.Time) {
	for _, x := range c.present {
		x.present = false
	}
	c.present = c.present[:0]
	for _, p := range ps {
		if p == nil {
			continue
		}
		id := p.ID()
		x := c.byID[id]
		if x == nil {
			x = &pathState{id: id, reorderThr: 3, timeThr: 9.0 / 8, ssthresh: c.cfg.Window}
			x.mtu = p.MTU()
			x.cwnd = c.initialCwnd(x)
			c.byID[id] = x
		}
		if x.present {
			continue // listed twice
		}
		x.p, x.mtu, x.present = p, p.MTU(), true
		c.present = append(c.present, x)
	}
	for id, x := range c.byID {
		if x.present {
			continue
		}
		if c.firstOutstanding(x) != nil {
			// The route is gone: whatever is on it will not arrive.
			c.loseAllLocked(x, false)
		}
		if len(c.byID) > 32 {
			delete(c.byID, id)
		}
	}
}

// loseAllLocked declares every packet in flight on x lost.
func (c *Conn) loseAllLocked(x *pathState, rto bool) {
	for ; x.qhead < len(x.queue); x.qhead++ {
		if p := c.pkt(x.queue[x.qhead]); p != nil && p.state == pktOutstanding {
			c.lostLocked(p, rto)
		}
	}
	x.queue, x.qhead = x.queue[:0], 0
}

// lostLocked declares p lost and queues its data for retransmission.
func (c *Conn) lostLocked(p *sentPacket, rto bool) {
	p.state = pktLost
	p.rto = rto
	x := p.path
	x.inflight -= p.size
	c.inflight -= p.size
	x.lost++
	x.lossRate += (1 - x.lossRate) / 32
	c.st.SegmentsLost++
	if p.fin {
		c.finOut--
		if c.finOut == 0 && c.finState == finSent {
			c.finState = finPending
		}
	}
	if p.n > 0 {
		lo, hi := p.off, p.off+uint64(p.n)
		if hi > c.sndUna {
			c.rtx = append(c.rtx, rtxRange{max(lo, c.sndUna), hi, x.id})
		}
	}
}

// sendFailedLocked handles a Send error: the route is known broken.
func (c *Conn) sendFailedLocked(o outSeg, now time.Time) {
	x := o.x
	c.st.SendErrors++
	if o.ack && c.state != stateDone {
		c.ackNow = true // say it again on another path
	}
	if !x.dead {
		x.dead = true
		x.probeTries = 0
	}
	x.failAt = now
	x.sendErr = true
	x.nextProbe = now.Add(c.probeInterval(x))
	if c.state == stateDone {
		return
	}
	c.loseAllLocked(x, false)
}

// synRetry is the wait after the SYN sent tries times before: synRetryFirst
// doubling up to synRetryMax, or, on a path slower than that (Config.MinRTO
// and MaxRTO above them: a radio link), MinRTO doubling up to MaxRTO. Over
// Dire Wolf the fixed schedule sent eight SYNs before the first answer.
func (c *Conn) synRetry(tries int) time.Duration {
	first, most := max(synRetryFirst, c.cfg.MinRTO), max(synRetryMax, c.cfg.MaxRTO)
	return min(first<<min(tries, 8), most)
}

func (c *Conn) probeInterval(x *pathState) time.Duration {
	d := max(x.rto(&c.cfg), 100*time.Millisecond) << min(x.probeTries, 4)
	return min(d, max(maxProbeInterval, x.rto(&c.cfg)), c.cfg.KeepAlive)
}

// timeoutsLocked runs whatever timer has expired.
func (c *Conn) timeoutsLocked(now time.Time) {
	if now.Sub(c.lastRecv) >= c.cfg.IdleTimeout {
		c.rstPending = true
		c.finishLocked(ErrIdleTimeout)
		return
	}
	for _, x := range c.byID {
		if !x.lossTime.IsZero() && !now.Before(x.lossTime) {
			c.detectLossLocked(x, now)
		}
		x.rtoTime = c.rtoDeadlineLocked(x)
		if x.rtoTime.IsZero() || now.Before(x.rtoTime) {
			continue
		}
		// Nothing acknowledged on x for a whole RTO: all of it is lost.
		c.loseAllLocked(x, true)
		x.rtoTime = time.Time{}
		c.st.Timeouts++
		if x.dead {
			continue
		}
		x.backoff++
		x.failAt = now
		x.cwnd = max(x.cwnd/2, c.initialCwnd(x))
		if x.backoff >= 2 {
			// About three RTOs without a sign of life: stop using it until an
			// acknowledgement of a probe shows it works again.
			x.dead = true
			x.failAt = now
			x.probeTries = 0
			x.nextProbe = now
		}
	}
}

// rtoDeadlineLocked is when x's oldest packet in flight times out: one RTO,
// backed off, after it was sent or after x's last acknowledgement. It is zero
// with nothing in flight on x.
func (c *Conn) rtoDeadlineLocked(x *pathState) time.Time {
	p := c.firstOutstanding(x)
	if p == nil {
		return time.Time{}
	}
	start := p.t
	if x.lastAck.After(start) {
		start = x.lastAck
	}
	return start.Add(x.rto(&c.cfg) << min(x.backoff, 6))
}

// onAckLocked applies an ack section.
func (c *Conn) onAckLocked(a *ackSection, now time.Time) {
	if a.cum > c.sndUna && a.cum <= c.sndNxt {
		c.advanceUnaLocked(a.cum)
	}
	if a.fin && c.finState != finNone && c.finState != finAcked && a.cum == c.finOff {
		c.finState = finAcked
		c.finAckedAt = now
	}
	if len(a.ranges) == 0 || len(c.sent) == 0 {
		return
	}
	top := c.sentBase + uint64(len(c.sent)) - 1
	var touched [8]*pathState
	nt := 0
	var newest [8]uint64
	for _, r := range a.ranges {
		lo, hi := max(r.lo, c.sentBase), min(r.hi, top)
		if lo > hi {
			continue
		}
		for pn := hi; ; pn-- {
			p := &c.sent[pn-c.sentBase]
			if p.state == pktOutstanding || p.state == pktLost {
				x := p.path
				c.ackedLocked(p, now)
				k := 0
				for k < nt && touched[k] != x {
					k++
				}
				if k == nt && nt < len(touched) {
					touched[nt], newest[nt] = x, pn
					nt++
				} else if k < nt && pn > newest[k] {
					newest[k] = pn
				}
			}
			if pn == lo {
				break
			}
		}
	}
	for k := 0; k < nt; k++ {
		x := touched[k]
		p := c.pkt(newest[k])
		sample := now.Sub(p.t)
		if newest[k] == a.largest {
			d := time.Duration(a.delay) * time.Microsecond
			if d <= maxAckDelay && sample-d >= x.minRTT {
				sample -= d
			}
		}
		c.rttSampleLocked(x, sample, now)
		c.detectLossLocked(x, now)
	}
	c.pruneSentLocked(now)
}

// ackedLocked marks one packet acknowledged.
func (c *Conn) ackedLocked(p *sentPacket, now time.Time) {
	x := p.path
	if p.state == pktLost {
		// Spurious loss: the packet was only late. Tolerate more reordering.
		x.spurious++
		c.st.SegmentsSpurious++
		if !p.rto && x.hasAcked && x.largestSeq > p.pathSeq {
			d := x.largestSeq - p.pathSeq + 1
			x.reorderThr = min(max(x.reorderThr, d), 1024)
			x.timeThr = min(x.timeThr+1.0/16, 2)
			x.lastSpurious = now
		}
	} else {
		x.inflight -= p.size
		c.inflight -= p.size
		// Grow the window by what got through: loss does not shrink it.
		if x.inflight+p.size+x.mtu >= x.cwnd/2 {
			if x.cwnd < x.ssthresh {
				x.cwnd += p.size
			} else {
				x.cwnd += max(x.mtu*p.size/max(x.cwnd, 1), 1)
			}
			x.cwnd = min(x.cwnd, c.cfg.Window)
		}
		if p.fin {
			c.finOut--
		}
	}
	p.state = pktAcked
	x.acked++
	x.lossRate -= x.lossRate / 32
	if !x.hasAcked || p.pathSeq > x.largestSeq {
		x.hasAcked = true
		x.largestSeq = p.pathSeq
	}
	// A packet sent before the path timed out is no sign of life now.
	if !p.t.Before(x.failAt) {
		x.lastAck = now
		x.backoff = 0
		if x.dead {
			// Life again: use it, starting small.
			x.dead, x.sendErr, x.probeTries = false, false, 0
			x.cwnd = c.initialCwnd(x)
		}
	}
	if p.n > 0 {
		lo, hi := p.off, p.off+uint64(p.n)
		if hi > c.sndUna {
			c.acked.add(max(lo, c.sndUna), hi)
			if s := c.acked.s; len(s) > 0 && s[0].lo <= c.sndUna {
				c.advanceUnaLocked(s[0].hi)
			}
		}
	}
	if p.fin && c.sndUna >= c.finOff && c.finState != finAcked {
		c.finState = finAcked
		c.finAckedAt = now
	}
}

// advanceUnaLocked records that every byte below una has been received.
func (c *Conn) advanceUnaLocked(una uint64) {
	if una <= c.sndUna {
		return
	}
	n := una - c.sndUna
	c.sbuf = c.sbuf[n:]
	if len(c.sbuf) == 0 {
		c.sbuf = c.sbuf[:0:0]
	}
	c.sndUna = una
	c.acked.trimBelow(una)
	c.wakeWriteLocked()
}

// rttSampleLocked updates x's round-trip estimate (RFC 6298) and reacts to
// queueing delay, the only congestion signal used.
func (c *Conn) rttSampleLocked(x *pathState, s time.Duration, now time.Time) {
	if s <= 0 {
		s = time.Microsecond
	}
	x.latest = s
	if !x.hasRTT {
		x.hasRTT = true
		x.srtt, x.rttvar = s, s/2
		x.minRTT, x.minRTTAt = s, now
		return
	}
	if s < x.minRTT || now.Sub(x.minRTTAt) > 30*time.Second {
		x.minRTT, x.minRTTAt = s, now
	}
	d := x.srtt - s
	if d < 0 {
		d = -d
	}
	x.rttvar = (3*x.rttvar + d) / 4
	x.srtt = (7*x.srtt + s) / 8
	// Reordering tolerance learnt from spurious losses fades when they stop.
	if (x.reorderThr > 3 || x.timeThr > 9.0/8) && now.Sub(x.lastSpurious) > 16*x.srtt {
		x.lastSpurious = now
		x.reorderThr = max(x.reorderThr/2, 3)
		x.timeThr = max(x.timeThr-1.0/16, 9.0/8)
	}
	// A standing queue (round trip well above the minimum) means the route is
	// saturated: back off gently, at most once per round trip.
	thr := max(x.minRTT/2, 40*time.Millisecond)
	if x.srtt > x.minRTT+thr && now.Sub(x.lastCut) > x.srtt {
		x.lastCut = now
		x.cwnd = max(x.cwnd*7/10, minCwndPkts*x.mtu)
		x.ssthresh = x.cwnd
	}
	// Once a round trip, the smallest sample of the round says whether any
	// queue stands on the route (every packet waits in a standing queue, while
	// a hop's loss recovery or a link's jitter delays only some). None to speak
	// of (under a quarter of the minimum, as on a long route) while the window
	// is in use: grow by an eighth more per round trip, so a long fat route
	// fills in seconds rather than one MTU per round trip. A short route grows
	// by the MTU per round trip, quick there, without overshooting into the
	// hops' buffers.
	if x.roundStart.IsZero() || s < x.roundMin {
		x.roundMin = s
	}
	if x.roundStart.IsZero() {
		x.roundStart = now
	}
	if now.Sub(x.roundStart) < x.srtt {
		return
	}
	if x.roundMin-x.minRTT < min(thr/2, x.minRTT/4) && x.cwnd >= x.ssthresh && x.inflight+x.mtu >= x.cwnd/2 {
		x.cwnd = min(x.cwnd+x.cwnd/8, c.cfg.Window)
	}
	x.roundStart, x.roundMin = now, s
}

// detectLossLocked declares lost the packets on x that later packets on the
// same path overtook by more than the reordering tolerance (in packets or
// time). Paths are judged separately: their delays differ.
func (c *Conn) detectLossLocked(x *pathState, now time.Time) {
	x.lossTime = time.Time{}
	if !x.hasAcked {
		return
	}
	delay := x.lossDelay()
	thr := x.reorderThr
	if c.cfg.PerHopReliable {
		delay = max(delay, 2*max(x.srtt, x.latest), x.srtt+4*x.rttvar)
		thr = ^uint64(0)
	}
	for x.qhead < len(x.queue) {
		p := c.pkt(x.queue[x.qhead])
		if p == nil || p.state != pktOutstanding {
			x.qhead++
			continue
		}
		if p.pathSeq >= x.largestSeq {
			break
		}
		if x.largestSeq-p.pathSeq >= thr || now.Sub(p.t) >= delay {
			c.lostLocked(p, false)
			x.qhead++
			continue
		}
		x.lossTime = p.t.Add(delay)
		break
	}
	if x.qhead > 64 && x.qhead > len(x.queue)/2 {
		n := copy(x.queue, x.queue[x.qhead:])
		x.queue, x.qhead = x.queue[:n], 0
	}
}

// pruneSentLocked drops settled packets from the front of the sent list;
// lost ones stay a while so that a late acknowledgement shows the loss was
// spurious.
func (c *Conn) pruneSentLocked(now time.Time) {
	i := 0
	for i < len(c.sent) {
		p := &c.sent[i]
		if p.state == pktOutstanding {
			break
		}
		if p.state == pktLost && now.Sub(p.t) < 2*p.path.rttOrInitial()+maxAckDelay && len(c.sent)-i < 1<<16 {
			break
		}
		i++
	}
	if i == 0 {
		return
	}
	clear(c.sent[:i])
	c.sent = c.sent[i:]
	c.sentBase += uint64(i)
	if len(c.sent) == 0 {
		c.sent = c.sent[:0:0]
	}
}

// checkFinishedLocked ends a closed stream once both directions are through.
func (c *Conn) checkFinishedLocked(now time.Time) {
	if !c.closed || c.state != stateEstablished {
		return
	}
	peerDone := c.peerFin && c.rcvNxt == c.peerFinal
	ourDone := c.finState == finAcked && c.sndUna >= c.finOff
	switch {
	case ourDone && peerDone:
		// Linger to acknowledge the peer's data and FIN again should our
		// acknowledgement be lost (TIME-WAIT, RFC 9293 §3.6.1); then forget
		// the stream. Once forgotten, the peer's retransmissions go
		// unanswered and it only ends at its idle timeout.
		if c.timeWait.IsZero() {
			c.timeWait = now.Add(c.timeWaitForLocked())
		}
		if !now.Before(c.timeWait) && c.ackElicit == 0 && !c.ackNow {
			c.finishLocked(nil)
		}
	case peerDone && c.sndUna >= c.finOff && !c.finFirst.IsZero() && now.Sub(c.finFirst) > finLinger:
		// The peer has all our data and has closed; only the acknowledgement
		// of our FIN is missing.
		c.finishLocked(nil)
	case ourDone && !peerDone && now.Sub(c.finAckedAt) > c.cfg.IdleTimeout:
		c.rstPending = true
		c.finishLocked(nil)
	}
}

// timeWaitForLocked is how long a fully closed stream stays to answer the
// peer: longer than the peer's longest gap between retransmissions or
// probes, which is two RTOs before it declares the path dead and then
// maxProbeInterval (or one RTO if longer).
func (c *Conn) timeWaitForLocked() time.Duration {
	tw := finLinger
	for _, x := range c.present {
		tw = max(tw, 3*x.rto(&c.cfg))
	}
	return tw
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// armLocked sets the timer to the earliest pending deadline.
func (c *Conn) armLocked(now time.Time) {
	next := c.lastRecv.Add(c.cfg.IdleTimeout)
	early := func(t time.Time) {
		if !t.IsZero() && t.Before(next) {
			next = t
		}
	}
	if c.state == stateSynSent {
		early(c.synNext)
	}
	if c.ackElicit > 0 {
		early(c.ackDeadline)
	}
	if c.paceAt.After(now) {
		early(c.paceAt)
	}
	early(c.noPathsAt)
	for _, x := range c.byID {
		early(x.lossTime)
		// Recomputed: what buildLocked sent after timeoutsLocked ran needs
		// its deadline too.
		x.rtoTime = c.rtoDeadlineLocked(x)
		early(x.rtoTime)
	}
	for _, x := range c.present {
		if t := c.probeTimeLocked(x, now); !t.IsZero() {
			early(t)
		}
	}
	// The closing deadlines below count only while checkFinishedLocked could
	// act on them: one already past that it did not act on would spin the
	// timer.
	if c.timeWait.After(now) {
		early(c.timeWait)
	}
	if c.closed && c.timeWait.IsZero() {
		peerDone := c.peerFin && c.rcvNxt == c.peerFinal
		if c.finState == finAcked && !peerDone {
			early(c.finAckedAt.Add(c.cfg.IdleTimeout + time.Millisecond))
		} else if c.finState != finAcked && peerDone && c.sndUna >= c.finOff && !c.finFirst.IsZero() {
			early(c.finFirst.Add(finLinger + time.Millisecond))
		}
	}
	if next.Before(now) {
		next = now
	}
	if !next.Equal(c.armed) {
		c.armed = next
		c.timer.Reset(next.Sub(now))
	}
}

// activeLocked reports whether the stream is moving data now.
func (c *Conn) activeLocked(now time.Time) bool {
	return c.inflight > 0 || c.sndNxt < c.written || len(c.rtx) > 0 ||
		(!c.lastDataRecv.IsZero() && now.Sub(c.lastDataRecv) < time.Second)
}

// probeTimeLocked is when x next needs a probe (zero: never).
func (c *Conn) probeTimeLocked(x *pathState, now time.Time) time.Time {
	if x.mtu < minUsableMTU || c.state != stateEstablished || !c.timeWait.IsZero() {
		// In TIME-WAIT there is nothing left to send: only answer the peer.
		return time.Time{}
	}
	if x.dead {
		return x.nextProbe
	}
	if x.qhead < len(x.queue) && c.firstOutstanding(x) != nil {
		return time.Time{}
	}
	if !x.hasRTT && x.lastElicit.IsZero() {
		return now
	}
	if x.backoff > 0 {
		return x.lastElicit.Add(x.rto(&c.cfg)) // suspect: probe it soon
	}
	idle := c.cfg.KeepAlive
	if c.activeLocked(now) {
		// Not below MinRTO: on a slow path (a radio link's 45 s) a probe
		// every 300 ms is all the path would carry.
		idle = min(idle, max(activeProbeIdle, c.cfg.MinRTO))
	}
	return x.lastElicit.Add(idle)
}

// buildLocked builds the segments to send now.
func (c *Conn) buildLocked(now time.Time, out []outSeg) []outSeg {
	c.paceAt, c.noPathsAt = time.Time{}, time.Time{}
	if c.state == stateDone {
		if c.rstPending {
			c.rstPending = false
			for _, x := range c.present {
				out = c.emitLocked(out, x, flagRST, now, false, nil, 0, nil)
			}
		}
		return out
	}
	if len(c.present) == 0 {
		c.noPathsAt = now.Add(pathPoll)
		return out
	}
	if c.state == stateSynSent {
		if !now.Before(c.synNext) {
			for _, x := range c.present {
				if x.mtu >= minUsableMTU {
					out = c.emitLocked(out, x, flagSYN, now, false, nil, 0, nil)
				}
			}
			c.synNext = now.Add(c.synRetry(c.synTries))
			c.synTries++
		}
		return out
	}
	if c.synAck {
		c.synAck = false
		for _, x := range c.present {
			if x.mtu >= minUsableMTU {
				out = c.emitLocked(out, x, flagSYN|flagACK, now, true, nil, 0, nil)
			}
		}
	}
	out = c.buildDataLocked(now, out)
	// Probes: new paths, idle paths, dead paths.
	for _, x := range c.present {
		if t := c.probeTimeLocked(x, now); !t.IsZero() && !now.Before(t) {
			if x.dead {
				x.nextProbe = now.Add(c.probeInterval(x))
				x.probeTries++
			}
			out = c.emitLocked(out, x, flagPING, now, c.ackElicit > 0 || c.ackNow, nil, 0, nil)
		}
	}
	// A pure acknowledgement, if one is due and nothing carried it.
	if c.ackNow || (c.ackElicit > 0 && !now.Before(c.ackDeadline)) {
		if x := c.ackPathLocked(); x != nil {
			out = c.emitLocked(out, x, 0, now, true, nil, 0, nil)
		}
	}
	return out
}

// ackPathLocked picks the path for a pure acknowledgement: the live paths in
// turn, so that one silently dead route loses only a share of them.
func (c *Conn) ackPathLocked() *pathState {
	n := len(c.present)
	for pass := 0; pass < 3; pass++ {
		for i := 0; i < n; i++ {
			x := c.present[(c.ackRR+i)%n]
			if x.mtu < minUsableMTU || (pass == 0 && x.dead) || (pass == 1 && x.sendErr) {
				continue
			}
			c.ackRR = (c.ackRR + i + 1) % n
			return x
		}
	}
	return nil
}

// nextRtxLocked returns the first range still to be retransmitted, trimmed
// of bytes acknowledged meanwhile.
func (c *Conn) nextRtxLocked() (rtxRange, bool) {
	for len(c.rtx) > 0 {
		r := &c.rtx[0]
		if r.lo < c.sndUna {
			r.lo = c.sndUna
		}
		for r.lo < r.hi {
			i := c.acked.find(r.lo)
			if i < 0 {
				break
			}
			r.lo = c.acked.s[i].hi
		}
		if r.lo >= r.hi {
			c.rtx = c.rtx[1:]
			continue
		}
		out := *r
		// Stop at the next acknowledged span.
		j := sort.Search(len(c.acked.s), func(j int) bool { return c.acked.s[j].lo > out.lo })
		if j < len(c.acked.s) && c.acked.s[j].lo < out.hi {
			out.hi = c.acked.s[j].lo
		}
		return out, true
	}
	c.rtx = nil
	return rtxRange{}, false
}

// buildDataLocked sends retransmissions, new data and the FIN over the paths.
func (c *Conn) buildDataLocked(now time.Time, out []outSeg) []outSeg {
	for n := 0; n < maxBatch; n++ {
		r, isRtx := c.nextRtxLocked()
		newData := c.sndNxt < c.written && c.sndNxt < c.peerMax
		finOnly := c.finState == finPending && c.sndNxt == c.finOff
		if !isRtx && !newData && !finOnly {
			return out
		}
		if c.inflight+1200 > c.cfg.Window && c.inflight > 0 {
			return out
		}
		avoid, hasAvoid := r.avoid, isRtx
		x := c.pickPathLocked(now, avoid, hasAvoid)
		if x == nil {
			return out
		}
		withAck := c.ackElicit > 0 || c.ackNow
		var ack ackSection
		ackLen := 0
		if withAck {
			ack = c.ackFrameLocked(now, piggyAckRanges)
			ackLen = ack.size()
		}
		room := x.mtu - headerLen - crcLen - ackLen - dataHdrLen
		if room < 64 {
			withAck, ackLen = false, 0
			room = x.mtu - headerLen - crcLen - dataHdrLen
		}
		var off uint64
		var k int
		switch {
		case isRtx:
			off, k = r.lo, int(min(uint64(room), r.hi-r.lo))
			c.rtx[0].lo = off + uint64(k)
			c.st.SegmentsRetransmitted++
			c.st.BytesRetransmitted += uint64(k)
		case newData:
			off = c.sndNxt
			k = int(min(uint64(room), c.written-c.sndNxt, c.peerMax-c.sndNxt))
			c.sndNxt += uint64(k)
		default:
			off = c.finOff
		}
		flags := byte(flagDATA)
		if c.finState == finPending && off+uint64(k) == c.finOff && c.sndNxt == c.finOff {
			flags |= flagFIN
		}
		data := c.sbuf[off-c.sndUna : off-c.sndUna+uint64(k)]
		var ap *ackSection
		if withAck {
			ap = &ack
		}
		out = c.emitLocked(out, x, flags, now, withAck, ap, off, data)
	}
	return out
}

// pickPathLocked chooses the path for the next data segment: among usable
// paths with window room, the one whose segment would arrive first given its
// pacing and round trip. A retransmission avoids the path that lost it when
// another can take it. If no live path exists, a dead one whose probe is due
// carries the segment as its probe.
func (c *Conn) pickPathLocked(now time.Time, avoid uint64, hasAvoid bool) *pathState {
	var best *pathState
	var bestAt time.Time
	// A path that just timed out carries no data while a sound one exists.
	sound := false
	for _, x := range c.present {
		if x.usable() && x.backoff == 0 {
			sound = true
			break
		}
	}
	for pass := 0; pass < 2 && best == nil; pass++ {
		for _, x := range c.present {
			if !x.usable() || (pass == 0 && hasAvoid && x.id == avoid) || (sound && x.backoff > 0) {
				continue
			}
			if x.inflight > 0 && x.inflight+x.mtu > x.cwnd {
				continue
			}
			at := now
			if x.nextSend.After(at) {
				at = x.nextSend
			}
			at = at.Add(x.rttOrInitial() / 2)
			if x.backoff > 0 {
				at = at.Add(x.rto(&c.cfg))
			}
			if best == nil || at.Before(bestAt) || (at.Equal(bestAt) && x.inflight < best.inflight) {
				best, bestAt = x, at
			}
		}
		if !hasAvoid {
			break
		}
	}
	if best == nil {
		live := false
		for _, x := range c.present {
			if x.usable() {
				live = true
				break
			}
		}
		if !live {
			for _, x := range c.present {
				if x.dead && x.mtu >= minUsableMTU && !now.Before(x.nextProbe) && c.firstOutstanding(x) == nil {
					x.nextProbe = now.Add(c.probeInterval(x))
					x.probeTries++
					return x
				}
			}
			c.noPathsAt = now.Add(pathPoll)
		}
		return nil
	}
	if best.nextSend.After(now) {
		c.paceAt = best.nextSend
		return nil
	}
	return best
}
