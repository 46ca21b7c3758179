package spipanel

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
	"periph.io/x/conn/v3/spi"

	"github.com/skyfleet/skyfleet/drivers/display"
)

// op is one SPI transfer and the D/C level while it went out.
type op struct {
	dc gpio.Level
	w  []byte
}

// recorder is an spi.Conn that keeps every transfer with the level of the
// D/C pin (a gpiotest.Pin) sampled at that moment, and notes each in a log
// shared with the reset pin and the sleeps: "C 2a" for a command byte, "D 00
// 14 00 1d" for data. It reports max as conn.Limits' MaxTxSize, and fails
// its failAt'th transfer (counting from 1) with errBoom.
type recorder struct {
	dc     *gpiotest.Pin
	log    *[]string
	ops    []op
	max    int
	failAt int
	n      int
}

var errBoom = errors.New("spidev: EIO")

func (r *recorder) String() string               { return "recorder" }
func (r *recorder) Duplex() conn.Duplex          { return conn.Half }
func (r *recorder) TxPackets([]spi.Packet) error { return errors.New("recorder: TxPackets not used") }
func (r *recorder) MaxTxSize() int               { return r.max }

func (r *recorder) Tx(w, read []byte) error {
	r.n++
	if r.n == r.failAt {
		return errBoom
	}
	if r.max > 0 && len(w) > r.max {
		return fmt.Errorf("recorder: %d bytes in one transfer, the port takes %d", len(w), r.max)
	}
	l := r.dc.Read()
	r.ops = append(r.ops, op{dc: l, w: slices.Clone(w)})
	kind := "D"
	if l == gpio.Low {
		kind = "C"
	}
	if len(w) <= 16 {
		*r.log = append(*r.log, fmt.Sprintf("%s % x", kind, w))
	} else {
		*r.log = append(*r.log, fmt.Sprintf("%s [%d bytes]", kind, len(w)))
	}
	return nil
}

// logPin is a RESET pin that notes its levels in the log.
type logPin struct {
	*gpiotest.Pin
	log *[]string
}

func (p *logPin) Out(l gpio.Level) error {
	*p.log = append(*p.log, fmt.Sprintf("reset %v", l))
	return p.Pin.Out(l)
}

// rig is a panel on recorders.
type rig struct {
	log   []string
	bus   *recorder
	dc    *gpiotest.Pin
	reset *logPin
}

func newRig(max int) *rig {
	g := &rig{dc: &gpiotest.Pin{N: "GPIO24", Num: 24}}
	g.bus = &recorder{dc: g.dc, log: &g.log, max: max}
	g.reset = &logPin{Pin: &gpiotest.Pin{N: "GPIO25", Num: 25, L: gpio.High}, log: &g.log}
	return g
}

func (g *rig) sleep(d time.Duration) { g.log = append(g.log, fmt.Sprintf("sleep %v", d)) }

func (g *rig) open(t testing.TB, c Controller, rot display.Rotation) *Panel {
	t.Helper()
	p, err := New(g.bus, g.dc, g.reset, c, rot, WithSleep(g.sleep))
	if err != nil {
		t.Fatal(err)
	}
	g.clear()
	return p
}

func (g *rig) clear() { g.log, g.bus.ops = nil, nil }

