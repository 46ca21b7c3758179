package growperm

import (
	"fmt"
	"github.com/skyfleet/skyfleet/gokrazy/internal/nstest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/skyfleet/skyfleet/gokrazy/internal/loopdev"
	"github.com/skyfleet/skyfleet/gokrazy/mounts"
	"golang.org/x/sys/unix"
)

const modeEnv = "GROWPERM_TEST_MODE"

func TestMain(m *testing.M) {
	if os.Getenv(modeEnv) == "" {
		os.Exit(m.Run())
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		fmt.Println("FAIL make / private:", err)
		os.Exit(1)
	}
	var err error
	switch os.Getenv(modeEnv) {
	case "partition":
		err = helperGrowPartition(os.Getenv("DISK"), os.Getenv("DIR"))
	case "fs":
		err = helperGrowFS(os.Getenv("DEV"), os.Getenv("DIR"))
	default:
		err = fmt.Errorf("unknown mode")
	}
	if err != nil {
		fmt.Println("FAIL", err)
		os.Exit(1)
	}
	fmt.Println("OK")
	os.Exit(0)
}

// kernelSectors reads the kernel's idea of a block device's size.
func kernelSectors(dev string) (uint64, error) {
	b, err := os.ReadFile(filepath.Join("/sys/class/block", filepath.Base(dev), "size"))
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

// helperGrowPartition runs in a private mount namespace with /perm
// mounted: it simulates a power cut after the MBR write and lets
// GrowPartition bring the kernel's view up to date while mounted.
func helperGrowPartition(disk, dir string) error {
	part := mounts.PartitionPath(disk, 2)
	before, err := kernelSectors(part)
	if err != nil {
		return err
	}
	if err := mounts.MountPerm(part, dir); err != nil {
		return err
	}
	defer mounts.Unmount(dir)

	// Step 1: write only the MBR (as if power was cut before BLKPG).
	f, err := os.OpenFile(disk, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	size, _, err := deviceSize(f)
	if err != nil {
		return err
	}
	p, changed, err := GrowTable(f, f, size, 2)
	f.Sync()
	f.Close()
	if err != nil || !changed {
		return fmt.Errorf("GrowTable = %v, %v", changed, err)
	}
	if now, _ := kernelSectors(part); now != before {
		return fmt.Errorf("kernel size changed without BLKPG: %d -> %d", before, now)
	}

	// Step 2: the table is already grown; the kernel must still learn the
	// new size, while the partition is mounted.
	grown, err := GrowPartition(disk, 2)
	if err != nil || !grown {
		return fmt.Errorf("GrowPartition (kernel stale) = %v, %v", grown, err)
	}
	now, err := kernelSectors(part)
	if err != nil {
		return err
	}
	if now != uint64(p.Sectors) || now <= before {
		return fmt.Errorf("kernel size %d sectors after BLKPG, want %d (was %d)", now, p.Sectors, before)
	}
	if grown, err := GrowPartition(disk, 2); err != nil || grown {
		return fmt.Errorf("GrowPartition again = %v, %v; want false, nil", grown, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "after-grow"), []byte("ok"), 0o600); err != nil {
		return err
	}
	return mounts.Unmount(dir)
}

// helperGrowFS mounts the ext4 on dev and grows it online.
func helperGrowFS(dev, dir string) error {
	if err := mounts.MountPerm(dev, dir); err != nil {
		return err
	}
	defer mounts.Unmount(dir)
	var st0 unix.Statfs_t
	unix.Statfs(dir, &st0)
	if grown, err := GrowFilesystem(dev, dir); err != nil || !grown {
		return fmt.Errorf("GrowFilesystem = %v, %v", grown, err)
	}
	var st1 unix.Statfs_t
	unix.Statfs(dir, &st1)
	if uint64(st1.Blocks)*uint64(st1.Bsize) < 4*uint64(st0.Blocks)*uint64(st0.Bsize) {
		return fmt.Errorf("statfs size %d -> %d blocks of %d; expected at least 4x", st0.Blocks, st1.Blocks, st1.Bsize)
	}
	f, err := os.Open(dev)
	if err != nil {
		return err
	}
	sb, err := ReadSuperblock(f)
	if err != nil {
		f.Close()
		return err
	}
	size, _, err := deviceSize(f)
	f.Close()
	if err != nil {
		return err
	}
	if sb.Bytes() > size || size-sb.Bytes() >= minGrowBytes {
		return fmt.Errorf("ext4 is %d bytes on a %d-byte device", sb.Bytes(), size)
	}
	if grown, err := GrowFilesystem(dev, dir); err != nil || grown {
		return fmt.Errorf("GrowFilesystem again = %v, %v; want false, nil", grown, err)
	}
	return mounts.Unmount(dir)
}

// runHelper re-executes the test binary in a new mount namespace.
func runHelper(t *testing.T, mode string, env ...string) {
	t.Helper()
	nstest.RunInMountNS(t, modeEnv, mode, env...)
}

func needRootAndMkfs(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED (not a pass): loop devices and mounts need root")
	}
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		t.Skip("SKIPPED (not a pass): mkfs.ext4 (e2fsprogs) not installed")
	}
	return mkfs
}

