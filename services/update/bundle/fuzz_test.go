package bundle

import (
	"bytes"
	"io"
	"testing"
)

// FuzzManifest: Unmarshal never panics, and what it accepts encodes back to the
// same bytes (one encoding per manifest).
func FuzzManifest(f *testing.F) {
	key := testKey(f, 1)
	b := build(f, key, testHeader)
	n := int(beUint32(b[len(Magic):]))
	f.Add(b[len(Magic)+4 : len(Magic)+4+n])
	f.Add([]byte{FormatVersion, 5, 'r', 'p', 'i', '3', 'b', 1, '1', 0})
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := Unmarshal(raw)
		if err != nil {
			return
		}
		again, err := m.Marshal()
		if err != nil {
			t.Fatalf("accepted manifest does not encode: %v", err)
		}
		if !bytes.Equal(again, raw) {
			t.Fatalf("accepted manifest encodes differently")
		}
	})
}

// FuzzBundle feeds whole bundles to a device's reader: no panic, and whatever it
// accepts had a valid signature by the listed key, so a mutation of a seed (a
// full bundle, and a delta read against the running slot) is accepted only where
// it leaves every signed and hashed byte alone.
func FuzzBundle(f *testing.F) {
	key := testKey(f, 1)
	good, delta := buildDelta(f)
	for _, b := range [][]byte{good, delta} {
		f.Add(b)
		f.Add(b[:len(Magic)+4])
		f.Add(append([]byte(nil), b[:len(b)/2]...))
	}
	p := policy(key)
	p.Base = runningSlot()
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := NewReader(bytes.NewReader(b), p)
		if err != nil {
			return
		}
		for {
			_, fr, err := r.Next()
			if err != nil {
				if err == io.EOF && !sameSigned(b, good) && !sameSigned(b, delta) {
					t.Fatalf("a bundle other than the signed ones was read to the end without error")
				}
				return
			}
			if _, err := io.Copy(io.Discard, fr); err != nil {
				return
			}
		}
	})
}

// sameSigned reports whether b is signed bundle ref but for its signature's
// bytes (an ECDSA signature has more than one valid form; everything signed and
// hashed has one).
func sameSigned(b, ref []byte) bool {
	sig := len(Magic) + 4 + int(beUint32(ref[len(Magic):]))
	return len(b) == len(ref) && bytes.Equal(b[:sig], ref[:sig]) && bytes.Equal(b[sig+SignatureLen:], ref[sig+SignatureLen:])
}
