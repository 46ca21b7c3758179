package screens

import (
	"fmt"
	"image"
	"image/color"
	"strings"
	"time"

	"github.com/skyfleet/skyfleet/ui/fb"
)

// Messenger is what the messages pages need of the messaging service
// (services/msg's API).
type Messenger interface {
	// Threads lists the conversations, newest first.
	Threads() []Thread
	// Thread returns the messages with peer, oldest first.
	Thread(peer string) []Message
	// Send sends text to peer and returns once the node holds it
	// durably (its custody); errors say why not, for the screen.
	Send(peer, text string) error
}

// Thread is one conversation in the inbox.
type Thread struct {
	Peer   string // the peer's address
	Name   string // a name for it, or "" to show the address
	Last   string // the last message's text
	Unread int
	// State is the delivery state of our last message to the peer
	// (services/msg's held, forwarded, delivered, expired), or "".
	State string
}

// Message is one message of a thread.
type Message struct {
	Outgoing bool
	Text     string
	Time     time.Time
	State    string // outgoing only: held, forwarded, delivered, expired
}

// SetMessenger connects the messages pages to the messaging service.
func (a *App) SetMessenger(m Messenger) { a.msgs = m }

type messagesPage struct{ page }

// stateColor colours a delivery state: delivered is good news, expired bad.
func stateColor(state string) func(*fb.Theme) color.RGBA {
	return func(t *fb.Theme) color.RGBA {
		switch state {
		case "delivered":
			return t.OK
		case "expired":
			return t.Danger
		}
		return t.Muted
	}
}

func shortAddr(s string) string {
	if len(s) > 12 {
		return s[:6] + "…" + s[len(s)-4:]
	}
	return s
}

func (a *App) messagesPage() *messagesPage {
	t, c := a.UI.Theme, a.bar.content
	p := &messagesPage{page{a: a}}
	list := &fb.List{Empty: "No messages yet"}
	list.Rect, list.D = image.Rect(c.Min.X, c.Min.Y, c.Max.X, c.Max.Y-t.Target-t.Pad), a.UI
	var threads []Thread
	if a.msgs != nil {
		threads = a.msgs.Threads()
	}
	for _, th := range threads {
		name := th.Name
		if name == "" {
			name = shortAddr(th.Peer)
		}
		if th.Unread > 0 {
			name = fmt.Sprintf("%s (%d)", name, th.Unread)
		}
		list.Items = append(list.Items, fb.ListItem{Title: name, Detail: th.Last, Badge: th.State, BadgeColor: stateColor(th.State)})
	}
	list.OnSelect = func(i int) { a.UI.Show(a.threadPage(threads[i])) }
	compose := &fb.Button{Label: "New message", Kind: fb.Primary, OnTap: func() { a.UI.Show(a.composePage("")) }}
	compose.Rect, compose.D = image.Rect(c.Min.X+t.Pad, c.Max.Y-t.Target, c.Max.X-t.Pad, c.Max.Y), a.UI
	p.items = []fb.Widget{list, compose}
	return p
}

type threadPage struct{ page }

func (a *App) threadPage(th Thread) *threadPage {
	t, c := a.UI.Theme, a.bar.content
	p := &threadPage{page{a: a}}
	var rows []fb.Pair
	if a.msgs != nil {
		for _, m := range a.msgs.Thread(th.Peer) {
			who := "them"
			if m.Outgoing {
				who = "me"
				if m.State != "" {
					who += " · " + m.State
				}
			}
			if !m.Time.IsZero() {
				who += " · " + m.Time.Format("Jan 2 15:04")
			}
			rows = append(rows, fb.Pair{Label: who, Value: m.Text})
		}
	}
	d := &fb.Detail{Rows: rows}
	d.Rect, d.D = image.Rect(c.Min.X, c.Min.Y, c.Max.X, c.Max.Y-t.Target-t.Pad), a.UI
	btns := fb.Columns(image.Rect(c.Min.X+t.Pad, c.Max.Y-t.Target, c.Max.X-t.Pad, c.Max.Y), t.Pad, 2)
	back := &fb.Button{Label: "Back", OnTap: func() { a.Open("Messages") }}
	reply := &fb.Button{Label: "Reply", Kind: fb.Primary, OnTap: func() { a.UI.Show(a.composePage(th.Peer)) }}
	back.Rect, back.D, reply.Rect, reply.D = btns[0], a.UI, btns[1], a.UI
	p.items = []fb.Widget{d, back, reply}
	return p
}

// ComposePage is the compose page: one field at a time above the keyboard,
// the recipient's address first (skipped for a reply), then the text, so
// that on a 320x240 panel the field and Cancel are still full-size
// targets. Its fields are exported for the tests and the e2e driver.
type ComposePage struct {
	page
	// Summary shows the recipient while the text is typed.
	Summary *fb.Label
	// Field shows what is being typed: the address, then the text.
	Field    *fb.TextArea
	Cancel   *fb.Button
	Keyboard *fb.Keyboard
	// Status is the title bar's right side: the count of bytes typed.
	Status *fb.Label
	// Dialog is the last "Not sent" dialog shown, if any.
	Dialog *fb.Dialog

	step     int // 0: the address, 1: the text
	to, text string
}

