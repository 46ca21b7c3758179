package transport

import (
	"encoding/binary"
	"errors"
	"io"
)

// frameHeader is the size in bytes of the TCP framing's length prefix: a 2-byte
// big-endian datagram length, so a frame carries 0 to TCPMTU (65535) bytes.
const frameHeader = 2

// appendFrame appends p as one frame (length prefix, then p) to dst and returns
// the extended slice. p must be at most TCPMTU bytes; WriteTo checks that first.
func appendFrame(dst, p []byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(p)))
	return append(dst, p...)
}

// frameReader decodes frames from a stream, the bytes of the peer at the other
// end of a connection. A frame's length is a uint16, so no frame, valid or not,
// makes it take a buffer larger than frameHeader+TCPMTU bytes.
type frameReader struct {
	r   io.Reader
	hdr [frameHeader]byte // here rather than on next's stack so it does not escape per frame
}

// next reads one frame and returns its datagram in a pooled buffer (give it back
// with putBuf) and hn, how many header bytes were read, so that the caller can
// tell a stream that ended (or idled) between frames, hn == 0, from one that broke
// inside a frame. Errors: io.EOF when the stream ends cleanly between frames,
// io.ErrUnexpectedEOF when it ends inside a frame, or the stream's own error.
func (f *frameReader) next() (*[]byte, int, error) {
	if hn, err := io.ReadFull(f.r, f.hdr[:]); err != nil {
		return nil, hn, err
	}
	n := int(binary.BigEndian.Uint16(f.hdr[:]))
	b := getBuf(n)
	*b = (*b)[:n]
	if _, err := io.ReadFull(f.r, *b); err != nil {
		putBuf(b)
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF // the header promised n bytes
		}
		return nil, frameHeader, err
	}
	return b, frameHeader, nil
}
