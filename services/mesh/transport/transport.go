// Package transport carries the mesh router's link datagrams over UDP and TCP: it
// implements forward.Transport (services/mesh/forward/transport.go) for the "udp://" and "tcp://"
// entries of fleet.toml [node] listen. It is a leaf: it imports nothing of the mesh,
// whose interface its types satisfy (Transport repeats the method set).
//
// Endpoints are typed (Endpoint): an IP address and port with IPv4-mapped IPv6
// addresses unmapped, so that the endpoint ReadFrom reports for a datagram equals
// the one Resolve returned for the configured peer; a radio transport will use
// named ones.
//
// UDP sends each datagram as one UDP datagram. TCP frames datagrams on a stream with a
// 2-byte big-endian length prefix, keeps one connection per endpoint (accepted or
// dialled on demand), and never blocks WriteTo: it queues a bounded number of
// datagrams per connection and drops beyond that, as a datagram network may. It
// limits how long, how many and from where connections the router has not
// answered may stay, so that strangers cannot fill its table (see TCP).
package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// UDPMTU is the UDP transport's MTU in bytes: the largest UDP payload that fits a
	// 1500-byte link under IPv6 (1500 - 40 - 8) with no fragmentation.
	UDPMTU = 1452
	// TCPMTU is the TCP transport's MTU in bytes: the largest datagram the 2-byte
	// length prefix can frame.
	TCPMTU = 65535

	// maxUDP4 and maxUDP6 are the largest UDP payloads IPv4 and IPv6 carry at all.
	maxUDP4 = 65507
	maxUDP6 = 65527

	// maxRetry bounds TCP's table of endpoints whose dial failed; a full table
	// is emptied and refilled.
	maxRetry = 1024
)

// Transport is the method set of forward.Transport (services/mesh/forward/transport.go, where
// each method is documented), repeated here so that this package does not import
// the router it serves. *UDP and *TCP implement it.
type Transport interface {
	Network() string
	LocalAddr() string
	ReadFrom(p []byte) (n int, from Endpoint, err error)
	WriteTo(p []byte, to Endpoint) error
	Resolve(hostport string) (Endpoint, error)
	MTU(to Endpoint) int
	Close() error
}

// Open listens on url, a fleet.toml [node] listen entry: "udp://host:port" or
// "tcp://host:port", where host is an IP address, a name, or empty (all addresses,
// IPv4 and IPv6), for example "udp://0.0.0.0:5505", "udp://127.0.0.1:0",
// "tcp://[::]:5505". It returns a *UDP or a *TCP. Errors: an unknown scheme, a
// malformed address, or the listen error of the operating system.
func Open(url string) (Transport, error) {
	scheme, addr, ok := strings.Cut(url, "://")
	if !ok {
		return nil, fmt.Errorf("transport: %q: want scheme://host:port (udp:// or tcp://)", url)
	}
	switch strings.ToLower(scheme) {
	case "udp":
		return ListenUDP(addr)
	case "tcp":
		return ListenTCP(addr)
	default:
		return nil, fmt.Errorf("transport: %q: unknown scheme %q (want udp or tcp)", url, scheme)
	}
}

// Stats are a transport's counters since it was opened.
type Stats struct {
	// DatagramsIn and BytesIn count datagrams delivered by ReadFrom and the bytes
	// it copied out (a truncated datagram counts what fitted).
	DatagramsIn, BytesIn uint64
	// DatagramsOut and BytesOut count datagrams handed to the operating system:
	// sent for UDP, written to the connection for TCP.
	DatagramsOut, BytesOut uint64
	// Drops counts datagrams WriteTo accepted but did not send: for TCP a full
	// queue, a failed or backed-off dial, a connection that broke with datagrams
	// still queued.
	Drops uint64
	// Errors counts send errors the operating system reported (UDP: ECONNREFUSED,
	// ENOBUFS, EHOSTUNREACH, ...; the datagram is lost) and, for TCP, connections
	// that broke with a read or write error or inside a frame.
	Errors uint64
	// Dials and DialFailures count TCP dials started and failed (0 for UDP).
	Dials, DialFailures uint64
	// Conns is the number of TCP connections open or being dialled (0 for UDP).
	Conns int

	// The TCP stranger limits (see TCP; all 0 for UDP).

	// Unauthenticated is the number of accepted TCP connections not yet
	// authenticated, a part of Conns.
	Unauthenticated int
	// AuthTimeouts counts accepted connections closed because they were not
	// authenticated within 10 s.
	AuthTimeouts uint64
	// RefusedPerSource counts accepted connections closed at once because their
	// source (IPv4 address, IPv6 /64) already held 8 unauthenticated ones.
	RefusedPerSource uint64
	// Evicted counts unauthenticated connections closed to make room in a full
	// table for a new connection or dial.
	Evicted uint64
	// RefusedFull counts accepted connections closed at once because the table
	// was full of authenticated and dialled connections.
	RefusedFull uint64
}

