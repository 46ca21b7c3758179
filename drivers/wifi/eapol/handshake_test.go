package eapol

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// countingRand is a deterministic stand-in for crypto/rand: 0x00, 0x01,
// ... from start. Deterministic nonces make runs reproducible; nothing
// here relies on their values.
type countingRand struct{ next byte }

func (r *countingRand) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.next
		r.next++
	}
	return len(p), nil
}

var (
	// The station's RSN element is the one in the captured message 2;
	// the AP's differs in its capabilities, as real ones may.
	testSTARSNE = []byte{0x30, 0x14, 0x01, 0x00, 0x00, 0x0f, 0xac, 0x04, 0x01, 0x00, 0x00, 0x0f, 0xac, 0x04,
		0x01, 0x00, 0x00, 0x0f, 0xac, 0x02, 0x01, 0x00}
	testAPRSNE = []byte{0x30, 0x14, 0x01, 0x00, 0x00, 0x0f, 0xac, 0x04, 0x01, 0x00, 0x00, 0x0f, 0xac, 0x04,
		0x01, 0x00, 0x00, 0x0f, 0xac, 0x02, 0x0c, 0x00}
	testAA  = [6]byte{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}
	testSPA = [6]byte{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}
	testGTK = &GroupKey{Index: 1, Key: bytes.Repeat([]byte{0x47}, 16), RSC: [8]byte{5, 4, 3, 2, 1}}
	// A fixed PMK (a raw PSK) keeps the fuzz targets fast; PBKDF2 costs
	// milliseconds.
	testPMK = bytes.Repeat([]byte{0x3c}, 32)
)

func newPair(t testing.TB, staPMK, apPMK []byte) (*Supplicant, *Authenticator) {
	t.Helper()
	s, err := NewSupplicant(SupplicantConfig{PMK: staPMK, SPA: testSPA, AA: testAA,
		RSNE: testSTARSNE, APRSNE: testAPRSNE, Rand: &countingRand{0x80}})
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewAuthenticator(AuthenticatorConfig{PMK: apPMK, AA: testAA, SPA: testSPA,
		RSNE: testAPRSNE, STARSNE: testSTARSNE, GTK: testGTK, Rand: &countingRand{0x10}})
	if err != nil {
		t.Fatal(err)
	}
	return s, a
}

// step hands frame to h and fails the test on an error.
func step(t testing.TB, name string, h func([]byte) ([]byte, *Keys, error), frame []byte) ([]byte, *Keys) {
	t.Helper()
	reply, keys, err := h(frame)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return reply, keys
}

// handshake runs a full 4-way handshake and returns its frames and keys.
type handshakeRun struct {
	m1, m2, m3, m4 []byte
	sta, ap        *Keys
}

func runHandshake(t testing.TB, s *Supplicant, a *Authenticator) handshakeRun {
	t.Helper()
	var r handshakeRun
	var err error
	var k *Keys
	if r.m1, err = a.Start(); err != nil {
		t.Fatal(err)
	}
	if r.m2, k = step(t, "message 1", s.Handle, r.m1); k != nil || r.m2 == nil {
		t.Fatalf("message 1 gave keys %v, reply %d bytes", k, len(r.m2))
	}
	if r.m3, k = step(t, "message 2", a.Handle, r.m2); k != nil || r.m3 == nil {
		t.Fatalf("message 2 gave keys %v, reply %d bytes", k, len(r.m3))
	}
	r.m4, r.sta = step(t, "message 3", s.Handle, r.m3)
	var reply []byte
	reply, r.ap = step(t, "message 4", a.Handle, r.m4)
	if reply != nil {
		t.Fatalf("message 4 got a reply")
	}
	return r
}

