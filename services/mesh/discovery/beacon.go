package discovery

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// Beacon layout, in bytes:
//
//	0   4  magic "SKYD"
//	4   1  version (1)
//	5  33  node public key, compressed secp256k1 (0x02 or 0x03 first)
//	38  2  mesh UDP port, big-endian
//	40  8  random nonce
//	48 16  tag: HMAC-SHA256(HKDF-SHA256(psk, info "skyfleet lan discovery"), bytes 0..47)[:16]
const (
	// Magic opens every beacon.
	Magic = "SKYD"
	// Version is the beacon format version this package makes and accepts.
	Version = 1
	// BeaconLen is the length of a beacon in bytes.
	BeaconLen = 64
	// PublicKeyLen is the length of a node public key in bytes.
	PublicKeyLen = 33

	offKey   = 5
	offPort  = offKey + PublicKeyLen
	offNonce = offPort + 2
	offTag   = offNonce + 8
	tagLen   = BeaconLen - offTag

	// kdfInfo is the HKDF info string that derives the beacon key from the psk.
	kdfInfo = "skyfleet lan discovery"
)

// Errors of ParseBeacon and MarshalBeacon; the returned errors wrap them with detail.
var (
	// ErrShort: fewer than BeaconLen bytes.
	ErrShort = errors.New("discovery: beacon too short")
	// ErrLong: more than BeaconLen bytes.
	ErrLong = errors.New("discovery: beacon too long")
	// ErrMagic: the datagram does not start with "SKYD".
	ErrMagic = errors.New("discovery: not a beacon (bad magic)")
	// ErrVersion: a beacon version other than Version.
	ErrVersion = errors.New("discovery: unsupported beacon version")
	// ErrTag: the tag does not verify: the beacon was made without this network key
	// (another fleet, a corrupted or forged datagram).
	ErrTag = errors.New("discovery: bad beacon tag (not made with this network key)")
	// ErrPublicKey: the public key is not 33 bytes starting 0x02 or 0x03.
	ErrPublicKey = errors.New("discovery: bad public key")
	// ErrPort: the advertised mesh port is 0.
	ErrPort = errors.New("discovery: mesh port 0")
)

// Beacon is the content of one discovery beacon.
type Beacon struct {
	// PublicKey is the sender's 33-byte compressed secp256k1 public key.
	PublicKey []byte
	// Port is the sender's mesh UDP port; its endpoint is the beacon's source IP
	// with this port.
	Port uint16
	// Nonce is random per beacon; receivers drop a nonce they saw recently.
	Nonce [8]byte
}

// tagKey is the HMAC key derived from a network key.
type tagKey [32]byte

// deriveKey returns HKDF-SHA256(psk, no salt, info "skyfleet lan discovery"), 32 bytes.
func deriveKey(psk [32]byte) tagKey {
	k, err := hkdf.Key(sha256.New, psk[:], nil, kdfInfo, 32)
	if err != nil {
		panic(err) // only for lengths HKDF cannot produce
	}
	return tagKey(k)
}

func (k *tagKey) tag(b []byte) []byte {
	m := hmac.New(sha256.New, k[:])
	m.Write(b)
	return m.Sum(nil)[:tagLen]
}

func checkKey(pub []byte) error {
	if len(pub) != PublicKeyLen {
		return fmt.Errorf("%w: %d bytes, want %d", ErrPublicKey, len(pub), PublicKeyLen)
	}
	if pub[0] != 2 && pub[0] != 3 {
		return fmt.Errorf("%w: first byte %#02x, want 0x02 or 0x03 (compressed)", ErrPublicKey, pub[0])
	}
	return nil
}

// MarshalBeacon encodes b as a BeaconLen-byte beacon tagged with the network key
// psk. Errors: ErrPublicKey when b.PublicKey is not a 33-byte compressed key,
// ErrPort when b.Port is 0.
func MarshalBeacon(psk [32]byte, b Beacon) ([]byte, error) {
	k := deriveKey(psk)
	return k.marshal(b)
}

func (k *tagKey) marshal(b Beacon) ([]byte, error) {
	if err := checkKey(b.PublicKey); err != nil {
		return nil, err
	}
	if b.Port == 0 {
		return nil, ErrPort
	}
	out := make([]byte, BeaconLen)
	copy(out, Magic)
	out[4] = Version
	copy(out[offKey:], b.PublicKey)
	binary.BigEndian.PutUint16(out[offPort:], b.Port)
	copy(out[offNonce:], b.Nonce[:])
	copy(out[offTag:], k.tag(out[:offTag]))
	return out, nil
}

// ParseBeacon decodes and authenticates a beacon made with the network key psk.
// Errors, checked in this order and wrapped with detail: ErrShort (fewer than 5
// bytes, or a well-formed header with fewer than BeaconLen bytes), ErrMagic,
// ErrVersion, ErrShort or ErrLong (not BeaconLen bytes), ErrTag (including a
// beacon of another network key), ErrPublicKey, ErrPort. The returned PublicKey
// is a copy.
func ParseBeacon(b []byte, psk [32]byte) (Beacon, error) {
	k := deriveKey(psk)
	return k.parse(b)
}

func (k *tagKey) parse(b []byte) (Beacon, error) {
	if len(b) < 5 {
		return Beacon{}, fmt.Errorf("%w: %d bytes, want %d", ErrShort, len(b), BeaconLen)
	}
	if string(b[:4]) != Magic {
		return Beacon{}, fmt.Errorf("%w: %q", ErrMagic, b[:4])
	}
	if b[4] != Version {
		return Beacon{}, fmt.Errorf("%w: %d, want %d", ErrVersion, b[4], Version)
	}
	if len(b) < BeaconLen {
		return Beacon{}, fmt.Errorf("%w: %d bytes, want %d", ErrShort, len(b), BeaconLen)
	}
	if len(b) > BeaconLen {
		return Beacon{}, fmt.Errorf("%w: %d bytes, want %d", ErrLong, len(b), BeaconLen)
	}
	if !hmac.Equal(k.tag(b[:offTag]), b[offTag:]) {
		return Beacon{}, ErrTag
	}
	pub := append([]byte(nil), b[offKey:offPort]...)
	if err := checkKey(pub); err != nil {
		return Beacon{}, err
	}
	var bc Beacon
	bc.PublicKey = pub
	bc.Port = binary.BigEndian.Uint16(b[offPort:])
	if bc.Port == 0 {
		return Beacon{}, ErrPort
	}
	copy(bc.Nonce[:], b[offNonce:offTag])
	return bc, nil
}
