package meshd

import (
	"fmt"
	"io/fs"
	"log"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/skyfleet/skyfleet/internal/durable"
)

// clockFile holds the handshake clock's reservation in the data directory.
const clockFile = "mesh.clock"

// clockReserve is how far ahead of the last timestamp the reservation is written,
// so the file is rewritten about once per hour of handshakes, not per handshake.
const clockReserve = uint64(time.Hour)

// clockRetry is how long a clock whose reservation failed waits before it tries
// to write one again, so a dead disk costs one write attempt per second, not
// one per handshake.
const clockRetry = time.Second

// maxStored is the largest reservation a clock file may hold: nanoseconds up to
// the year 2262 (int64). Anything above is corrupt, and would let the clock's
// arithmetic wrap around to small, already used, values.
const maxStored = uint64(math.MaxInt64)

// Clock is the handshake timestamp source for link.Handshaker.Initiate:
// nanoseconds that never repeat or go backwards, even across restarts of a board
// without a real-time clock (a Pi boots at 1970 until NTP answers). Peers refuse a
// handshake whose timestamp is not above the last one they saw from the key, so a
// clock that jumped back would lock the node out.
//
// It keeps a reservation in dir/mesh.clock, written durably (internal/durable:
// temporary file, fsync, rename, fsync of the directory) before any timestamp at
// or above the previous reservation is handed out, and starts above it after a
// restart. Every value Next returns is below the last reservation that reached
// the disk, so no value can be handed out again after a power cut.
//
// When a reservation cannot be written (a read-only or failing /perm), Next keeps
// counting up by one from the last value, still below the durable reservation
// (an hour of nanoseconds: billions of handshakes), and retries the write at most
// once per second. Should even that range run out, Next repeats its last value,
// which peers refuse: the node stops making new links rather than risk reusing a
// timestamp after a restart. Failures are logged (the first, and the recovery),
// counted (Failures) and kept (Err).
type Clock struct {
	mu       sync.Mutex
	path     string
	last     uint64 // the last value handed out (or the floor a restart starts above)
	reserved uint64 // the last durable reservation; every value handed out is below it
	err      error  // the last reservation's error, nil once one succeeds
	failures uint64
	retryAt  time.Time

	// Seams for tests: the durable writer, the wall clock, the log.
	write func(path string, data []byte, perm fs.FileMode) error
	now   func() time.Time
	logf  func(format string, args ...any)
}

// OpenClock reads dir/mesh.clock (absent: a first start) and writes a new
// reservation above both it and the wall clock. logf receives a line when a later
// reservation fails and when one succeeds again; nil means log.Printf. Errors: the
// file cannot be read, does not hold a decimal timestamp below 2^63, or the first
// reservation cannot be written (the node must not link with a clock it cannot
// make durable).
func OpenClock(dir string, logf func(format string, args ...any)) (*Clock, error) {
	return openClock(dir, logf, durable.WriteFile, time.Now)
}

func openClock(dir string, logf func(string, ...any), write func(string, []byte, fs.FileMode) error, now func() time.Time) (*Clock, error) {
	if logf == nil {
		logf = log.Printf
	}
	path := filepath.Join(dir, clockFile)
	var stored uint64
	if b, err := os.ReadFile(path); err == nil {
		v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: not a timestamp: %v", path, err)
		}
		if v > maxStored {
			return nil, fmt.Errorf("%s: not a timestamp: %d is past the year 2262", path, v)
		}
		stored = v
	} else if !os.IsNotExist(err) {
		return nil, err
	}
	removeStaleTemps(dir)
	c := &Clock{path: path, last: stored, write: write, now: now, logf: logf}
	start := max(stored, c.wall())
	if err := c.reserve(start + clockReserve); err != nil {
		return nil, err
	}
	c.last = start
	return c, nil
}

// removeStaleTemps removes the temporary files a power cut in the middle of a
// reservation left behind (durable's ".mesh.clock.*.tmp", and the
// "mesh.clock.tmp" of earlier versions), so that they cannot pile up.
func removeStaleTemps(dir string) {
	old, _ := filepath.Glob(filepath.Join(dir, "."+clockFile+".*.tmp"))
	for _, p := range append(old, filepath.Join(dir, clockFile+".tmp")) {
		os.Remove(p)
	}
}

// Timestamps is OpenClock(dir, nil).Next: the timestamp source for
// link.Handshaker.Initiate, with reservation failures going to log.Printf.
// Errors: those of OpenClock.
func Timestamps(dir string) (func() uint64, error) {
	c, err := OpenClock(dir, nil)
	if err != nil {
		return nil, err
	}
	return c.Next, nil
}

// wall is the wall clock in nanoseconds since 1970, 0 before it.
func (c *Clock) wall() uint64 {
	return uint64(max(c.now().UnixNano(), 0))
}

// Next returns the next timestamp, in nanoseconds: above every value returned
// before, also by an earlier run, unless reservations have failed for so long
// that the durable range is used up (see Clock); then it repeats the last one.
func (c *Clock) Next() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := max(c.wall(), c.last+1)
	if v >= c.reserved {
		if c.err != nil && c.now().Before(c.retryAt) {
			v = c.last + 1 // failing: stay below the durable reservation
		} else if err := c.reserve(v + clockReserve); err != nil {
			c.failures++
			if c.err == nil {
				c.logf("mesh: handshake clock: cannot persist a reservation (%v); handing out timestamps below the last one that did, retrying every %v", err, clockRetry)
			}
			c.err, c.retryAt = err, c.now().Add(clockRetry)
			v = c.last + 1
		} else if c.err != nil {
			c.logf("mesh: handshake clock: reservations persist again after %d failures", c.failures)
			c.err = nil
		}
	}
	if v >= c.reserved {
		// Out of durable values: repeating the last one makes peers refuse the
		// handshake, which is safe; a value at or above an unwritten
		// reservation could be handed out again after a restart.
		return c.last
	}
	c.last = v
	return v
}

// Err returns the error of the last failed reservation, or nil if the last
// attempt succeeded. It names the clock file and the step that failed.
func (c *Clock) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Failures returns how many reservations have failed since OpenClock.
func (c *Clock) Failures() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failures
}

// reserve durably records r; only then may values below r be handed out.
func (c *Clock) reserve(r uint64) error {
	if err := c.write(c.path, []byte(strconv.FormatUint(r, 10)+"\n"), 0o600); err != nil {
		return err
	}
	c.reserved = r
	return nil
}
