package eapol

import (
	"crypto/aes"
	"crypto/subtle"
)

// CMAC computes the AES-CMAC of msg under key (RFC 4493 §2.4), the MIC of
// EAPOL-Key frames with key descriptor version 3 (IEEE 802.11-2020
// §12.7.2), where key is the 16-byte KCK. key may be any AES key length
// (16, 24, 32 bytes); other lengths return the crypto/aes error. The result
// is the full 16-byte tag.
func CMAC(key, msg []byte) ([16]byte, error) {
	var tag [16]byte
	c, err := aes.NewCipher(key)
	if err != nil {
		return tag, err
	}
	// Subkeys K1, K2 (RFC 4493 §2.3): L = AES(K, 0^128), doubled in
	// GF(2^128) once and twice.
	var k1, k2 [16]byte
	c.Encrypt(k1[:], k1[:])
	k1 = dbl(k1)
	k2 = dbl(k1)

	n := (len(msg) + 15) / 16
	complete := n > 0 && len(msg)%16 == 0
	if n == 0 {
		n = 1
	}
	var last [16]byte
	if complete {
		subtle.XORBytes(last[:], msg[16*(n-1):], k1[:])
	} else {
		rest := msg[16*(n-1):]
		copy(last[:], rest)
		last[len(rest)] = 0x80
		subtle.XORBytes(last[:], last[:], k2[:])
	}
	var x [16]byte
	for i := 0; i < n-1; i++ {
		subtle.XORBytes(x[:], x[:], msg[16*i:16*i+16])
		c.Encrypt(x[:], x[:])
	}
	subtle.XORBytes(x[:], x[:], last[:])
	c.Encrypt(tag[:], x[:])
	return tag, nil
}

// dbl multiplies by x in GF(2^128) with the polynomial x^128+x^7+x^2+x+1:
// a left shift, and R_128 = 0x87 folded in when the top bit fell off. The
// fold is masked rather than branched on, since the input derives from
// the key.
func dbl(in [16]byte) [16]byte {
	var out [16]byte
	carry := in[0] >> 7
	for i := 0; i < 15; i++ {
		out[i] = in[i]<<1 | in[i+1]>>7
	}
	out[15] = in[15]<<1 ^ (0x87 & -carry)
	return out
}
