package fatrepair

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/fat32"

	"github.com/skyfleet/skyfleet/images"
)

// The base image is a boot partition as package images builds it for a
// card: 300 MiB FAT32 with 4 KiB clusters, written by go-diskfs and patched
// by images. Built once, copied (sparsely) for every case.
var base struct {
	once  sync.Once
	dir   string
	part  string
	files map[string][]byte
	err   error
}

func TestMain(m *testing.M) {
	// FuzzRepair's inputs are whole disk images. Go minimizes every new
	// interesting input, with a pass that is quadratic in its length and
	// is stopped only by -fuzzminimizetime (60s by default), so a
	// `go test -fuzz FuzzRepair -fuzztime 60s` would spend its minute
	// minimizing one input. Cutting bytes out of a disk image shifts every
	// structure anyway; so, unless the flag is given, minimize briefly.
	flag.Parse()
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.fuzzminimizetime" })
	if !given {
		if err := flag.Set("test.fuzzminimizetime", "100x"); err != nil {
			panic(err)
		}
	}
	code := m.Run()
	if base.dir != "" {
		os.RemoveAll(base.dir)
	}
	os.Exit(code)
}

// baseFiles is shaped like a Pi boot partition: firmware at the top, two
// slot folders, overlays with long names, an empty file, a deep path.
func baseFiles() map[string][]byte {
	files := map[string][]byte{
		"config.txt":        []byte("os_prefix=a/\narm_64bit=1\n"),
		"cmdline.txt":       []byte("console=ttyAMA1 quiet\n"),
		"fleet.toml":        {},
		"start4.elf":        pattern(1, 300_000),
		"fixup4.dat":        pattern(2, 5_400),
		"a/vmlinuz":         pattern(3, 1_000_000),
		"a/cmdline.txt":     []byte("a slot\n"),
		"a/overlays/README": []byte("overlays\n"),
		"b/cmdline.txt":     []byte("b slot\n"),
		"b/vmlinuz":         pattern(4, 20_000),
		"deep/x/y/z.txt":    []byte("deep\n"),
	}
	for i := range 20 {
		files[fmt.Sprintf("a/overlays/hifiberry-dacplus-%03d.dtbo", i)] = pattern(100+i, 500+i*400)
	}
	return files
}

// basePart returns the base partition image (do not modify it).
func basePart(t testing.TB) (string, map[string][]byte) {
	t.Helper()
	base.once.Do(func() {
		base.dir, base.err = os.MkdirTemp("", "fatrepair-base-")
		if base.err != nil {
			return
		}
		base.files = baseFiles()
		var spec images.Spec
		spec.Size = 512 * images.MiB
		for p, b := range base.files {
			spec.Boot = append(spec.Boot, images.FromBytes(p, b))
		}
		img := filepath.Join(base.dir, "card.img")
		if base.err = images.Build(img, spec, nil); base.err != nil {
			return
		}
		base.part = filepath.Join(base.dir, "boot.img")
		if base.err = images.ExtractPartition(img, 1, base.part); base.err != nil {
			return
		}
		base.err = os.Remove(img)
	})
	if base.err != nil {
		t.Fatalf("build base image: %v", base.err)
	}
	return base.part, base.files
}

// readBack reads every file of the volume at part with go-diskfs (not the
// code under test) and returns their contents by path.
func readBack(t testing.TB, part string) map[string][]byte {
	t.Helper()
	f, err := os.Open(part)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fs, err := fat32.Read(file.New(f, true), fileSize(t, part), 0, 512)
	if err != nil {
		t.Fatalf("go-diskfs cannot read the repaired volume: %v", err)
	}
	out := map[string][]byte{}
	var walk func(dir string)
	walk = func(dir string) {
		entries, err := fs.ReadDir(dir)
		if err != nil {
			t.Fatalf("go-diskfs: read dir %q: %v", dir, err)
		}
		for _, e := range entries {
			name := e.Name()
			if name == "." || name == ".." {
				continue
			}
			p := path.Join(dir, name)
			if e.IsDir() {
				walk(p)
				continue
			}
			if e.Type()&os.ModeType != 0 { // e.g. the volume label
				continue
			}
			info, err := e.Info()
			if err != nil {
				t.Fatalf("go-diskfs: stat %q: %v", p, err)
			}
			if info.Size() == 0 {
				out[p] = []byte{} // go-diskfs cannot open a file without clusters
				continue
			}
			r, err := fs.OpenFile(p, os.O_RDONLY)
			if err != nil {
				t.Fatalf("go-diskfs: open %q: %v", p, err)
			}
			// One read of exactly the file's size: go-diskfs v1.9.4
			// returns too much when a read starts inside a cluster.
			b := make([]byte, info.Size())
			if n, err := r.Read(b); n != len(b) || (err != nil && err != io.EOF) {
				t.Fatalf("go-diskfs: read %q: %d of %d bytes, %v", p, n, len(b), err)
			}
			out[p] = b
		}
	}
	walk(".")
	return out
}