// counters are the live Stats; the read side and write side sit on separate cache
// lines so that a reader and writers do not contend.
type counters struct {
	inDgrams, inBytes atomic.Uint64
	_                 [48]byte
	outDgrams         atomic.Uint64
	outBytes          atomic.Uint64
	_                 [48]byte
	drops, errs       atomic.Uint64
	dials, dialFails  atomic.Uint64

	authTimeouts, refusedSource atomic.Uint64
	evicted, refusedFull        atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		DatagramsIn:  c.inDgrams.Load(),
		BytesIn:      c.inBytes.Load(),
		DatagramsOut: c.outDgrams.Load(),
		BytesOut:     c.outBytes.Load(),
		Drops:        c.drops.Load(),
		Errors:       c.errs.Load(),
		Dials:        c.dials.Load(),
		DialFailures: c.dialFails.Load(),

		AuthTimeouts:     c.authTimeouts.Load(),
		RefusedPerSource: c.refusedSource.Load(),
		Evicted:          c.evicted.Load(),
		RefusedFull:      c.refusedFull.Load(),
	}
}

// unmap returns ap with an IPv4-mapped IPv6 address turned into IPv4.
func unmap(ap netip.AddrPort) netip.AddrPort {
	if ap.Addr().Is4In6() {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return ap
}

// listenAddr is what LocalAddr reports: the requested IP when one was given (so that
// "0.0.0.0:0" stays 0.0.0.0 although the socket is dual-stack), else the bound one,
// with the bound port.
func listenAddr(requested string, bound netip.AddrPort) netip.AddrPort {
	host, _, err := net.SplitHostPort(requested)
	if err == nil {
		if ip, err := netip.ParseAddr(host); err == nil {
			return netip.AddrPortFrom(ip.Unmap().WithZone(""), bound.Port())
		}
	}
	return unmap(bound)
}

// checkListen rejects a listen address without a port.
func checkListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("transport: listen address %q: %w", addr, err)
	}
	if port == "" {
		return fmt.Errorf("transport: listen address %q has no port", addr)
	}
	return nil
}

// resolveTimeout bounds a name lookup in Resolve.
const resolveTimeout = 5 * time.Second

// resolve turns "host:port" into an endpoint, preferring an IPv4 address when
// v4only (the socket cannot reach IPv6) and when the name has both.
func resolve(network, hostport string, v4only bool) (Endpoint, error) {
	host, portStr, err := net.SplitHostPort(hostport)
	if err != nil {
		return Endpoint{}, fmt.Errorf("transport: resolve %q: %w", hostport, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
		p, lerr := net.DefaultResolver.LookupPort(ctx, network, portStr)
		cancel()
		if lerr != nil {
			return Endpoint{}, fmt.Errorf("transport: resolve %q: bad port %q", hostport, portStr)
		}
		port = uint64(p)
	}
	if port == 0 {
		return Endpoint{}, fmt.Errorf("transport: resolve %q: port 0", hostport)
	}
	if host == "" {
		return Endpoint{}, fmt.Errorf("transport: resolve %q: no host", hostport)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap()
		if v4only && !ip.Is4() {
			return Endpoint{}, fmt.Errorf("transport: resolve %q: IPv6 address on an IPv4-only %s socket", hostport, network)
		}
		return EndpointOf(netip.AddrPortFrom(ip, uint16(port))), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	cancel()
	if err != nil {
		return Endpoint{}, fmt.Errorf("transport: resolve %q: %w", hostport, err)
	}
	var pick netip.Addr
	for _, ip := range ips {
		ip = ip.Unmap()
		if ip.Is4() {
			pick = ip
			break
		}
		if !pick.IsValid() && !v4only {
			pick = ip
		}
	}
	if !pick.IsValid() {
		return Endpoint{}, fmt.Errorf("transport: resolve %q: no usable address for this %s socket among %v", hostport, network, ips)
	}
	return EndpointOf(netip.AddrPortFrom(pick, uint16(port))), nil
}

// isClosed reports whether err says the socket was closed.
func isClosed(err error) bool { return errors.Is(err, net.ErrClosed) }

// Buffer pools for TCP frames: small for link-sized datagrams, large up to the MTU.
const smallBuf = 2048

var (
	smallPool = sync.Pool{New: func() any { b := make([]byte, smallBuf); return &b }}
	largePool = sync.Pool{New: func() any { b := make([]byte, 2+TCPMTU); return &b }}
)

// getBuf returns a pooled buffer of at least n bytes.
func getBuf(n int) *[]byte {
	if n <= smallBuf {
		return smallPool.Get().(*[]byte)
	}
	return largePool.Get().(*[]byte)
}

// putBuf returns a buffer taken with getBuf.
func putBuf(b *[]byte) {
	if cap(*b) <= smallBuf {
		smallPool.Put(b)
	} else {
		largePool.Put(b)
	}
}
