// Package ether is a shared radio channel in memory for tests: every AX.25
// frame one port sends, every other port hears, as stations on one frequency
// do. Its ports satisfy radio.Port (services/mesh/radio). It can run at a bit
// rate, so that a frame takes its airtime and the channel is busy meanwhile
// (one transmitter at a time, half duplex), and it logs every frame for the
// test to look at.
package ether

import (
	"bytes"
	"io"
	"sync"
	"time"

	"github.com/skyfleet/skyfleet/drivers/radio/ax25"
)

// Ether is one channel. The zero value is not usable; call New.
type Ether struct {
	mu    sync.Mutex
	ports []*Port
	log   [][]byte
	// air serialises transmissions when BitRate is set.
	air     sync.Mutex
	bitRate int
	tamper  func(frame []byte) []byte
}

// New returns an empty channel with no airtime (frames arrive at once).
func New() *Ether { return &Ether{} }

// SetBitRate makes every frame take its airtime at bits per second (0: none):
// (len+4 bytes: flags and FCS margin)×8 bits, and holds the channel for that
// long, so that two stations cannot send at once.
func (e *Ether) SetBitRate(bits int) {
	e.mu.Lock()
	e.bitRate = bits
	e.mu.Unlock()
}

// SetTamper has fn rewrite every frame in flight (nil: none); returning nil
// loses the frame. The log keeps what was sent.
func (e *Ether) SetTamper(fn func(frame []byte) []byte) {
	e.mu.Lock()
	e.tamper = fn
	e.mu.Unlock()
}

// Port is one station's radio on the channel.
type Port struct {
	e      *Ether
	in     chan []byte
	closed chan struct{}
	once   sync.Once
}

// Port adds a station and returns its radio. It buffers 1024 frames heard and
// not yet received, and loses beyond that (a radio's receiver does not wait).
func (e *Ether) Port() *Port {
	p := &Port{e: e, in: make(chan []byte, 1024), closed: make(chan struct{})}
	e.mu.Lock()
	e.ports = append(e.ports, p)
	e.mu.Unlock()
	return p
}

// Inject puts frame on the air as if from (nil: a station without a Port);
// every other port hears it.
func (e *Ether) Inject(from *Port, frame []byte) {
	e.mu.Lock()
	rate, tamper := e.bitRate, e.tamper
	e.mu.Unlock()
	if rate > 0 {
		e.air.Lock()
		time.Sleep(time.Duration(len(frame)+4) * 8 * time.Second / time.Duration(rate))
		e.air.Unlock()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log = append(e.log, bytes.Clone(frame))
	if tamper != nil {
		if frame = tamper(bytes.Clone(frame)); frame == nil {
			return
		}
	}
	for _, p := range e.ports {
		if p != from {
			select {
			case p.in <- bytes.Clone(frame):
			default:
			}
		}
	}
}

// Log returns every frame sent so far, in order.
func (e *Ether) Log() [][]byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([][]byte(nil), e.log...)
}

// Frames returns the log decoded; a frame that does not decode panics (the
// ports send only what ax25 encoded).
func (e *Ether) Frames() []*ax25.Frame {
	var out []*ax25.Frame
	for _, b := range e.Log() {
		f, err := ax25.Decode(b)
		if err != nil {
			panic(err)
		}
		out = append(out, f)
	}
	return out
}

// Send transmits frame (radio.Port): it takes the frame's airtime at the
// channel's bit rate. After Close it returns io.ErrClosedPipe.
func (p *Port) Send(frame []byte) error {
	select {
	case <-p.closed:
		return io.ErrClosedPipe
	default:
	}
	p.e.Inject(p, frame)
	return nil
}

// Receive returns the next frame heard (radio.Port); after Close,
// io.ErrClosedPipe.
func (p *Port) Receive() ([]byte, error) {
	select {
	case b := <-p.in:
		return b, nil
	case <-p.closed:
		return nil, io.ErrClosedPipe
	}
}

// Close stops the port and unblocks Receive.
func (p *Port) Close() error {
	p.once.Do(func() { close(p.closed) })
	return nil
}
