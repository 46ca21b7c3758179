// Package mesh is a Skyfleet mesh node: the forwarding core (package
// services/mesh/forward: links, gossip, source routes, per-hop store and forward)
// with the end-to-end layer on top: a link.Session between source and destination
// carried over routes, multiplexing datagram ports, streams (package
// services/mesh/stream) and echo, addressed by public key (docs/architecture.md
// §Mesh). A datagram's path reads transport → forward.Router → endToEnd.deliver →
// a port's listener (and from there services/saf, services/msg).
package mesh

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skyfleet/skyfleet/services/mesh/forward"
	"github.com/skyfleet/skyfleet/services/mesh/link"
	"github.com/skyfleet/skyfleet/services/mesh/topology"
)

// The forwarding core's configuration and transports, named here for those who
// build a whole node.
type (
	// Config configures a node: see forward.Config.
	Config = forward.Config
	// Peer is a configured neighbour: see forward.Peer.
	Peer = forward.Peer
	// Transport carries link datagrams: see forward.Transport.
	Transport = forward.Transport
)

// NodeBufferCap is forward.NodeBufferCap, the route bytes a node holds at most.
const NodeBufferCap = forward.NodeBufferCap

// Router is one mesh node: a forward.Router (whose methods it has: Start, Close,
// AddPeer, Links, Routes, Graph, ...) with the end-to-end layer attached: Dial,
// Listen, ListenPacket, Ping, Resolve. Create it with New.
type Router struct {
	*forward.Router
	self  topology.Key
	cfg   Config
	graph *topology.Graph
	e2e   *endToEnd

	counters [numCounters]atomic.Uint64
	linkInfo atomic.Pointer[func(endpoint string) any]
}

// SetLinkInfo makes GET /mesh/links add, to each link, what f says of the
// link's endpoint (such as "udp://169.254.1.2:5505") under "medium": the
// Wi-Fi radio and signal that carry it, say. f returns nil for nothing to
// add; it runs on every request, so it must be quick.
func (r *Router) SetLinkInfo(f func(endpoint string) any) { r.linkInfo.Store(&f) }

// New checks cfg and builds a node; nothing runs until Start. Errors are
// forward.New's.
func New(cfg Config) (*Router, error) {
	fw, err := forward.New(cfg)
	if err != nil {
		return nil, err
	}
	r := &Router{Router: fw, self: fw.Self(), cfg: fw.Config(), graph: fw.Graph()}
	r.e2e = newEndToEnd(r)
	fw.Attach(r.e2e)
	return r, nil
}

// Counters returns the forwarding core's counters and the end-to-end layer's,
// added up where both count the same thing (drop_bad_frame, drop_unknown_session,
// the link errors).
func (r *Router) Counters() map[string]uint64 {
	out := r.Router.Counters()
	for i := range r.counters {
		out[counterNames[i]] += r.counters[i].Load()
	}
	return out
}

// End-to-end counters, by the names Counters reports.
const (
	countMalformed    counter = iota // end-to-end datagram that is not one (header)
	countNoPSK                       // handshake without the network key
	countReplay                      // replayed handshake or data
	countAuth                        // failed decryption or handshake
	countUnknownIndex                // data or response for no session held
	countBadFrame                    // malformed application frame inside a session
	countPeerCap                     // end-to-end peer or stream refused at its cap (MaxPeers, MaxStreamsPerPeer)
	countPeerRestarts                // end-to-end handshakes redone because the destination forgot our route (it restarted)
	countReaderFull                  // datagrams for a local PacketConn dropped: its reader let 256 queue up (as a full UDP socket buffer drops)
	countSessionKind                 // end-to-end handshakes redone because the way to the peer changed between radio (clear) and IP (encrypted)
	numCounters
)

type counter int

var counterNames = [numCounters]string{
	"drop_malformed", "drop_no_psk", "drop_data_replay", "drop_auth",
	"drop_unknown_session", "drop_bad_frame", "drop_peer_cap", "e2e_peer_restarts",
	"drop_reader_full", "e2e_session_kind_changes",
}

func (r *Router) count(c counter) { r.counters[c].Add(1) }

// countLinkErr counts an end-to-end session error as the forwarding core counts
// the same error on a link.
func (r *Router) countLinkErr(err error) {
	switch {
	case errors.Is(err, link.ErrUnknownIndex):
		r.count(countUnknownIndex)
	case errors.Is(err, link.ErrMAC):
		r.count(countNoPSK)
	case errors.Is(err, link.ErrReplay):
		r.count(countReplay)
	case errors.Is(err, link.ErrAuth), errors.Is(err, link.ErrRefused):
		r.count(countAuth)
	default:
		r.count(countMalformed)
	}
}

func (r *Router) rand32() uint32 {
	var b [4]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}

// bufPool holds the end-to-end layer's scratch buffers (a sealed or opened
// datagram at a time): the forwarding core copies what it is given.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

func getBuf() *[]byte { b := bufPool.Get().(*[]byte); *b = (*b)[:0]; return b }

func putBuf(b *[]byte) {
	if cap(*b) <= 1<<16 {
		bufPool.Put(b)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// keyLen is the length of a node key (compressed secp256k1 point).
const keyLen = 33

func shortKey(k topology.Key) string { return forward.Address(k) }

var _ forward.Upper = (*endToEnd)(nil)
