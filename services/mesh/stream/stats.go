package stream

import (
	"time"
)

// Stats counts what a Conn has done so far.
type Stats struct {
	BytesWritten       uint64 // bytes accepted by Write
	BytesSent          uint64 // payload bytes sent, retransmissions included
	BytesRetransmitted uint64 // payload bytes sent again
	BytesReceived      uint64 // distinct payload bytes received in order
	BytesDuplicate     uint64 // payload bytes received more than once
	BytesOnWire        uint64 // whole segments sent, headers included

	SegmentsSent          uint64 // segments handed to paths
	SegmentsRetransmitted uint64 // segments carrying retransmitted data
	SegmentsReceived      uint64 // valid segments of this stream received
	SegmentsDuplicate     uint64 // received segments seen before (same packet number)
	SegmentsInvalid       uint64 // malformed or foreign segments dropped
	SegmentsLost          uint64 // our segments declared lost
	SegmentsSpurious      uint64 // of those, acknowledged later after all
	Timeouts              uint64 // retransmission timeouts
	SendErrors            uint64 // Path.Send errors

	InFlight int         // bytes in flight now
	Paths    []PathStats // every path known, current ones first
}

// PathStats describes one path as this Conn sees it.
type PathStats struct {
	ID       uint64        // Path.ID
	Present  bool          // in the router's current set
	Dead     bool          // not used for data until a probe is answered
	RTT      time.Duration // smoothed round trip (0: not measured yet)
	RTTVar   time.Duration // its mean deviation
	MinRTT   time.Duration // lowest recent round trip
	Sent     uint64        // segments sent on it
	Acked    uint64        // of those, acknowledged
	Lost     uint64        // of those, declared lost
	Spurious uint64        // declared lost but acknowledged later
	LossRate float64       // recent loss estimate, 0..1
	InFlight int           // bytes in flight on it
	Window   int           // its congestion window in bytes
}

// Stats returns a snapshot of the Conn's counters.
func (c *Conn) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.st
	st.SegmentsInvalid = c.invalid.Load()
	st.InFlight = c.inflight
	add := func(x *pathState) {
		st.Paths = append(st.Paths, PathStats{
			ID: x.id, Present: x.present, Dead: x.dead,
			RTT: x.srtt, RTTVar: x.rttvar, MinRTT: x.minRTT,
			Sent: x.sent, Acked: x.acked, Lost: x.lost, Spurious: x.spurious,
			LossRate: x.lossRate, InFlight: x.inflight, Window: x.cwnd,
		})
	}
	for _, x := range c.present {
		add(x)
	}
	for _, x := range c.byID {
		if !x.present {
			add(x)
		}
	}
	return st
}
