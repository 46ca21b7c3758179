package evdev

import (
	"reflect"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/drivers/touch"
)

func ev(typ, code uint16, value int32) Event { return Event{Type: typ, Code: code, Value: value} }

var syn = ev(EvSyn, SynReport, 0)

// feed runs events through d and returns the reports it made.
func feed(d *Decoder, events ...Event) [][]touch.Point {
	var out [][]touch.Point
	for _, e := range events {
		if r, ok := d.Feed(e); ok {
			out = append(out, r.Points)
		}
	}
	return out
}

// identity maps raw 0..999 one to one onto a 1000x1000 screen.
var identity = touch.Mapping{X: touch.Axis{Min: 0, Max: 1000}, Y: touch.Axis{Min: 0, Max: 1000}, Width: 1000, Height: 1000}

// The protocol B example of the kernel's multi-touch-protocol.rst: two
// contacts appear in slots 0 and 1 in one report, the first moves, then it
// lifts (tracking ID -1) while the second stays.
func TestMultiTouchProtocolB(t *testing.T) {
	d, err := NewDecoder(identity, true)
	if err != nil {
		t.Fatal(err)
	}
	got := feed(d,
		ev(EvAbs, AbsMTSlot, 0), ev(EvAbs, AbsMTTrackingID, 45), ev(EvAbs, AbsMTPositionX, 100), ev(EvAbs, AbsMTPositionY, 200),
		ev(EvAbs, AbsMTSlot, 1), ev(EvAbs, AbsMTTrackingID, 46), ev(EvAbs, AbsMTPositionX, 300), ev(EvAbs, AbsMTPositionY, 400),
		// the legacy single-touch events such devices also send are ignored
		ev(EvKey, BtnTouch, 1), ev(EvAbs, AbsX, 100), ev(EvAbs, AbsY, 200),
		syn,
		ev(EvAbs, AbsMTSlot, 0), ev(EvAbs, AbsMTPositionX, 110),
		syn,
		ev(EvAbs, AbsMTTrackingID, -1),
		syn,
		syn, // nothing changed: no report
		ev(EvAbs, AbsMTSlot, 1), ev(EvAbs, AbsMTTrackingID, -1), ev(EvKey, BtnTouch, 0),
		syn,
	)
	want := [][]touch.Point{
		{{ID: 0, X: 100, Y: 200}, {ID: 1, X: 300, Y: 400}},
		{{ID: 0, X: 110, Y: 200}, {ID: 1, X: 300, Y: 400}},
		{{ID: 1, X: 300, Y: 400}},
		nil,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("reports\n%v\nwant\n%v", got, want)
	}
}

// A single-touch panel (BTN_TOUCH) and a tablet (BTN_LEFT, as QEMU's
// usb-tablet reports): a press with its position, a drag, the lift; a tablet
// moving with no button pressed (hover) reports nothing.
func TestSingleTouch(t *testing.T) {
	for _, btn := range []uint16{BtnTouch, BtnLeft} {
		d, err := NewDecoder(identity, false)
		if err != nil {
			t.Fatal(err)
		}
		got := feed(d,
			ev(EvAbs, AbsX, 10), ev(EvAbs, AbsY, 20), syn, // hover
			ev(EvAbs, AbsX, 500), ev(EvAbs, AbsY, 600), ev(EvKey, btn, 1), syn,
			ev(EvAbs, AbsX, 510), syn,
			ev(EvKey, btn, 0), syn,
			ev(EvAbs, AbsX, 900), syn, // hover again
		)
		want := [][]touch.Point{{{X: 500, Y: 600}}, {{X: 510, Y: 600}}, nil}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("button %#x: reports %v, want %v", btn, got, want)
		}
	}
}

