package images

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// readerWriterAt is what fixFAT32 needs of an image file.
type readerWriterAt interface {
	io.ReaderAt
	io.WriterAt
}

// fixFAT32 patches a FAT32 volume written by go-diskfs v1.9.4 so that
// `fsck.vfat -n` finds nothing to fix. The volume is size bytes at offset
// start of f; its partition begins at sector start/512. It sets:
//   - the BPB's hidden-sector count (offset 0x1C) to the partition's first
//     LBA, in the boot sector and its backup (go-diskfs writes 0);
//   - the ".." entry of every directory whose parent is the root to cluster 0,
//     as the FAT specification requires (go-diskfs writes the root's cluster),
//     and every other "." and ".." to the right cluster;
//   - empty files to own no cluster (go-diskfs gives each one cluster);
//   - the FSInfo free-cluster count and next-free hint, primary and backup
//     (go-diskfs leaves both "unknown", 0xFFFFFFFF).
func fixFAT32(f readerWriterAt, start, size int64) error {
	v, err := openFAT32(io.NewSectionReader(f, start, size), size)
	if err != nil {
		return err
	}
	put32 := func(off int64, val uint32) error {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], val)
		_, err := f.WriteAt(b[:], start+off)
		return err
	}
	setCluster := func(e dirEntry, c uint32) error {
		var b [2]byte
		binary.LittleEndian.PutUint16(b[:], uint16(c>>16))
		if _, err := f.WriteAt(b[:], start+e.off+20); err != nil {
			return err
		}
		binary.LittleEndian.PutUint16(b[:], uint16(c))
		_, err := f.WriteAt(b[:], start+e.off+26)
		return err
	}

	// Hidden sectors, in the boot sector and its backup.
	bootSectors := []int64{0}
	if v.backupSector != 0 {
		bootSectors = append(bootSectors, v.backupSector)
	}
	for _, s := range bootSectors {
		if err := put32(s*v.bps+0x1C, uint32(start/sectorSize)); err != nil {
			return fmt.Errorf("fat32 fix: hidden sectors: %w", err)
		}
	}

	// Directory links and empty files.
	fatDirty := false
	err = v.walk(func(path string, e dirEntry, parent uint32) error {
		if !e.isDir() {
			if e.size != 0 || e.cluster == 0 {
				return nil
			}
			chain, err := v.chain(e.cluster)
			if err != nil {
				return fmt.Errorf("%q: %w", path, err)
			}
			for _, c := range chain {
				v.fat[c] &^= fatMask
			}
			fatDirty = true
			return setCluster(e, 0)
		}
		entries, err := v.readDir(e.cluster)
		if err != nil {
			return fmt.Errorf("%q: %w", path, err)
		}
		if len(entries) < 2 || entries[0].short != "." || entries[1].short != ".." {
			return fmt.Errorf("fat32 fix: directory %q does not start with \".\" and \"..\"", path)
		}
		up := parent
		if parent == v.rootCluster {
			up = 0
		}
		if entries[0].cluster != e.cluster {
			if err := setCluster(entries[0], e.cluster); err != nil {
				return err
			}
		}
		if entries[1].cluster != up {
			return setCluster(entries[1], up)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("fat32 fix: %w", err)
	}
	if fatDirty {
		raw := make([]byte, len(v.fat)*4)
		for i, c := range v.fat {
			binary.LittleEndian.PutUint32(raw[4*i:], c)
		}
		for i := range v.nFATs {
			if _, err := f.WriteAt(raw, start+v.fatStart+int64(i)*v.fatBytes); err != nil {
				return fmt.Errorf("fat32 fix: write FAT %d: %w", i+1, err)
			}
		}
	}

	// FSInfo: free count and next free cluster.
	if v.fsInfoSector == 0 {
		return errors.New("fat32 fix: volume has no FSInfo sector")
	}
	free, next := uint32(0), uint32(0xFFFFFFFF)
	for c := uint32(2); c < v.nClusters+2; c++ {
		if v.fat[c]&fatMask == 0 {
			if free == 0 {
				next = c
			}
			free++
		}
	}
	fsInfos := []int64{v.fsInfoSector}
	if v.backupSector != 0 { // the backup copies sectors 0..2 of the volume
		fsInfos = append(fsInfos, v.backupSector+v.fsInfoSector)
	}
	for _, s := range fsInfos {
		b := make([]byte, 512)
		if _, err := f.ReadAt(b, start+s*v.bps); err != nil {
			return fmt.Errorf("fat32 fix: read FSInfo sector %d: %w", s, err)
		}
		if binary.LittleEndian.Uint32(b[0:]) != 0x41615252 || binary.LittleEndian.Uint32(b[484:]) != 0x61417272 {
			return fmt.Errorf("fat32 fix: sector %d is not an FSInfo sector", s)
		}
		if err := put32(s*v.bps+488, free); err != nil {
			return err
		}
		if err := put32(s*v.bps+492, next); err != nil {
			return err
		}
	}
	return nil
}
