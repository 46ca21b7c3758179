// Package radio carries the mesh router's link datagrams over an amateur-radio
// channel: it implements forward.Transport (services/mesh/forward/transport.go)
// for the "kiss+tcp://" and "kiss+serial://" entries of fleet.toml [node]
// listen, on top of the drivers in drivers/radio.
//
// Each datagram is cut into at most 16 AX.25 UI frames (PID 0xF0) of at most
// paclen info bytes, sent from the operator's callsign to the neighbour's, and
// joined again on the other side (frag.go has the format). An endpoint is a
// callsign with its SSID (transport.NamedEndpoint("N0CALL-7")); "QST" reaches
// every station listening.
//
// Amateur rules (47 CFR 97.119): every frame carries the operator's callsign
// as its AX.25 source, and the transport sends an identification frame (to
// "ID", the callsign in clear text) before its first frame and then at least
// every 10 minutes while it transmits. Without a callsign it receives but
// refuses to transmit (ErrNoCallsign). What the router puts in the frames is
// its business: on an amateur link it must be in clear (47 CFR 97.113(a)(4)).
//
// Writes never block: datagrams wait in a bounded queue for the channel, and
// beyond it are dropped and counted, as a datagram network would. A TNC that
// goes away (Dire Wolf restarted, a USB serial cable pulled) is reopened with
// a back-off while the transport runs.
package radio

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skyfleet/skyfleet/drivers/radio/ax25"
	"github.com/skyfleet/skyfleet/services/mesh/link"
	"github.com/skyfleet/skyfleet/services/mesh/transport"
)

// Port is one radio channel as the transport sees it: whole AX.25 frames, from
// the destination address to the FCS, in and out. A KISS TNC and the built-in
// modem are ports. The transport owns this interface.
type Port interface {
	// Send transmits one frame; it may block while the channel is busy.
	Send(frame []byte) error
	// Receive blocks until a frame is heard and returns it (valid until the
	// next call). Errors: the port broke or was closed.
	Receive() ([]byte, error)
	// Close stops the port and unblocks Receive.
	Close() error
}

// PortStats are what a port counts below the frames: a modem knows the FCS
// errors and the airtime; a KISS TNC only the frames its stream garbled.
type PortStats struct {
	// FCSErrors counts frames the demodulator heard whose FCS failed (0 for
	// a KISS TNC, which drops them unseen).
	FCSErrors uint64 `json:"fcs_errors"`
	// FramingErrors counts KISS frames the stream garbled (bad escapes,
	// oversize).
	FramingErrors uint64 `json:"framing_errors"`
	// BusyTime is how long carrier sense found the channel busy; Airtime how
	// long this node's transmitter was keyed. 0 when the port cannot tell.
	BusyTime time.Duration `json:"busy_time_ns"`
	Airtime  time.Duration `json:"airtime_ns"`
}

// StatsPort is a Port that counts what happens below the frames.
type StatsPort interface {
	Port
	PortStats() PortStats
}

// Errors of WriteTo.
var (
	// ErrNoCallsign: fleet.toml [radio] callsign is not set, and nothing may
	// be transmitted without it (47 CFR 97.119).
	ErrNoCallsign = errors.New("radio: no callsign: set [radio] callsign in fleet.toml to transmit")
	// ErrTooLong: the datagram does not fit 16 frames of paclen bytes.
	ErrTooLong = errors.New("radio: datagram too long for the channel")
)

// Defaults.
const (
	// DefaultPaclen is the info bytes per frame: AX.25's default N1.
	DefaultPaclen = 256
	// DefaultBitRate is the channel's bit rate, for the airtime estimate of a
	// port that cannot measure it: AFSK 1200.
	DefaultBitRate = 1200
	// IDInterval is the longest time between two identifications while
	// transmitting (47 CFR 97.119(a)).
	IDInterval = 10 * time.Minute
	// MTU is the largest datagram in bytes: what a UDP datagram carries, plus
	// room for the signature that a clear session puts where an encrypted one
	// puts its tag, twice (the link session around route data, and the
	// end-to-end session inside it): 1452 + 2×(65-16) = 1550, 7 frames at the
	// default paclen. So a route payload that fits a UDP link fits here too.
	MTU = transport.UDPMTU + 2*(link.SigLen-link.TagLen)
	// MinPaclen is the smallest paclen: 16 frames of it carry MTU.
	MinPaclen = (MTU+MaxFragments-1)/MaxFragments + fragHeader
	// queueLen bounds the datagrams waiting for the channel.
	queueLen = 32
	// Broadcast is the endpoint name that every station hears.
	Broadcast = "QST"
)

