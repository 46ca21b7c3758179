package mgmt

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/skyfleet/skyfleet/drivers/wifi/ie"
)

// Frame is any management frame this package parses; Parse returns one of
// Beacon, ProbeRequest, Auth, AssocRequest, AssocResponse, ReasonFrame or
// Other, by value.
type Frame interface {
	// MACHeader returns the frame's MAC header.
	MACHeader() Header
}

// Parse parses a management frame of any subtype into its type (see Frame).
// Subtypes without a parser here (Action, ATIM, ...) come back as Other.
// Errors are those of the subtype's parser; when only the element list is
// bad, the frame is returned too, with the elements before the fault.
func Parse(b []byte) (Frame, error) {
	h, body, err := ParseHeader(b)
	if err != nil {
		return nil, err
	}
	switch h.FrameControl.Subtype() {
	case SubtypeBeacon, SubtypeProbeResponse:
		return retFrame(ParseBeacon(b))
	case SubtypeProbeRequest:
		return retFrame(ParseProbeRequest(b))
	case SubtypeAuth:
		return retFrame(ParseAuth(b))
	case SubtypeAssocRequest, SubtypeReassocRequest:
		return retFrame(ParseAssocRequest(b))
	case SubtypeAssocResponse, SubtypeReassocResponse:
		return retFrame(ParseAssocResponse(b))
	case SubtypeDeauth, SubtypeDisassoc:
		return retFrame(ParseReasonFrame(b))
	}
	return Other{Header: h, Body: body}, nil
}

// retFrame keeps the frame only when it was read up to its elements, so
// that a nil Frame means nothing usable could be read.
func retFrame[F Frame](f F, err error) (Frame, error) {
	if err != nil && !errors.Is(err, ie.ErrTruncated) && !errors.Is(err, ie.ErrMalformed) {
		return nil, err
	}
	return f, err
}

// Other is a management frame of a subtype this package does not parse: the
// header and the raw body.
type Other struct {
	Header Header
	Body   []byte
}

// MACHeader returns the frame's MAC header.
func (f Other) MACHeader() Header { return f.Header }

// parseElements parses a frame's element list, naming the frame in errors.
func parseElements(name string, b []byte) (ie.Elements, error) {
	es, err := ie.Parse(b)
	if err != nil {
		return es, fmt.Errorf("mgmt: %s: elements: %w", name, err)
	}
	return es, nil
}

func short(name, field string, need, have int) error {
	return fmt.Errorf("%w: %s: %s needs %d octets, have %d", ErrShort, name, field, need, have)
}

// Beacon is a Beacon or Probe Response frame (IEEE 802.11-2020 §9.3.3.2,
// §9.3.3.10), which share their fixed fields: Timestamp (the TSF timer, in
// µs), Beacon Interval (in TUs of 1024 µs), Capability Information, then
// the elements in the order the Beacon frame body table of §9.3.3.2 gives.
type Beacon struct {
	Header         Header
	ProbeResponse  bool   // subtype 5 rather than 8
	Timestamp      uint64 // TSF, µs; mac80211 overwrites it on transmission
	BeaconInterval uint16 // TUs (1 TU = 1024 µs); 100 is usual
	Capability     Capability
	Elements       ie.Elements
}

// MACHeader returns the frame's MAC header.
func (f Beacon) MACHeader() Header { return f.Header }

const beaconFixed = 12

// ParseBeacon parses a Beacon or a Probe Response (see Beacon). Errors:
// those of ParseHeader, ErrSubtype, ErrShort under the 12 octets of fixed
// fields; an element list error (ie.ErrTruncated, ie.ErrMalformed) comes
// with the frame and the elements before the fault.
func ParseBeacon(b []byte) (Beacon, error) {
	h, body, err := parseAs(b, "beacon or probe response", SubtypeBeacon, SubtypeProbeResponse)
	if err != nil {
		return Beacon{}, err
	}
	name := h.FrameControl.Subtype().String()
	if len(body) < beaconFixed {
		return Beacon{}, short(name, "timestamp, beacon interval and capability", beaconFixed, len(body))
	}
	f := Beacon{
		Header:         h,
		ProbeResponse:  h.FrameControl.Subtype() == SubtypeProbeResponse,
		Timestamp:      binary.LittleEndian.Uint64(body),
		BeaconInterval: binary.LittleEndian.Uint16(body[8:]),
		Capability:     Capability(binary.LittleEndian.Uint16(body[10:])),
	}
	f.Elements, err = parseElements(name, body[beaconFixed:])
	return f, err
}

