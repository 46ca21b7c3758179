package ie

import (
	"encoding/binary"
	"fmt"
)

// OUIs that own the suite selectors Skyfleet meets (IEEE 802.11-2020
// §9.4.2.24.2): the IEEE 802.11 one for RSN, Microsoft's for WPA1.
var (
	OUIIEEE80211 = [3]byte{0x00, 0x0F, 0xAC}
	OUIMicrosoft = [3]byte{0x00, 0x50, 0xF2}
)

// CipherSuite is a cipher suite selector (IEEE 802.11-2020 §9.4.2.24.2,
// cipher suite selectors): the 3-octet OUI in the high 24 bits and the suite type in the
// low 8, so 00-0F-AC:4 is 0x000FAC04. On the air it is the OUI octets in
// order, then the type.
type CipherSuite uint32

// Cipher suites of OUI 00-0F-AC (IEEE 802.11-2020 §9.4.2.24.2).
const (
	CipherUseGroup   CipherSuite = 0x000FAC00 // "use group cipher suite"
	CipherWEP40      CipherSuite = 0x000FAC01
	CipherTKIP       CipherSuite = 0x000FAC02
	CipherCCMP128    CipherSuite = 0x000FAC04 // the WPA2 cipher, "AES"
	CipherWEP104     CipherSuite = 0x000FAC05
	CipherBIPCMAC128 CipherSuite = 0x000FAC06 // group management (802.11w) default
	CipherNoGroup    CipherSuite = 0x000FAC07 // group addressed traffic not allowed
	CipherGCMP128    CipherSuite = 0x000FAC08
	CipherGCMP256    CipherSuite = 0x000FAC09
	CipherCCMP256    CipherSuite = 0x000FAC0A
	CipherBIPGMAC128 CipherSuite = 0x000FAC0B
	CipherBIPGMAC256 CipherSuite = 0x000FAC0C
	CipherBIPCMAC256 CipherSuite = 0x000FAC0D
)

// WPA1 cipher suites (OUI 00-50-F2), as the pre-standard WPA element
// carries them; same type numbers as RSN.
const (
	CipherWPATKIP CipherSuite = 0x0050F202
	CipherWPACCMP CipherSuite = 0x0050F204
)

// AKMSuite is an authentication and key management (AKM) suite selector
// (IEEE 802.11-2020 §9.4.2.24.3), packed like CipherSuite.
type AKMSuite uint32

// AKM suites of OUI 00-0F-AC (IEEE 802.11-2020 §9.4.2.24.3).
const (
	AKM8021X          AKMSuite = 0x000FAC01 // WPA2-Enterprise
	AKMPSK            AKMSuite = 0x000FAC02 // WPA2-Personal
	AKMFT8021X        AKMSuite = 0x000FAC03
	AKMFTPSK          AKMSuite = 0x000FAC04
	AKM8021XSHA256    AKMSuite = 0x000FAC05
	AKMPSKSHA256      AKMSuite = 0x000FAC06
	AKMSAE            AKMSuite = 0x000FAC08 // WPA3-Personal
	AKMFTSAE          AKMSuite = 0x000FAC09
	AKM8021XSuiteB    AKMSuite = 0x000FAC0B
	AKM8021XSuiteB192 AKMSuite = 0x000FAC0C // WPA3-Enterprise 192-bit
	AKMOWE            AKMSuite = 0x000FAC12 // Opportunistic Wireless Encryption (RFC 8110)
)

// WPA1 AKM suites (OUI 00-50-F2).
const (
	AKMWPA8021X AKMSuite = 0x0050F201
	AKMWPAPSK   AKMSuite = 0x0050F202
)

func suiteOUI(s uint32) [3]byte { return [3]byte{byte(s >> 24), byte(s >> 16), byte(s >> 8)} }

func suiteString(s uint32, names map[uint32]string) string {
	if n, ok := names[s]; ok {
		return n
	}
	o := suiteOUI(s)
	return fmt.Sprintf("%02X-%02X-%02X:%d", o[0], o[1], o[2], byte(s))
}