// The init sequences, byte by byte, with D/C low for commands and high for
// parameters, and the waits, as the datasheets give them:
//
//   - RESX low for at least 10 µs, then up to 120 ms before the first
//     command (reset timing, tRW and tRT);
//   - SWRESET (01h), then 120 ms: 5 ms from Sleep In, 120 ms if it was
//     awake, which without a reset line it may be (ILI9341 V1.11 §8.2.2);
//   - SLPOUT (11h), then 120 ms before the display is turned on (§8.2.12);
//   - COLMOD (3Ah) 55h, 16 bits a pixel (§8.2.33), or 66h, 18 bits, on the
//     ILI9486's own serial interface;
//   - INVON (21h) on the ST7789's IPS glass;
//   - MADCTL (36h): rotation 0 is the module's wiring: ILI9341 MX|BGR (48h,
//     Adafruit's and fbtft's value for these modules), ST7789 00h (fbtft's
//     fb_st7789v), ILI9486 MX|BGR (TFT_eSPI), the Waveshare hat MY|BGR (88h,
//     fbtft's fb_ili9486 with the overlay's bgr);
//   - DISPON (29h).
//
// The Waveshare hat's 16-bit bus sends every byte as a word, 00h first (the
// fbtft overlay's regwidth=16).
func TestInitSequence(t *testing.T) {
	reset := []string{"reset Low", "sleep 10ms", "reset High", "sleep 120ms"}
	for _, tc := range []struct {
		c    Controller
		want []string
	}{
		{ILI9341, []string{"C 01", "sleep 120ms", "C 11", "sleep 120ms", "C 3a", "D 55", "C 36", "D 48", "C 29"}},
		{ST7789, []string{"C 01", "sleep 120ms", "C 11", "sleep 120ms", "C 3a", "D 55", "C 21", "C 36", "D 00", "C 29"}},
		{ST7789Square, []string{"C 01", "sleep 120ms", "C 11", "sleep 120ms", "C 3a", "D 55", "C 21", "C 36", "D 00", "C 29"}},
		{ILI9486, []string{"C 01", "sleep 120ms", "C 11", "sleep 120ms", "C 3a", "D 66", "C 36", "D 48", "C 29"}},
		{ILI9486Waveshare, []string{"C 00 01", "sleep 120ms", "C 00 11", "sleep 120ms", "C 00 3a", "D 00 55", "C 00 36", "D 00 88", "C 00 29"}},
	} {
		g := newRig(0)
		if _, err := New(g.bus, g.dc, g.reset, tc.c, 0, WithSleep(g.sleep)); err != nil {
			t.Fatalf("%s: %v", tc.c.Name, err)
		}
		want := append(slices.Clone(reset), tc.want...)
		if !slices.Equal(g.log, want) {
			t.Errorf("%s: init\n got %q\nwant %q", tc.c.Name, g.log, want)
		}
		if g.reset.Read() != gpio.High {
			t.Errorf("%s: RESET left low", tc.c.Name)
		}
		// Without a RESET line only the software reset is done.
		g = newRig(0)
		if _, err := New(g.bus, g.dc, nil, tc.c, 0, WithSleep(g.sleep)); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(g.log, tc.want) {
			t.Errorf("%s without RESET: init\n got %q\nwant %q", tc.c.Name, g.log, tc.want)
		}
	}
}

// The colours drawn and their encodings on the wire, worked out by hand from
// the datasheets' data formats: RGB565 is R4..R0 G5..G3, G2..G0 B4..B0, most
// significant byte first (ILI9341 V1.11, 16-bit 4-line serial format); the
// ILI9486's 18-bit serial format is one byte a colour, its six bits at the
// top.
var (
	orange    = color.RGBA{0xff, 0x80, 0x08, 0xff} // 11111 100000 00001
	orange565 = []byte{0xfc, 0x01}
	orange666 = []byte{0xfc, 0x80, 0x08}
	blue      = color.RGBA{0x10, 0x20, 0xf8, 0xff} // 00010 001000 11111
	blue565   = []byte{0x11, 0x1f}
	blue666   = []byte{0x10, 0x20, 0xf8}
)

