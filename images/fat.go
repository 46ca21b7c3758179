package images

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"unicode/utf16"
)

// This file is a small FAT32 reader: enough to list and read the boot
// partition, to verify what go-diskfs wrote, and to patch what it gets wrong
// (see fixFAT32). It trusts nothing it reads: every cluster number, chain and
// size is checked, so a corrupt or hostile image gives an error, not a panic.

const (
	fatEOC       = 0x0FFFFFF8 // entries >= this end a cluster chain
	fatBad       = 0x0FFFFFF7 // bad-cluster marker
	fatMask      = 0x0FFFFFFF // FAT32 entries are 28 bits; the top 4 are reserved
	maxClusters  = 0x0FFFFFF5 // numbers 2..0x0FFFFFF6; higher ones are markers
	attrVolumeID = 0x08
	attrDir      = 0x10
	attrLFN      = 0x0F // read-only|hidden|system|volume: a long-file-name slot
	maxDirDepth  = 32
)

// fatVol is an opened FAT32 volume. Byte offsets are relative to the volume's
// first byte (its boot sector).
type fatVol struct {
	r            io.ReaderAt
	bps          int64 // bytes per sector
	clusterBytes int64
	fatStart     int64 // first FAT copy
	fatBytes     int64 // length of one FAT copy
	nFATs        int
	dataStart    int64  // cluster 2
	rootCluster  uint32 // first cluster of the root directory
	nClusters    uint32 // data clusters: valid numbers are 2..nClusters+1
	fsInfoSector int64  // 0 if none
	backupSector int64  // 0 if none
	fat          []uint32
}

// dirEntry is one file or directory found in a FAT directory.
type dirEntry struct {
	name    string // long name if it has a valid one, else the 8.3 name
	short   string // the 8.3 name as "NAME.EXT" (upper case as stored)
	attr    byte
	cluster uint32 // first cluster, 0 for an empty file
	size    uint32 // bytes; 0 for directories
	off     int64  // where the 32-byte short entry lives in the volume
}

func (e dirEntry) isDir() bool { return e.attr&attrDir != 0 }

// openFAT32 parses the boot sector and loads the first FAT of the volume held
// by r, which is size bytes long.
func openFAT32(r io.ReaderAt, size int64) (*fatVol, error) {
	bs := make([]byte, 512)
	if _, err := r.ReadAt(bs, 0); err != nil {
		return nil, fmt.Errorf("fat32: read boot sector: %w", err)
	}
	if bs[510] != 0x55 || bs[511] != 0xAA {
		return nil, errors.New("fat32: no 0x55AA signature in boot sector")
	}
	le16 := func(o int) int64 { return int64(binary.LittleEndian.Uint16(bs[o:])) }
	le32 := func(o int) int64 { return int64(binary.LittleEndian.Uint32(bs[o:])) }
	v := &fatVol{r: r, bps: le16(11), nFATs: int(bs[16])}
	spc := int64(bs[13])
	reserved, totalSectors, fatSectors := le16(14), le32(32), le32(36)
	switch {
	case v.bps != 512 && v.bps != 1024 && v.bps != 2048 && v.bps != 4096:
		return nil, fmt.Errorf("fat32: bytes per sector %d, want 512..4096", v.bps)
	case spc == 0 || spc&(spc-1) != 0:
		return nil, fmt.Errorf("fat32: sectors per cluster %d is not a power of two", spc)
	case le16(17) != 0 || le16(22) != 0:
		return nil, errors.New("fat32: fixed root directory or 16-bit FAT size set: FAT12/16, not FAT32")
	case reserved == 0 || v.nFATs == 0 || v.nFATs > 2 || fatSectors == 0 || totalSectors == 0:
		return nil, errors.New("fat32: zero reserved sectors, FAT count, FAT size or total sectors")
	case totalSectors*v.bps > size:
		return nil, fmt.Errorf("fat32: volume claims %d bytes, partition has %d", totalSectors*v.bps, size)
	}
	v.clusterBytes = spc * v.bps
	v.fatStart = reserved * v.bps
	v.fatBytes = fatSectors * v.bps
	dataSectors := totalSectors - reserved - int64(v.nFATs)*fatSectors
	if dataSectors < spc {
		return nil, errors.New("fat32: no room for data clusters")
	}
	v.dataStart = v.fatStart + int64(v.nFATs)*v.fatBytes
	v.nClusters = uint32(min(dataSectors/spc, maxClusters))
	if v.fatBytes/4 < int64(v.nClusters)+2 {
		return nil, fmt.Errorf("fat32: FAT has %d entries, needs %d for %d clusters", v.fatBytes/4, int64(v.nClusters)+2, v.nClusters)
	}
	v.rootCluster = uint32(le32(44))
	if !v.valid(v.rootCluster) {
		return nil, fmt.Errorf("fat32: root cluster %d out of range", v.rootCluster)
	}
	if s := le16(48); s != 0 && s != 0xFFFF && s < reserved {
		v.fsInfoSector = s
	}
	if s := le16(50); s != 0 && s != 0xFFFF && s+1 < reserved {
		v.backupSector = s
	}
	raw := make([]byte, (int64(v.nClusters)+2)*4)
	if _, err := r.ReadAt(raw, v.fatStart); err != nil {
		return nil, fmt.Errorf("fat32: read FAT: %w", err)
	}
	v.fat = make([]uint32, len(raw)/4)
	for i := range v.fat {
		v.fat[i] = binary.LittleEndian.Uint32(raw[4*i:])
	}
	return v, nil
}