// Append appends the frame as a Beacon, or a Probe Response if
// ProbeResponse; the subtype in Header.FrameControl is set to match. Errors:
// those of ie.Elements.Append.
func (f Beacon) Append(b []byte) ([]byte, error) {
	s := SubtypeBeacon
	if f.ProbeResponse {
		s = SubtypeProbeResponse
	}
	b = f.Header.withSubtype(s).Append(b)
	b = binary.LittleEndian.AppendUint64(b, f.Timestamp)
	b = binary.LittleEndian.AppendUint16(b, f.BeaconInterval)
	b = binary.LittleEndian.AppendUint16(b, uint16(f.Capability))
	return f.Elements.Append(b)
}

// beforeTIM reports whether an element goes between the fixed fields and
// the TIM in a Beacon (IEEE 802.11-2020 §9.3.3.2), FH Parameter Set (2)
// included for old frames.
func beforeTIM(e ie.Element) bool {
	switch e.ID {
	case ie.IDSSID, ie.IDSupportedRates, 2 /* FH Parameter Set */, ie.IDDSParams, ie.IDCFParams, ie.IDIBSSParams:
		return true
	}
	return false
}

// HeadTail builds f as a Beacon and splits it as nl80211 takes it for
// NL80211_CMD_START_AP and NL80211_CMD_SET_BEACON: NL80211_ATTR_BEACON_HEAD
// is the part before the TIM element, NL80211_ATTR_BEACON_TAIL the part
// after it, and mac80211 writes the TIM between them at every beacon as
// stations doze and wake. So head is the MAC header, the fixed fields and the
// elements that precede the TIM in §9.3.3.2 (SSID, Supported Rates, DSSS
// and IBSS Parameter Sets), tail is the rest (Country, ERP, Extended
// Supported Rates, RSN, HT...). Errors: ErrInvalid if f has a TIM element or
// puts a pre-TIM element after a later one; those of Append.
func (f Beacon) HeadTail() (head, tail []byte, err error) {
	f.ProbeResponse = false
	split := len(f.Elements)
	for i, e := range f.Elements {
		if e.ID == ie.IDTIM {
			return nil, nil, fmt.Errorf("%w: beacon: TIM element given, but the kernel inserts it", ErrInvalid)
		}
		if split == len(f.Elements) && !beforeTIM(e) {
			split = i
		}
		if i > split && beforeTIM(e) {
			return nil, nil, fmt.Errorf("%w: beacon: element %d after element %d, but it goes before the TIM", ErrInvalid, e.ID, f.Elements[split].ID)
		}
	}
	rest := f.Elements[split:]
	f.Elements = f.Elements[:split]
	if head, err = f.Append(nil); err != nil {
		return nil, nil, err
	}
	if tail, err = rest.Append(nil); err != nil {
		return nil, nil, err
	}
	return head, tail, nil
}

// AsProbeResponse returns f as the Probe Response an AP sends to da, the
// Probe Request's SA: same fixed fields and elements, addressed to one
// station. f must not carry a TIM, which Probe Responses do not have
// (IEEE 802.11-2020 §9.3.3.10); HeadTail refuses one for the same reason.
func (f Beacon) AsProbeResponse(da Addr) Beacon {
	f.ProbeResponse = true
	f.Header.DA = da
	return f
}

// ProbeRequest is a Probe Request frame (IEEE 802.11-2020 §9.3.3.9): no
// fixed fields, then SSID, Supported Rates and further elements. The SSID
// element is empty in a wildcard probe, which every AP answers.
type ProbeRequest struct {
	Header   Header
	Elements ie.Elements
}