// A 10x5 rectangle at (20,30) is the window CASET 20..29, PASET 30..34
// (start and end inclusive, 16-bit big-endian: §8.2.20, §8.2.21), then RAMWR
// and exactly 10*5 pixels, the first being the rectangle's top-left, the last
// its bottom-right.
func TestDrawWindow(t *testing.T) {
	for _, tc := range []struct {
		c           Controller
		head        []string
		first, last []byte
	}{
		{ILI9341, []string{"C 2a", "D 00 14 00 1d", "C 2b", "D 00 1e 00 22", "C 2c"}, orange565, blue565},
		{ST7789, []string{"C 2a", "D 00 14 00 1d", "C 2b", "D 00 1e 00 22", "C 2c"}, orange565, blue565},
		{ILI9486, []string{"C 2a", "D 00 14 00 1d", "C 2b", "D 00 1e 00 22", "C 2c"}, orange666, blue666},
		{ILI9486Waveshare, []string{"C 00 2a", "D 00 00 00 14 00 00 00 1d", "C 00 2b", "D 00 00 00 1e 00 00 00 22", "C 00 2c"}, orange565, blue565},
	} {
		g := newRig(0)
		p := g.open(t, tc.c, 0)
		pic := image.NewRGBA(image.Rectangle{Max: p.Size()})
		pic.SetRGBA(20, 30, orange)
		pic.SetRGBA(29, 34, blue)
		pic.SetRGBA(30, 34, orange) // just outside
		if err := p.Draw(pic, image.Rect(20, 30, 30, 35)); err != nil {
			t.Fatal(err)
		}
		if len(g.log) < len(tc.head) || !slices.Equal(g.log[:len(tc.head)], tc.head) {
			t.Fatalf("%s: window\n got %q\nwant %q", tc.c.Name, g.log, tc.head)
		}
		var data []byte
		for _, o := range g.bus.ops[len(tc.head):] {
			if o.dc != gpio.High {
				t.Fatalf("%s: a command among the pixels: % x", tc.c.Name, o.w)
			}
			data = append(data, o.w...)
		}
		bpp := len(tc.first)
		if len(data) != 10*5*bpp {
			t.Fatalf("%s: %d bytes of pixels, want %d", tc.c.Name, len(data), 10*5*bpp)
		}
		if got := data[:bpp]; !slices.Equal(got, tc.first) {
			t.Errorf("%s: first pixel % x, want % x", tc.c.Name, got, tc.first)
		}
		if got := data[len(data)-bpp:]; !slices.Equal(got, tc.last) {
			t.Errorf("%s: last pixel % x, want % x", tc.c.Name, got, tc.last)
		}
		for i := bpp; i < len(data)-bpp; i++ {
			if data[i] != 0 {
				t.Fatalf("%s: byte %d of the pixels is %#x: a pixel from outside the rectangle?", tc.c.Name, i, data[i])
			}
		}
	}
}

// gram emulates a controller's frame memory from its datasheet: CASET and
// PASET set the window, RAMWR resets the address counters to its start, each
// pixel goes to the address and the column counts up to the window's end,
// then the next page. The addresses reach the memory as the "memory data
// write/read direction" table has it (ILI9341 V1.11 §8.2.29; ST7735 §9.10
// prints it in full): with MV the column address is the memory's row and the
// page address its column; then MX counts columns from the right and MY rows
// from the bottom. It knows nothing of the driver's origin or offsets.
type gram struct {
	mem     image.Point
	format  display.Format
	bus16   bool
	px      []color.RGBA // Memory.X*Memory.Y cells, row by row; A 0 never written
	madctl  byte
	cmd     byte
	params  []byte
	pix     []byte
	sc, ec  int
	sp, ep  int
	col, pg int
	errs    []string
}

func newGRAM(c Controller) *gram {
	return &gram{mem: c.Memory, format: c.Format, bus16: c.Bus16, px: make([]color.RGBA, c.Memory.X*c.Memory.Y)}
}

func (g *gram) fail(f string, a ...any) {
	if len(g.errs) < 5 {
		g.errs = append(g.errs, fmt.Sprintf(f, a...))
	}
}

// unword undoes the 16-bit bus for commands and parameters.
func (g *gram) unword(w []byte) []byte {
	if !g.bus16 {
		return w
	}
	if len(w)%2 != 0 {
		g.fail("%d bytes on a 16-bit bus", len(w))
		return nil
	}
	var b []byte
	for i := 0; i < len(w); i += 2 {
		if w[i] != 0 {
			g.fail("word %02x%02x: a byte register's high byte is not 0", w[i], w[i+1])
		}
		b = append(b, w[i+1])
	}
	return b
}

