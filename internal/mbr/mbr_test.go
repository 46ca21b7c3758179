package mbr

import (
	"encoding/binary"
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	b := make([]byte, SectorSize)
	b[510], b[511] = 0x55, 0xAA
	binary.LittleEndian.PutUint32(b[440:], 0xdeadbeef)
	e2 := b[446+16:]
	e2[0], e2[4] = 0x80, 0x83
	binary.LittleEndian.PutUint32(e2[8:], 2048)
	binary.LittleEndian.PutUint32(e2[12:], 4096)
	tab, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	want := Entry{Status: 0x80, Type: 0x83, Start: 2048, Sectors: 4096}
	if tab.DiskID != 0xdeadbeef || tab.Entries[1] != want || tab.Entries[0].Used() || !tab.Entries[1].Bootable() || tab.Entries[1].End() != 6144 {
		t.Fatalf("%+v", tab)
	}
	if EntryOffset(2) != 462 {
		t.Fatalf("entry 2 at %d", EntryOffset(2))
	}
	b[511] = 0
	if _, err := Parse(b); !errors.Is(err, ErrNoSignature) {
		t.Fatalf("no signature: %v", err)
	}
	if _, err := Parse(b[:100]); err == nil {
		t.Fatal("a short sector parsed")
	}
}
