// Package alsa plays and captures 16-bit PCM on a Linux sound card through
// ALSA's kernel interface: the /dev/snd/pcmC<card>D<device>p (playback) and
// …c (capture) character devices and their ioctls (include/uapi/sound/asound.h),
// with no cgo and no alsa-lib. It is hardware access only: the modem above it
// (drivers/radio/modem) decides what to play and when.
//
// A PCM is one direction of one device, opened for interleaved signed 16-bit
// little-endian samples at one rate. Device pairs a card's playback and
// capture as the mono modem.Audio the built-in modem takes, for a USB sound
// dongle (CM108, Digirig, AIOC) or a Pi hat's codec.
package alsa

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Params are what Open asks of the device.
type Params struct {
	// Rate is the sample rate in Hz; the device must take it exactly (no
	// resampling here: a modem's tones are exact).
	Rate int
	// Channels is 1 or 2, or 0 for the fewest the device takes (a USB
	// dongle's capture is often mono and its playback stereo).
	Channels int
}

// Errors of Open.
var (
	// ErrFormat: the device takes no interleaved signed 16-bit samples.
	ErrFormat = errors.New("alsa: the device takes no interleaved 16-bit little-endian samples")
	// ErrRate wraps a rate the device does not take; the message says which
	// it does.
	ErrRate = errors.New("alsa: sample rate not supported")
)

// Period and buffer sizes Open asks for: periods of 20 ms or more (the
// kernel wakes a reader once a period), 4 to 16 of them in the buffer, so a
// reader late by a garbage collection or a busy core loses nothing.
const (
	minPeriodMS = 20
	maxPeriodMS = 100
	minPeriods  = 4
	maxPeriods  = 16
)

// PCM is one open direction of a sound device. Read, Write and Drain may
// block; Close, from any goroutine, stops the stream and ends them.
type PCM struct {
	path     string
	f        *os.File
	fd       uintptr
	capture  bool
	rate     int
	channels int
	period   int // frames
	buffer   int // frames
	xruns    atomic.Uint64
	// closed is set by Close; mu is held shared by every call into the
	// device and exclusively by Close, so the descriptor is not closed (and
	// its number reused) under a call that DROP has not yet woken.
	closed atomic.Bool
	mu     sync.RWMutex
}

// Open opens the PCM device at path (/dev/snd/pcmC1D0c to capture,
// /dev/snd/pcmC1D0p to play) for interleaved S16_LE at p.Rate and prepares
// it. Errors: the device cannot be opened (missing, or busy: another
// program has it), an older kernel interface (major version not 2),
// ErrFormat, ErrRate (with the rates the device takes), or the kernel's
// refusal of every period size from 20 to 100 ms.
func Open(path string, capture bool, p Params) (*PCM, error) {
	if p.Channels < 0 || p.Channels > 2 {
		return nil, fmt.Errorf("alsa: %d channels (1, 2, or 0 for the device's fewest)", p.Channels)
	}
	if p.Rate <= 0 {
		return nil, fmt.Errorf("alsa: sample rate %d Hz", p.Rate)
	}
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.EBUSY) {
			return nil, fmt.Errorf("alsa: %s is busy: another program has it open", path)
		}
		return nil, fmt.Errorf("alsa: %w (the cards are in /proc/asound/cards)", err)
	}
	pcm := &PCM{path: path, f: f, fd: f.Fd(), capture: capture}
	if err := pcm.setup(p); err != nil {
		f.Close()
		return nil, err
	}
	return pcm, nil
}

