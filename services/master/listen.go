package master

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Limits of the TLS sniffer: how long a new connection may take to send its
// first byte, and how many may be waiting to at once (the rest are closed).
const (
	sniffTimeout = 10 * time.Second
	maxSniffing  = 128
)

// tlsRecordHandshake is the first byte of every TLS ClientHello (RFC 8446
// §5.1, ContentType handshake); no HTTP request starts with it.
const tlsRecordHandshake = 0x16

// plainRefusal answers a plain-HTTP request from off loopback.
const plainRefusal = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n" +
	"This skyfleet master serves its API over TLS to other hosts: use https:// (the skyfleet CLI does, pinning the key `skyfleet master` printed as tls_pin).\n"

// sniffListener serves TLS and, to loopback peers only, plain HTTP on one
// port: it reads each new connection's first byte and hands http.Server a
// *tls.Conn for a ClientHello, the connection itself for plain HTTP from
// loopback, and closes the rest after plainRefusal. The first byte is awaited
// in a goroutine per connection, at most maxSniffing at once and sniffTimeout
// each, so a peer that connects and says nothing holds up no one else.
type sniffListener struct {
	net.Listener
	tls     *tls.Config
	conns   chan net.Conn
	done    chan struct{}
	slots   chan struct{}
	once    sync.Once
	mu      sync.Mutex
	err     error // the inner listener's error, once it failed
	refused atomic.Uint64
	// loopback reports whether a peer may use plain HTTP; tests replace it.
	loopback func(net.Addr) bool
}

func newSniffListener(ln net.Listener, cfg *tls.Config) *sniffListener {
	l := &sniffListener{Listener: ln, tls: cfg, conns: make(chan net.Conn), done: make(chan struct{}),
		slots: make(chan struct{}, maxSniffing), loopback: isLoopback}
	go l.acceptLoop()
	return l
}

func (l *sniffListener) acceptLoop() {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			l.mu.Lock()
			l.err = err
			l.mu.Unlock()
			l.Close()
			return
		}
		select {
		case l.slots <- struct{}{}:
			go l.sniff(c)
		default:
			l.refused.Add(1)
			c.Close()
		}
	}
}

// sniff classifies c by its first byte and passes it on to Accept.
func (l *sniffListener) sniff(c net.Conn) {
	defer func() { <-l.slots }()
	c.SetReadDeadline(time.Now().Add(sniffTimeout))
	br := bufio.NewReaderSize(c, 1024)
	first, err := br.Peek(1)
	c.SetReadDeadline(time.Time{})
	if err != nil {
		c.Close()
		return
	}
	pc := &peekedConn{Conn: c, r: br}
	var out net.Conn
	switch {
	case first[0] == tlsRecordHandshake:
		out = tls.Server(pc, l.tls)
	case l.loopback(c.RemoteAddr()):
		out = pc
	default:
		l.refused.Add(1)
		c.SetWriteDeadline(time.Now().Add(sniffTimeout))
		c.Write([]byte(plainRefusal))
		c.Close()
		return
	}
	select {
	case l.conns <- out:
	case <-l.done:
		c.Close()
	}
}

// Accept returns the next classified connection.
func (l *sniffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.err != nil {
			return nil, l.err
		}
		return nil, net.ErrClosed
	}
}

// Close stops accepting; connections already handed out stay open.
func (l *sniffListener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		err = l.Listener.Close()
	})
	return err
}

// peekedConn reads first what sniff's reader buffered.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// isLoopback reports whether a is a loopback TCP peer.
func isLoopback(a net.Addr) bool { return OnLoopback(a.String()) }
