package screens

import (
	"fmt"
	"strings"
	"time"

	"github.com/skyfleet/skyfleet/ui/fb"
)

// RadioChannel is one radio channel as the radio page shows it: the mesh
// service's meshd.RadioChannel (services/mesh/radio.Stats) in the words an
// operator reads.
type RadioChannel struct {
	// Name is the fleet.toml listen entry, e.g.
	// "kiss+serial:///dev/ttyUSB0?baud=9600".
	Name string
	// Callsign is what the node transmits as; "" when it has none and the
	// channel only receives.
	Callsign string
	// Down is why the channel is down (the TNC, serial port or sound card
	// did not open, or broke); "" when it is up.
	Down string
	// FramesIn and FramesOut count AX.25 frames heard and sent; Errors
	// those heard that did not decode (FCS, KISS framing, malformed).
	FramesIn, FramesOut, Errors uint64
	// Airtime is how long this node transmitted; Busy how long the
	// channel was heard busy (0 when the port cannot tell).
	Airtime, Busy time.Duration
}

type radioPage struct{ page }

// radioPage shows each channel, then the stations linked over radio, in a
// scrollable view: two channels with a reason for one being down do not fit
// a 320x240 panel. A channel that is down or only receives, and a link that
// is not good, are drawn as warnings.
func (a *App) radioPage() *radioPage {
	p := &radioPage{page{a: a}}
	var rows []fb.Pair
	for _, ch := range a.status.Radio {
		call, state := ch.Callsign, "on air"
		switch {
		case ch.Down != "":
			state = "down: " + ch.Down
		case ch.Callsign == "":
			state = "receive only: set [radio] callsign to transmit"
		}
		if call == "" {
			call = "no callsign"
		}
		counts := fmt.Sprintf("heard %d frames, sent %d", ch.FramesIn, ch.FramesOut)
		if ch.Errors > 0 {
			counts += fmt.Sprintf(", %d bad", ch.Errors)
		}
		air := "on air " + roughDuration(ch.Airtime)
		if ch.Busy > 0 {
			air += ", channel busy " + roughDuration(ch.Busy)
		}
		rows = append(rows, fb.Pair{Label: call + " on " + ch.Name, Value: state + "\n" + counts + "\n" + air,
			Warn: ch.Down != "" || ch.Callsign == ""})
	}
	var links []string
	warn := false
	for _, l := range a.status.Links {
		if l.Medium != "radio" {
			continue
		}
		q := l.Quality()
		text := fmt.Sprintf("%s: %s, %.1f s", l.Peer, q, float64(l.RTTms)/1000)
		if l.Loss > 0 {
			text += fmt.Sprintf(", %.0f%% loss", l.Loss*100)
		}
		links = append(links, text)
		warn = warn || q != "good"
	}
	if len(links) == 0 {
		links = []string{"none yet"}
	}
	rows = append(rows, fb.Pair{Label: "Stations linked over radio", Value: strings.Join(links, "\n"), Warn: warn})
	d := &fb.Detail{Rows: rows}
	d.Rect, d.D = a.bar.content, a.UI
	p.items = []fb.Widget{d}
	return p
}

// roughDuration is d in the unit an operator reads it in: "42 s", "7 min",
// "3 h 05 min".
func roughDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	}
	return fmt.Sprintf("%d h %02d min", int(d.Hours()), int(d.Minutes())%60)
}