// hasCapSysResource reports whether this process holds CAP_SYS_RESOURCE,
// which EXT4_IOC_RESIZE_FS requires.
func hasCapSysResource() bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && caps&(1<<unix.CAP_SYS_RESOURCE) != 0
		}
	}
	return false
}

// addPartitionsIfUnscanned registers the MBR's partitions with the kernel
// through BLKPG_ADD_PARTITION when the kernel did not scan them itself
// (host kernels built without CONFIG_MSDOS_PARTITION, like some VM
// kernels). The Pi kernel parses MBRs, so this is test scaffolding only.
func addPartitionsIfUnscanned(disk string) error {
	if _, err := os.Stat(filepath.Join("/sys/class/block", filepath.Base(disk), filepath.Base(disk)+"p1")); err == nil {
		return nil
	}
	f, err := os.OpenFile(disk, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	tab, err := ReadTable(f)
	if err != nil {
		return err
	}
	for i, p := range tab {
		if p.Type == 0 {
			continue
		}
		if err := blkpgPartition(f, unix.BLKPG_ADD_PARTITION, i+1, uint64(p.Start)*SectorSize, uint64(p.Sectors)*SectorSize); err != nil {
			return fmt.Errorf("BLKPG add partition %d: %w", i+1, err)
		}
	}
	return nil
}

// TestGrowPartitionOnLoopDevice exercises the real BLKGETSIZE64 and
// BLKPG_RESIZE_PARTITION ioctls on a partitioned loop device standing in
// for the SD card, with the partition mounted.
func TestGrowPartitionOnLoopDevice(t *testing.T) {
	mkfs := needRootAndMkfs(t)
	img := writeImage(t, 128*mib,
		Partition{Bootable: true, Type: 0x0c, Start: 1 * mib / SectorSize, Sectors: 4 * mib / SectorSize},
		Partition{Type: 0x83, Start: 5 * mib / SectorSize, Sectors: 16 * mib / SectorSize})
	disk, detach, err := loopdev.Attach(img, true)
	if err != nil {
		t.Fatal(err)
	}
	defer detach()
	part := mounts.PartitionPath(disk, 2)
	if err := addPartitionsIfUnscanned(disk); err != nil {
		t.Fatal(err)
	}
	if err := loopdev.WaitNode(part); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(mkfs, "-q", "-F", part).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	runHelper(t, "partition", "DISK="+disk, "DIR="+filepath.Join(t.TempDir(), "perm"))
	// The image file itself now has partition 2 up to the end.
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tab, err := ReadTable(f)
	if err != nil {
		t.Fatal(err)
	}
	if tab[1].End() != 128*mib/SectorSize || tab[0].Sectors != 4*mib/SectorSize {
		t.Fatalf("table after grow: %+v", tab)
	}
}

// TestGrowFilesystemOnLoopDevice grows a mounted 16 MiB ext4 on a 128 MiB
// loop device with EXT4_IOC_RESIZE_FS and checks it with e2fsck.
func TestGrowFilesystemOnLoopDevice(t *testing.T) {
	mkfs := needRootAndMkfs(t)
	if !hasCapSysResource() {
		t.Skip("SKIPPED (not a pass): EXT4_IOC_RESIZE_FS needs CAP_SYS_RESOURCE, which this sandbox's bounding set lacks; exercised under QEMU")
	}
	img := filepath.Join(t.TempDir(), "fs.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 128*mib); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(mkfs, "-q", "-F", img, "16M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	dev, detach, err := loopdev.Attach(img, false)
	if err != nil {
		t.Fatal(err)
	}
	defer detach()
	runHelper(t, "fs", "DEV="+dev, "DIR="+filepath.Join(t.TempDir(), "perm"))
	if fsck, err := exec.LookPath("e2fsck"); err == nil {
		if out, err := exec.Command(fsck, "-fn", dev).CombinedOutput(); err != nil {
			t.Fatalf("e2fsck -fn after grow: %v\n%s", err, out)
		}
	}
}
