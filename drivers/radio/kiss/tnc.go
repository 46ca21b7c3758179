package kiss

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/tarm/serial"
	"golang.org/x/sys/unix"
)

// DefaultTCPPort is Dire Wolf's KISS TCP port.
const DefaultTCPPort = 8001

// TNC is a KISS TNC on a byte stream: a serial port (a hardware TNC, or Dire
// Wolf's pseudo-terminal) or a TCP connection (Dire Wolf's KISS port). Send and
// SetParams may be called from several goroutines; Receive from one.
type TNC struct {
	rw  io.ReadWriteCloser
	dec *Decoder
	mu  sync.Mutex // one frame written at a time
	buf []byte
}

// New runs KISS over rw.
func New(rw io.ReadWriteCloser) *TNC {
	return &TNC{rw: rw, dec: NewDecoder(rw, 0)}
}

// DialTCP connects to a KISS TCP server at addr (host:port, e.g. Dire Wolf's
// 127.0.0.1:8001).
func DialTCP(ctx context.Context, addr string) (*TNC, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("kiss: %w", err)
	}
	return New(c), nil
}

// OpenSerial opens a serial TNC at dev (e.g. /dev/ttyUSB0, or the pty Dire
// Wolf's -p makes) at baud bits per second, 8N1 (github.com/tarm/serial).
//
// tarm/serial sets the line up (raw mode, the speed) but then clears
// O_NONBLOCK behind the Go runtime's back, so a Read on its descriptor blocks
// in the kernel where Close cannot reach it: closing a TNC on a quiet channel
// would wait for the next byte, forever on a pty whose other side is gone. So
// the port tarm configured is kept open only to hold its settings, and the
// bytes go through a second descriptor of the same device that stays
// non-blocking, whose reads Close ends at once.
func OpenSerial(dev string, baud int) (*TNC, error) {
	p, err := serial.OpenPort(&serial.Config{Name: dev, Baud: baud})
	if err != nil {
		return nil, fmt.Errorf("kiss: serial %s at %d baud: %w", dev, baud, err)
	}
	f, err := os.OpenFile(dev, os.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("kiss: serial %s: %w", dev, err)
	}
	return New(&serialIO{File: f, port: p}), nil
}

// serialIO is a serial device's non-blocking descriptor, and tarm's port that
// configured the line.
type serialIO struct {
	*os.File
	port io.Closer
}

func (s *serialIO) Close() error { return errors.Join(s.File.Close(), s.port.Close()) }

// Send queues an AX.25 frame (destination address to info, no FCS) for
// transmission on port.
func (t *TNC) Send(port uint8, ax25 []byte) error {
	return t.write(Frame{Port: port, Command: CmdData, Data: ax25})
}

// Params are a port's channel-access parameters (KISS §5). Durations are
// rounded down to the TNC's 10 ms units and capped at 2.55 s.
type Params struct {
	// TXDelay is the time from keying the transmitter to the first data.
	TXDelay time.Duration
	// Persistence is p of p-persistent CSMA, 0 to 1: the chance to send in
	// each slot the channel is clear.
	Persistence float64
	// SlotTime is the wait between channel checks.
	SlotTime time.Duration
	// TXTail is how long the transmitter stays keyed after the frame.
	TXTail time.Duration
	// FullDuplex sends without waiting for a clear channel.
	FullDuplex bool
}

// tenMS is d in 10 ms units, 0 to 255.
func tenMS(d time.Duration) byte {
	n := d / (10 * time.Millisecond)
	return byte(max(0, min(n, 255)))
}

// persistence is KISS's P byte for probability p: p = (P+1)/256.
func persistence(p float64) byte {
	n := int(p*256) - 1
	return byte(max(0, min(n, 255)))
}

// SetParams sends p's five parameters to port, one command each.
func (t *TNC) SetParams(port uint8, p Params) error {
	fd := byte(0)
	if p.FullDuplex {
		fd = 1
	}
	for _, f := range []Frame{
		{Port: port, Command: CmdTXDelay, Data: []byte{tenMS(p.TXDelay)}},
		{Port: port, Command: CmdP, Data: []byte{persistence(p.Persistence)}},
		{Port: port, Command: CmdSlotTime, Data: []byte{tenMS(p.SlotTime)}},
		{Port: port, Command: CmdTXTail, Data: []byte{tenMS(p.TXTail)}},
		{Port: port, Command: CmdFullDuplex, Data: []byte{fd}},
	} {
		if err := t.write(f); err != nil {
			return err
		}
	}
	return nil
}

func (t *TNC) write(f Frame) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	b, err := Append(t.buf[:0], f)
	if err != nil {
		return err
	}
	t.buf = b
	if _, err := t.rw.Write(b); err != nil {
		return fmt.Errorf("kiss: %w", err)
	}
	return nil
}

// Receive returns the next data frame from the TNC: its port and the AX.25
// frame (no FCS; valid until the next call). Frames of other commands are
// skipped. Errors: the stream's (io.EOF when the TNC closed it).
func (t *TNC) Receive() (port uint8, ax25 []byte, err error) {
	for {
		f, err := t.dec.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return 0, nil, io.EOF
			}
			return 0, nil, fmt.Errorf("kiss: %w", err)
		}
		if f.Command == CmdData {
			return f.Port, f.Data, nil
		}
	}
}

// Stats returns what the TNC's stream decoder counted.
func (t *TNC) Stats() Stats { return t.dec.Stats() }

// Close closes the stream.
func (t *TNC) Close() error { return t.rw.Close() }
