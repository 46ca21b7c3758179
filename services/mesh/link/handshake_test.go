package link

import (
	"bytes"
	"errors"
	"testing"
)

func TestHandshakeAndData(t *testing.T) {
	ka, kb := keyFrom(t, "a"), keyFrom(t, "b")
	a, b := handshake(t, Config{Private: ka, PSK: testPSK}, Config{Private: kb, PSK: testPSK})
	if !bytes.Equal(a.Remote(), kb.PubKey().SerializeCompressed()) {
		t.Error("initiator's Remote is not the responder's key")
	}
	if !bytes.Equal(b.Remote(), ka.PubKey().SerializeCompressed()) {
		t.Error("responder's Remote is not the initiator's key")
	}
	if !a.Initiator() || b.Initiator() {
		t.Error("Initiator flags")
	}
	if a.LocalIndex() != 0x1111 || a.RemoteIndex() != 0x2222 || b.LocalIndex() != 0x2222 || b.RemoteIndex() != 0x1111 {
		t.Errorf("indexes a %x/%x b %x/%x", a.LocalIndex(), a.RemoteIndex(), b.LocalIndex(), b.RemoteIndex())
	}
	for i, c := range []struct {
		from, to *Session
		msg      string
	}{{a, b, "ping"}, {b, a, "pong"}, {a, b, ""}, {b, a, string(make([]byte, 1280))}} {
		d, err := c.from.Seal(nil, []byte(c.msg))
		if err != nil {
			t.Fatal(err)
		}
		if len(d) != len(c.msg)+Overhead+1 {
			t.Errorf("%d: datagram is %d bytes for %d of payload", i, len(d), len(c.msg))
		}
		typ, idx, ok := Header(d)
		if !ok || typ != TypeData || idx != c.to.LocalIndex() {
			t.Errorf("%d: Header = %d %x %v", i, typ, idx, ok)
		}
		p, reply, err := c.to.Open(nil, d, testTime)
		if err != nil || reply != nil {
			t.Fatalf("%d: Open: %v %v", i, err, reply)
		}
		if p == nil || string(p) != c.msg {
			t.Errorf("%d: got %q (nil %v), want %q", i, p, p == nil, c.msg)
		}
	}
	st := a.Stats()
	if st.SentPackets != 2 || st.RecvPackets != 2 || st.Epoch != 0 || st.SentBytes != uint64(2*Overhead+2+4) {
		t.Errorf("stats %+v", st)
	}
}

