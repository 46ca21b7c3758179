package ui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/drivers/touch"
	"github.com/skyfleet/skyfleet/internal/apiauth"
	"github.com/skyfleet/skyfleet/internal/fleetconf"
	"github.com/skyfleet/skyfleet/services/mesh/radio"
	"github.com/skyfleet/skyfleet/services/meshd"
	"github.com/skyfleet/skyfleet/services/ui/approve"
	"github.com/skyfleet/skyfleet/ui/fb"
	"github.com/skyfleet/skyfleet/ui/screens"
)

const token = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// fakeNodeAPI serves the node's paths as the status service does: /status
// to anyone, the rest only with the token; it records what was sent.
func fakeNodeAPI(t *testing.T) (*httptest.Server, *[]map[string]string) {
	var mu sync.Mutex
	sent := &[]map[string]string{}
	mux := http.NewServeMux()
	write := func(w http.ResponseWriter, v any) { json.NewEncoder(w).Encode(v) }
	authed := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer "+token {
				w.WriteHeader(401)
				write(w, map[string]string{"error": "control path"})
				return
			}
			h(w, r)
		}
	}
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		// The radio channels as the mesh service writes them, through PID 1's /status.
		write(w, map[string]any{"address": "2GjWVhmTZqyKJTSz1ku3wFqYuiW7eJxuAqa", "version": "2026.12.05", "slot": "a",
			"radio": []meshd.RadioChannel{
				{Listen: "kiss+tcp://127.0.0.1:8001", Callsign: "N0CALL-1", Stats: radio.Stats{FramesIn: 12, FramesOut: 5, BadFrames: 1,
					EstimatedAirtime: 9 * time.Second, PortStats: radio.PortStats{FramingErrors: 2}}},
				{Listen: "afsk:///dev/snd/pcmC1D0", Stats: radio.Stats{PortError: "open /dev/snd/pcmC1D0: no such device",
					PortStats: radio.PortStats{FCSErrors: 4, Airtime: 3 * time.Second, BusyTime: time.Minute}}},
			}})
	})
	mux.HandleFunc("GET /mesh/links", authed(func(w http.ResponseWriter, r *http.Request) {
		write(w, map[string]any{"links": []map[string]any{
			{"address": "fyqX5YuwXMUs4GEUE3LjLyhrqvNztFHQ4B", "up": true, "rtt_ms": 11.6, "loss": 0.0, "medium": map[string]any{"signal_dbm": -61}},
			{"address": "2iNNt6fm9LszSWe51693BeyNUKX34pPaLx8", "up": false},
			{"address": "kit7kit7kit7kit7kit7kit7", "up": true, "rtt_ms": 2400, "loss": 0.1, "radio": true},
		}})
	}))
	mux.HandleFunc("GET /msg/inbox", authed(func(w http.ResponseWriter, r *http.Request) {
		write(w, []map[string]any{{"from": "peerA", "text": "are you there?", "received_at": "2026-12-05T09:30:00Z"}})
	}))
	mux.HandleFunc("GET /msg/outbox", authed(func(w http.ResponseWriter, r *http.Request) {
		write(w, []map[string]any{
			{"to": "peerA", "text": "yes", "sent_at": "2026-12-05T09:31:00Z", "state": "forwarded"},
			{"to": "peerB", "text": "old", "sent_at": "2026-12-04T09:31:00Z", "state": "delivered"},
		})
	}))
	mux.HandleFunc("POST /msg/send", authed(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]string
		json.NewDecoder(r.Body).Decode(&m)
		if strings.HasPrefix(m["to"], "bad") {
			w.WriteHeader(400)
			write(w, map[string]string{"error": "not a node address"})
			return
		}
		mu.Lock()
		*sent = append(*sent, m)
		mu.Unlock()
		write(w, map[string]string{"state": "held"})
	}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, sent
}

