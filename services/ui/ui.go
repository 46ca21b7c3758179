// Package ui is the touchscreen service: it opens the screen and the touch
// input fleet.toml's [display] names, shows the kit's screens (ui/screens)
// and keeps them current from the node's API, dims the screen when nobody
// touches it, and turns touches into taps and scrolls. It runs as its own
// supervised process (skyfleetd ui), so a fault in drawing or in a touch
// driver never takes the node down.
package ui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/skyfleet/skyfleet/drivers/display"
	"github.com/skyfleet/skyfleet/drivers/display/drm"
	"github.com/skyfleet/skyfleet/drivers/display/fbdev"
	"github.com/skyfleet/skyfleet/drivers/display/spipanel"
	"github.com/skyfleet/skyfleet/drivers/touch"
	"github.com/skyfleet/skyfleet/drivers/touch/evdev"
	"github.com/skyfleet/skyfleet/drivers/touch/xpt2046"
	"github.com/skyfleet/skyfleet/internal/durable"
	"github.com/skyfleet/skyfleet/internal/fleetconf"
	"github.com/skyfleet/skyfleet/services/ui/approve"
	"github.com/skyfleet/skyfleet/ui/fb"
	"github.com/skyfleet/skyfleet/ui/screens"
)

// Config is the [display] table, parsed.
type Config struct {
	Screen      string // fleetconf.Screens
	Rotation    display.Rotation
	Touch       string // "auto", "evdev", "xpt2046", "none"
	Calibration touch.Calibration
	Diagonal    float64 // inches; 0 to guess
	DimAfter    time.Duration
	// Framebuffer is the fbdev node (default /dev/fb0); DRMCard the DRM/KMS
	// device used when there is none (default /dev/dri/card0).
	Framebuffer, DRMCard string
	// StatsFile, if set, is where the service keeps its Stats as JSON,
	// rewritten at every refresh (on the node /run/skyfleet/ui.json).
	StatsFile string
	// Approvals, if set, gives the requests of the local approval API
	// (approve.Server.Requests), shown one at a time over any page.
	Approvals <-chan *approve.Pending
	// InputGuard is how long touches are ignored after an approval request
	// appears (and, if a finger was down then, until it lifts), so a tap
	// aimed at the page underneath cannot land on the request's buttons;
	// 0 is DefaultInputGuard.
	InputGuard time.Duration
	// Calibrate starts the service on the touch calibration screen (the
	// touch source must then map with the identity calibration); the
	// calibration found applies at once and goes to SaveCalibration.
	Calibrate       bool
	SaveCalibration func(touch.Calibration) error
}

// DefaultInputGuard is Config.InputGuard's default.
const DefaultInputGuard = 500 * time.Millisecond

// Stats are what the service measures of its drawing.
type Stats struct {
	Screen string `json:"screen"` // e.g. "800x480"
	// FirstFrameMS is how long the first full frame took to draw and put
	// on the screen; the Last* are the latest redraw after a touch or a
	// refresh, with the pixels it sent.
	FirstFrameMS  float64 `json:"first_frame_ms"`
	LastRedrawMS  float64 `json:"last_redraw_ms"`
	LastRedrawPx  int     `json:"last_redraw_px"`
	Frames        uint64  `json:"frames"`
	Touches       uint64  `json:"touches"`
	Approvals     uint64  `json:"approvals"`
	Blanked       bool    `json:"blanked"`
	TouchDevice   string  `json:"touch_device,omitempty"`
	StatusErrors  uint64  `json:"status_errors"`
	LastStatusErr string  `json:"last_status_error,omitempty"`
}

// ConfigFrom reads [display] from a Config Parse returned (whose values are
// valid).
func ConfigFrom(c fleetconf.Config) Config {
	d := c.Display
	out := Config{Screen: d.Screen, Touch: d.Touch, Framebuffer: "/dev/fb0", DRMCard: "/dev/dri/card0"}
	r, _ := strconv.Atoi(d.Rotation)
	out.Rotation = display.Rotation(r)
	if m, err := fleetconf.ParseCalibration(d.TouchCalibration); err == nil && m != nil {
		copy(out.Calibration[:], m)
	}
	out.Diagonal, _ = strconv.ParseFloat(d.Diagonal, 64)
	out.DimAfter, _ = time.ParseDuration(d.DimAfter)
	return out
}

