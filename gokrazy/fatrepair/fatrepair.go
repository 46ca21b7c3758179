// Package fatrepair checks and repairs a FAT32 volume in place, so that PID 1
// can fix the boot partition after a power cut before it mounts it.
//
// The node mounts /boot read-only and makes it writable for a few seconds
// during an A/B update. Linux's vfat driver sets the volume's dirty bit when
// it mounts read-write and clears it when it remounts read-only, so a power
// cut in between leaves the dirty bit set, and possibly a half-done
// allocation: clusters allocated in the FAT that no directory entry reaches,
// a file whose size disagrees with its cluster chain, FAT copies that differ,
// a stale FSInfo free count, entries pointing at free clusters, cross-linked
// chains. Linux never clears a dirty bit it found at mount time, and
// `fsck.fat -n` (dosfstools 4.2) reports all of the above, so PID 1 calls
// Dirty and, if it says so, Repair on the raw block device before mounting.
//
// In PID 1, before mounting /boot:
//
//	dev, err := os.OpenFile("/dev/mmcblk0p1", os.O_RDWR, 0)
//	...
//	size, err := dev.Seek(0, io.SeekEnd)
//	...
//	if dirty, err := fatrepair.Dirty(dev); err == nil && dirty {
//		rep, err := fatrepair.Repair(dev, size, true)
//		log.Printf("%v (err: %v)", rep, err)
//	}
//	dev.Close()
//
// Repair's rules follow what dosfstools' fsck.fat does in automatic mode
// where that leads to a volume fsck.fat -n accepts, and are stricter where
// fsck.fat would need a second run or guess (an unusable directory is
// deleted rather than emptied). They are listed on Repair.
//
// References: Microsoft Extensible Firmware Initiative FAT32 File System
// Specification, version 1.03 (fatgen103), cited below as "FAT spec" with
// the name of the section; dosfstools 4.2 src/check.c, fat.c, lfn.c and
// boot.c for what fsck.fat checks.
package fatrepair

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// ReadWriterAt is the block device (or image file) holding the volume, whose
// first byte is the volume's boot sector. If it also has a Sync() error
// method (as *os.File does), Repair calls it between its write phases, so
// that the dirty bit is cleared on the medium only after every other repair
// has reached it.
type ReadWriterAt interface {
	io.ReaderAt
	io.WriterAt
}

// ErrNotFAT32 is wrapped by the errors Dirty and Repair return when the boot
// sector does not describe a FAT32 volume they can work on (FAT12, FAT16,
// exFAT, NTFS, garbage, or a FAT32 BPB with impossible values). Nothing has
// been written when it is returned.
var ErrNotFAT32 = errors.New("fatrepair: not a usable FAT32 volume")

// Report says what Repair found and, when it was asked to fix, fixed. The
// counts are the same whether or not fix was set, except for DirtyCleared
// and Repaired. A Report whose Clean method returns true describes a volume
// Repair would not change.
type Report struct {
	// Dirty is set when the volume was not cleanly unmounted: the dirty bit
	// (bit 0 of byte 0x41 of the boot sector) was set, or FAT entry 1's
	// clean-shutdown bit (0x08000000) was clear (FAT spec, "FAT Data
	// Structure"; fsck.fat checks both).
	Dirty bool
	// BadLinks counts FAT entries of data clusters whose value was 1 or a
	// cluster number past the last cluster; they are set to end of chain,
	// as fsck.fat does.
	BadLinks int
	// CrossLinks counts chains cut where they ran into a cluster that an
	// earlier chain (in directory-walk order), or the chain itself (a loop),
	// already held.
	CrossLinks int
	// FilesTruncated counts file (and volume label) entries whose chain was
	// cut to the clusters their size needs, or whose size was cut to the
	// bytes their chain holds, or both. A file whose first cluster is
	// unusable keeps its entry with start cluster 0 and size 0.
	FilesTruncated int
	// DirsTruncated counts directory chains cut at a free, bad or already
	// held cluster or at the 2 MiB directory limit, including a root
	// directory whose first cluster was marked free or bad in the FAT.
	DirsTruncated int
	// EntriesFixed counts directory entries corrected in place: a
	// directory's non-zero size, the cluster or attributes of "." and "..",
	// and the reserved fields of long-name slots.
	EntriesFixed int
	// EntriesRemoved counts short directory entries deleted: a directory
	// whose start cluster is unusable or whose first cluster does not begin
	// with "." and "..", and entries with a name fsck.fat rejects or a short
	// name already used earlier in the same directory. Everything a deleted
	// directory held becomes lost clusters.
	EntriesRemoved int
	// LFNSlotsRemoved counts long-file-name slots deleted because fsck.fat
	// would see them as orphaned: not followed by their short entry, or
	// belonging to a removed entry.
	LFNSlotsRemoved int
	// LostClusters counts clusters allocated in the FAT that no directory
	// entry reaches; they are freed.
	LostClusters int
	// FATsDiffered counts the FAT entries (0 through the last cluster) in
	// which the two FAT copies differed before repair. FAT 2 is rewritten
	// from the repaired FAT 1 (or FAT 1 from FAT 2, if only FAT 2 has a
	// valid media entry, as fsck.fat does).
	FATsDiffered int
	// FATHeaderFixed is set when FAT entry 0 did not hold the media byte
	// with all other bits set (FAT spec, "FAT Data Structure").
	FATHeaderFixed bool
	// FreeCountFixed is set when the FSInfo sector's signatures, free
	// cluster count or next-free hint were wrong (FAT spec, "FAT32 FSInfo
	// Sector Structure and Backup Boot Sector"). An unknown count or hint
	// (0xFFFFFFFF) is valid and left alone.
	FreeCountFixed bool
	// BackupBootFixed is set when the backup boot sector differed from the
	// repaired boot sector in its first 512 bytes (the part fsck.fat
	// compares), or was missing while the reserved area had room for it.
	BackupBootFixed bool
	// DirtyCleared is set when Repair ran with fix and cleared the dirty
	// state, which it does last.
	DirtyCleared bool
	// Repaired is set when Repair ran with fix and wrote anything.
	Repaired bool
}

