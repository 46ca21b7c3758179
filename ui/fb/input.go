package fb

import (
	"crypto/rand"
	"fmt"
	"image"
	"image/color"
	"math"
	"math/big"
	"strings"

	"golang.org/x/image/font"
)

// Keyboard is an on-screen keyboard. NewKeyboard's has three letter rows,
// a row with shift, the symbols layer, space and backspace, and Done;
// NewLetterKeyboard's only the letters a to z, with Del and OK beside the
// last row (for typing one word of a list). Keys are buttons of at least the
// theme's target height where the screen allows; on a narrow screen the
// width of ten keys decides.
type Keyboard struct {
	Group
	// OnKey gets each typed rune; OnBackspace and OnDone their keys
	// (Done, or OK on a letter keyboard).
	OnKey       func(r rune)
	OnBackspace func()
	OnDone      func()
	// Allow, if set, says whether the key labelled label (as shown: "q",
	// "Q" when shifted, "Del", "OK") may be tapped now; the others draw
	// disabled and ignore taps. Set it, then call Update whenever what it
	// depends on changed (what has been typed).
	Allow func(label string) bool

	letters        bool // NewLetterKeyboard's: a-z, Del and OK only
	shift, symbols bool
	t              *Theme
}

var (
	lettersRows = []string{"qwertyuiop", "asdfghjkl", "zxcvbnm"}
	symbolRows  = []string{"1234567890", "@#$%&-+()/", "*\"':;!?,."}
)

// keyGap is the gap between keys, in pixels: keys are many and small, the
// theme's Pad would eat their width.
const keyGap = 2

// KeyboardHeight is the height a keyboard takes at the bottom of a screen
// of size: four rows of keys as tall as a target, or less on a short
// screen (never more than 60% of it). From 480x320 at 3.5" up the keys are
// targets of MinTargetMM each way; on a 320x240 panel of 2.8" ten keys in a
// row are 5.3 mm wide and 5.6 mm high, as on a phone's keyboard, which
// every other control there is not.
func KeyboardHeight(t *Theme, size image.Point) int {
	return min(4*t.Target+3*keyGap, size.Y*60/100)
}

// LetterKeyboardHeight is the height of a NewLetterKeyboard given room
// pixels: three rows of keys a target high if room allows, else room, but
// never keys under MinKeyMM high (then more than room: the page gives way).
func LetterKeyboardHeight(t *Theme, room int) int {
	minKey := int(math.Ceil(MinKeyMM * t.DPI / 25.4))
	return max(min(3*t.Target+2*keyGap, room), 3*minKey+2*keyGap)
}

// NewKeyboard lays a keyboard out in r.
func NewKeyboard(r image.Rectangle, t *Theme, d Damager) *Keyboard {
	k := &Keyboard{t: t}
	k.Rect, k.D = r, d
	k.layout()
	return k
}

// NewLetterKeyboard lays out in r a keyboard of the lower-case letters a to
// z in three rows, the last between Del (left) and OK (right): OnKey gets
// only the letters, OnBackspace Del and OnDone OK.
func NewLetterKeyboard(r image.Rectangle, t *Theme, d Damager) *Keyboard {
	k := &Keyboard{t: t, letters: true}
	k.Rect, k.D = r, d
	k.layout()
	return k
}

