package forward

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The plaintext of every link datagram (what link.Session.Open returns) is a
// sequence of frames, so one datagram can carry packets of several routes plus control
// messages (docs/architecture.md §Routes: one link datagram may carry the packets of
// several routes that cross the same link).
//
//	frame = type (1 byte) | length (2 bytes, big endian) | body (length bytes)
//
// Bodies, all integers big endian:
//
//	Data      route ID (4) | payload
//	Setup     nonce (8) | hop count n (1) | n × node key (33): the hops after the receiver
//	Confirm   nonce (8) | route ID (4): the ID the receiver of Confirm must use
//	SetupFail nonce (8) | reason (1) | reporter key (33)
//	RouteErr  route ID (4) | reason (1) | reporter key (33): travels back towards the source
//	Teardown  route ID (4)
//	Keepalive route ID (4)
//	Gossip    a topology.Announcement encoding
//	Ping      id (4)
//	Pong      id (4)
//	Back      route ID (4) | payload: a packet travelling a route backwards (below)
const (
	frameData      = 0x01
	frameSetup     = 0x02
	frameConfirm   = 0x03
	frameSetupFail = 0x04
	frameRouteErr  = 0x05
	frameTeardown  = 0x06
	frameKeepalive = 0x07
	frameGossip    = 0x08
	framePing      = 0x09
	framePong      = 0x0a
	frameBack      = 0x0b
)

// Back frames carry a packet backwards along a route, from its destination
// towards its source (docs/architecture.md §Routes has routes one-way; this is
// the exception that lets a destination answer a first contact at once):
//
//	Back      route ID (4) | payload
//
// The route ID is the one forward packets carry on the link the frame crosses.
// Each hop finds its rule by the rule's out-side (as for route errors) and passes
// the frame on with the rule's in-side ID; the source delivers it. A destination
// uses it only while it has no route of its own back to the source: for its
// end-to-end handshake answer and echo replies. A node that does not know the
// frame drops it (a bad frame); the source's handshake retransmission then gets
// its answer over the route back the destination sets up at the same time.

// frameHeader is the size of a frame's type and length.
const frameHeader = 3

// keyLen is the size of a compressed secp256k1 public key, the node identity.
const keyLen = 33

// maxSetupHops bounds the hop list of a Setup frame (and so the route length).
const maxSetupHops = 16

// Reasons carried by SetupFail and RouteErr.
const (
	ReasonNoLink   = 1 // the reporter has no live link to the next hop
	ReasonNoRoute  = 2 // the reporter holds no rule for the route ID
	ReasonLinkDown = 3 // the reporter's link to the next hop died
	ReasonShutdown = 4 // the reporter is shutting down
	ReasonFull     = 5 // the reporter's forwarding table is full
	ReasonAmateur  = 6 // the route would go on across a radio link, which carries routes of one hop only
)

func reasonString(r byte) string {
	switch r {
	case ReasonNoLink:
		return "no link to next hop"
	case ReasonNoRoute:
		return "no such route"
	case ReasonLinkDown:
		return "link down"
	case ReasonShutdown:
		return "node shutting down"
	case ReasonFull:
		return "forwarding table full"
	case ReasonAmateur:
		return "no transit across a radio link"
	}
	return fmt.Sprintf("reason %d", r)
}

var (
	errFrameShort = errors.New("frame truncated")
	errFrameBody  = errors.New("frame body malformed")
)

// appendFrame appends a frame with the given type and body parts to dst.
func appendFrame(dst []byte, typ byte, parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	dst = append(dst, typ, byte(n>>8), byte(n))
	for _, p := range parts {
		dst = append(dst, p...)
	}
	return dst
}

