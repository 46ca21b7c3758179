package supervise

import (
	"bytes"
	"sync"
)

// ring is a fixed-capacity byte buffer that keeps the most recent bytes
// written to it. It is safe for concurrent use.
//
// It stores one byte more than its capacity: that byte, the newest one
// already outside the window, tells Bytes whether the window starts at a
// line boundary.
type ring struct {
	mu    sync.Mutex
	buf   []byte // len(buf) == capacity+1
	start int    // index of the oldest byte
	size  int    // bytes held, <= len(buf)
}

func newRing(capacity int) *ring {
	return &ring{buf: make([]byte, capacity+1)}
}

// Write appends p, discarding the oldest bytes beyond capacity. It never
// fails.
func (r *ring) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(p)
	c := len(r.buf)
	if len(p) >= c {
		copy(r.buf, p[len(p)-c:])
		r.start, r.size = 0, c
		return n, nil
	}
	end := (r.start + r.size) % c
	k := copy(r.buf[end:], p)
	copy(r.buf, p[k:])
	r.size += len(p)
	if r.size > c {
		r.start = (r.start + r.size - c) % c
		r.size = c
	}
	return n, nil
}

// Bytes returns a copy of the newest bytes (at most the capacity), oldest
// first. When older output was dropped and the window starts in the
// middle of a line, that partial line is left out, unless it is the only
// line.
func (r *ring) Bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]byte, 0, r.size)
	c := len(r.buf)
	if r.start+r.size <= c {
		out = append(out, r.buf[r.start:r.start+r.size]...)
	} else {
		out = append(out, r.buf[r.start:]...)
		out = append(out, r.buf[:r.start+r.size-c]...)
	}
	if len(out) < c {
		return out // nothing dropped
	}
	before := out[0]
	out = out[1:]
	if before != '\n' {
		if i := bytes.IndexByte(out, '\n'); i >= 0 && i < len(out)-1 {
			out = out[i+1:]
		}
	}
	return out
}