// MACHeader returns the frame's MAC header.
func (f ProbeRequest) MACHeader() Header { return f.Header }

// ParseProbeRequest parses a Probe Request. Errors: those of ParseHeader,
// ErrSubtype; an element list error comes with the frame and the elements
// before the fault.
func ParseProbeRequest(b []byte) (ProbeRequest, error) {
	h, body, err := parseAs(b, "probe request", SubtypeProbeRequest)
	if err != nil {
		return ProbeRequest{}, err
	}
	f := ProbeRequest{Header: h}
	f.Elements, err = parseElements("probe request", body)
	return f, err
}

// Wildcard reports whether the probe asks every BSS to answer: its SSID
// element is present and empty (IEEE 802.11-2020 §9.4.2.2).
func (f ProbeRequest) Wildcard() bool {
	s, err := f.Elements.SSID()
	return err == nil && len(s) == 0
}

// Append appends the frame as a Probe Request. Errors: those of
// ie.Elements.Append.
func (f ProbeRequest) Append(b []byte) ([]byte, error) {
	b = f.Header.withSubtype(SubtypeProbeRequest).Append(b)
	return f.Elements.Append(b)
}

// AuthAlgorithm is the Authentication Algorithm Number field (IEEE
// 802.11-2020 §9.4.1.1).
type AuthAlgorithm uint16

// Authentication algorithms (IEEE 802.11-2020 §9.4.1.1).
const (
	AuthOpenSystem AuthAlgorithm = 0
	AuthSharedKey  AuthAlgorithm = 1
	AuthFT         AuthAlgorithm = 2
	AuthSAE        AuthAlgorithm = 3
)

// Auth is an Authentication frame (IEEE 802.11-2020 §9.3.3.12): algorithm,
// transaction sequence number, status, then algorithm-dependent fields. In
// open system authentication the STA sends sequence 1 with status 0 and the
// AP answers sequence 2 with the result. For SAE the rest is scalars and
// group elements, not information elements, and is kept raw in SAE.
type Auth struct {
	Header    Header
	Algorithm AuthAlgorithm
	Seq       uint16 // authentication transaction sequence number, from 1
	Status    StatusCode
	Elements  ie.Elements // after the fixed fields, unless Algorithm is SAE
	SAE       []byte      // after the fixed fields, only for SAE
}

// MACHeader returns the frame's MAC header.
func (f Auth) MACHeader() Header { return f.Header }

const authFixed = 6

// ParseAuth parses an Authentication frame. Errors: those of ParseHeader,
// ErrSubtype, ErrShort under 6 octets of fixed fields; an element list error
// comes with the frame and the elements before the fault.
func ParseAuth(b []byte) (Auth, error) {
	h, body, err := parseAs(b, "authentication", SubtypeAuth)
	if err != nil {
		return Auth{}, err
	}
	if len(body) < authFixed {
		return Auth{}, short("authentication", "algorithm, sequence and status", authFixed, len(body))
	}
	f := Auth{
		Header:    h,
		Algorithm: AuthAlgorithm(binary.LittleEndian.Uint16(body)),
		Seq:       binary.LittleEndian.Uint16(body[2:]),
		Status:    StatusCode(binary.LittleEndian.Uint16(body[4:])),
	}
	rest := body[authFixed:]
	if f.Algorithm == AuthSAE {
		f.SAE = rest
		return f, nil
	}
	f.Elements, err = parseElements("authentication", rest)
	return f, err
}

// Append appends the frame as an Authentication frame. Errors: those of
// ie.Elements.Append.
func (f Auth) Append(b []byte) ([]byte, error) {
	b = f.Header.withSubtype(SubtypeAuth).Append(b)
	b = binary.LittleEndian.AppendUint16(b, uint16(f.Algorithm))
	b = binary.LittleEndian.AppendUint16(b, f.Seq)
	b = binary.LittleEndian.AppendUint16(b, uint16(f.Status))
	if f.Algorithm == AuthSAE {
		return append(b, f.SAE...), nil
	}
	return f.Elements.Append(b)
}

