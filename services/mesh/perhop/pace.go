package perhop

import "time"

// Pacing. A link's sender spaces route data at the delivery rate the link has
// shown instead of sending its window at once, so that what waits, waits in this
// node's route queues, where real-time frames overtake bulk, not in a FIFO below
// the router (a radio modem's buffer, a tbf qdisc, a Wi-Fi driver's queue),
// where they cannot (issue 10, acceptance 3).
//
// Loosely after BBR's ProbeBW (draft-ietf-ccwg-bbr-02 §4.3.3, pacing §4.6.2):
//
//   - the rate estimate is the second highest delivery rate of the last
//     bwRounds rate intervals (an interval is about one round trip, at least
//     10 ms; see Sender.deliver);
//   - a link is paced only once it has shown a queue of its own: an interval
//     whose smallest round trip exceeds the link's minimum by more than
//     drainFloor and queueTarget bytes starts a drain (drainGain of the rate);
//     the link is paced once scoreOn more drains have shortened the round trip
//     as a drain of their size should than have not (pacer.score);
//   - while paced, one interval in pacingCycle probes at probeGain, and a
//     standing queue is drained again.
//
// A link whose delay does not answer to draining (a CPU-bound neighbour's
// scheduling) is left unpaced: pacing there only caps how fast a sender that
// was descheduled catches up.
const (
	// bwRounds is how many rate intervals the bandwidth estimate remembers.
	bwRounds = 10
	// pacingCycle: one rate interval in pacingCycle probes at probeGain.
	pacingCycle = 8
	// queueTarget and drainFloor: pacing drains a standing queue at the link's
	// bottleneck once it holds more than one full datagram and delays by more
	// than drainFloor (below that, a busy node's scheduling is most of it).
	queueTarget = 1500
	drainFloor  = 500 * time.Microsecond
	// drainJudge is how many rate intervals a drain runs before it is judged.
	drainJudge = 2
	// scoreOn and scoreMax: a link is paced once scoreOn more of its drains
	// worked than failed (pacer.score), counted up to scoreMax.
	scoreOn  = 3
	scoreMax = 6
	// probeGain and drainGain scale the pacing rate while probing for more
	// bandwidth and while draining a queue.
	probeGain = 1.25
	drainGain = 0.75
)

// pacer is the Sender's pacing state, updated at the end of each rate interval.
type pacer struct {
	bw         [bwRounds]float64 // delivery rate of recent intervals, bytes/s
	round      int               // rate intervals so far
	roundMin   time.Duration     // smallest RTT sample in the current interval
	appLimited bool              // the current interval ran out of data to send
	// draining: this interval is paced at drainGain, because the last one's
	// smallest round trip showed a standing queue (drainFloor, queueTarget).
	draining  bool
	drainFrom time.Duration // excess round trip when the drain (or its last judgement) began
	drainSpan time.Duration // length of the drain's first interval
	// drainRounds counts the drain's intervals since drainFrom.
	drainRounds int
	// score counts the drains that shortened the round trip as a drain of
	// their size should, less those that did not, within [0, scoreMax]. The
	// link is paced from scoreOn: a chance fall of a noisy round trip (a busy
	// neighbour's scheduling) does not make it paced, and one paced by
	// mistake returns to unpaced as its drains keep failing.
	score int
	// fails counts the drains in a row that failed at score 0.
	fails int
	// quiet counts down the intervals in which no drain starts: the last one
	// did not shorten the round trip, so the delay was not a queue of ours
	// (a busy neighbour's scheduling, not a FIFO on the link).
	quiet int
}

// maxBW is the bandwidth estimate: the second highest delivery rate of the
// recent intervals. (BBR takes the highest; link acks here come in bursts, and
// one interval that caught a burst would have the sender paced above the link's
// rate, filling its FIFO, for bwRounds intervals.)
func (p *pacer) maxBW() float64 {
	first, second := 0.0, 0.0
	for _, b := range p.bw {
		if b > first {
			first, second = b, first
		} else if b > second {
			second = b
		}
	}
	if second == 0 {
		return first
	}
	return second
}

// endInterval records one rate interval of length span and delivery rate r
// (bytes/s); minRTT is the link's smallest round trip so far.
func (p *pacer) endInterval(r float64, span, minRTT time.Duration) {
	if m := p.maxBW(); !p.appLimited || (m > 0 && r > m) {
		// An interval that ran out of data says little about the link unless
		// it beat the estimate anyway; it never makes the first one, or a
		// link that carried only pings would pace the first bulk at their rate.
		p.bw[p.round%bwRounds] = r
	}
	m := p.maxBW()
	var excess time.Duration
	if p.roundMin > 0 && minRTT > 0 {
		excess = p.roundMin - minRTT
	}
	// A drain shows one queue delay late: the round trips measured while it
	// runs are of datagrams sent before (an interval lasts about one round
	// trip, so up to two intervals before). It is judged after drainJudge
	// intervals: sending drainGain of the rate for the first one's span
	// empties up to (1-drainGain)·span of queue; if the round trip fell by
	// half of that, the queue is this sender's and pacing goes on; by less
	// than a quarter, the delay is not in a queue this sender fills.
	standing := m > 0 && excess > drainFloor && excess.Seconds()*m > queueTarget
	switch {
	case p.draining && p.drainRounds == drainJudge-1:
		expect := min(p.drainFrom, time.Duration((1-drainGain)*float64(p.drainSpan)))
		switch fell := p.drainFrom - excess; {
		case fell >= expect/2:
			p.score = min(p.score+1, scoreMax)
		case fell < expect/4:
			if p.score == 0 {
				// Stop trying for a while, twice as long after each
				// failure in a row.
				p.quiet = bwRounds << min(p.fails, 4)
				p.fails++
			}
			p.score = max(p.score-1, 0)
		}
		if p.score > 0 {
			p.fails = 0
		}
		p.drainFrom, p.drainSpan, p.drainRounds = excess, span, 0
	case p.draining:
		p.drainRounds++
	default:
		p.drainFrom, p.drainSpan, p.drainRounds = excess, span, 0
	}
	p.draining = p.quiet == 0 && standing
	if p.quiet > 0 {
		p.quiet--
	}
	p.round++
	p.roundMin = 0
	p.appLimited = false
}

// gain is the pacing gain of the current interval.
func (p *pacer) gain() float64 {
	switch {
	case p.draining:
		return drainGain // drain what a probe (or the window before pacing) queued
	case p.round%pacingCycle == 0:
		return probeGain // probe for more
	}
	return 1
}

// PacingRate returns the rate, bytes per second, at which route data should
// leave on the link, or 0 (do not pace): before the first delivery-rate
// measurement, and on a link that has not shown a queue of its own (neither
// draining nor scored scoreOn; see pacer).
func (s *Sender) PacingRate() float64 {
	m := s.pace.maxBW()
	if m == 0 || !s.pace.draining && s.pace.score < scoreOn {
		return 0
	}
	return s.pace.gain() * m
}

// AppLimited records that the sender had nothing to send though the window
// and the pacing rate allowed it: this interval's delivery rate measures the
// traffic, not the link.
func (s *Sender) AppLimited() { s.pace.appLimited = true }
