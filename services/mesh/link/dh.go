package link

import (
	"crypto/sha256"
	"errors"
	"io"
	"sync/atomic"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/flynn/noise"
)

// KeyLen is the length of a public key on the wire: a compressed secp256k1 point.
const KeyLen = 33

// ecdhCalls counts variable-base scalar multiplications, the expensive step an
// attacker would like to make us repeat. Tests read it to prove that datagrams without
// the network key, or exact replays, are dropped before any ECDH.
var ecdhCalls atomic.Uint64

var errDH = errors.New("link: ecdh failed")

// ecdh returns SHA-256(compressed(priv·pub)): the same value as libsecp256k1's
// secp256k1_ecdh with its default hash function. Hashing the whole point rather than
// returning x alone binds the y parity too, and gives a uniformly distributed key.
//
// priv is a 32-byte big-endian scalar in [1, N-1]; pub a 33-byte compressed point.
// Only compressed points are accepted so that every key has exactly one encoding.
//
// The multiplication is decred's ScalarMultNonConst (the only variable-base one the
// module offers, also used by its GenerateSharedSecret); it is not constant time.
func ecdh(priv, pub []byte) ([]byte, error) {
	if len(priv) != 32 || len(pub) != KeyLen {
		return nil, errDH
	}
	pk, err := secp256k1.ParsePubKey(pub)
	if err != nil {
		return nil, errDH
	}
	var k secp256k1.ModNScalar
	if overflow := k.SetByteSlice(priv); overflow || k.IsZero() {
		return nil, errDH
	}
	ecdhCalls.Add(1)
	var p, r secp256k1.JacobianPoint
	pk.AsJacobian(&p)
	secp256k1.ScalarMultNonConst(&k, &p, &r)
	k.Zero()
	r.ToAffine()
	if r.X.IsZero() && r.Y.IsZero() { // point at infinity: impossible for valid inputs
		return nil, errDH
	}
	var buf [KeyLen]byte
	buf[0] = secp256k1.PubKeyFormatCompressedEven
	if r.Y.IsOdd() {
		buf[0] = secp256k1.PubKeyFormatCompressedOdd
	}
	r.X.PutBytesUnchecked(buf[1:])
	sum := sha256.Sum256(buf[:])
	return sum[:], nil
}

// validKey reports whether pub is a 33-byte compressed point on the curve.
func validKey(pub []byte) bool {
	if len(pub) != KeyLen {
		return false
	}
	_, err := secp256k1.ParsePubKey(pub)
	return err == nil
}

// secpDH is the noise.DHFunc for secp256k1 (name "secp256k1", as in
// Noise_IKpsk2_secp256k1_ChaChaPoly_SHA256).
type secpDH struct{}

// GenerateKeypair makes a key pair from rng: Private is the 32-byte scalar, Public the
// 33-byte compressed point.
func (secpDH) GenerateKeypair(rng io.Reader) (noise.DHKey, error) {
	priv, err := secp256k1.GeneratePrivateKeyFromRand(rng)
	if err != nil {
		return noise.DHKey{}, err
	}
	defer priv.Zero()
	return noise.DHKey{Private: priv.Serialize(), Public: priv.PubKey().SerializeCompressed()}, nil
}

// DH is ecdh. Noise calls it with the peer's public key straight from the wire, so an
// invalid point must be an error, never a panic.
func (secpDH) DH(priv, pub []byte) ([]byte, error) { return ecdh(priv, pub) }

// DHLen is the public key length Noise reads from messages (Noise rev 34 §4.1 DHLEN).
func (secpDH) DHLen() int { return KeyLen }

// DHName names the function in the protocol name.
func (secpDH) DHName() string { return "secp256k1" }

// suite is the Noise cipher suite: secp256k1, ChaCha20-Poly1305, SHA-256.
var suite = noise.NewCipherSuite(secpDH{}, noise.CipherChaChaPoly, noise.HashSHA256)
