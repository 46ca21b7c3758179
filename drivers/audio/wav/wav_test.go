package wav

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"testing/iotest"
)

func TestRoundTrip(t *testing.T) {
	in := []int16{0, 1, -1, 32767, -32768, 1234}
	var b bytes.Buffer
	if err := Write(&b, 22050, in); err != nil {
		t.Fatal(err)
	}
	if b.Len() != 44+2*len(in) {
		t.Fatalf("%d bytes", b.Len())
	}
	rate, out, err := Read(&b)
	if err != nil || rate != 22050 || len(out) != len(in) {
		t.Fatalf("%d %v %v", rate, out, err)
	}
	for i := range in {
		if out[i] != in[i] {
			t.Fatalf("sample %d: %d, want %d", i, out[i], in[i])
		}
	}
}

// sox, an implementation nobody here wrote, reads what Write writes as 16-bit
// mono at its rate, and writes a stereo file with a LIST chunk (from a pipe,
// with an unknown length) that Read takes, first channel.
func TestSox(t *testing.T) {
	if _, err := exec.LookPath("sox"); err != nil {
		t.Fatal("sox not found: install the Debian package sox (scripts/deps.sh does)")
	}
	dir := t.TempDir()
	in := make([]int16, 4800)
	for i := range in {
		in[i] = int16(i*7 - 16000)
	}
	var b bytes.Buffer
	Write(&b, 48000, in)
	f := filepath.Join(dir, "in.wav")
	if err := os.WriteFile(f, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	info, err := exec.Command("soxi", "-r", f).Output()
	if err != nil || string(bytes.TrimSpace(info)) != "48000" {
		t.Fatalf("soxi -r: %q %v", info, err)
	}
	// Stereo, the second channel negated, written to a pipe.
	out, err := exec.Command("sox", f, "-t", "wav", "-", "remix", "1", "1v-1").Output()
	if err != nil {
		t.Fatal(err)
	}
	rate, got, err := Read(bytes.NewReader(out))
	if err != nil || rate != 48000 || len(got) != len(in) {
		t.Fatalf("sox's stereo file: %d Hz, %d samples, %v", rate, len(got), err)
	}
	for i := range in {
		if got[i] != in[i] {
			t.Fatalf("sample %d: %d, want %d", i, got[i], in[i])
		}
	}
}

// stereoFile is a 16-bit stereo WAV file of in (right channel: -in) with a
// LIST chunk after its data, which a reader must not take for samples.
func stereoFile(rate int, in []int16) []byte {
	var b bytes.Buffer
	le := func(v any) { binary.Write(&b, binary.LittleEndian, v) }
	b.WriteString("RIFF")
	le(uint32(0)) // length unknown, as from a pipe
	b.WriteString("WAVEfmt ")
	le(uint32(16))
	le([]uint16{1, 2})
	le([]uint32{uint32(rate), uint32(4 * rate)})
	le([]uint16{4, 16})
	b.WriteString("data")
	le(uint32(4 * len(in)))
	for _, v := range in {
		le([]int16{v, -v})
	}
	b.WriteString("LIST\x04\x00\x00\x00junk")
	return b.Bytes()
}

// The streaming Reader gives the same samples as the whole-file Read however
// the bytes arrive (one at a time, with the last one's io.EOF) and however few
// samples each call asks for, stops at the data chunk's end, and drops a
// trailing partial frame.
func TestReaderStreams(t *testing.T) {
	in := make([]int16, 1000)
	for i := range in {
		in[i] = int16(i*31 - 15000)
	}
	file := stereoFile(22050, in)
	for _, bufLen := range []int{1, 7, 4096} {
		for name, src := range map[string]io.Reader{
			"whole":      bytes.NewReader(file),
			"byte-wise":  iotest.OneByteReader(bytes.NewReader(file)),
			"data+EOF":   iotest.DataErrReader(bytes.NewReader(file)),
			"half reads": iotest.HalfReader(bytes.NewReader(file)),
		} {
			w, err := NewReader(src)
			if err != nil || w.Rate != 22050 || w.Channels != 2 {
				t.Fatalf("%s: %+v %v", name, w, err)
			}
			var got []int16
			buf := make([]int16, bufLen)
			for {
				n, err := w.Read(buf)
				got = append(got, buf[:n]...)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("%s/%d: %v", name, bufLen, err)
				}
			}
			if !slices.Equal(got, in) {
				t.Fatalf("%s/%d: %d samples, differing from the %d written", name, bufLen, len(got), len(in))
			}
		}
	}
	// Cut inside the last frame, with no length: the whole frames, then EOF.
	raw := NewRawReader(bytes.NewReader([]byte{1, 0, 2, 0, 3}), 8000)
	buf := make([]int16, 8)
	n, err := raw.Read(buf)
	if n2, err2 := raw.Read(buf[n:]); n+n2 != 2 || buf[0] != 1 || buf[1] != 2 || (err == nil && err2 != io.EOF) {
		t.Fatalf("raw cut short: %v %v %v", buf[:n+n2], err, err2)
	}
	if n, err := raw.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("after the end: %d %v", n, err)
	}
}

func TestReadRefuses(t *testing.T) {
	var b bytes.Buffer
	Write(&b, 8000, []int16{1, 2, 3})
	good := b.Bytes()
	set := func(off int, v uint16) []byte {
		c := bytes.Clone(good)
		binary.LittleEndian.PutUint16(c[off:], v)
		return c
	}
	for name, in := range map[string][]byte{
		"empty":       nil,
		"not RIFF":    append([]byte("RIFX"), good[4:]...),
		"8-bit":       set(34, 8),
		"float":       set(20, 3),
		"no channels": set(22, 0),
		"no data":     good[:36],
		"data first":  append(append(bytes.Clone(good[:12]), good[36:]...), good[12:36]...),
		"huge fmt":    set(16, 0xFFFF),
	} {
		if _, _, err := Read(bytes.NewReader(in)); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: %v, want ErrFormat", name, err)
		}
	}
	// A file cut off inside its data keeps its whole samples.
	if _, s, err := Read(bytes.NewReader(good[:len(good)-1])); err != nil || len(s) != 2 {
		t.Errorf("cut off: %v %v", s, err)
	}
}

// FuzzRead: any bytes read without a panic, and what reads writes back to the
// same samples.
func FuzzRead(f *testing.F) {
	var b bytes.Buffer
	Write(&b, 44100, []int16{1, -2, 3})
	f.Add(b.Bytes())
	f.Add([]byte("RIFF\x00\x00\x00\x00WAVEdata\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, in []byte) {
		rate, s, err := Read(bytes.NewReader(in))
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := Write(&out, rate, s); err != nil {
			t.Fatal(err)
		}
		r2, s2, err := Read(&out)
		if err != nil || r2 != rate || len(s2) != len(s) {
			t.Fatalf("re-read: %d %d %v", r2, len(s2), err)
		}
	})
}