func (g *gram) run(ops []op) {
	for _, o := range ops {
		if o.dc == gpio.Low {
			b := g.unword(o.w)
			if len(b) != 1 {
				g.fail("command transfer of %d bytes", len(b))
				continue
			}
			g.cmd, g.params = b[0], nil
			if g.cmd == cmdRAMWR {
				g.col, g.pg, g.pix = g.sc, g.sp, nil
			}
			continue
		}
		if g.cmd == cmdRAMWR {
			g.pixels(o.w)
			continue
		}
		g.params = append(g.params, g.unword(o.w)...)
		switch {
		case g.cmd == cmdCASET && len(g.params) == 4:
			g.sc, g.ec = int(g.params[0])<<8|int(g.params[1]), int(g.params[2])<<8|int(g.params[3])
		case g.cmd == cmdPASET && len(g.params) == 4:
			g.sp, g.ep = int(g.params[0])<<8|int(g.params[1]), int(g.params[2])<<8|int(g.params[3])
		case g.cmd == cmdMADCTL && len(g.params) == 1:
			g.madctl = g.params[0]
		}
	}
}

// at is the cell at memory column x, row y.
func (g *gram) at(x, y int) color.RGBA { return g.px[y*g.mem.X+x] }

func (g *gram) pixels(b []byte) {
	bpp := g.format.BytesPerPixel()
	g.pix = append(g.pix, b...)
	for len(g.pix) >= bpp {
		var c color.RGBA
		if g.format == display.RGB565BE {
			v := uint16(g.pix[0])<<8 | uint16(g.pix[1])
			c = color.RGBA{uint8(v>>11) << 3, uint8(v>>5&63) << 2, uint8(v&31) << 3, 0xff}
		} else {
			c = color.RGBA{g.pix[0] & 0xfc, g.pix[1] & 0xfc, g.pix[2] & 0xfc, 0xff}
		}
		g.pix = g.pix[bpp:]
		g.put(c)
	}
}

func (g *gram) put(c color.RGBA) {
	cols, pages := g.mem.X, g.mem.Y
	if g.madctl&MV != 0 {
		cols, pages = pages, cols
	}
	if g.col >= cols || g.pg >= pages || g.pg > g.ep {
		g.fail("pixel at column %d, page %d: outside the memory (%dx%d) or the window", g.col, g.pg, cols, pages)
		return
	}
	a, b := g.col, g.pg
	if g.madctl&MV != 0 {
		a, b = b, a
	}
	if g.madctl&MX != 0 {
		a = g.mem.X - 1 - a
	}
	if g.madctl&MY != 0 {
		b = g.mem.Y - 1 - b
	}
	g.px[b*g.mem.X+a] = c
	if g.col++; g.col > g.ec {
		g.col = g.sc
		g.pg++
	}
}

// Rotation 90 on the ILI9341: MADCTL is 28h, MV|BGR (Adafruit's rotation 1;
// fbtft's fb_ili9341 at its rotate=270, which counts counter-clockwise, adds
// only ML, the refresh order).
// By the datasheet's table MV alone sends column address c to memory row c
// and page address p to memory column p, so the picture's top-left lands in
// memory column 0, row 0, its top-right (319,0) in column 0, row 319, and its
// bottom-left (0,239) in column 239, row 0. These modules wire memory
// column 0 to the glass's right edge (why rotation 0 needs MX), so the
// picture's top-left is the glass's top-right: display.Rotation's 90.
func TestRotation90ILI9341(t *testing.T) {
	g := newRig(0)
	p, err := New(g.bus, g.dc, g.reset, ILI9341, 90, WithSleep(g.sleep))
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.Index(g.log, "C 36"); i < 0 || g.log[i+1] != "D 28" {
		t.Fatalf("MADCTL at 90: log %q, want C 36, D 28", g.log)
	}
	if p.Size() != (image.Point{320, 240}) {
		t.Fatalf("size %v at 90, want 320x240", p.Size())
	}
	mem := newGRAM(ILI9341)
	mem.run(g.bus.ops)
	g.clear()
	red, green := color.RGBA{0xf8, 0, 0, 0xff}, color.RGBA{0, 0xfc, 0, 0xff} // exact in RGB565
	pic := image.NewRGBA(image.Rectangle{Max: p.Size()})
	pic.SetRGBA(0, 0, red)
	pic.SetRGBA(319, 0, blue)
	pic.SetRGBA(0, 239, green)
	if err := p.Draw(pic, pic.Rect); err != nil {
		t.Fatal(err)
	}
	if g.log[0] != "C 2a" || g.log[1] != "D 00 00 01 3f" || g.log[3] != "D 00 00 00 ef" {
		t.Errorf("window %q: want columns 0..319 and pages 0..239 (exchanged)", g.log[:5])
	}
	mem.run(g.bus.ops)
	if mem.errs != nil {
		t.Fatal(mem.errs)
	}
	for _, w := range []struct {
		at image.Point
		c  color.RGBA
	}{{image.Point{0, 0}, red}, {image.Point{0, 319}, blue}, {image.Point{239, 0}, green}} {
		if got := mem.at(w.at.X, w.at.Y); got != w.c {
			t.Errorf("memory column %d, row %d: %v, want %v", w.at.X, w.at.Y, got, w.c)
		}
	}
	if want := display.Rotation(90).ToPanel(image.Point{0, 0}, ILI9341.Native); want != (image.Point{239, 0}) {
		t.Errorf("display.Rotation 90 puts the top-left at %v; the glass's top-right is memory column 0", want)
	}
}

