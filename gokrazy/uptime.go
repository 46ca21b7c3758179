package gokrazy

import (
	"time"

	"golang.org/x/sys/unix"
)

// KernelUptime returns the time since the kernel started, from
// CLOCK_BOOTTIME (monotonic, includes time suspended, unaffected by the
// wall clock, which on a Pi without RTC starts at 1970 and jumps when NTP
// or the mesh sets it). On the device, KernelUptime() at the moment all
// services are ready is boot_ms. It returns 0 if the clock cannot be read,
// which does not happen on Linux.
func KernelUptime() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}
