package fatrepair

import (
	"bytes"
	"fmt"
	"slices"
)

// Repair checks the FAT32 volume on dev, which is size bytes long, and when
// fix is true repairs it so that `fsck.fat -n` (dosfstools 4.2) finds nothing
// to change. It returns what it found (and fixed).
//
// It validates the boot sector (errors wrap ErrNotFAT32, and nothing is
// written); reads the FAT copies into memory (entries 0 through the last
// cluster: 4 bytes per cluster, bounded by the BPB's FAT size, which is
// checked against size); walks the directory tree from the root cluster,
// fixing each directory's entries when it is done with the directory; then
// frees lost clusters and writes the FATs, the FSInfo sector, the backup
// boot sector and the boot sector. Memory is about 16 bytes per cluster (1.2 MiB
// for the 300 MiB boot partition with 4 KiB clusters) plus one directory's
// entries (at most 65536), whatever the disk holds. Every loop is bounded by
// the cluster count, because each step claims a cluster no earlier step
// has, so loops in chains or in the directory tree cannot make it run
// forever, and the tree is walked with an explicit stack, not recursion.
//
// The walk visits directories in the order fsck.fat does (a directory's
// entries in order, then each subdirectory in turn, depth first), and every
// chain claims its clusters; the first claimant keeps a cluster. The rules:
//
//   - FAT entries of data clusters that hold 1 or a number past the last
//     cluster become end of chain (as fsck.fat does before its walk).
//   - A chain ends before a cluster that is free or marked bad in the FAT, or
//     already claimed (a cross-link, or a loop back into itself).
//   - A file's chain ends once it has the clusters its size needs; the rest
//     is left to become lost clusters. A file whose size needs more than its
//     chain holds gets the size of its chain (a multiple of the cluster
//     size). A file whose start cluster is out of range or unusable keeps
//     its entry with cluster 0 and size 0, as fsck.fat leaves it. Empty
//     files own no cluster.
//   - A directory entry whose start cluster is out of range, free, bad or
//     already claimed (this covers pointing at the root, the parent, an
//     ancestor or another directory), or whose first cluster does not hold
//     "." and ".." entries, is deleted (fsck.fat would empty it and delete
//     it on a second run, or move entries around in a cluster that never
//     was a directory). Its contents become lost clusters.
//   - A directory's size field is set to 0; "." gets the directory's own
//     cluster and ".." its parent's, or 0 when the parent is the root (FAT
//     spec, "FAT Directory Structure"), both with the directory attribute.
//   - A directory's chain is cut at 2 MiB (65536 entries), the limit Linux
//     enforces (FAT_MAX_DIR_SIZE).
//   - Entries whose short name fsck.fat rejects (control characters, any of
//     *?<>|"\/:. , a leading space, or the "no 8.3 name" flag without a long
//     name) and entries whose short name repeats an earlier one in the same
//     directory are deleted (fsck.fat would rename them FSCK0000.000 and so
//     on).
//   - Long-name slots are deleted when fsck.fat would delete them as
//     orphans, including those of a deleted entry; see lfnTracker.
//   - The root directory's first cluster is marked end of chain if the FAT
//     says it is free or bad (fsck.fat gives up on such a volume).
//   - Allocated clusters that no chain claimed are freed (bad-cluster marks
//     are kept).
//   - FAT entry 0 gets the media byte with all other bits set if it lacks
//     them; FAT entry 1 gets its clean-shutdown bit.
//   - With two FATs, FAT 2 is made equal to FAT 1 in entries 0 through the
//     last cluster. FAT 1 is the source unless only FAT 2 has a valid entry
//     0, as in fsck.fat.
//   - The FSInfo sector gets valid signatures, the true free count and, as
//     next-free hint, the first free cluster, if its signatures are wrong,
//     or its count is neither unknown nor true, or its hint is neither
//     unknown nor a cluster number.
//   - The first 512 bytes of the backup boot sector are made equal to the
//     repaired boot sector; if there is none and the reserved area has room,
//     one is created where fsck.fat would put it.
//   - The dirty bit is cleared.
//
// Writes happen in an order that survives a power cut at any point: the
// dirty bit is set first (if it was not), then directory entries are
// written (deletions before the clusters they held are freed), then FAT 1
// (its sector 0 last, so that fsck.fat's and Repair's choice of source FAT
// cannot flip half way), FAT 2, the FSInfo and backup boot sectors, and
// finally the boot sector with the dirty bit cleared. dev is synced between
// phases if it can be. An interrupted repair thus leaves the dirty bit set
// and is simply redone, with the same result, on the next boot. Only
// changed sectors of the FATs and changed 32-byte directory entries are
// written; a clean volume is not written at all.
//
// With fix false, Repair only reads. An error after validation (a read or
// write failing) leaves the volume dirty; with fix it may be partly repaired,
// and running Repair again is safe.
func Repair(dev ReadWriterAt, size int64, fix bool) (Report, error) {
	v, err := open(dev, size)
	if err != nil {
		return Report{}, err
	}
	r := &repairer{v: v, dev: dev, fix: fix, patches: map[int64]*[dirEntrySize]byte{}}
	if err := r.run(); err != nil {
		return r.rep, err
	}
	return r.rep, nil
}

