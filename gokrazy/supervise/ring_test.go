package supervise

import (
	"bytes"
	"testing"
)

func TestRingKeepsTail(t *testing.T) {
	r := newRing(8)
	r.Write([]byte("abc"))
	if got := r.Bytes(); string(got) != "abc" {
		t.Fatalf("got %q", got)
	}
	r.Write([]byte("defgh")) // exactly full
	if got := r.Bytes(); string(got) != "abcdefgh" {
		t.Fatalf("got %q", got)
	}
	r.Write([]byte("ij")) // wraps; no newline held, so nothing trimmed
	if got := r.Bytes(); string(got) != "cdefghij" {
		t.Fatalf("got %q", got)
	}
	r.Write([]byte("0123456789abc")) // larger than capacity
	if got := r.Bytes(); string(got) != "56789abc" {
		t.Fatalf("got %q, want 56789abc", got)
	}
}

func TestRingTrimsPartialFirstLine(t *testing.T) {
	r := newRing(10)
	r.Write([]byte("one\ntwo\nthree\n")) // 14 bytes: the window starts exactly at "two"
	if got := r.Bytes(); string(got) != "two\nthree\n" {
		t.Fatalf("got %q", got)
	}
	r.Write([]byte("X")) // window "wo\nthree\nX": the cut line is dropped
	if got := r.Bytes(); string(got) != "three\nX" {
		t.Fatalf("got %q", got)
	}
	// Many small writes must equal one big write.
	var all bytes.Buffer
	r2 := newRing(100)
	for i := 0; i < 1000; i++ {
		line := []byte{byte('a' + i%26), '\n'}
		all.Write(line)
		r2.Write(line)
	}
	want := all.Bytes()[all.Len()-100:]
	if got := r2.Bytes(); !bytes.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestLineTee(t *testing.T) {
	var out bytes.Buffer
	tee := &lineTee{c: &console{w: &out}, prefix: "svc"}
	tee.Write([]byte("par"))
	tee.Write([]byte("tial\r\nsecond\nthi"))
	if got := out.String(); got != "svc: partial\nsvc: second\n" {
		t.Fatalf("got %q", got)
	}
	tee.Flush()
	if got := out.String(); got != "svc: partial\nsvc: second\nsvc: thi\n" {
		t.Fatalf("after flush got %q", got)
	}
}
