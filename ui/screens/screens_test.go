package screens

import (
	"errors"
	"flag"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/ui/fb"
)

// update rewrites the golden pictures from this run. They are reviewed
// before they are committed: each is looked at as a picture (does it read at
// that size, is anything cut off or overlapping), never taken on trust.
var update = flag.Bool("update", false, "rewrite testdata/golden/*.png from this run (review every picture before committing)")

// memScreen is a screen in memory that keeps what was drawn and counts it.
type memScreen struct {
	pic    *image.RGBA
	pixels int
}

func (m *memScreen) Size() image.Point { return m.pic.Rect.Size() }
func (m *memScreen) Draw(p *image.RGBA, r image.Rectangle) error {
	r = r.Intersect(m.pic.Rect)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		copy(m.pic.Pix[m.pic.PixOffset(r.Min.X, y):m.pic.PixOffset(r.Max.X, y)], p.Pix[p.PixOffset(r.Min.X, y):p.PixOffset(r.Max.X, y)])
	}
	m.pixels += r.Dx() * r.Dy()
	return nil
}

// fakeMsgs is a Messenger with a fixed inbox that records what is sent.
type fakeMsgs struct{ sent []string }

func (f *fakeMsgs) Threads() []Thread {
	return []Thread{
		{Peer: "2GjWVhmTZqyKJTSz1ku3wFqYuiW7eJxuAqa", Name: "relief-hq", Last: "Water arrives at the school at 14:00, bring the blue jerrycans", Unread: 2, State: "delivered"},
		{Peer: "fyqX5YuwXMUs4GEUE3LjLyhrqvNztFHQ4B", Last: "Road to the bridge is closed", State: "forwarded"},
		{Peer: "2iNNt6fm9LszSWe51693BeyNUKX34pPaLx8", Name: "kit 7", Last: "ok", State: "held"},
	}
}

func (f *fakeMsgs) Thread(peer string) []Message {
	at := time.Date(2026, 12, 5, 9, 30, 0, 0, time.UTC)
	return []Message{
		{Text: "Are you at the school?", Time: at},
		{Outgoing: true, Text: "Yes, 40 people here, we need water and blankets", Time: at.Add(4 * time.Minute), State: "delivered"},
		{Text: "Water arrives at the school at 14:00, bring the blue jerrycans", Time: at.Add(30 * time.Minute)},
	}
}

func (f *fakeMsgs) Send(peer, text string) error {
	if strings.HasPrefix(peer, "bad") {
		return errors.New("not a node address")
	}
	f.sent = append(f.sent, peer+": "+text)
	return nil
}

var sizes = []image.Point{{320, 240}, {480, 320}, {800, 480}}

func newApp(t *testing.T, size image.Point) (*App, *memScreen, *fakeMsgs) {
	t.Helper()
	th, err := fb.NewTheme(size, fb.DefaultDPI(size))
	if err != nil {
		t.Fatal(err)
	}
	scr := &memScreen{pic: image.NewRGBA(image.Rectangle{Max: size})}
	u := fb.New(scr, th)
	now := func() time.Time { return time.Date(2026, 12, 5, 14, 7, 0, 0, time.UTC) }
	u.Now = now
	a := NewApp(u, now)
	m := &fakeMsgs{}
	a.SetMessenger(m)
	a.SetStatus(Status{
		Name: "kit-04 school", Address: "2GjWVhmTZqyKJTSz1ku3wFqYuiW7eJxuAqa",
		Links: []Link{
			{Peer: "relief-hq", Medium: "wifi", RTTms: 12, Signal: -58},
			{Peer: "kit 7", Medium: "radio", RTTms: 2400, Loss: 0.12},
			{Peer: "bridge", Medium: "wifi", RTTms: 340, Loss: 0.06, Signal: -81},
		},
		Waiting: 2, Unread: 3, Update: "up to date (2026.12.05)",
	})
	return a, scr, m
}

func render(t *testing.T, a *App) {
	t.Helper()
	if _, err := a.UI.Render(); err != nil {
		t.Fatal(err)
	}
}

// tap presses and releases at the centre of r, as a finger would, with the
// debounce interval between taps.
func tap(a *App, r image.Rectangle) {
	c := r.Min.Add(r.Size().Div(2))
	now := a.UI.Now()
	a.UI.Now = func() time.Time { return now.Add(time.Second) }
	a.UI.Touch([]image.Point{c})
	a.UI.Touch(nil)
}

// artifact writes the screen's picture where CI keeps test artefacts.
func artifact(t *testing.T, name string, pic *image.RGBA) string {
	t.Helper()
	dir := filepath.Join("..", "..", "e2e", "artifacts", "screens")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name+".png")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, pic); err != nil {
		t.Fatal(err)
	}
	return p
}

