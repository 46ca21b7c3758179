package identity

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// curveOrderHex is the secp256k1 group order N (SEC 2, section 2.4.1).
const curveOrderHex = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGenerateUsesReader(t *testing.T) {
	g := loadSeedGolden(t, "seed-0001.golden")
	gk := g.Keys[3]
	k, err := Generate(bytes.NewReader(mustHex(t, gk.Secret)))
	if err != nil {
		t.Fatal(err)
	}
	if k.SecretHex() != gk.Secret || k.Address().String() != gk.Address || k.PublicKeyHex() != gk.Public {
		t.Fatalf("Generate from golden secret gave %s / %s, want %s / %s", k.SecretHex(), k.Address(), gk.Secret, gk.Address)
	}
}

func TestGenerateSkipsInvalidScalars(t *testing.T) {
	g := loadSeedGolden(t, "seed-0000.golden")
	want := g.Keys[0]
	// Zero, then N (not below the order), then a valid secret.
	var stream []byte
	stream = append(stream, make([]byte, 32)...)
	stream = append(stream, mustHex(t, curveOrderHex)...)
	stream = append(stream, mustHex(t, want.Secret)...)
	k, err := Generate(bytes.NewReader(stream))
	if err != nil {
		t.Fatal(err)
	}
	if k.SecretHex() != want.Secret {
		t.Fatalf("got secret %s, want the third draw %s", k.SecretHex(), want.Secret)
	}
}

func TestGenerateErrors(t *testing.T) {
	// A source that only ever yields 0xff.. (above N) must not loop forever.
	allFF := bytes.NewReader(bytes.Repeat([]byte{0xff}, 32*maxGenerateAttempts+100))
	if _, err := Generate(allFF); err == nil || !strings.Contains(err.Error(), "invalid secret keys") {
		t.Fatalf("Generate(all 0xff) error = %v, want 'invalid secret keys'", err)
	}
	if _, err := Generate(bytes.NewReader(make([]byte, 31))); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short reader: error = %v, want io.ErrUnexpectedEOF", err)
	}
	boom := errors.New("boom")
	if _, err := Generate(iotest.ErrReader(boom)); !errors.Is(err, boom) {
		t.Fatalf("failing reader: error = %v, want boom", err)
	}
}

func TestGenerateCryptoRand(t *testing.T) {
	a, err := Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.SecretHex() == b.SecretHex() {
		t.Fatal("two keys from crypto/rand are equal")
	}
	// The public key must be the generator times the secret, checked through
	// decred's own derivation from the serialized secret.
	want := secp256k1.PrivKeyFromBytes(mustHex(t, a.SecretHex())).PubKey().SerializeCompressed()
	if !bytes.Equal(a.PublicKey(), want) {
		t.Fatalf("public key %x, want %x", a.PublicKey(), want)
	}
}

func TestParseSecretHexErrors(t *testing.T) {
	one := strings.Repeat("0", 63) + "1"
	nMinus1 := curveOrderHex[:63] + "0"
	tests := []struct {
		name string
		in   string
		want error // nil: accepted
	}{
		{"empty", "", ErrSecretLength},
		{"63 chars", one[1:], ErrSecretLength},
		{"65 chars", one + "0", ErrSecretLength},
		{"trailing newline", one[1:] + "\n", ErrSecretNotHex},
		{"0x prefix", "0x" + one[2:], ErrSecretNotHex},
		{"non-hex letter", strings.Repeat("g", 64), ErrSecretNotHex},
		{"multibyte rune", "é" + one[2:], ErrSecretNotHex},
		{"zero", strings.Repeat("0", 64), ErrSecretRange},
		{"curve order N", curveOrderHex, ErrSecretRange},
		{"all ones", strings.Repeat("f", 64), ErrSecretRange},
		{"one", one, nil},
		{"N-1", nMinus1, nil},
		{"upper case", strings.ToUpper(nMinus1), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := ParseSecretHex(tc.in)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("ParseSecretHex(%q): %v", tc.in, err)
				}
				if k.SecretHex() != strings.ToLower(tc.in) {
					t.Fatalf("SecretHex = %s, want %s", k.SecretHex(), strings.ToLower(tc.in))
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("ParseSecretHex(%q) error = %v, want %v", tc.in, err, tc.want)
			}
			if k != nil {
				t.Fatal("non-nil key with error")
			}
		})
	}
}

// wantSecretErrorText is the only text ParseSecretHex may give for an error of
// class want on an input of n characters: nothing may depend on the characters.
func wantSecretErrorText(want error, n int) string {
	if errors.Is(want, ErrSecretLength) {
		_, err := ParseSecretHex(strings.Repeat("0", n))
		return err.Error()
	}
	if errors.Is(want, ErrSecretNotHex) {
		_, err := ParseSecretHex(strings.Repeat("g", 64))
		return err.Error()
	}
	return ErrSecretRange.Error()
}