// setup checks the interface version, sets the hardware parameters and
// prepares the stream.
func (pcm *PCM) setup(want Params) error {
	var version int32
	if err := pcm.ioctl(ioctlPVersion, unsafe.Pointer(&version)); err != nil {
		return fmt.Errorf("alsa: %s: not a PCM device: %w", pcm.path, err)
	}
	if major := version >> 16; major != 2 {
		return fmt.Errorf("alsa: %s speaks PCM interface %d.%d.%d, this driver 2.x", pcm.path, major, version>>8&0xff, version&0xff)
	}
	hw := anyParams()
	if err := pcm.ioctl(ioctlHWRefine, unsafe.Pointer(hw)); err != nil {
		return fmt.Errorf("alsa: %s: %w", pcm.path, err)
	}
	if !hw.hasMask(paramAccess, accessRWInterleaved) || !hw.hasMask(paramFormat, formatS16LE) {
		return fmt.Errorf("%w (%s)", ErrFormat, pcm.path)
	}
	rates := hw.get(paramRate)
	hw.setMask(paramAccess, accessRWInterleaved)
	hw.setMask(paramFormat, formatS16LE)
	hw.setMask(paramSubformat, subformatStd)
	r := uint32(want.Rate)
	hw.setRange(paramRate, r, r)
	if want.Channels > 0 {
		hw.setRange(paramChannels, uint32(want.Channels), uint32(want.Channels))
	}
	hw.rmask = ^uint32(0)
	if err := pcm.ioctl(ioctlHWRefine, unsafe.Pointer(hw)); err != nil {
		if r < rates.min || r > rates.max {
			return fmt.Errorf("%w: %s takes %d to %d Hz, not %d", ErrRate, pcm.path, rates.min, rates.max, r)
		}
		return fmt.Errorf("%w: %s refuses %d Hz (or %d channels) with 16-bit samples: %v (its range is %d to %d Hz)",
			ErrRate, pcm.path, r, want.Channels, err, rates.min, rates.max)
	}
	// The fewest channels the device takes, then the period and buffer
	// ranges; HW_PARAMS has the kernel choose within them (the smallest
	// period, the largest buffer: snd_pcm_hw_params_choose).
	ch := hw.get(paramChannels).min
	if ch == 0 || ch > 2 {
		return fmt.Errorf("alsa: %s takes %d channels at the least; this driver plays mono or stereo", pcm.path, ch)
	}
	hw.setRange(paramChannels, ch, ch)
	hw.setRange(paramPeriodSize, r*minPeriodMS/1000, r*maxPeriodMS/1000)
	hw.setRange(paramPeriods, minPeriods, maxPeriods)
	hw.rmask = ^uint32(0)
	if err := pcm.ioctl(ioctlHWParams, unsafe.Pointer(hw)); err != nil {
		return fmt.Errorf("alsa: %s refuses periods of %d to %d ms at %d Hz: %w", pcm.path, minPeriodMS, maxPeriodMS, r, err)
	}
	pcm.rate, pcm.channels = int(hw.get(paramRate).min), int(hw.get(paramChannels).min)
	pcm.period, pcm.buffer = int(hw.get(paramPeriodSize).min), int(hw.get(paramBufferSize).min)
	if pcm.rate != want.Rate {
		return fmt.Errorf("%w: %s set %d Hz, not %d", ErrRate, pcm.path, pcm.rate, want.Rate)
	}
	if err := pcm.ioctl(ioctlPrepare, nil); err != nil {
		return fmt.Errorf("alsa: %s: prepare: %w", pcm.path, err)
	}
	return nil
}

// ioctl calls the device, again after a signal interrupted it.
func (pcm *PCM) ioctl(req uintptr, arg unsafe.Pointer) error {
	for {
		_, _, e := unix.Syscall(unix.SYS_IOCTL, pcm.fd, req, uintptr(arg))
		switch e {
		case 0:
			return nil
		case unix.EINTR:
			continue
		default:
			return e
		}
	}
}

// Rate is the sample rate in Hz, Channels the samples per frame.
func (pcm *PCM) Rate() int     { return pcm.rate }
func (pcm *PCM) Channels() int { return pcm.channels }

// PeriodFrames and BufferFrames are the sizes the kernel chose, in frames.
func (pcm *PCM) PeriodFrames() int { return pcm.period }
func (pcm *PCM) BufferFrames() int { return pcm.buffer }

// Xruns counts underruns (playback starved) and overruns (capture not read
// in time) recovered from: each is a gap in the audio.
func (pcm *PCM) Xruns() uint64 { return pcm.xruns.Load() }

// errClosed is what Read, Write and Drain return after Close.
var errClosed = errors.New("alsa: device closed")

