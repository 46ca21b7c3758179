package ax25

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
)

// The CRC catalogue's check value of CRC-16/X.25 (also called CRC-16/IBM-SDLC):
// "123456789" gives 0x906E.
func TestFCSCheckValue(t *testing.T) {
	if got := FCS([]byte("123456789")); got != 0x906E {
		t.Fatalf("FCS(123456789) = 0x%04X, want 0x906E", got)
	}
	// A frame with its FCS appended, low byte first, has the CRC's constant
	// residue: the FCS of the whole is 0x0F47 (its good-frame value, 0xF0B8,
	// complemented by the final XOR).
	b := []byte("123456789")
	f := FCS(b)
	if got := FCS(append(b, byte(f), byte(f>>8))); got != 0x0F47 {
		t.Fatalf("residue 0x%04X, want 0x0F47", got)
	}
}

// direwolfVector is one record of testdata/direwolf-ui.txt.
type direwolfVector struct {
	in, tnc2 string
	frame    []byte
}

func direwolfVectors(t *testing.T) []direwolfVector {
	t.Helper()
	f, err := os.Open("testdata/direwolf-ui.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []direwolfVector
	var v direwolfVector
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, val, _ := strings.Cut(sc.Text(), ": ")
		switch k {
		case "in":
			v = direwolfVector{in: val}
		case "tnc2":
			v.tnc2 = val
		case "hex":
			if v.frame, err = hex.DecodeString(val); err != nil {
				t.Fatal(err)
			}
			out = append(out, v)
		}
	}
	if len(out) != 2 {
		t.Fatalf("%d vectors in testdata/direwolf-ui.txt", len(out))
	}
	return out
}

// Frames Dire Wolf built decode to what Dire Wolf printed for them, in TNC2
// text byte for byte, and encode again to the same bytes. Dire Wolf 1.6 sets
// the C bit of the source as well as the destination's (both set is the older
// protocol's mark, AX.25 2.2 §6.1.2); a frame made here from the same text
// sends a 2.2 command, the source's C bit clear, and differs in that bit only.
func TestDirewolfFrames(t *testing.T) {
	for _, v := range direwolfVectors(t) {
		fcs := FCS(v.frame)
		wire := append(bytes.Clone(v.frame), byte(fcs), byte(fcs>>8))
		f, err := Decode(wire)
		if err != nil {
			t.Fatalf("%s: %v", v.in, err)
		}
		if got := f.TNC2(); got != v.tnc2 {
			t.Errorf("TNC2 %q, Dire Wolf printed %q", got, v.tnc2)
		}
		if !f.Dst.CH || !f.Src.CH || f.Dst.Reserved != 3 || f.Control != ControlUI || f.PID != PIDNoLayer3 {
			t.Errorf("%s: fields %+v", v.in, f)
		}
		again, err := f.Encode()
		if err != nil || !bytes.Equal(again, wire) {
			t.Errorf("%s: re-encoded\n%x\nwant\n%x (%v)", v.in, again, wire, err)
		}
		// From the text Dire Wolf was given plus the newline gen_packets kept.
		p, err := ParseTNC2(v.in + "<0x0a>")
		if err != nil {
			t.Fatalf("%s: %v", v.in, err)
		}
		mine, err := p.Encode()
		if err != nil {
			t.Fatal(err)
		}
		want := bytes.Clone(wire)
		want[13] &^= 0x80 // the source's C bit
		fcs = FCS(want[:len(want)-2])
		want[len(want)-2], want[len(want)-1] = byte(fcs), byte(fcs>>8)
		if !bytes.Equal(mine, want) {
			t.Errorf("%s: encoded\n%x\nwant (Dire Wolf's with the source's C bit clear)\n%x", v.in, mine, want)
		}
	}
}

