package usbstick

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/skyfleet/skyfleet/gokrazy/mounts"
)

// LinuxOptions configure Linux; zero values take the defaults.
type LinuxOptions struct {
	// SysBlock is the kernel's list of block devices ("/sys/class/block").
	SysBlock string
	// DevDir holds the device nodes ("/dev").
	DevDir string
	// MountInfo lists the mounts ("/proc/self/mountinfo").
	MountInfo string
	// MountDir is the watcher's own mount directory (DefaultMountDir); mounts
	// under it do not make a disk busy.
	MountDir string
	// Match picks the disks to consider by the disk's name ("sda") and its
	// resolved sysfs path. Default USBMassStorage.
	Match func(disk, sysPath string) bool
}

// USBMassStorage reports whether a disk is USB mass storage: an sd* disk whose
// sysfs path runs through a USB port.
func USBMassStorage(disk, sysPath string) bool {
	return strings.HasPrefix(disk, "sd") && strings.Contains(sysPath, "/usb")
}

// Linux returns the real System: devices from sysfs, mounts by mount(2).
//
// Devices lists the partitions of the disks Match accepts (a disk without
// partitions stands for itself), leaving out empty disks (a card reader without a
// card) and every disk one of whose partitions is mounted outside MountDir (the
// boot disk, when the Pi boots from USB).
//
// Mount tries vfat, then ext4, then exfat (when the kernel has it), each with
// nosuid, nodev, noexec and noatime; a write-protected stick is mounted
// read-only (and the export then fails and says so).
//
// Unmount syncs the filesystem (syncfs), unmounts it, and if it stays busy
// (a file still open) for 2 s detaches it lazily.
func Linux(opts LinuxOptions) System {
	if opts.SysBlock == "" {
		opts.SysBlock = "/sys/class/block"
	}
	if opts.DevDir == "" {
		opts.DevDir = "/dev"
	}
	if opts.MountInfo == "" {
		opts.MountInfo = "/proc/self/mountinfo"
	}
	if opts.MountDir == "" {
		opts.MountDir = DefaultMountDir
	}
	if opts.Match == nil {
		opts.Match = USBMassStorage
	}
	return &linuxSystem{opts}
}

type linuxSystem struct{ opts LinuxOptions }

// blockDev is one entry of /sys/class/block.
type blockDev struct {
	name, disk, sys, devnum string
	part                    bool
}

func readLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func (s *linuxSystem) Devices() ([]Device, error) {
	ents, err := os.ReadDir(s.opts.SysBlock)
	if err != nil {
		return nil, err
	}
	var cands []blockDev
	hasParts := map[string]bool{}
	for _, e := range ents {
		name := e.Name()
		real, err := filepath.EvalSymlinks(filepath.Join(s.opts.SysBlock, name))
		if err != nil {
			continue // gone meanwhile
		}
		b := blockDev{name: name, disk: name, sys: real, devnum: readLine(filepath.Join(real, "dev"))}
		if _, err := os.Stat(filepath.Join(real, "partition")); err == nil {
			b.part, b.disk = true, filepath.Base(filepath.Dir(real))
		}
		if !s.opts.Match(b.disk, real) {
			continue
		}
		if b.part {
			hasParts[b.disk] = true
		}
		cands = append(cands, b)
	}
	if len(cands) == 0 {
		return nil, nil
	}
	busy, err := s.busyDisks(cands)
	if err != nil {
		return nil, err
	}
	var out []Device
	for _, b := range cands {
		if busy[b.disk] || (!b.part && hasParts[b.name]) {
			continue
		}
		if sz := readLine(filepath.Join(b.sys, "size")); sz == "" || sz == "0" {
			continue
		}
		path := filepath.Join(s.opts.DevDir, b.name)
		if _, err := os.Stat(path); err != nil {
			continue // devtmpfs has not made the node yet
		}
		diskSys := b.sys
		if b.part {
			diskSys = filepath.Dir(b.sys)
		}
		key := readLine(filepath.Join(diskSys, "diskseq"))
		if key == "" {
			key = "size " + readLine(filepath.Join(b.sys, "size"))
		}
		out = append(out, Device{Name: b.name, Path: path, Key: key})
	}
	return out, nil
}

// busyDisks returns the disks among cands with a device mounted somewhere other
// than under MountDir, by device number.
func (s *linuxSystem) busyDisks(cands []blockDev) (map[string]bool, error) {
	f, err := os.Open(s.opts.MountInfo)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	diskOf := map[string]string{}
	for _, b := range cands {
		if b.devnum != "" {
			diskOf[b.devnum] = b.disk
		}
	}
	own := filepath.Clean(s.opts.MountDir) + "/"
	busy := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent major:minor root mountpoint options ...
		fs := strings.Fields(sc.Text())
		if len(fs) < 5 {
			continue
		}
		if d, ok := diskOf[fs[2]]; ok && !strings.HasPrefix(fs[4]+"/", own) {
			busy[d] = true
		}
	}
	return busy, sc.Err()
}

// mountFlags are the flags of every stick mount.
const mountFlags = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NOATIME

// filesystems are tried in order. vfat's options make files 0644 and folders
// 0755 (so durable's chmod to 0644 is allowed) and silence chmod otherwise.
var filesystems = []struct{ typ, data string }{
	{"vfat", "fmask=0133,dmask=0022,quiet"},
	{"ext4", ""},
	{"exfat", "fmask=0133,dmask=0022"},
}

func (s *linuxSystem) Mount(d Device, dir string) (string, error) {
	if m, _ := mounts.IsMountPoint(dir); m {
		// Left by a run that ended mid-visit.
		unix.Unmount(dir, unix.MNT_DETACH)
	}
	var errs []string
	for _, fs := range filesystems {
		err := unix.Mount(d.Path, dir, fs.typ, mountFlags, fs.data)
		if errors.Is(err, unix.EROFS) || errors.Is(err, unix.EACCES) {
			err = unix.Mount(d.Path, dir, fs.typ, mountFlags|unix.MS_RDONLY, fs.data)
		}
		if err == nil {
			return fs.typ, nil
		}
		if errors.Is(err, unix.ENODEV) {
			continue // the kernel does not know this filesystem
		}
		errs = append(errs, fmt.Sprintf("%s: %v", fs.typ, err))
	}
	if len(errs) == 0 {
		return "", errors.New("no vfat, ext4 or exfat in this kernel")
	}
	return "", fmt.Errorf("no filesystem mounts (%s)", strings.Join(errs, "; "))
}

func (s *linuxSystem) Unmount(dir string) error {
	var serr error
	if fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
		serr = unix.Syncfs(fd)
		unix.Close(fd)
	}
	for i := 0; ; i++ {
		err := unix.Unmount(dir, 0)
		switch {
		case err == nil:
			if serr != nil {
				return fmt.Errorf("syncfs: %w", serr)
			}
			return nil
		case errors.Is(err, unix.EBUSY) && i < 20:
			time.Sleep(100 * time.Millisecond)
		case errors.Is(err, unix.EBUSY):
			unix.Unmount(dir, unix.MNT_DETACH)
			return fmt.Errorf("%s busy, detached lazily", dir)
		default:
			return err
		}
	}
}
