package eapol

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
)

// EAPOL header values (IEEE 802.1X-2004 §7.5).
const (
	// ProtocolVersion is the EAPOL version this package sends in frames it
	// originates: 2, IEEE 802.1X-2004, what hostapd sends by default and
	// every supplicant accepts. Replies echo the peer's version.
	ProtocolVersion = 2
	// PacketTypeKey is the EAPOL packet type of an EAPOL-Key frame.
	PacketTypeKey = 3
	// DescriptorRSN is the key descriptor type of IEEE 802.11 RSN frames
	// (IEEE 802.11-2020 §12.7.2).
	DescriptorRSN = 2
)

// Layout of an EAPOL-Key frame with a 16-byte MIC (IEEE 802.11-2020
// §12.7.2, Figure 12-32), as offsets from the start of the EAPOL header.
const (
	headerLen     = 4             // version, type, body length (2)
	offInfo       = headerLen + 1 // after the descriptor type
	offKeyLen     = offInfo + 2
	offReplay     = offKeyLen + 2
	offNonce      = offReplay + 8
	offIV         = offNonce + 32
	offRSC        = offIV + 16
	offID         = offRSC + 8 // reserved (was Key ID)
	offMIC        = offID + 8
	offKeyDataLen = offMIC + 16
	offKeyData    = offKeyDataLen + 2
	// MinFrameLen is the length of an EAPOL-Key frame with no Key Data:
	// the 4-byte EAPOL header and the 95-byte fixed key descriptor.
	MinFrameLen = offKeyData
	// MICLen is the MIC field length for the AKMs this package handles.
	MICLen = 16
)

// EtherType is the EtherType of EAPOL frames (IEEE 802.1X-2020 §11.1.4):
// what a packet socket for the handshakes listens on.
const EtherType = 0x888e

// KeyInfo is the Key Information field of an EAPOL-Key frame, a 16-bit
// big-endian bit field (IEEE 802.11-2020 §12.7.2, Figure 12-33).
type KeyInfo uint16

// Key Information bits (IEEE 802.11-2020 §12.7.2).
const (
	// InfoVersionMask selects the key descriptor version (bits 0-2).
	InfoVersionMask KeyInfo = 0x0007
	// InfoPairwise is the Key Type bit: set for the 4-way handshake
	// (pairwise), clear for the group key handshake.
	InfoPairwise KeyInfo = 1 << 3
	// InfoInstall asks the supplicant to install the pairwise key (msg 3).
	InfoInstall KeyInfo = 1 << 6
	// InfoAck is set in frames from the Authenticator that want a reply.
	InfoAck KeyInfo = 1 << 7
	// InfoMIC says the MIC field is valid.
	InfoMIC KeyInfo = 1 << 8
	// InfoSecure says the keys are installed (msg 3, msg 4, group msgs).
	InfoSecure KeyInfo = 1 << 9
	// InfoError marks a supplicant's MIC failure report.
	InfoError KeyInfo = 1 << 10
	// InfoRequest marks a supplicant's request frame.
	InfoRequest KeyInfo = 1 << 11
	// InfoEncryptedKeyData says the Key Data is AES-key-wrapped with the KEK.
	InfoEncryptedKeyData KeyInfo = 1 << 12
	// InfoSMK marks SMK handshake messages (obsolete; never accepted here).
	InfoSMK KeyInfo = 1 << 13
)

// Key descriptor versions (IEEE 802.11-2020 §12.7.2, Key Information bits
// 0-2).
const (
	// DescVersionHMACSHA1 (2): HMAC-SHA1-128 MIC, AES key wrap; the one for
	// WPA2 with CCMP (AKMs 00-0F-AC:1 and :2).
	DescVersionHMACSHA1 = 2
	// DescVersionAESCMAC (3): AES-128-CMAC MIC, AES key wrap (AKMs
	// 00-0F-AC:3..6).
	DescVersionAESCMAC = 3
)

// Version returns the key descriptor version, bits 0-2.
func (k KeyInfo) Version() uint8 { return uint8(k & InfoVersionMask) }