// valid reports whether c names a data cluster of this volume.
func (v *fatVol) valid(c uint32) bool { return c >= 2 && c < v.nClusters+2 }

// clusterOffset is the volume offset of cluster c's first byte.
func (v *fatVol) clusterOffset(c uint32) int64 {
	return v.dataStart + int64(c-2)*v.clusterBytes
}

// chain follows the cluster chain that starts at c.
func (v *fatVol) chain(c uint32) ([]uint32, error) {
	var out []uint32
	for {
		if !v.valid(c) {
			return nil, fmt.Errorf("fat32: cluster %d out of range in chain", c)
		}
		out = append(out, c)
		if len(out) > int(v.nClusters) {
			return nil, errors.New("fat32: cluster chain loops")
		}
		next := v.fat[c] & fatMask
		switch {
		case next >= fatEOC:
			return out, nil
		case next == 0 || next == fatBad:
			return nil, fmt.Errorf("fat32: chain runs into free or bad cluster after %d", c)
		}
		c = next
	}
}

// readDir lists the directory whose first cluster is c, including the "."
// and ".." entries, but not deleted entries, LFN slots or the volume label.
func (v *fatVol) readDir(c uint32) ([]dirEntry, error) {
	clusters, err := v.chain(c)
	if err != nil {
		return nil, err
	}
	var (
		out []dirEntry
		lfn = lfnState{next: -1}
		buf = make([]byte, v.clusterBytes)
	)
	for _, cl := range clusters {
		if _, err := v.r.ReadAt(buf, v.clusterOffset(cl)); err != nil {
			return nil, fmt.Errorf("fat32: read directory cluster %d: %w", cl, err)
		}
		for i := 0; i < len(buf); i += 32 {
			b := buf[i : i+32]
			switch {
			case b[0] == 0:
				return out, nil
			case b[11]&0x3F == attrLFN && b[0] != 0xE5:
				lfn.add(b)
				continue
			case b[0] == 0xE5 || b[11]&attrVolumeID != 0:
				lfn.next = -1
				continue
			}
			e := dirEntry{
				short:   shortName(b),
				attr:    b[11],
				cluster: uint32(binary.LittleEndian.Uint16(b[20:]))<<16 | uint32(binary.LittleEndian.Uint16(b[26:])),
				size:    binary.LittleEndian.Uint32(b[28:]),
				off:     v.clusterOffset(cl) + int64(i),
			}
			if long, ok := lfn.name(b[:11]); ok {
				e.name = long
			} else {
				e.name = displayName(b)
			}
			out = append(out, e)
		}
	}
	return out, nil
}

// lfnState collects the long-file-name slots that precede a short entry.
// Slots come last-first: the first one carries 0x40 in its ordinal, and each
// following one the next lower ordinal, down to 1.
type lfnState struct {
	units []uint16 // 13 UTF-16 units per slot
	sum   byte     // checksum of the 8.3 name the slots belong to
	next  int      // ordinal the next slot must carry; -1 if none is being collected
}

func (s *lfnState) add(b []byte) {
	ord := int(b[0] & 0x1F)
	switch {
	case b[0]&0x40 != 0 && ord > 0:
		s.units, s.sum, s.next = make([]uint16, 13*ord), b[13], ord
	case ord == 0 || ord != s.next || b[13] != s.sum:
		s.next = -1
		return
	}
	p := s.units[13*(ord-1):]
	for k, o := range []int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30} {
		p[k] = binary.LittleEndian.Uint16(b[o:])
	}
	s.next = ord - 1
}

// name returns the collected long name if it is complete and belongs to
// the 8.3 name short, and resets the state.
func (s *lfnState) name(short []byte) (string, bool) {
	ok := s.next == 0 && checksum83(short) == s.sum
	s.next = -1
	if !ok {
		return "", false
	}
	n := decodeLFN(s.units)
	return n, n != ""
}

// decodeLFN turns collected UTF-16 units into a string, stopping at the
// 0x0000 terminator or 0xFFFF padding.
func decodeLFN(u []uint16) string {
	for i, c := range u {
		if c == 0 || c == 0xFFFF {
			u = u[:i]
			break
		}
	}
	return string(utf16.Decode(u))
}

// checksum83 is the checksum of an 11-byte 8.3 name that LFN slots carry.
func checksum83(name []byte) byte {
	var s byte
	for _, c := range name {
		s = (s>>1 | s<<7) + c
	}
	return s
}

