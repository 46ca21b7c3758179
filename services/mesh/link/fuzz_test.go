package link

import (
	"encoding/binary"
	"testing"
	"time"
)

// The fuzz targets take a fix flag (or a raw plaintext) so that mutations get past
// the psk mac / AEAD to the decoders behind them: the test holds the network key, as
// an insider attacker would.

func FuzzHeader(f *testing.F) {
	a, b := handshake(f, Config{PSK: testPSK}, Config{PSK: testPSK})
	ha := NewHandshaker(Config{Private: keyFrom(f, "a"), PSK: testPSK})
	hb := NewHandshaker(Config{Private: keyFrom(f, "b"), PSK: testPSK})
	msg, _, _ := ha.Initiate(hb.PublicKey(), 1, 1, nil)
	resp, _, _, _ := hb.Respond(msg, 2, testTime, nil)
	d, _ := a.Seal(nil, []byte("x"))
	_ = b
	for _, s := range [][]byte{msg, resp, d, nil, {TypeData}, {0xff, 1, 2, 3}} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		typ, idx, ok := Header(data)
		if !ok {
			return
		}
		if len(data) == 0 || typ != data[0] {
			t.Fatalf("type %d", typ)
		}
		switch typ {
		case TypeInit:
			if idx != 0 || len(data) < InitLen {
				t.Fatal("init")
			}
		case TypeResp:
			if len(data) < RespLen || idx != binary.BigEndian.Uint32(data[8:12]) {
				t.Fatal("resp")
			}
		case TypeData:
			if len(data) < Overhead+1 || idx != binary.BigEndian.Uint32(data[4:8]) {
				t.Fatal("data")
			}
		case TypeClearInit:
			if idx != 0 || len(data) < ClearInitLen {
				t.Fatal("clear init")
			}
		case TypeClearResp:
			if len(data) < ClearRespLen || idx != binary.BigEndian.Uint32(data[8:12]) {
				t.Fatal("clear resp")
			}
		case TypeClearData:
			if len(data) < ClearOverhead+1 || idx != binary.BigEndian.Uint32(data[4:8]) {
				t.Fatal("clear data")
			}
		default:
			t.Fatalf("ok for type %d", typ)
		}
	})
}

