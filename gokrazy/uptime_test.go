package gokrazy

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// procUptime reads /proc/uptime, which the kernel derives from the same
// boot-time clock with 10 ms resolution.
func procUptime(t *testing.T) time.Duration {
	t.Helper()
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		t.Fatal(err)
	}
	secs, err := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	if err != nil {
		t.Fatal(err)
	}
	return time.Duration(secs * float64(time.Second))
}

func TestKernelUptimeMatchesProcUptime(t *testing.T) {
	before := procUptime(t)
	got := KernelUptime()
	after := procUptime(t)
	// /proc/uptime truncates to 10 ms, so "after" may lag by up to that.
	if got < before || got > after+10*time.Millisecond {
		t.Fatalf("KernelUptime() = %v, /proc/uptime was %v then %v", got, before, after)
	}
	if got2 := KernelUptime(); got2 < got {
		t.Fatalf("clock went backwards: %v then %v", got, got2)
	}
}
