package afsk

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/drivers/radio/ax25"
)

// testFrames are n AX.25 frames with random info (every byte value, so
// stuffing, flags and FEND-like bytes all occur).
func testFrames(t testing.TB, n int, rng *rand.Rand) [][]byte {
	var out [][]byte
	for i := range n {
		info := make([]byte, rng.IntN(256))
		for j := range info {
			info[j] = byte(rng.Uint32())
		}
		f := ax25.NewUI(ax25.Address{Call: "APZSKY"}, ax25.Address{Call: "KB1ABC", SSID: uint8(i % 16)}, []ax25.Address{{Call: "WIDE1", SSID: 1}}, info)
		b, err := f.Encode()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// The modulator's audio demodulates to the same frames at every rate: one
// frame per transmission, and several back to back in one.
func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, rate := range []int{22050, 44100, 48000} {
		frames := testFrames(t, 20, rng)
		m := &Modulator{Rate: rate}
		var audio []int16
		for _, f := range frames[:10] {
			tx, _ := m.Transmission([][]byte{f})
			audio = append(append(audio, tx...), make([]int16, rate/4)...)
		}
		tx, _ := m.Transmission(frames[10:])
		audio = append(audio, tx...)
		var got [][]byte
		d, err := NewDemodulator(rate, func(b []byte) { got = append(got, bytes.Clone(b)) })
		if err != nil {
			t.Fatal(err)
		}
		d.Write(audio)
		if len(got) != len(frames) {
			t.Fatalf("%d Hz: %d of %d frames", rate, len(got), len(frames))
		}
		for i := range frames {
			if !bytes.Equal(got[i], frames[i]) {
				t.Errorf("%d Hz, frame %d differs", rate, i)
			}
		}
		if st := d.Stats(); st.Frames != uint64(len(frames)) {
			t.Errorf("%d Hz: stats %+v", rate, st)
		}
	}
	if _, err := NewDemodulator(4000, nil); err == nil {
		t.Error("a 4 kHz demodulator was made")
	}
}

// Frames still decode with the space tone 9 dB below the mark (a radio's
// de-emphasis) or above it, and with white noise 10 dB below the signal.
func TestTwistAndNoise(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	frames := testFrames(t, 10, rng)
	for _, c := range []struct {
		name        string
		space, mark float64
		noise       float64
	}{
		{"space 9 dB down", math.Pow(10, -9.0/20), 1, 0},
		{"mark 9 dB down", 1, math.Pow(10, -9.0/20), 0},
		{"noise 10 dB down", 1, 1, math.Pow(10, -10.0/20)},
	} {
		rate := 44100
		var audio []int16
		for _, f := range frames {
			audio = append(append(audio, twisted(rate, f, c.mark, c.space, c.noise, rng)...), make([]int16, rate/4)...)
		}
		n := 0
		d, _ := NewDemodulator(rate, func([]byte) { n++ })
		d.Write(audio)
		if n != len(frames) {
			t.Errorf("%s: %d of %d frames", c.name, n, len(frames))
		}
	}
}

// twisted is one transmission of frame with each tone at its own amplitude
// (fractions of 0.4 full scale) and Gaussian noise of the given RMS fraction
// of the signal's.
func twisted(rate int, frame []byte, mark, space, noise float64, rng *rand.Rand) []int16 {
	var bits []byte
	bits = appendFlags(bits, 20)
	bits = appendStuffed(bits, frame)
	bits = appendFlags(bits, 3)
	var out []int16
	isMark, phase := true, 0.0
	for i, b := range bits {
		if b == 0 {
			isMark = !isMark
		}
		f, a := Space, space
		if isMark {
			f, a = Mark, mark
		}
		for n := len(out); n < (i+1)*rate/Baud; n++ {
			v := 0.4*a*math.Sin(2*math.Pi*phase) + noise*0.4/math.Sqrt2*rng.NormFloat64()
			out = append(out, int16(max(-1, min(1, v))*32767))
			phase += f / float64(rate)
		}
	}
	return out
}

// FuzzDemodulator: any audio demodulates without a panic, and every frame
// passed on has a good FCS.
func FuzzDemodulator(f *testing.F) {
	m := &Modulator{Rate: 22050, TXDelay: 20e6}
	tx, _ := m.Transmission(testFrames(f, 1, rand.New(rand.NewPCG(5, 6))))
	seed := make([]byte, 2*len(tx))
	for i, s := range tx {
		seed[2*i], seed[2*i+1] = byte(s), byte(uint16(s)>>8)
	}
	f.Add(seed)
	f.Add([]byte{0x00, 0x80, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, b []byte) {
		s := make([]int16, len(b)/2)
		for i := range s {
			s[i] = int16(uint16(b[2*i]) | uint16(b[2*i+1])<<8)
		}
		d, _ := NewDemodulator(22050, func(fr []byte) {
			if len(fr) < ax25.MinFrame || ax25.FCS(fr[:len(fr)-2]) != uint16(fr[len(fr)-2])|uint16(fr[len(fr)-1])<<8 {
				t.Fatalf("a frame with a bad FCS passed: %x", fr)
			}
		})
		d.Write(s)
	})
}

// BenchmarkDemodulate reports the demodulator's speed in multiples of real
// time on one core at each rate (x-realtime), and the ratio to the
// modulator's, measured here on the same audio as a baseline.
func BenchmarkDemodulate(b *testing.B) {
	for _, rate := range []int{22050, 44100, 48000} {
		b.Run(fmt.Sprint(rate), func(b *testing.B) {
			frames := testFrames(b, 10, rand.New(rand.NewPCG(7, 8)))
			m := &Modulator{Rate: rate}
			audio, _ := m.Transmission(frames)
			secs := float64(len(audio)) / float64(rate)
			// Baseline: the modulator making the same audio.
			var modNS float64
			for range 3 {
				t := time.Now()
				m.Transmission(frames)
				modNS += float64(time.Since(t))
			}
			modNS /= 3
			b.ResetTimer()
			for range b.N {
				d, _ := NewDemodulator(rate, func([]byte) {})
				d.Write(audio)
			}
			perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			b.ReportMetric(secs*1e9/perOp, "x-realtime")
			b.ReportMetric(perOp/modNS, "x-modulator")
		})
	}
}

// Carrier detect: on through a transmission (from a few bits into its TXDELAY
// to its end), off in silence and almost always off in white noise, so that
// carrier sense neither keys over a station nor waits on static.
func TestCarrier(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const rate = 22050
	d, err := NewDemodulator(rate, func([]byte) {})
	if err != nil {
		t.Fatal(err)
	}
	feed := func(audio []int16) (on int) {
		for _, s := range audio {
			d.Write([]int16{s})
			if d.Carrier() {
				on++
			}
		}
		return on
	}
	if on := feed(make([]int16, rate)); on != 0 {
		t.Fatalf("carrier in %d samples of silence", on)
	}
	noise := make([]int16, 10*rate)
	for i := range noise {
		noise[i] = int16(rng.NormFloat64() * 8000)
	}
	if on := feed(noise); on > len(noise)/100 {
		t.Fatalf("carrier in %.1f%% of white noise", 100*float64(on)/float64(len(noise)))
	}
	m := &Modulator{Rate: rate, TXDelay: 300 * time.Millisecond}
	tx, _ := m.Transmission(testFrames(t, 3, rng))
	// From 100 ms into the preamble (enough transitions to lock) to the end.
	lead := rate / 10
	feed(tx[:lead])
	if on := feed(tx[lead:]); on < len(tx[lead:])*98/100 {
		t.Fatalf("carrier in only %d of %d samples of the transmission", on, len(tx)-lead)
	}
	before := d.Stats().CarrierSamples
	if on := feed(make([]int16, rate)); on > rate/20 {
		t.Fatalf("carrier lingered %d samples into the silence after", on)
	}
	if after := d.Stats().CarrierSamples; after-before > uint64(rate/20) {
		t.Fatalf("busy time counted %d samples of silence", after-before)
	}
}