// Config is how a Transport talks on its channel.
type Config struct {
	// URL is the fleet.toml listen entry, for LocalAddr and logs.
	URL string
	// Callsign is the operator's callsign and the node's SSID; the zero
	// Address makes the transport receive-only.
	Callsign ax25.Address
	// Open opens the port, and again after it broke. ctx ends with Close.
	Open func(ctx context.Context) (Port, error)
	// Paclen is the most info bytes per frame (header included); 0 means
	// DefaultPaclen. At least MinPaclen (102), so that a datagram of MTU
	// bytes fits its 16 fragments.
	Paclen int
	// BitRate is the channel's bits per second for the airtime estimate of
	// a port without its own; 0 means DefaultBitRate.
	BitRate int
	// TXDelay is the preamble before each transmission, for the same
	// estimate.
	TXDelay time.Duration
	// Pace holds each frame back until the ones before it are on the air by
	// the airtime estimate: for a KISS TNC, which takes frames faster than it
	// sends them. The backlog then waits here, where the router sees it
	// (WaitRoom), and not in the TNC's queue. A modem port blocks in Send for
	// the real airtime and needs no pacing.
	Pace bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logf, if set, gets a line when the port breaks or reopens.
	Logf func(format string, args ...any)
}

// Stats are the transport's counters since it was opened.
type Stats struct {
	FramesIn  uint64 `json:"frames_in"`
	FramesOut uint64 `json:"frames_out"`
	// Foreign counts frames heard that were not Skyfleet fragments for this
	// node: other stations' traffic, APRS, IDs, frames for other callsigns.
	Foreign uint64 `json:"foreign"`
	// BadFrames counts frames that did not decode (a malformed address, a
	// frame type other than UI) or carried a malformed fragment.
	BadFrames    uint64 `json:"bad_frames"`
	DatagramsIn  uint64 `json:"datagrams_in"`
	DatagramsOut uint64 `json:"datagrams_out"`
	// Incomplete counts datagrams dropped with fragments missing after 90 s
	// or to make room.
	Incomplete uint64 `json:"incomplete"`
	// Drops counts datagrams WriteTo accepted but did not send: a full queue,
	// a broken port.
	Drops uint64 `json:"drops"`
	// NoCallsign counts datagrams refused because no callsign is set.
	NoCallsign uint64 `json:"no_callsign"`
	// IDs counts identification frames sent.
	IDs uint64 `json:"ids"`
	// Reopens counts times the port broke and was opened again.
	Reopens uint64 `json:"reopens"`
	// PortError, when not "", is why the channel is down: the TNC, serial
	// port or sound card did not open (it is tried again, up to every 30 s)
	// or broke.
	PortError string `json:"port_error,omitempty"`
	// EstimatedAirtime is the airtime of the frames sent, from their bits at
	// the bit rate plus TXDELAY per transmission, for a port that cannot
	// measure it.
	EstimatedAirtime time.Duration `json:"estimated_airtime_ns"`
	PortStats
}

type outgoing struct {
	p  []byte
	to ax25.Address
}

type received struct {
	p    []byte
	from transport.Endpoint
}