// Has reports whether all bits of b are set in k.
func (k KeyInfo) Has(b KeyInfo) bool { return k&b == b }

// KeyFrame is a parsed EAPOL-Key frame with an RSN key descriptor and a
// 16-byte MIC (IEEE 802.1X-2004 §7.5, IEEE 802.11-2020 §12.7.2). Fixed
// fields are held by value; KeyData aliases the parsed buffer.
type KeyFrame struct {
	// ProtocolVersion is the EAPOL header version (1, 2 or 3).
	ProtocolVersion uint8
	// Info is the Key Information field.
	Info KeyInfo
	// KeyLength is the pairwise cipher's key length in bytes (16 for
	// CCMP in message 1 and 3), zero elsewhere.
	KeyLength uint16
	// ReplayCounter is the Key Replay Counter, big-endian on the wire.
	ReplayCounter uint64
	// Nonce is the ANonce (messages 1, 3) or SNonce (message 2).
	Nonce [NonceLen]byte
	// IV is the EAPOL-Key IV, zero for descriptor versions 2 and 3.
	IV [16]byte
	// RSC is the receive sequence counter of the GTK, as it is on the
	// wire (the packet number, least significant byte first).
	RSC [8]byte
	// ID is the reserved field once called Key ID; sent as zero.
	ID [8]byte
	// MIC is the Key MIC.
	MIC [MICLen]byte
	// KeyData is the Key Data field, encrypted or not.
	KeyData []byte
}

// ParseKeyFrame parses the EAPOL PDU b (from the EAPOL version byte; no
// Ethernet or 802.11 header) as an EAPOL-Key frame. It is strict and never
// panics: the EAPOL version must be 1..3 and the type 3 (else ErrNotKey),
// the descriptor type 2 (ErrDescriptor); b must hold the declared body
// (ErrShort) and nothing after it (ErrLength); the body must be at least
// the 95-byte fixed descriptor (ErrShort) and the Key Data Length must
// account for the rest of it exactly (ErrLength).
func ParseKeyFrame(b []byte) (*KeyFrame, error) {
	if len(b) < headerLen {
		return nil, fmt.Errorf("%w: %d bytes, EAPOL header is %d", ErrShort, len(b), headerLen)
	}
	if b[0] < 1 || b[0] > 3 {
		return nil, fmt.Errorf("%w: EAPOL protocol version %d", ErrNotKey, b[0])
	}
	if b[1] != PacketTypeKey {
		return nil, fmt.Errorf("%w: EAPOL packet type %d", ErrNotKey, b[1])
	}
	body := int(binary.BigEndian.Uint16(b[2:4]))
	if len(b)-headerLen < body {
		return nil, fmt.Errorf("%w: body length %d, %d bytes present", ErrShort, body, len(b)-headerLen)
	}
	if len(b)-headerLen > body {
		return nil, fmt.Errorf("%w: %d bytes after the %d-byte body", ErrLength, len(b)-headerLen-body, body)
	}
	if len(b) < MinFrameLen {
		return nil, fmt.Errorf("%w: key descriptor is %d bytes, at least %d needed", ErrShort, body, MinFrameLen-headerLen)
	}
	if b[headerLen] != DescriptorRSN {
		return nil, fmt.Errorf("%w: descriptor type %d", ErrDescriptor, b[headerLen])
	}
	kdl := int(binary.BigEndian.Uint16(b[offKeyDataLen:]))
	if kdl != len(b)-offKeyData {
		return nil, fmt.Errorf("%w: key data length %d, %d bytes follow", ErrLength, kdl, len(b)-offKeyData)
	}
	f := &KeyFrame{
		ProtocolVersion: b[0],
		Info:            KeyInfo(binary.BigEndian.Uint16(b[offInfo:])),
		KeyLength:       binary.BigEndian.Uint16(b[offKeyLen:]),
		ReplayCounter:   binary.BigEndian.Uint64(b[offReplay:]),
		KeyData:         b[offKeyData:],
	}
	copy(f.Nonce[:], b[offNonce:])
	copy(f.IV[:], b[offIV:])
	copy(f.RSC[:], b[offRSC:])
	copy(f.ID[:], b[offID:])
	copy(f.MIC[:], b[offMIC:])
	return f, nil
}