var cipherNames = map[uint32]string{
	uint32(CipherUseGroup): "use-group", uint32(CipherWEP40): "WEP-40", uint32(CipherTKIP): "TKIP",
	uint32(CipherCCMP128): "CCMP-128", uint32(CipherWEP104): "WEP-104", uint32(CipherBIPCMAC128): "BIP-CMAC-128",
	uint32(CipherNoGroup): "no-group", uint32(CipherGCMP128): "GCMP-128", uint32(CipherGCMP256): "GCMP-256",
	uint32(CipherCCMP256): "CCMP-256", uint32(CipherBIPGMAC128): "BIP-GMAC-128", uint32(CipherBIPGMAC256): "BIP-GMAC-256",
	uint32(CipherBIPCMAC256): "BIP-CMAC-256", uint32(CipherWPATKIP): "WPA-TKIP", uint32(CipherWPACCMP): "WPA-CCMP",
}

var akmNames = map[uint32]string{
	uint32(AKM8021X): "802.1X", uint32(AKMPSK): "PSK", uint32(AKMFT8021X): "FT-802.1X", uint32(AKMFTPSK): "FT-PSK",
	uint32(AKM8021XSHA256): "802.1X-SHA256", uint32(AKMPSKSHA256): "PSK-SHA256", uint32(AKMSAE): "SAE",
	uint32(AKMFTSAE): "FT-SAE", uint32(AKM8021XSuiteB): "802.1X-SuiteB", uint32(AKM8021XSuiteB192): "802.1X-SuiteB-192",
	uint32(AKMOWE): "OWE", uint32(AKMWPA8021X): "WPA-802.1X", uint32(AKMWPAPSK): "WPA-PSK",
}

// NewCipherSuite packs an OUI and suite type into a CipherSuite.
func NewCipherSuite(oui [3]byte, typ uint8) CipherSuite {
	return CipherSuite(uint32(oui[0])<<24 | uint32(oui[1])<<16 | uint32(oui[2])<<8 | uint32(typ))
}

// NewAKMSuite packs an OUI and suite type into an AKMSuite.
func NewAKMSuite(oui [3]byte, typ uint8) AKMSuite { return AKMSuite(NewCipherSuite(oui, typ)) }

// OUI returns the suite's 3-octet OUI.
func (s CipherSuite) OUI() [3]byte { return suiteOUI(uint32(s)) }

// Type returns the suite type octet.
func (s CipherSuite) Type() uint8 { return uint8(s) }

// String names the suite ("CCMP-128"), or gives it as OUI:type.
func (s CipherSuite) String() string { return suiteString(uint32(s), cipherNames) }

// OUI returns the suite's 3-octet OUI.
func (s AKMSuite) OUI() [3]byte { return suiteOUI(uint32(s)) }

// Type returns the suite type octet.
func (s AKMSuite) Type() uint8 { return uint8(s) }

// String names the suite ("PSK", "SAE"), or gives it as OUI:type.
func (s AKMSuite) String() string { return suiteString(uint32(s), akmNames) }

// RSNCapabilities is the RSN Capabilities field (IEEE 802.11-2020
// §9.4.2.24.4), little-endian on the air.
type RSNCapabilities uint16

// RSN Capabilities bits (IEEE 802.11-2020 §9.4.2.24.4).
const (
	RSNCapPreauth    RSNCapabilities = 1 << 0 // AP supports RSN preauthentication
	RSNCapNoPairwise RSNCapabilities = 1 << 1
	RSNCapMFPR       RSNCapabilities = 1 << 6 // management frame protection required (802.11w)
	RSNCapMFPC       RSNCapabilities = 1 << 7 // management frame protection capable
	RSNCapPeerKey    RSNCapabilities = 1 << 9
	RSNCapExtKeyID   RSNCapabilities = 1 << 13
	RSNCapOCVC       RSNCapabilities = 1 << 14 // operating channel validation capable
	rsnCapPTKSAShift                 = 2
	rsnCapGTKSAShift                 = 4
)

// PTKSAReplayCounters returns how many PTKSA replay counters the field
// announces (1, 2, 4 or 16, from bits 2-3). hostapd announces 16 whenever WMM
// is on, because each of the four access categories may then reorder
// frames: that is the 0C 00 seen in most real APs' RSN elements.
func (c RSNCapabilities) PTKSAReplayCounters() int { return replayCounters[(c>>rsnCapPTKSAShift)&3] }

