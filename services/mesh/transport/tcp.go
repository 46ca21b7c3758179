package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// TCP tuning. The queues are per connection and in datagrams.
const (
	tcpQueue     = 256                    // queued datagrams per connected peer
	dialQueue    = 64                     // queued datagrams while dialling
	inQueue      = 256                    // datagrams read but not yet taken by ReadFrom
	dialTimeout  = 5 * time.Second        // a dial taking longer fails
	writeTimeout = 10 * time.Second       // a connection whose writes stall this long is broken
	idleTimeout  = 60 * time.Second       // a connection with no traffic either way this long is closed
	maxConns     = 256                    // connections (open or dialling); see tcpLimits
	authTimeout  = 10 * time.Second       // an accepted connection not authenticated by then is closed
	perSourceMax = 8                      // unauthenticated accepted connections per source group
	backoffMin   = 250 * time.Millisecond // first wait after a failed dial
	backoffMax   = 4 * time.Second        // longest wait between dials of one endpoint
	connBuf      = 16 << 10               // bufio size per direction per connection
)

// tcpLimits bound what connections from strangers can hold. The zero value is not
// usable; ListenTCP uses defaultLimits, tests shrink them.
type tcpLimits struct {
	// maxConns caps the connection table (accepted, dialled and dialling).
	maxConns int
	// perSource caps the unauthenticated accepted connections of one source group
	// (sourceOf): one stranger's address cannot take more than this many slots.
	perSource int
	// authTimeout is how long an accepted connection may stay unauthenticated.
	authTimeout time.Duration
}

var defaultLimits = tcpLimits{maxConns: maxConns, perSource: perSourceMax, authTimeout: authTimeout}

// TCP is the TCP transport. Datagrams travel on TCP connections framed by a 2-byte
// big-endian length prefix; there is at most one connection per endpoint: accepted
// ones are named by their remote "ip:port", and WriteTo to an endpoint without one
// dials it in the background. One goroutine per connection reads frames into a shared
// queue that ReadFrom takes from; one goroutine per connection writes its bounded
// queue, so a slow peer delays only itself. It is safe for concurrent use.
//
// Strangers (anyone who can open a connection, with or without the network key)
// cannot lock real peers out of the 256-connection table. An accepted connection
// counts as unauthenticated until the first WriteTo to its endpoint: the router
// writes to an endpoint only after it authenticated a datagram from it (a
// handshake or a data datagram made with the network key; mesh.Config.PSK says
// datagrams without it are dropped unanswered) or because it is a configured peer,
// so the first answer is the authentication signal, and the Transport interface
// needs no extra method. Dialled connections are ours and count as authenticated.
// Unauthenticated connections are limited three ways:
//
//   - each is closed 10 s after it was accepted unless authenticated by then
//     (Stats.AuthTimeouts);
//   - at most 8 are kept per source, an IPv4 address or an IPv6 /64 (the standard
//     subnet size, RFC 4291 section 2.5.4), further ones are closed at once
//     (Stats.RefusedPerSource); authenticated connections do not count, so that
//     many nodes behind one NAT can still link to a relay;
//   - when the table is full, a new connection or dial evicts the oldest
//     unauthenticated one (Stats.Evicted); an authenticated connection is never
//     evicted, and only when every slot is authenticated or dialled is a new
//     connection refused (Stats.RefusedFull).
type TCP struct {
	ln     *net.TCPListener
	local  string
	v4only bool
	lim    tcpLimits

	ctx       context.Context
	cancel    context.CancelFunc
	closed    chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup

	mu    sync.RWMutex
	conns map[Endpoint]*tconn    // by endpoint
	retry map[Endpoint]retryWait // endpoints whose last dial failed
	// strangers counts unauthenticated accepted connections by source group. It
	// holds at most one entry per such connection, so maxConns (plus one being
	// replaced), and an entry goes when its last connection authenticates, times
	// out or closes: outside input cannot grow it beyond that.
	strangers map[netip.Prefix]int
	unauth    int // the sum of strangers

	in chan frame
	c  counters
}

// frame is one datagram read from a connection.
type frame struct {
	buf  *[]byte
	from Endpoint
}

// retryWait is the dial back-off of one endpoint.
type retryWait struct {
	until time.Time
	delay time.Duration
}