func (k *Keyboard) layout() {
	rows := lettersRows
	if k.symbols {
		rows = symbolRows
	}
	nrows := 4
	if k.letters {
		nrows = 3
	}
	rh := (k.Rect.Dy() - (nrows-1)*keyGap) / nrows
	kw := (k.Rect.Dx() - 9*keyGap) / 10
	k.Items = k.Items[:0]
	back := func() {
		if k.OnBackspace != nil {
			k.OnBackspace()
		}
	}
	done := func() {
		if k.OnDone != nil {
			k.OnDone()
		}
	}
	add := func(b *Button, r image.Rectangle) {
		b.Rect, b.D = r, k.D
		k.Items = append(k.Items, b)
	}
	for i, row := range rows {
		y := k.Rect.Min.Y + i*(rh+keyGap)
		n := len([]rune(row))
		x := k.Rect.Min.X + (k.Rect.Dx()-(n*kw+(n-1)*keyGap))/2
		if k.letters && i == len(rows)-1 {
			// Del and OK take the rest of the last row, a key and a
			// half each: room for their labels.
			add(&Button{Label: "Del", OnTap: back}, image.Rect(k.Rect.Min.X, y, x-keyGap, y+rh))
			end := x + n*kw + (n-1)*keyGap
			add(&Button{Label: "OK", Kind: Primary, OnTap: done}, image.Rect(end+keyGap, y, k.Rect.Max.X, y+rh))
		}
		for _, c := range row {
			label := string(c)
			if k.shift && !k.symbols {
				label = strings.ToUpper(label)
			}
			add(&Button{Label: label, OnTap: func() { k.typed(c) }}, image.Rect(x, y, x+kw, y+rh))
			x += kw + keyGap
		}
	}
	if !k.letters {
		y := k.Rect.Min.Y + 3*(rh+keyGap)
		bottom := image.Rect(k.Rect.Min.X, y, k.Rect.Max.X, y+rh)
		cols := Columns(bottom, keyGap, 10)
		span := func(a, b int) image.Rectangle {
			return image.Rect(cols[a].Min.X, bottom.Min.Y, cols[b].Max.X, bottom.Max.Y)
		}
		// Labels in words: the Go fonts have no arrow glyphs.
		layer := &Button{Label: "?123", OnTap: k.toggleSymbols}
		if k.symbols {
			layer.Label = "abc"
		}
		add(&Button{Label: "Shift", OnTap: k.toggleShift}, span(0, 1))
		add(layer, span(2, 3))
		add(&Button{Label: "space", OnTap: func() { k.typed(' ') }}, span(4, 5))
		add(&Button{Label: "Del", OnTap: back}, span(6, 7))
		add(&Button{Label: "Done", Kind: Primary, OnTap: done}, span(8, 9))
	}
	for _, w := range k.Items {
		b := w.(*Button)
		b.Disabled = !k.enabled(b.Label)
	}
}

// enabled says whether the key labelled label may be tapped now.
func (k *Keyboard) enabled(label string) bool {
	if k.symbols && label == "Shift" {
		return false
	}
	return k.Allow == nil || k.Allow(label)
}

// Update applies Allow again: the keys whose state changed are redrawn.
func (k *Keyboard) Update() {
	for _, w := range k.Items {
		b := w.(*Button)
		if dis := !k.enabled(b.Label); dis != b.Disabled {
			b.Disabled = dis
			b.Invalidate()
		}
	}
}

func (k *Keyboard) typed(c rune) {
	if k.shift && !k.symbols {
		c = []rune(strings.ToUpper(string(c)))[0]
		k.shift = false
		k.layout()
		k.Invalidate()
	}
	if k.OnKey != nil {
		k.OnKey(c)
	}
}

func (k *Keyboard) toggleShift() {
	k.shift = !k.shift
	k.layout()
	k.Invalidate()
}

func (k *Keyboard) toggleSymbols() {
	k.symbols = !k.symbols
	k.shift = false
	k.layout()
	k.Invalidate()
}

// KeyAt returns the key button labelled label (for tests and for the e2e
// driver to find where to touch), or nil.
func (k *Keyboard) KeyAt(label string) *Button {
	for _, w := range k.Items {
		if b, ok := w.(*Button); ok && b.Label == label {
			return b
		}
	}
	return nil
}

// PINPad is a PIN keypad whose ten digits are placed in a new random order
// every time it is laid out (crypto/rand), so the positions touched tell a
// watcher or a smudge nothing about the PIN; it shows one dot per digit
// entered, never the digits. OK submits; Del erases one.
type PINPad struct {
	Group
	// OnSubmit gets the PIN entered. The pad keeps no copy after it.
	OnSubmit func(pin []byte)
	// MaxDigits caps the PIN's length (default 12).
	MaxDigits int

	pin    []byte
	order  [10]byte
	dots   *Label
	prompt string
}

