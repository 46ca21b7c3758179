package wav

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
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
