package usbstick

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/skyfleet/skyfleet/gokrazy/mounts"
	"github.com/skyfleet/skyfleet/services/saf"
)

// fakeSysfs lays out a /sys/class/block with its device tree, a /dev and a
// mountinfo under a temporary directory.
type fakeSysfs struct{ root, class, dev, mountinfo string }

func newSysfs(t *testing.T) *fakeSysfs {
	r := t.TempDir()
	f := &fakeSysfs{root: r, class: filepath.Join(r, "sys/class/block"), dev: filepath.Join(r, "dev"),
		mountinfo: filepath.Join(r, "mountinfo")}
	for _, d := range []string{f.class, f.dev} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// disk adds a disk under parent (a device path below /sys/devices) with its
// partitions; sizes in sectors. devnum's major is 8.
func (f *fakeSysfs) disk(t *testing.T, parent, name string, minor, size int, diskseq string, parts ...string) {
	t.Helper()
	dir := filepath.Join(f.root, "sys/devices", parent, "block", name)
	attrs := map[string]string{"dev": fmt.Sprintf("8:%d", minor), "size": fmt.Sprint(size)}
	if diskseq != "" {
		attrs["diskseq"] = diskseq
	}
	f.node(t, dir, name, attrs)
	for i, p := range parts {
		f.node(t, filepath.Join(dir, p), p, map[string]string{"dev": fmt.Sprintf("8:%d", minor+i+1),
			"size": "1000", "partition": fmt.Sprint(i + 1)})
	}
}

func (f *fakeSysfs) node(t *testing.T, dir, name string, attrs map[string]string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for k, v := range attrs {
		write(t, filepath.Join(dir, k), []byte(v+"\n"))
	}
	rel, _ := filepath.Rel(f.class, dir)
	if err := os.Symlink(rel, filepath.Join(f.class, name)); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(f.dev, name), nil)
}

