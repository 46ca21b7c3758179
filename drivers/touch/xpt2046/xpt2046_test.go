package xpt2046

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/conntest"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spitest"

	"github.com/skyfleet/skyfleet/drivers/touch"
)

var update = flag.Bool("update", false, "record testdata/trace.txt again from the simulated panel")

// hat is the mapping of a 480x320 hat whose visible area reads raw 200..3900
// on both axes (the panel simulation's).
var hat = touch.Mapping{
	X: touch.Axis{Min: rawEdgeLo, Max: rawEdgeHi}, Y: touch.Axis{Min: rawEdgeLo, Max: rawEdgeHi},
	Width: 480, Height: 320,
}

// full maps the raw axes 0..4095 onto w x h, turned by r.
func full(w, h int, r touch.Rotation) touch.Mapping {
	return touch.Mapping{X: touch.Axis{Min: 0, Max: MaxValue}, Y: touch.Axis{Min: 0, Max: MaxValue}, Width: w, Height: h, Rotation: r}
}

// playback is a spi.Conn that expects exactly ops, in order (conntest's
// Playback behind spitest's port), full duplex.
func playback(t *testing.T, ops []conntest.IO) (*spitest.Playback, spi.Conn) {
	t.Helper()
	pb := &spitest.Playback{Playback: conntest.Playback{Ops: ops, D: conn.Full, DontPanic: true}}
	c, err := pb.Connect(MaxSpeed, spi.Mode0, 8)
	if err != nil {
		t.Fatal(err)
	}
	return pb, c
}

// burstOps is one channel's burst: the control byte and two zeros out, each
// result back.
func burstOps(cmd byte, results ...int) []conntest.IO {
	var ops []conntest.IO
	for _, v := range results {
		ops = append(ops, conntest.IO{W: []byte{cmd, 0, 0}, R: encode(v)})
	}
	return ops
}

// The control bytes are the data sheet's (Tables III-V: start, A2-A0,
// 12-bit, differential, power down between conversions), a conversion is
// the control byte and two zero bytes, full duplex, and the result is the
// 12 bits after the null bit: 0x00 0x7F 0xF8 is 4095, 0x00 0x40 0x00 is
// 2048. An up sample reads the pressure only; a down one reads Z1, Z2, X,
// Y and the pressure again, four conversions each, the first discarded.
func TestConversionBytes(t *testing.T) {
	for cmd, want := range map[byte]byte{CmdX: 0xD0, CmdY: 0x90, CmdZ1: 0xB0, CmdZ2: 0xC0} {
		if cmd != want {
			t.Errorf("control byte %#02x, want %#02x", cmd, want)
		}
	}
	for _, c := range []struct {
		rx   [3]byte
		want int
	}{
		{[3]byte{0x00, 0x7F, 0xF8}, 4095},
		{[3]byte{0x00, 0x40, 0x00}, 2048},
		{[3]byte{0x00, 0x00, 0x08}, 1},
		{[3]byte{0xFF, 0x80, 0x07}, 0}, // the null bit and the trailing bits are not the result's
		{[3]byte{0x00, 0x3E, 0x80}, 2000},
	} {
		if got := decode(c.rx); got != c.want {
			t.Errorf("decode(% x) = %d, want %d", c.rx, got, c.want)
		}
	}

	var ops []conntest.IO
	// An up sample: Z1 is 0, Z2 is 4095.
	for range 4 {
		ops = append(ops, conntest.IO{W: []byte{0xB0, 0x00, 0x00}, R: []byte{0x00, 0x00, 0x00}})
	}
	for range 4 {
		ops = append(ops, conntest.IO{W: []byte{0xC0, 0x00, 0x00}, R: []byte{0x00, 0x7F, 0xF8}})
	}
	// A down sample; each burst's first result is off (settling) and
	// ignored.
	ops = append(ops, burstOps(0xB0, 0, 600, 601, 599)...)
	ops = append(ops, burstOps(0xC0, 4095, 2500, 2502, 2501)...)
	ops = append(ops, conntest.IO{W: []byte{0xD0, 0x00, 0x00}, R: []byte{0x00, 0x7F, 0xF8}})
	for range 3 {
		ops = append(ops, conntest.IO{W: []byte{0xD0, 0x00, 0x00}, R: []byte{0x00, 0x40, 0x00}})
	}
	ops = append(ops, burstOps(0x90, 2048, 1000, 1001, 1002)...)
	ops = append(ops, burstOps(0xB0, 1002, 610, 612, 611)...)
	ops = append(ops, burstOps(0xC0, 611, 2490, 2491, 2492)...)
	pb, c := playback(t, ops)
	ctl, err := New(c, hat, Options{})
	if err != nil {
		t.Fatal(err)
	}
	raw, down, err := ctl.Sample()
	if err != nil || down || raw != (RawSample{Z1: 0, Z2: 4095}) {
		t.Fatalf("up sample: %+v down %v err %v", raw, down, err)
	}
	if raw.Pressure() != 0 {
		t.Errorf("no contact: pressure %d", raw.Pressure())
	}
	raw, down, err = ctl.Sample()
	if err != nil || !down {
		t.Fatalf("down sample: down %v err %v", down, err)
	}
	if want := (RawSample{X: 2048, Y: 1001, Z1: 611, Z2: 2491}); raw != want {
		t.Errorf("down sample %+v, want %+v", raw, want)
	}
	if err := pb.Close(); err != nil {
		t.Error(err)
	}
	// Equation 2 on it: Rtouch = 400 * 2048/4096 * (2491/611 - 1).
	if got, want := raw.TouchResistance(400), 400*0.5*(2491.0/611-1); math.Abs(got-want) > 1e-9 {
		t.Errorf("touch resistance %v, want %v", got, want)
	}
	if r := (RawSample{X: 2048, Z2: 4095}).TouchResistance(400); !math.IsInf(r, 1) {
		t.Errorf("no contact: touch resistance %v, want +Inf", r)
	}
}