// tconn is one connection, or one being dialled.
type tconn struct {
	ep        Endpoint
	q         chan *[]byte // length-prefixed frames
	done      chan struct{}
	once      sync.Once
	dialing   atomic.Bool
	lastWrite atomic.Int64 // unix ns of the last flush

	// authed is set once the connection is authenticated (dialled, or written to);
	// it only ever goes from false to true.
	authed atomic.Bool
	// Set before, or for timer under the same hold of TCP.mu as, the connection's
	// entry in TCP.conns; read-only afterwards.
	src      netip.Prefix // source group of an accepted connection
	accepted time.Time    // when it was accepted; orders eviction
	timer    *time.Timer  // closes it at the authentication deadline

	// stranger is true while the connection is counted in TCP.strangers and
	// TCP.unauth; guarded by TCP.mu.
	stranger bool

	mu   sync.Mutex
	conn net.Conn
}

// ListenTCP opens a TCP transport listening on addr, "host:port" as for ListenUDP.
// Errors: a malformed address or the operating system's listen error.
func ListenTCP(addr string) (*TCP, error) {
	return listenTCP(addr, defaultLimits)
}

// listenTCP is ListenTCP with the stranger limits given.
func listenTCP(addr string, lim tcpLimits) (*TCP, error) {
	if err := checkListen(addr); err != nil {
		return nil, err
	}
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	ln := l.(*net.TCPListener)
	bound := ln.Addr().(*net.TCPAddr).AddrPort()
	ctx, cancel := context.WithCancel(context.Background())
	t := &TCP{
		ln:        ln,
		local:     "tcp://" + listenAddr(addr, bound).String(),
		v4only:    bound.Addr().Is4() || bound.Addr().Is4In6(),
		lim:       lim,
		ctx:       ctx,
		cancel:    cancel,
		closed:    make(chan struct{}),
		conns:     make(map[Endpoint]*tconn),
		retry:     make(map[Endpoint]retryWait),
		strangers: make(map[netip.Prefix]int),
		in:        make(chan frame, inQueue),
	}
	t.wg.Add(1)
	go t.acceptLoop()
	return t, nil
}

// Network returns "tcp".
func (t *TCP) Network() string { return "tcp" }

// LocalAddr returns "tcp://ip:port" with the port actually bound.
func (t *TCP) LocalAddr() string { return t.local }

// MTU returns TCPMTU, 65535 bytes, for every endpoint: the stream carries any
// frame whole.
func (t *TCP) MTU(to Endpoint) int { return TCPMTU }

// Resolve turns "host:port" into an endpoint, as UDP.Resolve does.
func (t *TCP) Resolve(hostport string) (Endpoint, error) {
	return resolve("tcp", hostport, t.v4only)
}

// ReadFrom blocks until a datagram arrives on any connection, copies it into p and
// returns its length and the connection's endpoint. A datagram longer than p is
// truncated and reported with n == len(p). After Close it returns net.ErrClosed.
func (t *TCP) ReadFrom(p []byte) (int, Endpoint, error) {
	select {
	case <-t.closed:
		return 0, Endpoint{}, net.ErrClosed
	default:
	}
	select {
	case f := <-t.in:
		n := copy(p, *f.buf)
		t.c.inDgrams.Add(1)
		t.c.inBytes.Add(uint64(n))
		putBuf(f.buf)
		return n, f.from, nil
	case <-t.closed:
		return 0, Endpoint{}, net.ErrClosed
	}
}

