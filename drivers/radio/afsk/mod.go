// Package afsk is a Bell 202 AFSK 1200 modem in pure Go, the audio side of a
// sound-card radio link (a Digirig, an AIOC or a USB dongle into a Baofeng):
// frames to 16-bit PCM and, in demod.go, PCM back to frames. It knows the
// modulation and HDLC framing; the frames are AX.25 from package ax25, with
// their FCS.
//
// Bell 202 as APRS and packet radio use it: 1200 bit/s, mark 1200 Hz, space
// 2200 Hz, phase-continuous, bits NRZI-coded (a 0 changes the tone).
package afsk

import (
	"fmt"
	"math"
	"time"
)

// The modulation (Bell 202).
const (
	Baud  = 1200
	Mark  = 1200.0 // Hz
	Space = 2200.0 // Hz
)

// MinRate is the lowest sample rate the modem takes: well above twice the
// space tone.
const MinRate = 8000

// Modulator turns frames into audio. The zero value is not usable: set Rate.
type Modulator struct {
	// Rate is the sample rate in Hz (22050, 44100 and 48000 are the tested
	// ones), at least MinRate.
	Rate int
	// Amplitude is the tones' peak as a fraction of full scale; 0 means 0.5.
	Amplitude float64
	// TXDelay is the time of flags sent before the first frame, so the
	// receiver's squelch opens and its clock locks; 0 means 300 ms.
	// TXTail is the time of flags after the last; 0 means 30 ms.
	TXDelay, TXTail time.Duration
}

// Transmission is one keying of the transmitter: TXDelay of flags, the frames
// (each AX.25 2.2 §3 bytes with their FCS, as ax25.Frame.Encode gives them)
// with one flag between two, and TXTail of flags, as 16-bit PCM at Rate. The
// tone starts on mark with phase 0 and is continuous throughout. Errors: a
// Rate below MinRate.
func (m *Modulator) Transmission(frames [][]byte) ([]int16, error) {
	if m.Rate < MinRate {
		return nil, fmt.Errorf("afsk: sample rate %d Hz (at least %d)", m.Rate, MinRate)
	}
	amp := m.Amplitude
	if amp <= 0 {
		amp = 0.5
	}
	amp = min(amp, 1) * 32767
	delay, tail := m.TXDelay, m.TXTail
	if delay <= 0 {
		delay = 300 * time.Millisecond
	}
	if tail <= 0 {
		tail = 30 * time.Millisecond
	}
	flagsFor := func(d time.Duration) int { return max(1, int(d.Seconds()*Baud/8+0.5)) }

	var bits []byte
	bits = appendFlags(bits, flagsFor(delay))
	for i, f := range frames {
		if i > 0 {
			bits = appendFlags(bits, 1)
		}
		bits = appendStuffed(bits, f)
	}
	bits = appendFlags(bits, flagsFor(tail))

	// Bit i spans samples [i*Rate/Baud, (i+1)*Rate/Baud): at 22050 and
	// 44100 Hz a bit is not a whole number of samples, so the boundaries
	// are kept exact rather than rounded once and drifting.
	out := make([]int16, 0, len(bits)*m.Rate/Baud+1)
	mark := true
	phase := 0.0 // in cycles
	for i, b := range bits {
		if b == 0 {
			mark = !mark // NRZI: a 0 is a change of tone
		}
		f := Space
		if mark {
			f = Mark
		}
		step := f / float64(m.Rate)
		end := (i + 1) * m.Rate / Baud
		for n := len(out); n < end; n++ {
			out = append(out, int16(math.Round(amp*math.Sin(2*math.Pi*phase))))
			phase += step
			if phase >= 1 {
				phase--
			}
		}
	}
	return out, nil
}