// Marshal encodes f as an EAPOL PDU (header, RSN key descriptor, Key
// Data) with f.MIC as it stands; use SetMIC afterwards to compute it. A
// zero ProtocolVersion is sent as ProtocolVersion (2). Key Data longer
// than the 16-bit body length allows is ErrLength.
func (f *KeyFrame) Marshal() ([]byte, error) {
	if len(f.KeyData) > 0xffff-(MinFrameLen-headerLen) {
		return nil, fmt.Errorf("%w: key data of %d bytes does not fit", ErrLength, len(f.KeyData))
	}
	b := make([]byte, MinFrameLen+len(f.KeyData))
	b[0] = f.ProtocolVersion
	if b[0] == 0 {
		b[0] = ProtocolVersion
	}
	b[1] = PacketTypeKey
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)-headerLen))
	b[headerLen] = DescriptorRSN
	binary.BigEndian.PutUint16(b[offInfo:], uint16(f.Info))
	binary.BigEndian.PutUint16(b[offKeyLen:], f.KeyLength)
	binary.BigEndian.PutUint64(b[offReplay:], f.ReplayCounter)
	copy(b[offNonce:], f.Nonce[:])
	copy(b[offIV:], f.IV[:])
	copy(b[offRSC:], f.RSC[:])
	copy(b[offID:], f.ID[:])
	copy(b[offMIC:], f.MIC[:])
	binary.BigEndian.PutUint16(b[offKeyDataLen:], uint16(len(f.KeyData)))
	copy(b[offKeyData:], f.KeyData)
	return b, nil
}

// ComputeMIC returns the MIC of the EAPOL PDU frame under kck, computed
// over the whole PDU with its MIC field taken as zero (IEEE 802.11-2020
// §12.7.2): HMAC-SHA1 truncated to 16 bytes for key descriptor version 2,
// AES-128-CMAC for version 3; the version is read from the frame's Key
// Information. frame is not modified. Frames shorter than MinFrameLen are
// ErrShort, other versions ErrUnsupportedVersion. Only the frame's own
// length is trusted, so call it on frames from ParseKeyFrame or Marshal.
func ComputeMIC(kck, frame []byte) ([MICLen]byte, error) {
	var mic [MICLen]byte
	if len(frame) < MinFrameLen {
		return mic, fmt.Errorf("%w: %d bytes", ErrShort, len(frame))
	}
	// Zero the MIC in a copy: the caller's buffer may be shared (the
	// fuzzer's, a retransmission's) and must not change under it.
	buf := make([]byte, len(frame))
	copy(buf, frame)
	clear(buf[offMIC : offMIC+MICLen])
	switch v := KeyInfo(binary.BigEndian.Uint16(frame[offInfo:])).Version(); v {
	case DescVersionHMACSHA1:
		h := hmac.New(sha1.New, kck)
		h.Write(buf)
		copy(mic[:], h.Sum(nil))
	case DescVersionAESCMAC:
		t, err := CMAC(kck, buf)
		if err != nil {
			return mic, err
		}
		mic = t
	default:
		return mic, fmt.Errorf("%w: %d", ErrUnsupportedVersion, v)
	}
	return mic, nil
}

// SetMIC computes the MIC of frame under kck (see ComputeMIC) and writes
// it into frame's MIC field in place.
func SetMIC(kck, frame []byte) error {
	mic, err := ComputeMIC(kck, frame)
	if err != nil {
		return err
	}
	copy(frame[offMIC:], mic[:])
	return nil
}

// VerifyMIC checks frame's MIC field against the MIC computed under kck,
// in constant time (hmac.Equal). A mismatch is ErrMICFailure; other errors
// are those of ComputeMIC.
func VerifyMIC(kck, frame []byte) error {
	mic, err := ComputeMIC(kck, frame)
	if err != nil {
		return err
	}
	if !hmac.Equal(mic[:], frame[offMIC:offMIC+MICLen]) {
		return ErrMICFailure
	}
	return nil
}
