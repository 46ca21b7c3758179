// Package wav reads and writes 16-bit PCM WAV files (RIFF WAVE, format 1), the
// form the radio tools trade audio in on the host: Dire Wolf's gen_packets and
// atest, multimon-ng (through sox) and `skyfleet radio encode/decode`. Mono or
// stereo in; mono out. Nothing else of RIFF is needed: other chunks are skipped.
package wav

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MaxSamples bounds what Read accepts: an hour of 48 kHz audio.
const MaxSamples = 3600 * 48000

// ErrFormat wraps what makes a file unreadable here.
var ErrFormat = errors.New("wav: unsupported file")

// Write writes samples as a 16-bit mono PCM WAV file at rate samples per second.
func Write(w io.Writer, rate int, samples []int16) error {
	if rate <= 0 {
		return fmt.Errorf("%w: rate %d", ErrFormat, rate)
	}
	data := 2 * len(samples)
	h := make([]byte, 44)
	copy(h[0:], "RIFF")
	binary.LittleEndian.PutUint32(h[4:], uint32(36+data))
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)           // fmt chunk size
	binary.LittleEndian.PutUint16(h[20:], 1)            // PCM
	binary.LittleEndian.PutUint16(h[22:], 1)            // channels
	binary.LittleEndian.PutUint32(h[24:], uint32(rate)) // sample rate
	binary.LittleEndian.PutUint32(h[28:], uint32(2*rate))
	binary.LittleEndian.PutUint16(h[32:], 2)  // block align
	binary.LittleEndian.PutUint16(h[34:], 16) // bits per sample
	copy(h[36:], "data")
	binary.LittleEndian.PutUint32(h[40:], uint32(data))
	if _, err := w.Write(h); err != nil {
		return err
	}
	buf := make([]byte, 2*len(samples))
	for i, s := range samples {
		binary.LittleEndian.PutUint16(buf[2*i:], uint16(s))
	}
	_, err := w.Write(buf)
	return err
}

// Read reads a 16-bit PCM WAV file: its sample rate and the samples of its
// first channel. Errors wrap ErrFormat (not RIFF WAVE, not 16-bit PCM, no data,
// more than MaxSamples) or are the reader's.
func Read(r io.Reader) (rate int, samples []int16, err error) {
	var h [12]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	if string(h[0:4]) != "RIFF" || string(h[8:12]) != "WAVE" {
		return 0, nil, fmt.Errorf("%w: not a RIFF WAVE file", ErrFormat)
	}
	channels := 0
	for {
		var ch [8]byte
		if _, err := io.ReadFull(r, ch[:]); err != nil {
			return 0, nil, fmt.Errorf("%w: no data chunk (%v)", ErrFormat, err)
		}
		id, size := string(ch[0:4]), int64(binary.LittleEndian.Uint32(ch[4:]))
		switch id {
		case "fmt ":
			if size < 16 || size > 1024 {
				return 0, nil, fmt.Errorf("%w: fmt chunk of %d bytes", ErrFormat, size)
			}
			f := make([]byte, size+size%2)
			if _, err := io.ReadFull(r, f); err != nil {
				return 0, nil, fmt.Errorf("%w: %v", ErrFormat, err)
			}
			format := binary.LittleEndian.Uint16(f[0:])
			channels = int(binary.LittleEndian.Uint16(f[2:]))
			rate = int(binary.LittleEndian.Uint32(f[4:]))
			bits := binary.LittleEndian.Uint16(f[14:])
			// 0xFFFE is WAVE_FORMAT_EXTENSIBLE, whose PCM subformat sox writes.
			if format != 1 && format != 0xFFFE || bits != 16 || channels < 1 || channels > 8 || rate < 1000 || rate > 384000 {
				return 0, nil, fmt.Errorf("%w: format %d, %d channels, %d bits at %d Hz (want 16-bit PCM)", ErrFormat, format, channels, bits, rate)
			}
		case "data":
			if channels == 0 {
				return 0, nil, fmt.Errorf("%w: data before fmt", ErrFormat)
			}
			frame := int64(2 * channels)
			// A stream written to a pipe does not know its length and
			// says 0 or 0xFFFFFFFF: read to the end. A file cut short
			// (a recording stopped) keeps its whole frames.
			limit := (MaxSamples + 1) * frame
			if size != 0 && size != 0xFFFFFFFF {
				limit = min(size, limit)
			}
			buf, err := io.ReadAll(io.LimitReader(r, limit))
			if err != nil {
				return 0, nil, fmt.Errorf("%w: %v", ErrFormat, err)
			}
			n := int64(len(buf)) / frame
			if n > MaxSamples {
				return 0, nil, fmt.Errorf("%w: more than %d samples", ErrFormat, MaxSamples)
			}
			samples = make([]int16, n)
			for i := range samples {
				samples[i] = int16(binary.LittleEndian.Uint16(buf[int64(i)*frame:]))
			}
			return rate, samples, nil
		default:
			if _, err := io.CopyN(io.Discard, r, size+size%2); err != nil {
				return 0, nil, fmt.Errorf("%w: chunk %q: %v", ErrFormat, id, err)
			}
		}
	}
}
