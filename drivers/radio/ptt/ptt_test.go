package ptt

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/skyfleet/skyfleet/drivers/radio/afsk"
	"github.com/skyfleet/skyfleet/drivers/radio/ax25"
	"github.com/skyfleet/skyfleet/internal/ptytest"
)

// A pseudo-terminal has no modem lines: Linux's pty driver answers ENOTTY to
// TIOCMBIS, so RTS keying there fails at open with a clear error rather than
// seeming to work. (Real UARTs and USB serial adapters have them.)
func TestSerialOnPTY(t *testing.T) {
	_, slave := ptytest.Open(t)
	_, err := OpenSerial(slave, RTS, false)
	if !errors.Is(err, ErrNoModemLines) {
		t.Fatalf("RTS on a pty: %v, want ErrNoModemLines", err)
	}
	if _, err := OpenSerial(slave, Line(0x1000), false); err == nil {
		t.Error("a line other than RTS or DTR was taken")
	}
}

// GPIO keying through periph.io's test double: unkeyed at open, high when
// keyed, low when keyed inverted.
func TestGPIO(t *testing.T) {
	for _, invert := range []bool{false, true} {
		pin := &gpiotest.Pin{N: "GPIO17", Num: 17, L: gpio.Level(!invert)}
		g, err := NewGPIO(pin, invert)
		if err != nil {
			t.Fatal(err)
		}
		if pin.Read() != gpio.Level(invert) {
			t.Errorf("invert %v: %v at open, want unkeyed", invert, pin.Read())
		}
		g.Key(true)
		if pin.Read() != gpio.Level(!invert) {
			t.Errorf("invert %v: %v keyed", invert, pin.Read())
		}
		g.Close()
		if pin.Read() != gpio.Level(invert) {
			t.Errorf("invert %v: %v after close", invert, pin.Read())
		}
	}
}

// CM108 keying writes Dire Wolf's and hamlib's five-byte report: report ID 0,
// 0, the pins' levels, the pins' directions, 0; GPIO 3 is bit 2.
func TestCM108(t *testing.T) {
	dev := filepath.Join(t.TempDir(), "hidraw0")
	os.WriteFile(dev, nil, 0o600)
	c, err := OpenCM108(dev, 3, false)
	if err != nil {
		t.Fatal(err)
	}
	c.Key(true)
	c.Close()
	got, _ := os.ReadFile(dev)
	want := []byte{0, 0, 0, 4, 0, 0, 0, 4, 4, 0, 0, 0, 0, 4, 0} // open (unkeyed), keyed, close
	if !bytes.Equal(got, want) {
		t.Fatalf("reports % x, want % x", got, want)
	}
	if _, err := OpenCM108(dev, 9, false); err == nil {
		t.Error("GPIO 9 was taken")
	}
	inv := &CM108{mask: 1, invert: true}
	if r := inv.Report(true); r != [5]byte{0, 0, 0, 1, 0} {
		t.Errorf("inverted GPIO 1 keyed: % x", r)
	}
}

// fakeClock is the test's own time: Sleep moves it on at once.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }
func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.now = c.now.Add(d)
	return ctx.Err()
}

// recordKeyer notes when it was keyed and unkeyed, in the test's clock.
type recordKeyer struct {
	clk    *fakeClock
	events []string
	at     []time.Time
}

func (k *recordKeyer) Key(on bool) error {
	e := "off"
	if on {
		e = "on"
	}
	k.events, k.at = append(k.events, e), append(k.at, k.clk.now)
	return nil
}
func (k *recordKeyer) Close() error { return nil }

