package stream

import (
	"slices"
	"time"
)

// emitLocked builds one segment for path x, records it and appends it to out.
// With withAck and ack nil, a fresh ack section is built.
func (c *Conn) emitLocked(out []outSeg, x *pathState, flags byte, now time.Time, withAck bool, ack *ackSection, off uint64, data []byte) []outSeg {
	s := segment{flags: flags, conn: c.connID, pn: c.nextPN, off: off, data: data}
	if c.state != stateSynSent {
		s.maxData = c.recvLimit()
		c.advertised = s.maxData
	} else {
		s.maxData = uint64(c.cfg.RecvBuffer)
	}
	if withAck {
		if ack == nil {
			n := pureAckRanges
			if flags != 0 {
				n = piggyAckRanges
			}
			a := c.ackFrameLocked(now, n)
			ack = &a
		}
		s.flags |= flagACK
		s.ack = *ack
		c.ackElicit = 0
		c.ackNow = false
	}
	buf := s.encode(make([]byte, 0, s.size()))
	c.nextPN++
	sp := sentPacket{t: now, path: x, size: len(buf)}
	if flags&(flagSYN|flagDATA|flagPING) != 0 {
		sp.state = pktOutstanding
		sp.pathSeq = x.seq
		x.seq++
		x.queue = append(x.queue, s.pn)
		x.inflight += len(buf)
		c.inflight += len(buf)
		x.lastElicit = now
		if flags&flagDATA != 0 {
			sp.data, sp.off, sp.n = true, off, len(data)
			c.st.BytesSent += uint64(len(data))
			c.pace(x, len(buf), now)
		}
		if flags&flagFIN != 0 {
			sp.fin = true
			c.finOut++
			c.finState = finSent
			if c.finFirst.IsZero() {
				c.finFirst = now
			}
		}
	}
	c.sent = append(c.sent, sp)
	x.sent++
	c.st.SegmentsSent++
	c.st.BytesOnWire += uint64(len(buf))
	return append(out, outSeg{x: x, p: x.p, seg: buf, pn: s.pn, ack: withAck})
}

// pace advances x's pacing clock: a token bucket filled at twice the path's
// window per round trip, holding a few milliseconds' worth (at least ten
// segments).
func (c *Conn) pace(x *pathState, size int, now time.Time) {
	rate := 2 * float64(x.cwnd) / x.rttOrInitial().Seconds() // bytes per second
	iv := time.Duration(float64(size) / rate * float64(time.Second))
	burst := max(4*time.Millisecond, time.Duration(10*float64(x.mtu)/rate*float64(time.Second)))
	if floor := now.Add(-burst); x.nextSend.Before(floor) {
		x.nextSend = floor
	}
	x.nextSend = x.nextSend.Add(iv)
}

// ackFrameLocked builds an ack section of at most maxRanges ranges: the newest
// ranges, plus those holding recently received packets (so that a late packet
// from a slow path is acknowledged even when far below the largest).
func (c *Conn) ackFrameLocked(now time.Time, maxRanges int) ackSection {
	a := ackSection{cum: c.rcvNxt, fin: c.peerFin && c.rcvNxt == c.peerFinal}
	if !c.hasRecv || len(c.recvd.s) == 0 {
		return a
	}
	a.largest = c.largestRecv
	if d := now.Sub(c.largestAt) / time.Microsecond; d > 0 {
		a.delay = uint32(min(d, 1<<32-1))
	}
	// In order of priority: the newest range, those of recently received
	// packets (newest first), then the next newest ranges.
	s := c.recvd.s
	cand := make([]span, 0, maxRanges)
	addCand := func(sp span) {
		for _, x := range cand {
			if x == sp {
				return
			}
		}
		cand = append(cand, sp)
	}
	addCand(s[len(s)-1])
	for j := 0; j < min(c.recentN, recentPNs) && len(cand) < maxRanges; j++ {
		pn := c.recent[(c.recentN-1-j)%recentPNs]
		if i := c.recvd.find(pn); i >= 0 {
			addCand(s[i])
		} else {
			addCand(span{pn, pn + 1})
		}
	}
	for i := len(s) - 2; i >= 0 && len(cand) < maxRanges; i-- {
		addCand(s[i])
	}
	slices.SortFunc(cand, func(a, b span) int {
		switch {
		case a.lo > b.lo:
			return -1
		case a.lo < b.lo:
			return 1
		}
		return 0
	})
	a.ranges = make([]pnRange, 0, maxRanges)
	for _, sp := range cand {
		if n := len(a.ranges); n > 0 && sp.hi >= a.ranges[n-1].lo {
			// overlaps or touches the previous (higher) range
			if sp.lo < a.ranges[n-1].lo {
				a.ranges[n-1].lo = sp.lo
			}
			if sp.hi-1 > a.ranges[n-1].hi {
				a.ranges[n-1].hi = sp.hi - 1
			}
			continue
		}
		if len(a.ranges) == maxRanges {
			break
		}
		a.ranges = append(a.ranges, pnRange{sp.lo, sp.hi - 1})
	}
	return a
}
