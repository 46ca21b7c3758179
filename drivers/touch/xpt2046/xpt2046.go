// Package xpt2046 reads the XPT2046 resistive touch controller of the
// common SPI TFT hats for the Raspberry Pi from user space, through a spidev
// connection (periph.io's spi.Conn), for kernels that have spidev but no
// ads7846 driver bound to the hat. The XPT2046 (XPTEK) speaks the protocol
// of TI's ADS7846 and TSC2046, and its data sheet repeats the ADS7846's
// sections and tables; the references below are to the ADS7846 data sheet,
// SBAS125H ("the data sheet"), and to TI's application note SBAA036, "Touch
// Screen Controller Tips" ("the app note").
//
// One Sample is several 12-bit conversions of the pressure (Z1, Z2) and,
// when the panel is pressed, of the position (X, Y) and of the pressure
// again; Read turns samples into touch.Reports in screen pixels, through a
// touch.Mapping, with the same meaning as package evdev's: a report lists
// the contacts down (here at most one, ID 0), and an empty report says the
// finger lifted.
//
// The control bytes, the framing and the decoding were checked against the
// Linux kernel's drivers/input/touchscreen/ads7846.c (its ADS_* bit
// definitions and ads7846_get_value) and PaulStoffregen/XPT2046_Touchscreen.
package xpt2046

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/spi"

	"github.com/skyfleet/skyfleet/drivers/touch"
	"github.com/skyfleet/skyfleet/internal/clock"
)

// The control byte's fields (the data sheet's "Digital Interface: Control
// Byte", Tables III and IV): S, the start bit, is bit 7; A2-A0, the input
// channel, bits 6-4; MODE, bit 3, is 0 for 12-bit conversions (1: 8-bit);
// SER/DFR, bit 2, is 0 for the differential (ratiometric) reference, the
// one the data sheet prefers for position and pressure because the
// reference is then the voltage across the panel itself; PD1-PD0, bits 1-0,
// are 00 (Table V): power down between conversions, with PENIRQ enabled,
// and the very next conversion valid with no wake-up delay.
const (
	ctlStart   = 1 << 7
	ctlChannel = 4 // shift of A2-A0
	ctl8Bit    = 1 << 3
	ctlSER     = 1 << 2
)

// Control bytes for the four touch measurements, each a 12-bit
// differential conversion that powers down afterwards (PD1-PD0 = 00). The
// channel names follow the data sheet's Table II (differential reference
// mode) and Figure 8: X drives the X plate and senses on Y+, Y drives the
// Y plate and senses on X+, Z1 and Z2 drive Y+ to X- and sense on X+ and
// Y- respectively.
const (
	CmdX  byte = ctlStart | 0b101<<ctlChannel // 0xD0: X position
	CmdY  byte = ctlStart | 0b001<<ctlChannel // 0x90: Y position
	CmdZ1 byte = ctlStart | 0b011<<ctlChannel // 0xB0: Z1, pressure
	CmdZ2 byte = ctlStart | 0b100<<ctlChannel // 0xC0: Z2, pressure
)

// MaxValue is the largest conversion result: the results are 12-bit
// straight binary (the data sheet's "Data Format"), 0..4095.
const MaxValue = 1<<12 - 1

// Defaults of Options.
const (
	// DefaultThreshold is the pressure (RawSample.Pressure) a touch must
	// exceed: PaulStoffregen/XPT2046_Touchscreen's Z_THRESHOLD, proven on
	// the same hats. On the data sheet's model a finger touching the
	// middle of a typical panel (plates of a few hundred ohms) scores
	// 1000-2000 and no contact scores 0.
	DefaultThreshold = 400
	// DefaultConversions is how many conversions of each channel are kept
	// per sample, after the discarded first.
	DefaultConversions = 3
	// DefaultTolerance bounds the spread (largest less smallest) of a
	// sample's kept X or Y conversions, in raw units: 50 is 6 pixels across
	// 480 with the usual raw span of 200..3900.
	DefaultTolerance = 50
	// DefaultDebounce is the number of consecutive samples that make a
	// press, and a lift.
	DefaultDebounce = 2
	// DefaultPollInterval is the time between samples: 100 Hz.
	DefaultPollInterval = 10 * time.Millisecond
)

// maxConversions bounds Options.Conversions.
const maxConversions = 15

// irqWait is the longest single wait for a PENIRQ edge: Read looks at its
// context this often while the panel is idle.
const irqWait = 100 * time.Millisecond

