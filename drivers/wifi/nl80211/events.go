package nl80211

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// EventKind says what an Event reports.
type EventKind int

// The events Skyfleet acts on; others are reported as EventOther.
const (
	EventOther        EventKind = iota
	EventConnect                // a CONNECT finished: Status 0 is success
	EventDisconnect             // the link to the AP was lost or dropped
	EventScanDone               // new scan results are available
	EventScanAborted            // a scan was cut short
	EventJoinIBSS               // the IBSS was joined; MAC is its BSSID
	EventNewStation             // a peer appeared (IBSS member, AP's station)
	EventDelStation             // a peer went away
	EventNewInterface           // a Wi-Fi interface appeared
	EventDelInterface           // a Wi-Fi interface went away (radio unplugged)
	EventRegChange              // the regulatory domain changed
)

var eventNames = [...]string{"other", "connect", "disconnect", "scan-done", "scan-aborted", "join-ibss", "new-station", "del-station", "new-interface", "del-interface", "reg-change"}

// String names the kind, e.g. "disconnect".
func (k EventKind) String() string {
	if k >= 0 && int(k) < len(eventNames) {
		return eventNames[k]
	}
	return fmt.Sprintf("event %d", int(k))
}

// Event is one nl80211 notification.
type Event struct {
	Kind    EventKind
	Cmd     uint8 // the nl80211 command number, for EventOther
	Ifindex int   // 0 when the event names none
	// MAC is the BSSID (connect, disconnect, join) or the peer (station
	// events); nil when absent.
	MAC net.HardwareAddr
	// Status is the IEEE 802.11 status code of a connect (0 = success;
	// §9.4.1.9); TimedOut is set when the AP never answered.
	Status   uint16
	TimedOut bool
	// Reason is the reason code of a disconnect (§9.4.1.7); ByAP is set when
	// the AP sent it, rather than our side or a lost link.
	Reason uint16
	ByAP   bool
	// Country is the alpha-2 of a regulatory change.
	Country string
}

// Events is a socket subscribed to nl80211's multicast groups: "mlme"
// (connect, disconnect, stations), "scan" and "config" (interfaces
// appearing and going), "regulatory".
type Events struct {
	c *genetlink.Conn
}

// Events opens a new socket that receives every event of the network
// namespace it is dialled in.
func (c *Conn) Events() (*Events, error) {
	conn, err := genetlink.Dial(nil)
	if err != nil {
		return nil, fmt.Errorf("nl80211: events socket: %w", err)
	}
	for _, g := range c.family.Groups {
		switch g.Name {
		case unix.NL80211_MULTICAST_GROUP_MLME, unix.NL80211_MULTICAST_GROUP_SCAN,
			unix.NL80211_MULTICAST_GROUP_CONFIG, unix.NL80211_MULTICAST_GROUP_REG:
			if err := conn.JoinGroup(g.ID); err != nil {
				conn.Close()
				return nil, fmt.Errorf("nl80211: join group %s: %w", g.Name, err)
			}
		}
	}
	return &Events{c: conn}, nil
}

// Receive blocks until the kernel sends events, or the deadline set with
// SetDeadline passes (then it returns an error wrapping os.ErrDeadlineExceeded).
func (e *Events) Receive() ([]Event, error) {
	msgs, _, err := e.c.Receive()
	if err != nil {
		return nil, err
	}
	out := make([]Event, 0, len(msgs))
	for _, m := range msgs {
		ev, err := ParseEvent(m.Header.Command, m.Data)
		if err != nil {
			continue // a malformed notification is dropped, not fatal
		}
		out = append(out, ev)
	}
	return out, nil
}

// SetDeadline bounds Receive.
func (e *Events) SetDeadline(t time.Time) error { return e.c.SetReadDeadline(t) }

// Close closes the socket; a blocked Receive returns an error.
func (e *Events) Close() error { return e.c.Close() }