func TestHandshakeEndToEnd(t *testing.T) {
	s, a := newPair(t, testPMK, testPMK)
	r := runHandshake(t, s, a)
	if r.sta == nil || r.sta.PTK == nil || r.ap == nil || r.ap.PTK == nil {
		t.Fatalf("keys: station %v, AP %v", r.sta, r.ap)
	}
	if *r.sta.PTK != *r.ap.PTK {
		t.Fatal("station and AP derived different PTKs")
	}
	// The PTK is the one the standard's derivation gives for the nonces
	// on the air, not merely one both sides agree on.
	f1, _ := ParseKeyFrame(r.m1)
	f2, _ := ParseKeyFrame(r.m2)
	want, _ := DerivePTK(testPMK, testAA, testSPA, f1.Nonce, f2.Nonce)
	if *r.sta.PTK != want {
		t.Fatal("PTK is not PRF-384 of the nonces sent")
	}
	g := r.sta.GTK
	if g == nil || g.Index != testGTK.Index || !bytes.Equal(g.Key, testGTK.Key) || g.RSC != testGTK.RSC || r.ap.GTK != nil {
		t.Fatalf("GTK delivered %v (RSC %x), AP keys %v", g, g.RSC, r.ap)
	}
	// Message shapes (IEEE 802.11-2020 §12.7.6.2-5).
	f3, _ := ParseKeyFrame(r.m3)
	f4, _ := ParseKeyFrame(r.m4)
	for _, c := range []struct {
		name string
		info KeyInfo
		want KeyInfo
	}{
		{"message 1", f1.Info, 0x008a},
		{"message 2", f2.Info, 0x010a},
		{"message 3", f3.Info, 0x13ca},
		{"message 4", f4.Info, 0x030a},
	} {
		if c.info != c.want {
			t.Errorf("%s key information %#04x, want %#04x", c.name, c.info, c.want)
		}
	}
	if !bytes.Equal(f2.KeyData, testSTARSNE) || len(f4.KeyData) != 0 || f3.Nonce != f1.Nonce ||
		f2.ReplayCounter != f1.ReplayCounter || f4.ReplayCounter != f3.ReplayCounter || f3.ReplayCounter <= f1.ReplayCounter {
		t.Error("message fields do not follow §12.7.6")
	}
	// Message 3's Key Data unwraps under the KEK to the AP's RSNE and the GTK.
	kd, err := unwrapKeyData(want.KEK[:], f3)
	if err != nil || !bytes.Equal(kd.RSNE, testAPRSNE) || !sameGroupKey(kd.GTK, testGTK) {
		t.Errorf("message 3 key data: %+v, %v", kd, err)
	}

	// Group rekey.
	g2 := &GroupKey{Index: 2, Key: bytes.Repeat([]byte{0x99}, 16), RSC: [8]byte{1}}
	gm1, err := a.RekeyGroup(g2)
	if err != nil {
		t.Fatal(err)
	}
	gm2, k := step(t, "group message 1", s.Handle, gm1)
	if k == nil || k.PTK != nil || !sameGroupKey(k.GTK, g2) || k.GTK.RSC != g2.RSC {
		t.Fatalf("group message 1 gave %v", k)
	}
	if fg, _ := ParseKeyFrame(gm2); fg.Info != 0x0302 {
		t.Errorf("group message 2 key information %#04x, want 0x0302", fg.Info)
	}
	if reply, k := step(t, "group message 2", a.Handle, gm2); reply != nil || k != nil {
		t.Fatalf("group message 2 gave %v, %v", reply, k)
	}
	// Replayed, it is refused; the group key is not reinstalled.
	if _, k, err := s.Handle(gm1); !errors.Is(err, ErrReplay) || k != nil {
		t.Errorf("replayed group message 1: %v, %v; want ErrReplay", k, err)
	}

	// A PTK rekey: a new 4-way handshake on the same association.
	r2 := runHandshake(t, s, a)
	if *r2.sta.PTK != *r2.ap.PTK || *r2.sta.PTK == *r.sta.PTK {
		t.Error("PTK rekey: keys differ between sides or equal the old PTK")
	}
	if !sameGroupKey(r2.sta.GTK, g2) {
		t.Errorf("PTK rekey delivered GTK %v, want the current one", r2.sta.GTK)
	}
}

