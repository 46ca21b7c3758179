package afsk

import (
	"bytes"
	"fmt"
	"math"

	"github.com/skyfleet/skyfleet/drivers/radio/ax25"
)

// The demodulator. Audio first goes through a band-pass filter around the two
// tones. Each tone's strength is then measured by mixing the audio with that
// tone (in phase and in quadrature) and low-pass filtering the products over
// about one bit: the envelope of the mark and of the space tone. Each envelope
// has its own automatic gain (a fast-attack, slow-decay peak and valley), so a
// radio's de-emphasis, which leaves the space tone several dB below the mark
// ("twist"), is levelled out. The difference of the two levelled envelopes is
// the demodulated signal; several slicers look at it with different weights of
// space against mark, since no single weight suits every transmitter. Each
// slicer has its own bit clock, a digital PLL nudged at every transition of its
// signal, and its own HDLC receiver; a frame whose FCS checks is passed on once
// however many slicers found it.

// Demodulator parameters, tuned on Dire Wolf's gen_packets output with rising
// noise (-n 100) at 22050, 44100 and 48000 Hz, and checked on clean frames
// with 6 and 9 dB of twist either way (sox treble): long tone filters (1.6
// bits) gained the most, from 32 frames to 54 of the 22050 Hz file, against
// 43 for Dire Wolf 1.6's atest; the band-pass filter and a slow AGC decay a
// few more. The package's tests check these files' counts.
const (
	bandLow, bandHigh = 600.0, 2800.0 // the band-pass filter's edges, Hz
	bandBits          = 1.8           // its length, in bit times
	toneBits          = 1.6           // the tone filters' length, in bit times
	agcAttack         = 0.30          // the envelope's peak and valley follow a rise at once...
	agcDecay          = 0.0001        // ...and fall back slowly (per sample at 44.1 kHz)
	pllLocked         = 0.74          // the clock keeps this much of its error at a transition once locked
	pllSearching      = 0.50          // and this much while it searches
	lockBits          = 32            // transitions on time before the clock counts as locked
)

// slicerGains are the weights of the space envelope against the mark one,
// one slicer each.
var slicerGains = []float32{0.5, 0.63, 0.79, 1.0, 1.26, 1.58, 2.0}

// DemodStats counts what a Demodulator saw.
type DemodStats struct {
	// Frames is the frames passed on. FCSErrors counts candidates that
	// ended on a flag after a whole number of bytes, long enough for a
	// frame, and failed their FCS, in any slicer: on a quiet channel most
	// are noise, so it is a measure of the channel more than of losses.
	Frames    uint64 `json:"frames"`
	FCSErrors uint64 `json:"fcs_errors"`
	// CarrierSamples counts the samples during which Carrier held: divided
	// by the rate, the time the channel was busy.
	CarrierSamples uint64 `json:"carrier_samples"`
}

// Demodulator turns 16-bit PCM into the AX.25 frames in it, each with its FCS
// checked (and still attached). Not safe for concurrent use.
type Demodulator struct {
	rate  int
	frame func([]byte)

	band                fir
	markI, markQ        fir
	spaceI, spaceQ      fir
	markPh, spacePh     float64 // local oscillators' phases, in cycles
	markStep, spaceStep float64
	mPeak, mValley      float32
	sPeak, sValley      float32
	attack, decay       float32
	slicers             []slicer
	n                   int64 // samples so far
	recent              [8]recentFrame
	recentNext          int
	dupWindow           int64
	carrier             bool
	stats               DemodStats
}

type recentFrame struct {
	at    int64
	frame []byte
}

// NewDemodulator decodes audio at rate samples per second (at least MinRate)
// and calls frame with each frame found, FCS included; frame must copy what it
// keeps.
func NewDemodulator(rate int, frame func([]byte)) (*Demodulator, error) {
	if rate < MinRate {
		return nil, fmt.Errorf("afsk: sample rate %d Hz (at least %d)", rate, MinRate)
	}
	spb := float64(rate) / Baud // samples per bit
	d := &Demodulator{rate: rate, frame: frame,
		markStep: Mark / float64(rate), spaceStep: Space / float64(rate),
		dupWindow: int64(8 * spb),
	}
	d.band = newFIR(bandPass(oddLen(bandBits*spb), bandLow/float64(rate), bandHigh/float64(rate)))
	lp := lowPass(oddLen(toneBits * spb))
	d.markI, d.markQ, d.spaceI, d.spaceQ = newFIR(lp), newFIR(lp), newFIR(lp), newFIR(lp)
	// The AGC's rates are per sample: scale them so they mean the same time
	// at every rate.
	scale := 44100 / float64(rate)
	d.attack = float32(1 - math.Pow(1-agcAttack, scale))
	d.decay = float32(1 - math.Pow(1-agcDecay, scale))
	step := uint32(math.Round(math.Exp2(32) * Baud / float64(rate)))
	for _, g := range slicerGains {
		d.slicers = append(d.slicers, slicer{gain: g, step: int32(step)})
	}
	return d, nil
}

