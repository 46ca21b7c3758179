package stream

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Path is one route to the peer, owned by the router.
type Path interface {
	// Send hands one segment to the route. It must not block; it may drop the
	// segment, and returns an error when the route is known to be broken. The
	// Conn never touches seg again after Send returns.
	Send(seg []byte) error
	// MTU is the largest segment the route carries, in bytes.
	MTU() int
	// ID identifies the route stably across calls to Paths.Paths, for per-path
	// state and statistics.
	ID() uint64
}

// Paths gives the current usable routes to the peer; the set changes over time
// (failover, new routes) and may be empty for a while.
type Paths interface {
	// Paths returns the routes usable now. It is called outside the Conn's lock,
	// but never from within Dial or Accept.
	Paths() []Path
}

// Config tunes a Conn. The zero value gives the defaults.
type Config struct {
	// Window is the most bytes in flight (sent, not yet acknowledged) and the
	// size of the send buffer; default 4 MiB, at least MinWindow. A small one
	// suits a path whose queue is its transmitter (a radio link): what is in
	// flight there waits for the air, and a window of minutes of air times
	// out and is sent again while still queued.
	Window int
	// RecvBuffer is the receive buffer, advertised to the peer as its flow
	// control window; default 4 MiB.
	RecvBuffer int
	// MinRTO and MaxRTO bound the retransmission timeout; defaults 50 ms, 2 s.
	// Above 250 ms and 2 s (a slow path: a radio link) they also set the
	// dialler's SYN schedule (MinRTO doubling up to MaxRTO) and the least
	// probe interval while data flows (MinRTO).
	MinRTO, MaxRTO time.Duration
	// KeepAlive is the probe interval on an idle stream; default 2 s.
	KeepAlive time.Duration
	// IdleTimeout fails the Conn with ErrIdleTimeout when nothing at all has
	// been heard from the peer for this long; default 30 s.
	IdleTimeout time.Duration
	// PerHopReliable says the paths keep and resend data at every hop (store
	// and forward): a packet overtaken by later ones is late, held up by a
	// hop's recovery, not lost. Loss is then judged by time only, after two
	// round trips or a round trip plus four deviations (RFC 6298's margin),
	// whichever is longer, not after three later packets.
	PerHopReliable bool
}

// Defaults of Config.
const (
	DefaultWindow      = 4 << 20               // Config.Window
	MinWindow          = 2 << 10               // Config.Window's least
	DefaultRecvBuffer  = 4 << 20               // Config.RecvBuffer
	DefaultMinRTO      = 50 * time.Millisecond // Config.MinRTO
	DefaultMaxRTO      = 2 * time.Second       // Config.MaxRTO
	DefaultKeepAlive   = 2 * time.Second       // Config.KeepAlive
	DefaultIdleTimeout = 30 * time.Second      // Config.IdleTimeout
)

