package fatrepair

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
)

// FAT32 entry values (FAT spec, "FAT Data Structure"). Only the low 28 bits
// of an entry are the value; the top 4 are reserved and kept as found.
const (
	fatMask          = 0x0FFFFFFF
	fatReserved      = 0xF0000000
	fatBad           = 0x0FFFFFF7 // bad-cluster mark
	fatEOCMin        = 0x0FFFFFF8 // values from here on end a chain
	fatEOC           = 0x0FFFFFFF // the end-of-chain mark Linux and mkfs write
	fatCleanShutdown = 0x08000000 // FAT[1] ClnShutBitMask: 1 = clean
	maxClusters      = 0x0FFFFFF5 // highest cluster number is 0x0FFFFFF6
)

// Boot sector layout (FAT spec, "Boot Sector and BPB").
const (
	bootSize      = 512 // what fsck.fat reads and compares of a boot sector
	offBytsPerSec = 0x0B
	offSecPerClus = 0x0D
	offRsvdSecCnt = 0x0E
	offNumFATs    = 0x10
	offRootEntCnt = 0x11
	offTotSec16   = 0x13
	offMedia      = 0x15
	offFATSz16    = 0x16
	offTotSec32   = 0x20
	offFATSz32    = 0x24
	offRootClus   = 0x2C
	offFSInfo     = 0x30
	offBkBootSec  = 0x32
	offFlags      = 0x41 // BS_Reserved1, which Windows and Linux use for state
	flagDirty     = 0x01
)

// FSInfo sector layout (FAT spec, "FAT32 FSInfo Sector Structure and Backup
// Boot Sector").
const (
	fsiLeadSig    = 0x41615252
	fsiStrucSig   = 0x61417272
	fsiTrailSig   = 0xAA550000
	offFSILead    = 0
	offFSIStruc   = 484
	offFSIFree    = 488
	offFSINext    = 492
	offFSITrail   = 508
	fsiUnknown    = 0xFFFFFFFF
	maxDirBytes   = 65536 * 32 // Linux's FAT_MAX_DIR_SIZE: 65536 entries
	dirEntrySize  = 32
	deletedMarker = 0xE5
)

// volume is a validated FAT32 geometry. Offsets are in bytes from the boot
// sector, counts of sectors and clusters are as in the BPB.
type volume struct {
	dev          io.ReaderAt
	boot         []byte // the first bootSize bytes of sector 0
	bps          int64  // bytes per sector
	clusterSize  int64  // bytes per cluster
	reserved     int64  // reserved sectors before FAT 1
	nFATs        int
	fatSectors   int64 // sectors per FAT copy
	dataStart    int64 // byte offset of cluster 2
	nClusters    uint32
	rootCluster  uint32
	fsInfoSector int64 // 0: none
	backupSector int64 // 0: none
	media        byte
}

func le16(b []byte) uint16     { return binary.LittleEndian.Uint16(b) }
func le32(b []byte) uint32     { return binary.LittleEndian.Uint32(b) }
func put16(b []byte, v uint16) { binary.LittleEndian.PutUint16(b, v) }
func put32(b []byte, v uint32) { binary.LittleEndian.PutUint32(b, v) }