func TestWrongPassphrase(t *testing.T) {
	sta, _ := PMK("correct horse", []byte("skyfleet"))
	ap, _ := PMK("battery staple", []byte("skyfleet"))
	s, a := newPair(t, sta, ap)
	m1, _ := a.Start()
	m2, _ := step(t, "message 1", s.Handle, m1)
	reply, keys, err := a.Handle(m2)
	if !errors.Is(err, ErrMICFailure) || reply != nil || keys != nil {
		t.Fatalf("message 2 with the wrong passphrase: %v, %v, %v; want ErrMICFailure", reply, keys, err)
	}
	if !strings.Contains(err.Error(), "wrong passphrase") {
		t.Errorf("error %q does not say what the user can fix", err)
	}
	// The handshake is still open: the right station can still answer.
	m1r, err := a.Retry()
	if err != nil {
		t.Fatal(err)
	}
	good, _ := newPair(t, ap, ap)
	m2g, _ := step(t, "message 1 (right station)", good.Handle, m1r)
	if _, _, err := a.Handle(m2g); err != nil {
		t.Fatalf("after a MIC failure the right message 2 fails: %v", err)
	}

	// The other way round: a station with another PMK receives the AP's
	// message 3 (made for a station with the AP's PMK) and refuses it.
	s2, _ := newPair(t, sta, ap)
	_, a2 := newPair(t, ap, ap)
	m1, _ = a2.Start()
	step(t, "message 1", s2.Handle, m1)
	good2, _ := newPair(t, ap, ap)
	m2ok, _ := step(t, "message 1", good2.Handle, m1)
	m3, _ := step(t, "message 2", a2.Handle, m2ok)
	if _, _, err := s2.Handle(m3); !errors.Is(err, ErrMICFailure) {
		t.Errorf("message 3 under another PMK: %v, want ErrMICFailure", err)
	}
}

// The captured message 2 of the "Harkonen" network (capture_test.go),
// answered by our Authenticator: a real station's frame, our state machine.
func TestAuthenticatorCapturedMessage2(t *testing.T) {
	for _, tc := range []struct {
		pass string
		want error
	}{{harkonenPass, nil}, {wrongPass, ErrMICFailure}} {
		pmk, _ := PMK(tc.pass, []byte(harkonenSSID))
		gtk := &GroupKey{Index: 1, Key: make([]byte, 16)}
		a, err := NewAuthenticator(AuthenticatorConfig{PMK: pmk, AA: mac6(t, harkonenAA), SPA: mac6(t, harkonenSPA),
			RSNE: testAPRSNE, STARSNE: unhex(t, harkonenSTARSNE), GTK: gtk,
			Rand: bytes.NewReader(unhex(t, harkonenANonce))})
		if err != nil {
			t.Fatal(err)
		}
		m1, err := a.Start()
		if err != nil {
			t.Fatal(err)
		}
		if f, _ := ParseKeyFrame(m1); f.ReplayCounter != 1 || f.Nonce != nonce(t, harkonenANonce) {
			t.Fatalf("message 1: counter %d", f.ReplayCounter)
		}
		m3, _, err := a.Handle(harkonenFrame(t))
		if !errors.Is(err, tc.want) || (err == nil) != (m3 != nil) {
			t.Errorf("passphrase %q: message 3 %d bytes, error %v; want %v", tc.pass, len(m3), err, tc.want)
		}
	}
}

