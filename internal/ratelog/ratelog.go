// Package ratelog keeps log lines that strangers can trigger (refused requests,
// refused reports) from flooding a log: one line per interval gets through, the
// rest are counted and the count goes out with the next line.
package ratelog

import (
	"sync"
	"time"
)

// Interval is the least time between two lines a Limiter lets through.
const Interval = 10 * time.Second

// Limiter lets one line per Interval through. The zero value is ready to use
// and is safe for concurrent use.
type Limiter struct {
	mu      sync.Mutex
	last    time.Time
	skipped int
}

// Allow reports whether a line at now may be logged and, if so, how many were
// held back since the last one that was.
func (l *Limiter) Allow(now time.Time) (skipped int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < Interval {
		l.skipped++
		return 0, false
	}
	skipped, l.skipped, l.last = l.skipped, 0, now
	return skipped, true
}