// TestLinuxDevices: the partitions of USB disks (or a USB disk without any) are
// listed with the disk's diskseq as key; not SD cards, SATA disks, empty card
// readers, the whole disk when it has partitions, a disk with a partition
// mounted elsewhere (booting from USB), or a partition without its /dev node yet.
// Mounts under the watcher's own directory do not count.
func TestLinuxDevices(t *testing.T) {
	f := newSysfs(t)
	usb := "platform/soc/3f980000.usb/usb1/1-1/1-1.2/1-1.2:1.0/host0/target0:0:0/0:0:0:0"
	f.disk(t, usb, "sda", 0, 4000, "12", "sda1", "sda2")
	f.disk(t, strings.Replace(usb, "1-1.2", "1-1.3", -1), "sdb", 16, 4000, "") // superfloppy
	f.disk(t, strings.Replace(usb, "1-1.2", "1-1.4", -1), "sdc", 32, 4000, "14", "sdc1", "sdc2")
	f.disk(t, strings.Replace(usb, "1-1.2", "1-1.5", -1), "sdd", 48, 0, "15") // reader, no card
	f.disk(t, strings.Replace(usb, "1-1.2", "1-1.6", -1), "sde", 64, 4000, "16", "sde1")
	f.disk(t, "platform/soc/ata1/host1/target1:0:0/1:0:0:0", "sdf", 80, 4000, "17", "sdf1")
	f.disk(t, "platform/soc/3f202000.mmc/mmc_host/mmc0/mmc0:0001", "mmcblk0", 96, 4000, "1", "mmcblk0p1")
	os.Remove(filepath.Join(f.dev, "sde1"))
	write(t, f.mountinfo, []byte(strings.Join([]string{
		"22 1 0:20 / / rw - rootfs rootfs rw",
		"30 22 8:98 / /boot ro,nosuid - vfat /dev/mmcblk0p1 ro",
		"31 22 8:34 / /perm rw - ext4 /dev/sdc2 rw",                      // booted from USB
		"40 22 8:1 / /run/skyfleet/usbstick/sda1 rw - vfat /dev/sda1 rw", // our own, stale
	}, "\n")+"\n"))
	sys := Linux(LinuxOptions{SysBlock: f.class, DevDir: f.dev, MountInfo: f.mountinfo})
	got, err := sys.Devices()
	if err != nil {
		t.Fatal(err)
	}
	want := []Device{
		{Name: "sda1", Path: filepath.Join(f.dev, "sda1"), Key: "12"},
		{Name: "sda2", Path: filepath.Join(f.dev, "sda2"), Key: "12"},
		{Name: "sdb", Path: filepath.Join(f.dev, "sdb"), Key: "size 4000"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Devices:\n%+v\nwant\n%+v", got, want)
	}
	if _, err := Linux(LinuxOptions{SysBlock: filepath.Join(f.root, "none")}).Devices(); err == nil {
		t.Fatal("no error without a device list")
	}
}

// attachLoop binds file to a free loop device (whole disk, no partition scan)
// and returns its name ("loop3") and a detach function.
func attachLoop(t *testing.T, file string) string {
	t.Helper()
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	backing, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer backing.Close()
	for range 20 {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("loop%d", n)
		var dev *os.File
		for range 500 {
			if dev, err = os.OpenFile("/dev/"+name, os.O_RDWR, 0); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		cfg := unix.LoopConfig{Fd: uint32(backing.Fd())}
		cfg.Info.Flags = unix.LO_FLAGS_AUTOCLEAR
		err = unix.IoctlLoopConfigure(int(dev.Fd()), &cfg)
		if errors.Is(err, unix.EBUSY) {
			dev.Close()
			continue
		}
		if err != nil {
			dev.Close()
			t.Fatal(err)
		}
		t.Cleanup(func() {
			unix.IoctlSetInt(int(dev.Fd()), unix.LOOP_CLR_FD, 0)
			dev.Close()
		})
		return name
	}
	t.Fatal("no free loop device")
	return ""
}

// TestRealStickOnLoopDevice runs the watcher on the real System (sysfs,
// mountinfo, mount(2)) with an ext4 image on a loop device as the stick, and a
// FAT one when the kernel has vfat: it is found in /sys/class/block, mounted
// (vfat tried first), imported from, exported to, synced and unmounted, and what
// it wrote is on the image when mounted again. A symlink out of the folder is
// refused. Needs root and mkfs (CI has both).
func TestRealStickOnLoopDevice(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED (not a pass): loop devices and mounts need root")
	}
	fss := []string{"ext4"}
	if b, _ := os.ReadFile("/proc/filesystems"); bytes.Contains(b, []byte("\tvfat\n")) {
		fss = append(fss, "vfat")
	} else {
		t.Log("this kernel has no vfat: only the ext4 stick (the vfat attempt fails first)")
	}
	for _, fs := range fss {
		t.Run(fs, func(t *testing.T) { realStick(t, fs) })
	}
}

func realStick(t *testing.T, fs string) {
	mkfs, err := exec.LookPath("mkfs." + fs)
	if err != nil {
		t.Fatalf("mkfs.%s not installed (scripts/deps.sh installs it)", fs)
	}
	img := filepath.Join(t.TempDir(), "stick.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 32<<20); err != nil {
		t.Fatal(err)
	}
	args := []string{"-q", "-F", img}
	if fs == "vfat" {
		args = []string{img}
	}
	if out, err := exec.Command(mkfs, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", mkfs, err, out)
	}

	// Lay the stick out through a mount of our own.
	loop := attachLoop(t, img)
	check := t.TempDir()
	mountAt := func() {
		if err := unix.Mount("/dev/"+loop, check, fs, 0, ""); err != nil {
			t.Fatal(err)
		}
	}
	mountAt()
	folder := filepath.Join(check, Folder)
	if err := os.Mkdir(folder, 0o755); err != nil {
		t.Fatal(err)
	}
	carried, f := bundleFile(t, other, key(3), 1)
	write(t, filepath.Join(folder, carried.String()+saf.FileExt), f)
	write(t, filepath.Join(folder, "bad.sfb"), []byte("no"))
	outside := filepath.Join(t.TempDir(), "outside.sfb")
	_, of := bundleFile(t, other, key(3), 2)
	write(t, outside, of)
	if fs == "ext4" {
		if err := os.Symlink(outside, filepath.Join(folder, "link.sfb")); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Unmount(check, 0); err != nil {
		t.Fatal(err)
	}

	eng, st := newEngine(t)
	own, ownFile := bundleFile(t, self, other, 3)
	eng.Import(ownFile)
	mountDir := filepath.Join(t.TempDir(), "usbstick")
	var l logs
	w := New(Config{Engine: eng, MountDir: mountDir, Logf: l.logf, Poll: 20 * time.Millisecond,
		System: Linux(LinuxOptions{MountDir: mountDir, Match: func(disk, _ string) bool { return disk == loop }})})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for w.Stats().Sticks == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // more looks: still visited once
	cancel()
	<-done
	t.Log(l.all())
	s := w.Stats()
	refused := 1
	if fs == "ext4" {
		refused = 2
	}
	if s.Sticks != 1 || s.Last == nil || s.Last.FS != fs || s.Last.Imported != 1 || s.Last.Refused != refused ||
		s.Last.Exported != 1 || s.Last.Error != "" {
		t.Fatalf("stats %+v last %+v", s, s.Last)
	}
	want := fmt.Sprintf("usb stick %s: imported 1 (0 duplicates, %d refused), exported 1", loop, refused)
	if !strings.Contains(l.all(), want) {
		t.Fatalf("log lacks %q", want)
	}
	if _, _, ok := st.Get(carried); !ok {
		t.Fatal("carried bundle not in the store")
	}
	if m, _ := mounts.IsMountPoint(filepath.Join(mountDir, loop)); m {
		t.Fatal("left mounted")
	}
	if _, err := os.Stat(filepath.Join(mountDir, loop)); err == nil {
		t.Error("mount point left behind")
	}

	mountAt()
	defer unix.Unmount(check, 0)
	b, err := os.ReadFile(filepath.Join(folder, own.String()+saf.FileExt))
	if err != nil {
		t.Fatalf("export not on the stick: %v", err)
	}
	if !bytes.Equal(b[12:], ownFile[12:]) {
		t.Fatal("exported file differs")
	}
	ents, _ := os.ReadDir(folder)
	if len(ents) != refused+2 {
		t.Fatalf("%d entries in the folder, want %d", len(ents), refused+2)
	}
}
