package screens

import (
	"cmp"
	"image"

	"github.com/skyfleet/skyfleet/ui/fb"
)

// Kinds of request (Request.Kind), named as services/ui/approve names them.
const (
	// KindApprove asks Approve or Reject, then the PIN if NeedPIN; it is
	// also the kind of a request that names none ("").
	KindApprove = "approve"
	// KindChoose asks the person to tap one of Choices.
	KindChoose = "choose"
	// KindWord asks the person to type one word of the BIP39 English list.
	KindWord = "word"
)

// Request is what a service asks the person holding the kit: to approve
// something (the wallet's signature, a key's use), to choose one of a few
// answers, or to type a word. The screen shows which service asks.
type Request struct {
	// Service is the asking service's name as the ui service knows it
	// from its credential (never from the request's own words).
	Service string
	// Kind is KindApprove ("" too), KindChoose or KindWord. Any other is
	// shown as a request that can only be cancelled, with a warning
	// saying so: the ui service checks kinds before they come here.
	Kind  string
	Title string
	Rows  []fb.Pair
	// Warnings come first, in the warning colour.
	Warnings []string
	// NeedPIN asks for the PIN after Approve (KindApprove only).
	NeedPIN bool
	// Choices are the buttons of a KindChoose request, in order (the
	// ui service lets 2 to 6 of up to 24 characters through).
	Choices []string
	// ApproveLabel and RejectLabel, if not "", label the Approve and
	// Reject buttons of a KindApprove request (e.g. "Pair", "Refuse");
	// RejectLabel also labels the cancel button of the other kinds,
	// "Cancel" by default.
	ApproveLabel, RejectLabel string
}

// Decision is how a request ended.
type Decision struct {
	// Approved is true when the person answered: Approve (and the PIN),
	// a choice tapped, a word typed. Cancel, Reject and a request
	// cancelled by its asker leave it false, and the rest empty.
	Approved bool
	// PIN is the PIN typed after Approve when the request asked for one;
	// the receiver wipes it after use.
	PIN []byte
	// Choice is the index in Request.Choices of the choice tapped, for an
	// approved KindChoose request; 0 otherwise, so it means something
	// only when Approved is.
	Choice int
	// Word is the word typed for an approved KindWord request, a word of
	// the BIP39 English list in lower case. It is a secret (a word of a
	// seed): the receiver wipes it after use.
	Word []byte
}

// Question is a request on the screen, whichever its kind: an
// *ApprovalPage, a *ChoosePage or a *WordPage. Its widgets are exported for
// the tests and the e2e driver, which build the same page in-process at the
// same size to find where a control is.
type Question interface {
	fb.Page
	// Cancel ends the request as not approved, as when the asking
	// service went away or its time ran out; the previous page comes
	// back. It does nothing once the request has ended.
	Cancel()
}

// question is what the pages of every kind of request share: the bars, and
// the way back to the page that was up before.
type question struct {
	page
	finish func(Decision)
}

// Cancel implements Question.
func (q *question) Cancel() { q.finish(Decision{}) }

// ApprovalPage shows a KindApprove request; its widgets are exported for
// the tests and the e2e driver.
type ApprovalPage struct {
	question
	Detail          *fb.Detail
	Approve, Reject *fb.Button
	PIN             *fb.PINPad
}

// Ask shows r and calls done once with the decision; the previous page and
// its title come back after. A KindApprove request ends with Approve then
// the PIN, or Reject; Approve is enabled only once every row has been shown
// (scrolled to the end), so nothing can be approved unseen. A KindChoose
// request ends with a choice tapped (enabled, likewise, once the rows have
// been shown) or Cancel; a KindWord request with a word typed or Cancel.
// Any of them ends with Question.Cancel.
func (a *App) Ask(r Request, done func(Decision)) Question {
	q, room := a.newQuestion(r, done)
	switch r.Kind {
	case "", KindApprove:
		return a.approvalPage(q, r, room)
	case KindChoose:
		return a.choosePage(q, r, room)
	case KindWord:
		return a.wordPage(q, r, room)
	}
	// A kind this screen does not know: nothing may be answered, only
	// cancelled, and the person is told why.
	r.Warnings = append([]string{"This screen cannot answer a request of this kind (" + r.Kind + "): cancel it."}, r.Warnings...)
	r.Choices = nil
	return a.choosePage(q, r, room)
}

// newQuestion puts r's title in the title bar and the asker line under it,
// and returns the question and the room left under the asker line.
func (a *App) newQuestion(r Request, done func(Decision)) (question, image.Rectangle) {
	t, c := a.UI.Theme, a.bar.modal
	prev, prevTitle := a.UI.Page(), a.bar.title.Text
	ended := false
	finish := func(d Decision) {
		if ended {
			// Nobody takes a second decision: its secrets go now.
			clear(d.PIN)
			clear(d.Word)
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
	asker := &fb.Label{Text: "Asked by: " + r.Service, Face: smallFace, Color: warning, Fill: surface}
	ah := fb.LineHeight(t.Small) + t.Pad
	asker.Rect = image.Rect(c.Min.X, c.Min.Y, c.Max.X, c.Min.Y+ah)
	q := question{page: page{a: a, modal: true, items: []fb.Widget{asker}}, finish: finish}
	return q, image.Rect(c.Min.X, asker.Rect.Max.Y, c.Max.X, c.Max.Y)
}

// detailRows is r's warnings, then its rows.
func detailRows(r Request) []fb.Pair {
	var rows []fb.Pair
	for _, w := range r.Warnings {
		rows = append(rows, fb.Pair{Label: "Warning", Value: w, Warn: true})
	}
	return append(rows, r.Rows...)
}

func (a *App) approvalPage(q question, r Request, room image.Rectangle) *ApprovalPage {
	t, c := a.UI.Theme, a.bar.modal
	p := &ApprovalPage{question: q}
	finish := q.finish
	p.Detail = &fb.Detail{Rows: detailRows(r)}
	p.Detail.Rect, p.Detail.D = image.Rect(room.Min.X, room.Min.Y, room.Max.X, room.Max.Y-t.Target-t.Pad), a.UI
	btns := fb.Columns(image.Rect(c.Min.X+t.Pad, c.Max.Y-t.Target-t.Pad/2, c.Max.X-t.Pad, c.Max.Y-t.Pad/2), t.Pad, 2)
	p.Reject = &fb.Button{Label: cmp.Or(r.RejectLabel, "Reject"), Kind: fb.Destructive, OnTap: func() { finish(Decision{}) }}
	// Disabled until the gate has seen the detail drawn to its end.
	p.Approve = &fb.Button{Label: cmp.Or(r.ApproveLabel, "Approve"), Kind: fb.Primary, Disabled: true}
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
	p.items = append(p.items, p.Detail, p.Reject, p.Approve, &seenGate{detail: p.Detail, buttons: []*fb.Button{p.Approve}})
	a.UI.Show(p)
	return p
}

type pinPage struct{ page }

// seenGate keeps buttons disabled until the detail has been shown to its
// end; it draws nothing itself and is re-checked at every redraw of the
// detail (it comes after it in the page, so the detail has just been drawn
// and knows its height).
type seenGate struct {
	detail  *fb.Detail
	buttons []*fb.Button
}

func (g *seenGate) Bounds() image.Rectangle { return g.detail.Bounds() }

func (g *seenGate) Draw(dst *image.RGBA, t *fb.Theme) {
	dis := !g.detail.AtEnd()
	for _, b := range g.buttons {
		if dis != b.Disabled {
			b.Disabled = dis
			b.Invalidate()
		}
	}
}
