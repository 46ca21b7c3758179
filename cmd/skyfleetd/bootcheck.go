package main

import (
	"fmt"
	"io"
	"os"

	"github.com/skyfleet/skyfleet/gokrazy/fatrepair"
)

// checkBoot repairs the boot partition dev before it is mounted when the last
// writable mount did not end cleanly (its dirty bit is set): only an update
// makes /boot writable, for seconds, and a power cut then can leave lost
// clusters, a half-written file in a staging folder or the two FATs
// differing. Linux never clears a dirty bit it found, and the Pi firmware
// reads the FAT less forgivingly than Linux, so PID 1 does what fsck.fat would
// (package fatrepair). It returns what was repaired ("" when the partition was
// clean), or why it could not check.
func checkBoot(dev string) (string, error) {
	f, err := os.OpenFile(dev, os.O_RDWR|os.O_SYNC, 0)
	if err != nil {
		return "", fmt.Errorf("boot check: %w", err)
	}
	defer f.Close()
	dirty, err := fatrepair.Dirty(f)
	if err != nil || !dirty {
		return "", err
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return "", fmt.Errorf("boot check: %w", err)
	}
	rep, err := fatrepair.Repair(f, size, true)
	if err != nil {
		return rep.String(), fmt.Errorf("boot check: %w", err)
	}
	if err := f.Sync(); err != nil {
		return rep.String(), fmt.Errorf("boot check: %w", err)
	}
	return rep.String(), nil
}