// golden compares pic with testdata/golden/name.png: at most 0.5% of the
// pixels may differ by more than 48 in a channel (anti-aliasing may move;
// a moved or missing widget, a cut line or a wrong colour may not).
func golden(t *testing.T, name string, pic *image.RGBA, ignore ...image.Rectangle) {
	t.Helper()
	art := artifact(t, name, pic)
	path := filepath.Join("testdata", "golden", name+".png")
	if *update {
		os.MkdirAll(filepath.Dir(path), 0o755)
		b, _ := os.ReadFile(art)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("golden %s: %v (run with -update, then review the picture)", path, err)
	}
	defer f.Close()
	want, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if want.Bounds() != pic.Rect {
		t.Fatalf("%s: %v picture, golden %v", name, pic.Rect, want.Bounds())
	}
	bad := 0
	for y := pic.Rect.Min.Y; y < pic.Rect.Max.Y; y++ {
	pixel:
		for x := pic.Rect.Min.X; x < pic.Rect.Max.X; x++ {
			for _, r := range ignore {
				if (image.Point{x, y}).In(r) {
					continue pixel
				}
			}
			r1, g1, b1, _ := want.At(x, y).RGBA()
			c := pic.RGBAAt(x, y)
			if absDiff(r1>>8, uint32(c.R)) > 48 || absDiff(g1>>8, uint32(c.G)) > 48 || absDiff(b1>>8, uint32(c.B)) > 48 {
				bad++
			}
		}
	}
	if limit := pic.Rect.Dx() * pic.Rect.Dy() / 200; bad > limit {
		t.Errorf("%s: %d pixels differ from %s (limit %d); this run's picture is %s", name, bad, path, limit, art)
	}
}

func absDiff(a, b uint32) uint32 {
	if a > b {
		return a - b
	}
	return b - a
}

func sizeName(s image.Point) string { return fmt.Sprintf("%dx%d", s.X, s.Y) }

// Every screen at every size, against its reviewed golden picture: status,
// the inbox, a thread, compose with typed text, the approval and its PIN
// pad.
func TestScreensGolden(t *testing.T) {
	for _, size := range sizes {
		t.Run(sizeName(size), func(t *testing.T) {
			a, scr, _ := newApp(t, size)
			a.Open("Status")
			render(t, a)
			golden(t, "status-"+sizeName(size), scr.pic)

			a.Open("Messages")
			render(t, a)
			golden(t, "messages-"+sizeName(size), scr.pic)

			a.UI.Show(a.threadPage(a.msgs.Threads()[0]))
			render(t, a)
			golden(t, "thread-"+sizeName(size), scr.pic)

			c := a.composePage("2GjWVhmTZqyKJTSz1ku3wFqYuiW7eJxuAqa")
			a.UI.Show(c)
			for _, r := range "need 12 more blankets" {
				c.Keyboard.OnKey(r)
			}
			render(t, a)
			golden(t, "compose-"+sizeName(size), scr.pic)

			p := a.Ask(approvalRequest(), func(Decision) {}).(*ApprovalPage)
			render(t, a)
			golden(t, "approval-"+sizeName(size), scr.pic)
			for p.Detail.ScrollBy(1000) {
			}
			a.UI.Damage(p.Detail.Bounds())
			render(t, a)
			tap(a, p.Approve.Rect)
			render(t, a)
			if p.PIN == nil {
				t.Fatal("Approve did not open the PIN pad")
			}
			render(t, a)
			// The digits are shuffled: their keys' faces are left out of
			// the comparison (TestPINPad checks them).
			var digits []image.Rectangle
			for d := byte('0'); d <= '9'; d++ {
				digits = append(digits, p.PIN.Digit(d).Rect)
			}
			golden(t, "pin-"+sizeName(size), scr.pic, digits...)

			withRadio(a)
			a.Open("Radio")
			render(t, a)
			golden(t, "radio-"+sizeName(size), scr.pic)

			cal := a.Calibrate()
			cal.Next()
			render(t, a)
			golden(t, "calibrate-"+sizeName(size), scr.pic)
			cal.Retry("Try again: the touches did not match the crosses")
			render(t, a)
			golden(t, "calibrate-retry-"+sizeName(size), scr.pic)
		})
	}
}

// The calibration page walks its four targets, the check last, and Retry
// goes back to the first.
func TestCalibrationPage(t *testing.T) {
	a, _, _ := newApp(t, image.Point{480, 320})
	p := a.Calibrate()
	want := CalibrationTargets(image.Point{480, 320})
	for i := range want {
		if p.Step() != i || p.Target() != want[i] {
			t.Fatalf("step %d target %v, want %d %v", p.Step(), p.Target(), i, want[i])
		}
		p.Next()
	}
	if p.Step() != 3 {
		t.Fatalf("past the last target: step %d", p.Step())
	}
	p.Retry("again")
	if p.Step() != 0 {
		t.Fatalf("after Retry: step %d", p.Step())
	}
}

func approvalRequest() Request {
	return Request{
		Service: "wallet", Title: "Send 0.0125 BTC", NeedPIN: true,
		Warnings: []string{"Fee is 6.1% of the amount sent"},
		Rows: []fb.Pair{
			{Label: "To", Value: "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"},
			{Label: "Amount", Value: "0.01250000 BTC"},
			{Label: "Change (yours, m/84'/0'/0'/1/3)", Value: "0.00431200 BTC"},
			{Label: "Fee", Value: "0.00076200 BTC (6.1%)"},
		},
	}
}

