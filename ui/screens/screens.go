// Package screens is the kit's touchscreen: the status page (name, address
// with its QR code, links and their quality, messages waiting, clock, update
// state), the messages pages (inbox, thread, compose with the on-screen
// keyboard, delivery state) and the questions other services ask (title,
// rows of label and value, warnings, then Approve or Reject and the PIN, or
// a choice among a few buttons, or a word of the BIP39 list typed on a
// letter keyboard), built from ui/fb's widgets. The data comes from the node's services
// through the small interfaces here; the ui service (a process of its own)
// feeds them.
package screens

import (
	"image"
	"image/color"
	"time"

	"golang.org/x/image/font"

	"github.com/skyfleet/skyfleet/ui/fb"
)

// Status is what the status page shows.
type Status struct {
	Name    string // the node's name from fleet.toml, or its short address
	Address string // the node's address, also shown as a QR code
	Links   []Link
	// Waiting is the messages held for delivery (outbox not yet
	// delivered) and Unread those received and not yet opened.
	Waiting, Unread int
	// Update is the update state in a few words, e.g. "up to date
	// (2026.12.05)" or "downloading 40%".
	Update string
	// Radio is the node's radio channels; with one or more, the
	// navigation bar has a Radio page.
	Radio []RadioChannel
}

// Link is one mesh link.
type Link struct {
	Peer   string  // the neighbour's name or short address
	Medium string  // "wifi", "ethernet", "radio", ...
	RTTms  int     // round-trip time, ms
	Loss   float64 // 0..1
	Signal int     // dBm for a radio link, 0 when unknown
}

// Quality is a link's quality in one word, from its loss and round trip:
// what an operator needs at a glance. A radio link's round trip is judged
// by the radio's measure: on a 1200 bit/s channel a few seconds is normal.
func (l Link) Quality() string {
	fairRTT, poorRTT := 300, 2000
	if l.Medium == "radio" {
		fairRTT, poorRTT = 10000, 30000
	}
	switch {
	case l.Loss >= 0.3 || l.RTTms >= poorRTT:
		return "poor"
	case l.Loss >= 0.05 || l.RTTms >= fairRTT:
		return "fair"
	}
	return "good"
}

// App is the kit's screens on one UI.
type App struct {
	UI  *fb.UI
	Now func() time.Time

	status   Status
	msgs     Messenger
	bar      *bar
	radioTab bool // the navigation bar has Radio
}

// bar is the title bar and the navigation bar around every page.
type bar struct {
	title, clock *fb.Label
	nav          []*fb.Button
	// content is the room between the bars; modal the room under the
	// title bar, for pages that must not be left by the navigation bar
	// (an approval, a PIN, compose with its keyboard).
	content, modal image.Rectangle
}

func (b *bar) widgets(modal bool) []fb.Widget {
	ws := []fb.Widget{b.title, b.clock}
	if modal {
		return ws
	}
	for _, n := range b.nav {
		ws = append(ws, n)
	}
	return ws
}

// NewApp builds the screens on u.
func NewApp(u *fb.UI, now func() time.Time) *App {
	a := &App{UI: u, Now: now}
	t, size := u.Theme, u.Size()
	top := fb.LineHeight(t.Title) + 2*t.Pad
	a.bar = &bar{
		title: &fb.Label{Face: titleFace, Fill: surface},
		clock: &fb.Label{Align: fb.Right, Fill: surface, Color: muted},
	}
	a.bar.title.Rect = image.Rect(0, 0, size.X*2/3, top)
	a.bar.title.Rect.Min.X = 0
	a.bar.clock.Rect = image.Rect(size.X*2/3, 0, size.X, top)
	a.bar.title.D, a.bar.clock.D = u, u
	a.setNav(false)
	a.bar.content = image.Rect(0, top, size.X, size.Y-t.Target)
	a.bar.modal = image.Rect(0, top, size.X, size.Y)
	return a
}

// setNav lays the navigation bar out: Status and Messages, and Radio when
// the node has a radio channel. The page shown keeps its button lit.
func (a *App) setNav(radio bool) {
	names := []string{"Status", "Messages"}
	if radio {
		names = append(names, "Radio")
	}
	lit := ""
	for _, b := range a.bar.nav {
		if b.Kind == fb.Primary {
			lit = b.Label
		}
	}
	u, size := a.UI, a.UI.Size()
	navR := image.Rect(0, size.Y-u.Theme.Target, size.X, size.Y)
	a.bar.nav = nil
	for i, r := range fb.Columns(navR, 2, len(names)) {
		name := names[i]
		b := &fb.Button{Label: name, OnTap: func() { a.Open(name) }}
		if name == lit {
			b.Kind = fb.Primary
		}
		b.Rect, b.D = r, u
		a.bar.nav = append(a.bar.nav, b)
	}
	a.radioTab = radio
}

func titleFace(t *fb.Theme) font.Face { return t.Title }
func surface(t *fb.Theme) color.RGBA  { return t.Surface }
func muted(t *fb.Theme) color.RGBA    { return t.Muted }

// Tick updates the clock; call it every few seconds. The compose page
// uses the clock's place for its count and keeps it.
func (a *App) Tick() {
	if _, ok := a.UI.Page().(*ComposePage); ok {
		return
	}
	a.bar.clock.Set(a.Now().Format("15:04") + " ")
}

// page is a page with the bars; a modal one has no navigation bar, so it
// is left only through its own buttons.
type page struct {
	a     *App
	items []fb.Widget
	modal bool
}

func (p *page) Widgets() []fb.Widget { return append(p.a.bar.widgets(p.modal), p.items...) }

// Open shows the page called name: "Status", "Messages" or "Radio".
func (a *App) Open(name string) {
	a.bar.title.Set(" " + name)
	for _, b := range a.bar.nav {
		if b.Label == name {
			b.Kind = fb.Primary
		} else {
			b.Kind = fb.Plain
		}
	}
	a.bar.clock.Set(a.Now().Format("15:04") + " ")
	switch name {
	case "Messages":
		a.UI.Show(a.messagesPage())
	case "Radio":
		a.UI.Show(a.radioPage())
	default:
		a.UI.Show(a.statusPage())
	}
}
