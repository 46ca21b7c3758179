package images_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/skyfleet/skyfleet/images"
	"github.com/skyfleet/skyfleet/images/imagetest"
)

// content returns n pseudo-random bytes that differ per seed.
func content(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 42))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// realistic returns boot files shaped like a Pi boot partition: firmware
// and config at the top, two slot folders, a 40 MB kernel, 300 overlays in
// one folder two levels deep, and an empty file.
func realistic() map[string][]byte {
	files := map[string][]byte{
		"config.txt":                 []byte("os_prefix=a/\narm_64bit=1\n"),
		"cmdline.txt":                []byte("console=ttyAMA1 quiet\n"),
		"fleet.toml":                 {},
		"start4.elf":                 content(1, 2_200_000),
		"fixup4.dat":                 content(2, 5_400),
		"a/vmlinuz":                  content(3, 40_000_000),
		"a/bcm2710-rpi-3-b.dtb":      content(4, 33_000),
		"a/overlays/overlay_map.dtb": content(5, 5_000),
		"a/overlays/README":          []byte("overlays\n"),
		"b/cmdline.txt":              []byte("b slot\n"),
	}
	for i := range 300 {
		files[fmt.Sprintf("a/overlays/hifiberry-dacplus-%03d.dtbo", i)] = content(uint64(100+i), 500+i*37)
	}
	return files
}

func toFiles(files map[string][]byte) []images.File {
	var out []images.File
	for p, b := range files {
		out = append(out, images.FromBytes(p, b))
	}
	return out
}

// readAt reads n bytes at off of file name.
func readAt(t *testing.T, name string, off int64, n int) []byte {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	return b
}

func le32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }

