package msg

import (
	"bytes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/skyfleet/skyfleet/services/identity"
)

// A message travels in two layers: the signed Message, which says who wrote what
// to whom and is what a node stores and shows, and the sealed envelope around it,
// which hides it from every node that carries the bundle on the way. The signature
// is inside the encryption so that a carrier learns neither the text nor who wrote
// it (only the envelope's mode, and for a unicast an ephemeral key).
//
// Signed message, all integers big endian:
//
//	version  (1)  1
//	kind     (1)  1 text, 2 receipt
//	from     (33) the sender's node key, a compressed secp256k1 point
//	to       (33) the recipient's node key; 33 zero bytes = broadcast to the fleet
//	sent_at  (8)  int64 Unix milliseconds by the sender's clock, ≥ 0; 0 = unknown
//	nonce    (8)  random, so that two equal texts sent in the same ms differ
//	body_len (2)  length of body
//	body          text:    1..MaxText bytes of valid UTF-8 without NUL
//	              receipt: ID of the message received (32) | received_at (8),
//	                       int64 Unix ms by the receiver's clock, ≥ 0; 0 = unknown
//	sig      (65) identity.SignCompact(from, SHA-256(sigDomain ‖ every byte above))
//
// The message ID is SHA-256 of the whole encoding, signature included. Decoding is
// strict, so that every message has exactly one encoding and so one ID (receipts
// and the store's duplicate check rely on it): no trailing bytes, body_len exact,
// times not negative, keys valid points, and the signature canonical (compressed
// flag set, low S as identity.SignCompact makes it); decred's RecoverCompact alone
// would also accept the high-S twin and the uncompressed-flag twin of a signature,
// which anyone could make from a genuine message to give it a second ID.
//
// Sealed envelope:
//
//	version (1) 1
//	mode    (1) 0 in clear, 1 to one recipient, 2 broadcast
//	mode 0: the signed message as it is (Clear)
//	mode 1: ephemeral public key (33) | ciphertext
//	        key   = HKDF-SHA256(ikm = identity.ECDH(eph, to), salt = eph_pub ‖ to,
//	                            info = "skyfleet/msg/v1 seal"), 32 bytes
//	        AEAD  = ChaCha20-Poly1305, nonce 12 zero bytes, AAD = the 35 header bytes
//	mode 2: nonce (24, random) | ciphertext
//	        key   = HKDF-SHA256(ikm = the fleet's network PSK, salt = none,
//	                            info = "skyfleet/msg/v1 broadcast"), 32 bytes
//	        AEAD  = XChaCha20-Poly1305, AAD = the 2 header bytes
//
// The plaintext is the signed message. A mode 1 key is used for one message only
// (the ephemeral key is fresh each time), which is why its nonce can be fixed; mode
// 2 keys are shared by every broadcast, so their nonce is random and long enough
// (192 bits) for collisions not to matter. Salting with both public keys binds the
// key to this exchange. Open checks that the mode agrees with the inner `to`, so a
// recipient cannot re-seal a message it received to a third node (or to the whole
// fleet) and have it accepted there as if the sender had written to it.
const (
	wireVersion = 1

	keyLen = identity.PublicKeySize        // 33, a compressed point
	sigLen = identity.CompactSignatureSize // 65
	idLen  = sha256.Size                   // 32

	// Offsets into the signed encoding.
	offKind    = 1
	offFrom    = 2
	offTo      = offFrom + keyLen // 35
	offSentAt  = offTo + keyLen   // 68
	offNonce   = offSentAt + 8    // 76
	offBodyLen = offNonce + 8     // 84
	headerLen  = offBodyLen + 2   // 86, everything before the body

	receiptLen = idLen + 8                    // a receipt body
	minSigned  = headerLen + 1 + sigLen       // 152, a one-byte text
	maxSigned  = headerLen + MaxText + sigLen // 1151, a MaxText-byte text
	tagLen     = chacha20poly1305.Overhead    // 16, the AEAD tag

	// Envelope modes and their header sizes (the header is the AAD, or holds it).
	modeClear = 0
	modeOne   = 1
	modeAll   = 2
	oneHeader = 2 + keyLen                      // 35
	allHeader = 2 + chacha20poly1305.NonceSizeX // 26
	clrHeader = 2
)