// The API client reads the status page's data from the node's paths with
// the token: links up only, their medium, messages waiting (held or
// forwarded); threads grouped by peer, newest first, with the state of our
// last message; a send posts to /msg/send and a refusal comes back with the
// node's reason. Without the token the control paths fail and the public
// status still shows.
func TestAPI(t *testing.T) {
	srv, sent := fakeNodeAPI(t)
	a := &API{Base: srv.URL, Cred: apiauth.Token(token), Name: "kit-04"}
	st, err := a.Status()
	if err != nil {
		t.Fatal(err)
	}
	if st.Name != "kit-04" || st.Address != "2GjWVhmTZqyKJTSz1ku3wFqYuiW7eJxuAqa" || st.Waiting != 1 || len(st.Links) != 2 {
		t.Fatalf("status %+v", st)
	}
	if l := st.Links[0]; l.Medium != "wifi" || l.Signal != -61 || l.RTTms != 12 || l.Quality() != "good" {
		t.Errorf("wifi link %+v", l)
	}
	if l := st.Links[1]; l.Medium != "radio" || l.Quality() != "fair" {
		t.Errorf("radio link %+v: want fair (10%% loss; 2.4 s is a normal round trip on radio)", l)
	}
	wantRadio := []screens.RadioChannel{
		{Name: "kiss+tcp://127.0.0.1:8001", Callsign: "N0CALL-1", FramesIn: 12, FramesOut: 5, Errors: 3, Airtime: 9 * time.Second},
		{Name: "afsk:///dev/snd/pcmC1D0", Down: "open /dev/snd/pcmC1D0: no such device", Errors: 4, Airtime: 3 * time.Second, Busy: time.Minute},
	}
	if !slices.Equal(st.Radio, wantRadio) {
		t.Errorf("radio channels %+v, want %+v", st.Radio, wantRadio)
	}
	th := a.Threads()
	if len(th) != 2 || th[0].Peer != "peerA" || th[0].Last != "yes" || th[0].State != "forwarded" || th[1].Peer != "peerB" {
		t.Errorf("threads %+v", th)
	}
	msgs := a.Thread("peerA")
	if len(msgs) != 2 || msgs[0].Outgoing || !msgs[1].Outgoing || msgs[1].State != "forwarded" {
		t.Errorf("thread %+v", msgs)
	}
	if err := a.Send("peerA", "water at 2"); err != nil {
		t.Fatal(err)
	}
	if len(*sent) != 1 || (*sent)[0]["text"] != "water at 2" {
		t.Errorf("sent %v", *sent)
	}
	if err := a.Send("bad", "x"); err == nil || err.Error() != "not a node address" {
		t.Errorf("refused send: %v", err)
	}
	anon := &API{Base: srv.URL}
	st, err = anon.Status()
	if err == nil || st.Address == "" || len(st.Links) != 0 {
		t.Errorf("without the token: %+v, %v", st, err)
	}
}

// memScreen is a screen in memory that can be blanked.
type memScreen struct {
	mu      sync.Mutex
	pic     *image.RGBA
	blanked []bool
	draws   int
}

func (m *memScreen) Size() image.Point { return m.pic.Rect.Size() }
func (m *memScreen) Draw(p *image.RGBA, r image.Rectangle) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	copy(m.pic.Pix, p.Pix)
	m.draws++
	return nil
}
func (m *memScreen) Close() error { return nil }
func (m *memScreen) Blank(off bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.blanked = append(m.blanked, off)
	return nil
}

// content is the picture between the bars: the clock in the title bar may
// turn to the next minute during a test.
func (m *memScreen) content() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]byte(nil), m.pic.Pix[m.pic.PixOffset(0, 60):m.pic.PixOffset(0, 260)]...)
}

// waitFor polls cond every 5 ms for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startRun runs the service against the fake node API at url until ctx
// ends; done gets Run's error, logs returns what it logged so far.
func startRun(ctx context.Context, scr *memScreen, src chanTouch, url string, cfg Config) (<-chan error, func() string) {
	var mu sync.Mutex
	var b strings.Builder
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, scr, src, &API{Base: url, Cred: apiauth.Token(token)}, cfg, func(s string) {
			mu.Lock()
			b.WriteString(s + "\n")
			mu.Unlock()
		})
	}()
	return done, func() string {
		mu.Lock()
		defer mu.Unlock()
		return b.String()
	}
}