// nextFrame splits the first frame off b.
func nextFrame(b []byte) (typ byte, body, rest []byte, err error) {
	if len(b) < frameHeader {
		return 0, nil, nil, errFrameShort
	}
	n := int(binary.BigEndian.Uint16(b[1:3]))
	if len(b) < frameHeader+n {
		return 0, nil, nil, errFrameShort
	}
	return b[0], b[frameHeader : frameHeader+n], b[frameHeader+n:], nil
}

// setupMsg is a decoded Setup frame body.
type setupMsg struct {
	nonce uint64
	rest  [][keyLen]byte
}

func (m setupMsg) append(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, m.nonce)
	dst = append(dst, byte(len(m.rest)))
	for _, k := range m.rest {
		dst = append(dst, k[:]...)
	}
	return dst
}

func parseSetup(b []byte) (setupMsg, error) {
	if len(b) < 9 {
		return setupMsg{}, fmt.Errorf("setup: %w: %d bytes", errFrameBody, len(b))
	}
	m := setupMsg{nonce: binary.BigEndian.Uint64(b)}
	n := int(b[8])
	if n > maxSetupHops {
		return setupMsg{}, fmt.Errorf("setup: %w: %d hops, at most %d", errFrameBody, n, maxSetupHops)
	}
	if len(b) != 9+n*keyLen {
		return setupMsg{}, fmt.Errorf("setup: %w: %d bytes for %d hops", errFrameBody, len(b), n)
	}
	m.rest = make([][keyLen]byte, n)
	for i := range m.rest {
		copy(m.rest[i][:], b[9+i*keyLen:])
	}
	return m, nil
}

// confirmMsg is a decoded Confirm frame body.
type confirmMsg struct {
	nonce uint64
	rid   uint32
}

func (m confirmMsg) append(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, m.nonce)
	return binary.BigEndian.AppendUint32(dst, m.rid)
}

func parseConfirm(b []byte) (confirmMsg, error) {
	if len(b) != 12 {
		return confirmMsg{}, fmt.Errorf("confirm: %w: %d bytes", errFrameBody, len(b))
	}
	m := confirmMsg{nonce: binary.BigEndian.Uint64(b), rid: binary.BigEndian.Uint32(b[8:])}
	if m.rid == 0 {
		return confirmMsg{}, fmt.Errorf("confirm: %w: route ID 0", errFrameBody)
	}
	return m, nil
}

// failMsg is a decoded SetupFail (id = nonce) or RouteErr (id = route ID) body.
type failMsg struct {
	id       uint64
	reason   byte
	reporter [keyLen]byte
}

func (m failMsg) appendSetupFail(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, m.id)
	dst = append(dst, m.reason)
	return append(dst, m.reporter[:]...)
}

func (m failMsg) appendRouteErr(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(m.id))
	dst = append(dst, m.reason)
	return append(dst, m.reporter[:]...)
}

func parseSetupFail(b []byte) (failMsg, error) {
	if len(b) != 8+1+keyLen {
		return failMsg{}, fmt.Errorf("setup fail: %w: %d bytes", errFrameBody, len(b))
	}
	m := failMsg{id: binary.BigEndian.Uint64(b), reason: b[8]}
	copy(m.reporter[:], b[9:])
	return m, nil
}

func parseRouteErr(b []byte) (failMsg, error) {
	if len(b) != 4+1+keyLen {
		return failMsg{}, fmt.Errorf("route error: %w: %d bytes", errFrameBody, len(b))
	}
	m := failMsg{id: uint64(binary.BigEndian.Uint32(b)), reason: b[4]}
	copy(m.reporter[:], b[5:])
	return m, nil
}

// parseRouteID decodes the 4-byte body of Teardown, Keepalive, Ping and Pong, and the
// route ID at the start of a Data body.
func parseRouteID(b []byte, exact bool) (uint32, error) {
	if len(b) < 4 || (exact && len(b) != 4) {
		return 0, fmt.Errorf("%w: %d bytes for a 4-byte ID", errFrameBody, len(b))
	}
	return binary.BigEndian.Uint32(b), nil
}

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
