package eapol

import (
	"crypto/aes"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
)

// wrapIV is the default initial value of RFC 3394 §2.2.3.1.
var wrapIV = [8]byte{0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6}

// Wrap encrypts plaintext under kek with the AES Key Wrap algorithm of
// RFC 3394 §2.2.1, as IEEE 802.11-2020 §12.7.2 uses it for the Key Data of
// EAPOL-Key frames with descriptor versions 2 and 3. kek is an AES key (16,
// 24 or 32 bytes); plaintext a multiple of 8 bytes, at least 16 (pad Key
// Data with PadKeyData first). The result is 8 bytes longer than plaintext.
// Errors wrap ErrUnwrap (for bad lengths) or come from crypto/aes.
func Wrap(kek, plaintext []byte) ([]byte, error) {
	if len(plaintext) < 16 || len(plaintext)%8 != 0 {
		return nil, fmt.Errorf("%w: plaintext length %d is not a multiple of 8 of at least 16", ErrUnwrap, len(plaintext))
	}
	c, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	n := len(plaintext) / 8
	out := make([]byte, 8+len(plaintext))
	copy(out[8:], plaintext)
	a := wrapIV
	var b [16]byte
	for j := 0; j < 6; j++ {
		for i := 1; i <= n; i++ {
			copy(b[:8], a[:])
			copy(b[8:], out[8*i:8*i+8])
			c.Encrypt(b[:], b[:])
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(a[:], binary.BigEndian.Uint64(b[:8])^t)
			copy(out[8*i:], b[8:])
		}
	}
	copy(out[:8], a[:])
	return out, nil
}

// Unwrap reverses Wrap (RFC 3394 §2.2.2) and checks the integrity value
// (§2.2.3) in constant time. ciphertext must be a multiple of 8 bytes, at
// least 24; the result is 8 bytes shorter. A wrong key or altered
// ciphertext gives ErrUnwrap and no output.
func Unwrap(kek, ciphertext []byte) ([]byte, error) {
	if len(ciphertext) < 24 || len(ciphertext)%8 != 0 {
		return nil, fmt.Errorf("%w: ciphertext length %d is not a multiple of 8 of at least 24", ErrUnwrap, len(ciphertext))
	}
	c, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	n := len(ciphertext)/8 - 1
	out := make([]byte, 8*n)
	copy(out, ciphertext[8:])
	var a [8]byte
	copy(a[:], ciphertext[:8])
	var b [16]byte
	for j := 5; j >= 0; j-- {
		for i := n; i >= 1; i-- {
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(b[:8], binary.BigEndian.Uint64(a[:])^t)
			copy(b[8:], out[8*(i-1):8*i])
			c.Decrypt(b[:], b[:])
			copy(a[:], b[:8])
			copy(out[8*(i-1):], b[8:])
		}
	}
	if subtle.ConstantTimeCompare(a[:], wrapIV[:]) != 1 {
		clear(out)
		return nil, fmt.Errorf("%w: integrity check failed", ErrUnwrap)
	}
	return out, nil
}
