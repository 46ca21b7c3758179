package fb

import (
	"image"
	"image/color"

	"golang.org/x/image/font"
)

// Damager takes rectangles to redraw; *UI is one.
type Damager interface{ Damage(r image.Rectangle) }

// Box is what every widget embeds: its rectangle and whom to tell when it
// changes.
type Box struct {
	Rect image.Rectangle
	D    Damager
}

// Bounds is the widget's rectangle.
func (b *Box) Bounds() image.Rectangle { return b.Rect }

// Invalidate asks for the widget to be redrawn.
func (b *Box) Invalidate() {
	if b.D != nil {
		b.D.Damage(b.Rect)
	}
}

// Label is one line of text.
type Label struct {
	Box
	Text  string
	Face  func(*Theme) font.Face // nil: Body
	Color func(*Theme) color.RGBA
	Align Align
	// Fill, if set, paints the background first.
	Fill func(*Theme) color.RGBA
}

// Set changes the text, redrawing only if it changed.
func (l *Label) Set(s string) {
	if s != l.Text {
		l.Text = s
		l.Invalidate()
	}
}

// Draw implements Widget.
func (l *Label) Draw(dst *image.RGBA, t *Theme) {
	if l.Fill != nil {
		Fill(dst, l.Rect, l.Fill(t))
	}
	face, c := t.Body, t.Text
	if l.Face != nil {
		face = l.Face(t)
	}
	if l.Color != nil {
		c = l.Color(t)
	}
	Text(dst, l.Rect, face, c, l.Text, l.Align)
}

// Button is a tappable labelled rectangle.
type Button struct {
	Box
	Label   string
	OnTap   func()
	Kind    ButtonKind
	pressed bool
	// Disabled buttons draw muted and ignore taps.
	Disabled bool
}

// ButtonKind picks a button's colours.
type ButtonKind int

// Button kinds.
const (
	Plain ButtonKind = iota
	Primary
	Destructive
)

// Tap implements Tappable.
func (b *Button) Tap(image.Point) {
	if !b.Disabled && b.OnTap != nil {
		b.OnTap()
	}
}

// SetPressed implements Tappable.
func (b *Button) SetPressed(p bool) { b.pressed = p && !b.Disabled }

// Draw implements Widget.
func (b *Button) Draw(dst *image.RGBA, t *Theme) {
	bg, fg := t.Surface, t.Text
	switch b.Kind {
	case Primary:
		bg = t.Accent
	case Destructive:
		bg = t.Danger
	}
	if b.pressed {
		bg = t.Pressed
	}
	if b.Disabled {
		bg, fg = t.Surface, t.Muted
	}
	r := b.Rect.Inset(1)
	Fill(dst, r, bg)
	Text(dst, r.Inset(t.Pad/2), t.Body, fg, b.Label, Center)
}

// Progress is a bar from 0 to 1 with a caption.
type Progress struct {
	Box
	Fraction float64
	Caption  string
}

// Set changes the fraction and caption.
func (p *Progress) Set(f float64, caption string) {
	f = min(1, max(0, f))
	if f != p.Fraction || caption != p.Caption {
		p.Fraction, p.Caption = f, caption
		p.Invalidate()
	}
}

// Draw implements Widget.
func (p *Progress) Draw(dst *image.RGBA, t *Theme) {
	Fill(dst, p.Rect, t.Surface)
	done := p.Rect
	done.Max.X = p.Rect.Min.X + int(p.Fraction*float64(p.Rect.Dx()))
	Fill(dst, done, t.Accent)
	Text(dst, p.Rect.Inset(t.Pad/2), t.Small, t.Text, p.Caption, Center)
}

// Group is a container that draws its children; it is how a page holds a
// dialog or a keyboard as one widget.
type Group struct {
	Box
	Items []Widget
	// Fill, if set, paints the group's rectangle first (a dialog's
	// backdrop).
	Fill func(*Theme) color.RGBA
}

// Children implements Container.
func (g *Group) Children() []Widget { return g.Items }

// Draw implements Widget.
func (g *Group) Draw(dst *image.RGBA, t *Theme) {
	if g.Fill != nil {
		Fill(dst, g.Rect, g.Fill(t))
	}
	for _, w := range g.Items {
		if w.Bounds().Overlaps(dst.Rect) {
			w.Draw(dst, t)
		}
	}
}

// Rows splits r into n rows of height h from the top, spaced by gap.
func Rows(r image.Rectangle, h, gap, n int) []image.Rectangle {
	out := make([]image.Rectangle, n)
	for i := range n {
		y := r.Min.Y + i*(h+gap)
		out[i] = image.Rect(r.Min.X, y, r.Max.X, y+h)
	}
	return out
}

// Columns splits r into n equal columns spaced by gap.
func Columns(r image.Rectangle, gap, n int) []image.Rectangle {
	out := make([]image.Rectangle, n)
	w := (r.Dx() - gap*(n-1)) / n
	for i := range n {
		x := r.Min.X + i*(w+gap)
		out[i] = image.Rect(x, r.Min.Y, x+w, r.Max.Y)
	}
	if n > 0 {
		out[n-1].Max.X = r.Max.X
	}
	return out
}

