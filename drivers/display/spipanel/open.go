package spipanel

import (
	"errors"
	"fmt"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spireg"
	"periph.io/x/host/v3"

	"github.com/skyfleet/skyfleet/drivers/display"
)

// Config is how a hat wires its panel to the Pi, for Open.
type Config struct {
	// Port is the SPI port by periph.io's name: "SPI0.0" is
	// /dev/spidev0.0 (CE0), where the hats put the panel.
	Port string
	// DC and Reset are the D/C and RESET lines by pin name: "GPIO24" and
	// "GPIO25" on the Waveshare and PiTFT-style hats. Reset "" is a hat
	// that does not wire it.
	DC, Reset string
	// Clock is the SPI clock; 0 is 16 MHz, which all three controllers
	// take on the hats (fbtft's overlays run them at 16 to 32 MHz).
	Clock physic.Frequency
	// Mode is the SPI mode; the zero value is mode 0. Modules without a
	// chip-select line (some 240x240 ST7789s) need spi.Mode3.
	Mode spi.Mode
}

// DefaultClock is the SPI clock Open uses when Config.Clock is 0.
const DefaultClock = 16 * physic.MegaHertz

// Open opens the panel that cfg wires, through periph.io's drivers for the
// board (host.Init; spidev for the port, the SoC's GPIO for the pins), and
// sets it up with New. Close also closes the port. Errors: the host's
// drivers, an unknown port or pin name, the port's Connect, and New's.
func Open(cfg Config, c Controller, rot display.Rotation, opts ...Option) (*Panel, error) {
	if _, err := host.Init(); err != nil {
		return nil, fmt.Errorf("spipanel: the board's drivers: %w", err)
	}
	dc := gpioreg.ByName(cfg.DC)
	if dc == nil {
		return nil, fmt.Errorf("spipanel: D/C pin %q: %w", cfg.DC, errNoPin)
	}
	var reset gpio.PinOut
	if cfg.Reset != "" {
		p := gpioreg.ByName(cfg.Reset)
		if p == nil {
			return nil, fmt.Errorf("spipanel: RESET pin %q: %w", cfg.Reset, errNoPin)
		}
		reset = p
	}
	port, err := spireg.Open(cfg.Port)
	if err != nil {
		return nil, fmt.Errorf("spipanel: SPI port %q: %w", cfg.Port, err)
	}
	clock := cfg.Clock
	if clock == 0 {
		clock = DefaultClock
	}
	bus, err := port.Connect(clock, cfg.Mode, 8)
	if err != nil {
		port.Close()
		return nil, fmt.Errorf("spipanel: SPI port %q at %v, %v: %w", cfg.Port, clock, cfg.Mode, err)
	}
	p, err := New(bus, dc, reset, c, rot, opts...)
	if err != nil {
		port.Close()
		return nil, err
	}
	p.closer = port
	return p, nil
}

// errNoPin is a pin name this board does not have.
var errNoPin = errors.New("this board has no such pin")