func TestReplayRejected(t *testing.T) {
	s, a := newPair(t, testPMK, testPMK)
	r := runHandshake(t, s, a)
	// Old frames from the AP, replayed to the station.
	for name, f := range map[string][]byte{"message 1": r.m1, "message 3": r.m3} {
		if reply, k, err := s.Handle(f); !errors.Is(err, ErrReplay) || reply != nil || k != nil {
			t.Errorf("replayed %s: %v, %v, %v; want ErrReplay", name, reply, k, err)
		}
	}
	// Old frames from the station, replayed to the AP.
	for name, f := range map[string][]byte{"message 2": r.m2, "message 4": r.m4} {
		if _, k, err := a.Handle(f); err == nil || k != nil {
			t.Errorf("replayed %s accepted", name)
		}
	}
	// A message 2 whose counter is not one the AP sent.
	s, a = newPair(t, testPMK, testPMK)
	m1, _ := a.Start()
	m2, _ := step(t, "message 1", s.Handle, m1)
	for _, rc := range []uint64{0, 2, 1 << 63} {
		b := bytes.Clone(m2)
		binary.BigEndian.PutUint64(b[offReplay:], rc)
		if _, _, err := a.Handle(b); !errors.Is(err, ErrReplay) {
			t.Errorf("message 2 with counter %d: %v, want ErrReplay", rc, err)
		}
	}
	// A message 3 whose counter is not above the last verified one.
	s, a = newPair(t, testPMK, testPMK)
	r = runHandshake(t, s, a)
	gm1, _ := a.RekeyGroup(&GroupKey{Index: 2, Key: make([]byte, 16)})
	b := bytes.Clone(gm1)
	f3, _ := ParseKeyFrame(r.m3)
	binary.BigEndian.PutUint64(b[offReplay:], f3.ReplayCounter)
	if _, _, err := s.Handle(b); !errors.Is(err, ErrReplay) {
		t.Errorf("group message 1 with message 3's counter: %v, want ErrReplay", err)
	}
}

// A message 3 retransmitted after the station answered (its message 4
// lost) gets message 4 again but no keys: reinstalling the PTK would reset
// its nonce (KRACK, CVE-2017-13077).
func TestRetransmittedMessage3NoReinstall(t *testing.T) {
	s, a := newPair(t, testPMK, testPMK)
	m1, _ := a.Start()
	m2, _ := step(t, "message 1", s.Handle, m1)
	m3, _ := step(t, "message 2", a.Handle, m2)
	_, k := step(t, "message 3", s.Handle, m3)
	if k == nil || k.PTK == nil {
		t.Fatal("no PTK")
	}
	// Message 4 is lost; the AP's timer fires.
	m3b, err := a.Retry()
	if err != nil {
		t.Fatal(err)
	}
	f, _ := ParseKeyFrame(m3b)
	if f3, _ := ParseKeyFrame(m3); f.ReplayCounter != f3.ReplayCounter+1 {
		t.Errorf("retry counter %d after %d", f.ReplayCounter, f3.ReplayCounter)
	}
	m4b, k := step(t, "retransmitted message 3", s.Handle, m3b)
	if k != nil {
		t.Fatalf("retransmitted message 3 returned keys %v", k)
	}
	if _, k := step(t, "message 4 to the retry", a.Handle, m4b); k == nil || k.PTK == nil {
		t.Fatal("AP did not complete on message 4")
	}
}

