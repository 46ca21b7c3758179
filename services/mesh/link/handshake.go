package link

import (
	"container/list"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/flynn/noise"
)

// Datagram types: the first byte of every datagram.
const (
	TypeInit byte = 1 // handshake message 1, initiator → responder
	TypeResp byte = 2 // handshake message 2, responder → initiator
	TypeData byte = 3 // session datagram, either way
)

// Sizes, in bytes.
const (
	// MACLen is the length of the psk-keyed MAC that ends Init and Resp.
	MACLen = 16
	// TagLen is the ChaCha20-Poly1305 tag length.
	TagLen = 16
	// HeaderLen is the length of the Data header, which is also the AEAD's ad.
	HeaderLen = 16
	// Overhead is what a Data datagram adds to its plaintext (header + tag). The
	// plaintext itself adds 1 byte of kind, plus 2 of length and the padding when
	// Config.Padding > 0.
	Overhead = HeaderLen + TagLen
	// MaxInitPayload is the largest caller payload an Init may carry (Initiate).
	MaxInitPayload = 512
	// InitLen is the length of an Init with an empty caller payload: header (8),
	// e (33), enc(s) (33+16), enc(timestamp) (8+16), mac (16).
	InitLen = 8 + KeyLen + KeyLen + TagLen + 8 + TagLen + MACLen
	// RespLen is the length of a Resp: header (12), e (33), enc(empty) (16), mac (16).
	RespLen = 12 + KeyLen + TagLen + MACLen
	// MaxPayload is the largest payload Seal accepts: what the 2-byte length field of
	// a padded plaintext can describe, less the plaintext and datagram overheads.
	MaxPayload = 65535 - Overhead - 3
)

// Replay-cache bounds of a Handshaker. They bound memory; an attacker holding the
// network key could flush them, which is why both caches exist: the mac cache stops
// exact replays without ECDH, the timestamp cache stops older inits of a known key.
const (
	// InitCacheSize is how many macs of accepted Inits are remembered.
	InitCacheSize = 8192
	// PeerCacheSize is how many initiator keys have their last timestamp remembered.
	PeerCacheSize = 8192
)

// Sentinel errors. Every error returned by this package matches exactly one of them
// with errors.Is (ErrEpoch also matches ErrReplay), so callers can count drops by
// reason. Unknown receiver indexes are the caller's business: it looks sessions up.
var (
	// ErrShort: the datagram, or an authenticated plaintext, is shorter than its format.
	ErrShort = errors.New("link: datagram too short")
	// ErrType: wrong type byte for the call, or non-zero reserved bytes.
	ErrType = errors.New("link: wrong datagram type")
	// ErrMAC: the Init/Resp mac is wrong: the sender lacks the network key (or the
	// datagram was damaged). Checked before any ECDH.
	ErrMAC = errors.New("link: bad mac (wrong network key?)")
	// ErrReplay: an Init seen before or not newer than the last one from its key, a
	// Resp for a finished handshake, or a Data counter already seen or too old.
	ErrReplay = errors.New("link: replay")
	// ErrEpoch: a Data datagram for a key epoch this session does not hold (retired,
	// that is too old). It wraps ErrReplay.
	ErrEpoch = fmt.Errorf("%w: unknown or retired key epoch", ErrReplay)
	// ErrRefused: the accept callback refused the initiator's static key.
	ErrRefused = errors.New("link: remote key refused")
	// ErrAuth: Noise or AEAD authentication failed, or an authenticated key is invalid.
	ErrAuth = errors.New("link: authentication failed")
	// ErrExpired: the send counter reached 2^60; the session must be replaced by a new
	// handshake.
	ErrExpired = errors.New("link: session expired")
	// ErrTooLarge: a payload over MaxInitPayload (Init) or MaxPayload (Data).
	ErrTooLarge = errors.New("link: payload too large")
	// ErrKey: a remote key passed to Initiate is not a compressed secp256k1 point.
	ErrKey = errors.New("link: invalid public key")
	// ErrIndex: a Resp whose receiver index is not the Pending's LocalIndex.
	ErrIndex = errors.New("link: receiver index mismatch")
)

