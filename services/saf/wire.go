package saf

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// The custody protocol runs on a reliable mesh stream (services/mesh streams:
// end-to-end retransmission over one hop) from a custodian to its neighbour on port
// CustodyPort. The stream's own acknowledgements say the bytes arrived; the
// CustodyAck says more: the neighbour has the bundle on disk and has taken custody,
// so the sender may forget it.
//
//	frame      = type (1 byte) | length (4 bytes, big endian) | body
//	Transfer   type 1: age (8 bytes, ms, big endian) | bundle (canonical encoding)
//	CustodyAck type 2: bundle ID (32 bytes) | status (1 byte, Status)
//
// A stream carries Transfers one way and CustodyAcks the other; acks may come in
// any order. Anything else ends the stream (and is counted).
const (
	frameTransfer   = 1
	frameCustodyAck = 2
)

// CustodyPort is the mesh stream port of the custody protocol.
const CustodyPort = 5

// maxFrame is the largest frame body: a Transfer of the largest bundle.
const maxFrame = 8 + MaxBundle

// Status is a receiver's answer to a Transfer (the CustodyAck's status byte).
type Status byte

// The statuses. Every one but StatusFull ends the sender's custody: the bundle is
// either safe at the receiver or not worth keeping.
const (
	// StatusAccepted: the bundle is committed to the receiver's store; it is the
	// custodian now.
	StatusAccepted Status = 0
	// StatusDuplicate: the receiver holds or has delivered this bundle already.
	StatusDuplicate Status = 1
	// StatusFull: the receiver's store is at its cap; the sender keeps the bundle
	// and tries again later (or elsewhere).
	StatusFull Status = 2
	// StatusExpired: the bundle's age exceeds its lifetime; drop it.
	StatusExpired Status = 3
	// StatusRefused: the Transfer was malformed; the sender's copy is no better.
	StatusRefused Status = 4
	numStatus
)

func (s Status) String() string {
	switch s {
	case StatusAccepted:
		return "accepted"
	case StatusDuplicate:
		return "duplicate"
	case StatusFull:
		return "full"
	case StatusExpired:
		return "expired"
	case StatusRefused:
		return "refused"
	}
	return fmt.Sprintf("status %d", byte(s))
}

// Transfer is a bundle in transit with its age.
type Transfer struct {
	// Age is how long the bundle has existed when sent (RFC 9171 §4.4.2).
	Age time.Duration
	// Bundle is the canonical encoding (checked by ParseTransfer).
	Bundle []byte
}

// AppendTransfer appends a Transfer frame (header and body) to dst.
func AppendTransfer(dst []byte, age time.Duration, enc []byte) []byte {
	dst = append(dst, frameTransfer)
	dst = binary.BigEndian.AppendUint32(dst, uint32(8+len(enc)))
	dst = binary.BigEndian.AppendUint64(dst, uint64(max(age, 0)/time.Millisecond))
	return append(dst, enc...)
}

// AppendCustodyAck appends a CustodyAck frame to dst.
func AppendCustodyAck(dst []byte, id ID, st Status) []byte {
	dst = append(dst, frameCustodyAck)
	dst = binary.BigEndian.AppendUint32(dst, 33)
	dst = append(dst, id[:]...)
	return append(dst, byte(st))
}

// ParseTransfer decodes a Transfer body. The bundle is checked (Parse) and
// returned as a copy. Errors wrap ErrMalformed.
func ParseTransfer(body []byte) (Transfer, *Bundle, error) {
	if len(body) < 8 {
		return Transfer{}, nil, malformed("transfer of %d bytes", len(body))
	}
	ms := binary.BigEndian.Uint64(body)
	if ms > uint64(100*365*24*time.Hour/time.Millisecond) {
		return Transfer{}, nil, malformed("age out of range")
	}
	b, err := Parse(body[8:])
	if err != nil {
		return Transfer{}, nil, err
	}
	return Transfer{Age: time.Duration(ms) * time.Millisecond, Bundle: append([]byte(nil), body[8:]...)}, b, nil
}

// ParseCustodyAck decodes a CustodyAck body. Errors wrap ErrMalformed: a wrong
// length or an unknown status.
func ParseCustodyAck(body []byte) (ID, Status, error) {
	var id ID
	if len(body) != 33 {
		return id, 0, malformed("custody ack of %d bytes, not 33", len(body))
	}
	copy(id[:], body)
	st := Status(body[32])
	if st >= numStatus {
		return id, 0, malformed("custody ack status %d", body[32])
	}
	return id, st, nil
}

// readFrame reads one frame from r into buf (grown as needed) and returns its type
// and body. Errors: io.EOF at a clean end, io.ErrUnexpectedEOF inside a frame, or
// ErrMalformed for a length above maxFrame (the stream is then unusable).
func readFrame(r *bufio.Reader, buf []byte) (byte, []byte, error) {
	var h [5]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(h[1:])
	if n > maxFrame {
		return 0, nil, malformed("frame of %d bytes, at most %d", n, maxFrame)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return h[0], buf, nil
}

// The data-mule file: one bundle per file, named <ID>.sfb, so a USB stick carries
// bundles between nodes that never link (`skyfleet saf export/import`).
//
//	magic "SFB1" (4 bytes) | age (8 bytes, ms) | bundle (canonical encoding)
const (
	fileMagic = "SFB1"
	// FileExt is the extension of a data-mule file.
	FileExt = ".sfb"
)

// MarshalFile returns a data-mule file for a bundle encoding and its age.
func MarshalFile(age time.Duration, enc []byte) []byte {
	out := make([]byte, 0, 12+len(enc))
	out = append(out, fileMagic...)
	out = binary.BigEndian.AppendUint64(out, uint64(max(age, 0)/time.Millisecond))
	return append(out, enc...)
}

// ParseFile decodes a data-mule file. Errors wrap ErrMalformed: a wrong magic, or
// a bundle Parse refuses.
func ParseFile(b []byte) (Transfer, *Bundle, error) {
	if len(b) < 4 || string(b[:4]) != fileMagic {
		return Transfer{}, nil, malformed("not a bundle file (no %q magic)", fileMagic)
	}
	return ParseTransfer(b[4:])
}
