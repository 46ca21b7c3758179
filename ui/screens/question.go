package screens

import (
	"cmp"
	"image"
	"sync"

	"golang.org/x/image/font"

	"github.com/skyfleet/skyfleet/ui/fb"
	"github.com/skyfleet/skyfleet/wallet/bip39"
)

// ChoosePage shows a KindChoose request: the asker line and the rows at the
// top, the choices as buttons under them, the cancel button at the bottom
// left (where Reject is on an approval, and red as it is). Its widgets are
// exported for the tests and the e2e driver.
type ChoosePage struct {
	question
	// Detail shows the warnings and rows; nil when the request has none.
	Detail *fb.Detail
	// Grid holds Choices, in the request's order; with more than fit the
	// screen it scrolls (Grid.ScrollTo shows one).
	Grid    *fb.ButtonGrid
	Choices []*fb.Button
	// Reject is the cancel button, labelled Request.RejectLabel or
	// "Cancel" (named as the approval's, whose label it shares, and
	// because Cancel is Question's method).
	Reject *fb.Button
}

// choosePage lays the page out in room (under the asker line). The choices
// take two columns when every label fits half the width on one line, one
// when not; when the rows and the choices do not fit, the choices spread
// over more columns (fewer rows) as far as their labels allow, then the
// rows give way down to their first, then the choices scroll.
func (a *App) choosePage(q question, r Request, room image.Rectangle) *ChoosePage {
	t := a.UI.Theme
	p := &ChoosePage{question: q}
	finish := q.finish
	bottom := image.Rect(room.Min.X+t.Pad, room.Max.Y-t.Target-t.Pad/2, room.Max.X-t.Pad, room.Max.Y-t.Pad/2)
	// Red as Reject is, so it never reads as one more choice.
	p.Reject = &fb.Button{Label: cmp.Or(r.RejectLabel, "Cancel"), Kind: fb.Destructive, OnTap: func() { finish(Decision{}) }}
	p.Reject.Rect, p.Reject.D = fb.Columns(bottom, t.Pad, 2)[0], a.UI
	// What the rows and the choices share: the room down to Cancel, as
	// far from it as the choices are from each other.
	share := image.Rect(room.Min.X, room.Min.Y, room.Max.X, bottom.Min.Y-t.Pad)
	gridX := image.Rect(room.Min.X+t.Pad, 0, room.Max.X-t.Pad, 0)

	wantDetail, minDetail := 0, 0
	if rows := detailRows(r); len(rows) > 0 {
		p.Detail = &fb.Detail{Rows: rows}
		wantDetail = p.Detail.Measure(t, room.Dx())
		// The first row's label and line with the pad above them: the
		// least that says what the rows are about.
		minDetail = min(wantDetail, t.Pad+fb.LineHeight(t.Small)+fb.LineHeight(t.Body))
	}
	fits := func(cols int) bool {
		w := (gridX.Dx()-(cols-1)*t.Pad)/cols - 2 - t.Pad // a button's inner width (Button.Draw)
		for _, c := range r.Choices {
			if fb.TextWidth(t.Body, c) > w {
				return false
			}
		}
		return true
	}
	n := len(r.Choices)
	// The column counts to try, most readable first: each next one
	// saves a row.
	layouts := []int{1}
	if n > 1 && fits(2) {
		layouts = []int{2}
		for cols := 3; cols <= n; cols++ {
			if fb.GridHeight(t, n, cols) < fb.GridHeight(t, n, layouts[len(layouts)-1]) && fits(cols) {
				layouts = append(layouts, cols)
			}
		}
	}
	cols := layouts[len(layouts)-1]
pick:
	for _, h := range []int{share.Dy() - wantDetail, share.Dy() - minDetail} {
		for _, c := range layouts {
			if fb.GridHeight(t, n, c) <= h {
				cols = c
				break pick
			}
		}
	}
	gridH := fb.GridHeight(t, n, cols)
	top := share.Min.Y + max(0, min(t.Pad/2, share.Dy()-gridH))
	if p.Detail != nil {
		dh := min(wantDetail, max(minDetail, share.Dy()-gridH))
		p.Detail.Rect, p.Detail.D = image.Rect(room.Min.X, room.Min.Y, room.Max.X, room.Min.Y+dh), a.UI
		top = p.Detail.Rect.Max.Y
	}
	for i, c := range r.Choices {
		b := &fb.Button{Label: c, OnTap: func() { finish(Decision{Approved: true, Choice: i}) }}
		p.Choices = append(p.Choices, b)
	}
	gr := image.Rect(gridX.Min.X, top, gridX.Max.X, min(share.Max.Y, top+gridH))
	p.Grid = fb.NewButtonGrid(gr, t, a.UI, cols, p.Choices)
	if p.Detail != nil {
		p.items = append(p.items, p.Detail)
		// Nothing is chosen unseen: the choices wait for the rows.
		for _, b := range p.Choices {
			b.Disabled = true
		}
		p.items = append(p.items, &seenGate{detail: p.Detail, buttons: p.Choices})
	}
	p.items = append(p.items, p.Grid, p.Reject)
	a.UI.Show(p)
	return p
}

