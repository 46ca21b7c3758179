// Package progress draws one-line progress bars for long host work (image builds,
// flashing, updates) on a terminal, and plain occasional lines when output is a log.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Bar reports the progress of one task of Total bytes to W.
type Bar struct {
	W     io.Writer
	Label string
	tty   bool
	start time.Time
	last  time.Time
	pct   int
}

// New returns a bar writing to w, redrawing in place when w is a terminal.
func New(w io.Writer, label string) *Bar {
	b := &Bar{W: w, Label: label, start: time.Now(), pct: -1}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			b.tty = true
		}
	}
	return b
}

// Update draws done of total bytes. On a terminal it redraws at most 10 times a second;
// in a log it prints a line every 10 percent.
func (b *Bar) Update(done, total int64) {
	if total <= 0 {
		return
	}
	pct := int(done * 100 / total)
	now := time.Now()
	if b.tty {
		if pct == b.pct || (now.Sub(b.last) < 100*time.Millisecond && done < total) {
			return
		}
		const width = 30
		fill := int(done * width / total)
		fmt.Fprintf(b.W, "\r%s [%s%s] %3d%% %s/%s", b.Label, strings.Repeat("=", fill), strings.Repeat(" ", width-fill), pct, MiB(done), MiB(total))
	} else {
		if pct/10 == b.pct/10 && done < total {
			return
		}
		fmt.Fprintf(b.W, "%s %3d%% %s/%s\n", b.Label, pct, MiB(done), MiB(total))
	}
	b.pct, b.last = pct, now
}

// Done ends the bar with the elapsed time.
func (b *Bar) Done() {
	if b.tty {
		fmt.Fprintln(b.W)
	}
	fmt.Fprintf(b.W, "%s done in %.1fs\n", b.Label, time.Since(b.start).Seconds())
}

// MiB formats a byte count in MiB with one decimal.
func MiB(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