// repairer holds the state of one Repair call.
type repairer struct {
	v   *volume
	dev ReadWriterAt
	fix bool
	rep Report

	raw   [2][]byte // the FAT copies as read (fatBytes each; raw[1] nil with one FAT)
	fat   []uint32  // the working FAT: entries 0 through the last cluster
	owned []uint64  // bitmap: cluster claimed by a chain

	// patches are the directory entries changed since the last flush, by
	// byte offset in the volume.
	patches map[int64]*[dirEntrySize]byte
	// started is set once the dirty bit is known to be set on disk, which
	// must be so before anything else is written.
	started bool
	buf     []byte // one cluster
}

func (r *repairer) run() error {
	v := r.v
	r.rep.Dirty = v.bootDirty()
	if err := r.readFAT(); err != nil {
		return err
	}
	r.owned = make([]uint64, (len(r.fat)+63)/64)
	r.buf = make([]byte, v.clusterSize)

	if err := r.walk(); err != nil {
		return err
	}
	// Lost clusters (fsck.fat's reclaim_free).
	for c := uint32(2); c < uint32(len(r.fat)); c++ {
		if val := r.fat[c] & fatMask; !r.isOwned(c) && val != 0 && val != fatBad {
			r.setFAT(c, 0)
			r.rep.LostClusters++
		}
	}
	if r.fix {
		if err := r.sync(); err != nil { // the directory entries
			return err
		}
		if err := r.writeFAT(); err != nil {
			return err
		}
	}
	fsi, err := r.checkFSInfo()
	if err != nil {
		return err
	}
	return r.finish(fsi)
}

// readFAT reads the FAT copies, picks the source as fsck.fat does, and
// normalizes entries 0 and 1 and links that point nowhere.
func (r *repairer) readFAT() error {
	v := r.v
	n := v.fatBytes()
	for i := range v.nFATs {
		r.raw[i] = make([]byte, n)
		if _, err := v.dev.ReadAt(r.raw[i], v.fatOffset(i)); err != nil {
			return fmt.Errorf("fatrepair: read FAT %d: %w", i+1, err)
		}
	}
	entries := int(v.nClusters) + 2
	mediaOK := func(raw []byte) bool { return le32(raw)&0x0FFFFFF0 == 0x0FFFFFF0 }
	src := r.raw[0]
	if v.nFATs == 2 {
		for i := range entries {
			if le32(r.raw[0][4*i:]) != le32(r.raw[1][4*i:]) {
				r.rep.FATsDiffered++
			}
		}
		if !mediaOK(r.raw[0]) && mediaOK(r.raw[1]) {
			src = r.raw[1]
		}
	}
	r.fat = make([]uint32, entries)
	for i := range r.fat {
		r.fat[i] = le32(src[4*i:])
	}
	// FAT spec, "FAT Data Structure": entry 0 holds the media byte in its
	// low 8 bits and all other bits set; fsck.fat checks bits 4..27.
	if r.fat[0]&0x0FFFFFF0 != 0x0FFFFFF0 {
		r.fat[0] = 0x0FFFFFF0 | uint32(v.media)
		r.rep.FATHeaderFixed = true
	}
	// Entry 1's ClnShutBitMask: 0 means "not cleanly unmounted".
	if r.fat[1]&fatCleanShutdown == 0 {
		r.fat[1] |= fatCleanShutdown
		r.rep.Dirty = true
	}
	for c := 2; c < entries; c++ {
		if val := r.fat[c] & fatMask; val == 1 || (val >= uint32(entries) && val < fatBad) {
			r.setFAT(uint32(c), fatEOC)
			r.rep.BadLinks++
		}
	}
	return nil
}

