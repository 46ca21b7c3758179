// Package spipanel drives the SPI TFT controllers of the small Raspberry Pi
// hats from user space: the ILI9341 (2.4" and 2.8", 240x320), the ST7789
// (1.3" 240x240, 2" and 2.4" 240x320) and the ILI9486 (3.5", 320x480). The
// shipped kernel has spidev but no fbtft, so the driver speaks the
// controllers' MIPI DBI type C (4-line serial) protocol itself: one SPI
// stream and a D/C GPIO line, low while a command byte goes out and high for
// its parameters and for pixel data, plus an optional RESET line.
//
// A Panel implements display.Screen. New resets the controller and sends its
// init sequence; Draw sends a rectangle of the picture as a window (CASET,
// PASET, RAMWR) and its pixels, in transfers no larger than the SPI port
// takes. The core takes periph.io interfaces (spi.Conn, gpio.PinOut), so tests
// drive it with recorders; Open wires it to the Pi's spidev and GPIO.
//
// The controllers turn the picture themselves: MADCTL (36h) is set for the
// rotation and the picture's rows are streamed as they are (see
// Controller.MADCTLFor for why).
package spipanel

import (
	"fmt"
	"image"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/spi"

	"github.com/skyfleet/skyfleet/drivers/display"
)

// The commands used here. They are the MIPI DCS numbers, the same on the
// three controllers (ILI9341 datasheet V1.11 §8.2, ST7789VW datasheet §9.1
// "System Function Command Table 1", ILI9486 datasheet "Command List").
const (
	cmdSWRESET = 0x01 // Software Reset (ILI9341 §8.2.2)
	cmdSLPOUT  = 0x11 // Sleep Out (ILI9341 §8.2.12)
	cmdINVON   = 0x21 // Display Inversion ON (ILI9341 §8.2.16)
	cmdDISPON  = 0x29 // Display ON (ILI9341 §8.2.19)
	cmdCASET   = 0x2A // Column Address Set (ILI9341 §8.2.20)
	cmdPASET   = 0x2B // Page Address Set, RASET on the ST7789 (ILI9341 §8.2.21)
	cmdRAMWR   = 0x2C // Memory Write (ILI9341 §8.2.22)
	cmdMADCTL  = 0x36 // Memory Access Control (ILI9341 §8.2.29)
	cmdCOLMOD  = 0x3A // Pixel Format Set / Interface Pixel Format (ILI9341 §8.2.33)
)

// The bits of MADCTL's parameter (ILI9341 datasheet V1.11 §8.2.29 Memory
// Access Control; ST7789VW and ILI9486 "MADCTL (36h)" are the same).
const (
	MY  byte = 0x80 // row address order: the page address counts bottom to top
	MX  byte = 0x40 // column address order: the column address counts right to left
	MV  byte = 0x20 // row/column exchange: CASET addresses rows, PASET columns
	ML  byte = 0x10 // vertical refresh order (the panel's scan, not the addressing)
	BGR byte = 0x08 // the panel's colour filter is B, G, R: swap red and blue
	MH  byte = 0x04 // horizontal refresh order (the panel's scan, not the addressing)
)

// Step is one command of an init sequence: the command byte (sent with D/C
// low), its parameter bytes (D/C high; none for most) and how long to wait
// after it before the next command, as the datasheet requires.
type Step struct {
	Cmd    byte
	Params []byte
	Delay  time.Duration
}

