package link

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"sync"
	"time"
)

// ErrUnknownIndex is returned by Table.Receive for a Resp or Data datagram whose
// receiver index names no handshake in flight (Resp) or no session (Data): a stale
// datagram, a peer that restarted, or a stranger's guess.
var ErrUnknownIndex = errors.New("link: unknown receiver index")

// Table holds one Handshaker's sessions and the handshakes it has in flight by
// their local (receiver) index, and turns an arriving datagram into what it means:
// Receive is the one dispatch of Init, Resp and Data. The mesh keeps two tables,
// one for its neighbour links and one, with a Handshaker of its own, for its
// end-to-end sessions; both dispatch the same way.
//
// T is what the caller hangs on an index: the neighbour or peer it belongs to.
// An index stays until Drop, DropIf or the caller's own expiry removes it, so the
// caller bounds the table: it drops a session's index when the session is
// replaced or its owner goes, and expires handshakes that were never answered
// (DropIf with Entry.Pending). Safe for concurrent use; lookups on the data path
// take a read lock only.
type Table[T comparable] struct {
	hs *Handshaker
	mu sync.RWMutex
	m  map[uint32]*tableEntry[T]
}

type tableEntry[T comparable] struct {
	owner   T
	s       *Session
	pending *Pending
	created time.Time
}

// NewTable returns an empty table for the handshakes and sessions of hs.
func NewTable[T comparable](hs *Handshaker) *Table[T] {
	return &Table[T]{hs: hs, m: make(map[uint32]*tableEntry[T])}
}

// Event is what Table.Receive made of a datagram.
type Event[T comparable] struct {
	// Type is the datagram's type (TypeInit, TypeResp or TypeData, or their
	// clear counterparts for ReceiveClear), set whenever
	// the header parsed, errors included; 0 when it did not (ErrShort, ErrType).
	Type byte
	// Index is the local index concerned: the new session's for an Init, the
	// receiver index the datagram carried otherwise (0 when the header did not parse).
	Index uint32
	// Owner is the index's owner: for a Resp or Data datagram the value given to
	// Initiate or Bind, for an Init the zero T (the caller Binds it).
	Owner T
	// Session is the new session (Init, Resp) or the one the Data was opened with.
	Session *Session
	// Reply is a datagram to send back to the remote: the Resp to an Init, or a
	// Data datagram the session wants sent (Session.Open's reply); nil when none.
	Reply []byte
	// Payload is the plaintext of a Data datagram (nil for keepalives and the
	// other types), in the buffer given to Receive.
	Payload []byte
}

// allocLocked reserves a fresh, nonzero, unused index for e. t.mu is held.
func (t *Table[T]) allocLocked(e *tableEntry[T]) uint32 {
	var b [4]byte
	for {
		rand.Read(b[:])
		if i := binary.BigEndian.Uint32(b[:]); i != 0 && t.m[i] == nil {
			t.m[i] = e
			return i
		}
	}
}

// Initiate starts a handshake to the node with 33-byte static key remote on a
// fresh local index owned by owner, and returns the Init to send and the handshake
// in flight (its LocalIndex is the index). ts is as for Handshaker.Initiate.
// Errors are Handshaker.Initiate's; the index is then released.
func (t *Table[T]) Initiate(remote []byte, owner T, ts uint64, now time.Time) ([]byte, *Pending, error) {
	return t.initiate(remote, owner, ts, now, t.hs.Initiate)
}

// InitiateClear is Initiate for a clear link (Handshaker.InitiateClear); its
// ClearResp comes back through ReceiveClear.
func (t *Table[T]) InitiateClear(remote []byte, owner T, ts uint64, now time.Time) ([]byte, *Pending, error) {
	return t.initiate(remote, owner, ts, now, t.hs.InitiateClear)
}

func (t *Table[T]) initiate(remote []byte, owner T, ts uint64, now time.Time,
	start func(remote []byte, localIndex uint32, ts uint64, payload []byte) ([]byte, *Pending, error)) ([]byte, *Pending, error) {
	e := &tableEntry[T]{owner: owner, created: now}
	t.mu.Lock()
	idx := t.allocLocked(e)
	t.mu.Unlock()
	msg, p, err := start(remote, idx, ts, nil)
	if err != nil {
		t.Drop(idx)
		return nil, nil, err
	}
	t.mu.Lock()
	e.pending = p
	t.mu.Unlock()
	return msg, p, nil
}

// Receive handles one datagram b that arrived from the remote, by its type:
//
//   - Init: answered (Handshaker.Respond, with accept) on a fresh index; the Event
//     carries the new Session and the Resp to send in Reply. The index has no
//     owner yet: the caller Binds it, or Drops it when it will not keep the session.
//   - Resp: finishes the handshake in flight on its receiver index; the Event
//     carries the new Session and the Owner given to Initiate.
//   - Data: opened (Session.Open) into dst by the session on its receiver index;
//     the Event carries Payload, Reply, Session and Owner.
//
// Errors: ErrShort or ErrType when the header does not parse, ErrUnknownIndex,
// and those of Respond, Finish and Open; nothing is kept on error.
//
// Receive takes only the encrypted types (Init, Resp, Data); a clear one
// (clear.go) is ErrType here, so that nobody can talk a node into clear
// sessions on a network where it encrypts. ReceiveClear is its counterpart for
// a clear channel.
func (t *Table[T]) Receive(b, dst []byte, now time.Time, accept func(remote []byte) bool) (Event[T], error) {
	return t.receive(b, dst, now, accept, false)
}

