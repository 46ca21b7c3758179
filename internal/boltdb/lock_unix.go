//go:build unix

package boltdb

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// lock takes an exclusive flock on f, the lock bbolt takes, waiting up to
// timeout for another process to let go.
func lock(f *os.File, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			return fmt.Errorf("locking: %w", err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("another process holds the database's lock (waited %v)", timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
