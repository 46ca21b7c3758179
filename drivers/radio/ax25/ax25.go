// Package ax25 encodes and decodes AX.25 2.2 UI frames (the frames APRS and
// Skyfleet's radio links send) and their TNC2 monitor text, the one-line form
// Direwolf, multimon-ng and most TNCs print. It knows framing only: no bit
// stuffing or flags (the modem's), no KISS (package kiss), no policy.
//
// A frame on the wire, between the HDLC flags (AX.25 2.2 §3):
//
//	destination (7) | source (7) | 0-8 digipeaters (7 each) | control | PID | info | FCS (2)
//
// Each address is six callsign characters shifted left one bit and padded with
// spaces, then an SSID byte: bit 7 the C bit (destination, source: command or
// response, §6.1.2) or H bit (a digipeater: has been repeated, §3.12.4), bits 6-5
// reserved (1 1), bits 4-1 the SSID, bit 0 set on the last address only (§3.12).
// The FCS is CRC-16/X.25 over everything before it, sent low byte first
// (§3.8).
package ax25

import (
	"errors"
	"fmt"
)

// Field values of a UI frame (AX.25 2.2 §4.3.3.6, §3.4).
const (
	// ControlUI is the control field of a UI frame with P/F clear; with the
	// P/F bit (0x10) set it is 0x13, which Decode also takes.
	ControlUI = 0x03
	// PIDNoLayer3 is the PID of a frame with no layer-3 protocol (APRS).
	PIDNoLayer3 = 0xF0
)

// Limits.
const (
	// MaxDigipeaters is the most digipeater addresses a frame may carry
	// (AX.25 2.2 §3.12.5).
	MaxDigipeaters = 8
	// MaxInfo is the longest info field Encode and Decode accept, in bytes:
	// AX.25's default N1 is 256 octets; 2048 leaves room for TNCs set higher.
	MaxInfo = 2048
	// addrLen is the bytes of one address field.
	addrLen = 7
	// MinFrame is the shortest valid frame in bytes: two addresses, control,
	// PID and FCS.
	MinFrame = 2*addrLen + 2 + 2
)

// Errors of Decode and Encode. Each wraps more detail.
var (
	ErrShort   = errors.New("ax25: frame too short")
	ErrFCS     = errors.New("ax25: FCS mismatch")
	ErrAddress = errors.New("ax25: bad address field")
	ErrNotUI   = errors.New("ax25: not a UI frame")
	ErrInfo    = errors.New("ax25: info field too long")
)

// Address is one address field: a callsign and its SSID, and the bit 7 of its
// SSID byte.
type Address struct {
	// Call is 1 to 6 upper-case letters and digits.
	Call string
	// SSID is the secondary station identifier, 0 to 15.
	SSID uint8
	// CH is bit 7 of the SSID byte: the C bit of the destination or source
	// (AX.25 2.2 §6.1.2: a command has it set in the destination, clear in
	// the source), the H bit of a digipeater (it has repeated the frame).
	CH bool
	// Reserved is bits 6-5 of the SSID byte, 0 to 3. AX.25 2.2 sets them to
	// 1 1 (NewUI and ParseTNC2 do); some stations use them otherwise, and
	// Decode keeps what it read so a frame re-encodes byte for byte.
	Reserved uint8
}

// ParseAddress reads "CALL" or "CALL-SSID" (SSID 0 to 15), the callsign in
// either case (it is stored upper-case).
func ParseAddress(s string) (Address, error) {
	call, ssid := s, 0
	for i := 0; i < len(s); i++ {
		if s[i] == '-' {
			call = s[:i]
			n, err := parseSSID(s[i+1:])
			if err != nil {
				return Address{}, fmt.Errorf("%w: %q: %v", ErrAddress, s, err)
			}
			ssid = n
			break
		}
	}
	up := make([]byte, len(call))
	for i := 0; i < len(call); i++ {
		c := call[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		up[i] = c
	}
	a := Address{Call: string(up), SSID: uint8(ssid)}
	if err := a.check(); err != nil {
		return Address{}, err
	}
	return a, nil
}

func parseSSID(s string) (int, error) {
	if s == "" || len(s) > 2 {
		return 0, errors.New("the SSID is 0 to 15")
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("the SSID is 0 to 15")
		}
		n = n*10 + int(s[i]-'0')
	}
	if n > 15 {
		return 0, errors.New("the SSID is 0 to 15")
	}
	return n, nil
}