// OpenAuthResponse returns the AP's answer to an open system
// Authentication request: to the requester, from bssid, sequence 2 with
// status (IEEE 802.11-2020 §9.3.3.12).
func OpenAuthResponse(req Auth, bssid Addr, status StatusCode) Auth {
	return Auth{
		Header:    Header{FrameControl: MgmtFrameControl(SubtypeAuth), DA: req.Header.SA, SA: bssid, BSSID: bssid},
		Algorithm: AuthOpenSystem,
		Seq:       2,
		Status:    status,
	}
}

// AssocRequest is an Association Request (IEEE 802.11-2020 §9.3.3.5) or,
// with Reassoc, a Reassociation Request (§9.3.3.7), which adds the Current
// AP Address between the listen interval and the elements. The elements
// start with SSID and Supported Rates and carry the STA's RSN element.
type AssocRequest struct {
	Header         Header
	Reassoc        bool
	Capability     Capability
	ListenInterval uint16 // how often the STA wakes for beacons, in beacon intervals
	CurrentAP      Addr   // reassociation only: the AP the STA is associated with
	Elements       ie.Elements
}

// MACHeader returns the frame's MAC header.
func (f AssocRequest) MACHeader() Header { return f.Header }

// ParseAssocRequest parses an Association or Reassociation Request. Errors:
// those of ParseHeader, ErrSubtype, ErrShort under 4 octets of fixed fields
// (10 for reassociation); an element list error comes with the frame and
// the elements before the fault.
func ParseAssocRequest(b []byte) (AssocRequest, error) {
	h, body, err := parseAs(b, "association or reassociation request", SubtypeAssocRequest, SubtypeReassocRequest)
	if err != nil {
		return AssocRequest{}, err
	}
	f := AssocRequest{Header: h, Reassoc: h.FrameControl.Subtype() == SubtypeReassocRequest}
	name, fixed := "association request", 4
	if f.Reassoc {
		name, fixed = "reassociation request", 10
	}
	if len(body) < fixed {
		return AssocRequest{}, short(name, "capability and listen interval", fixed, len(body))
	}
	f.Capability = Capability(binary.LittleEndian.Uint16(body))
	f.ListenInterval = binary.LittleEndian.Uint16(body[2:])
	if f.Reassoc {
		f.CurrentAP = Addr(body[4:10])
	}
	f.Elements, err = parseElements(name, body[fixed:])
	return f, err
}

// Append appends the frame as an Association Request, or a Reassociation
// Request if Reassoc. Errors: those of ie.Elements.Append.
func (f AssocRequest) Append(b []byte) ([]byte, error) {
	s := SubtypeAssocRequest
	if f.Reassoc {
		s = SubtypeReassocRequest
	}
	b = f.Header.withSubtype(s).Append(b)
	b = binary.LittleEndian.AppendUint16(b, uint16(f.Capability))
	b = binary.LittleEndian.AppendUint16(b, f.ListenInterval)
	if f.Reassoc {
		b = append(b, f.CurrentAP[:]...)
	}
	return f.Elements.Append(b)
}

// MaxAID is the largest association identifier (IEEE 802.11-2020 §9.4.1.8).
const MaxAID = 2007

// aidTopBits are the two most significant bits of the AID field, which the
// spec requires set (IEEE 802.11-2020 §9.4.1.8), a leftover of the Duration/ID
// field the AID also travels in (PS-Poll).
const aidTopBits = 0xC000

// AssocResponse is an Association Response (IEEE 802.11-2020 §9.3.3.6) or,
// with Reassoc, a Reassociation Response (§9.3.3.8): capability, status,
// AID, then Supported Rates and further elements.
type AssocResponse struct {
	Header     Header
	Reassoc    bool
	Capability Capability
	Status     StatusCode
	AID        uint16 // 1 to 2007 on success, without the two top bits
	Elements   ie.Elements
}

// MACHeader returns the frame's MAC header.
func (f AssocResponse) MACHeader() Header { return f.Header }

const assocRespFixed = 6

