package radio

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// The fragment format: the info field of each AX.25 UI frame (PID 0xF0) that
// carries a piece of a mesh datagram.
//
//	0      magic 'S' (0x53)
//	1      version 1 in the high nibble, low nibble 0
//	2..3   datagram number, per sender, big endian
//	4      fragment index in the high nibble, fragment count - 1 in the low
//	5..    the fragment's bytes
//
// A datagram is cut into at most MaxFragments pieces of equal size (the last
// may be shorter). Any other info field (APRS, an ID, another station's
// traffic) is not a fragment: it is counted as foreign and left alone.
const (
	fragMagic   = 'S'
	fragVersion = 1
	fragHeader  = 5
	// MaxFragments is the most frames one datagram is cut into.
	MaxFragments = 16
)

// errNotFragment marks an info field that is not a Skyfleet fragment.
var errNotFragment = errors.New("radio: not a Skyfleet fragment")

// fragment is one decoded fragment; data aliases the frame.
type fragment struct {
	num          uint16
	index, count int
	data         []byte
}

// appendFragment appends fragment index of count of datagram num to b.
func appendFragment(b []byte, num uint16, index, count int, data []byte) []byte {
	b = append(b, fragMagic, fragVersion<<4)
	b = binary.BigEndian.AppendUint16(b, num)
	b = append(b, byte(index<<4|(count-1)))
	return append(b, data...)
}

// parseFragment reads a fragment from an info field. Errors: errNotFragment
// for other traffic; a malformed fragment (a newer version, an index past its
// count, a short header) otherwise.
func parseFragment(info []byte) (fragment, error) {
	if len(info) < 2 || info[0] != fragMagic || info[1]>>4 == 0 {
		return fragment{}, errNotFragment
	}
	if v := info[1] >> 4; v != fragVersion {
		return fragment{}, fmt.Errorf("radio: fragment version %d (this node reads %d)", v, fragVersion)
	}
	if len(info) < fragHeader {
		return fragment{}, fmt.Errorf("radio: fragment of %d bytes is shorter than its header", len(info))
	}
	f := fragment{
		num:   binary.BigEndian.Uint16(info[2:]),
		index: int(info[4] >> 4),
		count: int(info[4]&0x0f) + 1,
		data:  info[fragHeader:],
	}
	if f.index >= f.count {
		return fragment{}, fmt.Errorf("radio: fragment %d of %d", f.index, f.count)
	}
	return f, nil
}

// split cuts datagram p into pieces of at most per bytes, in as few frames as
// possible, all but the last of equal size. Errors: more than MaxFragments
// pieces would be needed.
func split(p []byte, per int) ([][]byte, error) {
	count := max(1, (len(p)+per-1)/per)
	if count > MaxFragments {
		return nil, fmt.Errorf("radio: a %d-byte datagram needs %d frames of %d bytes (at most %d)", len(p), count, per, MaxFragments)
	}
	size := (len(p) + count - 1) / count
	out := make([][]byte, 0, count)
	for off := 0; off < len(p) || len(out) == 0; off += size {
		out = append(out, p[off:min(off+size, len(p))])
	}
	return out, nil
}

// Reassembly limits: what strangers on the channel can make a node hold.
const (
	// maxPartials bounds the datagrams being reassembled at once; the oldest
	// is dropped to make room.
	maxPartials = 64
	// maxPartialsPerSource bounds one sender's share of them.
	maxPartialsPerSource = 8
	// partialExpiry is how long a datagram waits for its missing fragments:
	// 16 frames of 256 bytes take about 30 s at 1200 bit/s.
	partialExpiry = 90 * time.Second
	// maxDone bounds the datagrams remembered as delivered, so that a copy
	// (a digipeater's, a retransmitted fragment) is not delivered twice.
	maxDone = 256
)

// partialKey names a datagram being reassembled. The fragment count is part
// of it: AX.25 source addresses are not authenticated, so a stranger who
// sends a fragment under another station's callsign and its next number,
// with another count, starts a datagram of its own instead of spoiling that
// station's.
type partialKey struct {
	src   string
	num   uint16
	count int
}