// Transport is a radio channel under the mesh router.
type Transport struct {
	cfg    Config
	paclen int
	ctx    context.Context
	cancel context.CancelFunc

	out chan outgoing
	in  chan received

	mu     sync.Mutex
	port   Port
	closed bool

	num    atomic.Uint32 // datagram numbers, from a random start
	lastID time.Time     // the last ID sent, zero before the first; sender goroutine only
	// onAir is when the frames handed to a paced port are estimated to be
	// sent (wall clock). The sender moves it on with each frame it hands
	// over, the receiver with each frame heard meanwhile (the channel is half
	// duplex: the TNC holds ours while another station transmits).
	airMu sync.Mutex
	onAir time.Time

	// roomMu guards room, closed and replaced each time the sender takes a
	// datagram off the queue (WaitRoom).
	roomMu sync.Mutex
	room   chan struct{}

	framesIn, framesOut, foreign, bad   atomic.Uint64
	dgramsIn, dgramsOut, drops, noCall  atomic.Uint64
	idCount, reopens, incomplete, airNS atomic.Uint64
	// portErr is why the port is down (nil while it is open).
	portErr atomic.Pointer[error]

	wg sync.WaitGroup
}

// downPort stands in for a port that did not open: every call fails with
// why, so the receiver goes straight to reopening it and datagrams are
// dropped (counted) until it opens.
type downPort struct{ why error }

func (d downPort) Send([]byte) error        { return d.why }
func (d downPort) Receive() ([]byte, error) { return nil, d.why }
func (d downPort) Close() error             { return nil }

