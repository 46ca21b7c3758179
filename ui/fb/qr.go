package fb

import (
	"fmt"
	"image"
	"image/color"

	qrcode "github.com/skip2/go-qrcode"
	"golang.org/x/image/font"
)

// QR draws a QR code (ISO/IEC 18004, encoded by github.com/skip2/go-qrcode
// at error correction level M) centred in its rectangle, black on white
// with the 4-module quiet zone the standard requires, each module a whole
// number of pixels so a phone's camera reads it off a small panel.
type QR struct {
	Box
	content string
	bitmap  [][]bool // modules, quiet zone included
}

// NewQR encodes content. Errors: content too long for a QR code.
func NewQR(content string) (*QR, error) {
	q := &QR{}
	return q, q.Set(content)
}

// Set encodes new content.
func (q *QR) Set(content string) error {
	if content == q.content && q.bitmap != nil {
		return nil
	}
	code, err := qrcode.New(content, qrcode.Medium)
	if err != nil {
		return fmt.Errorf("fb: QR code of %d bytes: %w", len(content), err)
	}
	q.content, q.bitmap = content, code.Bitmap()
	q.Invalidate()
	return nil
}

// Modules is the side of the code in modules, quiet zone included.
func (q *QR) Modules() int { return len(q.bitmap) }

// Draw implements Widget. A rectangle smaller than one pixel per module
// draws nothing but a white square: a code too small to scan is worse than
// none.
func (q *QR) Draw(dst *image.RGBA, t *Theme) {
	n := len(q.bitmap)
	side := min(q.Rect.Dx(), q.Rect.Dy())
	if n == 0 || side <= 0 {
		return
	}
	px := side / n
	org := q.Rect.Min.Add(image.Point{(q.Rect.Dx() - px*n) / 2, (q.Rect.Dy() - px*n) / 2})
	white, black := color.RGBA{0xff, 0xff, 0xff, 0xff}, color.RGBA{0, 0, 0, 0xff}
	Fill(dst, image.Rectangle{org, org.Add(image.Point{px * n, px * n})}, white)
	if px == 0 {
		return
	}
	for y, row := range q.bitmap {
		for x, dark := range row {
			if dark {
				p := org.Add(image.Point{x * px, y * px})
				Fill(dst, image.Rectangle{p, p.Add(image.Point{px, px})}, black)
			}
		}
	}
}

// Dialog is a modal box over the page: a title, wrapped text and up to
// three buttons in a row. It covers the whole screen with the backdrop so
// nothing under it can be touched.
type Dialog struct {
	Group
}

// NewDialog lays a dialog out on a screen of size.
func NewDialog(size image.Point, t *Theme, d Damager, title, text string, buttons ...*Button) *Dialog {
	dl := &Dialog{}
	dl.Rect, dl.D = image.Rectangle{Max: size}, d
	dl.Fill = func(t *Theme) color.RGBA { return t.Background }
	box := image.Rectangle{Max: size}.Inset(t.Pad * 2)
	lh := LineHeight(t.Body)
	lines := Wrap(t.Body, text, box.Dx()-2*t.Pad)
	th := LineHeight(t.Title)
	h := t.Pad + th + t.Pad + len(lines)*lh + t.Pad + t.Target + t.Pad
	if h < box.Dy() {
		box.Min.Y += (box.Dy() - h) / 2
		box.Max.Y = box.Min.Y + h
	}
	bg := &Label{Fill: func(t *Theme) color.RGBA { return t.Surface }}
	bg.Rect = box
	ttl := &Label{Text: title, Face: func(t *Theme) font.Face { return t.Title }}
	ttl.Rect = image.Rect(box.Min.X+t.Pad, box.Min.Y+t.Pad, box.Max.X-t.Pad, box.Min.Y+t.Pad+th)
	dl.Items = []Widget{bg, ttl}
	y := ttl.Rect.Max.Y + t.Pad
	for _, l := range lines {
		lb := &Label{Text: l}
		lb.Rect = image.Rect(box.Min.X+t.Pad, y, box.Max.X-t.Pad, y+lh)
		dl.Items = append(dl.Items, lb)
		y += lh
	}
	if len(buttons) > 0 {
		row := image.Rect(box.Min.X+t.Pad, box.Max.Y-t.Pad-t.Target, box.Max.X-t.Pad, box.Max.Y-t.Pad)
		for i, r := range Columns(row, t.Pad, len(buttons)) {
			buttons[i].Rect, buttons[i].D = r, d
			dl.Items = append(dl.Items, buttons[i])
		}
	}
	return dl
}
