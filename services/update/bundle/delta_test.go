package bundle

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// runningSlot is slot a as a device holds it after installing testFiles: the
// files by their names, and slot a's command line as cmdline.txt.
func runningSlot() fstest.MapFS {
	fsys := fstest.MapFS{}
	for n, c := range testFiles {
		if isCmdline(n) {
			continue
		}
		fsys[n] = &fstest.MapFile{Data: []byte(c), Mode: 0o644}
	}
	fsys["cmdline.txt"] = &fstest.MapFile{Data: []byte(testFiles["cmdline.a.txt"])}
	return fsys
}

// buildDelta builds release 1.5.0 (a new initramfs and VERSION) as a delta
// against the full 1.4.0 bundle.
func buildDelta(t testing.TB) (full, delta []byte) {
	t.Helper()
	key := testKey(t, 1)
	full = build(t, key, testHeader)
	base, err := ReadHead(bytes.NewReader(full))
	if err != nil {
		t.Fatal(err)
	}
	var srcs []Source
	for n, c := range testFiles {
		switch n {
		case "initrd.gz":
			c = strings.Repeat("\x1f\x8b initramfs 1.5", 3000)
		case "VERSION":
			c = "1.5.0\n"
		}
		srcs = append(srcs, src(n, c))
	}
	h := testHeader
	h.Version, h.Base = "1.5.0", base
	var buf bytes.Buffer
	if _, err := Write(&buf, key, h, srcs); err != nil {
		t.Fatal(err)
	}
	return full, buf.Bytes()
}

// A delta bundle carries only what changed; read against the running slot it
// yields every file of the new release, the unchanged ones from the slot.
func TestDelta(t *testing.T) {
	full, delta := buildDelta(t)
	p := policy(testKey(t, 1))
	p.Base = runningSlot()
	r, err := NewReader(bytes.NewReader(delta), p)
	if err != nil {
		t.Fatal(err)
	}
	m := r.Manifest
	if m.Base != "1.4.0" || !m.Delta() {
		t.Fatalf("base %q, delta %v", m.Base, m.Delta())
	}
	carried := map[string]bool{}
	for _, f := range m.Files {
		if !f.FromRunning {
			carried[f.Name] = true
		}
	}
	// What changed, and the command lines (they name their slot), are carried.
	want := map[string]bool{"initrd.gz": true, "VERSION": true, "cmdline.a.txt": true, "cmdline.b.txt": true}
	if len(carried) != len(want) {
		t.Errorf("carried %v, want %v", carried, want)
	}
	for n := range want {
		if !carried[n] {
			t.Errorf("%s not carried", n)
		}
	}
	// The stream holds the head and the carried files only.
	raw, _ := m.Marshal()
	if head := len(Magic) + 4 + len(raw) + SignatureLen; int64(len(delta)) != int64(head)+m.Carried() {
		t.Errorf("delta is %d bytes, want %d of head and %d of carried files", len(delta), head, m.Carried())
	}
	if m.Carried() >= m.Total()-int64(len(testFiles["vmlinuz"])) || len(delta) >= len(full) {
		t.Errorf("carried %d of %d bytes (delta %d, full %d): the unchanged kernel was carried", m.Carried(), m.Total(), len(delta), len(full))
	}
	got, err := readAll(delta, p)
	if err != nil {
		t.Fatal(err)
	}
	if got["vmlinuz"] != testFiles["vmlinuz"] || got["VERSION"] != "1.5.0\n" || got["overlays/disable-bt.dtbo"] != "overlay" || got["empty"] != "" {
		t.Errorf("files read through the delta differ from the release's")
	}
	if len(got) != len(testFiles) {
		t.Errorf("%d files, want %d", len(got), len(testFiles))
	}
}

