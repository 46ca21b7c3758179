// Package modem is a sound-card TNC: package afsk's modem on an audio device,
// with a push-to-talk keyer and carrier sense (package ptt), seen as a port of
// whole AX.25 frames. It is what a Digirig, an AIOC or a USB dongle wired to a
// Baofeng becomes: the same frames in and out as a KISS TNC gives, with the
// channel's own figures (FCS errors, busy time, airtime) that a KISS TNC
// keeps to itself.
//
// The audio device is an interface (Audio): ALSA's PCM device on a board, a
// pipe or a file in tests and on a host.
package modem

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skyfleet/skyfleet/drivers/radio/afsk"
	"github.com/skyfleet/skyfleet/drivers/radio/ptt"
)

// Audio is a mono 16-bit sound device at one sample rate, as the modem uses
// it. Capture and playback run at once (the modem listens while idle and
// carrier sense needs it).
type Audio interface {
	// Read blocks until captured samples are available and copies them into
	// p. Errors: the device broke or was closed.
	Read(p []int16) (int, error)
	// Write plays p and returns once it has been played out (so the
	// transmitter can be unkeyed).
	Write(p []int16) error
	// Close stops both directions and unblocks Read.
	Close() error
}

// Config is a TNC's device and channel.
type Config struct {
	// Rate is the audio's sample rate in Hz (at least afsk.MinRate).
	Rate int
	// Audio is the sound device.
	Audio Audio
	// Keyer keys the transmitter; nil means VOX (the audio keys it).
	Keyer ptt.Keyer
	// Channel is carrier sense and p-persistence (ptt.Params; zero values
	// take its defaults).
	Channel ptt.Params
	// TXDelay and TXTail are the flags before and after each transmission
	// (0: afsk's 300 ms and 30 ms). Amplitude is the tones' peak, a fraction
	// of full scale (0: 0.5).
	TXDelay, TXTail time.Duration
	Amplitude       float64
	// MaxFramesPerTX bounds the frames sent in one keying (0: 8): more go
	// out together without a TXDELAY each, but hold the channel longer.
	MaxFramesPerTX int
	// Clock and Rand are for tests of the channel access (ptt.Transmitter).
	Clock ptt.Clock
	Rand  func() float64
}

// Stats are the TNC's counters.
type Stats struct {
	afsk.DemodStats
	// FramesOut counts frames transmitted; Transmissions the keyings.
	FramesOut, Transmissions uint64
	// Drops counts frames not sent: the channel stayed busy, the keyer or
	// the audio failed.
	Drops uint64
	// Airtime is the time keyed; BusyTime the time carrier was heard.
	Airtime, BusyTime time.Duration
}

// queueLen bounds the frames waiting for the channel.
const queueLen = 64

// ErrClosed is returned after Close.
var ErrClosed = errors.New("modem: closed")

// TNC is a sound-card TNC. Send, Receive (from one goroutine), Stats and Close
// may be called concurrently.
type TNC struct {
	cfg Config
	mod afsk.Modulator
	tx  ptt.Transmitter

	ctx    context.Context
	cancel context.CancelFunc
	out    chan []byte
	in     chan []byte
	wg     sync.WaitGroup

	mu      sync.Mutex // the demodulator: its goroutine writes, Stats and carrier read
	demod   *afsk.Demodulator
	carrier bool
	rxErr   error

	framesOut, txs, drops, airNS atomic.Uint64
}

// New starts a TNC on cfg.Audio: it listens at once. Errors: a bad rate or
// no audio device.
func New(cfg Config) (*TNC, error) {
	if cfg.Audio == nil {
		return nil, errors.New("modem: no audio device")
	}
	if cfg.Keyer == nil {
		cfg.Keyer = ptt.VOX{}
	}
	if cfg.MaxFramesPerTX <= 0 {
		cfg.MaxFramesPerTX = 8
	}
	t := &TNC{cfg: cfg, out: make(chan []byte, queueLen), in: make(chan []byte, queueLen),
		mod: afsk.Modulator{Rate: cfg.Rate, Amplitude: cfg.Amplitude, TXDelay: cfg.TXDelay, TXTail: cfg.TXTail}}
	d, err := afsk.NewDemodulator(cfg.Rate, t.heard)
	if err != nil {
		return nil, fmt.Errorf("modem: %w", err)
	}
	t.demod = d
	t.tx = ptt.Transmitter{Keyer: cfg.Keyer, Busy: t.busy, Params: cfg.Channel, Clock: cfg.Clock, Rand: cfg.Rand}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.wg.Add(2)
	go t.listen()
	go t.transmit()
	return t, nil
}