// open reads and validates the boot sector of dev. size is the device's size
// in bytes, or -1 if unknown (Dirty), in which case the volume's extent is
// not checked against it. Every value the rest of the package computes with
// is checked here, so that nothing later can index out of range, overflow or
// allocate more than the device size warrants.
func open(dev io.ReaderAt, size int64) (*volume, error) {
	if size >= 0 && size < bootSize {
		return nil, fmt.Errorf("%w: device has %d bytes, less than a boot sector", ErrNotFAT32, size)
	}
	b := make([]byte, bootSize)
	if _, err := dev.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("fatrepair: read boot sector: %w", err)
	}
	notFAT32 := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrNotFAT32}, args...)...)
	}
	switch {
	case bytes.Equal(b[3:11], []byte("EXFAT   ")):
		return nil, notFAT32("exFAT volume")
	case bytes.Equal(b[3:11], []byte("NTFS    ")):
		return nil, notFAT32("NTFS volume")
	case b[510] != 0x55 || b[511] != 0xAA:
		// FAT spec, "Boot Sector and BPB": the signature is required.
		return nil, notFAT32("no 0x55AA signature in the boot sector")
	}
	v := &volume{
		dev:         dev,
		boot:        b,
		bps:         int64(le16(b[offBytsPerSec:])),
		reserved:    int64(le16(b[offRsvdSecCnt:])),
		nFATs:       int(b[offNumFATs]),
		media:       b[offMedia],
		rootCluster: le32(b[offRootClus:]),
	}
	spc := int64(b[offSecPerClus])
	totalSectors := int64(le32(b[offTotSec32:]))
	v.fatSectors = int64(le32(b[offFATSz32:]))
	switch {
	case v.bps != 512 && v.bps != 1024 && v.bps != 2048 && v.bps != 4096:
		return nil, notFAT32("%d bytes per sector, want 512, 1024, 2048 or 4096", v.bps)
	case spc == 0 || spc&(spc-1) != 0:
		return nil, notFAT32("%d sectors per cluster is not a power of two", spc)
	case v.reserved == 0:
		return nil, notFAT32("no reserved sectors")
	case v.nFATs != 1 && v.nFATs != 2:
		// fsck.fat handles only one or two FATs.
		return nil, notFAT32("%d FATs, want 1 or 2", v.nFATs)
	case le16(b[offFATSz16:]) != 0 || le16(b[offRootEntCnt:]) != 0:
		// FAT spec, "Boot Sector and BPB": FAT32 has BPB_FATSz16 = 0 and
		// BPB_RootEntCnt = 0. Linux and fsck.fat tell FAT32 from FAT12/16
		// by the 16-bit FAT size, not by the cluster count.
		return nil, notFAT32("16-bit FAT size or fixed root directory set: FAT12 or FAT16")
	case le16(b[offTotSec16:]) != 0:
		return nil, notFAT32("16-bit total sector count set, FAT32 needs 0")
	case v.fatSectors == 0 || totalSectors == 0:
		return nil, notFAT32("zero FAT size or total sectors")
	case size >= 0 && totalSectors*v.bps > size:
		return nil, notFAT32("volume claims %d bytes, device has %d", totalSectors*v.bps, size)
	}
	v.clusterSize = spc * v.bps
	meta := v.reserved + int64(v.nFATs)*v.fatSectors
	if meta >= totalSectors || (totalSectors-meta)/spc == 0 {
		return nil, notFAT32("reserved sectors and FATs (%d sectors) leave no data cluster in %d sectors", meta, totalSectors)
	}
	v.dataStart = meta * v.bps
	n := (totalSectors - meta) / spc
	if n > maxClusters {
		return nil, notFAT32("%d clusters, FAT32 allows at most %d", n, maxClusters)
	}
	v.nClusters = uint32(n)
	if v.fatSectors*v.bps/4 < n+2 {
		// fsck.fat: "Filesystem has N clusters but only space for M FAT entries".
		return nil, notFAT32("FAT holds %d entries, %d clusters need %d", v.fatSectors*v.bps/4, n, n+2)
	}
	if !v.valid(v.rootCluster) {
		return nil, notFAT32("root cluster %d is not in 2..%d", v.rootCluster, n+1)
	}
	// The FSInfo and backup boot sectors live in the reserved area (FAT
	// spec, "FAT32 FSInfo Sector Structure and Backup Boot Sector");
	// anywhere else, rewriting them would overwrite the FAT or data.
	fsi, bk := int64(le16(b[offFSInfo:])), int64(le16(b[offBkBootSec:]))
	if fsi >= v.reserved {
		return nil, notFAT32("FSInfo sector %d is outside the %d reserved sectors", fsi, v.reserved)
	}
	if bk >= v.reserved {
		return nil, notFAT32("backup boot sector %d is outside the %d reserved sectors", bk, v.reserved)
	}
	if fsi != 0 && fsi == bk {
		return nil, notFAT32("FSInfo and backup boot sector are both sector %d", fsi)
	}
	v.fsInfoSector, v.backupSector = fsi, bk
	return v, nil
}

// valid reports whether c is a data cluster number of the volume.
func (v *volume) valid(c uint32) bool { return c >= 2 && c-2 < v.nClusters }

// clusterOffset is the byte offset of data cluster c, which must be valid.
func (v *volume) clusterOffset(c uint32) int64 {
	return v.dataStart + int64(c-2)*v.clusterSize
}

// fatOffset is the byte offset of FAT copy i (0 or 1).
func (v *volume) fatOffset(i int) int64 {
	return (v.reserved + int64(i)*v.fatSectors) * v.bps
}

// fatBytes is how many bytes of each FAT copy hold entries 0 through the
// last cluster, rounded up to whole sectors: the part Repair reads, checks
// and may rewrite. It is at most the BPB's FAT size (checked by open).
func (v *volume) fatBytes() int64 {
	n := (int64(v.nClusters) + 2) * 4
	return (n + v.bps - 1) / v.bps * v.bps
}

func (v *volume) bootDirty() bool { return v.boot[offFlags]&flagDirty != 0 }