// sigDomain is prefixed to what is signed, so that a message signature can never
// be taken for a signature over some other Skyfleet structure with the same bytes.
const sigDomain = "skyfleet/msg/v1\x00"

// HKDF info strings of the two envelope modes; different, so that the two keys
// can never coincide even if a PSK equalled some ECDH output.
const (
	infoSeal      = "skyfleet/msg/v1 seal"
	infoBroadcast = "skyfleet/msg/v1 broadcast"
)

// MaxText is the largest text body in bytes (not runes) of UTF-8. It keeps a
// sealed message within a few mesh datagrams, and bounds what a stranger can make
// a node store.
const MaxText = 1000

// MaxSealed is the size in bytes of the largest valid sealed message: a MaxText
// text sealed to one recipient (35-byte header, 1151-byte signed message, 16-byte
// tag), 1202 bytes. Open refuses longer input as ErrMalformed before any
// cryptography, and a bundle layer can use it to refuse oversized payloads.
const MaxSealed = oneHeader + maxSigned + tagLen

// Errors of ParseSigned, Open, Seal, NewText and NewReceipt, wrapped with the
// reason (the field and lengths, never the input itself nor any key); test with
// errors.Is.
var (
	// ErrMalformed means the bytes are not a valid encoding: wrong length,
	// version, kind or mode, a field out of range, a key that is no curve point.
	// NewText and NewReceipt return it for arguments that would make one.
	ErrMalformed = errors.New("msg: malformed message")
	// ErrSignature means the signature is not a canonical signature by the key
	// in from: forged, altered after signing, or re-encoded.
	ErrSignature = errors.New("msg: signature does not match the sender")
	// ErrDecrypt means a sealed message does not authenticate under our key or
	// PSK: tampered with on the way, or sealed for another node or fleet.
	ErrDecrypt = errors.New("msg: cannot decrypt sealed message")
	// ErrNotForUs means the envelope decrypted but its mode does not agree with
	// the message's recipient: a message for another node, or a unicast passed
	// off as a broadcast (or the reverse), re-sealed by whoever received it.
	ErrNotForUs = errors.New("msg: sealed message is not addressed to this node")
)

// Kind says what a Message carries.
type Kind byte

// Kinds of message, as encoded in the kind byte.
const (
	// KindText is a text written by a person: Message.Text is set.
	KindText Kind = 1
	// KindReceipt acknowledges delivery of another message: Message.Receipt is set.
	KindReceipt Kind = 2
)

// String names the kind for logs and the API: "text", "receipt", or "kind(N)".
func (k Kind) String() string {
	switch k {
	case KindText:
		return "text"
	case KindReceipt:
		return "receipt"
	}
	return fmt.Sprintf("kind(%d)", byte(k))
}

// ID identifies a message: SHA-256 of its whole signed encoding, signature
// included. It is comparable and usable as a map key.
type ID [32]byte

// String is the ID as 64 lowercase hex characters.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Receipt is the body of a KindReceipt message: the recipient of message Of
// telling its sender that it arrived.
type Receipt struct {
	Of         ID    // the ID of the message received
	ReceivedAt int64 // Unix milliseconds by the receiver's clock; 0 = unknown
}

// Message is the content of a signed message: the fields of its encoding, whose
// layout the comment at the top of wire.go documents.
type Message struct {
	Kind   Kind
	From   [33]byte // sender's compressed node key
	To     [33]byte // recipient's compressed node key; all zero = broadcast
	SentAt int64    // Unix milliseconds by the sender's clock; 0 = unknown
	Nonce  uint64   // random, makes equal texts distinct
	// Text is the body of a KindText message, empty for other kinds.
	Text string
	// Receipt is the body of a KindReceipt message, nil for other kinds.
	Receipt *Receipt
}

// IsBroadcast reports whether m is addressed to the whole fleet (To all zero).
func (m *Message) IsBroadcast() bool { return m.To == [keyLen]byte{} }

// Signed is a message together with its signed encoding. Get one from NewText,
// NewReceipt, ParseSigned or Open: the Message fields are a decoded view of the
// encoding, which is what Bytes, ID and Seal use, so changing the fields of a
// Signed changes neither (make a new message instead). The zero Signed holds no
// message; Seal refuses it.
type Signed struct {
	Message
	raw []byte
}

