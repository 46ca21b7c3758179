package identity

import (
	"errors"
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	voi "gitlab.com/yawning/secp256k1-voi"
)

// Every computation on a secret scalar in this file (the public key d·G, and in
// signing the nonce point k·G, the inverse k⁻¹ and the product d·r) goes through
// gitlab.com/yawning/secp256k1-voi, whose scalar multiplication reads its tables
// with constant-time selects and uses complete addition formulas, and whose scalar
// inversion is a fixed addition chain. decred's PrivateKey.PubKey and
// ecdsa.SignCompact, used before, call ScalarBaseMultNonConst and
// InverseValNonConst, which branch and index tables on the secret's digits: a
// peer that can time many signatures (an announcement is signed every few seconds
// and sent to every neighbour) could recover the nonces, and from them the key.
//
// decred is still used for two things that leak nothing: reading the key out of a
// *secp256k1.PrivateKey (ModNScalar.PutBytes is constant time) and the RFC 6979
// nonce (secp256k1.NonceRFC6979, HMAC-SHA256 only), so that signatures stay byte
// for byte those of decred's ecdsa.SignCompact and every verifier, old or new,
// accepts them. voi's own signing package (secec) was not used: its deterministic
// mode draws nonces through its own hedging construction, not decred's RFC 6979
// stream, and it would add gitlab.com/yawning/tuplehash as a dependency.

// HashSize is the length in bytes of the message hash SignCompact signs (a
// SHA-256 digest).
const HashSize = 32

// CompactSignatureSize is the length in bytes of a compact recoverable
// signature: the recovery byte, then r and s as 32-byte big-endian integers.
const CompactSignatureSize = 1 + 32 + 32

// Header byte of a compact signature: 27 (Bitcoin's historical offset) plus 4
// (the signer's public key is compressed) plus the 2-bit recovery code.
const (
	compactMagicOffset   = 27
	compactCompressedKey = 4
)

// maxNonceIterations bounds how many RFC 6979 nonces SignCompact tries. A nonce
// is only rejected if r or s is zero, each of probability about 2⁻²⁵⁶, so a
// second nonce is never needed in practice; the bound keeps a broken build from
// looping forever.
const maxNonceIterations = 8

// ErrPrivateKey is returned (wrapped) by PublicKeyOf and SignCompact for a nil
// private key or one whose scalar is zero (decred's PrivKeyFromBytes makes a zero
// key from 0 or from the group order N): no valid key, SEC 1 v2 §3.2.1.
var ErrPrivateKey = errors.New("identity: private key is nil or zero")

// ErrHashLength is returned (wrapped) by SignCompact for a hash that is not
// HashSize bytes. decred's SignCompact silently truncates or pads other lengths;
// here they are refused so that no caller signs something other than it thinks.
var ErrHashLength = errors.New("identity: hash to sign must be 32 bytes")

// secretScalar reads priv's scalar d into a voi scalar and its 32-byte big-endian
// encoding (needed for the RFC 6979 nonce). The caller must clear both. Errors:
// ErrPrivateKey for a nil or zero key. The zero test is constant time; only its
// outcome (valid or not) is revealed.
func secretScalar(priv *secp256k1.PrivateKey) (*voi.Scalar, *[32]byte, error) {
	if priv == nil {
		return nil, nil, ErrPrivateKey
	}
	b := new([32]byte)
	priv.Key.PutBytes(b)
	d, _ := voi.NewScalarFromBytes(b) // ModNScalar is always below N: no reduction
	if d.IsZero() == 1 {
		clear(b[:])
		return nil, nil, ErrPrivateKey
	}
	return d, b, nil
}

// PublicKeyOf returns the 33-byte compressed SEC 1 (v2 §2.3.3) encoding of priv's
// public key d·G, computed in constant time in d. It equals
// priv.PubKey().SerializeCompressed(), which is variable time and must not be used
// on long-term keys. Errors: ErrPrivateKey for a nil or zero key.
func PublicKeyOf(priv *secp256k1.PrivateKey) ([]byte, error) {
	d, b, err := secretScalar(priv)
	if err != nil {
		return nil, err
	}
	clear(b[:])
	p := voi.NewIdentityPoint().ScalarBaseMult(d)
	d.Zero()
	if p.IsIdentity() == 1 { // impossible for d in [1, N-1]; checked, not encoded
		return nil, ErrPrivateKey
	}
	return p.CompressedBytes(), nil
}