// MaxText is the longest message the compose page takes, in bytes: a
// message should fit a radio frame or two (services/msg caps what it sends).
const MaxText = 500

// maxAddr bounds the address typed (Skycoin addresses are 26-35 characters).
const maxAddr = 64

func (a *App) composePage(to string) *ComposePage {
	// Compose is modal: the keyboard takes the navigation bar's place.
	// The count is in the title bar; an error is a dialog.
	t, c := a.UI.Theme, a.bar.modal
	p := &ComposePage{page: page{a: a, modal: true}, to: to}
	if to != "" {
		p.step = 1
	}
	a.bar.title.Set(" New message")
	lh := fb.LineHeight(t.Body)
	kh := min(fb.KeyboardHeight(t, a.UI.Size()), c.Dy()-lh-t.Target-2*t.Pad)
	p.Keyboard = fb.NewKeyboard(image.Rect(c.Min.X, c.Max.Y-kh, c.Max.X, c.Max.Y), t, a.UI)
	fields := image.Rect(c.Min.X+t.Pad, c.Min.Y+t.Pad/2, c.Max.X-t.Pad, c.Max.Y-kh-t.Pad/2)
	p.Summary = &fb.Label{Face: smallFace, Color: muted}
	p.Summary.Rect, p.Summary.D = image.Rect(fields.Min.X, fields.Min.Y, fields.Max.X, fields.Min.Y+lh), a.UI
	row := image.Rect(fields.Min.X, p.Summary.Rect.Max.Y, fields.Max.X, fields.Max.Y)
	cancelW := max(t.Target, fb.TextWidth(t.Body, "Cancel")+2*t.Pad)
	p.Cancel = &fb.Button{Label: "Cancel", OnTap: func() { a.Open("Messages") }}
	p.Cancel.Rect, p.Cancel.D = image.Rect(row.Max.X-cancelW, row.Min.Y, row.Max.X, row.Min.Y+min(row.Dy(), max(t.Target, lh+t.Pad))), a.UI
	// The field takes whatever height is left: several lines of text on
	// a big screen, one on a small one.
	p.Field = &fb.TextArea{Fill: surface}
	p.Field.Rect, p.Field.D = image.Rect(row.Min.X, row.Min.Y, row.Max.X-cancelW-t.Pad/2, row.Max.Y), a.UI
	p.Keyboard.OnKey = func(r rune) {
		field, limit := p.focus()
		if len(*field)+len(string(r)) <= limit {
			*field += string(r)
		}
		p.refresh()
	}
	p.Keyboard.OnBackspace = func() {
		field, _ := p.focus()
		if s := []rune(*field); len(s) > 0 {
			*field = string(s[:len(s)-1])
		}
		p.refresh()
	}
	p.Keyboard.OnDone = func() {
		if p.step == 0 {
			if strings.TrimSpace(p.to) == "" {
				p.problem("Type the recipient's address first.")
				return
			}
			p.step = 1
			p.refresh()
			return
		}
		p.send()
	}
	p.Status = a.bar.clock
	p.items = []fb.Widget{p.Summary, p.Field, p.Cancel, p.Keyboard}
	p.refresh()
	return p
}

// focus is the value being typed and its limit in bytes.
func (p *ComposePage) focus() (*string, int) {
	if p.step == 0 {
		return &p.to, maxAddr
	}
	return &p.text, MaxText
}

func (p *ComposePage) refresh() {
	if p.step == 0 {
		p.Summary.Set("To (the recipient's address), then Done:")
		p.Field.Set(p.to + "|")
		p.Status.Set("")
		return
	}
	p.Summary.Set("To: " + p.to)
	p.Field.Set(p.text + "|")
	p.Status.Set(fmt.Sprintf("%d/%d ", len(p.text), MaxText))
}

func (p *ComposePage) send() {
	to, text := strings.TrimSpace(p.to), strings.TrimSpace(p.text)
	var problem string
	switch {
	case text == "":
		problem = "Nothing to send yet."
	case p.a.msgs == nil:
		problem = "Messaging is not running on this node."
	default:
		if err := p.a.msgs.Send(to, text); err != nil {
			problem = err.Error()
		}
	}
	if problem != "" {
		p.problem(problem)
		return
	}
	p.a.Open("Messages")
}

// problem shows why the message was not sent; OK goes back to it as typed.
func (p *ComposePage) problem(why string) {
	ok := &fb.Button{Label: "OK", Kind: fb.Primary, OnTap: func() { p.a.UI.Show(p) }}
	p.Dialog = fb.NewDialog(p.a.UI.Size(), p.a.UI.Theme, p.a.UI, "Not sent", why, ok)
	p.a.UI.Show(&dialogPage{page{a: p.a, items: []fb.Widget{p.Dialog}, modal: true}})
}

type dialogPage struct{ page }