type partial struct {
	have  uint16 // bit i: fragment i arrived
	frags [MaxFragments][]byte
	first time.Time
}

// delivered is what is remembered of a delivered datagram: a digest of each
// fragment, so that a true copy of one (a digipeater's) is recognised and
// dropped, while a forged fragment that takes the datagram's number and
// count is not taken for a copy.
type delivered struct {
	at    time.Time
	frags [MaxFragments][8]byte
}

func fragDigest(b []byte) (d [8]byte) {
	sum := sha256.Sum256(b)
	copy(d[:], sum[:])
	return d
}

// reassembler joins fragments into datagrams. It is not safe for concurrent
// use.
type reassembler struct {
	partials map[partialKey]*partial
	perSrc   map[string]int
	done     map[partialKey]*delivered
	// expired counts datagrams dropped with fragments missing (expired or
	// evicted).
	expired uint64
}

func newReassembler() *reassembler {
	return &reassembler{partials: map[partialKey]*partial{}, perSrc: map[string]int{}, done: map[partialKey]*delivered{}}
}

// add takes fragment f from src at now and returns the whole datagram when it
// completes one (a new slice), else nil. A copy of a fragment of a datagram
// delivered within partialExpiry is dropped.
func (r *reassembler) add(src string, f fragment, now time.Time) []byte {
	k := partialKey{src, f.num, f.count}
	if d, ok := r.done[k]; ok && d.frags[f.index] == fragDigest(f.data) {
		return nil
	}
	if f.count == 1 {
		r.remember(k, [][]byte{f.data}, now)
		return append([]byte(nil), f.data...)
	}
	p := r.partials[k]
	if p == nil {
		r.expire(now)
		if r.perSrc[src] >= maxPartialsPerSource {
			r.evict(func(pk partialKey) bool { return pk.src == src })
		}
		if len(r.partials) >= maxPartials {
			r.evict(func(partialKey) bool { return true })
		}
		p = &partial{first: now}
		r.partials[k] = p
		r.perSrc[src]++
	}
	if p.have&(1<<f.index) != 0 {
		return nil
	}
	p.have |= 1 << f.index
	p.frags[f.index] = append([]byte(nil), f.data...)
	if p.have != 1<<f.count-1 {
		return nil
	}
	var out []byte
	for _, d := range p.frags[:f.count] {
		out = append(out, d...)
	}
	r.remove(k)
	r.remember(k, p.frags[:f.count], now)
	return out
}

// remember records the datagram k made of frags as delivered at now.
func (r *reassembler) remember(k partialKey, frags [][]byte, now time.Time) {
	if _, ok := r.done[k]; !ok && len(r.done) >= maxDone {
		r.expire(now)
		for len(r.done) >= maxDone { // all recent: forget any
			for dk := range r.done {
				delete(r.done, dk)
				break
			}
		}
	}
	d := &delivered{at: now}
	for i, b := range frags {
		d.frags[i] = fragDigest(b)
	}
	r.done[k] = d
}

func (r *reassembler) remove(k partialKey) {
	delete(r.partials, k)
	if r.perSrc[k.src]--; r.perSrc[k.src] <= 0 {
		delete(r.perSrc, k.src)
	}
}

// evict drops the oldest partial datagram that match selects.
func (r *reassembler) evict(match func(partialKey) bool) {
	var oldest partialKey
	var at time.Time
	found := false
	for k, p := range r.partials {
		if match(k) && (!found || p.first.Before(at)) {
			oldest, at, found = k, p.first, true
		}
	}
	if found {
		r.remove(oldest)
		r.expired++
	}
}

// expire drops partial datagrams older than partialExpiry and forgets
// delivered ones as old.
func (r *reassembler) expire(now time.Time) {
	for k, p := range r.partials {
		if now.Sub(p.first) > partialExpiry {
			r.remove(k)
			r.expired++
		}
	}
	for k, d := range r.done {
		if now.Sub(d.at) > partialExpiry {
			delete(r.done, k)
		}
	}
}