// Bytes returns a copy of the signed encoding (152..1151 bytes).
func (s *Signed) Bytes() []byte { return bytes.Clone(s.raw) }

// ID returns the message ID, SHA-256 of Bytes.
func (s *Signed) ID() ID { return sha256.Sum256(s.raw) }

// NewText makes a text message from the node with key from to the node with
// compressed key to (all zero for a broadcast), sent at sentAt (Unix ms by our
// clock, 0 if the clock is not known to be set), and signs it. text must be valid
// UTF-8 of 1..MaxText bytes without NUL (NUL is refused so that no text can be
// cut short by a C-string consumer and show differently from what was signed).
// The 8-byte nonce is read from rand; nil means crypto/rand.Reader.
//
// Errors: ErrMalformed (wrapped) for such a text, a negative sentAt, a nil from,
// or a to that is neither zero nor a valid compressed point; the error of rand or
// of signing otherwise.
func NewText(from *identity.Key, to [33]byte, text string, sentAt int64, rand io.Reader) (*Signed, error) {
	return sign(from, Message{Kind: KindText, To: to, SentAt: sentAt, Text: text}, rand)
}

// NewReceipt makes a receipt from the node with key from to the node with
// compressed key to (normally the sender of message of), saying that message of
// arrived at receivedAt, and signs it; sentAt is when the receipt itself is sent.
// Both times are Unix ms by our clock, 0 if not known. The nonce is read from rand;
// nil means crypto/rand.Reader.
//
// Errors: ErrMalformed (wrapped) for a negative time, a nil from, or a to that is
// neither zero nor a valid compressed point; the error of rand or of signing
// otherwise.
func NewReceipt(from *identity.Key, to [33]byte, of ID, receivedAt int64, sentAt int64, rand io.Reader) (*Signed, error) {
	return sign(from, Message{Kind: KindReceipt, To: to, SentAt: sentAt,
		Receipt: &Receipt{Of: of, ReceivedAt: receivedAt}}, rand)
}

// sign fills in m.From and m.Nonce, encodes m and signs it with from.
func sign(from *identity.Key, m Message, rng io.Reader) (*Signed, error) {
	if from == nil {
		return nil, fmt.Errorf("%w: no sender key", ErrMalformed)
	}
	if rng == nil {
		rng = rand.Reader
	}
	copy(m.From[:], from.PublicKey())
	var nonce [8]byte
	if _, err := io.ReadFull(rng, nonce[:]); err != nil {
		return nil, fmt.Errorf("msg: reading nonce: %w", err)
	}
	m.Nonce = binary.BigEndian.Uint64(nonce[:])
	b, err := m.appendUnsigned(make([]byte, 0, maxSigned))
	if err != nil {
		return nil, err
	}
	h := signedHash(b)
	sig, err := from.SignCompact(h[:]) // constant time in the node key
	if err != nil {
		return nil, fmt.Errorf("msg: signing: %w", err)
	}
	return &Signed{Message: m, raw: append(b, sig...)}, nil
}

// signedHash is the hash the signature covers: SHA-256(sigDomain ‖ unsigned).
func signedHash(unsigned []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(sigDomain))
	h.Write(unsigned)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// appendUnsigned checks m and appends its encoding up to the signature to dst.
// The checks are those of decode, so that what we make is what we accept.
func (m *Message) appendUnsigned(dst []byte) ([]byte, error) {
	var body []byte
	switch m.Kind {
	case KindText:
		if m.Receipt != nil {
			return nil, fmt.Errorf("%w: text message with a receipt", ErrMalformed)
		}
		if err := checkText(m.Text); err != nil {
			return nil, err
		}
		body = []byte(m.Text)
	case KindReceipt:
		if m.Receipt == nil || m.Text != "" {
			return nil, fmt.Errorf("%w: receipt without its body, or with a text", ErrMalformed)
		}
		if m.Receipt.ReceivedAt < 0 {
			return nil, fmt.Errorf("%w: received_at is negative", ErrMalformed)
		}
		body = make([]byte, 0, receiptLen)
		body = append(body, m.Receipt.Of[:]...)
		body = binary.BigEndian.AppendUint64(body, uint64(m.Receipt.ReceivedAt))
	default:
		return nil, fmt.Errorf("%w: kind %d", ErrMalformed, byte(m.Kind))
	}
	if err := checkKeys(m.From, m.To); err != nil {
		return nil, err
	}
	if m.SentAt < 0 {
		return nil, fmt.Errorf("%w: sent_at is negative", ErrMalformed)
	}
	dst = append(dst, wireVersion, byte(m.Kind))
	dst = append(dst, m.From[:]...)
	dst = append(dst, m.To[:]...)
	dst = binary.BigEndian.AppendUint64(dst, uint64(m.SentAt))
	dst = binary.BigEndian.AppendUint64(dst, m.Nonce)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(body)))
	return append(dst, body...), nil
}

