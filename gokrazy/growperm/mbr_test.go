package growperm

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	mbrlayout "github.com/skyfleet/skyfleet/internal/mbr"
)

const mib = 1 << 20

const tableOffset, entrySize = mbrlayout.TableOffset, mbrlayout.EntrySize

// writeImage creates a sparse image of size bytes with an MBR holding the
// given entries (a boot-code pattern and a disk signature too, to check
// they survive).
func writeImage(t *testing.T, size int64, parts ...Partition) string {
	t.Helper()
	var mbr [SectorSize]byte
	for i := 0; i < tableOffset; i++ {
		mbr[i] = byte(i * 7)
	}
	binary.LittleEndian.PutUint32(mbr[440:], 0xDEADBEEF)
	for i, p := range parts {
		e := mbr[tableOffset+i*entrySize:]
		if p.Bootable {
			e[0] = 0x80
		}
		e[1], e[2], e[3] = 0x01, 0x02, 0x03 // start CHS, must be preserved
		e[4] = p.Type
		e[5], e[6], e[7] = 0x11, 0x22, 0x33 // end CHS, rewritten on grow
		binary.LittleEndian.PutUint32(e[8:], p.Start)
		binary.LittleEndian.PutUint32(e[12:], p.Sectors)
	}
	mbr[510], mbr[511] = 0x55, 0xAA
	path := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(path, mbr[:], 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
	return path
}

func readSector0(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, SectorSize)
	if _, err := f.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	return b
}

func skyfleetLayout(permMiB uint32) []Partition {
	return []Partition{
		{Bootable: true, Type: 0x0c, Start: 4 * mib / SectorSize, Sectors: 256 * mib / SectorSize},
		{Type: 0x83, Start: 260 * mib / SectorSize, Sectors: permMiB * mib / SectorSize},
	}
}

func TestGrowTableOnImage(t *testing.T) {
	const size = 1024 * mib
	path := writeImage(t, size, skyfleetLayout(64)...)
	before := readSector0(t, path)

	grown, err := GrowPartition(path, 2) // a regular file: table only
	if err != nil || !grown {
		t.Fatalf("GrowPartition = %v, %v; want true, nil", grown, err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tab, err := ReadTable(f)
	if err != nil {
		t.Fatal(err)
	}
	want := Partition{Type: 0x83, Start: 260 * mib / SectorSize, Sectors: (1024 - 260) * mib / SectorSize}
	if tab[1] != want {
		t.Fatalf("partition 2 = %+v, want %+v", tab[1], want)
	}
	if tab[1].End() != size/SectorSize {
		t.Fatalf("partition 2 ends at %d, disk has %d sectors", tab[1].End(), size/SectorSize)
	}
	after := readSector0(t, path)
	// Only partition 2's end CHS (3 bytes) and sector count (4 bytes)
	// may differ; boot code, signature, p1, type and start CHS stay.
	e2 := tableOffset + entrySize
	for i := range before {
		inCHS := i >= e2+5 && i < e2+8
		inCount := i >= e2+12 && i < e2+16
		if before[i] != after[i] && !inCHS && !inCount {
			t.Errorf("MBR byte %d changed: %#x -> %#x", i, before[i], after[i])
		}
	}
	if !bytes.Equal(after[e2+5:e2+8], []byte{0xFE, 0xFF, 0xFF}) {
		t.Errorf("end CHS = % x, want fe ff ff", after[e2+5:e2+8])
	}

	// Second run: nothing to do, file unchanged.
	grown, err = GrowPartition(path, 2)
	if err != nil || grown {
		t.Fatalf("second GrowPartition = %v, %v; want false, nil", grown, err)
	}
	again := readSector0(t, path)
	if !bytes.Equal(after, again) {
		t.Error("second run rewrote the MBR")
	}
}

func TestPlanGrow(t *testing.T) {
	base := Table{}
	copy(base[:], skyfleetLayout(64))
	p2 := base[1]
	cases := []struct {
		name        string
		table       Table
		diskSectors uint64
		align       uint64
		wantSectors uint32
		wantChange  bool
		wantErr     bool
	}{
		{"fills disk", base, 2048 * mib / SectorSize, 0, (2048 - 260) * mib / SectorSize, true, false},
		{"end rounded down to 1 MiB",
			base, 2048*mib/SectorSize + 1000, 0, (2048 - 260) * mib / SectorSize, true, false},
		{"custom alignment 4 MiB",
			base, 2047 * mib / SectorSize, 8192, (2044 - 260) * mib / SectorSize, true, false},
		{"already full", base, uint64(p2.End()), 0, p2.Sectors, false, false},
		{"less than one alignment unit left", base, p2.End() + 100, 0, p2.Sectors, false, false},
		{"beyond disk", base, p2.End() - 1, 0, 0, false, true},
		{"stops at next partition", func() Table {
			t := base
			t[2] = Partition{Type: 0x83, Start: 1024 * mib / SectorSize, Sectors: 10}
			return t
		}(), 4096 * mib / SectorSize, 0, (1024 - 260) * mib / SectorSize, true, false},
		{"earlier partition does not limit", func() Table {
			t := base
			t[2] = Partition{Type: 0x83, Start: 1, Sectors: 10}
			return t
		}(), 1024 * mib / SectorSize, 0, (1024 - 260) * mib / SectorSize, true, false},
		{"2 TiB MBR limit", base, 8 << 40 / SectorSize, 0,
			uint32((uint64(p2.Start)+maxLBA)/DefaultAlign*DefaultAlign - uint64(p2.Start)), true, false},
		{"unused entry", Table{base[0]}, 1024 * mib / SectorSize, 0, 0, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, changed, err := PlanGrow(c.table, 2, c.diskSectors, c.align)
			if (err != nil) != c.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, c.wantErr)
			}
			if err != nil {
				return
			}
			if changed != c.wantChange || p.Sectors != c.wantSectors {
				t.Fatalf("got sectors %d changed %v, want %d %v", p.Sectors, changed, c.wantSectors, c.wantChange)
			}
			if p.Start != p2.Start || p.Type != p2.Type {
				t.Fatalf("start/type changed: %+v", p)
			}
			if changed && p.End()%max(c.align, DefaultAlign) != 0 && c.align == 0 {
				t.Fatalf("end %d not aligned", p.End())
			}
		})
	}
	if _, _, err := PlanGrow(base, 5, 1<<30, 0); err == nil {
		t.Error("partition 5 accepted")
	}
}

func TestReadTableRejectsMissingSignature(t *testing.T) {
	if _, err := ReadTable(bytes.NewReader(make([]byte, SectorSize))); err == nil {
		t.Fatal("zero sector accepted as MBR")
	}
	if _, err := ReadTable(bytes.NewReader(make([]byte, 100))); err == nil {
		t.Fatal("short read accepted")
	}
}

func TestGrowPartitionErrors(t *testing.T) {
	if _, err := GrowPartition(filepath.Join(t.TempDir(), "missing"), 2); err == nil {
		t.Error("missing disk accepted")
	}
	// A card smaller than the image (truncated write) is reported, not
	// "fixed".
	path := writeImage(t, 200*mib, skyfleetLayout(64)...)
	if _, err := GrowPartition(path, 2); err == nil {
		t.Error("partition beyond disk end accepted")
	}
	if _, err := GrowPartition("/dev/null", 2); err == nil {
		t.Error("character device accepted")
	}
}