func TestRetryAndCap(t *testing.T) {
	s, a := newPair(t, testPMK, testPMK)
	if _, err := a.Retry(); !errors.Is(err, ErrUnexpected) {
		t.Errorf("Retry before Start: %v", err)
	}
	first, _ := a.Start()
	frames := [][]byte{first}
	for i := 1; i < DefaultMaxAttempts; i++ {
		b, err := a.Retry()
		if err != nil {
			t.Fatalf("retry %d: %v", i, err)
		}
		f, _ := ParseKeyFrame(b)
		if f.ReplayCounter != uint64(i+1) {
			t.Errorf("retry %d: counter %d", i, f.ReplayCounter)
		}
		// Only the counter changes.
		if !bytes.Equal(b[:offReplay], first[:offReplay]) || !bytes.Equal(b[offReplay+8:], first[offReplay+8:]) {
			t.Errorf("retry %d differs from message 1 beyond the counter", i)
		}
		frames = append(frames, b)
	}
	if _, err := a.Retry(); !errors.Is(err, ErrRetriesExhausted) {
		t.Fatalf("retry %d: %v, want ErrRetriesExhausted", DefaultMaxAttempts, err)
	}
	m2, _ := step(t, "message 1", s.Handle, frames[1])
	if _, _, err := a.Handle(m2); !errors.Is(err, ErrUnexpected) {
		t.Errorf("message 2 after retries ran out: %v, want ErrUnexpected", err)
	}

	// A station answering an earlier copy of message 1 is still accepted.
	s, a = newPair(t, testPMK, testPMK)
	m1, _ := a.Start()
	a.Retry()
	a.Retry()
	m2, _ = step(t, "message 1", s.Handle, m1)
	m3, _ := step(t, "message 2 to the first message 1", a.Handle, m2)
	// Message 3 retried: counter and MIC change, and the station takes it.
	a.Retry()
	m3b, _ := a.Retry()
	if bytes.Equal(m3b[offMIC:offMIC+MICLen], m3[offMIC:offMIC+MICLen]) {
		t.Error("retried message 3 kept its MIC")
	}
	m4, k := step(t, "retried message 3", s.Handle, m3b)
	if k == nil || k.PTK == nil {
		t.Fatal("no keys from retried message 3")
	}
	if _, k := step(t, "message 4", a.Handle, m4); k == nil {
		t.Fatal("no keys from message 4")
	}
	// The original message 3, older, is now a replay.
	if _, _, err := s.Handle(m3); !errors.Is(err, ErrReplay) {
		t.Errorf("stale message 3: %v, want ErrReplay", err)
	}
}

func TestRSNEMismatch(t *testing.T) {
	// The AP's message 3 RSNE differs from what the station saw in the beacon.
	s, err := NewSupplicant(SupplicantConfig{PMK: testPMK, SPA: testSPA, AA: testAA,
		RSNE: testSTARSNE, APRSNE: testSTARSNE})
	if err != nil {
		t.Fatal(err)
	}
	_, a := newPair(t, testPMK, testPMK)
	m1, _ := a.Start()
	m2, _ := step(t, "message 1", s.Handle, m1)
	m3, _ := step(t, "message 2", a.Handle, m2)
	if _, k, err := s.Handle(m3); !errors.Is(err, ErrRSNEMismatch) || k != nil {
		t.Errorf("message 3 with another RSNE: %v, %v; want ErrRSNEMismatch", k, err)
	}
	// The station's message 2 RSNE differs from its association request's.
	a2, err := NewAuthenticator(AuthenticatorConfig{PMK: testPMK, AA: testAA, SPA: testSPA,
		RSNE: testAPRSNE, STARSNE: testAPRSNE, GTK: testGTK})
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := newPair(t, testPMK, testPMK)
	m1, _ = a2.Start()
	m2, _ = step(t, "message 1", s2.Handle, m1)
	if _, _, err := a2.Handle(m2); !errors.Is(err, ErrRSNEMismatch) {
		t.Errorf("message 2 with another RSNE: %v, want ErrRSNEMismatch", err)
	}
}

func TestANonceMismatch(t *testing.T) {
	s, a := newPair(t, testPMK, testPMK)
	m1, _ := a.Start()
	m2, _ := step(t, "message 1", s.Handle, m1)
	m3, _ := step(t, "message 2", a.Handle, m2)
	b := bytes.Clone(m3)
	b[offNonce] ^= 1
	if _, _, err := s.Handle(b); !errors.Is(err, ErrNonceMismatch) {
		t.Errorf("message 3 with another ANonce: %v, want ErrNonceMismatch", err)
	}
	if _, k := step(t, "genuine message 3", s.Handle, m3); k == nil {
		t.Error("no keys")
	}
}

