package identity

import (
	"crypto/sha256"
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	voi "gitlab.com/yawning/secp256k1-voi"
)

// ECDH returns SHA-256(compressed(d·pub)), where d is priv's scalar and pub a
// 33-byte compressed public key: the 32-byte shared secret of libsecp256k1's
// secp256k1_ecdh with its default hash, and the same value services/mesh/link
// computes for its Noise handshake. Hashing the whole compressed point, not x
// alone, binds y's parity too and gives a uniformly distributed key.
//
// The multiplication runs in gitlab.com/yawning/secp256k1-voi, constant time in
// d (see the comment at the top of sign.go); decred's GenerateSharedSecret and
// ScalarMultNonConst are variable time and must not be used on a node key.
//
// Errors: ErrPrivateKey (wrapped) for a nil or zero key; ErrPublicKey
// (wrapped) for a pub that is not 33 bytes, has a prefix other than 0x02 or
// 0x03, or whose x is not below the field prime or has no point on the curve.
// Only the compressed form is accepted so that every key has one encoding.
// Neither error carries key material: pub is public, and only its length and
// prefix are quoted.
func ECDH(priv *secp256k1.PrivateKey, pub []byte) ([32]byte, error) {
	if len(pub) != PublicKeySize {
		return [32]byte{}, fmt.Errorf("%w: %d bytes, want %d", ErrPublicKey, len(pub), PublicKeySize)
	}
	// Parse the public point before touching the secret, so that a peer's bad
	// key costs no secret-dependent work at all.
	p, err := voi.NewIdentityPoint().SetCompressedBytes(pub)
	if err != nil {
		return [32]byte{}, fmt.Errorf("%w: not a compressed point on the curve (prefix 0x%02x)", ErrPublicKey, pub[0])
	}
	d, db, err := secretScalar(priv)
	if err != nil {
		return [32]byte{}, err
	}
	clear(db[:]) // only the scalar is needed; the byte form is for RFC 6979
	r := voi.NewIdentityPoint().ScalarMult(d, p)
	d.Zero()
	// d in [1, N-1] times a point of the prime-order group is never the point at
	// infinity; checked rather than hashed, as link's ecdh does, in case a
	// future change lets an invalid value through.
	if r.IsIdentity() == 1 {
		return [32]byte{}, fmt.Errorf("%w: product is the point at infinity", ErrPublicKey)
	}
	return sha256.Sum256(r.CompressedBytes()), nil
}