const (
	prologueLabel = "skyfleet link v1"
	macLabel      = "skyfleet mac1"
)

// Config configures a Handshaker and the Sessions it makes. Private is required.
// PSK is the network key (docs/architecture.md §Links: a handshake without it is
// dropped unanswered); it is the Noise psk (Noise rev 34 §9) and keys the Init/Resp mac. Padding
// hides payload sizes: with Padding = P every Data datagram is HeaderLen + k·P bytes
// for the smallest k that fits, control messages included. Each side pads what it
// sends and the plaintext says whether it is padded, so the two ends need not agree,
// but sizes are hidden only in the directions whose sender pads.
type Config struct {
	Private *secp256k1.PrivateKey // node static key
	PSK     [32]byte              // network key
	Padding int                   // 0: none; >0: every Data plaintext is padded so the datagram's ciphertext has a fixed size of the next multiple of Padding bytes
}

// Handshaker runs the handshake (Noise rev 34 §7.5 IK with §9 psk2) for one node
// static key and network key, and remembers enough to refuse replayed Inits. It is
// safe for concurrent use; only the replay caches are under its lock, never ECDH.
type Handshaker struct {
	suite   noise.CipherSuite // the package's suite; tests swap in a reference DH
	static  noise.DHKey
	priv    *secp256k1.PrivateKey // the same key, for signing clear links
	psk     [32]byte
	macKey  [32]byte
	padding int
	rand    io.Reader // nil: crypto/rand; tests make it deterministic

	mu     sync.Mutex
	macs   macCache
	stamps stampCache
}

// NewHandshaker returns a Handshaker for cfg. cfg.Private must not be nil. A negative
// Padding counts as 0.
//
// The public key is computed in constant time (decred's PubKey is not). A zero
// cfg.Private (which decred's PrivKeyFromBytes makes from 0 or N) is no key: PublicKey
// then returns 33 zero bytes, which no peer accepts, and every handshake fails with
// an error rather than a panic.
func NewHandshaker(cfg Config) *Handshaker {
	priv := cfg.Private.Serialize()
	pub, err := publicKey(priv)
	if err != nil {
		pub = make([]byte, KeyLen)
	}
	h := &Handshaker{
		suite:   suite,
		static:  noise.DHKey{Private: priv, Public: pub},
		priv:    cfg.Private,
		psk:     cfg.PSK,
		padding: max(cfg.Padding, 0),
	}
	k, err := hkdf.Key(sha256.New, cfg.PSK[:], nil, macLabel, len(h.macKey))
	if err != nil {
		panic(err) // only for impossible lengths
	}
	copy(h.macKey[:], k)
	h.stamps.init()
	return h
}

// PublicKey returns the node's 33-byte compressed static public key.
func (h *Handshaker) PublicKey() []byte {
	return append([]byte(nil), h.static.Public...)
}

func (h *Handshaker) rng() io.Reader {
	if h.rand != nil {
		return h.rand
	}
	return rand.Reader
}

// mac returns the first MACLen bytes of HMAC-SHA256(macKey, b).
func (h *Handshaker) mac(b []byte) [MACLen]byte {
	m := hmac.New(sha256.New, h.macKey[:])
	m.Write(b)
	var sum [sha256.Size]byte
	var out [MACLen]byte
	copy(out[:], m.Sum(sum[:0]))
	return out
}

// checkMAC reports whether msg ends with the right mac. Constant time, so a prober
// learns nothing byte by byte.
func (h *Handshaker) checkMAC(msg []byte) bool {
	n := len(msg) - MACLen
	want := h.mac(msg[:n])
	return subtle.ConstantTimeCompare(want[:], msg[n:]) == 1
}

// newState starts this node's side of a handshake whose Init begins with hdr: the
// prologue is prologueLabel followed by hdr[:8].
func (h *Handshaker) newState(initiator bool, hdr, peer []byte) (*noise.HandshakeState, error) {
	prologue := make([]byte, 0, len(prologueLabel)+8)
	prologue = append(append(prologue, prologueLabel...), hdr[:8]...)
	return newNoiseState(h.suite, initiator, h.static, peer, &h.psk, prologue, h.rng())
}

