package fb

import (
	"image"
	"image/color"
)

// ListItem is one row of a List: a title, a secondary line, and a badge at
// the right (a count, a state).
type ListItem struct {
	Title, Detail, Badge string
	// BadgeColor, if set, colours the badge (a delivery state).
	BadgeColor func(*Theme) color.RGBA
}

// List is a vertically scrolling list of rows, each at least one touch
// target high; a tap on a row calls OnSelect with its index.
type List struct {
	Box
	Items    []ListItem
	OnSelect func(i int)
	// Empty is shown when there are no items.
	Empty string

	scroll  int
	pressed int // the row pressed plus one; 0 for none
	rowH    int
}

// SetItems replaces the rows, keeping the scroll position where it still
// fits.
func (l *List) SetItems(items []ListItem) {
	l.Items = items
	l.clampScroll()
	l.Invalidate()
}

func (l *List) rowHeight(t *Theme) int {
	return max(t.Target, LineHeight(t.Body)+LineHeight(t.Small)+2*t.Pad)
}

func (l *List) clampScroll() {
	if l.rowH == 0 {
		return
	}
	maxScroll := max(0, len(l.Items)*l.rowH-l.Rect.Dy())
	l.scroll = min(max(0, l.scroll), maxScroll)
}

// ScrollBy implements Scrollable.
func (l *List) ScrollBy(dy int) bool {
	old := l.scroll
	l.scroll += dy
	l.clampScroll()
	return l.scroll != old
}

// row returns the index of the row at p, or -1.
func (l *List) row(p image.Point) int {
	if l.rowH == 0 || !p.In(l.Rect) {
		return -1
	}
	i := (p.Y - l.Rect.Min.Y + l.scroll) / l.rowH
	if i < 0 || i >= len(l.Items) {
		return -1
	}
	return i
}

// Tap implements Tappable.
func (l *List) Tap(p image.Point) {
	if i := l.row(p); i >= 0 && l.OnSelect != nil {
		l.OnSelect(i)
	}
}

// SetPressed implements Tappable; PressAt says which row.
func (l *List) SetPressed(p bool) {
	if !p {
		l.pressed = 0
	}
}

// PressAt shows the row under p pressed.
func (l *List) PressAt(p image.Point) { l.pressed = l.row(p) + 1 }

// Draw implements Widget.
func (l *List) Draw(dst *image.RGBA, t *Theme) {
	l.rowH = l.rowHeight(t)
	l.clampScroll()
	if len(l.Items) == 0 {
		Text(dst, l.Rect, t.Body, t.Muted, l.Empty, Center)
		return
	}
	clip := dst.SubImage(l.Rect).(*image.RGBA)
	first := l.scroll / l.rowH
	for i := first; i < len(l.Items); i++ {
		y := l.Rect.Min.Y + i*l.rowH - l.scroll
		if y >= l.Rect.Max.Y {
			break
		}
		r := image.Rect(l.Rect.Min.X, y, l.Rect.Max.X, y+l.rowH)
		if !r.Overlaps(clip.Rect) {
			continue
		}
		it := l.Items[i]
		bg := t.Background
		if i+1 == l.pressed {
			bg = t.Pressed
		}
		Fill(clip, r, bg)
		Fill(clip, image.Rect(r.Min.X+t.Pad, r.Max.Y-1, r.Max.X-t.Pad, r.Max.Y), t.Surface)
		inner := r.Inset(t.Pad)
		badgeW := 0
		if it.Badge != "" {
			badgeW = TextWidth(t.Small, it.Badge) + t.Pad
			c := t.Muted
			if it.BadgeColor != nil {
				c = it.BadgeColor(t)
			}
			Text(clip, image.Rect(inner.Max.X-badgeW, inner.Min.Y, inner.Max.X, inner.Max.Y), t.Small, c, it.Badge, Right)
		}
		textR := inner
		textR.Max.X -= badgeW
		if it.Detail == "" {
			Text(clip, textR, t.Body, t.Text, it.Title, Left)
			continue
		}
		h := LineHeight(t.Body)
		Text(clip, image.Rect(textR.Min.X, textR.Min.Y, textR.Max.X, textR.Min.Y+h), t.Body, t.Text, it.Title, Left)
		Text(clip, image.Rect(textR.Min.X, textR.Min.Y+h, textR.Max.X, textR.Max.Y), t.Small, t.Muted, it.Detail, Left)
	}
	// A scroll bar when the rows do not fit.
	if total := len(l.Items) * l.rowH; total > l.Rect.Dy() {
		h := max(t.Pad*2, l.Rect.Dy()*l.Rect.Dy()/total)
		y := l.Rect.Min.Y + (l.Rect.Dy()-h)*l.scroll/(total-l.Rect.Dy())
		Fill(clip, image.Rect(l.Rect.Max.X-3, y, l.Rect.Max.X, y+h), t.Muted)
	}
}