// Controller describes a panel controller as a hat wires it: its sizes, its
// pixel format on the wire, its init sequence and its MADCTL at rotation 0.
// The exported ones (ILI9341, ST7789, ST7789Square, ILI9486,
// ILI9486Waveshare) may be copied and changed for another module: a glass of
// another size or offset, a different colour order, or module-specific
// power and gamma Steps appended to Init.
type Controller struct {
	// Name names the controller in errors.
	Name string
	// Native is the glass's size in pixels, columns x rows, in the
	// controller's own orientation (MADCTL at rotation 0): the native
	// size that display.Rotation turns.
	Native image.Point
	// Memory is the controller's frame memory, columns x pages (ILI9341
	// and ST7789 240x320, ILI9486 320x480). CASET and PASET take 16-bit
	// addresses, so neither may exceed 65536.
	Memory image.Point
	// Offset is where the glass's first column and row sit in the frame
	// memory, addressed without mirroring: 240x240 ST7789 modules use the
	// first 240 of the 320 rows, so their offset is 0,0, and the rows to
	// skip appear only when MY counts from the other end (ST7789Square).
	Offset image.Point
	// Format is the pixel format on the wire: display.RGB565BE (COLMOD
	// 55h, two bytes a pixel) or display.RGB666 (COLMOD 66h, three bytes
	// a pixel, the colour in the top six bits of each).
	Format display.Format
	// Bus16 sends every command and parameter as a 16-bit word, 00h then
	// the byte, as the hats that put the ILI9486's 16-bit parallel bus
	// behind shift registers need (Waveshare 3.5" (A) and (B): the Linux
	// fbtft overlay for them sets regwidth=16). Pixels are then RGB565BE,
	// one word each.
	Bus16 bool
	// Init is sent after the hardware reset, in order. New then sends
	// MADCTL for the rotation and DISPON.
	Init []Step
	// MADCTL is the parameter of MADCTL (36h) at rotation 0: the mirror
	// bit the module's wiring needs for an upright, unmirrored picture,
	// and BGR for the modules whose glass is B, G, R. It must not have MV.
	MADCTL byte
}

// The reset timing of the three controllers (ILI9341 datasheet V1.11, reset
// timing table; ST7789VW and ILI9486 the same): RESX low for at least 10 µs
// (tRW); the controller is ready 5 ms after RESX rises, or 120 ms if it was
// reset while out of sleep (tRT). The pulse is held longer than the minimum
// because hats put an RC filter on the line.
const (
	resetPulse = 10 * time.Millisecond
	resetWait  = 120 * time.Millisecond
)

// The first two steps of every sequence.
//
// Software Reset (01h): the controller takes 5 ms before the next command, or
// 120 ms before Sleep Out when it was out of sleep (ILI9341 datasheet V1.11
// §8.2.2; ST7789VW SWRESET the same). Without a RESET line it may be running
// from before, so the longer wait is taken always.
//
// Sleep Out (11h): 5 ms before the next command and 120 ms before Sleep In
// while the supply voltages and the oscillator settle and the self-diagnostic
// runs (ILI9341 §8.2.12; ST7789VW SLPOUT; ILI9486 Sleep OUT the same). The
// 120 ms are waited so that the display is on only once it is stable.
var (
	stepSWRESET = Step{Cmd: cmdSWRESET, Delay: 120 * time.Millisecond}
	stepSLPOUT  = Step{Cmd: cmdSLPOUT, Delay: 120 * time.Millisecond}
)

// ILI9341 is the ILI9341 of the 2.4" and 2.8" hats (Adafruit PiTFT 2.8"
// and its copies): a 240x320 glass, landscape at rotation 90 or 270 (a
// 320x240 picture), 16-bit RGB565 on the wire.
//
// Init: SWRESET, SLPOUT, then COLMOD 55h: DPI[2:0] and DBI[2:0] = 101,
// 16 bits a pixel (ILI9341 datasheet V1.11 §8.2.33 COLMOD: Pixel Format Set;
// the 16-bit 4-line serial data format is R4..R0 G5..G3, G2..G0 B4..B0, most
// significant byte first). Power, VCOM and gamma stay at their reset
// defaults.
//
// MADCTL at rotation 0 is MX|BGR (48h): the modules' glass has its columns
// wired right to left and a BGR colour filter (as the Linux fbtft driver
// fb_ili9341 with "bgr" and Adafruit's driver set it).
var ILI9341 = Controller{
	Name:   "ILI9341",
	Native: image.Point{240, 320},
	Memory: image.Point{240, 320},
	Format: display.RGB565BE,
	Init: []Step{
		stepSWRESET,
		stepSLPOUT,
		{Cmd: cmdCOLMOD, Params: []byte{0x55}},
	},
	MADCTL: MX | BGR,
}

