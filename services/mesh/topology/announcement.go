package topology

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"github.com/skyfleet/skyfleet/services/identity"
)

// Encoding constants; see the package documentation for the layout.
const (
	// Version is the only encoding version Unmarshal accepts.
	Version = 1
	// KeyLen is the length of a compressed secp256k1 public key.
	KeyLen = 33
	// MaxNeighbours is the most neighbours one announcement can list.
	MaxNeighbours = 255
	// MaxProperties is the most properties one announcement can carry on the wire;
	// when the announcement carries a Time, that takes one of them (see Announcement.Time).
	MaxProperties = 16
	// MaxPropertyLen is the longest property, in bytes.
	MaxPropertyLen = 32
	// SignatureLen is the length of the compact signature that ends an encoding.
	SignatureLen = 65
	// MaxDatagramNeighbours is the number of neighbours for which an announcement
	// with no more than 43 bytes of encoded properties (count byte excluded) still
	// fits a 1400-byte datagram.
	MaxDatagramNeighbours = 32
	// MaxEncodedLen is the size of the largest valid encoding, in bytes: 255
	// neighbours and 16 properties of 32 bytes.
	MaxEncodedLen = headerLen + 1 + MaxNeighbours*neighbourLen + 1 + MaxProperties*(1+MaxPropertyLen) + SignatureLen

	headerLen    = 1 + KeyLen + 8
	neighbourLen = KeyLen + 4 + 2
)

// ErrMalformed is wrapped by every error of Unmarshal and MarshalBinary about the
// content of an announcement; the message names the offending field, e.g.
// "topology: malformed announcement: neighbours[3].key: duplicate".
var ErrMalformed = errors.New("topology: malformed announcement")

// ErrBadSignature is wrapped by the errors of Verify (and so of Graph.Update) when the
// signature is missing, invalid, or made by a key other than Origin.
var ErrBadSignature = errors.New("topology: bad announcement signature")

// Key is a node's identity: its 33-byte compressed secp256k1 public key.
type Key [KeyLen]byte

// String returns the key in lower-case hex (66 characters).
func (k Key) String() string { return hex.EncodeToString(k[:]) }

// Neighbour is one entry of an announcement: a node the origin has a live link to.
type Neighbour struct {
	// Key is the neighbour's identity.
	Key Key
	// RTT is the round-trip time the origin measured on the link. It is encoded in
	// whole microseconds (truncated), saturating at 0 and at 2^32-1 µs.
	RTT time.Duration
	// Loss is the fraction of packets lost on the link, 0..1. It is encoded as a
	// uint16 in units of 1/65535 (rounded); values outside 0..1 saturate, NaN is an
	// error.
	Loss float64
}

// Announcement is the gossip message: the origin's signed neighbour list.
type Announcement struct {
	// Origin is the node the announcement is about and whose key signs it.
	Origin Key
	// Seq orders the origin's announcements: a higher Seq replaces a lower one. It
	// must be nonzero. See "Sequence restart" in the package documentation.
	Seq uint64
	// Neighbours lists the origin's live links, at most MaxNeighbours, no key twice
	// and not the origin itself.
	Neighbours []Neighbour
	// Properties are what the node offers, e.g. "gateway", "master", "relay": at most
	// MaxProperties (MaxProperties-1 with a Time), each 1..MaxPropertyLen bytes of
	// [a-z0-9_-], no duplicates, and none of the time property's form ("_t" and
	// digits), which is reserved.
	Properties []string
	// Time is the origin's wall-clock time when it signed, in Unix milliseconds;
	// 0 means the origin did not know the time (a board without a real-time
	// clock), negative is invalid. It is signed with the rest. On the wire it is
	// the last property, "_t" and the decimal number, so that nodes that predate
	// it parse, verify, store and forward such announcements unchanged (see
	// "Wall time" in the package documentation). Sign fills it from the origin's
	// time source (SetTimeSource) when it is 0.
	Time int64
	// Sig is the origin's 65-byte compact signature over the encoding without Sig;
	// Sign sets it.
	Sig []byte
}

// EncodedLen returns the length of a's encoding in bytes (whether or not a is valid
// or signed): 43 + 39*len(Neighbours) + 1 + Σ(1+len(property)) + 65, the time
// property counted among the properties when Time is not 0.
func (a *Announcement) EncodedLen() int {
	n := headerLen + 1 + len(a.Neighbours)*neighbourLen + 1 + SignatureLen
	for _, p := range a.Properties {
		n += 1 + len(p)
	}
	if a.Time > 0 {
		n += 1 + len(timePrefix) + len(strconv.FormatInt(a.Time, 10))
	}
	return n
}

