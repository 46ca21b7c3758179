package growperm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Superblock holds the ext4 superblock fields needed to decide on a
// resize.
type Superblock struct {
	// BlockSize is the filesystem block size in bytes.
	BlockSize uint64
	// Blocks is the filesystem size in blocks.
	Blocks uint64
}

// Bytes returns the filesystem size in bytes.
func (s Superblock) Bytes() uint64 { return s.BlockSize * s.Blocks }

// ReadSuperblock parses the ext2/3/4 superblock at byte 1024 of r.
func ReadSuperblock(r io.ReaderAt) (Superblock, error) {
	var b [1024]byte
	if _, err := r.ReadAt(b[:], 1024); err != nil {
		return Superblock{}, fmt.Errorf("read ext4 superblock: %w", err)
	}
	if binary.LittleEndian.Uint16(b[0x38:]) != 0xEF53 {
		return Superblock{}, errors.New("no ext4 superblock (bad magic)")
	}
	logBS := binary.LittleEndian.Uint32(b[0x18:])
	if logBS > 6 {
		return Superblock{}, fmt.Errorf("implausible ext4 log block size %d", logBS)
	}
	blocks := uint64(binary.LittleEndian.Uint32(b[0x04:]))
	const incompat64bit = 0x80
	if binary.LittleEndian.Uint32(b[0x60:])&incompat64bit != 0 {
		blocks |= uint64(binary.LittleEndian.Uint32(b[0x150:])) << 32
	}
	return Superblock{BlockSize: 1024 << logBS, Blocks: blocks}, nil
}

// minGrowBytes: growth below this is not worth an online resize. It also
// keeps GrowFilesystem idempotent when the kernel leaves a tail too
// small for a block group unused.
const minGrowBytes = 1 << 20

// resizeTarget returns the block count that fills devBytes, and whether
// it is worth resizing to.
func resizeTarget(sb Superblock, devBytes uint64) (uint64, bool) {
	target := devBytes / sb.BlockSize
	if target <= sb.Blocks || (target-sb.Blocks)*sb.BlockSize < minGrowBytes {
		return sb.Blocks, false
	}
	return target, true
}
