//go:build e2e

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/skyfleet/skyfleet/ui/fb"
	"github.com/skyfleet/skyfleet/ui/screens"
)

// shortTempDir is a temporary directory with a short path, for Unix sockets
// (108 bytes at most).
func shortTempDir(t *testing.T) string {
	d, err := os.MkdirTemp("", "sf")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// qmp is a QEMU Machine Protocol client: one command at a time, events
// skipped.
type qmp struct {
	c net.Conn
	r *bufio.Reader
}

func dialQMP(t *testing.T, path string) *qmp {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("QMP %s: %v", path, err)
	}
	t.Cleanup(func() { c.Close() })
	q := &qmp{c: c, r: bufio.NewReader(c)}
	if _, err := q.read(); err != nil { // the greeting
		t.Fatal(err)
	}
	q.do(t, "qmp_capabilities", nil)
	return q
}

func (q *qmp) read() (map[string]json.RawMessage, error) {
	for {
		q.c.SetReadDeadline(time.Now().Add(30 * time.Second))
		line, err := q.r.ReadBytes('\n')
		if err != nil {
			return nil, err
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(line, &m); err != nil {
			return nil, fmt.Errorf("QMP: %q: %w", line, err)
		}
		if _, ev := m["event"]; !ev {
			return m, nil
		}
	}
}

func (q *qmp) do(t *testing.T, cmd string, args any) {
	t.Helper()
	req := map[string]any{"execute": cmd}
	if args != nil {
		req["arguments"] = args
	}
	b, _ := json.Marshal(req)
	if _, err := q.c.Write(append(b, '\n')); err != nil {
		t.Fatalf("QMP %s: %v", cmd, err)
	}
	m, err := q.read()
	if err != nil {
		t.Fatalf("QMP %s: %v", cmd, err)
	}
	if e, ok := m["error"]; ok {
		t.Fatalf("QMP %s: %s", cmd, e)
	}
}

// tabletMax is the USB tablet's axis range (QEMU's INPUT_EVENT_ABS_MAX).
const tabletMax = 0x7fff

// touch presses and lifts at the centre of r on a screen of size, through
// the USB tablet: the events go the kernel's way (usbhid, evdev) to the ui
// service. The lift and the next press are spaced wider than the UI's
// debounce interval, in the kernel's timestamps as in the host's.
func (q *qmp) touch(t *testing.T, r image.Rectangle, size image.Point) {
	t.Helper()
	c := r.Min.Add(r.Size().Div(2))
	abs := func(px, n int) int { return (2*px + 1) * tabletMax / (2 * n) }
	q.do(t, "input-send-event", map[string]any{"events": []any{
		map[string]any{"type": "abs", "data": map[string]any{"axis": "x", "value": abs(c.X, size.X)}},
		map[string]any{"type": "abs", "data": map[string]any{"axis": "y", "value": abs(c.Y, size.Y)}},
		map[string]any{"type": "btn", "data": map[string]any{"down": true, "button": "left"}},
	}})
	time.Sleep(60 * time.Millisecond) // a finger's press lasts; the HID report rate is 10 ms
	q.do(t, "input-send-event", map[string]any{"events": []any{
		map[string]any{"type": "btn", "data": map[string]any{"down": false, "button": "left"}},
	}})
	time.Sleep(2 * fb.DebounceInterval) // the next press must not read as a bounce
}

// screendump returns the guest's screen as QEMU shows it.
func (q *qmp) screendump(t *testing.T) *image.RGBA {
	t.Helper()
	path := filepath.Join(shortTempDir(t), "shot.ppm")
	q.do(t, "screendump", map[string]any{"filename": path})
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var w, h, max int
	if _, err := fmt.Fscanf(r, "P6\n%d %d\n%d\n", &w, &h, &max); err != nil || max != 255 {
		t.Fatalf("screendump: not a PPM of 8-bit channels: %v", err)
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	px := make([]byte, 3*w*h)
	if _, err := ioReadFull(r, px); err != nil {
		t.Fatal(err)
	}
	for i := range w * h {
		copy(img.Pix[4*i:], px[3*i:3*i+3])
		img.Pix[4*i+3] = 255
	}
	return img
}

func ioReadFull(r *bufio.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// twinScreen is the twin UI's screen: a picture in memory.
type twinScreen struct{ pic *image.RGBA }

func (s *twinScreen) Size() image.Point { return s.pic.Rect.Size() }
func (s *twinScreen) Draw(p *image.RGBA, r image.Rectangle) error {
	for y := r.Min.Y; y < r.Max.Y; y++ {
		copy(s.pic.Pix[s.pic.PixOffset(r.Min.X, y):s.pic.PixOffset(r.Max.X, y)], p.Pix[p.PixOffset(r.Min.X, y):p.PixOffset(r.Max.X, y)])
	}
	return nil
}

// noMessages is the twin's messenger: the pages the test compares do not
// show the messages themselves.
type noMessages struct{}

func (noMessages) Threads() []screens.Thread       { return nil }
func (noMessages) Thread(string) []screens.Message { return nil }
func (noMessages) Send(string, string) error       { return nil }

// diffIn reports how many pixels of r differ between a and b by more than
// 48 in a channel.
func diffIn(a, b *image.RGBA, r image.Rectangle) int {
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			p, q := a.RGBAAt(x, y), b.RGBAAt(x, y)
			d := func(u, v uint8) bool { return int(u)-int(v) > 48 || int(v)-int(u) > 48 }
			if d(p.R, q.R) || d(p.G, q.G) || d(p.B, q.B) {
				n++
			}
		}
	}
	return n
}

func savePNG(t *testing.T, path string, img image.Image) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	png.Encode(f, img)
}