// checkText enforces the text rules: 1..MaxText bytes, valid UTF-8 (which
// excludes surrogates and overlong forms, so one text has one encoding), no NUL.
func checkText(s string) error {
	switch {
	case len(s) == 0:
		return fmt.Errorf("%w: empty text", ErrMalformed)
	case len(s) > MaxText:
		return fmt.Errorf("%w: text is %d bytes, at most %d", ErrMalformed, len(s), MaxText)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: text is not valid UTF-8", ErrMalformed)
	case strings.IndexByte(s, 0) >= 0:
		return fmt.Errorf("%w: text contains NUL", ErrMalformed)
	}
	return nil
}

// checkKeys requires from to be a valid compressed point and to to be one too or
// all zero (broadcast).
func checkKeys(from, to [keyLen]byte) error {
	if !validPoint(from[:]) {
		return fmt.Errorf("%w: from is not a compressed secp256k1 point", ErrMalformed)
	}
	if to != [keyLen]byte{} && !validPoint(to[:]) {
		return fmt.Errorf("%w: to is neither zero nor a compressed secp256k1 point", ErrMalformed)
	}
	return nil
}

// validPoint reports whether b is a 33-byte compressed point on the curve (decred's
// ParsePubKey takes only prefixes 0x02 and 0x03 at that length, and checks that x is
// below the field prime and has a point).
func validPoint(b []byte) bool {
	if len(b) != keyLen {
		return false
	}
	_, err := secp256k1.ParsePubKey(b)
	return err == nil
}

// ParseSigned decodes a signed message (152..1151 bytes) strictly and checks its
// signature. The returned Signed keeps its own copy of b.
//
// Errors: ErrMalformed (wrapped) for any layout error (length, version, kind,
// body_len, body, times, keys); ErrSignature (wrapped) if the signature is not a
// canonical compact signature by from over the rest.
func ParseSigned(b []byte) (*Signed, error) {
	m, err := decode(b)
	if err != nil {
		return nil, err
	}
	if err := verify(b); err != nil {
		return nil, err
	}
	return &Signed{Message: m, raw: bytes.Clone(b)}, nil
}

// decode is ParseSigned without the signature check: the layout and field rules.
func decode(b []byte) (Message, error) {
	if len(b) > maxSigned || len(b) < minSigned {
		return Message{}, fmt.Errorf("%w: %d bytes, want %d..%d", ErrMalformed, len(b), minSigned, maxSigned)
	}
	if b[0] != wireVersion {
		return Message{}, fmt.Errorf("%w: version %d, want %d", ErrMalformed, b[0], wireVersion)
	}
	m := Message{Kind: Kind(b[offKind])}
	copy(m.From[:], b[offFrom:])
	copy(m.To[:], b[offTo:])
	m.SentAt = int64(binary.BigEndian.Uint64(b[offSentAt:]))
	m.Nonce = binary.BigEndian.Uint64(b[offNonce:])
	n := int(binary.BigEndian.Uint16(b[offBodyLen:]))
	if headerLen+n+sigLen != len(b) {
		return Message{}, fmt.Errorf("%w: body_len %d, but %d bytes between header and signature", ErrMalformed, n, len(b)-headerLen-sigLen)
	}
	body := b[headerLen : headerLen+n]
	switch m.Kind {
	case KindText:
		m.Text = string(body)
		if err := checkText(m.Text); err != nil {
			return Message{}, err
		}
	case KindReceipt:
		if n != receiptLen {
			return Message{}, fmt.Errorf("%w: receipt body is %d bytes, want %d", ErrMalformed, n, receiptLen)
		}
		r := &Receipt{ReceivedAt: int64(binary.BigEndian.Uint64(body[idLen:]))}
		copy(r.Of[:], body)
		if r.ReceivedAt < 0 {
			return Message{}, fmt.Errorf("%w: received_at is negative", ErrMalformed)
		}
		m.Receipt = r
	default:
		return Message{}, fmt.Errorf("%w: kind %d", ErrMalformed, b[offKind])
	}
	if m.SentAt < 0 {
		return Message{}, fmt.Errorf("%w: sent_at is negative", ErrMalformed)
	}
	if err := checkKeys(m.From, m.To); err != nil {
		return Message{}, err
	}
	return m, nil
}