// ST7789 is the ST7789 (ST7789V, ST7789VW) with a 240x320 glass (2" and
// 2.4" modules, Pimoroni Display HAT Mini), 16-bit RGB565 on the wire.
//
// Init: SWRESET, SLPOUT, COLMOD 55h (ST7789VW datasheet, COLMOD (3Ah):
// 65K colours on the RGB interface, 16 bits a pixel on the MCU interface;
// the reset default is 18 bits), then INVON (21h): these modules' IPS glass
// shows the colours inverted unless the controller inverts them back (what
// Pimoroni's and Adafruit's drivers send). MADCTL at rotation 0 is 00h:
// RGB, unmirrored (as fbtft's fb_st7789v).
var ST7789 = Controller{
	Name:   "ST7789",
	Native: image.Point{240, 320},
	Memory: image.Point{240, 320},
	Format: display.RGB565BE,
	Init: []Step{
		stepSWRESET,
		stepSLPOUT,
		{Cmd: cmdCOLMOD, Params: []byte{0x55}},
		{Cmd: cmdINVON},
	},
	MADCTL: 0,
}

// ST7789Square is the ST7789 with a 240x240 glass (1.3" and 1.54" modules:
// Pimoroni Pirate Audio, Adafruit Mini PiTFT 1.3"). The glass is on the first
// 240 of the frame memory's 320 rows, so the rotations that count rows from
// the bottom (MY: 180 and, with the exchange, 270) address it from row 80:
// New works that offset out from Memory and Offset.
var ST7789Square = Controller{
	Name:   "ST7789 240x240",
	Native: image.Point{240, 240},
	Memory: image.Point{240, 320},
	Format: display.RGB565BE,
	Init:   ST7789.Init,
	MADCTL: 0,
}

// ILI9486 is the ILI9486 on its own 4-line serial interface (the bare 3.5"
// 320x480 SPI modules): a 320x480 glass, landscape at rotation 90 or 270 (a
// 480x320 picture).
//
// Over that interface it takes 18 bits a pixel: COLMOD 66h (ILI9486
// datasheet, Interface Pixel Format (3Ah): DPI and DBI = 110, 18 bits a
// pixel), three bytes a pixel, each colour in the top six bits (the serial
// interface's 18-bit data format). Init: SWRESET, SLPOUT, COLMOD; power,
// VCOM and gamma stay at their defaults. MADCTL at rotation 0 is MX|BGR (48h,
// as TFT_eSPI's ILI9486 driver sets it for these modules).
//
// The Waveshare-style 3.5" hats are not wired this way: see ILI9486Waveshare.
var ILI9486 = Controller{
	Name:   "ILI9486",
	Native: image.Point{320, 480},
	Memory: image.Point{320, 480},
	Format: display.RGB666,
	Init: []Step{
		stepSWRESET,
		stepSLPOUT,
		{Cmd: cmdCOLMOD, Params: []byte{0x66}},
	},
	MADCTL: MX | BGR,
}

