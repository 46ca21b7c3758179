package bundle

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// testKey is a fixed release key (a test vector, not a secret).
func testKey(t testing.TB, seed byte) *secp256k1.PrivateKey {
	t.Helper()
	var b [32]byte
	for i := range b {
		b[i] = seed + byte(i)
	}
	return secp256k1.PrivKeyFromBytes(b[:])
}

func pub(k *secp256k1.PrivateKey) [KeyLen]byte {
	var p [KeyLen]byte
	copy(p[:], k.PubKey().SerializeCompressed())
	return p
}

func src(name, content string) Source {
	return Source{Name: name, Open: func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(content)), nil
	}}
}

// testFiles is a small slot: nested names, an empty file, per-slot command lines.
var testFiles = map[string]string{
	"vmlinuz":                  strings.Repeat("kernel ", 5000),
	"bcm2710-rpi-3-b.dtb":      "dtb",
	"overlays/disable-bt.dtbo": "overlay",
	"initrd.gz":                strings.Repeat("\x1f\x8b initramfs", 3000),
	"cmdline.a.txt":            "console=ttyS1 skyfleet.slot=a\n",
	"cmdline.b.txt":            "console=ttyS1 skyfleet.slot=b\n",
	"VERSION":                  "1.4.0\n",
	"empty":                    "",
}

func build(t testing.TB, key *secp256k1.PrivateKey, h Header) []byte {
	t.Helper()
	var srcs []Source
	for n, c := range testFiles {
		srcs = append(srcs, src(n, c))
	}
	var buf bytes.Buffer
	if _, err := Write(&buf, key, h, srcs); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var testHeader = Header{Board: "rpi3b", Version: "1.4.0", Minimum: "1.2", Created: time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)}

func policy(keys ...*secp256k1.PrivateKey) Policy {
	p := Policy{Board: "rpi3b", Running: "1.3.7"}
	for _, k := range keys {
		p.Keys = append(p.Keys, pub(k))
	}
	return p
}

// readAll reads every file of a bundle, returning the contents by name and the
// first error.
func readAll(b []byte, p Policy) (map[string]string, error) {
	r, err := NewReader(bytes.NewReader(b), p)
	if err != nil {
		return nil, err
	}
	got := map[string]string{}
	for {
		f, fr, err := r.Next()
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			return got, err
		}
		c, err := io.ReadAll(fr)
		if err != nil {
			return got, err
		}
		got[f.Name] = string(c)
	}
}

func TestRoundTrip(t *testing.T) {
	key, other := testKey(t, 1), testKey(t, 100)
	b := build(t, key, testHeader)
	got, err := readAll(b, policy(other, key)) // a second key listed: rotation
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(testFiles) {
		t.Fatalf("%d files, want %d", len(got), len(testFiles))
	}
	for n, c := range testFiles {
		if got[n] != c {
			t.Errorf("%s: %d bytes, want %d", n, len(got[n]), len(c))
		}
	}
	r, _ := NewReader(bytes.NewReader(b), policy(key))
	m := r.Manifest
	if m.Board != "rpi3b" || m.Version != "1.4.0" || m.Minimum != "1.2" || !m.Created.Equal(testHeader.Created) || m.Key != pub(key) {
		t.Errorf("manifest %+v", m)
	}
	for i, f := range m.Files {
		if f.SHA256 != sha256.Sum256([]byte(testFiles[f.Name])) || f.Size != int64(len(testFiles[f.Name])) {
			t.Errorf("%s: size or digest wrong", f.Name)
		}
		if i > 0 && m.Files[i-1].Name >= f.Name {
			t.Errorf("files not sorted: %q then %q", m.Files[i-1].Name, f.Name)
		}
	}
	// One encoding: the manifest re-encodes to the bytes that were signed.
	raw, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw, b[len(Magic)+4:len(Magic)+4+len(raw)]) {
		t.Error("the decoded manifest encodes differently")
	}
	// Building again gives the same bytes (RFC 6979 nonces, fixed time, sorted files).
	if !bytes.Equal(build(t, key, testHeader), b) {
		t.Error("two builds of the same files differ")
	}
}