// The Noise layer. Initiate, Respond and Finish frame datagrams, check the mac and
// refuse replays; everything they ask of Noise goes through the functions below, which
// take the cipher suite as a parameter. Production passes suite (secp256k1). The tests
// pass Curve25519 and check these same functions, and newSession's use of their
// keys, against published Noise test vectors (testdata/README.md), so a mistake in the
// pattern, the psk placement, the payload layout or the transport-key split that both
// ends would share cannot pass a round-trip test unseen.

// handshakeKeys is what a completed handshake hands to newSession: the keys of the two
// CipherStates of Noise Split() (rev 34 §5.2) and the handshake hash.
type handshakeKeys struct {
	i2r  [32]byte // first CipherState of Split: initiator → responder
	r2i  [32]byte // second CipherState of Split: responder → initiator
	hash []byte   // h at the end of the handshake (GetHandshakeHash, §11.2 channel binding)
}

// newNoiseState starts one side of Noise_IKpsk2_<DH>_ChaChaPoly_SHA256 under cs (rev
// 34 §7.5 pattern IK; §9 psk modifier at position 2, so the psk is mixed in at the
// end of message 2). It is the one place the pattern and psk placement are chosen.
// static is this side's key pair, peer the responder's static public key (initiator
// only, nil for the responder); rng supplies the ephemeral key.
//
// psk is a pointer to an array so that its length is fixed by its type: the package
// always passes the network key. nil means plain Noise_IK, without the psk modifier,
// which only the test vectors use. (flynn/noise itself would run psk2 with an empty
// psk on the reading side if given placement 2 and no key.)
func newNoiseState(cs noise.CipherSuite, initiator bool, static noise.DHKey, peer []byte, psk *[32]byte, prologue []byte, rng io.Reader) (*noise.HandshakeState, error) {
	c := noise.Config{
		CipherSuite:   cs,
		Random:        rng,
		Pattern:       noise.HandshakeIK,
		Initiator:     initiator,
		Prologue:      prologue,
		StaticKeypair: static,
		PeerStatic:    peer,
	}
	if psk != nil {
		c.PresharedKey = psk[:]
		c.PresharedKeyPlacement = 2
	}
	return noise.NewHandshakeState(c)
}

// writeInit appends Noise message 1 (-> e, es, s, ss) to out. Its payload is ts (8
// bytes, big endian) followed by payload.
func writeInit(hs *noise.HandshakeState, out []byte, ts uint64, payload []byte) ([]byte, error) {
	pt := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint64(pt, ts)
	pt = append(pt, payload...)
	out, _, _, err := hs.WriteMessage(out, pt)
	return out, err
}

// readInit reads Noise message 1 and returns the initiator's timestamp, its payload
// (what followed the timestamp) and its static public key as Noise decrypted it (DHLen
// bytes). Errors: ErrAuth (Noise failed: bad key, tag or length), ErrShort (the
// payload has no room for the timestamp).
func readInit(hs *noise.HandshakeState, msg []byte) (ts uint64, payload, remote []byte, err error) {
	pt, _, _, err := hs.ReadMessage(nil, msg)
	if err != nil {
		return 0, nil, nil, ErrAuth
	}
	if len(pt) < 8 {
		return 0, nil, nil, ErrShort
	}
	return binary.BigEndian.Uint64(pt), pt[8:], hs.PeerStatic(), nil
}

// writeResp appends Noise message 2 (<- e, ee, se, psk) carrying payload to out and
// returns the session keys; the handshake is then complete.
func writeResp(hs *noise.HandshakeState, out, payload []byte) ([]byte, handshakeKeys, error) {
	out, cs1, cs2, err := hs.WriteMessage(out, payload)
	if err != nil {
		return nil, handshakeKeys{}, err
	}
	if cs1 == nil || cs2 == nil { // cannot happen: IK has two messages
		return nil, handshakeKeys{}, ErrAuth
	}
	return out, handshakeKeys{i2r: cs1.UnsafeKey(), r2i: cs2.UnsafeKey(), hash: hs.ChannelBinding()}, nil
}

