package stream

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
)

// Segment format constants; the layout is described in the package doc.
const (
	segVersion = 1

	flagSYN  = 0x01 // open; from the dialer without ACK, from the acceptor with ACK
	flagACK  = 0x02 // an ack section follows the header
	flagDATA = 0x04 // a data section follows the ack section
	flagFIN  = 0x08 // the data section ends the sender's byte stream (needs DATA)
	flagRST  = 0x10 // abort the stream
	flagPING = 0x20 // ack-eliciting probe without data
	flagMask = 0x3f

	headerLen   = 22 // version, flags, conn ID, packet number, max data
	crcLen      = 4
	ackFixedLen = 8 + 4 + 8 + 1 + 1 // largest, delay, cum, ack flags, range count
	dataHdrLen  = 8 + 2             // offset, length
	// minSegment is the smallest valid segment (header and checksum).
	minSegment = headerLen + crcLen
	// maxRangesWire is the most ack ranges one section can carry.
	maxRangesWire = 255
	// maxOffset bounds byte offsets so that offset+length never overflows.
	maxOffset = 1 << 62
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var errBadSegment = errors.New("stream: malformed segment")

// pnRange is an inclusive range of packet numbers.
type pnRange struct{ lo, hi uint64 }

// ackSection acknowledges packets by number and data by cumulative offset.
type ackSection struct {
	largest uint64    // largest packet number received
	delay   uint32    // microseconds between receiving largest and sending this
	cum     uint64    // every byte below this offset has been received
	fin     bool      // the FIN was received and every byte up to it
	ranges  []pnRange // descending, disjoint, not adjacent; ranges[0].hi == largest
}

// segment is one decoded datagram of the stream protocol.
type segment struct {
	flags   byte
	conn    uint32
	pn      uint64
	maxData uint64
	ack     ackSection
	off     uint64
	data    []byte // aliases the decoded buffer
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// uvarint reads a minimally encoded uvarint; n <= 0 on error.
func uvarint(p []byte) (uint64, int) {
	v, n := binary.Uvarint(p)
	if n > 0 && n != uvarintLen(v) {
		return 0, -1
	}
	return v, n
}

// size is the encoded size of an ack section.
func (a *ackSection) size() int {
	n := ackFixedLen
	if len(a.ranges) == 0 {
		return n + 1
	}
	n += uvarintLen(a.ranges[0].hi - a.ranges[0].lo)
	for i := 1; i < len(a.ranges); i++ {
		n += uvarintLen(a.ranges[i-1].lo-a.ranges[i].hi-2) + uvarintLen(a.ranges[i].hi-a.ranges[i].lo)
	}
	return n
}

// size is the encoded size of s.
func (s *segment) size() int {
	n := headerLen + crcLen
	if s.flags&flagACK != 0 {
		n += s.ack.size()
	}
	if s.flags&flagDATA != 0 {
		n += dataHdrLen + len(s.data)
	}
	return n
}

// encode appends the wire form of s to b. The ack ranges must be well formed
// (as built by the Conn); encode does not check them.
func (s *segment) encode(b []byte) []byte {
	start := len(b)
	b = append(b, segVersion, s.flags)
	b = binary.BigEndian.AppendUint32(b, s.conn)
	b = binary.BigEndian.AppendUint64(b, s.pn)
	b = binary.BigEndian.AppendUint64(b, s.maxData)
	if s.flags&flagACK != 0 {
		a := &s.ack
		b = binary.BigEndian.AppendUint64(b, a.largest)
		b = binary.BigEndian.AppendUint32(b, a.delay)
		b = binary.BigEndian.AppendUint64(b, a.cum)
		var af byte
		if a.fin {
			af = 1
		}
		b = append(b, af, byte(len(a.ranges)))
		if len(a.ranges) == 0 {
			b = append(b, 0)
		} else {
			b = binary.AppendUvarint(b, a.ranges[0].hi-a.ranges[0].lo)
			for i := 1; i < len(a.ranges); i++ {
				b = binary.AppendUvarint(b, a.ranges[i-1].lo-a.ranges[i].hi-2)
				b = binary.AppendUvarint(b, a.ranges[i].hi-a.ranges[i].lo)
			}
		}
	}
	if s.flags&flagDATA != 0 {
		b = binary.BigEndian.AppendUint64(b, s.off)
		b = binary.BigEndian.AppendUint16(b, uint16(len(s.data)))
		b = append(b, s.data...)
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
}

// decode parses b into s, checking the checksum and every field. s.data and
// s.ack.ranges alias or are freshly allocated; b is not modified.
func (s *segment) decode(b []byte) error {
	if len(b) < minSegment || b[0] != segVersion {
		return errBadSegment
	}
	body := b[:len(b)-crcLen]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(b[len(body):]) {
		return errBadSegment
	}
	*s = segment{
		flags:   b[1],
		conn:    binary.BigEndian.Uint32(b[2:]),
		pn:      binary.BigEndian.Uint64(b[6:]),
		maxData: binary.BigEndian.Uint64(b[14:]),
	}
	if s.flags&^flagMask != 0 || s.pn >= maxOffset {
		return errBadSegment
	}
	if s.flags&flagFIN != 0 && s.flags&flagDATA == 0 {
		return errBadSegment
	}
	p := body[headerLen:]
	if s.flags&flagACK != 0 {
		if len(p) < ackFixedLen+1 {
			return errBadSegment
		}
		a := &s.ack
		a.largest = binary.BigEndian.Uint64(p)
		a.delay = binary.BigEndian.Uint32(p[8:])
		a.cum = binary.BigEndian.Uint64(p[12:])
		if p[20]&^1 != 0 || a.largest >= maxOffset || a.cum >= maxOffset {
			return errBadSegment
		}
		a.fin = p[20] == 1
		n := int(p[21])
		p = p[ackFixedLen:]
		first, k := uvarint(p)
		if k <= 0 || first > a.largest {
			return errBadSegment
		}
		p = p[k:]
		if n > 0 {
			a.ranges = make([]pnRange, 1, n)
			a.ranges[0] = pnRange{a.largest - first, a.largest}
			for i := 1; i < n; i++ {
				gap, k1 := uvarint(p)
				if k1 <= 0 {
					return errBadSegment
				}
				p = p[k1:]
				ln, k2 := uvarint(p)
				if k2 <= 0 {
					return errBadSegment
				}
				p = p[k2:]
				prev := a.ranges[i-1].lo
				if prev < 2 || gap > prev-2 {
					return errBadSegment
				}
				hi := prev - 2 - gap
				if ln > hi {
					return errBadSegment
				}
				a.ranges = append(a.ranges, pnRange{hi - ln, hi})
			}
		} else if first != 0 {
			return errBadSegment
		}
	}
	if s.flags&flagDATA != 0 {
		if len(p) < dataHdrLen {
			return errBadSegment
		}
		s.off = binary.BigEndian.Uint64(p)
		n := int(binary.BigEndian.Uint16(p[8:]))
		p = p[dataHdrLen:]
		if len(p) < n || s.off >= maxOffset {
			return errBadSegment
		}
		s.data = p[:n]
		p = p[n:]
	}
	if len(p) != 0 {
		return errBadSegment
	}
	return nil
}

// IsSYN reports whether seg is a well-formed opening segment from a dialer: the
// router calls it for segments of unknown streams and hands those for which it
// is true to Accept.
func IsSYN(seg []byte) bool {
	var s segment
	if s.decode(seg) != nil {
		return false
	}
	return s.flags&flagSYN != 0 && s.flags&flagACK == 0
}

// ResetFor returns the RST segment answering seg, a segment of a stream this end
// does not know (RFC 9293 §3.10.7.1: a segment for a closed connection is answered
// with a reset): the peer's Conn then ends with ErrReset instead of sending into
// the void until its idle timeout, as after this end restarted. It returns nil
// for a malformed segment, a SYN (a new stream, for Accept) and a RST (never
// answered, so two ends that both forgot a stream cannot volley resets).
func ResetFor(seg []byte) []byte {
	var s segment
	if s.decode(seg) != nil || s.flags&(flagSYN|flagRST) != 0 {
		return nil
	}
	r := segment{flags: flagRST, conn: s.conn}
	return r.encode(make([]byte, 0, r.size()))
}