// Each refusal of acceptance 2 comes from NewReader, before any file is read, or
// (a modified or truncated file) from that file's reader, before its content is
// trusted; each says why.
func TestRefusals(t *testing.T) {
	key, other := testKey(t, 1), testKey(t, 100)
	good := build(t, key, testHeader)
	headLen := len(Magic) + 4 + int(beUint32(good[len(Magic):])) + SignatureLen
	flip := func(i int) []byte { b := bytes.Clone(good); b[i] ^= 1; return b }
	for _, tc := range []struct {
		name   string
		b      []byte
		p      Policy
		want   error
		inHead bool // refused by NewReader
		says   string
	}{
		{"bad signature", flip(headLen - 10), policy(key), ErrSignature, true, "bad signature"},
		{"manifest byte changed", flip(len(Magic) + 4 + 3), policy(key), nil, true, ""},
		{"unlisted key", good, policy(other), ErrKey, true, "not among the 1 release keys"},
		{"no release key", good, Policy{Board: "rpi3b"}, ErrKey, true, "no release key is configured"},
		{"wrong board", good, Policy{Keys: [][KeyLen]byte{pub(key)}, Board: "rpi4b"}, ErrBoard, true, "built for rpi3b, this is rpi4b"},
		{"below the minimum", good, Policy{Keys: [][KeyLen]byte{pub(key)}, Board: "rpi3b", Running: "1.1.9"}, ErrVersion, true, "updates 1.2 or later, this runs 1.1.9"},
		{"a dev build and a minimum", good, Policy{Keys: [][KeyLen]byte{pub(key)}, Board: "rpi3b", Running: "dev"}, ErrVersion, true, "not a release"},
		{"a downgrade", good, Policy{Keys: [][KeyLen]byte{pub(key)}, Board: "rpi3b", Running: "1.5"}, ErrVersion, true, "older than the running 1.5"},
		{"modified file", flip(len(good) - 40), policy(key), ErrDigest, false, "does not match"},
		{"truncated in the head", good[:headLen-1], policy(key), ErrTruncated, true, "ends inside"},
		{"truncated in a file", good[:len(good)-1], policy(key), ErrTruncated, false, "stream ends"},
		{"data after the last file", append(bytes.Clone(good), 0), policy(key), ErrFormat, false, "after the last file"},
		{"not a bundle", []byte("PK\x03\x04 a zip file"), policy(key), ErrFormat, true, "not an update bundle"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, herr := NewReader(bytes.NewReader(tc.b), tc.p)
			if (herr != nil) != tc.inHead {
				t.Fatalf("NewReader: %v; want refused there: %v", herr, tc.inHead)
			}
			_, err := readAll(tc.b, tc.p)
			if err == nil {
				t.Fatal("accepted")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.says) {
				t.Errorf("error %q does not say %q", err, tc.says)
			}
		})
	}
	// Allowed explicitly, the downgrade goes through; a dev build takes a bundle
	// without a minimum.
	p := Policy{Keys: [][KeyLen]byte{pub(key)}, Board: "rpi3b", Running: "1.5", AllowDowngrade: true}
	if _, err := readAll(good, p); err != nil {
		t.Errorf("allowed downgrade: %v", err)
	}
	h := testHeader
	h.Minimum = ""
	if _, err := readAll(build(t, key, h), Policy{Keys: [][KeyLen]byte{pub(key)}, Board: "rpi3b", Running: "dev"}); err != nil {
		t.Errorf("dev build, no minimum: %v", err)
	}
}

