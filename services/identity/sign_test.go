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
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

// curveN is the secp256k1 group order N (SEC 2 v2 §2.4.1).
var curveN, _ = new(big.Int).SetString(curveOrderHex, 16)

// be32 is x as 32 big-endian bytes (x must be below 2^256).
func be32(x *big.Int) []byte { return x.FillBytes(make([]byte, 32)) }

// edgeSecrets are 32-byte scalars in [1, N-1] at the edges of the range and of
// the limb layouts both libraries use.
func edgeSecrets() [][]byte {
	one := big.NewInt(1)
	var out [][]byte
	for _, x := range []*big.Int{
		big.NewInt(1), big.NewInt(2), big.NewInt(3), big.NewInt(7),
		new(big.Int).Sub(curveN, one),                         // N-1
		new(big.Int).Sub(curveN, big.NewInt(2)),               // N-2
		new(big.Int).Rsh(curveN, 1),                           // (N-1)/2
		new(big.Int).Add(new(big.Int).Rsh(curveN, 1), one),    // (N+1)/2
		new(big.Int).Lsh(one, 64), new(big.Int).Lsh(one, 128), // limb boundaries
		new(big.Int).Sub(new(big.Int).Lsh(one, 128), one),                        // 2^128-1
		new(big.Int).Lsh(one, 255),                                               // top bit alone
		new(big.Int).Sub(new(big.Int).Lsh(one, 256), new(big.Int).Lsh(one, 129)), // 0xff..fe00..
	} {
		out = append(out, be32(x))
	}
	for _, b := range []byte{0x01, 0x55, 0x7f, 0x80, 0xaa} {
		out = append(out, bytes.Repeat([]byte{b}, 32))
	}
	return out
}

// edgeHashes are 32-byte hashes at the edges of reduction mod N.
func edgeHashes() [][]byte {
	one := big.NewInt(1)
	return [][]byte{
		make([]byte, 32),
		be32(one),
		be32(new(big.Int).Sub(curveN, one)),
		be32(curveN), // ≡ 0 mod N
		be32(new(big.Int).Add(curveN, one)),
		bytes.Repeat([]byte{0xff}, 32), // above N: reduced
		bytes.Repeat([]byte{0x80}, 32),
	}
}

func privFrom(t testing.TB, b []byte) *secp256k1.PrivateKey {
	t.Helper()
	var s secp256k1.ModNScalar
	if overflow := s.SetByteSlice(b); overflow || s.IsZero() {
		t.Fatalf("test secret %x is not in [1, N-1]", b)
	}
	return secp256k1.NewPrivateKey(&s)
}

// checkAgainstDecred signs hash with priv both ways and requires the same bytes,
// a signature that decred's RecoverCompact turns back into the constant-time
// public key, with the compressed flag, and low S.
func checkAgainstDecred(t *testing.T, priv *secp256k1.PrivateKey, hash []byte) {
	t.Helper()
	got, err := SignCompact(priv, hash)
	if err != nil {
		t.Fatalf("SignCompact(key %x, hash %x): %v", priv.Serialize(), hash, err)
	}
	want := ecdsa.SignCompact(priv, hash, true)
	if !bytes.Equal(got, want) {
		t.Fatalf("key %x hash %x:\n got  %x\n want %x (decred)", priv.Serialize(), hash, got, want)
	}
	pub, err := PublicKeyOf(priv)
	if err != nil {
		t.Fatal(err)
	}
	if want := priv.PubKey().SerializeCompressed(); !bytes.Equal(pub, want) {
		t.Fatalf("PublicKeyOf(%x) = %x, decred %x", priv.Serialize(), pub, want)
	}
	rec, compressed, err := ecdsa.RecoverCompact(got, hash)
	if err != nil || !compressed || !bytes.Equal(rec.SerializeCompressed(), pub) {
		t.Fatalf("RecoverCompact = %v, %v, %v; want %x, compressed", rec, compressed, err, pub)
	}
	if s := new(big.Int).SetBytes(got[33:]); s.Cmp(new(big.Int).Rsh(curveN, 1)) > 0 {
		t.Fatalf("s = %x is above N/2", got[33:])
	}
}

