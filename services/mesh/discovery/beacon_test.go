package discovery

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"testing"

	xhkdf "golang.org/x/crypto/hkdf"
)

func testKey(b byte) []byte {
	k := make([]byte, PublicKeyLen)
	k[0] = 2 + b%2
	for i := 1; i < len(k); i++ {
		k[i] = b + byte(i)
	}
	return k
}

func testPSK(b byte) (psk [32]byte) {
	for i := range psk {
		psk[i] = b ^ byte(i*7)
	}
	return psk
}

func TestBeaconRoundTrip(t *testing.T) {
	psk := testPSK(1)
	in := Beacon{PublicKey: testKey(9), Port: 5505, Nonce: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}}
	b, err := MarshalBeacon(psk, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != BeaconLen || string(b[:4]) != "SKYD" || b[4] != 1 || !bytes.Equal(b[5:38], in.PublicKey) ||
		b[38] != 5505>>8 || b[39] != 5505&0xff || !bytes.Equal(b[40:48], in.Nonce[:]) {
		t.Fatalf("layout: %x", b)
	}
	out, err := ParseBeacon(b, psk)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.PublicKey, in.PublicKey) || out.Port != in.Port || out.Nonce != in.Nonce {
		t.Fatalf("round trip: %+v != %+v", out, in)
	}
	// The key is a copy.
	b[5] ^= 1
	if out.PublicKey[0] != in.PublicKey[0] {
		t.Fatal("ParseBeacon's PublicKey aliases its input")
	}
}

// TestBeaconVector pins the encoding: HKDF-SHA256 of the psk with info
// "skyfleet lan discovery", no salt, as the HMAC-SHA256 key, tag truncated to 16.
func TestBeaconVector(t *testing.T) {
	var psk [32]byte // all zero
	pub := make([]byte, 33)
	pub[0] = 2
	b, err := MarshalBeacon(psk, Beacon{PublicKey: pub, Port: 0x1581, Nonce: [8]byte{0xa, 0xb, 0xc, 0xd, 0xe, 0xf, 0x10, 0x11}})
	if err != nil {
		t.Fatal(err)
	}
	const want = "534b594401" + "02" + "0000000000000000000000000000000000000000000000000000000000000000" +
		"1581" + "0a0b0c0d0e0f1011"
	if got := hex.EncodeToString(b[:48]); got != want {
		t.Fatalf("header %s, want %s", got, want)
	}
	// The tag, pinned, and recomputed independently of beacon.go's helpers.
	const tag = "193a7c3e9a0d51e938bc9f5cb64b845b"
	if got, ref := hex.EncodeToString(b[48:]), referenceTag(t, psk, b[:48]); got != tag || ref != tag {
		t.Fatalf("tag %s (reference %s), want %s", got, ref, tag)
	}
}

func TestParseBeaconRejects(t *testing.T) {
	psk := testPSK(1)
	good, err := MarshalBeacon(psk, Beacon{PublicKey: testKey(3), Port: 5505})
	if err != nil {
		t.Fatal(err)
	}
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for _, tc := range []struct {
		name string
		b    []byte
		psk  [32]byte
		want error
	}{
		{"empty", nil, psk, ErrShort},
		{"four bytes", []byte("SKYD"), psk, ErrShort},
		{"truncated", good[:BeaconLen-1], psk, ErrShort},
		{"header only", good[:5], psk, ErrShort},
		{"too long", append(append([]byte(nil), good...), 0), psk, ErrLong},
		{"bad magic", mod(func(b []byte) []byte { b[0] = 'X'; return b }), psk, ErrMagic},
		{"bad magic short", []byte("HTTP/1.1"), psk, ErrMagic},
		{"version 0", mod(func(b []byte) []byte { b[4] = 0; return b }), psk, ErrVersion},
		{"version 2", mod(func(b []byte) []byte { b[4] = 2; return b }), psk, ErrVersion},
		{"bad tag", mod(func(b []byte) []byte { b[63] ^= 1; return b }), psk, ErrTag},
		{"changed key", mod(func(b []byte) []byte { b[10] ^= 1; return b }), psk, ErrTag},
		{"changed port", mod(func(b []byte) []byte { b[39] ^= 1; return b }), psk, ErrTag},
		{"changed nonce", mod(func(b []byte) []byte { b[44] ^= 1; return b }), psk, ErrTag},
		{"wrong psk", good, testPSK(2), ErrTag},
		{"zero tag", mod(func(b []byte) []byte { clear(b[48:]); return b }), psk, ErrTag},
	} {
		_, err := ParseBeacon(tc.b, tc.psk)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	// A correctly tagged beacon with an uncompressed-key prefix or port 0 (which
	// MarshalBeacon refuses to make) is still rejected.
	k := deriveKey(psk)
	for _, tc := range []struct {
		name string
		f    func(b []byte)
		want error
	}{
		{"key prefix 04", func(b []byte) { b[5] = 4 }, ErrPublicKey},
		{"port 0", func(b []byte) { b[38], b[39] = 0, 0 }, ErrPort},
	} {
		b := append([]byte(nil), good...)
		tc.f(b)
		copy(b[48:], k.tag(b[:48]))
		if _, err := ParseBeacon(b, psk); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestMarshalBeaconRejects(t *testing.T) {
	psk := testPSK(1)
	for _, tc := range []struct {
		name string
		b    Beacon
		want error
	}{
		{"no key", Beacon{Port: 1}, ErrPublicKey},
		{"short key", Beacon{PublicKey: testKey(1)[:32], Port: 1}, ErrPublicKey},
		{"uncompressed prefix", Beacon{PublicKey: append([]byte{4}, testKey(1)[1:]...), Port: 1}, ErrPublicKey},
		{"port 0", Beacon{PublicKey: testKey(1)}, ErrPort},
	} {
		if _, err := MarshalBeacon(psk, tc.b); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func FuzzParseBeacon(f *testing.F) {
	psk := testPSK(1)
	good, err := MarshalBeacon(psk, Beacon{PublicKey: testKey(3), Port: 5505, Nonce: [8]byte{9}})
	if err != nil {
		f.Fatal(err)
	}
	other, _ := MarshalBeacon(testPSK(2), Beacon{PublicKey: testKey(4), Port: 1})
	f.Add(good)
	f.Add(other)
	f.Add(good[:BeaconLen-1])
	f.Add(append(append([]byte(nil), good...), 0))
	f.Add([]byte{})
	f.Add([]byte("SKYD"))
	f.Add([]byte("SKYD\x02"))
	f.Add(bytes.Repeat([]byte{0xff}, BeaconLen))
	f.Fuzz(func(t *testing.T, b []byte) {
		bc, err := ParseBeacon(b, psk)
		if err != nil {
			return
		}
		// Whatever parses re-encodes to the same bytes.
		again, err := MarshalBeacon(psk, bc)
		if err != nil {
			t.Fatalf("parsed %x but cannot re-encode: %v", b, err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("parsed %x, re-encoded %x", b, again)
		}
	})
}

// referenceTag computes a beacon tag with golang.org/x/crypto/hkdf, an HKDF
// implementation other than the one beacon.go uses.
func referenceTag(t *testing.T, psk [32]byte, header []byte) string {
	t.Helper()
	key := make([]byte, 32)
	if _, err := io.ReadFull(xhkdf.New(sha256.New, psk[:], nil, []byte("skyfleet lan discovery")), key); err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, key)
	m.Write(header)
	return hex.EncodeToString(m.Sum(nil)[:16])
}