// encode puts v (< 512) in a colour that RGB565 and RGB666 both carry whole:
// the high five bits in red, the low four in green.
func encode(v int) color.RGBA { return color.RGBA{uint8(v>>4) << 3, uint8(v&15) << 4, 0, 0xff} }
func decode(c color.RGBA) int { return int(c.R>>3)<<4 | int(c.G>>4) }

// where draws the whole picture twice, once with each pixel's x as its colour
// and once with its y, through the emulated controller, and returns which
// picture pixel each memory cell shows (row by row; -1,-1 where none).
func where(t *testing.T, c Controller, rot display.Rotation) []image.Point {
	t.Helper()
	g := newRig(4096)
	p, err := New(g.bus, g.dc, nil, c, rot, WithSleep(g.sleep))
	if err != nil {
		t.Fatal(err)
	}
	mem := newGRAM(c)
	mem.run(g.bus.ops)
	g.clear()
	size := p.Size()
	pic := image.NewRGBA(image.Rectangle{Max: size})
	got := make([]image.Point, len(mem.px))
	for pass := range 2 {
		for y := range size.Y {
			for x := range size.X {
				pic.SetRGBA(x, y, encode([]int{x, y}[pass]))
			}
		}
		clear(mem.px)
		if err := p.Draw(pic, pic.Rect); err != nil {
			t.Fatal(err)
		}
		mem.run(g.bus.ops)
		g.clear()
		if mem.errs != nil {
			t.Fatalf("%s at %d: %v", c.Name, rot, mem.errs)
		}
		for i, col := range mem.px {
			switch {
			case col.A == 0:
				got[i] = image.Point{-1, -1}
			case pass == 0:
				got[i].X = decode(col)
			default:
				got[i].Y = decode(col)
			}
		}
	}
	return got
}

