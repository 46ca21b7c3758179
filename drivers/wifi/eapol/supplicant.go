package eapol

import (
	"bytes"
	"fmt"
	"io"
)

// SupplicantConfig configures a Supplicant, the station side of the 4-way
// and group key handshakes.
type SupplicantConfig struct {
	// PMK is the 32-byte pairwise master key (PMK or PMKFromHex).
	PMK []byte
	// SPA is the station's own MAC address, AA the AP's (the BSSID).
	SPA, AA [6]byte
	// RSNE is the station's RSN element, whole (ID 0x30, length, body), as
	// sent in its (Re)Association Request; it goes into message 2.
	RSNE []byte
	// APRSNE is the AP's RSN element from its Beacon or Probe Response.
	// Message 3 must carry the same bytes, else the handshake is refused
	// with ErrRSNEMismatch (IEEE 802.11-2020 §12.7.6.4): a difference means
	// someone downgraded the beacon.
	APRSNE []byte
	// Rand supplies the SNonce; nil means crypto/rand.
	Rand io.Reader
}

// supplicant states (IEEE 802.11-2020 §12.7.10, simplified).
type supState uint8

const (
	supIdle   supState = iota // no message 1 yet, or waiting for a rekey
	supWaitM3                 // message 2 sent
)

// Supplicant runs the station side of the 4-way handshake (IEEE
// 802.11-2020 §12.7.6) and of the group key handshake (§12.7.7) over
// EAPOL-Key frames with key descriptor version 2 (WPA2-PSK, CCMP-128). It
// is not safe for concurrent use; one per association.
type Supplicant struct {
	cfg    SupplicantConfig
	rand   io.Reader
	state  supState
	rcSet  bool   // whether rc holds a counter yet
	rc     uint64 // replay counter of the last frame whose MIC verified
	anonce [NonceLen]byte
	snonce [NonceLen]byte
	tptk   PTK // derived at message 1, confirmed by message 3's MIC
	ptk    PTK // installed
	hasPTK bool
	gtk    *GroupKey // installed
}

// NewSupplicant checks cfg (PMK of 32 bytes, both RSN elements whole)
// and returns a Supplicant waiting for message 1. Errors wrap ErrConfig or
// ErrPSK.
func NewSupplicant(cfg SupplicantConfig) (*Supplicant, error) {
	if len(cfg.PMK) != PMKLen {
		return nil, fmt.Errorf("%w (PMK is %d bytes)", ErrPSK, len(cfg.PMK))
	}
	if err := checkRSNE("RSNE", cfg.RSNE); err != nil {
		return nil, err
	}
	if err := checkRSNE("APRSNE", cfg.APRSNE); err != nil {
		return nil, err
	}
	cfg.PMK = bytes.Clone(cfg.PMK)
	cfg.RSNE = bytes.Clone(cfg.RSNE)
	cfg.APRSNE = bytes.Clone(cfg.APRSNE)
	return &Supplicant{cfg: cfg, rand: randReader(cfg.Rand)}, nil
}

// Handle processes one EAPOL-Key frame from the AP (an EAPOL PDU, see
// ParseKeyFrame) and returns the frame to send back, if any, and the keys
// to install, if any. Send the reply first, then install: message 4 must
// leave before the new PTK is in use (IEEE 802.11-2020 §12.7.6.5), and
// group message 2 goes out under the PTK already installed.
//
//   - Message 1: derives the PTK from a fresh SNonce (kept across
//     retransmitted message 1s) and replies message 2 with RSNE.
//   - Message 3: checks the ANonce is message 1's (ErrNonceMismatch), the
//     MIC (ErrMICFailure), unwraps the Key Data (ErrUnwrap, ErrKeyData),
//     checks its RSN element is APRSNE (ErrRSNEMismatch), and replies
//     message 4 with Keys{PTK, GTK}. A retransmitted message 3 after that
//     is answered with message 4 again but returns no keys, so the PTK is
//     never reinstalled (the KRACK attack, CVE-2017-13077).
//   - Group message 1: after the 4-way handshake, checks the MIC, unwraps
//     the GTK and replies group message 2 with Keys{GTK}, or no keys when
//     the GTK is the one already installed (CVE-2017-13080).
//
// Every frame's replay counter must exceed that of the last frame whose
// MIC verified (ErrReplay). Frames of other descriptor versions are
// ErrUnsupportedVersion; frames not expected now, ErrUnexpected. An error
// leaves the state as it was: the frame is dropped, as the standard
// requires, and the handshake can go on with the AP's retransmission.
func (s *Supplicant) Handle(frame []byte) (reply []byte, keys *Keys, err error) {
	f, err := ParseKeyFrame(frame)
	if err != nil {
		return nil, nil, err
	}
	if v := f.Info.Version(); v != DescVersionHMACSHA1 {
		return nil, nil, fmt.Errorf("%w: %d", ErrUnsupportedVersion, v)
	}
	if !f.Info.Has(InfoAck) || f.Info&(InfoRequest|InfoError|InfoSMK) != 0 {
		return nil, nil, fmt.Errorf("%w: key information %#04x is not from an authenticator", ErrUnexpected, uint16(f.Info))
	}
	if s.rcSet && f.ReplayCounter <= s.rc {
		return nil, nil, fmt.Errorf("%w: counter %d, last verified %d", ErrReplay, f.ReplayCounter, s.rc)
	}
	switch {
	case f.Info.Has(InfoPairwise) && !f.Info.Has(InfoMIC):
		return s.message1(f)
	case f.Info.Has(InfoPairwise):
		return s.message3(frame, f)
	case f.Info.Has(InfoMIC | InfoSecure):
		return s.groupMessage1(frame, f)
	}
	return nil, nil, fmt.Errorf("%w: group message without MIC and Secure", ErrUnexpected)
}