// TestWrongPSK: a node without the network key gets no answer, and costs no ECDH.
func TestWrongPSK(t *testing.T) {
	ha := NewHandshaker(Config{Private: keyFrom(t, "a"), PSK: [32]byte{9}})
	hb := NewHandshaker(Config{Private: keyFrom(t, "b"), PSK: testPSK})
	msg, _, err := ha.Initiate(hb.PublicKey(), 1, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	before := ecdhCalls.Load()
	if _, _, _, err := hb.Respond(msg, 2, testTime, nil); !errors.Is(err, ErrMAC) {
		t.Fatalf("Respond: %v, want ErrMAC", err)
	}
	if n := ecdhCalls.Load() - before; n != 0 {
		t.Errorf("%d ECDH for a datagram without the psk", n)
	}

	// And a Resp under another psk is refused by Finish before any ECDH.
	hc := NewHandshaker(Config{Private: keyFrom(t, "c"), PSK: testPSK})
	msg, p, err := hc.Initiate(hb.PublicKey(), 1, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, _, _, err := hb.Respond(msg, 2, testTime, nil)
	if err != nil {
		t.Fatal(err)
	}
	bad := remac(ha, resp) // ha has the wrong psk
	before = ecdhCalls.Load()
	if _, err := p.Finish(bad, testTime); !errors.Is(err, ErrMAC) {
		t.Fatalf("Finish: %v, want ErrMAC", err)
	}
	if n := ecdhCalls.Load() - before; n != 0 {
		t.Errorf("%d ECDH for a Resp without the psk", n)
	}
	if _, err := p.Finish(resp, testTime); err != nil {
		t.Fatalf("genuine Resp after a bad one: %v", err)
	}
}

func TestInitReplay(t *testing.T) {
	ha := NewHandshaker(Config{Private: keyFrom(t, "a"), PSK: testPSK})
	hb := NewHandshaker(Config{Private: keyFrom(t, "b"), PSK: testPSK})
	msg, _, err := ha.Initiate(hb.PublicKey(), 1, 100, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := hb.Respond(msg, 2, testTime, nil); err != nil {
		t.Fatal(err)
	}
	before := ecdhCalls.Load()
	if _, _, _, err := hb.Respond(msg, 3, testTime, nil); !errors.Is(err, ErrReplay) {
		t.Fatalf("replayed Init: %v, want ErrReplay", err)
	}
	if n := ecdhCalls.Load() - before; n != 0 {
		t.Errorf("%d ECDH for an exact replay", n)
	}

	// A new Init with an older or equal timestamp is a replay too (after ECDH).
	for _, ts := range []uint64{99, 100} {
		msg, _, err := ha.Initiate(hb.PublicKey(), 1, ts, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := hb.Respond(msg, 4, testTime, nil); !errors.Is(err, ErrReplay) {
			t.Errorf("ts %d: %v, want ErrReplay", ts, err)
		}
	}
	msg, p, err := ha.Initiate(hb.PublicKey(), 1, 101, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, _, _, err := hb.Respond(msg, 5, testTime, nil)
	if err != nil {
		t.Fatalf("newer timestamp: %v", err)
	}
	if _, err := p.Finish(resp, testTime); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Finish(resp, testTime); !errors.Is(err, ErrReplay) {
		t.Errorf("second Finish: %v, want ErrReplay", err)
	}
	// Another initiator's timestamps are independent.
	hc := NewHandshaker(Config{Private: keyFrom(t, "c"), PSK: testPSK})
	msg, _, _ = hc.Initiate(hb.PublicKey(), 1, 1, nil)
	if _, _, _, err := hb.Respond(msg, 6, testTime, nil); err != nil {
		t.Errorf("other initiator: %v", err)
	}
}

func TestRefused(t *testing.T) {
	ka := keyFrom(t, "a")
	ha := NewHandshaker(Config{Private: ka, PSK: testPSK})
	hb := NewHandshaker(Config{Private: keyFrom(t, "b"), PSK: testPSK})
	msg, p, err := ha.Initiate(hb.PublicKey(), 1, 7, nil)
	if err != nil {
		t.Fatal(err)
	}
	var asked []byte
	no := func(k []byte) bool { asked = k; return false }
	if _, _, _, err := hb.Respond(msg, 2, testTime, no); !errors.Is(err, ErrRefused) {
		t.Fatalf("Respond: %v, want ErrRefused", err)
	}
	if !bytes.Equal(asked, ka.PubKey().SerializeCompressed()) {
		t.Errorf("accept saw %x", asked)
	}
	// No state was kept: the same Init is accepted once the key is known.
	resp, _, _, err := hb.Respond(msg, 2, testTime, func([]byte) bool { return true })
	if err != nil {
		t.Fatalf("after refusal: %v", err)
	}
	if _, err := p.Finish(resp, testTime); err != nil {
		t.Fatal(err)
	}
}

func TestTampered(t *testing.T) {
	ha := NewHandshaker(Config{Private: keyFrom(t, "a"), PSK: testPSK})
	hb := NewHandshaker(Config{Private: keyFrom(t, "b"), PSK: testPSK})
	msg, p, err := ha.Initiate(hb.PublicKey(), 1, 1, []byte("payload"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(msg); i++ {
		bad := append([]byte(nil), msg...)
		bad[i] ^= 0x40
		if _, _, _, err := hb.Respond(bad, 2, testTime, nil); !errors.Is(err, ErrMAC) && !errors.Is(err, ErrType) {
			t.Fatalf("Init byte %d flipped: %v, want ErrMAC", i, err)
		}
		if i < 4 || i >= len(msg)-MACLen {
			continue
		}
		// With the network key an attacker can fix the mac; Noise still catches it
		// (the header is in the prologue).
		if _, _, _, err := hb.Respond(remac(hb, bad), 2, testTime, nil); !errors.Is(err, ErrAuth) {
			t.Fatalf("Init byte %d flipped, mac fixed: %v, want ErrAuth", i, err)
		}
	}
	if _, _, _, err := hb.Respond(msg[:len(msg)-1], 2, testTime, nil); !errors.Is(err, ErrMAC) {
		t.Errorf("truncated Init: %v", err)
	}
	if _, _, _, err := hb.Respond(msg[:InitLen-1], 2, testTime, nil); !errors.Is(err, ErrShort) {
		t.Errorf("short Init: %v", err)
	}
	resp, b, _, err := hb.Respond(msg, 2, testTime, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 12; i < len(resp)-MACLen; i++ {
		bad := append([]byte(nil), resp...)
		bad[i] ^= 0x01
		if _, err := p.Finish(bad, testTime); !errors.Is(err, ErrMAC) {
			t.Fatalf("Resp byte %d: %v, want ErrMAC", i, err)
		}
		if _, err := p.Finish(remac(hb, bad), testTime); !errors.Is(err, ErrAuth) {
			t.Fatalf("Resp byte %d, mac fixed: %v, want ErrAuth", i, err)
		}
	}
	bad := append([]byte(nil), resp...)
	bad[8] ^= 1
	if _, err := p.Finish(bad, testTime); !errors.Is(err, ErrIndex) {
		t.Errorf("wrong receiver index: %v", err)
	}
	bad = append([]byte(nil), resp...)
	bad[0] = TypeData
	if _, err := p.Finish(bad, testTime); !errors.Is(err, ErrType) {
		t.Errorf("wrong type: %v", err)
	}
	a, err := p.Finish(resp, testTime)
	if err != nil {
		t.Fatalf("genuine Resp after forgeries: %v", err)
	}

	d, _ := a.Seal(nil, []byte("data"))
	for i := 0; i < len(d); i++ {
		bad := append([]byte(nil), d...)
		bad[i] ^= 0x10
		_, _, err := b.Open(nil, bad, testTime)
		switch {
		case i == 0 || i == 2 || i == 3:
			if !errors.Is(err, ErrType) {
				t.Errorf("data byte %d: %v, want ErrType", i, err)
			}
		case i == 1:
			if !errors.Is(err, ErrEpoch) {
				t.Errorf("data byte %d: %v, want ErrEpoch", i, err)
			}
		default:
			if !errors.Is(err, ErrAuth) {
				t.Errorf("data byte %d: %v, want ErrAuth", i, err)
			}
		}
	}
	if st := b.Stats(); st.AuthFailures != uint64(len(d)-4) || st.RecvPackets != 0 {
		t.Errorf("stats %+v", st)
	}
	if p, _, err := b.Open(nil, d, testTime); err != nil || string(p) != "data" {
		t.Errorf("genuine data after forgeries: %q %v", p, err)
	}
	if _, _, err := b.Open(nil, d[:Overhead], testTime); !errors.Is(err, ErrShort) {
		t.Errorf("short data: %v", err)
	}
}

func TestInitiateErrors(t *testing.T) {
	h := NewHandshaker(Config{Private: keyFrom(t, "a"), PSK: testPSK})
	pub := keyFrom(t, "b").PubKey()
	if _, _, err := h.Initiate(pub.SerializeUncompressed(), 1, 1, nil); !errors.Is(err, ErrKey) {
		t.Errorf("uncompressed key: %v", err)
	}
	bad := pub.SerializeCompressed()
	bad[0] = 5
	if _, _, err := h.Initiate(bad, 1, 1, nil); !errors.Is(err, ErrKey) {
		t.Errorf("bad key: %v", err)
	}
	if _, _, err := h.Initiate(pub.SerializeCompressed(), 1, 1, make([]byte, MaxInitPayload+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("long payload: %v", err)
	}
	msg, _, err := h.Initiate(pub.SerializeCompressed(), 1, 1, make([]byte, MaxInitPayload))
	if err != nil || len(msg) != InitLen+MaxInitPayload {
		t.Errorf("max payload: %d %v", len(msg), err)
	}
	msg, p, err := h.Initiate(pub.SerializeCompressed(), 0xabcdef01, 1, nil)
	if err != nil || len(msg) != InitLen || p.LocalIndex() != 0xabcdef01 || !bytes.Equal(p.Remote(), pub.SerializeCompressed()) {
		t.Errorf("Initiate: %d %v", len(msg), err)
	}
}

func TestHeader(t *testing.T) {
	ha := NewHandshaker(Config{Private: keyFrom(t, "a"), PSK: testPSK})
	hb := NewHandshaker(Config{Private: keyFrom(t, "b"), PSK: testPSK})
	msg, _, _ := ha.Initiate(hb.PublicKey(), 0x01020304, 1, nil)
	resp, s, _, err := hb.Respond(msg, 0x0a0b0c0d, testTime, nil)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := s.Seal(nil, nil)
	for _, c := range []struct {
		d   []byte
		typ byte
		idx uint32
		ok  bool
	}{
		{msg, TypeInit, 0, true},
		{resp, TypeResp, 0x01020304, true},
		{d, TypeData, 0x01020304, true},
		{msg[:InitLen-1], TypeInit, 0, false},
		{resp[:RespLen-1], TypeResp, 0, false},
		{d[:Overhead], TypeData, 0, false},
		{nil, 0, 0, false},
		{[]byte{9, 0, 0, 0, 0, 0, 0, 0}, 9, 0, false},
	} {
		typ, idx, ok := Header(c.d)
		if typ != c.typ || idx != c.idx || ok != c.ok {
			t.Errorf("Header(% x...) = %d %x %v, want %d %x %v", c.d[:min(len(c.d), 8)], typ, idx, ok, c.typ, c.idx, c.ok)
		}
	}
	if len(resp) != RespLen {
		t.Errorf("Resp is %d bytes, want %d", len(resp), RespLen)
	}
}

// TestInitCacheEviction: the mac cache and the timestamp LRU stay bounded.
func TestInitCacheEviction(t *testing.T) {
	var c macCache
	for i := 0; i < InitCacheSize+10; i++ {
		c.add([MACLen]byte{byte(i), byte(i >> 8), byte(i >> 16)})
	}
	last := InitCacheSize + 9
	if len(c.set) != InitCacheSize || c.has([MACLen]byte{0}) || !c.has([MACLen]byte{byte(last), byte(last >> 8)}) {
		t.Errorf("mac cache: %d entries", len(c.set))
	}
	var s stampCache
	s.init()
	for i := 0; i < PeerCacheSize+10; i++ {
		s.put([KeyLen]byte{byte(i), byte(i >> 8), byte(i >> 16)}, uint64(i))
		if i == PeerCacheSize-1 {
			s.get([KeyLen]byte{0}) // keep key 0 fresh
		}
	}
	if len(s.m) != PeerCacheSize || s.lru.Len() != PeerCacheSize {
		t.Errorf("stamp cache: %d entries", len(s.m))
	}
	if _, ok := s.get([KeyLen]byte{1}); ok {
		t.Error("least recently used key not evicted")
	}
	if ts, ok := s.get([KeyLen]byte{0}); !ok || ts != 0 {
		t.Error("recently used key evicted")
	}
}
