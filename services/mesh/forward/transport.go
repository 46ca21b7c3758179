package forward

import "github.com/skyfleet/skyfleet/services/mesh/transport"

// Transport carries datagrams between this node and its neighbours: UDP and TCP
// today, radio and Wi-Fi later. The router owns this interface; implementations
// (package services/mesh/transport, later drivers) satisfy it without importing
// the router: they share only the endpoint type, transport.Endpoint (a leaf).
//
// An endpoint names a neighbour's socket on the transport: for UDP and TCP an IP
// address and port (IPv4-mapped addresses unmapped), so that the endpoint ReadFrom
// reports for a datagram equals the one the router stored after resolving a
// configured peer; a non-IP transport uses named endpoints (a callsign).
type Transport interface {
	// Network is the URL scheme this transport serves: "udp", "tcp".
	Network() string
	// LocalAddr is the listening address as scheme://ip:port.
	LocalAddr() string
	// ReadFrom blocks until one datagram arrives, copies it into p and returns its
	// length and the sender's endpoint. A datagram longer than p is truncated and
	// reported with n == len(p). After Close it returns net.ErrClosed.
	ReadFrom(p []byte) (n int, from transport.Endpoint, err error)
	// WriteTo sends one datagram to endpoint to. It may drop the datagram (as the
	// network may); it returns an error only when to is not one of this
	// transport's endpoints or the transport is closed or broken.
	WriteTo(p []byte, to transport.Endpoint) error
	// Resolve turns a configured "host:port" (a name or an address) into the
	// endpoint ReadFrom reports, or returns an error saying why it cannot.
	Resolve(hostport string) (transport.Endpoint, error)
	// MTU is the largest datagram in bytes that WriteTo carries to the endpoint to
	// without loss from fragmentation: 1452 for UDP (IPv6-safe on a 1500-byte link),
	// the frame limit for TCP. It is asked per path because a transport's paths can
	// differ (a radio port's paclen, a tunnel); the router asks before each datagram
	// it builds for a neighbour, so an answer may change as the transport learns.
	MTU(to transport.Endpoint) int
	// Close stops the transport and unblocks ReadFrom.
	Close() error
}

// An amateur transport is one on an amateur-radio channel (package
// services/mesh/radio): it reports Amateur() true. Its links are clear
// (link.Table.InitiateClear: signed by the node key, nothing encrypted, 47 CFR
// 97.113(a)(4)), slow, and shared by every station on the channel, so the
// router treats them apart: a neighbour heard there and over IP has two links,
// the one over IP preferred; the link is pinged and declared dead on the
// radio's timescale (Config.RadioPingInterval, RadioDeadAfter); gossip is
// rate-limited on it (radioGossipInterval); it carries only routes of one hop,
// from one end to the other (a Setup to go on across it is refused with
// ReasonAmateur), and only route payloads the layer above calls clear
// (Upper.Clear). Multi-hop traffic crosses radio hops by store and forward
// (package services/saf), one custody transfer per hop.
type amateur interface{ Amateur() bool }

// isAmateur reports whether tr is on an amateur-radio channel.
func isAmateur(tr Transport) bool {
	a, ok := tr.(amateur)
	return ok && a.Amateur()
}

// The transports of package transport are this router's.
var (
	_ Transport = (*transport.UDP)(nil)
	_ Transport = (*transport.TCP)(nil)
)
