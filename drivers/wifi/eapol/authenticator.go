package eapol

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
)

// DefaultMaxAttempts is how many times an Authenticator sends each
// message (the first send and its retries) before ErrRetriesExhausted:
// the default of dot11RSNAConfigPairwiseUpdateCount and
// dot11RSNAConfigGroupUpdateCount (IEEE 802.11-2020 Annex C), as hostapd.
const DefaultMaxAttempts = 4

// AuthenticatorConfig configures an Authenticator, the AP side of the
// 4-way and group key handshakes with one station.
type AuthenticatorConfig struct {
	// PMK is the 32-byte pairwise master key (PMK or PMKFromHex).
	PMK []byte
	// AA is the AP's own MAC address (the BSSID), SPA the station's.
	AA, SPA [6]byte
	// RSNE is the AP's RSN element, whole, exactly as in its Beacons and
	// Probe Responses; it goes into message 3 for the station to compare.
	RSNE []byte
	// STARSNE, if set, is the station's RSN element from its
	// (Re)Association Request; message 2 must carry the same bytes
	// (IEEE 802.11-2020 §12.7.6.3), else ErrRSNEMismatch.
	STARSNE []byte
	// GTK is the current group key (index 1..3, 16 bytes for CCMP, and
	// its current transmit sequence counter as RSC), sent in message 3.
	// Its RSC is read once: a PTK rekey later in the association resends
	// it as it was, which only lets the station accept group frames a
	// little older than it could; make a new Authenticator per
	// association so each starts from the current counter.
	GTK *GroupKey
	// Rand supplies the ANonce; nil means crypto/rand.
	Rand io.Reader
	// MaxAttempts is how many times each message is sent in all before
	// Retry gives ErrRetriesExhausted; 0 means DefaultMaxAttempts.
	MaxAttempts int
}

type authState uint8

const (
	authIdle   authState = iota // Start not called
	authWaitM2                  // message 1 sent
	authWaitM4                  // message 3 sent
	authDone                    // PTK in place, no handshake running
	authWaitG2                  // group message 1 sent
	authFailed                  // retries exhausted; Start again or deauth
)

// Authenticator runs the AP side of the 4-way handshake (IEEE 802.11-2020
// §12.7.6) and group key handshake (§12.7.7) with one station, over
// EAPOL-Key frames with key descriptor version 2 (WPA2-PSK, CCMP-128).
// The caller sends the frames, and calls Retry when its retransmission
// timer fires (hostapd's defaults: 100 ms before the first retry of a
// 4-way message, 1 s between later ones). It is not safe for concurrent
// use.
type Authenticator struct {
	cfg      AuthenticatorConfig
	rand     io.Reader
	state    authState
	rc       uint64 // the last replay counter sent
	firstRC  uint64 // the counter of the first send of the message in flight
	attempts int    // sends of the message in flight
	last     []byte // the message in flight, for Retry
	anonce   [NonceLen]byte
	ptk      PTK
	gtk      *GroupKey // the station's GTK once it acknowledged
	pending  *GroupKey // the GTK in flight in message 3 or group message 1
}

