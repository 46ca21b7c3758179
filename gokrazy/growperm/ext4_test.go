package growperm

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func fakeSuperblock(logBS, blocksLo, blocksHi, incompat uint32) []byte {
	b := make([]byte, 2048)
	sb := b[1024:]
	binary.LittleEndian.PutUint32(sb[0x04:], blocksLo)
	binary.LittleEndian.PutUint32(sb[0x18:], logBS)
	binary.LittleEndian.PutUint16(sb[0x38:], 0xEF53)
	binary.LittleEndian.PutUint32(sb[0x60:], incompat)
	binary.LittleEndian.PutUint32(sb[0x150:], blocksHi)
	return b
}

func TestReadSuperblock(t *testing.T) {
	sb, err := ReadSuperblock(bytes.NewReader(fakeSuperblock(2, 16384, 0, 0)))
	if err != nil || sb.BlockSize != 4096 || sb.Blocks != 16384 || sb.Bytes() != 64<<20 {
		t.Fatalf("got %+v, %v", sb, err)
	}
	// The high word only counts with the 64bit feature.
	sb, _ = ReadSuperblock(bytes.NewReader(fakeSuperblock(2, 5, 1, 0)))
	if sb.Blocks != 5 {
		t.Fatalf("without 64bit: blocks %d, want 5", sb.Blocks)
	}
	sb, _ = ReadSuperblock(bytes.NewReader(fakeSuperblock(2, 5, 1, 0x80)))
	if sb.Blocks != 1<<32+5 {
		t.Fatalf("with 64bit: blocks %d, want 2^32+5", sb.Blocks)
	}
	bad := fakeSuperblock(2, 1, 0, 0)
	bad[1024+0x38] = 0
	if _, err := ReadSuperblock(bytes.NewReader(bad)); err == nil {
		t.Fatal("bad magic accepted")
	}
	if _, err := ReadSuperblock(bytes.NewReader(fakeSuperblock(30, 1, 0, 0))); err == nil {
		t.Fatal("absurd block size accepted")
	}
}

func TestResizeTarget(t *testing.T) {
	sb := Superblock{BlockSize: 4096, Blocks: 16384} // 64 MiB
	if n, ok := resizeTarget(sb, 1<<30); !ok || n != 262144 {
		t.Errorf("1 GiB device: %d %v, want 262144 true", n, ok)
	}
	if _, ok := resizeTarget(sb, 64<<20); ok {
		t.Error("same size: resize requested")
	}
	if _, ok := resizeTarget(sb, 64<<20+512<<10); ok {
		t.Error("half a MiB more: resize requested")
	}
	if _, ok := resizeTarget(sb, 32<<20); ok {
		t.Error("smaller device: shrink requested")
	}
}
