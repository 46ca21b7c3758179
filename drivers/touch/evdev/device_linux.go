package evdev

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/skyfleet/skyfleet/drivers/touch"
)

// ioctl numbers of the evdev interface (include/uapi/linux/input.h), built as
// _IOC(_IOC_READ, 'E', nr, size) is on arm64 and amd64.
func eviocRead(nr, size uintptr) uintptr { return 2<<30 | size<<16 | 'E'<<8 | nr }

func eviocgname(size uintptr) uintptr    { return eviocRead(0x06, size) }
func eviocgprop(size uintptr) uintptr    { return eviocRead(0x09, size) }
func eviocgbit(ev, size uintptr) uintptr { return eviocRead(0x20+ev, size) }
func eviocgabs(abs uintptr) uintptr      { return eviocRead(0x40+abs, unsafe.Sizeof(absInfo{})) }
func ioctl(fd, req uintptr, p unsafe.Pointer) error {
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, fd, req, uintptr(p)); errno != 0 {
		return errno
	}
	return nil
}

// absInfo is struct input_absinfo.
type absInfo struct {
	Value, Minimum, Maximum, Fuzz, Flat, Resolution int32
}

// Info describes an input device that can serve as a touchscreen.
type Info struct {
	// Path is its node, e.g. /dev/input/event0.
	Path string
	// Name is the kernel's name for it, e.g. "QEMU QEMU USB Tablet".
	Name string
	// MultiTouch is set for a protocol B device (it has ABS_MT_SLOT).
	MultiTouch bool
	// Direct is set when the kernel marks it a touchscreen
	// (INPUT_PROP_DIRECT) rather than a pointer that happens to be
	// absolute (a tablet).
	Direct bool
	// X and Y are the ranges of the axes positions come on.
	X, Y touch.Axis
}

// ErrNotTouch is returned by Probe for an input device without absolute
// X and Y axes and a touch or left button: a keyboard, a mouse, a button.
var ErrNotTouch = errors.New("evdev: not a touch device (no absolute X/Y with a touch or left button)")

// Probe asks the kernel what the device at path is. Errors: opening it,
// the ioctls, ErrNotTouch.
func Probe(path string) (Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return Info{}, err
	}
	defer f.Close()
	return probe(f, path)
}

func probe(f *os.File, path string) (Info, error) {
	fd := f.Fd()
	info := Info{Path: path}
	var name [256]byte
	if err := ioctl(fd, eviocgname(uintptr(len(name))), unsafe.Pointer(&name[0])); err != nil {
		return info, fmt.Errorf("evdev: %s: EVIOCGNAME: %w", path, err)
	}
	info.Name = strings.TrimRight(string(name[:]), "\x00")
	var abs [absMax/8 + 1]byte
	if err := ioctl(fd, eviocgbit(EvAbs, uintptr(len(abs))), unsafe.Pointer(&abs[0])); err != nil {
		return info, fmt.Errorf("evdev: %s: EVIOCGBIT(EV_ABS): %w", path, err)
	}
	var keys [keyMax/8 + 1]byte
	if err := ioctl(fd, eviocgbit(EvKey, uintptr(len(keys))), unsafe.Pointer(&keys[0])); err != nil {
		return info, fmt.Errorf("evdev: %s: EVIOCGBIT(EV_KEY): %w", path, err)
	}
	var props [4]byte
	if ioctl(fd, eviocgprop(uintptr(len(props))), unsafe.Pointer(&props[0])) == nil {
		info.Direct = bit(props[:], inputPropDirect)
	}
	if !bit(keys[:], BtnTouch) && !bit(keys[:], BtnLeft) {
		return info, ErrNotTouch
	}
	xc, yc := uintptr(AbsX), uintptr(AbsY)
	if bit(abs[:], AbsMTSlot) && bit(abs[:], AbsMTPositionX) && bit(abs[:], AbsMTPositionY) {
		info.MultiTouch = true
		xc, yc = AbsMTPositionX, AbsMTPositionY
	} else if !bit(abs[:], AbsX) || !bit(abs[:], AbsY) {
		return info, ErrNotTouch
	}
	for _, a := range []struct {
		code uintptr
		dst  *touch.Axis
	}{{xc, &info.X}, {yc, &info.Y}} {
		var ai absInfo
		if err := ioctl(fd, eviocgabs(a.code), unsafe.Pointer(&ai)); err != nil {
			return info, fmt.Errorf("evdev: %s: EVIOCGABS(%#x): %w", path, a.code, err)
		}
		*a.dst = touch.Axis{Min: int(ai.Minimum), Max: int(ai.Maximum)}
	}
	return info, nil
}

func bit(b []byte, n int) bool { return n/8 < len(b) && b[n/8]&(1<<(n%8)) != 0 }

// Find probes every /dev/input/event* node and returns the touch devices,
// touchscreens (Direct) first, then in node order. Nodes it cannot open or
// that are not touch devices are skipped.
func Find() ([]Info, error) {
	paths, err := filepath.Glob("/dev/input/event*")
	if err != nil {
		return nil, err
	}
	var out []Info
	for _, p := range paths {
		if info, err := Probe(p); err == nil {
			out = append(out, info)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Direct && !out[j].Direct })
	return out, nil
}

// Device is an open touch device.
type Device struct {
	Info Info
	f    *os.File
	dec  *Decoder
	buf  []byte
	off  int // next event in buf
	n    int // bytes read into buf
}

// Open opens the touch device at path, mapping its axes onto a screen of
// width x height pixels (as the UI draws it) with calibration (the zero
// value for none) and rotation. Errors: those of Probe, and a mapping
// Validate refuses.
func Open(path string, width, height int, cal touch.Calibration, rot touch.Rotation) (*Device, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	info, err := probe(f, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	dec, err := NewDecoder(touch.Mapping{X: info.X, Y: info.Y, Width: width, Height: height, Calibration: cal, Rotation: rot}, info.MultiTouch)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("evdev: %s: %w", path, err)
	}
	return &Device{Info: info, f: f, dec: dec, buf: make([]byte, 64*EventSize)}, nil
}

// Read blocks until the device completes a report that changed something
// and returns it. Errors: the device's (it was unplugged: ENODEV), or
// io.EOF after Close.
func (d *Device) Read() (touch.Report, error) {
	for {
		for d.off+EventSize <= d.n {
			e, _, _ := ParseEvent(d.buf[d.off:d.n])
			d.off += EventSize
			if r, ok := d.dec.Feed(e); ok {
				return r, nil
			}
		}
		// The kernel reads out whole events; keep a partial one anyway.
		d.n = copy(d.buf, d.buf[d.off:d.n])
		d.off = 0
		n, err := d.f.Read(d.buf[d.n:])
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return touch.Report{}, io.EOF
			}
			return touch.Report{}, fmt.Errorf("evdev: %s: %w", d.Info.Path, err)
		}
		d.n += n
	}
}

// Dropped is how many times the kernel's event buffer overflowed.
func (d *Device) Dropped() uint64 { return d.dec.Dropped }

// Close closes the device; a blocked Read returns io.EOF.
func (d *Device) Close() error { return d.f.Close() }
