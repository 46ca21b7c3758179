package fatrepair

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"
)

// fsckPath finds fsck.vfat. A missing fsck.vfat fails the test rather than
// skipping it: the acceptance test depends on exactly this tool.
func fsckPath(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"fsck.vfat", "/usr/sbin/fsck.vfat", "/sbin/fsck.vfat"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Fatal("fsck.vfat not found: install dosfstools (apt-get install dosfstools)")
	return ""
}

// fsck runs `fsck.vfat -n img` and returns its exit code and output.
func fsck(t testing.TB, img string) (int, string) {
	t.Helper()
	cmd := exec.Command(fsckPath(t), "-n", img)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &exit):
		return exit.ExitCode(), string(out)
	}
	t.Fatalf("fsck.vfat -n %s: %v\n%s", img, err, out)
	return 0, ""
}

// mustFsckClean fails the test unless fsck.vfat -n finds nothing to change.
func mustFsckClean(t testing.TB, img string) {
	t.Helper()
	if code, out := fsck(t, img); code != 0 {
		t.Fatalf("fsck.vfat -n exited %d:\n%s", code, out)
	}
}

// mkfs runs mkfs.vfat (also from dosfstools) on a new sparse file.
func mkfs(t testing.TB, path string, size int64, args ...string) {
	t.Helper()
	mkfsPath := ""
	for _, p := range []string{"mkfs.vfat", "/usr/sbin/mkfs.vfat", "/sbin/mkfs.vfat"} {
		if path, err := exec.LookPath(p); err == nil {
			mkfsPath = path
			break
		}
	}
	if mkfsPath == "" {
		t.Fatal("mkfs.vfat not found: install dosfstools (apt-get install dosfstools)")
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if out, err := exec.Command(mkfsPath, append(args, path)...).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.vfat %q: %v\n%s", args, err, out)
	}
}

// copySparse copies file src to dst, leaving zero runs as holes.
func copySparse(t testing.TB, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	buf, zero := make([]byte, 64<<10), make([]byte, 64<<10)
	for off := int64(0); off < fi.Size(); off += int64(len(buf)) {
		b := buf[:min(int64(len(buf)), fi.Size()-off)]
		if _, err := in.ReadAt(b, off); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, zero[:len(b)]) {
			if _, err := out.WriteAt(b, off); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := out.Truncate(fi.Size()); err != nil {
		t.Fatal(err)
	}
}

// recorder wraps a device and counts writes. If failAfter >= 0, writes
// after that many fail, simulating a power cut.
type recorder struct {
	ReadWriterAt
	writes    int
	failAfter int
}

var errPowerCut = errors.New("power cut")

func (r *recorder) WriteAt(b []byte, off int64) (int, error) {
	if r.failAfter >= 0 && r.writes >= r.failAfter {
		return 0, errPowerCut
	}
	r.writes++
	return r.ReadWriterAt.WriteAt(b, off)
}

// memDev is an in-memory device.
type memDev []byte

func (m memDev) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(m)) {
		return 0, io.EOF
	}
	n := copy(b, m[off:])
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

func (m memDev) WriteAt(b []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(b)) > int64(len(m)) {
		return 0, errors.New("write past end of device")
	}
	return copy(m[off:], b), nil
}

// ---- A small FAT32 volume built in code ----

const (
	tinyClusters = 16
	tinyReserved = 8
)

// tinyFile is a file of the tiny volume and where its short entry lives.
type tinyFile struct {
	path    string
	content []byte
}