// New starts a transport on the port cfg.Open opens, now and again whenever it
// breaks. A port that does not open at first (a TNC not yet running, a USB
// sound dongle not plugged in) is tried again in the background, from 1 s
// to every 30 s, as a broken one is: the node runs meanwhile, and
// Stats.PortError and the log say why the channel is down. Errors: a bad
// Paclen.
func New(cfg Config) (*Transport, error) {
	if cfg.Paclen == 0 {
		cfg.Paclen = DefaultPaclen
	}
	if cfg.Paclen < MinPaclen || cfg.Paclen > ax25.MaxInfo {
		return nil, fmt.Errorf("radio: paclen %d (%d to %d)", cfg.Paclen, MinPaclen, ax25.MaxInfo)
	}
	if cfg.BitRate == 0 {
		cfg.BitRate = DefaultBitRate
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	port, err := cfg.Open(ctx)
	if err != nil {
		port = downPort{err}
	}
	t := &Transport{cfg: cfg, paclen: cfg.Paclen, ctx: ctx, cancel: cancel,
		out: make(chan outgoing, queueLen), in: make(chan received, queueLen), port: port,
		room: make(chan struct{})}
	var b [2]byte
	rand.Read(b[:])
	t.num.Store(uint32(binary.BigEndian.Uint16(b[:])))
	if err != nil {
		t.portErr.Store(&err)
	}
	t.wg.Add(2)
	go t.receive(port)
	go t.send()
	return t, nil
}

// Network is the URL scheme family: "kiss".
func (t *Transport) Network() string {
	scheme, _, _ := strings.Cut(t.cfg.URL, "://")
	family, _, _ := strings.Cut(scheme, "+")
	return family
}

// Amateur reports true: the router keeps this channel's links clear and slow
// (services/mesh/forward/transport.go).
func (t *Transport) Amateur() bool { return true }

// URL is the fleet.toml listen entry the transport was opened from.
func (t *Transport) URL() string { return t.cfg.URL }

// Callsign is the AX.25 source address of what the transport sends, as
// CALL-SSID; "" when it has none and only receives.
func (t *Transport) Callsign() string {
	if t.cfg.Callsign.Call == "" {
		return ""
	}
	return t.cfg.Callsign.String()
}

// LocalAddr is the listen entry and the callsign: "kiss+tcp://127.0.0.1:8001 as N0CALL-7".
func (t *Transport) LocalAddr() string {
	if t.cfg.Callsign.Call == "" {
		return t.cfg.URL + " (receive only: no callsign)"
	}
	return t.cfg.URL + " as " + t.cfg.Callsign.String()
}

// ReadFrom blocks until a whole datagram addressed to this node (or to QST)
// arrives, copies it into p and returns its length and the sender's callsign.
// A datagram longer than p is truncated. After Close it returns net.ErrClosed.
func (t *Transport) ReadFrom(p []byte) (int, transport.Endpoint, error) {
	select {
	case r := <-t.in:
		return copy(p, r.p), r.from, nil
	case <-t.ctx.Done():
		return 0, transport.Endpoint{}, net.ErrClosed
	}
}

// WriteTo queues datagram p for the station to (a callsign, or QST). Errors:
// ErrNoCallsign, ErrTooLong, an endpoint that is not a callsign, or
// net.ErrClosed; a full queue drops the datagram silently (counted).
func (t *Transport) WriteTo(p []byte, to transport.Endpoint) error {
	if t.ctx.Err() != nil {
		return net.ErrClosed
	}
	if t.cfg.Callsign.Call == "" {
		t.noCall.Add(1)
		return ErrNoCallsign
	}
	dst, err := ax25.ParseAddress(to.Name())
	if err != nil {
		return fmt.Errorf("radio: endpoint %q is not a callsign: %w", to, err)
	}
	if len(p) > t.maxDatagram() {
		return fmt.Errorf("%w: %d bytes (at most %d)", ErrTooLong, len(p), t.maxDatagram())
	}
	select {
	case t.out <- outgoing{p: append([]byte(nil), p...), to: dst}:
	default:
		t.drops.Add(1)
	}
	return nil
}

// roomAhead is how many datagrams may wait for the channel before WaitRoom
// holds its caller: one on the air and one ready to follow it.
const roomAhead = 1

// WaitRoom blocks until fewer than roomAhead datagrams wait for the channel, or
// stop is closed or the transport closes (then false). The router calls it
// before it builds a datagram for a radio link (forward.flowControlled): what
// it would have queued meanwhile goes into that datagram, so acknowledgements
// and pings ride together under one signature instead of filling the channel
// one by one.
func (t *Transport) WaitRoom(stop <-chan struct{}) bool {
	for {
		t.roomMu.Lock()
		room := t.room
		t.roomMu.Unlock()
		if len(t.out) < roomAhead {
			return true
		}
		select {
		case <-room:
		case <-stop:
			return false
		case <-t.ctx.Done():
			return false
		}
	}
}

// roomMade wakes WaitRoom's callers: a datagram left the queue.
func (t *Transport) roomMade() {
	t.roomMu.Lock()
	close(t.room)
	t.room = make(chan struct{})
	t.roomMu.Unlock()
}

// maxDatagram is what 16 frames carry.
func (t *Transport) maxDatagram() int { return MaxFragments * (t.paclen - fragHeader) }

// Resolve turns a configured callsign ("N0CALL-7", "QST") into its endpoint.
func (t *Transport) Resolve(call string) (transport.Endpoint, error) {
	a, err := ax25.ParseAddress(call)
	if err != nil {
		return transport.Endpoint{}, fmt.Errorf("radio: %q is not a callsign: %w", call, err)
	}
	return transport.NamedEndpoint(a.String()), nil
}

// MTU is the largest datagram WriteTo takes, MTU bytes (paclen is at least
// MinPaclen, so 16 frames carry it).
func (t *Transport) MTU(transport.Endpoint) int { return MTU }

// Close stops the transport and its port.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	port := t.port
	t.mu.Unlock()
	t.cancel()
	err := port.Close()
	t.wg.Wait()
	return err
}

// Stats returns the counters, and the port's own when it has them.
func (t *Transport) Stats() Stats {
	s := Stats{
		FramesIn: t.framesIn.Load(), FramesOut: t.framesOut.Load(),
		Foreign: t.foreign.Load(), BadFrames: t.bad.Load(),
		DatagramsIn: t.dgramsIn.Load(), DatagramsOut: t.dgramsOut.Load(),
		Incomplete: t.incomplete.Load(), Drops: t.drops.Load(), NoCallsign: t.noCall.Load(),
		IDs: t.idCount.Load(), Reopens: t.reopens.Load(),
		EstimatedAirtime: time.Duration(t.airNS.Load()),
	}
	if e := t.portErr.Load(); e != nil {
		s.PortError = (*e).Error()
	}
	t.mu.Lock()
	if sp, ok := t.port.(StatsPort); ok {
		s.PortStats = sp.PortStats()
	}
	t.mu.Unlock()
	return s
}