// Stats returns the counts so far.
func (d *Demodulator) Stats() DemodStats { return d.stats }

// Carrier reports whether the last sample was part of a signal at the modem's
// bit rate (data carrier detect): some slicer's clock is locked, its last
// lockBits transitions having come on time, which noise and speech rarely
// manage. A transmitter's carrier sense asks it before keying.
func (d *Demodulator) Carrier() bool { return d.carrier }

// Write demodulates samples, calling the frame function for each frame that
// ends in them.
func (d *Demodulator) Write(samples []int16) {
	for _, s := range samples {
		d.sample(float32(s) / 32768)
	}
}

func (d *Demodulator) sample(x float32) {
	d.n++
	x = d.band.push(x)
	mc, ms := math.Sincos(2 * math.Pi * d.markPh)
	sc, ss := math.Sincos(2 * math.Pi * d.spacePh)
	if d.markPh += d.markStep; d.markPh >= 1 {
		d.markPh--
	}
	if d.spacePh += d.spaceStep; d.spacePh >= 1 {
		d.spacePh--
	}
	mi, mq := d.markI.push(x*float32(mc)), d.markQ.push(x*float32(ms))
	si, sq := d.spaceI.push(x*float32(sc)), d.spaceQ.push(x*float32(ss))
	m := float32(math.Sqrt(float64(mi*mi + mq*mq)))
	s := float32(math.Sqrt(float64(si*si + sq*sq)))
	m = agc(m, &d.mPeak, &d.mValley, d.attack, d.decay)
	s = agc(s, &d.sPeak, &d.sValley, d.attack, d.decay)
	locked := false
	for i := range d.slicers {
		sl := &d.slicers[i]
		if f := sl.sample(m - sl.gain*s); f != nil {
			d.found(f)
		}
		locked = locked || sl.good >= lockBits
	}
	if d.carrier = locked; locked {
		d.stats.CarrierSamples++
	}
}

// agc levels x to about -0.5..0.5 between its tracked valley and peak, which
// follow a rise (peak) or fall (valley) quickly and relax slowly.
func agc(x float32, peak, valley *float32, attack, decay float32) float32 {
	if x >= *peak {
		*peak += (x - *peak) * attack
	} else {
		*peak += (x - *peak) * decay
	}
	if x <= *valley {
		*valley += (x - *valley) * attack
	} else {
		*valley += (x - *valley) * decay
	}
	if *peak <= *valley {
		return 0
	}
	return (x-*valley)/(*peak-*valley) - 0.5
}

// found takes a frame a slicer finished: FCS errors are counted, a good frame
// is passed on unless another slicer passed the same bytes within dupWindow.
func (d *Demodulator) found(f []byte) {
	// Only the FCS is checked here, as a TNC checks it: what the frame
	// holds is for its reader (ax25.Decode).
	if ax25.FCS(f[:len(f)-2]) != uint16(f[len(f)-2])|uint16(f[len(f)-1])<<8 {
		d.stats.FCSErrors++
		return
	}
	for _, r := range d.recent {
		if r.frame != nil && d.n-r.at <= d.dupWindow && bytes.Equal(r.frame, f) {
			return
		}
	}
	d.recent[d.recentNext] = recentFrame{at: d.n, frame: append(d.recent[d.recentNext].frame[:0], f...)}
	d.recentNext = (d.recentNext + 1) % len(d.recent)
	d.stats.Frames++
	d.frame(f)
}

// slicer is one decision threshold with its bit clock and HDLC receiver.
type slicer struct {
	gain float32
	step int32 // the clock's advance per sample: 2^32 * Baud / rate

	pll      int32
	level    bool // the signal's side of zero at the last sample
	lastBit  bool // the level at the last bit's sampling instant, for NRZI
	good     int  // transitions that came on time, for the lock
	still    int  // bits since the last transition
	ones     int  // 1 bits in a row
	bits     []byte
	inFrame  bool
	frameBuf []byte
}

// maxFrameBits bounds a frame being received: the longest AX.25 frame
// Decode takes, stuffing aside.
const maxFrameBits = 8 * (ax25.MinFrame + 8*7 + ax25.MaxInfo)