// ILI9486Waveshare is the ILI9486 of the Waveshare 3.5" (A) and (B) hats and
// their copies (MHS, GoodTFT "LCD35"): shift registers turn SPI into the
// controller's 16-bit parallel bus, so every command and parameter goes as a
// 16-bit word (00h, byte) and every pixel as one RGB565 word: COLMOD 55h,
// 16 bits a pixel (ILI9486 datasheet, Interface Pixel Format (3Ah)). This is
// what the Linux fbtft overlay for the hat (waveshare35a: regwidth=16,
// buswidth=8, COLMOD 55h, D/C on GPIO24, RESET on GPIO25) and fbcp-ili9341's
// ILI9486 driver send. MADCTL at rotation 0 is MY|BGR (88h, fbtft's
// fb_ili9486 with the overlay's bgr); the overlay's rotate=90 (MADCTL 28h,
// fbtft counting counter-clockwise) is rotation 270 here.
var ILI9486Waveshare = Controller{
	Name:   "ILI9486 (16-bit bus)",
	Native: image.Point{320, 480},
	Memory: image.Point{320, 480},
	Format: display.RGB565BE,
	Bus16:  true,
	Init: []Step{
		stepSWRESET,
		stepSLPOUT,
		{Cmd: cmdCOLMOD, Params: []byte{0x55}},
	},
	MADCTL: MY | BGR,
}

// check says what is wrong with c.
func (c Controller) check() error {
	switch {
	case c.Native.X <= 0 || c.Native.Y <= 0:
		return fmt.Errorf("spipanel: %s: glass of %v pixels", c.Name, c.Native)
	case c.Offset.X < 0 || c.Offset.Y < 0 || c.Offset.X+c.Native.X > c.Memory.X || c.Offset.Y+c.Native.Y > c.Memory.Y:
		return fmt.Errorf("spipanel: %s: a %v glass at %v does not fit a %v frame memory", c.Name, c.Native, c.Offset, c.Memory)
	case c.Memory.X > 1<<16 || c.Memory.Y > 1<<16:
		return fmt.Errorf("spipanel: %s: a %v frame memory is past 16-bit addresses", c.Name, c.Memory)
	case c.Format != display.RGB565BE && c.Format != display.RGB666:
		return fmt.Errorf("spipanel: %s: pixel format %v: the controllers take RGB565BE or RGB666", c.Name, c.Format)
	case c.Bus16 && c.Format != display.RGB565BE:
		return fmt.Errorf("spipanel: %s: a 16-bit bus takes RGB565BE pixels, not %v", c.Name, c.Format)
	case c.MADCTL&MV != 0:
		return fmt.Errorf("spipanel: %s: MADCTL %#02x at rotation 0 has MV", c.Name, c.MADCTL)
	}
	return nil
}

// MADCTLFor is MADCTL's parameter for the rotation rot (0, 90, 180 or 270;
// anything else is an error): c.MADCTL with the rotation's bits flipped.
//
// The addressing is the datasheets' "memory data write/read direction" table
// (ILI9341 datasheet V1.11 §8.2.29 with its MV/MX/MY figure; Sitronix prints
// it as a table): MV exchanges the addresses (CASET's then counts frame
// memory rows, PASET's columns), then MX counts columns from the right and MY
// rows from the bottom. So, with the picture streamed as it is:
//
//	90:  MV|MX: the picture's x runs down the glass, its y right to left
//	180: MX|MY: both counted from the other end
//	270: MV|MY: x runs up the glass, y left to right
//
// each as display.Rotation defines the turn (at 90 the picture's top-left is
// the glass's top-right). For the ILI9341 that gives 48h, 28h, 88h and E8h:
// Adafruit's driver's rotations 0 to 3, and fbtft's fb_ili9341 at its rotate
// 0, 270, 180 and 90 (fbtft counts counter-clockwise; at 270 it also sets
// ML, the refresh order).
//
// Why the controller and not display.Buffer.Blit turns the picture: the
// bytes sent are the same either way (a turned window has the same pixels),
// but with MADCTL the picture's rows are read in order, the window is the
// rectangle as drawn, and no turned copy of the screen is kept. What MADCTL
// does not turn is the glass's refresh scan (ML, MH), which only matters for
// tearing, and nothing here syncs to the scan.
func (c Controller) MADCTLFor(rot display.Rotation) (byte, error) {
	var turn byte
	switch rot {
	case 0:
	case 90:
		turn = MV | MX
	case 180:
		turn = MX | MY
	case 270:
		turn = MV | MY
	default:
		return 0, fmt.Errorf("spipanel: rotation %d: want 0, 90, 180 or 270", rot)
	}
	return c.MADCTL ^ turn, nil
}

