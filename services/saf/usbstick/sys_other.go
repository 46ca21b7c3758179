//go:build !linux

package usbstick

import "errors"

// LinuxOptions configure Linux; only Linux has a real System.
type LinuxOptions struct {
	SysBlock, DevDir, MountInfo, MountDir string
	Match                                 func(disk, sysPath string) bool
}

// Linux returns a System whose every call fails: only Linux mounts sticks.
func Linux(LinuxOptions) System { return noSystem{} }

var errNotLinux = errors.New("usb sticks are handled on Linux only")

type noSystem struct{}

func (noSystem) Devices() ([]Device, error)           { return nil, errNotLinux }
func (noSystem) Mount(Device, string) (string, error) { return "", errNotLinux }
func (noSystem) Unmount(string) error                 { return errNotLinux }