// tappables returns every tappable widget of ws, containers searched.
func tappables(ws []fb.Widget) []fb.Widget {
	var out []fb.Widget
	for _, w := range ws {
		if c, ok := w.(fb.Container); ok {
			out = append(out, tappables(c.Children())...)
		}
		if _, ok := w.(fb.Tappable); ok {
			out = append(out, w)
		}
	}
	return out
}

// Every control on every page is at least MinTargetMM each way at every
// size, measured in the screen's pixels at its density; the keyboard's keys
// are too from 480x320 up, and on 320x240 (where ten in a row cannot be)
// at least 5 mm.
func TestTargetsAtLeast7mm(t *testing.T) {
	for _, size := range sizes {
		a, _, _ := newApp(t, size)
		th := a.UI.Theme
		mm := func(px int) float64 { return float64(px) * 25.4 / th.DPI }
		compose := a.composePage("x")
		keys := map[fb.Widget]bool{}
		for _, k := range tappables(compose.Keyboard.Children()) {
			keys[k] = true
		}
		approval := a.Ask(approvalRequest(), func(Decision) {}).(*ApprovalPage)
		for approval.Detail.ScrollBy(1000) {
		}
		pin, err := fb.NewPINPad(image.Rect(a.bar.modal.Min.X+th.Pad/2, a.bar.modal.Min.Y, a.bar.modal.Max.X-th.Pad/2, a.bar.modal.Max.Y-th.Pad/2), th, a.UI, "PIN")
		if err != nil {
			t.Fatal(err)
		}
		choose := a.Ask(chooseRequest(), func(Decision) {}).(*ChoosePage)
		long := chooseRequest()
		long.Choices = []string{"Savings account in BTC", "Everyday spending wallet", "Cold storage, 2 of 3",
			"Donations received", "The account of the school", "None of these accounts"}
		chooseLong := a.Ask(long, func(Decision) {}).(*ChoosePage)
		word := a.Ask(wordRequest(), func(Decision) {}).(*WordPage)
		word.Keyboard.OnKey('a')
		for _, k := range tappables(word.Keyboard.Children()) {
			keys[k] = true
		}
		labelled := a.Ask(labelsRequest(), func(Decision) {}).(*ApprovalPage)
		a.Open("Status")
		twoTabs := a.statusPage().Widgets()
		withRadio(a)
		pages := map[string][]fb.Widget{
			"status":   twoTabs,
			"radio":    a.radioPage().Widgets(),
			"messages": a.messagesPage().Widgets(),
			"thread":   a.threadPage(a.msgs.Threads()[0]).Widgets(),
			"compose":  compose.Widgets(),
			"approval": approval.Widgets(),
			"pin":      pin.Children(),
			"choose":   choose.Widgets(),
			// The grid's buttons are all its own size, scrolled or not.
			"choose-long":    chooseLong.Widgets(),
			"word":           word.Widgets(),
			"approve-labels": labelled.Widgets(),
		}
		if len(word.Completions) == 0 {
			t.Errorf("%v: no completions of \"a\" to measure", size)
		}
		for name, ws := range pages {
			for _, w := range tappables(ws) {
				b := w.Bounds()
				minW, minH := MinTargetMMFor(size, keys[w])
				if mm(b.Dx()) < minW-0.05 || mm(b.Dy()) < minH-0.05 {
					t.Errorf("%v %s: %T %v is %.1f x %.1f mm, want at least %.0f x %.0f", size, name, w, b, mm(b.Dx()), mm(b.Dy()), minW, minH)
				}
			}
		}
	}
}

// withRadio gives a's node two radio channels, one down, and a station
// linked over radio.
func withRadio(a *App) {
	s := a.status
	s.Radio = []RadioChannel{
		{Name: "kiss+serial:///dev/ttyUSB0?baud=9600", Callsign: "N0CALL-1", FramesIn: 1342, FramesOut: 407, Errors: 3,
			Airtime: 7*time.Minute + 12*time.Second, Busy: 41 * time.Minute},
		{Name: "afsk:///dev/snd/pcmC1D0?rate=48000&ptt=cm108:/dev/hidraw0", Callsign: "N0CALL-1",
			Down: "open /dev/snd/pcmC1D0: no such file or directory"},
	}
	a.SetStatus(s)
}