// transfer moves frames between samples and the device (READI or WRITEI),
// recovering from xruns, until all are moved. samples holds whole frames.
func (pcm *PCM) transfer(req uintptr, samples []int16, all bool) (int, error) {
	if !pcm.enter() {
		return 0, errClosed
	}
	defer pcm.mu.RUnlock()
	if len(samples)%pcm.channels != 0 {
		return 0, fmt.Errorf("alsa: %d samples is not a whole number of %d-channel frames", len(samples), pcm.channels)
	}
	frames := len(samples) / pcm.channels
	if frames == 0 {
		return 0, nil
	}
	var pin runtime.Pinner // the kernel writes through a pointer inside x
	pin.Pin(&samples[0])
	defer pin.Unpin()
	done := 0
	for done < frames {
		if pcm.closed.Load() {
			return done * pcm.channels, errClosed
		}
		x := xferi{buf: unsafe.Pointer(&samples[done*pcm.channels]), frames: uintptr(frames - done)}
		err := pcm.ioctl(req, unsafe.Pointer(&x))
		switch {
		case err == nil:
			done += x.result
			if !all {
				return done * pcm.channels, nil
			}
		case errors.Is(err, unix.EPIPE) || errors.Is(err, unix.ESTRPIPE):
			// An xrun (or a suspend): the stream stopped; prepare it
			// and go on, as alsa-lib's snd_pcm_recover does.
			pcm.xruns.Add(1)
			if err := pcm.ioctl(ioctlPrepare, nil); err != nil {
				return done * pcm.channels, pcm.fail("recover", err)
			}
		case errors.Is(err, unix.EAGAIN):
			continue
		default:
			return done * pcm.channels, pcm.fail("transfer", err)
		}
	}
	return done * pcm.channels, nil
}

// fail wraps a device error; after Close it is errClosed (DROP woke the call).
func (pcm *PCM) fail(what string, err error) error {
	if pcm.closed.Load() {
		return errClosed
	}
	return fmt.Errorf("alsa: %s: %s: %w", pcm.path, what, err)
}

// Write plays interleaved samples (whole frames), blocking until the last is
// in the device's buffer; Drain waits for them to be played. An underrun is
// recovered and counted (Xruns). Errors: a broken device, or errClosed.
func (pcm *PCM) Write(samples []int16) error {
	if pcm.capture {
		return fmt.Errorf("alsa: %s is a capture device", pcm.path)
	}
	_, err := pcm.transfer(ioctlWriteI, samples, true)
	return err
}

// Read captures into samples (whole frames), blocking until at least one
// frame is there, and returns the samples read. The first Read starts the
// stream; an overrun is recovered and counted (Xruns).
func (pcm *PCM) Read(samples []int16) (int, error) {
	if !pcm.capture {
		return 0, fmt.Errorf("alsa: %s is a playback device", pcm.path)
	}
	return pcm.transfer(ioctlReadI, samples, false)
}

// Drain blocks until everything written has been played, then prepares the
// stream for the next Write.
func (pcm *PCM) Drain() error {
	if !pcm.enter() {
		return errClosed
	}
	defer pcm.mu.RUnlock()
	if err := pcm.ioctl(ioctlDrain, nil); err != nil && !errors.Is(err, unix.EPIPE) {
		return pcm.fail("drain", err)
	}
	if err := pcm.ioctl(ioctlPrepare, nil); err != nil {
		return pcm.fail("prepare", err)
	}
	return nil
}

// enter takes the device for a call; false after Close.
func (pcm *PCM) enter() bool {
	pcm.mu.RLock()
	if pcm.closed.Load() {
		pcm.mu.RUnlock()
		return false
	}
	return true
}

// Close stops the stream at once (what is not yet played is dropped), which
// ends a Read, Write or Drain blocked in another goroutine, and closes the
// device once they have returned.
func (pcm *PCM) Close() error {
	if pcm.closed.Swap(true) {
		return nil
	}
	pcm.ioctl(ioctlDrop, nil) // wakes blocked calls: the stream is no longer running
	pcm.mu.Lock()
	defer pcm.mu.Unlock()
	return pcm.f.Close()
}