// setFAT sets the value of c's FAT entry, keeping its reserved top bits, as
// the FAT spec ("FAT Data Structure") and fsck.fat require.
func (r *repairer) setFAT(c, val uint32) { r.fat[c] = r.fat[c]&fatReserved | val }

func (r *repairer) isOwned(c uint32) bool { return r.owned[c/64]&(1<<(c%64)) != 0 }
func (r *repairer) own(c uint32)          { r.owned[c/64] |= 1 << (c % 64) }

// usable reports whether cluster c can start or continue a chain: in range,
// and neither free nor marked bad in the FAT.
func (r *repairer) usable(c uint32) bool {
	if !r.v.valid(c) {
		return false
	}
	val := r.fat[c] & fatMask
	return val != 0 && val != fatBad
}

// maxDirClusters is how many clusters a directory may span.
func (r *repairer) maxDirClusters() int {
	return int(max(1, maxDirBytes/r.v.clusterSize))
}

// claimDir claims the chain of the directory starting at start, which must
// be usable and unclaimed, cutting it before a free, bad or claimed cluster
// or at the directory size limit.
func (r *repairer) claimDir(start uint32) {
	c, prev, n := start, uint32(0), 0
	for {
		cut := !r.usable(c) || n == r.maxDirClusters()
		if !cut && r.isOwned(c) {
			cut = true
			r.rep.CrossLinks++
		}
		if cut {
			r.setFAT(prev, fatEOC) // prev != 0: start is usable and unclaimed
			r.rep.DirsTruncated++
			return
		}
		r.own(c)
		n++
		prev = c
		val := r.fat[c] & fatMask
		if val >= fatEOCMin {
			return
		}
		c = val // a cluster number: readFAT turned the others into EOC
	}
}

// dirChain lists the clusters of a claimed directory chain.
func (r *repairer) dirChain(start uint32) []uint32 {
	var out []uint32
	for c := start; len(out) < r.maxDirClusters(); {
		out = append(out, c)
		val := r.fat[c] & fatMask
		if val >= fatEOCMin || !r.v.valid(val) {
			break
		}
		c = val
	}
	return out
}

// walk checks the whole tree, depth first in fsck.fat's order, with an
// explicit stack: every directory claims at least one cluster no other
// directory has, so there are at most nClusters of them and no loops.
func (r *repairer) walk() error {
	root := r.v.rootCluster
	if !r.usable(root) {
		r.setFAT(root, fatEOC)
		r.rep.DirsTruncated++
	}
	r.claimDir(root)
	stack := []uint32{root}
	for len(stack) > 0 {
		d := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		subdirs, err := r.scanDir(d)
		if err != nil {
			return err
		}
		for i := len(subdirs) - 1; i >= 0; i-- {
			stack = append(stack, subdirs[i])
		}
	}
	return nil
}

var (
	dotName    = []byte(".          ")
	dotDotName = []byte("..         ")
)

// scanDir checks the entries of the claimed directory starting at cluster
// d, claims their chains, writes the entries it changed (if fixing), and
// returns the first clusters of the subdirectories to visit, in order.
func (r *repairer) scanDir(d uint32) ([]uint32, error) {
	v := r.v
	isRoot := d == v.rootCluster
	parentRef := d // what ".." of a subdirectory must hold
	if isRoot {
		parentRef = 0
	}
	var (
		subdirs []uint32
		names   = map[[11]byte]bool{}
		lfn     = newLFNTracker()
	)
	for i, c := range r.dirChain(d) {
		if _, err := v.dev.ReadAt(r.buf, v.clusterOffset(c)); err != nil {
			return nil, fmt.Errorf("fatrepair: read directory cluster %d: %w", c, err)
		}
		for o := 0; o < len(r.buf); o += dirEntrySize {
			if i == 0 && o < 2*dirEntrySize && !isRoot {
				continue // "." and "..", checked when the entry was found
			}
			e, off := r.buf[o:o+dirEntrySize], v.clusterOffset(c)+int64(o)
			sub, err := r.entry(e, off, parentRef, &lfn, names)
			if err != nil {
				return nil, err
			}
			if sub != 0 {
				subdirs = append(subdirs, sub)
			}
		}
	}
	r.deleteSlots(lfn.free())
	return subdirs, r.flush()
}