// Sign fills a.Sig with priv's signature of a's encoding. When a.Time is 0 and a
// time source is set for a.Origin (SetTimeSource), Sign first sets a.Time from it,
// unless a already has MaxProperties properties, which leave no room for the time
// (the announcement then goes out without it rather than not at all). It fails with
// an error wrapping ErrMalformed when a is not valid (see Announcement), with one
// wrapping identity.ErrPrivateKey when priv is zero, and without wrapping when
// priv's public key is not a.Origin. Signing and key derivation are constant time
// in priv.
func (a *Announcement) Sign(priv *secp256k1.PrivateKey) error {
	if priv == nil {
		return errors.New("topology: Sign: nil private key")
	}
	pub, err := identity.PublicKeyOf(priv) // constant time in the node key
	if err != nil {
		return fmt.Errorf("topology: Sign: %w", err)
	}
	if !bytes.Equal(pub, a.Origin[:]) {
		return fmt.Errorf("topology: Sign: private key is not the origin's (%x…, origin %x…)", pub[:6], a.Origin[:6])
	}
	if a.Time == 0 && len(a.Properties) < MaxProperties {
		if now := timeSourceOf(a.Origin); now != nil {
			a.Time = max(now(), 0)
		}
	}
	body, err := a.appendBody(make([]byte, 0, a.EncodedLen()))
	if err != nil {
		return err
	}
	h := sha256.Sum256(body)
	sig, err := identity.SignCompact(priv, h[:]) // decred's bytes, in constant time
	if err != nil {
		return fmt.Errorf("topology: Sign: %w", err)
	}
	a.Sig = sig
	return nil
}

// Verify checks that a is valid and that a.Sig is a signature of its encoding by
// a.Origin. Errors wrap ErrMalformed (invalid content) or ErrBadSignature.
func (a *Announcement) Verify() error {
	body, err := a.appendBody(make([]byte, 0, a.EncodedLen()))
	if err != nil {
		return err
	}
	if err := checkSig(a.Sig); err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	h := sha256.Sum256(body)
	seenKey := sha256.Sum256(append(h[:], a.Sig...))
	if verified.has(seenKey) {
		return nil
	}
	pub, compressed, err := ecdsa.RecoverCompact(a.Sig, h[:])
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	if !compressed {
		return fmt.Errorf("%w: made for an uncompressed key", ErrBadSignature)
	}
	if got := pub.SerializeCompressed(); !bytes.Equal(got, a.Origin[:]) {
		return fmt.Errorf("%w: signed by %x…, not by the origin %x…", ErrBadSignature, got[:6], a.Origin[:6])
	}
	verified.add(seenKey)
	return nil
}

// verified remembers announcements (digest and signature) whose signature checked
// out, so the same bytes are not verified twice in one process. A node gets each
// announcement once per seq already; this matters where many nodes share a process
// (a 300-node fleet test, a simulator), where signature recovery was 70% of the CPU.
// Only exact bytes that verified are remembered, so the answer cannot differ.
var verified = newSeenSet(1 << 14)

type seenSet struct {
	mu   sync.Mutex
	set  map[[32]byte]struct{}
	ring [][32]byte // insertion order, for evicting the oldest
	next int
}

func newSeenSet(n int) *seenSet {
	return &seenSet{set: make(map[[32]byte]struct{}, n), ring: make([][32]byte, n)}
}

func (s *seenSet) has(k [32]byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.set[k]
	return ok
}

func (s *seenSet) add(k [32]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.set[k]; ok {
		return
	}
	delete(s.set, s.ring[s.next])
	s.ring[s.next] = k
	s.set[k] = struct{}{}
	s.next = (s.next + 1) % len(s.ring)
}

// MarshalBinary returns a's encoding (see the package documentation). a must be
// valid and signed (65-byte Sig with a compressed-key recovery code); otherwise the
// error wraps ErrMalformed. The signature itself is not checked.
func (a *Announcement) MarshalBinary() ([]byte, error) {
	b, err := a.appendBody(make([]byte, 0, a.EncodedLen()))
	if err != nil {
		return nil, err
	}
	if err := checkSig(a.Sig); err != nil {
		return nil, malformed("sig", "%v", err)
	}
	return append(b, a.Sig...), nil
}

