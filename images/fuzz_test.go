package images

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"testing"
	"unicode/utf16"
)

// memDisk is an in-memory image for fixFAT32; writes past the end fail.
type memDisk []byte

func (m memDisk) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(m)) {
		return 0, io.EOF
	}
	n := copy(b, m[off:])
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

func (m memDisk) WriteAt(b []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(b)) > int64(len(m)) {
		return 0, errors.New("write out of range")
	}
	return copy(m[off:], b), nil
}

// tinyFAT32 lays out by hand a 5.5 KiB FAT32 volume with the defects
// go-diskfs leaves: 512-byte sectors and clusters, two reserved sectors (boot
// sector and FSInfo, free count unknown), one one-sector FAT and 8 clusters:
//
//	2 root: label SKYBOOT, config.txt (LFN), A/
//	3 A/: ".", ".." = 2 (should be 0), OVERLAYS/ (LFN "overlays"), EMPTY (size 0, owns cluster 8)
//	4 A/OVERLAYS/: ".", ".." = 3, hifiberry-dacplus.dtbo (LFN, 8.3 HIFIBE~1.DTB) in clusters 5, 6
//	7 config.txt
func tinyFAT32() []byte {
	const clusters = 8
	b := make([]byte, (2+1+clusters)*512)
	le16 := func(o, v int) { binary.LittleEndian.PutUint16(b[o:], uint16(v)) }
	le32 := func(o int, v uint32) { binary.LittleEndian.PutUint32(b[o:], v) }
	copy(b, "\xEB\x58\x90SKYTEST ")
	le16(11, 512)
	b[13], b[16], b[21] = 1, 1, 0xF8 // sectors per cluster, FATs, media
	le16(14, 2)                      // reserved sectors
	le32(32, uint32(len(b)/512))
	le32(36, 1) // sectors per FAT
	le32(44, 2) // root cluster
	le16(48, 1) // FSInfo sector
	le16(24, 1) // sectors per track
	le16(26, 1) // heads
	b[66] = 0x29
	copy(b[71:], "SKYBOOT    FAT32   ")
	b[510], b[511] = 0x55, 0xAA
	le32(512, 0x41615252)
	le32(512+484, 0x61417272)
	le32(512+488, 0xFFFFFFFF)
	le32(512+492, 0xFFFFFFFF)
	b[1022], b[1023] = 0x55, 0xAA
	for c, next := range []uint32{0x0FFFFFF8, 0x0FFFFFFF, fatEOC, fatEOC, fatEOC, 6, fatEOC, fatEOC, fatEOC} {
		le32(1024+4*c, next)
	}
	dir := func(cluster int, entries ...[]byte) {
		copy(b[(3+cluster-2)*512:], bytes.Join(entries, nil))
	}
	dir(2, short("SKYBOOT    ", attrVolumeID, 0, 0), long("config.txt", "CONFIG  TXT", 7, 13),
		short("A          ", attrDir, 3, 0))
	dir(3, short(".          ", attrDir, 3, 0), short("..         ", attrDir, 2, 0),
		long("overlays", "OVERLAYS   ", 4, 0), short("EMPTY      ", 0, 8, 0))
	b[(3+3-2)*512+3*32+11] |= attrDir
	dir(4, short(".          ", attrDir, 4, 0), short("..         ", attrDir, 3, 0),
		long("hifiberry-dacplus.dtbo", "HIFIBE~1DTB", 5, 600))
	copy(b[(3+5-2)*512:], bytes.Repeat([]byte("dtbo"), 150))
	copy(b[(3+7-2)*512:], "os_prefix=a/\n")
	return b
}

// short encodes a 32-byte 8.3 directory entry.
func short(name string, attr byte, cluster, size uint32) []byte {
	e := make([]byte, 32)
	copy(e, name)
	e[11] = attr
	binary.LittleEndian.PutUint16(e[20:], uint16(cluster>>16))
	binary.LittleEndian.PutUint16(e[26:], uint16(cluster))
	binary.LittleEndian.PutUint32(e[28:], size)
	return e
}

// long encodes the LFN slots for name followed by its 8.3 entry.
func long(name, name83 string, cluster, size uint32) []byte {
	u := utf16.Encode([]rune(name))
	n := (len(u) + 12) / 13
	if len(u)%13 != 0 {
		u = append(u, 0)
	}
	for len(u) < 13*n {
		u = append(u, 0xFFFF)
	}
	var out []byte
	for ord := n; ord >= 1; ord-- {
		e := make([]byte, 32)
		e[0] = byte(ord)
		if ord == n {
			e[0] |= 0x40
		}
		e[11], e[13] = attrLFN, checksum83([]byte(name83))
		for k, o := range []int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30} {
			binary.LittleEndian.PutUint16(e[o:], u[13*(ord-1)+k])
		}
		out = append(out, e...)
	}
	return append(out, short(name83, 0, cluster, size)...)
}