// GTKSAReplayCounters is PTKSAReplayCounters for the GTKSA (bits 4-5).
func (c RSNCapabilities) GTKSAReplayCounters() int { return replayCounters[(c>>rsnCapGTKSAShift)&3] }

// replayCounters maps the 2-bit replay counter subfields to counts
// (IEEE 802.11-2020 §9.4.2.24.4).
var replayCounters = [4]int{1, 2, 4, 16}

// RSNCapReplayCounters16 is the RSN Capabilities value hostapd writes with WMM
// enabled: 16 PTKSA replay counters (bits 2-3 = 3).
const RSNCapReplayCounters16 RSNCapabilities = 3 << rsnCapPTKSAShift

// RSNVersion is the only RSN element version defined (IEEE 802.11-2020
// §9.4.2.24.1).
const RSNVersion = 1

// PMKIDLen is the length of a PMKID, octets (IEEE 802.11-2020 §9.4.2.24.5).
const PMKIDLen = 16

// RSN is the body of an RSN element (IEEE 802.11-2020 §9.4.2.24.1), or of a
// WPA1 vendor element, which has the same fields up to the capabilities.
//
// On the air every field after Version is optional, but only from the end:
// a field is absent only if all after it are. Parsing fills absent suites
// with the spec's defaults (group CCMP-128, pairwise CCMP-128, AKM 802.1X;
// for WPA1 TKIP, TKIP, 802.1X) and absent capabilities with 0.
// GroupMgmtCipher is 0 when absent (the spec's default then is BIP-CMAC-128
// if MFPC is set).
type RSN struct {
	Version         uint16          // 1; Marshal writes 1 for 0
	GroupCipher     CipherSuite     // group data cipher suite
	PairwiseCiphers []CipherSuite   // at least one
	AKMs            []AKMSuite      // at least one
	Capabilities    RSNCapabilities // RSN only; WPA1 elements rarely carry it
	PMKIDs          [][PMKIDLen]byte
	GroupMgmtCipher CipherSuite // 0 if absent
}

// WPA2PSK returns the RSN element contents of a WPA2-Personal AP or STA with
// CCMP-128 only and no capabilities: what Marshal turns into the well-known
// 30 14 01 00 00 0f ac 04 01 00 00 0f ac 04 01 00 00 0f ac 02 00 00. Set
// Capabilities to RSNCapReplayCounters16 to match hostapd with WMM on.
func WPA2PSK() RSN {
	return RSN{
		Version:         RSNVersion,
		GroupCipher:     CipherCCMP128,
		PairwiseCiphers: []CipherSuite{CipherCCMP128},
		AKMs:            []AKMSuite{AKMPSK},
	}
}

// ParseRSN parses the body of an RSN element (IEEE 802.11-2020 §9.4.2.24:
// after ID 48 and the length). Errors wrap ErrMalformed and name the field:
// a version other than 1, a field cut in its middle, a suite count of 0 or
// larger than what follows. Octets after the Group Management Cipher Suite
// are ignored, as later amendments may add fields there.
func ParseRSN(body []byte) (RSN, error) {
	if len(body) < 2 {
		return RSN{}, fmt.Errorf("%w: RSN version needs 2 octets, have %d", ErrMalformed, len(body))
	}
	r := RSN{Version: binary.LittleEndian.Uint16(body)}
	if r.Version != RSNVersion {
		return RSN{}, fmt.Errorf("%w: RSN version %d, want %d", ErrMalformed, r.Version, RSNVersion)
	}
	return parseSuites(r, body[2:], "RSN", OUIIEEE80211)
}