// ErrNoisy is a sample rejected by the filter: the kept conversions of X or
// Y spread more than Options.Tolerance apart, as they do while a finger
// lands or lifts and the contact comes and goes. Sample wraps it with the
// channel and the spread.
var ErrNoisy = errors.New("xpt2046: conversions spread beyond the tolerance")

// RawSample is one filtered sample: the median of each channel's kept
// conversions, each 0..MaxValue. X and Y are the position on the panel's
// own axes (0 at X- and Y-), meaningful only when the sample is down; Z1
// and Z2 are the pressure measurement (the data sheet's "Pressure
// Measurement", Figure 8).
type RawSample struct {
	X, Y, Z1, Z2 int
}

// Pressure is Z1 + 4095 - Z2, the measure the driver compares with
// Options.Threshold. With no contact the Z1 input sees the grounded X
// plate and Z2 the Y plate at the drive voltage, so it is 0 whatever the
// unconnected position channels read; a contact of resistance Rtouch
// raises it to about 4096*(Rx'+Ry')/(Rx'+Ry'+Rtouch), where Rx' and Ry'
// are the parts of the plates in the current's path. It needs no panel
// constant and divides by nothing, unlike TouchResistance; its cost is that
// it depends on where the touch is: a light touch near the X-/Y+ corner,
// where Rx' and Ry' are small, scores less than one in the middle.
func (s RawSample) Pressure() int { return s.Z1 + MaxValue - s.Z2 }

// TouchResistance is the resistance of the contact between the plates in
// ohms, by the data sheet's Equation 2 (the Linux ads7846 driver's
// formula): Rtouch = Rx-plate * X/4096 * (Z2/Z1 - 1), given the X plate's
// resistance xPlateOhms between its bus bars. It falls as the finger
// presses harder. With Z1 = 0 (no contact) it is +Inf. The driver does not
// use it to decide a touch (see Pressure); it is for callers that want a
// position-independent measure of how hard the panel is pressed.
func (s RawSample) TouchResistance(xPlateOhms float64) float64 {
	if s.Z1 <= 0 {
		return math.Inf(1)
	}
	return xPlateOhms * float64(s.X) / 4096 * (float64(s.Z2)/float64(s.Z1) - 1)
}

// Clock is time as a Controller sees it; tests give it their own.
type Clock = clock.Clock

// Options tune a Controller; the zero value takes every default.
type Options struct {
	// Threshold is the Pressure a sample must exceed to be down, 1..4095;
	// 0 means DefaultThreshold.
	Threshold int
	// Conversions is how many conversions of each channel a sample keeps,
	// 1..15, after one more that is discarded: the first conversion after
	// the drivers switch to another channel acquires while the panel's
	// voltage is still settling (the app note's Figure 4(b): repeat the
	// control byte and discard the first result). 0 means
	// DefaultConversions.
	Conversions int
	// Tolerance is the largest spread, in raw units, of a sample's kept X
	// or Y conversions; a wider sample is rejected with ErrNoisy. 0 means
	// DefaultTolerance.
	Tolerance int
	// PressDebounce and LiftDebounce are the consecutive down samples that
	// report a press, and the consecutive up samples that report a lift, so
	// that one noisy sample neither taps nor lifts; a sample rejected by
	// the filter breaks both runs. 0 means DefaultDebounce.
	PressDebounce, LiftDebounce int
	// PenIRQ is the controller's PENIRQ output (active low: low while the
	// panel is touched; the data sheet's "PENIRQ Output"), or nil. With it,
	// Read waits for its falling edge while the panel is idle instead of
	// polling; New sets it up as an input with the pull-up and
	// falling-edge detection. On the common hats it is GPIO17.
	PenIRQ gpio.PinIn
	// PollInterval is the time between samples; 0 means
	// DefaultPollInterval.
	PollInterval time.Duration
	// Clock is the controller's time; nil means real time.
	Clock Clock
}

// withDefaults fills the zero fields and checks the rest.
func (o Options) withDefaults() (Options, error) {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.Threshold, DefaultThreshold)
	def(&o.Conversions, DefaultConversions)
	def(&o.Tolerance, DefaultTolerance)
	def(&o.PressDebounce, DefaultDebounce)
	def(&o.LiftDebounce, DefaultDebounce)
	if o.PollInterval == 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.Clock == nil {
		o.Clock = clock.Real
	}
	switch {
	case o.Threshold < 0 || o.Threshold > MaxValue:
		return o, fmt.Errorf("xpt2046: threshold %d: want 1..%d", o.Threshold, MaxValue)
	case o.Conversions < 0 || o.Conversions > maxConversions:
		return o, fmt.Errorf("xpt2046: %d conversions per channel: want 1..%d", o.Conversions, maxConversions)
	case o.Tolerance < 0:
		return o, fmt.Errorf("xpt2046: tolerance %d: want a positive spread", o.Tolerance)
	case o.PressDebounce < 0 || o.LiftDebounce < 0:
		return o, fmt.Errorf("xpt2046: debounce %d/%d: want positive sample counts", o.PressDebounce, o.LiftDebounce)
	case o.PollInterval < 0:
		return o, fmt.Errorf("xpt2046: poll interval %v", o.PollInterval)
	}
	return o, nil
}

