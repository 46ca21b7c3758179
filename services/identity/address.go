package identity

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/btcutil/base58"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	// RIPEMD-160 is deprecated for new designs but fixed by the Skycoin and
	// Bitcoin address formats.
	"golang.org/x/crypto/ripemd160"
)

// AddressVersion is the version byte of Skycoin mainnet addresses, the only
// version this package produces or accepts.
const AddressVersion byte = 0

// addressSize is the decoded size of an address: 20-byte key hash, version
// byte, 4-byte checksum.
const addressSize = 20 + 1 + 4

// Errors returned by ParseAddress, wrapped with detail; test with errors.Is.
var (
	// ErrAddressEncoding means the text is empty or not base58 (Bitcoin
	// alphabet: no 0, O, I or l).
	ErrAddressEncoding = errors.New("identity: address is not base58")
	// ErrAddressLength means the decoded address is not 25 bytes.
	ErrAddressLength = errors.New("identity: address must decode to 25 bytes")
	// ErrAddressChecksum means the 4-byte checksum does not match.
	ErrAddressChecksum = errors.New("identity: address checksum mismatch")
	// ErrAddressVersion means the version byte is not AddressVersion.
	ErrAddressVersion = errors.New("identity: unsupported address version")
)

// ErrPublicKey is returned (wrapped) for a public key that is not 33 bytes
// of compressed SEC1 encoding of a point on secp256k1.
var ErrPublicKey = errors.New("identity: invalid compressed secp256k1 public key")

// Address is a Skycoin address: a version byte and the 20-byte hash
// RIPEMD160(SHA256(SHA256(pubkey))) of a 33-byte compressed public key.
// Its text form (String) is base58 (Bitcoin alphabet) of the 25 bytes
// Key ‖ Version ‖ SHA256(Key ‖ Version)[:4]. Note the order: unlike Bitcoin,
// the version follows the hash and the checksum is a single SHA-256.
// Address is comparable and usable as a map key.
type Address struct {
	Version byte     // AddressVersion (0) for every address this package makes or accepts
	Key     [20]byte // RIPEMD160(SHA256(SHA256(compressed public key)))
}

// AddressFromPublicKey returns the Skycoin address of a 33-byte compressed
// public key. It returns an error wrapping ErrPublicKey if pub is not a
// compressed encoding of a point on the curve.
func AddressFromPublicKey(pub []byte) (Address, error) {
	if err := checkCompressed(pub); err != nil {
		return Address{}, err
	}
	return addressFromValidKey(pub), nil
}

func addressFromValidKey(pub []byte) Address {
	h1 := sha256.Sum256(pub)
	h2 := sha256.Sum256(h1[:])
	a := Address{Version: AddressVersion}
	copy(a.Key[:], ripemd(h2[:]))
	return a
}

// checksum returns SHA256(Key ‖ Version)[:4].
func (a Address) checksum() [4]byte {
	var buf [21]byte
	copy(buf[:20], a.Key[:])
	buf[20] = a.Version
	sum := sha256.Sum256(buf[:])
	return [4]byte(sum[:4])
}

// Bytes returns the 25-byte binary form Key ‖ Version ‖ checksum.
func (a Address) Bytes() []byte {
	b := make([]byte, 0, addressSize)
	b = append(b, a.Key[:]...)
	b = append(b, a.Version)
	sum := a.checksum()
	return append(b, sum[:]...)
}

// String returns the base58 text form of the address (typically 34 or 35
// characters, for example "2Niqzo12tZ9ioZq5vwPHMVR4g7UVpp9TCmP").
func (a Address) String() string { return base58.Encode(a.Bytes()) }

// ParseAddress parses the base58 text form of a Skycoin address. It rejects,
// with errors wrapping the ErrAddress* values: text that is not base58, a
// decoded length other than 25 bytes, a wrong checksum, and a version other
// than AddressVersion. For a successful parse, a.String() == s.
func ParseAddress(s string) (Address, error) {
	if s == "" {
		return Address{}, fmt.Errorf("%w: empty", ErrAddressEncoding)
	}
	// base58.Decode signals an invalid character by returning no bytes.
	raw := base58.Decode(s)
	if len(raw) == 0 {
		return Address{}, fmt.Errorf("%w: %q", ErrAddressEncoding, s)
	}
	if len(raw) != addressSize {
		return Address{}, fmt.Errorf("%w (got %d)", ErrAddressLength, len(raw))
	}
	var a Address
	copy(a.Key[:], raw[:20])
	a.Version = raw[20]
	want := a.checksum()
	if !bytes.Equal(raw[21:], want[:]) {
		return Address{}, ErrAddressChecksum
	}
	if a.Version != AddressVersion {
		return Address{}, fmt.Errorf("%w %d", ErrAddressVersion, a.Version)
	}
	return a, nil
}

// BitcoinAddress returns the Bitcoin P2PKH address (mainnet, version 0x00)
// of a 33-byte compressed public key: base58check of
// 0x00 ‖ RIPEMD160(SHA256(pub)) with the checksum SHA256(SHA256(...))[:4].
// Skycoin's golden files carry this form too. It returns an error wrapping
// ErrPublicKey for an invalid key.
func BitcoinAddress(pub []byte) (string, error) {
	if err := checkCompressed(pub); err != nil {
		return "", err
	}
	h := sha256.Sum256(pub)
	return base58.CheckEncode(ripemd(h[:]), 0x00), nil
}

func checkCompressed(pub []byte) error {
	if len(pub) != PublicKeySize {
		return fmt.Errorf("%w: %d bytes, want %d", ErrPublicKey, len(pub), PublicKeySize)
	}
	if pub[0] != secp256k1.PubKeyFormatCompressedEven && pub[0] != secp256k1.PubKeyFormatCompressedOdd {
		return fmt.Errorf("%w: prefix 0x%02x, want 0x02 or 0x03", ErrPublicKey, pub[0])
	}
	if _, err := secp256k1.ParsePubKey(pub); err != nil {
		return fmt.Errorf("%w: %v", ErrPublicKey, err)
	}
	return nil
}

func ripemd(b []byte) []byte {
	h := ripemd160.New()
	h.Write(b)
	return h.Sum(nil)
}
