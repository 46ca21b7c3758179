package fatrepair

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func hashFile(t testing.TB, path string) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

// TestCleanVolumes: volumes fsck.vfat accepts are left byte-identical, and
// a dirty bit on them is all Repair changes.
func TestCleanVolumes(t *testing.T) {
	part, files := basePart(t)
	dir := t.TempDir()
	vols := map[string]string{"images.Build": part}
	for name, args := range map[string][]string{
		"mkfs 512-byte sectors, 4 KiB clusters": {"-F", "32", "-S", "512", "-s", "8", "-n", "SKYBOOT"},
		"mkfs 4 KiB sectors and clusters":       {"-F", "32", "-S", "4096", "-s", "1"},
		"mkfs one FAT":                          {"-F", "32", "-S", "512", "-s", "8", "-f", "1"},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".img")
		mkfs(t, p, 300<<20, args...)
		vols[name] = p
	}
	for name, p := range vols {
		t.Run(name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "v.img")
			copySparse(t, p, img)
			mustFsckClean(t, img)
			before := hashFile(t, img)
			f := openFile(t, img)
			size := fileSize(t, img)
			for _, fix := range []bool{false, true} {
				rec := &recorder{ReadWriterAt: f, failAfter: -1}
				rep, err := Repair(rec, size, fix)
				if err != nil {
					t.Fatal(err)
				}
				if !rep.Clean() || rec.writes != 0 || rep.String() != "fatrepair: clean" {
					t.Fatalf("Repair(fix=%v) of a clean volume: %v, %d writes", fix, rep, rec.writes)
				}
			}
			if hashFile(t, img) != before {
				t.Fatal("clean volume changed")
			}
			if dirty, err := Dirty(f); err != nil || dirty {
				t.Fatalf("Dirty: %v, %v", dirty, err)
			}

			// As Linux leaves it after a power cut with nothing
			// written: only the dirty bit.
			inspect(t, f, size).setDirty()
			if dirty, err := Dirty(f); err != nil || !dirty {
				t.Fatalf("Dirty: %v, %v", dirty, err)
			}
			if code, _ := fsck(t, img); code == 0 {
				t.Fatal("fsck.vfat -n accepts a dirty volume")
			}
			rec := &recorder{ReadWriterAt: f, failAfter: -1}
			rep, err := Repair(rec, size, true)
			if err != nil {
				t.Fatal(err)
			}
			if err := sameReport(rep, Report{Dirty: true}); err != nil || !rep.DirtyCleared || rec.writes != 1 {
				t.Fatalf("%v (%v), %d writes; want only the dirty bit cleared", rep, err, rec.writes)
			}
			mustFsckClean(t, img)
			if hashFile(t, img) != before {
				t.Fatal("volume differs from before the dirty bit was set")
			}
			if p == part {
				checkFiles(t, img, files)
			}
		})
	}
}

// TestNotFAT32: anything but a usable FAT32 volume is refused with
// ErrNotFAT32 by Dirty and Repair, which write nothing.
func TestNotFAT32(t *testing.T) {
	dir := t.TempDir()
	fat16 := filepath.Join(dir, "fat16.img")
	mkfs(t, fat16, 64<<20, "-F", "16")
	fat12 := filepath.Join(dir, "fat12.img")
	mkfs(t, fat12, 4<<20, "-F", "12")
	tiny, _ := tinyFAT32()
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	bpb := func(f func(b []byte)) []byte {
		img := bytes.Clone(tiny)
		f(img)
		return img
	}
	cases := map[string][]byte{
		"FAT16":   read(fat16),
		"FAT12":   read(fat12),
		"zeros":   make([]byte, 64<<10),
		"garbage": bpb(func(b []byte) { copy(b, pattern(1, 510)) }),
		"exFAT": bpb(func(b []byte) {
			clear(b[:512])
			copy(b, []byte{0xEB, 0x76, 0x90})
			copy(b[3:], "EXFAT   ")
			b[510], b[511] = 0x55, 0xAA
		}),
		"NTFS":                      bpb(func(b []byte) { copy(b[3:], "NTFS    ") }),
		"no signature":              bpb(func(b []byte) { b[511] = 0 }),
		"sector size 300":           bpb(func(b []byte) { put16(b[offBytsPerSec:], 300) }),
		"sector size 8192":          bpb(func(b []byte) { put16(b[offBytsPerSec:], 8192) }),
		"3 sectors per cluster":     bpb(func(b []byte) { b[offSecPerClus] = 3 }),
		"0 sectors per cluster":     bpb(func(b []byte) { b[offSecPerClus] = 0 }),
		"no reserved sectors":       bpb(func(b []byte) { put16(b[offRsvdSecCnt:], 0) }),
		"3 FATs":                    bpb(func(b []byte) { b[offNumFATs] = 3 }),
		"0 FATs":                    bpb(func(b []byte) { b[offNumFATs] = 0 }),
		"16-bit FAT size":           bpb(func(b []byte) { put16(b[offFATSz16:], 1) }),
		"root entries":              bpb(func(b []byte) { put16(b[offRootEntCnt:], 512) }),
		"16-bit total sectors":      bpb(func(b []byte) { put16(b[offTotSec16:], 58) }),
		"FAT too small":             bpb(func(b []byte) { put32(b[offTotSec32:], 8+2+200) }),
		"no data clusters":          bpb(func(b []byte) { put32(b[offFATSz32:], 40) }),
		"volume larger than device": bpb(func(b []byte) { put32(b[offTotSec32:], 59) }),
		"root cluster 0":            bpb(func(b []byte) { put32(b[offRootClus:], 0) }),
		"root cluster past the end": bpb(func(b []byte) { put32(b[offRootClus:], tinyClusters+2) }),
		"FSInfo outside reserved":   bpb(func(b []byte) { put16(b[offFSInfo:], tinyReserved) }),
		"backup outside reserved":   bpb(func(b []byte) { put16(b[offBkBootSec:], 0xFFFF) }),
		"FSInfo is the backup":      bpb(func(b []byte) { put16(b[offFSInfo:], 6) }),
		"shorter than a sector":     tiny[:100],
	}
	for name, img := range cases {
		t.Run(name, func(t *testing.T) {
			orig := bytes.Clone(img)
			rec := &recorder{ReadWriterAt: memDev(img), failAfter: -1}
			// Dirty does not know the device size.
			_, err := Dirty(rec)
			switch name {
			case "shorter than a sector":
				if err == nil {
					t.Error("Dirty: no error")
				}
			case "volume larger than device":
			default:
				if !errors.Is(err, ErrNotFAT32) {
					t.Errorf("Dirty: %v, want ErrNotFAT32", err)
				}
			}
			for _, fix := range []bool{false, true} {
				rep, err := Repair(rec, int64(len(img)), fix)
				if !errors.Is(err, ErrNotFAT32) {
					t.Errorf("Repair(fix=%v): %v, %v; want ErrNotFAT32", fix, rep, err)
				}
			}
			if rec.writes != 0 || !bytes.Equal(img, orig) {
				t.Errorf("%d writes", rec.writes)
			}
		})
	}
}

