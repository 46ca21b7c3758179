// Package fbdev draws on a Linux framebuffer device (/dev/fbN): it asks the
// kernel for the mode (FBIOGET_VSCREENINFO, FBIOGET_FSCREENINFO; the structs of
// include/uapi/linux/fb.h), maps the video memory, pans the view to the top of
// it and writes rectangles of the UI's picture straight into it, converted to
// RGB565 or XRGB8888 and turned by the rotation. On the Pi this is the
// firmware's framebuffer (bcm2708_fb, or simplefb), which QEMU's raspi3b
// machine also provides (800x480, 32 bits, red in the lowest byte).
package fbdev

import (
	"encoding/binary"
	"fmt"
	"image"
	"os"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/skyfleet/skyfleet/drivers/display"
)

// ioctl requests (include/uapi/linux/fb.h).
const (
	fbioGetVScreenInfo = 0x4600
	fbioGetFScreenInfo = 0x4602
	fbioPanDisplay     = 0x4606
	fbioBlank          = 0x4611

	varInfoSize = 160 // struct fb_var_screeninfo: 40 __u32
	fixInfoSize = 80  // struct fb_fix_screeninfo on 64-bit kernels

	fbVisualTrueColor  = 2 // FB_VISUAL_TRUECOLOR
	fbTypePackedPixels = 0 // FB_TYPE_PACKED_PIXELS
)

// Mode is what the kernel says of a framebuffer.
type Mode struct {
	// ID is the driver's name for it, e.g. "BCM2708 FB" or "simple".
	ID string
	// Visible is the visible resolution in pixels; Virtual the memory's
	// (at least Visible; more allows panning).
	Visible, Virtual image.Point
	// Offset is the visible area's position in the virtual one.
	Offset image.Point
	// BitsPerPixel, and the position and length in bits of each colour
	// within a pixel (fb_bitfield).
	BitsPerPixel     int
	Red, Green, Blue Bitfield
	Stride           int // bytes per line (line_length)
	MemLen           int // bytes of video memory (smem_len)
	// Type and Visual are FB_TYPE_* and FB_VISUAL_*: packed pixels and
	// true colour are drawn.
	Type, Visual int
}

// Bitfield is one colour's place in a pixel (struct fb_bitfield).
type Bitfield struct{ Offset, Length int }

// parseModes decodes struct fb_var_screeninfo (v) and struct
// fb_fix_screeninfo (f) as a 64-bit little-endian kernel lays them out; a
// short buffer is an error.
func parseModes(v, f []byte) (Mode, error) {
	if len(v) < varInfoSize || len(f) < fixInfoSize {
		return Mode{}, fmt.Errorf("fbdev: screen info of %d and %d bytes, want %d and %d", len(v), len(f), varInfoSize, fixInfoSize)
	}
	u := func(i int) int { return int(binary.LittleEndian.Uint32(v[4*i:])) }
	m := Mode{
		Visible:      image.Point{u(0), u(1)},
		Virtual:      image.Point{u(2), u(3)},
		Offset:       image.Point{u(4), u(5)},
		BitsPerPixel: u(6),
		Red:          Bitfield{u(8), u(9)},
		Green:        Bitfield{u(11), u(12)},
		Blue:         Bitfield{u(14), u(15)},
	}
	m.ID = strings.TrimRight(string(f[:16]), "\x00")
	m.MemLen = int(binary.LittleEndian.Uint32(f[24:]))
	m.Type = int(binary.LittleEndian.Uint32(f[28:]))
	m.Visual = int(binary.LittleEndian.Uint32(f[36:]))
	m.Stride = int(binary.LittleEndian.Uint32(f[48:]))
	return m, nil
}

// Format returns the pixel format of m, or an error naming the layout for
// one this driver does not draw (palette modes, 24-bit, BGR orders).
func (m Mode) Format() (display.Format, error) {
	if m.Type != fbTypePackedPixels || m.Visual != fbVisualTrueColor {
		return 0, fmt.Errorf("fbdev: %q is type %d visual %d; only packed true-colour pixels are drawn", m.ID, m.Type, m.Visual)
	}
	switch {
	case m.BitsPerPixel == 16 && m.Red == (Bitfield{11, 5}) && m.Green == (Bitfield{5, 6}) && m.Blue == (Bitfield{0, 5}):
		return display.RGB565LE, nil
	case m.BitsPerPixel == 32 && m.Red == (Bitfield{16, 8}) && m.Green == (Bitfield{8, 8}) && m.Blue == (Bitfield{0, 8}):
		return display.XRGB8888, nil
	case m.BitsPerPixel == 32 && m.Red == (Bitfield{0, 8}) && m.Green == (Bitfield{8, 8}) && m.Blue == (Bitfield{16, 8}):
		return display.XBGR8888, nil
	}
	return 0, fmt.Errorf("fbdev: %q has %d bits per pixel with red %d+%d, green %d+%d, blue %d+%d; RGB565, XRGB8888 and XBGR8888 are drawn",
		m.ID, m.BitsPerPixel, m.Red.Offset, m.Red.Length, m.Green.Offset, m.Green.Length, m.Blue.Offset, m.Blue.Length)
}