// check reports whether a can be encoded: a callsign of 1 to 6 upper-case
// letters and digits, an SSID up to 15, reserved bits up to 3.
func (a Address) check() error {
	if len(a.Call) < 1 || len(a.Call) > 6 {
		return fmt.Errorf("%w: callsign %q is not 1 to 6 characters", ErrAddress, a.Call)
	}
	for i := 0; i < len(a.Call); i++ {
		if c := a.Call[i]; !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return fmt.Errorf("%w: callsign %q holds %q: only A-Z and 0-9", ErrAddress, a.Call, c)
		}
	}
	if a.SSID > 15 {
		return fmt.Errorf("%w: SSID %d of %s is not 0 to 15", ErrAddress, a.SSID, a.Call)
	}
	if a.Reserved > 3 {
		return fmt.Errorf("%w: reserved bits %d of %s", ErrAddress, a.Reserved, a.Call)
	}
	return nil
}

// String is "CALL" for SSID 0, else "CALL-SSID".
func (a Address) String() string {
	if a.SSID == 0 {
		return a.Call
	}
	return fmt.Sprintf("%s-%d", a.Call, a.SSID)
}

// appendField appends a's 7-byte address field; last sets the extension bit.
func (a Address) appendField(b []byte, last bool) []byte {
	for i := 0; i < 6; i++ {
		c := byte(' ')
		if i < len(a.Call) {
			c = a.Call[i]
		}
		b = append(b, c<<1)
	}
	s := a.Reserved<<5 | a.SSID<<1
	if a.CH {
		s |= 0x80
	}
	if last {
		s |= 0x01
	}
	return append(b, s)
}

// parseField reads one 7-byte address field and whether it is the last.
func parseField(f []byte) (Address, bool, error) {
	var call [6]byte
	n := 0
	for i := 0; i < 6; i++ {
		if f[i]&1 != 0 {
			return Address{}, false, fmt.Errorf("%w: the extension bit is set inside a callsign", ErrAddress)
		}
		c := f[i] >> 1
		if c == ' ' {
			// Padding: only spaces may follow.
			for j := i + 1; j < 6; j++ {
				if f[j] != ' '<<1 {
					return Address{}, false, fmt.Errorf("%w: a space inside a callsign", ErrAddress)
				}
			}
			break
		}
		call[n] = c
		n++
	}
	s := f[6]
	a := Address{Call: string(call[:n]), SSID: (s >> 1) & 0x0F, CH: s&0x80 != 0, Reserved: (s >> 5) & 0x03}
	if err := a.check(); err != nil {
		return Address{}, false, err
	}
	return a, s&0x01 != 0, nil
}

// Frame is a UI frame.
type Frame struct {
	// Dst and Src are the destination and source; Path the digipeaters, in
	// the order they repeat the frame (at most MaxDigipeaters).
	Dst, Src Address
	Path     []Address
	// Control is ControlUI, or 0x13 with the P/F bit; PID is usually
	// PIDNoLayer3. Encode writes ControlUI and PIDNoLayer3 for zero values.
	Control, PID byte
	// Info is the information field, at most MaxInfo bytes.
	Info []byte
}

// NewUI is a UI frame from src to dst through path, as AX.25 2.2 sends a
// command: the destination's C bit set, the source's clear, every reserved bit
// pair 1 1, no digipeater repeated yet.
func NewUI(dst, src Address, path []Address, info []byte) *Frame {
	f := &Frame{Dst: dst, Src: src, Path: append([]Address(nil), path...), Control: ControlUI, PID: PIDNoLayer3, Info: info}
	f.Dst.CH, f.Src.CH = true, false
	f.Dst.Reserved, f.Src.Reserved = 3, 3
	for i := range f.Path {
		f.Path[i].CH, f.Path[i].Reserved = false, 3
	}
	return f
}

