package transport

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
)

// socketBuffer is the send and receive buffer size asked of the kernel, in bytes.
const socketBuffer = 4 << 20

// UDP is the UDP transport: one socket, one UDP datagram per mesh datagram. It is safe
// for concurrent use; ReadFrom and WriteTo do not allocate in the steady state.
type UDP struct {
	conn   *net.UDPConn
	local  string
	v4only bool
	closed atomic.Bool
	c      counters
}

// ListenUDP opens a UDP transport on addr, "host:port" where host is an IP address,
// a name or empty; port 0 picks a free port, which LocalAddr reports. An empty host
// or 0.0.0.0 or [::] listens on all addresses, IPv4 and IPv6 where the system has
// both. The socket's buffers are raised to 4 MiB where the system allows (with
// CAP_NET_ADMIN beyond net.core.rmem_max/wmem_max). Errors: a malformed address or
// the operating system's listen error.
func ListenUDP(addr string) (*UDP, error) {
	if err := checkListen(addr); err != nil {
		return nil, err
	}
	pc, err := (&net.ListenConfig{}).ListenPacket(context.Background(), "udp", addr)
	if err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	conn := pc.(*net.UDPConn)
	setBuffers(conn, socketBuffer)
	bound := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	return &UDP{
		conn:   conn,
		local:  "udp://" + listenAddr(addr, bound).String(),
		v4only: bound.Addr().Is4() || bound.Addr().Is4In6(),
	}, nil
}

// Network returns "udp".
func (t *UDP) Network() string { return "udp" }

// LocalAddr returns "udp://ip:port" with the port actually bound.
func (t *UDP) LocalAddr() string { return t.local }

// MTU returns UDPMTU, 1452 bytes, for every endpoint: it is safe on IPv4 and
// IPv6 paths of a 1500-byte link.
func (t *UDP) MTU(to Endpoint) int { return UDPMTU }

// ReadFrom blocks until a datagram arrives, copies it into p and returns its length
// and the sender's endpoint. A datagram longer than p is truncated, its
// tail lost, and reported with n == len(p). After Close it returns net.ErrClosed;
// other errors come from the operating system and are worth retrying.
func (t *UDP) ReadFrom(p []byte) (int, Endpoint, error) {
	n, ap, err := t.conn.ReadFromUDPAddrPort(p)
	if err != nil {
		if t.closed.Load() || isClosed(err) {
			return 0, Endpoint{}, net.ErrClosed
		}
		return 0, Endpoint{}, err
	}
	t.c.inDgrams.Add(1)
	t.c.inBytes.Add(uint64(n))
	return n, EndpointOf(ap), nil
}

// WriteTo sends p as one datagram to the endpoint to. Datagrams longer than the MTU
// are sent too (IP fragments them). It returns an error only when to is not an IP
// endpoint with a non-zero port, when to is IPv6 and the socket IPv4
// only, when p is longer than UDP can carry at all (65507 bytes to IPv4, 65527 to
// IPv6), or, as net.ErrClosed, after Close. Send errors of the network (refused,
// unreachable, no buffer space) lose the datagram and are counted in Stats.Errors.
func (t *UDP) WriteTo(p []byte, to Endpoint) error {
	if t.closed.Load() {
		return net.ErrClosed
	}
	ap, err := ipEndpoint(to)
	if err != nil {
		return err
	}
	max := maxUDP6
	if ap.Addr().Is4() {
		max = maxUDP4
	} else if t.v4only {
		return fmt.Errorf("transport: endpoint %q is IPv6 but %s is IPv4 only", to, t.local)
	}
	if len(p) > max {
		return fmt.Errorf("transport: datagram of %d bytes exceeds the UDP maximum %d", len(p), max)
	}
	if _, err := t.conn.WriteToUDPAddrPort(p, ap); err != nil {
		if t.closed.Load() || isClosed(err) {
			return net.ErrClosed
		}
		t.c.errs.Add(1)
		return nil
	}
	t.c.outDgrams.Add(1)
	t.c.outBytes.Add(uint64(len(p)))
	return nil
}

// Resolve turns "host:port" (an IP address or a name, a numeric or named port) into
// an endpoint. A name resolving to both families gives its IPv4 address; an
// IPv4-only socket refuses IPv6. Errors: malformed input, port 0, lookup failure.
func (t *UDP) Resolve(hostport string) (Endpoint, error) {
	return resolve("udp", hostport, t.v4only)
}

// Close closes the socket; ReadFrom then returns net.ErrClosed. Closing twice
// returns net.ErrClosed.
func (t *UDP) Close() error {
	if t.closed.Swap(true) {
		return net.ErrClosed
	}
	return t.conn.Close()
}

// Stats returns the transport's counters (Dials, DialFailures and Conns are 0).
func (t *UDP) Stats() Stats { return t.c.snapshot() }
