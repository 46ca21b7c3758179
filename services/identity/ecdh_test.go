package identity

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// ecdhReference is ECDH computed with decred's variable-time arithmetic, which is
// fine in a test: SHA-256 of the compressed point d·pub from ScalarMultNonConst.
// It also checks that the point's x is what decred's GenerateSharedSecret (x
// alone, unhashed) returns, so the reference is tied to decred's own ECDH.
func ecdhReference(t *testing.T, priv *secp256k1.PrivateKey, pub []byte) [32]byte {
	t.Helper()
	pk, err := secp256k1.ParsePubKey(pub)
	if err != nil {
		t.Fatalf("reference: ParsePubKey(%x): %v", pub, err)
	}
	var p, r secp256k1.JacobianPoint
	pk.AsJacobian(&p)
	secp256k1.ScalarMultNonConst(&priv.Key, &p, &r)
	r.ToAffine()
	var buf [PublicKeySize]byte
	buf[0] = secp256k1.PubKeyFormatCompressedEven
	if r.Y.IsOdd() {
		buf[0] = secp256k1.PubKeyFormatCompressedOdd
	}
	r.X.PutBytesUnchecked(buf[1:])
	if x := secp256k1.GenerateSharedSecret(priv, pk); !bytes.Equal(x, buf[1:]) {
		t.Fatalf("reference: GenerateSharedSecret x %x, ScalarMultNonConst x %x", x, buf[1:])
	}
	return sha256.Sum256(buf[:])
}