// WordPage shows a KindWord request: the asker line and the rows at the
// top; then the letters typed with, beside them, up to MaxCompletions words
// of the BIP39 English list they begin (as many as fit the width; tapping
// one sends it) and the cancel button; then a keyboard of the letters a to
// z, Del and OK. A letter no word continues with is disabled, and OK is
// enabled only when the letters typed are a word of the list. Its widgets
// are exported for the tests and the e2e driver.
//
// The letters typed are kept in a byte slice the page wipes when the
// request ends; the strings drawn and looked up on the way cannot be wiped
// (Go's strings), and live until the garbage collector reuses them.
type WordPage struct {
	question
	// Detail shows the warnings and rows; nil when the request has none.
	Detail *fb.Detail
	// Field shows the letters typed.
	Field *fb.TextArea
	// Completions are the words offered for the letters typed, left to
	// right; they change with every letter.
	Completions []*fb.Button
	// Keyboard's keys are found with Keyboard.KeyAt("a"), "Del", "OK".
	Keyboard *fb.Keyboard
	// OK is the keyboard's OK key.
	OK *fb.Button
	// Reject is the cancel button, labelled Request.RejectLabel or
	// "Cancel", as on ChoosePage.
	Reject *fb.Button

	typed   []byte
	compRow image.Rectangle // where the completions go
	fixed   []fb.Widget     // the widgets that stay
	submit  func(word []byte)
}

// Cancel implements Question; the letters typed are wiped.
func (p *WordPage) Cancel() {
	p.wipe()
	p.question.Cancel()
}

// MaxCompletions is how many words the word page offers at most.
const MaxCompletions = 4