// pattern returns n bytes that differ per seed.
func pattern(seed, n int) []byte {
	b := make([]byte, n)
	x := uint32(seed)*2654435761 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// tinyFAT32 builds a minimal FAT32 volume (512-byte sectors and clusters,
// 16 clusters, 13 KiB) that fsck.vfat -n accepts (with a warning about the
// low cluster count): a volume label, files with and without long names
// (one spanning two slots), an empty file, a deleted entry, and two levels
// of directories. It returns the image and its files.
func tinyFAT32() ([]byte, []tinyFile) {
	const bps = 512
	total := tinyReserved + 2 + tinyClusters
	img := make([]byte, total*bps)
	b := img[:bps]
	copy(b, []byte{0xEB, 0x58, 0x90})
	copy(b[3:], "MSWIN4.1")
	put16(b[offBytsPerSec:], bps)
	b[offSecPerClus] = 1
	put16(b[offRsvdSecCnt:], tinyReserved)
	b[offNumFATs] = 2
	b[offMedia] = 0xF8
	put16(b[0x18:], 32) // sectors per track
	put16(b[0x1A:], 2)  // heads
	put32(b[offTotSec32:], uint32(total))
	put32(b[offFATSz32:], 1)
	put32(b[offRootClus:], 2)
	put16(b[offFSInfo:], 1)
	put16(b[offBkBootSec:], 6)
	b[0x40] = 0x80
	b[0x42] = 0x29
	put32(b[0x43:], 0x12345678)
	copy(b[0x47:], "TINY       ")
	copy(b[0x52:], "FAT32   ")
	b[510], b[511] = 0x55, 0xAA
	copy(img[6*bps:], b) // backup boot sector

	fat := make([]uint32, tinyClusters+2)
	fat[0], fat[1] = 0x0FFFFFF8, 0x0FFFFFFF
	next := uint32(2)
	alloc := func(n int) uint32 { // a contiguous chain of n clusters
		first := next
		for i := range n {
			c := next
			next++
			if i == n-1 {
				fat[c] = fatEOC
			} else {
				fat[c] = c + 1
			}
		}
		return first
	}
	cluster := func(c uint32) []byte {
		off := (tinyReserved + 2 + int(c) - 2) * bps
		return img[off : off+bps]
	}
	var files []tinyFile
	writeFile := func(path string, seed, size int) (start uint32) {
		content := pattern(seed, size)
		files = append(files, tinyFile{path, content})
		if size == 0 {
			return 0
		}
		start = alloc((size + bps - 1) / bps)
		for i := 0; i*bps < size; i++ {
			copy(cluster(start+uint32(i)), content[i*bps:])
		}
		return start
	}

	root := alloc(1)
	a := alloc(1)
	sub := alloc(1)
	rd := cluster(root)
	slot := 0
	put := func(dir []byte, e []byte) {
		copy(dir[slot*32:], e)
		slot++
	}
	put(rd, shortEntry("TINY       ", 0x08, 0, 0))
	for _, e := range lfnEntries("Long file name.txt", "LONGFI~1TXT") {
		put(rd, e)
	}
	put(rd, shortEntry("LONGFI~1TXT", 0x20, writeFile("Long file name.txt", 1, 700), 700))
	put(rd, shortEntry("README  TXT", 0x20, writeFile("README.TXT", 2, 100), 100))
	put(rd, shortEntry("A          ", 0x10, a, 0))
	put(rd, shortEntry("EMPTY      ", 0x20, writeFile("EMPTY", 3, 0), 0))
	del := shortEntry("GONE    TXT", 0x20, 14, 1000)
	del[0] = deletedMarker
	put(rd, del)

	ad := cluster(a)
	slot = 0
	put(ad, shortEntry(".          ", 0x10, a, 0))
	put(ad, shortEntry("..         ", 0x10, 0, 0))
	put(ad, shortEntry("SUB        ", 0x10, sub, 0))
	put(ad, shortEntry("DATA    BIN", 0x20, writeFile("A/DATA.BIN", 4, 1500), 1500))

	sd := cluster(sub)
	slot = 0
	put(sd, shortEntry(".          ", 0x10, sub, 0))
	put(sd, shortEntry("..         ", 0x10, a, 0))
	for _, e := range lfnEntries("another long name.bin", "ANOTHE~1BIN") {
		put(sd, e)
	}
	put(sd, shortEntry("ANOTHE~1BIN", 0x20, writeFile("A/SUB/another long name.bin", 5, 512), 512))

	for _, off := range []int{tinyReserved * bps, (tinyReserved + 1) * bps} {
		for c, v := range fat {
			put32(img[off+4*c:], v)
		}
	}
	fsi := img[bps : 2*bps]
	put32(fsi[offFSILead:], fsiLeadSig)
	put32(fsi[offFSIStruc:], fsiStrucSig)
	put32(fsi[offFSIFree:], uint32(tinyClusters+2)-next)
	put32(fsi[offFSINext:], next-1)
	put32(fsi[offFSITrail:], fsiTrailSig)
	copy(img[7*bps:], fsi) // backup FSInfo
	return img, files
}

// shortEntry builds a short directory entry.
func shortEntry(name string, attr byte, start uint32, size uint32) []byte {
	e := make([]byte, 32)
	copy(e, name)
	e[11] = attr
	put16(e[14:], 0x6000)            // 12:00
	put16(e[16:], (45<<9)|(6<<5)|15) // 2025-06-15
	put16(e[22:], 0x6000)
	put16(e[24:], (45<<9)|(6<<5)|15)
	setStart(e, start)
	put32(e[28:], size)
	return e
}

// lfnEntries builds the long-name slots for name, in on-disk order.
func lfnEntries(name, short string) [][]byte {
	u := utf16.Encode([]rune(name))
	n := (len(u) + 12) / 13
	if len(u)%13 != 0 {
		u = append(u, 0)
	}
	for len(u) < n*13 {
		u = append(u, 0xFFFF)
	}
	var sum byte
	for _, c := range []byte(short) {
		sum = (sum>>1 | sum<<7) + c
	}
	var out [][]byte
	for ord := n; ord >= 1; ord-- {
		e := make([]byte, 32)
		e[0] = byte(ord)
		if ord == n {
			e[0] |= 0x40
		}
		e[11] = 0x0F
		e[13] = sum
		part := u[(ord-1)*13 : ord*13]
		for k, o := range []int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30} {
			binary.LittleEndian.PutUint16(e[o:], part[k])
		}
		out = append(out, e)
	}
	return out
}

// ---- Reading a volume back, independently of the code under test ----

// entryInfo is a directory entry found by path.
type entryInfo struct {
	off   int64   // of the short entry
	lfn   []int64 // of its long-name slots
	start uint32
	size  uint32
	attr  byte
}

