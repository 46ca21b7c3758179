package bitcoin

import (
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	voi "gitlab.com/yawning/secp256k1-voi"
)

// ErrKey is returned for a nil or zero private key, or a tweak that makes
// one zero.
var ErrKey = errors.New("bitcoin: invalid private key")

// taggedHash is BIP340's hash_tag(x) = SHA-256(SHA-256(tag) ‖ SHA-256(tag) ‖ x).
func taggedHash(tag string, parts ...[]byte) [32]byte {
	t := sha256.Sum256([]byte(tag))
	h := sha256.New()
	h.Write(t[:])
	h.Write(t[:])
	for _, p := range parts {
		h.Write(p)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// secret reads priv into a voi scalar, refusing zero.
func secret(priv *secp256k1.PrivateKey) (*voi.Scalar, error) {
	if priv == nil {
		return nil, ErrKey
	}
	var b [32]byte
	priv.Key.PutBytes(&b)
	d, _ := voi.NewScalarFromBytes(&b)
	clear(b[:])
	if d.IsZero() == 1 {
		return nil, ErrKey
	}
	return d, nil
}

// SignSchnorr signs the 32-byte msg (a BIP341 sighash, or BIP322's message
// hash) with priv by BIP340 §Default Signing, with 32 bytes of auxiliary
// randomness aux
// (fresh from crypto/rand when signing for real; the BIP's vectors give
// theirs), and checks the signature with btcec's verifier before returning
// it. Every operation on the key and the nonce is constant time
// (secp256k1-voi); btcec's own schnorr.Sign computes k·G in variable time.
// BIP340 allows messages of any length since 2022, but btcec's verifier,
// which checks every signature made here, takes 32 bytes, and so does every
// message the wallet signs. Errors: ErrKey, a msg or aux of another length,
// a signature that does not verify (a fault: nothing is returned then).
func SignSchnorr(priv *secp256k1.PrivateKey, msg, aux []byte) ([64]byte, error) {
	d0, err := secret(priv)
	if err != nil {
		return [64]byte{}, err
	}
	defer d0.Zero()
	return signSchnorr(d0, msg, aux)
}

// SignTaprootKeyPath signs a BIP341 key-path sighash for the output of
// internal key priv with no script tree (BIP86): the key is tweaked as
// BIP341 §Constructing and spending Taproot outputs says (made even-y,
// plus int(hash_TapTweak(x(P)))), then signed by SignSchnorr's rules.
func SignTaprootKeyPath(priv *secp256k1.PrivateKey, sighash, aux []byte) ([64]byte, error) {
	d, err := secret(priv)
	if err != nil {
		return [64]byte{}, err
	}
	defer d.Zero()
	p := voi.NewIdentityPoint().ScalarBaseMult(d)
	d.ConditionalNegate(d, p.IsYOdd())
	x := p.CompressedBytes()[1:]
	tw := taggedHash("TapTweak", x)
	t, err := voi.NewScalarFromCanonicalBytes(&tw)
	if err != nil {
		return [64]byte{}, fmt.Errorf("%w: the tweak is not below the group order", ErrKey)
	}
	d.Add(d, t)
	if d.IsZero() == 1 {
		return [64]byte{}, ErrKey
	}
	return signSchnorr(d, sighash, aux)
}

func signSchnorr(d0 *voi.Scalar, msg, aux []byte) ([64]byte, error) {
	if len(aux) != 32 || len(msg) != 32 {
		return [64]byte{}, fmt.Errorf("bitcoin: BIP340 signing of %d bytes with %d bytes of auxiliary randomness; want 32 and 32", len(msg), len(aux))
	}
	p := voi.NewIdentityPoint().ScalarBaseMult(d0)
	px := p.CompressedBytes()[1:]
	d := voi.NewScalar().ConditionalNegate(d0, p.IsYOdd())
	defer d.Zero()
	db := d.Bytes()
	ah := taggedHash("BIP0340/aux", aux)
	for i := range db {
		db[i] ^= ah[i]
	}
	r := taggedHash("BIP0340/nonce", db, px, msg)
	clear(db)
	k, _ := voi.NewScalarFromBytes(&r)
	clear(r[:])
	defer k.Zero()
	if k.IsZero() == 1 {
		return [64]byte{}, errors.New("bitcoin: BIP340 nonce is zero")
	}
	rp := voi.NewIdentityPoint().ScalarBaseMult(k)
	k.ConditionalNegate(k, rp.IsYOdd())
	rx := rp.CompressedBytes()[1:]
	eh := taggedHash("BIP0340/challenge", rx, px, msg)
	e, _ := voi.NewScalarFromBytes(&eh)
	s := voi.NewScalar().Multiply(e, d)
	s.Add(s, k)
	var sig [64]byte
	copy(sig[:32], rx)
	copy(sig[32:], s.Bytes())
	s.Zero()
	// BIP340 recommends verifying before returning: a fault in the
	// computation must not give out a signature that leaks the key.
	pub, err := schnorr.ParsePubKey(px)
	if err == nil {
		var parsed *schnorr.Signature
		if parsed, err = schnorr.ParseSignature(sig[:]); err == nil && !parsed.Verify(msg, pub) {
			err = errors.New("does not verify")
		}
	}
	if err != nil {
		return [64]byte{}, fmt.Errorf("bitcoin: the BIP340 signature made failed its check: %v", err)
	}
	return sig, nil
}
