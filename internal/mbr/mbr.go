// Package mbr decodes the classic MBR partition table in sector 0 of a disk or
// image: the 0x55AA boot signature, the 32-bit disk signature at byte 440 and the
// four 16-byte primary entries at byte 446. images reads it on the host and
// gokrazy/growperm reads and patches it on the device; they may not import each
// other, so the layout lives here, below both. (Writing whole tables for new images
// is go-diskfs's job.)
package mbr

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Layout of sector 0, in bytes.
const (
	SectorSize   = 512 // the unit of Entry.Start and Entry.Sectors
	DiskIDOffset = 440
	TableOffset  = 446 // entry 1; entry n is at TableOffset + (n-1)*EntrySize
	EntrySize    = 16
)

// ErrNoSignature means sector 0 does not end in 0x55AA: not an MBR-partitioned disk.
var ErrNoSignature = errors.New("mbr: no 0x55AA boot signature")

// Entry is one primary partition entry as stored. The CHS fields are not decoded:
// Linux and the Pi firmware use the LBA fields.
type Entry struct {
	Status  byte   // 0x80 bootable ("active"), 0 not; anything else is invalid
	Type    byte   // 0 unused, 0x0c FAT32 LBA, 0x83 Linux, 0xee GPT protective, ...
	Start   uint32 // first sector (LBA)
	Sectors uint32 // length in sectors
}

// Used reports whether the entry describes a partition (a non-zero type).
func (e Entry) Used() bool { return e.Type != 0 }

// Bootable reports the 0x80 status flag.
func (e Entry) Bootable() bool { return e.Status == 0x80 }

// End returns the first sector after the partition.
func (e Entry) End() uint64 { return uint64(e.Start) + uint64(e.Sectors) }

// Table is a decoded sector 0.
type Table struct {
	DiskID  uint32   // Linux shows it as PARTUUID <id>-0N
	Entries [4]Entry // Entries[0] is partition 1
}

// Parse decodes the first SectorSize bytes of b. Errors: b is shorter than a
// sector, ErrNoSignature. It does not judge the entries; callers know their rules.
func Parse(b []byte) (Table, error) {
	if len(b) < SectorSize {
		return Table{}, fmt.Errorf("mbr: need %d bytes, have %d", SectorSize, len(b))
	}
	if b[510] != 0x55 || b[511] != 0xAA {
		return Table{}, ErrNoSignature
	}
	t := Table{DiskID: binary.LittleEndian.Uint32(b[DiskIDOffset:])}
	for i := range t.Entries {
		e := b[EntryOffset(i+1):][:EntrySize]
		t.Entries[i] = Entry{
			Status:  e[0],
			Type:    e[4],
			Start:   binary.LittleEndian.Uint32(e[8:]),
			Sectors: binary.LittleEndian.Uint32(e[12:]),
		}
	}
	return t, nil
}

// EntryOffset returns the byte offset in sector 0 of entry n (1-4).
func EntryOffset(n int) int64 { return int64(TableOffset + (n-1)*EntrySize) }