// CalibrationFile is where, under the node's data directory, the ui service
// keeps the touch calibration it made: the panel's own, so it stays with the
// card, not in the fleet's fleet.toml. [display] touch_calibration wins over
// it; deleting it calibrates again at the next start.
const CalibrationFile = "touch_calibration"

// UseSavedCalibration completes cfg for the touch calibration: with none in
// fleet.toml it takes the one saved at path, and without that either, a
// resistive panel (touch = "xpt2046", which no two hats read alike) gets the
// calibration screen at start, its result saved at path. An error says why a
// saved file was not used (it is then made again).
func UseSavedCalibration(cfg *Config, path string) error {
	save := func(c touch.Calibration) error {
		return durable.WriteFile(path, []byte(fleetconf.FormatCalibration(c[:])+"\n"), 0o600)
	}
	if cfg.Calibration != (touch.Calibration{}) || cfg.Touch != "xpt2046" {
		return nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		cfg.Calibrate, cfg.SaveCalibration = true, save
		return nil
	}
	var m []float64
	if err == nil {
		m, err = fleetconf.ParseCalibration(string(b))
	}
	if err == nil && m != nil {
		var c touch.Calibration
		copy(c[:], m)
		if err = (touch.Mapping{X: touch.Axis{Max: 1}, Y: touch.Axis{Max: 1}, Width: 1, Height: 1, Calibration: c}).Validate(); err == nil {
			cfg.Calibration = c
			return nil
		}
	}
	cfg.Calibrate, cfg.SaveCalibration = true, save
	return fmt.Errorf("the saved touch calibration %s is unusable (%v): calibrating again", path, err)
}

// ErrNoScreen is returned by OpenScreen when the configuration is "none",
// or "auto" and the kernel has neither a framebuffer nor a DRM card.
var ErrNoScreen = errors.New("ui: no screen")

// OpenScreen opens the screen cfg names.
func OpenScreen(cfg Config) (display.Screen, error) {
	switch cfg.Screen {
	case "none":
		return nil, ErrNoScreen
	case "auto", "fbdev", "":
		if _, err := os.Stat(cfg.Framebuffer); err != nil {
			if cfg.Screen == "fbdev" {
				return nil, fmt.Errorf("ui: [display] screen = \"fbdev\" but %s: %w", cfg.Framebuffer, err)
			}
			// No fbdev: a KMS driver without fbdev emulation may be there.
			if _, err := os.Stat(cfg.DRMCard); err != nil {
				return nil, ErrNoScreen
			}
			return screen(drm.Open(cfg.DRMCard, cfg.Rotation))
		}
		return screen(fbdev.Open(cfg.Framebuffer, cfg.Rotation))
	case "drm":
		return screen(drm.Open(cfg.DRMCard, cfg.Rotation))
	}
	c, ok := map[string]spipanel.Controller{
		"ili9341": spipanel.ILI9341, "st7789": spipanel.ST7789, "st7789-240": spipanel.ST7789Square,
		"ili9486": spipanel.ILI9486, "ili9486-waveshare": spipanel.ILI9486Waveshare,
	}[cfg.Screen]
	if !ok {
		return nil, fmt.Errorf("ui: unknown screen %q", cfg.Screen)
	}
	return screen(spipanel.Open(spipanel.Config{Port: "SPI0.0", DC: "GPIO24", Reset: "GPIO25"}, c, cfg.Rotation))
}

// screen returns a driver's Open result as a display.Screen that is nil
// on error (a nil *fbdev.FB in the interface would not be).
func screen[S display.Screen](s S, err error) (display.Screen, error) {
	if err != nil {
		return nil, err
	}
	return s, nil
}

// TouchSource gives touch reports until closed.
type TouchSource interface {
	Read(ctx context.Context) (touch.Report, error)
	Close() error
}

// evdevSource adapts an evdev.Device, whose Read blocks on the device.
type evdevSource struct{ d *evdev.Device }

func (e evdevSource) Read(ctx context.Context) (touch.Report, error) { return e.d.Read() }
func (e evdevSource) Close() error                                   { return e.d.Close() }