func TestBuildRealistic(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "skyfleet.img")
	files := realistic()
	var want int64
	for _, b := range files {
		want += int64(len(b))
	}
	var calls []int64
	err := images.Build(img, images.Spec{Size: 512 * images.MiB, Boot: toFiles(files)}, func(done, total int64) {
		if total != want {
			t.Errorf("progress total %d, want %d", total, want)
		}
		calls = append(calls, done)
	})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("progress", func(t *testing.T) {
		if len(calls) < 20 || calls[0] != 0 || calls[len(calls)-1] != want {
			t.Fatalf("progress: %d calls, first %v, last %v; want >= 20 calls from 0 to %d",
				len(calls), calls[:1], calls[len(calls)-1:], want)
		}
		if !slices.IsSorted(calls) {
			t.Error("progress went backwards")
		}
	})

	t.Run("partitions", func(t *testing.T) {
		parts, err := images.Partitions(img)
		if err != nil {
			t.Fatal(err)
		}
		wantParts := []images.Partition{
			{Index: 1, Start: 4 * images.MiB, Size: images.DefaultBootSize, Type: 0x0C},
			{Index: 2, Start: 4*images.MiB + images.DefaultBootSize, Size: 512*images.MiB - 4*images.MiB - images.DefaultBootSize, Type: 0x83},
		}
		if !slices.Equal(parts, wantParts) {
			t.Errorf("partitions %+v, want %+v", parts, wantParts)
		}
		if parts[1].Start%images.MiB != 0 {
			t.Errorf("p2 starts at %d, not 1 MiB aligned", parts[1].Start)
		}
		id, err := images.DiskID(img)
		if err != nil || id == 0 || le32(readAt(t, img, 440, 4)) != id {
			t.Errorf("disk ID %#x (%v), bytes at 440: %x", id, err, readAt(t, img, 440, 4))
		}
	})

	t.Run("fat-fixes", func(t *testing.T) {
		p1 := int64(4 * images.MiB)
		for _, sector := range []int64{0, 6} { // boot sector and its backup
			bs := readAt(t, img, p1+sector*512, 512)
			if got := le32(bs[0x1C:]); got != 8192 {
				t.Errorf("sector %d: hidden sectors %d, want 8192 (p1's LBA)", sector, got)
			}
			if got := string(bs[0x47:0x52]); got != "SKYBOOT    " {
				t.Errorf("sector %d: label %q", sector, got)
			}
		}
		for _, sector := range []int64{1, 7} { // FSInfo and its backup
			fsi := readAt(t, img, p1+sector*512, 512)
			if free, next := le32(fsi[488:]), le32(fsi[492:]); free == 0xFFFFFFFF || next == 0xFFFFFFFF || free == 0 {
				t.Errorf("FSInfo sector %d: free %#x next %#x, want them set", sector, free, next)
			}
		}
	})

	t.Run("ext4", func(t *testing.T) {
		sb := readAt(t, img, 4*images.MiB+images.DefaultBootSize+1024, 1024)
		if magic := binary.LittleEndian.Uint16(sb[0x38:]); magic != 0xEF53 {
			t.Fatalf("p2 superblock magic %#x", magic)
		}
		if label := string(bytes.TrimRight(sb[0x78:0x88], "\x00")); label != "perm" {
			t.Errorf("p2 label %q", label)
		}
		if roCompat := le32(sb[0x64:]); roCompat&0x400 == 0 {
			t.Errorf("p2 lacks metadata_csum (ro_compat %#x)", roCompat)
		}
	})

	t.Run("fsck", func(t *testing.T) { imagetest.Fsck(t, img) })

	t.Run("read-back", func(t *testing.T) {
		list, err := images.ListBoot(img)
		if err != nil {
			t.Fatal(err)
		}
		if want := slices.Sorted(maps.Keys(files)); !slices.Equal(list, want) {
			t.Errorf("ListBoot: %d files, want %d; first %q", len(list), len(want), list[:3])
		}
		for p, b := range files {
			got, err := images.ReadBootFile(img, p)
			if err != nil || !bytes.Equal(got, b) {
				t.Errorf("ReadBootFile(%q): %d bytes, %v; want %d bytes", p, len(got), err, len(b))
			}
		}
		if got, err := images.ReadBootFile(img, "A/OVERLAYS/readme"); err != nil || string(got) != "overlays\n" {
			t.Errorf("case-insensitive lookup: %q, %v", got, err)
		}
	})

	t.Run("mtools", func(t *testing.T) {
		// mtools is an independent FAT reader: copy the whole tree out.
		out := t.TempDir()
		mtools(t, "mcopy", "-s", "-n", "-i", img+"@@4M", "::*", out+"/")
		got := map[string][]byte{}
		err := filepath.WalkDir(out, func(p string, d iofs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			rel, _ := filepath.Rel(out, p)
			got[filepath.ToSlash(rel)] = b
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if !maps.EqualFunc(got, files, bytes.Equal) {
			for p := range files {
				if !bytes.Equal(got[p], files[p]) {
					t.Errorf("mcopy %q: %d bytes, want %d", p, len(got[p]), len(files[p]))
				}
			}
			t.Errorf("mcopy extracted %d files, want %d", len(got), len(files))
		}
		if cfg := mtools(t, "mcopy", "-i", img+"@@4M", "::config.txt", "-"); cfg != string(files["config.txt"]) {
			t.Errorf("mcopy ::config.txt = %q", cfg)
		}
		if label := mtools(t, "mlabel", "-s", "-i", img+"@@4M", "::"); !strings.Contains(label, "SKYBOOT") {
			t.Errorf("mlabel: %q", label)
		}
	})

	t.Run("sha256", func(t *testing.T) {
		sum, err := os.ReadFile(img + ".sha256")
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(img)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("%x  skyfleet.img\n", h.Sum(nil)); string(sum) != want {
			t.Errorf(".sha256 = %q, want %q", sum, want)
		}
		cmd := exec.Command("sha256sum", "-c", "skyfleet.img.sha256")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("sha256sum -c: %v\n%s", err, out)
		}
	})

	t.Run("sparse", func(t *testing.T) {
		fi, err := os.Stat(img)
		if err != nil {
			t.Fatal(err)
		}
		used := fi.Sys().(*syscall.Stat_t).Blocks * 512
		t.Logf("image: %d MiB apparent, %d MiB allocated, %d MiB of file content", fi.Size()/images.MiB, used/images.MiB, want/images.MiB)
		if fi.Size() != 512*images.MiB || used > 2*want {
			t.Errorf("image %d bytes, %d allocated: want 512 MiB, sparse", fi.Size(), used)
		}
		if fi.Mode().Perm() != 0o644 {
			t.Errorf("mode %v, want 0644", fi.Mode())
		}
		entries, _ := os.ReadDir(dir)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if !slices.Equal(names, []string{"skyfleet.img", "skyfleet.img.sha256"}) {
			t.Errorf("output dir holds %q", names)
		}
	})
}

// mtools runs an mtools command and returns its stdout.
func mtools(t *testing.T, name string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s not found: install mtools", name)
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=0") // keep mtools' sanity checks on
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("%s %q: %v\n%s", name, args, err, stderr.String())
	}
	return string(out)
}