// readResp reads Noise message 2 and returns its payload and the session keys.
// ErrAuth if Noise fails; flynn/noise then leaves hs as it was, except after a failed
// DH (an invalid ephemeral key), which callers must refuse before calling readResp.
func readResp(hs *noise.HandshakeState, msg []byte) ([]byte, handshakeKeys, error) {
	pt, cs1, cs2, err := hs.ReadMessage(nil, msg)
	if err != nil || cs1 == nil || cs2 == nil {
		return nil, handshakeKeys{}, ErrAuth
	}
	return pt, handshakeKeys{i2r: cs1.UnsafeKey(), r2i: cs2.UnsafeKey(), hash: hs.ChannelBinding()}, nil
}

// Pending is an Init in flight: the initiator's half of a handshake, waiting for the
// Resp. It is safe for concurrent use. A Resp that fails authentication leaves it
// usable, so a forged Resp cannot cancel a handshake; once Finish succeeds, further
// Resps are ErrReplay.
type Pending struct {
	h          *Handshaker
	remote     [KeyLen]byte
	localIndex uint32

	// clear marks a ClearInit's Pending; binding is the SHA-256 of that Init.
	clear   bool
	binding [32]byte

	mu   sync.Mutex
	hs   *noise.HandshakeState
	done bool
}

// LocalIndex is the receiver index the caller chose in Initiate: the Resp and every
// Data datagram of the session carry it.
func (p *Pending) LocalIndex() uint32 { return p.localIndex }

// Remote returns (a copy of) the responder's 33-byte static key given to Initiate.
func (p *Pending) Remote() []byte { return append([]byte(nil), p.remote[:]...) }

// Initiate builds an Init to the node with compressed static key remote (33 bytes); localIndex is the receiver index the caller picked for the new session; ts the caller's monotonic timestamp; payload optional (<= 512 bytes), delivered to the responder.
//
// ts must grow with every Init this node ever sends to any responder, across restarts
// (a persisted counter or wall-clock nanoseconds): the responder drops an Init whose
// ts is not greater than the last one it accepted from this node (ErrReplay there).
// Errors: ErrKey for a bad remote, ErrTooLarge for a long payload. Two ECDHs.
func (h *Handshaker) Initiate(remote []byte, localIndex uint32, ts uint64, payload []byte) (msg []byte, p *Pending, err error) {
	if !validKey(remote) {
		return nil, nil, ErrKey
	}
	if len(payload) > MaxInitPayload {
		return nil, nil, ErrTooLarge
	}
	msg = make([]byte, 8, InitLen+len(payload))
	msg[0] = TypeInit
	binary.BigEndian.PutUint32(msg[4:8], localIndex)
	p = &Pending{h: h, localIndex: localIndex}
	copy(p.remote[:], remote)
	p.hs, err = h.newState(true, msg, p.remote[:])
	if err != nil {
		return nil, nil, err
	}
	msg, err = writeInit(p.hs, msg, ts, payload)
	if err != nil {
		return nil, nil, fmt.Errorf("link: noise: %w", err)
	}
	mac := h.mac(msg)
	return append(msg, mac[:]...), p, nil
}