// Controller is one XPT2046. It is not safe for concurrent use.
type Controller struct {
	conn   spi.Conn
	m      touch.Mapping
	o      Options
	closer io.Closer // the port, when Open opened it

	w, r [3]byte
	vals [maxConversions]int

	sampled    bool      // a sample was taken
	last       time.Time // when
	downRun    int       // consecutive down samples
	upRun      int       // consecutive up samples
	reported   bool      // a press was reported and no lift since
	repX, repY int       // the pixel last reported
}

// New returns the controller on conn, mapping through m (see
// touch.Mapping.Validate; the raw axes are 0..4095 unless the panel's
// edges say otherwise). conn must be full duplex, SPI mode 0, 8-bit words,
// at most 2 MHz (Open connects so). Errors: a bad mapping or option, a
// half-duplex connection, or the PENIRQ pin refusing to be an input with
// edge detection.
func New(c spi.Conn, m touch.Mapping, opts Options) (*Controller, error) {
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("xpt2046: %w", err)
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if c.Duplex() == conn.Half {
		return nil, fmt.Errorf("xpt2046: %s is half duplex: a conversion reads its result while it writes", c)
	}
	if o.PenIRQ != nil {
		if err := o.PenIRQ.In(gpio.PullUp, gpio.FallingEdge); err != nil {
			return nil, fmt.Errorf("xpt2046: PENIRQ %s: %w", o.PenIRQ, err)
		}
	}
	return &Controller{conn: c, m: m, o: o}, nil
}

// SetMapping replaces the mapping, for a new calibration (see Calibrate);
// a touch in progress keeps its state. Errors: touch.Mapping.Validate's.
func (c *Controller) SetMapping(m touch.Mapping) error {
	if err := m.Validate(); err != nil {
		return fmt.Errorf("xpt2046: %w", err)
	}
	c.m = m
	return nil
}

// Close releases the SPI port if Open opened it; PENIRQ is left an input.
func (c *Controller) Close() error {
	if c.closer == nil {
		return nil
	}
	return c.closer.Close()
}

// decode returns the 12-bit result of a conversion from the three bytes
// received while its control byte and two zero bytes were sent (the data
// sheet's Figure 9, 24 clocks per conversion on an 8-bit bus): nothing
// during the control byte, then the BUSY clock's null bit, the result's 12
// bits MSB first, and three zeros.
func decode(rx [3]byte) int {
	return (int(rx[1])<<8 | int(rx[2])) >> 3 & MaxValue
}

// convert makes one conversion: a 3-byte full-duplex transfer.
func (c *Controller) convert(cmd byte) (int, error) {
	c.w = [3]byte{cmd, 0, 0}
	if err := c.conn.Tx(c.w[:], c.r[:]); err != nil {
		return 0, err
	}
	return decode(c.r), nil
}

// channel names a control byte in errors.
func channel(cmd byte) string {
	switch cmd {
	case CmdX:
		return "X"
	case CmdY:
		return "Y"
	case CmdZ1:
		return "Z1"
	case CmdZ2:
		return "Z2"
	}
	return fmt.Sprintf("control byte %#02x", cmd)
}

// burst converts cmd's channel Options.Conversions+1 times, discards the
// first, and returns the median and the spread of the rest.
func (c *Controller) burst(cmd byte) (median, spread int, err error) {
	n := c.o.Conversions
	for i := -1; i < n; i++ {
		v, err := c.convert(cmd)
		if err != nil {
			return 0, 0, fmt.Errorf("xpt2046: reading %s (control byte %#02x): %w", channel(cmd), cmd, err)
		}
		if i >= 0 {
			c.vals[i] = v
		}
	}
	median, spread = filter(c.vals[:n])
	return median, spread, nil
}

// filter returns the median of vals (of the two middle values when there
// is an even number, their mean) and their spread, largest less smallest.
// It sorts vals.
func filter(vals []int) (median, spread int) {
	slices.Sort(vals)
	n := len(vals)
	median = vals[n/2]
	if n%2 == 0 {
		median = (vals[n/2-1] + vals[n/2]) / 2
	}
	return median, vals[n-1] - vals[0]
}