func (c Config) withDefaults() Config {
	if c.Window <= 0 {
		c.Window = DefaultWindow
	}
	if c.Window < MinWindow {
		c.Window = MinWindow
	}
	if c.RecvBuffer <= 0 {
		c.RecvBuffer = DefaultRecvBuffer
	}
	if c.RecvBuffer < 16<<10 {
		c.RecvBuffer = 16 << 10
	}
	if c.MinRTO <= 0 {
		c.MinRTO = DefaultMinRTO
	}
	if c.MaxRTO <= 0 {
		c.MaxRTO = DefaultMaxRTO
	}
	if c.MaxRTO < c.MinRTO {
		c.MaxRTO = c.MinRTO
	}
	if c.KeepAlive <= 0 {
		c.KeepAlive = DefaultKeepAlive
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	return c
}

// Errors a Conn reports.
var (
	// ErrReset means the peer aborted the stream.
	ErrReset = errors.New("stream: connection reset by peer")
	// ErrIdleTimeout means nothing was heard from the peer for
	// Config.IdleTimeout; it is a net.Error whose Timeout is true.
	ErrIdleTimeout net.Error = idleTimeoutError{}
	// ErrNotSYN is returned by Accept for a segment that does not open a stream.
	ErrNotSYN = errors.New("stream: not an opening segment")
)

type idleTimeoutError struct{}

// Error describes the timeout.
func (idleTimeoutError) Error() string { return "stream: idle timeout, peer unreachable" }

// Timeout is true: the error is a timeout.
func (idleTimeoutError) Timeout() bool { return true }

// Temporary is true, as for other timeouts.
func (idleTimeoutError) Temporary() bool { return true }

// Tuning constants.
const (
	maxAckDelay      = 10 * time.Millisecond
	initialRTT       = 100 * time.Millisecond
	initialRTO       = time.Second
	initialCwndPkts  = 32
	minCwndPkts      = 16
	activeProbeIdle  = 300 * time.Millisecond
	maxProbeInterval = time.Second
	pathPoll         = 50 * time.Millisecond
	synRetryFirst    = 250 * time.Millisecond
	synRetryMax      = 2 * time.Second
	finLinger        = 2 * time.Second
	minUsableMTU     = minSegment + ackFixedLen + 32 + dataHdrLen + 16
	maxBatch         = 256
	recvRangesKept   = 1024
	recentPNs        = 64
	pureAckRanges    = 48
	piggyAckRanges   = 12
)

type connState uint8

const (
	stateSynSent connState = iota
	stateEstablished
	stateDone
)

// Conn is a reliable, ordered byte stream over one or more unreliable datagram
// paths. It implements net.Conn. Its methods are safe for concurrent use.
type Conn struct {
	paths         Paths
	local, remote net.Addr
	cfg           Config
	dialer        bool

	done      chan struct{}
	timer     *time.Timer
	invalid   atomic.Uint64 // segments that failed to decode
	closeOnce sync.Once
	sendMu    sync.Mutex  // held while building and sending
	pumpReq   atomic.Bool // a pump is wanted

	mu       sync.Mutex
	state    connState
	connID   uint32
	err      error // why the stream ended, if it failed
	armed    time.Time
	rwait    chan struct{} // closed to wake blocked readers
	wwait    chan struct{} // closed to wake blocked writers
	closed   bool          // Close was called
	rdl, wdl time.Time     // deadlines
	created  time.Time
	lastRecv time.Time

	// paths
	byID      map[uint64]*pathState
	present   []*pathState // in the order Paths returned them
	ackRR     int
	paceAt    time.Time // a paced path becomes ready
	noPathsAt time.Time // polling for paths

	// send side
	nextPN     uint64
	sent       []sentPacket // packet numbers sentBase .. nextPN-1
	sentBase   uint64
	inflight   int
	sbuf       []byte // bytes sndUna .. written-1
	sndUna     uint64 // every byte below has been acknowledged
	sndNxt     uint64 // next byte never sent
	written    uint64 // bytes accepted by Write
	acked      spanSet
	rtx        []rtxRange
	peerMax    uint64
	synNext    time.Time
	synTries   int
	synAck     bool // acceptor: reply with SYN|ACK
	finState   finState
	finOff     uint64
	finOut     int // FIN-carrying packets in flight
	finFirst   time.Time
	finAckedAt time.Time
	timeWait   time.Time // when a fully closed stream is forgotten
	rstPending bool

	// receive side
	recvd        spanSet // packet numbers received
	hasRecv      bool
	largestRecv  uint64
	largestAt    time.Time
	recent       [recentPNs]uint64
	recentN      int
	ackElicit    int // ack-eliciting packets not yet acknowledged
	ackNow       bool
	ackDeadline  time.Time
	rbuf         []byte // in-order bytes not yet read
	rcvNxt       uint64 // next in-order byte expected
	consumed     uint64 // bytes handed to Read (or discarded after Close)
	ooo          []chunk
	advertised   uint64
	peerFin      bool
	peerFinal    uint64
	lastDataRecv time.Time

	st Stats
}

type finState uint8

const (
	finNone    finState = iota
	finPending          // to be sent
	finSent             // in flight
	finAcked            // acknowledged
)

type chunk struct {
	off  uint64
	data []byte
}

type rtxRange struct {
	lo, hi uint64
	avoid  uint64 // the path that lost it
}

// Dial opens a stream actively: it sends SYN over every path and retries until
// the peer answers or Config.IdleTimeout passes. It does not block; Read and
// Write block until the stream is established or has failed.
func Dial(paths Paths, local, remote net.Addr, cfg Config) *Conn {
	c := newConn(paths, local, remote, cfg, true)
	var b [4]byte
	rand.Read(b[:])
	c.connID = binary.BigEndian.Uint32(b[:])
	c.synNext = c.created
	c.start()
	return c
}

// Accept opens a stream passively from its first segment syn (for which IsSYN
// is true), answering with SYN|ACK. The router delivers the stream's later
// segments to Deliver.
func Accept(paths Paths, local, remote net.Addr, cfg Config, syn []byte) (*Conn, error) {
	var s segment
	if s.decode(syn) != nil || s.flags&flagSYN == 0 || s.flags&flagACK != 0 {
		return nil, ErrNotSYN
	}
	c := newConn(paths, local, remote, cfg, false)
	c.connID = s.conn
	c.state = stateEstablished
	c.mu.Lock()
	c.processLocked(&s, c.created)
	c.mu.Unlock()
	c.start()
	return c, nil
}

func newConn(paths Paths, local, remote net.Addr, cfg Config, dialer bool) *Conn {
	now := time.Now()
	c := &Conn{
		paths:    paths,
		local:    local,
		remote:   remote,
		cfg:      cfg.withDefaults(),
		dialer:   dialer,
		done:     make(chan struct{}),
		created:  now,
		lastRecv: now,
		byID:     make(map[uint64]*pathState),
	}
	c.advertised = uint64(c.cfg.RecvBuffer)
	return c
}

// start runs the Conn's one timer goroutine; its first tick sends the opening
// segment (never from within Dial or Accept, whose callers may hold locks that
// Paths needs).
func (c *Conn) start() {
	c.timer = time.NewTimer(0)
	c.armed = c.created
	go c.run()
}

func (c *Conn) run() {
	for {
		select {
		case <-c.timer.C:
			c.pump()
		case <-c.done:
			c.timer.Stop()
			return
		}
	}
}

// Done returns a channel closed once the stream has ended for good: closed on
// both sides, reset, or timed out. The router forgets the stream then.
func (c *Conn) Done() <-chan struct{} { return c.done }

// LocalAddr returns the local address given to Dial or Accept.
func (c *Conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr returns the peer's address given to Dial or Accept.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.rdl, c.wdl = t, t
	c.wakeLocked()
	c.mu.Unlock()
	return nil
}

// SetReadDeadline sets the deadline for Read calls, pending ones included.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.rdl = t
	c.wakeLocked()
	c.mu.Unlock()
	return nil
}