// SignCompact signs hash (HashSize bytes, normally a SHA-256 digest) with priv
// and returns the CompactSignatureSize-byte recoverable signature
// 27+4+recid ‖ r ‖ s, exactly the bytes decred's
// ecdsa.SignCompact(priv, hash, true) returns: ECDSA (SEC 1 v2 §4.1.3) with the
// deterministic nonce of RFC 6979 (HMAC-SHA256, as decred's NonceRFC6979) and s
// normalised to at most N/2 (BIP 62), the recovery code's bit 0 giving the parity
// of the nonce point's y and bit 1 whether its x was reduced mod N. Any verifier
// of decred's signatures (ecdsa.RecoverCompact) accepts it.
//
// Unlike decred's, every operation on a secret (k·G, k⁻¹, d·r) is constant
// time; see the comment at the top of this file.
//
// Errors: ErrPrivateKey for a nil or zero key, ErrHashLength for a hash of
// another length. Neither error carries any key material.
func SignCompact(priv *secp256k1.PrivateKey, hash []byte) ([]byte, error) {
	if len(hash) != HashSize {
		return nil, fmt.Errorf("%w (got %d bytes)", ErrHashLength, len(hash))
	}
	d, db, err := secretScalar(priv)
	if err != nil {
		return nil, err
	}
	defer d.Zero()
	defer clear(db[:])

	// e = hash mod N (SEC 1 v2 §4.1.3 step 5; the hash is exactly 256 bits).
	e, _ := voi.NewScalarFromBytes((*[32]byte)(hash))

	for iteration := range uint32(maxNonceIterations) {
		// Step 1, RFC 6979 §3.2: k in [1, N-1], the same stream as decred's.
		kd := secp256k1.NonceRFC6979(db[:], hash, nil, nil, iteration)
		var kb [32]byte
		kd.PutBytes(&kb)
		kd.Zero()
		k, _ := voi.NewScalarFromBytes(&kb)
		clear(kb[:])

		// Steps 2-3: R = k·G; r = x(R) mod N. R is public (r and the recovery
		// code reveal it), so branching on r below leaks nothing.
		R := voi.NewIdentityPoint().ScalarBaseMult(k)
		if R.IsIdentity() == 1 { // impossible for k in [1, N-1]
			k.Zero()
			continue
		}
		x, yOdd := voi.SplitUncompressedPoint(R.UncompressedBytes())
		r, reduced := voi.NewScalarFromBytes((*[32]byte)(x))
		if r.IsZero() == 1 {
			k.Zero()
			continue
		}
		recid := byte(reduced<<1) | byte(yOdd)

		// Step 6: s = k⁻¹(e + d·r) mod N.
		kInv := voi.NewScalar().Invert(k)
		k.Zero()
		s := voi.NewScalar().Multiply(d, r)
		s.Add(s, e).Multiply(s, kInv)
		kInv.Zero()
		if s.IsZero() == 1 {
			continue
		}

		// BIP 62 low S: use -s if s > N/2. -s belongs to the nonce -k, whose point
		// -R has the opposite y parity, so the recovery code's bit 0 flips.
		high := s.IsGreaterThanHalfN()
		s.ConditionalNegate(s, high)
		recid ^= byte(high)

		sig := make([]byte, 0, CompactSignatureSize)
		sig = append(sig, compactMagicOffset+compactCompressedKey+recid)
		sig = append(sig, r.Bytes()...)
		return append(sig, s.Bytes()...), nil
	}
	return nil, fmt.Errorf("identity: no valid nonce in %d RFC 6979 iterations", maxNonceIterations)
}

// SignCompact signs hash with the key; see the package-level SignCompact for the
// format and the errors.
func (k *Key) SignCompact(hash []byte) ([]byte, error) { return SignCompact(k.priv, hash) }