// Unmarshal decodes one announcement that must take all of b. It checks the version,
// every length and limit, key prefixes, properties, duplicates, that Seq is nonzero,
// and the signature's length and recovery code, but not the signature itself (see
// Verify). Errors wrap ErrMalformed and name the field. The result does not alias b.
func Unmarshal(b []byte) (*Announcement, error) {
	d := decoder{b: b}
	v, err := d.u8("version")
	if err != nil {
		return nil, err
	}
	if v != Version {
		return nil, malformed("version", "%d is not supported (want %d)", v, Version)
	}
	a := &Announcement{}
	if err := d.key("origin", &a.Origin); err != nil {
		return nil, err
	}
	if a.Seq, err = d.u64("seq"); err != nil {
		return nil, err
	}
	n, err := d.u8("neighbour count")
	if err != nil {
		return nil, err
	}
	if n > 0 {
		a.Neighbours = make([]Neighbour, n)
	}
	for i := range a.Neighbours {
		if len(d.b) < neighbourLen {
			field, have, want := "key", len(d.b), KeyLen
			if have >= KeyLen+4 {
				field, have, want = "loss", have-KeyLen-4, 2
			} else if have >= KeyLen {
				field, have, want = "rtt", have-KeyLen, 4
			}
			return nil, malformed(fmt.Sprintf("neighbours[%d].%s", i, field), "truncated (%d of %d bytes)", have, want)
		}
		p := d.b[:neighbourLen]
		d.b = d.b[neighbourLen:]
		nb := &a.Neighbours[i]
		copy(nb.Key[:], p)
		nb.RTT = time.Duration(binary.BigEndian.Uint32(p[KeyLen:])) * time.Microsecond
		nb.Loss = float64(binary.BigEndian.Uint16(p[KeyLen+4:])) / math.MaxUint16
	}
	m, err := d.u8("property count")
	if err != nil {
		return nil, err
	}
	if m > MaxProperties {
		return nil, malformed("properties", "%d is more than %d", m, MaxProperties)
	}
	if m > 0 {
		a.Properties = make([]string, m)
	}
	for i := range a.Properties {
		field := fmt.Sprintf("properties[%d]", i)
		l, err := d.u8(field + ".length")
		if err != nil {
			return nil, err
		}
		if l == 0 || l > MaxPropertyLen {
			return nil, malformed(field, "length %d is not 1..%d", l, MaxPropertyLen)
		}
		p, err := d.take(field, int(l))
		if err != nil {
			return nil, err
		}
		a.Properties[i] = string(p)
	}
	if m > 0 && isTimeProperty(a.Properties[m-1]) {
		t, err := parseTimeProperty(a.Properties[m-1])
		if err != nil {
			return nil, malformed(fmt.Sprintf("properties[%d]", m-1), "%v", err)
		}
		a.Time = t
		if a.Properties = a.Properties[:m-1]; len(a.Properties) == 0 {
			a.Properties = nil // as an announcement without properties decodes
		}
	}
	sig, err := d.take("sig", SignatureLen)
	if err != nil {
		return nil, err
	}
	if len(d.b) > 0 {
		return nil, malformed("sig", "%d trailing bytes after the signature", len(d.b))
	}
	if err := checkSig(sig); err != nil {
		return nil, malformed("sig", "%v", err)
	}
	if err := a.validate(); err != nil {
		return nil, err
	}
	a.Sig = append([]byte(nil), sig...)
	return a, nil
}

// appendBody validates a and appends its encoding without the signature to b.
func (a *Announcement) appendBody(b []byte) ([]byte, error) {
	if err := a.validate(); err != nil {
		return nil, err
	}
	b = append(b, Version)
	b = append(b, a.Origin[:]...)
	b = binary.BigEndian.AppendUint64(b, a.Seq)
	b = append(b, byte(len(a.Neighbours)))
	for _, n := range a.Neighbours {
		b = append(b, n.Key[:]...)
		b = binary.BigEndian.AppendUint32(b, rttMicros(n.RTT))
		b = binary.BigEndian.AppendUint16(b, lossUnits(n.Loss))
	}
	n := len(a.Properties)
	if a.Time > 0 {
		n++
	}
	b = append(b, byte(n))
	for _, p := range a.Properties {
		b = append(b, byte(len(p)))
		b = append(b, p...)
	}
	if a.Time > 0 {
		// The time goes last, so that its place, like its digits, is canonical.
		t := strconv.FormatInt(a.Time, 10)
		b = append(b, byte(len(timePrefix)+len(t)))
		b = append(b, timePrefix...)
		b = append(b, t...)
	}
	return b, nil
}

