package eapol

import (
	"bytes"
	"errors"
	"testing"
)

// fuzzFrames returns genuine frames of a deterministic handshake, for
// seeds: messages 1-4 and group message 1.
func fuzzFrames(t testing.TB) [][]byte {
	s, a := newPair(t, testPMK, testPMK)
	r := runHandshake(t, s, a)
	g1, err := a.RekeyGroup(&GroupKey{Index: 2, Key: make([]byte, 16)})
	if err != nil {
		t.Fatal(err)
	}
	return [][]byte{r.m1, r.m2, r.m3, r.m4, g1}
}

func FuzzParseKeyFrame(f *testing.F) {
	f.Add(harkonenFrame(f))
	for _, b := range fuzzFrames(f) {
		f.Add(b)
	}
	for _, h := range []string{inductionM1, inductionM2, inductionM3, inductionM4} {
		f.Add(unhex(f, h))
	}
	f.Add([]byte{2, 3, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		kf, err := ParseKeyFrame(b)
		if err != nil {
			if kf != nil {
				t.Fatal("frame and error")
			}
			return
		}
		// Strict parsing: what parses re-encodes to the same bytes.
		out, err := kf.Marshal()
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("round trip: %x, %v", out, err)
		}
		if _, err := ComputeMIC(make([]byte, 16), b); err != nil && !errors.Is(err, ErrUnsupportedVersion) {
			t.Fatalf("ComputeMIC: %v", err)
		}
		ParseKeyData(kf.KeyData)
	})
}

func FuzzParseKeyData(f *testing.F) {
	f.Add(PadKeyData(AppendGTKKDE(bytes.Clone(testAPRSNE), testGTK)))
	f.Add([]byte{0xdd})
	f.Add([]byte{0xdd, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		kd, err := ParseKeyData(b)
		if err != nil {
			return
		}
		if kd.RSNE != nil && (len(kd.RSNE) < 2 || int(kd.RSNE[1]) != len(kd.RSNE)-2) {
			t.Fatalf("RSNE of %d bytes", len(kd.RSNE))
		}
		if kd.GTK != nil && (len(kd.GTK.Key) == 0 || len(kd.GTK.Key) > 32 || kd.GTK.Index > 3) {
			t.Fatalf("GTK %v", kd.GTK)
		}
	})
}

func FuzzUnwrap(f *testing.F) {
	kek := unhex(f, "000102030405060708090A0B0C0D0E0F")
	f.Add(kek, unhex(f, "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5"))
	f.Add(kek, make([]byte, 24))
	f.Add(kek, make([]byte, 17))
	f.Fuzz(func(t *testing.T, kek, ct []byte) {
		pt, err := Unwrap(kek, ct)
		if err != nil {
			if pt != nil {
				t.Fatal("plaintext and error")
			}
			return
		}
		// Anything that unwraps is exactly what wrapping gives back.
		again, err := Wrap(kek, pt)
		if err != nil || !bytes.Equal(again, ct) {
			t.Fatalf("Wrap(Unwrap(ct)) = %x, %v; want %x", again, err, ct)
		}
	})
}

// FuzzSupplicantHandle feeds arbitrary frames to a Supplicant that has
// answered message 1. Without the KCK no frame but the genuine message 3
// may yield keys, whatever else it does; and nothing panics.
func FuzzSupplicantHandle(f *testing.F) {
	fr := fuzzFrames(f)
	for _, b := range fr {
		f.Add(b)
	}
	f.Add(harkonenFrame(f))
	f.Add(unhex(f, inductionM1))
	f.Add(unhex(f, inductionM3))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, a := newPair(t, testPMK, testPMK)
		m1, _ := a.Start()
		m2, _, err := s.Handle(m1)
		if err != nil {
			t.Fatal(err)
		}
		m3, _, err := a.Handle(m2)
		if err != nil {
			t.Fatal(err)
		}
		_, keys, err := s.Handle(b)
		if err == nil && keys != nil && !bytes.Equal(b, m3) {
			t.Fatalf("forged frame installed keys")
		}
		// Still not wedged by it, unless it was a new message 1 (which
		// the standard leaves unauthenticated) or the genuine message 3.
		if err != nil {
			if _, _, err := s.Handle(m3); err != nil {
				t.Fatalf("genuine message 3 refused after a bad frame: %v", err)
			}
		}
	})
}

// FuzzAuthenticatorHandle feeds arbitrary frames to an Authenticator
// waiting for message 2: only the genuine one is answered.
func FuzzAuthenticatorHandle(f *testing.F) {
	for _, b := range fuzzFrames(f) {
		f.Add(b)
	}
	f.Add(harkonenFrame(f))
	f.Add(unhex(f, inductionM1))
	f.Add(unhex(f, inductionM3))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, a := newPair(t, testPMK, testPMK)
		m1, _ := a.Start()
		m2, _, err := s.Handle(m1)
		if err != nil {
			t.Fatal(err)
		}
		reply, keys, err := a.Handle(b)
		if err == nil && !bytes.Equal(b, m2) {
			t.Fatalf("forged message 2 accepted (reply %d bytes, keys %v)", len(reply), keys)
		}
		if keys != nil {
			t.Fatal("keys before message 4")
		}
	})
}
