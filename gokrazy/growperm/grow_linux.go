package growperm

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"github.com/skyfleet/skyfleet/gokrazy/mounts"
	"golang.org/x/sys/unix"
)

const (
	// blkpg is BLKPG, _IO(0x12, 105); x/sys/unix has the argument types
	// but not the request number.
	blkpg = 0x1269
	// ext4IocResizeFS is EXT4_IOC_RESIZE_FS, _IOW('f', 16, __u64).
	ext4IocResizeFS = 0x40086610
)

// GrowPartition extends partition num (normally 2, /perm) of disk (e.g.
// "/dev/mmcblk0") to the end of the disk and makes the running kernel use
// the new size. It returns whether anything changed.
//
// The MBR entry is rewritten only if the partition is short of the
// aligned disk end; the kernel is then told with BLKPG_RESIZE_PARTITION,
// which works while the partition is mounted (BLKRRPART does not). If the
// table is already grown but the kernel still has the old size (power cut
// between the two steps) only the kernel is updated. disk may also be a
// regular image file, in which case only the table is changed.
func GrowPartition(disk string, num int) (bool, error) {
	f, err := os.OpenFile(disk, os.O_RDWR, 0)
	if err != nil {
		return false, err
	}
	defer f.Close()
	size, isBlock, err := deviceSize(f)
	if err != nil {
		return false, fmt.Errorf("size of %s: %w", disk, err)
	}
	p, changed, err := GrowTable(f, f, size, num)
	if err != nil {
		return false, fmt.Errorf("%s: %w", disk, err)
	}
	if changed {
		if err := f.Sync(); err != nil {
			return false, fmt.Errorf("sync %s: %w", disk, err)
		}
	}
	if !isBlock {
		return changed, nil
	}
	want := uint64(p.Sectors) * SectorSize
	if cur, err := partitionSize(mounts.PartitionPath(disk, num)); err == nil && cur == want {
		return changed, nil
	}
	if err := blkpgPartition(f, unix.BLKPG_RESIZE_PARTITION, num, uint64(p.Start)*SectorSize, want); err != nil {
		return changed, fmt.Errorf("%s: BLKPG resize partition %d: %w", disk, num, err)
	}
	return true, nil
}

// GrowFilesystem grows the ext4 filesystem on dev, which must be mounted
// at dir, to fill dev, using the online resize ioctl (EXT4_IOC_RESIZE_FS)
// on dir. It returns whether it resized; a filesystem that already fills
// dev (to within 1 MiB) is left alone, so it is idempotent.
func GrowFilesystem(dev, dir string) (bool, error) {
	f, err := os.Open(dev)
	if err != nil {
		return false, err
	}
	defer f.Close()
	sb, err := ReadSuperblock(f)
	if err != nil {
		return false, fmt.Errorf("%s: %w", dev, err)
	}
	size, _, err := deviceSize(f)
	if err != nil {
		return false, fmt.Errorf("size of %s: %w", dev, err)
	}
	target, ok := resizeTarget(sb, size)
	if !ok {
		return false, nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer d.Close()
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, d.Fd(), ext4IocResizeFS, uintptr(unsafe.Pointer(&target)))
	if errno != 0 {
		return false, fmt.Errorf("EXT4_IOC_RESIZE_FS %s to %d blocks: %w", dir, target, errno)
	}
	return true, nil
}

// deviceSize returns the size in bytes of a block device (BLKGETSIZE64)
// or regular file, and whether it is a block device.
func deviceSize(f *os.File) (uint64, bool, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, false, err
	}
	if fi.Mode().IsRegular() {
		return uint64(fi.Size()), false, nil
	}
	if fi.Mode()&os.ModeDevice == 0 || fi.Mode()&os.ModeCharDevice != 0 {
		return 0, false, errors.New("neither a block device nor a regular file")
	}
	var size uint64
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKGETSIZE64, uintptr(unsafe.Pointer(&size)))
	if errno != 0 {
		return 0, true, fmt.Errorf("BLKGETSIZE64: %w", errno)
	}
	return size, true, nil
}

func partitionSize(path string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	size, _, err := deviceSize(f)
	return size, err
}

// blkpgPartition tells the kernel about partition num of the disk open as
// f: op is unix.BLKPG_RESIZE_PARTITION (new extent of an existing
// partition) or unix.BLKPG_ADD_PARTITION. start and length are in bytes.
func blkpgPartition(f *os.File, op int32, num int, start, length uint64) error {
	part := unix.BlkpgPartition{Start: int64(start), Length: int64(length), Pno: int32(num)}
	arg := unix.BlkpgIoctlArg{
		Op:      op,
		Datalen: int32(unsafe.Sizeof(part)),
		Data:    (*byte)(unsafe.Pointer(&part)),
	}
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), blkpg, uintptr(unsafe.Pointer(&arg)))
	runtime.KeepAlive(&part)
	if errno != 0 {
		return errno
	}
	return nil
}
