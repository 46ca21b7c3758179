package alsa

import (
	"unsafe"
)

// The kernel's PCM interface (include/uapi/sound/asound.h): the structures the
// ioctls take, laid out as the C compiler lays them out on Linux, and the
// ioctl numbers built from their sizes as <asm-generic/ioctl.h> does. The
// sizes differ between 32- and 64-bit kernels (snd_pcm_uframes_t is an
// unsigned long): uintptr keeps each field the C width on both.

// mask is struct snd_mask: a bit per value of an enumerated parameter
// (access type, sample format, subformat).
type mask struct{ bits [8]uint32 }

// interval is struct snd_interval: the range a numeric parameter may take.
// flags holds the C bitfields openmin (bit 0), openmax (1), integer (2) and
// empty (3).
type interval struct {
	min, max uint32
	flags    uint32
}

const (
	intervalOpenMin = 1 << 0
	intervalOpenMax = 1 << 1
	intervalInteger = 1 << 2
)

// hwParams is struct snd_pcm_hw_params.
type hwParams struct {
	flags     uint32
	masks     [3]mask // ACCESS, FORMAT, SUBFORMAT
	mres      [5]mask
	intervals [12]interval // SAMPLE_BITS .. TICK_TIME
	ires      [9]interval
	rmask     uint32 // parameters the kernel is to refine
	cmask     uint32 // parameters it changed
	info      uint32
	msbits    uint32
	rateNum   uint32
	rateDen   uint32
	fifoSize  uintptr
	reserved  [64]byte
}

// Parameter indices (SNDRV_PCM_HW_PARAM_*): masks 0-2, intervals 8-19.
const (
	paramAccess     = 0
	paramFormat     = 1
	paramSubformat  = 2
	paramSampleBits = 8
	paramFrameBits  = 9
	paramChannels   = 10
	paramRate       = 11
	paramPeriodTime = 12
	paramPeriodSize = 13
	paramPeriodByte = 14
	paramPeriods    = 15
	paramBufferTime = 16
	paramBufferSize = 17
	paramBufferByte = 18
	paramTickTime   = 19
	firstInterval   = paramSampleBits
)

// Values of the mask parameters.
const (
	accessRWInterleaved = 3 // SNDRV_PCM_ACCESS_RW_INTERLEAVED
	formatS16LE         = 2 // SNDRV_PCM_FORMAT_S16_LE
	subformatStd        = 0 // SNDRV_PCM_SUBFORMAT_STD
)

// xferi is struct snd_xferi: one read or write of interleaved frames.
type xferi struct {
	result int // snd_pcm_sframes_t, a signed long
	buf    unsafe.Pointer
	frames uintptr
}

// ioctl numbers: _IOC(dir, 'A', nr, size) with dir 1 write, 2 read.
func ioc(dir, nr, size uintptr) uintptr { return dir<<30 | size<<16 | 'A'<<8 | nr }

var (
	ioctlPVersion = ioc(2, 0x00, unsafe.Sizeof(int32(0)))
	ioctlHWRefine = ioc(3, 0x10, unsafe.Sizeof(hwParams{}))
	ioctlHWParams = ioc(3, 0x11, unsafe.Sizeof(hwParams{}))
	ioctlHWFree   = ioc(0, 0x12, 0)
	ioctlPrepare  = ioc(0, 0x40, 0)
	ioctlDrop     = ioc(0, 0x43, 0)
	ioctlDrain    = ioc(0, 0x44, 0)
	ioctlWriteI   = ioc(1, 0x50, unsafe.Sizeof(xferi{}))
	ioctlReadI    = ioc(2, 0x51, unsafe.Sizeof(xferi{}))
)

// anyParams is every configuration the interface can express, for the kernel
// to narrow to the device's (alsa-lib's snd_pcm_hw_params_any).
func anyParams() *hwParams {
	p := &hwParams{rmask: ^uint32(0)}
	for i := range p.masks {
		for j := range p.masks[i].bits {
			p.masks[i].bits[j] = ^uint32(0)
		}
	}
	for i := range p.intervals {
		p.intervals[i] = interval{min: 0, max: ^uint32(0)}
	}
	return p
}

// setMask leaves only value in mask parameter i.
func (p *hwParams) setMask(i, value int) {
	p.masks[i] = mask{}
	p.masks[i].bits[value/32] = 1 << (value % 32)
}

// hasMask reports whether value is allowed in mask parameter i.
func (p *hwParams) hasMask(i, value int) bool {
	return p.masks[i].bits[value/32]&(1<<(value%32)) != 0
}

// setRange narrows interval parameter i to whole numbers in [lo, hi].
func (p *hwParams) setRange(i int, lo, hi uint32) {
	p.intervals[i-firstInterval] = interval{min: lo, max: hi, flags: intervalInteger}
}

// get returns interval parameter i's range.
func (p *hwParams) get(i int) interval { return p.intervals[i-firstInterval] }
