// Package bip32 derives hierarchical deterministic keys (BIP32): the master
// key of a seed, private and public child keys, derivation paths such as
// m/84'/0'/0'/0/5, and the xprv/xpub text form. The wallet's Bitcoin keys
// (BIP44, BIP84, BIP86) and Skycoin's BIP44 keys (coin type 8000) come from
// here.
//
// It is the wallet's own rather than btcutil's hdkeychain because every
// operation on a private key must be constant time in it: hdkeychain computes
// a parent's public key with btcec's variable-time base-point multiplication
// on every private derivation. Here the scalars live in
// gitlab.com/yawning/secp256k1-voi (constant-time multiplication and
// addition), as in services/identity; only public points use variable-time
// arithmetic.
package bip32

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/btcsuite/btcd/btcutil/base58"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	voi "gitlab.com/yawning/secp256k1-voi"
	"golang.org/x/crypto/ripemd160" //nolint:staticcheck // HASH160 is RIPEMD-160 by definition (BIP32 §Key identifiers)
)

// Hardened is added to a child index for hardened derivation (BIP32
// §Child key derivation functions): i ≥ 2³¹.
const Hardened uint32 = 1 << 31

// MaxDepth is the deepest key: the serialization's depth is one byte.
const MaxDepth = 255

// Version bytes of the mainnet serializations (BIP32 §Serialization format).
var (
	VersionPrivate = [4]byte{0x04, 0x88, 0xad, 0xe4} // "xprv"
	VersionPublic  = [4]byte{0x04, 0x88, 0xb2, 0x1e} // "xpub"
)

// Errors.
var (
	// ErrInvalidKey: the derivation landed on an invalid key (IL ≥ n or a
	// zero key or point at infinity), with probability below 2⁻¹²⁷; BIP32
	// says to go on with the next index.
	ErrInvalidKey = errors.New("bip32: invalid key at this index; use the next one")
	// ErrHardenedFromPublic: a hardened child needs the private key.
	ErrHardenedFromPublic = errors.New("bip32: a hardened child cannot be derived from a public key")
	// ErrSeedLength: a seed has 16 to 64 bytes.
	ErrSeedLength = errors.New("bip32: a seed has 16 to 64 bytes")
	// ErrPath: a derivation path is malformed.
	ErrPath = errors.New("bip32: malformed derivation path")
	// ErrSerialization: an extended key's text is malformed.
	ErrSerialization = errors.New("bip32: malformed extended key")
	// ErrDepth: the key is MaxDepth deep already.
	ErrDepth = errors.New("bip32: key too deep")
)

// Key is an extended key: a private or public key with its chain code and
// place in the tree. A private Key holds a secret; Zero wipes it.
type Key struct {
	priv      *voi.Scalar // nil for a public key
	pub       []byte      // 33-byte compressed point
	chain     [32]byte
	depth     uint8
	parentFP  [4]byte
	childNum  uint32
	isPrivate bool
}

// NewMaster returns the master key of seed (BIP32 §Master key generation):
// HMAC-SHA512 keyed with "Bitcoin seed". Errors: ErrSeedLength,
// ErrInvalidKey.
func NewMaster(seed []byte) (*Key, error) {
	if len(seed) < 16 || len(seed) > 64 {
		return nil, ErrSeedLength
	}
	mac := hmac.New(sha512.New, []byte("Bitcoin seed"))
	mac.Write(seed)
	i := mac.Sum(nil)
	defer clear(i)
	d, err := scalar(i[:32])
	if err != nil {
		return nil, err
	}
	k := &Key{priv: d, isPrivate: true}
	copy(k.chain[:], i[32:])
	k.pub = publicOf(d)
	return k, nil
}

// scalar parses IL as a private key: below n and not zero.
func scalar(il []byte) (*voi.Scalar, error) {
	var b [32]byte
	copy(b[:], il)
	defer clear(b[:])
	d, err := voi.NewScalarFromCanonicalBytes(&b)
	if err != nil || d.IsZero() == 1 {
		return nil, ErrInvalidKey
	}
	return d, nil
}

// publicOf is d·G, compressed, constant time in d.
func publicOf(d *voi.Scalar) []byte {
	return voi.NewIdentityPoint().ScalarBaseMult(d).CompressedBytes()
}

// IsPrivate reports whether k holds a private key.
func (k *Key) IsPrivate() bool { return k.isPrivate }

