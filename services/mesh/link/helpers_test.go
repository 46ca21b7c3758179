package link

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

var (
	testPSK  = [32]byte{1, 2, 3, 4, 5, 6, 7, 8}
	testTime = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
)

// detRand is a deterministic byte stream (SHA-256 in counter mode) so that fuzz
// targets can rebuild the same handshake state every iteration.
type detRand struct {
	seed [32]byte
	ctr  uint64
	buf  []byte
}

func newDetRand(seed string) *detRand { return &detRand{seed: sha256.Sum256([]byte(seed))} }

func (r *detRand) Read(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if len(r.buf) == 0 {
			var b [40]byte
			copy(b[:], r.seed[:])
			binary.BigEndian.PutUint64(b[32:], r.ctr)
			r.ctr++
			sum := sha256.Sum256(b[:])
			r.buf = sum[:]
		}
		c := copy(p, r.buf)
		p, r.buf = p[c:], r.buf[c:]
	}
	return n, nil
}

// keyFrom makes a deterministic private key.
func keyFrom(tb testing.TB, seed string) *secp256k1.PrivateKey {
	tb.Helper()
	k, err := secp256k1.GeneratePrivateKeyFromRand(newDetRand(seed))
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// handshake runs a full handshake between fresh handshakers for keys "a" and "b"
// and returns the initiator's and responder's sessions.
func handshake(tb testing.TB, cfgA, cfgB Config) (a, b *Session) {
	tb.Helper()
	if cfgA.Private == nil {
		cfgA.Private = keyFrom(tb, "a")
	}
	if cfgB.Private == nil {
		cfgB.Private = keyFrom(tb, "b")
	}
	ha, hb := NewHandshaker(cfgA), NewHandshaker(cfgB)
	return handshakeWith(tb, ha, hb, 1)
}

func handshakeWith(tb testing.TB, ha, hb *Handshaker, ts uint64) (a, b *Session) {
	tb.Helper()
	msg, p, err := ha.Initiate(hb.PublicKey(), 0x1111, ts, []byte("hello"))
	if err != nil {
		tb.Fatal(err)
	}
	resp, b, payload, err := hb.Respond(msg, 0x2222, testTime, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if string(payload) != "hello" {
		tb.Fatalf("init payload %q", payload)
	}
	a, err = p.Finish(resp, testTime)
	if err != nil {
		tb.Fatal(err)
	}
	return a, b
}

// remac replaces the mac at the end of an Init or Resp with a valid one, so tests and
// fuzzers can get past the mac to the decoders behind it.
func remac(h *Handshaker, msg []byte) []byte {
	if len(msg) < MACLen {
		return msg
	}
	out := append([]byte(nil), msg...)
	m := h.mac(out[:len(out)-MACLen])
	copy(out[len(out)-MACLen:], m[:])
	return out
}

// sealRaw seals an arbitrary plaintext (kind byte and all) in s's current epoch, so
// tests and fuzzers can feed the control-message decoders authenticated garbage.
func sealRaw(s *Session, pt []byte) []byte {
	kp := s.keys.Load().cur
	ctr := kp.sendCtr.Add(1) - 1
	d := make([]byte, HeaderLen, HeaderLen+len(pt)+TagLen)
	d[0], d[1] = TypeData, kp.wire
	binary.BigEndian.PutUint32(d[4:8], s.remoteIndex)
	binary.BigEndian.PutUint64(d[8:16], ctr)
	return kp.send.Seal(d, d[4:16], pt, d[:HeaderLen])
}

// kindOf decrypts a datagram with the receiver's keys without touching its state and
// returns the plaintext kind, or -1.
func kindOf(recv *Session, d []byte) int {
	if len(d) < Overhead+1 {
		return -1
	}
	kp := recv.keys.Load().find(d[1])
	if kp == nil {
		return -1
	}
	pt, err := kp.recv.Open(nil, d[4:16], d[HeaderLen:], d[:HeaderLen])
	if err != nil {
		return -1
	}
	return int(pt[0] &^ kindPadded)
}