// parseSuites reads the fields after the version; WPA1 and RSN share them.
// oui picks the defaults of absent suites.
func parseSuites(r RSN, b []byte, what string, oui [3]byte) (RSN, error) {
	defCipher := NewCipherSuite(oui, 4) // CCMP-128
	if oui == OUIMicrosoft {
		defCipher = CipherWPATKIP
	}
	r.GroupCipher = defCipher
	r.PairwiseCiphers = []CipherSuite{defCipher}
	r.AKMs = []AKMSuite{NewAKMSuite(oui, 1)}
	if len(b) == 0 {
		return r, nil
	}
	if len(b) < 4 {
		return RSN{}, fmt.Errorf("%w: %s group cipher suite needs 4 octets, have %d", ErrMalformed, what, len(b))
	}
	r.GroupCipher = CipherSuite(binary.BigEndian.Uint32(b))
	b = b[4:]
	if len(b) == 0 {
		return r, nil
	}
	var (
		list []uint32
		err  error
	)
	if list, b, err = suiteList(b, what, "pairwise cipher suite"); err != nil {
		return RSN{}, err
	}
	r.PairwiseCiphers = r.PairwiseCiphers[:0]
	for _, s := range list {
		r.PairwiseCiphers = append(r.PairwiseCiphers, CipherSuite(s))
	}
	if len(b) == 0 {
		return r, nil
	}
	if list, b, err = suiteList(b, what, "AKM suite"); err != nil {
		return RSN{}, err
	}
	r.AKMs = r.AKMs[:0]
	for _, s := range list {
		r.AKMs = append(r.AKMs, AKMSuite(s))
	}
	if len(b) == 0 {
		return r, nil
	}
	if len(b) < 2 {
		return RSN{}, fmt.Errorf("%w: %s capabilities need 2 octets, have %d", ErrMalformed, what, len(b))
	}
	r.Capabilities = RSNCapabilities(binary.LittleEndian.Uint16(b))
	b = b[2:]
	if len(b) == 0 {
		return r, nil
	}
	if len(b) < 2 {
		return RSN{}, fmt.Errorf("%w: %s PMKID count needs 2 octets, have %d", ErrMalformed, what, len(b))
	}
	n := int(binary.LittleEndian.Uint16(b))
	b = b[2:]
	if n > len(b)/PMKIDLen {
		return RSN{}, fmt.Errorf("%w: %s PMKID count %d needs %d octets, have %d", ErrMalformed, what, n, n*PMKIDLen, len(b))
	}
	for i := 0; i < n; i++ {
		r.PMKIDs = append(r.PMKIDs, [PMKIDLen]byte(b[:PMKIDLen]))
		b = b[PMKIDLen:]
	}
	if len(b) == 0 {
		return r, nil
	}
	if len(b) < 4 {
		return RSN{}, fmt.Errorf("%w: %s group management cipher suite needs 4 octets, have %d", ErrMalformed, what, len(b))
	}
	r.GroupMgmtCipher = CipherSuite(binary.BigEndian.Uint32(b))
	return r, nil
}

// suiteList reads a 2-octet little-endian count and that many selectors.
func suiteList(b []byte, what, field string) ([]uint32, []byte, error) {
	if len(b) < 2 {
		return nil, nil, fmt.Errorf("%w: %s %s count needs 2 octets, have %d", ErrMalformed, what, field, len(b))
	}
	n := int(binary.LittleEndian.Uint16(b))
	b = b[2:]
	if n == 0 {
		return nil, nil, fmt.Errorf("%w: %s %s count is 0", ErrMalformed, what, field)
	}
	if n > len(b)/4 {
		return nil, nil, fmt.Errorf("%w: %s %s count %d needs %d octets, have %d", ErrMalformed, what, field, n, 4*n, len(b))
	}
	out := make([]uint32, n)
	for i := range out {
		out[i] = binary.BigEndian.Uint32(b[4*i:])
	}
	return out, b[4*n:], nil
}

// RSN parses the first RSN element of es (IEEE 802.11-2020 §9.4.2.24).
// ErrNotFound if there is none; otherwise as ParseRSN.
func (es Elements) RSN() (RSN, error) {
	e, ok := es.Find(IDRSN)
	if !ok {
		return RSN{}, fmt.Errorf("%w: RSN", ErrNotFound)
	}
	return ParseRSN(e.Body)
}