// Depth is the number of derivations from the master key (0 for it).
func (k *Key) Depth() int { return int(k.depth) }

// ChildNumber is the index k was derived with (Hardened set for a hardened
// child; 0 for the master key).
func (k *Key) ChildNumber() uint32 { return k.childNum }

// ParentFingerprint is the first four bytes of the parent key's identifier
// (zero for the master key).
func (k *Key) ParentFingerprint() [4]byte { return k.parentFP }

// PublicKey returns the 33-byte compressed public key.
func (k *Key) PublicKey() []byte { return append([]byte(nil), k.pub...) }

// Fingerprint is the first four bytes of HASH160 of the public key (BIP32
// §Key identifiers).
func (k *Key) Fingerprint() [4]byte {
	s := sha256.Sum256(k.pub)
	r := ripemd160.New()
	r.Write(s[:])
	var fp [4]byte
	copy(fp[:], r.Sum(nil))
	return fp
}

// PrivateKey returns the private key for signing (identity.SignCompact,
// BIP340 signing); nil for a public key. The caller zeroes it when done
// (PrivateKey.Zero).
func (k *Key) PrivateKey() *secp256k1.PrivateKey {
	if !k.isPrivate {
		return nil
	}
	b := k.priv.Bytes()
	defer clear(b)
	return secp256k1.PrivKeyFromBytes(b)
}

// Child derives child i (BIP32 §Child key derivation functions): CKDpriv
// from a private key, CKDpub from a public one (i below Hardened only).
// Errors: ErrHardenedFromPublic, ErrDepth, ErrInvalidKey (go on with the
// next index).
func (k *Key) Child(i uint32) (*Key, error) {
	if k.depth == MaxDepth {
		return nil, ErrDepth
	}
	hardened := i >= Hardened
	if hardened && !k.isPrivate {
		return nil, ErrHardenedFromPublic
	}
	data := make([]byte, 0, 37)
	if hardened {
		data = append(data, 0)
		data = append(data, k.priv.Bytes()...)
	} else {
		data = append(data, k.pub...)
	}
	data = binary.BigEndian.AppendUint32(data, i)
	mac := hmac.New(sha512.New, k.chain[:])
	mac.Write(data)
	clear(data)
	sum := mac.Sum(nil)
	defer clear(sum)

	child := &Key{depth: k.depth + 1, parentFP: k.Fingerprint(), childNum: i, isPrivate: k.isPrivate}
	copy(child.chain[:], sum[32:])
	il, err := scalar(sum[:32])
	if err != nil {
		return nil, err
	}
	if k.isPrivate {
		// k_i = IL + k_par (mod n), constant time.
		d := voi.NewScalar().Add(il, k.priv)
		il.Zero()
		if d.IsZero() == 1 {
			return nil, ErrInvalidKey
		}
		child.priv = d
		child.pub = publicOf(d)
		return child, nil
	}
	// K_i = IL·G + K_par: public values only.
	parent, err := voi.NewIdentityPoint().SetCompressedBytes(k.pub)
	if err != nil {
		return nil, fmt.Errorf("bip32: parent public key: %w", err)
	}
	p := voi.NewIdentityPoint().ScalarBaseMult(il)
	p.Add(p, parent)
	if p.IsIdentity() == 1 {
		return nil, ErrInvalidKey
	}
	child.pub = p.CompressedBytes()
	return child, nil
}

// Derive follows path from k: "m/84'/0'/0'/0/5" from the master key, or a
// relative "0/5"; ' or h marks a hardened index. Errors: ErrPath (wrapped),
// and Child's.
func (k *Key) Derive(path string) (*Key, error) {
	idx, err := ParsePath(path)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(path, "m") && k.depth != 0 {
		return nil, fmt.Errorf("%w: %q starts at the master key, but this key is %d deep", ErrPath, path, k.depth)
	}
	cur := k
	for _, i := range idx {
		next, err := cur.Child(i)
		if cur != k {
			cur.Zero()
		}
		if err != nil {
			return nil, err
		}
		cur = next
	}
	return cur, nil
}