// A transfer's error comes back wrapped with the channel being read.
func TestTransferError(t *testing.T) {
	broken := errors.New("spidev: EIO")
	ctl, err := New(&scripted{err: broken}, hat, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = ctl.Sample()
	if !errors.Is(err, broken) || !strings.Contains(err.Error(), "reading Z1") {
		t.Errorf("err = %v", err)
	}
	if _, err := ctl.Read(context.Background()); !errors.Is(err, broken) {
		t.Errorf("Read: err = %v", err)
	}
}

// scripted answers each channel from its own list of results, the last one
// repeating; or fails every transfer with err.
type scripted struct {
	vals map[byte][]int
	err  error
	n    int
}

func (s *scripted) String() string               { return "scripted" }
func (s *scripted) Duplex() conn.Duplex          { return conn.Full }
func (s *scripted) TxPackets([]spi.Packet) error { return errors.New("scripted: TxPackets") }
func (s *scripted) Tx(w, r []byte) error {
	if s.err != nil {
		return s.err
	}
	q := s.vals[w[0]]
	if len(q) == 0 {
		return fmt.Errorf("scripted: nothing for control byte %#02x", w[0])
	}
	copy(r, encode(q[0]))
	if len(q) > 1 {
		s.vals[w[0]] = q[1:]
	}
	s.n++
	return nil
}

// The filter: the median of the kept conversions, and their spread; a
// sample whose X (or Y) conversions spread beyond the tolerance is rejected
// with ErrNoisy even though the median would hide the outlier, while a wild
// first conversion (settling) is discarded and does no harm.
func TestFilterRejectsOutlier(t *testing.T) {
	for _, c := range []struct {
		vals           []int
		median, spread int
	}{
		{[]int{2001, 1999, 2000}, 2000, 2},
		{[]int{2000, 2900, 2001}, 2001, 900},
		{[]int{7}, 7, 0},
		{[]int{10, 40, 20, 30}, 25, 30},
	} {
		m, s := filter(append([]int(nil), c.vals...))
		if m != c.median || s != c.spread {
			t.Errorf("filter(%v) = %d, %d; want %d, %d", c.vals, m, s, c.median, c.spread)
		}
	}
	pressed := func(x []int) *scripted {
		return &scripted{vals: map[byte][]int{CmdZ1: {600}, CmdZ2: {2500}, CmdX: x, CmdY: {1000}}}
	}
	ctl, _ := New(pressed([]int{4095, 2000, 2900, 2001}), hat, Options{})
	raw, down, err := ctl.Sample()
	if !errors.Is(err, ErrNoisy) || down || !strings.Contains(err.Error(), "X spread 900") {
		t.Errorf("outlier: %+v down %v err %v, want ErrNoisy for X", raw, down, err)
	}
	ctl, _ = New(pressed([]int{4095, 2000, 2002, 2001}), hat, Options{})
	raw, down, err = ctl.Sample()
	if err != nil || !down || raw.X != 2001 {
		t.Errorf("wild first conversion: %+v down %v err %v, want X 2001", raw, down, err)
	}
	// A wider tolerance takes the outlier, and the median ignores it.
	ctl, _ = New(pressed([]int{4095, 2000, 2900, 2001}), hat, Options{Tolerance: 1000})
	if raw, down, err = ctl.Sample(); err != nil || !down || raw.X != 2001 {
		t.Errorf("tolerance 1000: %+v down %v err %v, want X 2001", raw, down, err)
	}
	// The pressure read after the position decides: a contact gone by then
	// is up, whatever the position read.
	s := pressed([]int{2000})
	s.vals[CmdZ1] = []int{600, 600, 600, 600, 0}
	s.vals[CmdZ2] = []int{2500, 2500, 2500, 2500, 4095}
	ctl, _ = New(s, hat, Options{})
	if raw, down, err = ctl.Sample(); err != nil || down {
		t.Errorf("contact lost during the position: %+v down %v err %v, want up", raw, down, err)
	}
}

// readAll calls Read until the clock's end, and returns the reports.
func readAll(t *testing.T, ctl *Controller, each func(touch.Report)) []touch.Report {
	t.Helper()
	var out []touch.Report
	for {
		r, err := ctl.Read(context.Background())
		if errors.Is(err, errEnd) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if each != nil {
			each(r)
		}
		if out = append(out, r); len(out) > 10000 {
			t.Fatal("reports without end")
		}
	}
}

// pressedAt is a firm, steady finger at the screen's pixel (x, y) of hat.
func pressedAt(x, y float64) contact {
	return contact{down: true, u: (x + 0.5) / 480, v: (y + 0.5) / 320, ohms: firmOhms, p: 1}
}

// Debounce: one down sample among up ones reports nothing, and one up
// sample in a press does not lift it; with PressDebounce 1 the same lone
// sample is a tap, so it really did read down.
func TestDebounce(t *testing.T) {
	const poll = DefaultPollInterval
	spurious := func(t time.Duration) contact {
		if t == 30*poll {
			return pressedAt(100, 100)
		}
		return contact{}
	}
	clk := newClock(60 * poll)
	ctl, _ := New(&panel{clk: clk, at: spurious}, hat, Options{Clock: clk})
	if got := readAll(t, ctl, nil); len(got) != 0 {
		t.Errorf("one spurious down sample: reports %v", got)
	}
	clk = newClock(60 * poll)
	ctl, _ = New(&panel{clk: clk, at: spurious}, hat, Options{Clock: clk, PressDebounce: 1})
	got := readAll(t, ctl, nil)
	if len(got) != 2 || len(got[0].Points) != 1 || got[0].Points[0] != (touch.Point{X: 100, Y: 100}) || got[1].Points != nil ||
		got[0].Time != clk.start.Add(30*poll) || got[1].Time != clk.start.Add(32*poll) {
		t.Errorf("PressDebounce 1: reports %v, want a press at (100,100) at 300ms and a lift at 320ms", got)
	}

	dropout := func(t time.Duration) contact {
		if t == 30*poll {
			return contact{}
		}
		return pressedAt(200, 50)
	}
	clk = newClock(60 * poll)
	ctl, _ = New(&panel{clk: clk, at: dropout}, hat, Options{Clock: clk})
	got = readAll(t, ctl, nil)
	if len(got) != 1 || len(got[0].Points) != 1 || got[0].Points[0] != (touch.Point{X: 200, Y: 50}) || got[0].Time != clk.start.Add(poll) {
		t.Errorf("one up sample in a press: reports %v, want only the press, at the second sample", got)
	}

	// A sample the filter rejects breaks the run: down, rejected, down,
	// down is a press at the fourth sample, not the third.
	s := &scripted{vals: map[byte][]int{CmdZ1: {600}, CmdZ2: {2500}, CmdY: {1000}, CmdX: {
		0, 2000, 2000, 2000,
		0, 2000, 2900, 2000,
		0, 2000, 2000, 2000,
		0, 2000, 2000, 2000,
	}}}
	clk = newClock(3 * poll)
	ctl, _ = New(s, hat, Options{Clock: clk})
	got = readAll(t, ctl, nil)
	if len(got) != 1 || got[0].Time != clk.start.Add(3*poll) {
		t.Errorf("down, rejected, down, down: reports %v, want one press at the fourth sample", got)
	}
}

// Rotation 90 through the Mapping: on a panel read raw 0..4095 and shown
// turned 90 degrees (320x480 as the UI draws it), raw (3000, 1000), in the
// panel's top-right quarter, is the picture's (floor(1000/4095*320),
// floor((1-3000/4095)*480)) = (78, 128), near its top-left.
func TestRotation90(t *testing.T) {
	s := &scripted{vals: map[byte][]int{CmdZ1: {500}, CmdZ2: {3000}, CmdX: {3000}, CmdY: {1000}}}
	clk := newClock(0)
	ctl, err := New(s, full(320, 480, touch.Rotate90), Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	r, err := ctl.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := []touch.Point{{ID: 0, X: 78, Y: 128}}; len(r.Points) != 1 || r.Points[0] != want[0] {
		t.Errorf("rotation 90: %v, want %v", r.Points, want)
	}
}

// Calibrate recovers a known skew: a panel that reports the screen's
// normalised position s at raw position r with s = truth(r) (scaled,
// sheared and offset) is touched at three targets; the calibration found
// is truth, and with it the touches map onto their targets and a fourth
// touch onto its own. The same at rotation 90, the targets given as the UI
// draws them. Targets on one line, or off the screen, are refused.
func TestCalibrate(t *testing.T) {
	truth := touch.Calibration{1.04, 0.03, -0.02, -0.025, 0.96, 0.03}
	for _, m := range []touch.Mapping{hat, {X: hat.X, Y: hat.Y, Width: 320, Height: 480, Rotation: touch.Rotate90}} {
		// rawAt is the touch at the UI's pixel p: un-turn it, invert truth.
		rawAt := func(p image.Point) RawSample {
			var n [2]float64
			n[0], n[1] = touch.Unrotate(m.Rotation, (float64(p.X)+0.5)/float64(m.Width), (float64(p.Y)+0.5)/float64(m.Height))
			a, b, c, d, e, f := truth[0], truth[1], truth[2], truth[3], truth[4], truth[5]
			det := a*e - b*d
			x := (e*(n[0]-c) - b*(n[1]-f)) / det
			y := (a*(n[1]-f) - d*(n[0]-c)) / det
			return RawSample{
				X: int(math.Round(float64(m.X.Min) + x*float64(m.X.Max-m.X.Min))),
				Y: int(math.Round(float64(m.Y.Min) + y*float64(m.Y.Max-m.Y.Min))),
			}
		}
		w, h := m.Width, m.Height
		targets := [3]image.Point{{w / 10, h / 10}, {w * 9 / 10, h / 2}, {w / 2, h * 9 / 10}}
		var touched [3]RawSample
		for i, p := range targets {
			touched[i] = rawAt(p)
		}
		got, err := Calibrate(m, touched, targets)
		if err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if math.Abs(got[i]-truth[i]) > 2e-3 {
				t.Fatalf("rotation %d: calibration %v, want %v", m.Rotation, got, truth)
			}
		}
		m.Calibration = got
		for _, p := range append(targets[:], image.Point{w / 3, h / 4}) {
			r := rawAt(p)
			if x, y := m.Map(r.X, r.Y); (image.Point{x, y}) != p {
				t.Errorf("rotation %d: the touch aimed at %v maps to (%d,%d)", m.Rotation, p, x, y)
			}
		}
	}
	line := [3]image.Point{{10, 10}, {100, 100}, {200, 200}}
	if _, err := Calibrate(hat, [3]RawSample{{X: 300, Y: 300}, {X: 2000, Y: 1000}, {X: 1000, Y: 3000}}, line); !errors.Is(err, touch.ErrCalibration) {
		t.Errorf("targets on one line: %v", err)
	}
	if _, err := Calibrate(hat, [3]RawSample{}, [3]image.Point{{0, 0}, {480, 10}, {10, 10}}); err == nil {
		t.Error("a target off the screen was taken")
	}
}

// irqPin is PENIRQ: gpiotest's pin, whose WaitForEdge runs the test's
// script instead of waiting.
type irqPin struct {
	*gpiotest.Pin
	wait func() bool
}

func (p *irqPin) WaitForEdge(time.Duration) bool { return p.wait() }

// With PENIRQ, an idle panel is not read at all: Read waits for the falling
// edge (here two waits time out before the finger lands), then reads,
// reports the press and, PENIRQ high again, the lift; waiting again, it
// returns when its context ends.
func TestPenIRQ(t *testing.T) {
	clk := newClock(0)
	finger := contact{}
	p := &panel{clk: clk, at: func(time.Duration) contact { return finger }}
	pin := &irqPin{Pin: &gpiotest.Pin{N: "GPIO17", Num: 17, EdgesChan: make(chan gpio.Level, 1)}}
	waits := 0
	pin.wait = func() bool {
		if p.count != 0 {
			t.Errorf("%d conversions before PENIRQ fell", p.count)
		}
		if waits++; waits < 3 {
			return false
		}
		finger = pressedAt(50, 60)
		pin.Out(gpio.Low)
		return true
	}
	ctl, err := New(p, hat, Options{Clock: clk, PenIRQ: pin})
	if err != nil {
		t.Fatal(err)
	}
	if pin.Pull() != gpio.PullUp || pin.Read() != gpio.High {
		t.Errorf("PENIRQ set up with %v, reads %v; want the pull-up, high", pin.Pull(), pin.Read())
	}
	ctx, cancel := context.WithCancel(context.Background())
	r, err := ctl.Read(ctx)
	if err != nil || len(r.Points) != 1 || r.Points[0] != (touch.Point{X: 50, Y: 60}) {
		t.Fatalf("press: %v, %v", r, err)
	}
	if waits != 3 {
		t.Errorf("%d waits for PENIRQ, want 3", waits)
	}
	finger = contact{}
	pin.Out(gpio.High)
	if r, err = ctl.Read(ctx); err != nil || r.Points != nil {
		t.Fatalf("lift: %v, %v", r, err)
	}
	n := p.count
	pin.wait = func() bool { cancel(); return false }
	if _, err = ctl.Read(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("idle, context cancelled: %v", err)
	}
	if p.count != n {
		t.Errorf("%d conversions while PENIRQ was high", p.count-n)
	}
}

func TestNewRefuses(t *testing.T) {
	ok := &scripted{}
	for name, f := range map[string]func() error{
		"half duplex": func() error {
			_, err := New(&conntestConn{conntest.Playback{D: conn.Half}}, hat, Options{})
			return err
		},
		"bad mapping":      func() error { _, err := New(ok, touch.Mapping{}, Options{}); return err },
		"threshold 5000":   func() error { _, err := New(ok, hat, Options{Threshold: 5000}); return err },
		"20 conversions":   func() error { _, err := New(ok, hat, Options{Conversions: 20}); return err },
		"negative tol":     func() error { _, err := New(ok, hat, Options{Tolerance: -1}); return err },
		"negative bounce":  func() error { _, err := New(ok, hat, Options{LiftDebounce: -1}); return err },
		"negative polling": func() error { _, err := New(ok, hat, Options{PollInterval: -time.Second}); return err },
		"PENIRQ without edges": func() error {
			_, err := New(ok, hat, Options{PenIRQ: &gpiotest.Pin{N: "GPIO17"}})
			return err
		},
	} {
		if f() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// conntestConn makes a conntest.Playback a spi.Conn.
type conntestConn struct{ conntest.Playback }

func (c *conntestConn) TxPackets([]spi.Packet) error { return errors.New("TxPackets") }

// The recorded touch trace (testdata/trace.txt, testdata/README.md): a tap
// and a drag on a 480x320 hat, synthesised from the data sheet's
// electrical model with noise, a landing and a lifting finger whose contact
// comes and goes, and settling, recorded as the driver read it. Replayed
// conversion by conversion, it gives one press at the tap's pixel, one
// lift, then one press at the drag's start, moves along it, one lift; every
// point within 2 pixels of where the finger was; no report while no finger
// was there.
func TestTrace(t *testing.T) {
	const poll = DefaultPollInterval
	file := filepath.Join("testdata", "trace.txt")
	if *update {
		recordTrace(t, file)
	}
	ops, times := readTrace(t, file)
	pb, c := playback(t, ops)
	clk := newClock(traceEnd)
	ctl, err := New(c, hat, Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	reports := readAll(t, ctl, func(r touch.Report) {
		// The report is of the sample the trace recorded at that time.
		if at := clk.start.Add(times[pb.Count-1]); !r.Time.Equal(at) {
			t.Errorf("report at %v, of conversions recorded at %v", r.Time.Sub(clk.start), at.Sub(clk.start))
		}
	})
	if err := pb.Close(); err != nil {
		t.Errorf("trace not replayed to its end: %v", err)
	}

	si := -1 // the stroke under way
	down := false
	var moves []int
	for _, r := range reports {
		at := r.Time.Sub(clk.start)
		t.Logf("%4dms %v", at.Milliseconds(), r.Points)
		if len(r.Points) > 1 || len(r.Points) == 1 && r.Points[0].ID != 0 {
			t.Fatalf("%v: %v: want at most one point, ID 0", at, r.Points)
		}
		if !down && len(r.Points) == 0 {
			t.Fatalf("%v: a lift with nothing down", at)
		}
		if !down { // a press: which stroke?
			si++
			if si >= len(traceStrokes) {
				t.Fatalf("%v: a press with no finger there: %v", at, r.Points)
			}
			moves = append(moves, 0)
		} else if len(r.Points) == 1 {
			moves[si]++
		}
		s := traceStrokes[si]
		if at < s.land || at > s.gone+3*poll {
			t.Errorf("%v: report %v outside stroke %d (%v to %v)", at, r.Points, si, s.land, s.gone)
		}
		if len(r.Points) == 1 {
			u, v := s.pos(at)
			p := r.Points[0]
			if dx, dy := float64(p.X)+0.5-u*480, float64(p.Y)+0.5-v*320; math.Abs(dx) > 2 || math.Abs(dy) > 2 {
				t.Errorf("%v: point %v, the finger at (%.1f,%.1f)", at, p, u*480, v*320)
			}
			if !down && at > s.firm+3*poll {
				t.Errorf("%v: press of stroke %d late (firm at %v)", at, si, s.firm)
			}
		} else if at < s.lift {
			t.Errorf("%v: lift of stroke %d before the finger lifted (%v)", at, si, s.lift)
		}
		down = len(r.Points) == 1
	}
	if si != len(traceStrokes)-1 || down {
		t.Errorf("%d strokes reported, down at the end %v; want %d, lifted", si+1, down, len(traceStrokes))
	}
	if len(moves) == 2 && moves[1] < 10 {
		t.Errorf("the drag reported %d moves", moves[1])
	}
}

// stroke is one touch of the trace: the finger lands at land, is pressed
// from firm, starts to lift at lift and is gone at gone; it goes from from
// to to (u, v on the visible screen, 0..1) between move and moved.
type stroke struct {
	land, firm, lift, gone time.Duration
	from, to               [2]float64
	move, moved            time.Duration
}

func at(x, y float64) [2]float64 { return [2]float64{(x + 0.5) / 480, (y + 0.5) / 320} }

const ms = time.Millisecond

// traceStrokes: a tap at (120, 128), and a drag from (288, 96) to (384, 224)
// in 200 ms, on the 480x320 hat; traceEnd is when the trace ends.
var traceStrokes = []stroke{
	{land: 50 * ms, firm: 75 * ms, lift: 160 * ms, gone: 185 * ms, from: at(120, 128), to: at(120, 128)},
	{land: 310 * ms, firm: 335 * ms, lift: 600 * ms, gone: 625 * ms, from: at(288, 96), to: at(384, 224), move: 350 * ms, moved: 550 * ms},
}

const traceEnd = 700 * ms

// pos is where the finger is at t.
func (s stroke) pos(t time.Duration) (u, v float64) {
	f := 0.0
	if s.moved > s.move {
		f = max(0, min(1, float64(t-s.move)/float64(s.moved-s.move)))
	}
	return s.from[0] + f*(s.to[0]-s.from[0]), s.from[1] + f*(s.to[1]-s.from[1])
}

// traceFinger is the finger of the trace at t: landing, the contact's
// resistance falls from lightOhms to firmOhms exponentially and the plates
// touch in 30% to 100% of conversions; lifting, the reverse.
func traceFinger(t time.Duration) contact {
	for _, s := range traceStrokes {
		if t < s.land || t >= s.gone {
			continue
		}
		c := contact{down: true, ohms: firmOhms, p: 1}
		c.u, c.v = s.pos(t)
		var f float64 // how far from firm, 1 at the first or last touch
		switch {
		case t < s.firm:
			f = 1 - float64(t-s.land)/float64(s.firm-s.land)
		case t >= s.lift:
			f = float64(t-s.lift) / float64(s.gone-s.lift)
		}
		c.ohms = firmOhms * math.Pow(lightOhms/firmOhms, f)
		c.p = 1 - 0.7*f
		return c
	}
	return contact{}
}

// recordTrace runs the driver against the simulated panel with its noise,
// through spitest's Record, and writes the conversions it made.
func recordTrace(t *testing.T, file string) {
	clk := newClock(traceEnd)
	p := &panel{clk: clk, at: traceFinger, rng: rand.New(rand.NewPCG(2046, 7846)), noise: 2, settle: 0.35}
	rec := &spitest.Record{Port: p}
	c, err := rec.Connect(MaxSpeed, spi.Mode0, 8)
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := New(c, hat, Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, ctl, nil)
	var b bytes.Buffer
	b.WriteString(traceHeader)
	for i, op := range rec.Ops {
		if i > 0 && p.times[i] != p.times[i-1] {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%d %02x %d\n", p.times[i].Milliseconds(), op.W[0], decode([3]byte(op.R)))
	}
	if err := os.WriteFile(file, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

const traceHeader = `# XPT2046 touch trace: a tap, then a drag, on a 480x320 hat (raw 200..3900).
# SYNTHESISED from the data sheet's electrical model, not captured from
# hardware: see README.md. Regenerate with
#   go test ./drivers/touch/xpt2046 -run TestTrace -update
# One line per conversion, in the order made: the time in ms since the trace
# began, the control byte sent (hex; two zero bytes followed it), and the
# 12-bit result received. A blank line separates samples.
`

// readTrace parses the trace into the transfers it recorded and their times.
func readTrace(t *testing.T, file string) ([]conntest.IO, []time.Duration) {
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ops []conntest.IO
	var times []time.Duration
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		var at, value int
		var cmd byte
		if _, err := fmt.Sscanf(line, "%d %x %d", &at, &cmd, &value); err != nil || value < 0 || value > MaxValue {
			t.Fatalf("%s:%d: %q: want ms, control byte, 12-bit result (%v)", file, n, line, err)
		}
		ops = append(ops, conntest.IO{W: []byte{cmd, 0, 0}, R: encode(value)})
		times = append(times, time.Duration(at)*ms)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(ops) == 0 {
		t.Fatalf("%s: no conversions", file)
	}
	return ops, times
}

// fuzzConn answers every conversion with the next three bytes of data,
// from the start again at its end.
type fuzzConn struct {
	data []byte
	off  int
}

func (f *fuzzConn) String() string               { return "fuzz" }
func (f *fuzzConn) Duplex() conn.Duplex          { return conn.Full }
func (f *fuzzConn) TxPackets([]spi.Packet) error { return errors.New("fuzz: TxPackets") }
func (f *fuzzConn) Tx(w, r []byte) error {
	for i := range r {
		if len(f.data) == 0 {
			r[i] = 0
			continue
		}
		r[i] = f.data[f.off%len(f.data)]
		f.off++
	}
	return nil
}

// FuzzDecode feeds arbitrary response bytes through the sample path: no
// panic, every result 12 bits, every report at most one point, on the
// screen.
func FuzzDecode(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x00, 0x7F, 0xF8})
	f.Add([]byte{0x00, 0x40, 0x00})
	f.Add([]byte{0xFF, 0xFF, 0xFF, 0x00})
	var pressed []byte // Z1 600, Z2 2500, X 2048, Y 1000, Z1, Z2: always down
	for _, v := range []int{600, 2500, 2048, 1000, 600, 2500} {
		for range 4 {
			pressed = append(pressed, encode(v)...)
		}
	}
	f.Add(pressed)
	f.Add(append(pressed[:len(pressed)-30:len(pressed)-30], 0x7F, 0xF8, 0x00, 0x12))
	f.Fuzz(func(t *testing.T, data []byte) {
		for i := 0; i+3 <= len(data); i += 3 {
			if v := decode([3]byte(data[i : i+3])); v < 0 || v > MaxValue {
				t.Fatalf("decode(% x) = %d", data[i:i+3], v)
			}
		}
		clk := newClock(40 * DefaultPollInterval)
		m := hat
		m.Rotation, m.Width, m.Height = touch.Rotate270, 320, 480
		ctl, err := New(&fuzzConn{data: data}, m, Options{Clock: clk, PressDebounce: 1, LiftDebounce: 1})
		if err != nil {
			t.Fatal(err)
		}
		for range 5 {
			raw, _, err := ctl.Sample()
			if err != nil && !errors.Is(err, ErrNoisy) {
				t.Fatal(err)
			}
			for _, v := range []int{raw.X, raw.Y, raw.Z1, raw.Z2} {
				if v < 0 || v > MaxValue {
					t.Fatalf("raw %+v", raw)
				}
			}
		}
		for _, r := range readAll(t, ctl, nil) {
			if len(r.Points) > 1 {
				t.Fatalf("%d points", len(r.Points))
			}
			for _, p := range r.Points {
				if p.ID != 0 || p.X < 0 || p.X >= m.Width || p.Y < 0 || p.Y >= m.Height {
					t.Fatalf("point %+v off the %dx%d screen", p, m.Width, m.Height)
				}
			}
		}
	})
}
