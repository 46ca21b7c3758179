package control

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"unicode/utf8"
)

// realAck is what a real Receiver answers to a stream carrying stream: the bytes
// it writes back, read off a pipe.
func realAck(t testing.TB, rc *Receiver, stream []byte) []byte {
	t.Helper()
	a, b := net.Pipe()
	go rc.ServeConn(keyedConn{b, []byte("peer")})
	go func() { a.Write(stream) }()
	ans, _ := io.ReadAll(a)
	a.Close()
	return ans
}

func frame(t testing.TB, sealed []byte) []byte {
	t.Helper()
	f, err := encodeReportFrame(sealed)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestFrameRoundTrip(t *testing.T) {
	node, master := keys(t)
	sealed, err := Seal(node, master, 9, sample)
	if err != nil {
		t.Fatal(err)
	}
	f := frame(t, sealed)
	if binary.BigEndian.Uint32(f) != uint32(len(sealed)) || !bytes.Equal(f[4:], sealed) {
		t.Fatalf("frame %x", f[:8])
	}
	got, err := readReportFrame(bytes.NewReader(f))
	if err != nil || !bytes.Equal(got, sealed) {
		t.Fatalf("readReportFrame: %v", err)
	}
	if _, err := encodeReportFrame(make([]byte, maxSealed+1)); err == nil {
		t.Error("an oversized report was framed")
	}
	// A forged length must not make the reader allocate or wait for 4 GiB.
	_, err = readReportFrame(bytes.NewReader([]byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3}))
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "over the") {
		t.Errorf("huge length: %v", err)
	}
	if _, err := readReportFrame(bytes.NewReader(f[:len(f)-1])); !errors.Is(err, ErrMalformed) {
		t.Errorf("short frame: %v", err)
	}
}

func TestAck(t *testing.T) {
	if err := readAck(bytes.NewReader(encodeAck(ackOK, "ok"))); err != nil {
		t.Errorf("ok: %v", err)
	}
	err := readAck(bytes.NewReader(encodeAck(ackRefused, "replay\x1b[2J\nforged line")))
	if !errors.Is(err, ErrRefused) || strings.ContainsAny(err.Error(), "\x1b\n") || !strings.Contains(err.Error(), "replay") {
		t.Errorf("refusal with control bytes: %q", err)
	}
	if err := readAck(bytes.NewReader(encodeAck(7, ""))); err == nil || errors.Is(err, ErrRefused) {
		t.Errorf("unknown status: %v", err)
	}
	long := encodeAck(ackRefused, strings.Repeat("é", maxReason)) // 2 bytes each
	if n := binary.BigEndian.Uint16(long[1:]); n > maxReason || !utf8.Valid(long[3:]) {
		t.Errorf("long reason encoded as %d bytes, valid UTF-8 %v", n, utf8.Valid(long[3:]))
	}
	for _, short := range [][]byte{nil, {ackOK}, {ackRefused, 0, 5, 'a'}} {
		if err := readAck(bytes.NewReader(short)); err == nil {
			t.Errorf("short answer %x accepted", short)
		}
	}
}

// FuzzReportFrame: the master reads a report frame from any node that can open a
// stream. It must never allocate past maxSealed, must return exactly the bytes
// the prefix announces, must fail (with ErrMalformed) exactly when the stream is
// too short or the length too big, and a frame it reads is re-encoded to the same
// bytes.
func FuzzReportFrame(f *testing.F) {
	node, master := keys(f)
	sealed, _ := Seal(node, master, 3, sample)
	f.Add(frame(f, sealed))
	f.Add(frame(f, nil))
	f.Add([]byte{0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o', 'x'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add(binary.BigEndian.AppendUint32(nil, maxSealed))
	f.Fuzz(func(t *testing.T, stream []byte) {
		b, err := readReportFrame(bytes.NewReader(stream))
		var size uint64 = 1 << 40
		if len(stream) >= 4 {
			size = uint64(binary.BigEndian.Uint32(stream))
		}
		wantOK := size <= maxSealed && uint64(len(stream)) >= 4+size
		if (err == nil) != wantOK {
			t.Fatalf("%d-byte stream announcing %d: err %v", len(stream), size, err)
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) || b != nil {
				t.Fatalf("error %v (with %d bytes) does not wrap ErrMalformed", err, len(b))
			}
			return
		}
		if !bytes.Equal(b, stream[4:4+size]) {
			t.Fatal("frame content differs from the stream")
		}
		again, err := encodeReportFrame(b)
		if err != nil || !bytes.Equal(again, stream[:4+size]) {
			t.Fatalf("re-encoded frame differs: %v", err)
		}
	})
}

// FuzzReportAck: the node reads the master's answer. Only status ackOK is
// success; a refusal wraps ErrRefused and carries the reason escaped and
// bounded; anything else is an error; nothing panics or reads past the reason.
func FuzzReportAck(f *testing.F) {
	node, master := keys(f)
	rc := &Receiver{
		Master:  master,
		PeerKey: func(net.Addr) []byte { return node.PubKey().SerializeCompressed() },
		Accept:  func(*Signed) error { return nil },
	}
	sealed, _ := Seal(node, master, 3, sample)
	f.Add(realAck(f, rc, frame(f, sealed)))         // ok
	f.Add(realAck(f, rc, frame(f, []byte("junk")))) // a refusal
	f.Add(realAck(f, rc, []byte{0xff, 0xff, 0xff, 0xff}))
	f.Add([]byte{ackRefused, 0xff, 0xff, 'x'})
	f.Add([]byte{9, 0, 0})
	f.Fuzz(func(t *testing.T, answer []byte) {
		r := bytes.NewReader(answer)
		err := readAck(r)
		consumed := len(answer) - r.Len()
		if len(answer) >= 3 {
			want := 3 + min(int(binary.BigEndian.Uint16(answer[1:])), maxReason)
			if consumed > want {
				t.Fatalf("read %d bytes, the answer is %d", consumed, want)
			}
			if len(answer) >= want {
				switch answer[0] {
				case ackOK:
					if err != nil {
						t.Fatalf("ok answer: %v", err)
					}
					return
				case ackRefused:
					if !errors.Is(err, ErrRefused) {
						t.Fatalf("refusal: %v", err)
					}
				}
			}
		}
		if err == nil {
			t.Fatalf("answer %x accepted", answer)
		}
		msg := err.Error()
		if len(msg) > 200+4*maxReason || strings.ContainsAny(msg, "\n\r\x1b") {
			t.Fatalf("error message of %d bytes, or with control bytes: %q", len(msg), msg)
		}
	})
}
