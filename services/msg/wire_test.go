package msg

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"golang.org/x/crypto/chacha20poly1305"
	xhkdf "golang.org/x/crypto/hkdf"

	"github.com/skyfleet/skyfleet/services/identity"
)

// The format constants below are written out from the documented format, not
// taken from the package, so that a change of the package's constants shows up
// here as a failure rather than silently moving both sides.
const (
	specHeader   = 1 + 1 + 33 + 33 + 8 + 8 + 2 // 86
	specSig      = 65
	specDomain   = "skyfleet/msg/v1\x00"
	specSeal     = "skyfleet/msg/v1 seal"
	specBcast    = "skyfleet/msg/v1 broadcast"
	specMaxSeal  = 2 + 33 + (specHeader + 1000 + specSig) + 16 // 1202
	specUniHdr   = 2 + 33
	specBcastHdr = 2 + 24
)

// detRand is a deterministic byte stream named by seed, for reproducible keys,
// nonces and envelopes.
func detRand(seed string) io.Reader { return rand.NewChaCha8(sha256.Sum256([]byte(seed))) }

// testKey is a fixed node key named by name.
func testKey(t testing.TB, name string) *identity.Key {
	t.Helper()
	k, err := identity.Generate(detRand("key " + name))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// pubOf is k's compressed public key as a message address.
func pubOf(k *identity.Key) (p [33]byte) {
	copy(p[:], k.PublicKey())
	return p
}

var (
	testPSK  = sha256.Sum256([]byte("test fleet psk"))
	otherPSK = sha256.Sum256([]byte("another fleet psk"))
)

// refECDH is identity.ECDH computed with decred's variable-time arithmetic (fine
// in a test): SHA-256 of the compressed point d·pub.
func refECDH(t testing.TB, priv *secp256k1.PrivateKey, pub []byte) []byte {
	t.Helper()
	pk, err := secp256k1.ParsePubKey(pub)
	if err != nil {
		t.Fatalf("refECDH: %v", err)
	}
	var p, r secp256k1.JacobianPoint
	pk.AsJacobian(&p)
	secp256k1.ScalarMultNonConst(&priv.Key, &p, &r)
	r.ToAffine()
	buf := make([]byte, 33)
	buf[0] = 2
	if r.Y.IsOdd() {
		buf[0] = 3
	}
	r.X.PutBytesUnchecked(buf[1:])
	sum := sha256.Sum256(buf)
	return sum[:]
}

// refKey derives the envelope key from the documented format with
// golang.org/x/crypto/hkdf (the package uses crypto/hkdf): mode 1 from the
// recipient's side (its secret and the ephemeral key in the header), mode 2 from
// the PSK.
func refKey(t testing.TB, header []byte, self *identity.Key, psk [32]byte) []byte {
	t.Helper()
	var r io.Reader
	switch header[1] {
	case 1:
		eph := header[2:35]
		salt := append(append([]byte(nil), eph...), self.PublicKey()...)
		r = xhkdf.New(sha256.New, refECDH(t, self.PrivateKey(), eph), salt, []byte(specSeal))
	case 2:
		r = xhkdf.New(sha256.New, psk[:], nil, []byte(specBcast))
	default:
		t.Fatalf("refKey: mode %d", header[1])
	}
	key := make([]byte, 32)
	if _, err := io.ReadFull(r, key); err != nil {
		t.Fatal(err)
	}
	return key
}

// refOpen decrypts sealed as the documented format says, independently of Open.
func refOpen(t testing.TB, sealed []byte, self *identity.Key, psk [32]byte) ([]byte, error) {
	t.Helper()
	if sealed[0] != 1 {
		t.Fatalf("refOpen: version %d", sealed[0])
	}
	if sealed[1] == 0 { // in clear: the signed message follows the header
		return bytes.Clone(sealed[2:]), nil
	}
	key := refKey(t, sealed, self, psk)
	if sealed[1] == 1 {
		aead, err := chacha20poly1305.New(key)
		if err != nil {
			t.Fatal(err)
		}
		return aead.Open(nil, make([]byte, 12), sealed[specUniHdr:], sealed[:specUniHdr])
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		t.Fatal(err)
	}
	return aead.Open(nil, sealed[2:specBcastHdr], sealed[specBcastHdr:], sealed[:2])
}

// refSeal re-encrypts plain under the header of sealed as the documented format
// says; for an authentic envelope it must give sealed back byte for byte.
func refSeal(t testing.TB, header, plain []byte, self *identity.Key, psk [32]byte) []byte {
	t.Helper()
	if header[1] == 0 {
		return append([]byte{1, 0}, plain...)
	}
	key := refKey(t, header, self, psk)
	if header[1] == 1 {
		aead, _ := chacha20poly1305.New(key)
		h := header[:specUniHdr]
		return aead.Seal(bytes.Clone(h), make([]byte, 12), plain, h)
	}
	aead, _ := chacha20poly1305.NewX(key)
	h := header[:specBcastHdr]
	return aead.Seal(bytes.Clone(h), h[2:], plain, h[:2])
}

// resign appends to unsigned (an encoding without its signature) k's signature
// over the documented hash, so that layout tests are not refused for their
// signature alone.
func resign(t testing.TB, k *identity.Key, unsigned []byte) []byte {
	t.Helper()
	h := sha256.Sum256(append([]byte(specDomain), unsigned...))
	sig, err := k.SignCompact(h[:])
	if err != nil {
		t.Fatal(err)
	}
	return append(bytes.Clone(unsigned), sig...)
}

func mustText(t testing.TB, from *identity.Key, to [33]byte, text string, sentAt int64, seed string) *Signed {
	t.Helper()
	s, err := NewText(from, to, text, sentAt, detRand(seed))
	if err != nil {
		t.Fatalf("NewText(%q): %v", text, err)
	}
	return s
}

func mustSeal(t testing.TB, s *Signed, psk [32]byte, seed string) []byte {
	t.Helper()
	b, err := Seal(s, psk, detRand(seed))
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	return b
}

// TestRoundTrip: text and receipt, unicast and broadcast, survive Bytes and
// ParseSigned and Seal and Open unchanged, with the same ID.
func TestRoundTrip(t *testing.T) {
	alice, bob := testKey(t, "alice"), testKey(t, "bob")
	first := mustText(t, alice, pubOf(bob), "hello bob", 1_700_000_000_123, "n1")
	receipt, err := NewReceipt(bob, pubOf(alice), first.ID(), 1_700_000_005_000, 1_700_000_005_001, detRand("n2"))
	if err != nil {
		t.Fatal(err)
	}
	bcastText := mustText(t, alice, [33]byte{}, "hello fleet \u2713", 0, "n4")
	bcastReceipt, err := NewReceipt(bob, [33]byte{}, first.ID(), 0, 0, detRand("n3"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		s        *Signed
		opener   *identity.Key
		want     Message
		wantMode byte
	}{
		{"text unicast", first, bob, Message{Kind: KindText, From: pubOf(alice), To: pubOf(bob),
			SentAt: 1_700_000_000_123, Nonce: first.Nonce, Text: "hello bob"}, 1},
		{"text broadcast", bcastText, bob, Message{Kind: KindText, From: pubOf(alice),
			Nonce: bcastText.Nonce, Text: "hello fleet \u2713"}, 2},
		{"receipt unicast", receipt, alice, Message{Kind: KindReceipt, From: pubOf(bob), To: pubOf(alice),
			SentAt: 1_700_000_005_001, Nonce: receipt.Nonce,
			Receipt: &Receipt{Of: first.ID(), ReceivedAt: 1_700_000_005_000}}, 1},
		{"receipt broadcast", bcastReceipt, alice, Message{Kind: KindReceipt, From: pubOf(bob),
			Nonce: bcastReceipt.Nonce, Receipt: &Receipt{Of: first.ID()}}, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			if !reflect.DeepEqual(c.s.Message, c.want) {
				t.Fatalf("message %+v, want %+v", c.s.Message, c.want)
			}
			if c.s.IsBroadcast() != (c.wantMode == 2) {
				t.Fatalf("IsBroadcast = %v", c.s.IsBroadcast())
			}
			p, err := ParseSigned(c.s.Bytes())
			if err != nil {
				t.Fatalf("ParseSigned: %v", err)
			}
			if !reflect.DeepEqual(p.Message, c.want) || p.ID() != c.s.ID() || !bytes.Equal(p.Bytes(), c.s.Bytes()) {
				t.Fatalf("ParseSigned gave %+v, ID %v; want %+v, ID %v", p.Message, p.ID(), c.want, c.s.ID())
			}
			sealed := mustSeal(t, c.s, testPSK, "seal "+c.name)
			if sealed[0] != 1 || sealed[1] != c.wantMode {
				t.Fatalf("sealed header % x, want mode %d", sealed[:2], c.wantMode)
			}
			hdr := specUniHdr
			if c.wantMode == 2 {
				hdr = specBcastHdr
			}
			if len(sealed) != hdr+len(c.s.Bytes())+16 {
				t.Fatalf("sealed %d bytes, want %d", len(sealed), hdr+len(c.s.Bytes())+16)
			}
			o, err := Open(sealed, c.opener, testPSK)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !reflect.DeepEqual(o.Message, c.want) || o.ID() != c.s.ID() {
				t.Fatalf("Open gave %+v, ID %v", o.Message, o.ID())
			}
			// Sealing twice gives different envelopes (fresh ephemeral key or
			// nonce) around the same message.
			again := mustSeal(t, c.s, testPSK, "seal again "+c.name)
			if bytes.Equal(again[2:hdr], sealed[2:hdr]) {
				t.Fatal("two seals share an ephemeral key or nonce")
			}
			if o2, err := Open(again, c.opener, testPSK); err != nil || o2.ID() != c.s.ID() {
				t.Fatalf("Open of second seal: %v", err)
			}
		})
	}
}

// TestIDs: the ID is SHA-256 of the whole encoding, as lowercase hex; equal texts
// differ by their nonces; an ID survives Bytes and ParseSigned.
func TestIDs(t *testing.T) {
	alice, bob := testKey(t, "alice"), testKey(t, "bob")
	a := mustText(t, alice, pubOf(bob), "same", 42, "nonce a")
	b := mustText(t, alice, pubOf(bob), "same", 42, "nonce b")
	if a.Nonce == b.Nonce {
		t.Fatal("different rand gave the same nonce")
	}
	if a.ID() == b.ID() {
		t.Fatal("messages differing only in nonce share an ID")
	}
	if want := sha256.Sum256(a.Bytes()); a.ID() != ID(want) {
		t.Fatalf("ID %v, want SHA-256 of the encoding %x", a.ID(), want)
	}
	id := a.ID()
	if s := id.String(); s != hex.EncodeToString(id[:]) || s != strings.ToLower(s) || len(s) != 64 {
		t.Fatalf("ID.String() = %q", s)
	}
	// The nonce is the 8 bytes read from rand (big endian): a fixed stream gives
	// a fixed nonce, and so the same message and ID, since signing is
	// deterministic (RFC 6979).
	c := mustText(t, alice, pubOf(bob), "same", 42, "nonce a")
	if c.ID() != a.ID() {
		t.Fatal("same inputs and rand gave different IDs")
	}
	var first8 [8]byte
	io.ReadFull(detRand("nonce a"), first8[:])
	if a.Nonce != binary.BigEndian.Uint64(first8[:]) {
		t.Fatalf("nonce %x, want the first 8 bytes of rand %x", a.Nonce, first8)
	}
	for range 3 {
		p, err := ParseSigned(a.Bytes())
		if err != nil || p.ID() != id {
			t.Fatalf("ID after ParseSigned: %v, %v", p, err)
		}
		a = p
	}
	// Bytes is a copy: writing to it changes neither the message nor its ID.
	raw := a.Bytes()
	raw[100] ^= 1
	if a.ID() != id {
		t.Fatal("Bytes returned the internal buffer")
	}
}

// TestLayout parses the encoding by hand at the documented offsets and checks
// the signature with decred directly: the bytes are the documented format.
func TestLayout(t *testing.T) {
	alice, bob := testKey(t, "alice"), testKey(t, "bob")
	text := "layout ✓"
	s := mustText(t, alice, pubOf(bob), text, 0x0102030405060708, "layout")
	raw := s.Bytes()
	if len(raw) != specHeader+len(text)+specSig {
		t.Fatalf("%d bytes, want %d", len(raw), specHeader+len(text)+specSig)
	}
	if raw[0] != 1 || raw[1] != 1 {
		t.Fatalf("version, kind = %d, %d", raw[0], raw[1])
	}
	if !bytes.Equal(raw[2:35], alice.PublicKey()) || !bytes.Equal(raw[35:68], bob.PublicKey()) {
		t.Fatal("from or to not at offsets 2 and 35")
	}
	if got := raw[68:76]; !bytes.Equal(got, []byte{1, 2, 3, 4, 5, 6, 7, 8}) {
		t.Fatalf("sent_at bytes % x", got)
	}
	if binary.BigEndian.Uint64(raw[76:84]) != s.Nonce {
		t.Fatal("nonce not at offset 76")
	}
	if n := binary.BigEndian.Uint16(raw[84:86]); int(n) != len(text) || string(raw[86:86+n]) != text {
		t.Fatalf("body_len %d, body %q", n, raw[86:86+n])
	}
	h := sha256.Sum256(append([]byte(specDomain), raw[:len(raw)-65]...))
	pub, compressed, err := ecdsa.RecoverCompact(raw[len(raw)-65:], h[:])
	if err != nil || !compressed || !bytes.Equal(pub.SerializeCompressed(), alice.PublicKey()) {
		t.Fatalf("signature does not recover to alice over the documented hash: %v", err)
	}

	r, err := NewReceipt(bob, pubOf(alice), s.ID(), 0x1112131415161718, 7, detRand("layout r"))
	if err != nil {
		t.Fatal(err)
	}
	raw = r.Bytes()
	if len(raw) != specHeader+40+specSig || raw[1] != 2 || binary.BigEndian.Uint16(raw[84:86]) != 40 {
		t.Fatalf("receipt: %d bytes, kind %d", len(raw), raw[1])
	}
	id := s.ID()
	if !bytes.Equal(raw[86:118], id[:]) || binary.BigEndian.Uint64(raw[118:126]) != 0x1112131415161718 {
		t.Fatal("receipt body is not ID ‖ received_at")
	}
	if binary.BigEndian.Uint64(raw[68:76]) != 7 {
		t.Fatal("receipt sent_at")
	}
}

// TestSealKnownAnswer: the envelopes Seal makes open with a key derived by
// golang.org/x/crypto/hkdf and decred's ECDH as documented, and envelopes built
// that way in the test open with Open. Together: the format is what is produced
// and what is accepted.
func TestSealKnownAnswer(t *testing.T) {
	alice, bob := testKey(t, "alice"), testKey(t, "bob")
	uni := mustText(t, alice, pubOf(bob), "for bob only", 1, "kat uni")
	all := mustText(t, alice, [33]byte{}, "for everyone", 2, "kat all")

	for _, c := range []struct {
		name string
		s    *Signed
	}{{"unicast", uni}, {"broadcast", all}} {
		sealed := mustSeal(t, c.s, testPSK, "kat "+c.name)
		plain, err := refOpen(t, sealed, bob, testPSK)
		if err != nil {
			t.Fatalf("%s: independent decryption failed: %v", c.name, err)
		}
		if !bytes.Equal(plain, c.s.Bytes()) {
			t.Fatalf("%s: plaintext is not the signed message", c.name)
		}
	}

	// Unicast built by hand: an ephemeral key of our choosing, the shared secret
	// from decred (sender's side), HKDF from x/crypto, ChaCha20-Poly1305 with a
	// zero nonce and the 35 header bytes as AAD.
	eph := secp256k1.PrivKeyFromBytes(bytes.Repeat([]byte{0x42}, 32))
	header := append([]byte{1, 1}, eph.PubKey().SerializeCompressed()...)
	salt := append(bytes.Clone(header[2:]), bob.PublicKey()...)
	key := make([]byte, 32)
	io.ReadFull(xhkdf.New(sha256.New, refECDH(t, eph, bob.PublicKey()), salt, []byte(specSeal)), key)
	aead, _ := chacha20poly1305.New(key)
	sealed := aead.Seal(bytes.Clone(header), make([]byte, 12), uni.Bytes(), header)
	o, err := Open(sealed, bob, [32]byte{})
	if err != nil || o.ID() != uni.ID() {
		t.Fatalf("hand-built unicast: %v", err)
	}

	// Broadcast built by hand: key from the PSK with no salt, XChaCha20-Poly1305,
	// a nonce of our choosing, the 2 header bytes as AAD.
	key = make([]byte, 32)
	io.ReadFull(xhkdf.New(sha256.New, testPSK[:], nil, []byte(specBcast)), key)
	xaead, _ := chacha20poly1305.NewX(key)
	header = append([]byte{1, 2}, bytes.Repeat([]byte{7}, 24)...)
	sealed = xaead.Seal(bytes.Clone(header), header[2:], all.Bytes(), header[:2])
	o, err = Open(sealed, nil, testPSK)
	if err != nil || o.ID() != all.ID() {
		t.Fatalf("hand-built broadcast: %v", err)
	}
	// And the AAD is really the header: the same ciphertext with the version
	// byte left out of the AAD does not open.
	bad := xaead.Seal(bytes.Clone(header), header[2:], all.Bytes(), header[1:2])
	if _, err := Open(bad, nil, testPSK); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("envelope with another AAD: %v, want ErrDecrypt", err)
	}
}