// OpenTouch opens the touch input cfg names for a picture of size, or
// returns nil and no error when there is none to open ("none", or "auto"
// with no touch device).
func OpenTouch(cfg Config, size image.Point) (TouchSource, error) {
	switch cfg.Touch {
	case "none":
		return nil, nil
	case "xpt2046":
		m := touch.Mapping{X: touch.Axis{Min: 200, Max: 3900}, Y: touch.Axis{Min: 200, Max: 3900},
			Width: size.X, Height: size.Y, Calibration: cfg.Calibration, Rotation: touch.Rotation(cfg.Rotation)}
		return xpt2046.Open("SPI0.1", "GPIO17", m, xpt2046.Options{})
	}
	devs, err := evdev.Find()
	if err != nil || len(devs) == 0 {
		if cfg.Touch == "evdev" {
			return nil, fmt.Errorf("ui: [display] touch = \"evdev\" but no touch device in /dev/input (%v)", err)
		}
		return nil, nil
	}
	d, err := evdev.Open(devs[0].Path, size.X, size.Y, cfg.Calibration, touch.Rotation(cfg.Rotation))
	if err != nil {
		return nil, err
	}
	return evdevSource{d}, nil
}

// Node is what the screens need of the node; *API is one.
type Node interface {
	Status() (screens.Status, error)
	screens.Messenger
}

// Blanker turns a screen off and on; fbdev and drm have it.
type Blanker interface{ Blank(off bool) error }

// Refresh is how often the status page is brought up to date.
const Refresh = 5 * time.Second

