package eapol

import (
	"bytes"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
)

// Key and field sizes for WPA2-PSK with CCMP-128, in bytes.
const (
	PMKLen   = 32 // pairwise master key (IEEE 802.11-2020 §12.7.1.3)
	NonceLen = 32 // ANonce, SNonce
	KCKLen   = 16 // key confirmation key, keys the EAPOL-Key MIC
	KEKLen   = 16 // key encryption key, wraps the Key Data
	TKLen    = 16 // temporal key for CCMP-128 (§12.7.1.3, Table 12-7)
	PTKLen   = KCKLen + KEKLen + TKLen
)

// pbkdf2Iterations is fixed by IEEE 802.11-2020 Annex J.4.1.
const pbkdf2Iterations = 4096

// PMK maps a passphrase and SSID to the 32-byte PSK that WPA2-PSK uses as
// its PMK: PBKDF2-HMAC-SHA1(passphrase, ssid, 4096 iterations, 32 bytes)
// (IEEE 802.11-2020 Annex J.4.1). The passphrase must be 8..63 printable
// ASCII characters (0x20..0x7e), else ErrPassphrase; the SSID 1..32 bytes
// (the raw octets, not necessarily UTF-8), else ErrSSID. It costs 8192
// HMAC-SHA1 computations, a few milliseconds on a Raspberry Pi: derive it
// once per network, not per association.
func PMK(passphrase string, ssid []byte) ([]byte, error) {
	if len(passphrase) < 8 || len(passphrase) > 63 {
		return nil, fmt.Errorf("%w (got %d characters)", ErrPassphrase, len(passphrase))
	}
	for i := 0; i < len(passphrase); i++ {
		if c := passphrase[i]; c < 0x20 || c > 0x7e {
			// The position, not the character: the passphrase is a secret.
			return nil, fmt.Errorf("%w (non-printable byte at position %d)", ErrPassphrase, i)
		}
	}
	if len(ssid) == 0 || len(ssid) > 32 {
		return nil, fmt.Errorf("%w (got %d)", ErrSSID, len(ssid))
	}
	return pbkdf2.Key(sha1.New, passphrase, ssid, pbkdf2Iterations, PMKLen)
}

// PMKFromHex decodes a raw 256-bit PSK given as exactly 64 hexadecimal
// digits (either case), the other form of PSK IEEE 802.11-2020 Annex J.4.1
// allows, into the 32-byte PMK. Anything else is ErrPSK.
func PMKFromHex(psk string) ([]byte, error) {
	if len(psk) != 2*PMKLen {
		return nil, fmt.Errorf("%w (got %d characters)", ErrPSK, len(psk))
	}
	b, err := hex.DecodeString(psk)
	if err != nil {
		// hex's error quotes the offending byte; ours names no secret.
		return nil, fmt.Errorf("%w (not hexadecimal)", ErrPSK)
	}
	return b, nil
}

// PRF is the HMAC-SHA1 pseudo-random function PRF-n of IEEE 802.11-2020
// §12.7.1.2: the first bits/8 bytes of the concatenation, for i = 0, 1, ...,
// of HMAC-SHA1(key, label || 0x00 || data || i). bits is the output length
// in bits and must be a positive multiple of 8 (384 for the CCMP PTK, 512
// in the Annex J.3 test vectors); PRF panics otherwise, a programming error.
func PRF(key []byte, label string, data []byte, bits int) []byte {
	if bits <= 0 || bits%8 != 0 {
		panic("eapol: PRF length must be a positive multiple of 8 bits")
	}
	n := bits / 8
	out := make([]byte, 0, n+sha1.Size)
	mac := hmac.New(sha1.New, key)
	for i := 0; len(out) < n; i++ {
		mac.Reset()
		mac.Write([]byte(label))
		mac.Write([]byte{0})
		mac.Write(data)
		mac.Write([]byte{byte(i)})
		out = mac.Sum(out)
	}
	return out[:n]
}

// PTK is the pairwise transient key for CCMP-128 split into its parts
// (IEEE 802.11-2020 §12.7.1.3): KCK keys the EAPOL-Key MIC, KEK wraps the
// Key Data (the GTK), TK encrypts unicast data frames and is what the
// driver installs. Its String and GoString print no key bytes.
type PTK struct {
	KCK [KCKLen]byte
	KEK [KEKLen]byte
	TK  [TKLen]byte
}

// String names the type without its contents, so a PTK in a log line
// leaks nothing.
func (p PTK) String() string { return "eapol.PTK{redacted}" }

// GoString is String for %#v.
func (p PTK) GoString() string { return p.String() }

// DerivePTK computes the CCMP-128 PTK as PRF-384(PMK, "Pairwise key
// expansion", Min(AA,SPA) || Max(AA,SPA) || Min(ANonce,SNonce) ||
// Max(ANonce,SNonce)) (IEEE 802.11-2020 §12.7.1.3), where AA is the
// authenticator's (AP's) MAC address and SPA the supplicant's; min and max
// compare as unsigned big-endian numbers, i.e. bytes.Compare. Both sides
// compute the same PTK whichever way round they pass their own address.
// pmk must be 32 bytes (PMKLen), else ErrPSK.
func DerivePTK(pmk []byte, aa, spa [6]byte, anonce, snonce [NonceLen]byte) (PTK, error) {
	if len(pmk) != PMKLen {
		return PTK{}, fmt.Errorf("%w (PMK is %d bytes)", ErrPSK, len(pmk))
	}
	data := make([]byte, 0, 2*6+2*NonceLen)
	lo, hi := aa[:], spa[:]
	if bytes.Compare(lo, hi) > 0 {
		lo, hi = hi, lo
	}
	data = append(append(data, lo...), hi...)
	lo, hi = anonce[:], snonce[:]
	if bytes.Compare(lo, hi) > 0 {
		lo, hi = hi, lo
	}
	data = append(append(data, lo...), hi...)
	b := PRF(pmk, "Pairwise key expansion", data, PTKLen*8)
	var p PTK
	copy(p.KCK[:], b[:KCKLen])
	copy(p.KEK[:], b[KCKLen:KCKLen+KEKLen])
	copy(p.TK[:], b[KCKLen+KEKLen:])
	clear(b)
	return p, nil
}