func TestBuildPerm(t *testing.T) {
	img := filepath.Join(t.TempDir(), "small.img")
	perm := map[string][]byte{
		"keys/node.key":   content(7, 32),
		"db/saf/bundles":  content(8, 1_000_000),
		"README":          []byte("perm\n"),
		"empty":           {},
		"db/saf/bundles2": content(9, 4096),
	}
	s := images.Spec{
		Size:     64 * images.MiB,
		BootSize: 40 * images.MiB, // 512-byte clusters
		Boot:     toFiles(map[string][]byte{"config.txt": []byte("x"), "a/b/c/deep.txt": []byte("deep")}),
		Perm:     toFiles(perm),
	}
	for i, f := range s.Perm {
		if f.Path == "keys/node.key" {
			s.Perm[i].Mode = 0o600
		}
	}
	if err := images.Build(img, s, nil); err != nil {
		t.Fatal(err)
	}
	imagetest.Fsck(t, img)
	if got, err := images.ReadBootFile(img, "a/b/c/deep.txt"); err != nil || string(got) != "deep" {
		t.Errorf("deep.txt: %q, %v", got, err)
	}
	// debugfs (e2fsprogs) reads the ext4 independently.
	p2 := filepath.Join(t.TempDir(), "p2")
	if err := images.ExtractPartition(img, 2, p2); err != nil {
		t.Fatal(err)
	}
	for p, want := range perm {
		out, err := exec.Command("debugfs", "-R", "cat /"+p, p2).Output()
		if err != nil || !bytes.Equal(out, want) {
			t.Errorf("debugfs cat /%s: %d bytes, %v; want %d bytes", p, len(out), err, len(want))
		}
		mode := "0644"
		if p == "keys/node.key" {
			mode = "0600"
		}
		out, err = exec.Command("debugfs", "-R", "stat /"+p, p2).Output()
		if err != nil || !strings.Contains(string(out), "Type: regular    Mode:  "+mode+" ") {
			t.Errorf("debugfs stat /%s: want mode %s, got %v\n%s", p, mode, err, out)
		}
	}
}

// TestBootSizes builds boot partitions of several sizes, both cluster sizes
// go-diskfs uses (512 bytes up to 260 MiB, 4 KiB above), and checks each
// with fsck and mtools.
func TestBootSizes(t *testing.T) {
	for _, c := range []struct{ boot, image int64 }{{33, 64}, {130, 256}, {256, 512}, {500, 1024}} {
		t.Run(fmt.Sprint(c.boot, "MiB"), func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "x.img")
			files := map[string][]byte{"config.txt": []byte("ok\n"), "a/overlays/x.dtbo": content(1, 10_000)}
			s := images.Spec{Size: c.image * images.MiB, BootSize: c.boot * images.MiB, Boot: toFiles(files)}
			if err := images.Build(img, s, nil); err != nil {
				t.Fatal(err)
			}
			imagetest.Fsck(t, img)
			if got := mtools(t, "mcopy", "-i", img+"@@4M", "::a/overlays/x.dtbo", "-"); got != string(files["a/overlays/x.dtbo"]) {
				t.Errorf("mcopy x.dtbo: %d bytes", len(got))
			}
		})
	}
}