// origin is the controller's column and page address of the picture's
// top-left when MADCTL is m: the addresses whose frame memory cells are the
// glass, worked back through the exchange and the mirrors.
func (c Controller) origin(m byte) image.Point {
	col := c.Offset.X // first frame memory column of the glass, as addressed
	if m&MX != 0 {
		col = c.Memory.X - c.Offset.X - c.Native.X
	}
	row := c.Offset.Y
	if m&MY != 0 {
		row = c.Memory.Y - c.Offset.Y - c.Native.Y
	}
	if m&MV != 0 {
		return image.Point{row, col}
	}
	return image.Point{col, row}
}

// DefaultChunkSize is the most bytes Draw sends in one SPI transfer unless
// the port says otherwise: spidev's default bufsiz, 4096 bytes (the
// module's parameter /sys/module/spidev/parameters/bufsiz).
const DefaultChunkSize = 4096

// Stats count what a Panel has sent since New, its init sequence included.
// The UI's "bytes written" for a redraw is the difference of two.
type Stats struct {
	Draws        uint64 // Draw calls that sent pixels
	Transfers    uint64 // SPI transfers (chip-select cycles)
	BytesWritten uint64 // bytes over SPI: commands, parameters and pixels
}

// Sub is s less t: what was sent between two readings.
func (s Stats) Sub(t Stats) Stats {
	return Stats{Draws: s.Draws - t.Draws, Transfers: s.Transfers - t.Transfers, BytesWritten: s.BytesWritten - t.BytesWritten}
}

// Option changes how New sets up a Panel.
type Option func(*Panel)

// WithSleep makes the Panel wait with sleep (durations as the datasheets
// give them) instead of time.Sleep: tests pass a recorder.
func WithSleep(sleep func(time.Duration)) Option {
	return func(p *Panel) { p.sleep = sleep }
}

// Panel is an initialised controller; it implements display.Screen. Its
// methods may be called from several goroutines.
type Panel struct {
	// ChunkSize is the most bytes of pixel data sent in one SPI transfer,
	// rounded down to whole pixels. New sets it to the port's
	// MaxTxSize (conn.Limits) if it reports one, else to
	// DefaultChunkSize; a larger value is still cut to the port's limit.
	// Change it before the first Draw, not during one.
	ChunkSize int

	conn   spi.Conn
	dc     gpio.PinOut
	reset  gpio.PinOut
	c      Controller
	rot    display.Rotation
	madctl byte
	origin image.Point
	sleep  func(time.Duration)
	closer io.Closer // the port, when Open opened it

	mu     sync.Mutex
	closed bool
	stats  Stats
	buf    []byte // the window's pixels, converted
	word   []byte // a command or its parameters, as sent
}

var _ display.Screen = (*Panel)(nil)