// Every rotation of every controller, through the emulated frame memory: the
// whole picture lands on the glass's cells (Offset and Native within Memory)
// and nowhere else, and each picture pixel lands on the cell that
// display.Rotation's ToPanel names, the panel's frame being where rotation 0
// puts each pixel. The 240x240 ST7789 at 180 and 270 is where the row offset
// of 80 shows (the glass is memory rows 0..239, and MY counts from 319).
func TestRotationsThroughGRAM(t *testing.T) {
	for _, c := range []Controller{ILI9341, ST7789, ST7789Square, ILI9486, ILI9486Waveshare} {
		glass := image.Rectangle{Min: c.Offset, Max: c.Offset.Add(c.Native)}
		panel := where(t, c, 0) // memory cell -> panel pixel
		for _, rot := range []display.Rotation{0, 90, 180, 270} {
			got := where(t, c, rot)
			bad := 0
			for i, q := range got {
				cell := image.Point{i % c.Memory.X, i / c.Memory.X}
				switch {
				case !cell.In(glass) && q.X >= 0:
					t.Errorf("%s at %d: picture pixel %v written to memory %v, off the glass %v", c.Name, rot, q, cell, glass)
					bad++
				case cell.In(glass) && q.X < 0:
					t.Errorf("%s at %d: memory %v, on the glass, not written", c.Name, rot, cell)
					bad++
				case cell.In(glass) && rot.ToPanel(q, c.Native) != panel[i]:
					t.Errorf("%s at %d: picture pixel %v is on panel pixel %v, want %v", c.Name, rot, q, panel[i], rot.ToPanel(q, c.Native))
					bad++
				}
				if bad >= 3 {
					break
				}
			}
		}
	}
	// The offset on the wire: the square ST7789 at 180 (MX|MY) addresses
	// its glass at pages 80..319, so the picture's top-left is column 0,
	// page 80, which MX and MY send to memory column 239, row 239.
	g := newRig(0)
	p := g.open(t, ST7789Square, 180)
	p.Draw(image.NewRGBA(image.Rect(0, 0, 240, 240)), image.Rect(0, 0, 1, 1))
	if g.log[1] != "D 00 00 00 00" || g.log[3] != "D 00 50 00 50" {
		t.Errorf("ST7789 240x240 at 180, picture pixel 0,0: window %q, want column 0, page 80", g.log[:4])
	}
}

// A full redraw goes in transfers no larger than the port takes (spidev's
// bufsiz, 4096 by default) nor than ChunkSize, cut at whole pixels, and adds
// up to width*height*bytes a pixel.
func TestChunks(t *testing.T) {
	for _, tc := range []struct {
		c         Controller
		rot       display.Rotation
		max       int // the port's MaxTxSize, 0 for none
		chunkSize int // 0 to leave New's
		wantChunk int
	}{
		{ILI9341, 90, 0, 0, 4096},    // no limit reported: spidev's default
		{ILI9341, 90, 4096, 0, 4096}, // the port's
		{ILI9486, 90, 4096, 0, 4095}, // 1365 pixels of 3 bytes
		{ILI9486Waveshare, 90, 4096, 0, 4096},
		{ST7789, 0, 65536, 0, 65536},  // a raised bufsiz is used
		{ST7789, 0, 4096, 1000, 1000}, // ChunkSize, if smaller
		{ST7789, 0, 512, 4096, 512},   // never more than the port takes
	} {
		g := newRig(tc.max)
		p := g.open(t, tc.c, tc.rot)
		if tc.chunkSize != 0 {
			p.ChunkSize = tc.chunkSize
		}
		pic := image.NewRGBA(image.Rectangle{Max: p.Size()})
		if err := p.Draw(pic, pic.Rect); err != nil {
			t.Fatal(err)
		}
		bpp := tc.c.Format.BytesPerPixel()
		total, biggest := 0, 0
		for _, o := range g.bus.ops[5:] {
			if o.dc != gpio.High {
				t.Fatalf("%s: a command among the pixels", tc.c.Name)
			}
			if len(o.w)%bpp != 0 {
				t.Errorf("%s: a transfer of %d bytes splits a pixel of %d", tc.c.Name, len(o.w), bpp)
			}
			total += len(o.w)
			biggest = max(biggest, len(o.w))
		}
		if want := tc.c.Native.X * tc.c.Native.Y * bpp; total != want {
			t.Errorf("%s: %d bytes of pixels, want %d", tc.c.Name, total, want)
		}
		if biggest != tc.wantChunk {
			t.Errorf("%s, port max %d, ChunkSize %d: transfers of up to %d bytes, want %d", tc.c.Name, tc.max, tc.chunkSize, biggest, tc.wantChunk)
		}
	}
}

