package xpt2046

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
)

// This file is a simulated 4-wire resistive panel behind an XPT2046, built
// from the data sheet's electrical model; it answers the driver's
// conversions as the chip would. The trace test records the driver running
// against it (testdata/README.md), and the debounce and PENIRQ tests use it
// noise-free.

// The panel's constants: the plates' resistances between their bus bars
// (4-wire panels of this size measure a few hundred ohms), and the raw
// readings at the edges of the visible area (the plates run under the
// bezel: the hats' device-tree overlays give x-min/y-min 200 and
// x-max/y-max 3900).
const (
	rxPlate        = 450.0
	ryPlate        = 300.0
	rawEdgeLo      = 200
	rawEdgeHi      = 3900
	firmOhms       = 700.0   // a finger pressed down
	lightOhms      = 20000.0 // the first or last touch of the plates
	panelStartUnix = 1_700_000_000
)

// contact is the finger at one moment.
type contact struct {
	// down: the finger is on the panel (landing, pressed or lifting).
	down bool
	// u, v: where, on the unrotated visible screen, 0..1.
	u, v float64
	// ohms is the contact's resistance between the plates.
	ohms float64
	// p is the chance the plates touch during any one conversion: 1 when
	// pressed, less while the finger lands or lifts and the contact comes
	// and goes faster than a sample.
	p float64
}

// rawFrac is the raw position, as a fraction of the reference, of the
// visible screen's u (0..1).
func rawFrac(u float64) float64 {
	return (rawEdgeLo + u*(rawEdgeHi-rawEdgeLo)) / 4096
}

// fakeClock is the test's time: Sleep moves it on at once. Past end (when
// set) Sleep fails with errEnd, which ends a run of Reads.
type fakeClock struct {
	start, now, end time.Time
}

var errEnd = errors.New("the test's time is up")

func newClock(end time.Duration) *fakeClock {
	t := time.Unix(panelStartUnix, 0)
	c := &fakeClock{start: t, now: t}
	if end > 0 {
		c.end = t.Add(end)
	}
	return c
}

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !c.end.IsZero() && c.now.Add(d).After(c.end) {
		return errEnd
	}
	c.now = c.now.Add(d)
	return nil
}

// since is the clock's time since it started.
func (c *fakeClock) since() time.Duration { return c.now.Sub(c.start) }

// panel answers conversions for the finger at(t), t the clock's time since
// start. It is a spi.Conn (and, for spitest.Record, a spi.PortCloser).
type panel struct {
	clk *fakeClock
	at  func(t time.Duration) contact
	// rng draws the noise and the contact's coming and going; nil: no
	// noise, and a finger touches or not by p >= 0.5.
	rng *rand.Rand
	// noise is the standard deviation of a conversion, in LSB.
	noise float64
	// settle is the fraction of the previous conversion's input that the
	// first conversion after a channel change still holds: the panel's
	// capacitance has not charged to the new drive yet (the app note's
	// Figure 4).
	settle float64

	prev  byte    // the last control byte
	node  float64 // the ADC input at the last conversion, fraction of the reference
	count int     // conversions made
	times []time.Duration
}

func (p *panel) String() string                    { return "simulated panel" }
func (p *panel) Duplex() conn.Duplex               { return conn.Full }
func (p *panel) Close() error                      { return nil }
func (p *panel) LimitSpeed(physic.Frequency) error { return nil }
func (p *panel) Connect(physic.Frequency, spi.Mode, int) (spi.Conn, error) {
	return p, nil
}
func (p *panel) TxPackets([]spi.Packet) error { return errors.New("panel: TxPackets") }

func (p *panel) Tx(w, r []byte) error {
	if len(w) != 3 || len(r) != 3 || w[1] != 0 || w[2] != 0 {
		return fmt.Errorf("panel: transfer % x with %d bytes to read: want a control byte, two zeros, and 3 to read", w, len(r))
	}
	cmd := w[0]
	f := p.at(p.clk.since())
	touching := f.down && f.p >= 0.5
	if p.rng != nil && f.down {
		touching = p.rng.Float64() < f.p
	}
	var in float64 // the ADC input, as a fraction of the reference
	if touching {
		// The data sheet's Figure 8: Z1 and Z2 drive current from Y+
		// through the Y plate to the contact, through the contact, and
		// through the X plate to X-; Z1 senses X+ (the X plate at the
		// contact), Z2 senses Y- (the Y plate at the contact).
		xf, yf := rawFrac(f.u), rawFrac(f.v)
		rx, ry := rxPlate*xf, ryPlate*(1-yf)
		total := rx + ry + f.ohms
		switch cmd {
		case CmdX:
			in = xf
		case CmdY:
			in = yf
		case CmdZ1:
			in = rx / total
		case CmdZ2:
			in = (rx + f.ohms) / total
		}
	} else {
		switch cmd {
		case CmdZ1: // X+ sees the X plate, grounded at X-
			in = 0
		case CmdZ2: // Y- sees the Y plate, at the drive on Y+
			in = 1
		default: // the sensing plate floats, holding and leaking its charge
			in = 0.9 * p.node
		}
	}
	if cmd != p.prev {
		in += p.settle * (p.node - in)
	}
	p.prev, p.node = cmd, in
	v := in * 4096
	if p.rng != nil {
		v += p.rng.NormFloat64() * p.noise
	}
	code := int(math.Round(v))
	code = max(0, min(code, MaxValue))
	r[0], r[1], r[2] = 0, byte(code>>5), byte(code<<3)
	p.count++
	p.times = append(p.times, p.clk.since())
	return nil
}

// encode is the three bytes the chip sends for a conversion result.
func encode(v int) []byte { return []byte{0, byte(v >> 5), byte(v << 3)} }
