package link

import (
	"crypto/sha256"
	"errors"
	"io"
	"sync/atomic"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/flynn/noise"
	voi "gitlab.com/yawning/secp256k1-voi"
)

// KeyLen is the length of a public key on the wire: a compressed secp256k1 point.
const KeyLen = 33

// ecdhCalls counts variable-base scalar multiplications, the expensive step an
// attacker would like to make us repeat. Tests read it to prove that datagrams without
// the network key, or exact replays, are dropped before any ECDH.
var ecdhCalls atomic.Uint64

var errDH = errors.New("link: ecdh failed")

// Every multiplication by a secret scalar in this package (static and ephemeral ECDH,
// and the public half of every key it makes) goes through
// gitlab.com/yawning/secp256k1-voi, whose Point.ScalarMult and Point.ScalarBaseMult
// are constant time: fixed-window tables read with constant-time selects, complete
// (exception-free) addition formulas, and a GLV split done in fixed-width arithmetic.
// decred's ScalarMultNonConst and ScalarBaseMultNonConst, used before, branch and index
// tables on the secret scalar's digits, which leaks the static key to a peer that can
// time many handshakes (or share a cache with us). decred remains in use for parsing,
// for Config.Private and for drawing random scalars, none of which depend on a secret
// in a way that leaks more than "valid or not".

// parseScalar reads priv, a 32-byte big-endian private key, as a scalar in [1, N-1].
// ok is false for a wrong length, zero, or a value not below the group order N (SEC 1
// v2 §3.2.1: valid private keys are in [1, N-1]); these are refused, never reduced.
func parseScalar(priv []byte) (k *voi.Scalar, ok bool) {
	if len(priv) != voi.ScalarSize {
		return nil, false
	}
	k, err := voi.NewScalarFromCanonicalBytes((*[voi.ScalarSize]byte)(priv))
	if err != nil || k.IsZero() == 1 {
		return nil, false
	}
	return k, true
}

// parsePoint reads pub as a 33-byte compressed point (SEC 1 v2 §2.3.4). It refuses any
// other length or prefix, an x not below the field prime, and an x with no point on
// the curve; the point at infinity has no 33-byte encoding, so it is refused too.
func parsePoint(pub []byte) (*voi.Point, bool) {
	if len(pub) != KeyLen {
		return nil, false
	}
	p, err := voi.NewIdentityPoint().SetCompressedBytes(pub)
	if err != nil {
		return nil, false
	}
	return p, true
}

// publicKey returns the 33-byte compressed encoding of priv·G, computed in constant
// time. errDH if priv is not a scalar in [1, N-1] (see parseScalar).
func publicKey(priv []byte) ([]byte, error) {
	k, ok := parseScalar(priv)
	if !ok {
		return nil, errDH
	}
	p := voi.NewIdentityPoint().ScalarBaseMult(k)
	k.Zero()
	if p.IsIdentity() == 1 { // impossible for k in [1, N-1]; checked so it cannot leak out
		return nil, errDH
	}
	return p.CompressedBytes(), nil
}

// ecdh returns SHA-256(compressed(priv·pub)): the same value as libsecp256k1's
// secp256k1_ecdh with its default hash function. Hashing the whole point rather than
// returning x alone binds the y parity too, and gives a uniformly distributed key.
//
// priv is a 32-byte big-endian scalar in [1, N-1]; pub a 33-byte compressed point on
// the curve. Only compressed points are accepted so that every key has exactly one
// encoding. Anything else, and a product that is the point at infinity (impossible
// for valid inputs on a prime-order curve, but checked rather than hashed), is errDH.
// The multiplication is constant time in priv.
func ecdh(priv, pub []byte) ([]byte, error) {
	if len(priv) != 32 || len(pub) != KeyLen {
		return nil, errDH
	}
	p, ok := parsePoint(pub)
	if !ok {
		return nil, errDH
	}
	k, ok := parseScalar(priv)
	if !ok {
		return nil, errDH
	}
	ecdhCalls.Add(1)
	r := voi.NewIdentityPoint().ScalarMult(k, p)
	k.Zero()
	if r.IsIdentity() == 1 {
		return nil, errDH
	}
	sum := sha256.Sum256(r.CompressedBytes())
	return sum[:], nil
}

// validKey reports whether pub is a 33-byte compressed point on the curve.
func validKey(pub []byte) bool {
	_, ok := parsePoint(pub)
	return ok
}

// generateKey draws a private key from rng (32 bytes per draw, redrawn while zero or
// not below N, as decred's GeneratePrivateKeyFromRand does, so a given byte stream
// yields the same key as before) and computes its public key in constant time.
// Private is the 32-byte scalar, Public the 33-byte compressed point. The caller owns
// Private and should clear it after use.
func generateKey(rng io.Reader) (noise.DHKey, error) {
	k, err := secp256k1.GeneratePrivateKeyFromRand(rng)
	if err != nil {
		return noise.DHKey{}, err
	}
	defer k.Zero()
	priv := k.Serialize()
	pub, err := publicKey(priv)
	if err != nil {
		clear(priv)
		return noise.DHKey{}, err
	}
	return noise.DHKey{Private: priv, Public: pub}, nil
}

// secpDH is the noise.DHFunc for secp256k1 (name "secp256k1", as in
// Noise_IKpsk2_secp256k1_ChaChaPoly_SHA256).
type secpDH struct{}

// GenerateKeypair makes a key pair from rng (see generateKey): Private is the 32-byte
// scalar, Public the 33-byte compressed point.
func (secpDH) GenerateKeypair(rng io.Reader) (noise.DHKey, error) { return generateKey(rng) }

// DH is ecdh. Noise calls it with the peer's public key straight from the wire, so an
// invalid point must be an error, never a panic.
func (secpDH) DH(priv, pub []byte) ([]byte, error) { return ecdh(priv, pub) }

// DHLen is the public key length Noise reads from messages (Noise rev 34 §4.1 DHLEN).
// Unlike Noise's own DH functions, DH returns 32 bytes, not DHLen: the hashed point.
func (secpDH) DHLen() int { return KeyLen }

// DHName names the function in the protocol name.
func (secpDH) DHName() string { return "secp256k1" }

// suite is the Noise cipher suite: secp256k1, ChaCha20-Poly1305, SHA-256.
var suite = noise.NewCipherSuite(secpDH{}, noise.CipherChaChaPoly, noise.HashSHA256)