// WriteTo queues p for the endpoint to and returns at once: it never waits for the
// network. Without a connection to to it starts a dial and queues up to 64 datagrams
// until it completes; a connected peer queues up to 256. Datagrams beyond that, and
// those to an endpoint whose last dial failed within its back-off (250 ms doubling
// to 4 s), are dropped and counted in Stats.Drops. It returns an error only when to
// is not an IP endpoint with a non-zero port, when to is IPv6 and the socket
// IPv4 only, when p is longer than 65535 bytes, or, as net.ErrClosed, after Close.
// Writing to an accepted connection authenticates it (see TCP).
func (t *TCP) WriteTo(p []byte, to Endpoint) error {
	select {
	case <-t.closed:
		return net.ErrClosed
	default:
	}
	ap, err := ipEndpoint(to)
	if err != nil {
		return err
	}
	if t.v4only && !ap.Addr().Is4() {
		return fmt.Errorf("transport: endpoint %q is IPv6 but %s is IPv4 only", to, t.local)
	}
	if len(p) > TCPMTU {
		return fmt.Errorf("transport: datagram of %d bytes exceeds the TCP frame maximum %d", len(p), TCPMTU)
	}
	t.mu.RLock()
	c := t.conns[to]
	t.mu.RUnlock()
	if c == nil {
		if c = t.dial(to); c == nil {
			t.c.drops.Add(1)
			return nil
		}
	}
	if !c.authed.Load() {
		t.authenticate(c)
	}
	limit := tcpQueue
	if c.dialing.Load() {
		limit = dialQueue
	}
	if len(c.q) >= limit {
		t.c.drops.Add(1)
		return nil
	}
	b := getBuf(frameHeader + len(p))
	*b = appendFrame((*b)[:0], p)
	select {
	case c.q <- b:
		select {
		case <-c.done: // torn down meanwhile: drain what drop may have missed
			t.drain(c)
		default:
		}
	default:
		putBuf(b)
		t.c.drops.Add(1)
	}
	return nil
}

// drain drops what c has queued.
func (t *TCP) drain(c *tconn) {
	for {
		select {
		case b := <-c.q:
			putBuf(b)
			t.c.drops.Add(1)
		default:
			return
		}
	}
}

// dial returns the connection to e, starting a dial when there is none; nil when the
// endpoint is backing off, the table is full of authenticated connections, or t is
// closed. A full table with an unauthenticated accepted connection in it evicts that.
func (t *TCP) dial(e Endpoint) *tconn {
	t.mu.Lock()
	select {
	case <-t.closed:
		t.mu.Unlock()
		return nil
	default:
	}
	if c := t.conns[e]; c != nil {
		t.mu.Unlock()
		return c
	}
	if r, ok := t.retry[e]; ok && time.Now().Before(r.until) {
		t.mu.Unlock()
		return nil
	}
	var victim *tconn
	if len(t.conns) >= t.lim.maxConns {
		if victim = t.evictLocked(); victim == nil {
			t.mu.Unlock()
			return nil
		}
	}
	c := newConn(e)
	c.dialing.Store(true)
	c.authed.Store(true) // we chose to dial it
	t.conns[e] = c
	t.c.dials.Add(1)
	t.wg.Add(1) // under t.mu: Close, once it holds t.mu, sees this dial in t.conns
	t.mu.Unlock()
	if victim != nil {
		t.drop(victim, false)
	}
	go func() {
		defer t.wg.Done()
		d := net.Dialer{Timeout: dialTimeout}
		conn, err := d.DialContext(t.ctx, "tcp", e.addr.String())
		if err != nil {
			t.mu.Lock()
			r := t.retry[e]
			r.delay = min(max(2*r.delay, backoffMin), backoffMax)
			r.until = time.Now().Add(r.delay)
			if len(t.retry) >= maxRetry {
				clear(t.retry)
			}
			t.retry[e] = r
			t.mu.Unlock()
			t.drop(c, false)
			t.c.dialFails.Add(1)
			return
		}
		t.mu.Lock()
		delete(t.retry, e)
		t.mu.Unlock()
		t.attach(c, conn)
	}()
	return c
}

func newConn(ep Endpoint) *tconn {
	c := &tconn{ep: ep, q: make(chan *[]byte, tcpQueue), done: make(chan struct{})}
	c.lastWrite.Store(time.Now().UnixNano())
	return c
}

// attach gives c its connection and starts its reader and writer.
func (t *TCP) attach(c *tconn, conn net.Conn) {
	c.mu.Lock()
	select {
	case <-c.done:
		c.mu.Unlock()
		conn.Close()
		return
	default:
	}
	c.conn = conn
	c.mu.Unlock()
	c.dialing.Store(false)
	t.wg.Add(2)
	go t.reader(c, conn)
	go t.writer(c, conn)
}

