package alsa

import (
	"errors"
	"fmt"
	"regexp"
)

// Device is a sound card's playback and capture at one rate, as mono audio:
// the shape of drivers/radio/modem's Audio. A stereo direction plays the
// same samples on both channels and is heard on the left one (a radio
// cable's microphone and speaker lines are mono).
type Device struct {
	play, rec *PCM
	in, out   []int16 // scratch for stereo frames
}

// devicePath is a PCM device's path without its direction letter.
var devicePath = regexp.MustCompile(`^/dev/snd/pcmC[0-9]+D[0-9]+$`)

// IsDevice reports whether base names a sound card's PCM device as
// OpenDevice takes it: /dev/snd/pcmC<card>D<device>, without the direction
// letter. Config checks use it to refuse a malformed path before any open.
func IsDevice(base string) bool { return devicePath.MatchString(base) }

// OpenDevice opens base+"p" to play and base+"c" to capture (base as
// /dev/snd/pcmC1D0: card 1, device 0, as /proc/asound/cards numbers them)
// at rate Hz. Errors: a base of another shape, and Open's for either
// direction.
func OpenDevice(base string, rate int) (*Device, error) {
	if !IsDevice(base) {
		return nil, fmt.Errorf("alsa: %q: want /dev/snd/pcmC<card>D<device> (see /proc/asound/cards)", base)
	}
	play, err := Open(base+"p", false, Params{Rate: rate})
	if err != nil {
		return nil, err
	}
	rec, err := Open(base+"c", true, Params{Rate: rate})
	if err != nil {
		play.Close()
		return nil, err
	}
	return &Device{play: play, rec: rec}, nil
}

// Read blocks until captured samples are there and copies at most len(p)
// of them into p, one per frame.
func (d *Device) Read(p []int16) (int, error) {
	ch := d.rec.Channels()
	if ch == 1 {
		return d.rec.Read(p)
	}
	if cap(d.in) < len(p)*ch {
		d.in = make([]int16, len(p)*ch)
	}
	n, err := d.rec.Read(d.in[:len(p)*ch])
	for i := range n / ch {
		p[i] = d.in[i*ch]
	}
	return n / ch, err
}

// Write plays p and returns once it has been played out, so the transmitter
// can be unkeyed.
func (d *Device) Write(p []int16) error {
	buf := p
	if ch := d.play.Channels(); ch > 1 {
		if cap(d.out) < len(p)*ch {
			d.out = make([]int16, len(p)*ch)
		}
		buf = d.out[:len(p)*ch]
		for i, s := range p {
			for c := range ch {
				buf[i*ch+c] = s
			}
		}
	}
	if err := d.play.Write(buf); err != nil {
		return err
	}
	return d.play.Drain()
}

// Xruns counts the gaps in both directions (PCM.Xruns).
func (d *Device) Xruns() uint64 { return d.play.Xruns() + d.rec.Xruns() }

// Close stops both directions, ending a blocked Read or Write.
func (d *Device) Close() error {
	return errors.Join(d.play.Close(), d.rec.Close())
}
