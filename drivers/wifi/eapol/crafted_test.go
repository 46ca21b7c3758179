package eapol

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// Frames with a valid MIC but bad contents: what a buggy (not a forging)
// peer might send. The test knows the PTK because it can derive it from
// the nonces on the air and the shared PMK.
func TestAuthenticFramesWithBadKeyData(t *testing.T) {
	s, a := newPair(t, testPMK, testPMK)
	m1, _ := a.Start()
	m2, _ := step(t, "message 1", s.Handle, m1)
	f1, _ := ParseKeyFrame(m1)
	f2, _ := ParseKeyFrame(m2)
	ptk, _ := DerivePTK(testPMK, testAA, testSPA, f1.Nonce, f2.Nonce)

	m3 := func(plain []byte, kek []byte) []byte {
		kd, err := wrapKeyData(kek, plain)
		if err != nil {
			t.Fatal(err)
		}
		b, err := build(&KeyFrame{
			Info: DescVersionHMACSHA1 | InfoPairwise | InfoInstall | InfoAck | InfoMIC |
				InfoSecure | InfoEncryptedKeyData,
			KeyLength: TKLen, ReplayCounter: 2, Nonce: f1.Nonce, KeyData: kd,
		}, ptk.KCK[:])
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	gtkKDE := AppendGTKKDE(nil, testGTK)
	for _, tc := range []struct {
		name  string
		frame []byte
		want  error
	}{
		{"wrapped under another KEK", m3(append(bytes.Clone(testAPRSNE), gtkKDE...), make([]byte, 16)), ErrUnwrap},
		{"no RSNE", m3(gtkKDE, ptk.KEK[:]), ErrRSNEMismatch},
		{"station's RSNE", m3(append(bytes.Clone(testSTARSNE), gtkKDE...), ptk.KEK[:]), ErrRSNEMismatch},
		{"overrunning element", m3(append(bytes.Clone(testAPRSNE), 0xdd, 0x40, 1, 2), ptk.KEK[:]), ErrKeyData},
	} {
		if _, k, err := s.Handle(tc.frame); !errors.Is(err, tc.want) || k != nil {
			t.Errorf("message 3 %s: %v, %v; want %v", tc.name, k, err, tc.want)
		}
	}
	// Not encrypted: refused on its Key Information alone.
	plain, _ := build(&KeyFrame{
		Info:          DescVersionHMACSHA1 | InfoPairwise | InfoInstall | InfoAck | InfoMIC | InfoSecure,
		ReplayCounter: 2, Nonce: f1.Nonce, KeyData: append(bytes.Clone(testAPRSNE), gtkKDE...),
	}, ptk.KCK[:])
	if _, _, err := s.Handle(plain); !errors.Is(err, ErrUnexpected) {
		t.Errorf("unencrypted message 3: %v, want ErrUnexpected", err)
	}
	// Without a GTK KDE message 3 is still fine: no group key to install.
	m4, k := step(t, "message 3 without GTK", s.Handle, m3(bytes.Clone(testAPRSNE), ptk.KEK[:]))
	if k == nil || k.PTK == nil || k.GTK != nil || m4 == nil {
		t.Fatalf("message 3 without GTK: %v", k)
	}
	// A group message 1 without a GTK KDE, or unencrypted, is refused.
	g1 := func(info KeyInfo, kd []byte) []byte {
		b, _ := build(&KeyFrame{Info: info, ReplayCounter: 3, KeyData: kd}, ptk.KCK[:])
		return b
	}
	wrapped, _ := wrapKeyData(ptk.KEK[:], bytes.Clone(testAPRSNE))
	if _, _, err := s.Handle(g1(DescVersionHMACSHA1|InfoAck|InfoMIC|InfoSecure|InfoEncryptedKeyData, wrapped)); !errors.Is(err, ErrKeyData) {
		t.Errorf("group message 1 without GTK: %v, want ErrKeyData", err)
	}
	if _, _, err := s.Handle(g1(DescVersionHMACSHA1|InfoAck|InfoMIC|InfoSecure, gtkKDE)); !errors.Is(err, ErrKeyData) {
		t.Errorf("unencrypted group message 1: %v, want ErrKeyData", err)
	}

	// A station's message 2 without an RSN element.
	s2, a2 := newPair(t, testPMK, testPMK)
	m1, _ = a2.Start()
	m2, _ = step(t, "message 1", s2.Handle, m1)
	f1, _ = ParseKeyFrame(m1)
	f2, _ = ParseKeyFrame(m2)
	ptk, _ = DerivePTK(testPMK, testAA, testSPA, f1.Nonce, f2.Nonce)
	f2.KeyData = nil
	bad, _ := build(f2, ptk.KCK[:])
	if _, _, err := a2.Handle(bad); !errors.Is(err, ErrKeyData) {
		t.Errorf("message 2 without RSNE: %v, want ErrKeyData", err)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

// A broken random source is an error, never a predictable nonce.
func TestRandFailure(t *testing.T) {
	a, _ := NewAuthenticator(AuthenticatorConfig{PMK: testPMK, RSNE: testAPRSNE, GTK: testGTK, Rand: failingReader{}})
	if _, err := a.Start(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("Start with a failing Rand: %v", err)
	}
	s, _ := NewSupplicant(SupplicantConfig{PMK: testPMK, RSNE: testSTARSNE, APRSNE: testAPRSNE, Rand: failingReader{}})
	_, a2 := newPair(t, testPMK, testPMK)
	m1, _ := a2.Start()
	if _, _, err := s.Handle(m1); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("message 1 with a failing Rand: %v", err)
	}
	// crypto/rand is the default.
	s, _ = NewSupplicant(SupplicantConfig{PMK: testPMK, RSNE: testSTARSNE, APRSNE: testAPRSNE})
	if _, _, err := s.Handle(m1); err != nil {
		t.Errorf("default Rand: %v", err)
	}
}