func FuzzRespond(f *testing.F) {
	ha := NewHandshaker(Config{Private: keyFrom(f, "a"), PSK: testPSK})
	hb := NewHandshaker(Config{Private: keyFrom(f, "b"), PSK: testPSK})
	for i, p := range [][]byte{nil, []byte("payload"), make([]byte, MaxInitPayload)} {
		msg, _, err := ha.Initiate(hb.PublicKey(), uint32(i), uint64(i), p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(msg, false)
		f.Add(msg, true)
		f.Add(msg[:len(msg)-1], true)
	}
	f.Add([]byte{TypeInit}, true)
	f.Fuzz(func(t *testing.T, data []byte, fix bool) {
		hb.mu.Lock()
		hb.macs = macCache{} // forget: every iteration starts from a fresh responder
		hb.stamps.init()
		hb.stamps.lru.Init()
		hb.mu.Unlock()
		if fix {
			data = remac(hb, data)
		}
		resp, s, payload, err := hb.Respond(data, 5, testTime, nil)
		if err != nil {
			if s != nil || resp != nil {
				t.Fatal("state returned with an error")
			}
			return
		}
		if len(resp) != RespLen || s == nil || len(payload) > MaxInitPayload || len(s.Remote()) != KeyLen {
			t.Fatalf("resp %d bytes, payload %d", len(resp), len(payload))
		}
		if _, _, _, err := hb.Respond(data, 5, testTime, nil); err == nil {
			t.Fatal("same Init accepted twice")
		}
	})
}

func FuzzFinish(f *testing.F) {
	ha := NewHandshaker(Config{Private: keyFrom(f, "a"), PSK: testPSK})
	hb := NewHandshaker(Config{Private: keyFrom(f, "b"), PSK: testPSK})
	// A deterministic ephemeral on both sides makes the seed Resp valid for the
	// Pending rebuilt in every iteration.
	initiate := func() *Pending {
		ha.rand = newDetRand("fuzz initiator")
		_, p, err := ha.Initiate(hb.PublicKey(), 7, 1, nil)
		if err != nil {
			f.Fatal(err)
		}
		return p
	}
	ha.rand = newDetRand("fuzz initiator")
	msg, _, _ := ha.Initiate(hb.PublicKey(), 7, 1, nil)
	hb.rand = newDetRand("fuzz responder")
	resp, _, _, err := hb.Respond(msg, 9, testTime, nil)
	if err != nil {
		f.Fatal(err)
	}
	if _, err := initiate().Finish(resp, testTime); err != nil {
		f.Fatal("seed Resp does not finish the rebuilt Pending: ", err)
	}
	f.Add(resp, false)
	f.Add(resp, true)
	f.Add(resp[:RespLen-1], true)
	f.Add(append(append([]byte(nil), resp...), 0), true)
	p := initiate()
	f.Fuzz(func(t *testing.T, data []byte, fix bool) {
		if fix {
			data = remac(ha, data)
		}
		s, err := p.Finish(data, testTime)
		if err != nil {
			if s != nil {
				t.Fatal("session with an error")
			}
			return
		}
		if !s.Initiator() || s.LocalIndex() != 7 || len(s.Remote()) != KeyLen {
			t.Fatal("bad session")
		}
		p = initiate() // finished: the next iteration needs a fresh one
	})
}

func FuzzOpen(f *testing.F) {
	a, b := handshake(f, Config{PSK: testPSK}, Config{PSK: testPSK})
	pa, pb := handshake(f, Config{PSK: testPSK, Padding: 64}, Config{PSK: testPSK, Padding: 64})
	now := testTime.Add(RekeyInterval)
	for _, s := range []struct{ from, to *Session }{{a, b}, {b, a}, {pa, pb}, {pb, pa}} {
		d, _ := s.from.Seal(nil, []byte("payload"))
		f.Add(d, []byte(nil))
		d, _ = s.from.Seal(nil, nil)
		f.Add(d, []byte(nil))
	}
	// Real control messages: a rekey init, its ack and the confirm (not delivered,
	// so the fuzzer's copies are fresh).
	for _, s := range []struct{ i, r *Session }{{a, b}, {pa, pb}} {
		init := s.i.Tick(now, 0)
		f.Add(init, []byte(nil))
		i2, r2 := handshake(f, Config{PSK: testPSK, Padding: s.i.padding}, Config{PSK: testPSK, Padding: s.i.padding})
		d, _ := i2.Seal(nil, []byte("t"))
		r2.Open(nil, d, now)
		init2 := i2.Tick(now, 0)
		_, ack, _ := r2.Open(nil, init2, now)
		_, confirm, _ := i2.Open(nil, ack, now)
		f.Add(ack, []byte(nil))
		f.Add(confirm, []byte(nil))
	}
	pub := keyFrom(f, "e").PubKey().SerializeCompressed()
	body := binary.BigEndian.AppendUint64(nil, 1)
	f.Add([]byte(nil), append(append([]byte{KindRekeyInit}, body...), pub...))
	f.Add([]byte(nil), append(append([]byte{KindRekeyAck}, body...), pub...))
	f.Add([]byte(nil), []byte{KindRekeyConfirm})
	f.Add([]byte(nil), []byte{KindPayload, 0, 3, 'a', 'b', 'c'})
	f.Add([]byte(nil), []byte{KindPayload, 0xff, 0xff})
	f.Add([]byte(nil), []byte{KindPayload | kindPadded, 0, 3, 'a', 'b', 'c', 0, 0})
	f.Add([]byte(nil), []byte{KindPayload | kindPadded, 0xff, 0xff})
	f.Add([]byte(nil), append(append([]byte{KindRekeyInit | kindPadded, 0, rekeyBodyLen}, body...), pub...))
	f.Add([]byte(nil), []byte{99})
	check := func(t *testing.T, s *Session, d []byte, now time.Time) {
		payload, reply, err := s.Open(nil, d, now)
		if err != nil && (payload != nil || reply != nil && len(reply) < Overhead+1) {
			t.Fatalf("Open: %v with payload %v reply %v", err, payload, reply)
		}
		if reply != nil && len(reply) < Overhead+1 {
			t.Fatal("runt reply")
		}
		// In place on a copy.
		c := append([]byte(nil), d...)
		s.Open(c[:0], c, now)
	}
	f.Fuzz(func(t *testing.T, datagram []byte, raw []byte) {
		for _, s := range []*Session{a, b, pa, pb} {
			check(t, s, datagram, now)
		}
		if len(raw) == 0 {
			return
		}
		for _, s := range []struct{ from, to *Session }{{a, b}, {b, a}, {pa, pb}, {pb, pa}} {
			check(t, s.to, sealRaw(s.from, raw), now)
		}
		now = now.Add(10 * time.Millisecond)
		for _, s := range []*Session{a, pa} {
			s.Tick(now, 0)
		}
	})
}