// heard takes a frame from the demodulator (its goroutine, under mu).
func (t *TNC) heard(f []byte) {
	select {
	case t.in <- append([]byte(nil), f...):
	default: // nobody reads: drop rather than stall the audio
	}
}

func (t *TNC) busy() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.carrier
}

// listen demodulates what the device captures until Close or a device error.
func (t *TNC) listen() {
	defer t.wg.Done()
	buf := make([]int16, t.cfg.Rate/50) // 20 ms
	for {
		n, err := t.cfg.Audio.Read(buf)
		t.mu.Lock()
		if n > 0 {
			t.demod.Write(buf[:n])
			t.carrier = t.demod.Carrier()
		}
		if err != nil {
			if t.ctx.Err() != nil {
				err = ErrClosed
			}
			t.rxErr = err
			t.carrier = false
		}
		t.mu.Unlock()
		if err != nil {
			close(t.in)
			return
		}
	}
}

// Send queues an AX.25 frame (addresses to FCS, as ax25.Frame.Encode gives it)
// for transmission; it blocks while the queue is full. Errors: ErrClosed.
func (t *TNC) Send(frame []byte) error {
	select {
	case t.out <- append([]byte(nil), frame...):
		return nil
	case <-t.ctx.Done():
		return ErrClosed
	}
}

// Receive returns the next frame heard with a good FCS (FCS attached).
// Errors: the audio device's, or ErrClosed.
func (t *TNC) Receive() ([]byte, error) {
	f, ok := <-t.in
	if !ok {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.rxErr == nil {
			return nil, io.EOF
		}
		return nil, t.rxErr
	}
	return f, nil
}

// transmit sends queued frames, as many together as are waiting (up to
// MaxFramesPerTX), each keying after carrier sense.
func (t *TNC) transmit() {
	defer t.wg.Done()
	for {
		var frames [][]byte
		select {
		case f := <-t.out:
			frames = append(frames, f)
		case <-t.ctx.Done():
			return
		}
	more:
		for len(frames) < t.cfg.MaxFramesPerTX {
			select {
			case f := <-t.out:
				frames = append(frames, f)
			default:
				break more
			}
		}
		audio, err := t.mod.Transmission(frames)
		if err != nil {
			t.drops.Add(uint64(len(frames)))
			continue
		}
		keyed, err := t.tx.Transmit(t.ctx, func(context.Context) error { return t.cfg.Audio.Write(audio) })
		t.airNS.Add(uint64(keyed))
		if err != nil {
			t.drops.Add(uint64(len(frames)))
			continue
		}
		t.txs.Add(1)
		t.framesOut.Add(uint64(len(frames)))
	}
}

// Stats returns the counters.
func (t *TNC) Stats() Stats {
	t.mu.Lock()
	d := t.demod.Stats()
	t.mu.Unlock()
	return Stats{
		DemodStats: d, FramesOut: t.framesOut.Load(), Transmissions: t.txs.Load(), Drops: t.drops.Load(),
		Airtime:  time.Duration(t.airNS.Load()),
		BusyTime: time.Duration(d.CarrierSamples) * time.Second / time.Duration(t.cfg.Rate),
	}
}

// Close stops the TNC, unkeys and closes the audio device and the keyer.
func (t *TNC) Close() error {
	t.cancel()
	err := t.cfg.Audio.Close()
	t.wg.Wait()
	return errors.Join(err, t.cfg.Keyer.Close())
}