// NewPINPad lays out a keypad in r with prompt above it, digits shuffled.
// Errors: the random source's.
func NewPINPad(r image.Rectangle, t *Theme, d Damager, prompt string) (*PINPad, error) {
	p := &PINPad{MaxDigits: 12, prompt: prompt}
	p.Rect, p.D = r, d
	if err := p.shuffle(); err != nil {
		return nil, err
	}
	p.layout(t)
	return p, nil
}

// shuffle draws a uniformly random order of the ten digits (Fisher-Yates
// with crypto/rand).
func (p *PINPad) shuffle() error {
	for i := range p.order {
		p.order[i] = byte('0' + i)
	}
	for i := len(p.order) - 1; i > 0; i-- {
		j, err := rand.Int(rand.Reader, big.NewInt(int64(i+1)))
		if err != nil {
			return fmt.Errorf("fb: PIN pad shuffle: %w", err)
		}
		p.order[i], p.order[j.Int64()] = p.order[j.Int64()], p.order[i]
	}
	return nil
}

// Order returns the digits in their places, left to right and top to
// bottom (the tenth is the bottom row's middle).
func (p *PINPad) Order() [10]byte { return p.order }

func (p *PINPad) layout(t *Theme) {
	gap := 2
	// One line for the prompt, with the dots at its right: the keys get
	// the rest, a target high where the screen allows.
	head := LineHeight(t.Title) + t.Pad
	keys := image.Rect(p.Rect.Min.X, p.Rect.Min.Y+head, p.Rect.Max.X, p.Rect.Max.Y)
	kh := (keys.Dy() - 3*gap) / 4
	dotsW := TextWidth(t.Title, strings.Repeat("●", p.MaxDigits))
	prompt := &Label{Text: p.prompt, Color: func(t *Theme) color.RGBA { return t.Muted }}
	prompt.Rect = image.Rect(p.Rect.Min.X, p.Rect.Min.Y, max(p.Rect.Min.X, p.Rect.Max.X-dotsW), keys.Min.Y)
	p.dots = &Label{Align: Right, Face: func(t *Theme) font.Face { return t.Title }}
	p.dots.Rect, p.dots.D = image.Rect(prompt.Rect.Max.X, p.Rect.Min.Y, p.Rect.Max.X, keys.Min.Y), p.D
	p.Items = []Widget{prompt, p.dots}
	for row := range 4 {
		y := keys.Min.Y + row*(kh+gap)
		cols := Columns(image.Rect(keys.Min.X, y, keys.Max.X, y+kh), gap, 3)
		for col := range 3 {
			var b *Button
			switch i := row*3 + col; {
			case i < 9:
				d := p.order[i]
				b = &Button{Label: string(d), OnTap: func() { p.digit(d) }}
			case i == 9:
				b = &Button{Label: "Del", OnTap: p.backspace}
			case i == 10:
				d := p.order[9]
				b = &Button{Label: string(d), OnTap: func() { p.digit(d) }}
			default:
				b = &Button{Label: "OK", Kind: Primary, OnTap: p.submit}
			}
			b.Rect, b.D = cols[col], p.D
			p.Items = append(p.Items, b)
		}
	}
}

func (p *PINPad) digit(d byte) {
	if len(p.pin) >= p.MaxDigits {
		return
	}
	p.pin = append(p.pin, d)
	p.dots.Set(strings.Repeat("●", len(p.pin)))
}

func (p *PINPad) backspace() {
	if len(p.pin) == 0 {
		return
	}
	p.pin[len(p.pin)-1] = 0
	p.pin = p.pin[:len(p.pin)-1]
	p.dots.Set(strings.Repeat("●", len(p.pin)))
}

func (p *PINPad) submit() {
	pin := append([]byte(nil), p.pin...)
	clear(p.pin)
	p.pin = p.pin[:0]
	p.dots.Set("")
	if p.OnSubmit != nil {
		p.OnSubmit(pin)
	}
}

// Digit returns the button of digit d (for tests and the e2e driver).
func (p *PINPad) Digit(d byte) *Button {
	for _, w := range p.Items {
		if b, ok := w.(*Button); ok && b.Label == string(d) {
			return b
		}
	}
	return nil
}
