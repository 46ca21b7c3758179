package ax25

import (
	"bytes"
	"testing"
)

// FuzzDecode: Decode never panics, and a frame it takes encodes again to the
// same bytes (nothing it reads is lost or changed); its TNC2 text parses back
// to a frame with the same addresses and info.
func FuzzDecode(f *testing.F) {
	for _, v := range []string{"K1ABC>CQ:hi", "N0CALL-7>APRS,WIDE1-1*,WIDE2-2:!4903.50N/07201.75W-<0x0a>", "A>B,C,D,E,F,G,H,I,J:"} {
		fr, err := ParseTNC2(v)
		if err != nil {
			f.Fatal(err)
		}
		b, _ := fr.Encode()
		f.Add(b)
	}
	f.Add(make([]byte, MinFrame))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := Decode(b)
		if err != nil {
			return
		}
		again, err := fr.Encode()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("decoded %x, encoded %x (%v)", b, again, err)
		}
		p, err := ParseTNC2(fr.TNC2())
		if err != nil {
			t.Fatalf("its TNC2 %q: %v", fr.TNC2(), err)
		}
		if p.Src.String() != fr.Src.String() || p.Dst.String() != fr.Dst.String() || len(p.Path) != len(fr.Path) || !bytes.Equal(p.Info, fr.Info) {
			t.Fatalf("TNC2 %q parsed to %+v, from %+v", fr.TNC2(), p, fr)
		}
	})
}

// FuzzTNC2: ParseTNC2 never panics, and a line it takes gives a frame whose own
// TNC2 text parses to the same bytes on the wire.
func FuzzTNC2(f *testing.F) {
	for _, s := range []string{"K1ABC>CQ:hi", "K1ABC-15>APZ001,RELAY*,WIDE2-1:<0x00><0x3c>0x41>", "a>b::", "K1ABC>CQ,A*,B*:x\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		fr, err := ParseTNC2(line)
		if err != nil {
			return
		}
		wire, err := fr.Encode()
		if err != nil {
			t.Fatalf("%q parsed but does not encode: %v", line, err)
		}
		again, err := ParseTNC2(fr.TNC2())
		if err != nil {
			t.Fatalf("%q: its TNC2 %q: %v", line, fr.TNC2(), err)
		}
		if w2, err := again.Encode(); err != nil || !bytes.Equal(w2, wire) {
			t.Fatalf("%q: TNC2 %q encodes to %x, not %x", line, fr.TNC2(), w2, wire)
		}
	})
}
