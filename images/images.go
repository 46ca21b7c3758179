// Package images assembles and reads Skyfleet SD-card images without root,
// loop devices or mkfs binaries.
//
// An image is an MBR disk: partition 1 is FAT32 (type 0x0C, label SKYBOOT)
// at 4 MiB holding the firmware, config.txt and the a/ and b/ slot folders;
// partition 2 is ext4 (type 0x83, label perm) from the end of partition 1 to
// the end of the image. The filesystems are written with go-diskfs, and the
// FAT32 is then patched so that fsck.vfat finds nothing to fix (see
// fixFAT32), because the Pi firmware is less forgiving than Linux.
package images

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/filesystem/ext4"
	"github.com/diskfs/go-diskfs/filesystem/fat32"
	"github.com/diskfs/go-diskfs/partition/mbr"

	"github.com/skyfleet/skyfleet/internal/durable"
)

const (
	// MiB is 2^20 bytes.
	MiB = 1 << 20
	// BootStart is where partition 1 begins, in bytes (LBA 8192).
	BootStart = 4 * MiB
	// DefaultBootSize is the size of partition 1 when Spec.BootSize is 0, in
	// bytes: the first round size above 260 MiB, where go-diskfs switches
	// from 512-byte to 4 KiB clusters (fewer FAT lookups for the firmware,
	// and twice as fast to build). Not every size works with go-diskfs'
	// FAT32 layout (64 and 129 MiB do not); Build says so when one does not.
	DefaultBootSize = 300 * MiB
	// BootLabel is the volume label of partition 1.
	BootLabel = "SKYBOOT"
	// PermLabel is the volume label of partition 2.
	PermLabel = "perm"
	// minPermSize is the smallest partition 2 Build makes, in bytes.
	minPermSize = 16 * MiB
	// minFAT32Clusters is the fewest clusters a volume may have and still be
	// FAT32 to the Pi firmware and Windows, which go by cluster count.
	minFAT32Clusters = 65525
	// copyChunk is how much file content is written per go-diskfs Write call
	// (each call rewrites both FATs), and so the progress granularity.
	copyChunk = 4 * MiB
)

// File is one file to place in a filesystem.
type File struct {
	// Path is slash-separated and relative, e.g. "a/vmlinuz" or
	// "a/overlays/foo.dtbo"; directories are created as needed.
	Path string
	// Size is the content length in bytes; Build fails if Open yields a
	// different number of bytes.
	Size int64
	// Open returns the content. Build calls it once and closes the result.
	Open func() (io.ReadCloser, error)
	// Mode holds the permission bits of a Perm file (0 means 0644); FAT
	// has none, so Boot files ignore it.
	Mode iofs.FileMode
}

// FromBytes returns a File at path (in the image) with content data.
func FromBytes(path string, data []byte) File {
	return File{Path: path, Size: int64(len(data)), Open: func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}}
}

// FromDisk returns a File at path (in the image) whose content is the
// regular file hostPath, read when Build needs it. It fails if hostPath
// cannot be stat'ed or is not a regular file.
func FromDisk(path, hostPath string) (File, error) {
	fi, err := os.Stat(hostPath)
	if err != nil {
		return File{}, err
	}
	if !fi.Mode().IsRegular() {
		return File{}, fmt.Errorf("%s: not a regular file", hostPath)
	}
	return File{Path: path, Size: fi.Size(), Open: func() (io.ReadCloser, error) {
		return os.Open(hostPath)
	}}, nil
}

// Spec describes an image to build.
type Spec struct {
	// Size is the whole image in bytes. It must be a power of two, because
	// QEMU's emulated SD card needs one; e.g. 512 MiB.
	Size int64
	// BootSize is partition 1 in bytes, a multiple of 1 MiB; 0 means
	// DefaultBootSize.
	BootSize int64
	// DiskID is the MBR disk signature (Linux: PARTUUID=<%08x>-01); 0 means
	// a random non-zero one.
	DiskID uint32
	// Boot is the content of partition 1.
	Boot []File
	// Perm is the initial content of partition 2 (/perm); may be empty.
	Perm []File
}