// ReceiveClear is Receive for a datagram from an amateur-radio channel: it
// takes only ClearInit, ClearResp and ClearData, and an encrypted type is
// ErrType (nothing encrypted is answered or opened there).
func (t *Table[T]) ReceiveClear(b, dst []byte, now time.Time, accept func(remote []byte) bool) (Event[T], error) {
	return t.receive(b, dst, now, accept, true)
}

// IsClear reports whether datagram b is of a clear type (ClearInit, ClearResp,
// ClearData, clear.go): one whose payload travels unencrypted, signed by the
// sender's static key. It looks at the type byte only.
func IsClear(b []byte) bool { return len(b) > 0 && isClear(b[0]) }

// isClear reports whether typ is one of the clear datagram types.
func isClear(typ byte) bool { return typ >= TypeClearInit && typ <= TypeClearData }

func (t *Table[T]) receive(b, dst []byte, now time.Time, accept func(remote []byte) bool, clear bool) (Event[T], error) {
	if len(b) > 0 && isClear(b[0]) != clear {
		return Event[T]{Type: b[0]}, ErrType
	}
	typ, idx, ok := Header(b)
	if !ok {
		if typ >= TypeInit && typ <= TypeClearData {
			return Event[T]{}, ErrShort
		}
		return Event[T]{}, ErrType
	}
	ev := Event[T]{Type: typ, Index: idx}
	switch typ {
	case TypeInit, TypeClearInit:
		e := &tableEntry[T]{created: now}
		t.mu.Lock()
		li := t.allocLocked(e)
		t.mu.Unlock()
		resp, s, _, err := t.hs.Respond(b, li, now, accept)
		if err != nil {
			t.Drop(li)
			return ev, err
		}
		t.mu.Lock()
		e.s = s
		t.mu.Unlock()
		ev.Index, ev.Session, ev.Reply = li, s, resp
		return ev, nil
	case TypeResp, TypeClearResp:
		t.mu.RLock()
		e := t.m[idx]
		var p *Pending
		if e != nil {
			p, ev.Owner = e.pending, e.owner
		}
		t.mu.RUnlock()
		if p == nil {
			return ev, ErrUnknownIndex
		}
		s, err := p.Finish(b, now)
		if err != nil {
			return ev, err
		}
		t.mu.Lock()
		if t.m[idx] == e { // not dropped meanwhile
			e.s, e.pending = s, nil
		}
		t.mu.Unlock()
		ev.Session = s
		return ev, nil
	default: // TypeData or TypeClearData: Header admits only these six
		t.mu.RLock()
		e := t.m[idx]
		var s *Session
		if e != nil {
			s, ev.Owner = e.s, e.owner
		}
		t.mu.RUnlock()
		if s == nil {
			return ev, ErrUnknownIndex
		}
		payload, reply, err := s.Open(dst, b, now)
		if err != nil {
			return ev, err
		}
		ev.Session, ev.Payload, ev.Reply = s, payload, reply
		return ev, nil
	}
}

// Bind gives the index of a session answered by Receive its owner. It reports
// false when the index is gone (dropped meanwhile).
func (t *Table[T]) Bind(idx uint32, owner T) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.m[idx]
	if e == nil {
		return false
	}
	e.owner = owner
	return true
}

// Drop forgets a local index: its session's datagrams are refused from now on
// (ErrUnknownIndex). Dropping an unknown index does nothing.
func (t *Table[T]) Drop(idx uint32) {
	t.mu.Lock()
	delete(t.m, idx)
	t.mu.Unlock()
}

// Entry describes one index for DropIf.
type Entry[T comparable] struct {
	Owner T
	// Pending is true for a handshake still waiting for its Resp.
	Pending bool
	// Created is when the index was made (Initiate or Receive's now).
	Created time.Time
}

// DropIf forgets every index for which drop returns true and returns how many it
// forgot. drop runs under the table's lock: it must not call back into t.
func (t *Table[T]) DropIf(drop func(Entry[T]) bool) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for i, e := range t.m {
		if drop(Entry[T]{Owner: e.owner, Pending: e.pending != nil, Created: e.created}) {
			delete(t.m, i)
			n++
		}
	}
	return n
}

// Len is the number of indexes held: sessions and handshakes in flight.
func (t *Table[T]) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.m)
}

// Session returns the session on index idx (nil when it has none yet or the
// index is unknown) and its owner.
func (t *Table[T]) Session(idx uint32) (*Session, T) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if e := t.m[idx]; e != nil {
		return e.s, e.owner
	}
	var zero T
	return nil, zero
}