// A delta is refused with ErrBase when the running slot does not hold exactly
// the files it leaves out: before any file is read when one is missing or has
// another size, on that file's last byte when its content differs.
func TestDeltaRefusals(t *testing.T) {
	_, delta := buildDelta(t)
	key := testKey(t, 1)
	changed := runningSlot()
	k := []byte(testFiles["vmlinuz"])
	k[100] ^= 1
	changed["vmlinuz"] = &fstest.MapFile{Data: k}
	missing := runningSlot()
	delete(missing, "overlays/disable-bt.dtbo")
	longer := runningSlot()
	longer["bcm2710-rpi-3-b.dtb"] = &fstest.MapFile{Data: []byte("dtb!")}
	for _, tc := range []struct {
		name   string
		base   fstest.MapFS
		inHead bool
		says   string
	}{
		{"no running slot", nil, true, "gave no running slot"},
		{"a file differs", changed, false, "running slot's vmlinuz differs from the one of 1.4.0"},
		{"a file is missing", missing, true, "overlays/disable-bt.dtbo is missing"},
		{"a file has another size", longer, true, "bcm2710-rpi-3-b.dtb is missing or not the one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := policy(key)
			if tc.base != nil {
				p.Base = tc.base
			}
			_, herr := NewReader(bytes.NewReader(delta), p)
			if (herr != nil) != tc.inHead {
				t.Fatalf("NewReader: %v; want refused there: %v", herr, tc.inHead)
			}
			_, err := readAll(delta, p)
			if !errors.Is(err, ErrBase) || !strings.Contains(err.Error(), tc.says) || !strings.Contains(err.Error(), "send the full bundle") && tc.base != nil {
				t.Errorf("error %v, want ErrBase saying %q", err, tc.says)
			}
		})
	}
}

// DirReader reads a spooled slot and catches a file that changed after it was
// spooled.
func TestDirReader(t *testing.T) {
	key := testKey(t, 1)
	r, err := NewReader(bytes.NewReader(build(t, key, testHeader)), policy(key))
	if err != nil {
		t.Fatal(err)
	}
	spool := fstest.MapFS{}
	for n, c := range testFiles {
		spool[n] = &fstest.MapFile{Data: []byte(c)}
	}
	read := func() (int, error) {
		dr := DirReader(r.Manifest, spool)
		n := 0
		for {
			_, fr, err := dr.Next()
			if err == io.EOF {
				return n, nil
			}
			if err == nil {
				_, err = io.Copy(io.Discard, fr)
			}
			if err != nil {
				return n, err
			}
			n++
		}
	}
	if n, err := read(); err != nil || n != len(testFiles) {
		t.Fatalf("%d files, %v", n, err)
	}
	spool["initrd.gz"] = &fstest.MapFile{Data: []byte(strings.Repeat("\x1f\x8b initramfZ", 3000))}
	if _, err := read(); !errors.Is(err, ErrDigest) {
		t.Errorf("a spooled file changed: %v, want ErrDigest", err)
	}
	delete(spool, "initrd.gz")
	if _, err := read(); err == nil || !strings.Contains(err.Error(), "spooled initrd.gz") {
		t.Errorf("a spooled file missing: %v", err)
	}
}

// The manifest's delta fields have one form: a base version exactly when some
// file comes from the running slot, no flag bits but that one, and never a
// command line from the running slot.
func TestDeltaManifestForm(t *testing.T) {
	m := Manifest{Board: "rpi3b", Version: "1.1", Base: "1.0", Key: pub(testKey(t, 1)), Created: time.Unix(1, 0).UTC(),
		Files: []File{{Name: "a", Size: 1, FromRunning: true}, {Name: "cmdline.a.txt", Size: 2}}}
	raw, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Unmarshal(raw); err != nil || !got.Files[0].FromRunning || got.Base != "1.0" || got.Carried() != 2 {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	bad := func(f func(m *Manifest)) Manifest {
		c := m
		c.Files = append([]File(nil), m.Files...)
		f(&c)
		return c
	}
	for name, c := range map[string]Manifest{
		"base without a delta file": bad(func(m *Manifest) { m.Files[0].FromRunning = false }),
		"delta without a base":      bad(func(m *Manifest) { m.Base = "" }),
		"base not a version":        bad(func(m *Manifest) { m.Base = "old" }),
		"command line from running": bad(func(m *Manifest) { m.Files[1].FromRunning = true }),
	} {
		if _, err := c.Marshal(); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: %v, want ErrFormat", name, err)
		}
	}
	// An unknown flag bit (the last byte is the last file's flags).
	raw[len(raw)-1] = 2
	if _, err := Unmarshal(raw); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "flags") {
		t.Errorf("flag bit 1: %v", err)
	}
}