// Respond handles an Init. On success it returns the Resp datagram to send, the new Session (responder side) and the initiator's payload.
//
// Checks, cheapest first, each failure leaving no state: length and type (ErrShort,
// ErrType, ErrTooLarge), mac (ErrMAC), exact replay (ErrReplay) — none of these costs
// an ECDH — then Noise (ErrAuth, two ECDHs), accept (ErrRefused; nil accept accepts
// everyone), timestamp newer than the last accepted from the same key (ErrReplay).
// Only then is the Init remembered and the Resp built (two more ECDHs).
// localIndex is the responder's receiver index for the session; now starts its clock.
func (h *Handshaker) Respond(msg []byte, localIndex uint32, now time.Time, accept func(remote []byte) bool) (resp []byte, s *Session, payload []byte, err error) {
	if len(msg) > 0 && msg[0] == TypeClearInit {
		return h.respondClear(msg, localIndex, now, accept)
	}
	id, err := h.checkInit(msg, TypeInit, InitLen)
	if err != nil {
		return nil, nil, nil, err
	}

	hs, err := h.newState(false, msg, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	ts, payload, remote, err := readInit(hs, msg[8:len(msg)-MACLen])
	if err != nil {
		return nil, nil, nil, err
	}
	if len(remote) != KeyLen { // cannot happen: Noise read exactly DHLen bytes
		return nil, nil, nil, ErrAuth
	}
	if accept != nil && !accept(append([]byte(nil), remote...)) {
		return nil, nil, nil, ErrRefused
	}
	var rk [KeyLen]byte
	copy(rk[:], remote)

	if err := h.admitInit(id, rk, ts); err != nil {
		return nil, nil, nil, err
	}

	remoteIndex := binary.BigEndian.Uint32(msg[4:8])
	resp = make([]byte, 12, RespLen)
	resp[0] = TypeResp
	binary.BigEndian.PutUint32(resp[4:8], localIndex)
	binary.BigEndian.PutUint32(resp[8:12], remoteIndex)
	resp, keys, err := writeResp(hs, resp, nil)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("link: noise: %w", err)
	}
	mac := h.mac(resp)
	resp = append(resp, mac[:]...)
	s = newSession(h, false, rk, localIndex, remoteIndex, keys, now)
	return resp, s, payload, nil
}

// checkInit runs the cheap checks of an Init of type typ (TypeInit or
// TypeClearInit) whose empty-payload length is minLen, in order: length
// (ErrShort), type and reserved bytes (ErrType), payload size (ErrTooLarge),
// mac (ErrMAC) and an exact copy of an Init accepted before (ErrReplay). No
// ECDH or signature has been spent by then. It returns the mac, the Init's
// identity in the replay cache.
func (h *Handshaker) checkInit(msg []byte, typ byte, minLen int) (id [MACLen]byte, err error) {
	switch {
	case len(msg) < minLen:
		return id, ErrShort
	case msg[0] != typ || msg[1]|msg[2]|msg[3] != 0:
		return id, ErrType
	case len(msg) > minLen+MaxInitPayload:
		return id, ErrTooLarge
	case !h.checkMAC(msg):
		return id, ErrMAC
	}
	copy(id[:], msg[len(msg)-MACLen:])
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.macs.has(id) {
		return id, ErrReplay
	}
	return id, nil
}

// admitInit records an authenticated Init with mac id from key rk at timestamp
// ts, or returns ErrReplay: a concurrent copy of it won the race, or ts is not
// newer than the last accepted from rk.
func (h *Handshaker) admitInit(id [MACLen]byte, rk [KeyLen]byte, ts uint64) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.macs.has(id) {
		return ErrReplay
	}
	if last, ok := h.stamps.get(rk); ok && ts <= last {
		return ErrReplay
	}
	h.stamps.put(rk, ts)
	h.macs.add(id)
	return nil
}

// Finish handles the Resp to p's Init.
//
// Errors: ErrShort, ErrType, ErrIndex (receiver index is not p.LocalIndex()), ErrMAC
// (checked before any ECDH), ErrReplay (p already finished), ErrAuth (Noise failed;
// p stays usable for the genuine Resp). Two ECDHs. now starts the session's clock.
func (p *Pending) Finish(resp []byte, now time.Time) (*Session, error) {
	if p.clear {
		if len(resp) == 0 || resp[0] != TypeClearResp {
			return nil, ErrType
		}
		return p.finishClear(resp, now)
	}
	if len(resp) < RespLen {
		return nil, ErrShort
	}
	if resp[0] != TypeResp || resp[1]|resp[2]|resp[3] != 0 {
		return nil, ErrType
	}
	if binary.BigEndian.Uint32(resp[8:12]) != p.localIndex {
		return nil, ErrIndex
	}
	if !p.h.checkMAC(resp) {
		return nil, ErrMAC
	}
	// Reject a bad ephemeral before Noise touches its state: flynn/noise rolls back a
	// failed decryption but not a failed DH, and p must survive a forged Resp.
	if !validKey(resp[12 : 12+KeyLen]) {
		return nil, ErrAuth
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return nil, ErrReplay
	}
	_, keys, err := readResp(p.hs, resp[12:len(resp)-MACLen])
	if err != nil {
		return nil, err
	}
	p.done = true
	remoteIndex := binary.BigEndian.Uint32(resp[4:8])
	s := newSession(p.h, true, p.remote, p.localIndex, remoteIndex, keys, now)
	p.hs = nil
	return s, nil
}

