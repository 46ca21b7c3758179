package forward

// Transport carries datagrams between this node and its neighbours: UDP and TCP
// today, radio and Wi-Fi later. The router owns this interface; implementations
// (package services/mesh/transport, later drivers) satisfy it without importing mesh.
//
// An endpoint is a transport-specific string naming a neighbour's socket, for UDP and
// TCP the numeric "ip:port" form of netip.AddrPort.String (IPv4-mapped addresses
// unmapped), so that the endpoint ReadFrom reports for a datagram equals the one the
// router stored after resolving a configured peer.
type Transport interface {
	// Network is the URL scheme this transport serves: "udp", "tcp".
	Network() string
	// LocalAddr is the listening address as scheme://ip:port.
	LocalAddr() string
	// ReadFrom blocks until one datagram arrives, copies it into p and returns its
	// length and the sender's endpoint. A datagram longer than p is truncated and
	// reported with n == len(p). After Close it returns net.ErrClosed.
	ReadFrom(p []byte) (n int, from string, err error)
	// WriteTo sends one datagram to endpoint to. It may drop the datagram (as the
	// network may); it returns an error only when to is malformed or the transport
	// is closed or broken.
	WriteTo(p []byte, to string) error
	// Resolve turns a configured "host:port" (a name or an address) into the
	// endpoint form ReadFrom reports, or returns an error saying why it cannot.
	Resolve(hostport string) (string, error)
	// MTU is the largest datagram in bytes that WriteTo carries to the endpoint to
	// without loss from fragmentation: 1452 for UDP (IPv6-safe on a 1500-byte link),
	// the frame limit for TCP. It is asked per path because a transport's paths can
	// differ (a radio port's paclen, a tunnel); the router asks before each datagram
	// it builds for a neighbour, so an answer may change as the transport learns.
	MTU(to string) int
	// Close stops the transport and unblocks ReadFrom.
	Close() error
}
