// Package mgmt reads and writes IEEE 802.11 management frames (IEEE
// 802.11-2020 §9.3.3): the MAC header, Beacon and Probe Response, Probe
// Request, Authentication, (Re)Association Request and Response,
// Deauthentication and Disassociation. An access point on Linux mac80211
// builds these in user space and exchanges them with the kernel through
// nl80211 (NL80211_CMD_FRAME, NL80211_ATTR_BEACON_HEAD/TAIL); this package
// is only the byte formats, the nl80211 layer is elsewhere.
//
// Frames are given and returned without the frame check sequence (FCS), as
// nl80211 hands them over. Parsers never panic; their errors name the frame
// and the field, and the element lists they return alias the input.
package mgmt

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Errors returned by this package, wrapped with the frame and field; test
// with errors.Is. Element list errors wrap the ie package's errors instead.
var (
	// ErrShort: the frame ends before a fixed field.
	ErrShort = errors.New("mgmt: frame too short")
	// ErrNotMgmt: the Frame Control field is not of a management frame of
	// protocol version 0.
	ErrNotMgmt = errors.New("mgmt: not a management frame")
	// ErrSubtype: a management frame of another subtype than the parser's.
	ErrSubtype = errors.New("mgmt: wrong subtype")
	// ErrInvalid: a field holds a value the spec forbids.
	ErrInvalid = errors.New("mgmt: invalid field")
)

// Addr is a 48-bit IEEE MAC address as sent on the air.
type Addr [6]byte

// Broadcast is the broadcast address ff:ff:ff:ff:ff:ff, the DA of a Beacon
// and the DA and BSSID of a wildcard Probe Request.
var Broadcast = Addr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// String formats a as six lower-case hex pairs joined by colons.
func (a Addr) String() string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", a[0], a[1], a[2], a[3], a[4], a[5])
}

// Subtype is the 4-bit subtype of a management frame (IEEE 802.11-2020
// §9.2.4.1.3, Table 9-1, type 00).
type Subtype uint8

// Management frame subtypes (IEEE 802.11-2020 Table 9-1).
const (
	SubtypeAssocRequest    Subtype = 0
	SubtypeAssocResponse   Subtype = 1
	SubtypeReassocRequest  Subtype = 2
	SubtypeReassocResponse Subtype = 3
	SubtypeProbeRequest    Subtype = 4
	SubtypeProbeResponse   Subtype = 5
	SubtypeBeacon          Subtype = 8
	SubtypeATIM            Subtype = 9
	SubtypeDisassoc        Subtype = 10
	SubtypeAuth            Subtype = 11
	SubtypeDeauth          Subtype = 12
	SubtypeAction          Subtype = 13
)

var subtypeNames = [16]string{
	0: "association request", 1: "association response", 2: "reassociation request",
	3: "reassociation response", 4: "probe request", 5: "probe response", 6: "timing advertisement",
	8: "beacon", 9: "ATIM", 10: "disassociation", 11: "authentication", 12: "deauthentication",
	13: "action", 14: "action no ack",
}

// String names the subtype as the spec does, in lower case.
func (s Subtype) String() string {
	if int(s) < len(subtypeNames) && subtypeNames[s] != "" {
		return subtypeNames[s]
	}
	return fmt.Sprintf("management subtype %d", uint8(s))
}

// FrameControl is the Frame Control field (IEEE 802.11-2020 §9.2.4.1),
// as the little-endian 16-bit value: protocol version in bits 0-1, type in
// bits 2-3, subtype in 4-7, then the flags.
type FrameControl uint16

// Frame Control flag bits (IEEE 802.11-2020 §9.2.4.1.1).
const (
	FCToDS      FrameControl = 1 << 8
	FCFromDS    FrameControl = 1 << 9
	FCMoreFrag  FrameControl = 1 << 10
	FCRetry     FrameControl = 1 << 11
	FCPowerMgmt FrameControl = 1 << 12
	FCMoreData  FrameControl = 1 << 13
	FCProtected FrameControl = 1 << 14 // body encrypted (e.g. shared key auth, 802.11w)
	FCOrder     FrameControl = 1 << 15 // +HTC: an HT Control field follows the header
)

// MgmtFrameControl returns the Frame Control of a management frame of
// subtype s with no flags.
func MgmtFrameControl(s Subtype) FrameControl { return FrameControl(s&0xf) << 4 }

// Version returns the protocol version (0 for every frame in use).
func (fc FrameControl) Version() uint8 { return uint8(fc & 3) }

// Type returns the frame type: 0 management, 1 control, 2 data, 3 extension.
func (fc FrameControl) Type() uint8 { return uint8(fc>>2) & 3 }

// Subtype returns the subtype.
func (fc FrameControl) Subtype() Subtype { return Subtype(fc>>4) & 0xf }

// HeaderLen is the length of a management frame's MAC header without an HT
// Control field, octets (IEEE 802.11-2020 §9.3.3.1).
const HeaderLen = 24

// htControlLen is the length of the HT Control field present when a
// management frame has the Order bit set (IEEE 802.11-2020 §9.2.4.7).
const htControlLen = 4

