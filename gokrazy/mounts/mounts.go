package mounts

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Mount describes one filesystem to mount.
type Mount struct {
	// Source is the device or pseudo-filesystem name (e.g. "proc").
	Source string
	// Target is the mount point; for Early it is relative to the root
	// passed to MountEarlyAt.
	Target string
	// FSType is the filesystem type as in /proc/filesystems.
	FSType string
	// Flags are MS_* flags for mount(2).
	Flags uintptr
	// Data is the filesystem-specific option string.
	Data string
}

// Early lists, in order, the pseudo-filesystems PID 1 mounts before doing
// anything else: the kernel interfaces (/proc, /sys), device nodes (/dev
// with /dev/pts for terminals) and the two scratch tmpfs (/run for
// sockets under /run/skyfleet, /tmp). devpts must come after /dev.
var Early = []Mount{
	{"proc", "/proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	{"sysfs", "/sys", "sysfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	{"devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755"},
	{"devpts", "/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "gid=5,mode=0620,ptmxmode=0666"},
	{"tmpfs", "/run", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=0755"},
	{"tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
}

// DevLinks are the symlinks MountEarly adds to /dev (name -> target):
// devtmpfs does not provide them, but shells and many programs expect
// them.
var DevLinks = map[string]string{
	"/dev/fd":     "/proc/self/fd",
	"/dev/stdin":  "/proc/self/fd/0",
	"/dev/stdout": "/proc/self/fd/1",
	"/dev/stderr": "/proc/self/fd/2",
}

// MountEarly mounts Early under /. See MountEarlyAt.
func MountEarly() error { return MountEarlyAt("/") }

// MountEarlyAt mounts every entry of Early below root (creating the mount
// points with mode 0755), skipping targets that already are mount points,
// and then creates the DevLinks that do not exist yet, so it is
// idempotent. It tries every entry and returns all failures joined.
func MountEarlyAt(root string) error {
	var errs []error
	for _, m := range Early {
		m.Target = filepath.Join(root, m.Target)
		if err := Ensure(m); err != nil {
			errs = append(errs, err)
		}
	}
	for name, target := range DevLinks {
		p := filepath.Join(root, name)
		if _, err := os.Lstat(p); err == nil {
			continue
		}
		if err := os.Symlink(target, p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Ensure mounts m unless m.Target already is a mount point, creating
// m.Target first if needed.
func Ensure(m Mount) error {
	if err := os.MkdirAll(m.Target, 0o755); err != nil {
		return fmt.Errorf("mount %s: %w", m.Target, err)
	}
	mounted, err := IsMountPoint(m.Target)
	if err != nil {
		return fmt.Errorf("mount %s: %w", m.Target, err)
	}
	if mounted {
		return nil
	}
	if err := unix.Mount(m.Source, m.Target, m.FSType, m.Flags, m.Data); err != nil {
		return fmt.Errorf("mount %s (%s) on %s: %w", m.Source, m.FSType, m.Target, err)
	}
	return nil
}

// MountBoot mounts the FAT boot partition dev read-only on dir. The boot
// partition is only written by updates, which remount it themselves; a
// read-only mount keeps a power cut from corrupting the firmware files.
// It is a no-op if dir is already a mount point.
func MountBoot(dev, dir string) error {
	return Ensure(Mount{
		Source: dev, Target: dir, FSType: "vfat",
		Flags: unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC,
	})
}

// RemountBoot switches the boot partition mounted on dir between read-only and
// writable: an update makes it writable for its writes and read-only again
// after them, syncing the file system first (MS_REMOUNT keeps the other flags
// of MountBoot).
func RemountBoot(dir string, writable bool) error {
	flags := uintptr(unix.MS_REMOUNT | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	if !writable {
		syncFS(dir)
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount("", dir, "", flags, ""); err != nil {
		return fmt.Errorf("remount %s (writable %v): %w", dir, writable, err)
	}
	return nil
}

// MountPerm mounts the ext4 data partition dev read-write on dir (keys,
// databases, message store). It is a no-op if dir is already a mount
// point.
func MountPerm(dev, dir string) error {
	return Ensure(Mount{
		Source: dev, Target: dir, FSType: "ext4",
		Flags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOATIME,
	})
}

// IsMountPoint reports whether dir is the root of a mounted filesystem. It
// uses statx's STATX_ATTR_MOUNT_ROOT (Linux >= 5.8), which also sees bind
// mounts, and falls back to comparing the device of dir and its parent.
// It does not need /proc.
func IsMountPoint(dir string) (bool, error) {
	var stx unix.Statx_t
	err := unix.Statx(unix.AT_FDCWD, dir, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BASIC_STATS, &stx)
	if err == nil && stx.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 {
		return stx.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0, nil
	}
	var st, parent unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return false, err
	}
	if err := unix.Lstat(filepath.Join(dir, ".."), &parent); err != nil {
		return false, err
	}
	return st.Dev != parent.Dev || st.Ino == parent.Ino, nil
}

// Unmount unmounts dir for poweroff. A dir that is not mounted is not an
// error. If the filesystem is busy (a process still holds a file open) it
// is synced, remounted read-only if possible (impossible while a file is
// open for writing), and detached lazily (MNT_DETACH). In that case the
// error says what could not be done: a lazily detached filesystem that
// could not be made read-only relies on its journal after power-off.
func Unmount(dir string) error {
	err := unix.Unmount(dir, 0)
	switch {
	case err == nil, errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
		// EINVAL: not a mount point.
		return nil
	case errors.Is(err, unix.EBUSY):
		syncFS(dir)
		rerr := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_RDONLY, "")
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("unmount %s: busy, and lazy detach failed: %w", dir, err)
		}
		if rerr != nil {
			return fmt.Errorf("unmount %s: busy; synced and detached lazily but not remounted read-only: %w", dir, rerr)
		}
		return nil
	default:
		return fmt.Errorf("unmount %s: %w", dir, err)
	}
}

// syncFS flushes the filesystem holding dir (best effort).
func syncFS(dir string) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Sync()
		return
	}
	unix.Syncfs(fd)
	unix.Close(fd)
}
