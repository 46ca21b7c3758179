package link

import (
	"testing"
	"time"

	"github.com/flynn/noise"
	"golang.org/x/crypto/chacha20poly1305"
)

// BenchmarkSealOpen1280 and BenchmarkRawAEAD1280 are meant to be compared: the
// session's data path should stay within ~0.7 of one raw ChaCha20-Poly1305 Seal+Open.
func BenchmarkSealOpen1280(b *testing.B) {
	sa, sb := handshake(b, Config{PSK: testPSK}, Config{PSK: testPSK})
	payload := make([]byte, 1280)
	out := make([]byte, 0, 2048)
	buf := make([]byte, 0, 2048)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		d, err := sa.Seal(out[:0], payload)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := sb.Open(buf[:0], d, testTime); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawAEAD1280(b *testing.B) {
	aead, err := chacha20poly1305.New(make([]byte, 32))
	if err != nil {
		b.Fatal(err)
	}
	nonce := make([]byte, chacha20poly1305.NonceSize)
	ad := make([]byte, HeaderLen)
	payload := make([]byte, 1280)
	out := make([]byte, 0, 2048)
	buf := make([]byte, 0, 2048)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		ct := aead.Seal(out[:0], nonce, payload, ad)
		if _, err := aead.Open(buf[:0], nonce, ct, ad); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHandshake(b *testing.B) {
	ha := NewHandshaker(Config{Private: keyFrom(b, "a"), PSK: testPSK})
	hb := NewHandshaker(Config{Private: keyFrom(b, "b"), PSK: testPSK})
	remote := hb.PublicKey()
	ts := uint64(0)
	b.ReportAllocs()
	for b.Loop() {
		ts++
		msg, p, err := ha.Initiate(remote, 1, ts, nil)
		if err != nil {
			b.Fatal(err)
		}
		resp, _, _, err := hb.Respond(msg, 2, testTime, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.Finish(resp, testTime); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkECDH(b *testing.B) {
	priv := keyFrom(b, "a").Serialize()
	pub := keyFrom(b, "b").PubKey().SerializeCompressed()
	for b.Loop() {
		if _, err := ecdh(priv, pub); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHandshakeVsVartime measures full handshakes (Initiate, Respond, Finish: two
// key generations and eight ECDHs) with the constant-time DH against the same code with
// the former variable-time decred DH, alternating the two in one loop so both see the
// same machine load. Metrics: the time per handshake of each, and ct/vartime, the
// ratio of handshakes per second constant-time over variable-time.
func BenchmarkHandshakeVsVartime(b *testing.B) {
	pair := func(cs noise.CipherSuite) (*Handshaker, *Handshaker) {
		ha := NewHandshaker(Config{Private: keyFrom(b, "a"), PSK: testPSK})
		hb := NewHandshaker(Config{Private: keyFrom(b, "b"), PSK: testPSK})
		ha.suite, hb.suite = cs, cs
		return ha, hb
	}
	ctA, ctB := pair(suite)
	vtA, vtB := pair(noise.NewCipherSuite(decredDH{}, noise.CipherChaChaPoly, noise.HashSHA256))
	ts := uint64(0)
	run := func(ha, hb *Handshaker) time.Duration {
		start := time.Now()
		msg, p, err := ha.Initiate(hb.PublicKey(), 1, ts, nil)
		if err != nil {
			b.Fatal(err)
		}
		resp, _, _, err := hb.Respond(msg, 2, testTime, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.Finish(resp, testTime); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	var ct, vt time.Duration
	n := 0
	for b.Loop() {
		ts++
		if n%2 == 0 {
			ct += run(ctA, ctB)
			vt += run(vtA, vtB)
		} else {
			vt += run(vtA, vtB)
			ct += run(ctA, ctB)
		}
		n++
	}
	b.ReportMetric(float64(ct.Nanoseconds())/float64(n), "ns/ct-handshake")
	b.ReportMetric(float64(vt.Nanoseconds())/float64(n), "ns/vartime-handshake")
	b.ReportMetric(vt.Seconds()/ct.Seconds(), "ct/vartime")
}

// BenchmarkECDHVsVartime is BenchmarkHandshakeVsVartime for one ECDH: ecdh against the
// former decred ScalarMultNonConst version, alternating.
func BenchmarkECDHVsVartime(b *testing.B) {
	priv := keyFrom(b, "a").Serialize()
	pub := keyFrom(b, "b").PubKey().SerializeCompressed()
	var ct, vt time.Duration
	n := 0
	for b.Loop() {
		t0 := time.Now()
		if _, err := ecdh(priv, pub); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := ecdhDecred(priv, pub); err != nil {
			b.Fatal(err)
		}
		vt += time.Since(t1)
		ct += t1.Sub(t0)
		n++
	}
	b.ReportMetric(float64(ct.Nanoseconds())/float64(n), "ns/ct-ecdh")
	b.ReportMetric(float64(vt.Nanoseconds())/float64(n), "ns/vartime-ecdh")
	b.ReportMetric(vt.Seconds()/ct.Seconds(), "ct/vartime")
}
