package saf

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// KeyLen is the size of a node key (a compressed secp256k1 public key): bundle
// sources and destinations are node keys, like mesh addresses.
const KeyLen = 33

// Key is a node's 33-byte public key. The zero Key as a destination means every
// node of the fleet (Broadcast).
type Key [KeyLen]byte

// Broadcast is the destination of a bundle for every node of the fleet.
var Broadcast Key

// IsBroadcast reports whether k is the broadcast destination (all zero).
func (k Key) IsBroadcast() bool { return k == Broadcast }

// String returns the key in hex, shortened to its first 6 bytes for logs.
func (k Key) String() string { return hex.EncodeToString(k[:6]) }

// Class is a bundle's forwarding class: real-time bundles are sent before bulk ones
// on every link.
type Class byte

// The classes.
const (
	ClassBulk     Class = 0
	ClassRealTime Class = 1
)

// Limits of a bundle.
const (
	// MaxPayload is the largest payload in bytes.
	MaxPayload = 64 << 10
	// MaxLifetime is the longest lifetime a bundle may ask for: 30 days.
	MaxLifetime = 30 * 24 * time.Hour
	// headerLen is the size of the canonical encoding without the payload.
	headerLen = 1 + 1 + 2 + KeyLen + KeyLen + 8 + 8 + 4 + 4
	// MaxBundle is the largest canonical encoding in bytes.
	MaxBundle = headerLen + MaxPayload
)

// version is the canonical encoding's first byte.
const version = 1

// ID names a bundle: SHA-256 of its canonical encoding.
type ID [32]byte

// String returns the ID in lowercase hex (64 characters).
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// ParseID reads a 64-character hex ID. Errors: anything else.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*len(id) {
		return id, fmt.Errorf("saf: a bundle ID is %d hex characters, not %d", 2*len(id), len(s))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("saf: bundle ID is not hex")
	}
	return id, nil
}

// Bundle is the unit of store-and-forward: what a custodian keeps and hands on.
// Its fields are fixed at creation; its age (how long it has existed) travels
// beside it, outside the encoding, so that the ID never changes in transit.
//
// The canonical encoding, all integers big endian, is the only one Parse accepts:
//
//	version     1 byte   1
//	class       1 byte   0 bulk, 1 real-time
//	port        2 bytes  the application it is for (PortMsg: services/msg), not 0
//	source      33 bytes the key of the node that made it
//	destination 33 bytes the key of the node it is for; all zero: every node
//	created     8 bytes  int64 Unix ms by the source's clock; 0 = unknown then
//	seq         8 bytes  chosen by the source, so equal payloads make distinct bundles
//	lifetime    4 bytes  uint32 seconds, 1 .. MaxLifetime
//	length      4 bytes  uint32 payload length, 0 .. MaxPayload
//	payload     length bytes
type Bundle struct {
	Class       Class
	Port        uint16
	Source      Key
	Destination Key
	// Created is the creation time in Unix milliseconds by the source's clock, 0
	// when the source did not know the time.
	Created int64
	Seq     uint64
	// Lifetime is how long after creation the bundle is worth delivering; it is
	// dropped (and counted) once its age exceeds it.
	Lifetime time.Duration
	Payload  []byte
}

// Errors of the bundle and wire decoders. Each error wraps ErrMalformed and says
// which field is wrong, never echoing the input.
var ErrMalformed = errors.New("saf: malformed")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// check reports why b cannot be encoded, or nil.
func (b *Bundle) check() error {
	switch {
	case b.Class != ClassBulk && b.Class != ClassRealTime:
		return malformed("class %d", b.Class)
	case b.Port == 0:
		return malformed("port 0")
	case b.Source.IsBroadcast():
		return malformed("zero source")
	case b.Lifetime < time.Second || b.Lifetime > MaxLifetime:
		return malformed("lifetime %v outside 1 s .. %v", b.Lifetime, MaxLifetime)
	case b.Lifetime%time.Second != 0:
		return malformed("lifetime %v is not whole seconds", b.Lifetime)
	case len(b.Payload) > MaxPayload:
		return malformed("payload of %d bytes, at most %d", len(b.Payload), MaxPayload)
	case b.Created < 0:
		return malformed("negative creation time")
	}
	return nil
}

// Marshal returns the canonical encoding. Errors wrap ErrMalformed: a field out of
// range (see Bundle).
func (b *Bundle) Marshal() ([]byte, error) {
	if err := b.check(); err != nil {
		return nil, err
	}
	out := make([]byte, 0, headerLen+len(b.Payload))
	out = append(out, version, byte(b.Class))
	out = binary.BigEndian.AppendUint16(out, b.Port)
	out = append(out, b.Source[:]...)
	out = append(out, b.Destination[:]...)
	out = binary.BigEndian.AppendUint64(out, uint64(b.Created))
	out = binary.BigEndian.AppendUint64(out, b.Seq)
	out = binary.BigEndian.AppendUint32(out, uint32(b.Lifetime/time.Second))
	out = binary.BigEndian.AppendUint32(out, uint32(len(b.Payload)))
	return append(out, b.Payload...), nil
}

// IDOf returns the ID of a canonical encoding.
func IDOf(enc []byte) ID { return sha256.Sum256(enc) }

// Parse decodes a canonical encoding. The payload is copied. Errors wrap
// ErrMalformed: a wrong version, length or field (see Bundle).
func Parse(enc []byte) (*Bundle, error) {
	if len(enc) < headerLen {
		return nil, malformed("bundle of %d bytes, the header alone is %d", len(enc), headerLen)
	}
	if len(enc) > MaxBundle {
		return nil, malformed("bundle of %d bytes, at most %d", len(enc), MaxBundle)
	}
	if enc[0] != version {
		return nil, malformed("bundle version %d", enc[0])
	}
	b := &Bundle{Class: Class(enc[1]), Port: binary.BigEndian.Uint16(enc[2:])}
	p := enc[4:]
	copy(b.Source[:], p)
	copy(b.Destination[:], p[KeyLen:])
	p = p[2*KeyLen:]
	created := binary.BigEndian.Uint64(p)
	if created > 1<<62 {
		return nil, malformed("creation time out of range")
	}
	b.Created = int64(created)
	b.Seq = binary.BigEndian.Uint64(p[8:])
	b.Lifetime = time.Duration(binary.BigEndian.Uint32(p[16:])) * time.Second
	n := binary.BigEndian.Uint32(p[20:])
	p = p[24:]
	if uint64(n) != uint64(len(p)) {
		return nil, malformed("payload length %d, %d bytes follow", n, len(p))
	}
	b.Payload = append([]byte(nil), p...)
	if err := b.check(); err != nil {
		return nil, err
	}
	return b, nil
}

// headerOf decodes the fields a custodian routes by without copying the payload;
// enc must have passed Parse.
func headerOf(enc []byte) (class Class, port uint16, src, dst Key, lifetime time.Duration) {
	class = Class(enc[1])
	port = binary.BigEndian.Uint16(enc[2:])
	copy(src[:], enc[4:])
	copy(dst[:], enc[4+KeyLen:])
	lifetime = time.Duration(binary.BigEndian.Uint32(enc[4+2*KeyLen+16:])) * time.Second
	return
}

// createdOf returns the creation time field of a parsed encoding (Unix ms, 0 unknown).
func createdOf(enc []byte) int64 { return int64(binary.BigEndian.Uint64(enc[4+2*KeyLen:])) }
