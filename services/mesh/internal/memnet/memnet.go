// Package memnet is an in-process datagram network for the mesh's tests: every
// Transport has an endpoint "10.0.0.N:1"; a datagram reaches its endpoint unless
// the pair is cut, a Drop function or the random loss takes it, after the delay.
// It satisfies the Transport interfaces of services/mesh/forward (UDP-like: MTU
// 1452) and is used by the tests of packages forward and mesh alike.
package memnet

import (
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/skyfleet/skyfleet/services/mesh/transport"
)

// Net is one in-process network. The zero value is not usable; call New.
type Net struct {
	mu    sync.Mutex
	ends  map[string]*Transport
	cut   map[[2]string]bool
	tap   func(from, to string, b []byte)
	drop  func(from, to string, b []byte) bool
	delay time.Duration
	loss  float64
	count int
}

type dgram struct {
	from transport.Endpoint
	b    []byte
}

// Transport is one endpoint of a Net.
type Transport struct {
	net    *Net
	addr   string
	ep     transport.Endpoint
	in     chan dgram
	closed chan struct{}
	once   sync.Once
}

// New returns an empty network: no delay, no loss.
func New() *Net {
	return &Net{ends: make(map[string]*Transport), cut: make(map[[2]string]bool)}
}

// inQueue is a transport's receive queue in datagrams; beyond it datagrams are
// dropped, as a socket's buffer would.
const inQueue = 4096

// Transport adds an endpoint with the next free address.
func (m *Net) Transport() *Transport {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.count++
	return m.addLocked(fmt.Sprintf("10.0.0.%d:1", m.count))
}

// Replace puts a fresh endpoint at addr, as a node restarted on the same socket;
// the one it replaces receives nothing more.
func (m *Net) Replace(addr string) *Transport {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.addLocked(addr)
}

func (m *Net) addLocked(addr string) *Transport {
	t := &Transport{net: m, addr: addr, ep: transport.EndpointOf(netip.MustParseAddrPort(addr)),
		in: make(chan dgram, inQueue), closed: make(chan struct{})}
	m.ends[addr] = t
	return t
}

// SetCut cuts (or restores) both directions between endpoints a and b.
func (m *Net) SetCut(a, b string, cut bool) {
	m.mu.Lock()
	m.cut[[2]string{a, b}] = cut
	m.cut[[2]string{b, a}] = cut
	m.mu.Unlock()
}

// SetDelay sets the one-way delay of every datagram sent from now on.
func (m *Net) SetDelay(d time.Duration) { m.mu.Lock(); m.delay = d; m.mu.Unlock() }

// SetLoss sets the fraction (0..1) of datagrams dropped at random.
func (m *Net) SetLoss(f float64) { m.mu.Lock(); m.loss = f; m.mu.Unlock() }

// SetTap makes tap see (a copy of) every datagram that is delivered; nil stops it.
func (m *Net) SetTap(tap func(from, to string, b []byte)) { m.mu.Lock(); m.tap = tap; m.mu.Unlock() }

// SetDrop makes every datagram drop returns true for lost (before the tap and the
// random loss): a test's targeted loss. nil stops it.
func (m *Net) SetDrop(drop func(from, to string, b []byte) bool) {
	m.mu.Lock()
	m.drop = drop
	m.mu.Unlock()
}

// Addr is the endpoint's address, "10.0.0.N:1".
func (t *Transport) Addr() string { return t.addr }

// Endpoint is the endpoint's address as the mesh's transports give it.
func (t *Transport) Endpoint() transport.Endpoint { return t.ep }

// Network is "udp": peers are configured as udp://addr.
func (t *Transport) Network() string { return "udp" }

// LocalAddr is "udp://" and the address.
func (t *Transport) LocalAddr() string { return "udp://" + t.addr }

// MTU is 1452, a UDP transport's.
func (t *Transport) MTU(transport.Endpoint) int { return 1452 }

// Resolve parses hp, a numeric "ip:port".
func (t *Transport) Resolve(hp string) (transport.Endpoint, error) {
	return transport.ParseEndpoint(hp)
}

// ReadFrom waits for the next datagram; net.ErrClosed after Close.
func (t *Transport) ReadFrom(p []byte) (int, transport.Endpoint, error) {
	select {
	case d := <-t.in:
		return copy(p, d.b), d.from, nil
	case <-t.closed:
		return 0, transport.Endpoint{}, net.ErrClosed
	}
}

// WriteTo sends a copy of p to endpoint to; it is lost silently when to is unknown,
// cut, dropped, or its queue is full. net.ErrClosed after Close.
func (t *Transport) WriteTo(p []byte, toEP transport.Endpoint) error {
	to := toEP.String()
	select {
	case <-t.closed:
		return net.ErrClosed
	default:
	}
	m := t.net
	m.mu.Lock()
	dst := m.ends[to]
	cut := m.cut[[2]string{t.addr, to}]
	tap, drop := m.tap, m.drop
	delay, loss := m.delay, m.loss
	m.mu.Unlock()
	if dst == nil || cut || (drop != nil && drop(t.addr, to, p)) || (loss > 0 && mrand.Float64() < loss) {
		return nil
	}
	b := append([]byte(nil), p...)
	if tap != nil {
		tap(t.addr, to, b)
	}
	if delay > 0 {
		from := t.ep
		time.AfterFunc(delay, func() {
			select {
			case dst.in <- dgram{from: from, b: b}:
			default:
			}
		})
		return nil
	}
	select {
	case dst.in <- dgram{from: t.ep, b: b}:
	case <-dst.closed:
	default: // full: dropped, as a network would
	}
	return nil
}

// Close stops the endpoint; ReadFrom returns net.ErrClosed.
func (t *Transport) Close() error {
	t.once.Do(func() { close(t.closed) })
	return nil
}

// Await takes the next datagram for t if one arrives within d, and reports
// whether one did: how a test proves a stranger got no answer.
func (t *Transport) Await(d time.Duration) bool {
	select {
	case <-t.in:
		return true
	case <-time.After(d):
		return false
	}
}
