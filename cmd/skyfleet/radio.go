package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/skyfleet/skyfleet/drivers/audio/wav"
	"github.com/skyfleet/skyfleet/drivers/radio/afsk"
	"github.com/skyfleet/skyfleet/drivers/radio/ax25"
	"github.com/skyfleet/skyfleet/internal/durable"
)

const radioUsage = "radio encode [--rate HZ] -o FILE.wav < frames.txt | radio decode [--rate HZ] FILE.wav"

// cmdRadio is the offline radio tools: audio files in and out of the modem.
func cmdRadio(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: skyfleet " + radioUsage)
	}
	switch args[0] {
	case "encode":
		return radioEncode(args[1:], os.Stdin)
	case "decode":
		return radioDecode(args[1:], os.Stdin, stdout, os.Stderr)
	default:
		return fmt.Errorf("unknown radio command %q; usage: skyfleet %s", args[0], radioUsage)
	}
}

// maxEncodeLines bounds the frames one encode writes (each is a second or so
// of audio).
const maxEncodeLines = 10000

// radioEncode reads TNC2 lines and writes each as one AFSK 1200 transmission
// into a 16-bit mono WAV file, with silence between them.
func radioEncode(args []string, stdin io.Reader) error {
	fs := newFlags("radio encode", radioUsage,
		"echo 'N0CALL-7>APRS,WIDE1-1:!4903.50N/07201.75W-hello' | skyfleet radio encode --rate 44100 -o hello.wav\n"+
			"  atest hello.wav     # Dire Wolf decodes it")
	rate := fs.Int("rate", 44100, "sample rate in `Hz`: 22050, 44100 or 48000 (any from 8000 works)")
	out := fs.String("o", "", "the WAV `file` to write (replaced atomically)")
	txdelay := fs.Duration("txdelay", 300*time.Millisecond, "flags before each frame, as `time` (the receiver's squelch and clock)")
	gap := fs.Duration("gap", 500*time.Millisecond, "silence between two transmissions")
	amp := fs.Float64("amplitude", 0.5, "tone peak as a `fraction` of full scale")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() != 0 {
		fs.Usage()
		return errors.New("-o FILE.wav is required; the frames come on standard input, one TNC2 line each")
	}
	if *amp <= 0 || *amp > 1 {
		return fmt.Errorf("--amplitude %g: give a fraction above 0 and at most 1", *amp)
	}
	m := &afsk.Modulator{Rate: *rate, Amplitude: *amp, TXDelay: *txdelay}
	silence := make([]int16, int(gap.Seconds()*float64(*rate)))
	var audio []int16
	n := 0
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		if n++; n > maxEncodeLines {
			return fmt.Errorf("more than %d frames: split the input", maxEncodeLines)
		}
		f, err := ax25.ParseTNC2(text)
		if err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		frame, err := f.Encode()
		if err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		tx, err := m.Transmission([][]byte{frame})
		if err != nil {
			return err
		}
		audio = append(append(audio, tx...), silence...)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading the frames: %w", err)
	}
	if n == 0 {
		return errors.New("no frames on standard input (one TNC2 line each, e.g. N0CALL>APRS:hello)")
	}
	var buf bytes.Buffer
	if err := wav.Write(&buf, *rate, audio); err != nil {
		return err
	}
	if err := durable.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%d frames, %.1f s of audio at %d Hz in %s\n", n, float64(len(audio))/float64(*rate), *rate, *out)
	return nil
}

// radioDecode prints every frame the modem finds in an audio file, one TNC2
// line each, and a count on stderr.
func radioDecode(args []string, stdin io.Reader, out, errOut io.Writer) error {
	fs := newFlags("radio decode", "radio decode [--rate HZ] FILE.wav|FILE.raw|-",
		"skyfleet radio decode recording.wav\n"+
			"  sox recording.flac -t raw -r 22050 -e signed -b 16 -c 1 - | skyfleet radio decode --rate 22050 -")
	rate := fs.Int("rate", 0, "the sample rate in `Hz` of raw 16-bit mono little-endian input (a file that is not WAV); a WAV file says its own")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("name one audio file, or - for standard input")
	}
	var in io.Reader = stdin
	if name := fs.Arg(0); name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	src, err := openAudio(bufio.NewReaderSize(in, 64<<10), *rate)
	if err != nil {
		return err
	}
	// Frames are printed as they are found: a live recording piped in
	// (arecord | skyfleet radio decode --rate 48000 -) shows them at once.
	w := bufio.NewWriter(out)
	n, bad := 0, 0
	d, err := afsk.NewDemodulator(src.Rate, func(b []byte) {
		f, err := ax25.Decode(b)
		if err != nil {
			// The FCS checked but the frame is not one this reads
			// (not UI, a malformed address): counted, not printed.
			bad++
			return
		}
		n++
		fmt.Fprintln(w, f.TNC2())
		w.Flush()
	})
	if err != nil {
		return err
	}
	start := time.Now()
	var total int64
	buf := make([]int16, 16384)
	for {
		k, err := src.Read(buf)
		d.Write(buf[:k])
		total += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the audio after %.1f s of it: %w", float64(total)/float64(src.Rate), err)
		}
	}
	w.Flush()
	secs := float64(total) / float64(src.Rate)
	fmt.Fprintf(errOut, "%d frames decoded from %.1f s of audio at %d Hz (%.0fx real time); %d other frames with a good FCS skipped\n",
		n, secs, src.Rate, secs/max(time.Since(start).Seconds(), 1e-9), bad)
	return nil
}

// openAudio opens a WAV stream, or raw 16-bit little-endian mono PCM at rate
// when rate is set and the input is not RIFF. Either is read as it arrives, in
// constant memory, however long it is.
func openAudio(in *bufio.Reader, rate int) (*wav.Reader, error) {
	head, _ := in.Peek(4)
	if string(head) == "RIFF" {
		w, err := wav.NewReader(in)
		if err != nil {
			return nil, err
		}
		if rate != 0 && rate != w.Rate {
			return nil, fmt.Errorf("the WAV file is at %d Hz, not the --rate %d", w.Rate, rate)
		}
		return w, nil
	}
	if rate == 0 {
		return nil, errors.New("the input is not a WAV file: give --rate for raw 16-bit mono PCM")
	}
	if rate < 8000 || rate > 384000 {
		return nil, fmt.Errorf("--rate %d: give the raw audio's sample rate, 8000-384000 Hz", rate)
	}
	return wav.NewRawReader(in, rate), nil
}