type chanTouch chan touch.Report

func (c chanTouch) Read(ctx context.Context) (touch.Report, error) {
	select {
	case r := <-c:
		return r, nil
	case <-ctx.Done():
		return touch.Report{}, ctx.Err()
	}
}
func (c chanTouch) Close() error { return nil }

// The service draws the status page, dims the screen when left alone, and
// the touch that wakes it presses nothing: a tap on the dark screen where
// the Messages button is leaves the status page up; the next tap there
// opens the messages.
func TestRunDimsAndWakes(t *testing.T) {
	srv, _ := fakeNodeAPI(t)
	scr := &memScreen{pic: image.NewRGBA(image.Rect(0, 0, 480, 320))}
	src := make(chanTouch)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := ConfigFrom(fleetconf.Defaults(true))
	// Short, but long beside the loop's handling of a burst of reports, so
	// the screen does not dim again between a wake and the tap after it.
	cfg.DimAfter = 300 * time.Millisecond
	done, _ := startRun(ctx, scr, src, srv.URL, cfg)
	wait := func(what string, cond func() bool) { t.Helper(); waitFor(t, what, cond) }
	// count is how many times the screen was turned off (true) or on.
	count := func(off bool) func() int {
		return func() int {
			scr.mu.Lock()
			defer scr.mu.Unlock()
			n := 0
			for _, b := range scr.blanked {
				if b == off {
					n++
				}
			}
			return n
		}
	}
	dims, wakes := count(true), count(false)
	wait("the screen dimmed", func() bool { return dims() == 1 })
	// Messages is the right half of the bottom bar.
	messages := []touch.Point{{X: 360, Y: 310}}
	content := scr.content
	before := content()
	src <- touch.Report{Points: messages}
	src <- touch.Report{}
	wait("the screen lit", func() bool { return wakes() == 1 })
	// Dimming again comes only after the loop has handled every touch
	// before it: then the wake's tap has had every chance to act.
	wait("the screen dimmed again", func() bool { return dims() == 2 })
	if string(content()) != string(before) {
		t.Fatal("the touch that woke the screen tapped what was under it")
	}
	// A wake and, right after it, a tap: the tap acts.
	src <- touch.Report{Points: messages}
	src <- touch.Report{}
	src <- touch.Report{Points: messages}
	src <- touch.Report{}
	wait("the messages page", func() bool { return string(content()) != string(before) })
	if wakes() != 2 {
		t.Errorf("the screen was lit %d times, want 2", wakes())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

var _ Node = (*API)(nil)
var _ screens.Messenger = (*API)(nil)

// The framebuffer console is unbound, the others left bound.
func TestReleaseFramebufferConsole(t *testing.T) {
	sys := t.TempDir()
	for name, desc := range map[string]string{"vtcon0": "(S) dummy device\n", "vtcon1": "(M) frame buffer device\n"} {
		d := filepath.Join(sys, "class", "vtconsole", name)
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "name"), []byte(desc), 0o644)
		os.WriteFile(filepath.Join(d, "bind"), []byte("1\n"), 0o644)
	}
	got, err := ReleaseFramebufferConsole(sys)
	if err != nil || len(got) != 1 || got[0] != "vtcon1" {
		t.Fatalf("unbound %v, %v", got, err)
	}
	for name, want := range map[string]string{"vtcon0": "1\n", "vtcon1": "0"} {
		b, _ := os.ReadFile(filepath.Join(sys, "class", "vtconsole", name, "bind"))
		if string(b) != want {
			t.Errorf("%s bind = %q, want %q", name, b, want)
		}
	}
}

