package fb

import (
	"image"
	"strings"
	"testing"
	"time"
)

type nullScreen struct{ size image.Point }

func (s nullScreen) Size() image.Point                       { return s.size }
func (s nullScreen) Draw(*image.RGBA, image.Rectangle) error { return nil }

func newUI(t *testing.T, size image.Point) *UI {
	t.Helper()
	th, err := NewTheme(size, DefaultDPI(size))
	if err != nil {
		t.Fatal(err)
	}
	u := New(nullScreen{size}, th)
	at := time.Date(2026, 12, 5, 14, 0, 0, 0, time.UTC)
	u.Now = func() time.Time { at = at.Add(time.Second); return at }
	return u
}

type testPage []Widget

func (p testPage) Widgets() []Widget { return p }

func tapAt(u *UI, r image.Rectangle) {
	c := r.Min.Add(r.Size().Div(2))
	u.Touch([]image.Point{c})
	u.Touch(nil)
}

// The letter keyboard has the 26 letters, Del and OK, inside its rectangle
// and apart; Allow disables keys, which then type nothing, and Update
// follows its changes.
func TestLetterKeyboard(t *testing.T) {
	u := newUI(t, image.Point{320, 240})
	r := image.Rect(0, 140, 320, 240)
	k := NewLetterKeyboard(r, u.Theme, u)
	var typed strings.Builder
	k.OnKey = func(c rune) { typed.WriteRune(c) }
	dels, oks := 0, 0
	k.OnBackspace = func() { dels++ }
	k.OnDone = func() { oks++ }
	u.Show(testPage{k})
	if len(k.Items) != 28 {
		t.Fatalf("%d keys, want 28", len(k.Items))
	}
	for i, w := range k.Items {
		b := w.Bounds()
		if !b.In(r) {
			t.Errorf("key %q at %v, outside %v", w.(*Button).Label, b, r)
		}
		for _, o := range k.Items[i+1:] {
			if b.Overlaps(o.Bounds()) {
				t.Errorf("keys %q and %q overlap", w.(*Button).Label, o.(*Button).Label)
			}
		}
	}
	for _, l := range []string{"a", "z", "m", "Del", "OK"} {
		tapAt(u, k.KeyAt(l).Rect)
	}
	if typed.String() != "azm" || dels != 1 || oks != 1 {
		t.Fatalf("typed %q, Del %d, OK %d", typed.String(), dels, oks)
	}
	vowel := func(l string) bool { return strings.Contains("aeiou", l) }
	k.Allow = vowel
	k.Update()
	for _, l := range []string{"e", "q", "OK"} {
		tapAt(u, k.KeyAt(l).Rect)
	}
	if typed.String() != "azme" || oks != 1 || !k.KeyAt("q").Disabled || k.KeyAt("u").Disabled {
		t.Fatalf("with vowels only: typed %q, OK %d", typed.String(), oks)
	}
	k.Allow = nil
	k.Update()
	if k.KeyAt("q").Disabled {
		t.Error("q stayed disabled once Allow was gone")
	}
	if h := LetterKeyboardHeight(u.Theme, 10); float64(h-2*keyGap)/3*25.4/u.Theme.DPI < MinKeyMM {
		t.Errorf("in no room the keys are %d px in all, under %v mm each", h, MinKeyMM)
	}
}

// A grid of more buttons than fit scrolls, never past its ends; a tap lands
// on the button shown under the finger, and one outside the grid on none of
// its buttons.
func TestButtonGrid(t *testing.T) {
	u := newUI(t, image.Point{480, 320})
	th := u.Theme
	var tapped []int
	var bs []*Button
	for i := range 6 {
		bs = append(bs, &Button{Label: string(rune('A' + i)), OnTap: func() { tapped = append(tapped, i) }})
	}
	r := image.Rect(8, 100, 472, 100+2*th.Target+th.Pad)
	g := NewButtonGrid(r, th, u, 2, bs)
	if GridHeight(th, 6, 2) != 3*th.Target+2*th.Pad {
		t.Fatalf("GridHeight %d", GridHeight(th, 6, 2))
	}
	u.Show(testPage{g})
	if bs[4].Rect.Overlaps(r) || !bs[3].Rect.In(r) {
		t.Fatalf("before scrolling: E at %v, D at %v, grid %v", bs[4].Rect, bs[3].Rect, r)
	}
	tapAt(u, bs[3].Rect)
	g.ScrollTo(bs[4])
	if !bs[4].Rect.In(r) {
		t.Fatalf("ScrollTo left E at %v", bs[4].Rect)
	}
	tapAt(u, bs[4].Rect)
	if g.ScrollBy(1000) || g.ScrollBy(0) {
		t.Error("scrolled past the end")
	}
	if !g.ScrollBy(-1000) || bs[0].Rect.Min.Y != r.Min.Y {
		t.Errorf("back at the top A is at %v", bs[0].Rect)
	}
	tapAt(u, image.Rect(bs[4].Rect.Min.X, r.Max.Y+2, bs[4].Rect.Max.X, r.Max.Y+10)) // under the grid, where E is
	if len(tapped) != 2 || tapped[0] != 3 || tapped[1] != 4 {
		t.Fatalf("tapped %v, want [3 4]", tapped)
	}
	for _, b := range bs {
		if b.Rect.Max.X > r.Max.X-scrollBarW {
			t.Errorf("%s at %v is under the scroll bar", b.Label, b.Rect)
		}
	}
}

// Measure is the height Draw finds; a pad less still shows every row, so
// the detail is at its end and has no scroll bar.
func TestDetailMeasure(t *testing.T) {
	u := newUI(t, image.Point{320, 240})
	th := u.Theme
	rows := []Pair{{Label: "To", Value: "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"}, {Label: "Fee", Value: "0.0001 BTC"}}
	want := (&Detail{Rows: rows}).Measure(th, 300)
	for _, h := range []int{want, want - th.Pad} {
		d := &Detail{Rows: rows}
		d.Rect = image.Rect(10, 10, 310, 10+h)
		d.Draw(u.Picture(), th)
		if d.height != want || !d.AtEnd() {
			t.Errorf("in %d px: height %d, want %d; at the end %v", h, d.height, want, d.AtEnd())
		}
	}
	d := &Detail{Rows: rows}
	d.Rect = image.Rect(10, 10, 310, 10+want-th.Pad-1)
	d.Draw(u.Picture(), th)
	if d.AtEnd() || !d.ScrollBy(1) || !d.AtEnd() {
		t.Error("a row cut by a pixel: at the end, or not after a pixel's scroll")
	}
}