// Header parses the first bytes of any datagram without crypto: its type (TypeInit,
// TypeResp, TypeData, or a clear one: TypeClearInit, TypeClearResp, TypeClearData)
// and, for the responses and data, the receiver index. ok=false if too short or
// unknown type.
//
// "Too short" means shorter than the smallest valid datagram of its type (InitLen,
// RespLen, Overhead+1, ClearInitLen, ClearRespLen, ClearOverhead+1), so the caller
// can drop runts before any lookup. For an Init the receiver index is 0 (the
// responder has not picked one yet).
func Header(datagram []byte) (typ byte, receiverIndex uint32, ok bool) {
	if len(datagram) == 0 {
		return 0, 0, false
	}
	switch typ = datagram[0]; typ {
	case TypeInit:
		return typ, 0, len(datagram) >= InitLen
	case TypeResp:
		if len(datagram) < RespLen {
			return typ, 0, false
		}
		return typ, binary.BigEndian.Uint32(datagram[8:12]), true
	case TypeData:
		if len(datagram) < Overhead+1 {
			return typ, 0, false
		}
		return typ, binary.BigEndian.Uint32(datagram[4:8]), true
	case TypeClearInit:
		return typ, 0, len(datagram) >= ClearInitLen
	case TypeClearResp:
		if len(datagram) < ClearRespLen {
			return typ, 0, false
		}
		return typ, binary.BigEndian.Uint32(datagram[8:12]), true
	case TypeClearData:
		if len(datagram) < ClearOverhead+1 {
			return typ, 0, false
		}
		return typ, binary.BigEndian.Uint32(datagram[4:8]), true
	}
	return typ, 0, false
}

// macCache remembers the macs of the last InitCacheSize accepted Inits, oldest
// evicted first. A mac stands for the whole Init: equal macs mean an exact copy (or a
// 2^-128 accident).
type macCache struct {
	set  map[[MACLen]byte]struct{}
	ring [][MACLen]byte
	next int
}

func (c *macCache) has(id [MACLen]byte) bool {
	_, ok := c.set[id]
	return ok
}

func (c *macCache) add(id [MACLen]byte) {
	if c.set == nil {
		c.set = make(map[[MACLen]byte]struct{}, InitCacheSize)
		c.ring = make([][MACLen]byte, 0, InitCacheSize)
	}
	if len(c.ring) < InitCacheSize {
		c.ring = append(c.ring, id)
	} else {
		delete(c.set, c.ring[c.next])
		c.ring[c.next] = id
		c.next = (c.next + 1) % InitCacheSize
	}
	c.set[id] = struct{}{}
}

// stampCache is an LRU of PeerCacheSize initiator keys → greatest accepted timestamp.
type stampCache struct {
	m   map[[KeyLen]byte]*list.Element
	lru list.List // front = most recent; values are *stamp
}

type stamp struct {
	key [KeyLen]byte
	ts  uint64
}

func (c *stampCache) init() { c.m = make(map[[KeyLen]byte]*list.Element) }

func (c *stampCache) get(k [KeyLen]byte) (uint64, bool) {
	e, ok := c.m[k]
	if !ok {
		return 0, false
	}
	c.lru.MoveToFront(e)
	return e.Value.(*stamp).ts, true
}

func (c *stampCache) put(k [KeyLen]byte, ts uint64) {
	if e, ok := c.m[k]; ok {
		e.Value.(*stamp).ts = ts
		c.lru.MoveToFront(e)
		return
	}
	if c.lru.Len() >= PeerCacheSize {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.m, old.Value.(*stamp).key)
	}
	c.m[k] = c.lru.PushFront(&stamp{key: k, ts: ts})
}