// p-persistent CSMA: the transmitter waits a slot for each look at a busy
// channel and for each unlucky draw on a clear one, then keys; full duplex
// keys at once; a channel busy past MaxWait is given up with ErrBusy.
func TestCSMA(t *testing.T) {
	clk := &fakeClock{now: time.Unix(1000, 0)}
	k := &recordKeyer{clk: clk}
	looks := 0
	busy := func() bool { looks++; return looks <= 3 }
	draws := []float64{0.9, 0.1}
	tx := &Transmitter{Keyer: k, Busy: busy, Clock: clk, Params: Params{SlotTime: 100 * time.Millisecond, Persistence: 0.25},
		Rand: func() float64 { d := draws[0]; draws = draws[1:]; return d }}
	start := clk.now
	if _, err := tx.Transmit(context.Background(), func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	// Three busy slots, one unlucky draw (0.9 >= 0.25), then 0.1 < 0.25.
	if waited := k.at[0].Sub(start); waited != 400*time.Millisecond || len(k.events) != 2 {
		t.Fatalf("keyed after %v (events %v), want 400ms", waited, k.events)
	}
	full := &Transmitter{Keyer: k, Busy: func() bool { return true }, Clock: clk, Params: Params{FullDuplex: true}}
	before := clk.now
	full.Transmit(context.Background(), func(context.Context) error { return nil })
	if k.at[2] != before {
		t.Errorf("full duplex waited %v", k.at[2].Sub(before))
	}
	stuck := &Transmitter{Keyer: k, Busy: func() bool { return true }, Clock: clk, Params: Params{MaxWait: 2 * time.Second}}
	if _, err := stuck.Transmit(context.Background(), func(context.Context) error { t.Fatal("played on a busy channel"); return nil }); !errors.Is(err, ErrBusy) {
		t.Errorf("busy channel: %v", err)
	}
	// play's error comes back, and the radio is unkeyed all the same.
	n := len(k.events)
	_, err := full.Transmit(context.Background(), func(context.Context) error { return errors.New("sound card gone") })
	if err == nil || k.events[len(k.events)-1] != "off" || len(k.events) != n+2 {
		t.Errorf("failed play: %v, events %v", err, k.events[n:])
	}
}

// TXDELAY and TXTAIL, measured in the test's own clock: the modulator's audio
// for one frame "plays" on a sound card that moves the clock on by its length;
// the demodulator, run over the same audio, says at which sample the frame's
// closing flag ended. From key-on to the frame's first bit is TXDELAY, and
// from the closing flag to key-off is TXTAIL less that flag, each within half
// a flag (both go out as whole flags) and two bit times (the demodulator's
// filters delay its report by about one).
func TestTXDelayAndTail(t *testing.T) {
	const rate = 22050
	for _, c := range []struct{ delay, tail time.Duration }{
		{300 * time.Millisecond, 50 * time.Millisecond},
		{500 * time.Millisecond, 100 * time.Millisecond},
		{100 * time.Millisecond, 20 * time.Millisecond},
	} {
		f, _ := ax25.NewUI(ax25.Address{Call: "APZSKY"}, ax25.Address{Call: "KB1ABC"}, nil, []byte("timing")).Encode()
		m := &afsk.Modulator{Rate: rate, TXDelay: c.delay, TXTail: c.tail}
		audio, err := m.Transmission([][]byte{f})
		if err != nil {
			t.Fatal(err)
		}
		endSample := int64(-1)
		var n int64
		d, _ := afsk.NewDemodulator(rate, func([]byte) { endSample = n })
		for _, s := range audio {
			n++
			d.Write([]int16{s})
		}
		if endSample < 0 {
			t.Fatal("the demodulator did not find the frame")
		}
		clk := &fakeClock{now: time.Unix(2000, 0)}
		k := &recordKeyer{clk: clk}
		tx := &Transmitter{Keyer: k, Clock: clk, Params: Params{FullDuplex: true}}
		tx.Transmit(context.Background(), func(context.Context) error {
			clk.now = clk.now.Add(time.Duration(len(audio)) * time.Second / rate)
			return nil
		})
		keyOn, keyOff := k.at[0], k.at[1]
		bit := time.Second / afsk.Baud
		flagEnd := keyOn.Add(time.Duration(endSample) * time.Second / rate)
		frameBits := 0 // the frame as sent, stuffing included
		ones := 0
		for _, b := range f {
			for i := range 8 {
				frameBits++
				if b>>i&1 == 1 {
					if ones++; ones == 5 {
						frameBits++
						ones = 0
					}
				} else {
					ones = 0
				}
			}
		}
		frameStart := flagEnd.Add(-time.Duration(frameBits+8) * bit)
		gotDelay, gotTail := frameStart.Sub(keyOn), keyOff.Sub(flagEnd)
		// Both go out as whole flags (8 bits, 6.7 ms): within half a flag
		// of the setting, plus the two bits of the measurement.
		tol := 4*bit + 2*bit
		if diff := gotDelay - c.delay; diff < -tol || diff > tol {
			t.Errorf("TXDELAY %v measured, set %v", gotDelay, c.delay)
		}
		if diff := gotTail - (c.tail - 8*bit); diff < -tol || diff > tol {
			t.Errorf("TXTAIL %v after the closing flag measured, set %v (less the flag)", gotTail, c.tail)
		}
		t.Logf("set TXDELAY %v, TXTAIL %v: measured %v from key-on to the frame, %v from the closing flag to key-off", c.delay, c.tail, gotDelay.Round(time.Millisecond/10), gotTail.Round(time.Millisecond/10))
	}
}