// entry checks one directory entry e at offset off of a directory whose
// subdirectories' ".." must hold parentRef. It returns the first cluster of
// e if e is a subdirectory to visit, else 0.
func (r *repairer) entry(e []byte, off int64, parentRef uint32, lfn *lfnTracker, names map[[11]byte]bool) (uint32, error) {
	if e[0] == 0 || e[0] == deletedMarker {
		r.deleteSlots(lfn.free())
		return 0, nil
	}
	const (
		attrLFN    = 0x0F // read-only|hidden|system|volume, compared whole
		attrVolume = 0x08
		attrDir    = 0x10
	)
	if e[11] == attrLFN {
		del, check := lfn.slot(e, off)
		r.deleteSlots(del)
		if check && (e[12] != 0 || le16(e[26:]) != 0) {
			p := r.patch(off, e)
			p[12] = 0
			put16(p[26:], 0)
			r.rep.EntriesFixed++
		}
		return 0, nil
	}
	volume, dir := e[11]&attrVolume != 0, e[11]&attrDir != 0
	name := [11]byte(e[:11])
	var dots []byte
	remove := false
	switch {
	case !volume && badName(e, lfn.complete()):
		remove = true
	case !volume && names[name]:
		remove = true
	case dir:
		var err error
		dots, err = r.dirDots(startCluster(e))
		if err != nil {
			return 0, err
		}
		remove = dots == nil
	}
	if remove {
		r.patch(off, e)[0] = deletedMarker
		r.rep.EntriesRemoved++
		r.deleteSlots(lfn.free())
		return 0, nil
	}
	lfn.short()
	if !volume {
		names[name] = true
	}
	if !dir {
		r.checkFile(e, off)
		return 0, nil
	}
	start := startCluster(e)
	if le32(e[28:]) != 0 {
		put32(r.patch(off, e)[28:], 0)
		r.rep.EntriesFixed++
	}
	r.claimDir(start)
	dotOff := r.v.clusterOffset(start)
	r.fixDot(dotOff, dots[:dirEntrySize], start)
	r.fixDot(dotOff+dirEntrySize, dots[dirEntrySize:], parentRef)
	return start, nil
}

// dirDots returns the first two entries of the directory whose entry says
// it starts at cluster c, or nil if that cannot be a directory: c is out of
// range, free, bad or claimed, or does not begin with "." and "..".
func (r *repairer) dirDots(c uint32) ([]byte, error) {
	if !r.usable(c) || r.isOwned(c) {
		return nil, nil
	}
	dots := make([]byte, 2*dirEntrySize)
	if _, err := r.v.dev.ReadAt(dots, r.v.clusterOffset(c)); err != nil {
		return nil, fmt.Errorf("fatrepair: read directory cluster %d: %w", c, err)
	}
	if !bytes.Equal(dots[:11], dotName) || !bytes.Equal(dots[dirEntrySize:dirEntrySize+11], dotDotName) {
		return nil, nil
	}
	return dots, nil
}

// fixDot makes the "." or ".." entry e at offset off point at cluster want
// with the directory attribute, and clears its "no 8.3 name" flag, as
// fsck.fat's handle_dot does.
func (r *repairer) fixDot(off int64, e []byte, want uint32) {
	changed := false
	if e[11]&0x10 == 0 || startCluster(e) != want {
		p := r.patch(off, e)
		setStart(p[:], want)
		p[11] = 0x10
		changed = true
	}
	if e[12]&noShortName != 0 {
		r.patch(off, e)[12] &^= noShortName
		changed = true
	}
	if changed {
		r.rep.EntriesFixed++
	}
}

