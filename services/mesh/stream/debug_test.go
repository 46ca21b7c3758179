package stream

import (
	"fmt"
	"time"
)

// debugState renders a Conn's closing and sending state for a failing
// test's log: the clues to why a stream did not finish.
func (c *Conn) debugState() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	s := fmt.Sprintf("state=%d closed=%v finState=%d finOff=%d sndUna=%d sndNxt=%d written=%d peerFin=%v rcvNxt=%d peerFinal=%d tw=%v ackElicit=%d ackNow=%v finFirst=%v finAckedAt=%v lastRecv=%v inflight=%d rtx=%d armed=%v present=%d byID=%d",
		c.state, c.closed, c.finState, c.finOff, c.sndUna, c.sndNxt, c.written, c.peerFin, c.rcvNxt, c.peerFinal,
		sinceOr(now, c.timeWait), c.ackElicit, c.ackNow, sinceOr(now, c.finFirst), sinceOr(now, c.finAckedAt), sinceOr(now, c.lastRecv), c.inflight, len(c.rtx), sinceOr(now, c.armed), len(c.present), len(c.byID))
	for id, x := range c.byID {
		s += fmt.Sprintf("\n  path %v dead=%v mtu=%d inflight=%d cwnd=%d q=%d/%d backoff=%d rto=%v rtoTime=%v lossTime=%v", id, x.dead, x.mtu, x.inflight, x.cwnd, x.qhead, len(x.queue), x.backoff, x.rto(&c.cfg), sinceOr(now, x.rtoTime), sinceOr(now, x.lossTime))
	}
	return s + "\n" + fmt.Sprintf("%+v", c.st)
}

// sinceOr is how long ago t was, or "0" if t is unset.
func sinceOr(now, t time.Time) string {
	if t.IsZero() {
		return "0"
	}
	return now.Sub(t).String()
}