// NewAuthenticator checks cfg (PMK of 32 bytes, whole RSN elements, a GTK
// of 16..32 bytes with index 0..3) and returns an Authenticator. Errors
// wrap ErrConfig or ErrPSK.
func NewAuthenticator(cfg AuthenticatorConfig) (*Authenticator, error) {
	if len(cfg.PMK) != PMKLen {
		return nil, fmt.Errorf("%w (PMK is %d bytes)", ErrPSK, len(cfg.PMK))
	}
	if err := checkRSNE("RSNE", cfg.RSNE); err != nil {
		return nil, err
	}
	if cfg.STARSNE != nil {
		if err := checkRSNE("STARSNE", cfg.STARSNE); err != nil {
			return nil, err
		}
	}
	if err := checkGroupKey(cfg.GTK); err != nil {
		return nil, err
	}
	if cfg.MaxAttempts < 0 {
		return nil, fmt.Errorf("%w: MaxAttempts %d", ErrConfig, cfg.MaxAttempts)
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	cfg.PMK = bytes.Clone(cfg.PMK)
	cfg.RSNE = bytes.Clone(cfg.RSNE)
	cfg.STARSNE = bytes.Clone(cfg.STARSNE)
	cfg.GTK = cloneGroupKey(cfg.GTK)
	return &Authenticator{cfg: cfg, rand: randReader(cfg.Rand)}, nil
}

func checkGroupKey(g *GroupKey) error {
	if g == nil || len(g.Key) < 16 || len(g.Key) > 32 || g.Index > 3 {
		return fmt.Errorf("%w: GTK must be 16..32 bytes with index 0..3", ErrConfig)
	}
	return nil
}

// Start begins a 4-way handshake (on association, or to rekey the PTK)
// with a fresh ANonce and returns message 1. It fails only if Rand does.
func (a *Authenticator) Start() (msg1 []byte, err error) {
	n, err := newNonce(a.rand)
	if err != nil {
		return nil, err
	}
	a.anonce = n
	m1 := &KeyFrame{
		Info:          DescVersionHMACSHA1 | InfoPairwise | InfoAck,
		KeyLength:     TKLen,
		ReplayCounter: a.rc + 1,
		Nonce:         a.anonce,
	}
	b, err := build(m1, nil)
	if err != nil {
		return nil, err
	}
	a.send(b, authWaitM2)
	return b, nil
}

// send records b as the message in flight, its first attempt.
func (a *Authenticator) send(b []byte, st authState) {
	a.rc++
	a.firstRC, a.attempts, a.last, a.state = a.rc, 1, b, st
}

// Retry returns the message in flight again with the next replay counter
// (and a new MIC where it has one), for the caller's retransmission
// timer. After MaxAttempts sends in all it returns ErrRetriesExhausted and
// the handshake is over: the caller deauthenticates the station (or calls
// Start again). With no message in flight it is ErrUnexpected.
func (a *Authenticator) Retry() ([]byte, error) {
	switch a.state {
	case authWaitM2, authWaitM4, authWaitG2:
	default:
		return nil, fmt.Errorf("%w: nothing to retransmit", ErrUnexpected)
	}
	if a.attempts >= a.cfg.MaxAttempts {
		a.state, a.last = authFailed, nil
		return nil, fmt.Errorf("%w after %d attempts", ErrRetriesExhausted, a.attempts)
	}
	b := bytes.Clone(a.last)
	binary.BigEndian.PutUint64(b[offReplay:], a.rc+1)
	if KeyInfo(binary.BigEndian.Uint16(b[offInfo:])).Has(InfoMIC) {
		if err := SetMIC(a.ptk.KCK[:], b); err != nil {
			return nil, err
		}
	}
	a.rc++
	a.attempts++
	a.last = b
	return b, nil
}

// RekeyGroup starts a group key handshake (IEEE 802.11-2020 §12.7.7) to
// give the station g, and returns group message 1. It needs a completed
// 4-way handshake and no handshake in flight (else ErrUnexpected); g is
// checked as in NewAuthenticator.
func (a *Authenticator) RekeyGroup(g *GroupKey) (msg1 []byte, err error) {
	if a.state != authDone {
		return nil, fmt.Errorf("%w: group rekey needs a completed 4-way handshake and none in flight", ErrUnexpected)
	}
	if err := checkGroupKey(g); err != nil {
		return nil, err
	}
	g = cloneGroupKey(g)
	kd, err := wrapKeyData(a.ptk.KEK[:], AppendGTKKDE(nil, g))
	if err != nil {
		return nil, err
	}
	m := &KeyFrame{
		Info:          DescVersionHMACSHA1 | InfoAck | InfoMIC | InfoSecure | InfoEncryptedKeyData,
		ReplayCounter: a.rc + 1,
		RSC:           g.RSC,
		KeyData:       kd,
	}
	b, err := build(m, a.ptk.KCK[:])
	if err != nil {
		return nil, err
	}
	a.pending = g
	a.send(b, authWaitG2)
	return b, nil
}

// Handle processes one EAPOL-Key frame from the station and returns the
// frame to send back, if any, and the keys to install, if any.
//
//   - Message 2: derives the PTK from the SNonce and checks the MIC. A
//     failure is ErrMICFailure, which at this point almost always means
//     the station's passphrase differs from ours: surface it as "wrong
//     passphrase". Then checks the RSN element against STARSNE
//     (ErrRSNEMismatch) and replies message 3 with the RSNE and the GTK.
//   - Message 4: checks the MIC and returns Keys{PTK} (the TK to install
//     for this station) and no reply.
//   - Group message 2: checks the MIC and returns neither: the station
//     has the new GTK.
//
// The replay counter must be one this Authenticator used for the message
// in flight, the first send or a retry (ErrReplay). Requests (Request
// bit: MIC failure reports, rekey requests) are not handled here and are
// ErrUnexpected, like any frame the state does not expect. An error
// leaves the state as it was, so a forged frame cannot end a handshake.
func (a *Authenticator) Handle(frame []byte) (reply []byte, keys *Keys, err error) {
	f, err := ParseKeyFrame(frame)
	if err != nil {
		return nil, nil, err
	}
	if v := f.Info.Version(); v != DescVersionHMACSHA1 {
		return nil, nil, fmt.Errorf("%w: %d", ErrUnsupportedVersion, v)
	}
	if !f.Info.Has(InfoMIC) || f.Info&(InfoAck|InfoRequest|InfoError|InfoSMK|InfoInstall) != 0 {
		return nil, nil, fmt.Errorf("%w: key information %#04x is not a supplicant's reply", ErrUnexpected, uint16(f.Info))
	}
	var want authState
	switch {
	case f.Info.Has(InfoPairwise) && !f.Info.Has(InfoSecure):
		want = authWaitM2
	case f.Info.Has(InfoPairwise):
		want = authWaitM4
	case f.Info.Has(InfoSecure):
		want = authWaitG2
	default:
		return nil, nil, fmt.Errorf("%w: group message without Secure", ErrUnexpected)
	}
	if a.state != want {
		return nil, nil, fmt.Errorf("%w: %s while %s", ErrUnexpected, msgName(want), stateName(a.state))
	}
	if f.ReplayCounter < a.firstRC || f.ReplayCounter > a.rc {
		return nil, nil, fmt.Errorf("%w: counter %d, sent %d..%d", ErrReplay, f.ReplayCounter, a.firstRC, a.rc)
	}
	switch want {
	case authWaitM2:
		return a.message2(frame, f)
	case authWaitM4:
		if err := VerifyMIC(a.ptk.KCK[:], frame); err != nil {
			return nil, nil, fmt.Errorf("message 4: %w", err)
		}
		a.state, a.last = authDone, nil
		a.gtk, a.pending = a.pending, nil
		keys := &Keys{PTK: new(PTK)}
		*keys.PTK = a.ptk
		return nil, keys, nil
	default:
		if err := VerifyMIC(a.ptk.KCK[:], frame); err != nil {
			return nil, nil, fmt.Errorf("group message 2: %w", err)
		}
		a.state, a.last = authDone, nil
		a.gtk, a.pending = a.pending, nil
		return nil, nil, nil
	}
}

func (a *Authenticator) message2(frame []byte, f *KeyFrame) ([]byte, *Keys, error) {
	ptk, err := DerivePTK(a.cfg.PMK, a.cfg.AA, a.cfg.SPA, a.anonce, f.Nonce)
	if err != nil {
		return nil, nil, err
	}
	if err := VerifyMIC(ptk.KCK[:], frame); err != nil {
		return nil, nil, fmt.Errorf("message 2: %w", err)
	}
	kd, err := ParseKeyData(f.KeyData)
	if err != nil {
		return nil, nil, fmt.Errorf("message 2: %w", err)
	}
	if kd.RSNE == nil {
		return nil, nil, fmt.Errorf("message 2: %w: no RSN element", ErrKeyData)
	}
	if a.cfg.STARSNE != nil && !bytes.Equal(kd.RSNE, a.cfg.STARSNE) {
		return nil, nil, fmt.Errorf("message 2: %w: differs from the association request's", ErrRSNEMismatch)
	}
	g := a.cfg.GTK
	if a.gtk != nil {
		g = a.gtk // a PTK rekey keeps the group key the station has
	}
	plain := AppendGTKKDE(bytes.Clone(a.cfg.RSNE), g)
	kdw, err := wrapKeyData(ptk.KEK[:], plain)
	clear(plain)
	if err != nil {
		return nil, nil, err
	}
	m3 := &KeyFrame{
		Info: DescVersionHMACSHA1 | InfoPairwise | InfoInstall | InfoAck | InfoMIC |
			InfoSecure | InfoEncryptedKeyData,
		KeyLength:     TKLen,
		ReplayCounter: a.rc + 1,
		Nonce:         a.anonce,
		RSC:           g.RSC,
		KeyData:       kdw,
	}
	b, err := build(m3, ptk.KCK[:])
	if err != nil {
		return nil, nil, err
	}
	a.ptk, a.pending = ptk, g
	a.send(b, authWaitM4)
	return b, nil, nil
}

func msgName(s authState) string {
	switch s {
	case authWaitM2:
		return "message 2"
	case authWaitM4:
		return "message 4"
	}
	return "group message 2"
}

func stateName(s authState) string {
	switch s {
	case authIdle:
		return "not started"
	case authWaitM2:
		return "waiting for message 2"
	case authWaitM4:
		return "waiting for message 4"
	case authDone:
		return "no handshake in flight"
	case authWaitG2:
		return "waiting for group message 2"
	}
	return "failed"
}