// TextArea is text wrapped over as many lines as its rectangle holds; when
// the text is longer, its end is shown (what is being typed).
type TextArea struct {
	Box
	Text string
	Fill func(*Theme) color.RGBA
}

// Set changes the text, redrawing only if it changed.
func (a *TextArea) Set(s string) {
	if s != a.Text {
		a.Text = s
		a.Invalidate()
	}
}

// Draw implements Widget.
func (a *TextArea) Draw(dst *image.RGBA, t *Theme) {
	if a.Fill != nil {
		Fill(dst, a.Rect, a.Fill(t))
	}
	inner := a.Rect.Inset(t.Pad / 2)
	lh := LineHeight(t.Body)
	lines := Wrap(t.Body, a.Text, inner.Dx())
	if n := max(1, inner.Dy()/lh); len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i, l := range lines {
		y := inner.Min.Y + i*lh
		Text(dst, image.Rect(inner.Min.X, y, inner.Max.X, y+lh), t.Body, t.Text, l, Left)
	}
}

// scrollBarW is the width of a scroll bar, in pixels.
const scrollBarW = 3

// ButtonGrid is buttons in rows of a few columns, each row a target high
// and spaced by the theme's Pad (the choices of a question). When the rows
// are taller than its rectangle a vertical drag scrolls them, a scroll bar
// at the right shows where, and a button outside the rectangle is neither
// drawn nor tapped there; ScrollTo brings one into view.
type ButtonGrid struct {
	Box
	// Buttons are laid out row by row; their Rect is where they are on
	// the screen at the present scroll.
	Buttons []*Button
	base    []image.Rectangle // the buttons' places at scroll 0
	scroll  int
	height  int // of all the rows
}

// GridHeight is the height a ButtonGrid takes to show n buttons in cols
// columns all at once.
func GridHeight(t *Theme, n, cols int) int {
	rows := (n + cols - 1) / max(1, cols)
	if rows == 0 {
		return 0
	}
	return rows*t.Target + (rows-1)*t.Pad
}

// NewButtonGrid lays buttons out in r in cols columns (1 or more), the last
// row's from the left.
func NewButtonGrid(r image.Rectangle, t *Theme, d Damager, cols int, buttons []*Button) *ButtonGrid {
	cols = max(1, cols)
	g := &ButtonGrid{Buttons: buttons, height: GridHeight(t, len(buttons), cols)}
	g.Rect, g.D = r, d
	inner := r
	if g.height > r.Dy() {
		inner.Max.X -= scrollBarW + t.Pad/2 // the bar beside the buttons, not over them
	}
	for i, b := range buttons {
		y := r.Min.Y + (i/cols)*(t.Target+t.Pad)
		b.Rect, b.D = Columns(image.Rect(inner.Min.X, y, inner.Max.X, y+t.Target), t.Pad, cols)[i%cols], d
		g.base = append(g.base, b.Rect)
	}
	return g
}

// Children implements Container.
func (g *ButtonGrid) Children() []Widget {
	ws := make([]Widget, len(g.Buttons))
	for i, b := range g.Buttons {
		ws[i] = b
	}
	return ws
}

// ScrollBy implements Scrollable.
func (g *ButtonGrid) ScrollBy(dy int) bool {
	return g.scrollTo(g.scroll + dy)
}

func (g *ButtonGrid) scrollTo(s int) bool {
	s = min(max(0, s), max(0, g.height-g.Rect.Dy()))
	if s == g.scroll {
		return false
	}
	g.scroll = s
	for i, b := range g.Buttons {
		b.Rect = g.base[i].Sub(image.Point{0, s})
	}
	return true
}

// ScrollTo scrolls the least that shows all of b, one of the grid's
// buttons (a test or the e2e driver, about to tap it).
func (g *ButtonGrid) ScrollTo(b *Button) {
	for i, bb := range g.Buttons {
		if bb != b {
			continue
		}
		s := g.scroll
		if top := g.base[i].Min.Y - g.Rect.Min.Y; top < s {
			s = top
		} else if bottom := g.base[i].Max.Y - g.Rect.Max.Y; bottom > s {
			s = bottom
		}
		if g.scrollTo(s) {
			g.Invalidate()
		}
		return
	}
}

// Draw implements Widget.
func (g *ButtonGrid) Draw(dst *image.RGBA, t *Theme) {
	clip := dst.SubImage(g.Rect).(*image.RGBA)
	for _, b := range g.Buttons {
		if b.Rect.Overlaps(clip.Rect) {
			b.Draw(clip, t)
		}
	}
	if g.height > g.Rect.Dy() {
		h := max(t.Pad*2, g.Rect.Dy()*g.Rect.Dy()/g.height)
		y := g.Rect.Min.Y + (g.Rect.Dy()-h)*g.scroll/(g.height-g.Rect.Dy())
		Fill(clip, image.Rect(g.Rect.Max.X-scrollBarW, y, g.Rect.Max.X, y+h), t.Muted)
	}
}
