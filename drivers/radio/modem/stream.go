package modem

import (
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"time"
)

// Stream is an Audio device made of two byte streams of raw 16-bit
// little-endian mono PCM: captured samples are read from In as they arrive,
// and the line out is written to Out in real time at the sample rate, silence
// when nothing plays, as a sound card's would be. Two nodes joined by a pair of
// pipes or FIFOs (one's Out the other's In) then hear each other as over the
// air, carrier sense included, with no sound card; `sox`/`aplay` can take the
// other end on a host.
type Stream struct {
	in   io.Reader
	out  io.Writer
	rate int

	mu      sync.Mutex
	pending []int16       // samples queued by Write, not yet played
	played  chan struct{} // closed when pending has been played out
	closed  bool
	done    chan struct{}
	wg      sync.WaitGroup
	werr    error

	// The capture side, Read's alone.
	rbuf     []byte
	held     bool
	heldByte byte
}

// tick is how much audio the line out writes at once.
const tick = 20 * time.Millisecond

// NewStream starts the line out of a stream device at rate samples per second.
// in may be nil (a device that only plays), out too (one that only listens).
func NewStream(rate int, in io.Reader, out io.Writer) *Stream {
	s := &Stream{in: in, out: out, rate: rate, done: make(chan struct{})}
	if out != nil {
		s.wg.Add(1)
		go s.play()
	}
	return s
}

// play writes the line out: queued samples, else silence, paced by the clock.
func (s *Stream) play() {
	defer s.wg.Done()
	start := time.Now()
	var written int64
	t := time.NewTicker(tick)
	defer t.Stop()
	var buf []byte
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		due := int64(time.Since(start).Seconds()*float64(s.rate)) - written
		if due <= 0 {
			continue
		}
		// After Out blocked (the other end stopped reading), do not
		// make up the missed time in one burst of silence: skip it.
		if limit := int64(s.rate) / 10; due > limit {
			written += due - limit
			due = limit
		}
		buf = buf[:0]
		s.mu.Lock()
		n := min(int64(len(s.pending)), due)
		for _, v := range s.pending[:n] {
			buf = binary.LittleEndian.AppendUint16(buf, uint16(v))
		}
		s.pending = s.pending[n:]
		var played chan struct{}
		if len(s.pending) == 0 && s.played != nil {
			played, s.played = s.played, nil
		}
		s.mu.Unlock()
		for i := n; i < due; i++ {
			buf = append(buf, 0, 0)
		}
		written += due
		_, err := s.out.Write(buf)
		// The last of a Write's samples are out only now: its caller may
		// unkey the transmitter.
		if played != nil {
			close(played)
		}
		if err != nil {
			s.mu.Lock()
			s.werr = err
			if s.played != nil {
				close(s.played)
				s.played = nil
			}
			s.mu.Unlock()
			return
		}
	}
}

// Read returns captured samples from In. A trailing odd byte is held for the
// next call. Errors: In's (io.EOF when the other end closed), or
// io.ErrClosedPipe after Close.
func (s *Stream) Read(p []int16) (int, error) {
	if s.in == nil {
		<-s.done
		return 0, io.ErrClosedPipe
	}
	if len(p) == 0 {
		return 0, nil
	}
	if cap(s.rbuf) < 2*len(p) {
		s.rbuf = make([]byte, 2*len(p))
	}
	buf := s.rbuf[:2*len(p)]
	start := 0
	if s.held {
		buf[0], start = s.heldByte, 1
	}
	n, err := s.in.Read(buf[start:])
	n += start
	if s.held = n%2 == 1; s.held {
		s.heldByte = buf[n-1]
	}
	k := n / 2
	for i := range k {
		p[i] = int16(binary.LittleEndian.Uint16(buf[2*i:]))
	}
	select {
	case <-s.done:
		return k, io.ErrClosedPipe
	default:
	}
	return k, err
}

// Write queues p on the line out and returns once it has been played.
// Errors: Out's, or io.ErrClosedPipe after Close.
func (s *Stream) Write(p []int16) error {
	if s.out == nil {
		return errors.New("modem: this stream device has no line out")
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return io.ErrClosedPipe
	}
	if s.werr != nil {
		err := s.werr
		s.mu.Unlock()
		return err
	}
	s.pending = append(s.pending, p...)
	if s.played == nil {
		s.played = make(chan struct{})
	}
	played := s.played
	s.mu.Unlock()
	select {
	case <-played:
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.werr
	case <-s.done:
		return io.ErrClosedPipe
	}
}

// Close stops the line out and closes In and Out when they are closers.
func (s *Stream) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	s.mu.Unlock()
	var errs []error
	if c, ok := s.in.(io.Closer); ok {
		errs = append(errs, c.Close())
	}
	if c, ok := s.out.(io.Closer); ok {
		errs = append(errs, c.Close())
	}
	s.wg.Wait()
	return errors.Join(errs...)
}