// WPA parses the WPA1 element of es: the Vendor Specific element (IEEE
// 802.11-2020 §9.4.2.25) with OUI 00-50-F2 and type 1 that pre-802.11i WPA
// APs send. Its body after OUI and type is laid out like an RSN element's
// up to the capabilities, with 00-50-F2 suites. ErrNotFound if there is none,
// ErrMalformed as for ParseRSN.
func (es Elements) WPA() (RSN, error) {
	e, ok := es.FindVendor(OUIMicrosoft, 1)
	if !ok {
		return RSN{}, fmt.Errorf("%w: WPA vendor element", ErrNotFound)
	}
	return ParseWPA(e.Body)
}

// ParseWPA parses the body of a WPA1 vendor element, starting with the OUI
// 00-50-F2 and type 1 (see Elements.WPA).
func ParseWPA(body []byte) (RSN, error) {
	if len(body) < 4 || [3]byte(body[:3]) != OUIMicrosoft || body[3] != 1 {
		return RSN{}, fmt.Errorf("%w: WPA element does not start with 00-50-F2 type 1", ErrMalformed)
	}
	body = body[4:]
	if len(body) < 2 {
		return RSN{}, fmt.Errorf("%w: WPA version needs 2 octets, have %d", ErrMalformed, len(body))
	}
	r := RSN{Version: binary.LittleEndian.Uint16(body)}
	if r.Version != 1 {
		return RSN{}, fmt.Errorf("%w: WPA version %d, want 1", ErrMalformed, r.Version)
	}
	return parseSuites(r, body[2:], "WPA", OUIMicrosoft)
}

// Marshal returns r as a whole RSN element, ID and length included (IEEE
// 802.11-2020 §9.4.2.24). It writes Version (1 if 0), the group cipher
// suite, the pairwise and AKM suite lists and the capabilities always; the
// PMKID count and list only when there are PMKIDs or a GroupMgmtCipher;
// GroupMgmtCipher only when non-zero. So an element received without its
// capabilities, or with a PMKID count of 0 and nothing after, does not come
// back byte for byte. Errors: ErrMalformed with no pairwise or no AKM suite,
// ErrTooLong past 255 octets of body.
func (r RSN) Marshal() ([]byte, error) { return AppendRSN(nil, r) }

// AppendRSN appends r as an RSN element; see RSN.Marshal.
func AppendRSN(b []byte, r RSN) ([]byte, error) {
	if len(r.PairwiseCiphers) == 0 || len(r.AKMs) == 0 {
		return b, fmt.Errorf("%w: RSN needs at least one pairwise cipher suite and one AKM suite", ErrMalformed)
	}
	n := 2 + 4 + 2 + 4*len(r.PairwiseCiphers) + 2 + 4*len(r.AKMs) + 2
	if len(r.PMKIDs) > 0 || r.GroupMgmtCipher != 0 {
		n += 2 + PMKIDLen*len(r.PMKIDs)
	}
	if r.GroupMgmtCipher != 0 {
		n += 4
	}
	if n > maxBody {
		return b, fmt.Errorf("%w: RSN body of %d octets exceeds %d", ErrTooLong, n, maxBody)
	}
	v := r.Version
	if v == 0 {
		v = RSNVersion
	}
	b = append(b, byte(IDRSN), byte(n))
	b = binary.LittleEndian.AppendUint16(b, v)
	b = binary.BigEndian.AppendUint32(b, uint32(r.GroupCipher))
	b = binary.LittleEndian.AppendUint16(b, uint16(len(r.PairwiseCiphers)))
	for _, s := range r.PairwiseCiphers {
		b = binary.BigEndian.AppendUint32(b, uint32(s))
	}
	b = binary.LittleEndian.AppendUint16(b, uint16(len(r.AKMs)))
	for _, s := range r.AKMs {
		b = binary.BigEndian.AppendUint32(b, uint32(s))
	}
	b = binary.LittleEndian.AppendUint16(b, uint16(r.Capabilities))
	if len(r.PMKIDs) > 0 || r.GroupMgmtCipher != 0 {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(r.PMKIDs)))
		for _, p := range r.PMKIDs {
			b = append(b, p[:]...)
		}
	}
	if r.GroupMgmtCipher != 0 {
		b = binary.BigEndian.AppendUint32(b, uint32(r.GroupMgmtCipher))
	}
	return b, nil
}