// validate checks everything about a but its signature.
func (a *Announcement) validate() error {
	if a == nil {
		return malformed("announcement", "nil")
	}
	if err := checkKeyPrefix(a.Origin); err != nil {
		return malformed("origin", "%v", err)
	}
	if a.Seq == 0 {
		return malformed("seq", "must be nonzero")
	}
	if len(a.Neighbours) > MaxNeighbours {
		return malformed("neighbours", "%d is more than %d", len(a.Neighbours), MaxNeighbours)
	}
	var seen map[Key]struct{}
	if len(a.Neighbours) > 32 {
		seen = make(map[Key]struct{}, len(a.Neighbours))
	}
	for i, n := range a.Neighbours {
		if err := checkKeyPrefix(n.Key); err != nil {
			return malformed(fmt.Sprintf("neighbours[%d].key", i), "%v", err)
		}
		if n.Key == a.Origin {
			return malformed(fmt.Sprintf("neighbours[%d].key", i), "is the origin itself")
		}
		dup := false
		if seen != nil {
			_, dup = seen[n.Key]
			seen[n.Key] = struct{}{}
		} else {
			for _, m := range a.Neighbours[:i] {
				if m.Key == n.Key {
					dup = true
					break
				}
			}
		}
		if dup {
			return malformed(fmt.Sprintf("neighbours[%d].key", i), "duplicate %x…", n.Key[:6])
		}
		if math.IsNaN(n.Loss) {
			return malformed(fmt.Sprintf("neighbours[%d].loss", i), "NaN")
		}
	}
	if a.Time < 0 {
		return malformed("time", "%d is negative", a.Time)
	}
	if len(a.Properties) > MaxProperties {
		return malformed("properties", "%d is more than %d", len(a.Properties), MaxProperties)
	}
	if a.Time > 0 && len(a.Properties) >= MaxProperties {
		return malformed("properties", "%d and the time are more than %d", len(a.Properties), MaxProperties)
	}
	for i, p := range a.Properties {
		if err := checkProperty(p); err != nil {
			return malformed(fmt.Sprintf("properties[%d]", i), "%v", err)
		}
		if isTimeProperty(p) {
			// Only the last property on the wire may have this form, and that
			// one is Time: anywhere else it would not survive a round trip.
			return malformed(fmt.Sprintf("properties[%d]", i), "%q has the form reserved for the time", p)
		}
		for _, q := range a.Properties[:i] {
			if p == q {
				return malformed(fmt.Sprintf("properties[%d]", i), "duplicate %q", p)
			}
		}
	}
	return nil
}

// ValidProperty reports whether p may be used as a property: 1..MaxPropertyLen bytes
// of [a-z0-9_-], not of the form reserved for the time ("_t" and digits).
func ValidProperty(p string) bool { return checkProperty(p) == nil && !isTimeProperty(p) }

// timePrefix starts the property that carries Announcement.Time on the wire. Roles
// are names, so "_t" followed by digits only is free to reserve; a leading '_'
// keeps it out of the way of names an operator would choose.
const timePrefix = "_t"

// maxTimeDigits is the most digits of the time property: those of the largest
// int64.
const maxTimeDigits = 19

// isTimeProperty reports whether p has the reserved form of the time property:
// timePrefix and at least one digit, nothing else.
func isTimeProperty(p string) bool {
	if len(p) <= len(timePrefix) || p[:len(timePrefix)] != timePrefix {
		return false
	}
	for i := len(timePrefix); i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return true
}

// parseTimeProperty decodes a property of the reserved form: a positive decimal
// int64 without leading zeros, so that each time has exactly one encoding.
func parseTimeProperty(p string) (int64, error) {
	digits := p[len(timePrefix):]
	if digits[0] == '0' {
		return 0, fmt.Errorf("time %q: leading zero (0, unknown, is sent as no time property)", p)
	}
	if len(digits) > maxTimeDigits {
		return 0, fmt.Errorf("time %q: more than %d digits", p, maxTimeDigits)
	}
	t, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("time %q: out of range", p)
	}
	return t, nil
}

// timeSources are the functions Sign stamps announcements with, by origin; see
// SetTimeSource.
var timeSources struct {
	mu sync.Mutex
	m  map[Key]*timeSource
}