// SetWriteDeadline sets the deadline for Write calls, pending ones included.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.wdl = t
	c.wakeLocked()
	c.mu.Unlock()
	return nil
}

// wakeLocked wakes every blocked Read and Write to re-check their condition.
func (c *Conn) wakeLocked() {
	c.wakeReadLocked()
	c.wakeWriteLocked()
}

func (c *Conn) wakeReadLocked() {
	if c.rwait != nil {
		close(c.rwait)
		c.rwait = nil
	}
}

func (c *Conn) wakeWriteLocked() {
	if c.wwait != nil {
		close(c.wwait)
		c.wwait = nil
	}
}

// waitLocked releases the lock until *ch is closed or deadline passes.
func (c *Conn) waitLocked(ch *chan struct{}, deadline time.Time) {
	if *ch == nil {
		*ch = make(chan struct{})
	}
	w := *ch
	c.mu.Unlock()
	if deadline.IsZero() {
		<-w
	} else {
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-w:
		case <-t.C:
		}
		t.Stop()
	}
	c.mu.Lock()
}

// Read reads in-order stream bytes. It returns io.EOF after the peer's FIN and
// all data before it, os.ErrDeadlineExceeded past the read deadline, and the
// stream's error once it failed (after any bytes still buffered).
func (c *Conn) Read(b []byte) (int, error) {
	c.mu.Lock()
	for {
		if c.closed {
			c.mu.Unlock()
			return 0, net.ErrClosed
		}
		if len(c.rbuf) > 0 {
			if len(b) == 0 {
				c.mu.Unlock()
				return 0, nil
			}
			n := copy(b, c.rbuf)
			c.rbuf = c.rbuf[n:]
			if len(c.rbuf) == 0 {
				c.rbuf = c.rbuf[:0:0]
			}
			c.consumed += uint64(n)
			update := c.state == stateEstablished && c.recvLimit()-c.advertised >= uint64(c.cfg.RecvBuffer/4)
			if update {
				c.ackNow = true
			}
			c.mu.Unlock()
			if update {
				c.pump()
			}
			return n, nil
		}
		if c.peerFin && c.rcvNxt == c.peerFinal {
			c.mu.Unlock()
			return 0, io.EOF
		}
		if c.state == stateDone {
			err := c.err
			c.mu.Unlock()
			if err == nil {
				err = io.EOF
			}
			return 0, err
		}
		if !c.rdl.IsZero() && !time.Now().Before(c.rdl) {
			c.mu.Unlock()
			return 0, os.ErrDeadlineExceeded
		}
		c.waitLocked(&c.rwait, c.rdl)
	}
}

