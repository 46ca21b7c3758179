package forward

import (
	"crypto/sha256"
	"time"

	"github.com/skyfleet/skyfleet/services/mesh/topology"
)

// What the router does differently on amateur links (transport.go has the
// rules); the link-layer half, clear sessions, is package link's (clear.go).

// Gossip on an amateur link. Over IP every node floods its announcement every
// AnnounceInterval (10 s) with a new Seq, and every node passes each one on: at
// 1200 bit/s a 200-byte announcement and its signature are about two seconds of
// air, so a handful of nodes would fill the channel with nothing new. On an
// amateur link an origin's announcement goes out when what it says changed
// (another neighbour list or properties), and otherwise at most once per
// radioGossipInterval; a graph that learns over radio keeps entries for
// radioGossipInterval×4.5 (Router.expiry) so that they live between two.
const (
	radioGossipInterval = 2 * time.Minute
	// maxGossiped bounds a link's memory of what it sent (one entry per
	// origin; the graph holds at most topology.MaxNodes origins anyway).
	maxGossiped = topology.MaxNodes
)

// gossipRec is what an amateur link last sent of one origin.
type gossipRec struct {
	at     time.Time
	digest [sha256.Size]byte
}

// gossipDigest digests what an announcement says, leaving out what changes
// every time (Seq, Time, the signature): its neighbour keys and properties.
// RTT and loss are left out too: on the radio they wander and route choice
// does not hang on their last digit.
func gossipDigest(a *topology.Announcement) [sha256.Size]byte {
	h := sha256.New()
	h.Write(a.Origin[:])
	for _, nb := range a.Neighbours {
		h.Write(nb.Key[:])
	}
	for _, p := range a.Properties {
		h.Write([]byte{byte(len(p))})
		h.Write([]byte(p))
	}
	var d [sha256.Size]byte
	h.Sum(d[:0])
	return d
}

// gossip sends announcement a (enc is its encoding) to n: always on a link over
// IP, and on an amateur link only when a says something new or its origin's last
// one went out radioGossipInterval ago.
func (n *neighbour) gossip(a *topology.Announcement, enc []byte, now time.Time) {
	if n.amateur {
		d := gossipDigest(a)
		n.mu.Lock()
		last, ok := n.gossiped[a.Origin]
		if ok && last.digest == d && now.Sub(last.at) < radioGossipInterval {
			n.mu.Unlock()
			return
		}
		if n.gossiped == nil {
			n.gossiped = make(map[topology.Key]gossipRec)
		}
		if !ok && len(n.gossiped) >= maxGossiped {
			for k, rec := range n.gossiped { // expire, then make room
				if now.Sub(rec.at) >= radioGossipInterval || len(n.gossiped) >= maxGossiped {
					delete(n.gossiped, k)
				}
			}
		}
		n.gossiped[a.Origin] = gossipRec{at: now, digest: d}
		n.mu.Unlock()
	}
	n.send(true, frameGossip, enc)
}

// forgetGossip makes the next gossip on an amateur link send everything: the
// neighbour at its other end came up anew and knows nothing.
func (n *neighbour) forgetGossip() {
	n.mu.Lock()
	n.gossiped = nil
	n.mu.Unlock()
}

// radioRouteIdle removes a rule over an amateur link unused for this long,
// instead of Config.RouteIdle: there a keepalive waits behind seconds of other
// traffic for the channel, and a rule that expired under a busy stream broke
// it ("no such route") at 1200 bit/s.
const radioRouteIdle = 10 * time.Minute

// flowControlled is a transport that says when it has room for the next
// datagram: a radio channel (radio.Transport.WaitRoom), whose transmitter drains
// its queue at a few hundred bytes a second. A link's sender waits for it before
// it builds a datagram, so the frames queued meanwhile (acks, credits, pings,
// route data) share one datagram and one signature, and the window's datagrams
// wait in the link's queues, where real-time frames still overtake bulk.
type flowControlled interface {
	// WaitRoom blocks until the transport has room, or stop is closed or the
	// transport closes (then false).
	WaitRoom(stop <-chan struct{}) bool
}

// airtimer is a transport that knows how long bytes take on its channel
// (radio.Transport.Airtime).
type airtimer interface {
	// Airtime is how long a datagram of n bytes keeps the transmitter keyed.
	Airtime(n int) time.Duration
}

// radioRTOFloor is an amateur link's least retransmission timeout: the air of
// a full datagram of ours and one of the neighbour's (which its ack may wait
// behind, the channel being half duplex) and the ack hold, about 26 s at 1200
// bit/s. The RTO measured from pings or from acks that came quickly fell far
// below that once the link carried full datagrams, and the link sent copies
// of datagrams whose acks were merely waiting for the air: 57 in a 20 KB
// transfer over the built-in modem. 0 when the transport cannot tell.
func radioRTOFloor(at *endpoint) time.Duration {
	if at == nil {
		return 0
	}
	a, ok := at.tr.(airtimer)
	if !ok {
		return 0
	}
	return 2*a.Airtime(at.tr.MTU(at.ep)) + radioCtrlHold
}

// flowControl returns at's transport as flowControlled, if it is.
func flowControl(at *endpoint) (flowControlled, bool) {
	if at == nil {
		return nil, false
	}
	fc, ok := at.tr.(flowControlled)
	return fc, ok
}

// ViaRadio reports whether routes to neighbour k take a radio link: its link
// over an amateur transport is up and none over IP is (neighbourByKey's
// choice). False when k is no neighbour.
func (r *Router) ViaRadio(k topology.Key) bool {
	n := r.neighbourByKey(k)
	return n != nil && n.amateur && n.isUp()
}

// expiry is how long the graph keeps an announcement: 4.5 announce intervals,
// or 4.5 radio gossip intervals when the node has an amateur transport (what is
// learnt over radio arrives that seldom).
func (r *Router) expiry() time.Duration {
	every := r.cfg.AnnounceInterval
	for _, tr := range r.cfg.Transports {
		if isAmateur(tr) {
			every = max(every, radioGossipInterval)
		}
	}
	return every * 9 / 2
}

// clearFor reports whether payload may go onto link n: anything may over IP;
// over an amateur link only what the layer above calls clear (Upper.Clear), the
// rest is counted (CountNotClear) and refused.
func (r *Router) clearFor(n *neighbour, payload []byte) bool {
	if !n.amateur || r.upper.Clear(payload) {
		return true
	}
	r.count(CountNotClear)
	return false
}
