package saf

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"testing"
	"time"
)

func sample() *Bundle {
	return &Bundle{Class: ClassRealTime, Port: PortMsg, Source: keyN(1), Destination: keyN(2),
		Created: 1764800000123, Seq: 42, Lifetime: 3 * time.Hour, Payload: []byte("hello, island")}
}

// TestEncodingLayout builds the documented layout by hand, field by field, and
// checks Marshal produces exactly it and the ID is its SHA-256.
func TestEncodingLayout(t *testing.T) {
	b := sample()
	var want []byte
	want = append(want, 1, 1, 0, 1)
	want = append(want, b.Source[:]...)
	want = append(want, b.Destination[:]...)
	want = binary.BigEndian.AppendUint64(want, 1764800000123)
	want = binary.BigEndian.AppendUint64(want, 42)
	want = binary.BigEndian.AppendUint32(want, 3*3600)
	want = binary.BigEndian.AppendUint32(want, uint32(len("hello, island")))
	want = append(want, "hello, island"...)
	got, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encoding\n got %x\nwant %x", got, want)
	}
	sum := sha256.Sum256(want)
	if id := IDOf(got); id != ID(sum) || id.String() != hex.EncodeToString(sum[:]) {
		t.Fatalf("ID %s, want SHA-256 %x", id, sum)
	}
	back, err := Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := back.Marshal()
	if !bytes.Equal(again, got) {
		t.Fatal("parse and marshal do not round trip")
	}
	if pid, err := ParseID(IDOf(got).String()); err != nil || pid != IDOf(got) {
		t.Fatalf("ParseID: %v", err)
	}
}

func TestParseRefuses(t *testing.T) {
	good, _ := sample().Marshal()
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	cases := map[string][]byte{
		"empty":         nil,
		"short":         good[:headerLen-1],
		"version":       mut(func(b []byte) []byte { b[0] = 2; return b }),
		"class":         mut(func(b []byte) []byte { b[1] = 7; return b }),
		"port 0":        mut(func(b []byte) []byte { b[2], b[3] = 0, 0; return b }),
		"zero source":   mut(func(b []byte) []byte { clear(b[4 : 4+KeyLen]); return b }),
		"lifetime 0":    mut(func(b []byte) []byte { clear(b[headerLen-8 : headerLen-4]); return b }),
		"lifetime big":  mut(func(b []byte) []byte { binary.BigEndian.PutUint32(b[headerLen-8:], 31*86400); return b }),
		"trailing":      mut(func(b []byte) []byte { return append(b, 0) }),
		"truncated":     good[:len(good)-1],
		"length lies":   mut(func(b []byte) []byte { binary.BigEndian.PutUint32(b[headerLen-4:], 1<<20); return b }),
		"negative time": mut(func(b []byte) []byte { b[4+2*KeyLen] = 0x80; return b }),
		"payload > max": append(mut(func(b []byte) []byte { binary.BigEndian.PutUint32(b[headerLen-4:], MaxPayload+1); return b[:headerLen] }), make([]byte, MaxPayload+1)...),
	}
	for name, enc := range cases {
		if _, err := Parse(enc); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
	b := sample()
	b.Lifetime = 1500 * time.Millisecond
	if _, err := b.Marshal(); !errors.Is(err, ErrMalformed) {
		t.Errorf("fractional lifetime: %v", err)
	}
}

func TestWireFrames(t *testing.T) {
	enc, _ := sample().Marshal()
	fr := AppendTransfer(nil, 1234*time.Millisecond, enc)
	if fr[0] != frameTransfer || binary.BigEndian.Uint32(fr[1:]) != uint32(8+len(enc)) {
		t.Fatalf("transfer header %x", fr[:5])
	}
	tr, b, err := ParseTransfer(fr[5:])
	if err != nil || tr.Age != 1234*time.Millisecond || !bytes.Equal(tr.Bundle, enc) || b.Seq != 42 {
		t.Fatalf("transfer: %+v %v", tr, err)
	}
	id := IDOf(enc)
	ack := AppendCustodyAck(nil, id, StatusDuplicate)
	if len(ack) != 5+33 {
		t.Fatalf("ack of %d bytes", len(ack))
	}
	gid, st, err := ParseCustodyAck(ack[5:])
	if err != nil || gid != id || st != StatusDuplicate {
		t.Fatalf("ack: %v %v %v", gid, st, err)
	}
	if _, _, err := ParseCustodyAck(append(ack[5:len(ack)-1:len(ack)-1], 9)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("unknown status accepted: %v", err)
	}
	f := MarshalFile(time.Minute, enc)
	tr, _, err = ParseFile(f)
	if err != nil || tr.Age != time.Minute || !bytes.Equal(tr.Bundle, enc) {
		t.Fatalf("file: %v", err)
	}
	if _, _, err := ParseFile(append([]byte("SFB2"), f[4:]...)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("bad magic accepted: %v", err)
	}
}