// Write queues b for reliable delivery, blocking while the send buffer
// (Config.Window) is full or the stream is not yet established.
func (c *Conn) Write(b []byte) (int, error) {
	n := 0
	c.mu.Lock()
	for {
		if c.closed {
			c.mu.Unlock()
			return n, net.ErrClosed
		}
		if c.state == stateDone {
			err := c.err
			if err == nil {
				err = net.ErrClosed
			}
			c.mu.Unlock()
			return n, err
		}
		if n == len(b) {
			c.mu.Unlock()
			return n, nil
		}
		if c.state == stateEstablished && len(c.sbuf) < c.cfg.Window {
			k := min(len(b)-n, c.cfg.Window-len(c.sbuf))
			c.sbuf = append(c.sbuf, b[n:n+k]...)
			c.written += uint64(k)
			c.st.BytesWritten += uint64(k)
			n += k
			c.mu.Unlock()
			c.pump()
			c.mu.Lock()
			continue
		}
		if !c.wdl.IsZero() && !time.Now().Before(c.wdl) {
			c.mu.Unlock()
			return n, os.ErrDeadlineExceeded
		}
		c.waitLocked(&c.wwait, c.wdl)
	}
}

// Close ends the stream gracefully: data already written is still delivered,
// followed by a FIN, in the background; Close does not wait for it. Read and
// Write fail with net.ErrClosed from now on; bytes arriving later are
// acknowledged and dropped. Done is closed once both FINs are through.
func (c *Conn) Close() error {
	first := false
	c.closeOnce.Do(func() { first = true })
	if !first {
		return net.ErrClosed
	}
	c.mu.Lock()
	c.closed = true
	c.consumed += uint64(len(c.rbuf))
	c.rbuf = nil
	c.wakeLocked()
	switch {
	case c.state == stateSynSent && c.synTries == 0:
		c.finishLocked(nil) // the peer never heard of us
	case c.state != stateDone:
		// While dialing, the FIN follows establishment.
		c.finState = finPending
		c.finOff = c.written
		c.ackNow = true // open the window for whatever the peer still sends
	}
	c.mu.Unlock()
	c.pump()
	return nil
}

// finishLocked ends the stream for good and releases its buffers.
func (c *Conn) finishLocked(err error) {
	if c.state == stateDone {
		return
	}
	c.state = stateDone
	c.err = err
	close(c.done)
	if c.timer != nil {
		c.timer.Stop()
	}
	c.wakeLocked()
	c.sent, c.sbuf, c.ooo, c.rtx = nil, nil, nil, nil
	c.acked, c.recvd = spanSet{}, spanSet{}
	for _, x := range c.byID {
		x.queue, x.qhead, x.inflight = nil, 0, 0
	}
	c.inflight = 0
}

// Deliver hands the Conn one arriving segment of its stream; from is the path
// it came on, if known (it may be nil). Malformed or foreign segments are
// counted and dropped.
func (c *Conn) Deliver(seg []byte, from Path) {
	var s segment
	if s.decode(seg) != nil {
		c.invalid.Add(1)
		return
	}
	c.mu.Lock()
	if c.state == stateDone {
		c.mu.Unlock()
		return
	}
	if s.conn != c.connID {
		c.mu.Unlock()
		c.invalid.Add(1)
		return
	}
	c.processLocked(&s, time.Now())
	c.mu.Unlock()
	c.pump()
}

// processLocked applies one valid segment of this stream.
func (c *Conn) processLocked(s *segment, now time.Time) {
	c.lastRecv = now
	c.st.SegmentsReceived++
	if s.flags&flagRST != 0 {
		c.finishLocked(ErrReset)
		return
	}
	if c.state == stateSynSent {
		// Only the acceptor knows our conn ID: anything from it establishes.
		c.state = stateEstablished
		c.wakeLocked()
	}
	if !c.dialer && s.flags&flagSYN != 0 && s.flags&flagACK == 0 {
		c.synAck = true
	}
	if s.maxData > c.peerMax {
		c.peerMax = s.maxData
	}
	if s.flags&flagACK != 0 {
		c.onAckLocked(&s.ack, now)
		if c.state == stateDone {
			return
		}
	}
	eliciting := s.flags&(flagSYN|flagDATA|flagPING) != 0
	if eliciting && !c.timeWait.IsZero() {
		// The peer is still retransmitting or probing, so it has not heard
		// our final acknowledgement: answer at once and stay until it has.
		c.ackNow = true
		c.timeWait = later(c.timeWait, now.Add(c.timeWaitForLocked()))
	}
	if c.recvd.contains(s.pn) {
		c.st.SegmentsDuplicate++
		if eliciting {
			c.ackNow = true
		}
		return
	}
	outOfOrder := false
	if s.flags&flagDATA != 0 {
		ok, ooo := c.onDataLocked(s.off, s.data, s.flags&flagFIN != 0, now)
		if !ok {
			return // not accepted: do not acknowledge it
		}
		outOfOrder = ooo
	}
	c.recvd.add(s.pn, s.pn+1)
	c.recvd.keepTop(recvRangesKept)
	c.recent[c.recentN%recentPNs] = s.pn
	c.recentN++
	if !c.hasRecv || s.pn > c.largestRecv {
		if c.hasRecv && s.pn != c.largestRecv+1 {
			outOfOrder = true
		}
		c.hasRecv = true
		c.largestRecv = s.pn
		c.largestAt = now
	} else {
		outOfOrder = true
	}
	if eliciting {
		if c.ackElicit == 0 {
			c.ackDeadline = now.Add(maxAckDelay)
		}
		c.ackElicit++
		if c.ackElicit >= 2 || outOfOrder || s.flags&(flagSYN|flagFIN|flagPING) != 0 {
			c.ackNow = true
		}
	}
}