// inspector finds entries and chains in a volume for the tests to damage.
// It reads through FAT 1 and trusts the volume to be consistent.
type inspector struct {
	t   testing.TB
	dev ReadWriterAt
	v   *volume
}

func inspect(t testing.TB, dev ReadWriterAt, size int64) *inspector {
	t.Helper()
	v, err := open(dev, size)
	if err != nil {
		t.Fatal(err)
	}
	return &inspector{t, dev, v}
}

func (in *inspector) read(off int64, n int) []byte {
	b := make([]byte, n)
	if _, err := in.dev.ReadAt(b, off); err != nil {
		in.t.Fatal(err)
	}
	return b
}

func (in *inspector) write(off int64, b []byte) {
	if _, err := in.dev.WriteAt(b, off); err != nil {
		in.t.Fatal(err)
	}
}

// fatGet returns the value of FAT copy i's entry for cluster c.
func (in *inspector) fatGet(i int, c uint32) uint32 {
	return le32(in.read(in.v.fatOffset(i)+4*int64(c), 4))
}

// fatSet sets cluster c's entry in the given FAT copies (all if none).
func (in *inspector) fatSet(c, val uint32, copies ...int) {
	if len(copies) == 0 {
		copies = []int{0, 1}[:in.v.nFATs]
	}
	var b [4]byte
	put32(b[:], val)
	for _, i := range copies {
		in.write(in.v.fatOffset(i)+4*int64(c), b[:])
	}
}

// chain follows a chain through FAT 1.
func (in *inspector) chain(start uint32) []uint32 {
	var out []uint32
	for c := start; in.v.valid(c) && len(out) <= int(in.v.nClusters); {
		out = append(out, c)
		c = in.fatGet(0, c) & fatMask
	}
	return out
}

// freeClusters returns n free clusters, counting down from the last one.
func (in *inspector) freeClusters(n int) []uint32 {
	var out []uint32
	for c := in.v.nClusters + 1; c >= 2 && len(out) < n; c-- {
		if in.fatGet(0, c)&fatMask == 0 {
			out = append(out, c)
		}
	}
	if len(out) < n {
		in.t.Fatalf("only %d free clusters", len(out))
	}
	return out
}

// dirEntries lists the live entries of the directory at cluster dir, by
// long name if they have one, else by 8.3 name ("NAME.EXT").
func (in *inspector) dirEntries(dir uint32) map[string]entryInfo {
	out := map[string]entryInfo{}
	var (
		slots []int64
		units []uint16
	)
	for _, c := range in.chain(dir) {
		base := in.v.clusterOffset(c)
		buf := in.read(base, int(in.v.clusterSize))
		for o := 0; o < len(buf); o += 32 {
			e := buf[o : o+32]
			switch {
			case e[0] == 0 || e[0] == deletedMarker:
				slots, units = nil, nil
				continue
			case e[11] == 0x0F:
				if e[0]&0x40 != 0 {
					slots, units = nil, nil
				}
				var part []uint16
				for _, k := range []int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30} {
					part = append(part, le16(e[k:]))
				}
				units = append(part, units...)
				slots = append(slots, base+int64(o))
				continue
			}
			name := strings.TrimRight(string(e[:8]), " ")
			if ext := strings.TrimRight(string(e[8:11]), " "); ext != "" {
				name += "." + ext
			}
			info := entryInfo{off: base + int64(o), start: startCluster(e), size: le32(e[28:]), attr: e[11]}
			if len(slots) > 0 {
				for i, u := range units {
					if u == 0 || u == 0xFFFF {
						units = units[:i]
						break
					}
				}
				name = string(utf16.Decode(units))
				info.lfn = slots
			}
			slots, units = nil, nil
			out[name] = info
		}
	}
	return out
}

// lookup finds the entry at a slash-separated path.
func (in *inspector) lookup(path string) entryInfo {
	in.t.Helper()
	dir := in.v.rootCluster
	parts := strings.Split(path, "/")
	for i, p := range parts {
		e, ok := in.dirEntries(dir)[p]
		if !ok {
			in.t.Fatalf("%s: %q not found", path, p)
		}
		if i == len(parts)-1 {
			return e
		}
		dir = e.start
	}
	panic("unreachable")
}

// modify applies f to the 32-byte entry at off.
func (in *inspector) modify(off int64, f func(e []byte)) {
	e := in.read(off, 32)
	f(e)
	in.write(off, e)
}

// setDirty sets the boot sector's dirty bit, as Linux does on a read-write
// mount.
func (in *inspector) setDirty() {
	b := in.read(offFlags, 1)
	b[0] |= flagDirty
	in.write(offFlags, b)
}

// openFile opens path for reading and writing.
func openFile(t testing.TB, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// writeTemp writes b to a new file in t's temporary directory.
func writeTemp(t testing.TB, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// sameReport compares the findings of two reports, ignoring what was done.
func sameReport(a, b Report) error {
	a.DirtyCleared, a.Repaired, b.DirtyCleared, b.Repaired = false, false, false, false
	if a != b {
		return fmt.Errorf("reports differ:\n%+v\n%+v", a, b)
	}
	return nil
}