// TestParseSecretHexErrorHidesSecret is the regression test for errors that
// quoted the invalid character of a secret: a secret with one typo is still the
// secret, so no character of it may appear in the error (the message must be the
// same whatever the characters are).
func TestParseSecretHexErrorHidesSecret(t *testing.T) {
	secret := "6614f0956f4e08e07ec2d4c2767b9f7121449fc2269e2b22f1a549d63e9f719b"
	for _, bad := range []string{"Z", "q", "#", "\x00", "é", "\n", "~"} {
		in := secret[:40] + bad + secret[40+len(bad):]
		_, err := ParseSecretHex(in)
		if !errors.Is(err, ErrSecretNotHex) {
			t.Fatalf("%q: error %v, want ErrSecretNotHex", bad, err)
		}
		if msg := err.Error(); msg != wantSecretErrorText(ErrSecretNotHex, len(in)) || strings.Contains(msg, bad) || strings.Contains(msg, fmt.Sprintf("%q", bad)) {
			t.Errorf("%q: error text %q depends on the secret's characters", bad, msg)
		}
	}
}

func TestParseSecretHexOneIsGenerator(t *testing.T) {
	// Secret 1 gives the generator point G (SEC 2, section 2.4.1).
	k, err := ParseSecretHex(strings.Repeat("0", 63) + "1")
	if err != nil {
		t.Fatal(err)
	}
	const g = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
	if k.PublicKeyHex() != g {
		t.Fatalf("public key of 1 = %s, want G %s", k.PublicKeyHex(), g)
	}
}

func TestPublicKeyIsCopy(t *testing.T) {
	k, err := ParseSecretHex(strings.Repeat("0", 63) + "7")
	if err != nil {
		t.Fatal(err)
	}
	p := k.PublicKey()
	p[1] ^= 0xff
	if bytes.Equal(k.PublicKey(), p) {
		t.Fatal("modifying the returned public key changed the key")
	}
}

func TestInspectErrors(t *testing.T) {
	if _, err := Inspect("zz"); !errors.Is(err, ErrSecretLength) {
		t.Fatalf("Inspect(zz) error = %v", err)
	}
	if _, err := Inspect(strings.Repeat("0", 64)); !errors.Is(err, ErrSecretRange) {
		t.Fatalf("Inspect(0) error = %v", err)
	}
}

// FuzzParseSecretHex: never panics; accepted input is exactly 64 hex
// characters with a valid scalar, and re-encodes to itself (lower-cased).
func FuzzParseSecretHex(f *testing.F) {
	f.Add(strings.Repeat("0", 63) + "1")
	f.Add(curveOrderHex)
	f.Add(strings.Repeat("0", 64))
	f.Add("6614f0956f4e08e07ec2d4c2767b9f7121449fc2269e2b22f1a549d63e9f719b")
	f.Add("6614F0956F4E08E07EC2D4C2767B9F7121449FC2269E2B22F1A549D63E9F719B")
	f.Add("")
	f.Add("xyz")
	f.Add(strings.Repeat("0", 63) + "Z")
	f.Add("é" + strings.Repeat("0", 62))
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseSecretHex(s)
		if err != nil {
			if k != nil {
				t.Fatal("key with error")
			}
			// No character of s may reach the error: its text is fixed by the
			// class and the length alone.
			for _, class := range []error{ErrSecretLength, ErrSecretNotHex, ErrSecretRange} {
				if errors.Is(err, class) {
					if want := wantSecretErrorText(class, len(s)); err.Error() != want {
						t.Fatalf("ParseSecretHex(%q) error %q, want %q", s, err, want)
					}
					return
				}
			}
			t.Fatalf("ParseSecretHex(%q) error %v is of no documented class", s, err)
		}
		if len(s) != 64 || k.SecretHex() != strings.ToLower(s) {
			t.Fatalf("accepted %q, SecretHex %s", s, k.SecretHex())
		}
		if _, err := AddressFromPublicKey(k.PublicKey()); err != nil {
			t.Fatalf("own public key rejected: %v", err)
		}
	})
}

func BenchmarkGenerate(b *testing.B) {
	for b.Loop() {
		if _, err := Generate(nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAddress(b *testing.B) {
	k, err := Generate(nil)
	if err != nil {
		b.Fatal(err)
	}
	pub := k.PublicKey()
	for b.Loop() {
		if _, err := AddressFromPublicKey(pub); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAddressString(b *testing.B) {
	k, err := Generate(nil)
	if err != nil {
		b.Fatal(err)
	}
	a := k.Address()
	for b.Loop() {
		_ = a.String()
	}
}

func BenchmarkParseAddress(b *testing.B) {
	const s = "2Niqzo12tZ9ioZq5vwPHMVR4g7UVpp9TCmP"
	for b.Loop() {
		if _, err := ParseAddress(s); err != nil {
			b.Fatal(err)
		}
	}
}
