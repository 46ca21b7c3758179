//go:build kernelvm

// These tests run in the kernel VM (e2e.TestDRMDumbBufferInVM): Debian's
// kernel with the bochs DRM driver bound to QEMU's VGA card, which QEMU gives
// an 800x480 EDID. The host watches the screen: for each picture the guest
// shows, it sends the picture down the host link (/dev/ttyS2) and the host
// compares it with QMP's screendump of the VGA card, then answers.

package drm

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/skyfleet/skyfleet/internal/ptytest"
)

// hostLink is the guest's end of the line to the host test.
type hostLink struct {
	f *os.File
	r *bufio.Reader
}

func openHostLink(t *testing.T) *hostLink {
	t.Helper()
	f, err := os.OpenFile("/dev/ttyS2", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("the host link: %v (run by e2e.TestDRMDumbBufferInVM, which wires it)", err)
	}
	t.Cleanup(func() { f.Close() })
	ptytest.Raw(t, int(f.Fd())) // what each side writes is what the other reads
	return &hostLink{f: f, r: bufio.NewReader(f)}
}

// show asks the host to compare the screen with want, as step name, and
// fails t with the host's reason if it differs.
func (l *hostLink) show(t *testing.T, name string, want *image.RGBA) {
	t.Helper()
	var b bytes.Buffer
	png.Encode(&b, want)
	fmt.Fprintf(l.f, "SHOW %s %s\n", name, base64.StdEncoding.EncodeToString(b.Bytes()))
	line, err := l.r.ReadString('\n')
	if err != nil {
		t.Fatalf("%s: the host's answer: %v", name, err)
	}
	line = strings.TrimSpace(line)
	if line != "OK "+name {
		t.Errorf("%s: the host says %q", name, line)
	}
}

// testCard is a picture whose every region says something if it comes out
// wrong: primary and secondary bars (a channel swap), a grey ramp (a lost
// bit), a one-pixel white border (an off-by-one at an edge or the pitch).
func testCard(size image.Point) *image.RGBA {
	pic := image.NewRGBA(image.Rectangle{Max: size})
	bars := []color.RGBA{{255, 255, 255, 255}, {255, 255, 0, 255}, {0, 255, 255, 255}, {0, 255, 0, 255},
		{255, 0, 255, 255}, {255, 0, 0, 255}, {0, 0, 255, 255}, {0, 0, 0, 255}}
	for y := range size.Y {
		for x := range size.X {
			c := bars[x*len(bars)/size.X]
			if y >= size.Y*2/3 {
				v := uint8(x * 256 / size.X)
				c = color.RGBA{v, v, v, 255}
			}
			if x == 0 || y == 0 || x == size.X-1 || y == size.Y-1 {
				c = color.RGBA{255, 255, 255, 255}
			}
			pic.SetRGBA(x, y, c)
		}
	}
	return pic
}