// A service's request through the approval socket takes the screen over the
// status page with the caller's name; a tap in the first moments after it
// appears (the input guard) presses nothing, a tap after it approves, and
// the caller gets the answer; a request its caller withdraws leaves the
// screen as it was.
func TestRunApproval(t *testing.T) {
	srv, _ := fakeNodeAPI(t)
	scr := &memScreen{pic: image.NewRGBA(image.Rect(0, 0, 480, 320))}
	src := make(chanTouch)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	sock := filepath.Join(t.TempDir(), "approve.sock")
	ln, err := approve.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	as := approve.NewServer(func(pid int32) (string, error) {
		if int(pid) == os.Getpid() {
			return "wallet", nil
		}
		return "", errors.New("not supervised")
	}, nil)
	go as.Serve(ctx, ln)

	cfg := ConfigFrom(fleetconf.Defaults(true))
	cfg.Approvals = as.Requests()
	// Long, so the taps meant to fall inside it do on a loaded machine.
	cfg.InputGuard = 2 * time.Second
	done, _ := startRun(ctx, scr, src, srv.URL, cfg)
	content := scr.content
	wait := func(what string, cond func() bool) { t.Helper(); waitFor(t, what, cond) }
	wait("the status page", func() bool {
		scr.mu.Lock()
		defer scr.mu.Unlock()
		return scr.draws > 0
	})
	status := content()

	// Approve is the right half of the bottom row of the request's page.
	theme, err := fb.NewTheme(image.Point{480, 320}, fb.DefaultDPI(image.Point{480, 320}))
	if err != nil {
		t.Fatal(err)
	}
	approveAt := []touch.Point{{X: 480 * 3 / 4, Y: 320 - theme.Pad/2 - theme.Target/2}}
	tap := func() {
		src <- touch.Report{Points: approveAt}
		src <- touch.Report{}
	}
	answers := make(chan approve.Answer, 1)
	ask := func(ctx context.Context) {
		a, err := approve.Ask(ctx, sock, approve.Request{Title: "Sign transaction", Rows: []approve.Row{{Label: "Send", Value: "0.015 BTC"}}})
		if err != nil {
			a.Reason = err.Error()
		}
		answers <- a
	}
	go ask(context.Background())
	wait("the request on the screen", func() bool { return string(content()) != string(status) })
	shown := time.Now()
	tap()
	tap()
	// After the guard, and the taps inside it handled: they decided nothing.
	time.Sleep(time.Until(shown.Add(cfg.InputGuard)))
	select {
	case a := <-answers:
		t.Fatalf("a tap inside the input guard answered: %+v", a)
	default:
	}
	tap()
	select {
	case a := <-answers:
		if !a.Approved || a.Reason != "" {
			t.Fatalf("answer %+v, want approved", a)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no answer after the tap on Approve")
	}
	wait("the status page back", func() bool { return string(content()) == string(status) })

	// A request withdrawn by its caller goes from the screen.
	actx, acancel := context.WithCancel(context.Background())
	go ask(actx)
	wait("the second request on the screen", func() bool { return string(content()) != string(status) })
	acancel()
	if a := <-answers; a.Approved {
		t.Fatalf("a withdrawn request was approved: %+v", a)
	}
	wait("the status page after the withdrawal", func() bool { return string(content()) == string(status) })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A panel that is off (a known skew, as a resistive hat is before
// calibration) is calibrated on the calibration screen the service starts
// with: a check touch that misses its cross starts the screen again; four
// good touches give the skew back, saved and applied at once, so a tap
// aimed at the Messages button then opens the messages.
func TestRunCalibration(t *testing.T) {
	srv, _ := fakeNodeAPI(t)
	size := image.Point{480, 320}
	scr := &memScreen{pic: image.NewRGBA(image.Rectangle{Max: size})}
	src := make(chanTouch)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Off by 8% of the height at the bottom edge: without the calibration
	// a tap aimed at the top of the navigation bar lands above it.
	truth := touch.Calibration{1.05, 0.02, -0.03, -0.02, 0.95, 0.08}
	// reported is where the uncalibrated driver reports a touch aimed at
	// the pixel p: the panel's normalised position n with truth(n) = p.
	reported := func(p image.Point) touch.Point {
		u, v := (float64(p.X)+0.5)/float64(size.X), (float64(p.Y)+0.5)/float64(size.Y)
		a, b, c, d, e, f := truth[0], truth[1], truth[2], truth[3], truth[4], truth[5]
		det := a*e - b*d
		x, y := (e*(u-c)-b*(v-f))/det, (a*(v-f)-d*(u-c))/det
		return touch.Point{X: int(x * float64(size.X)), Y: int(y * float64(size.Y))}
	}
	var mu sync.Mutex
	var saved []touch.Calibration
	cfg := ConfigFrom(fleetconf.Defaults(true))
	cfg.Calibrate = true
	cfg.SaveCalibration = func(c touch.Calibration) error {
		mu.Lock()
		saved = append(saved, c)
		mu.Unlock()
		return nil
	}
	done, logs := startRun(ctx, scr, src, srv.URL, cfg)
	touchAt := func(p touch.Point) {
		src <- touch.Report{Points: []touch.Point{p}}
		src <- touch.Report{}
	}
	targets := screens.CalibrationTargets(size)
	// Three good touches and a check far off its cross: the screen starts
	// again, and nothing is saved.
	for _, p := range targets[:3] {
		touchAt(reported(p))
	}
	touchAt(reported(image.Point{40, 280}))
	for _, p := range targets {
		touchAt(reported(p))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(saved)
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no calibration saved; log:\n%s", logs())
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	got := saved[0]
	if len(saved) != 1 {
		t.Errorf("%d calibrations saved, want 1", len(saved))
	}
	mu.Unlock()
	for i := range got {
		if math.Abs(got[i]-truth[i]) > 0.02 {
			t.Fatalf("calibration %v, want about %v", got, truth)
		}
	}
	if l := logs(); !strings.Contains(l, "check touch landed") || !strings.Contains(l, "touch calibrated: touch_calibration = ") {
		t.Errorf("log:\n%s", l)
	}
	content := scr.content
	// The status page is up: a tap aimed at Messages (the right half of
	// the bottom bar, Target high) lands there through the new calibration.
	// The calibration page is the background colour where the status
	// page has its title bar.
	theme, err := fb.NewTheme(size, fb.DefaultDPI(size))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the status page after the calibration", func() bool {
		scr.mu.Lock()
		defer scr.mu.Unlock()
		return scr.pic.RGBAAt(size.X/2, 2) != theme.Background
	})
	status := content()
	touchAt(reported(image.Point{360, size.Y - theme.Target + 4}))
	waitFor(t, "the messages after a tap aimed at Messages", func() bool { return string(content()) != string(status) })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// Where the touch calibration comes from: fleet.toml's wins; a resistive
// panel without one gets the calibration screen, whose result is saved and
// used at the next start; a damaged file is reported and calibrated again;
// other panels never calibrate.
func TestUseSavedCalibration(t *testing.T) {
	path := filepath.Join(t.TempDir(), CalibrationFile)
	cfg := Config{Touch: "xpt2046"}
	if err := UseSavedCalibration(&cfg, path); err != nil || !cfg.Calibrate || cfg.SaveCalibration == nil {
		t.Fatalf("no calibration anywhere: %+v, %v", cfg, err)
	}
	want := touch.Calibration{1.05, 0.02, -0.03, -0.02, 0.95, 0.08}
	if err := cfg.SaveCalibration(want); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("saved file: %v %v", fi, err)
	}
	next := Config{Touch: "xpt2046"}
	if err := UseSavedCalibration(&next, path); err != nil || next.Calibrate || next.Calibration != want {
		t.Fatalf("next start: %+v, %v", next, err)
	}
	fromToml := Config{Touch: "xpt2046", Calibration: touch.Calibration{-1, 0, 1, 0, 1, 0}}
	if err := UseSavedCalibration(&fromToml, path); err != nil || fromToml.Calibrate || fromToml.Calibration != (touch.Calibration{-1, 0, 1, 0, 1, 0}) {
		t.Fatalf("fleet.toml's calibration: %+v, %v", fromToml, err)
	}
	os.WriteFile(path, []byte("1 2 3\n"), 0o600)
	broken := Config{Touch: "xpt2046"}
	if err := UseSavedCalibration(&broken, path); err == nil || !broken.Calibrate {
		t.Fatalf("damaged file: %+v, %v", broken, err)
	}
	os.WriteFile(path, []byte("0 0 0 0 0 0\n"), 0o600)
	if err := UseSavedCalibration(&Config{Touch: "xpt2046"}, path); err == nil {
		t.Fatal("a degenerate saved calibration was used")
	}
	usb := Config{Touch: "auto"}
	if err := UseSavedCalibration(&usb, filepath.Join(t.TempDir(), "none")); err != nil || usb.Calibrate {
		t.Fatalf("a USB panel: %+v, %v", usb, err)
	}
}

// OpenScreen picks the driver [display] names; "auto" takes the framebuffer,
// else the DRM card, else no screen. The devices here are stand-ins
// (/dev/null is neither), so each choice shows in the driver's refusal.
func TestOpenScreen(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	cases := []struct {
		screen, fb, card string
		want             string // in the error; "" is ErrNoScreen
	}{
		{"none", "/dev/null", "/dev/null", ""},
		{"auto", missing, missing, ""},
		{"auto", "/dev/null", "/dev/null", "fbdev: /dev/null"},
		{"auto", missing, "/dev/null", "drm: /dev/null has no dumb buffers"},
		{"fbdev", missing, "/dev/null", `screen = "fbdev" but`},
		{"drm", "/dev/null", "/dev/null", "drm: /dev/null has no dumb buffers"},
		{"drm", "/dev/null", missing, "no such file"},
		{"ili9342", "/dev/null", "/dev/null", `unknown screen "ili9342"`},
	}
	for _, c := range cases {
		scr, err := OpenScreen(Config{Screen: c.screen, Framebuffer: c.fb, DRMCard: c.card})
		if scr != nil {
			scr.Close()
			t.Errorf("%+v: a screen opened", c)
			continue
		}
		switch {
		case c.want == "" && !errors.Is(err, ErrNoScreen):
			t.Errorf("%+v: %v, want ErrNoScreen", c, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: %v, want an error with %q", c, err, c.want)
		}
	}
}

// What the screen is given of a request, every field the approval API has,
// and the answer made of each kind of decision: the PIN for an approval,
// the choice's index (0 included) for a choice, the word for a word, none
// of them for a refusal; the decision's PIN and word are wiped.
func TestScreenRequestAndAnswer(t *testing.T) {
	p := &approve.Pending{Service: "wallet", Request: approve.Request{
		Kind: approve.KindChoose, Title: "Which is word 7?",
		Rows:     []approve.Row{{Label: "Word", Value: "7 of 12"}},
		Warnings: []string{"Write it down"}, Choices: []string{"orbit", "fabric"},
		RejectLabel: "Stop",
	}}
	got := screenRequest(p)
	want := screens.Request{Service: "wallet", Kind: screens.KindChoose, Title: "Which is word 7?",
		Rows: []fb.Pair{{Label: "Word", Value: "7 of 12"}}, Warnings: []string{"Write it down"},
		Choices: []string{"orbit", "fabric"}, RejectLabel: "Stop"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("screen request %+v, want %+v", got, want)
	}
	for kind, want := range map[string]string{"": screens.KindApprove, approve.KindApprove: screens.KindApprove, approve.KindWord: screens.KindWord, "odd": "odd"} {
		p.Request.Kind = kind
		if got := screenRequest(p).Kind; got != want {
			t.Errorf("kind %q became %q, want %q", kind, got, want)
		}
	}
	p.Request = approve.Request{Title: "Pair", Rows: []approve.Row{{Label: "Peer", Value: "kit 7"}}, ApproveLabel: "Pair", RejectLabel: "Refuse", PIN: true}
	if r := screenRequest(p); r.ApproveLabel != "Pair" || r.RejectLabel != "Refuse" || !r.NeedPIN || r.Kind != screens.KindApprove {
		t.Errorf("approval with labels: %+v", r)
	}

	pin, word := []byte("2468"), []byte("abandon")
	a := answer("", screens.Decision{Approved: true, PIN: pin})
	if !a.Approved || a.PIN != "2468" || a.Choice != nil || a.Text != "" || a.Reason != "" || string(pin) != "\x00\x00\x00\x00" {
		t.Errorf("approval: %+v, PIN left %q", a, pin)
	}
	a = answer(approve.KindChoose, screens.Decision{Approved: true, Choice: 0})
	if i, ok := a.Chosen(); !ok || i != 0 || a.PIN != "" || a.Text != "" {
		t.Errorf("choice 0: %+v", a)
	}
	a = answer(approve.KindWord, screens.Decision{Approved: true, Word: word})
	if !a.Approved || a.Text != "abandon" || a.Choice != nil || strings.Trim(string(word), "\x00") != "" {
		t.Errorf("word: %+v, word left %q", a, word)
	}
	word = []byte("zoo")
	for _, kind := range []string{"", approve.KindChoose, approve.KindWord} {
		a = answer(kind, screens.Decision{Word: word, Choice: 3})
		if a.Approved || a.Reason != approve.ReasonRejected || a.Choice != nil || a.Text != "" || a.PIN != "" {
			t.Errorf("kind %q refused: %+v", kind, a)
		}
	}
	if strings.Trim(string(word), "\x00") != "" {
		t.Errorf("a refusal left the word %q", word)
	}
}

// twin is the ui service's screen built again in this process at the same
// size: a question shown on it has its controls where the service's has, so
// a test finds where to touch by label and feeds both the same touches.
type twin struct {
	app *screens.App
	at  time.Time // the touches' clock: each tap well past the debounce
}

func newTwin(t *testing.T, size image.Point) *twin {
	th, err := fb.NewTheme(size, fb.DefaultDPI(size))
	if err != nil {
		t.Fatal(err)
	}
	u := fb.New(&memScreen{pic: image.NewRGBA(image.Rectangle{Max: size})}, th)
	return &twin{app: screens.NewApp(u, time.Now), at: time.Now()}
}

// tap touches the middle of r on the twin and, through src, on the service.
func (tw *twin) tap(t *testing.T, src chanTouch, r image.Rectangle) {
	t.Helper()
	if r.Empty() {
		t.Fatal("no control to tap")
	}
	c := r.Min.Add(r.Size().Div(2))
	tw.at = tw.at.Add(200 * time.Millisecond)
	tw.app.UI.TouchAt([]image.Point{c}, tw.at)
	tw.app.UI.TouchAt(nil, tw.at)
	if _, err := tw.app.UI.Render(); err != nil {
		t.Fatal(err)
	}
	src <- touch.Report{Time: tw.at, Points: []touch.Point{{X: c.X, Y: c.Y}}}
	src <- touch.Report{Time: tw.at}
}

// A choose request and a word request through the socket, answered by taps
// where the twin has the controls: the choice comes back as its index, the
// word typed (three letters, then the completion) as the word, the cancel
// button as a refusal; the screen shows what the twin does, and no log
// holds a choice or the word.
func TestRunChooseAndWord(t *testing.T) {
	srv, _ := fakeNodeAPI(t)
	size := image.Point{480, 320}
	scr := &memScreen{pic: image.NewRGBA(image.Rectangle{Max: size})}
	src := make(chanTouch)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sock := filepath.Join(t.TempDir(), "approve.sock")
	ln, err := approve.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	var amu sync.Mutex
	var alog strings.Builder
	as := approve.NewServer(func(pid int32) (string, error) {
		if int(pid) == os.Getpid() {
			return "wallet", nil
		}
		return "", errors.New("not supervised")
	}, func(f string, args ...any) {
		amu.Lock()
		defer amu.Unlock()
		fmt.Fprintf(&alog, f+"\n", args...)
	})
	go as.Serve(ctx, ln)
	cfg := ConfigFrom(fleetconf.Defaults(true))
	cfg.Approvals = as.Requests()
	cfg.InputGuard = time.Nanosecond // the taps come after the page is seen
	done, logs := startRun(ctx, scr, src, srv.URL, cfg)
	waitFor(t, "the status page", func() bool {
		scr.mu.Lock()
		defer scr.mu.Unlock()
		return scr.draws > 0
	})
	status := scr.content()
	tw := newTwin(t, size)

	ask := func(r approve.Request) <-chan approve.Answer {
		answers := make(chan approve.Answer, 1)
		go func() {
			a, err := approve.Ask(context.Background(), sock, r)
			if err != nil {
				a.Reason = err.Error()
			}
			answers <- a
		}()
		return answers
	}
	// show puts r on the twin and waits until the service's screen shows
	// the same between the bars.
	show := func(r approve.Request) screens.Question {
		t.Helper()
		q := tw.app.Ask(screenRequest(&approve.Pending{Service: "wallet", Request: r}), func(screens.Decision) {})
		if _, err := tw.app.UI.Render(); err != nil {
			t.Fatal(err)
		}
		want := tw.app.UI.Picture()
		wantContent := append([]byte(nil), want.Pix[want.PixOffset(0, 60):want.PixOffset(0, 260)]...)
		waitFor(t, "the question as the twin shows it", func() bool { return string(scr.content()) == string(wantContent) })
		return q
	}
	answer := func(answers <-chan approve.Answer) approve.Answer {
		t.Helper()
		select {
		case a := <-answers:
			return a
		case <-time.After(10 * time.Second):
			t.Fatal("no answer")
		}
		return approve.Answer{}
	}

	choose := approve.Request{Kind: approve.KindChoose, Title: "Which is word 7?", Choices: []string{"orbit", "fabric", "lemon", "throw"}}
	answers := ask(choose)
	p := show(choose).(*screens.ChoosePage)
	tw.tap(t, src, p.Choices[2].Rect)
	if a := answer(answers); !a.Approved || a.Choice == nil || *a.Choice != 2 || a.Text != "" {
		t.Fatalf("choose: %+v, want choice 2", a)
	}
	waitFor(t, "the status page back", func() bool { return string(scr.content()) == string(status) })

	answers = ask(choose)
	p = show(choose).(*screens.ChoosePage)
	tw.tap(t, src, p.Reject.Rect)
	if a := answer(answers); a.Approved || a.Choice != nil || a.Reason != approve.ReasonRejected {
		t.Fatalf("choose cancelled: %+v", a)
	}
	waitFor(t, "the status page back", func() bool { return string(scr.content()) == string(status) })

	word := approve.Request{Kind: approve.KindWord, Title: "Restore wallet", Rows: []approve.Row{{Label: "Word", Value: "3 of 12"}}}
	answers = ask(word)
	w := show(word).(*screens.WordPage)
	for _, k := range "aba" {
		tw.tap(t, src, w.Keyboard.KeyAt(string(k)).Rect)
	}
	if len(w.Completions) != 1 || w.Completions[0].Label != "abandon" {
		t.Fatalf("the twin offers %d completions after \"aba\"", len(w.Completions))
	}
	// The service's screen shows "aba" and the completion too.
	want := tw.app.UI.Picture()
	wantContent := append([]byte(nil), want.Pix[want.PixOffset(0, 60):want.PixOffset(0, 260)]...)
	waitFor(t, "\"aba\" typed on the service's screen", func() bool { return string(scr.content()) == string(wantContent) })
	tw.tap(t, src, w.Completions[0].Rect)
	if a := answer(answers); !a.Approved || a.Text != "abandon" || a.Choice != nil {
		t.Fatalf("word: %+v, want abandon", a)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	amu.Lock()
	l := alog.String() + logs()
	amu.Unlock()
	for _, secret := range append(choose.Choices, "abandon") {
		if strings.Contains(l, secret) {
			t.Errorf("the log holds %q:\n%s", secret, l)
		}
	}
	if !strings.Contains(l, `wallet's "Restore wallet": answered`) {
		t.Errorf("the log lacks the word request's outcome:\n%s", l)
	}
}