// ChannelStats is Stats for the router's /mesh/links (forward.LinkStatus).
func (t *Transport) ChannelStats() any { return t.Stats() }

// current returns the open port.
func (t *Transport) current() Port {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.port
}

// receive reads frames from port, and from each port that replaces it after a
// break, until Close.
func (t *Transport) receive(port Port) {
	defer t.wg.Done()
	asm := newReassembler()
	var reported uint64
	for {
		frame, err := port.Receive()
		if err != nil {
			if port = t.reopen(port, err); port == nil {
				return
			}
			continue
		}
		t.framesIn.Add(1)
		t.heard(len(frame))
		now := t.cfg.Now()
		f, err := ax25.Decode(frame)
		if err != nil {
			t.bad.Add(1)
			continue
		}
		if !t.forMe(f.Dst) || f.PID != ax25.PIDNoLayer3 {
			t.foreign.Add(1)
			continue
		}
		frag, err := parseFragment(f.Info)
		if errors.Is(err, errNotFragment) {
			t.foreign.Add(1)
			continue
		}
		if err != nil {
			t.bad.Add(1)
			continue
		}
		src := f.Src
		src.CH, src.Reserved = false, 0
		d := asm.add(src.String(), frag, now)
		if n := asm.expired; n != reported {
			t.incomplete.Add(n - reported)
			reported = n
		}
		if d == nil {
			continue
		}
		t.dgramsIn.Add(1)
		select {
		case t.in <- received{p: d, from: transport.NamedEndpoint(src.String())}:
		case <-t.ctx.Done():
			return
		}
	}
}

// heard moves the paced estimate of when our frames go on the air by the
// airtime of a frame of n bytes another station sent: while ours waited at
// the TNC, the channel was that station's. Without it the estimate ran ahead
// of the air whenever the neighbour answered, the TNC's queue grew unseen,
// and acks came a datagram or two later than the router expected.
func (t *Transport) heard(n int) {
	if !t.cfg.Pace {
		return
	}
	t.airMu.Lock()
	defer t.airMu.Unlock()
	if t.onAir.After(time.Now()) {
		t.onAir = t.onAir.Add(t.frameAirtime(n))
	}
}

// forMe reports whether a frame to dst is for this node: its callsign and
// SSID, or QST.
func (t *Transport) forMe(dst ax25.Address) bool {
	if dst.Call == Broadcast && dst.SSID == 0 {
		return true
	}
	me := t.cfg.Callsign
	return me.Call != "" && dst.Call == me.Call && dst.SSID == me.SSID
}

// reopen replaces a broken port, retrying with a back-off from 1 s to 30 s
// until it opens or the transport closes (then nil).
func (t *Transport) reopen(broken Port, why error) Port {
	if t.ctx.Err() != nil {
		return nil
	}
	broken.Close()
	t.portErr.Store(&why)
	if _, down := broken.(downPort); down {
		t.logf("radio %s: the channel did not open (%v); trying again in the background", t.cfg.URL, why)
	} else {
		t.logf("radio %s: the port broke (%v); reopening it", t.cfg.URL, why)
	}
	wait := time.Second
	for {
		select {
		case <-time.After(wait):
		case <-t.ctx.Done():
			return nil
		}
		p, err := t.cfg.Open(t.ctx)
		if err != nil {
			t.portErr.Store(&err)
		}
		if err == nil {
			t.mu.Lock()
			if t.closed {
				t.mu.Unlock()
				p.Close()
				return nil
			}
			t.port = p
			t.mu.Unlock()
			t.portErr.Store(nil)
			t.reopens.Add(1)
			t.logf("radio %s: reopened", t.cfg.URL)
			return p
		}
		t.logf("radio %s: reopening: %v (again in %v)", t.cfg.URL, err, min(2*wait, 30*time.Second))
		wait = min(2*wait, 30*time.Second)
	}
}