// New sets up the panel on bus (an SPI connection at 8 bits a word, mode
// 0), the D/C line dc and the RESET line reset (nil when the hat does not
// wire it: then only the software reset is done), turned by rot:
//
//  1. hardware reset: RESET low for 10 ms, high, 120 ms (the reset timing:
//     tRW ≥ 10 µs, tRT ≤ 120 ms);
//  2. c.Init, each step followed by its delay;
//  3. MADCTL (36h) with c.MADCTLFor(rot);
//  4. DISPON (29h).
//
// The frame memory is not cleared: whatever it held shows until the first
// Draw, which should be the whole picture. Errors: a nil bus or dc, an
// invalid Controller or rotation, and any pin or SPI error, wrapped with
// the command being sent.
func New(bus spi.Conn, dc, reset gpio.PinOut, c Controller, rot display.Rotation, opts ...Option) (*Panel, error) {
	if bus == nil || dc == nil {
		return nil, fmt.Errorf("spipanel: %s: an SPI connection and a D/C pin are needed", c.Name)
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	m, err := c.MADCTLFor(rot)
	if err != nil {
		return nil, err
	}
	p := &Panel{ChunkSize: DefaultChunkSize, conn: bus, dc: dc, reset: reset, c: c, rot: rot,
		madctl: m, origin: c.origin(m), sleep: time.Sleep}
	if l, ok := bus.(conn.Limits); ok && l.MaxTxSize() > 0 {
		p.ChunkSize = l.MaxTxSize()
	}
	for _, o := range opts {
		o(p)
	}
	if reset != nil {
		if err := reset.Out(gpio.Low); err != nil {
			return nil, fmt.Errorf("spipanel: %s: RESET %s low: %w", c.Name, reset, err)
		}
		p.sleep(resetPulse)
		if err := reset.Out(gpio.High); err != nil {
			return nil, fmt.Errorf("spipanel: %s: RESET %s high: %w", c.Name, reset, err)
		}
		p.sleep(resetWait)
	}
	for _, s := range c.Init {
		if err := p.command(s.Cmd, s.Params...); err != nil {
			return nil, err
		}
		if s.Delay > 0 {
			p.sleep(s.Delay)
		}
	}
	if err := p.command(cmdMADCTL, m); err != nil {
		return nil, err
	}
	if err := p.command(cmdDISPON); err != nil {
		return nil, err
	}
	return p, nil
}

// Size is the picture's size: the glass turned by the rotation (an ILI9486
// at 90 is 480x320).
func (p *Panel) Size() image.Point { return p.rot.PictureSize(p.c.Native) }

// Format is the pixel format sent to the controller.
func (p *Panel) Format() display.Format { return p.c.Format }

// Stats returns the counters.
func (p *Panel) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Draw sends the rectangle r of pic (clipped to it; pic must be Size()
// large) to the controller: CASET (2Ah) with the first and last column,
// PASET (2Bh) with the first and last page, each a 16-bit big-endian
// address, inclusive (ILI9341 datasheet V1.11 §8.2.20, §8.2.21), then
// RAMWR (2Ch, §8.2.22) and the window's pixels, rows top to bottom, each
// left to right, in c.Format, in transfers of at most ChunkSize bytes cut at
// whole pixels. An empty or off-screen r sends nothing. Errors: a wrong
// picture size, a closed panel (os.ErrClosed), and pin or SPI errors,
// wrapped with what was being sent; after one, the next Draw starts a new
// window, so drawing the whole picture again repairs the screen.
func (p *Panel) Draw(pic *image.RGBA, r image.Rectangle) error {
	if pic == nil {
		return fmt.Errorf("spipanel: %s: no picture", p.c.Name)
	}
	if pic.Rect.Size() != p.Size() {
		return fmt.Errorf("spipanel: %s: a %v picture on a %v screen", p.c.Name, pic.Rect.Size(), p.Size())
	}
	r = r.Intersect(pic.Rect)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("spipanel: %s: %w", p.c.Name, os.ErrClosed)
	}
	if r.Empty() {
		return nil
	}
	a := r.Min.Sub(pic.Rect.Min).Add(p.origin)
	b := a.Add(r.Size()).Sub(image.Point{1, 1})
	if err := p.command(cmdCASET, byte(a.X>>8), byte(a.X), byte(b.X>>8), byte(b.X)); err != nil {
		return err
	}
	if err := p.command(cmdPASET, byte(a.Y>>8), byte(a.Y), byte(b.Y>>8), byte(b.Y)); err != nil {
		return err
	}
	if err := p.command(cmdRAMWR); err != nil {
		return err
	}
	p.stats.Draws++

	// Convert the window with display's own conversion: a view of pic
	// whose origin is r's top-left, blitted unturned into a buffer of
	// exactly the window, so its rows come out packed.
	bpp := p.c.Format.BytesPerPixel()
	n := r.Dx() * r.Dy() * bpp
	if cap(p.buf) < n {
		p.buf = make([]byte, n)
	}
	view := &image.RGBA{Pix: pic.Pix[pic.PixOffset(r.Min.X, r.Min.Y):], Stride: pic.Stride, Rect: image.Rectangle{Max: r.Size()}}
	win := display.Buffer{Pix: p.buf[:n], Stride: r.Dx() * bpp, Format: p.c.Format, Native: r.Size()}
	win.Blit(view, view.Rect, 0)

	chunk := p.chunk()
	for off := 0; off < n; off += chunk {
		end := min(off+chunk, n)
		if err := p.tx(gpio.High, win.Pix[off:end]); err != nil {
			return fmt.Errorf("spipanel: %s: RAMWR pixels %d to %d of %d in %v: %w", p.c.Name, off/bpp, end/bpp, n/bpp, r, err)
		}
	}
	return nil
}

// chunk is the transfer size for pixel data: ChunkSize cut to the port's
// limit and to whole pixels (and so to whole 16-bit words on a 16-bit bus).
func (p *Panel) chunk() int {
	n := p.ChunkSize
	if n <= 0 {
		n = DefaultChunkSize
	}
	if l, ok := p.conn.(conn.Limits); ok && l.MaxTxSize() > 0 {
		n = min(n, l.MaxTxSize())
	}
	bpp := p.c.Format.BytesPerPixel()
	return max(n/bpp, 1) * bpp
}

// Close releases the panel; the controller keeps showing its picture (no
// command is sent and the RESET line stays high). Draw then returns
// os.ErrClosed. A panel from Open also closes its SPI port.
func (p *Panel) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	if p.closer != nil {
		if err := p.closer.Close(); err != nil {
			return fmt.Errorf("spipanel: %s: closing the SPI port: %w", p.c.Name, err)
		}
	}
	return nil
}