// Every bit flipped anywhere in messages 2, 3, 4 and group message 1 is
// refused, and the state machine then still takes the genuine frame.
func TestTamperedFramesRejected(t *testing.T) {
	flips := func(t *testing.T, name string, frame []byte, fresh func() func([]byte) ([]byte, *Keys, error)) {
		h := fresh()
		for i := range frame {
			for _, bit := range []byte{0x01, 0x80} {
				b := bytes.Clone(frame)
				b[i] ^= bit
				reply, k, err := h(b)
				if k != nil {
					t.Fatalf("%s byte %d ^ %#x gave keys", name, i, bit)
				}
				if err == nil || reply != nil {
					// Clearing the MIC bit of message 3 makes it a
					// message 1, which the standard leaves without a
					// MIC: answered, but it installs nothing.
					if f, perr := ParseKeyFrame(b); perr == nil && !f.Info.Has(InfoMIC) && f.Info.Has(InfoPairwise|InfoAck) {
						continue
					}
					t.Fatalf("%s byte %d ^ %#x accepted", name, i, bit)
				}
			}
		}
		if _, _, err := h(frame); err != nil {
			t.Fatalf("%s: genuine frame refused after tampered ones: %v", name, err)
		}
	}
	// Each fresh() replays a deterministic handshake up to the frame.
	at := func(n int) (*Supplicant, *Authenticator, [][]byte) {
		s, a := newPair(t, testPMK, testPMK)
		var fr [][]byte
		m1, _ := a.Start()
		fr = append(fr, m1)
		m2, _ := step(t, "m1", s.Handle, m1)
		fr = append(fr, m2)
		if n == 2 {
			return s, a, fr
		}
		m3, _ := step(t, "m2", a.Handle, m2)
		fr = append(fr, m3)
		if n == 3 {
			return s, a, fr
		}
		m4, _ := step(t, "m3", s.Handle, m3)
		fr = append(fr, m4)
		if n == 4 {
			return s, a, fr
		}
		step(t, "m4", a.Handle, m4)
		g1, _ := a.RekeyGroup(&GroupKey{Index: 2, Key: make([]byte, 16)})
		return s, a, append(fr, g1)
	}
	_, _, fr := at(5)
	flips(t, "message 2", fr[1], func() func([]byte) ([]byte, *Keys, error) { _, a, _ := at(2); return a.Handle })
	flips(t, "message 3", fr[2], func() func([]byte) ([]byte, *Keys, error) { s, _, _ := at(3); return s.Handle })
	flips(t, "message 4", fr[3], func() func([]byte) ([]byte, *Keys, error) { _, a, _ := at(4); return a.Handle })
	flips(t, "group message 1", fr[4], func() func([]byte) ([]byte, *Keys, error) { s, _, _ := at(5); return s.Handle })
}

func TestUnexpectedMessages(t *testing.T) {
	s, a := newPair(t, testPMK, testPMK)
	r := runHandshake(t, newPairS(t), a)
	// Message 3 and group message 1 before message 1.
	if _, _, err := s.Handle(r.m3); !errors.Is(err, ErrUnexpected) {
		t.Errorf("message 3 first: %v", err)
	}
	// A station's frame sent to a station.
	if _, _, err := s.Handle(r.m2); !errors.Is(err, ErrUnexpected) {
		t.Errorf("message 2 to a station: %v", err)
	}
	// An AP's frame sent to an AP.
	if _, _, err := a.Handle(r.m1); !errors.Is(err, ErrUnexpected) {
		t.Errorf("message 1 to an AP: %v", err)
	}
	// Group rekey before a completed handshake.
	_, a2 := newPair(t, testPMK, testPMK)
	if _, err := a2.RekeyGroup(testGTK); !errors.Is(err, ErrUnexpected) {
		t.Errorf("RekeyGroup before the handshake: %v", err)
	}
	// Descriptor version 3 is not run by the state machines.
	b := bytes.Clone(r.m1)
	b[offInfo+1] = b[offInfo+1]&^0x07 | 3
	if _, _, err := newPairS(t).Handle(b); !errors.Is(err, ErrUnsupportedVersion) {
		t.Errorf("version 3 message 1: %v", err)
	}
}

