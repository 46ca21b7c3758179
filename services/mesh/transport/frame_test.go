package transport

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// decodeAll reads frames from r until an error and returns copies of their
// datagrams, the buffer capacity of the largest one, and the error.
func decodeAll(r io.Reader) (frames [][]byte, maxCap int, err error) {
	fr := frameReader{r: r}
	for {
		b, hn, err := fr.next()
		if err != nil {
			if hn != 0 && hn != frameHeader && !errors.Is(err, io.ErrUnexpectedEOF) {
				return frames, maxCap, errors.New("a partial header must be io.ErrUnexpectedEOF")
			}
			return frames, maxCap, err
		}
		if hn != frameHeader {
			return frames, maxCap, errors.New("a frame read without its whole header")
		}
		maxCap = max(maxCap, cap(*b))
		frames = append(frames, append([]byte(nil), *b...))
		putBuf(b)
	}
}

// encodeAll frames each of ps in turn.
func encodeAll(ps [][]byte) []byte {
	var out []byte
	for _, p := range ps {
		out = appendFrame(out, p)
	}
	return out
}

// FuzzTCPFrame feeds arbitrary bytes to the TCP framing decoder, the bytes a
// stranger controls on an accepted connection, and checks that it never panics,
// never takes a buffer beyond the largest frame, consumes exactly whole frames,
// ends cleanly only at a frame boundary, decodes the same however the stream is
// cut into reads, and that framing then decoding any datagrams gives them back.
func FuzzTCPFrame(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0})                                              // one empty datagram
	f.Add([]byte{0, 5, 'h', 'e', 'l', 'l', 'o'})                     // one datagram
	f.Add([]byte{0, 1, 'a', 0, 0, 0, 2, 'b', 'c'})                   // three, one empty
	f.Add([]byte{0})                                                 // header cut short
	f.Add([]byte{0, 5, 'h', 'e', 'l'})                               // body cut short
	f.Add([]byte{0xff, 0xff})                                        // the largest length, no body
	f.Add(append([]byte{0xff, 0xff}, make([]byte, TCPMTU)...))       // the largest frame
	f.Add(append([]byte{0xff, 0xff}, make([]byte, TCPMTU+1)...))     // and one byte more
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))               // a stray HTTP client
	f.Add([]byte{0x01, 0x00, 0x00, 0x00, 0x2a, 0x00, 0x00, 0x00, 7}) // link-header-like bytes
	f.Fuzz(func(t *testing.T, data []byte) {
		frames, maxCap, err := decodeAll(bytes.NewReader(data))
		if maxCap > frameHeader+TCPMTU {
			t.Fatalf("a frame took a %d-byte buffer, more than the %d-byte maximum", maxCap, frameHeader+TCPMTU)
		}
		consumed := 0
		for _, p := range frames {
			if len(p) > TCPMTU {
				t.Fatalf("decoded a %d-byte datagram, over TCPMTU", len(p))
			}
			consumed += frameHeader + len(p)
		}
		if consumed > len(data) {
			t.Fatalf("decoded %d bytes of frames from %d bytes", consumed, len(data))
		}
		// Re-framing what was decoded gives back exactly the bytes consumed.
		if enc := encodeAll(frames); !bytes.Equal(enc, data[:consumed]) {
			t.Fatalf("re-encoded frames differ from the input they came from")
		}
		rest := data[consumed:]
		switch {
		case len(rest) == 0:
			if err != io.EOF {
				t.Fatalf("input ended at a frame boundary: err %v, want io.EOF", err)
			}
		case !errors.Is(err, io.ErrUnexpectedEOF):
			t.Fatalf("%d bytes left over: err %v, want io.ErrUnexpectedEOF", len(rest), err)
		case len(rest) >= frameHeader && frameHeader+(int(rest[0])<<8|int(rest[1])) <= len(rest):
			t.Fatalf("stopped before a complete frame (%d bytes left)", len(rest))
		}
		// Cut into one-byte reads, the stream decodes the same.
		frames1, _, err1 := decodeAll(iotest.OneByteReader(bytes.NewReader(data)))
		if err1 != err || len(frames1) != len(frames) {
			t.Fatalf("one-byte reads: %d frames, %v; whole: %d frames, %v", len(frames1), err1, len(frames), err)
		}
		for i := range frames {
			if !bytes.Equal(frames[i], frames1[i]) {
				t.Fatalf("one-byte reads: frame %d differs", i)
			}
		}
		// Round trip: the input, its halves and an empty datagram, framed and decoded.
		p := data[:min(len(data), TCPMTU)]
		want := [][]byte{p, p[:len(p)/2], {}, p[len(p)/2:]}
		got, _, err := decodeAll(bytes.NewReader(encodeAll(want)))
		if err != io.EOF || len(got) != len(want) {
			t.Fatalf("round trip: %d frames, %v; want %d, io.EOF", len(got), err, len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("round trip: datagram %d differs", i)
			}
		}
	})
}

// TestFrameErrors pins the decoder's answers for the cut-short cases a connection
// sees, which the reader uses to tell a clean close from a broken one.
func TestFrameErrors(t *testing.T) {
	for _, tc := range []struct {
		in     []byte
		frames int
		hn     int // header bytes read by the failing call
		err    error
	}{
		{nil, 0, 0, io.EOF},
		{[]byte{0}, 0, 1, io.ErrUnexpectedEOF},
		{[]byte{0, 3}, 0, 2, io.ErrUnexpectedEOF},
		{[]byte{0, 3, 1, 2}, 0, 2, io.ErrUnexpectedEOF},
		{[]byte{0, 0, 0, 1, 9}, 2, 0, io.EOF},
		{[]byte{0, 0, 0, 1, 9, 0xff}, 2, 1, io.ErrUnexpectedEOF},
	} {
		fr := frameReader{r: bytes.NewReader(tc.in)}
		n := 0
		for {
			b, hn, err := fr.next()
			if err != nil {
				if n != tc.frames || hn != tc.hn || err != tc.err {
					t.Errorf("%x: %d frames then hn=%d err=%v; want %d frames, hn=%d err=%v", tc.in, n, hn, err, tc.frames, tc.hn, tc.err)
				}
				break
			}
			putBuf(b)
			n++
		}
	}
	// The wire form is the 2-byte big-endian length, then the datagram.
	if got := appendFrame([]byte{7}, []byte("hi")); !bytes.Equal(got, []byte{7, 0, 2, 'h', 'i'}) {
		t.Errorf("appendFrame = %x", got)
	}
	if got := appendFrame(nil, make([]byte, 0x1234)); got[0] != 0x12 || got[1] != 0x34 || len(got) != 2+0x1234 {
		t.Errorf("appendFrame of 0x1234 bytes starts %x, length %d", got[:2], len(got))
	}
}
