package fb

import (
	"image"
	"time"
)

// Screen is what the UI draws on; drivers/display's drivers have it.
type Screen interface {
	Size() image.Point
	Draw(pic *image.RGBA, r image.Rectangle) error
}

// Widget is one element of a page. Its rectangle is set by the page's
// layout; it draws itself within it.
type Widget interface {
	// Bounds is the widget's rectangle on the screen.
	Bounds() image.Rectangle
	// Draw paints the widget; dst is the whole picture, and the widget
	// draws inside Bounds only.
	Draw(dst *image.RGBA, t *Theme)
}

// Tappable is a widget that acts on a tap (a press and a release inside it
// without dragging).
type Tappable interface {
	Widget
	// Tap is called with the release point; pressed reports whether the
	// finger is down on it now (for its pressed look).
	Tap(p image.Point)
	SetPressed(pressed bool)
}

// Scrollable is a widget that a vertical drag scrolls.
type Scrollable interface {
	Widget
	// ScrollBy moves the content up by dy pixels (negative: down) and
	// reports whether it moved.
	ScrollBy(dy int) bool
}

// Page is a screenful of widgets, drawn in order (later ones on top) and
// hit-tested in reverse.
type Page interface {
	Widgets() []Widget
}

// UI holds the picture, the page shown and what needs redrawing. Its
// methods are not safe for concurrent use: one goroutine runs the UI.
type UI struct {
	Theme *Theme
	pic   *image.RGBA
	scr   Screen
	page  Page
	dmg   []image.Rectangle

	// Gesture state.
	down      bool
	start     image.Point
	last      image.Point
	target    Tappable
	scroller  Scrollable
	dragging  bool
	lastUp    time.Time
	ignoreTap bool

	// Now is the clock (tests set it).
	Now func() time.Time

	stats Stats
}

// Stats count the UI's redraws.
type Stats struct {
	Frames     uint64 // Render calls that drew something
	PixelsDrew uint64 // pixels redrawn and sent to the screen
}

// DebounceInterval is how soon after a lift a new press is taken for the
// panel bouncing (resistive panels lift and land again within tens of
// milliseconds) and ignored as a press.
const DebounceInterval = 60 * time.Millisecond

// New returns a UI drawing on scr with theme t.
func New(scr Screen, t *Theme) *UI {
	sz := scr.Size()
	return &UI{Theme: t, pic: image.NewRGBA(image.Rectangle{Max: sz}), scr: scr, Now: time.Now}
}

// Picture is the UI's picture, as last rendered.
func (u *UI) Picture() *image.RGBA { return u.pic }

// Size is the screen's size.
func (u *UI) Size() image.Point { return u.pic.Rect.Size() }

// Show makes p the page shown; the whole screen is redrawn at the next
// Render.
func (u *UI) Show(p Page) {
	u.page = p
	u.cancelGesture()
	u.Damage(u.pic.Rect)
}

// Page is the page shown.
func (u *UI) Page() Page { return u.page }

// Damage marks r as needing a redraw.
func (u *UI) Damage(r image.Rectangle) {
	r = r.Intersect(u.pic.Rect)
	if r.Empty() {
		return
	}
	for i, d := range u.dmg {
		if r.In(d) {
			return
		}
		if d.In(r) {
			u.dmg[i] = r
			return
		}
	}
	u.dmg = append(u.dmg, r)
	if len(u.dmg) > 16 {
		// Many small rectangles: one covering them all costs less
		// bookkeeping than it wastes.
		all := u.dmg[0]
		for _, d := range u.dmg[1:] {
			all = all.Union(d)
		}
		u.dmg = append(u.dmg[:0], all)
	}
}

// Render redraws every damaged rectangle: the background, then each widget
// that overlaps it, clipped to it, then sends the rectangle to the screen.
// It returns the rectangles sent.
func (u *UI) Render() ([]image.Rectangle, error) {
	var all []image.Rectangle
	// A widget may ask for another redraw while drawing (a button that
	// depends on what was just drawn): a few passes settle it.
	for pass := 0; pass < 3 && len(u.dmg) > 0 && u.page != nil; pass++ {
		sent, err := u.render()
		all = append(all, sent...)
		if err != nil {
			return all, err
		}
	}
	return all, nil
}