// openFails requires Open to refuse with one of the given errors and to return
// no message.
func openFails(t *testing.T, what string, sealed []byte, self *identity.Key, psk [32]byte, want ...error) {
	t.Helper()
	s, err := Open(sealed, self, psk)
	if s != nil || err == nil {
		t.Fatalf("%s: Open accepted it (%v)", what, err)
	}
	for _, w := range want {
		if errors.Is(err, w) {
			return
		}
	}
	t.Fatalf("%s: Open: %v, want one of %v", what, err, want)
}

// TestTamper: changing any byte of a sealed message, in two ways, or its length
// makes Open fail with ErrDecrypt or ErrMalformed, never with a message.
func TestTamper(t *testing.T) {
	alice, bob := testKey(t, "alice"), testKey(t, "bob")
	for _, s := range []*Signed{
		mustText(t, alice, pubOf(bob), "do not change me", 5, "tamper uni"),
		mustText(t, alice, [33]byte{}, "nor me", 6, "tamper all"),
	} {
		sealed := mustSeal(t, s, testPSK, "tamper")
		if _, err := Open(sealed, bob, testPSK); err != nil {
			t.Fatalf("untampered: %v", err)
		}
		for i := range sealed {
			for _, x := range []byte{0x01, 0xff} {
				b := bytes.Clone(sealed)
				b[i] ^= x
				openFails(t, fmt.Sprintf("byte %d ^ %#x", i, x), b, bob, testPSK, ErrDecrypt, ErrMalformed)
			}
		}
		for n := range len(sealed) {
			openFails(t, "truncated", sealed[:n], bob, testPSK, ErrDecrypt, ErrMalformed)
		}
		openFails(t, "extended", append(bytes.Clone(sealed), 0), bob, testPSK, ErrDecrypt, ErrMalformed)
	}
}