// check says what is wrong with m for drawing into memory of its MemLen.
func (m Mode) check(f display.Format) error {
	if m.Visible.X <= 0 || m.Visible.Y <= 0 {
		return fmt.Errorf("fbdev: %q reports a %dx%d screen", m.ID, m.Visible.X, m.Visible.Y)
	}
	if m.Stride < m.Visible.X*f.BytesPerPixel() {
		return fmt.Errorf("fbdev: %q has lines of %d bytes for %d pixels of %d bytes", m.ID, m.Stride, m.Visible.X, f.BytesPerPixel())
	}
	if m.Stride*m.Visible.Y > m.MemLen {
		return fmt.Errorf("fbdev: %q has %d bytes of memory for %d lines of %d bytes", m.ID, m.MemLen, m.Visible.Y, m.Stride)
	}
	return nil
}

// FB is an open framebuffer; it implements display.Screen. Draw and Close
// may be called from several goroutines.
type FB struct {
	Mode Mode
	f    *os.File
	mem  []byte
	buf  display.Buffer
	rot  display.Rotation

	mu    sync.Mutex
	stats Stats
}

// Stats count what Draw has done since Open.
type Stats struct {
	Draws        uint64 // calls that wrote something
	BytesWritten uint64 // bytes of video memory written
}

// Open opens the framebuffer at path (e.g. /dev/fb0), maps its memory and
// pans to its top; the UI's picture is the visible mode turned by rot.
// Errors: opening, the ioctls, an unsupported pixel layout (Mode.Format),
// an inconsistent mode, mmap.
func Open(path string, rot display.Rotation) (*FB, error) {
	if !rot.Valid() {
		return nil, fmt.Errorf("fbdev: rotation %d: want 0, 90, 180 or 270", rot)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	var v [varInfoSize]byte
	var fx [fixInfoSize]byte
	if err := ioctl(f, fbioGetVScreenInfo, unsafe.Pointer(&v[0])); err != nil {
		f.Close()
		return nil, fmt.Errorf("fbdev: %s: FBIOGET_VSCREENINFO: %w", path, err)
	}
	if err := ioctl(f, fbioGetFScreenInfo, unsafe.Pointer(&fx[0])); err != nil {
		f.Close()
		return nil, fmt.Errorf("fbdev: %s: FBIOGET_FSCREENINFO: %w", path, err)
	}
	m, err := parseModes(v[:], fx[:])
	if err != nil {
		f.Close()
		return nil, err
	}
	fmtx, err := m.Format()
	if err == nil {
		err = m.check(fmtx)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	if m.Offset != (image.Point{}) {
		// Show the top of the memory, where we draw: a console may
		// have scrolled by panning.
		pan := v
		binary.LittleEndian.PutUint32(pan[16:], 0)
		binary.LittleEndian.PutUint32(pan[20:], 0)
		if err := ioctl(f, fbioPanDisplay, unsafe.Pointer(&pan[0])); err != nil {
			f.Close()
			return nil, fmt.Errorf("fbdev: %s: FBIOPAN_DISPLAY to the top: %w", path, err)
		}
		m.Offset = image.Point{}
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, m.Stride*m.Visible.Y, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("fbdev: %s: mmap %d bytes: %w", path, m.Stride*m.Visible.Y, err)
	}
	return newFB(m, fmtx, mem, f, rot), nil
}

func newFB(m Mode, f display.Format, mem []byte, file *os.File, rot display.Rotation) *FB {
	return &FB{Mode: m, f: file, mem: mem, rot: rot,
		buf: display.Buffer{Pix: mem, Stride: m.Stride, Format: f, Native: m.Visible}}
}

func ioctl(f *os.File, req uintptr, p unsafe.Pointer) error {
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), req, uintptr(p)); errno != 0 {
		return errno
	}
	return nil
}

// Size is the picture's size: the visible mode turned by the rotation.
func (fb *FB) Size() image.Point { return fb.rot.PictureSize(fb.Mode.Visible) }

// Format is the framebuffer's pixel format.
func (fb *FB) Format() display.Format { return fb.buf.Format }

// Draw writes the rectangle r of pic into video memory (display.Screen).
// pic must be Size() large.
func (fb *FB) Draw(pic *image.RGBA, r image.Rectangle) error {
	if pic.Rect.Size() != fb.Size() {
		return fmt.Errorf("fbdev: a %v picture on a %v screen", pic.Rect.Size(), fb.Size())
	}
	fb.mu.Lock()
	defer fb.mu.Unlock()
	if fb.mem == nil {
		return os.ErrClosed
	}
	w := fb.buf.Blit(pic, r, fb.rot)
	if !w.Empty() {
		fb.stats.Draws++
		fb.stats.BytesWritten += uint64(w.Dx() * w.Dy() * fb.buf.Format.BytesPerPixel())
	}
	return nil
}

// Stats returns the counters.
func (fb *FB) Stats() Stats {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	return fb.stats
}

// Blank turns the display off (true) or on (false) through FBIOBLANK, for
// a screen left untouched; a driver without blanking returns its error.
func (fb *FB) Blank(off bool) error {
	level := 0 // FB_BLANK_UNBLANK
	if off {
		level = 4 // FB_BLANK_POWERDOWN
	}
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, fb.f.Fd(), fbioBlank, uintptr(level)); errno != 0 {
		return fmt.Errorf("fbdev: FBIOBLANK: %w", errno)
	}
	return nil
}

// Close unmaps the memory and closes the device; the picture stays.
func (fb *FB) Close() error {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	if fb.mem == nil {
		return nil
	}
	err := unix.Munmap(fb.mem)
	fb.mem = nil
	if cerr := fb.f.Close(); err == nil {
		err = cerr
	}
	return err
}