func (u *UI) render() ([]image.Rectangle, error) {
	sent := u.dmg
	u.dmg = nil
	for _, r := range sent {
		sub := u.pic.SubImage(r).(*image.RGBA)
		Fill(sub, r, u.Theme.Background)
		for _, w := range u.page.Widgets() {
			if w.Bounds().Overlaps(r) {
				w.Draw(sub, u.Theme)
			}
		}
		if err := u.scr.Draw(u.pic, r); err != nil {
			return sent, err
		}
		u.stats.PixelsDrew += uint64(r.Dx() * r.Dy())
	}
	u.stats.Frames++
	return sent, nil
}

// Stats returns the counters.
func (u *UI) Stats() Stats { return u.stats }

// Touch takes the contacts of one touch report (drivers/touch's Points as
// image points; only the first contact is used) and turns them into taps
// and scrolls: a press shows the target pressed; moving more than a third
// of a target scrolls the scrollable under the finger instead; a release on
// the pressed target taps it. A press within DebounceInterval of the last
// release is the panel bouncing and is ignored.
func (u *UI) Touch(points []image.Point) { u.TouchAt(points, u.Now()) }

// TouchAt is Touch for a report the hardware timestamped at now: debouncing
// goes by when the panel reported, not by when the UI got to the report,
// which under load can be much later for two reports alike.
func (u *UI) TouchAt(points []image.Point, now time.Time) {
	if len(points) == 0 {
		if !u.down {
			return
		}
		u.down = false
		u.lastUp = now
		if u.target != nil {
			u.target.SetPressed(false)
			u.Damage(u.target.Bounds())
			if !u.dragging && !u.ignoreTap && u.last.In(u.target.Bounds()) {
				u.target.Tap(u.last)
			}
		}
		u.target, u.scroller, u.dragging = nil, nil, false
		return
	}
	p := points[0]
	if !u.down {
		if !u.lastUp.IsZero() && now.Sub(u.lastUp) < DebounceInterval {
			return // a bounce: neither a press nor a tap
		}
		u.down, u.start, u.last, u.ignoreTap = true, p, p, false
		u.target, u.scroller = u.hit(p)
		if u.target != nil {
			u.target.SetPressed(true)
			if pp, ok := u.target.(interface{ PressAt(image.Point) }); ok {
				pp.PressAt(p)
			}
			u.Damage(u.target.Bounds())
		}
		return
	}
	dy := u.last.Y - p.Y
	u.last = p
	if !u.dragging {
		d := p.Sub(u.start)
		if d.X*d.X+d.Y*d.Y < (u.Theme.Target/3)*(u.Theme.Target/3) {
			return
		}
		u.dragging = true
		dy = u.start.Y - p.Y
		if u.target != nil {
			u.target.SetPressed(false)
			u.Damage(u.target.Bounds())
		}
	}
	if u.scroller != nil && u.scroller.ScrollBy(dy) {
		u.Damage(u.scroller.Bounds())
	}
}

// cancelGesture forgets a press in progress (the page changed under it).
func (u *UI) cancelGesture() {
	if u.target != nil {
		u.target.SetPressed(false)
	}
	u.target, u.scroller, u.dragging = nil, nil, false
	u.ignoreTap = u.down
}

// hit finds the topmost tappable and scrollable widgets under p. A widget
// that is a container (it has Children) is searched too.
func (u *UI) hit(p image.Point) (Tappable, Scrollable) {
	if u.page == nil {
		return nil, nil
	}
	return hitIn(u.page.Widgets(), p)
}

// Container is a widget holding others (a list's rows, a keyboard's keys).
type Container interface {
	Children() []Widget
}

func hitIn(ws []Widget, p image.Point) (Tappable, Scrollable) {
	var tap Tappable
	var scr Scrollable
	for i := len(ws) - 1; i >= 0; i-- {
		w := ws[i]
		if !p.In(w.Bounds()) {
			continue
		}
		if c, ok := w.(Container); ok {
			t, s := hitIn(c.Children(), p)
			if tap == nil {
				tap = t
			}
			if scr == nil {
				scr = s
			}
		}
		if t, ok := w.(Tappable); ok && tap == nil {
			tap = t
		}
		if s, ok := w.(Scrollable); ok && scr == nil {
			scr = s
		}
		if tap != nil || scr != nil {
			return tap, scr
		}
	}
	return tap, scr
}