// command sends cmd with D/C low, then its parameters, if any, with D/C
// high, each as a 16-bit word on a 16-bit bus.
func (p *Panel) command(cmd byte, params ...byte) error {
	if err := p.tx(gpio.Low, p.words(cmd)); err != nil {
		return fmt.Errorf("spipanel: %s: sending %s: %w", p.c.Name, cmdName(cmd), err)
	}
	if len(params) == 0 {
		return nil
	}
	if err := p.tx(gpio.High, p.words(params...)); err != nil {
		return fmt.Errorf("spipanel: %s: sending %s's parameters % x: %w", p.c.Name, cmdName(cmd), slices.Clone(params), err)
	}
	return nil
}

// words is b as sent, in the Panel's scratch buffer (so that commands cost
// no allocation): the bytes themselves, or on a 16-bit bus each as a word,
// 00h first.
func (p *Panel) words(b ...byte) []byte {
	p.word = p.word[:0]
	for _, v := range b {
		if p.c.Bus16 {
			p.word = append(p.word, 0)
		}
		p.word = append(p.word, v)
	}
	return p.word
}

// tx sets D/C to dc and sends w in one transfer.
func (p *Panel) tx(dc gpio.Level, w []byte) error {
	if err := p.dc.Out(dc); err != nil {
		return fmt.Errorf("D/C %s: %w", p.dc, err)
	}
	if err := p.conn.Tx(w, nil); err != nil {
		return err
	}
	p.stats.Transfers++
	p.stats.BytesWritten += uint64(len(w))
	return nil
}

// cmdName names a command for errors.
func cmdName(cmd byte) string {
	names := map[byte]string{cmdSWRESET: "SWRESET", cmdSLPOUT: "SLPOUT", cmdINVON: "INVON", cmdDISPON: "DISPON",
		cmdCASET: "CASET", cmdPASET: "PASET", cmdRAMWR: "RAMWR", cmdMADCTL: "MADCTL", cmdCOLMOD: "COLMOD"}
	if n, ok := names[cmd]; ok {
		return fmt.Sprintf("%s (%02Xh)", n, cmd)
	}
	return fmt.Sprintf("command %02Xh", cmd)
}