// After SYN_DROPPED the events up to the next SYN_REPORT are discarded and
// every contact is reported lifted; the drop is counted; the next touch is
// reported normally. Slot numbers beyond MaxSlots are ignored.
func TestDroppedAndBadSlots(t *testing.T) {
	d, _ := NewDecoder(identity, true)
	got := feed(d,
		ev(EvAbs, AbsMTSlot, 0), ev(EvAbs, AbsMTTrackingID, 1), ev(EvAbs, AbsMTPositionX, 5), ev(EvAbs, AbsMTPositionY, 5), syn,
		ev(EvSyn, SynDropped, 0), ev(EvAbs, AbsMTPositionX, 999), syn,
		ev(EvAbs, AbsMTSlot, MaxSlots), ev(EvAbs, AbsMTTrackingID, 9), ev(EvAbs, AbsMTPositionX, 1), syn,
		ev(EvAbs, AbsMTSlot, -3), ev(EvAbs, AbsMTTrackingID, 9), syn,
		ev(EvAbs, AbsMTSlot, 2), ev(EvAbs, AbsMTTrackingID, 2), ev(EvAbs, AbsMTPositionX, 7), ev(EvAbs, AbsMTPositionY, 8), syn,
	)
	want := [][]touch.Point{{{ID: 0, X: 5, Y: 5}}, nil, {{ID: 2, X: 7, Y: 8}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("reports %v, want %v", got, want)
	}
	if d.Dropped != 1 {
		t.Errorf("Dropped = %d, want 1", d.Dropped)
	}
}

// Events round-trip through the kernel's 24-byte layout, timestamps to the
// microsecond; a short read is an error.
func TestEventLayout(t *testing.T) {
	e := Event{Time: time.Unix(1700000000, 123456000), Type: EvAbs, Code: AbsMTPositionY, Value: -7}
	b := AppendEvent(nil, e)
	if len(b) != EventSize {
		t.Fatalf("%d bytes", len(b))
	}
	// struct input_event { struct timeval time; __u16 type; __u16 code; __s32 value; }
	if b[16] != EvAbs || b[18] != AbsMTPositionY || b[20] != 0xf9 || b[23] != 0xff {
		t.Errorf("layout % x", b)
	}
	got, rest, err := ParseEvent(append(b, 1))
	if err != nil || !got.Time.Equal(e.Time) || got.Type != e.Type || got.Code != e.Code || got.Value != e.Value || len(rest) != 1 {
		t.Errorf("ParseEvent = %+v, %d left, %v", got, len(rest), err)
	}
	if _, _, err := ParseEvent(b[:EventSize-1]); err == nil {
		t.Error("a short event parsed")
	}
}

// FuzzDecoder feeds arbitrary input_event streams to both kinds of decoder:
// no panic, no more points than slots, every point on the screen.
func FuzzDecoder(f *testing.F) {
	var seed []byte
	for _, e := range []Event{
		ev(EvAbs, AbsMTSlot, 0), ev(EvAbs, AbsMTTrackingID, 45), ev(EvAbs, AbsMTPositionX, 100), ev(EvAbs, AbsMTPositionY, 200), syn,
		ev(EvSyn, SynDropped, 0), syn, ev(EvKey, BtnLeft, 1), ev(EvAbs, AbsX, 1<<30), syn,
	} {
		seed = AppendEvent(seed, e)
	}
	f.Add(seed)
	f.Add([]byte{})
	m := touch.Mapping{X: touch.Axis{Min: -50, Max: 4000}, Y: touch.Axis{Min: 100, Max: 200}, Width: 320, Height: 240, Rotation: touch.Rotate270}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, mt := range []bool{false, true} {
			d, err := NewDecoder(m, mt)
			if err != nil {
				t.Fatal(err)
			}
			for rest := b; len(rest) >= EventSize; {
				var e Event
				e, rest, _ = ParseEvent(rest)
				r, ok := d.Feed(e)
				if !ok {
					continue
				}
				if len(r.Points) > MaxSlots {
					t.Fatalf("%d points", len(r.Points))
				}
				for _, p := range r.Points {
					if p.X < 0 || p.X >= m.Width || p.Y < 0 || p.Y >= m.Height {
						t.Fatalf("point %+v off a %dx%d screen", p, m.Width, m.Height)
					}
				}
			}
		}
	})
}
