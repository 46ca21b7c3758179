package link

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// clearPair runs a clear handshake between tables of fresh handshakers for keys
// "a" and "b" and returns both tables and sessions.
func clearPair(tb testing.TB) (ta, tb2 *Table[string], a, b *Session) {
	tb.Helper()
	ha := NewHandshaker(Config{Private: keyFrom(tb, "a"), PSK: testPSK})
	hb := NewHandshaker(Config{Private: keyFrom(tb, "b"), PSK: testPSK})
	ta, tb2 = NewTable[string](ha), NewTable[string](hb)
	init, _, err := ta.InitiateClear(hb.PublicKey(), "to b", 1, testTime)
	if err != nil {
		tb.Fatal(err)
	}
	ev, err := tb2.ReceiveClear(init, nil, testTime, nil)
	if err != nil {
		tb.Fatal(err)
	}
	b = ev.Session
	ev, err = ta.ReceiveClear(ev.Reply, nil, testTime, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if ev.Owner != "to b" {
		tb.Fatalf("owner %q", ev.Owner)
	}
	return ta, tb2, ev.Session, b
}

// A clear session carries payloads both ways in clear (the bytes are in the
// datagram as they were given), each datagram signed; a replay is refused, and
// the session never rekeys.
func TestClearSession(t *testing.T) {
	ta, tb, a, b := clearPair(t)
	if !a.Clear() || !b.Clear() || !bytes.Equal(a.Remote(), pubOf(t, "b")) || !bytes.Equal(b.Remote(), pubOf(t, "a")) {
		t.Fatal("not a clear session between a and b")
	}
	for _, dir := range []struct {
		from, to *Session
		table    *Table[string]
	}{{a, b, tb}, {b, a, ta}} {
		msg := []byte("CQ CQ de skyfleet: a message anyone may read")
		d, err := dir.from.Seal(nil, msg)
		if err != nil {
			t.Fatal(err)
		}
		if len(d) != len(msg)+ClearOverhead+1 || !bytes.Contains(d, msg) || d[0] != TypeClearData {
			t.Fatalf("datagram of %d bytes does not carry the payload in clear", len(d))
		}
		ev, err := dir.table.ReceiveClear(d, nil, testTime.Add(time.Second), nil)
		if err != nil || !bytes.Equal(ev.Payload, msg) || ev.Reply != nil {
			t.Fatalf("open: %q %v", ev.Payload, err)
		}
		if _, err := dir.table.ReceiveClear(d, nil, testTime.Add(time.Second), nil); !errors.Is(err, ErrReplay) {
			t.Fatalf("replay: %v", err)
		}
		if got := dir.to.LastReceived().Sub(testTime.Add(time.Second)); got < 0 || got > time.Microsecond {
			t.Fatalf("last received %v after the datagram", got)
		}
	}
	if a.Tick(testTime.Add(time.Hour), 0) != nil || b.Tick(testTime.Add(time.Hour), 0) != nil {
		t.Fatal("a clear session sent a rekey")
	}
	if got := a.PayloadCapacity(1452); got != 1452-ClearOverhead-1 {
		t.Fatalf("capacity %d", got)
	}
	if s := b.Stats(); s.Replays != 1 || s.RecvPackets != 1 || s.SentPackets != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// pubOf is the public key of test key seed.
func pubOf(t *testing.T, seed string) []byte {
	return NewHandshaker(Config{Private: keyFrom(t, seed)}).PublicKey()
}

// Every byte of a clear datagram is covered: changing any one of them is
// refused (the signature, or the header's own checks), counted, and leaves the
// genuine datagram acceptable.
func TestClearDataTampered(t *testing.T) {
	_, tb, a, b := clearPair(t)
	d, err := a.Seal(nil, []byte("pay 5 sats to W1AW"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range d {
		bad := bytes.Clone(d)
		bad[i] ^= 0x01
		if _, err := tb.ReceiveClear(bad, nil, testTime, nil); err == nil {
			t.Fatalf("byte %d changed and accepted", i)
		}
	}
	if s := b.Stats(); s.AuthFailures == 0 {
		t.Fatalf("tampering not counted: %+v", s)
	}
	if ev, err := tb.ReceiveClear(d, nil, testTime, nil); err != nil || string(ev.Payload) != "pay 5 sats to W1AW" {
		t.Fatalf("genuine datagram after the forgeries: %v", err)
	}
}

// A datagram of one clear session does not open in another between the same
// two nodes: the signature covers the handshake it belongs to.
func TestClearDataBoundToSession(t *testing.T) {
	_, _, a1, _ := clearPair(t)
	ha := NewHandshaker(Config{Private: keyFrom(t, "a"), PSK: testPSK})
	hb := NewHandshaker(Config{Private: keyFrom(t, "b"), PSK: testPSK})
	init, p, err := ha.InitiateClear(hb.PublicKey(), 9, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, b2, _, err := hb.Respond(init, 10, testTime, nil)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := p.Finish(resp, testTime)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := a1.Seal(nil, []byte("session one"))
	// Re-address it to session two's index: the header is then right for b2.
	copy(d[4:8], []byte{0, 0, 0, 10})
	if _, _, err := b2.Open(nil, d, testTime); !errors.Is(err, ErrAuth) {
		t.Fatalf("session one's datagram in session two: %v", err)
	}
	d2, _ := a2.Seal(nil, []byte("session two"))
	if got, _, err := b2.Open(nil, d2, testTime); err != nil || string(got) != "session two" {
		t.Fatalf("%q %v", got, err)
	}
}

// The clear handshake refuses what the Noise one refuses, before any
// signature check where it can: a wrong network key, a copy, an Init for
// another node, a forged initiator, a Resp by the wrong key; and a forged Resp
// leaves the handshake open for the genuine one.
func TestClearHandshakeRefusals(t *testing.T) {
	ka, kb, kc := keyFrom(t, "a"), keyFrom(t, "b"), keyFrom(t, "c")
	ha := NewHandshaker(Config{Private: ka, PSK: testPSK})
	hb := NewHandshaker(Config{Private: kb, PSK: testPSK})
	hc := NewHandshaker(Config{Private: kc, PSK: testPSK})
	other := NewHandshaker(Config{Private: kc, PSK: [32]byte{9}})

	init, p, err := ha.InitiateClear(hb.PublicKey(), 1, 100, []byte("hello in clear"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(init, []byte("hello in clear")) || len(init) != ClearInitLen+len("hello in clear") {
		t.Fatal("the init payload is not in clear")
	}
	if _, _, _, err := other.Respond(init, 2, testTime, nil); !errors.Is(err, ErrMAC) {
		t.Fatalf("wrong network key: %v", err)
	}
	if _, _, _, err := hc.Respond(init, 2, testTime, nil); !errors.Is(err, ErrRefused) {
		t.Fatalf("an init for b answered by c: %v", err)
	}
	// c claims to be a: the key field says a, the signature is c's.
	forged, _, err := hc.InitiateClear(hb.PublicKey(), 1, 101, nil)
	if err != nil {
		t.Fatal(err)
	}
	copy(forged[8:8+KeyLen], ha.PublicKey())
	if _, _, _, err := hb.Respond(remac(hb, forged), 2, testTime, nil); !errors.Is(err, ErrAuth) {
		t.Fatalf("forged initiator: %v", err)
	}
	if _, _, _, err := hb.Respond(init, 2, testTime, func([]byte) bool { return false }); !errors.Is(err, ErrRefused) {
		t.Fatalf("accept refused: %v", err)
	}
	resp, _, payload, err := hb.Respond(init, 2, testTime, nil)
	if err != nil || string(payload) != "hello in clear" {
		t.Fatalf("respond: %q %v", payload, err)
	}
	if _, _, _, err := hb.Respond(init, 3, testTime, nil); !errors.Is(err, ErrReplay) {
		t.Fatalf("copy of the init: %v", err)
	}
	older, _, _ := ha.InitiateClear(hb.PublicKey(), 1, 99, nil)
	if _, _, _, err := hb.Respond(older, 3, testTime, nil); !errors.Is(err, ErrReplay) {
		t.Fatalf("older timestamp: %v", err)
	}
	// A Resp signed by c for the same init: refused, and the genuine one still
	// finishes.
	fake := bytes.Clone(resp)
	signed, err := clearSign(kc, clearRespLabel, nil, fake[:12+32])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Finish(remac(ha, append(signed, make([]byte, MACLen)...)), testTime); !errors.Is(err, ErrAuth) {
		t.Fatalf("resp by the wrong key: %v", err)
	}
	s, err := p.Finish(resp, testTime)
	if err != nil || !s.Clear() {
		t.Fatalf("genuine resp after a forged one: %v", err)
	}
	if _, err := p.Finish(resp, testTime); !errors.Is(err, ErrReplay) {
		t.Fatalf("resp twice: %v", err)
	}
}

// No downgrade and no upgrade: a table answers clear handshakes only through
// ReceiveClear and encrypted ones only through Receive, so a node that
// encrypts on a network cannot be talked into clear sessions there, and
// nothing encrypted is answered on a clear channel.
func TestClearAndEncryptedDoNotMix(t *testing.T) {
	ha := NewHandshaker(Config{Private: keyFrom(t, "a"), PSK: testPSK})
	hb := NewHandshaker(Config{Private: keyFrom(t, "b"), PSK: testPSK})
	tb := NewTable[string](hb)
	clearInit, _, _ := ha.InitiateClear(hb.PublicKey(), 1, 1, nil)
	noiseInit, _, _ := ha.Initiate(hb.PublicKey(), 2, 2, nil)
	if _, err := tb.Receive(clearInit, nil, testTime, nil); !errors.Is(err, ErrType) {
		t.Fatalf("clear init on an encrypted network: %v", err)
	}
	if _, err := tb.ReceiveClear(noiseInit, nil, testTime, nil); !errors.Is(err, ErrType) {
		t.Fatalf("Noise init on a clear channel: %v", err)
	}
	if tb.Len() != 0 {
		t.Fatalf("%d table entries left", tb.Len())
	}
	// A clear session does not open a Noise datagram; Receive does not hand
	// a clear one to any session.
	_, _, a, b := clearPair(t)
	na, _ := handshake(t, Config{PSK: testPSK}, Config{PSK: testPSK})
	d, _ := na.Seal(nil, bytes.Repeat([]byte("secret "), 20))
	if _, _, err := b.Open(nil, d, testTime); !errors.Is(err, ErrType) {
		t.Fatalf("a Noise datagram opened by a clear session: %v", err)
	}
	cd, _ := a.Seal(nil, []byte("clear"))
	if _, err := tb.Receive(cd, nil, testTime, nil); !errors.Is(err, ErrType) {
		t.Fatalf("a clear datagram through Receive: %v", err)
	}
}

// FuzzClearReceive: any bytes through ReceiveClear, to a table with a clear
// session open and to one answering handshakes, are refused or accepted
// without a panic; data is accepted only when it is the genuine datagram (a
// signature cannot be forged), and a handshake only when it is the genuine
// Init.
func FuzzClearReceive(f *testing.F) {
	ha := NewHandshaker(Config{Private: keyFrom(f, "a"), PSK: testPSK})
	hb := NewHandshaker(Config{Private: keyFrom(f, "b"), PSK: testPSK})
	init, _, err := ha.InitiateClear(hb.PublicKey(), 1, 1, []byte("payload"))
	if err != nil {
		f.Fatal(err)
	}
	_, tb, a, _ := clearPair(f)
	data, _ := a.Seal(nil, []byte("in clear"))
	f.Add(init)
	f.Add(data)
	f.Add(data[:ClearOverhead])
	f.Add(append([]byte{TypeClearResp}, make([]byte, ClearRespLen)...))
	// Built once: the genuine datagram and Init are accepted once and then
	// refused as replays, which keeps the property true.
	fresh := NewTable[string](NewHandshaker(Config{Private: keyFrom(f, "b"), PSK: testPSK}))
	f.Fuzz(func(t *testing.T, in []byte) {
		ev, err := tb.ReceiveClear(in, nil, testTime, nil)
		if err == nil && ev.Payload != nil && !bytes.Equal(in, data) {
			t.Fatalf("forged data accepted: %x", in)
		}
		if ev, err := fresh.ReceiveClear(in, nil, testTime, nil); err == nil && ev.Session != nil && !bytes.Equal(in, init) {
			t.Fatalf("forged init answered: %x", in)
		}
	})
}
