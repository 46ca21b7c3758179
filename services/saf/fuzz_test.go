package saf

import (
	"bytes"
	"testing"
	"time"
)

// seeds returns a few valid encodings for the fuzz corpora.
func seeds() [][]byte {
	var out [][]byte
	for _, b := range []*Bundle{sample(),
		{Port: 9, Source: keyN(3), Lifetime: time.Second},
		{Class: ClassRealTime, Port: 65535, Source: keyN(4), Destination: keyN(5), Created: 1, Seq: 1<<64 - 1, Lifetime: MaxLifetime, Payload: bytes.Repeat([]byte{0xff}, 300)}} {
		enc, err := b.Marshal()
		if err != nil {
			panic(err)
		}
		out = append(out, enc)
	}
	return out
}

// FuzzParse: the bundle decoder never panics, and whatever it accepts re-encodes
// to exactly the input (one canonical encoding).
func FuzzParse(f *testing.F) {
	for _, s := range seeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, enc []byte) {
		b, err := Parse(enc)
		if err != nil {
			return
		}
		again, err := b.Marshal()
		if err != nil || !bytes.Equal(again, enc) {
			t.Fatalf("accepted a non-canonical encoding (%v)", err)
		}
	})
}

// FuzzParseTransfer: the Transfer and data-mule file decoders never panic and
// accept only a canonical bundle.
func FuzzParseTransfer(f *testing.F) {
	for _, s := range seeds() {
		f.Add(AppendTransfer(nil, time.Minute, s)[5:])
		f.Add(MarshalFile(time.Hour, s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, parse := range []func([]byte) (Transfer, *Bundle, error){ParseTransfer, ParseFile} {
			tr, b, err := parse(body)
			if err != nil {
				continue
			}
			enc, err := b.Marshal()
			if err != nil || !bytes.Equal(enc, tr.Bundle) {
				t.Fatal("accepted bundle does not re-encode")
			}
		}
	})
}

// FuzzParseCustodyAck: the ack decoder never panics and round-trips.
func FuzzParseCustodyAck(f *testing.F) {
	f.Add(AppendCustodyAck(nil, IDOf([]byte("x")), StatusAccepted)[5:])
	f.Add(AppendCustodyAck(nil, ID{}, StatusRefused)[5:])
	f.Fuzz(func(t *testing.T, body []byte) {
		id, st, err := ParseCustodyAck(body)
		if err != nil {
			return
		}
		if !bytes.Equal(AppendCustodyAck(nil, id, st)[5:], body) {
			t.Fatal("ack does not round trip")
		}
	})
}