func (a *App) wordPage(q question, r Request, room image.Rectangle) *WordPage {
	t := a.UI.Theme
	p := &WordPage{question: q}
	finish := q.finish
	rowH := t.Target
	minDetail := 0
	if rows := detailRows(r); len(rows) > 0 {
		p.Detail = &fb.Detail{Rows: rows}
		minDetail = min(p.Detail.Measure(t, room.Dx()), t.Pad+fb.LineHeight(t.Small)+fb.LineHeight(t.Body))
	}
	// The keyboard's keys a target high if the room allows, never under
	// fb.MinKeyMM; the rows get the rest.
	kh := fb.LetterKeyboardHeight(t, room.Dy()-rowH-t.Pad-minDetail)
	p.Keyboard = fb.NewLetterKeyboard(image.Rect(room.Min.X, room.Max.Y-kh, room.Max.X, room.Max.Y), t, a.UI)
	p.OK = p.Keyboard.KeyAt("OK")
	rowTop := room.Max.Y - kh - t.Pad/2 - rowH
	row := image.Rect(room.Min.X+t.Pad, rowTop, room.Max.X-t.Pad, rowTop+rowH)
	if p.Detail != nil {
		p.Detail.Rect, p.Detail.D = image.Rect(room.Min.X, room.Min.Y, room.Max.X, max(room.Min.Y, rowTop-t.Pad/2)), a.UI
	}
	cancelW := max(t.Target, fb.TextWidth(t.Body, cmp.Or(r.RejectLabel, "Cancel"))+2*t.Pad)
	p.Reject = &fb.Button{Label: cmp.Or(r.RejectLabel, "Cancel"), Kind: fb.Destructive, OnTap: p.Cancel}
	p.Reject.Rect, p.Reject.D = image.Rect(row.Max.X-cancelW, row.Min.Y, row.Max.X, row.Max.Y), a.UI
	p.Field = &fb.TextArea{Fill: surface}
	p.Field.Rect, p.Field.D = image.Rect(row.Min.X, row.Min.Y, row.Min.X+fieldWidth(t), row.Max.Y), a.UI
	p.compRow = image.Rect(p.Field.Rect.Max.X+t.Pad/2, row.Min.Y, p.Reject.Rect.Min.X-t.Pad, row.Max.Y)

	submit := func(w []byte) {
		p.wipe()
		finish(Decision{Approved: true, Word: w})
	}
	p.Keyboard.Allow = func(label string) bool {
		switch label {
		case "Del":
			return len(p.typed) > 0
		case "OK":
			return isWord(p.typed)
		}
		return len(label) == 1 && isLetter(label[0]) && len(bip39.Complete(string(p.typed)+label, 1)) > 0
	}
	p.Keyboard.OnKey = func(c rune) {
		// A letter no word continues with is refused even if its key
		// was somehow tapped while enabled.
		if c > 0x7f || !isLetter(byte(c)) || len(bip39.Complete(string(p.typed)+string(c), 1)) == 0 {
			return
		}
		p.typed = append(p.typed, byte(c))
		p.refresh()
	}
	p.Keyboard.OnBackspace = func() {
		if len(p.typed) > 0 {
			p.typed[len(p.typed)-1] = 0
			p.typed = p.typed[:len(p.typed)-1]
			p.refresh()
		}
	}
	p.Keyboard.OnDone = func() {
		if isWord(p.typed) {
			submit(append([]byte(nil), p.typed...))
		}
	}
	p.fixed = append(p.fixed, p.items...)
	if p.Detail != nil {
		p.fixed = append(p.fixed, p.Detail)
	}
	p.fixed = append(p.fixed, p.Field, p.Reject, p.Keyboard)
	p.submit = submit
	p.refresh()
	a.UI.Show(p)
	return p
}

// refresh shows the letters typed, the words they begin and the keys that
// may follow.
func (p *WordPage) refresh() {
	t := p.a.UI.Theme
	p.Field.Set(string(p.typed) + "|")
	p.Keyboard.Update()
	p.Completions = p.Completions[:0]
	if len(p.typed) > 0 {
		x := p.compRow.Min.X
		for _, w := range bip39.Complete(string(p.typed), MaxCompletions) {
			bw := max(t.Target, fb.TextWidth(t.Body, w)+2*t.Pad)
			if x+bw > p.compRow.Max.X {
				break
			}
			b := &fb.Button{Label: w, Kind: fb.Primary, OnTap: func() { p.submit([]byte(w)) }}
			b.Rect, b.D = image.Rect(x, p.compRow.Min.Y, x+bw, p.compRow.Max.Y), p.a.UI
			p.Completions = append(p.Completions, b)
			x += bw + t.Pad/2
		}
	}
	p.items = append(p.items[:0], p.fixed...)
	for _, b := range p.Completions {
		p.items = append(p.items, b)
	}
	p.a.UI.Damage(p.compRow)
}

// wipe clears the letters typed.
func (p *WordPage) wipe() {
	clear(p.typed)
	p.typed = p.typed[:0]
	p.Field.Set("|")
}

// isLetter reports whether c is a lower-case letter a to z.
func isLetter(c byte) bool { return c >= 'a' && c <= 'z' }

// isWord reports whether w is a word of the BIP39 English list.
func isWord(w []byte) bool {
	c := bip39.Complete(string(w), 1)
	return len(w) > 0 && len(c) == 1 && c[0] == string(w)
}

var (
	fieldWidthMu sync.Mutex
	fieldWidths  = map[font.Face]int{}
)

// fieldWidth is the width of the word page's field in t: the widest word of
// the list and the caret, inside the field's padding.
func fieldWidth(t *fb.Theme) int {
	fieldWidthMu.Lock()
	defer fieldWidthMu.Unlock()
	w, ok := fieldWidths[t.Body]
	if !ok {
		for i := range 2048 {
			w = max(w, fb.TextWidth(t.Body, bip39.Word(i)))
		}
		fieldWidths[t.Body] = w
	}
	return w + fb.TextWidth(t.Body, "|") + t.Pad + 2
}
