package eapol

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// unhex decodes hex with spaces ignored, failing the test on bad input.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.NewReplacer(" ", "", "\n", "", "\t", "").Replace(s))
	if err != nil {
		t.Fatalf("bad hex in test: %v", err)
	}
	return b
}

// IEEE 802.11-2020 Annex J.4.2 passphrase-to-PSK test vectors (also in
// hostapd's tests/test-sha1.c, passphrase_tests).
func TestPMKAnnexJ4(t *testing.T) {
	for _, tc := range []struct{ pass, ssid, psk string }{
		{"password", "IEEE", "f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e"},
		{"ThisIsAPassword", "ThisIsASSID", "0dc0d6eb90555ed6419756b9a15ec3e3209b63df707dd508d14581f8982721af"},
		{strings.Repeat("a", 32), strings.Repeat("Z", 32), "becb93866bb8c3832cb777c2f559807c8c59afcb6eae734885001300a981cc62"},
	} {
		got, err := PMK(tc.pass, []byte(tc.ssid))
		if err != nil {
			t.Fatalf("PMK(%q, %q): %v", tc.pass, tc.ssid, err)
		}
		if want := unhex(t, tc.psk); !bytes.Equal(got, want) {
			t.Errorf("PMK(%q, %q) = %x, want %x", tc.pass, tc.ssid, got, want)
		}
		// The same PSK typed as 64 hex digits gives the same PMK.
		raw, err := PMKFromHex(strings.ToUpper(tc.psk))
		if err != nil || !bytes.Equal(raw, got) {
			t.Errorf("PMKFromHex(%s) = %x, %v", tc.psk, raw, err)
		}
	}
}

func TestPMKErrors(t *testing.T) {
	for _, tc := range []struct {
		pass, ssid string
		want       error
	}{
		{"short77", "IEEE", ErrPassphrase},
		{strings.Repeat("p", 64), "IEEE", ErrPassphrase},
		{"pass\x7fword", "IEEE", ErrPassphrase},
		{"pässword", "IEEE", ErrPassphrase}, // UTF-8 is not printable ASCII
		{"password", "", ErrSSID},
		{"password", strings.Repeat("s", 33), ErrSSID},
	} {
		if _, err := PMK(tc.pass, []byte(tc.ssid)); !errors.Is(err, tc.want) {
			t.Errorf("PMK(%q, %d-byte SSID) error %v, want %v", tc.pass, len(tc.ssid), err, tc.want)
		} else if strings.Contains(err.Error(), tc.pass) {
			t.Errorf("error %q repeats the passphrase", err)
		}
	}
	// Edges that are valid: 8 and 63 characters, space and tilde.
	for _, p := range []string{"12345678", strings.Repeat("~", 63), " ~ ~ ~ ~"} {
		if _, err := PMK(p, []byte("x")); err != nil {
			t.Errorf("PMK(%q): %v", p, err)
		}
	}
	for _, h := range []string{"", "00", strings.Repeat("0", 63), strings.Repeat("g", 64), strings.Repeat("0", 65)} {
		if _, err := PMKFromHex(h); !errors.Is(err, ErrPSK) {
			t.Errorf("PMKFromHex(%d chars) error %v, want ErrPSK", len(h), err)
		}
	}
}

// IEEE 802.11 Annex J.3 PRF test vectors (PRF-512, label "prefix"; the
// keys and data are those of the RFC 2202 HMAC-SHA1 cases 1, 2 and 3),
// as carried in hostapd's tests/test-sha1.c (prf0, prf1, prf2).
func TestPRFAnnexJ3(t *testing.T) {
	for i, tc := range []struct{ key, data, want string }{
		{"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", hex.EncodeToString([]byte("Hi There")),
			"bcd4c650b30b9684951829e0d75f9d54b862175ed9f00606e17d8da35402ffee75df78c3d31e0f889f012120c0862beb67753e7439ae242edb8373698356cf5a"},
		{hex.EncodeToString([]byte("Jefe")), hex.EncodeToString([]byte("what do ya want for nothing?")),
			"51f4de5b33f249adf81aeb713a3c20f4fe631446fabdfa58244759ae58ef9009a99abf4eac2ca5fa87e692c440eb40023e7babb206d61de7b92f41529092b8fc"},
		{strings.Repeat("aa", 20), strings.Repeat("dd", 50),
			"e1ac546ec4cb636f9976487be5c86be17a0252ca5d8d8df12cfb0473525249ce9dd8d177ead710bc9b590547239107aef7b4abd43d87f0a68f1cbd9e2b6f7607"},
	} {
		got := PRF(unhex(t, tc.key), "prefix", unhex(t, tc.data), 512)
		if want := unhex(t, tc.want); !bytes.Equal(got, want) {
			t.Errorf("case %d: PRF-512 = %x, want %x", i, got, want)
		}
		// A shorter PRF is a prefix of the longer one (same iterations).
		if got384 := PRF(unhex(t, tc.key), "prefix", unhex(t, tc.data), 384); !bytes.Equal(got384, got[:48]) {
			t.Errorf("case %d: PRF-384 is not the prefix of PRF-512", i)
		}
	}
}

