package fbdev

import (
	"encoding/binary"
	"image"
	"image/color"
	"strings"
	"testing"

	"github.com/skyfleet/skyfleet/drivers/display"
)

// screenInfo lays out struct fb_var_screeninfo and struct fb_fix_screeninfo
// as include/uapi/linux/fb.h defines them on a 64-bit kernel: the var struct
// is 40 __u32 (xres, yres, xres_virtual, yres_virtual, xoffset, yoffset,
// bits_per_pixel, grayscale, red{offset,length,msb_right}, green{...},
// blue{...}, ...); the fix struct has char id[16], unsigned long smem_start,
// __u32 smem_len, type, type_aux, visual, __u16 xpanstep, ypanstep,
// ywrapstep, then (aligned) __u32 line_length at byte 48.
func screenInfo(w, h, vh, bpp int, red, green, blue Bitfield, stride, mem int, id string) ([]byte, []byte) {
	v := make([]byte, varInfoSize)
	put := func(i, x int) { binary.LittleEndian.PutUint32(v[4*i:], uint32(x)) }
	put(0, w)
	put(1, h)
	put(2, w)
	put(3, vh)
	put(6, bpp)
	put(8, red.Offset)
	put(9, red.Length)
	put(11, green.Offset)
	put(12, green.Length)
	put(14, blue.Offset)
	put(15, blue.Length)
	f := make([]byte, fixInfoSize)
	copy(f, id)
	binary.LittleEndian.PutUint32(f[24:], uint32(mem))
	binary.LittleEndian.PutUint32(f[28:], fbTypePackedPixels)
	binary.LittleEndian.PutUint32(f[36:], fbVisualTrueColor)
	binary.LittleEndian.PutUint32(f[48:], uint32(stride))
	return v, f
}

// The modes of the firmware framebuffer at 16 bits (RGB565) and 32 bits
// (XRGB8888) are recognised with their stride; palette modes, BGR orders and
// a stride or memory too small for the resolution are refused with the
// reason.
func TestModes(t *testing.T) {
	rgb565 := [3]Bitfield{{11, 5}, {5, 6}, {0, 5}}
	xrgb := [3]Bitfield{{16, 8}, {8, 8}, {0, 8}}
	for _, c := range []struct {
		name   string
		bpp    int
		bf     [3]Bitfield
		stride int
		mem    int
		want   display.Format
		err    string
	}{
		{"BCM2708 16-bit", 16, rgb565, 960 + 64, 1024 * 320, display.RGB565LE, ""},
		{"32-bit", 32, xrgb, 1920, 1920 * 320, display.XRGB8888, ""},
		{"BCM2708 32-bit (QEMU raspi3b)", 32, [3]Bitfield{{0, 8}, {8, 8}, {16, 8}}, 1920, 1920 * 320, display.XBGR8888, ""},
		{"24-bit", 24, [3]Bitfield{{16, 8}, {8, 8}, {0, 8}}, 1440, 1440 * 320, 0, "XBGR8888 are drawn"},
		{"8-bit", 8, [3]Bitfield{{0, 8}, {0, 8}, {0, 8}}, 480, 480 * 320, 0, "8 bits per pixel"},
		{"short stride", 16, rgb565, 900, 900 * 320, 0, "lines of 900 bytes"},
		{"short memory", 16, rgb565, 960, 960 * 319, 0, "bytes of memory"},
	} {
		v, f := screenInfo(480, 320, 640, c.bpp, c.bf[0], c.bf[1], c.bf[2], c.stride, c.mem, "BCM2708 FB")
		m, err := parseModes(v, f)
		if err != nil {
			t.Fatal(err)
		}
		if m.ID != "BCM2708 FB" || m.Visible != (image.Point{480, 320}) || m.Virtual != (image.Point{480, 640}) || m.Stride != c.stride {
			t.Fatalf("%s: parsed %+v", c.name, m)
		}
		got, err := m.Format()
		if err == nil {
			err = m.check(got)
		}
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: err = %v, want it to say %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s: %v, %v; want %v", c.name, got, err, c.want)
		}
	}
	if _, err := parseModes(make([]byte, 10), make([]byte, fixInfoSize)); err == nil {
		t.Error("a short var screen info parsed")
	}
}

// Draw on a 16-bit framebuffer with padded lines, turned 90 degrees: the
// picture's top-left pixel lands at the panel's top-right, a partial draw
// writes only its rectangle and counts its bytes, and a picture of the wrong
// size is refused.
func TestDraw(t *testing.T) {
	v, f := screenInfo(480, 320, 320, 16, Bitfield{11, 5}, Bitfield{5, 6}, Bitfield{0, 5}, 1024, 1024*320, "t")
	m, _ := parseModes(v, f)
	mem := make([]byte, m.MemLen)
	fb := newFB(m, display.RGB565LE, mem, nil, 90)
	if fb.Size() != (image.Point{320, 480}) {
		t.Fatalf("Size = %v", fb.Size())
	}
	pic := image.NewRGBA(image.Rectangle{Max: fb.Size()})
	pic.SetRGBA(0, 0, color.RGBA{255, 0, 0, 255})
	if err := fb.Draw(pic, image.Rect(0, 0, 10, 20)); err != nil {
		t.Fatal(err)
	}
	// Panel (479, 0): the last pixel of the first line.
	if got := binary.LittleEndian.Uint16(mem[479*2:]); got != 0xf800 {
		t.Errorf("panel top-right = %#04x, want red 0xf800", got)
	}
	if st := fb.Stats(); st.Draws != 1 || st.BytesWritten != 10*20*2 {
		t.Errorf("Stats = %+v, want 1 draw of %d bytes", st, 10*20*2)
	}
	// Nothing beyond the 20x10 panel rectangle (x 460..479, y 0..9) changed.
	pic.SetRGBA(100, 100, color.RGBA{0, 255, 0, 255})
	for y := range 320 {
		for x := range 512 {
			inside := y < 10 && x >= 460 && x < 480
			if !inside && binary.LittleEndian.Uint16(mem[y*1024+2*x:]) != 0 {
				t.Fatalf("byte pair (%d,%d) outside the rectangle written", x, y)
			}
		}
	}
	if err := fb.Draw(image.NewRGBA(image.Rect(0, 0, 480, 320)), image.Rect(0, 0, 1, 1)); err == nil {
		t.Error("an unturned picture was drawn on a turned screen")
	}
}

// BenchmarkRedraw measures a full redraw and a one-button (100x50) redraw of
// a 480x320 16-bit framebuffer in memory, and reports the bytes each writes;
// the full one is the baseline the partial one is compared with.
func BenchmarkRedraw(b *testing.B) {
	v, f := screenInfo(480, 320, 320, 16, Bitfield{11, 5}, Bitfield{5, 6}, Bitfield{0, 5}, 960, 960*320, "t")
	m, _ := parseModes(v, f)
	fb := newFB(m, display.RGB565LE, make([]byte, m.MemLen), nil, 0)
	pic := image.NewRGBA(image.Rect(0, 0, 480, 320))
	for _, c := range []struct {
		name string
		r    image.Rectangle
	}{{"full", pic.Rect}, {"button", image.Rect(190, 135, 290, 185)}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(c.r.Dx() * c.r.Dy() * 2))
			for b.Loop() {
				fb.Draw(pic, c.r)
			}
		})
	}
}