// name83 splits a short entry's name into base and extension, trimmed.
func name83(b []byte) (base, ext string) {
	n := []byte(strings.TrimRight(string(b[0:8]), " "))
	if len(n) > 0 && n[0] == 0x05 {
		n[0] = 0xE5 // 0x05 escapes a real leading 0xE5
	}
	return latin1(n), latin1([]byte(strings.TrimRight(string(b[8:11]), " ")))
}

// shortName renders the 8.3 name of a short entry as stored ("NAME.EXT").
func shortName(b []byte) string {
	base, ext := name83(b)
	if ext != "" {
		return base + "." + ext
	}
	return base
}

// displayName is the 8.3 name with the Windows NT lower-case flags applied
// (byte 12: 0x08 lower-case base, 0x10 lower-case extension).
func displayName(b []byte) string {
	base, ext := name83(b)
	if b[12]&0x08 != 0 {
		base = strings.ToLower(base)
	}
	if b[12]&0x10 != 0 {
		ext = strings.ToLower(ext)
	}
	if ext != "" {
		return base + "." + ext
	}
	return base
}

func latin1(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

// visit is called by walk for every entry except "." and "..". path is
// slash-separated from the root; parent is the first cluster of the
// directory holding e.
type visit func(path string, e dirEntry, parent uint32) error

// walk visits the whole tree depth-first in directory order, refusing
// directory cycles and trees deeper than maxDirDepth.
func (v *fatVol) walk(fn visit) error {
	seen := map[uint32]bool{v.rootCluster: true}
	var rec func(dir uint32, prefix string, depth int) error
	rec = func(dir uint32, prefix string, depth int) error {
		if depth > maxDirDepth {
			return fmt.Errorf("fat32: directories nested deeper than %d at %q", maxDirDepth, prefix)
		}
		entries, err := v.readDir(dir)
		if err != nil {
			return fmt.Errorf("%w (in %q)", err, "/"+prefix)
		}
		for _, e := range entries {
			if e.short == "." || e.short == ".." {
				continue
			}
			p := prefix + e.name
			if err := fn(p, e, dir); err != nil {
				return err
			}
			if !e.isDir() {
				continue
			}
			if seen[e.cluster] {
				return fmt.Errorf("fat32: directory cycle at %q", p)
			}
			seen[e.cluster] = true
			if err := rec(e.cluster, p+"/", depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return rec(v.rootCluster, "", 0)
}

// lookup finds the entry at a slash-separated path. Names match without
// regard to case, as they do for FAT drivers and the Pi firmware.
func (v *fatVol) lookup(path string) (dirEntry, error) {
	dir := v.rootCluster
	parts := strings.Split(path, "/")
	for i, name := range parts {
		entries, err := v.readDir(dir)
		if err != nil {
			return dirEntry{}, err
		}
		found := false
		for _, e := range entries {
			if e.short == "." || e.short == ".." || !strings.EqualFold(e.name, name) {
				continue
			}
			if i == len(parts)-1 {
				return e, nil
			}
			if !e.isDir() {
				return dirEntry{}, fmt.Errorf("%q is a file, not a directory", strings.Join(parts[:i+1], "/"))
			}
			if !v.valid(e.cluster) {
				return dirEntry{}, fmt.Errorf("fat32: directory %q has bad cluster %d", strings.Join(parts[:i+1], "/"), e.cluster)
			}
			dir, found = e.cluster, true
			break
		}
		if !found {
			return dirEntry{}, fmt.Errorf("%q: %w", path, fs.ErrNotExist)
		}
	}
	return dirEntry{}, fmt.Errorf("%q: %w", path, fs.ErrNotExist)
}

// readFile returns the content of a file entry, checking that its chain
// is exactly as long as its size needs.
func (v *fatVol) readFile(e dirEntry) ([]byte, error) {
	if e.isDir() {
		return nil, fmt.Errorf("%q is a directory", e.name)
	}
	if e.size == 0 {
		if e.cluster != 0 {
			return nil, fmt.Errorf("fat32: empty file %q owns cluster %d", e.name, e.cluster)
		}
		return []byte{}, nil
	}
	clusters, err := v.chain(e.cluster)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", e.name, err)
	}
	want := (int64(e.size) + v.clusterBytes - 1) / v.clusterBytes
	if int64(len(clusters)) != want {
		return nil, fmt.Errorf("fat32: %q is %d bytes but its chain has %d clusters, want %d",
			e.name, e.size, len(clusters), want)
	}
	out := make([]byte, e.size)
	for i, c := range clusters {
		chunk := out[int64(i)*v.clusterBytes : min(int64(i+1)*v.clusterBytes, int64(e.size))]
		if _, err := v.r.ReadAt(chunk, v.clusterOffset(c)); err != nil {
			return nil, fmt.Errorf("fat32: read %q: %w", e.name, err)
		}
	}
	return out, nil
}
