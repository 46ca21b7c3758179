package eapol

import (
	"bytes"
	"fmt"
)

// Element and KDE identifiers used in Key Data (IEEE 802.11-2020 §9.4.2.1,
// §12.7.2 Table 12-9).
const (
	// ElementRSN is the RSN element ID; another package parses its
	// contents, this one carries its bytes.
	ElementRSN = 0x30
	// ElementKDE is the ID of a KDE (and of vendor-specific elements).
	ElementKDE = 0xdd
	// KDETypeGTK is the GTK KDE's data type under OUI 00-0F-AC.
	KDETypeGTK = 1
)

// ieee80211OUI is the OUI of IEEE 802.11 KDEs, 00-0F-AC.
var ieee80211OUI = [3]byte{0x00, 0x0f, 0xac}

// GroupKey is a group temporal key to install (IEEE 802.11-2020 §12.7.2,
// GTK KDE Figure 12-35, and the RSC of the EAPOL-Key frame). Its String and
// GoString print no key bytes.
type GroupKey struct {
	// Index is the key ID, 0..3 (1 or 2 in practice).
	Index uint8
	// Tx says the station should also transmit with this key (only for
	// stations that cannot use a pairwise key).
	Tx bool
	// Key is the GTK, 16 bytes for CCMP-128.
	Key []byte
	// RSC is the starting receive sequence counter of the key, as on the
	// wire (packet number, least significant byte first).
	RSC [8]byte
}

// String names the key's index without its bytes.
func (g *GroupKey) String() string {
	if g == nil {
		return "<nil>"
	}
	return fmt.Sprintf("eapol.GroupKey{Index: %d, Tx: %t, %d bytes redacted}", g.Index, g.Tx, len(g.Key))
}

// GoString is String for %#v.
func (g *GroupKey) GoString() string { return g.String() }

// KeyData is the decoded content of an EAPOL-Key Key Data field (after
// unwrapping, if it was encrypted): the elements and KDEs this package
// uses (IEEE 802.11-2020 §12.7.2).
type KeyData struct {
	// RSNE is the first RSN element, whole (ID, length, body), or nil.
	RSNE []byte
	// GTK is the GTK KDE's key ID, Tx bit and key, or nil; its RSC is
	// left zero, since it travels in the frame, not the KDE.
	GTK *GroupKey
}

// ParseKeyData decodes a Key Data field: a sequence of elements (ID,
// length, body) of which the first RSN element and the GTK KDE (0xdd, OUI
// 00-0F-AC, type 1) are kept and others skipped. Key wrap padding (0xdd
// followed by zeros to the end, §12.7.2) ends the field. An element that
// overruns the field, a second GTK KDE, a GTK of 0 or more than 32 bytes,
// or non-zero bytes after the padding, are ErrKeyData.
func ParseKeyData(b []byte) (*KeyData, error) {
	kd := &KeyData{}
	for len(b) > 0 {
		if b[0] == ElementKDE && (len(b) == 1 || b[1] == 0) {
			for _, c := range b[1:] {
				if c != 0 {
					return nil, fmt.Errorf("%w: non-zero byte in padding", ErrKeyData)
				}
			}
			break
		}
		if len(b) < 2 || len(b) < 2+int(b[1]) {
			return nil, fmt.Errorf("%w: element %d overruns the key data", ErrKeyData, b[0])
		}
		id, body := b[0], b[2:2+int(b[1])]
		switch {
		case id == ElementRSN:
			if kd.RSNE == nil {
				kd.RSNE = b[:2+len(body)]
			}
		case id == ElementKDE && len(body) >= 4 && [3]byte(body[:3]) == ieee80211OUI && body[3] == KDETypeGTK:
			if kd.GTK != nil {
				return nil, fmt.Errorf("%w: two GTK KDEs", ErrKeyData)
			}
			// OUI, type, then key ID/Tx octet, a reserved octet, the GTK.
			g := body[4:]
			if len(g) < 3 || len(g)-2 > 32 {
				return nil, fmt.Errorf("%w: GTK KDE of %d bytes", ErrKeyData, len(body))
			}
			kd.GTK = &GroupKey{
				Index: g[0] & 0x03,
				Tx:    g[0]&0x04 != 0,
				Key:   bytes.Clone(g[2:]),
			}
		}
		b = b[2+len(body):]
	}
	return kd, nil
}

// AppendGTKKDE appends a GTK KDE for g (key ID, Tx bit and key; RSC is not
// part of the KDE) to b (IEEE 802.11-2020 §12.7.2 Figure 12-35).
func AppendGTKKDE(b []byte, g *GroupKey) []byte {
	id := g.Index & 0x03
	if g.Tx {
		id |= 0x04
	}
	b = append(b, ElementKDE, byte(4+2+len(g.Key)))
	b = append(b, ieee80211OUI[:]...)
	b = append(b, KDETypeGTK, id, 0)
	return append(b, g.Key...)
}

// PadKeyData pads Key Data for AES key wrap as IEEE 802.11-2020 §12.7.2
// requires: if it is shorter than 16 bytes or not a multiple of 8, one
// 0xdd byte and then zeros up to the next multiple of 8, at least 16. It
// returns a new slice.
func PadKeyData(b []byte) []byte {
	out := bytes.Clone(b)
	if len(out) >= 16 && len(out)%8 == 0 {
		return out
	}
	out = append(out, ElementKDE)
	for len(out) < 16 || len(out)%8 != 0 {
		out = append(out, 0)
	}
	return out
}
