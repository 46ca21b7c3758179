package mounts

import (
	"bufio"
	"fmt"
	"github.com/skyfleet/skyfleet/gokrazy/internal/nstest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/gokrazy/internal/loopdev"
	"golang.org/x/sys/unix"
)

const modeEnv = "MOUNTS_TEST_MODE"

func TestMain(m *testing.M) {
	mode := os.Getenv(modeEnv)
	if mode == "" {
		os.Exit(m.Run())
	}
	// Helpers run in their own mount namespace (see runInMountNS); make
	// it private so nothing propagates back to the host.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		fmt.Println("FAIL make / private:", err)
		os.Exit(1)
	}
	var err error
	switch mode {
	case "early":
		err = helperEarly(os.Getenv("ROOT"))
	case "perm":
		err = helperPerm(os.Getenv("DEV"), os.Getenv("DIR"))
	default:
		err = fmt.Errorf("unknown mode %q", mode)
	}
	if err != nil {
		fmt.Println("FAIL", err)
		os.Exit(1)
	}
	fmt.Println("OK")
	os.Exit(0)
}

// mountsUnder lists mount points at or below dir from mountinfo.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			out = append(out, fields[4])
		}
	}
	return out, sc.Err()
}

func helperEarly(root string) error {
	for i := 0; i < 2; i++ {
		if err := MountEarlyAt(root); err != nil {
			return fmt.Errorf("MountEarlyAt #%d: %w", i+1, err)
		}
		got, err := mountsUnder(root)
		if err != nil {
			return err
		}
		if len(got) != len(Early) {
			return fmt.Errorf("after call %d: %d mounts under root, want %d: %v", i+1, len(got), len(Early), got)
		}
	}
	magic := map[string]int64{
		"/proc": unix.PROC_SUPER_MAGIC, "/sys": unix.SYSFS_MAGIC, "/dev": unix.TMPFS_MAGIC,
		"/dev/pts": unix.DEVPTS_SUPER_MAGIC, "/run": unix.TMPFS_MAGIC, "/tmp": unix.TMPFS_MAGIC,
	}
	for dir, want := range magic {
		var st unix.Statfs_t
		if err := unix.Statfs(filepath.Join(root, dir), &st); err != nil {
			return err
		}
		if st.Type != want {
			return fmt.Errorf("%s: fs magic %#x, want %#x", dir, st.Type, want)
		}
		if ok, err := IsMountPoint(filepath.Join(root, dir)); !ok || err != nil {
			return fmt.Errorf("IsMountPoint(%s) = %v, %v", dir, ok, err)
		}
	}
	// /tmp must be world-writable and sticky, /run not.
	fi, err := os.Stat(filepath.Join(root, "tmp"))
	if err != nil {
		return err
	}
	if fi.Mode().Perm() != 0o777 || fi.Mode()&os.ModeSticky == 0 {
		return fmt.Errorf("/tmp mode %v", fi.Mode())
	}
	if _, err := os.Stat(filepath.Join(root, "proc/self/stat")); err != nil {
		return fmt.Errorf("proc not usable: %w", err)
	}
	if _, err := os.Stat(filepath.Join(root, "dev/null")); err != nil {
		return fmt.Errorf("devtmpfs not usable: %w", err)
	}
	for name, want := range DevLinks {
		if got, err := os.Readlink(filepath.Join(root, name)); err != nil || got != want {
			return fmt.Errorf("%s -> %q, %v; want -> %s", name, got, err, want)
		}
	}
	return nil
}

func helperPerm(dev, dir string) error {
	for i := 0; i < 2; i++ {
		if err := MountPerm(dev, dir); err != nil {
			return fmt.Errorf("MountPerm #%d: %w", i+1, err)
		}
	}
	if got, _ := mountsUnder(dir); len(got) != 1 {
		return fmt.Errorf("mounts on %s: %v, want exactly one", dir, got)
	}
	if err := os.WriteFile(filepath.Join(dir, "hello"), []byte("persist"), 0o600); err != nil {
		return err
	}
	if err := Unmount(dir); err != nil {
		return fmt.Errorf("Unmount: %w", err)
	}
	if ok, _ := IsMountPoint(dir); ok {
		return fmt.Errorf("%s still mounted after Unmount", dir)
	}
	if err := Unmount(dir); err != nil {
		return fmt.Errorf("Unmount of an unmounted dir: %w", err)
	}
	if err := MountPerm(dev, dir); err != nil {
		return err
	}
	b, err := os.ReadFile(filepath.Join(dir, "hello"))
	if err != nil || string(b) != "persist" {
		return fmt.Errorf("file after remount: %q, %v", b, err)
	}
	// Busy with a reader: remounted read-only, then detached.
	r, err := os.Open(filepath.Join(dir, "hello"))
	if err != nil {
		return err
	}
	defer r.Close()
	if err := Unmount(dir); err != nil {
		return fmt.Errorf("Unmount busy (reader): %w", err)
	}
	if ok, _ := IsMountPoint(dir); ok {
		return fmt.Errorf("%s still mounted after busy Unmount", dir)
	}
	r.Close() // lets the detached read-only superblock go away
	// Busy with a writer: no read-only remount is possible; it is still
	// detached, and the error says so.
	if err := MountPerm(dev, dir); err != nil {
		return err
	}
	w, err := os.OpenFile(filepath.Join(dir, "held"), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer w.Close()
	err = Unmount(dir)
	if err == nil || !strings.Contains(err.Error(), "not remounted read-only") {
		return fmt.Errorf("Unmount busy (writer) = %v, want a not-remounted error", err)
	}
	if ok, _ := IsMountPoint(dir); ok {
		return fmt.Errorf("%s still mounted after busy Unmount (writer)", dir)
	}
	return nil
}

// runInMountNS re-executes the test binary in a new mount namespace with
// the given helper mode and environment, and fails the test unless the
// helper prints OK.
func runInMountNS(t *testing.T, mode string, env ...string) {
	t.Helper()
	nstest.RunInMountNS(t, modeEnv, mode, env...)
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED (not a pass): mounting needs root")
	}
}