// ParseEvent decodes one nl80211 notification: cmd is the genetlink
// command, data its attributes. Attributes of the wrong size are an error.
func ParseEvent(cmd uint8, data []byte) (Event, error) {
	ev := Event{Cmd: cmd}
	switch cmd {
	case unix.NL80211_CMD_CONNECT:
		ev.Kind = EventConnect
	case unix.NL80211_CMD_DISCONNECT:
		ev.Kind = EventDisconnect
	case unix.NL80211_CMD_NEW_SCAN_RESULTS:
		ev.Kind = EventScanDone
	case unix.NL80211_CMD_SCAN_ABORTED:
		ev.Kind = EventScanAborted
	case unix.NL80211_CMD_JOIN_IBSS:
		ev.Kind = EventJoinIBSS
	case unix.NL80211_CMD_NEW_STATION:
		ev.Kind = EventNewStation
	case unix.NL80211_CMD_DEL_STATION:
		ev.Kind = EventDelStation
	case unix.NL80211_CMD_NEW_INTERFACE:
		ev.Kind = EventNewInterface
	case unix.NL80211_CMD_DEL_INTERFACE:
		ev.Kind = EventDelInterface
	case unix.NL80211_CMD_REG_CHANGE:
		ev.Kind = EventRegChange
	}
	attrs, err := netlink.UnmarshalAttributes(data)
	if err != nil {
		return Event{}, fmt.Errorf("nl80211: event: %w", err)
	}
	for _, a := range attrs {
		d := a.Data
		want := 0
		switch a.Type {
		case unix.NL80211_ATTR_IFINDEX:
			want = 4
			if len(d) == 4 {
				ev.Ifindex = int(binary.NativeEndian.Uint32(d))
			}
		case unix.NL80211_ATTR_MAC:
			want = 6
			if len(d) == 6 {
				ev.MAC = append(net.HardwareAddr(nil), d...)
			}
		case unix.NL80211_ATTR_STATUS_CODE:
			want = 2
			if len(d) == 2 {
				ev.Status = binary.NativeEndian.Uint16(d)
			}
		case unix.NL80211_ATTR_TIMED_OUT:
			ev.TimedOut = true
		case unix.NL80211_ATTR_REASON_CODE:
			want = 2
			if len(d) == 2 {
				ev.Reason = binary.NativeEndian.Uint16(d)
			}
		case unix.NL80211_ATTR_DISCONNECTED_BY_AP:
			ev.ByAP = true
		case unix.NL80211_ATTR_REG_ALPHA2:
			s := string(d)
			for len(s) > 0 && s[len(s)-1] == 0 {
				s = s[:len(s)-1]
			}
			if len(s) <= 3 {
				ev.Country = s
			}
		}
		if want != 0 && len(d) != want {
			return Event{}, fmt.Errorf("nl80211: event attribute %d has %d bytes, want %d", a.Type, len(d), want)
		}
	}
	if ev.Kind == EventConnect && ev.TimedOut && ev.Status == 0 {
		// No answer at all: report it as the generic failure, never success.
		ev.Status = 1
	}
	return ev, nil
}

// Management frame types for RegisterFrame (IEEE 802.11-2020 §9.2.4.1.3):
// the frame control field's type and subtype bits, as nl80211 wants them.
const (
	FrameAssocReq   uint16 = 0x0000
	FrameReassocReq uint16 = 0x0020
	FrameProbeReq   uint16 = 0x0040
	FrameDisassoc   uint16 = 0x00a0
	FrameAuth       uint16 = 0x00b0
	FrameDeauth     uint16 = 0x00c0
	FrameAction     uint16 = 0x00d0
)

// Frame is a management frame the kernel passed up.
type Frame struct {
	Data      []byte // the whole frame from its MAC header on, no FCS
	Frequency int    // MHz it was heard on
	SignalDBm int    // 0 when unknown
}

// Frames is a socket on which management frames of one interface are
// registered (NL80211_CMD_REGISTER_FRAME): the kernel hands those frames
// to it instead of answering them, and an AP without APSME answers them
// through Send. Registrations end when the socket is closed.
type Frames struct {
	c       *genetlink.Conn
	family  genetlink.Family
	ifindex int
	early   []Frame // frames that came while registering
}

// maxEarlyFrames caps the frames kept while registrations are acknowledged.
const maxEarlyFrames = 64

// ListenFrames opens a Frames socket for ifindex and registers each of
// types (FrameAuth, FrameAssocReq, ...), matching any body.
func (c *Conn) ListenFrames(ifindex int, types ...uint16) (*Frames, error) {
	conn, err := genetlink.Dial(nil)
	if err != nil {
		return nil, fmt.Errorf("nl80211: frames socket: %w", err)
	}
	f := &Frames{c: conn, family: c.family, ifindex: ifindex}
	for _, t := range types {
		if err := f.register(t); err != nil {
			conn.Close()
			return nil, err
		}
	}
	return f, nil
}