// Clean reports whether the volume needed nothing: no dirty state and no
// damage. It ignores DirtyCleared and Repaired, so it is also true for the
// report of a second Repair after a successful one.
func (r Report) Clean() bool {
	c := r
	c.DirtyCleared, c.Repaired = false, false
	return c == Report{}
}

// String renders the report on one line for a log, e.g.
// "fatrepair: dirty, 12 lost clusters, 1 file truncated; repaired".
func (r Report) String() string {
	var parts []string
	add := func(n int, one, many string) {
		switch {
		case n == 1:
			parts = append(parts, "1 "+one)
		case n > 1:
			parts = append(parts, fmt.Sprintf("%d %s", n, many))
		}
	}
	flag := func(b bool, s string) {
		if b {
			parts = append(parts, s)
		}
	}
	flag(r.Dirty, "dirty")
	add(r.BadLinks, "bad FAT link", "bad FAT links")
	add(r.CrossLinks, "cross-link", "cross-links")
	add(r.FilesTruncated, "file truncated", "files truncated")
	add(r.DirsTruncated, "directory truncated", "directories truncated")
	add(r.EntriesFixed, "entry fixed", "entries fixed")
	add(r.EntriesRemoved, "entry removed", "entries removed")
	add(r.LFNSlotsRemoved, "long-name slot removed", "long-name slots removed")
	add(r.LostClusters, "lost cluster", "lost clusters")
	add(r.FATsDiffered, "FAT entry differing between copies", "FAT entries differing between copies")
	flag(r.FATHeaderFixed, "FAT media entry wrong")
	flag(r.FreeCountFixed, "FSInfo wrong")
	flag(r.BackupBootFixed, "backup boot sector wrong")
	s := "fatrepair: "
	if len(parts) == 0 {
		s += "clean"
	} else {
		s += strings.Join(parts, ", ")
	}
	if r.Repaired {
		s += "; repaired"
	} else if !r.Clean() {
		s += "; not repaired"
	}
	return s
}

// Dirty reports whether the FAT32 volume on dev was not cleanly unmounted:
// its boot sector's dirty bit (byte 0x41, bit 0) is set, or the
// clean-shutdown bit of FAT 1's entry 1 is clear (fsck.fat treats both as
// dirty). It reads the boot sector and FAT 1's entry 1, nothing else, and
// does not know the device size, so it cannot tell a volume that is larger
// than its device; Repair can. Errors wrap ErrNotFAT32 when the boot sector
// does not describe a FAT32 volume, or report the read that failed.
func Dirty(dev io.ReaderAt) (bool, error) {
	v, err := open(dev, -1)
	if err != nil {
		return false, err
	}
	var b [4]byte
	if _, err := dev.ReadAt(b[:], v.fatOffset(0)+4); err != nil {
		return false, fmt.Errorf("fatrepair: read FAT entry 1: %w", err)
	}
	return v.bootDirty() || le32(b[:])&fatCleanShutdown == 0, nil
}