func TestMountEarlyIdempotent(t *testing.T) {
	requireRoot(t)
	runInMountNS(t, "early", "ROOT="+t.TempDir())
}

func TestMountPermOnLoopDevice(t *testing.T) {
	requireRoot(t)
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		t.Skip("SKIPPED (not a pass): mkfs.ext4 (e2fsprogs) not installed")
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "perm.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 16<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(mkfs, "-q", "-F", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	dev, detach, err := loopdev.Attach(img, false)
	if err != nil {
		t.Fatal(err)
	}
	defer detach()
	runInMountNS(t, "perm", "DEV="+dev, "DIR="+filepath.Join(dir, "perm"))
}

func TestIsMountPoint(t *testing.T) {
	if ok, err := IsMountPoint("/"); !ok || err != nil {
		t.Errorf("IsMountPoint(/) = %v, %v", ok, err)
	}
	if ok, err := IsMountPoint("/proc"); !ok || err != nil {
		t.Errorf("IsMountPoint(/proc) = %v, %v", ok, err)
	}
	d := t.TempDir()
	if ok, err := IsMountPoint(d); ok || err != nil {
		t.Errorf("IsMountPoint(%s) = %v, %v", d, ok, err)
	}
	if _, err := IsMountPoint(filepath.Join(d, "missing")); err == nil {
		t.Error("IsMountPoint of a missing dir did not fail")
	}
}

func TestPartitionPath(t *testing.T) {
	cases := map[string]string{
		"/dev/mmcblk0": "/dev/mmcblk0p2",
		"/dev/sda":     "/dev/sda2",
		"/dev/vda":     "/dev/vda2",
		"/dev/nvme0n1": "/dev/nvme0n1p2",
		"/dev/loop7":   "/dev/loop7p2",
	}
	for disk, want := range cases {
		if got := PartitionPath(disk, 2); got != want {
			t.Errorf("PartitionPath(%s, 2) = %s, want %s", disk, got, want)
		}
	}
}

// fakeBlockDevices makes isBlockDevice accept regular files for the test.
func fakeBlockDevices(t *testing.T) {
	old := isBlockDevice
	isBlockDevice = func(p string) bool {
		_, err := os.Stat(p)
		return err == nil
	}
	t.Cleanup(func() { isBlockDevice = old })
}

func TestFindDiskWaitsForLateDevice(t *testing.T) {
	fakeBlockDevices(t)
	dev := t.TempDir()
	// sda is there from the start but has no partitions; the SD card
	// appears later and wins because sda never gets a partition 1.
	os.WriteFile(filepath.Join(dev, "sda"), nil, 0o600)
	go func() {
		time.Sleep(50 * time.Millisecond)
		os.WriteFile(filepath.Join(dev, "mmcblk0"), nil, 0o600)
		os.WriteFile(filepath.Join(dev, "mmcblk0p1"), nil, 0o600)
	}()
	d, err := FindDisk(FindOptions{DevDir: dev, Timeout: 30 * time.Second, Poll: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	want := Disk{Dev: dev + "/mmcblk0", Boot: dev + "/mmcblk0p1", Perm: dev + "/mmcblk0p2"}
	if d != want {
		t.Fatalf("FindDisk = %+v, want %+v", d, want)
	}
}

func TestFindDiskPrefersOrderAndTimesOut(t *testing.T) {
	fakeBlockDevices(t)
	dev := t.TempDir()
	for _, n := range []string{"vda", "vda1", "sda", "sda1"} {
		os.WriteFile(filepath.Join(dev, n), nil, 0o600)
	}
	d, err := FindDisk(FindOptions{DevDir: dev, Timeout: time.Second, Poll: time.Millisecond})
	if err != nil || d.Dev != dev+"/sda" || d.Perm != dev+"/sda2" {
		t.Fatalf("FindDisk = %+v, %v; want sda", d, err)
	}
	_, err = FindDisk(FindOptions{DevDir: t.TempDir(), Timeout: 10 * time.Millisecond, Poll: time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "mmcblk0, sda, vda") {
		t.Fatalf("FindDisk on empty dir: %v", err)
	}
}

func TestIsBlockDeviceReal(t *testing.T) {
	if isBlockDevice("/dev/null") {
		t.Error("/dev/null (a char device) counted as block device")
	}
	if isBlockDevice(t.TempDir()) {
		t.Error("a directory counted as block device")
	}
	if _, err := os.Stat("/dev/loop0"); err == nil && !isBlockDevice("/dev/loop0") {
		t.Error("/dev/loop0 not recognised as block device")
	}
}
