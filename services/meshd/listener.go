package meshd

import (
	"net"
	"sync"
	"sync/atomic"
)

// MaxConnsPerSource caps the API connections one source address may hold at
// once (IPv6 addresses by /64). With MaxConns alone, one stranger opening idle
// connections could keep everyone else out until the header timeout, again and
// again; with this cap it needs MaxConns/MaxConnsPerSource addresses.
const MaxConnsPerSource = 32

// perSource is a net.Listener that closes a new TCP connection at once when its
// source already holds max. Its map holds only sources with open connections.
type perSource struct {
	net.Listener
	max     int
	mu      sync.Mutex
	open    map[string]int
	refused atomic.Uint64
}

func limitPerSource(ln net.Listener, max int) *perSource {
	return &perSource{Listener: ln, max: max, open: make(map[string]int)}
}

func (l *perSource) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		src, ok := sourceOf(c.RemoteAddr())
		if !ok {
			return c, nil // a Unix socket: one local peer, nothing to share out
		}
		l.mu.Lock()
		if l.open[src] >= l.max {
			l.mu.Unlock()
			l.refused.Add(1)
			c.Close()
			continue
		}
		l.open[src]++
		l.mu.Unlock()
		return &sourceConn{Conn: c, l: l, src: src}, nil
	}
}

func (l *perSource) release(src string) {
	l.mu.Lock()
	if l.open[src]--; l.open[src] <= 0 {
		delete(l.open, src)
	}
	l.mu.Unlock()
}

// sourceOf returns the key a TCP peer is counted under: its IPv4 address, or
// the /64 of its IPv6 address (one host commonly holds a whole /64).
func sourceOf(a net.Addr) (string, bool) {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return "", false
	}
	if ip4 := ta.IP.To4(); ip4 != nil {
		return ip4.String(), true
	}
	return ta.IP.Mask(net.CIDRMask(64, 128)).String() + "/64", true
}

type sourceConn struct {
	net.Conn
	l    *perSource
	src  string
	once sync.Once
}

func (c *sourceConn) Close() error {
	c.once.Do(func() { c.l.release(c.src) })
	return c.Conn.Close()
}