type timeSource struct{ now func() int64 }

// SetTimeSource makes Sign stamp every announcement of origin that has no Time yet
// with now(): the origin's wall-clock time in Unix milliseconds, or 0 while it does
// not know it (0 and negative values leave the announcement without a time). now is
// called from whatever goroutine signs, without locks held, so it must be safe for
// concurrent use and must not block.
//
// The source is keyed by origin, process-wide, because the router that builds and
// signs a node's announcements knows nothing of clocks; keying by origin (rather
// than one global source) keeps several nodes in one process (tests, simulators)
// apart. A later call for the same origin replaces the source. The returned
// function removes this source, and only this one, so a node that stops after a
// newer node of the same key started does not remove the newer node's source.
func SetTimeSource(origin Key, now func() int64) (remove func()) {
	src := &timeSource{now: now}
	timeSources.mu.Lock()
	defer timeSources.mu.Unlock()
	if timeSources.m == nil {
		timeSources.m = make(map[Key]*timeSource)
	}
	timeSources.m[origin] = src
	return func() {
		timeSources.mu.Lock()
		defer timeSources.mu.Unlock()
		if timeSources.m[origin] == src {
			delete(timeSources.m, origin)
		}
	}
}

// timeSourceOf returns origin's time source, nil if none.
func timeSourceOf(origin Key) func() int64 {
	timeSources.mu.Lock()
	defer timeSources.mu.Unlock()
	if src := timeSources.m[origin]; src != nil && src.now != nil {
		return src.now
	}
	return nil
}

func checkProperty(p string) error {
	if len(p) == 0 || len(p) > MaxPropertyLen {
		return fmt.Errorf("length %d is not 1..%d", len(p), MaxPropertyLen)
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("byte %d (0x%02x) is not one of [a-z0-9_-]", i, c)
		}
	}
	return nil
}

func checkKeyPrefix(k Key) error {
	if k[0] != 0x02 && k[0] != 0x03 {
		return fmt.Errorf("prefix 0x%02x is not that of a compressed key (0x02 or 0x03)", k[0])
	}
	return nil
}

// checkSig checks a compact signature's length and recovery code (27 + 0..3 + 4 for a
// compressed key).
func checkSig(sig []byte) error {
	if len(sig) == 0 {
		return errors.New("missing (call Sign)")
	}
	if len(sig) != SignatureLen {
		return fmt.Errorf("%d bytes, want %d", len(sig), SignatureLen)
	}
	if sig[0] < 31 || sig[0] > 34 {
		return fmt.Errorf("recovery code %d is not 31..34 (compressed key)", sig[0])
	}
	return nil
}

// rttMicros converts an RTT to its encoding: whole microseconds, saturating.
func rttMicros(d time.Duration) uint32 {
	us := d / time.Microsecond
	if us < 0 {
		return 0
	}
	if us > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(us)
}

// lossUnits converts a loss fraction to its encoding in 1/65535, rounded, saturating.
func lossUnits(l float64) uint16 {
	if !(l > 0) { // also NaN, which validate refuses
		return 0
	}
	if l >= 1 {
		return math.MaxUint16
	}
	return uint16(math.Round(l * math.MaxUint16))
}

func malformed(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrMalformed, field, fmt.Sprintf(format, args...))
}

// clone returns a deep copy of a.
func (a *Announcement) clone() *Announcement {
	c := *a
	c.Neighbours = append([]Neighbour(nil), a.Neighbours...)
	c.Properties = append([]string(nil), a.Properties...)
	c.Sig = append([]byte(nil), a.Sig...)
	return &c
}

// decoder reads fields off the front of b, naming the field in its errors.
type decoder struct{ b []byte }

func (d *decoder) take(field string, n int) ([]byte, error) {
	if len(d.b) < n {
		return nil, malformed(field, "truncated (%d of %d bytes)", len(d.b), n)
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p, nil
}

func (d *decoder) u8(field string) (byte, error) {
	p, err := d.take(field, 1)
	if err != nil {
		return 0, err
	}
	return p[0], nil
}

func (d *decoder) u64(field string) (uint64, error) {
	p, err := d.take(field, 8)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint64(p), nil
}

func (d *decoder) key(field string, k *Key) error {
	p, err := d.take(field, KeyLen)
	if err != nil {
		return err
	}
	copy(k[:], p)
	return nil
}