// ParsePath parses a derivation path ("m/44'/8000'/0'/0/3", "m", "0/1h")
// into child indexes. Errors wrap ErrPath.
func ParsePath(path string) ([]uint32, error) {
	parts := strings.Split(path, "/")
	if parts[0] == "m" {
		parts = parts[1:]
	}
	if len(parts) > MaxDepth {
		return nil, fmt.Errorf("%w: %d levels", ErrPath, len(parts))
	}
	var out []uint32
	for _, p := range parts {
		h := strings.HasSuffix(p, "'") || strings.HasSuffix(p, "h") || strings.HasSuffix(p, "H")
		if h {
			p = p[:len(p)-1]
		}
		n, err := strconv.ParseUint(p, 10, 32)
		if err != nil || n >= uint64(Hardened) || p == "" || (len(p) > 1 && p[0] == '0') {
			return nil, fmt.Errorf("%w: %q", ErrPath, path)
		}
		i := uint32(n)
		if h {
			i += Hardened
		}
		out = append(out, i)
	}
	return out, nil
}

// FormatPath is ParsePath's inverse: child indexes as an absolute path from
// the master key, hardened ones marked ', e.g. "m/84'/0'/0'/1/3".
func FormatPath(idx []uint32) string {
	var b strings.Builder
	b.WriteString("m")
	for _, i := range idx {
		if i >= Hardened {
			fmt.Fprintf(&b, "/%d'", i-Hardened)
		} else {
			fmt.Fprintf(&b, "/%d", i)
		}
	}
	return b.String()
}

// Neuter returns k's public extended key.
func (k *Key) Neuter() *Key {
	n := *k
	n.priv, n.isPrivate = nil, false
	n.pub = append([]byte(nil), k.pub...)
	return &n
}

// Zero wipes k's private key; k is then unusable for derivation.
func (k *Key) Zero() {
	if k.priv != nil {
		k.priv.Zero()
	}
	clear(k.chain[:])
}

// String is k serialized (BIP32 §Serialization format) in base58check:
// "xprv..." for a private key, "xpub..." for a public one. The xprv text is
// the secret itself: it is for export on the device's own screen, never for
// logs or the host API.
func (k *Key) String() string {
	b := make([]byte, 0, 82)
	if k.isPrivate {
		b = append(b, VersionPrivate[:]...)
	} else {
		b = append(b, VersionPublic[:]...)
	}
	b = append(b, k.depth)
	b = append(b, k.parentFP[:]...)
	b = binary.BigEndian.AppendUint32(b, k.childNum)
	b = append(b, k.chain[:]...)
	if k.isPrivate {
		b = append(b, 0)
		b = append(b, k.priv.Bytes()...)
	} else {
		b = append(b, k.pub...)
	}
	sum := sha256.Sum256(b)
	sum = sha256.Sum256(sum[:])
	b = append(b, sum[:4]...)
	s := base58.Encode(b)
	clear(b)
	return s
}

// Parse reads a serialized extended key (mainnet xprv or xpub). Errors wrap
// ErrSerialization with what is wrong, never the key's bytes.
func Parse(s string) (*Key, error) {
	b := base58.Decode(s)
	defer clear(b)
	if len(b) != 82 {
		return nil, fmt.Errorf("%w: %d bytes, want 82", ErrSerialization, len(b))
	}
	sum := sha256.Sum256(b[:78])
	sum = sha256.Sum256(sum[:])
	if !hmac.Equal(sum[:4], b[78:]) {
		return nil, fmt.Errorf("%w: bad checksum", ErrSerialization)
	}
	var ver [4]byte
	copy(ver[:], b[:4])
	k := &Key{depth: b[4], childNum: binary.BigEndian.Uint32(b[9:13])}
	copy(k.parentFP[:], b[5:9])
	copy(k.chain[:], b[13:45])
	if k.depth == 0 && (k.parentFP != [4]byte{} || k.childNum != 0) {
		return nil, fmt.Errorf("%w: a master key with a parent or child number", ErrSerialization)
	}
	switch ver {
	case VersionPrivate:
		if b[45] != 0 {
			return nil, fmt.Errorf("%w: private key not prefixed by 0x00", ErrSerialization)
		}
		d, err := scalar(b[46:78])
		if err != nil {
			return nil, fmt.Errorf("%w: private key out of range", ErrSerialization)
		}
		k.priv, k.isPrivate, k.pub = d, true, publicOf(d)
	case VersionPublic:
		if _, err := voi.NewIdentityPoint().SetCompressedBytes(b[45:78]); err != nil {
			return nil, fmt.Errorf("%w: public key not on the curve", ErrSerialization)
		}
		k.pub = append([]byte(nil), b[45:78]...)
	default:
		return nil, fmt.Errorf("%w: version %x is neither mainnet xprv nor xpub", ErrSerialization, ver)
	}
	return k, nil
}