// checkFiles compares the volume's files with want; damaged names files
// whose content the case checks itself (a nil entry in want: must be gone).
func checkFiles(t testing.TB, part string, want map[string][]byte, damaged ...string) map[string][]byte {
	t.Helper()
	got := readBack(t, part)
	skip := map[string]bool{}
	for _, p := range damaged {
		skip[p] = true
	}
	for p, b := range want {
		if skip[p] {
			continue
		}
		g, ok := got[p]
		switch {
		case !ok:
			t.Errorf("undamaged file %q is missing after repair", p)
		case !bytes.Equal(g, b):
			t.Errorf("undamaged file %q changed: %d bytes, want %d", p, len(g), len(b))
		}
	}
	return got
}

// repairCase is one kind of damage to the base image.
type repairCase struct {
	name string
	// damage damages the volume; it may return files whose content it
	// changes (checked by after instead of checkFiles).
	damage func(t *testing.T, in *inspector) (damaged []string)
	// want checks the report of the check-only run; base inspects the
	// undamaged image.
	want func(base *inspector, r Report) error
	// fsckAccepts is set when fsck.vfat -n exits 0 even before repair.
	fsckAccepts bool
	// after checks the repaired volume's files and raw bytes.
	after func(t *testing.T, in *inspector, files map[string][]byte)
}