// Run shows the screens on scr until ctx ends, reading touches from src (nil
// for none) and the node through node. log gets one line per event worth
// an operator's attention (never a message's text).
func Run(ctx context.Context, scr display.Screen, src TouchSource, node Node, cfg Config, log func(string)) error {
	size := scr.Size()
	dpi := fb.DefaultDPI(size)
	if cfg.Diagonal > 0 {
		dpi = fb.DPI(size, cfg.Diagonal)
	}
	theme, err := fb.NewTheme(size, dpi)
	if err != nil {
		return err
	}
	u := fb.New(scr, theme)
	app := screens.NewApp(u, time.Now)
	app.SetMessenger(node)
	stats := Stats{Screen: fmt.Sprintf("%dx%d", size.X, size.Y)}
	everOK := false
	refresh := func() {
		st, err := node.Status()
		// The public status answering is enough: a part that needs the
		// token may fail for long, and must not keep the fast polling on.
		everOK = everOK || err == nil || st.Address != ""
		if err != nil {
			stats.StatusErrors++
			if e := err.Error(); e != stats.LastStatusErr {
				log(fmt.Sprintf("ui: %v", err)) // once per distinct error, not every 5 s
				stats.LastStatusErr = e
			}
		}
		app.SetStatus(st)
		app.Tick()
	}
	render := func() error {
		start := time.Now()
		rs, err := u.Render()
		if len(rs) > 0 {
			px := 0
			for _, r := range rs {
				px += r.Dx() * r.Dy()
			}
			ms := float64(time.Since(start).Microseconds()) / 1000
			if stats.Frames == 0 {
				stats.FirstFrameMS = ms
			}
			stats.LastRedrawMS, stats.LastRedrawPx = ms, px
			stats.Frames++
		}
		if err != nil {
			return fmt.Errorf("ui: drawing: %w", err)
		}
		return nil
	}
	saveStats := func() {
		if cfg.StatsFile != "" {
			writeJSON(cfg.StatsFile, stats)
		}
	}
	refresh()
	app.Open("Status")
	// remap moves touches through a calibration made while running (the
	// driver still maps with the identity); nil before one.
	var remap *touch.Mapping
	var cal *calibration
	if cfg.Calibrate && src != nil {
		cal = &calibration{page: app.Calibrate(), size: size, rot: touch.Rotation(cfg.Rotation), mm: theme.DPI / 25.4}
	}
	if err := render(); err != nil {
		return err
	}
	saveStats()
	log(fmt.Sprintf("ui: %dx%d screen at %.0f DPI, touch targets %d px", size.X, size.Y, dpi, theme.Target))

	touches := make(chan touch.Report, 16)
	if src != nil {
		go func() {
			defer close(touches)
			for {
				r, err := src.Read(ctx)
				if err != nil {
					if ctx.Err() == nil {
						log(fmt.Sprintf("ui: touch input ended: %v", err))
					}
					return
				}
				select {
				case touches <- r:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	// Until the node's API has answered once (the status service may
	// start after this one), ask every second; then every Refresh.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	if everOK {
		tick.Reset(Refresh)
	}
	var dim <-chan time.Time
	var dimTimer *time.Timer
	if cfg.DimAfter > 0 {
		dimTimer = time.NewTimer(cfg.DimAfter)
		defer dimTimer.Stop()
		dim = dimTimer.C
	}
	blanked, waking := false, false
	bl, _ := scr.(Blanker)
	// The approval on screen, if any: while one is, no other is taken.
	approvals := cfg.Approvals
	if cal != nil {
		approvals = nil // none over the calibration: its touches are not the UI's
	}
	guard := cfg.InputGuard
	if guard <= 0 {
		guard = DefaultInputGuard
	}
	var asking screens.Question
	var gone <-chan struct{}
	var guardUntil time.Time
	// touchDown: a finger is on the panel (the last report had points);
	// swallow: ignore reports until it lifts.
	touchDown, swallow := false, false
	for {
		select {
		case <-ctx.Done():
			return nil
		case p := <-approvals:
			stats.Approvals++
			approvals = nil // one at a time
			if blanked && bl != nil {
				bl.Blank(false)
			}
			blanked, guardUntil, swallow = false, time.Now().Add(guard), touchDown
			if dimTimer != nil {
				dimTimer.Reset(cfg.DimAfter)
			}
			asking, gone = app.Ask(screenRequest(p), func(d screens.Decision) {
				p.Decide(answer(p.Request.Kind, d))
				asking, gone, approvals = nil, nil, cfg.Approvals
			}), p.Gone()
		case <-gone:
			// Withdrawn or timed out: drop it from the screen.
			asking.Cancel()
		case r, ok := <-touches:
			if !ok {
				touches = nil
				continue
			}
			if dimTimer != nil {
				dimTimer.Reset(cfg.DimAfter)
			}
			stats.Touches++
			if remap != nil {
				for i, p := range r.Points {
					r.Points[i].X, r.Points[i].Y = remap.Remap(p.X, p.Y)
				}
			}
			if cal != nil {
				done, m, err := cal.feed(r)
				if err != nil {
					log(fmt.Sprintf("ui: touch calibration: %v", err))
				}
				if done {
					cal, remap, approvals = nil, m, cfg.Approvals
					log(fmt.Sprintf("ui: touch calibrated: touch_calibration = %q", fleetconf.FormatCalibration(m.Calibration[:])))
					if cfg.SaveCalibration != nil {
						if err := cfg.SaveCalibration(m.Calibration); err != nil {
							log(fmt.Sprintf("ui: keeping the touch calibration: %v", err))
						}
					}
					app.Open("Status")
				}
				break
			}
			touchDown = len(r.Points) > 0
			// A touch inside the guard, and one that was down when it
			// ended, press nothing until the finger lifts.
			if time.Now().Before(guardUntil) {
				swallow = touchDown
				continue
			}
			if swallow {
				swallow = touchDown
				continue
			}
			switch {
			case blanked:
				// The touch that wakes the screen presses nothing: a
				// finger on a dark screen cannot have aimed.
				blanked, waking = false, len(r.Points) > 0
				if bl != nil {
					bl.Blank(false)
				}
			case waking:
				waking = len(r.Points) > 0
			default:
				pts := make([]image.Point, len(r.Points))
				for i, p := range r.Points {
					pts[i] = image.Point{p.X, p.Y}
				}
				at := r.Time
				if at.IsZero() {
					at = time.Now()
				}
				u.TouchAt(pts, at)
			}
		case <-tick.C:
			wasOK := everOK
			refresh()
			if everOK && !wasOK {
				tick.Reset(Refresh)
			}
			stats.Blanked = blanked
			saveStats()
		case <-dim:
			if bl != nil && !blanked && cal == nil {
				if err := bl.Blank(true); err == nil {
					blanked = true
				}
			}
		}
		if err := render(); err != nil {
			return err
		}
	}
}

// calibration is the calibration screen's state: the touches taken on its
// targets so far.
type calibration struct {
	page    *screens.CalibrationPage
	size    image.Point
	rot     touch.Rotation
	mm      float64 // pixels per millimetre
	last    *touch.Point
	touched [4][2]int
}

// checkMM is how far, in millimetres, the check touch may land from its
// target under the new calibration: a fingertip's contact is 7-9 mm wide.
const checkMM = 4

// feed takes a touch report on the calibration screen. A touch counts when
// it lifts, at the last place it was down. After the fourth target it solves
// the calibration from the first three and checks it with the fourth: done,
// with the mapping to remap touches by, or (with the reason) back to the
// first target.
func (c *calibration) feed(r touch.Report) (done bool, m *touch.Mapping, err error) {
	if len(r.Points) > 0 {
		p := r.Points[0]
		c.last = &p
		return false, nil, nil
	}
	if c.last == nil {
		return false, nil, nil
	}
	step := c.page.Step()
	c.touched[step] = [2]int{c.last.X, c.last.Y}
	c.last = nil
	if step < 3 {
		c.page.Next()
		return false, nil, nil
	}
	targets := screens.CalibrationTargets(c.size)
	var tg [3][2]int
	for i := range 3 {
		tg[i] = [2]int{targets[i].X, targets[i].Y}
	}
	mp := touch.Mapping{Width: c.size.X, Height: c.size.Y, Rotation: c.rot}
	cal, err := touch.SolveScreen(mp, [3][2]int(c.touched[:3]), tg)
	if err == nil {
		mp.Calibration = cal
		x, y := mp.Remap(c.touched[3][0], c.touched[3][1])
		if d := math.Hypot(float64(x-targets[3].X), float64(y-targets[3].Y)) / c.mm; d > checkMM {
			err = fmt.Errorf("the check touch landed %.0f mm from its cross", d)
		}
	}
	if err != nil {
		c.page.Retry("Try again: the touches did not match the crosses")
		return false, nil, err
	}
	return true, &mp, nil
}

// screenRequest is what the screen shows of p: its kind of question, the
// rows, the choices and the button labels, and the asking service as the
// server identified it.
func screenRequest(p *approve.Pending) screens.Request {
	q := p.Request
	r := screens.Request{
		Service: p.Service, Title: q.Title, Warnings: q.Warnings, NeedPIN: q.PIN,
		Choices: q.Choices, ApproveLabel: q.ApproveLabel, RejectLabel: q.RejectLabel,
	}
	switch q.Kind {
	case "", approve.KindApprove:
		r.Kind = screens.KindApprove
	case approve.KindChoose:
		r.Kind = screens.KindChoose
	case approve.KindWord:
		r.Kind = screens.KindWord
	default:
		// The server refuses unknown kinds; were one to come, the
		// screen lets it be cancelled only.
		r.Kind = q.Kind
	}
	for _, row := range q.Rows {
		r.Rows = append(r.Rows, fb.Pair{Label: row.Label, Value: row.Value})
	}
	return r
}

// answer is the approval API's answer to a request of kind decided d: the
// PIN for an approval that asked one, the index of the choice tapped, or
// the word typed. It wipes d's PIN and word once copied (the answer's
// strings, which Go cannot wipe, go out on the socket at once).
func answer(kind string, d screens.Decision) approve.Answer {
	defer func() {
		clear(d.PIN)
		clear(d.Word)
	}()
	if !d.Approved {
		return approve.Answer{Reason: approve.ReasonRejected}
	}
	a := approve.Answer{Approved: true}
	switch kind {
	case approve.KindChoose:
		choice := d.Choice
		a.Choice = &choice
	case approve.KindWord:
		a.Text = string(d.Word)
	default:
		a.PIN = string(d.PIN)
	}
	return a
}

// writeJSON replaces path with v as JSON (a temporary file renamed over
// it, so a reader never sees half).
func writeJSON(path string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	os.MkdirAll(filepath.Dir(path), 0o755)
	tmp := path + ".tmp"
	if os.WriteFile(tmp, b, 0o644) == nil {
		os.Rename(tmp, path)
	}
}

// ReleaseFramebufferConsole unbinds the kernel's framebuffer console
// (fbcon) from the screen, so its blinking cursor and kernel messages do not
// draw over the UI; the serial console, where the shell is, stays. It
// returns the consoles unbound; one it cannot unbind is an error naming it.
func ReleaseFramebufferConsole(sysfs string) ([]string, error) {
	dirs, _ := filepath.Glob(filepath.Join(sysfs, "class", "vtconsole", "vtcon*"))
	var done []string
	for _, d := range dirs {
		name, err := os.ReadFile(filepath.Join(d, "name"))
		if err != nil || !strings.Contains(string(name), "frame buffer") {
			continue
		}
		if err := os.WriteFile(filepath.Join(d, "bind"), []byte("0"), 0); err != nil {
			return done, fmt.Errorf("ui: unbinding %s (%s): %w", filepath.Base(d), strings.TrimSpace(string(name)), err)
		}
		done = append(done, filepath.Base(d))
	}
	return done, nil
}
