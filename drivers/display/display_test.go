package display

import (
	"image"
	"image/color"
	"testing"
)

// A 4x2 panel and a picture with one marked pixel at its top-left: for each
// rotation the mark lands where the definition puts the picture's top-left
// (90: the panel's top-right), and RectToPanel of the whole picture is the
// whole panel.
func TestRotationCorners(t *testing.T) {
	native := image.Point{4, 2}
	for _, c := range []struct {
		rot  Rotation
		want image.Point
	}{{0, image.Point{0, 0}}, {90, image.Point{3, 0}}, {180, image.Point{3, 1}}, {270, image.Point{0, 1}}} {
		size := c.rot.PictureSize(native)
		pic := image.NewRGBA(image.Rectangle{Max: size})
		pic.Set(0, 0, color.RGBA{255, 255, 255, 255})
		b := Buffer{Pix: make([]byte, 4*2*4), Stride: 16, Format: XRGB8888, Native: native}
		got := b.Blit(pic, pic.Rect, c.rot)
		if got != (image.Rectangle{Max: native}) {
			t.Errorf("rotation %d: wrote %v, want the whole panel", c.rot, got)
		}
		for y := range 2 {
			for x := range 4 {
				lit := b.Pix[y*16+x*4] == 255
				if lit != (image.Point{x, y} == c.want) {
					t.Errorf("rotation %d: panel pixel (%d,%d) lit %v", c.rot, x, y, lit)
				}
			}
		}
	}
}

// Each format packs a known colour as its datasheet or the kernel lays it
// out, and a partial Blit writes only its rectangle (the stride's padding
// and the rest stay untouched).
func TestFormatsAndPartialBlit(t *testing.T) {
	c := color.RGBA{0xff, 0x80, 0x08, 0xff} // 565: 11111 100000 00001 = 0xfc01
	for _, tc := range []struct {
		f    Format
		want []byte
	}{
		{RGB565LE, []byte{0x01, 0xfc}},
		{RGB565BE, []byte{0xfc, 0x01}},
		{XRGB8888, []byte{0x08, 0x80, 0xff, 0x00}},
		{XBGR8888, []byte{0xff, 0x80, 0x08, 0x00}},
		{RGB666, []byte{0xfc, 0x80, 0x08}},
	} {
		native := image.Point{3, 3}
		bpp := tc.f.BytesPerPixel()
		stride := 3*bpp + 5
		b := Buffer{Pix: make([]byte, 3*stride), Stride: stride, Format: tc.f, Native: native}
		for i := range b.Pix {
			b.Pix[i] = 0xaa
		}
		pic := image.NewRGBA(image.Rect(0, 0, 3, 3))
		pic.SetRGBA(1, 1, c)
		got := b.Blit(pic, image.Rect(1, 1, 2, 2), 0)
		if got != image.Rect(1, 1, 2, 2) {
			t.Errorf("%v: wrote %v", tc.f, got)
		}
		o := stride + bpp
		if px := b.Pix[o : o+bpp]; string(px) != string(tc.want) {
			t.Errorf("%v: pixel % x, want % x", tc.f, px, tc.want)
		}
		for i, v := range b.Pix {
			if (i < o || i >= o+bpp) && v != 0xaa {
				t.Fatalf("%v: byte %d outside the rectangle written", tc.f, i)
			}
		}
		if rows := b.PanelRows(nil, got); string(rows) != string(tc.want) {
			t.Errorf("%v: PanelRows % x", tc.f, rows)
		}
	}
}
