package images

import (
	"errors"
	"fmt"

	"github.com/skyfleet/skyfleet/internal/mbr"
)

// sectorSize is the logical sector size of every Skyfleet image, in bytes.
const sectorSize = mbr.SectorSize

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

// parseMBR decodes the first sector of an image (internal/mbr). It checks the
// 0x55AA signature, the status bytes, and that every partition lies inside an image
// of imageSize bytes (imageSize < 0 skips that check).
func parseMBR(b []byte, imageSize int64) (*mbrTable, error) {
	raw, err := mbr.Parse(b)
	if errors.Is(err, mbr.ErrNoSignature) {
		return nil, errors.New("mbr: no 0x55AA boot signature: not an MBR-partitioned image")
	} else if err != nil {
		return nil, err
	}
	t := &mbrTable{diskID: raw.DiskID}
	for i, e := range raw.Entries {
		if !e.Used() {
			continue
		}
		if e.Status != 0 && e.Status != 0x80 {
			return nil, fmt.Errorf("mbr: partition %d: invalid status byte %#02x", i+1, e.Status)
		}
		if e.Type == 0xEE {
			return nil, errors.New("mbr: protective MBR of a GPT disk; GPT images are not supported")
		}
		p := Partition{
			Index:    i + 1,
			Start:    int64(e.Start) * sectorSize,
			Size:     int64(e.Sectors) * sectorSize,
			Type:     e.Type,
			Bootable: e.Bootable(),
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
