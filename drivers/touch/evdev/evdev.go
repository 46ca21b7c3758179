// Package evdev reads touches from a Linux input device (/dev/input/eventN)
// without cgo: USB HID touch panels, QEMU's usb-tablet, and any panel whose
// kernel driver is present. It decodes the kernel's struct input_event stream
// (Documentation/input/input.rst), single-touch (ABS_X/ABS_Y with BTN_TOUCH,
// or BTN_LEFT as tablets report it) and multi-touch protocol B (slots,
// Documentation/input/multi-touch-protocol.rst), and maps the raw axes to
// screen pixels with a touch.Mapping.
package evdev

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/skyfleet/skyfleet/drivers/touch"
)

// Event types and codes used here (include/uapi/linux/input-event-codes.h).
const (
	EvSyn = 0x00 // EV_SYN: report boundaries
	EvKey = 0x01 // EV_KEY: buttons, BTN_TOUCH
	EvAbs = 0x03 // EV_ABS: absolute axes

	SynReport  = 0 // SYN_REPORT: the device's state is complete
	SynDropped = 3 // SYN_DROPPED: the kernel's buffer overflowed, events were lost

	BtnLeft  = 0x110 // BTN_LEFT: a tablet's (QEMU's usb-tablet's) contact
	BtnTouch = 0x14a // BTN_TOUCH: a touchscreen's contact

	AbsX            = 0x00 // ABS_X: single-touch position
	AbsY            = 0x01 // ABS_Y
	AbsMTSlot       = 0x2f // ABS_MT_SLOT: which slot the next ABS_MT_* events are for
	AbsMTPositionX  = 0x35 // ABS_MT_POSITION_X
	AbsMTPositionY  = 0x36 // ABS_MT_POSITION_Y
	AbsMTTrackingID = 0x39 // ABS_MT_TRACKING_ID: a contact's ID; -1 lifts it

	absMax           = 0x3f
	keyMax           = 0x2ff
	inputPropDirect  = 0x01 // INPUT_PROP_DIRECT: a touchscreen, not a touchpad
	eventSize64      = 24   // struct input_event on 64-bit kernels
	trackingIDLifted = -1
)

// Event is one struct input_event.
type Event struct {
	// Time is the kernel's timestamp (CLOCK_REALTIME unless the device was
	// switched with EVIOCSCLOCKID).
	Time  time.Time
	Type  uint16
	Code  uint16
	Value int32
}

// EventSize is the size of a struct input_event on the 64-bit kernels
// Skyfleet runs (arm64 and amd64): a struct timeval of two 64-bit words,
// then type, code and value.
const EventSize = eventSize64

// ParseEvent decodes one struct input_event from b, which must hold at
// least EventSize bytes (in the machine's byte order, little-endian on
// every board); it returns the event and the bytes after it.
func ParseEvent(b []byte) (Event, []byte, error) {
	if len(b) < EventSize {
		return Event{}, b, fmt.Errorf("evdev: %d bytes, want %d for an input_event", len(b), EventSize)
	}
	sec := int64(binary.LittleEndian.Uint64(b[0:]))
	usec := int64(binary.LittleEndian.Uint64(b[8:]))
	e := Event{
		Type:  binary.LittleEndian.Uint16(b[16:]),
		Code:  binary.LittleEndian.Uint16(b[18:]),
		Value: int32(binary.LittleEndian.Uint32(b[20:])),
	}
	if usec >= 0 && usec < 1e6 {
		e.Time = time.Unix(sec, usec*1e3)
	}
	return e, b[EventSize:], nil
}

// AppendEvent appends e as a struct input_event, as the kernel writes it
// (the tests feed decoders and uinput this way).
func AppendEvent(b []byte, e Event) []byte {
	var sec, usec int64
	if !e.Time.IsZero() {
		sec, usec = e.Time.Unix(), int64(e.Time.Nanosecond()/1e3)
	}
	b = binary.LittleEndian.AppendUint64(b, uint64(sec))
	b = binary.LittleEndian.AppendUint64(b, uint64(usec))
	b = binary.LittleEndian.AppendUint16(b, e.Type)
	b = binary.LittleEndian.AppendUint16(b, e.Code)
	return binary.LittleEndian.AppendUint32(b, uint32(e.Value))
}

