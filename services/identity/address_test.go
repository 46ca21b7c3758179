package identity

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil/base58"
)

// encodeRaw builds the base58 text of arbitrary key ‖ version ‖ checksum
// bytes, independently of Address.String, so that parse tests can make
// addresses String never would.
func encodeRaw(key []byte, version byte, goodChecksum bool) string {
	body := append(append([]byte(nil), key...), version)
	sum := sha256.Sum256(body)
	if !goodChecksum {
		sum[0] ^= 0x80
	}
	return base58.Encode(append(body, sum[:4]...))
}

func TestParseAddressErrors(t *testing.T) {
	g := loadSeedGolden(t, "seed-0002.golden")
	good := g.Keys[0].Address
	key := bytes.Repeat([]byte{0x5a}, 20)

	// Change one character to another base58 character: checksum must fail
	// (or, rarely, the length changes); either way it is rejected.
	swapped := []byte(good)
	if swapped[5] == 'a' {
		swapped[5] = 'b'
	} else {
		swapped[5] = 'a'
	}

	tests := []struct {
		name string
		in   string
		want []error // any of these
	}{
		{"empty", "", []error{ErrAddressEncoding}},
		{"zero digit", "0" + good[1:], []error{ErrAddressEncoding}},
		{"capital O", good[:4] + "O" + good[5:], []error{ErrAddressEncoding}},
		{"lower l", good[:4] + "l" + good[5:], []error{ErrAddressEncoding}},
		{"space", good + " ", []error{ErrAddressEncoding}},
		{"too short", encodeRaw(key[:19], 0, true), []error{ErrAddressLength}},
		{"too long", encodeRaw(append(key, 1), 0, true), []error{ErrAddressLength}},
		{"bad checksum", encodeRaw(key, 0, false), []error{ErrAddressChecksum}},
		{"version 1", encodeRaw(key, 1, true), []error{ErrAddressVersion}},
		{"version 0x80", encodeRaw(key, 0x80, true), []error{ErrAddressVersion}},
		{"one char changed", string(swapped), []error{ErrAddressChecksum, ErrAddressLength}},
		{"bitcoin address", g.Keys[0].BitcoinAddress, []error{ErrAddressChecksum, ErrAddressLength, ErrAddressVersion}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := ParseAddress(tc.in)
			ok := false
			for _, w := range tc.want {
				ok = ok || errors.Is(err, w)
			}
			if !ok {
				t.Fatalf("ParseAddress(%q) = %v, %v; want one of %v", tc.in, a, err, tc.want)
			}
			if a != (Address{}) {
				t.Fatalf("non-zero address %v with error", a)
			}
		})
	}

	a, err := ParseAddress(encodeRaw(key, 0, true))
	if err != nil {
		t.Fatalf("valid hand-built address: %v", err)
	}
	if !bytes.Equal(a.Key[:], key) || a.Version != 0 {
		t.Fatalf("parsed %+v, want key %x version 0", a, key)
	}
}

func TestAddressBytesLayout(t *testing.T) {
	g := loadSeedGolden(t, "many-addresses.golden")
	gk := g.Keys[7]
	a, err := ParseAddress(gk.Address)
	if err != nil {
		t.Fatal(err)
	}
	raw := a.Bytes()
	if len(raw) != 25 || raw[20] != AddressVersion || !bytes.Equal(raw[:20], a.Key[:]) {
		t.Fatalf("Bytes() = %x: want key ‖ version ‖ checksum", raw)
	}
	if !bytes.Equal(raw, base58.Decode(gk.Address)) {
		t.Fatalf("Bytes() = %x, base58 of golden = %x", raw, base58.Decode(gk.Address))
	}
}

func TestAddressFromPublicKeyErrors(t *testing.T) {
	g := loadSeedGolden(t, "seed-0000.golden")
	pub := mustHex(t, g.Keys[0].Public)

	// A valid point, given uncompressed: 65 bytes are refused.
	k, _ := ParseSecretHex(g.Keys[0].Secret)
	uncompressed := k.PrivateKey().PubKey().SerializeUncompressed()

	// An X coordinate with no point on the curve: x = 5 (5^3 + 7 = 132 is
	// not a square mod p).
	offCurve := append([]byte{0x02}, make([]byte, 31)...)
	offCurve = append(offCurve, 5)

	badPrefix := bytes.Clone(pub)
	badPrefix[0] = 0x04

	for name, in := range map[string][]byte{
		"nil":          nil,
		"32 bytes":     pub[1:],
		"uncompressed": uncompressed,
		"prefix 0x04":  badPrefix,
		"off curve":    offCurve,
		"x >= p":       append([]byte{0x03}, bytes.Repeat([]byte{0xff}, 32)...),
	} {
		if _, err := AddressFromPublicKey(in); !errors.Is(err, ErrPublicKey) {
			t.Errorf("%s: AddressFromPublicKey error = %v, want ErrPublicKey", name, err)
		}
		if _, err := BitcoinAddress(in); !errors.Is(err, ErrPublicKey) {
			t.Errorf("%s: BitcoinAddress error = %v, want ErrPublicKey", name, err)
		}
	}
}

// FuzzParseAddress: never panics; whatever parses re-encodes to the same
// text, has version 0, and its 25 bytes carry a valid checksum.
func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{
		"2Niqzo12tZ9ioZq5vwPHMVR4g7UVpp9TCmP",
		"cfb24jWcms9pZtvEx3UjUuLPdT6rbx6r9M",
		"1GJ3vu6ZiskrnP7korsBVEanxb6fpqDjat",
		"1111111111111111111114oLvT2",
		"",
		"0OIl",
		strings.Repeat("z", 100),
		encodeRaw(make([]byte, 20), 0, true),
		encodeRaw(bytes.Repeat([]byte{0xff}, 20), 0, true),
		encodeRaw(make([]byte, 20), 1, true),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddress(s)
		if err != nil {
			return
		}
		if a.Version != AddressVersion {
			t.Fatalf("accepted version %d", a.Version)
		}
		if got := a.String(); got != s {
			t.Fatalf("ParseAddress(%q).String() = %q", s, got)
		}
		raw := a.Bytes()
		sum := sha256.Sum256(raw[:21])
		if !bytes.Equal(sum[:4], raw[21:]) {
			t.Fatalf("accepted %q with checksum %x, want %x", s, raw[21:], sum[:4])
		}
	})
}

// FuzzAddressFromPublicKey: never panics; accepts exactly the 33-byte
// compressed keys decred can parse, and their addresses parse back.
func FuzzAddressFromPublicKey(f *testing.F) {
	f.Add(mustHex(f, "03b79123b2a3100420b19cccbfc688aa39f510b8491b67bdd296a92a021a3d0d8e"))
	f.Add(mustHex(f, "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"))
	f.Add([]byte{0x02})
	f.Add(append([]byte{0x04}, make([]byte, 64)...))
	f.Fuzz(func(t *testing.T, pub []byte) {
		a, err := AddressFromPublicKey(pub)
		if err != nil {
			return
		}
		if len(pub) != 33 || (pub[0] != 2 && pub[0] != 3) {
			t.Fatalf("accepted %x", pub)
		}
		b, err := ParseAddress(a.String())
		if err != nil || b != a {
			t.Fatalf("address %v of %s does not parse back: %v", a, hex.EncodeToString(pub), err)
		}
	})
}