// run damages a copy of the base image and checks the whole cycle: check
// only (writes nothing, reports the damage), repair (same report; fsck.vfat
// -n is then clean), a second check (clean), and the files.
func (c repairCase) run(t *testing.T) {
	part, files := basePart(t)
	img := filepath.Join(t.TempDir(), "boot.img")
	copySparse(t, part, img)
	size := fileSize(t, img)
	f := openFile(t, img)
	in := inspect(t, f, size)
	damaged := c.damage(t, in)

	code, out := fsck(t, img)
	if c.fsckAccepts != (code == 0) {
		t.Fatalf("before repair, fsck.vfat -n exited %d (accepting expected: %v):\n%s", code, c.fsckAccepts, out)
	}
	rec := &recorder{ReadWriterAt: f, failAfter: -1}
	want, err := Repair(rec, size, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(want)
	if rec.writes != 0 {
		t.Fatalf("Repair(fix=false) wrote %d times", rec.writes)
	}
	if want.Clean() {
		t.Fatal("Repair(fix=false) reports a clean volume")
	}
	bf, err := os.Open(part)
	if err != nil {
		t.Fatal(err)
	}
	defer bf.Close()
	if err := c.want(inspect(t, readOnly{bf}, size), want); err != nil {
		t.Fatalf("report %+v: %v", want, err)
	}

	got, err := Repair(f, size, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := sameReport(want, got); err != nil {
		t.Fatalf("check-only and repair: %v", err)
	}
	if !got.Repaired || got.DirtyCleared != got.Dirty {
		t.Errorf("Repaired %v, DirtyCleared %v after fix", got.Repaired, got.DirtyCleared)
	}
	mustFsckClean(t, img)
	rec = &recorder{ReadWriterAt: f, failAfter: -1}
	again, err := Repair(rec, size, true)
	if err != nil || !again.Clean() || rec.writes != 0 {
		t.Fatalf("second Repair: %v, %d writes, %v", again, rec.writes, err)
	}
	if dirty, err := Dirty(f); err != nil || dirty {
		t.Fatalf("Dirty after repair: %v, %v", dirty, err)
	}
	got2 := checkFiles(t, img, files, damaged...)
	if c.after != nil {
		c.after(t, inspect(t, f, size), got2)
	}
}

// readOnly makes a read-only file a ReadWriterAt for the inspector.
type readOnly struct{ io.ReaderAt }

func (readOnly) WriteAt([]byte, int64) (int, error) { return 0, errors.New("read-only") }

// expect returns a want function that checks r against w field by field.
func expect(w Report) func(*inspector, Report) error {
	return func(_ *inspector, r Report) error { return sameReport(r, w) }
}

func TestRepair(t *testing.T) {
	for _, c := range repairCases() {
		t.Run(c.name, c.run)
	}
}

// firstFreeSlot returns the offset of the first never-used entry of the
// directory at cluster dir that has room for n entries in the same cluster.
func firstFreeSlot(in *inspector, dir uint32, n int) int64 {
	for _, c := range in.chain(dir) {
		buf := in.read(in.v.clusterOffset(c), int(in.v.clusterSize))
		for o := 0; o+32*n <= len(buf); o += 32 {
			if buf[o] == 0 {
				return in.v.clusterOffset(c) + int64(o)
			}
		}
	}
	in.t.Fatal("no free directory slot")
	return 0
}

// writeChain links clusters into a chain in the given FAT copies (all if
// none) and fills them with data.
func writeChain(in *inspector, clusters []uint32, data []byte, copies ...int) {
	for i, c := range clusters {
		next := uint32(fatEOC)
		if i+1 < len(clusters) {
			next = clusters[i+1]
		}
		in.fatSet(c, next, copies...)
		if len(data) > 0 {
			chunk := data[min(len(data), i*int(in.v.clusterSize)):min(len(data), (i+1)*int(in.v.clusterSize))]
			in.write(in.v.clusterOffset(c), chunk)
		}
	}
}

func repairCases() []repairCase {
	return []repairCase{
		{
			name:   "dirty bit only",
			damage: func(t *testing.T, in *inspector) []string { in.setDirty(); return nil },
			want:   expect(Report{Dirty: true}),
		},
		{
			name: "FAT clean-shutdown bit clear",
			damage: func(t *testing.T, in *inspector) []string {
				in.fatSet(1, in.fatGet(0, 1)&^fatCleanShutdown)
				return nil
			},
			want: expect(Report{Dirty: true}),
		},
		{
			name: "lost chain: FAT written, directory entry not",
			damage: func(t *testing.T, in *inspector) []string {
				in.setDirty()
				writeChain(in, in.freeClusters(5), pattern(9, 5*4096))
				return nil
			},
			want: expect(Report{Dirty: true, LostClusters: 5}),
		},
		{
			name: "new file: entry with size written, chain half written",
			damage: func(t *testing.T, in *inspector) []string {
				in.setDirty()
				free := in.freeClusters(5)
				data := pattern(10, 5*4096-100)
				// The chain got its first two links; the third
				// cluster's FAT sector never reached the card.
				writeChain(in, free[:3], data)
				in.fatSet(free[2], 0)
				off := firstFreeSlot(in, in.v.rootCluster, 1)
				in.write(off, shortEntry("NEWFILE BIN", 0x20, free[0], uint32(len(data))))
				return []string{"NEWFILE.BIN"}
			},
			want: expect(Report{Dirty: true, FilesTruncated: 1, FreeCountFixed: true}),
			after: func(t *testing.T, in *inspector, files map[string][]byte) {
				got := files["NEWFILE.BIN"]
				if want := pattern(10, 5*4096-100)[:2*4096]; !bytes.Equal(got, want) {
					t.Errorf("NEWFILE.BIN: %d bytes, want the %d its chain holds", len(got), len(want))
				}
			},
		},
		{
			name: "file chain runs into a free cluster",
			damage: func(t *testing.T, in *inspector) []string {
				in.setDirty()
				e := in.lookup("a/vmlinuz")
				chain := in.chain(e.start)
				in.fatSet(chain[10], 0)
				return []string{"a/vmlinuz"}
			},
			want: func(in *inspector, r Report) error {
				n := len(in.chain(in.lookup("a/vmlinuz").start))
				return sameReport(r, Report{Dirty: true, FilesTruncated: 1, LostClusters: n - 11, FreeCountFixed: true})
			},
			after: func(t *testing.T, in *inspector, files map[string][]byte) {
				if got, want := files["a/vmlinuz"], pattern(3, 1_000_000)[:10*4096]; !bytes.Equal(got, want) {
					t.Errorf("a/vmlinuz: %d bytes, want its first 10 clusters", len(got))
				}
			},
		},
		{
			name: "entry points at a free cluster",
			damage: func(t *testing.T, in *inspector) []string {
				in.setDirty()
				in.fatSet(in.lookup("start4.elf").start, 0)
				return []string{"start4.elf"}
			},
			want: func(in *inspector, r Report) error {
				// The first cluster is free already; the rest is lost.
				n := len(in.chain(in.lookup("start4.elf").start))
				return sameReport(r, Report{Dirty: true, FilesTruncated: 1, LostClusters: n - 1, FreeCountFixed: true})
			},
			after: func(t *testing.T, in *inspector, files map[string][]byte) {
				if b, ok := files["start4.elf"]; !ok || len(b) != 0 {
					t.Errorf("start4.elf: %d bytes (present %v), want an empty file", len(b), ok)
				}
				if e := in.lookup("start4.elf"); e.start != 0 || e.size != 0 {
					t.Errorf("start4.elf: cluster %d, size %d; want 0, 0", e.start, e.size)
				}
			},
		},
		{
			name: "chain longer than the file size",
			damage: func(t *testing.T, in *inspector) []string {
				in.setDirty()
				e := in.lookup("config.txt")
				writeChain(in, append(in.chain(e.start), in.freeClusters(2)...), nil)
				return nil
			},
			want: expect(Report{Dirty: true, FilesTruncated: 1, LostClusters: 2}),
		},
		{
			name: "FAT copies differ",
			damage: func(t *testing.T, in *inspector) []string {
				in.setDirty()
				f := in.freeClusters(1)[0]
				e := in.lookup("b/vmlinuz")
				in.fatSet(f, fatEOC, 1)
				in.fatSet(e.start, f, 1)
				return nil
			},
			want: expect(Report{Dirty: true, FATsDiffered: 2}),
		},
		{
			name: "FAT 1 media entry corrupt",
			damage: func(t *testing.T, in *inspector) []string {
				in.fatSet(0, 0, 0)
				return nil
			},
			want: expect(Report{FATsDiffered: 1}),
		},
		{
			name: "FSInfo free count and hint wrong",
			damage: func(t *testing.T, in *inspector) []string {
				in.setDirty()
				off := in.v.fsInfoSector * in.v.bps
				b := in.read(off, 512)
				put32(b[offFSIFree:], le32(b[offFSIFree:])+7)
				put32(b[offFSINext:], 0x0FFFFFF0)
				in.write(off, b)
				return nil
			},
			want: expect(Report{Dirty: true, FreeCountFixed: true}),
			after: func(t *testing.T, in *inspector, _ map[string][]byte) {
				b := in.read(in.v.fsInfoSector*in.v.bps, 512)
				next := le32(b[offFSINext:])
				if !in.v.valid(next) || in.fatGet(0, next) != 0 {
					t.Errorf("next-free hint %d is not a free cluster", next)
				}
			},
		},
		{
			name: "FSInfo signature destroyed",
			damage: func(t *testing.T, in *inspector) []string {
				in.write(in.v.fsInfoSector*in.v.bps, []byte("junk"))
				return nil
			},
			want: expect(Report{FreeCountFixed: true}),
		},
		{
			name: "file start cluster out of range",
			damage: func(t *testing.T, in *inspector) []string {
				in.setDirty()
				in.modify(in.lookup("a/cmdline.txt").off, func(e []byte) { setStart(e, in.v.nClusters+100) })
				return []string{"a/cmdline.txt"}
			},
			want: expect(Report{Dirty: true, FilesTruncated: 1, LostClusters: 1, FreeCountFixed: true}),
			after: func(t *testing.T, in *inspector, files map[string][]byte) {
				if b, ok := files["a/cmdline.txt"]; !ok || len(b) != 0 {
					t.Errorf("a/cmdline.txt: %q (present %v), want an empty file", b, ok)
				}
			},
		},
		{
			name: "directory start cluster out of range",
			damage: func(t *testing.T, in *inspector) []string {
				in.setDirty()
				in.modify(in.lookup("b").off, func(e []byte) { setStart(e, 0x0FFFFFF0) })
				return []string{"b/cmdline.txt", "b/vmlinuz"}
			},
			want: func(in *inspector, r Report) error {
				lost := 1 + len(in.chain(in.lookup("b/vmlinuz").start)) + 1
				return sameReport(r, Report{Dirty: true, EntriesRemoved: 1, LFNSlotsRemoved: len(in.lookup("b").lfn), LostClusters: lost, FreeCountFixed: true})
			},
			after: func(t *testing.T, in *inspector, files map[string][]byte) {
				for p := range files {
					if strings.HasPrefix(p, "b/") {
						t.Errorf("%s survived its directory's removal", p)
					}
				}
			},
		},
		{
			name: "cross-linked chains",
			damage: func(t *testing.T, in *inspector) []string {
				in.setDirty()
				// start4.elf (root) is claimed before a/vmlinuz,
				// whose second link now leads into start4.elf.
				x, y := in.lookup("start4.elf"), in.lookup("a/vmlinuz")
				in.fatSet(y.start, in.chain(x.start)[5])
				return []string{"a/vmlinuz"}
			},
			want: func(in *inspector, r Report) error {
				// a/vmlinuz's own clusters after the first are lost.
				lost := len(in.chain(in.lookup("a/vmlinuz").start)) - 1
				return sameReport(r, Report{Dirty: true, CrossLinks: 1, FilesTruncated: 1, LostClusters: lost, FreeCountFixed: true})
			},
			after: func(t *testing.T, in *inspector, files map[string][]byte) {
				if got, want := files["a/vmlinuz"], pattern(3, 1_000_000)[:4096]; !bytes.Equal(got, want) {
					t.Errorf("a/vmlinuz: %d bytes, want its first cluster", len(got))
				}
			},
		},
		{
			name: "directory loop: subdirectory points at its parent",
			damage: func(t *testing.T, in *inspector) []string {
				in.setDirty()
				in.modify(in.lookup("a/overlays").off, func(e []byte) { setStart(e, in.lookup("a").start) })
				return overlayFiles()
			},
			want: func(in *inspector, r Report) error {
				ov := in.lookup("a/overlays")
				lost := len(in.chain(ov.start))
				for _, p := range overlayFiles() {
					lost += len(in.chain(in.lookup(p).start))
				}
				return sameReport(r, Report{Dirty: true, EntriesRemoved: 1, LFNSlotsRemoved: len(ov.lfn), LostClusters: lost, FreeCountFixed: true})
			},
			after: func(t *testing.T, in *inspector, files map[string][]byte) {
				for p := range files {
					if strings.HasPrefix(p, "a/overlays/") {
						t.Errorf("%s survived its directory's removal", p)
					}
				}
			},
		},
		{
			name: "directory loop: subdirectory points at the root",
			damage: func(t *testing.T, in *inspector) []string {
				in.modify(in.lookup("deep/x").off, func(e []byte) { setStart(e, in.v.rootCluster) })
				return []string{"deep/x/y/z.txt"}
			},
			want: func(in *inspector, r Report) error {
				return sameReport(r, Report{EntriesRemoved: 1, LFNSlotsRemoved: len(in.lookup("deep/x").lfn), LostClusters: 3, FreeCountFixed: true})
			},
		},
		{
			name: "wrong .. entries",
			damage: func(t *testing.T, in *inspector) []string {
				in.setDirty()
				// ".." of a first-level directory must be 0, not the
				// root's cluster (go-diskfs's mistake); of a deeper one,
				// the parent's cluster.
				a := in.lookup("a").start
				in.modify(in.v.clusterOffset(a)+32, func(e []byte) { setStart(e, in.v.rootCluster) })
				ov := in.lookup("a/overlays").start
				in.modify(in.v.clusterOffset(ov)+32, func(e []byte) { setStart(e, 0) })
				return nil
			},
			want: expect(Report{Dirty: true, EntriesFixed: 2}),
			after: func(t *testing.T, in *inspector, _ map[string][]byte) {
				a, ov := in.lookup("a").start, in.lookup("a/overlays").start
				if got := startCluster(in.read(in.v.clusterOffset(a)+32, 32)); got != 0 {
					t.Errorf("a/..: cluster %d, want 0", got)
				}
				if got := startCluster(in.read(in.v.clusterOffset(ov)+32, 32)); got != a {
					t.Errorf("a/overlays/..: cluster %d, want %d", got, a)
				}
			},
		},
		{
			name: "directory cluster overwritten with garbage",
			damage: func(t *testing.T, in *inspector) []string {
				in.setDirty()
				in.write(in.v.clusterOffset(in.lookup("b").start), pattern(11, 4096))
				return []string{"b/cmdline.txt", "b/vmlinuz"}
			},
			want: func(in *inspector, r Report) error {
				lost := 1 + len(in.chain(in.lookup("b/vmlinuz").start)) + 1
				return sameReport(r, Report{Dirty: true, EntriesRemoved: 1, LFNSlotsRemoved: len(in.lookup("b").lfn), LostClusters: lost, FreeCountFixed: true})
			},
		},
		{
			name: "unlink cut short: short entry deleted, long-name slots not",
			damage: func(t *testing.T, in *inspector) []string {
				in.setDirty()
				e := in.lookup("a/overlays/hifiberry-dacplus-003.dtbo")
				if len(e.lfn) == 0 {
					t.Fatal("expected long-name slots")
				}
				in.modify(e.off, func(b []byte) { b[0] = deletedMarker })
				return []string{"a/overlays/hifiberry-dacplus-003.dtbo"}
			},
			want: func(in *inspector, r Report) error {
				e := in.lookup("a/overlays/hifiberry-dacplus-003.dtbo")
				return sameReport(r, Report{Dirty: true, LFNSlotsRemoved: len(e.lfn), LostClusters: len(in.chain(e.start)), FreeCountFixed: true})
			},
		},
		{
			name: "create cut short: long-name slots written, short entry not",
			damage: func(t *testing.T, in *inspector) []string {
				in.setDirty()
				slots := lfnEntries("vmlinuz-6.12.dtb", "VMLINU~1DTB")
				off := firstFreeSlot(in, in.lookup("b").start, len(slots)+1)
				for i, s := range slots {
					in.write(off+int64(32*i), s)
				}
				return nil
			},
			want: expect(Report{Dirty: true, LFNSlotsRemoved: 2}),
		},
		{
			name: "bad FAT links",
			damage: func(t *testing.T, in *inspector) []string {
				in.setDirty()
				chain := in.chain(in.lookup("a/vmlinuz").start)
				in.fatSet(chain[20], in.v.nClusters+50)
				in.fatSet(in.freeClusters(1)[0], 1)
				return []string{"a/vmlinuz"}
			},
			want: func(in *inspector, r Report) error {
				lost := len(in.chain(in.lookup("a/vmlinuz").start)) - 21 + 1
				return sameReport(r, Report{Dirty: true, BadLinks: 2, FilesTruncated: 1, LostClusters: lost, FreeCountFixed: true})
			},
			after: func(t *testing.T, in *inspector, files map[string][]byte) {
				if got, want := files["a/vmlinuz"], pattern(3, 1_000_000)[:21*4096]; !bytes.Equal(got, want) {
					t.Errorf("a/vmlinuz: %d bytes, want its first 21 clusters", len(got))
				}
			},
		},
		{
			name: "backup boot sector differs",
			damage: func(t *testing.T, in *inspector) []string {
				in.write(in.v.backupSector*in.v.bps+0x47, []byte("OLDLABEL   "))
				return nil
			},
			fsckAccepts: true, // it only prints the differences
			want:        expect(Report{BackupBootFixed: true}),
			after: func(t *testing.T, in *inspector, _ map[string][]byte) {
				if !bytes.Equal(in.read(0, 512), in.read(in.v.backupSector*in.v.bps, 512)) {
					t.Error("backup boot sector still differs")
				}
			},
		},
		{
			name: "no backup boot sector",
			damage: func(t *testing.T, in *inspector) []string {
				in.setDirty()
				in.write(offBkBootSec, []byte{0, 0})
				return nil
			},
			want: expect(Report{Dirty: true, BackupBootFixed: true}),
			after: func(t *testing.T, in *inspector, _ map[string][]byte) {
				if in.v.backupSector != 6 {
					t.Errorf("backup boot sector created at %d, want 6", in.v.backupSector)
				}
			},
		},
		{
			name: "duplicate short name",
			damage: func(t *testing.T, in *inspector) []string {
				in.setDirty()
				a, b := in.lookup("config.txt"), in.lookup("cmdline.txt")
				if a.off > b.off {
					a, b = b, a
				}
				name := in.read(a.off, 11)
				in.modify(b.off, func(e []byte) { copy(e, name) })
				return []string{"config.txt", "cmdline.txt"}
			},
			want: func(in *inspector, r Report) error {
				a, b := in.lookup("config.txt"), in.lookup("cmdline.txt")
				if a.off > b.off {
					b = a
				}
				return sameReport(r, Report{Dirty: true, EntriesRemoved: 1, LFNSlotsRemoved: len(b.lfn), LostClusters: 1, FreeCountFixed: true})
			},
			after: func(t *testing.T, in *inspector, files map[string][]byte) {
				_, c1 := files["config.txt"]
				_, c2 := files["cmdline.txt"]
				if c1 == c2 {
					t.Errorf("config.txt present %v, cmdline.txt present %v; want exactly one", c1, c2)
				}
			},
		},
		{
			name: "bad short name",
			damage: func(t *testing.T, in *inspector) []string {
				in.setDirty()
				in.modify(in.lookup("b/cmdline.txt").off, func(e []byte) { e[3] = '?' })
				return []string{"b/cmdline.txt"}
			},
			want: func(in *inspector, r Report) error {
				e := in.lookup("b/cmdline.txt")
				return sameReport(r, Report{Dirty: true, EntriesRemoved: 1, LFNSlotsRemoved: len(e.lfn), LostClusters: 1, FreeCountFixed: true})
			},
			after: func(t *testing.T, in *inspector, files map[string][]byte) {
				if _, ok := files["b/cmdline.txt"]; ok {
					t.Error("b/cmdline.txt survived")
				}
			},
		},
		{
			name:   "power cut in the middle of an A/B update",
			damage: powerCutMidUpdate,
			want: func(in *inspector, r Report) error {
				old := in.lookup("b/vmlinuz")
				return sameReport(r, Report{
					Dirty:           true,
					FilesTruncated:  1,                             // b/vmlinuz.new, cut to 3 clusters
					LFNSlotsRemoved: len(old.lfn) + 1,              // the old kernel's, vmlinuz.tmp's
					LostClusters:    len(in.chain(old.start)) + 36, // the old kernel, the unlinked new clusters
					FATsDiffered:    3 + 36,
					FreeCountFixed:  true,
				})
			},
			after: func(t *testing.T, in *inspector, files map[string][]byte) {
				if got := files["b/vmlinuz.new"]; !bytes.Equal(got, pattern(12, 100_000)[:3*4096]) {
					t.Errorf("b/vmlinuz.new: %d bytes, want the 3 clusters that reached the card", len(got))
				}
			},
		},
	}
}

func overlayFiles() []string {
	out := []string{"a/overlays/README"}
	for i := range 20 {
		out = append(out, fmt.Sprintf("a/overlays/hifiberry-dacplus-%03d.dtbo", i))
	}
	return out
}

// powerCutMidUpdate damages the volume the way a power cut during an A/B
// update can: the dirty bit is set; the old b/vmlinuz is unlinked but its
// clusters are not yet freed; the new kernel b/vmlinuz.new has its entry
// (long name and all) with the final size, but only the first three links of
// its chain reached FAT 1, the rest of its clusters are allocated but
// unlinked, and none of it reached FAT 2; a long name from an earlier
// interrupted attempt lies orphaned; the FSInfo count is from before.
func powerCutMidUpdate(t *testing.T, in *inspector) []string {
	in.setDirty()
	old := in.lookup("b/vmlinuz")
	in.modify(old.off, func(e []byte) { e[0] = deletedMarker })

	data := pattern(12, 100_000)
	free := in.freeClusters(40)
	writeChain(in, free[:4], data, 0) // FAT 1 only
	in.fatSet(free[3], 0, 0)          // the fourth link never written
	for _, c := range free[4:] {      // clusters written, never linked
		in.fatSet(c, fatEOC, 0)
	}
	slots := lfnEntries("vmlinuz.new", "VMLINUZ NEW")
	b := in.lookup("b").start
	off := firstFreeSlot(in, b, len(slots)+1)
	for i, s := range slots {
		in.write(off+int64(32*i), s)
	}
	in.write(off+int64(32*len(slots)), shortEntry("VMLINUZ NEW", 0x20, free[0], uint32(len(data))))
	// An orphaned long name from an earlier, also interrupted, attempt.
	stale := lfnEntries("vmlinuz.tmp", "VMLINUZ TMP")
	off = firstFreeSlot(in, b, len(stale)+1)
	for i, s := range stale {
		in.write(off+int64(32*i), s)
	}
	return []string{"b/vmlinuz", "b/vmlinuz.new"}
}

// BenchmarkRepair checks (without fixing) the 300 MiB production-layout
// boot partition.
func BenchmarkRepair(b *testing.B) {
	part, _ := basePart(b)
	f, err := os.Open(part)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	size := fileSize(b, part)
	for b.Loop() {
		if rep, err := Repair(readOnly{f}, size, false); err != nil || !rep.Clean() {
			b.Fatal(rep, err)
		}
	}
}