// ParseAssocResponse parses an Association or Reassociation Response; the
// two top bits of the AID field are dropped. Errors: those of ParseHeader,
// ErrSubtype, ErrShort under 6 octets of fixed fields; an element list error
// comes with the frame and the elements before the fault.
func ParseAssocResponse(b []byte) (AssocResponse, error) {
	h, body, err := parseAs(b, "association or reassociation response", SubtypeAssocResponse, SubtypeReassocResponse)
	if err != nil {
		return AssocResponse{}, err
	}
	f := AssocResponse{Header: h, Reassoc: h.FrameControl.Subtype() == SubtypeReassocResponse}
	name := h.FrameControl.Subtype().String()
	if len(body) < assocRespFixed {
		return AssocResponse{}, short(name, "capability, status and AID", assocRespFixed, len(body))
	}
	f.Capability = Capability(binary.LittleEndian.Uint16(body))
	f.Status = StatusCode(binary.LittleEndian.Uint16(body[2:]))
	f.AID = binary.LittleEndian.Uint16(body[4:]) &^ aidTopBits
	f.Elements, err = parseElements(name, body[assocRespFixed:])
	return f, err
}

// Append appends the frame as an Association Response, or a Reassociation
// Response if Reassoc, with the AID's two top bits set. Errors: ErrInvalid
// for an AID over 2007, or of 0 with status success; those of
// ie.Elements.Append.
func (f AssocResponse) Append(b []byte) ([]byte, error) {
	if f.AID > MaxAID || (f.AID == 0 && f.Status == StatusSuccess) {
		return b, fmt.Errorf("%w: association response: AID %d, want 1 to %d on success", ErrInvalid, f.AID, MaxAID)
	}
	s := SubtypeAssocResponse
	if f.Reassoc {
		s = SubtypeReassocResponse
	}
	b = f.Header.withSubtype(s).Append(b)
	b = binary.LittleEndian.AppendUint16(b, uint16(f.Capability))
	b = binary.LittleEndian.AppendUint16(b, uint16(f.Status))
	b = binary.LittleEndian.AppendUint16(b, f.AID|aidTopBits)
	return f.Elements.Append(b)
}

// ReasonFrame is a Deauthentication (IEEE 802.11-2020 §9.3.3.13) or, with
// Disassoc, a Disassociation frame (§9.3.3.4): a reason code, then
// optional vendor elements.
type ReasonFrame struct {
	Header   Header
	Disassoc bool
	Reason   ReasonCode
	Elements ie.Elements
}

// MACHeader returns the frame's MAC header.
func (f ReasonFrame) MACHeader() Header { return f.Header }

// ParseReasonFrame parses a Deauthentication or Disassociation frame.
// Errors: those of ParseHeader, ErrSubtype, ErrShort without the 2-octet
// reason code; an element list error comes with the frame and the elements
// before the fault.
func ParseReasonFrame(b []byte) (ReasonFrame, error) {
	h, body, err := parseAs(b, "deauthentication or disassociation", SubtypeDeauth, SubtypeDisassoc)
	if err != nil {
		return ReasonFrame{}, err
	}
	name := h.FrameControl.Subtype().String()
	if len(body) < 2 {
		return ReasonFrame{}, short(name, "reason code", 2, len(body))
	}
	f := ReasonFrame{
		Header:   h,
		Disassoc: h.FrameControl.Subtype() == SubtypeDisassoc,
		Reason:   ReasonCode(binary.LittleEndian.Uint16(body)),
	}
	f.Elements, err = parseElements(name, body[2:])
	return f, err
}

// Append appends the frame as a Deauthentication, or a Disassociation if
// Disassoc. Errors: those of ie.Elements.Append.
func (f ReasonFrame) Append(b []byte) ([]byte, error) {
	s := SubtypeDeauth
	if f.Disassoc {
		s = SubtypeDisassoc
	}
	b = f.Header.withSubtype(s).Append(b)
	b = binary.LittleEndian.AppendUint16(b, uint16(f.Reason))
	return f.Elements.Append(b)
}
