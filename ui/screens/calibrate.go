package screens

import (
	"fmt"
	"image"

	"github.com/skyfleet/skyfleet/ui/fb"
)

// CalibrationTargets are where a calibration screen of size asks to be
// touched, in order: three far apart, to solve the calibration from
// (touch.SolveScreen), then the centre, to check it with.
func CalibrationTargets(size image.Point) [4]image.Point {
	w, h := size.X, size.Y
	return [4]image.Point{{w / 10, h / 10}, {w * 9 / 10, h / 2}, {w / 2, h * 9 / 10}, {w / 2, h / 2}}
}

// CalibrationPage asks for a touch on each of CalibrationTargets in turn,
// over the whole screen. Its touches do not go through the widgets (the
// panel is not calibrated yet, so what lies under a finger is unknown): the
// ui service reads them and moves the page on with Next or Retry.
type CalibrationPage struct {
	canvas *calCanvas
}

// Widgets implements fb.Page.
func (p *CalibrationPage) Widgets() []fb.Widget { return []fb.Widget{p.canvas} }

// Step is the index of the target shown (0 to 3).
func (p *CalibrationPage) Step() int { return p.canvas.step }

// Target is the pixel to be touched now.
func (p *CalibrationPage) Target() image.Point { return p.canvas.targets[p.canvas.step] }

// Next shows the next target; after the last it stays there.
func (p *CalibrationPage) Next() {
	if p.canvas.step < len(p.canvas.targets)-1 {
		p.canvas.step++
		p.canvas.Invalidate()
	}
}

// Retry starts again at the first target, saying why (one short line).
func (p *CalibrationPage) Retry(why string) {
	p.canvas.step, p.canvas.why = 0, why
	p.canvas.Invalidate()
}

// Calibrate shows the calibration page.
func (a *App) Calibrate() *CalibrationPage {
	size := a.UI.Size()
	c := &calCanvas{targets: CalibrationTargets(size)}
	c.Rect, c.D = image.Rectangle{Max: size}, a.UI
	p := &CalibrationPage{canvas: c}
	a.UI.Show(p)
	return p
}

// calCanvas draws the whole calibration screen: the cross to touch and what
// to do.
type calCanvas struct {
	fb.Box
	targets [4]image.Point
	step    int
	why     string
}

func (c *calCanvas) Draw(dst *image.RGBA, t *fb.Theme) {
	fb.Fill(dst, c.Rect, t.Background)
	p := c.targets[c.step]
	arm := t.Target / 2
	fb.Fill(dst, image.Rect(p.X-arm, p.Y, p.X+arm+1, p.Y+1), t.Text)
	fb.Fill(dst, image.Rect(p.X, p.Y-arm, p.X+1, p.Y+arm+1), t.Text)
	fb.Fill(dst, image.Rect(p.X-2, p.Y-2, p.X+3, p.Y+3), t.Accent)
	lh := fb.LineHeight(t.Body) + t.Pad
	// The text sits above the middle row of targets, clear of the first.
	mid := c.Rect.Dy() * 18 / 100
	lines := []string{"Touch calibration", fmt.Sprintf("Touch the cross (%d of %d)", c.step+1, len(c.targets))}
	for i, s := range lines {
		face := t.Body
		if i == 0 {
			face = t.Title
		}
		fb.Text(dst, image.Rect(t.Pad, mid+i*lh, c.Rect.Dx()-t.Pad, mid+(i+1)*lh), face, t.Text, s, fb.Center)
	}
	if c.why != "" {
		fb.Text(dst, image.Rect(t.Pad, mid+2*lh, c.Rect.Dx()-t.Pad, mid+3*lh), t.Small, t.Warning, c.why, fb.Center)
	}
}