// TestSignCompactMatchesDecred: on thousands of random keys and hashes, and on
// every pair of edge keys and edge hashes, SignCompact returns exactly decred's
// bytes, so signatures verify with the old code and the wire format is unchanged.
func TestSignCompactMatchesDecred(t *testing.T) {
	n := 3000
	if testing.Short() {
		n = 300
	}
	rng := rand.New(rand.NewChaCha8([32]byte{'s', 'k', 'y', 'f', 'l', 'e', 'e', 't'}))
	var negated, kept int
	for range n {
		var kb, hash [32]byte
		fill(rng, kb[:])
		fill(rng, hash[:])
		var s secp256k1.ModNScalar
		if overflow := s.SetBytes(&kb); overflow != 0 || s.IsZero() {
			continue // probability 2^-128
		}
		priv := secp256k1.NewPrivateKey(&s)
		checkAgainstDecred(t, priv, hash[:])
		// Both branches of the low-S normalisation must be exercised. It negated
		// s exactly when the recovery code's parity differs from that of the
		// nonce point R = k·G, computed here independently.
		sig, _ := SignCompact(priv, hash[:])
		k := secp256k1.NonceRFC6979(kb[:], hash[:], nil, nil, 0)
		var R secp256k1.JacobianPoint
		secp256k1.ScalarBaseMultNonConst(k, &R)
		R.ToAffine()
		if uint32((sig[0]-31)&1) != R.Y.IsOddBit() {
			negated++
		} else {
			kept++
		}
	}
	if negated < n/4 || kept < n/4 {
		t.Fatalf("s negated in %d and kept in %d of %d signatures: both branches must be covered", negated, kept, n)
	}
	for _, kb := range edgeSecrets() {
		priv := privFrom(t, kb)
		for _, h := range edgeHashes() {
			checkAgainstDecred(t, priv, h)
		}
		// A hash equal to the key itself, in case anything confuses the two.
		checkAgainstDecred(t, priv, kb)
	}
}

func fill(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}

// TestSignCompactKnownVectors pins SignCompact to published RFC 6979 secp256k1
// signatures (low-S form), from outside both libraries: the vectors of
// bitcointalk.org topic 285142 as used by CoreBitcoin (BTCKey+Tests.m) and
// trezor-crypto (tests.c). The hash is SHA-256 of the message.
func TestSignCompactKnownVectors(t *testing.T) {
	for _, v := range []struct{ key, msg, r, s string }{
		{"0000000000000000000000000000000000000000000000000000000000000001", "Satoshi Nakamoto",
			"934b1ea10a4b3c1757e2b0c017d0b6143ce3c9a7e6a4a49860d7a6ab210ee3d8",
			"2442ce9d2b916064108014783e923ec36b49743e2ffa1c4496f01a512aafd9e5"},
		{"0000000000000000000000000000000000000000000000000000000000000001", "Everything should be made as simple as possible, but not simpler.",
			"33a69cd2065432a30f3d1ce4eb0d59b8ab58c74f27c41a7fdb5696ad4e6108c9",
			"6f807982866f785d3f6418d24163ddae117b7db4d5fdf0071de069fa54342262"},
		{"0000000000000000000000000000000000000000000000000000000000000001", "All those moments will be lost in time, like tears in rain. Time to die...",
			"8600dbd41e348fe5c9465ab92d23e3db8b98b873beecd930736488696438cb6b",
			"547fe64427496db33bf66019dacbf0039c04199abb0122918601db38a72cfc21"},
		{"fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140", "Satoshi Nakamoto",
			"fd567d121db66e382991534ada77a6bd3106f0a1098c231e47993447cd6af2d0",
			"6b39cd0eb1bc8603e159ef5c20a5c8ad685a45b06ce9bebed3f153d10d93bed5"},
		{"cca9fbcc1b41e5a95d369eaa6ddcff73b61a4efaa279cfc6567e8daa39cbaf50", "sample",
			"af340daf02cc15c8d5d08d7735dfe6b98a474ed373bdb5fbecf7571be52b3842",
			"5009fb27f37034a9b24b707b7c6b79ca23ddef9e25f7282e8a797efe53a8f124"},
	} {
		priv := privFrom(t, mustHex(t, v.key))
		h := sha256.Sum256([]byte(v.msg))
		sig, err := SignCompact(priv, h[:])
		if err != nil {
			t.Fatal(err)
		}
		if len(sig) != CompactSignatureSize || sig[0] < 31 || sig[0] > 34 {
			t.Fatalf("%q: header byte %d of %d-byte signature, want 31..34 of 65", v.msg, sig[0], len(sig))
		}
		if got := hex.EncodeToString(sig[1:33]); got != v.r {
			t.Errorf("%q: r = %s, want %s", v.msg, got, v.r)
		}
		if got := hex.EncodeToString(sig[33:]); got != v.s {
			t.Errorf("%q: s = %s, want %s", v.msg, got, v.s)
		}
	}
}

