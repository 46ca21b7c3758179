// Package ie reads and writes IEEE 802.11 information elements (IEEE
// 802.11-2020 §9.4.2): the ID, length, body lists that follow the fixed
// fields of every management frame, and that nl80211 hands over as scan
// results (NL80211_BSS_INFORMATION_ELEMENTS) and takes back as beacon
// heads and tails.
//
// Parsing never panics and never reads past its input: the bodies it returns
// are sub-slices of the input, so a caller that keeps them after reusing its
// buffer must copy them first.
package ie

import (
	"errors"
	"fmt"
)

// ID is an element ID, the first octet of every element (IEEE 802.11-2020
// §9.4.2.1).
type ID uint8

// Element IDs used by Skyfleet (IEEE 802.11-2020 §9.4.2.1), with the
// subclause of each element's format.
const (
	IDSSID            ID = 0   // SSID, §9.4.2.2
	IDSupportedRates  ID = 1   // Supported Rates and BSS Membership Selectors, §9.4.2.3
	IDDSParams        ID = 3   // DSSS Parameter Set (the current channel), §9.4.2.4
	IDCFParams        ID = 4   // CF Parameter Set: PCF is gone from IEEE 802.11-2020, old APs still send it
	IDTIM             ID = 5   // Traffic Indication Map (TIM), §9.4.2.5
	IDIBSSParams      ID = 6   // IBSS Parameter Set, §9.4.2.6
	IDCountry         ID = 7   // Country, §9.4.2.8
	IDChallengeText   ID = 16  // Challenge text (shared key authentication), §9.4.2.7
	IDERP             ID = 42  // ERP, §9.4.2.11
	IDHTCapabilities  ID = 45  // HT Capabilities, §9.4.2.55
	IDRSN             ID = 48  // RSN element (RSNE), §9.4.2.24
	IDExtendedRates   ID = 50  // Extended Supported Rates and BSS Membership Selectors, §9.4.2.12
	IDHTOperation     ID = 61  // HT Operation, §9.4.2.56
	IDExtCapabilities ID = 127 // Extended Capabilities, §9.4.2.26
	IDMeshID          ID = 114 // Mesh ID, §9.4.2.98
	IDVendorSpecific  ID = 221 // Vendor Specific, §9.4.2.25
	IDExtension       ID = 255 // Element ID Extension: the body starts with an extension ID, §9.4.2.1
)

// Body limits, in octets.
const (
	maxBody = 255 // one length octet, IEEE 802.11-2020 §9.4.2.1
	// MaxSSIDLen is the longest SSID, IEEE 802.11-2020 §9.4.2.2.
	MaxSSIDLen = 32
	// MaxMeshIDLen is the longest Mesh ID, IEEE 802.11-2020 §9.4.2.98.
	MaxMeshIDLen = 32
	// MaxSupportedRates is how many rates the Supported Rates element
	// holds; the rest go in Extended Supported Rates (IEEE 802.11-2020
	// §9.4.2.3, §9.4.2.12).
	MaxSupportedRates = 8
)

// Errors returned by this package; they are wrapped with the element and the
// field, so test with errors.Is.
var (
	// ErrTruncated: the list ends inside an element header or body.
	ErrTruncated = errors.New("ie: truncated element")
	// ErrNotFound: the asked-for element is absent.
	ErrNotFound = errors.New("ie: element not present")
	// ErrMalformed: an element's body does not have the shape its ID requires.
	ErrMalformed = errors.New("ie: malformed element")
	// ErrTooLong: a body to be built does not fit its element.
	ErrTooLong = errors.New("ie: body too long")
)

// Element is one information element (IEEE 802.11-2020 §9.4.2.1). For an
// extension element (ID 255) ExtID holds the Element ID Extension octet and
// Body the octets after it; otherwise ExtID is 0. Body aliases the parsed
// input.
type Element struct {
	ID    ID
	ExtID uint8
	Body  []byte
}

// Elements is an element list in the order it was received or is to be sent.
// The order matters: IEEE 802.11-2020 §9.3.3 fixes it per frame type, and the
// kernel splits beacons by it (see package mgmt).
type Elements []Element