// checkFile claims the chain of the file (or volume label) entry e at off,
// cutting it and its size so that they agree.
func (r *repairer) checkFile(e []byte, off int64) {
	size, start := int64(le32(e[28:])), startCluster(e)
	changed := false
	var have int64 // clusters kept
	if start != 0 && !r.v.valid(start) {
		setStart(r.patch(off, e)[:], 0)
		changed = true
	} else if start != 0 {
		c, prev := start, uint32(0)
		for {
			cut := !r.usable(c) || size <= have*r.v.clusterSize
			if !cut && r.isOwned(c) {
				cut = true
				r.rep.CrossLinks++
			}
			if cut {
				if prev == 0 {
					setStart(r.patch(off, e)[:], 0)
				} else {
					r.setFAT(prev, fatEOC)
				}
				changed = true
				break
			}
			r.own(c)
			have++
			prev = c
			val := r.fat[c] & fatMask
			if val >= fatEOCMin {
				break
			}
			c = val
		}
	}
	if size > have*r.v.clusterSize {
		// have*clusterSize < size < 2^32 here.
		put32(r.patch(off, e)[28:], uint32(have*r.v.clusterSize))
		changed = true
	}
	if changed {
		r.rep.FilesTruncated++
	}
}

// noShortName is the flag in byte 12 of a short entry that some tools set
// when an entry has only a long name (fsck.fat's FAT_NO_83NAME).
const noShortName = 0x20

// badName reports whether fsck.fat's bad_name rejects the short entry e,
// which has a long name if hasLFN.
func badName(e []byte, hasLFN bool) bool {
	if e[12]&noShortName != 0 {
		return !hasLFN
	}
	for i, c := range e[:11] {
		if (c < ' ' && !(i == 0 && c == 0x05)) || c == 0x7F || bytes.IndexByte([]byte(`*?<>|"\/:.`), c) >= 0 {
			return true
		}
	}
	return e[0] == ' '
}

func startCluster(e []byte) uint32 { return uint32(le16(e[20:]))<<16 | uint32(le16(e[26:])) }

func setStart(e []byte, c uint32) {
	put16(e[20:], uint16(c>>16))
	put16(e[26:], uint16(c))
}

// patch returns the pending new content of the directory entry at off,
// starting from its current content cur.
func (r *repairer) patch(off int64, cur []byte) *[dirEntrySize]byte {
	p := r.patches[off]
	if p == nil {
		p = new([dirEntrySize]byte)
		copy(p[:], cur)
		r.patches[off] = p
	}
	return p
}

// deleteSlots marks the long-name slots at offs deleted, the way fsck.fat
// does: 0xE5 followed by zeros.
func (r *repairer) deleteSlots(offs []int64) {
	for _, off := range offs {
		p := r.patch(off, nil)
		*p = [dirEntrySize]byte{0: deletedMarker}
		r.rep.LFNSlotsRemoved++
	}
}

// flush writes the pending directory entry changes, if fixing, and forgets
// them, so that memory stays bounded by one directory.
func (r *repairer) flush() error {
	if len(r.patches) == 0 {
		return nil
	}
	offs := make([]int64, 0, len(r.patches))
	for off := range r.patches {
		offs = append(offs, off)
	}
	slices.Sort(offs)
	for _, off := range offs {
		if err := r.write(r.patches[off][:], off, "directory entry"); err != nil {
			return err
		}
	}
	clear(r.patches)
	return nil
}

// write writes b at off if fixing, after making sure the dirty bit is set
// on disk, so that an interrupted repair is redone on the next boot.
func (r *repairer) write(b []byte, off int64, what string) error {
	if !r.fix {
		return nil
	}
	if !r.started {
		r.started = true
		if !r.v.bootDirty() {
			boot := slices.Clone(r.v.boot)
			boot[offFlags] |= flagDirty
			if _, err := r.dev.WriteAt(boot, 0); err != nil {
				return fmt.Errorf("fatrepair: set dirty bit: %w", err)
			}
			if err := r.sync(); err != nil {
				return err
			}
		}
	}
	r.rep.Repaired = true
	if _, err := r.dev.WriteAt(b, off); err != nil {
		return fmt.Errorf("fatrepair: write %s at byte %d: %w", what, off, err)
	}
	return nil
}

// sync flushes dev to the medium if it can be, and something was written.
func (r *repairer) sync() error {
	s, ok := r.dev.(interface{ Sync() error })
	if !ok || !r.started {
		return nil
	}
	if err := s.Sync(); err != nil {
		return fmt.Errorf("fatrepair: sync: %w", err)
	}
	return nil
}