// TestForged: a message whose signature is not by its from key, or is a
// non-canonical twin of a genuine one, is ErrSignature, bare or sealed.
func TestForged(t *testing.T) {
	alice, bob, carol := testKey(t, "alice"), testKey(t, "bob"), testKey(t, "carol")
	// Carol writes a message claiming to be from Bob, and signs it with her key.
	claim := mustText(t, bob, pubOf(alice), "send the keys to carol", 9, "forged").Bytes()
	forged := resign(t, carol, claim[:len(claim)-specSig])
	if _, err := ParseSigned(forged); !errors.Is(err, ErrSignature) {
		t.Fatalf("forged: ParseSigned: %v, want ErrSignature", err)
	}
	sealed, err := sealTo(forged, alice.PublicKey(), detRand("forged"))
	if err != nil {
		t.Fatal(err)
	}
	openFails(t, "forged, sealed", sealed, alice, testPSK, ErrSignature)
	// The same as a broadcast, sealed with the fleet PSK Carol holds.
	bclaim := mustText(t, bob, [33]byte{}, "everyone: obey carol", 9, "forged b").Bytes()
	sealed, err = sealBroadcast(resign(t, carol, bclaim[:len(bclaim)-specSig]), testPSK, detRand("forged b"))
	if err != nil {
		t.Fatal(err)
	}
	openFails(t, "forged broadcast, sealed", sealed, alice, testPSK, ErrSignature)

	// A genuine signature over different content.
	genuine := mustText(t, bob, pubOf(alice), "hello", 9, "genuine").Bytes()
	spliced := append(bytes.Clone(claim[:len(claim)-specSig]), genuine[len(genuine)-specSig:]...)
	if _, err := ParseSigned(spliced); !errors.Is(err, ErrSignature) {
		t.Fatalf("spliced signature: %v, want ErrSignature", err)
	}

	// Twins of a genuine signature that decred's RecoverCompact accepts as
	// Bob's, but that would give the same message a second encoding and ID.
	sig := genuine[len(genuine)-specSig:]
	n := secp256k1.S256().N
	highS := bytes.Clone(sig)
	highS[0] = 31 + ((highS[0] - 31) ^ 1) // -s belongs to -R: the other y parity
	new(big.Int).Sub(n, new(big.Int).SetBytes(sig[33:])).FillBytes(highS[33:])
	uncompressed := bytes.Clone(sig)
	uncompressed[0] -= 4
	h := sha256.Sum256(append([]byte(specDomain), genuine[:len(genuine)-specSig]...))
	for name, twin := range map[string][]byte{"high S": highS, "uncompressed flag": uncompressed} {
		pub, _, err := ecdsa.RecoverCompact(twin, h[:])
		if err != nil || !bytes.Equal(pub.SerializeCompressed(), bob.PublicKey()) {
			t.Fatalf("%s: decred does not recover Bob's key: the test case is wrong (%v)", name, err)
		}
		b := append(bytes.Clone(genuine[:len(genuine)-specSig]), twin...)
		if _, err := ParseSigned(b); !errors.Is(err, ErrSignature) {
			t.Errorf("%s twin: ParseSigned: %v, want ErrSignature", name, err)
		}
	}
	for _, hdr := range []byte{0, 26, 35, 0xff} {
		b := bytes.Clone(genuine)
		b[len(b)-specSig] = hdr
		if _, err := ParseSigned(b); !errors.Is(err, ErrSignature) {
			t.Errorf("signature header %d: %v, want ErrSignature", hdr, err)
		}
	}
}

