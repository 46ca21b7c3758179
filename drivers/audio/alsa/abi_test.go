package alsa

import (
	"testing"
	"unsafe"
)

// The structures and ioctl numbers against the kernel's ABI: the values the
// kernel headers give on a 64-bit Linux (what strace prints for alsa-lib's
// calls, e.g. SNDRV_PCM_IOCTL_HW_PARAMS = 0xc2604111), and the 32-bit sizes.
func TestABI(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) == 8 {
		if got := unsafe.Sizeof(hwParams{}); got != 608 {
			t.Errorf("sizeof(struct snd_pcm_hw_params) = %d, want 608", got)
		}
		if got := unsafe.Sizeof(xferi{}); got != 24 {
			t.Errorf("sizeof(struct snd_xferi) = %d, want 24", got)
		}
		for name, c := range map[string]struct{ got, want uintptr }{
			"PVERSION":      {ioctlPVersion, 0x80044100},
			"HW_REFINE":     {ioctlHWRefine, 0xc2604110},
			"HW_PARAMS":     {ioctlHWParams, 0xc2604111},
			"HW_FREE":       {ioctlHWFree, 0x4112},
			"PREPARE":       {ioctlPrepare, 0x4140},
			"DROP":          {ioctlDrop, 0x4143},
			"DRAIN":         {ioctlDrain, 0x4144},
			"WRITEI_FRAMES": {ioctlWriteI, 0x40184150},
			"READI_FRAMES":  {ioctlReadI, 0x80184151},
		} {
			if c.got != c.want {
				t.Errorf("SNDRV_PCM_IOCTL_%s = %#x, want %#x", name, c.got, c.want)
			}
		}
	} else {
		if got := unsafe.Sizeof(hwParams{}); got != 604 {
			t.Errorf("sizeof(struct snd_pcm_hw_params) = %d on 32 bits, want 604", got)
		}
		if got := unsafe.Sizeof(xferi{}); got != 12 {
			t.Errorf("sizeof(struct snd_xferi) = %d on 32 bits, want 12", got)
		}
	}
	// Field offsets the kernel reads: the intervals after flags and the 8
	// masks, rmask after the 21 intervals.
	var p hwParams
	if off := unsafe.Offsetof(p.intervals); off != 4+8*32 {
		t.Errorf("intervals at %d, want 260", off)
	}
	if off := unsafe.Offsetof(p.rmask); off != 260+21*12 {
		t.Errorf("rmask at %d, want 512", off)
	}
}

// Params fill as the kernel expects: one bit per mask value, whole-number
// intervals.
func TestParams(t *testing.T) {
	p := anyParams()
	if !p.hasMask(paramFormat, formatS16LE) || p.get(paramRate).max != ^uint32(0) || p.rmask != ^uint32(0) {
		t.Fatalf("anyParams is not open: %+v", p)
	}
	p.setMask(paramFormat, formatS16LE)
	if p.masks[paramFormat].bits[0] != 1<<2 || p.hasMask(paramFormat, 3) {
		t.Errorf("format mask %x", p.masks[paramFormat].bits)
	}
	p.setRange(paramRate, 22050, 22050)
	if iv := p.intervals[paramRate-firstInterval]; iv.min != 22050 || iv.max != 22050 || iv.flags != intervalInteger {
		t.Errorf("rate interval %+v", iv)
	}
}

// Bad paths and parameters are refused before any ioctl, saying what is
// wanted.
func TestOpenRefuses(t *testing.T) {
	if _, err := OpenDevice("/dev/snd/controlC0", 22050); err == nil {
		t.Error("OpenDevice took a control device")
	}
	if _, err := Open("/dev/null", false, Params{Rate: 22050, Channels: 3}); err == nil {
		t.Error("Open took 3 channels")
	}
	if _, err := Open("/dev/null", false, Params{Rate: 22050}); err == nil {
		t.Error("Open took /dev/null for a PCM device")
	}
	if _, err := Open("/dev/snd/pcmC9D9p", false, Params{Rate: 22050}); err == nil {
		t.Error("Open took a missing device")
	}
}