// TestInterruptedRepair cuts the power after every write of a repair, and
// checks that the volume is still dirty and that the next Repair finishes
// the job with the same result as an uninterrupted one.
func TestInterruptedRepair(t *testing.T) {
	part, files := basePart(t)
	scenarios := map[string]func(*testing.T, *inspector) []string{
		"power cut mid update": powerCutMidUpdate,
		"lost chain on a volume marked clean": func(t *testing.T, in *inspector) []string {
			writeChain(in, in.freeClusters(3), nil)
			return nil
		},
	}
	for name, damage := range scenarios {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			damaged := filepath.Join(dir, "damaged.img")
			copySparse(t, part, damaged)
			size := fileSize(t, damaged)
			f := openFile(t, damaged)
			skip := damage(t, inspect(t, f, size))
			wasDirty, err := Dirty(f)
			if err != nil {
				t.Fatal(err)
			}

			done := filepath.Join(dir, "done.img")
			copySparse(t, damaged, done)
			rec := &recorder{ReadWriterAt: openFile(t, done), failAfter: -1}
			if _, err := Repair(rec, size, true); err != nil {
				t.Fatal(err)
			}
			mustFsckClean(t, done)
			total := rec.writes
			want := hashFile(t, done)
			if total < 3 {
				t.Fatalf("only %d writes", total)
			}
			img := filepath.Join(dir, "cut.img")
			for k := range total {
				copySparse(t, damaged, img)
				f := openFile(t, img)
				rec := &recorder{ReadWriterAt: f, failAfter: k}
				if _, err := Repair(rec, size, true); !errors.Is(err, errPowerCut) {
					t.Fatalf("cut after %d of %d writes: %v", k, total, err)
				}
				// Before the first write nothing has changed; from
				// then on the volume must be marked dirty.
				if dirty, err := Dirty(f); err != nil || (!dirty && (k > 0 || wasDirty)) {
					t.Fatalf("cut after %d of %d writes: Dirty %v, %v", k, total, dirty, err)
				}
				rep, err := Repair(f, size, true)
				if err != nil || rep.Clean() {
					t.Fatalf("cut after %d of %d writes: redo: %v, %v", k, total, rep, err)
				}
				if hashFile(t, img) != want {
					t.Fatalf("cut after %d of %d writes: result differs from an uninterrupted repair", k, total)
				}
			}
			checkFiles(t, done, files, skip...)
		})
	}
}

func TestReportString(t *testing.T) {
	for _, c := range []struct {
		r    Report
		want string
	}{
		{Report{}, "fatrepair: clean"},
		{Report{Dirty: true}, "fatrepair: dirty; not repaired"},
		{Report{Dirty: true, DirtyCleared: true, Repaired: true}, "fatrepair: dirty; repaired"},
		{
			Report{Dirty: true, LostClusters: 12, FilesTruncated: 1, FATsDiffered: 3, FreeCountFixed: true, Repaired: true},
			"fatrepair: dirty, 1 file truncated, 12 lost clusters, 3 FAT entries differing between copies, FSInfo wrong; repaired",
		},
	} {
		if got := c.r.String(); got != c.want {
			t.Errorf("%+v: got %q, want %q", c.r, got, c.want)
		}
	}
}
