// Package loopdev attaches image files to loop block devices so that
// tests on the host can exercise real block-device code paths (mounts,
// partition-table ioctls, online ext4 resize) without an SD card. It needs
// root and /dev/loop-control.
package loopdev

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Attach binds file to a free loop device, with partition scanning when
// partscan is set (so "/dev/loopNpM" nodes appear for an MBR inside the
// file). It returns the device path and a detach function that releases
// the device (immediately if unused, otherwise when the last user such as
// a mount goes away).
func Attach(file string, partscan bool) (dev string, detach func() error, err error) {
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return "", nil, err
	}
	defer ctl.Close()
	backing, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		return "", nil, err
	}
	defer backing.Close()
	// Another process may grab the same free device between GET_FREE and
	// CONFIGURE; retry on EBUSY.
	for attempt := 0; attempt < 20; attempt++ {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return "", nil, fmt.Errorf("LOOP_CTL_GET_FREE: %w", err)
		}
		dev = fmt.Sprintf("/dev/loop%d", n)
		if err := waitNode(dev); err != nil {
			return "", nil, err
		}
		f, err := os.OpenFile(dev, os.O_RDWR, 0)
		if err != nil {
			return "", nil, err
		}
		cfg := unix.LoopConfig{Fd: uint32(backing.Fd())}
		cfg.Info.Flags = unix.LO_FLAGS_AUTOCLEAR
		if partscan {
			cfg.Info.Flags |= unix.LO_FLAGS_PARTSCAN
		}
		err = unix.IoctlLoopConfigure(int(f.Fd()), &cfg)
		if errors.Is(err, unix.EBUSY) {
			f.Close()
			continue
		}
		if err != nil {
			f.Close()
			return "", nil, fmt.Errorf("LOOP_CONFIGURE %s: %w", dev, err)
		}
		detach := func() error {
			defer f.Close()
			err := unix.IoctlSetInt(int(f.Fd()), unix.LOOP_CLR_FD, 0)
			if errors.Is(err, unix.EBUSY) || errors.Is(err, unix.ENXIO) {
				return nil // autoclear releases it once unused
			}
			return err
		}
		return dev, detach, nil
	}
	return "", nil, errors.New("no free loop device")
}

// WaitNode waits up to 10 s for a device node to appear (devtmpfs creates
// partition nodes asynchronously after a partition scan).
func WaitNode(path string) error { return waitNode(path) }

func waitNode(path string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not appear", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
