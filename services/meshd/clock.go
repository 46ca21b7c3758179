package meshd

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockFile holds the handshake clock's reservation in the data directory.
const clockFile = "mesh.clock"

// clockReserve is how far ahead of the last timestamp the reservation is written,
// so the file is rewritten about once per hour of handshakes, not per handshake.
const clockReserve = uint64(time.Hour)

// Timestamps returns the handshake timestamp source for link.Handshaker.Initiate:
// nanoseconds that never repeat or go backwards, even across restarts of a board
// without a real-time clock (a Pi boots at 1970 until NTP answers). Peers refuse a
// handshake whose timestamp is not above the last one they saw from the key, so a
// clock that jumped back would lock the node out. It keeps a reservation in
// dir/mesh.clock ahead of every timestamp handed out and starts above it after a
// restart. Errors: the file exists but is not a number, or cannot be written.
func Timestamps(dir string) (func() uint64, error) {
	path := filepath.Join(dir, clockFile)
	var stored uint64
	if b, err := os.ReadFile(path); err == nil {
		v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: not a timestamp: %v", path, err)
		}
		stored = v
	} else if !os.IsNotExist(err) {
		return nil, err
	}
	c := &clock{path: path, last: stored}
	if err := c.reserve(max(stored, uint64(time.Now().UnixNano())) + clockReserve); err != nil {
		return nil, err
	}
	return c.next, nil
}

type clock struct {
	mu       sync.Mutex
	path     string
	last     uint64
	reserved uint64
}

func (c *clock) next() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := max(uint64(time.Now().UnixNano()), c.last+1)
	if v >= c.reserved {
		// Best effort: if the write fails the values handed out are still
		// monotonic within this run.
		c.reserve(v + clockReserve)
	}
	c.last = v
	return v
}

// reserve durably records r before any timestamp below it is handed out.
func (c *clock) reserve(r uint64) error {
	tmp := c.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(strconv.FormatUint(r, 10) + "\n"); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, c.path); err != nil {
		return err
	}
	c.reserved = r
	if c.last < r-clockReserve {
		c.last = r - clockReserve
	}
	return nil
}
