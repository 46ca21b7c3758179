package link

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

// Two tables, as two nodes hold them: a handshake through Initiate and Receive,
// the owners each side sees, data both ways, and what is refused.
func TestTableDispatch(t *testing.T) {
	ka, kb := keyFrom(t, "a"), keyFrom(t, "b")
	ha := NewHandshaker(Config{Private: ka, PSK: testPSK})
	hb := NewHandshaker(Config{Private: kb, PSK: testPSK})
	ta, tb := NewTable[string](ha), NewTable[string](hb)
	now := testTime

	init, pend, err := ta.Initiate(hb.PublicKey(), "to b", 1, now)
	if err != nil {
		t.Fatal(err)
	}
	if ta.Len() != 1 {
		t.Fatalf("initiator holds %d indexes, want 1 (the handshake in flight)", ta.Len())
	}
	// Data on an index with a handshake in flight and no session is refused.
	fake := append([]byte{TypeData, 0, 0, 0}, make([]byte, Overhead)...)
	binary.BigEndian.PutUint32(fake[4:], pend.LocalIndex())
	if ev, err := ta.Receive(fake, nil, now, nil); !errors.Is(err, ErrUnknownIndex) || ev.Type != TypeData || ev.Index != pend.LocalIndex() {
		t.Errorf("data on a pending index: %v (type %d, index %d), want ErrUnknownIndex", err, ev.Type, ev.Index)
	}

	refused := func([]byte) bool { return false }
	if _, err := tb.Receive(init, nil, now, refused); !errors.Is(err, ErrRefused) {
		t.Fatalf("refused init: %v", err)
	}
	if tb.Len() != 0 {
		t.Fatalf("a refused init left %d indexes", tb.Len())
	}
	evb, err := tb.Receive(init, nil, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if evb.Type != TypeInit || evb.Session == nil || evb.Owner != "" || len(evb.Reply) != RespLen {
		t.Fatalf("init event: type %d, session %v, owner %q, reply %d bytes", evb.Type, evb.Session != nil, evb.Owner, len(evb.Reply))
	}
	if !bytes.Equal(evb.Session.Remote(), ha.PublicKey()) {
		t.Error("the answered session's remote is not the initiator")
	}
	if !tb.Bind(evb.Index, "from a") {
		t.Fatal("bind failed")
	}
	// The same Init again is a replay, and leaves nothing behind.
	if ev, err := tb.Receive(init, nil, now, nil); !errors.Is(err, ErrReplay) || ev.Type != TypeInit {
		t.Errorf("replayed init: %v, type %d", err, ev.Type)
	}
	if tb.Len() != 1 {
		t.Errorf("responder holds %d indexes, want 1", tb.Len())
	}

	eva, err := ta.Receive(evb.Reply, nil, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if eva.Type != TypeResp || eva.Owner != "to b" || eva.Index != pend.LocalIndex() || eva.Session == nil {
		t.Fatalf("resp event: type %d, owner %q, index %d (want %d)", eva.Type, eva.Owner, eva.Index, pend.LocalIndex())
	}
	if _, err := ta.Receive(evb.Reply, nil, now, nil); !errors.Is(err, ErrUnknownIndex) {
		t.Errorf("a second resp: %v, want ErrUnknownIndex (the handshake is finished)", err)
	}
	if s, owner := ta.Session(eva.Index); s != eva.Session || owner != "to b" {
		t.Error("Session does not return the finished session and its owner")
	}

	dg, err := eva.Session.Seal(nil, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	evd, err := tb.Receive(dg, make([]byte, 0, 64), now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if evd.Type != TypeData || evd.Owner != "from a" || string(evd.Payload) != "hello" || evd.Session != evb.Session {
		t.Errorf("data event: type %d, owner %q, payload %q", evd.Type, evd.Owner, evd.Payload)
	}
	if _, err := tb.Receive(dg, nil, now, nil); !errors.Is(err, ErrReplay) {
		t.Errorf("replayed data: %v, want ErrReplay", err)
	}

	// Dropped, the index refuses its session's datagrams.
	tb.Drop(evb.Index)
	dg2, _ := eva.Session.Seal(nil, []byte("again"))
	if _, err := tb.Receive(dg2, nil, now, nil); !errors.Is(err, ErrUnknownIndex) {
		t.Errorf("data after Drop: %v, want ErrUnknownIndex", err)
	}
	if tb.Bind(evb.Index, "x") {
		t.Error("Bind of a dropped index reported success")
	}

	// Malformed headers say so, with no type.
	for _, b := range [][]byte{nil, {TypeData, 0}, {9, 0, 0, 0, 0, 0, 0, 0}} {
		ev, err := ta.Receive(b, nil, now, nil)
		if err == nil || ev.Type != 0 {
			t.Errorf("Receive(%x) = type %d, %v; want an error and type 0", b, ev.Type, err)
		}
	}
}

// DropIf sees each index's owner, state and age, and removes what it is told to.
func TestTableDropIf(t *testing.T) {
	hb := NewHandshaker(Config{Private: keyFrom(t, "b"), PSK: testPSK})
	ta := NewTable[int](NewHandshaker(Config{Private: keyFrom(t, "a"), PSK: testPSK}))
	for i := range 3 {
		if _, _, err := ta.Initiate(hb.PublicKey(), i, uint64(i+1), testTime.Add(-time.Duration(i)*10*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	var seen []int
	n := ta.DropIf(func(e Entry[int]) bool {
		if !e.Pending {
			t.Errorf("index of owner %d is not pending", e.Owner)
		}
		seen = append(seen, e.Owner)
		return testTime.Sub(e.Created) > 5*time.Second // owners 1 and 2
	})
	if n != 2 || ta.Len() != 1 || len(seen) != 3 {
		t.Errorf("dropped %d of %v, %d left; want 2 dropped, 1 left", n, seen, ta.Len())
	}
}