// Build writes the image that s describes to out, and its checksum to
// out+".sha256" in sha256sum format ("<hex>  <basename of out>\n"). The
// image is sparse: unwritten space is holes. It is built in a temporary file
// beside out and renamed into place, so a failed build leaves no partial
// image. progress, if not nil, is called with the bytes of file content
// written so far and their total (the sum of every File.Size), first with
// done = 0 and last with done = total. Errors name the rule or file at fault.
func Build(out string, s Spec, progress func(done, total int64)) (err error) {
	if s.BootSize == 0 {
		s.BootSize = DefaultBootSize
	}
	if err := s.validate(); err != nil {
		return err
	}
	for s.DiskID == 0 {
		var b [4]byte
		_, _ = rand.Read(b[:])
		s.DiskID = binary.LittleEndian.Uint32(b[:])
	}
	var total int64
	for _, f := range slices.Concat(s.Boot, s.Perm) {
		total += f.Size
	}
	pw := &progressWriter{total: total, fn: progress}
	pw.report()

	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Truncate(s.Size); err != nil {
		return err
	}
	if err := writeMBR(tmp, s); err != nil {
		return err
	}
	if err := writeBoot(tmp, s, pw); err != nil {
		return err
	}
	if err := writePerm(tmp, s, pw); err != nil {
		return err
	}
	if pw.done != total {
		return fmt.Errorf("images: wrote %d bytes of content, expected %d", pw.done, total)
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	h := sha256.New()
	if _, err := io.CopyBuffer(h, io.NewSectionReader(tmp, 0, s.Size), make([]byte, MiB)); err != nil {
		return fmt.Errorf("images: checksum: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	sum := fmt.Sprintf("%s  %s\n", hex.EncodeToString(h.Sum(nil)), filepath.Base(out))
	if err := os.Rename(tmp.Name(), out); err != nil {
		return err
	}
	return durable.WriteFile(out+".sha256", []byte(sum), 0o644)
}

// validate checks s (with BootSize defaulted) before anything is written.
func (s *Spec) validate() error {
	switch {
	case s.Size <= 0 || s.Size&(s.Size-1) != 0:
		return fmt.Errorf("images: image size %d bytes is not a power of two (QEMU's SD card needs one), e.g. %d",
			s.Size, nextPow2(s.Size))
	case s.Size >= 2<<40:
		return fmt.Errorf("images: image size %d bytes is not under the 2 TiB an MBR can address", s.Size)
	case s.BootSize < 0 || s.BootSize%MiB != 0:
		return fmt.Errorf("images: boot size %d bytes is not a positive multiple of 1 MiB", s.BootSize)
	case s.Size-BootStart-s.BootSize < minPermSize:
		return fmt.Errorf("images: image size %d MiB leaves %d MiB for /perm after the 4 MiB gap and %d MiB boot partition; need at least %d MiB",
			s.Size/MiB, (s.Size-BootStart-s.BootSize)/MiB, s.BootSize/MiB, minPermSize/MiB)
	}
	if err := checkFiles("boot", s.Boot, true); err != nil {
		return err
	}
	return checkFiles("perm", s.Perm, false)
}

// checkFiles rejects bad paths, names over 255 bytes, duplicates, files that
// are also directories, negative sizes and missing Open functions. FAT names
// are also checked for characters FAT forbids and compared without regard to
// case.
func checkFiles(part string, files []File, fat bool) error {
	seen := map[string]bool{} // path -> is a directory
	for _, f := range files {
		p := f.Path
		if !iofs.ValidPath(p) || p == "." || strings.Contains(p, `\`) {
			return fmt.Errorf("images: %s file %q: path must be relative, slash-separated, without . or .. elements", part, p)
		}
		if f.Size < 0 || f.Open == nil {
			return fmt.Errorf("images: %s file %q: negative size or nil Open", part, p)
		}
		if fat && f.Size >= 1<<32 {
			return fmt.Errorf("images: boot file %q: %d bytes, FAT32 files must be under 4 GiB", p, f.Size)
		}
		for _, el := range strings.Split(p, "/") {
			if len(el) > 255 {
				return fmt.Errorf("images: %s file %q: name longer than 255 bytes", part, p)
			}
			if fat && (strings.ContainsAny(el, "\"*:<>?|\x7f") ||
				strings.IndexFunc(el, func(r rune) bool { return r < 0x20 }) >= 0 ||
				strings.HasSuffix(el, ".") || strings.HasSuffix(el, " ")) {
				return fmt.Errorf("images: boot file %q: %q is not a valid FAT name", p, el)
			}
		}
		if fat {
			p = strings.ToLower(p)
		}
		if _, dup := seen[p]; dup {
			return fmt.Errorf("images: %s file %q given twice, or is also a directory", part, f.Path)
		}
		seen[p] = false
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if isDir, ok := seen[d]; ok && !isDir {
				return fmt.Errorf("images: %s file %q is also used as a directory", part, d)
			}
			seen[d] = true
		}
	}
	return nil
}

func nextPow2(n int64) int64 {
	p := int64(MiB)
	for p < n {
		p <<= 1
	}
	return p
}

// writeMBR writes the partition table and disk signature.
func writeMBR(f *os.File, s Spec) error {
	bootLBA, permLBA := uint32(BootStart/sectorSize), uint32((BootStart+s.BootSize)/sectorSize)
	t := &mbr.Table{
		LogicalSectorSize:  sectorSize,
		PhysicalSectorSize: sectorSize,
		Partitions: []*mbr.Partition{
			{Index: 1, Type: mbr.Fat32LBA, Start: bootLBA, Size: uint32(s.BootSize / sectorSize)},
			{Index: 2, Type: mbr.Linux, Start: permLBA, Size: uint32(s.Size/sectorSize) - permLBA},
		},
	}
	if err := t.Write(f, s.Size); err != nil {
		return fmt.Errorf("images: %w", err)
	}
	var id [4]byte
	binary.LittleEndian.PutUint32(id[:], s.DiskID)
	_, err := f.WriteAt(id[:], 440)
	return err
}

// writeBoot creates the FAT32 on partition 1, fills it, patches it and
// checks that it holds exactly s.Boot.
func writeBoot(f *os.File, s Spec, pw *progressWriter) error {
	fs, err := fat32.Create(file.New(f, false), s.BootSize, BootStart, sectorSize, BootLabel, false)
	if err != nil {
		return fmt.Errorf("images: create FAT32: %w", err)
	}
	v, err := openFAT32(io.NewSectionReader(f, BootStart, s.BootSize), s.BootSize)
	if err != nil || v.nClusters < minFAT32Clusters {
		return fmt.Errorf("images: boot size %d MiB does not give a valid FAT32 with go-diskfs (%v); try %d MiB",
			s.BootSize/MiB, errOr(err, "too few clusters"), DefaultBootSize/MiB)
	}
	var need int64
	for _, bf := range s.Boot {
		need += (bf.Size + v.clusterBytes - 1) / v.clusterBytes
	}
	// Leave room for directories; go-diskfs may hand out clusters past the
	// end of the data area when the volume is nearly full.
	if need > int64(v.nClusters)*9/10 {
		return fmt.Errorf("images: boot files need %d MiB, more than 90%% of the %d MiB boot partition",
			need*v.clusterBytes/MiB, s.BootSize/MiB)
	}
	for _, bf := range sortedFiles(s.Boot) {
		if dir := path.Dir(bf.Path); dir != "." {
			if err := fs.Mkdir("/" + dir); err != nil {
				return fmt.Errorf("images: boot: mkdir %s: %w", dir, err)
			}
		}
		w, err := fs.OpenFile("/"+bf.Path, os.O_CREATE|os.O_RDWR)
		if err != nil {
			return fmt.Errorf("images: boot: create %s: %w", bf.Path, err)
		}
		if err := pw.copy(w, bf); err != nil {
			return fmt.Errorf("images: boot: %w", err)
		}
	}
	if err := fixFAT32(f, BootStart, s.BootSize); err != nil {
		return fmt.Errorf("images: %w", err)
	}
	return verifyBoot(f, s)
}

// verifyBoot reads partition 1 back and checks that it holds exactly the
// files of s.Boot with their sizes. go-diskfs matches a new name against
// existing 8.3 names, so "a_b.txt" overwrites an earlier "a+b.txt" (8.3 name
// A_B.TXT); that shows here as a missing file.
func verifyBoot(f *os.File, s Spec) error {
	v, err := openFAT32(io.NewSectionReader(f, BootStart, s.BootSize), s.BootSize)
	if err != nil {
		return fmt.Errorf("images: verify boot: %w", err)
	}
	want := map[string]int64{}
	for _, bf := range s.Boot {
		want[bf.Path] = bf.Size
	}
	shorts := map[string]string{}
	err = v.walk(func(p string, e dirEntry, parent uint32) error {
		key := fmt.Sprint(parent, "/", e.short)
		if other, dup := shorts[key]; dup {
			return fmt.Errorf("%q and %q got the same 8.3 name %s; rename one", other, p, e.short)
		}
		shorts[key] = p
		if e.isDir() {
			return nil
		}
		size, ok := want[p]
		if !ok || size != int64(e.size) {
			return fmt.Errorf("found %q (%d bytes), which is not in the spec with that size", p, e.size)
		}
		delete(want, p)
		return nil
	})
	if err == nil && len(want) > 0 {
		missing := slices.Sorted(maps.Keys(want))
		err = fmt.Errorf("%q missing: its name clashes with the 8.3 name of another file in its folder; rename it", missing)
	}
	if err != nil {
		return fmt.Errorf("images: verify boot: %w", err)
	}
	return nil
}

// writePerm creates the ext4 on partition 2 and writes s.Perm into it.
func writePerm(f *os.File, s Spec, pw *progressWriter) error {
	start := int64(BootStart) + s.BootSize
	fs, err := ext4.Create(file.New(f, false), s.Size-start, start, sectorSize, &ext4.Params{
		VolumeName:      PermLabel,
		SectorsPerBlock: 8, // 4 KiB blocks
		Features: []ext4.FeatureOpt{
			ext4.WithFeatureMetadataChecksums(true),
			// go-diskfs writes an invalid resize inode ("Resize inode not valid").
			ext4.WithFeatureReservedGDTBlocksForExpansion(false),
		},
	})
	if err != nil {
		return fmt.Errorf("images: create ext4: %w", err)
	}
	for _, pf := range sortedFiles(s.Perm) {
		// go-diskfs' ext4 wants relative paths.
		if dir := path.Dir(pf.Path); dir != "." {
			if err := fs.Mkdir(dir); err != nil {
				return fmt.Errorf("images: perm: mkdir %s: %w", dir, err)
			}
		}
		w, err := fs.OpenFile(pf.Path, os.O_CREATE|os.O_RDWR)
		if err != nil {
			return fmt.Errorf("images: perm: create %s: %w", pf.Path, err)
		}
		if err := pw.copy(w, pf); err != nil {
			return fmt.Errorf("images: perm: %w", err)
		}
		mode := pf.Mode.Perm()
		if mode == 0 {
			mode = 0o644
		}
		if err := fs.Chmod(pf.Path, mode); err != nil {
			return fmt.Errorf("images: perm: chmod %s: %w", pf.Path, err)
		}
	}
	return nil
}

func sortedFiles(files []File) []File {
	return slices.SortedFunc(slices.Values(files), func(a, b File) int { return strings.Compare(a.Path, b.Path) })
}

// progressWriter copies file content and reports progress.
type progressWriter struct {
	done, total int64
	fn          func(done, total int64)
	buf         []byte
}

func (pw *progressWriter) report() {
	if pw.fn != nil {
		pw.fn(pw.done, pw.total)
	}
}

// copy writes the content of src to w in copyChunk pieces and closes w.
func (pw *progressWriter) copy(w filesystem.File, src File) error {
	r, err := src.Open()
	if err != nil {
		return fmt.Errorf("%s: %w", src.Path, err)
	}
	defer r.Close()
	if pw.buf == nil {
		pw.buf = make([]byte, copyChunk)
	}
	var n int64
	for {
		k, rerr := io.ReadFull(r, pw.buf)
		if k > 0 {
			if n+int64(k) > src.Size {
				return fmt.Errorf("%s: content is longer than its Size %d", src.Path, src.Size)
			}
			if _, err := w.Write(pw.buf[:k]); err != nil {
				return fmt.Errorf("%s: %w", src.Path, err)
			}
			n += int64(k)
			pw.done += int64(k)
			pw.report()
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("%s: %w", src.Path, rerr)
		}
	}
	if n != src.Size {
		return fmt.Errorf("%s: content is %d bytes, its Size says %d", src.Path, n, src.Size)
	}
	return w.Close()
}

func errOr(err error, msg string) error {
	if err != nil {
		return err
	}
	return errors.New(msg)
}