// Header is the MAC header of a management frame (IEEE 802.11-2020
// §9.3.3.1): Frame Control, Duration (µs), the receiver/destination Addr1
// (DA), the transmitter/source Addr2 (SA), the BSSID Addr3, and Sequence
// Control. HTControl is only sent when FrameControl has FCOrder.
type Header struct {
	FrameControl FrameControl
	Duration     uint16 // µs the medium stays reserved; 0 in broadcast frames
	DA           Addr   // Address 1: receiver
	SA           Addr   // Address 2: transmitter
	BSSID        Addr   // Address 3
	SeqCtrl      uint16 // fragment number (bits 0-3) and sequence number (4-15)
	HTControl    uint32 // only with FCOrder
}

// Seq returns the 12-bit sequence number of SeqCtrl (IEEE 802.11-2020
// §9.2.4.4).
func (h Header) Seq() uint16 { return h.SeqCtrl >> 4 }

// Frag returns the 4-bit fragment number of SeqCtrl.
func (h Header) Frag() uint8 { return uint8(h.SeqCtrl & 0xf) }

// SeqCtrl packs a sequence number (12 bits used) and a fragment number
// (4 bits) into a Sequence Control field.
func SeqCtrl(seq uint16, frag uint8) uint16 { return seq<<4 | uint16(frag&0xf) }

// Len returns the header's length on the air: 24, or 28 with FCOrder.
func (h Header) Len() int {
	if h.FrameControl&FCOrder != 0 {
		return HeaderLen + htControlLen
	}
	return HeaderLen
}

// ParseHeader parses the MAC header at the start of a management frame and
// returns it with the frame body after it. Errors: ErrShort under 24 octets
// (28 with the Order bit), ErrNotMgmt for another type or protocol version.
func ParseHeader(b []byte) (Header, []byte, error) {
	if len(b) < 2 {
		return Header{}, nil, fmt.Errorf("%w: MAC header: frame control needs 2 octets, have %d", ErrShort, len(b))
	}
	var h Header
	h.FrameControl = FrameControl(binary.LittleEndian.Uint16(b))
	if h.FrameControl.Version() != 0 || h.FrameControl.Type() != 0 {
		return Header{}, nil, fmt.Errorf("%w: frame control %#04x is type %d version %d", ErrNotMgmt, uint16(h.FrameControl), h.FrameControl.Type(), h.FrameControl.Version())
	}
	if len(b) < h.Len() {
		return Header{}, nil, fmt.Errorf("%w: %v: MAC header needs %d octets, have %d", ErrShort, h.FrameControl.Subtype(), h.Len(), len(b))
	}
	h.Duration = binary.LittleEndian.Uint16(b[2:])
	h.DA = Addr(b[4:10])
	h.SA = Addr(b[10:16])
	h.BSSID = Addr(b[16:22])
	h.SeqCtrl = binary.LittleEndian.Uint16(b[22:])
	if h.FrameControl&FCOrder != 0 {
		h.HTControl = binary.LittleEndian.Uint32(b[24:])
	}
	return h, b[h.Len():], nil
}

// Append appends the header as sent on the air.
func (h Header) Append(b []byte) []byte {
	b = binary.LittleEndian.AppendUint16(b, uint16(h.FrameControl))
	b = binary.LittleEndian.AppendUint16(b, h.Duration)
	b = append(b, h.DA[:]...)
	b = append(b, h.SA[:]...)
	b = append(b, h.BSSID[:]...)
	b = binary.LittleEndian.AppendUint16(b, h.SeqCtrl)
	if h.FrameControl&FCOrder != 0 {
		b = binary.LittleEndian.AppendUint32(b, h.HTControl)
	}
	return b
}

// withSubtype returns h with its Frame Control set to a management frame of
// subtype s, keeping the flags: builders use it so that a caller cannot send
// a beacon labelled as something else.
func (h Header) withSubtype(s Subtype) Header {
	h.FrameControl = h.FrameControl&^0xff | MgmtFrameControl(s)
	return h
}

// parseAs parses the header and checks the subtype is one of want.
func parseAs(b []byte, name string, want ...Subtype) (Header, []byte, error) {
	h, body, err := ParseHeader(b)
	if err != nil {
		return Header{}, nil, err
	}
	for _, s := range want {
		if h.FrameControl.Subtype() == s {
			return h, body, nil
		}
	}
	return Header{}, nil, fmt.Errorf("%w: want %s, have %v", ErrSubtype, name, h.FrameControl.Subtype())
}

// Capability is the Capability Information field (IEEE 802.11-2020
// §9.4.1.4) of Beacons, Probe Responses and (Re)Association frames.
type Capability uint16

// Capability Information bits (IEEE 802.11-2020 §9.4.1.4).
const (
	CapESS              Capability = 1 << 0 // sent by an AP
	CapIBSS             Capability = 1 << 1 // sent by a station of an IBSS (ad hoc)
	CapPrivacy          Capability = 1 << 4 // confidentiality required (WEP, WPA, RSN)
	CapShortPreamble    Capability = 1 << 5 // short PHY preamble allowed (2.4 GHz DSSS)
	CapSpectrumMgmt     Capability = 1 << 8 // 802.11h
	CapQoS              Capability = 1 << 9
	CapShortSlotTime    Capability = 1 << 10 // 9 µs slots (ERP, 2.4 GHz)
	CapRadioMeasurement Capability = 1 << 12
)
