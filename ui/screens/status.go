package screens

import (
	"fmt"
	"image"
	"image/color"

	"golang.org/x/image/font"

	"github.com/skyfleet/skyfleet/ui/fb"
)

// SetStatus replaces what the status and radio pages show; the one open
// is redrawn. The navigation bar gains or loses Radio as radio channels
// come and go; on the radio page when the last goes, the status page opens.
func (a *App) SetStatus(s Status) {
	a.status = s
	if radio := len(s.Radio) > 0; radio != a.radioTab {
		a.setNav(radio)
		if p := a.UI.Page(); p != nil {
			a.UI.Show(p) // the bar changed under it
		}
	}
	switch a.UI.Page().(type) {
	case *statusPage:
		a.UI.Show(a.statusPage())
	case *radioPage:
		if len(s.Radio) == 0 {
			a.Open("Status")
		} else {
			a.UI.Show(a.radioPage())
		}
	}
}

type statusPage struct{ page }

func monoFace(t *fb.Theme) font.Face  { return t.Mono }
func smallFace(t *fb.Theme) font.Face { return t.Small }

func (a *App) statusPage() *statusPage {
	t, c := a.UI.Theme, a.bar.content.Inset(a.UI.Theme.Pad)
	p := &statusPage{page{a: a}}
	s := a.status
	// The QR code takes a square at the right, as large as a third of the
	// width allows, so a phone can read the address off the screen.
	side := min(c.Dy(), c.Dx()*2/5)
	if qr, err := fb.NewQR(s.Address); err == nil && s.Address != "" {
		qr.Rect = image.Rect(c.Max.X-side, c.Min.Y, c.Max.X, c.Min.Y+side)
		p.items = append(p.items, qr)
		c.Max.X -= side + t.Pad
	}
	lh, sh := fb.LineHeight(t.Body), fb.LineHeight(t.Small)
	y := c.Min.Y
	line := func(text string, h int, face func(*fb.Theme) font.Face, col func(*fb.Theme) color.RGBA) {
		if y+h > c.Max.Y {
			return
		}
		l := &fb.Label{Text: text, Face: face, Color: col}
		l.Rect = image.Rect(c.Min.X, y, c.Max.X, y+h)
		p.items = append(p.items, l)
		y += h
	}
	line(s.Name, fb.LineHeight(t.Title), titleFace, nil)
	line(s.Address, sh, smallFace, muted)
	y += t.Pad / 2
	msgs := fmt.Sprintf("%d waiting to deliver, %d unread", s.Waiting, s.Unread)
	line(msgs, lh, nil, nil)
	if s.Update != "" {
		line("Update: "+s.Update, sh, smallFace, muted)
	}
	y += t.Pad / 2
	if len(s.Links) == 0 {
		line("No links: nobody in reach", lh, nil, warning)
	}
	for _, l := range s.Links {
		q := l.Quality()
		text := fmt.Sprintf("%s  %s  %d ms", l.Peer, l.Medium, l.RTTms)
		if l.Loss > 0 {
			text += fmt.Sprintf("  %.0f%% loss", l.Loss*100)
		}
		if l.Signal != 0 {
			text += fmt.Sprintf("  %d dBm", l.Signal)
		}
		line(q+"  "+text, lh, nil, qualityColor(q))
	}
	return p
}

func warning(t *fb.Theme) color.RGBA { return t.Warning }

func qualityColor(q string) func(*fb.Theme) color.RGBA {
	return func(t *fb.Theme) color.RGBA {
		switch q {
		case "poor":
			return t.Danger
		case "fair":
			return t.Warning
		}
		return t.OK
	}
}