// Parse splits b, an element list as it follows a management frame's fixed
// fields, into elements (IEEE 802.11-2020 §9.4.2.1).
//
// A list that ends inside an element returns ErrTruncated (wrapped, naming
// the offset) together with every whole element before it. That is not a
// corner case: drivers cut long scan results and some hand over the frame
// check sequence too, so a scanner should use what came back and only log
// the error. An extension element of length 0 (no extension ID) is
// ErrMalformed, again with the elements before it.
func Parse(b []byte) (Elements, error) {
	var out Elements
	off := 0
	for off < len(b) {
		if len(b)-off < 2 {
			return out, fmt.Errorf("%w: element header at offset %d needs 2 octets, %d left", ErrTruncated, off, len(b)-off)
		}
		id, n := ID(b[off]), int(b[off+1])
		if len(b)-off-2 < n {
			return out, fmt.Errorf("%w: element %d at offset %d has length %d, %d octets left", ErrTruncated, id, off, n, len(b)-off-2)
		}
		body := b[off+2 : off+2+n : off+2+n]
		e := Element{ID: id, Body: body}
		if id == IDExtension {
			if n == 0 {
				return out, fmt.Errorf("%w: extension element at offset %d has no extension ID", ErrMalformed, off)
			}
			e.ExtID, e.Body = body[0], body[1:]
		}
		out = append(out, e)
		off += 2 + n
	}
	return out, nil
}

// Find returns the first element with the given ID (never an extension
// element: use FindExt), and whether there was one.
func (es Elements) Find(id ID) (Element, bool) {
	for _, e := range es {
		if e.ID == id {
			return e, true
		}
	}
	return Element{}, false
}

// FindExt returns the first extension element (ID 255) with the given
// Element ID Extension, and whether there was one (IEEE 802.11-2020 §9.4.2.1).
func (es Elements) FindExt(ext uint8) (Element, bool) {
	for _, e := range es {
		if e.ID == IDExtension && e.ExtID == ext {
			return e, true
		}
	}
	return Element{}, false
}

// FindVendor returns the first Vendor Specific element (IEEE 802.11-2020
// §9.4.2.25) whose body starts with the 3-octet OUI and then the given type
// octet, as vendors such as Microsoft (00-50-F2) lay theirs out; the returned
// Body still starts with the OUI and type.
func (es Elements) FindVendor(oui [3]byte, typ uint8) (Element, bool) {
	for _, e := range es {
		if e.ID == IDVendorSpecific && len(e.Body) >= 4 &&
			e.Body[0] == oui[0] && e.Body[1] == oui[1] && e.Body[2] == oui[2] && e.Body[3] == typ {
			return e, true
		}
	}
	return Element{}, false
}

// Append appends e as an element: ID, length, then for an extension element
// the extension ID, then the body. It fails with ErrTooLong when the body
// does not fit in one length octet.
func (e Element) Append(b []byte) ([]byte, error) {
	n := len(e.Body)
	if e.ID == IDExtension {
		n++
	}
	if n > maxBody {
		return b, fmt.Errorf("%w: element %d body of %d octets exceeds %d", ErrTooLong, e.ID, n, maxBody)
	}
	b = append(b, byte(e.ID), byte(n))
	if e.ID == IDExtension {
		b = append(b, e.ExtID)
	}
	return append(b, e.Body...), nil
}

// Append appends every element of es in order; the first that does not fit
// fails it with ErrTooLong, and b is returned as it was before that element.
func (es Elements) Append(b []byte) ([]byte, error) {
	for _, e := range es {
		var err error
		if b, err = e.Append(b); err != nil {
			return b, err
		}
	}
	return b, nil
}

// AppendElement appends one element with the given ID and body (ErrTooLong
// past 255 octets). For an extension element use Element.Append.
func AppendElement(b []byte, id ID, body []byte) ([]byte, error) {
	return Element{ID: id, Body: body}.Append(b)
}

// SSID returns the body of the SSID element (IEEE 802.11-2020 §9.4.2.2): 0
// to 32 octets, not necessarily UTF-8. ErrNotFound if absent, ErrMalformed
// past 32 octets. A zero-length SSID is the wildcard in a Probe Request and a
// hidden network in a Beacon; see Hidden.
func (es Elements) SSID() ([]byte, error) {
	e, ok := es.Find(IDSSID)
	if !ok {
		return nil, fmt.Errorf("%w: SSID", ErrNotFound)
	}
	if len(e.Body) > MaxSSIDLen {
		return nil, fmt.Errorf("%w: SSID of %d octets exceeds %d", ErrMalformed, len(e.Body), MaxSSIDLen)
	}
	return e.Body, nil
}

// Hidden reports whether ssid is how an AP hides its network name in Beacons:
// empty, or all NUL octets of the real length. Both are in use, so a
// scanner must treat both as hidden.
func Hidden(ssid []byte) bool {
	for _, c := range ssid {
		if c != 0 {
			return false
		}
	}
	return true
}

