// Package fb is Skyfleet's framebuffer UI toolkit: a small retained-mode
// widget set (labels, buttons, lists, a scrollable detail view, a scrolling
// grid of buttons, on-screen keyboards, a PIN keypad with shuffled digits, QR
// codes, progress, dialogs)
// drawn into an image.RGBA and put on a screen by damaged rectangle, so a
// touch redraws only what it changed. Text uses the Go fonts through
// golang.org/x/image's opentype. Sizes come from the screen's pixel density:
// every touch target is at least 7 mm, and layouts read from a 320x240 panel
// of 2.4" up to 800x480 at 7".
package fb

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"sync"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
)

// MinTargetMM is the smallest side of a touch target, in millimetres: the
// size of a fingertip's contact, the figure Android's and Apple's guidelines
// give (about 7-9 mm; 48 dp, 44 pt).
const MinTargetMM = 7.0

// MinKeyMM is the smallest side of an on-screen keyboard's key, in
// millimetres, on a screen too small for keys of MinTargetMM: a phone
// keyboard's, which ten keys in a row on a 2.8" panel are.
const MinKeyMM = 5.0

// Theme holds the colours, faces and sizes every widget draws with.
type Theme struct {
	Background, Surface, Pressed color.RGBA
	Text, Muted, Accent          color.RGBA
	Danger, Warning, OK          color.RGBA

	// Body, Title, Small and Mono are the faces of ordinary text, titles,
	// secondary lines and addresses or digits.
	Body, Title, Small, Mono font.Face
	// Target is the smallest side of a touch target in pixels
	// (MinTargetMM at the screen's density); Pad is the spacing unit.
	Target, Pad int
	// DPI is the screen's pixel density the sizes were made for.
	DPI float64
}

// DefaultDPI guesses a screen's density from its size in pixels, for
// panels whose diagonal fleet.toml does not give: 320x240 is taken for a
// 2.8" panel, 480x320 for 3.5", 800x480 for 7" (the official DSI panel's),
// anything else for 96 DPI.
func DefaultDPI(size image.Point) float64 {
	long := max(size.X, size.Y)
	switch {
	case long <= 320:
		return DPI(size, 2.8)
	case long <= 480:
		return DPI(size, 3.5)
	case long <= 800:
		return DPI(size, 7)
	}
	return 96
}

// DPI is the density of a screen of size pixels with the given diagonal in
// inches.
func DPI(size image.Point, diagonalInches float64) float64 {
	return math.Hypot(float64(size.X), float64(size.Y)) / diagonalInches
}

var (
	fontsOnce sync.Once
	fontsErr  error
	regular   *opentype.Font
	bold      *opentype.Font
	mono      *opentype.Font
)

func loadFonts() error {
	fontsOnce.Do(func() {
		for _, f := range []struct {
			dst **opentype.Font
			ttf []byte
		}{{&regular, goregular.TTF}, {&bold, gobold.TTF}, {&mono, gomono.TTF}} {
			if *f.dst, fontsErr = opentype.Parse(f.ttf); fontsErr != nil {
				return
			}
		}
	})
	return fontsErr
}

// NewTheme returns the dark theme for a screen of size pixels at dpi: body
// text about 2.6 mm high (a comfortable reading size at arm's length) but
// never under 13 px, titles a third larger, and touch targets of
// MinTargetMM.
func NewTheme(size image.Point, dpi float64) (*Theme, error) {
	if size.X <= 0 || size.Y <= 0 || !(dpi > 0) {
		return nil, fmt.Errorf("fb: theme for a %v screen at %v DPI", size, dpi)
	}
	if err := loadFonts(); err != nil {
		return nil, fmt.Errorf("fb: the Go fonts: %w", err)
	}
	mm := dpi / 25.4
	body := math.Max(13, math.Round(2.6*mm))
	face := func(f *opentype.Font, px float64) (font.Face, error) {
		return opentype.NewFace(f, &opentype.FaceOptions{Size: px, DPI: 72, Hinting: font.HintingFull})
	}
	t := &Theme{
		Background: color.RGBA{0x10, 0x14, 0x18, 0xff},
		Surface:    color.RGBA{0x24, 0x2b, 0x33, 0xff},
		Pressed:    color.RGBA{0x3a, 0x46, 0x54, 0xff},
		Text:       color.RGBA{0xee, 0xf1, 0xf4, 0xff},
		Muted:      color.RGBA{0x9a, 0xa5, 0xb1, 0xff},
		Accent:     color.RGBA{0x3d, 0x9b, 0xe9, 0xff},
		Danger:     color.RGBA{0xe5, 0x48, 0x4d, 0xff},
		Warning:    color.RGBA{0xf5, 0xb0, 0x41, 0xff},
		OK:         color.RGBA{0x46, 0xb8, 0x6a, 0xff},
		Target:     int(math.Ceil(MinTargetMM * mm)),
		Pad:        max(4, int(math.Round(1.2*mm))),
		DPI:        dpi,
	}
	var err error
	if t.Body, err = face(regular, body); err != nil {
		return nil, err
	}
	if t.Title, err = face(bold, math.Round(body*4/3)); err != nil {
		return nil, err
	}
	if t.Small, err = face(regular, math.Max(11, math.Round(body*0.8))); err != nil {
		return nil, err
	}
	if t.Mono, err = face(mono, body); err != nil {
		return nil, err
	}
	return t, nil
}