// Encode returns the frame's bytes from the destination address to the FCS
// (AX.25 2.2 §3), ready for bit stuffing or KISS. Errors wrap ErrAddress (a
// callsign, SSID or path that cannot be sent), ErrNotUI (a control field other
// than 0x03 or 0x13) or ErrInfo.
func (f *Frame) Encode() ([]byte, error) {
	return f.AppendEncode(nil)
}

// AppendEncode is Encode appending to b.
func (f *Frame) AppendEncode(b []byte) ([]byte, error) {
	if len(f.Path) > MaxDigipeaters {
		return b, fmt.Errorf("%w: %d digipeaters (at most %d)", ErrAddress, len(f.Path), MaxDigipeaters)
	}
	if len(f.Info) > MaxInfo {
		return b, fmt.Errorf("%w: %d bytes (at most %d)", ErrInfo, len(f.Info), MaxInfo)
	}
	ctl, pid := f.Control, f.PID
	if ctl == 0 {
		ctl = ControlUI
	}
	if pid == 0 {
		pid = PIDNoLayer3
	}
	if ctl&^0x10 != ControlUI {
		return b, fmt.Errorf("%w: control 0x%02x", ErrNotUI, ctl)
	}
	addrs := append([]Address{f.Dst, f.Src}, f.Path...)
	for _, a := range addrs {
		if err := a.check(); err != nil {
			return b, err
		}
	}
	start := len(b)
	for i, a := range addrs {
		b = a.appendField(b, i == len(addrs)-1)
	}
	b = append(b, ctl, pid)
	b = append(b, f.Info...)
	fcs := FCS(b[start:])
	return append(b, byte(fcs), byte(fcs>>8)), nil
}

// Decode parses a frame from the destination address to the FCS and checks the
// FCS. Info aliases b. Errors: ErrShort, ErrFCS (the frame is damaged: count
// and drop it), ErrAddress (no end of the address field within ten addresses,
// or a malformed callsign), ErrNotUI (another frame type, which Skyfleet does
// not use), ErrInfo.
func Decode(b []byte) (*Frame, error) {
	if len(b) < MinFrame {
		return nil, fmt.Errorf("%w: %d bytes (at least %d)", ErrShort, len(b), MinFrame)
	}
	body := b[:len(b)-2]
	if got, want := uint16(b[len(b)-2])|uint16(b[len(b)-1])<<8, FCS(body); got != want {
		return nil, fmt.Errorf("%w: 0x%04x, computed 0x%04x", ErrFCS, got, want)
	}
	var addrs []Address
	off := 0
	for {
		if len(addrs) == 2+MaxDigipeaters {
			return nil, fmt.Errorf("%w: more than %d digipeaters", ErrAddress, MaxDigipeaters)
		}
		if off+addrLen > len(body) {
			return nil, fmt.Errorf("%w: the address field does not end", ErrShort)
		}
		a, last, err := parseField(body[off : off+addrLen])
		if err != nil {
			return nil, err
		}
		addrs = append(addrs, a)
		off += addrLen
		if last {
			break
		}
	}
	if len(addrs) < 2 {
		return nil, fmt.Errorf("%w: the address field ends after the destination", ErrAddress)
	}
	if off >= len(body) {
		return nil, fmt.Errorf("%w: no control field", ErrShort)
	}
	ctl := body[off]
	if ctl&^0x10 != ControlUI {
		return nil, fmt.Errorf("%w: control 0x%02x", ErrNotUI, ctl)
	}
	if off+1 >= len(body) {
		return nil, fmt.Errorf("%w: no PID", ErrShort)
	}
	info := body[off+2:]
	if len(info) > MaxInfo {
		return nil, fmt.Errorf("%w: %d bytes (at most %d)", ErrInfo, len(info), MaxInfo)
	}
	f := &Frame{Dst: addrs[0], Src: addrs[1], Control: ctl, PID: body[off+1], Info: info}
	if len(addrs) > 2 {
		f.Path = addrs[2:]
	}
	return f, nil
}