// The navigation bar has Radio only while the node has a radio channel: it
// appears with the first, opens the radio page, and when the last goes the
// status page comes back with two tabs.
func TestRadioTab(t *testing.T) {
	a, _, _ := newApp(t, image.Point{480, 320})
	a.Open("Messages")
	if len(a.bar.nav) != 2 {
		t.Fatalf("%d tabs without a radio, want 2", len(a.bar.nav))
	}
	withRadio(a)
	if len(a.bar.nav) != 3 || a.bar.nav[2].Label != "Radio" {
		t.Fatalf("with radio channels the tabs are %v, want Status, Messages, Radio", navLabels(a))
	}
	if a.bar.nav[1].Kind != fb.Primary {
		t.Error("the Messages tab is no longer lit after the bar changed")
	}
	if _, ok := a.UI.Page().(*messagesPage); !ok {
		t.Errorf("the bar's change left %T, want the messages page still", a.UI.Page())
	}
	render(t, a)
	tap(a, a.bar.nav[2].Rect)
	p, ok := a.UI.Page().(*radioPage)
	if !ok {
		t.Fatalf("tapping Radio shows %T", a.UI.Page())
	}
	all := detailText(p)
	for _, want := range []string{"N0CALL-1 on kiss+serial:///dev/ttyUSB0?baud=9600", "on air\nheard 1342 frames, sent 407, 3 bad\non air 7 min, channel busy 41 min",
		"down: open /dev/snd/pcmC1D0: no such file or directory", "kit 7: fair, 2.4 s, 12% loss"} {
		if !strings.Contains(all, want) {
			t.Errorf("the radio page lacks %q; it says:\n%s", want, all)
		}
	}
	s := a.status
	s.Radio = nil
	a.SetStatus(s)
	if _, ok := a.UI.Page().(*statusPage); !ok || len(a.bar.nav) != 2 {
		t.Errorf("with the radio gone: page %T and tabs %v, want the status page and two tabs", a.UI.Page(), navLabels(a))
	}
}

// detailText is the radio page's rows as text, a row's label and value on
// lines of their own.
func detailText(p *radioPage) string {
	var s []string
	for _, r := range p.items[0].(*fb.Detail).Rows {
		s = append(s, r.Label, r.Value)
	}
	return strings.Join(s, "\n")
}

func navLabels(a *App) []string {
	var s []string
	for _, b := range a.bar.nav {
		s = append(s, b.Label)
	}
	return s
}

