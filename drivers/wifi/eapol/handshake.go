package eapol

import (
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"io"
)

// Keys is what a handshake step hands its caller to install in the
// driver; a nil *Keys means nothing (new) to install. Its String and
// GoString print no key bytes.
type Keys struct {
	// PTK is the pairwise key, set when the 4-way handshake completes:
	// the driver installs PTK.TK for CCMP-128 with key ID 0.
	PTK *PTK
	// GTK is the group key (index, key, starting RSC), set by a
	// Supplicant when message 3 or group message 1 delivers a new one.
	GTK *GroupKey
}

// String says which keys are present, not what they are.
func (k *Keys) String() string {
	if k == nil {
		return "<nil>"
	}
	return fmt.Sprintf("eapol.Keys{PTK: %t, GTK: %v}", k.PTK != nil, k.GTK)
}

// GoString is String for %#v.
func (k *Keys) GoString() string { return k.String() }

// randReader returns r, or crypto/rand when r is nil.
func randReader(r io.Reader) io.Reader {
	if r == nil {
		return rand.Reader
	}
	return r
}

// newNonce reads a fresh 32-byte nonce. IEEE 802.11-2020 §12.7.5 asks
// for nonces from a strong random source; crypto/rand is one.
func newNonce(r io.Reader) ([NonceLen]byte, error) {
	var n [NonceLen]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return n, fmt.Errorf("eapol: reading a nonce: %w", err)
	}
	return n, nil
}

// checkRSNE checks that b is one whole RSN element (ID 0x30, length
// matching), the shape both state machines need to compare it.
func checkRSNE(what string, b []byte) error {
	if len(b) < 2 || b[0] != ElementRSN || int(b[1]) != len(b)-2 {
		return fmt.Errorf("%w: %s is not one whole RSN element", ErrConfig, what)
	}
	return nil
}

// build marshals f and, when kck is non-nil, sets its MIC.
func build(f *KeyFrame, kck []byte) ([]byte, error) {
	b, err := f.Marshal()
	if err != nil {
		return nil, err
	}
	if kck != nil {
		if err := SetMIC(kck, b); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// wrapKeyData pads and AES-key-wraps Key Data under kek (§12.7.2).
func wrapKeyData(kek, kd []byte) ([]byte, error) {
	p := PadKeyData(kd)
	defer clear(p)
	return Wrap(kek, p)
}

// unwrapKeyData unwraps and parses an encrypted Key Data field.
func unwrapKeyData(kek []byte, f *KeyFrame) (*KeyData, error) {
	if !f.Info.Has(InfoEncryptedKeyData) {
		return nil, fmt.Errorf("%w: key data not encrypted", ErrKeyData)
	}
	plain, err := Unwrap(kek, f.KeyData)
	if err != nil {
		return nil, err
	}
	kd, err := ParseKeyData(plain)
	if err != nil {
		clear(plain)
		return nil, err
	}
	// kd.RSNE aliases plain, which is public; the GTK was copied out.
	return kd, nil
}

// sameGroupKey reports whether a and b are the same key under the same
// index, the test that stops a replayed group message from reinstalling
// (and so resetting the replay counter of) the current GTK.
func sameGroupKey(a, b *GroupKey) bool {
	return a != nil && b != nil && a.Index == b.Index && subtle.ConstantTimeCompare(a.Key, b.Key) == 1
}

// String names the Supplicant's state and nothing else: the default
// formatting would print its keys.
func (s *Supplicant) String() string {
	return fmt.Sprintf("eapol.Supplicant{waitingForMessage3: %t, ptk: %t}", s.state == supWaitM3, s.hasPTK)
}

// GoString is String for %#v.
func (s *Supplicant) GoString() string { return s.String() }

// String names the Authenticator's state and nothing else: the default
// formatting would print its keys.
func (a *Authenticator) String() string {
	return fmt.Sprintf("eapol.Authenticator{%s}", stateName(a.state))
}

// GoString is String for %#v.
func (a *Authenticator) GoString() string { return a.String() }