func newPairS(t *testing.T) *Supplicant { s, _ := newPair(t, testPMK, testPMK); return s }

func TestConfigErrors(t *testing.T) {
	for _, c := range []SupplicantConfig{
		{PMK: testPMK[:31], RSNE: testSTARSNE, APRSNE: testAPRSNE},
		{PMK: testPMK, RSNE: nil, APRSNE: testAPRSNE},
		{PMK: testPMK, RSNE: testSTARSNE, APRSNE: testAPRSNE[:5]},
	} {
		if _, err := NewSupplicant(c); err == nil {
			t.Errorf("NewSupplicant(%d-byte PMK, %d, %d-byte RSNEs) accepted", len(c.PMK), len(c.RSNE), len(c.APRSNE))
		}
	}
	for _, g := range []*GroupKey{nil, {Index: 4, Key: make([]byte, 16)}, {Index: 1, Key: make([]byte, 8)}} {
		if _, err := NewAuthenticator(AuthenticatorConfig{PMK: testPMK, RSNE: testAPRSNE, GTK: g}); !errors.Is(err, ErrConfig) {
			t.Errorf("NewAuthenticator with GTK %v: %v", g, err)
		}
	}
}

// No error, and no formatting of a key-holding value, shows key material:
// the PMK, the passphrase, any part of the PTK or the GTK, in hex or raw.
func TestNoKeyMaterialInOutput(t *testing.T) {
	pass := "correct horse battery"
	pmk, _ := PMK(pass, []byte("skyfleet"))
	wrong, _ := PMK("incorrect horse", []byte("skyfleet"))
	var out []string
	collect := func(_ []byte, _ *Keys, err error) {
		if err != nil {
			out = append(out, err.Error())
		}
	}
	s, a := newPair(t, pmk, pmk)
	r := runHandshake(t, s, a)
	ptk := *r.sta.PTK
	secrets := [][]byte{pmk, ptk.KCK[:], ptk.KEK[:], ptk.TK[:], testGTK.Key, []byte(pass)}

	// Errors from every failure path we can provoke.
	collect(s.Handle(r.m3))
	collect(a.Handle(r.m4))
	for i := 0; i < len(r.m3); i += 3 {
		b := bytes.Clone(r.m3)
		b[i] ^= 0x55
		collect(s.Handle(b))
	}
	sw, aw := newPair(t, wrong, pmk)
	m1, _ := aw.Start()
	m2, _, _ := sw.Handle(m1)
	collect(aw.Handle(m2))
	_, err := Unwrap(ptk.KEK[:], make([]byte, 24))
	collect(nil, nil, err)
	_, err = PMK("bad\x01passphrase", []byte("skyfleet"))
	collect(nil, nil, err)
	_, err = PMKFromHex(strings.Repeat("z", 64))
	collect(nil, nil, err)
	if len(out) < 5 {
		t.Fatalf("only %d errors collected", len(out))
	}
	// Every way a caller might log the values that hold keys.
	for _, v := range []any{r.sta, r.ap, ptk, &ptk, r.sta.GTK, s, a, sw, aw} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
			out = append(out, fmt.Sprintf(verb, v))
		}
	}
	for _, o := range out {
		lo := strings.ToLower(o)
		for _, sec := range secrets {
			for _, frag := range []string{hex.EncodeToString(sec[:8]), string(sec[:8]), fmt.Sprint(sec[:4])} {
				if strings.Contains(lo, strings.ToLower(frag)) || strings.Contains(o, frag) {
					t.Errorf("output %q contains key material", o)
				}
			}
		}
	}
}