// RFC 3394 §4.1-4.6 key wrap test vectors (§4.1 is also in hostapd's
// tests/test-aes.c).
func TestKeyWrapRFC3394(t *testing.T) {
	const (
		kek128 = "000102030405060708090A0B0C0D0E0F"
		kek192 = kek128 + "1011121314151617"
		kek256 = kek192 + "18191A1B1C1D1E1F"
		data16 = "00112233445566778899AABBCCDDEEFF"
		data24 = data16 + "0001020304050607"
		data32 = data24 + "08090A0B0C0D0E0F"
	)
	for _, tc := range []struct{ sec, kek, data, ct string }{
		{"4.1", kek128, data16, "1FA68B0A8112B447 AEF34BD8FB5A7B82 9D3E862371D2CFE5"},
		{"4.2", kek192, data16, "96778B25AE6CA435 F92B5B97C050AED2 468AB8A17AD84E5D"},
		{"4.3", kek256, data16, "64E8C3F9CE0F5BA2 63E9777905818A2A 93C8191E7D6E8AE7"},
		{"4.4", kek192, data24, "031D33264E15D332 68F24EC260743EDC E1C6C7DDEE725A93 6BA814915C6762D2"},
		{"4.5", kek256, data24, "A8F9BC1612C68B3F F6E6F4FBE30E71E4 769C8B80A32CB895 8CD5D17D6B254DA1"},
		{"4.6", kek256, data32, "28C9F404C4B810F4 CBCCB35CFB87F826 3F5786E2D80ED326 CBC7F0E71A99F43B FB988B9B7A02DD21"},
	} {
		kek, data, ct := unhex(t, tc.kek), unhex(t, tc.data), unhex(t, tc.ct)
		got, err := Wrap(kek, data)
		if err != nil || !bytes.Equal(got, ct) {
			t.Errorf("RFC 3394 §%s: Wrap = %x, %v; want %x", tc.sec, got, err, ct)
		}
		pt, err := Unwrap(kek, ct)
		if err != nil || !bytes.Equal(pt, data) {
			t.Errorf("RFC 3394 §%s: Unwrap = %x, %v; want %x", tc.sec, pt, err, data)
		}
		// Any flipped bit fails the integrity check.
		for i := range ct {
			bad := bytes.Clone(ct)
			bad[i] ^= 0x10
			if _, err := Unwrap(kek, bad); !errors.Is(err, ErrUnwrap) {
				t.Fatalf("RFC 3394 §%s: byte %d altered: error %v, want ErrUnwrap", tc.sec, i, err)
			}
		}
	}
	for _, n := range []int{0, 8, 16, 23, 25} {
		if _, err := Unwrap(make([]byte, 16), make([]byte, n)); !errors.Is(err, ErrUnwrap) {
			t.Errorf("Unwrap of %d bytes: %v, want ErrUnwrap", n, err)
		}
	}
	for _, n := range []int{0, 8, 15, 17} {
		if _, err := Wrap(make([]byte, 16), make([]byte, n)); !errors.Is(err, ErrUnwrap) {
			t.Errorf("Wrap of %d bytes: %v, want ErrUnwrap", n, err)
		}
	}
}

// RFC 4493 §4 AES-CMAC test vectors (the NIST SP 800-38B examples, also in
// hostapd's tests/test-aes.c).
func TestCMACRFC4493(t *testing.T) {
	key := unhex(t, "2b7e151628aed2a6abf7158809cf4f3c")
	msg := unhex(t, `6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51
		30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710`)
	for _, tc := range []struct {
		n   int
		tag string
	}{
		{0, "bb1d6929e95937287fa37d129b756746"},
		{16, "070a16b46b4d4144f79bdd9dd04a287c"},
		{40, "dfa66747de9ae63030ca32611497c827"},
		{64, "51f0bebf7e3b9d92fc49741779363cfe"},
	} {
		got, err := CMAC(key, msg[:tc.n])
		if err != nil || !bytes.Equal(got[:], unhex(t, tc.tag)) {
			t.Errorf("CMAC of %d bytes = %x, %v; want %s", tc.n, got, err, tc.tag)
		}
	}
}