// TestRewrap: a recipient cannot pass on what it received as if it had been
// written to someone else: the mode and the inner to must agree.
func TestRewrap(t *testing.T) {
	alice, carol, dave := testKey(t, "alice"), testKey(t, "carol"), testKey(t, "dave")
	toCarol := mustText(t, alice, pubOf(carol), "for carol", 1, "rewrap")
	got, err := Open(mustSeal(t, toCarol, testPSK, "rewrap"), carol, testPSK)
	if err != nil {
		t.Fatal(err)
	}
	// Carol re-seals Alice's message to Dave, and to the whole fleet.
	toDave, err := sealTo(got.Bytes(), dave.PublicKey(), detRand("rewrap dave"))
	if err != nil {
		t.Fatal(err)
	}
	openFails(t, "unicast for carol re-sealed to dave", toDave, dave, testPSK, ErrNotForUs)
	toAll, err := sealBroadcast(got.Bytes(), testPSK, detRand("rewrap all"))
	if err != nil {
		t.Fatal(err)
	}
	openFails(t, "unicast for carol re-sealed as broadcast", toAll, dave, testPSK, ErrNotForUs)
	openFails(t, "unicast for carol re-sealed as broadcast, carol opens", toAll, carol, testPSK, ErrNotForUs)

	// A broadcast re-sealed to one node is refused by that node too.
	bcast := mustText(t, alice, [33]byte{}, "for all", 1, "rewrap b")
	oneOff, err := sealTo(bcast.Bytes(), dave.PublicKey(), detRand("rewrap b dave"))
	if err != nil {
		t.Fatal(err)
	}
	openFails(t, "broadcast re-sealed to dave", oneOff, dave, testPSK, ErrNotForUs)
}