// writeFAT writes the sectors of each FAT copy that differ from the working
// FAT: FAT 1 first, its sector 0 last, then FAT 2.
func (r *repairer) writeFAT() error {
	v := r.v
	for i := range v.nFATs {
		want := slices.Clone(r.raw[i])
		for c, val := range r.fat {
			put32(want[4*c:], val)
		}
		var changed []int64
		for s := int64(0); s < int64(len(want)); s += v.bps {
			if !bytes.Equal(want[s:s+v.bps], r.raw[i][s:s+v.bps]) {
				changed = append(changed, s)
			}
		}
		if len(changed) > 0 && changed[0] == 0 {
			changed = append(changed[1:], 0)
		}
		for _, s := range changed {
			if err := r.write(want[s:s+v.bps], v.fatOffset(i)+s, fmt.Sprintf("FAT %d", i+1)); err != nil {
				return err
			}
		}
		if err := r.sync(); err != nil {
			return err
		}
	}
	return nil
}

// checkFSInfo returns the FSInfo sector as it must be written, or nil if it
// is right or absent (FAT spec, "FAT32 FSInfo Sector Structure and Backup
// Boot Sector"; fsck.fat's read_fsinfo and update_free).
func (r *repairer) checkFSInfo() ([]byte, error) {
	v := r.v
	if v.fsInfoSector == 0 {
		return nil, nil // fsck.fat only mentions it
	}
	b := make([]byte, bootSize)
	if _, err := v.dev.ReadAt(b, v.fsInfoSector*v.bps); err != nil {
		return nil, fmt.Errorf("fatrepair: read FSInfo sector: %w", err)
	}
	free, first := uint32(0), uint32(fsiUnknown)
	for c := uint32(2); c < uint32(len(r.fat)); c++ {
		if r.fat[c]&fatMask == 0 {
			if free == 0 {
				first = c
			}
			free++
		}
	}
	sigs := le32(b[offFSILead:]) == fsiLeadSig && le32(b[offFSIStruc:]) == fsiStrucSig && le32(b[offFSITrail:]) == fsiTrailSig
	count, hint := le32(b[offFSIFree:]), le32(b[offFSINext:])
	if sigs && (count == fsiUnknown || count == free) && (hint == fsiUnknown || v.valid(hint)) {
		return nil, nil
	}
	r.rep.FreeCountFixed = true
	put32(b[offFSILead:], fsiLeadSig)
	put32(b[offFSIStruc:], fsiStrucSig)
	put32(b[offFSITrail:], fsiTrailSig)
	put32(b[offFSIFree:], free)
	put32(b[offFSINext:], first)
	return b, nil
}

// finish writes the FSInfo sector fsi (if not nil), brings the backup boot
// sector in line, and clears the dirty bit, in that order.
func (r *repairer) finish(fsi []byte) error {
	v := r.v
	boot := slices.Clone(v.boot)
	boot[offFlags] &^= flagDirty
	var backup []byte // to write at backupSector
	backupSector := v.backupSector
	if backupSector != 0 {
		b := make([]byte, bootSize)
		if _, err := v.dev.ReadAt(b, backupSector*v.bps); err != nil {
			return fmt.Errorf("fatrepair: read backup boot sector: %w", err)
		}
		if !bytes.Equal(b, boot) {
			backup = boot
		}
	} else if v.reserved >= 3 {
		// fsck.fat's check_backup_boot creates one, at sector 6 or the
		// last reserved sector, avoiding the FSInfo sector.
		backupSector = 6
		if v.reserved < 7 || v.fsInfoSector == 6 {
			backupSector = v.reserved - 1
			if backupSector == v.fsInfoSector {
				backupSector--
			}
		}
		put16(boot[offBkBootSec:], uint16(backupSector))
		backup = boot
	}
	if backup != nil {
		r.rep.BackupBootFixed = true
	}
	if r.rep.Clean() {
		return nil
	}
	if fsi != nil {
		if err := r.write(fsi, v.fsInfoSector*v.bps, "FSInfo sector"); err != nil {
			return err
		}
	}
	if backup != nil {
		if err := r.write(backup, backupSector*v.bps, "backup boot sector"); err != nil {
			return err
		}
	}
	if err := r.sync(); err != nil {
		return err
	}
	// Last: the dirty bit. Written even if it was clear, since write set
	// it before the first change.
	if err := r.write(boot, 0, "boot sector"); err != nil {
		return err
	}
	if err := r.sync(); err != nil {
		return err
	}
	r.rep.DirtyCleared = r.fix && r.rep.Dirty
	return nil
}