// TestSignCompactGolden signs Skycoin's golden input hashes with Skycoin's golden
// keys: the signer recovered from each signature is the golden public key, and the
// signature is decred's. (Skycoin's own golden signatures use another nonce, so
// they are checked by recovery in TestGoldenSignatures, not compared.)
func TestSignCompactGolden(t *testing.T) {
	hashes := loadInputHashes(t)
	g := loadSeedGolden(t, "seed-0001.golden")
	for i, gk := range g.Keys {
		k, err := ParseSecretHex(gk.Secret)
		if err != nil {
			t.Fatal(err)
		}
		for j, h := range hashes {
			sig, err := k.SignCompact(h)
			if err != nil {
				t.Fatal(err)
			}
			if want := ecdsa.SignCompact(k.PrivateKey(), h, true); !bytes.Equal(sig, want) {
				t.Fatalf("key %d hash %d: %x, decred %x", i, j, sig, want)
			}
			pub, _, err := ecdsa.RecoverCompact(sig, h)
			if err != nil || hex.EncodeToString(pub.SerializeCompressed()) != gk.Public {
				t.Fatalf("key %d hash %d: recovered %v, %v; want %s", i, j, pub, err, gk.Public)
			}
		}
	}
}

// TestPublicKeyOfKnown pins PublicKeyOf to outside values: 1·G is the generator
// and (N-1)·G = -G (SEC 2 v2 §2.4.1, compressed); edge keys agree with decred.
func TestPublicKeyOfKnown(t *testing.T) {
	const g = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
	for key, want := range map[string]string{
		strings.Repeat("0", 63) + "1": "02" + g,
		curveOrderHex[:63] + "0":      "03" + g,
	} {
		pub, err := PublicKeyOf(privFrom(t, mustHex(t, key)))
		if err != nil || hex.EncodeToString(pub) != want {
			t.Errorf("PublicKeyOf(%s) = %x, %v; want %s", key, pub, err, want)
		}
	}
	for _, kb := range edgeSecrets() {
		priv := privFrom(t, kb)
		pub, err := PublicKeyOf(priv)
		if err != nil || !bytes.Equal(pub, priv.PubKey().SerializeCompressed()) {
			t.Errorf("PublicKeyOf(%x) = %x, %v; decred %x", kb, pub, err, priv.PubKey().SerializeCompressed())
		}
	}
}

// TestSignCompactErrors: no key, a zero key (what decred's PrivKeyFromBytes makes
// of 0 and of N) and hashes of the wrong length are refused with the documented
// errors, no signature and no panic.
func TestSignCompactErrors(t *testing.T) {
	hash := sha256.Sum256([]byte("x"))
	good := privFrom(t, edgeSecrets()[0])
	for name, priv := range map[string]*secp256k1.PrivateKey{
		"nil":  nil,
		"zero": secp256k1.PrivKeyFromBytes(make([]byte, 32)),
		"N":    secp256k1.PrivKeyFromBytes(mustHex(t, curveOrderHex)),
	} {
		if sig, err := SignCompact(priv, hash[:]); !errors.Is(err, ErrPrivateKey) || sig != nil {
			t.Errorf("%s key: SignCompact = %x, %v; want ErrPrivateKey", name, sig, err)
		}
		if pub, err := PublicKeyOf(priv); !errors.Is(err, ErrPrivateKey) || pub != nil {
			t.Errorf("%s key: PublicKeyOf = %x, %v; want ErrPrivateKey", name, pub, err)
		}
	}
	for _, n := range []int{0, 1, 20, 31, 33, 64} {
		if sig, err := SignCompact(good, make([]byte, n)); !errors.Is(err, ErrHashLength) || sig != nil {
			t.Errorf("%d-byte hash: SignCompact = %x, %v; want ErrHashLength", n, sig, err)
		}
	}
	if _, err := SignCompact(nil, nil); err == nil {
		t.Error("SignCompact(nil, nil) succeeded")
	}
}