// crtcFB returns the FB the CRTC id shows and whether its mode is set, as a
// fresh descriptor of the card reads it (no master needed).
func crtcFB(t *testing.T, id uint32) (uint32, bool) {
	t.Helper()
	f, err := os.OpenFile("/dev/dri/card0", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := Card{f: f}
	g := modeCRTC{CRTCID: id}
	if err := c.ioctl(ioctlGetCRTC, unsafe.Pointer(&g)); err != nil {
		t.Fatalf("GETCRTC %d: %v", id, err)
	}
	return g.FBID, g.ModeValid != 0
}

// dpms returns the value of the connector's DPMS property.
func dpms(t *testing.T, c *Card) uint64 {
	t.Helper()
	g := getConnector{ConnectorID: c.Mode.ConnectorID}
	if err := c.ioctl(ioctlGetConnector, unsafe.Pointer(&g)); err != nil {
		t.Fatal(err)
	}
	props, values := ids(g.CountProps), make([]uint64, max(g.CountProps, 1))
	g.CountModes, g.CountEncoders = 0, 0
	g.PropsPtr, g.PropValuesPtr = ptr32(props), ptr(unsafe.Pointer(&values[0]))
	if err := c.ioctl(ioctlGetConnector, unsafe.Pointer(&g)); err != nil {
		t.Fatal(err)
	}
	for i, p := range props[:g.CountProps] {
		if p == c.dpmsProp {
			return values[i]
		}
	}
	t.Fatalf("connector %d has no property %d", c.Mode.ConnectorID, c.dpmsProp)
	return 0
}

// The bochs driver's card: Open finds the virtual output and its EDID's
// 800x480, shows a dumb buffer on the CRTC, and what Draw writes is what the
// VGA card scans out, whole and in part; DPMS blanks it; Close takes it down.
func TestDumbBufferOnBochs(t *testing.T) {
	link := openHostLink(t)
	var c *Card
	var err error
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) { // the device node appears as the module binds
		if c, err = Open("/dev/dri/card0", 0); err == nil || !os.IsNotExist(err) || time.Since(start) > 10*time.Second {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t.Logf("opened: %+v", c.Mode)
	if c.Mode.Size != (image.Point{800, 480}) || c.Size() != c.Mode.Size {
		t.Fatalf("mode %v (%q), want the EDID's preferred 800x480", c.Mode.Size, c.Mode.Name)
	}
	if !strings.HasPrefix(c.Mode.Output, "Virtual-") {
		t.Errorf("output %q, want bochs's Virtual-1", c.Mode.Output)
	}
	if fb, ok := crtcFB(t, c.Mode.CRTCID); fb != c.Mode.FBID || !ok {
		t.Fatalf("CRTC %d shows FB %d (mode set: %v), want ours, %d", c.Mode.CRTCID, fb, ok, c.Mode.FBID)
	}

	pic := testCard(c.Size())
	start := time.Now()
	if err := c.Draw(pic, pic.Rect); err != nil {
		t.Fatal(err)
	}
	full := time.Since(start)
	link.show(t, "full", pic)

	// A button's worth, somewhere that crosses two bars and the ramp's top.
	button := image.Rect(150, 280, 250, 330)
	for y := button.Min.Y; y < button.Max.Y; y++ {
		for x := button.Min.X; x < button.Max.X; x++ {
			pic.SetRGBA(x, y, color.RGBA{0x20, 0x60, 0xa0, 255})
		}
	}
	before := c.Stats()
	start = time.Now()
	if err := c.Draw(pic, button); err != nil {
		t.Fatal(err)
	}
	part := time.Since(start)
	after := c.Stats()
	if n := after.BytesWritten - before.BytesWritten; n != 100*50*4 {
		t.Errorf("the button wrote %d bytes, want %d", n, 100*50*4)
	}
	link.show(t, "partial", pic)
	t.Logf("MEASURE drm 800x480 under TCG: full redraw %v (%d bytes), a 100x50 button %v; DIRTYFB calls %d",
		full.Round(time.Microsecond), before.BytesWritten, part.Round(time.Microsecond), after.DirtyCalls)

	if err := c.Blank(true); err != nil {
		t.Fatal(err)
	}
	if v := dpms(t, c); v != dpmsOff {
		t.Errorf("DPMS after Blank(true) = %d, want %d (off)", v, dpmsOff)
	}
	link.show(t, "blanked", image.NewRGBA(pic.Rect)) // transparent black: the host compares colour only
	if err := c.Blank(false); err != nil {
		t.Fatal(err)
	}
	if v := dpms(t, c); v != dpmsOn {
		t.Errorf("DPMS after Blank(false) = %d, want %d (on)", v, dpmsOn)
	}
	link.show(t, "unblanked", pic)

	crtc, ours := c.Mode.CRTCID, c.Mode.FBID
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if fb, _ := crtcFB(t, crtc); fb == ours {
		t.Errorf("after Close the CRTC still shows our FB %d", fb)
	}
	if err := c.Draw(pic, button); err == nil {
		t.Error("Draw after Close succeeded")
	}
}