// verify checks the signature at the end of b, whose layout decode has accepted,
// against the from key in it.
func verify(b []byte) error {
	unsigned, sig := b[:len(b)-sigLen], b[len(b)-sigLen:]
	// Canonical form only (see the format comment): the header byte must carry
	// the compressed-key flag, 27+4+recid, and s must be at most N/2.
	if sig[0] < 27+4 || sig[0] > 27+4+3 {
		return fmt.Errorf("%w: signature header byte %d, want 31..34", ErrSignature, sig[0])
	}
	var s secp256k1.ModNScalar
	if overflow := s.SetByteSlice(sig[33:]); overflow || s.IsOverHalfOrder() {
		return fmt.Errorf("%w: signature s is not in the lower half of the group order", ErrSignature)
	}
	h := signedHash(unsigned)
	pub, compressed, err := ecdsa.RecoverCompact(sig, h[:])
	if err != nil {
		// decred's error describes the signature, never a secret.
		return fmt.Errorf("%w: %v", ErrSignature, err)
	}
	if !compressed || !bytes.Equal(pub.SerializeCompressed(), b[offFrom:offFrom+keyLen]) {
		return fmt.Errorf("%w: signed by another key than from", ErrSignature)
	}
	return nil
}

// Seal encrypts s for its recipient: mode 1 (to s.To, with a fresh ephemeral key)
// if the message has a recipient, mode 2 (under a key derived from psk, the
// fleet's 32-byte network PSK) if it is a broadcast; psk is unused in mode 1. The
// mode follows the encoding, not s.To, should the fields have been changed. The
// result is at most MaxSealed bytes. rand supplies the ephemeral key or the nonce;
// nil means crypto/rand.Reader. It must be a cryptographic source: a repeated
// ephemeral key would reuse a mode 1 key with its fixed nonce, and a repeated
// mode 2 nonce a key and nonce shared by the whole fleet; either reveals the XOR
// of two plaintexts and lets the authenticator be forged.
//
// Errors: ErrMalformed (wrapped) for a nil or zero Signed; the error of rand or of
// the key derivation otherwise. No error carries key material.
func Seal(s *Signed, psk [32]byte, rand io.Reader) ([]byte, error) {
	if s == nil || len(s.raw) < minSigned {
		return nil, fmt.Errorf("%w: Seal of a Signed not made by NewText, NewReceipt, ParseSigned or Open", ErrMalformed)
	}
	to := s.raw[offTo : offTo+keyLen]
	if bytes.Equal(to, make([]byte, keyLen)) {
		return sealBroadcast(s.raw, psk, rand)
	}
	return sealTo(s.raw, to, rand)
}

// Clear wraps s in the clear envelope, mode 0: the signed message readable by
// every node and station that carries it, for amateur-radio links, where
// nothing may be encrypted (47 CFR 97.113(a)(4)). The signature still says
// who wrote it and that nobody changed it. Store and forward carries only such
// messages across radio hops (saf.Engine.RegisterClear, IsClear). Errors:
// ErrMalformed (wrapped) for a nil or zero Signed.
func Clear(s *Signed) ([]byte, error) {
	if s == nil || len(s.raw) < minSigned {
		return nil, fmt.Errorf("%w: Clear of a Signed not made by NewText, NewReceipt, ParseSigned or Open", ErrMalformed)
	}
	return append([]byte{wireVersion, modeClear}, s.raw...), nil
}