// recvLimit is the flow-control limit we grant: one receive buffer beyond
// what the application has consumed.
func (c *Conn) recvLimit() uint64 { return c.consumed + uint64(c.cfg.RecvBuffer) }

// onDataLocked takes a data section. It reports whether the packet may be
// acknowledged, and whether the data arrived out of order.
func (c *Conn) onDataLocked(off uint64, data []byte, fin bool, now time.Time) (ok, outOfOrder bool) {
	end := off + uint64(len(data))
	if end > c.recvLimit() {
		return false, false // beyond the window we granted: drop it whole
	}
	if c.peerFin && end > c.peerFinal {
		return false, false
	}
	if fin {
		if c.peerFin && c.peerFinal != end {
			return false, false
		}
		if end < c.rcvNxt || (len(c.ooo) > 0 && c.ooo[len(c.ooo)-1].off+uint64(len(c.ooo[len(c.ooo)-1].data)) > end) {
			return false, false // a FIN below data already received
		}
		if !c.peerFin {
			c.peerFin, c.peerFinal = true, end
			c.wakeReadLocked()
		}
	}
	if len(data) == 0 {
		return true, false
	}
	c.lastDataRecv = now
	if end <= c.rcvNxt {
		c.st.BytesDuplicate += uint64(len(data))
		return true, true
	}
	if off > c.rcvNxt {
		c.insertOOOLocked(off, data)
		return true, true
	}
	fresh := data[c.rcvNxt-off:]
	c.st.BytesDuplicate += uint64(len(data) - len(fresh))
	c.appendInOrderLocked(fresh)
	for len(c.ooo) > 0 && c.ooo[0].off <= c.rcvNxt {
		ch := c.ooo[0]
		c.ooo[0] = chunk{}
		c.ooo = c.ooo[1:]
		if e := ch.off + uint64(len(ch.data)); e > c.rcvNxt {
			c.appendInOrderLocked(ch.data[c.rcvNxt-ch.off:])
		}
	}
	if len(c.ooo) == 0 {
		c.ooo = nil
	}
	return true, false
}

func (c *Conn) appendInOrderLocked(b []byte) {
	c.rcvNxt += uint64(len(b))
	c.st.BytesReceived += uint64(len(b))
	if c.closed {
		c.consumed = c.rcvNxt // nobody reads any more
		return
	}
	c.rbuf = append(c.rbuf, b...)
	c.wakeReadLocked()
}

// insertOOOLocked stores data at off (> rcvNxt), keeping only bytes not yet held.
func (c *Conn) insertOOOLocked(off uint64, data []byte) {
	i := 0
	for lo, hi := 0, len(c.ooo); lo < hi; {
		m := (lo + hi) / 2
		if c.ooo[m].off+uint64(len(c.ooo[m].data)) > off {
			hi = m
		} else {
			lo = m + 1
		}
		i = lo
	}
	dup := 0
	for len(data) > 0 {
		if i == len(c.ooo) || off+uint64(len(data)) <= c.ooo[i].off {
			c.insertChunk(i, off, data)
			break
		}
		ch := c.ooo[i]
		if off < ch.off {
			k := ch.off - off
			c.insertChunk(i, off, data[:k])
			i++
			data, off = data[k:], ch.off
			continue
		}
		skip := min(uint64(len(data)), ch.off+uint64(len(ch.data))-off)
		dup += int(skip)
		data, off = data[skip:], off+skip
		i++
	}
	c.st.BytesDuplicate += uint64(dup)
}

func (c *Conn) insertChunk(i int, off uint64, data []byte) {
	cp := make([]byte, len(data))
	copy(cp, data)
	c.ooo = append(c.ooo, chunk{})
	copy(c.ooo[i+1:], c.ooo[i:])
	c.ooo[i] = chunk{off, cp}
}