func TestTinyFAT32(t *testing.T) {
	img := tinyFAT32()
	if err := fixFAT32(memDisk(img), 0, int64(len(img))); err != nil {
		t.Fatal(err)
	}
	v, err := openFAT32(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	err = v.walk(func(p string, e dirEntry, _ uint32) error {
		paths = append(paths, p)
		return nil
	})
	if want := []string{"config.txt", "A", "A/overlays", "A/overlays/hifiberry-dacplus.dtbo", "A/EMPTY"}; err != nil || !slices.Equal(paths, want) {
		t.Errorf("walk: %q, %v; want %q", paths, err, want)
	}
	e, err := v.lookup("a/OVERLAYS/hifiberry-dacplus.DTBO")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := v.readFile(e); err != nil || !bytes.Equal(got, bytes.Repeat([]byte("dtbo"), 150)) {
		t.Errorf("dtbo: %d bytes, %v", len(got), err)
	}
	if e.short != "HIFIBE~1.DTB" {
		t.Errorf("8.3 name %q", e.short)
	}
	// The fixes: empty file owns no cluster, cluster 8 is free again, ".."
	// of A is 0, FSInfo counts 2 free clusters (8, 9) and points at 8.
	if e, err := v.lookup("a/empty"); err != nil || e.cluster != 0 || v.fat[8] != 0 {
		t.Errorf("empty file: %+v, %v, FAT[8] = %#x", e, err, v.fat[8])
	}
	a, _ := v.lookup("a")
	sub, _ := v.lookup("a/overlays")
	for _, c := range []struct{ dir, dot, dotdot uint32 }{{a.cluster, 3, 0}, {sub.cluster, 4, 3}} {
		entries, err := v.readDir(c.dir)
		if err != nil || entries[0].cluster != c.dot || entries[1].cluster != c.dotdot {
			t.Errorf("dir %d: . and .. are %d, %d (%v), want %d, %d", c.dir, entries[0].cluster, entries[1].cluster, err, c.dot, c.dotdot)
		}
	}
	if free, next := binary.LittleEndian.Uint32(img[512+488:]), binary.LittleEndian.Uint32(img[512+492:]); free != 2 || next != 8 {
		t.Errorf("FSInfo free %d next %d, want 2, 8", free, next)
	}
	if hidden := binary.LittleEndian.Uint32(img[0x1C:]); hidden != 0 {
		t.Errorf("hidden sectors %d, want 0 for a volume at offset 0", hidden)
	}
}

// FuzzFAT32 feeds corrupt volumes to the reader and the fixer: they must
// return errors, never panic or loop.
func FuzzFAT32(f *testing.F) {
	img := tinyFAT32()
	f.Add(img)
	fixed := bytes.Clone(img)
	if err := fixFAT32(memDisk(fixed), 0, int64(len(fixed))); err != nil {
		f.Fatal(err)
	}
	f.Add(fixed)
	f.Add(img[:2048])
	f.Fuzz(func(t *testing.T, b []byte) {
		readAll := func(b []byte) {
			v, err := openFAT32(bytes.NewReader(b), int64(len(b)))
			if err != nil {
				return
			}
			_ = v.walk(func(p string, e dirEntry, _ uint32) error {
				if !e.isDir() {
					if data, err := v.readFile(e); err == nil && len(data) != int(e.size) {
						t.Fatalf("%q: read %d bytes, size %d", p, len(data), e.size)
					}
				}
				return nil
			})
			_, _ = v.lookup("a/overlays/hifiberry-dacplus.dtbo")
		}
		readAll(b)
		m := memDisk(bytes.Clone(b))
		if fixFAT32(m, 0, int64(len(m))) == nil {
			readAll(m)
		}
	})
}

// FuzzParseMBR checks that parsed partitions always lie inside the image.
func FuzzParseMBR(f *testing.F) {
	good := make([]byte, 512)
	good[510], good[511] = 0x55, 0xAA
	copy(good[440:], []byte{1, 2, 3, 4})
	copy(good[446:], []byte{0, 0, 0, 0, 0x0C, 0, 0, 0, 0x00, 0x20, 0, 0, 0x00, 0x60, 0x09, 0})
	copy(good[462:], []byte{0, 0, 0, 0, 0x83, 0, 0, 0, 0x00, 0x80, 0x09, 0, 0x00, 0x80, 0x06, 0})
	f.Add(good, int64(512*MiB))
	gpt := bytes.Clone(good)
	gpt[446+4] = 0xEE
	f.Add(gpt, int64(512*MiB))
	f.Add(good[:100], int64(-1))
	f.Fuzz(func(t *testing.T, b []byte, size int64) {
		m, err := parseMBR(b, size)
		if err != nil {
			return
		}
		for _, p := range m.parts {
			if p.Start <= 0 || p.Size <= 0 || (size >= 0 && p.Start+p.Size > size) || p.Index < 1 || p.Index > 4 {
				t.Fatalf("bad partition %+v in %d-byte image", p, size)
			}
		}
	})
}