// Sample reads one filtered sample and says whether the panel is pressed
// through it.
//
// It first measures the pressure (Z1, Z2); at or below Options.Threshold
// the panel is up, and the position is not read (X and Y are 0). Else it
// measures X and Y, and then the pressure again: the sample is down only if
// the panel was still pressed after the position was read, so that a
// position read while the contact was going (a lifting finger) is never a
// touch. The raw Z1 and Z2 returned are from the last pressure measurement.
//
// Errors: a transfer's, wrapped with the channel being read; ErrNoisy,
// wrapped with the channel and the spread, when the X or Y conversions
// spread beyond Options.Tolerance (raw then holds what was read).
func (c *Controller) Sample() (raw RawSample, down bool, err error) {
	if raw.Z1, raw.Z2, err = c.pressure(); err != nil {
		return raw, false, err
	}
	if raw.Pressure() <= c.o.Threshold {
		return raw, false, nil
	}
	for _, ch := range []struct {
		cmd byte
		v   *int
	}{{CmdX, &raw.X}, {CmdY, &raw.Y}} {
		var spread int
		if *ch.v, spread, err = c.burst(ch.cmd); err != nil {
			return raw, false, err
		}
		if spread > c.o.Tolerance {
			return raw, false, fmt.Errorf("%w: %s spread %d, tolerance %d", ErrNoisy, channel(ch.cmd), spread, c.o.Tolerance)
		}
	}
	if raw.Z1, raw.Z2, err = c.pressure(); err != nil {
		return raw, false, err
	}
	return raw, raw.Pressure() > c.o.Threshold, nil
}

// pressure measures Z1 and Z2.
func (c *Controller) pressure() (z1, z2 int, err error) {
	if z1, _, err = c.burst(CmdZ1); err != nil {
		return 0, 0, err
	}
	z2, _, err = c.burst(CmdZ2)
	return z1, z2, err
}

// Read blocks until the touch changes and returns the report: a press (one
// Point, ID 0, in screen pixels through the Mapping) after
// Options.PressDebounce consecutive down samples, a move when a down sample
// maps at least one pixel away from the point last reported, a lift (no
// Points) after Options.LiftDebounce consecutive up samples. The report's
// Time is the Clock's when its sample was read.
//
// It samples every Options.PollInterval; with Options.PenIRQ, while no
// touch is reported or pending and PENIRQ is high, it waits for the pin's
// falling edge instead (looking at ctx every 100 ms). Samples rejected by
// the filter (ErrNoisy) are not errors here: they break both debounce runs
// and are otherwise ignored. Errors: ctx's, or a transfer's (see Sample).
func (c *Controller) Read(ctx context.Context) (touch.Report, error) {
	clk := c.o.Clock
	for {
		if err := ctx.Err(); err != nil {
			return touch.Report{}, err
		}
		if c.sampled {
			if d := c.last.Add(c.o.PollInterval).Sub(clk.Now()); d > 0 {
				if err := clk.Sleep(ctx, d); err != nil {
					return touch.Report{}, err
				}
			}
		}
		if err := c.waitIRQ(ctx); err != nil {
			return touch.Report{}, err
		}
		now := clk.Now()
		raw, down, err := c.Sample()
		c.sampled, c.last = true, now
		switch {
		case errors.Is(err, ErrNoisy):
			c.downRun, c.upRun = 0, 0
			continue
		case err != nil:
			return touch.Report{}, err
		case !down:
			c.downRun = 0
			c.upRun++
			if c.reported && c.upRun >= c.o.LiftDebounce {
				c.reported = false
				return touch.Report{Time: now}, nil
			}
			continue
		}
		c.upRun = 0
		c.downRun++
		x, y := c.m.Map(raw.X, raw.Y)
		if c.reported && x == c.repX && y == c.repY {
			continue
		}
		if c.reported || c.downRun >= c.o.PressDebounce {
			c.reported, c.repX, c.repY = true, x, y
			return touch.Report{Time: now, Points: []touch.Point{{ID: 0, X: x, Y: y}}}, nil
		}
	}
}

// waitIRQ waits for PENIRQ to fall when there is one and the panel is idle:
// no touch reported, none pending, and the pin high. A falling edge the
// conversions themselves cause costs one sample that reads up.
func (c *Controller) waitIRQ(ctx context.Context) error {
	pin := c.o.PenIRQ
	if pin == nil || c.reported || c.downRun > 0 || pin.Read() == gpio.Low {
		return nil
	}
	for !pin.WaitForEdge(irqWait) {
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return ctx.Err()
}
