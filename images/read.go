package images

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"
)

// openImage opens img and parses its MBR.
func openImage(img string) (*os.File, *mbrTable, error) {
	f, err := os.Open(img)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	b := make([]byte, sectorSize)
	if _, err := io.ReadFull(f, b); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: read MBR: %w", img, err)
	}
	t, err := parseMBR(b, fi.Size())
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", img, err)
	}
	return f, t, nil
}

// Partitions returns the non-empty primary partitions of the MBR image img,
// in slot order, with start and size in bytes. It fails if img has no valid
// MBR or a partition runs past the end of the file.
func Partitions(img string) ([]Partition, error) {
	f, t, err := openImage(img)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return t.parts, nil
}

// DiskID returns the MBR disk signature of img (Linux shows partition n as
// PARTUUID=<%08x>-<%02d>).
func DiskID(img string) (uint32, error) {
	f, t, err := openImage(img)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return t.diskID, nil
}

// openBoot opens the FAT32 volume in partition 1 of img.
func openBoot(img string) (*os.File, *fatVol, error) {
	f, t, err := openImage(img)
	if err != nil {
		return nil, nil, err
	}
	p, err := t.partition(1)
	if err == nil && p.Type != 0x0B && p.Type != 0x0C {
		err = fmt.Errorf("partition 1 has type %#02x, not FAT32 (0x0B or 0x0C)", p.Type)
	}
	var v *fatVol
	if err == nil {
		v, err = openFAT32(io.NewSectionReader(f, p.Start, p.Size), p.Size)
	}
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", img, err)
	}
	return f, v, nil
}

// ReadBootFile returns the content of the file at path (slash-separated,
// relative, matched without regard to case as FAT does) on partition 1 of
// img. The error wraps fs.ErrNotExist if there is no such file.
func ReadBootFile(img, path string) ([]byte, error) {
	f, v, err := openBoot(img)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	e, err := v.lookup(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", img, err)
	}
	b, err := v.readFile(e)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", img, path, err)
	}
	return b, nil
}

// ListBoot returns the path of every regular file on partition 1 of img,
// slash-separated and relative (e.g. "a/overlays/x.dtbo"), sorted.
func ListBoot(img string) ([]string, error) {
	f, v, err := openBoot(img)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	err = v.walk(func(p string, e dirEntry, _ uint32) error {
		if !e.isDir() {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", img, err)
	}
	slices.Sort(out)
	return out, nil
}

// ExtractPartition copies partition n (1-based) of img byte for byte to a
// new file out (replacing any), leaving runs of zeros as holes so that the
// copy is as sparse as the image. Tools such as fsck.vfat and e2fsck can
// then check it.
func ExtractPartition(img string, n int, out string) error {
	f, t, err := openImage(img)
	if err != nil {
		return err
	}
	defer f.Close()
	p, err := t.partition(n)
	if err != nil {
		return fmt.Errorf("%s: %w", img, err)
	}
	o, err := os.Create(out)
	if err != nil {
		return err
	}
	buf, zero := make([]byte, 64<<10), make([]byte, 64<<10)
	for off := int64(0); off < p.Size && err == nil; off += int64(len(buf)) {
		b := buf[:min(int64(len(buf)), p.Size-off)]
		if _, err = f.ReadAt(b, p.Start+off); err == nil && !bytes.Equal(b, zero[:len(b)]) {
			_, err = o.WriteAt(b, off)
		}
	}
	if err == nil {
		err = o.Truncate(p.Size)
	}
	if cerr := o.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(out)
		return fmt.Errorf("extract partition %d of %s: %w", n, img, err)
	}
	return nil
}