// An empty rectangle, or one off the screen, sends nothing; one partly off
// is clipped.
func TestDrawClipping(t *testing.T) {
	g := newRig(0)
	p := g.open(t, ILI9341, 90)
	pic := image.NewRGBA(image.Rect(0, 0, 320, 240))
	before := p.Stats()
	for _, r := range []image.Rectangle{{}, image.Rect(10, 10, 10, 20), image.Rect(320, 0, 400, 10), image.Rect(-50, -50, -1, -1), image.Rect(0, 240, 10, 300)} {
		if err := p.Draw(pic, r); err != nil {
			t.Fatal(err)
		}
		if len(g.log) != 0 {
			t.Errorf("Draw %v sent %q", r, g.log)
		}
	}
	if p.Stats() != before {
		t.Errorf("nothing sent, but the stats went from %+v to %+v", before, p.Stats())
	}
	p.Draw(pic, image.Rect(310, 230, 330, 250))
	want := []string{"C 2a", "D 01 36 01 3f", "C 2b", "D 00 e6 00 ef", "C 2c", "D [200 bytes]"}
	if !slices.Equal(g.log, want) {
		t.Errorf("a rectangle partly off the screen: %q, want %q", g.log, want)
	}
}

// Stats count every byte and transfer: a partial redraw costs its window
// (11 bytes in 5 transfers of commands and addresses) and its pixels.
func TestStats(t *testing.T) {
	g := newRig(4096)
	p, err := New(g.bus, g.dc, g.reset, ILI9486, 90, WithSleep(g.sleep))
	if err != nil {
		t.Fatal(err)
	}
	// Init: SWRESET, SLPOUT, COLMOD+1, MADCTL+1, DISPON.
	if s := p.Stats(); s != (Stats{Transfers: 7, BytesWritten: 7}) {
		t.Errorf("after New: %+v", s)
	}
	pic := image.NewRGBA(image.Rect(0, 0, 480, 320))
	for _, tc := range []struct {
		r    image.Rectangle
		want Stats
	}{
		{pic.Rect, Stats{Draws: 1, Transfers: 5 + 113, BytesWritten: 11 + 480*320*3}}, // 460800 / 4095 bytes a transfer
		{image.Rect(100, 100, 200, 150), Stats{Draws: 1, Transfers: 5 + 4, BytesWritten: 11 + 100*50*3}},
	} {
		before := p.Stats()
		if err := p.Draw(pic, tc.r); err != nil {
			t.Fatal(err)
		}
		if got := p.Stats().Sub(before); got != tc.want {
			t.Errorf("Draw %v: %+v, want %+v", tc.r, got, tc.want)
		}
	}
}

// badPin is a D/C pin that cannot be driven.
type badPin struct{ *gpiotest.Pin }

func (badPin) Out(gpio.Level) error { return errors.New("gpio: pin is not an output") }