// TestWrongKey: a unicast opened by another node, or a broadcast under another
// PSK, does not decrypt.
func TestWrongKey(t *testing.T) {
	alice, carol, dave := testKey(t, "alice"), testKey(t, "carol"), testKey(t, "dave")
	uni := mustSeal(t, mustText(t, alice, pubOf(carol), "for carol", 1, "wk"), testPSK, "wk")
	openFails(t, "dave opens carol's", uni, dave, testPSK, ErrDecrypt)
	openFails(t, "alice opens what she sent carol", uni, alice, testPSK, ErrDecrypt)
	all := mustSeal(t, mustText(t, alice, [33]byte{}, "for all", 1, "wk b"), testPSK, "wk b")
	openFails(t, "broadcast, other psk", all, carol, otherPSK, ErrDecrypt)
	if _, err := Open(all, carol, testPSK); err != nil {
		t.Fatalf("broadcast, right psk: %v", err)
	}
	// A unicast does not depend on the PSK (it crosses fleets only with keys).
	if _, err := Open(uni, carol, otherPSK); err != nil {
		t.Fatalf("unicast, other psk: %v", err)
	}
}

// TestTextLimits: the byte limit, UTF-8 validity, emptiness and NUL.
func TestTextLimits(t *testing.T) {
	alice, bob := testKey(t, "alice"), testKey(t, "bob")
	ok := map[string]string{
		"1000 ASCII bytes":      strings.Repeat("a", 1000),
		"one byte":              "x",
		"333 3-byte runes":      strings.Repeat("\u20ac", 333),     // 999 bytes
		"250 4-byte runes":      strings.Repeat("\U0001F6F0", 250), // 1000 bytes
		"newlines and tabs":     "a\nb\tc",
		"U+FFFD itself":         "\uFFFD",
		"last valid code point": "\U0010FFFF",
	}
	for name, text := range ok {
		s, err := NewText(alice, pubOf(bob), text, 0, detRand(name))
		if err != nil {
			t.Errorf("%s: NewText: %v", name, err)
			continue
		}
		o, err := Open(mustSeal(t, s, testPSK, name), bob, testPSK)
		if err != nil || o.Text != text {
			t.Errorf("%s: round trip: %v", name, err)
		}
	}
	bad := map[string]string{
		"empty":             "",
		"1001 bytes":        strings.Repeat("a", 1001),
		"334 3-byte runes":  strings.Repeat("\u20ac", 334), // 1002 bytes
		"invalid byte 0xff": "abc\xff",
		"lone continuation": "\x80",
		"truncated rune":    "\u20ac"[:2],
		"overlong slash":    "\xc0\xaf",
		"surrogate half":    "\xed\xa0\x80",
		"above U+10FFFF":    "\xf4\x90\x80\x80",
		"NUL":               "a\x00b",
		"NUL alone":         "\x00",
	}
	for name, text := range bad {
		if s, err := NewText(alice, pubOf(bob), text, 0, detRand(name)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: NewText = %v, %v; want ErrMalformed", name, s, err)
		}
		// And on the wire, signed properly: the decoder refuses it too.
		good := mustText(t, alice, pubOf(bob), "x", 0, "limits").Bytes()
		unsigned := append(bytes.Clone(good[:84]), byte(len(text)>>8), byte(len(text)))
		unsigned = append(unsigned, text...)
		if len(unsigned)+specSig > 0xffff {
			continue
		}
		if _, err := ParseSigned(resign(t, alice, unsigned)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: ParseSigned: %v, want ErrMalformed", name, err)
		}
	}
	// The largest message is exactly MaxSealed sealed, and MaxSealed is the
	// documented arithmetic.
	if MaxSealed != specMaxSeal || MaxText != 1000 {
		t.Fatalf("MaxSealed %d, MaxText %d; want %d, 1000", MaxSealed, MaxText, specMaxSeal)
	}
	big := mustSeal(t, mustText(t, alice, pubOf(bob), strings.Repeat("a", 1000), 0, "big"), testPSK, "big")
	if len(big) != MaxSealed {
		t.Fatalf("largest sealed message is %d bytes, MaxSealed %d", len(big), MaxSealed)
	}
	if _, err := Open(big, bob, testPSK); err != nil {
		t.Fatal(err)
	}
	// A valid envelope with one byte more is refused as too long, before the
	// AEAD would have refused it.
	openFails(t, "MaxSealed+1", append(big, 0), bob, testPSK, ErrMalformed)
}