// FuzzSignCompact: for any 32-byte secret and 32-byte hash, SignCompact agrees
// with decred (bytes, or refusal of the key) and never panics; other lengths are
// refused.
func FuzzSignCompact(f *testing.F) {
	for _, k := range edgeSecrets() {
		f.Add(k, edgeHashes()[0])
	}
	for _, h := range edgeHashes() {
		f.Add(edgeSecrets()[4], h)
	}
	f.Add(make([]byte, 32), make([]byte, 32))
	f.Add(mustHex(f, curveOrderHex), make([]byte, 32))
	f.Add([]byte{1}, []byte{})
	f.Fuzz(func(t *testing.T, key, hash []byte) {
		if len(key) != 32 {
			return
		}
		priv := secp256k1.PrivKeyFromBytes(key) // reduces mod N; 0 and N give zero
		sig, err := SignCompact(priv, hash)
		if len(hash) != HashSize {
			if !errors.Is(err, ErrHashLength) || sig != nil {
				t.Fatalf("%d-byte hash: %x, %v", len(hash), sig, err)
			}
			return
		}
		if priv.Key.IsZero() {
			if !errors.Is(err, ErrPrivateKey) || sig != nil {
				t.Fatalf("zero key: %x, %v", sig, err)
			}
			return
		}
		if err != nil || !bytes.Equal(sig, ecdsa.SignCompact(priv, hash, true)) {
			t.Fatalf("key %x hash %x: %x, %v; decred %x", key, hash, sig, err, ecdsa.SignCompact(priv, hash, true))
		}
	})
}

// BenchmarkSignCompactVsDecred times SignCompact and decred's ecdsa.SignCompact
// alternately on the same key and hash, so that both see the same machine load,
// and reports each one's ns/op and their ratio (new/old: above 1 means the
// constant-time version is slower).
func BenchmarkSignCompactVsDecred(b *testing.B) {
	priv := privFrom(b, bytes.Repeat([]byte{0x5a}, 32))
	hash := sha256.Sum256([]byte("benchmark"))
	var tNew, tOld time.Duration
	n := 0
	for b.Loop() {
		t0 := time.Now()
		if _, err := SignCompact(priv, hash[:]); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		_ = ecdsa.SignCompact(priv, hash[:], true)
		tOld += time.Since(t1)
		tNew += t1.Sub(t0)
		n++
	}
	reportRatio(b, tNew, tOld, n)
}

// BenchmarkPublicKeyOfVsDecred is BenchmarkSignCompactVsDecred for PublicKeyOf
// against decred's PubKey().SerializeCompressed().
func BenchmarkPublicKeyOfVsDecred(b *testing.B) {
	priv := privFrom(b, bytes.Repeat([]byte{0x5a}, 32))
	var tNew, tOld time.Duration
	n := 0
	for b.Loop() {
		t0 := time.Now()
		if _, err := PublicKeyOf(priv); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		_ = priv.PubKey().SerializeCompressed()
		tOld += time.Since(t1)
		tNew += t1.Sub(t0)
		n++
	}
	reportRatio(b, tNew, tOld, n)
}

func reportRatio(b *testing.B, tNew, tOld time.Duration, n int) {
	if n == 0 || tOld == 0 {
		return
	}
	b.ReportMetric(float64(tNew.Nanoseconds())/float64(n), "new-ns/op")
	b.ReportMetric(float64(tOld.Nanoseconds())/float64(n), "decred-ns/op")
	b.ReportMetric(float64(tNew)/float64(tOld), "new/decred")
	b.Logf("%d runs: constant time %v/op, decred %v/op, ratio %.2f", n, tNew/time.Duration(n), tOld/time.Duration(n), float64(tNew)/float64(tOld))
}