func TestBuildRejects(t *testing.T) {
	ok := images.FromBytes("config.txt", []byte("x"))
	short := images.File{Path: "k", Size: 10, Open: func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader("12345")), nil
	}}
	long := short
	long.Size = 3
	failing := images.File{Path: "f", Size: 1, Open: func() (io.ReadCloser, error) { return nil, errors.New("disk on fire") }}
	huge := images.File{Path: "huge", Size: 39 * images.MiB, Open: func() (io.ReadCloser, error) {
		t.Error("Open called for a file that cannot fit")
		return nil, errors.New("unreachable")
	}}
	for _, c := range []struct {
		name string
		spec images.Spec
		want string
	}{
		{"not-pow2", images.Spec{Size: 500 * images.MiB}, "not a power of two"},
		{"zero", images.Spec{}, "not a power of two"},
		{"boot-unaligned", images.Spec{Size: 512 * images.MiB, BootSize: 100*images.MiB + 512}, "multiple of 1 MiB"},
		{"no-room-for-perm", images.Spec{Size: 256 * images.MiB}, "for /perm"},
		{"fat-64MiB", images.Spec{Size: 128 * images.MiB, BootSize: 64 * images.MiB}, "FAT has 129024 entries, needs 129026"},
		{"fat-129MiB", images.Spec{Size: 256 * images.MiB, BootSize: 129 * images.MiB}, "try 300 MiB"},
		{"fat-too-small", images.Spec{Size: 64 * images.MiB, BootSize: 32 * images.MiB}, "too few clusters"},
		{"abs-path", images.Spec{Size: 512 * images.MiB, Boot: []images.File{images.FromBytes("/etc/x", nil)}}, "relative"},
		{"dotdot", images.Spec{Size: 512 * images.MiB, Boot: []images.File{images.FromBytes("a/../x", nil)}}, "relative"},
		{"empty-elem", images.Spec{Size: 512 * images.MiB, Perm: []images.File{images.FromBytes("a//x", nil)}}, "relative"},
		{"backslash", images.Spec{Size: 512 * images.MiB, Boot: []images.File{images.FromBytes(`a\x`, nil)}}, "relative"},
		{"fat-colon", images.Spec{Size: 512 * images.MiB, Boot: []images.File{images.FromBytes("con:fig", nil)}}, "not a valid FAT name"},
		{"fat-dot", images.Spec{Size: 512 * images.MiB, Boot: []images.File{images.FromBytes("x.", nil)}}, "not a valid FAT name"},
		{"dup-case", images.Spec{Size: 512 * images.MiB, Boot: []images.File{ok, images.FromBytes("CONFIG.TXT", nil)}}, "twice"},
		{"file-as-dir", images.Spec{Size: 512 * images.MiB, Boot: []images.File{images.FromBytes("a/b", nil), images.FromBytes("a", nil)}}, "directory"},
		{"dir-as-file", images.Spec{Size: 512 * images.MiB, Perm: []images.File{images.FromBytes("a", nil), images.FromBytes("a/b", nil)}}, "directory"},
		{"nil-open", images.Spec{Size: 512 * images.MiB, Boot: []images.File{{Path: "x"}}}, "nil Open"},
		{"short", images.Spec{Size: 512 * images.MiB, Boot: []images.File{short}}, "content is 5 bytes, its Size says 10"},
		{"long", images.Spec{Size: 512 * images.MiB, Perm: []images.File{long}}, "longer than its Size 3"},
		{"open-fails", images.Spec{Size: 512 * images.MiB, Boot: []images.File{failing}}, "disk on fire"},
		{"too-big", images.Spec{Size: 128 * images.MiB, BootSize: 40 * images.MiB, Boot: []images.File{huge}}, "more than 90%"},
		{"same-8.3", images.Spec{Size: 512 * images.MiB, Boot: []images.File{images.FromBytes("a+b.txt", nil), images.FromBytes("a_b.txt", nil)}}, "clashes with the 8.3 name"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			err := images.Build(filepath.Join(dir, "x.img"), c.spec, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Build: %v, want error containing %q", err, c.want)
			}
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Errorf("failed build left %v", left)
			}
		})
	}
}

func TestReadErrors(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "x.img")
	s := images.Spec{Size: 64 * images.MiB, BootSize: 40 * images.MiB, Boot: toFiles(map[string][]byte{"a/b.txt": []byte("b")})}
	if err := images.Build(img, s, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := images.ReadBootFile(img, "a/nope"); !errors.Is(err, iofs.ErrNotExist) {
		t.Errorf("missing file: %v, want ErrNotExist", err)
	}
	if _, err := images.ReadBootFile(img, "a"); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Errorf("directory: %v", err)
	}
	if _, err := images.ReadBootFile(img, "a/b.txt/c"); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("file as directory: %v", err)
	}
	if err := images.ExtractPartition(img, 3, filepath.Join(dir, "p3")); err == nil || !strings.Contains(err.Error(), "no partition 3") {
		t.Errorf("partition 3: %v", err)
	}
	junk := filepath.Join(dir, "junk")
	if err := os.WriteFile(junk, content(1, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := images.Partitions(junk); err == nil || !strings.Contains(err.Error(), "0x55AA") {
		t.Errorf("junk: %v", err)
	}
	if _, err := images.ListBoot(filepath.Join(dir, "missing")); !errors.Is(err, iofs.ErrNotExist) {
		t.Errorf("missing image: %v", err)
	}
	// Partition 2 is ext4, not FAT: reading it as the boot partition fails
	// cleanly. Swap the two MBR entries to get there.
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	e1 := slices.Clone(b[446:462])
	copy(b[446:462], b[462:478])
	copy(b[462:478], e1)
	b[446+4] = 0x0C
	if err := os.WriteFile(img, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := images.ListBoot(img); err == nil || !strings.Contains(err.Error(), "fat32") {
		t.Errorf("ext4 as FAT: %v", err)
	}
}

// BenchmarkBuild builds the realistic 512 MiB image; MB/s counts file
// content.
func BenchmarkBuild(b *testing.B) {
	files := toFiles(realistic())
	var total int64
	for _, f := range files {
		total += f.Size
	}
	b.SetBytes(total)
	for b.Loop() {
		if err := images.Build(filepath.Join(b.TempDir(), "x.img"), images.Spec{Size: 512 * images.MiB, Boot: files}, nil); err != nil {
			b.Fatal(err)
		}
	}
}
