package fb

import (
	"image"
	"image/color"
	"image/draw"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/math/fixed"
)

// Fill paints r (clipped to dst) with c.
func Fill(dst *image.RGBA, r image.Rectangle, c color.RGBA) {
	draw.Draw(dst, r, &image.Uniform{c}, image.Point{}, draw.Src)
}

// Frame draws a rectangle's outline, w pixels wide, inside r.
func Frame(dst *image.RGBA, r image.Rectangle, w int, c color.RGBA) {
	Fill(dst, image.Rect(r.Min.X, r.Min.Y, r.Max.X, r.Min.Y+w), c)
	Fill(dst, image.Rect(r.Min.X, r.Max.Y-w, r.Max.X, r.Max.Y), c)
	Fill(dst, image.Rect(r.Min.X, r.Min.Y, r.Min.X+w, r.Max.Y), c)
	Fill(dst, image.Rect(r.Max.X-w, r.Min.Y, r.Max.X, r.Max.Y), c)
}

// LineHeight is the distance between baselines of face, in pixels.
func LineHeight(face font.Face) int {
	m := face.Metrics()
	return (m.Ascent + m.Descent).Ceil()
}

// TextWidth is the advance of s in face, in pixels.
func TextWidth(face font.Face, s string) int {
	return font.MeasureString(face, s).Ceil()
}

// Align places text within a box.
type Align int

// Alignments.
const (
	Left Align = iota
	Center
	Right
)

// Text draws one line of s in face and colour c, vertically centred in r
// and aligned within it; a line too long for r ends in "…". The clip is r.
func Text(dst *image.RGBA, r image.Rectangle, face font.Face, c color.RGBA, s string, a Align) {
	s = Ellipsize(face, s, r.Dx())
	w := TextWidth(face, s)
	x := r.Min.X
	switch a {
	case Center:
		x += (r.Dx() - w) / 2
	case Right:
		x = r.Max.X - w
	}
	m := face.Metrics()
	h := (m.Ascent + m.Descent).Ceil()
	y := r.Min.Y + (r.Dy()-h)/2 + m.Ascent.Ceil()
	// A sub-image shares dst's pixels with r as its bounds: glyphs cannot
	// spill out of their box.
	d := font.Drawer{Dst: dst.SubImage(r).(*image.RGBA), Src: &image.Uniform{c}, Face: face, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

// Ellipsize shortens s with "…" until it fits width pixels in face.
func Ellipsize(face font.Face, s string, width int) string {
	if TextWidth(face, s) <= width {
		return s
	}
	r := []rune(s)
	for len(r) > 0 {
		r = r[:len(r)-1]
		if t := strings.TrimRight(string(r), " ") + "…"; TextWidth(face, t) <= width {
			return t
		}
	}
	return ""
}

// Wrap breaks s into lines no wider than width pixels in face, at spaces
// where it can and inside a word longer than a line; explicit newlines
// are kept.
func Wrap(face font.Face, s string, width int) []string {
	var lines []string
	for _, para := range strings.Split(s, "\n") {
		words := strings.Fields(para)
		if len(words) == 0 {
			lines = append(lines, "")
			continue
		}
		line := ""
		for _, w := range words {
			cand := w
			if line != "" {
				cand = line + " " + w
			}
			if TextWidth(face, cand) <= width {
				line = cand
				continue
			}
			if line != "" {
				lines = append(lines, line)
			}
			// A word wider than the line is cut.
			for TextWidth(face, w) > width {
				r := []rune(w)
				n := len(r)
				for n > 1 && TextWidth(face, string(r[:n])) > width {
					n--
				}
				lines = append(lines, string(r[:n]))
				w = string(r[n:])
			}
			line = w
		}
		lines = append(lines, line)
	}
	return lines
}
