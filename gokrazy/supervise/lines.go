package supervise

import (
	"bytes"
	"io"
	"sync"
)

// console serialises whole lines from many services onto one writer so
// that output of different services never interleaves within a line.
type console struct {
	mu sync.Mutex
	w  io.Writer
}

func (c *console) writeLine(prefix string, line []byte) {
	if c == nil || c.w == nil {
		return
	}
	b := make([]byte, 0, len(prefix)+2+len(line)+1)
	b = append(b, prefix...)
	b = append(b, ": "...)
	b = append(b, line...)
	b = append(b, '\n')
	c.mu.Lock()
	c.w.Write(b) // best effort: a broken console must not stop a service
	c.mu.Unlock()
}

// lineTee forwards complete lines to a console with a prefix, buffering a
// trailing partial line until the next newline or Flush.
type lineTee struct {
	c       *console
	prefix  string
	partial []byte
}

// Write forwards each complete line of p; it never fails.
func (t *lineTee) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			t.partial = append(t.partial, p...)
			// Bound memory for output that never ends a line.
			if len(t.partial) >= 4096 {
				t.Flush()
			}
			break
		}
		line := p[:i]
		if len(t.partial) > 0 {
			line = append(t.partial, line...)
			t.partial = t.partial[:0]
		}
		t.c.writeLine(t.prefix, bytes.TrimSuffix(line, []byte{'\r'}))
		p = p[i+1:]
	}
	return n, nil
}

// Flush writes out a pending partial line.
func (t *lineTee) Flush() {
	if len(t.partial) > 0 {
		t.c.writeLine(t.prefix, t.partial)
		t.partial = t.partial[:0]
	}
}
