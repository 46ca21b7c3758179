package growperm

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/skyfleet/skyfleet/internal/mbr"
)

// SectorSize is the MBR's unit: LBAs and sector counts are 512 bytes.
const SectorSize = mbr.SectorSize

// DefaultAlign is the alignment, in sectors (1 MiB), to which a grown
// partition's end is rounded down.
const DefaultAlign = 2048

const maxLBA = 1<<32 - 1 // MBR fields are 32-bit: 2 TiB limit

// Partition is one primary MBR partition entry.
type Partition struct {
	// Bootable is the 0x80 status flag.
	Bootable bool
	// Type is the partition type byte (0 = unused, 0x0c FAT32 LBA,
	// 0x83 Linux).
	Type byte
	// Start is the first sector (LBA).
	Start uint32
	// Sectors is the length in sectors.
	Sectors uint32
}

// End returns the first sector after the partition.
func (p Partition) End() uint64 { return uint64(p.Start) + uint64(p.Sectors) }

// Table holds the four primary entries; Table[0] is partition 1.
type Table [4]Partition

// ReadTable reads the MBR partition table from sector 0 of r (internal/mbr). It
// fails if the 0x55AA boot signature is missing.
func ReadTable(r io.ReaderAt) (Table, error) {
	var sector [SectorSize]byte
	if _, err := r.ReadAt(sector[:], 0); err != nil {
		return Table{}, fmt.Errorf("read MBR: %w", err)
	}
	raw, err := mbr.Parse(sector[:])
	if err != nil {
		return Table{}, err
	}
	var t Table
	for i, e := range raw.Entries {
		t[i] = Partition{Bootable: e.Bootable(), Type: e.Type, Start: e.Start, Sectors: e.Sectors}
	}
	return t, nil
}

// WriteEntry rewrites the start, length and end-CHS of partition num
// (1-4) in sector 0 of w, leaving every other byte of the MBR (boot code,
// disk signature, other entries, type and start-CHS) untouched. The end
// CHS is set to the LBA-only marker (1023/254/63); Linux and the Pi
// firmware use the LBA fields.
func WriteEntry(w io.WriterAt, num int, p Partition) error {
	if num < 1 || num > 4 {
		return fmt.Errorf("partition number %d out of range 1-4", num)
	}
	off := mbr.EntryOffset(num)
	var chsEnd = [3]byte{0xFE, 0xFF, 0xFF}
	if _, err := w.WriteAt(chsEnd[:], off+5); err != nil {
		return err
	}
	var lba [8]byte
	binary.LittleEndian.PutUint32(lba[0:], p.Start)
	binary.LittleEndian.PutUint32(lba[4:], p.Sectors)
	_, err := w.WriteAt(lba[:], off+8)
	return err
}

// PlanGrow computes the new entry for partition num (1-4) of t so that it
// ends at the end of a disk of diskSectors sectors, rounded down to a
// multiple of align sectors (0 means DefaultAlign), without overlapping a
// partition that starts after it and within the MBR's 2 TiB limit. It
// returns the new entry and whether it differs from the current one (a
// partition already at or past its aligned limit is left alone). It fails
// on an unused entry or one that extends past the end of the disk.
func PlanGrow(t Table, num int, diskSectors uint64, align uint64) (Partition, bool, error) {
	if num < 1 || num > 4 {
		return Partition{}, false, fmt.Errorf("partition number %d out of range 1-4", num)
	}
	if align == 0 {
		align = DefaultAlign
	}
	p := t[num-1]
	if p.Type == 0 || p.Sectors == 0 {
		return Partition{}, false, fmt.Errorf("partition %d is unused", num)
	}
	if p.End() > diskSectors {
		return Partition{}, false, fmt.Errorf("partition %d ends at sector %d, beyond the disk's %d sectors", num, p.End(), diskSectors)
	}
	limit := diskSectors
	for i, q := range t {
		if i != num-1 && q.Type != 0 && q.Sectors != 0 && q.Start > p.Start && uint64(q.Start) < limit {
			limit = uint64(q.Start)
		}
	}
	if maxEnd := uint64(p.Start) + maxLBA; limit > maxEnd {
		limit = maxEnd
	}
	end := limit / align * align
	if end <= p.End() {
		return p, false, nil
	}
	p.Sectors = uint32(end - uint64(p.Start))
	return p, true, nil
}

// GrowTable grows partition num in the MBR of disk, a device or image of
// diskBytes bytes, to the end of the disk (see PlanGrow), writing the new
// entry if it changed. It returns the resulting entry and whether the
// table was rewritten.
func GrowTable(disk io.ReaderAt, w io.WriterAt, diskBytes uint64, num int) (Partition, bool, error) {
	t, err := ReadTable(disk)
	if err != nil {
		return Partition{}, false, err
	}
	p, changed, err := PlanGrow(t, num, diskBytes/SectorSize, DefaultAlign)
	if err != nil || !changed {
		return p, false, err
	}
	if err := WriteEntry(w, num, p); err != nil {
		return Partition{}, false, fmt.Errorf("write MBR entry %d: %w", num, err)
	}
	return p, true, nil
}
