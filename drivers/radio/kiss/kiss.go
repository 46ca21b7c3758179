// Package kiss speaks KISS, the framing between a host and a TNC (M. Chepponis
// and P. Karn, "The KISS TNC: A simple Host-to-TNC communications protocol",
// 1987): each frame is FEND, a type byte (the TNC port in the high nibble, the
// command in the low one), the data with FEND and FESC escaped, and FEND. Data
// frames carry AX.25 frames without flags or FCS (the TNC adds and checks
// them); the other commands set the TNC's channel-access parameters. It knows
// framing and transports (a serial port, Dire Wolf's TCP port), never policy.
package kiss

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
)

// Special bytes (KISS §4).
const (
	FEND  = 0xC0 // frame end
	FESC  = 0xDB // frame escape
	TFEND = 0xDC // transposed FEND, after FESC
	TFESC = 0xDD // transposed FESC, after FESC
)

// Commands, the type byte's low nibble (KISS §5).
const (
	CmdData        = 0x0 // the rest is an AX.25 frame
	CmdTXDelay     = 0x1 // keyup delay, in 10 ms units
	CmdP           = 0x2 // persistence p, 0-255 for p = (P+1)/256
	CmdSlotTime    = 0x3 // slot interval, in 10 ms units
	CmdTXTail      = 0x4 // time to hold after the frame, in 10 ms units (obsolete)
	CmdFullDuplex  = 0x5 // 0 half duplex, non-zero full
	CmdSetHardware = 0x6 // TNC-specific
	// CmdReturn is the whole type byte 0xFF (no port): leave KISS mode.
	CmdReturn = 0xFF
)

// MaxPort is the highest port number the type byte can name.
const MaxPort = 15

// DefaultMaxFrame is the longest frame data a Decoder accepts, in bytes after
// unescaping: an AX.25 frame of 2048 info bytes and ten addresses fits.
const DefaultMaxFrame = 2200

// Frame is one KISS frame.
type Frame struct {
	// Port is the TNC's radio port, 0 to MaxPort (0 for CmdReturn).
	Port uint8
	// Command is one of the Cmd constants.
	Command uint8
	// Data is the AX.25 frame of a CmdData frame, or the parameter bytes.
	Data []byte
}

// ErrFrame wraps what is wrong with a frame Append cannot write.
var ErrFrame = errors.New("kiss: bad frame")

// Append appends f, framed and escaped, to b. Errors: a port above MaxPort or
// a command above 0x0F other than CmdReturn (wrapping ErrFrame).
func Append(b []byte, f Frame) ([]byte, error) {
	var typ byte
	switch {
	case f.Command == CmdReturn:
		typ = CmdReturn
	case f.Port > MaxPort || f.Command > 0x0F:
		return b, fmt.Errorf("%w: port %d, command 0x%02x", ErrFrame, f.Port, f.Command)
	default:
		typ = f.Port<<4 | f.Command
	}
	b = append(b, FEND)
	b = appendEscaped(b, typ)
	for _, c := range f.Data {
		b = appendEscaped(b, c)
	}
	return append(b, FEND), nil
}

func appendEscaped(b []byte, c byte) []byte {
	switch c {
	case FEND:
		return append(b, FESC, TFEND)
	case FESC:
		return append(b, FESC, TFESC)
	}
	return append(b, c)
}

// Stats counts what a Decoder dropped: frames with an escape that is not
// FESC TFEND or FESC TFESC, and frames longer than its limit.
type Stats struct {
	Frames     uint64 `json:"frames"`
	BadEscapes uint64 `json:"bad_escapes"`
	Oversize   uint64 `json:"oversize"`
}

// Decoder reads frames from a byte stream. Bytes before the first FEND, empty
// frames (FEND FEND, which TNCs send to sync) and damaged frames are skipped,
// the damaged ones counted. It is not safe for concurrent use; Stats is.
type Decoder struct {
	r   *bufio.Reader
	max int
	buf []byte
	// open is set when the last FEND read may open a frame: a FEND ends
	// one frame and starts the next, so "FEND a FEND b FEND" is two frames.
	open bool

	frames, badEscapes, oversize atomic.Uint64
}

// NewDecoder reads frames of at most max data bytes from r (max <= 0:
// DefaultMaxFrame).
func NewDecoder(r io.Reader, max int) *Decoder {
	if max <= 0 {
		max = DefaultMaxFrame
	}
	return &Decoder{r: bufio.NewReaderSize(r, 4096), max: max}
}

// Stats returns the counts so far.
func (d *Decoder) Stats() Stats {
	return Stats{Frames: d.frames.Load(), BadEscapes: d.badEscapes.Load(), Oversize: d.oversize.Load()}
}

// Next returns the next whole frame. Its Data is valid until the next call.
// Errors are the stream's (io.EOF at its end; a frame cut off by the end is
// dropped).
func (d *Decoder) Next() (Frame, error) {
	for {
		d.buf = d.buf[:0]
		bad, long := false, false
		if !d.open {
			// Skip to a FEND: bytes before the first frame are line
			// noise or a TNC's banner.
			for {
				_, err := d.r.ReadSlice(FEND)
				if err == nil {
					break
				}
				if err != bufio.ErrBufferFull {
					return Frame{}, err
				}
			}
		}
		d.open = false
		for {
			c, err := d.r.ReadByte()
			if err != nil {
				return Frame{}, err
			}
			if c == FEND {
				break
			}
			if c == FESC {
				n, err := d.r.ReadByte()
				if err != nil {
					return Frame{}, err
				}
				switch n {
				case TFEND:
					c = FEND
				case TFESC:
					c = FESC
				case FEND:
					// FESC FEND: a broken escape that also ends the frame.
					bad = true
					goto end
				default:
					bad = true
					continue
				}
			}
			if len(d.buf) >= d.max+1 {
				long = true
				continue
			}
			d.buf = append(d.buf, c)
		}
	end:
		// This FEND also opens the next frame.
		d.open = true
		switch {
		case bad:
			d.badEscapes.Add(1)
			continue
		case long:
			d.oversize.Add(1)
			continue
		case len(d.buf) == 0:
			continue // FEND FEND
		}
		d.frames.Add(1)
		typ := d.buf[0]
		if typ == CmdReturn {
			return Frame{Command: CmdReturn, Data: d.buf[1:]}, nil
		}
		return Frame{Port: typ >> 4, Command: typ & 0x0F, Data: d.buf[1:]}, nil
	}
}