// register sends one REGISTER_FRAME and reads until its acknowledgement,
// keeping frames that arrive meanwhile (a netlink.Conn.Execute would
// reject them as replies out of sequence).
func (f *Frames) register(t uint16) error {
	data, err := encode(func(ae *netlink.AttributeEncoder) {
		ae.Uint32(unix.NL80211_ATTR_IFINDEX, uint32(f.ifindex))
		ae.Uint16(unix.NL80211_ATTR_FRAME_TYPE, t)
		ae.Bytes(unix.NL80211_ATTR_FRAME_MATCH, nil)
	})
	if err != nil {
		return &Error{Cmd: "REGISTER_FRAME", Err: err}
	}
	req, err := f.c.Send(genetlink.Message{
		Header: genetlink.Header{Command: unix.NL80211_CMD_REGISTER_FRAME, Version: f.family.Version},
		Data:   data,
	}, f.family.ID, netlink.Request|netlink.Acknowledge)
	if err != nil {
		return &Error{Cmd: "REGISTER_FRAME", Err: unwrapOpError(err)}
	}
	if err := f.c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return err
	}
	defer f.c.SetReadDeadline(time.Time{})
	for {
		gmsgs, nmsgs, err := f.c.Receive()
		if err != nil {
			// Nothing else is outstanding on this socket: an error
			// message is the answer to the registration.
			return &Error{Cmd: "REGISTER_FRAME", Err: unwrapOpError(err)}
		}
		for i, nm := range nmsgs {
			if nm.Header.Type == netlink.Error && nm.Header.Sequence == req.Header.Sequence {
				return nil
			}
			if fr, ok := frameOf(gmsgs[i]); ok && len(f.early) < maxEarlyFrames {
				f.early = append(f.early, fr)
			}
		}
	}
}

// frameOf returns the frame of an NL80211_CMD_FRAME message.
func frameOf(m genetlink.Message) (Frame, bool) {
	if m.Header.Command != unix.NL80211_CMD_FRAME {
		return Frame{}, false
	}
	fr, err := ParseFrame(m.Data)
	return fr, err == nil && fr.Data != nil
}

// ParseFrame decodes the attributes of an NL80211_CMD_FRAME notification.
func ParseFrame(data []byte) (Frame, error) {
	var fr Frame
	attrs, err := netlink.UnmarshalAttributes(data)
	if err != nil {
		return Frame{}, fmt.Errorf("nl80211: frame: %w", err)
	}
	for _, a := range attrs {
		switch a.Type {
		case unix.NL80211_ATTR_FRAME:
			fr.Data = append([]byte(nil), a.Data...)
		case unix.NL80211_ATTR_WIPHY_FREQ:
			if len(a.Data) != 4 {
				return Frame{}, errors.New("nl80211: frame frequency attribute is not 4 bytes")
			}
			fr.Frequency = int(binary.NativeEndian.Uint32(a.Data))
		case unix.NL80211_ATTR_RX_SIGNAL_DBM:
			if len(a.Data) != 4 {
				return Frame{}, errors.New("nl80211: frame signal attribute is not 4 bytes")
			}
			fr.SignalDBm = int(int32(binary.NativeEndian.Uint32(a.Data)))
		}
	}
	return fr, nil
}

// Receive blocks until a registered frame arrives. Replies to Send (the
// frame's cookie, its TX status) are consumed silently; a refused Send
// shows up here as an *Error.
func (f *Frames) Receive() (Frame, error) {
	for {
		if len(f.early) > 0 {
			fr := f.early[0]
			f.early = f.early[1:]
			return fr, nil
		}
		gmsgs, _, err := f.c.Receive()
		if err != nil {
			return Frame{}, &Error{Cmd: "FRAME", Err: unwrapOpError(err)}
		}
		for _, m := range gmsgs {
			if fr, ok := frameOf(m); ok {
				f.early = append(f.early, fr)
			}
		}
	}
}

// Send transmits a management frame (NL80211_CMD_FRAME) on the interface's
// channel: frame is the whole frame from its MAC header on. It does not
// wait for the kernel's answer (see Receive).
func (f *Frames) Send(frame []byte) error {
	data, err := encode(func(ae *netlink.AttributeEncoder) {
		ae.Uint32(unix.NL80211_ATTR_IFINDEX, uint32(f.ifindex))
		ae.Bytes(unix.NL80211_ATTR_FRAME, frame)
	})
	if err != nil {
		return &Error{Cmd: "FRAME", Err: err}
	}
	_, err = f.c.Send(genetlink.Message{
		Header: genetlink.Header{Command: unix.NL80211_CMD_FRAME, Version: f.family.Version},
		Data:   data,
	}, f.family.ID, netlink.Request)
	if err != nil {
		return &Error{Cmd: "FRAME", Err: unwrapOpError(err)}
	}
	return nil
}

// SetDeadline bounds Receive.
func (f *Frames) SetDeadline(t time.Time) error { return f.c.SetReadDeadline(t) }

// Close ends the registrations; a blocked Receive returns an error.
func (f *Frames) Close() error { return f.c.Close() }