func (t *Transport) logf(format string, args ...any) {
	if t.cfg.Logf != nil {
		t.cfg.Logf(format, args...)
	}
}

// send transmits queued datagrams, each as its fragments, with an ID first
// when one is due.
func (t *Transport) send() {
	defer t.wg.Done()
	var frame []byte
	for {
		var o outgoing
		select {
		case o = <-t.out:
		case <-t.ctx.Done():
			return
		}
		t.roomMade()
		port := t.current()
		now := t.cfg.Now()
		if t.lastID.IsZero() || now.Sub(t.lastID) >= IDInterval {
			if t.transmit(port, t.idFrame()) {
				t.lastID = now
				t.idCount.Add(1)
			}
		}
		pieces, err := split(o.p, t.paclen-fragHeader)
		if err != nil { // WriteTo checked the length
			t.drops.Add(1)
			continue
		}
		num := uint16(t.num.Add(1))
		ok := true
		for i, piece := range pieces {
			frame = appendFragment(frame[:0], num, i, len(pieces), piece)
			f := ax25.NewUI(o.to, t.cfg.Callsign, nil, frame)
			if !t.transmit(port, f) {
				ok = false
				break
			}
		}
		if ok {
			t.dgramsOut.Add(1)
		} else {
			t.drops.Add(1)
		}
	}
}

// idFrame is the identification: a UI frame to "ID" whose text is the
// callsign (97.119(b)(1): in a form the station's own mode conveys, here the
// same AX.25 every station decodes).
func (t *Transport) idFrame() *ax25.Frame {
	return ax25.NewUI(ax25.Address{Call: "ID"}, t.cfg.Callsign, nil, []byte(t.cfg.Callsign.String()+" Skyfleet mesh node"))
}

// transmit sends one frame and counts it; false when it could not be sent.
// frameAirtime estimates how long a frame of n bytes (addresses to FCS)
// keeps the transmitter keyed: its bits with a flag each side, bit stuffing
// (up to 1/5 more, about 1/60 on random bytes), and TXDELAY (a KISS TNC keys
// up for each frame it gets while idle).
func (t *Transport) frameAirtime(n int) time.Duration {
	bits := (n + 2) * 8 * 61 / 60
	return t.cfg.TXDelay + time.Duration(bits)*time.Second/time.Duration(t.cfg.BitRate)
}

// Airtime estimates how long a datagram of n bytes keeps the transmitter
// keyed: its fragments, each an AX.25 UI frame from this node's callsign,
// at the channel's bit rate with TXDELAY each (the router's RTO floor on a
// radio link, forward.radioRTOFloor).
func (t *Transport) Airtime(n int) time.Duration {
	per := t.paclen - fragHeader
	frames := max(1, (n+per-1)/per)
	// Two 7-byte addresses, control, PID and the 2-byte FCS around each
	// fragment's header and bytes.
	return time.Duration(frames)*t.frameAirtime(2*7+2+2+fragHeader) + t.frameAirtime(n) - t.frameAirtime(0)
}

func (t *Transport) transmit(port Port, f *ax25.Frame) bool {
	b, err := f.Encode()
	if err != nil {
		t.bad.Add(1)
		return false
	}
	air := t.frameAirtime(len(b))
	if t.cfg.Pace {
		// Hand the TNC this frame when the ones before it are about to end,
		// looking again after each wait: what was heard meanwhile moved
		// that on (heard).
		for {
			t.airMu.Lock()
			wait := time.Until(t.onAir.Add(-air))
			t.airMu.Unlock()
			if wait <= 0 {
				break
			}
			select {
			case <-time.After(wait):
			case <-t.ctx.Done():
				return false
			}
		}
	}
	if err := port.Send(b); err != nil {
		return false
	}
	if t.cfg.Pace {
		t.airMu.Lock()
		if now := time.Now(); t.onAir.Before(now) {
			t.onAir = now
		}
		t.onAir = t.onAir.Add(air)
		t.airMu.Unlock()
	}
	t.framesOut.Add(1)
	t.airNS.Add(uint64(air))
	return true
}