// IsClear reports whether an envelope is in clear (mode 0, Clear), by its
// header alone: what a custodian asks before it hands the bundle to a radio
// link. A clear envelope whose message is malformed is refused where it is
// opened (Open), like any other.
func IsClear(envelope []byte) bool {
	return len(envelope) >= clrHeader && envelope[0] == wireVersion && envelope[1] == modeClear
}

// sealTo seals signed (any bytes) in mode 1 to the compressed key to. Seal is the
// only production caller; tests use it to re-seal a message to someone else.
func sealTo(signed, to []byte, rng io.Reader) ([]byte, error) {
	if rng == nil {
		rng = rand.Reader
	}
	eph, err := identity.Generate(rng)
	if err != nil {
		return nil, fmt.Errorf("msg: ephemeral key: %w", err)
	}
	// The ephemeral secret never leaves this function; clear it once used, so
	// that no copy of a message key outlives the call.
	defer eph.PrivateKey().Zero()
	shared, err := identity.ECDH(eph.PrivateKey(), to)
	if err != nil {
		return nil, fmt.Errorf("%w: recipient: %w", ErrMalformed, err)
	}
	out := make([]byte, 0, oneHeader+len(signed)+tagLen)
	out = append(out, wireVersion, modeOne)
	out = append(out, eph.PublicKey()...)
	aead, err := unicastAEAD(&shared, out[2:oneHeader], to)
	if err != nil {
		return nil, err
	}
	var nonce [chacha20poly1305.NonceSize]byte
	return aead.Seal(out, nonce[:], signed, out[:oneHeader]), nil
}

// sealBroadcast seals signed (any bytes) in mode 2 under psk.
func sealBroadcast(signed []byte, psk [32]byte, rng io.Reader) ([]byte, error) {
	if rng == nil {
		rng = rand.Reader
	}
	out := make([]byte, allHeader, allHeader+len(signed)+tagLen)
	out[0], out[1] = wireVersion, modeAll
	if _, err := io.ReadFull(rng, out[2:allHeader]); err != nil {
		return nil, fmt.Errorf("msg: reading nonce: %w", err)
	}
	aead, err := broadcastAEAD(&psk)
	if err != nil {
		return nil, err
	}
	return aead.Seal(out, out[2:allHeader], signed, out[:2]), nil
}

// unicastAEAD derives the mode 1 key from the ECDH output (which it clears) and
// the two public keys.
func unicastAEAD(shared *[32]byte, ephPub, to []byte) (cipher.AEAD, error) {
	salt := make([]byte, 0, 2*keyLen)
	salt = append(append(salt, ephPub...), to...)
	key, err := hkdf.Key(sha256.New, shared[:], salt, infoSeal, chacha20poly1305.KeySize)
	clear(shared[:])
	if err != nil {
		// hkdf fails only for a length beyond 255 hashes, never here; its
		// error is not passed on so that no future one can quote input.
		return nil, errors.New("msg: key derivation failed")
	}
	defer clear(key) // the cipher keeps its own copy
	return chacha20poly1305.New(key)
}

// broadcastAEAD derives the mode 2 key from the fleet PSK.
func broadcastAEAD(psk *[32]byte) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, psk[:], nil, infoBroadcast, chacha20poly1305.KeySize)
	if err != nil {
		return nil, errors.New("msg: key derivation failed")
	}
	defer clear(key)
	return chacha20poly1305.NewX(key)
}