func TestTNC2RoundTrip(t *testing.T) {
	for _, c := range []struct {
		line string
		info []byte
		path string
	}{
		{"K1ABC-15>APZ001,RELAY*,WIDE2-1:hi", []byte("hi"), "RELAY(H) WIDE2-1"},
		{"K1ABC>APZ001,A,B*,C:x", []byte("x"), "A(H) B(H) C"},
		{"K1ABC>APZ001:<0x00><0xff><0x3c>0x41>", []byte{0x00, 0xff, '<', '0', 'x', '4', '1', '>'}, ""},
		{"k1abc>cq::colon:in:info", []byte(":colon:in:info"), ""},
		{"K1ABC>CQ:", nil, ""},
	} {
		f, err := ParseTNC2(c.line)
		if err != nil {
			t.Fatalf("%q: %v", c.line, err)
		}
		if !bytes.Equal(f.Info, c.info) && !(len(f.Info) == 0 && len(c.info) == 0) {
			t.Errorf("%q: info %q, want %q", c.line, f.Info, c.info)
		}
		var path []string
		for _, d := range f.Path {
			s := d.String()
			if d.CH {
				s += "(H)"
			}
			path = append(path, s)
		}
		if strings.Join(path, " ") != c.path {
			t.Errorf("%q: path %v, want %s", c.line, path, c.path)
		}
		wire, err := f.Encode()
		if err != nil {
			t.Fatal(err)
		}
		back, err := Decode(wire)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseTNC2(back.TNC2())
		if err != nil {
			t.Fatalf("%q: its own TNC2 %q: %v", c.line, back.TNC2(), err)
		}
		if w2, _ := again.Encode(); !bytes.Equal(w2, wire) {
			t.Errorf("%q: TNC2 %q does not give the same frame", c.line, back.TNC2())
		}
	}
	// A literal "<0x41>" in the info is kept as text, not read as 'A'.
	f := NewUI(Address{Call: "CQ"}, Address{Call: "K1ABC"}, nil, []byte("<0x41>"))
	if s := f.TNC2(); s != "K1ABC>CQ:<0x3c>0x41>" {
		t.Errorf("TNC2 %q", s)
	}
}

// Damaged or foreign frames are refused with the reason, never half-read.
func TestDecodeRefuses(t *testing.T) {
	good, _ := NewUI(Address{Call: "APZ001"}, Address{Call: "K1ABC", SSID: 9}, []Address{{Call: "WIDE1", SSID: 1}}, []byte("hello")).Encode()
	resum := func(b []byte) []byte {
		b = bytes.Clone(b)
		f := FCS(b[:len(b)-2])
		b[len(b)-2], b[len(b)-1] = byte(f), byte(f>>8)
		return b
	}
	flip := func(i int, mask byte) []byte {
		b := bytes.Clone(good)
		b[i] ^= mask
		return b
	}
	nine := make([]Address, 9)
	for i := range nine {
		nine[i] = Address{Call: "WIDE", SSID: uint8(i)}
	}
	// Ten addresses without an end bit, then control and PID.
	var noEnd []byte
	for range 11 {
		noEnd = Address{Call: "ABC"}.appendField(noEnd, false)
	}
	noEnd = resum(append(noEnd, 0x03, 0xF0, 0, 0))
	for _, c := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrShort},
		{"a bit flipped", flip(20, 0x04), ErrFCS},
		{"FCS bytes swapped", append(bytes.Clone(good[:len(good)-2]), good[len(good)-1], good[len(good)-2]), ErrFCS},
		{"an I frame", resum(flip(21, 0x03^0x00)), ErrNotUI},
		{"lower case callsign", resum(flip(0, ('A'<<1)^('a'<<1))), ErrAddress},
		{"end bit inside a callsign", resum(flip(2, 0x01)), ErrAddress},
		{"address field ends at the destination", resum(flip(6, 0x01)), ErrAddress},
		{"no end of the address field", noEnd, ErrAddress},
		{"address field runs off the end", resum(append(Address{Call: "A"}.appendField(Address{Call: "B"}.appendField(nil, false), false), 0, 0)), ErrShort},
	} {
		if _, err := Decode(c.b); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	for _, c := range []struct {
		name string
		f    *Frame
	}{
		{"nine digipeaters", NewUI(Address{Call: "CQ"}, Address{Call: "K1ABC"}, nine, nil)},
		{"seven-letter callsign", NewUI(Address{Call: "CQ"}, Address{Call: "K1ABCDE"}, nil, nil)},
		{"SSID 16", NewUI(Address{Call: "CQ"}, Address{Call: "K1ABC", SSID: 16}, nil, nil)},
		{"punctuation", NewUI(Address{Call: "CQ"}, Address{Call: "K1-AB"}, nil, nil)},
		{"info too long", NewUI(Address{Call: "CQ"}, Address{Call: "K1ABC"}, nil, make([]byte, MaxInfo+1))},
		{"an I frame", &Frame{Dst: Address{Call: "CQ"}, Src: Address{Call: "K1ABC"}, Control: 0x00}},
	} {
		if c.f.Control == 0 && c.name == "an I frame" {
			c.f.Control = 0x10 // I frame N(S)=0 with P; 0 itself means "UI" to Encode
		}
		if _, err := c.f.Encode(); err == nil {
			t.Errorf("%s: encoded", c.name)
		}
	}
	for _, line := range []string{"K1ABC>CQ", "K1ABC:x", ">CQ:x", "K1ABC>CQ-16:x", "K1ABC>CQ,,A:x", "K1ABC>CQ,A,B,C,D,E,F,G,H,I:x", "K1ABC-1-2>CQ:x", "K1 ABC>CQ:x"} {
		if _, err := ParseTNC2(line); err == nil {
			t.Errorf("ParseTNC2(%q) took it", line)
		}
	}
}
