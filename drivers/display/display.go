// Package display is what every display driver shares: the Screen a UI draws
// on, the pixel formats panels take, and the conversion of a rectangle of the
// UI's picture into a panel's memory layout, turned by the screen's rotation.
// The drivers are fbdev (Linux framebuffers, /dev/fbN), drm (KMS dumb buffers
// where a board has no fbdev) and spipanel (ILI9341, ILI9486 and ST7789
// controllers on SPI, driven from user space, since the shipped kernel has
// spidev but no fbtft). Drivers know pixels and buses; what is drawn is the
// UI's (ui/fb).
package display

import (
	"encoding/binary"
	"fmt"
	"image"
)

// Screen is a display the UI draws on. Its picture is an *image.RGBA of
// exactly Size(); a driver turns it by its rotation and converts it to the
// panel's format.
type Screen interface {
	// Size is the picture's size in pixels, rotation applied (a 480x320
	// panel turned 90 degrees is 320x480).
	Size() image.Point
	// Draw puts the rectangle r of pic (whose bounds are the screen's,
	// origin 0,0) on the panel; r is clipped to the screen. Only r is
	// written: a partial redraw costs what it changed.
	Draw(pic *image.RGBA, r image.Rectangle) error
	// Close releases the panel (it keeps its last picture).
	Close() error
}

// Format is a panel's pixel format in memory or on the wire.
type Format int

// Pixel formats.
const (
	// RGB565LE is 16-bit 5:6:5, little-endian: Linux framebuffers.
	RGB565LE Format = iota + 1
	// RGB565BE is 16-bit 5:6:5, most significant byte first: SPI panel
	// controllers (ILI9341, ST7789) in their 16-bit interface mode.
	RGB565BE
	// XRGB8888 is 32-bit, blue in the lowest byte, the top byte unused:
	// Linux framebuffers and DRM's XRGB8888 (little-endian B, G, R, X).
	XRGB8888
	// RGB666 is three bytes R, G, B with the colour in the top 6 bits of
	// each: the ILI9486's 18-bit interface over SPI.
	RGB666
	// XBGR8888 is 32-bit with red in the lowest byte (R, G, B, X in
	// memory): the Pi firmware's framebuffer (bcm2708_fb) at 32 bits, on
	// the Pi and under QEMU's raspi3b.
	XBGR8888
)

// BytesPerPixel is the size of one pixel in f.
func (f Format) BytesPerPixel() int {
	switch f {
	case RGB565LE, RGB565BE:
		return 2
	case XRGB8888, XBGR8888:
		return 4
	case RGB666:
		return 3
	}
	return 0
}

// String names the format, e.g. "XRGB8888".
func (f Format) String() string {
	switch f {
	case RGB565LE:
		return "RGB565 (little-endian)"
	case RGB565BE:
		return "RGB565 (big-endian)"
	case XRGB8888:
		return "XRGB8888"
	case RGB666:
		return "RGB666"
	case XBGR8888:
		return "XBGR8888"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// Rotation is the clockwise angle, in degrees (0, 90, 180 or 270), by which
// the picture is turned onto the panel: at 90 the picture's top-left pixel
// is the panel's top-right one. drivers/touch's Rotation is the same turn.
type Rotation int

// Valid reports whether r is one of the four rotations.
func (r Rotation) Valid() bool { return r == 0 || r == 90 || r == 180 || r == 270 }

// PictureSize is the size of the picture on a panel of native size turned
// by r.
func (r Rotation) PictureSize(native image.Point) image.Point {
	if r == 90 || r == 270 {
		return image.Point{native.Y, native.X}
	}
	return native
}

// ToPanel maps the picture's pixel p onto a panel of native size.
func (r Rotation) ToPanel(p, native image.Point) image.Point {
	switch r {
	case 90:
		return image.Point{native.X - 1 - p.Y, p.X}
	case 180:
		return image.Point{native.X - 1 - p.X, native.Y - 1 - p.Y}
	case 270:
		return image.Point{p.Y, native.Y - 1 - p.X}
	}
	return p
}

// RectToPanel maps a rectangle of the picture onto the panel.
func (r Rotation) RectToPanel(rect image.Rectangle, native image.Point) image.Rectangle {
	if rect.Empty() {
		return image.Rectangle{}
	}
	a := r.ToPanel(rect.Min, native)
	b := r.ToPanel(rect.Max.Sub(image.Point{1, 1}), native)
	return image.Rect(min(a.X, b.X), min(a.Y, b.Y), max(a.X, b.X)+1, max(a.Y, b.Y)+1)
}

// Buffer is a panel's memory: Native pixels of Format, Stride bytes from
// one row to the next (a framebuffer's line_length, which may exceed the
// row's pixels).
type Buffer struct {
	Pix    []byte
	Stride int
	Format Format
	Native image.Point
}

// Blit converts the rectangle r of pic (clipped to pic) into b, turned by
// rot, and returns the rectangle of the panel it wrote (empty if nothing).
// pic's size must be rot.PictureSize(b.Native).
func (b Buffer) Blit(pic *image.RGBA, r image.Rectangle, rot Rotation) image.Rectangle {
	r = r.Intersect(pic.Rect)
	if r.Empty() {
		return image.Rectangle{}
	}
	bpp := b.Format.BytesPerPixel()
	// One step right in the picture is one fixed step in the panel's
	// memory: a pixel right (0), a line down (90), a pixel left (180), a
	// line up (270).
	step := bpp
	switch rot {
	case 90:
		step = b.Stride
	case 180:
		step = -bpp
	case 270:
		step = -b.Stride
	}
	for y := r.Min.Y; y < r.Max.Y; y++ {
		src := pic.Pix[pic.PixOffset(r.Min.X, y):pic.PixOffset(r.Max.X, y)]
		q := rot.ToPanel(image.Point{r.Min.X, y}, b.Native)
		o := q.Y*b.Stride + q.X*bpp
		for i := 0; i < len(src); i += 4 {
			putPixel(b.Pix[o:o+bpp], b.Format, src[i], src[i+1], src[i+2])
			o += step
		}
	}
	return rot.RectToPanel(r, b.Native)
}

// putPixel writes one pixel of colour (r, g, b) in f to dst.
func putPixel(dst []byte, f Format, r, g, b uint8) {
	switch f {
	case RGB565LE:
		binary.LittleEndian.PutUint16(dst, rgb565(r, g, b))
	case RGB565BE:
		binary.BigEndian.PutUint16(dst, rgb565(r, g, b))
	case XRGB8888:
		dst[0], dst[1], dst[2], dst[3] = b, g, r, 0
	case XBGR8888:
		dst[0], dst[1], dst[2], dst[3] = r, g, b, 0
	case RGB666:
		dst[0], dst[1], dst[2] = r&0xfc, g&0xfc, b&0xfc
	}
}

func rgb565(r, g, b uint8) uint16 {
	return uint16(r>>3)<<11 | uint16(g>>2)<<5 | uint16(b>>3)
}

// PanelRows appends to dst the panel rectangle pr of b as the panel
// controller takes it on a write into a window: rows top to bottom, each
// left to right, pixels packed (no stride). SPI drivers send this after
// setting the window to pr.
func (b Buffer) PanelRows(dst []byte, pr image.Rectangle) []byte {
	bpp := b.Format.BytesPerPixel()
	for y := pr.Min.Y; y < pr.Max.Y; y++ {
		o := y*b.Stride + pr.Min.X*bpp
		dst = append(dst, b.Pix[o:o+pr.Dx()*bpp]...)
	}
	return dst
}