// Open decrypts and verifies a sealed message for the node with key self, in a
// fleet whose network PSK is psk (used by mode 2 only; self by mode 1 only, so it
// may be nil for a broadcast; a unicast with a nil self is an error). Input longer than MaxSealed, or outside the length
// range of its mode, is refused before any cryptography.
//
// Errors, wrapped with the reason: ErrMalformed for a bad layout (length, version,
// mode, an ephemeral key that is no point, or a decrypted message that does not
// decode); ErrDecrypt if authentication fails (tampered, or sealed for another
// node or with another PSK); ErrSignature for a message whose signature is not its
// sender's; ErrNotForUs if the mode disagrees with the message's recipient (mode 1
// requires To to be self, mode 2 requires a broadcast, mode 0, in clear, either).
// A clear message is verified like any other: its signature is all that says who
// wrote it. No error carries key material, and none echoes the input.
func Open(sealed []byte, self *identity.Key, psk [32]byte) (*Signed, error) {
	if len(sealed) > MaxSealed {
		return nil, fmt.Errorf("%w: sealed message of %d bytes, at most %d", ErrMalformed, len(sealed), MaxSealed)
	}
	if len(sealed) < 2 {
		return nil, fmt.Errorf("%w: sealed message of %d bytes", ErrMalformed, len(sealed))
	}
	if sealed[0] != wireVersion {
		return nil, fmt.Errorf("%w: sealed version %d, want %d", ErrMalformed, sealed[0], wireVersion)
	}
	var plain []byte
	switch mode := sealed[1]; mode {
	case modeClear:
		if n := len(sealed) - clrHeader; n < minSigned || n > maxSigned {
			return nil, fmt.Errorf("%w: clear message of %d bytes, want %d..%d", ErrMalformed, len(sealed), clrHeader+minSigned, clrHeader+maxSigned)
		}
		plain = sealed[clrHeader:]
	case modeOne:
		if err := sealedLen(len(sealed), oneHeader); err != nil {
			return nil, err
		}
		if self == nil {
			return nil, errors.New("msg: Open of a unicast message needs this node's key")
		}
		ephPub := sealed[2:oneHeader]
		shared, err := identity.ECDH(self.PrivateKey(), ephPub)
		if errors.Is(err, identity.ErrPublicKey) {
			return nil, fmt.Errorf("%w: ephemeral key is not a compressed secp256k1 point", ErrMalformed)
		} else if err != nil {
			return nil, fmt.Errorf("msg: ECDH with this node's key: %w", err)
		}
		aead, err := unicastAEAD(&shared, ephPub, self.PublicKey())
		if err != nil {
			return nil, err
		}
		var nonce [chacha20poly1305.NonceSize]byte
		if plain, err = aead.Open(nil, nonce[:], sealed[oneHeader:], sealed[:oneHeader]); err != nil {
			return nil, fmt.Errorf("%w: unicast does not authenticate under this node's key", ErrDecrypt)
		}
	case modeAll:
		if err := sealedLen(len(sealed), allHeader); err != nil {
			return nil, err
		}
		aead, err := broadcastAEAD(&psk)
		if err != nil {
			return nil, err
		}
		if plain, err = aead.Open(nil, sealed[2:allHeader], sealed[allHeader:], sealed[:2]); err != nil {
			return nil, fmt.Errorf("%w: broadcast does not authenticate under the fleet key", ErrDecrypt)
		}
	default:
		return nil, fmt.Errorf("%w: envelope mode %d, want %d, %d or %d", ErrMalformed, mode, modeClear, modeOne, modeAll)
	}
	// Decrypting proves little about the sender: anyone can seal to our public
	// key, and every node of the fleet holds the PSK. Only the signature says who
	// wrote the message, so its content is checked in full.
	s, err := ParseSigned(plain)
	if err != nil {
		return nil, err
	}
	switch {
	case sealed[1] == modeClear && !s.IsBroadcast() && (self == nil || !bytes.Equal(s.To[:], self.PublicKey())):
		return nil, fmt.Errorf("%w: message is addressed to another node", ErrNotForUs)
	case sealed[1] == modeAll && !s.IsBroadcast():
		return nil, fmt.Errorf("%w: broadcast envelope around a message to one node", ErrNotForUs)
	case sealed[1] == modeOne && !bytes.Equal(s.To[:], self.PublicKey()):
		if s.IsBroadcast() {
			return nil, fmt.Errorf("%w: unicast envelope around a broadcast", ErrNotForUs)
		}
		return nil, fmt.Errorf("%w: message is addressed to another node", ErrNotForUs)
	}
	return s, nil
}

// sealedLen checks that a sealed message of n bytes with a hdr-byte header holds
// a ciphertext of a signed message of valid length.
func sealedLen(n, hdr int) error {
	if n < hdr+minSigned+tagLen || n > hdr+maxSigned+tagLen {
		return fmt.Errorf("%w: sealed message of %d bytes, want %d..%d for its mode", ErrMalformed, n, hdr+minSigned+tagLen, hdr+maxSigned+tagLen)
	}
	return nil
}
