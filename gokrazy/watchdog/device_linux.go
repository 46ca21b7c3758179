package watchdog

import (
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// linuxDevice is a /dev/watchdog opened through the Linux watchdog API.
type linuxDevice struct {
	f *os.File
}

// OpenDevice opens a Linux watchdog device node. Opening it arms the
// watchdog.
func OpenDevice(path string) (Device, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return &linuxDevice{f: f}, nil
}

// SetTimeout implements Device with WDIOC_SETTIMEOUT (whole seconds,
// rounded up).
func (d *linuxDevice) SetTimeout(t time.Duration) (time.Duration, error) {
	secs := int32((t + time.Second - 1) / time.Second)
	// WDIOC_SETTIMEOUT is read-write: the driver stores the timeout it
	// really uses back into the argument.
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, d.f.Fd(), unix.WDIOC_SETTIMEOUT, uintptr(unsafe.Pointer(&secs)))
	if errno != 0 {
		return 0, errno
	}
	return time.Duration(secs) * time.Second, nil
}

// Keepalive implements Device with WDIOC_KEEPALIVE.
func (d *linuxDevice) Keepalive() error {
	return unix.IoctlWatchdogKeepalive(int(d.f.Fd()))
}

// Disarm implements Device with the magic close.
func (d *linuxDevice) Disarm() error {
	// Magic close: writing 'V' right before close tells drivers without
	// "nowayout" to stop the timer.
	_, werr := d.f.Write([]byte("V"))
	cerr := d.f.Close()
	if werr != nil {
		return werr
	}
	return cerr
}