// AppendSSID appends an SSID element (IEEE 802.11-2020 §9.4.2.2). An empty
// ssid gives the wildcard/hidden form 00 00. ErrTooLong past 32 octets.
func AppendSSID(b []byte, ssid []byte) ([]byte, error) {
	if len(ssid) > MaxSSIDLen {
		return b, fmt.Errorf("%w: SSID of %d octets exceeds %d", ErrTooLong, len(ssid), MaxSSIDLen)
	}
	return AppendElement(b, IDSSID, ssid)
}

// DSChannel returns the Current Channel of the DSSS Parameter Set element
// (IEEE 802.11-2020 §9.4.2.4), the channel number the BSS is on (2.4 GHz APs
// always send it; 5 GHz ones often do). ErrNotFound if absent, ErrMalformed
// unless the body is exactly one octet.
func (es Elements) DSChannel() (uint8, error) {
	e, ok := es.Find(IDDSParams)
	if !ok {
		return 0, fmt.Errorf("%w: DS Parameter Set", ErrNotFound)
	}
	if len(e.Body) != 1 {
		return 0, fmt.Errorf("%w: DS Parameter Set of %d octets, want 1", ErrMalformed, len(e.Body))
	}
	return e.Body[0], nil
}

// AppendDSParams appends a DSSS Parameter Set element carrying channel
// (IEEE 802.11-2020 §9.4.2.4): 03 01 channel.
func AppendDSParams(b []byte, channel uint8) []byte {
	return append(b, byte(IDDSParams), 1, channel)
}

// HasTIM reports whether a TIM element is present (IEEE 802.11-2020
// §9.4.2.5): it is in every Beacon of an AP and in no Probe Response, and
// mac80211 writes it itself, which is why package mgmt splits beacons
// around it.
func (es Elements) HasTIM() bool {
	_, ok := es.Find(IDTIM)
	return ok
}

// HasHTCapabilities reports whether an HT Capabilities element is present
// (IEEE 802.11-2020 §9.4.2.55): the peer can do 802.11n.
func (es Elements) HasHTCapabilities() bool {
	_, ok := es.Find(IDHTCapabilities)
	return ok
}

// ATIMWindow returns the ATIM Window of the IBSS Parameter Set element (IEEE
// 802.11-2020 §9.4.2.6), in TUs (1 TU = 1024 µs); the element is what marks
// an IBSS (ad hoc) Beacon. ErrNotFound if absent, ErrMalformed unless the
// body is 2 octets.
func (es Elements) ATIMWindow() (uint16, error) {
	e, ok := es.Find(IDIBSSParams)
	if !ok {
		return 0, fmt.Errorf("%w: IBSS Parameter Set", ErrNotFound)
	}
	if len(e.Body) != 2 {
		return 0, fmt.Errorf("%w: IBSS Parameter Set of %d octets, want 2", ErrMalformed, len(e.Body))
	}
	return uint16(e.Body[0]) | uint16(e.Body[1])<<8, nil
}

// Country returns the two-letter country code of the Country element (IEEE
// 802.11-2020 §9.4.2.8): the first two octets of its 3-octet country string
// (ISO 3166-1 alpha-2; the third octet says indoor/outdoor and is dropped).
// ErrNotFound if absent, ErrMalformed if the body is shorter than the
// country string or the code is not two ASCII letters.
func (es Elements) Country() (string, error) {
	e, ok := es.Find(IDCountry)
	if !ok {
		return "", fmt.Errorf("%w: Country", ErrNotFound)
	}
	if len(e.Body) < 3 {
		return "", fmt.Errorf("%w: Country of %d octets, want at least 3", ErrMalformed, len(e.Body))
	}
	for _, c := range e.Body[:2] {
		if (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') {
			return "", fmt.Errorf("%w: Country code %q is not two letters", ErrMalformed, e.Body[:2])
		}
	}
	return string(e.Body[:2]), nil
}

// MeshID returns the body of the Mesh ID element (IEEE 802.11-2020
// §9.4.2.98), the mesh's name: 0 to 32 octets, like an SSID. ErrNotFound if
// absent, ErrMalformed past 32 octets.
func (es Elements) MeshID() ([]byte, error) {
	e, ok := es.Find(IDMeshID)
	if !ok {
		return nil, fmt.Errorf("%w: Mesh ID", ErrNotFound)
	}
	if len(e.Body) > MaxMeshIDLen {
		return nil, fmt.Errorf("%w: Mesh ID of %d octets exceeds %d", ErrMalformed, len(e.Body), MaxMeshIDLen)
	}
	return e.Body, nil
}