// drop tears c down: closes its connection, removes it from the table and drops
// what it still had queued. broken counts it in Stats.Errors.
func (t *TCP) drop(c *tconn, broken bool) {
	c.once.Do(func() {
		c.mu.Lock()
		close(c.done)
		conn := c.conn
		c.mu.Unlock()
		if conn != nil {
			conn.Close()
		}
		if c.timer != nil {
			c.timer.Stop()
		}
		t.mu.Lock()
		if t.conns[c.ep] == c {
			delete(t.conns, c.ep)
		}
		t.uncountLocked(c)
		t.mu.Unlock()
		if broken {
			t.c.errs.Add(1)
		}
		t.drain(c)
	})
}

// acceptLoop accepts connections until the listener closes.
func (t *TCP) acceptLoop() {
	defer t.wg.Done()
	for {
		conn, err := t.ln.AcceptTCP()
		if err != nil {
			select {
			case <-t.closed:
				return
			default:
			}
			if isClosed(err) {
				return
			}
			time.Sleep(10 * time.Millisecond) // EMFILE and the like
			continue
		}
		ap := unmap(conn.RemoteAddr().(*net.TCPAddr).AddrPort())
		ep := EndpointOf(ap)
		c := newConn(ep)
		c.src = sourceOf(ap.Addr())
		c.accepted = time.Now()
		t.mu.Lock()
		select {
		case <-t.closed:
			t.mu.Unlock()
			conn.Close()
			return
		default:
		}
		if t.strangers[c.src] >= t.lim.perSource {
			t.mu.Unlock()
			t.c.refusedSource.Add(1) // before the close: whoever sees it closed sees it counted
			conn.Close()
			continue
		}
		old := t.conns[ep]
		var victim *tconn
		if old == nil && len(t.conns) >= t.lim.maxConns {
			if victim = t.evictLocked(); victim == nil {
				t.mu.Unlock()
				t.c.refusedFull.Add(1) // before the close, as above
				conn.Close()
				continue
			}
		}
		t.conns[ep] = c
		c.stranger = true
		t.strangers[c.src]++
		t.unauth++
		// Under t.mu: whoever finds c in the table sees its timer.
		c.timer = time.AfterFunc(t.lim.authTimeout, func() { t.authExpired(c) })
		delete(t.retry, ep)
		t.mu.Unlock()
		if victim != nil {
			t.drop(victim, false)
		}
		if old != nil {
			t.drop(old, false)
		}
		t.attach(c, conn)
	}
}

// sourceOf is the group an accepted connection's address counts against for the
// per-source limit: the IPv4 address itself, or the /64 of an IPv6 address (one
// subscriber or LAN usually holds a whole /64, so counting single IPv6 addresses
// would limit nothing).
func sourceOf(a netip.Addr) netip.Prefix {
	a = a.Unmap().WithZone("")
	bits := 64
	if a.Is4() {
		bits = 32
	}
	p, err := a.Prefix(bits)
	if err != nil { // the zero Addr: never from a real connection
		return netip.Prefix{}
	}
	return p
}

// authenticate marks c authenticated: it no longer counts against the stranger
// limits, cannot be evicted and has no authentication deadline.
func (t *TCP) authenticate(c *tconn) {
	t.mu.Lock()
	c.authed.Store(true)
	t.uncountLocked(c)
	t.mu.Unlock()
	if c.timer != nil {
		c.timer.Stop()
	}
}

// uncountLocked takes c out of the unauthenticated counts if it is in them. t.mu
// must be held.
func (t *TCP) uncountLocked(c *tconn) {
	if !c.stranger {
		return
	}
	c.stranger = false
	t.unauth--
	if n := t.strangers[c.src] - 1; n > 0 {
		t.strangers[c.src] = n
	} else {
		delete(t.strangers, c.src)
	}
}

// authExpired closes c at its authentication deadline unless it was
// authenticated meanwhile. The decision is taken under t.mu, so a connection
// authenticated at the same moment is either kept or was never authenticated.
func (t *TCP) authExpired(c *tconn) {
	t.mu.Lock()
	expired := c.stranger
	if expired {
		if t.conns[c.ep] == c {
			delete(t.conns, c.ep)
		}
		t.uncountLocked(c)
	}
	t.mu.Unlock()
	if expired {
		t.c.authTimeouts.Add(1)
		t.drop(c, false)
	}
}

