package images

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// sectorSize is the logical sector size of every Skyfleet image, in bytes.
const sectorSize = 512

// Partition is one primary partition of an MBR partition table.
type Partition struct {
	Index    int   // 1-based slot in the MBR (1..4), as in /dev/mmcblk0p<Index>
	Start    int64 // offset of the first byte from the start of the image, bytes
	Size     int64 // length, bytes
	Type     byte  // MBR partition type, e.g. 0x0C (FAT32 LBA) or 0x83 (Linux)
	Bootable bool  // the 0x80 "active" flag
}

// mbrTable is a parsed master boot record.
type mbrTable struct {
	diskID uint32      // disk signature at offset 440; Linux shows it as PARTUUID <id>-0N
	parts  []Partition // non-empty slots only, in slot order
}

// parseMBR decodes the first sector of an image. It checks the 0x55AA
// signature, the status bytes, and that every partition lies inside an image
// of imageSize bytes (imageSize < 0 skips that check).
func parseMBR(b []byte, imageSize int64) (*mbrTable, error) {
	if len(b) < sectorSize {
		return nil, fmt.Errorf("mbr: need %d bytes, have %d", sectorSize, len(b))
	}
	if b[510] != 0x55 || b[511] != 0xAA {
		return nil, errors.New("mbr: no 0x55AA boot signature: not an MBR-partitioned image")
	}
	t := &mbrTable{diskID: binary.LittleEndian.Uint32(b[440:444])}
	for i := range 4 {
		e := b[446+16*i : 446+16*(i+1)]
		typ := e[4]
		if typ == 0 {
			continue
		}
		if e[0] != 0 && e[0] != 0x80 {
			return nil, fmt.Errorf("mbr: partition %d: invalid status byte %#02x", i+1, e[0])
		}
		if typ == 0xEE {
			return nil, errors.New("mbr: protective MBR of a GPT disk; GPT images are not supported")
		}
		p := Partition{
			Index:    i + 1,
			Start:    int64(binary.LittleEndian.Uint32(e[8:12])) * sectorSize,
			Size:     int64(binary.LittleEndian.Uint32(e[12:16])) * sectorSize,
			Type:     typ,
			Bootable: e[0] == 0x80,
		}
		if p.Start == 0 || p.Size == 0 {
			return nil, fmt.Errorf("mbr: partition %d: zero start or size", p.Index)
		}
		if imageSize >= 0 && p.Start+p.Size > imageSize {
			return nil, fmt.Errorf("mbr: partition %d (bytes %d..%d) runs past the end of the %d-byte image",
				p.Index, p.Start, p.Start+p.Size, imageSize)
		}
		t.parts = append(t.parts, p)
	}
	return t, nil
}

// partition returns the partition in MBR slot n (1-based).
func (t *mbrTable) partition(n int) (Partition, error) {
	for _, p := range t.parts {
		if p.Index == n {
			return p, nil
		}
	}
	return Partition{}, fmt.Errorf("mbr: no partition %d", n)
}