func (s *Supplicant) message1(f *KeyFrame) ([]byte, *Keys, error) {
	if s.state != supWaitM3 {
		// A new handshake (the first, or a PTK rekey): a new SNonce. A
		// retransmitted message 1 keeps it, so whichever message 2 the AP
		// answers, the PTK is the one derived here.
		n, err := newNonce(s.rand)
		if err != nil {
			return nil, nil, err
		}
		s.snonce = n
	}
	tptk, err := DerivePTK(s.cfg.PMK, s.cfg.AA, s.cfg.SPA, f.Nonce, s.snonce)
	if err != nil {
		return nil, nil, err
	}
	m2 := &KeyFrame{
		ProtocolVersion: f.ProtocolVersion,
		Info:            DescVersionHMACSHA1 | InfoPairwise | InfoMIC,
		ReplayCounter:   f.ReplayCounter,
		Nonce:           s.snonce,
		KeyData:         s.cfg.RSNE,
	}
	reply, err := build(m2, tptk.KCK[:])
	if err != nil {
		return nil, nil, err
	}
	s.anonce, s.tptk, s.state = f.Nonce, tptk, supWaitM3
	return reply, nil, nil
}

func (s *Supplicant) message3(frame []byte, f *KeyFrame) ([]byte, *Keys, error) {
	if !f.Info.Has(InfoMIC|InfoInstall|InfoSecure|InfoEncryptedKeyData) || f.Info.Has(InfoError) {
		return nil, nil, fmt.Errorf("%w: message 3 key information %#04x lacks MIC, Install, Secure or Encrypted Key Data", ErrUnexpected, uint16(f.Info))
	}
	retransmit := false
	switch {
	case s.state == supWaitM3:
	case s.hasPTK && f.Nonce == s.anonce:
		// Our message 4 was lost and the AP sent message 3 again.
		retransmit = true
	default:
		return nil, nil, fmt.Errorf("%w: message 3 before message 1", ErrUnexpected)
	}
	if f.Nonce != s.anonce {
		return nil, nil, ErrNonceMismatch
	}
	ptk := s.tptk
	if retransmit {
		ptk = s.ptk
	}
	if err := VerifyMIC(ptk.KCK[:], frame); err != nil {
		return nil, nil, fmt.Errorf("message 3: %w", err)
	}
	kd, err := unwrapKeyData(ptk.KEK[:], f)
	if err != nil {
		return nil, nil, fmt.Errorf("message 3: %w", err)
	}
	if !bytes.Equal(kd.RSNE, s.cfg.APRSNE) {
		return nil, nil, fmt.Errorf("message 3: %w: differs from the beacon's", ErrRSNEMismatch)
	}
	m4 := &KeyFrame{
		ProtocolVersion: f.ProtocolVersion,
		Info:            DescVersionHMACSHA1 | InfoPairwise | InfoMIC | InfoSecure,
		ReplayCounter:   f.ReplayCounter,
	}
	reply, err := build(m4, ptk.KCK[:])
	if err != nil {
		return nil, nil, err
	}
	// The frame is authentic: from here its counter is the floor.
	s.rc, s.rcSet = f.ReplayCounter, true
	if retransmit {
		return reply, nil, nil
	}
	s.ptk, s.hasPTK, s.state = ptk, true, supIdle
	s.tptk = PTK{}
	keys := &Keys{PTK: new(PTK)}
	*keys.PTK = ptk
	if kd.GTK != nil {
		kd.GTK.RSC = f.RSC
		s.gtk = kd.GTK
		keys.GTK = cloneGroupKey(kd.GTK)
	}
	return reply, keys, nil
}

func (s *Supplicant) groupMessage1(frame []byte, f *KeyFrame) ([]byte, *Keys, error) {
	if !s.hasPTK {
		return nil, nil, fmt.Errorf("%w: group message 1 before the 4-way handshake", ErrUnexpected)
	}
	if err := VerifyMIC(s.ptk.KCK[:], frame); err != nil {
		return nil, nil, fmt.Errorf("group message 1: %w", err)
	}
	kd, err := unwrapKeyData(s.ptk.KEK[:], f)
	if err != nil {
		return nil, nil, fmt.Errorf("group message 1: %w", err)
	}
	if kd.GTK == nil {
		return nil, nil, fmt.Errorf("group message 1: %w: no GTK KDE", ErrKeyData)
	}
	g2 := &KeyFrame{
		ProtocolVersion: f.ProtocolVersion,
		Info:            DescVersionHMACSHA1 | InfoMIC | InfoSecure,
		ReplayCounter:   f.ReplayCounter,
	}
	reply, err := build(g2, s.ptk.KCK[:])
	if err != nil {
		return nil, nil, err
	}
	s.rc, s.rcSet = f.ReplayCounter, true
	if sameGroupKey(kd.GTK, s.gtk) {
		return reply, nil, nil
	}
	kd.GTK.RSC = f.RSC
	s.gtk = kd.GTK
	return reply, &Keys{GTK: cloneGroupKey(kd.GTK)}, nil
}

// cloneGroupKey copies g so the caller cannot alter the state machine's.
func cloneGroupKey(g *GroupKey) *GroupKey {
	c := *g
	c.Key = bytes.Clone(g.Key)
	return &c
}