// Pair is one row of a Detail view.
type Pair struct {
	Label, Value string
	// Warn marks the row as a warning (drawn in the warning colour).
	Warn bool
}

// Detail is a scrollable view of label and value rows, the value wrapped
// under its label: what a transaction or a message really says.
//
// Its content is the rows with a pad above each and one below the last;
// that last pad is only space, so a detail that hides no more than it has
// nothing hidden (no scroll bar, AtEnd).
type Detail struct {
	Box
	Rows   []Pair
	scroll int
	height int // content height at the last draw
	pad    int // the theme's Pad at the last draw
}

// ScrollBy implements Scrollable.
func (d *Detail) ScrollBy(dy int) bool {
	old := d.scroll
	d.scroll = min(max(0, d.scroll+dy), max(0, d.height-d.Rect.Dy()))
	return d.scroll != old
}

// AtEnd reports whether the last row has been shown (an approval screen
// enables Approve only then).
func (d *Detail) AtEnd() bool { return d.height > 0 && d.scroll >= d.height-d.pad-d.Rect.Dy() }

// Measure is the height that shows every row at width pixels, as Draw
// lays them out, and the pad below the last: what a page gives the detail
// when it has the room (a pad less still shows every row).
func (d *Detail) Measure(t *Theme, width int) int {
	lh, sh := LineHeight(t.Body), LineHeight(t.Small)
	h := 0
	for _, row := range d.Rows {
		h += sh + len(Wrap(t.Body, row.Value, width-2*t.Pad))*lh + t.Pad
	}
	return h + t.Pad
}

// Draw implements Widget.
func (d *Detail) Draw(dst *image.RGBA, t *Theme) {
	clip := dst.SubImage(d.Rect).(*image.RGBA)
	inner := d.Rect.Inset(t.Pad)
	y := inner.Min.Y - d.scroll
	lh, sh := LineHeight(t.Body), LineHeight(t.Small)
	for _, row := range d.Rows {
		c := t.Text
		if row.Warn {
			c = t.Warning
		}
		Text(clip, image.Rect(inner.Min.X, y, inner.Max.X, y+sh), t.Small, t.Muted, row.Label, Left)
		y += sh
		for _, line := range Wrap(t.Body, row.Value, inner.Dx()) {
			Text(clip, image.Rect(inner.Min.X, y, inner.Max.X, y+lh), t.Body, c, line, Left)
			y += lh
		}
		y += t.Pad
	}
	// The rows (each followed by a pad) and the inset above them: the
	// last row's pad is the inset below.
	d.height, d.pad = y+d.scroll-inner.Min.Y+t.Pad, t.Pad
	if d.height-d.pad > d.Rect.Dy() {
		h := max(t.Pad*2, d.Rect.Dy()*d.Rect.Dy()/d.height)
		sy := d.Rect.Min.Y + (d.Rect.Dy()-h)*d.scroll/(d.height-d.Rect.Dy())
		Fill(clip, image.Rect(d.Rect.Max.X-3, sy, d.Rect.Max.X, sy+h), t.Muted)
	}
}
