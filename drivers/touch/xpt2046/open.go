package xpt2046

import (
	"errors"
	"fmt"

	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spireg"
	"periph.io/x/host/v3"

	"github.com/skyfleet/skyfleet/drivers/touch"
)

// MaxSpeed is the SPI clock Open asks for: the ADS7846's 125 kHz
// throughput at 16 clocks per conversion (the data sheet's "Digital
// Interface"), and the spi-max-frequency the hats' device-tree overlays
// give their XPT2046.
const MaxSpeed = 2 * physic.MegaHertz

// Open connects to the controller on the SPI port called port in
// periph.io's registry ("SPI0.1" is /dev/spidev0.1, the touch chip select
// of the common hats; the display takes SPI0.0) at MaxSpeed, SPI mode 0,
// 8-bit words, and returns New's controller; Close releases the port.
// penIRQ names the PENIRQ pin ("GPIO17" on most hats), or is "" to poll;
// it replaces opts.PenIRQ. Errors: the host's drivers do not load, no such
// port or pin, or New's.
func Open(port, penIRQ string, m touch.Mapping, opts Options) (*Controller, error) {
	if _, err := host.Init(); err != nil {
		return nil, fmt.Errorf("xpt2046: the board's SPI and GPIO drivers: %w", err)
	}
	if penIRQ != "" {
		pin := gpioreg.ByName(penIRQ)
		if pin == nil {
			return nil, fmt.Errorf("xpt2046: PENIRQ %s: this board has no such pin", penIRQ)
		}
		opts.PenIRQ = pin
	}
	p, err := spireg.Open(port)
	if err != nil {
		return nil, fmt.Errorf("xpt2046: SPI port %s: %w", port, err)
	}
	conn, err := p.Connect(MaxSpeed, spi.Mode0, 8)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("xpt2046: connecting to %s: %w", port, err), p.Close())
	}
	c, err := New(conn, m, opts)
	if err != nil {
		return nil, errors.Join(err, p.Close())
	}
	c.closer = p
	return c, nil
}
