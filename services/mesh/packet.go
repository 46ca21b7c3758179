package mesh

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
)

// PacketConn sends and receives end-to-end encrypted datagrams on one port: a
// net.PacketConn whose addresses are Addr values. Delivery is best effort, like UDP.
type PacketConn struct {
	e    *endToEnd
	port uint16
	ch   chan packet
	done chan struct{}
	once sync.Once

	mu       sync.Mutex
	deadline time.Time
}

type packet struct {
	from Addr
	data []byte
}

// ListenPacket opens port (1-65535) for datagrams; ErrPortInUse if taken.
func (r *Router) ListenPacket(port uint16) (*PacketConn, error) {
	e := r.e2e
	e.mu.Lock()
	defer e.mu.Unlock()
	if port == 0 || e.packets[port] != nil {
		return nil, fmt.Errorf("%w: %d", ErrPortInUse, port)
	}
	pc := &PacketConn{e: e, port: port, ch: make(chan packet, 256), done: make(chan struct{})}
	e.packets[port] = pc
	return pc, nil
}

func (pc *PacketConn) push(from Addr, b []byte) {
	select {
	case pc.ch <- packet{from: from, data: append([]byte(nil), b...)}:
	default: // reader too slow: drop, as UDP would, and count it
		pc.e.r.count(countReaderFull)
	}
}

// ReadFrom waits for the next datagram, copies it into b (truncating) and returns
// its length and sender.
func (pc *PacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	pc.mu.Lock()
	dl := pc.deadline
	pc.mu.Unlock()
	var timeout <-chan time.Time
	if !dl.IsZero() {
		t := time.NewTimer(time.Until(dl))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case p := <-pc.ch:
		return copy(b, p.data), p.from, nil
	case <-pc.done:
		return 0, nil, net.ErrClosed
	case <-timeout:
		return 0, nil, os.ErrDeadlineExceeded
	}
}

// WriteTo sends b (at most MaxDatagram bytes) to addr, an Addr, setting up a route
// and end-to-end session first if needed (waiting at most 5 s).
func (pc *PacketConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	a, ok := addr.(Addr)
	if !ok {
		if pa, ok2 := addr.(*Addr); ok2 {
			a, ok = *pa, true
		}
	}
	if !ok {
		return 0, fmt.Errorf("mesh: WriteTo needs a mesh.Addr, not %T", addr)
	}
	if len(b) > MaxDatagram {
		return 0, fmt.Errorf("mesh: %d-byte datagram exceeds %d", len(b), MaxDatagram)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p, err := pc.e.connect(ctx, a.Key)
	if err != nil {
		return 0, err
	}
	if err := p.sendApp(nil, appDgram, pc.port, a.Port, b); err != nil {
		return 0, err
	}
	return len(b), nil
}

// Close stops the port.
func (pc *PacketConn) Close() error {
	pc.once.Do(func() {
		close(pc.done)
		pc.e.mu.Lock()
		if pc.e.packets[pc.port] == pc {
			delete(pc.e.packets, pc.port)
		}
		pc.e.mu.Unlock()
	})
	return nil
}

// LocalAddr is this node's address and port.
func (pc *PacketConn) LocalAddr() net.Addr { return Addr{Key: pc.e.r.self, Port: pc.port} }

// SetDeadline sets the read deadline (writes do not block beyond route setup).
func (pc *PacketConn) SetDeadline(t time.Time) error { return pc.SetReadDeadline(t) }

// SetReadDeadline makes ReadFrom fail with os.ErrDeadlineExceeded after t.
func (pc *PacketConn) SetReadDeadline(t time.Time) error {
	pc.mu.Lock()
	pc.deadline = t
	pc.mu.Unlock()
	return nil
}

// SetWriteDeadline is accepted and ignored: writes never block on the network.
func (pc *PacketConn) SetWriteDeadline(time.Time) error { return nil }

var _ net.PacketConn = (*PacketConn)(nil)
var _ = errors.New
