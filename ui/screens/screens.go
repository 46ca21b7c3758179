// Package screens is the kit's touchscreen: the status page (name, address
// with its QR code, links and their quality, messages waiting, clock, update
// state), the messages pages (inbox, thread, compose with the on-screen
// keyboard, delivery state) and the approval page other services ask for
// (title, rows of label and value, warnings, Approve or Reject, then the
// PIN), built from ui/fb's widgets. The data comes from the node's services
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
// what an operator needs at a glance.
func (l Link) Quality() string {
	switch {
	case l.Loss >= 0.3 || l.RTTms >= 2000:
		return "poor"
	case l.Loss >= 0.05 || l.RTTms >= 300:
		return "fair"
	}
	return "good"
}

// App is the kit's screens on one UI.
type App struct {
	UI  *fb.UI
	Now func() time.Time

	status Status
	msgs   Messenger
	bar    *bar
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
	navR := image.Rect(0, size.Y-t.Target, size.X, size.Y)
	for i, r := range fb.Columns(navR, 2, 2) {
		name := []string{"Status", "Messages"}[i]
		b := &fb.Button{Label: name, OnTap: func() { a.Open(name) }}
		b.Rect, b.D = r, u
		a.bar.nav = append(a.bar.nav, b)
	}
	a.bar.content = image.Rect(0, top, size.X, navR.Min.Y)
	a.bar.modal = image.Rect(0, top, size.X, size.Y)
	return a
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

// Open shows the page called name: "Status" or "Messages".
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
	if name == "Messages" {
		a.UI.Show(a.messagesPage())
		return
	}
	a.UI.Show(a.statusPage())
}
