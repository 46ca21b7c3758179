package screens

import (
	"image"

	"github.com/skyfleet/skyfleet/ui/fb"
)

// Request is what a service asks the person holding the kit to approve:
// the wallet's signature, a key's use. The screen shows which service asks.
type Request struct {
	// Service is the asking service's name as the ui service knows it
	// from its credential (never from the request's own words).
	Service string
	Title   string
	Rows    []fb.Pair
	// Warnings come first, in the warning colour.
	Warnings []string
	// NeedPIN asks for the PIN after Approve.
	NeedPIN bool
}

// Decision is how a request ended.
type Decision struct {
	Approved bool
	// PIN is the PIN typed after Approve when the request asked for one;
	// the receiver wipes it after use.
	PIN []byte
}

// ApprovalPage shows a request; its widgets are exported for the tests and
// the e2e driver.
type ApprovalPage struct {
	page
	Detail          *fb.Detail
	Approve, Reject *fb.Button
	PIN             *fb.PINPad
	finish          func(Decision)
}

// Cancel ends the request as rejected, as when the asking service went
// away or its time ran out; the previous page comes back. It does nothing
// once the request has ended.
func (p *ApprovalPage) Cancel() { p.finish(Decision{}) }

// Ask shows r and calls done once with the decision (Approve then the
// PIN, or Reject, or Cancel); the previous page and its title come back
// after. Approve is enabled only once every row has been shown (scrolled
// to the end), so nothing can be approved unseen.
func (a *App) Ask(r Request, done func(Decision)) *ApprovalPage {
	t, c := a.UI.Theme, a.bar.modal
	prev, prevTitle := a.UI.Page(), a.bar.title.Text
	ended := false
	finish := func(d Decision) {
		if ended {
			return
		}
		ended = true
		a.bar.title.Set(prevTitle)
		if prev != nil {
			a.UI.Show(prev)
		}
		done(d)
	}
	a.bar.title.Set(" " + r.Title)
	a.bar.clock.Set(a.Now().Format("15:04") + " ")
	p := &ApprovalPage{page: page{a: a, modal: true}, finish: finish}
	asker := &fb.Label{Text: "Asked by: " + r.Service, Face: smallFace, Color: warning, Fill: surface}
	ah := fb.LineHeight(t.Small) + t.Pad
	asker.Rect = image.Rect(c.Min.X, c.Min.Y, c.Max.X, c.Min.Y+ah)
	var rows []fb.Pair
	for _, w := range r.Warnings {
		rows = append(rows, fb.Pair{Label: "Warning", Value: w, Warn: true})
	}
	rows = append(rows, r.Rows...)
	p.Detail = &fb.Detail{Rows: rows}
	p.Detail.Rect, p.Detail.D = image.Rect(c.Min.X, asker.Rect.Max.Y, c.Max.X, c.Max.Y-t.Target-t.Pad), a.UI
	btns := fb.Columns(image.Rect(c.Min.X+t.Pad, c.Max.Y-t.Target-t.Pad/2, c.Max.X-t.Pad, c.Max.Y-t.Pad/2), t.Pad, 2)
	p.Reject = &fb.Button{Label: "Reject", Kind: fb.Destructive, OnTap: func() { finish(Decision{}) }}
	// Disabled until the gate has seen the detail drawn to its end.
	p.Approve = &fb.Button{Label: "Approve", Kind: fb.Primary, Disabled: true}
	p.Reject.Rect, p.Reject.D, p.Approve.Rect, p.Approve.D = btns[0], a.UI, btns[1], a.UI
	p.Approve.OnTap = func() {
		if !r.NeedPIN {
			finish(Decision{Approved: true})
			return
		}
		pad, err := fb.NewPINPad(image.Rect(c.Min.X+t.Pad/2, c.Min.Y, c.Max.X-t.Pad/2, c.Max.Y-t.Pad/2), t, a.UI, "PIN to approve: "+r.Title)
		if err != nil {
			finish(Decision{})
			return
		}
		pad.OnSubmit = func(pin []byte) { finish(Decision{Approved: true, PIN: pin}) }
		p.PIN = pad
		a.UI.Show(&pinPage{page{a: a, items: []fb.Widget{pad}, modal: true}})
	}
	p.items = []fb.Widget{asker, p.Detail, p.Reject, p.Approve, &approveGate{p: p}}
	a.UI.Show(p)
	return p
}

type pinPage struct{ page }

// approveGate keeps Approve disabled until the detail has been shown to
// its end; it draws nothing itself and is re-checked at every redraw of
// the detail.
type approveGate struct{ p *ApprovalPage }

func (g *approveGate) Bounds() image.Rectangle { return g.p.Detail.Bounds() }

func (g *approveGate) Draw(dst *image.RGBA, t *fb.Theme) {
	// The detail has just been drawn (it comes first): it knows its
	// height now.
	if dis := !g.p.Detail.AtEnd(); dis != g.p.Approve.Disabled {
		g.p.Approve.Disabled = dis
		g.p.Approve.Invalidate()
	}
}
