// Package skycoin is the wallet's Skycoin cryptography: the deterministic key
// chain of Skycoin's "deterministic" wallets (cipher.GenerateDeterministicKeyPairs
// in skycoin/skycoin, checked against its golden files). Addresses and
// signatures are services/identity's, which Skycoin's format they already are.
//
// Every multiplication by a secret scalar runs in gitlab.com/yawning/secp256k1-voi,
// constant time in the scalar, as in services/identity.
package skycoin

import (
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	voi "gitlab.com/yawning/secp256k1-voi"
)

// ErrEmptySeed is returned for a seed of no bytes, which Skycoin refuses.
var ErrEmptySeed = errors.New("skycoin: empty seed")

// maxKeys bounds one call of DeterministicKeys: a wallet shows and signs
// with a few hundred addresses, not millions.
const maxKeys = 1 << 16

// DeterministicKeys returns the first n secret keys of the chain seeded by
// seed (for a Skycoin wallet, the bytes of its seed phrase as typed, not a
// BIP39 seed). Each step is Skycoin's DeterministicKeyPairIterator:
//
//	next = secp256k1Hash(seed)
//	key  = keyFrom(SHA-256(seed ‖ next)), and seed = next for the next key
//
// where keyFrom hashes with SHA-256 until the value is a valid secret key
// (0 < d < N) and secp256k1Hash(s) = SHA-256(h ‖ compressed(a·b·G)) with
// h = SHA-256(s), a = keyFrom(h), b = keyFrom(SHA-256(h)). Errors: ErrEmptySeed,
// n outside 1..65536.
func DeterministicKeys(seed []byte, n int) ([]*secp256k1.PrivateKey, error) {
	if len(seed) == 0 {
		return nil, ErrEmptySeed
	}
	if n < 1 || n > maxKeys {
		return nil, fmt.Errorf("skycoin: %d keys asked; 1 to %d at a time", n, maxKeys)
	}
	keys := make([]*secp256k1.PrivateKey, 0, n)
	cur := append([]byte(nil), seed...)
	for range n {
		next := secp256k1Hash(cur)
		h := sha256.New()
		h.Write(cur)
		h.Write(next[:])
		var s2 [32]byte
		h.Sum(s2[:0])
		d, db := keyFrom(s2)
		keys = append(keys, secp256k1.PrivKeyFromBytes(db[:]))
		d.Zero()
		clear(db[:])
		clear(s2[:])
		clear(cur)
		cur = next[:]
	}
	clear(cur)
	return keys, nil
}

// keyFrom is Skycoin's deterministic key step (generateDeterministicKeyPair
// in its secp256k1-go): s = SHA-256(s) until s is a valid secret key. The
// loop's exit depends only on whether a hash is below N, which all but
// about 2⁻¹²⁸ of them are.
func keyFrom(seed [32]byte) (*voi.Scalar, [32]byte) {
	s := seed
	for {
		s = sha256.Sum256(s[:])
		d, err := voi.NewScalarFromCanonicalBytes(&s)
		if err == nil && d.IsZero() == 0 {
			return d, s
		}
	}
}

// secp256k1Hash is Skycoin's Secp256k1Hash: SHA-256 salted with an ECDH in
// the curve, so that a key disclosed says nothing of the keys after it.
func secp256k1Hash(seed []byte) [32]byte {
	h := sha256.Sum256(seed)
	a, ab := keyFrom(h)
	b, bb := keyFrom(sha256.Sum256(h[:]))
	// compressed(a·(b·G)), all of it constant time in a and b.
	bG := voi.NewIdentityPoint().ScalarBaseMult(b)
	p := voi.NewIdentityPoint().ScalarMult(a, bG)
	a.Zero()
	b.Zero()
	clear(ab[:])
	clear(bb[:])
	out := sha256.New()
	out.Write(h[:])
	out.Write(p.CompressedBytes())
	var r [32]byte
	out.Sum(r[:0])
	return r
}