// TestECDHKnownAnswer: 1·G is G, so ECDH(1, G) is SHA-256 of G's compressed
// encoding, the generator given in SEC 2 v2 §2.4.1 (not our own output).
func TestECDHKnownAnswer(t *testing.T) {
	g := mustHex(t, "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
	one := make([]byte, 32)
	one[31] = 1
	got, err := ECDH(privFrom(t, one), g)
	if err != nil {
		t.Fatal(err)
	}
	if want := sha256.Sum256(g); got != want {
		t.Fatalf("ECDH(1, G) = %x, want SHA-256(G) = %x", got, want)
	}
}

// TestECDHSymmetric: a·B = b·A for random key pairs, each side using only its
// own secret, which is what lets two nodes agree on a key.
func TestECDHSymmetric(t *testing.T) {
	rng := rand.NewChaCha8([32]byte{'e', 'c', 'd', 'h'})
	n := 64
	if testing.Short() {
		n = 8
	}
	for range n {
		a, err := Generate(rng)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Generate(rng)
		if err != nil {
			t.Fatal(err)
		}
		ab, err1 := ECDH(a.PrivateKey(), b.PublicKey())
		ba, err2 := ECDH(b.PrivateKey(), a.PublicKey())
		if err1 != nil || err2 != nil {
			t.Fatalf("ECDH: %v, %v", err1, err2)
		}
		if ab != ba {
			t.Fatalf("ECDH(a, B) = %x but ECDH(b, A) = %x", ab, ba)
		}
		if ab == [32]byte{} {
			t.Fatal("ECDH returned zeros")
		}
	}
}

// TestECDHMatchesDecred: the constant-time ECDH equals decred's variable-time
// computation for every edge scalar against random points and the generator,
// and for random pairs.
func TestECDHMatchesDecred(t *testing.T) {
	rng := rand.NewChaCha8([32]byte{'d', 'e', 'c', 'r', 'e', 'd'})
	var pubs [][]byte
	pubs = append(pubs, mustHex(t, "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"))
	for range 8 {
		k, err := Generate(rng)
		if err != nil {
			t.Fatal(err)
		}
		pubs = append(pubs, k.PublicKey())
	}
	check := func(priv *secp256k1.PrivateKey, pub []byte) {
		t.Helper()
		got, err := ECDH(priv, pub)
		if err != nil {
			t.Fatalf("ECDH(%x, %x): %v", priv.Serialize(), pub, err)
		}
		if want := ecdhReference(t, priv, pub); got != want {
			t.Fatalf("ECDH(%x, %x) = %x, decred %x", priv.Serialize(), pub, got, want)
		}
	}
	for _, s := range edgeSecrets() {
		priv := privFrom(t, s)
		for _, pub := range pubs {
			check(priv, pub)
		}
		// And the edge key's own public key, so edge points are covered too.
		pub, err := PublicKeyOf(priv)
		if err != nil {
			t.Fatal(err)
		}
		check(privFrom(t, edgeSecrets()[0]), pub)
	}
	for range 32 {
		k, err := Generate(rng)
		if err != nil {
			t.Fatal(err)
		}
		check(k.PrivateKey(), pubs[rng.Uint64()%uint64(len(pubs))])
	}
}

// TestECDHRefusesBadPublicKeys: anything that is not a 33-byte compressed point
// on the curve is ErrPublicKey, and decred agrees that every 33-byte case is no
// valid key (so the cases are really invalid).
func TestECDHRefusesBadPublicKeys(t *testing.T) {
	p, _ := new(big.Int).SetString("fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f", 16)
	gx, _ := new(big.Int).SetString("79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798", 16)
	withPrefix := func(prefix byte, x *big.Int) []byte {
		b := make([]byte, PublicKeySize)
		b[0] = prefix
		x.FillBytes(b[1:])
		return b
	}
	// An x with no point: x³+7 is not a square mod p, found by search.
	var off *big.Int
	for x := int64(1); off == nil; x++ {
		bx := big.NewInt(x)
		rhs := new(big.Int).Exp(bx, big.NewInt(3), p)
		rhs.Add(rhs, big.NewInt(7)).Mod(rhs, p)
		if new(big.Int).ModSqrt(rhs, p) == nil {
			off = bx
		}
	}
	one := make([]byte, 32)
	one[31] = 1
	uncompressed := secp256k1.PrivKeyFromBytes(one).PubKey().SerializeUncompressed()
	cases := map[string][]byte{
		"nil":                  nil,
		"32 bytes":             withPrefix(2, gx)[1:],
		"34 bytes":             append(withPrefix(2, gx), 0),
		"uncompressed G":       uncompressed,
		"uncompressed, cut":    uncompressed[:PublicKeySize],
		"prefix 0x00":          withPrefix(0, gx),
		"prefix 0x04":          withPrefix(4, gx),
		"hybrid prefix 0x06":   withPrefix(6, gx),
		"x off curve (even)":   withPrefix(2, off),
		"x off curve (odd)":    withPrefix(3, off),
		"x = p":                withPrefix(2, p),
		"x = 2^256-1":          bytes.Repeat([]byte{0xff}, PublicKeySize),
		"all zero (broadcast)": make([]byte, PublicKeySize),
	}
	priv := privFrom(t, edgeSecrets()[3])
	for name, pub := range cases {
		out, err := ECDH(priv, pub)
		if !errors.Is(err, ErrPublicKey) {
			t.Errorf("%s: ECDH = %x, %v; want ErrPublicKey", name, out, err)
		}
		if out != ([32]byte{}) {
			t.Errorf("%s: output not zero on error", name)
		}
		if _, err := secp256k1.ParsePubKey(pub); err == nil && len(pub) == PublicKeySize {
			t.Errorf("%s: decred accepts it: the test case is wrong", name)
		}
	}
}

// TestECDHRefusesBadPrivateKeys: nil and zero keys (decred makes a zero key
// from 0 and from N) are ErrPrivateKey, not a product with zero.
func TestECDHRefusesBadPrivateKeys(t *testing.T) {
	pub := mustHex(t, "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
	for name, priv := range map[string]*secp256k1.PrivateKey{
		"nil":  nil,
		"zero": secp256k1.PrivKeyFromBytes(make([]byte, 32)),
		"N":    secp256k1.PrivKeyFromBytes(mustHex(t, curveOrderHex)),
	} {
		if out, err := ECDH(priv, pub); !errors.Is(err, ErrPrivateKey) {
			t.Errorf("%s: ECDH = %x, %v; want ErrPrivateKey", name, out, err)
		}
	}
}

// TestECDHErrorsHideSecrets: no error quotes the secret key or the public key's
// x (only its length and prefix), in hex of either case.
func TestECDHErrorsHideSecrets(t *testing.T) {
	k, err := Generate(rand.NewChaCha8([32]byte{'s'}))
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Repeat([]byte{0xab}, PublicKeySize)
	bad[0] = 2
	for x := byte(0); ; x++ { // vary x's last byte until it has no point
		bad[32] = x
		if _, err := secp256k1.ParsePubKey(bad); err != nil {
			break
		}
	}
	for _, pub := range [][]byte{bad, bad[:20], append(bytes.Clone(bad), bad...)} {
		_, err := ECDH(k.PrivateKey(), pub)
		if err == nil {
			t.Fatalf("ECDH(%x) accepted", pub)
		}
		msg := strings.ToLower(err.Error())
		if strings.Contains(msg, k.SecretHex()) || strings.Contains(msg, hex.EncodeToString(pub[1:9])) {
			t.Errorf("error quotes key material: %q", err)
		}
	}
}