// testQEMUTouchscreen drives the kit's screens end to end on the emulated
// Pi: QEMU's raspi3b gives the kernel we ship its firmware framebuffer
// (bcm2708_fb) and a USB tablet; touches sent through QMP input-send-event
// reach the ui service through usbhid and evdev, and QMP screendump shows
// what it drew. A twin of the UI in this process, fed the same touches,
// says where each control is and what the screen must show: after each step
// (status, messages, compose, the address and the text typed key by key on
// the on-screen keyboard) the screendump must match the twin outside the
// parts that show live data (the clock, the status page's contents, the
// inbox). The message sent is then in the node's outbox. Screens are kept
// as artefacts.
func testQEMUTouchscreen(t *testing.T, g *sharedVM) {
	v := g.vm.in(t)
	if v.qmp == "" {
		t.Fatal("the shared node was booted without the tablet")
	}
	q := dialQMP(t, v.qmp)
	art := artifacts(t)
	first := q.screendump(t)
	size := first.Rect.Size()
	if v.display != "" && fmt.Sprintf("%dx%d", size.X, size.Y) != v.display {
		t.Errorf("the framebuffer is %v; skyfleet qemu --display asked the kernel for %s", size, v.display)
	}
	th, err := fb.NewTheme(size, fb.DefaultDPI(size))
	if err != nil {
		t.Fatal(err)
	}
	twinScr := &twinScreen{pic: image.NewRGBA(first.Rect)}
	u := fb.New(twinScr, th)
	app := screens.NewApp(u, time.Now)
	app.SetMessenger(noMessages{})
	app.Open("Status")
	u.Render()
	top := fb.LineHeight(th.Title) + 2*th.Pad
	titleLeft := image.Rect(0, 0, size.X*2/3, top)
	nav := image.Rect(0, size.Y-th.Target, size.X, size.Y)

	// expect polls screendumps until the regions match the twin's picture
	// (the ui service draws within a second or two under emulation).
	step := 0
	expect := func(name string, regions ...image.Rectangle) {
		t.Helper()
		step++
		deadline := time.Now().Add(45 * time.Second)
		for {
			shot := q.screendump(t)
			bad := 0
			for _, r := range regions {
				bad += diffIn(shot, twinScr.pic, r)
			}
			if bad <= 20 {
				savePNG(t, filepath.Join(art, fmt.Sprintf("touch-%d-%s.png", step, name)), shot)
				return
			}
			if time.Now().After(deadline) {
				savePNG(t, filepath.Join(art, fmt.Sprintf("touch-%d-%s-GOT.png", step, name)), shot)
				savePNG(t, filepath.Join(art, fmt.Sprintf("touch-%d-%s-WANT.png", step, name)), twinScr.pic)
				t.Fatalf("%s: the screen differs from the expected one in %d pixels after 45 s (artefacts touch-%d-*)\n%s", name, bad, step, v.tail())
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	// tap touches the control labelled label on the twin's page, on both,
	// then waits until the node's screen shows what the twin's does in
	// check (or in the title and the bars): each touch is taken before the
	// next is sent, as a person waits to see a key take. Without the wait
	// a slow guest, polling the tablet late, stamps a lift late and the
	// next press within the UI's debounce interval of it.
	var check []image.Rectangle
	tap := func(label string) {
		t.Helper()
		r, ok := findControl(u.Page().Widgets(), label)
		if !ok {
			t.Fatalf("no control %q on the twin's page", label)
		}
		q.touch(t, r, size)
		c := r.Min.Add(r.Size().Div(2))
		now := time.Now()
		u.TouchAt([]image.Point{c}, now)
		u.TouchAt(nil, now.Add(60*time.Millisecond))
		u.Render()
		regions := check
		if regions == nil {
			regions = []image.Rectangle{titleLeft, nav}
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			shot := q.screendump(t)
			bad := 0
			for _, r := range regions {
				bad += diffIn(shot, twinScr.pic, r)
			}
			if bad <= 20 {
				return
			}
			if time.Now().After(deadline) {
				savePNG(t, filepath.Join(art, "tap-"+label+"-GOT.png"), shot)
				savePNG(t, filepath.Join(art, "tap-"+label+"-WANT.png"), twinScr.pic)
				t.Fatalf("the screen did not take the tap on %q in 30 s: %d pixels differ (artefacts tap-%s-*)\n%s", label, bad, label, v.tail())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	expect("status", titleLeft, nav)
	tap("Messages")
	expect("messages", titleLeft, nav)
	tap("New message")
	compose, ok := u.Page().(*screens.ComposePage)
	if !ok {
		t.Fatalf("the twin's New message opened %T", u.Page())
	}
	kb := compose.Keyboard.Bounds()
	expect("compose", titleLeft, kb, compose.Field.Bounds())
	check = []image.Rectangle{titleLeft, compose.Summary.Bounds(), compose.Field.Bounds(), kb}
	typeText := func(s string) {
		for _, r := range s {
			switch {
			case r == ' ':
				tap("space")
			case unicode.IsDigit(r):
				tap("?123")
				tap(string(r))
				tap("abc")
			case unicode.IsUpper(r):
				tap("Shift")
				tap(string(r))
			default:
				tap(string(r))
			}
		}
	}
	to := g.host.address()
	typeText(to)
	expect("address-typed", compose.Field.Bounds(), kb)
	tap("Done")
	text := "water at school"
	typeText(text)
	expect("text-typed", compose.Field.Bounds(), compose.Summary.Bounds(), kb)
	check = nil
	tap("Done")
	// The twin's messenger takes anything; the node's sends it.
	expect("sent", titleLeft, nav)
	deadline := time.Now().Add(time.Minute)
	for {
		out, err := g.guest.cli("msg", "outbox", "--json")
		var entries []struct {
			To, Text, State string
		}
		if err == nil && json.Unmarshal([]byte(out), &entries) == nil {
			for _, e := range entries {
				if e.Text == text && e.To == to {
					t.Logf("typed on the touchscreen: %q to %s, in the outbox (%s)", text, to, e.State)
					measureUI(t, g)
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the message typed on the screen is not in the node's outbox: %v\n%s\n%s", err, out, v.tail())
		}
		time.Sleep(time.Second)
	}
}

// findControl finds the tappable widget labelled label (a button or a
// keyboard key) among ws, containers searched.
func findControl(ws []fb.Widget, label string) (image.Rectangle, bool) {
	for _, w := range ws {
		if b, ok := w.(*fb.Button); ok && b.Label == label && !b.Disabled {
			return b.Rect, true
		}
		if c, ok := w.(fb.Container); ok {
			if r, ok := findControl(c.Children(), label); ok {
				return r, true
			}
		}
	}
	return image.Rectangle{}, false
}

// measureUI logs what the ui service measured of its drawing on the
// emulated Pi (/run/skyfleet/ui.json), its memory, and when its first frame
// was up: the service's first log line carries the guest's clock, which
// QEMU starts at 0 with the kernel.
func measureUI(t *testing.T, g *sharedVM) {
	m, addr := g.master, g.status.Address
	exec := func(args ...string) string {
		out, err := m.cli(append([]string{"exec", "--key", m.keyFile, addr, "--"}, args...)...)
		if err != nil {
			t.Errorf("exec %v: %v\n%s", args, err, out)
		}
		return out
	}
	t.Logf("MEASURE ui.json on the emulated Pi: %s", strings.TrimSpace(exec("cat", "/run/skyfleet/ui.json")))
	st := g.vm.in(t).waitStatus()
	for _, svc := range st.Services {
		if svc.Name == "ui" {
			for _, l := range strings.Split(exec("cat", fmt.Sprintf("/proc/%d/status", svc.PID)), "\n") {
				if strings.HasPrefix(l, "VmRSS") || strings.HasPrefix(l, "VmHWM") {
					t.Logf("MEASURE ui service %s", strings.Join(strings.Fields(l), " "))
				}
			}
		}
	}
	if mm := regexp.MustCompile(`ui: (\d\d):(\d\d):(\d\d) ui: \d+x\d+ screen`).FindStringSubmatch(g.vm.in(t).log()); mm != nil {
		h, _ := strconv.Atoi(mm[1])
		mi, _ := strconv.Atoi(mm[2])
		sec, _ := strconv.Atoi(mm[3])
		t.Logf("MEASURE the status screen was up %d s after the kernel started (guest clock)", h*3600+mi*60+sec)
	}
}