// evictLocked removes the oldest unauthenticated accepted connection from the
// table and returns it for the caller to drop once t.mu is released; nil when
// every connection is authenticated or dialled. It scans the table, at most
// maxConns entries, only when the table is full. t.mu must be held.
func (t *TCP) evictLocked() *tconn {
	var victim *tconn
	for _, c := range t.conns {
		if c.stranger && (victim == nil || c.accepted.Before(victim.accepted)) {
			victim = c
		}
	}
	if victim == nil {
		return nil
	}
	delete(t.conns, victim.ep)
	t.uncountLocked(victim)
	t.c.evicted.Add(1)
	return victim
}

// reader reads frames from conn into t.in until the connection fails.
func (t *TCP) reader(c *tconn, conn net.Conn) {
	defer t.wg.Done()
	fr := frameReader{r: bufio.NewReaderSize(conn, connBuf)}
	var deadline time.Time
	for {
		if now := time.Now(); now.Add(idleTimeout - time.Second).After(deadline) {
			deadline = now.Add(idleTimeout)
			conn.SetReadDeadline(deadline)
		}
		b, hn, err := fr.next()
		if err != nil {
			idle := hn == 0 && errors.Is(err, os.ErrDeadlineExceeded)
			if idle && time.Since(time.Unix(0, c.lastWrite.Load())) < idleTimeout {
				deadline = time.Time{} // still sending: not idle
				continue
			}
			// Idle between frames, a clean close or our own close is no error; a
			// frame cut short (io.ErrUnexpectedEOF) or a failed read is.
			t.drop(c, !idle && brokenBy(err))
			return
		}
		select {
		case t.in <- frame{buf: b, from: c.ep}:
		case <-t.closed:
			putBuf(b)
			return
		}
	}
}

// writer writes c's queue to conn, batching what is queued into one flush.
func (t *TCP) writer(c *tconn, conn net.Conn) {
	defer t.wg.Done()
	bw := bufio.NewWriterSize(conn, connBuf)
	for {
		var b *[]byte
		select {
		case b = <-c.q:
		case <-c.done:
			return
		}
		conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		for b != nil {
			_, err := bw.Write(*b)
			n := len(*b) - frameHeader
			putBuf(b)
			if err != nil {
				t.c.drops.Add(1)
				t.drop(c, brokenBy(err))
				return
			}
			t.c.outDgrams.Add(1)
			t.c.outBytes.Add(uint64(n))
			select {
			case b = <-c.q:
			default:
				b = nil
			}
		}
		if err := bw.Flush(); err != nil {
			t.drop(c, brokenBy(err))
			return
		}
		c.lastWrite.Store(time.Now().UnixNano())
	}
}

// brokenBy reports whether err is a real failure rather than the peer closing
// cleanly or this side closing.
func brokenBy(err error) bool {
	return !errors.Is(err, io.EOF) && !isClosed(err)
}

// Close stops listening, closes every connection and waits for their goroutines;
// ReadFrom then returns net.ErrClosed. Closing twice returns net.ErrClosed.
func (t *TCP) Close() error {
	err := net.ErrClosed
	t.closeOnce.Do(func() {
		err = nil
		t.mu.Lock()
		close(t.closed)
		conns := make([]*tconn, 0, len(t.conns))
		for _, c := range t.conns {
			conns = append(conns, c)
		}
		t.mu.Unlock()
		t.cancel()
		if e := t.ln.Close(); e != nil {
			err = e
		}
		for _, c := range conns {
			t.drop(c, false)
		}
		t.wg.Wait()
		for {
			select {
			case f := <-t.in:
				putBuf(f.buf)
			default:
				return
			}
		}
	})
	return err
}

// Stats returns the transport's counters.
func (t *TCP) Stats() Stats {
	s := t.c.snapshot()
	t.mu.RLock()
	s.Conns = len(t.conns)
	s.Unauthenticated = t.unauth
	t.mu.RUnlock()
	return s
}

// connected reports whether the connection to endpoint ep is up (for tests).
func (t *TCP) connected(ep Endpoint) bool {
	t.mu.RLock()
	c := t.conns[ep]
	t.mu.RUnlock()
	return c != nil && !c.dialing.Load()
}