func beUint32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// A reader that skips a file still gets its error from Next.
func TestSkippedFileStillChecked(t *testing.T) {
	key := testKey(t, 1)
	b := build(t, key, testHeader)
	b[len(b)-40] ^= 1 // inside the last file, vmlinuz
	r, err := NewReader(bytes.NewReader(b), policy(key))
	if err != nil {
		t.Fatal(err)
	}
	for {
		_, _, err = r.Next()
		if err != nil {
			break
		}
	}
	if !errors.Is(err, ErrDigest) {
		t.Errorf("skipping every file: %v, want ErrDigest", err)
	}
}

func TestManifestRefusesNonCanonical(t *testing.T) {
	key := testKey(t, 1)
	base := Manifest{Board: "rpi3b", Version: "1.0", Key: pub(key), Created: time.Unix(1, 0).UTC(),
		Files: []File{{Name: "a", Size: 1}, {Name: "b/c", Size: 2}}}
	raw, err := base.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Unmarshal(raw); err != nil {
		t.Fatalf("the valid manifest: %v", err)
	}
	mod := func(f func(m *Manifest)) Manifest {
		m := base
		m.Files = append([]File(nil), base.Files...)
		f(&m)
		return m
	}
	for name, m := range map[string]Manifest{
		"unsorted":      mod(func(m *Manifest) { m.Files[0], m.Files[1] = m.Files[1], m.Files[0] }),
		"duplicate":     mod(func(m *Manifest) { m.Files[1].Name = "a" }),
		"dot-dot":       mod(func(m *Manifest) { m.Files[1].Name = "b/../../etc" }),
		"absolute":      mod(func(m *Manifest) { m.Files[1].Name = "/etc/passwd" }),
		"empty element": mod(func(m *Manifest) { m.Files[1].Name = "b//c" }),
		"space":         mod(func(m *Manifest) { m.Files[1].Name = "b c" }),
		"no files":      mod(func(m *Manifest) { m.Files = nil }),
		"board":         mod(func(m *Manifest) { m.Board = "RPi3" }),
		"version":       mod(func(m *Manifest) { m.Version = "dev" }),
		"minimum":       mod(func(m *Manifest) { m.Minimum = "1.02" }),
		"too large":     mod(func(m *Manifest) { m.Files[0].Size = MaxFileSize + 1 }),
		"case only":     mod(func(m *Manifest) { m.Files[0].Name = "B/C" }),
		"file and dir":  mod(func(m *Manifest) { m.Files[0].Name = "b" }),
	} {
		if _, err := m.Marshal(); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: Marshal: %v, want ErrFormat", name, err)
		}
	}
	// Bytes the encoder would not write: trailing, and an unsorted pair written by hand.
	if _, err := Unmarshal(append(bytes.Clone(raw), 0)); !errors.Is(err, ErrFormat) {
		t.Errorf("trailing byte: %v", err)
	}
	swapped := bytes.Clone(raw)
	i, j := bytes.Index(swapped, []byte{1, 'a'}), bytes.Index(swapped, []byte{3, 'b', '/', 'c'})
	if i < 0 || j < 0 {
		t.Fatal("test bug: names not found")
	}
	entryA, entryB := bytes.Clone(swapped[i:j]), bytes.Clone(swapped[j:])
	copy(swapped[i:], append(entryB, entryA...))
	if _, err := Unmarshal(swapped); !errors.Is(err, ErrFormat) {
		t.Errorf("names out of order: %v", err)
	}
}

func TestVersions(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"1.2", "1.2.0", 0}, {"v1.2.1", "1.2", 1}, {"1.10", "1.9", 1}, {"0.9.9", "1", -1}, {"2026.12.4", "2026.12.10", -1},
	} {
		if got, err := CompareVersions(tc.a, tc.b); err != nil || got != tc.want {
			t.Errorf("CompareVersions(%q, %q) = %d, %v; want %d", tc.a, tc.b, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "v", "dev", "1..2", "01.2", "1.2.3.4.5", "1.-2", "1.2a", "1234567890"} {
		if _, err := ParseVersion(bad); err == nil {
			t.Errorf("ParseVersion(%q) accepted", bad)
		}
	}
}