// TestParseStrict: every layout rule, each on an otherwise valid message that is
// re-signed after the change, so that the refusal is the rule's and not the
// signature's; the unchanged re-signed message is accepted (the helper works).
func TestParseStrict(t *testing.T) {
	alice, bob := testKey(t, "alice"), testKey(t, "bob")
	text := mustText(t, alice, pubOf(bob), "strict", 3, "strict").Bytes()
	rcpt, err := NewReceipt(alice, pubOf(bob), ID{1, 2, 3}, 4, 5, detRand("strict r"))
	if err != nil {
		t.Fatal(err)
	}
	receipt := rcpt.Bytes()
	unsigned := func(b []byte) []byte { return bytes.Clone(b[:len(b)-specSig]) }
	set := func(b []byte, off int, v ...byte) []byte { copy(b[off:], v); return b }
	be64 := func(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
	withBody := func(b []byte, body []byte) []byte {
		u := append(unsigned(b)[:84], byte(len(body)>>8), byte(len(body)))
		return append(u, body...)
	}
	offCurve := append([]byte{2}, make([]byte, 32)...) // x = 0: 7 is not a square mod p
	if _, err := secp256k1.ParsePubKey(offCurve); err == nil {
		t.Fatal("x = 0 is on the curve: the test case is wrong")
	}

	for _, b := range [][]byte{text, receipt} {
		if _, err := ParseSigned(resign(t, alice, unsigned(b))); err != nil {
			t.Fatalf("re-signed unchanged message refused: %v", err)
		}
	}
	for name, u := range map[string][]byte{
		"version 0":               set(unsigned(text), 0, 0),
		"version 2":               set(unsigned(text), 0, 2),
		"kind 0":                  set(unsigned(text), 1, 0),
		"kind 3":                  set(unsigned(text), 1, 3),
		"text kind, receipt body": set(unsigned(receipt), 1, 1),
		"receipt kind, text body": set(unsigned(text), 1, 2),
		"receipt body 39 bytes":   withBody(receipt, make([]byte, 39)),
		"receipt body 41 bytes":   withBody(receipt, make([]byte, 41)),
		"body_len one too many":   set(unsigned(text), 85, byte(len("strict")+1)),
		"body_len one too few":    set(unsigned(text), 85, byte(len("strict")-1)),
		"body_len 0xffff":         set(unsigned(text), 84, 0xff, 0xff),
		"trailing byte in body":   append(unsigned(text), 'x'),
		"from all zero":           set(unsigned(text), 2, make([]byte, 33)...),
		"from off the curve":      set(unsigned(text), 2, offCurve...),
		"from with prefix 4":      set(unsigned(text), 2, 4),
		"to off the curve":        set(unsigned(text), 35, offCurve...),
		"to with prefix 0 only":   set(unsigned(text), 35, 0),
		"sent_at negative":        set(unsigned(text), 68, be64(1<<63)...),
		"sent_at -1":              set(unsigned(text), 68, be64(^uint64(0))...),
		"received_at negative":    set(unsigned(receipt), 118, be64(1<<63)...),
	} {
		b := resign(t, alice, u)
		if s, err := ParseSigned(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: ParseSigned = %v, %v; want ErrMalformed", name, s, err)
		}
	}
	// Trailing bytes after the signature, and lengths out of range.
	for name, b := range map[string][]byte{
		"nil":                 nil,
		"empty":               {},
		"one byte":            {1},
		"header only":         text[:86],
		"no signature":        unsigned(text),
		"trailing byte":       append(bytes.Clone(text), 0),
		"one byte short":      text[:len(text)-1],
		"1152 bytes":          make([]byte, 1152),
		"oversized, mostly a": append(bytes.Clone(text[:86]), bytes.Repeat([]byte("a"), 5000)...),
	} {
		if s, err := ParseSigned(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: ParseSigned = %v, %v; want ErrMalformed", name, s, err)
		}
	}
}

// TestParseSignedCopies: the Signed owns its bytes; reusing the input buffer
// does not change it.
func TestParseSignedCopies(t *testing.T) {
	b := mustText(t, testKey(t, "alice"), [33]byte{}, "mine", 1, "copy").Bytes()
	s, err := ParseSigned(b)
	if err != nil {
		t.Fatal(err)
	}
	id := s.ID()
	clear(b)
	if s.ID() != id || s.Text != "mine" {
		t.Fatal("Signed shares the caller's buffer")
	}
}

// TestNewErrors: arguments that would make an invalid message, and failing
// randomness, are errors, never a message.
func TestNewErrors(t *testing.T) {
	alice := testKey(t, "alice")
	var offCurve [33]byte
	offCurve[0] = 2 // x = 0: no point
	var prefix4 [33]byte
	copy(prefix4[:], alice.PublicKey())
	prefix4[0] = 4
	bob := pubOf(testKey(t, "bob"))
	for name, f := range map[string]func() (*Signed, error){
		"nil from":             func() (*Signed, error) { return NewText(nil, bob, "hi", 0, nil) },
		"to off the curve":     func() (*Signed, error) { return NewText(alice, offCurve, "hi", 0, nil) },
		"to prefix 4":          func() (*Signed, error) { return NewText(alice, prefix4, "hi", 0, nil) },
		"negative sent_at":     func() (*Signed, error) { return NewText(alice, bob, "hi", -1, nil) },
		"receipt, nil from":    func() (*Signed, error) { return NewReceipt(nil, bob, ID{}, 0, 0, nil) },
		"receipt, bad to":      func() (*Signed, error) { return NewReceipt(alice, offCurve, ID{}, 0, 0, nil) },
		"negative received_at": func() (*Signed, error) { return NewReceipt(alice, bob, ID{}, -5, 0, nil) },
		"receipt, neg sent_at": func() (*Signed, error) { return NewReceipt(alice, bob, ID{}, 0, -5, nil) },
	} {
		if s, err := f(); !errors.Is(err, ErrMalformed) || s != nil {
			t.Errorf("%s: %v, %v; want ErrMalformed", name, s, err)
		}
	}
	boom := errors.New("entropy gone")
	if s, err := NewText(alice, bob, "hi", 0, iotest.ErrReader(boom)); !errors.Is(err, boom) || s != nil {
		t.Errorf("failing rand: %v, %v", s, err)
	}
	// nil rand is crypto/rand: works, and two messages differ.
	a, err1 := NewText(alice, bob, "hi", 0, nil)
	b, err2 := NewText(alice, bob, "hi", 0, nil)
	if err1 != nil || err2 != nil || a.ID() == b.ID() {
		t.Fatalf("crypto/rand: %v, %v", err1, err2)
	}

	// Seal: no message, and failing randomness.
	for name, s := range map[string]*Signed{"nil": nil, "zero": {}, "fields only": {Message: a.Message}} {
		if out, err := Seal(s, testPSK, nil); !errors.Is(err, ErrMalformed) || out != nil {
			t.Errorf("Seal(%s): %x, %v; want ErrMalformed", name, out, err)
		}
	}
	all := mustText(t, alice, [33]byte{}, "hi", 0, "all")
	for _, s := range []*Signed{a, all} {
		if out, err := Seal(s, testPSK, iotest.ErrReader(boom)); !errors.Is(err, boom) || out != nil {
			t.Errorf("Seal with failing rand: %x, %v", out, err)
		}
	}
	// Seal follows the encoding, not fields changed afterwards.
	changed := *all
	changed.To = bob
	sealed := mustSeal(t, &changed, testPSK, "changed")
	if sealed[1] != 2 {
		t.Fatalf("Seal followed the changed To: mode %d", sealed[1])
	}
}

// TestOpenErrors: layout errors of the envelope are ErrMalformed, before any
// cryptography; a unicast needs our key.
func TestOpenErrors(t *testing.T) {
	alice, bob := testKey(t, "alice"), testKey(t, "bob")
	uni := mustSeal(t, mustText(t, alice, pubOf(bob), "x", 0, "oe"), testPSK, "oe")
	all := mustSeal(t, mustText(t, alice, [33]byte{}, "x", 0, "oe b"), testPSK, "oe b")
	set := func(b []byte, off int, v ...byte) []byte { b = bytes.Clone(b); copy(b[off:], v); return b }
	for name, b := range map[string][]byte{
		"nil":                     nil,
		"one byte":                {1},
		"header only":             {1, 1},
		"version 0":               set(uni, 0, 0),
		"version 2":               set(all, 0, 2),
		"mode 0":                  set(uni, 1, 0),
		"mode 3":                  set(uni, 1, 3),
		"unicast too short":       uni[:2+33+152+16-1],
		"broadcast too short":     all[:2+24+152+16-1],
		"MaxSealed+1 zeros":       append([]byte{1, 1}, make([]byte, MaxSealed-1)...),
		"broadcast of MaxSealed":  append([]byte{1, 2}, make([]byte, MaxSealed-2)...),
		"ephemeral prefix 4":      set(uni, 2, 4),
		"ephemeral off the curve": set(uni, 2, append([]byte{2}, make([]byte, 32)...)...),
		"64 KiB":                  make([]byte, 64<<10),
	} {
		openFails(t, name, b, bob, testPSK, ErrMalformed)
	}
	if s, err := Open(uni, nil, testPSK); err == nil || s != nil {
		t.Fatalf("unicast without a key: %v, %v", s, err)
	}
	// A broadcast needs no key.
	if _, err := Open(all, nil, testPSK); err != nil {
		t.Fatal(err)
	}
}

// TestErrorsHideSecrets: no error carries the PSK, a secret key, the text, or
// more than a short description of the input.
func TestErrorsHideSecrets(t *testing.T) {
	alice, bob, carol := testKey(t, "alice"), testKey(t, "bob"), testKey(t, "carol")
	secretText := "the password is hunter2"
	uni := mustSeal(t, mustText(t, alice, pubOf(bob), secretText, 0, "hide"), testPSK, "hide")
	all := mustSeal(t, mustText(t, alice, [33]byte{}, secretText, 0, "hide b"), testPSK, "hide b")
	var errs []error
	add := func(_ any, err error) { errs = append(errs, err) }
	add(Open(uni, carol, testPSK))
	add(Open(all, carol, otherPSK))
	add(Open(append(bytes.Clone(uni), 0), bob, testPSK))
	add(Open(bytes.Repeat([]byte("A"), 5000), bob, testPSK))
	add(ParseSigned(bytes.Repeat([]byte("A"), 5000)))
	add(ParseSigned(append([]byte{1, 1}, bytes.Repeat([]byte("A"), 1000)...)))
	add(NewText(alice, pubOf(bob), strings.Repeat("A", 1001)+secretText, 0, nil))
	add(NewText(alice, pubOf(bob), secretText+"\xff", 0, nil))
	forbidden := []string{
		hex.EncodeToString(testPSK[:8]), hex.EncodeToString(otherPSK[:8]),
		bob.SecretHex()[:16], carol.SecretHex()[:16], alice.SecretHex()[:16],
		"hunter2", "AAAAAAAA",
	}
	for _, err := range errs {
		if err == nil {
			t.Fatal("expected an error")
		}
		msg := err.Error()
		if len(msg) > 200 {
			t.Errorf("error of %d characters: %.80q...", len(msg), msg)
		}
		for _, f := range forbidden {
			if strings.Contains(strings.ToLower(msg), strings.ToLower(f)) {
				t.Errorf("error %q contains %q", msg, f)
			}
		}
	}
}

// TestKindString names the kinds.
func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{KindText: "text", KindReceipt: "receipt", 0: "kind(0)", 9: "kind(9)"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", byte(k), got, want)
		}
	}
}