// sample advances the slicer by one sample of the demodulated signal v and
// returns a frame (with FCS) when one ends on a flag here.
func (s *slicer) sample(v float32) []byte {
	level := v > 0
	prev := s.pll
	s.pll += s.step
	var out []byte
	if s.pll < 0 && prev >= 0 { // the clock wrapped: the middle of a bit
		out = s.bit(level != s.lastBit)
		s.lastBit = level
		// HDLC never goes more than 7 bits without a transition (six 1s
		// of a flag, then its 0): longer is no signal, and the lock is lost.
		if s.still++; s.still > 8 {
			s.good = 0
		}
	}
	if level != s.level {
		// A transition: it belongs half a bit before the sampling point,
		// where the counter passes zero. Pull the counter toward zero.
		inertia := float32(pllSearching)
		if s.good >= lockBits {
			inertia = pllLocked
		}
		if p := s.pll; p > -1<<29 && p < 1<<29 {
			s.good = min(s.good+1, lockBits)
		} else {
			s.good = max(s.good-2, 0)
		}
		s.pll = int32(float32(s.pll) * inertia)
		s.level = level
		s.still = 0
	}
	return out
}

// bit takes one NRZI-decoded bit's raw level change (true: a change, a 0 bit)
// and runs the HDLC receiver: flags, unstuffing, aborts, and a frame at each
// closing flag.
func (s *slicer) bit(change bool) []byte {
	b := byte(1)
	if change {
		b = 0
	}
	if b == 1 {
		s.ones++
		if s.ones >= 7 {
			// An abort (or the idle channel's noise): drop the frame.
			s.bits = s.bits[:0]
			s.inFrame = false
			return nil
		}
		s.bits = append(s.bits, 1)
		return nil
	}
	ones := s.ones
	s.ones = 0
	switch ones {
	case 5:
		return nil // a stuffed 0
	case 6:
		// A flag: the bits so far end with its leading 0 and six 1s.
		var out []byte
		if n := len(s.bits) - 7; s.inFrame && n >= 8*ax25.MinFrame && n%8 == 0 {
			out = s.pack(s.bits[:n])
		}
		s.bits = s.bits[:0]
		s.inFrame = true
		return out
	}
	if len(s.bits) >= maxFrameBits {
		s.bits = s.bits[:0]
		s.inFrame = false
		return nil
	}
	s.bits = append(s.bits, 0)
	return nil
}

// pack turns bits (least significant first) into the slicer's frame buffer.
func (s *slicer) pack(bits []byte) []byte {
	s.frameBuf = s.frameBuf[:0]
	for i := 0; i < len(bits); i += 8 {
		var c byte
		for j := 0; j < 8; j++ {
			c |= bits[i+j] << j
		}
		s.frameBuf = append(s.frameBuf, c)
	}
	return s.frameBuf
}

// fir is a finite impulse response filter over a circular buffer kept twice
// over, so that each output is one contiguous dot product.
type fir struct {
	taps []float32
	buf  []float32
	pos  int
}

func newFIR(taps []float32) fir {
	return fir{taps: taps, buf: make([]float32, 2*len(taps))}
}

func (f *fir) push(x float32) float32 {
	n := len(f.taps)
	f.pos--
	if f.pos < 0 {
		f.pos = n - 1
	}
	f.buf[f.pos], f.buf[f.pos+n] = x, x
	w := f.buf[f.pos : f.pos+n]
	var acc float32
	for i, t := range f.taps {
		acc += t * w[i]
	}
	return acc
}

// oddLen is n rounded to an odd number of taps, at least 3.
func oddLen(n float64) int {
	k := int(math.Round(n))
	if k < 3 {
		k = 3
	}
	return k | 1
}

// hann is the Hann window's value at tap i of n.
func hann(i, n int) float64 {
	return 0.5 - 0.5*math.Cos(2*math.Pi*float64(i+1)/float64(n+1))
}

// bandPass is a windowed-sinc band-pass filter of n taps passing lo to hi (as
// fractions of the sample rate), with unit gain at the band's centre.
func bandPass(n int, lo, hi float64) []float32 {
	taps := make([]float64, n)
	mid := float64(n-1) / 2
	sinc := func(x float64) float64 {
		if x == 0 {
			return 1
		}
		return math.Sin(math.Pi*x) / (math.Pi * x)
	}
	for i := range taps {
		t := float64(i) - mid
		taps[i] = (2*hi*sinc(2*hi*t) - 2*lo*sinc(2*lo*t)) * hann(i, n)
	}
	// Unit gain at the band's centre frequency.
	fc := (lo + hi) / 2
	var re, im float64
	for i, h := range taps {
		re += h * math.Cos(2*math.Pi*fc*float64(i))
		im += h * math.Sin(2*math.Pi*fc*float64(i))
	}
	g := math.Hypot(re, im)
	out := make([]float32, n)
	for i, h := range taps {
		out[i] = float32(h / g)
	}
	return out
}

// lowPass is a Hann-window moving average of n taps with unit DC gain: the
// tone filters' integrator over about one bit.
func lowPass(n int) []float32 {
	out := make([]float32, n)
	var sum float64
	for i := range out {
		sum += hann(i, n)
	}
	for i := range out {
		out[i] = float32(hann(i, n) / sum)
	}
	return out
}