// A receive-only channel says so; durations read in the unit that fits.
func TestRadioWords(t *testing.T) {
	a, _, _ := newApp(t, image.Point{800, 480})
	a.SetStatus(Status{Radio: []RadioChannel{{Name: "kiss+tcp://127.0.0.1:8001"}}})
	a.Open("Radio")
	got := a.UI.Page().(*radioPage).items[0].(*fb.Detail).Rows
	want := []fb.Pair{
		{Label: "no callsign on kiss+tcp://127.0.0.1:8001", Value: "receive only: set [radio] callsign to transmit\nheard 0 frames, sent 0\non air 0 s", Warn: true},
		{Label: "Stations linked over radio", Value: "none yet"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("the page says %+v, want %+v", got, want)
	}
	for d, want := range map[time.Duration]string{42 * time.Second: "42 s", 7*time.Minute + 59*time.Second: "7 min", 3*time.Hour + 5*time.Minute: "3 h 05 min"} {
		if got := roughDuration(d); got != want {
			t.Errorf("roughDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// MinTargetMMFor is the smallest target each way the test holds a control
// to: MinTargetMM, but 5 mm for a keyboard key on a screen under 480 wide.
func MinTargetMMFor(size image.Point, key bool) (float64, float64) {
	if key && size.X < 480 {
		return 5, 5
	}
	return fb.MinTargetMM, fb.MinTargetMM
}

// The compose flow as a finger does it, through UI.Touch on the keys'
// rectangles: the address, Done, the text, Done sends it to the messaging
// service and the inbox comes back; a refused send is a dialog whose OK
// returns to the message as typed. A tap redraws only the key and the
// field it changed, not the screen.
func TestComposeByTouch(t *testing.T) {
	a, scr, m := newApp(t, image.Point{480, 320})
	a.Open("Messages")
	render(t, a)
	list := a.UI.Page().Widgets()
	var newMsg *fb.Button
	for _, w := range list {
		if b, ok := w.(*fb.Button); ok && b.Label == "New message" {
			newMsg = b
		}
	}
	tap(a, newMsg.Rect)
	render(t, a)
	c, ok := a.UI.Page().(*ComposePage)
	if !ok {
		t.Fatalf("New message opened %T", a.UI.Page())
	}
	typeText := func(s string) {
		for _, r := range s {
			label := string(r)
			if r == ' ' {
				label = "space"
			}
			k := c.Keyboard.KeyAt(label)
			layer := k == nil
			if layer { // a digit: on the symbols layer
				tap(a, c.Keyboard.KeyAt("?123").Rect)
				render(t, a)
				k = c.Keyboard.KeyAt(label)
			}
			if k == nil {
				t.Fatalf("no key %q", label)
			}
			render(t, a)
			before := scr.pixels
			tap(a, k.Rect)
			render(t, a)
			if drawn := scr.pixels - before; drawn >= 480*320/4 {
				t.Fatalf("typing %q redrew %d pixels, a quarter of the screen or more", r, drawn)
			}
			if layer {
				tap(a, c.Keyboard.KeyAt("abc").Rect)
				render(t, a)
			}
		}
	}
	typeText("bad1")
	tap(a, c.Keyboard.KeyAt("Done").Rect)
	typeText("hi there")
	tap(a, c.Keyboard.KeyAt("Done").Rect)
	render(t, a)
	if c.Dialog == nil || a.UI.Page() == fb.Page(c) {
		t.Fatal("a refused send showed no dialog")
	}
	artifact(t, "compose-refused-480x320", scr.pic)
	ok2 := c.Dialog.Children()[len(c.Dialog.Children())-1].(*fb.Button)
	tap(a, ok2.Rect)
	render(t, a)
	if a.UI.Page() != fb.Page(c) || c.text != "hi there" {
		t.Fatalf("after OK: page %T, text %q", a.UI.Page(), c.text)
	}
	// Start over with a good address.
	a.UI.Show(a.composePage(""))
	c = a.UI.Page().(*ComposePage)
	typeText("kit7")
	tap(a, c.Keyboard.KeyAt("Done").Rect)
	typeText("water at 2")
	tap(a, c.Keyboard.KeyAt("Done").Rect)
	render(t, a)
	if len(m.sent) != 1 || m.sent[0] != "kit7: water at 2" {
		t.Fatalf("sent %q", m.sent)
	}
	if _, ok := a.UI.Page().(*messagesPage); !ok {
		t.Errorf("after sending the page is %T, want the inbox", a.UI.Page())
	}
}

// A bounce (a second press within DebounceInterval of a lift) types
// nothing; Reject on an approval decides against, with no PIN; Approve is
// disabled until the rows were scrolled to their end on a small screen.
func TestDebounceRejectAndApproveGate(t *testing.T) {
	a, _, _ := newApp(t, image.Point{320, 240})
	c := a.composePage("x")
	a.UI.Show(c)
	render(t, a)
	k := c.Keyboard.KeyAt("q").Rect
	at := time.Date(2026, 12, 5, 14, 0, 0, 0, time.UTC)
	a.UI.Now = func() time.Time { return at }
	centre := k.Min.Add(k.Size().Div(2))
	a.UI.Touch([]image.Point{centre})
	a.UI.Touch(nil)
	at = at.Add(20 * time.Millisecond) // the panel bouncing
	a.UI.Touch([]image.Point{centre})
	a.UI.Touch(nil)
	if c.text != "q" {
		t.Errorf("a bounce typed: %q", c.text)
	}

	var got *Decision
	p := a.Ask(approvalRequest(), func(d Decision) { got = &d }).(*ApprovalPage)
	render(t, a)
	if !p.Approve.Disabled {
		t.Fatal("Approve enabled before the rows were all shown on 320x240")
	}
	tap(a, p.Approve.Rect)
	if got != nil || p.PIN != nil {
		t.Fatal("a disabled Approve acted")
	}
	tap(a, p.Reject.Rect)
	if got == nil || got.Approved || got.PIN != nil {
		t.Errorf("Reject gave %+v", got)
	}
}

// Approve then the PIN typed on the shuffled pad: the decision carries the
// digits tapped, found by their labels wherever the shuffle put them.
func TestApproveWithPIN(t *testing.T) {
	a, _, _ := newApp(t, image.Point{800, 480})
	var got *Decision
	p := a.Ask(approvalRequest(), func(d Decision) { got = &d }).(*ApprovalPage)
	render(t, a)
	tap(a, p.Approve.Rect)
	render(t, a)
	if p.PIN == nil {
		t.Fatal("no PIN pad")
	}
	for _, d := range []byte("2468") {
		tap(a, p.PIN.Digit(d).Rect)
	}
	tap(a, p.PIN.Children()[len(p.PIN.Children())-1].Bounds())
	if got == nil || !got.Approved || string(got.PIN) != "2468" {
		t.Fatalf("decision %+v", got)
	}
}

// Cancel (the asking service went away) ends the request once, as
// rejected, from the PIN pad too, and brings back the page and title that
// were up before it; a tap after that decides nothing more.
func TestApprovalCancel(t *testing.T) {
	a, _, _ := newApp(t, image.Point{800, 480})
	a.Open("Messages")
	render(t, a)
	before, title := a.UI.Page(), a.bar.title.Text
	calls := 0
	var got Decision
	p := a.Ask(approvalRequest(), func(d Decision) { calls++; got = d }).(*ApprovalPage)
	render(t, a)
	tap(a, p.Approve.Rect)
	render(t, a)
	if p.PIN == nil {
		t.Fatal("no PIN pad")
	}
	p.Cancel()
	p.Cancel()
	render(t, a)
	if calls != 1 || got.Approved || got.PIN != nil {
		t.Fatalf("after two Cancels: %d decisions, last %+v", calls, got)
	}
	if a.UI.Page() != before || a.bar.title.Text != title {
		t.Errorf("page %T title %q after Cancel, want %T %q", a.UI.Page(), a.bar.title.Text, before, title)
	}
	tap(a, p.PIN.Digit('1').Rect)
	if calls != 1 {
		t.Errorf("a tap after Cancel decided again")
	}
}

// BenchmarkRedraw measures, at 480x320, a full redraw of the status page
// (the baseline) and the redraw after one key press on the compose page,
// and reports the pixels each sends to the screen.
func BenchmarkRedraw(b *testing.B) {
	t := &testing.T{}
	a, scr, _ := newApp(t, image.Point{480, 320})
	a.Open("Status")
	b.Run("full", func(b *testing.B) {
		for b.Loop() {
			a.UI.Damage(image.Rect(0, 0, 480, 320))
			a.UI.Render()
		}
		b.ReportMetric(float64(480*320*2), "bytes/op(RGB565)")
	})
	c := a.composePage("x")
	a.UI.Show(c)
	a.UI.Render()
	k := c.Keyboard.KeyAt("e").Rect
	b.Run("key", func(b *testing.B) {
		before := scr.pixels
		for b.Loop() {
			tap(a, k)
			a.UI.Render()
			c.text = ""
		}
		b.ReportMetric(float64(scr.pixels-before)/float64(b.N)*2, "bytes/op(RGB565)")
	})
}

func chooseRequest() Request {
	return Request{
		Service: "wallet", Kind: KindChoose, Title: "Which is word 7?",
		Rows:    []fb.Pair{{Label: "Backup check", Value: "Word 7 of 12"}},
		Choices: []string{"orbit", "fabric", "lemon", "throw"},
	}
}

func wordRequest() Request {
	return Request{
		Service: "wallet", Kind: KindWord, Title: "Restore wallet",
		Rows: []fb.Pair{{Label: "Type word", Value: "3 of 12"}},
	}
}

func labelsRequest() Request {
	return Request{
		Service: "meshd", Title: "Pair with kit 7?", ApproveLabel: "Pair", RejectLabel: "Refuse",
		Rows: []fb.Pair{
			{Label: "Peer", Value: "kit 7 (2iNNt6fm9LszSWe51693BeyNUKX34pPaLx8)"},
		},
	}
}

// typeWord taps the letters of s on the word page's keyboard.
func typeWord(t *testing.T, a *App, p *WordPage, s string) {
	t.Helper()
	for _, r := range s {
		k := p.Keyboard.KeyAt(string(r))
		if k == nil {
			t.Fatalf("no key %q", r)
		}
		tap(a, k.Rect)
		render(t, a)
	}
}

// The other kinds of question at every size, against their reviewed
// golden pictures: a choice of four words, a word being typed ("ab", with
// its completions), and an approval with its own button labels.
func TestQuestionsGolden(t *testing.T) {
	for _, size := range sizes {
		t.Run(sizeName(size), func(t *testing.T) {
			a, scr, _ := newApp(t, size)
			a.Open("Status")
			render(t, a)
			c := a.Ask(chooseRequest(), func(Decision) {}).(*ChoosePage)
			render(t, a)
			for i, b := range c.Choices {
				if b.Disabled {
					t.Errorf("choice %d disabled: the rows fit at %v", i, size)
				}
			}
			golden(t, "choose-"+sizeName(size), scr.pic)
			c.Cancel()

			w := a.Ask(wordRequest(), func(Decision) {}).(*WordPage)
			render(t, a)
			typeWord(t, a, w, "ab")
			if len(w.Completions) < 2 {
				t.Errorf("%d completions of \"ab\" at %v, want 2 or more", len(w.Completions), size)
			}
			golden(t, "word-"+sizeName(size), scr.pic)
			w.Cancel()

			l := a.Ask(labelsRequest(), func(Decision) {}).(*ApprovalPage)
			render(t, a)
			if l.Approve.Label != "Pair" || l.Reject.Label != "Refuse" || l.Approve.Disabled {
				t.Errorf("approve %q (disabled %v), reject %q", l.Approve.Label, l.Approve.Disabled, l.Reject.Label)
			}
			golden(t, "approve-labels-"+sizeName(size), scr.pic)
		})
	}
}

// A choice tapped ends a choose request with its index; the cancel button
// (labelled by RejectLabel) ends it unanswered; the page that was up comes
// back each time.
func TestChooseByTouch(t *testing.T) {
	for _, size := range sizes {
		a, _, _ := newApp(t, size)
		a.Open("Messages")
		render(t, a)
		before := a.UI.Page()
		var got []Decision
		p := a.Ask(chooseRequest(), func(d Decision) { got = append(got, d) }).(*ChoosePage)
		render(t, a)
		tap(a, p.Choices[2].Rect)
		render(t, a)
		if len(got) != 1 || !got[0].Approved || got[0].Choice != 2 || got[0].Word != nil || got[0].PIN != nil {
			t.Fatalf("%v: tapping %q decided %+v", size, p.Choices[2].Label, got)
		}
		if a.UI.Page() != before {
			t.Errorf("%v: after the choice the page is %T", size, a.UI.Page())
		}
		r := chooseRequest()
		r.RejectLabel = "Not now"
		p = a.Ask(r, func(d Decision) { got = append(got, d) }).(*ChoosePage)
		render(t, a)
		if p.Reject.Label != "Not now" {
			t.Errorf("%v: the cancel button says %q", size, p.Reject.Label)
		}
		tap(a, p.Reject.Rect)
		if len(got) != 2 || got[1].Approved {
			t.Fatalf("%v: cancel decided %+v", size, got)
		}
		tap(a, p.Choices[0].Rect)
		if len(got) != 2 {
			t.Errorf("%v: a tap after the request ended decided again", size)
		}
	}
}

// On a small screen the choices wait, disabled, until rows too long for it
// have been scrolled to their end; six choices too long for two columns
// scroll, and the last is reached and tapped.
func TestChooseGateAndScroll(t *testing.T) {
	a, _, _ := newApp(t, image.Point{320, 240})
	r := Request{Service: "wallet", Kind: KindChoose, Title: "Which account?",
		Rows: approvalRequest().Rows,
		Choices: []string{"Savings account in BTC", "Everyday spending wallet", "Cold storage, 2 of 3",
			"Donations received", "The account of the school", "None of these accounts"},
	}
	var got *Decision
	p := a.Ask(r, func(d Decision) { got = &d }).(*ChoosePage)
	render(t, a)
	if !p.Choices[0].Disabled {
		t.Fatal("a choice is enabled before the rows were all shown")
	}
	tap(a, p.Choices[0].Rect)
	if got != nil {
		t.Fatalf("a disabled choice decided %+v", got)
	}
	if p.Detail.Rect.Dy() < fb.LineHeight(a.UI.Theme.Small)+fb.LineHeight(a.UI.Theme.Body) {
		t.Errorf("the rows got %d px, less than their first row", p.Detail.Rect.Dy())
	}
	for p.Detail.ScrollBy(1000) {
	}
	a.UI.Damage(p.Detail.Bounds())
	render(t, a)
	last := p.Choices[5]
	if last.Disabled {
		t.Fatal("the choices stayed disabled after the rows were shown")
	}
	if last.Rect.In(p.Grid.Rect) {
		t.Fatalf("six long choices all fit %v at 320x240: the test needs them not to", p.Grid.Rect)
	}
	for _, b := range p.Choices {
		if b.Rect.Dx() < p.Grid.Rect.Dx()*3/4 {
			t.Errorf("%q is %d px wide in a grid of %d: long labels take one column", b.Label, b.Rect.Dx(), p.Grid.Rect.Dx())
		}
	}
	p.Grid.ScrollTo(last)
	render(t, a)
	if !last.Rect.In(p.Grid.Rect) {
		t.Fatalf("ScrollTo left %v outside %v", last.Rect, p.Grid.Rect)
	}
	tap(a, last.Rect)
	if got == nil || !got.Approved || got.Choice != 5 {
		t.Fatalf("tapping the last choice decided %+v", got)
	}
}

// A drag on the choices scrolls them and taps nothing.
func TestChoiceGridDrag(t *testing.T) {
	a, _, _ := newApp(t, image.Point{320, 240})
	r := Request{Service: "wallet", Kind: KindChoose, Title: "Which?",
		Choices: []string{"Savings account in BTC", "Everyday spending wallet", "Cold storage, 2 of 3",
			"Donations received", "The account of the school", "None of these accounts"}}
	var got *Decision
	p := a.Ask(r, func(d Decision) { got = &d }).(*ChoosePage)
	render(t, a)
	first := p.Choices[0].Rect
	c := first.Min.Add(first.Size().Div(2))
	a.UI.Now = func() time.Time { return time.Date(2026, 12, 5, 15, 0, 0, 0, time.UTC) }
	a.UI.Touch([]image.Point{c})
	a.UI.Touch([]image.Point{c.Sub(image.Point{0, 30})})
	a.UI.Touch([]image.Point{c.Sub(image.Point{0, 60})})
	a.UI.Touch(nil)
	render(t, a)
	if got != nil {
		t.Fatalf("a drag decided %+v", got)
	}
	if p.Choices[0].Rect == first {
		t.Error("a drag on the choices did not scroll them")
	}
}

// Typing a word: each letter narrows the completions; a letter no word
// continues with is disabled and types nothing; OK stays disabled until
// the letters are a word; "aba" then the completion "abandon" sends it, and
// the letters typed are wiped.
func TestWordByTouch(t *testing.T) {
	for _, size := range sizes {
		a, _, _ := newApp(t, size)
		var got []Decision
		p := a.Ask(wordRequest(), func(d Decision) { got = append(got, d) }).(*WordPage)
		render(t, a)
		if !p.OK.Disabled || !p.Keyboard.KeyAt("Del").Disabled || len(p.Completions) != 0 {
			t.Fatalf("%v: with nothing typed OK disabled %v, Del disabled %v, %d completions", size, p.OK.Disabled, p.Keyboard.KeyAt("Del").Disabled, len(p.Completions))
		}
		typeWord(t, a, p, "ab")
		q := p.Keyboard.KeyAt("q")
		if !q.Disabled {
			t.Errorf("%v: after \"ab\" the key q is enabled (no word begins \"abq\")", size)
		}
		tap(a, q.Rect)
		p.Keyboard.OnKey('q') // as if the key were somehow tapped
		if string(p.typed) != "ab" {
			t.Fatalf("%v: typed %q, want \"ab\"", size, p.typed)
		}
		tap(a, p.OK.Rect)
		if len(got) != 0 || !p.OK.Disabled {
			t.Fatalf("%v: OK on \"ab\" (not a word): disabled %v, decided %+v", size, p.OK.Disabled, got)
		}
		typeWord(t, a, p, "a")
		var abandon *fb.Button
		for _, b := range p.Completions {
			if b.Label == "abandon" {
				abandon = b
			}
		}
		if abandon == nil || len(p.Completions) != 1 {
			t.Fatalf("%v: completions of \"aba\": %v", size, labels(p.Completions))
		}
		typed := p.typed[:cap(p.typed)]
		tap(a, abandon.Rect)
		render(t, a)
		if len(got) != 1 || !got[0].Approved || string(got[0].Word) != "abandon" || got[0].PIN != nil {
			t.Fatalf("%v: the completion decided %+v", size, got)
		}
		if strings.Trim(string(typed), "\x00") != "" || len(p.typed) != 0 {
			t.Errorf("%v: the letters typed were not wiped: %q", size, typed)
		}
	}
}

// OK sends the word once the letters are one (a word that begins others
// too: "act", with "action" offered); Del takes a letter back.
func TestWordOKAndDel(t *testing.T) {
	a, _, _ := newApp(t, image.Point{480, 320})
	var got *Decision
	p := a.Ask(wordRequest(), func(d Decision) { got = &d }).(*WordPage)
	render(t, a)
	typeWord(t, a, p, "acto")
	if !p.OK.Disabled {
		t.Fatal("OK enabled on \"acto\"")
	}
	tap(a, p.Keyboard.KeyAt("Del").Rect)
	render(t, a)
	if string(p.typed) != "act" || p.OK.Disabled {
		t.Fatalf("after Del: %q, OK disabled %v", p.typed, p.OK.Disabled)
	}
	if l := labels(p.Completions); len(l) < 2 || l[0] != "act" || l[1] != "action" {
		t.Errorf("completions of \"act\": %v", l)
	}
	tap(a, p.OK.Rect)
	if got == nil || !got.Approved || string(got.Word) != "act" {
		t.Fatalf("OK decided %+v", got)
	}
}

// The cancel button and Question.Cancel end a word request unanswered, with
// the letters typed wiped.
func TestWordCancel(t *testing.T) {
	a, _, _ := newApp(t, image.Point{320, 240})
	var got []Decision
	r := wordRequest()
	r.RejectLabel = "Stop"
	p := a.Ask(r, func(d Decision) { got = append(got, d) }).(*WordPage)
	render(t, a)
	if p.Reject.Label != "Stop" {
		t.Errorf("the cancel button says %q", p.Reject.Label)
	}
	typeWord(t, a, p, "zo")
	typed := p.typed[:cap(p.typed)]
	tap(a, p.Reject.Rect)
	if len(got) != 1 || got[0].Approved || got[0].Word != nil {
		t.Fatalf("cancel decided %+v", got)
	}
	if strings.Trim(string(typed), "\x00") != "" {
		t.Errorf("the letters typed were not wiped: %q", typed)
	}
	var q Question = a.Ask(r, func(d Decision) { got = append(got, d) })
	p = q.(*WordPage)
	render(t, a)
	typeWord(t, a, p, "zo")
	typed = p.typed[:cap(p.typed)]
	q.Cancel()
	q.Cancel()
	if len(got) != 2 || got[1].Approved || strings.Trim(string(typed), "\x00") != "" {
		t.Fatalf("Question.Cancel: decisions %+v, letters %q", got, typed)
	}
}

// A kind this screen does not know can only be cancelled, and says so.
func TestUnknownKind(t *testing.T) {
	a, _, _ := newApp(t, image.Point{480, 320})
	var got *Decision
	r := approvalRequest()
	r.Kind = "sign"
	q := a.Ask(r, func(d Decision) { got = &d })
	p, ok := q.(*ChoosePage)
	if !ok {
		t.Fatalf("an unknown kind shows %T", q)
	}
	render(t, a)
	if len(p.Choices) != 0 || p.Detail == nil || !p.Detail.Rows[0].Warn || !strings.Contains(p.Detail.Rows[0].Value, "(sign)") {
		t.Fatalf("choices %v, rows %+v", labels(p.Choices), p.Detail.Rows)
	}
	tap(a, p.Reject.Rect)
	if got == nil || got.Approved {
		t.Fatalf("decided %+v", got)
	}
}

func labels(bs []*fb.Button) []string {
	var s []string
	for _, b := range bs {
		s = append(s, b.Label)
	}
	return s
}
