package perhop

import (
	"math/rand/v2"
	"testing"
	"time"
)

// paceSim drives a pacer through n rate intervals of a link whose bottleneck
// carries rate bytes/s. With fifo set, what the sender sends above the rate
// queues in a FIFO of at most window bytes (a tbf qdisc), and the smallest round
// trip of an interval is the link minimum plus the queue delay of the interval
// before (acks come one queue delay late). Without, the round trip carries a
// random 0.6-3 ms that sending less does not change (a busy neighbour). An
// unpaced sender offers 1.3 times the rate (a window that the acks refill).
// It returns the queue delay after each interval and whether it was paced.
func paceSim(fifo bool, n int, seed uint64) (delays []time.Duration, paced []bool) {
	const (
		rate   = 2.5e6
		span   = 10 * time.Millisecond
		minRTT = 100 * time.Microsecond
		window = 64 << 10
	)
	rng := rand.New(rand.NewPCG(seed, 1))
	var p pacer
	q, prevQ := 0.0, 0.0
	for range n {
		send := 1.3 * rate
		isPaced := false
		if p.maxBW() > 0 && (p.draining || p.score >= scoreOn) {
			send, isPaced = p.gain()*p.maxBW(), true
		}
		delivered := rate
		if fifo {
			q = min(max(q+(send-rate)*span.Seconds(), 0), window)
			if q == 0 && send < rate {
				delivered = send
			}
			p.roundMin = minRTT + time.Duration(prevQ/rate*float64(time.Second))
		} else {
			delivered = rate * (0.8 + 0.4*rng.Float64())
			p.roundMin = minRTT + 600*time.Microsecond + time.Duration(rng.Float64()*float64(2400*time.Microsecond))
		}
		prevQ = q
		p.endInterval(delivered*(0.95+0.1*rng.Float64()), span, minRTT)
		delays = append(delays, time.Duration(q/rate*float64(time.Second)))
		paced = append(paced, isPaced)
	}
	return delays, paced
}

// TestPacingKeepsFIFOShort: on a link with a FIFO, a sender that started to
// fill it drains it and keeps it short: after two seconds the queue delay stays
// under 5 ms (a probe adds (probeGain-1)·span = 2.5 ms, seen an interval late)
// and the sender stays paced. Unpaced, the window would keep it at 26 ms.
func TestPacingKeepsFIFOShort(t *testing.T) {
	for seed := range uint64(20) {
		delays, paced := paceSim(true, 400, seed)
		if first := max(delays[0], delays[1], delays[2], delays[3], delays[4]); first < 5*time.Millisecond {
			t.Fatalf("seed %d: the unpaced start did not fill the FIFO (%v): the model is wrong", seed, first)
		}
		var worst time.Duration
		unpaced := 0
		for i := 200; i < len(delays); i++ {
			worst = max(worst, delays[i])
			if !paced[i] {
				unpaced++
			}
		}
		if worst > 5*time.Millisecond || unpaced > 0 {
			t.Errorf("seed %d: after 2 s the FIFO held up to %v (want < 5 ms), %d of 200 intervals unpaced", seed, worst, unpaced)
		}
	}
}

// TestPacingLeavesNoisyLinkAlone: a link whose round trip varies whatever the
// sender does is paced (draining included) in few intervals: its drains fail,
// and it tries again less and less often.
func TestPacingLeavesNoisyLinkAlone(t *testing.T) {
	for seed := range uint64(20) {
		_, paced := paceSim(false, 1000, seed)
		n := 0
		for _, p := range paced {
			if p {
				n++
			}
		}
		t.Logf("seed %d: paced in %d of %d intervals", seed, n, len(paced))
		if n > len(paced)/8 {
			t.Errorf("seed %d: paced in %d of %d intervals on a link with no queue of its own", seed, n, len(paced))
		}
	}
}

// TestNoPacingWithoutMeasurement: no rate before the first interval that was
// not app-limited, and app-limited intervals do not make the first estimate.
func TestNoPacingWithoutMeasurement(t *testing.T) {
	s := NewSender(1)
	if r := s.PacingRate(); r != 0 {
		t.Fatalf("pacing rate %v before any measurement", r)
	}
	var p pacer
	p.appLimited = true
	p.endInterval(1e3, 10*time.Millisecond, time.Millisecond)
	if m := p.maxBW(); m != 0 {
		t.Fatalf("an app-limited interval made the first estimate: %v", m)
	}
	p.endInterval(2e6, 10*time.Millisecond, time.Millisecond)
	if m := p.maxBW(); m != 2e6 {
		t.Fatalf("estimate %v, want 2e6", m)
	}
	if p.draining || p.score != 0 {
		t.Fatal("paced without a standing queue")
	}
}