// TestClearEnvelope: mode 0 is the header and the signed message as it is; it
// opens for its recipient (or anyone, for a broadcast), not for a third node;
// any change to it is refused, and only IsClear calls it clear.
func TestClearEnvelope(t *testing.T) {
	alice, bob, carol := testKey(t, "alice"), testKey(t, "bob"), testKey(t, "carol")
	uni := mustText(t, alice, pubOf(bob), "over the radio", 7, "clear uni")
	all := mustText(t, alice, [33]byte{}, "to every station", 8, "clear all")
	c, err := Clear(uni)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c, append([]byte{1, 0}, uni.Bytes()...)) {
		t.Fatal("the clear envelope is not version, mode 0 and the signed message")
	}
	if !IsClear(c) || IsClear(mustSeal(t, uni, testPSK, "sealed")) || IsClear(mustSeal(t, all, testPSK, "sealed all")) || IsClear(nil) {
		t.Fatal("IsClear")
	}
	got, err := Open(c, bob, testPSK)
	if err != nil || got.ID() != uni.ID() || got.Text != "over the radio" {
		t.Fatalf("open at the recipient: %v", err)
	}
	if _, err := Open(c, carol, testPSK); !errors.Is(err, ErrNotForUs) {
		t.Fatalf("open at a third node: %v", err)
	}
	if _, err := Open(c, nil, testPSK); !errors.Is(err, ErrNotForUs) {
		t.Fatalf("open without a key: %v", err)
	}
	ca, _ := Clear(all)
	if got, err := Open(ca, nil, [32]byte{}); err != nil || !got.IsBroadcast() {
		t.Fatalf("a clear broadcast opens for anyone, no key needed: %v", err)
	}
	for i := 2; i < len(c); i++ {
		b := bytes.Clone(c)
		b[i] ^= 0x01
		openFails(t, fmt.Sprintf("byte %d", i), b, bob, testPSK, ErrSignature, ErrMalformed, ErrNotForUs)
	}
	for n := range len(c) {
		openFails(t, "truncated", c[:n], bob, testPSK, ErrMalformed)
	}
	if _, err := Clear(nil); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Clear(nil): %v", err)
	}
}
