package mounts

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Disk names the block devices of the boot medium.
type Disk struct {
	// Dev is the whole disk, e.g. "/dev/mmcblk0".
	Dev string
	// Boot is partition 1 (FAT boot), e.g. "/dev/mmcblk0p1".
	Boot string
	// Perm is partition 2 (ext4 /perm), e.g. "/dev/mmcblk0p2".
	Perm string
}

// DefaultCandidates are the disks searched for the boot partition, in
// order: the SD card (Pi and QEMU raspi3b), then USB mass storage, then
// virtio.
var DefaultCandidates = []string{"mmcblk0", "sda", "vda"}

// FindOptions tune FindDisk; zero values take the defaults per field.
type FindOptions struct {
	// DevDir is where device nodes live; default "/dev".
	DevDir string
	// Candidates are disk names below DevDir; default DefaultCandidates.
	Candidates []string
	// Timeout bounds the wait for a disk to appear; default 5 s. The SD
	// host controller probes asynchronously, so the card's nodes may show
	// up well after PID 1 starts.
	Timeout time.Duration
	// Poll is the interval between looks; default 20 ms.
	Poll time.Duration
}

// isBlockDevice reports whether path is a block device node; tests swap
// it to use plain files.
var isBlockDevice = func(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0
}

// PartitionPath returns the device path of partition n of disk, following
// the kernel's naming: a "p" separates the number when the disk name ends
// in a digit ("/dev/mmcblk0" -> "/dev/mmcblk0p2", "/dev/sda" -> "/dev/sda2").
func PartitionPath(disk string, n int) string {
	sep := ""
	if last := disk[len(disk)-1]; last >= '0' && last <= '9' {
		sep = "p"
	}
	return disk + sep + strconv.Itoa(n)
}

// FindDisk waits until one of the candidate disks has a partition 1 and
// returns its paths, preferring earlier candidates among those present at
// the same look. It returns an error naming the candidates if none
// appears within the timeout.
func FindDisk(opts FindOptions) (Disk, error) {
	if opts.DevDir == "" {
		opts.DevDir = "/dev"
	}
	if len(opts.Candidates) == 0 {
		opts.Candidates = DefaultCandidates
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.Poll <= 0 {
		opts.Poll = 20 * time.Millisecond
	}
	deadline := time.Now().Add(opts.Timeout)
	for {
		for _, c := range opts.Candidates {
			dev := filepath.Join(opts.DevDir, c)
			boot := PartitionPath(dev, 1)
			if isBlockDevice(dev) && isBlockDevice(boot) {
				return Disk{Dev: dev, Boot: boot, Perm: PartitionPath(dev, 2)}, nil
			}
		}
		if time.Now().After(deadline) {
			return Disk{}, fmt.Errorf("no boot disk after %v (looked for %s in %s)",
				opts.Timeout, strings.Join(opts.Candidates, ", "), opts.DevDir)
		}
		time.Sleep(opts.Poll)
	}
}
