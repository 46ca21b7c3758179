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

// Reader reads the samples of a 16-bit PCM WAV stream as they arrive, in
// constant memory, so that hours of a recording, or a live one piped in from a
// sound card, decode without being held whole.
type Reader struct {
	// Rate is the stream's sample rate in Hz; Channels its channels (1-8), of
	// which Read returns the first.
	Rate, Channels int

	r    io.Reader
	left int64 // bytes of the data chunk not yet read; -1: to the end of r
	buf  []byte
	part int // bytes of an incomplete frame at the start of buf
}

// NewReader reads the header of a 16-bit PCM WAV stream up to the start of its
// samples, skipping chunks other than "fmt " and "data". Errors wrap ErrFormat
// (not RIFF WAVE, not 16-bit PCM, a malformed chunk, no data chunk).
func NewReader(r io.Reader) (*Reader, error) {
	var h [12]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	if string(h[0:4]) != "RIFF" || string(h[8:12]) != "WAVE" {
		return nil, fmt.Errorf("%w: not a RIFF WAVE file", ErrFormat)
	}
	w := &Reader{r: r}
	for {
		var ch [8]byte
		if _, err := io.ReadFull(r, ch[:]); err != nil {
			return nil, fmt.Errorf("%w: no data chunk (%v)", ErrFormat, err)
		}
		id, size := string(ch[0:4]), int64(binary.LittleEndian.Uint32(ch[4:]))
		switch id {
		case "fmt ":
			if size < 16 || size > 1024 {
				return nil, fmt.Errorf("%w: fmt chunk of %d bytes", ErrFormat, size)
			}
			f := make([]byte, size+size%2)
			if _, err := io.ReadFull(r, f); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrFormat, err)
			}
			format := binary.LittleEndian.Uint16(f[0:])
			channels := int(binary.LittleEndian.Uint16(f[2:]))
			rate := int(binary.LittleEndian.Uint32(f[4:]))
			bits := binary.LittleEndian.Uint16(f[14:])
			// 0xFFFE is WAVE_FORMAT_EXTENSIBLE, whose PCM subformat sox writes.
			if format != 1 && format != 0xFFFE || bits != 16 || channels < 1 || channels > 8 || rate < 1000 || rate > 384000 {
				return nil, fmt.Errorf("%w: format %d, %d channels, %d bits at %d Hz (want 16-bit PCM)", ErrFormat, format, channels, bits, rate)
			}
			w.Rate, w.Channels = rate, channels
		case "data":
			if w.Channels == 0 {
				return nil, fmt.Errorf("%w: data before fmt", ErrFormat)
			}
			// A stream written to a pipe does not know its length and
			// says 0 or 0xFFFFFFFF: read to the end.
			w.left = size
			if size == 0 || size == 0xFFFFFFFF {
				w.left = -1
			}
			return w, nil
		default:
			if _, err := io.CopyN(io.Discard, r, size+size%2); err != nil {
				return nil, fmt.Errorf("%w: chunk %q: %v", ErrFormat, id, err)
			}
		}
	}
}

// NewRawReader reads headerless 16-bit little-endian mono PCM at rate Hz (what
// `sox -t raw -e signed -b 16 -c 1` and `arecord -t raw -f S16_LE` write) with
// the same Read as a WAV stream, to the end of r.
func NewRawReader(r io.Reader, rate int) *Reader {
	return &Reader{Rate: rate, Channels: 1, r: r, left: -1}
}

// readChunk is how many bytes Read asks its reader for at most at once.
const readChunk = 32 << 10

// Read reads up to len(p) samples of the first channel into p and returns how
// many it read. At the end of the data it returns io.EOF; a stream cut short (a
// recording stopped) ends cleanly after its last whole frame. Other errors are
// the underlying reader's.
func (w *Reader) Read(p []int16) (int, error) {
	frame := 2 * w.Channels
	if len(p) == 0 {
		return 0, nil
	}
	if w.buf == nil {
		w.buf = make([]byte, readChunk-readChunk%frame+frame)
	}
	want := min(len(p)*frame, len(w.buf)-frame) // room for a partial frame kept
	if w.left >= 0 && int64(want) > w.left {
		want = int(w.left)
	}
	if want == 0 && w.part == 0 {
		return 0, io.EOF
	}
	n, err := w.r.Read(w.buf[w.part : w.part+want])
	if w.left >= 0 {
		w.left -= int64(n)
	}
	have := w.part + n
	whole := have / frame
	for i := range whole {
		p[i] = int16(binary.LittleEndian.Uint16(w.buf[i*frame:]))
	}
	w.part = copy(w.buf, w.buf[whole*frame:have])
	if err == io.EOF || w.left == 0 {
		w.part = 0 // a trailing partial frame is dropped
		if whole == 0 {
			return 0, io.EOF
		}
		if err == io.EOF {
			err = nil // reported by the next call
			if w.left > 0 {
				w.left = 0
			}
		}
	}
	return whole, err
}

// Read reads a whole 16-bit PCM WAV file: its sample rate and the samples of its
// first channel. Errors wrap ErrFormat (not RIFF WAVE, not 16-bit PCM, no data,
// more than MaxSamples) or are the reader's. For long or live audio use NewReader.
func Read(r io.Reader) (rate int, samples []int16, err error) {
	w, err := NewReader(r)
	if err != nil {
		return 0, nil, err
	}
	buf := make([]int16, 8192)
	for {
		n, err := w.Read(buf)
		samples = append(samples, buf[:n]...)
		if len(samples) > MaxSamples {
			return 0, nil, fmt.Errorf("%w: more than %d samples", ErrFormat, MaxSamples)
		}
		if err == io.EOF {
			return w.Rate, samples, nil
		}
		if err != nil {
			return 0, nil, fmt.Errorf("%w: %v", ErrFormat, err)
		}
	}
}