// Errors come back wrapped with what was being sent; nothing panics.
func TestErrors(t *testing.T) {
	// A transfer failing in New: the command is named and the cause kept.
	for n, want := range map[int]string{1: "SWRESET (01h)", 4: "COLMOD (3Ah)'s parameters 55", 7: "DISPON (29h)"} {
		g := newRig(0)
		g.bus.failAt = n
		_, err := New(g.bus, g.dc, nil, ILI9341, 0, WithSleep(g.sleep))
		if !errors.Is(err, errBoom) || !strings.Contains(err.Error(), want) {
			t.Errorf("transfer %d failing in New: %v, want %q", n, err, want)
		}
	}
	// And in Draw.
	for n, want := range map[int]string{1: "CASET (2Ah)", 2: "CASET (2Ah)'s parameters", 4: "PASET (2Bh)'s parameters", 5: "RAMWR (2Ch)", 6: "RAMWR pixels 0 to 2048"} {
		g := newRig(0)
		p := g.open(t, ILI9341, 0)
		g.bus.failAt, g.bus.n = n, 0
		pic := image.NewRGBA(image.Rect(0, 0, 240, 320))
		err := p.Draw(pic, pic.Rect)
		if !errors.Is(err, errBoom) || !strings.Contains(err.Error(), want) {
			t.Errorf("transfer %d failing in Draw: %v, want %q", n, err, want)
		}
		// The next Draw starts afresh.
		if err := p.Draw(pic, pic.Rect); err != nil {
			t.Errorf("the Draw after a failed one: %v", err)
		}
	}
	g := newRig(0)
	if _, err := New(g.bus, badPin{g.dc}, nil, ST7789, 0, WithSleep(g.sleep)); err == nil || !strings.Contains(err.Error(), "D/C GPIO24") {
		t.Errorf("D/C pin failing: %v", err)
	}
	bad := ILI9486
	bad.Bus16 = true
	tooBig := ST7789
	tooBig.Native = image.Point{240, 400}
	mv := ILI9341
	mv.MADCTL |= MV
	for name, f := range map[string]func() error{
		"nil bus":           func() error { _, err := New(nil, g.dc, nil, ILI9341, 0); return err },
		"nil D/C":           func() error { _, err := New(g.bus, nil, nil, ILI9341, 0); return err },
		"rotation 45":       func() error { _, err := New(g.bus, g.dc, nil, ILI9341, 45); return err },
		"RGB666 on 16 bits": func() error { _, err := New(g.bus, g.dc, nil, bad, 0); return err },
		"glass past memory": func() error { _, err := New(g.bus, g.dc, nil, tooBig, 0); return err },
		"MV at rotation 0":  func() error { _, err := New(g.bus, g.dc, nil, mv, 0); return err },
		"zero Controller":   func() error { _, err := New(g.bus, g.dc, nil, Controller{}, 0); return err },
	} {
		if err := f(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	p := g.open(t, ILI9341, 90)
	if err := p.Draw(image.NewRGBA(image.Rect(0, 0, 240, 320)), image.Rect(0, 0, 10, 10)); err == nil {
		t.Error("a 240x320 picture on a 320x240 screen was taken")
	}
	if err := p.Draw(nil, image.Rect(0, 0, 10, 10)); err == nil {
		t.Error("a nil picture was taken")
	}
}

// Close sends nothing and leaves RESET high, so the panel keeps its picture;
// Draw after it is os.ErrClosed.
func TestClose(t *testing.T) {
	g := newRig(0)
	p := g.open(t, ST7789, 0)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if len(g.log) != 0 || g.reset.Read() != gpio.High {
		t.Errorf("Close sent %q, RESET %v", g.log, g.reset.Read())
	}
	pic := image.NewRGBA(image.Rect(0, 0, 240, 320))
	if err := p.Draw(pic, pic.Rect); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Draw after Close: %v", err)
	}
}

// discard is an SPI port that drops what it is sent, with spidev's default
// limit.
type discard struct{}

func (discard) String() string               { return "discard" }
func (discard) Duplex() conn.Duplex          { return conn.Half }
func (discard) Tx(w, r []byte) error         { return nil }
func (discard) TxPackets([]spi.Packet) error { return nil }
func (discard) MaxTxSize() int               { return DefaultChunkSize }

// benchDraw draws r of a 480x320 picture on an ILI9486 at 90, over and over;
// the bytes a second are those over SPI, commands included.
func benchDraw(b *testing.B, r image.Rectangle) {
	p, err := New(discard{}, &gpiotest.Pin{N: "GPIO24"}, nil, ILI9486, 90, WithSleep(func(time.Duration) {}))
	if err != nil {
		b.Fatal(err)
	}
	pic := image.NewRGBA(image.Rectangle{Max: p.Size()})
	for i := range pic.Pix {
		pic.Pix[i] = byte(i * 7)
	}
	before := p.Stats()
	if err := p.Draw(pic, r); err != nil {
		b.Fatal(err)
	}
	one := p.Stats().Sub(before)
	b.SetBytes(int64(one.BytesWritten))
	b.ReportMetric(float64(one.Transfers), "transfers/op")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := p.Draw(pic, r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFullRedraw is the whole 480x320 picture: 460811 bytes.
func BenchmarkFullRedraw(b *testing.B) { benchDraw(b, image.Rect(0, 0, 480, 320)) }

// BenchmarkButtonRedraw is a 100x50 button: 15011 bytes.
func BenchmarkButtonRedraw(b *testing.B) { benchDraw(b, image.Rect(100, 100, 200, 150)) }