// MaxSlots caps the multi-touch slots tracked: a slot number from the
// device at or beyond it is ignored, so a misbehaving device cannot grow the
// decoder's state. Ten fingers fit.
const MaxSlots = 16

type slot struct {
	active bool
	x, y   int
}

// Decoder turns input events into touch reports. It is not safe for
// concurrent use.
type Decoder struct {
	m  touch.Mapping
	mt bool // multi-touch protocol B: positions come in slots

	slots [MaxSlots]slot
	cur   int // the slot ABS_MT_* events apply to

	stDown     bool // single touch: BTN_TOUCH or BTN_LEFT held
	stReported bool // stDown as last reported
	stX        int
	stY        int

	changed  bool // events since the last report
	dropping bool // after SYN_DROPPED, until the next SYN_REPORT

	// Dropped counts SYN_DROPPED events: the kernel's buffer overflowed
	// because the reader fell behind.
	Dropped uint64
}

// NewDecoder returns a decoder mapping through m (see touch.Mapping.Validate).
// multiTouch selects protocol B, for a device that has ABS_MT_SLOT; such
// devices also send single-touch events for old readers, which are then
// ignored.
func NewDecoder(m touch.Mapping, multiTouch bool) (*Decoder, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &Decoder{m: m, mt: multiTouch}, nil
}

// Feed takes one event; at a SYN_REPORT after a change it returns the
// report of every contact down and true. After SYN_DROPPED (events were
// lost) it discards events up to the next SYN_REPORT and then reports every
// contact lifted: a finger still down appears again when it moves.
func (d *Decoder) Feed(e Event) (touch.Report, bool) {
	if e.Type == EvSyn {
		switch e.Code {
		case SynDropped:
			d.Dropped++
			d.dropping = true
		case SynReport:
			if d.dropping {
				d.dropping = false
				d.slots = [MaxSlots]slot{}
				d.stDown, d.stReported = false, false
				d.changed = false
				return touch.Report{Time: e.Time}, true
			}
			// A pointer moving with no button (a tablet's hover) is no
			// touch and no news.
			hover := !d.mt && !d.stDown && !d.stReported
			if !d.changed || hover {
				d.changed = false
				return touch.Report{}, false
			}
			d.changed = false
			d.stReported = d.stDown
			return d.report(e.Time), true
		}
		return touch.Report{}, false
	}
	if d.dropping {
		return touch.Report{}, false
	}
	switch e.Type {
	case EvKey:
		if !d.mt && (e.Code == BtnTouch || e.Code == BtnLeft) {
			d.stDown = e.Value != 0
			d.changed = true
		}
	case EvAbs:
		if d.mt {
			d.absMT(e)
			return touch.Report{}, false
		}
		switch e.Code {
		case AbsX:
			d.stX = int(e.Value)
			d.changed = true
		case AbsY:
			d.stY = int(e.Value)
			d.changed = true
		}
	}
	return touch.Report{}, false
}

func (d *Decoder) absMT(e Event) {
	if e.Code == AbsMTSlot {
		d.cur = int(e.Value)
		return
	}
	if d.cur < 0 || d.cur >= MaxSlots {
		return
	}
	s := &d.slots[d.cur]
	switch e.Code {
	case AbsMTTrackingID:
		s.active = e.Value != trackingIDLifted
	case AbsMTPositionX:
		s.x = int(e.Value)
	case AbsMTPositionY:
		s.y = int(e.Value)
	default:
		return
	}
	d.changed = true
}

func (d *Decoder) report(t time.Time) touch.Report {
	r := touch.Report{Time: t}
	if !d.mt {
		if d.stDown {
			x, y := d.m.Map(d.stX, d.stY)
			r.Points = append(r.Points, touch.Point{X: x, Y: y})
		}
		return r
	}
	for i, s := range d.slots {
		if s.active {
			x, y := d.m.Map(s.x, s.y)
			r.Points = append(r.Points, touch.Point{ID: i, X: x, Y: y})
		}
	}
	return r
}
