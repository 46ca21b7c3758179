// Package identity holds a node's long-term secp256k1 identity: the key pair,
// its Skycoin-format address, and the key file under the node's data
// directory.
//
// The address is the one docs/architecture.md §Identity describes: the Skycoin
// address of the 33-byte compressed public key. The construction is checked
// against Skycoin's own golden files in testdata/skycoin.
package identity

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// SecretSize is the length in bytes of a secret key (a big-endian scalar).
const SecretSize = 32

// PublicKeySize is the length in bytes of a compressed SEC1 public key
// (0x02 or 0x03 followed by the 32-byte X coordinate).
const PublicKeySize = 33

// Errors returned by ParseSecretHex, wrapped with detail; test with errors.Is.
var (
	// ErrSecretLength means the hex text is not exactly 64 characters.
	ErrSecretLength = errors.New("identity: secret key must be 64 hex characters")
	// ErrSecretNotHex means the text holds a character outside 0-9, a-f, A-F.
	ErrSecretNotHex = errors.New("identity: secret key is not hex")
	// ErrSecretRange means the scalar is 0 or not below the secp256k1 group
	// order N, so it is no valid private key.
	ErrSecretRange = errors.New("identity: secret key is zero or not below the secp256k1 curve order")
)

// maxGenerateAttempts bounds how many 32-byte draws Generate makes before it
// gives up. With a working entropy source one draw fails with probability
// about 2^-128, so hitting the bound means the source is broken.
const maxGenerateAttempts = 16

// Key is a node's secp256k1 key pair. The zero value is not usable; get one
// from Generate, ParseSecretHex or LoadOrCreate. A Key is safe for concurrent
// reads.
type Key struct {
	priv *secp256k1.PrivateKey
	pub  []byte // compressed, PublicKeySize bytes
}

// newKey wraps priv, whose scalar the caller has checked to be in [1, N-1], and
// derives its public key in constant time (PublicKeyOf).
func newKey(priv *secp256k1.PrivateKey) (*Key, error) {
	pub, err := PublicKeyOf(priv)
	if err != nil {
		return nil, err
	}
	return &Key{priv: priv, pub: pub}, nil
}

// Generate makes a new key from 32-byte draws of r, redrawing while the value
// is zero or not below the curve order. A nil r means crypto/rand.Reader,
// which is what production code should use; tests pass a deterministic reader.
// It returns an error if r fails or keeps producing invalid scalars.
func Generate(r io.Reader) (*Key, error) {
	if r == nil {
		r = rand.Reader
	}
	var b [SecretSize]byte
	defer clear(b[:])
	for range maxGenerateAttempts {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("identity: reading entropy: %w", err)
		}
		var s secp256k1.ModNScalar
		if overflow := s.SetBytes(&b); overflow == 0 && !s.IsZero() {
			return newKey(secp256k1.NewPrivateKey(&s))
		}
	}
	return nil, fmt.Errorf("identity: entropy source produced %d invalid secret keys in a row", maxGenerateAttempts)
}

// ParseSecretHex parses a secret key written as exactly 64 hex characters
// (either case, no prefix, no whitespace). Errors wrap ErrSecretLength,
// ErrSecretNotHex or ErrSecretRange; their text depends only on the class and
// on len(s), never on the characters of s (not even an invalid one), since a
// typo in a secret still reveals most of it.
func ParseSecretHex(s string) (*Key, error) {
	if len(s) != 2*SecretSize {
		return nil, fmt.Errorf("%w (got %d characters)", ErrSecretLength, len(s))
	}
	var b [SecretSize]byte
	defer clear(b[:])
	if _, err := hex.Decode(b[:], []byte(s)); err != nil {
		// Neither the offending character nor hex's error (which quotes it) is
		// repeated: both are part of the secret.
		return nil, ErrSecretNotHex
	}
	var sc secp256k1.ModNScalar
	if overflow := sc.SetBytes(&b); overflow != 0 || sc.IsZero() {
		return nil, ErrSecretRange
	}
	return newKey(secp256k1.NewPrivateKey(&sc))
}

// PublicKey returns a fresh copy of the 33-byte compressed SEC1 public key.
func (k *Key) PublicKey() []byte { return append([]byte(nil), k.pub...) }

// PublicKeyHex returns the compressed public key as 66 lowercase hex
// characters, the form fleet.toml uses for peer and master keys.
func (k *Key) PublicKeyHex() string { return hex.EncodeToString(k.pub) }

// SecretHex returns the secret key as 64 lowercase hex characters, the form
// stored in the key file and accepted by ParseSecretHex. Handle with care.
func (k *Key) SecretHex() string {
	b := k.priv.Serialize()
	defer clear(b)
	return hex.EncodeToString(b)
}

// PrivateKey returns the underlying decred secp256k1 private key, for
// signing and Diffie-Hellman in the mesh. Callers must not modify it. Sign
// with SignCompact and derive public keys with PublicKeyOf, not with decred's
// ecdsa.SignCompact or PubKey, which are variable time in the secret.
func (k *Key) PrivateKey() *secp256k1.PrivateKey { return k.priv }

// Address returns the Skycoin address of the key's compressed public key.
func (k *Key) Address() Address { return addressFromValidKey(k.pub) }

// Info is the public description of a key, as `skyfleet key inspect` prints
// it in JSON.
type Info struct {
	// PublicKey is the compressed public key, 66 lowercase hex characters.
	PublicKey string `json:"public_key"`
	// Address is the Skycoin address in base58.
	Address string `json:"address"`
}

// Inspect parses a secret key given as 64 hex characters (see ParseSecretHex,
// whose errors it returns) and describes its public side.
func Inspect(secretHex string) (Info, error) {
	k, err := ParseSecretHex(secretHex)
	if err != nil {
		return Info{}, err
	}
	return Info{PublicKey: k.PublicKeyHex(), Address: k.Address().String()}, nil
}
