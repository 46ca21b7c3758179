//go:build !unix

package boltdb

import (
	"os"
	"time"
)

// lock is a no-op where flock does not exist: bbolt's own lock, taken when it
// opens the file, is the only one, so the checks run unlocked there.
func lock(*os.File, time.Duration) error { return nil }
