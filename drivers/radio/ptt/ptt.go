// Package ptt keys a radio's transmitter (push-to-talk) and sequences a
// transmission around it: p-persistent carrier sense, key, the audio (whose
// TXDELAY and TXTAIL flags keep the carrier up before and after the frames),
// unkey. The keying methods are the ones sound-card interfaces use: a serial
// port's RTS or DTR line (Digirig, most cables), a GPIO pin (a Pi HAT), the
// GPIO of a CM108-style USB sound chip (AIOC, DINAH, home-made fobs), or VOX,
// where the audio itself keys the radio. It knows hardware and timing, never
// what is sent.
package ptt

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
	"periph.io/x/conn/v3/gpio"
)

// Keyer keys and unkeys a transmitter.
type Keyer interface {
	// Key turns the transmitter on (true) or off. Errors: the device's.
	Key(on bool) error
	// Close unkeys and releases the device.
	Close() error
}

// Line is a serial port's output line that keys the radio.
type Line int

// The lines (termios TIOCM_RTS and TIOCM_DTR).
const (
	RTS Line = unix.TIOCM_RTS
	DTR Line = unix.TIOCM_DTR
)

func (l Line) String() string {
	if l == DTR {
		return "DTR"
	}
	return "RTS"
}

// ErrNoModemLines is a serial device that has no RTS or DTR line to set: a
// pseudo-terminal, say, whose driver answers ENOTTY to TIOCMBIS.
var ErrNoModemLines = errors.New("ptt: the device has no modem control lines")

// Serial keys the radio with a serial port's RTS or DTR line, set with the
// TIOCMBIS and TIOCMBIC ioctls (github.com/tarm/serial cannot set them). The
// port may be the same one a KISS TNC or the radio's CAT control uses: only
// the line is touched.
type Serial struct {
	f      *os.File
	line   Line
	invert bool
}

// OpenSerial opens dev and unkeys at once (on open the kernel raises RTS and
// DTR, which on many cables keys the radio). invert keys with the line low.
// Errors: the device cannot be opened, or has no modem lines (ErrNoModemLines).
func OpenSerial(dev string, line Line, invert bool) (*Serial, error) {
	if line != RTS && line != DTR {
		return nil, fmt.Errorf("ptt: line %d is neither RTS nor DTR", int(line))
	}
	f, err := os.OpenFile(dev, os.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("ptt: %w", err)
	}
	s := &Serial{f: f, line: line, invert: invert}
	if err := s.Key(false); err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

// Key sets the line for on (high, or low when inverted).
func (s *Serial) Key(on bool) error {
	req := uint(unix.TIOCMBIC)
	if on != s.invert {
		req = unix.TIOCMBIS
	}
	if err := unix.IoctlSetPointerInt(int(s.f.Fd()), req, int(s.line)); err != nil {
		if errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("%w: %s on %s: %v", ErrNoModemLines, s.line, s.f.Name(), err)
		}
		return fmt.Errorf("ptt: %s on %s: %w", s.line, s.f.Name(), err)
	}
	return nil
}

// Keyed reads the line back (TIOCMGET) and reports whether it keys the radio.
func (s *Serial) Keyed() (bool, error) {
	v, err := unix.IoctlGetInt(int(s.f.Fd()), unix.TIOCMGET)
	if err != nil {
		return false, fmt.Errorf("ptt: reading %s on %s: %w", s.line, s.f.Name(), err)
	}
	return (v&int(s.line) != 0) != s.invert, nil
}

// Close unkeys and closes the port.
func (s *Serial) Close() error {
	return errors.Join(s.Key(false), s.f.Close())
}

// GPIO keys the radio with a GPIO pin through periph.io (on the Pi,
// periph.io/x/host/v3 registers the pins; tests use gpiotest).
type GPIO struct {
	pin    gpio.PinOut
	invert bool
}

// NewGPIO drives pin, unkeyed at once. invert keys with the pin low.
func NewGPIO(pin gpio.PinOut, invert bool) (*GPIO, error) {
	g := &GPIO{pin: pin, invert: invert}
	return g, g.Key(false)
}

// Key drives the pin high for on (low when inverted).
func (g *GPIO) Key(on bool) error {
	l := gpio.Level(on != g.invert)
	if err := g.pin.Out(l); err != nil {
		return fmt.Errorf("ptt: GPIO %s: %w", g.pin, err)
	}
	return nil
}

// Close unkeys; the pin stays an output.
func (g *GPIO) Close() error { return g.Key(false) }

// CM108 keys the radio with a GPIO pin of a C-Media CM108/CM119 USB sound chip
// or one that copies its interface (the AIOC), through its HID device
// (/dev/hidrawN): an output report of five bytes, report ID 0, a zero, the
// pins' levels and the pins' directions (1 is output), and a zero, GPIO 1 in
// bit 0. Dire Wolf and hamlib write the same report.
type CM108 struct {
	f      *os.File
	mask   byte
	invert bool
}

// OpenCM108 opens the hidraw device dev to drive GPIO pin gpio (1 to 8;
// interfaces usually key with GPIO 3), unkeyed at once.
func OpenCM108(dev string, pin int, invert bool) (*CM108, error) {
	if pin < 1 || pin > 8 {
		return nil, fmt.Errorf("ptt: CM108 GPIO %d: the chips have GPIO 1 to 8", pin)
	}
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("ptt: %w (a hidraw device is root's unless a udev rule gives it to the audio group)", err)
	}
	c := &CM108{f: f, mask: 1 << (pin - 1), invert: invert}
	if err := c.Key(false); err != nil {
		f.Close()
		return nil, err
	}
	return c, nil
}

// Report is the HID output report that sets the pin for on.
func (c *CM108) Report(on bool) [5]byte {
	var data byte
	if on != c.invert {
		data = c.mask
	}
	return [5]byte{0, 0, data, c.mask, 0}
}

// Key writes the report for on.
func (c *CM108) Key(on bool) error {
	r := c.Report(on)
	if n, err := c.f.Write(r[:]); err != nil || n != len(r) {
		return fmt.Errorf("ptt: CM108 %s: wrote %d of %d bytes: %v", c.f.Name(), n, len(r), err)
	}
	return nil
}

// Close unkeys and closes the device.
func (c *CM108) Close() error {
	return errors.Join(c.Key(false), c.f.Close())
}

// VOX keys nothing: the radio keys itself on the audio. The TXDELAY flags
// then also cover the VOX circuit's attack.
type VOX struct{}

// Key does nothing.
func (VOX) Key(bool) error { return nil }

// Close does nothing.
func (VOX) Close() error { return nil }
