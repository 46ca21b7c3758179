package meshd

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/internal/durable"
)

// A restart must hand out timestamps above every one given before it, even when the
// wall clock is far behind (a Pi booting at 1970).
func TestTimestampsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	next, err := Timestamps(dir)
	if err != nil {
		t.Fatal(err)
	}
	var last uint64
	for i := 0; i < 1000; i++ {
		v := next()
		if v <= last {
			t.Fatalf("timestamp %d after %d", v, last)
		}
		last = v
	}
	// Pretend the previous run's clock ran far ahead of this machine's.
	future := uint64(time.Now().Add(24 * time.Hour).UnixNano())
	if err := os.WriteFile(filepath.Join(dir, clockFile), []byte(strconv.FormatUint(future, 10)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	next2, err := Timestamps(dir)
	if err != nil {
		t.Fatal(err)
	}
	if v := next2(); v <= future {
		t.Fatalf("after restart: %d, not above the reservation %d", v, future)
	}
	b, _ := os.ReadFile(filepath.Join(dir, clockFile))
	if r, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); r <= future {
		t.Errorf("reservation not moved ahead: %d", r)
	}
}

func TestTimestampsCorruptFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, clockFile), []byte("garbage"), 0o600)
	if _, err := Timestamps(dir); err == nil || !strings.Contains(err.Error(), "not a timestamp") {
		t.Fatalf("corrupt clock file: %v", err)
	}
}

// fakeClock is a wall clock and a writer that a test can steer.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	fail   error // returned by write while set
	writes int
	lines  []string
}

func (f *fakeClock) Now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }

func (f *fakeClock) set(t time.Time, fail error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now, f.fail = t, fail
}

func (f *fakeClock) write(path string, data []byte, perm fs.FileMode) error {
	f.mu.Lock()
	fail := f.fail
	f.writes++
	f.mu.Unlock()
	if fail != nil {
		return fail
	}
	return durable.WriteFile(path, data, perm)
}

func (f *fakeClock) logf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lines = append(f.lines, fmt.Sprintf(format, args...))
}

func readReservation(t *testing.T, dir string) uint64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, clockFile))
	if err != nil {
		t.Fatal(err)
	}
	r, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A reservation that cannot be written must be reported, and no value at or
// above the last durable reservation handed out: after a restart the clock
// starts at that reservation, so such a value would be handed out twice and
// peers would refuse the node's handshakes.
func TestClockReservationFailure(t *testing.T) {
	dir := t.TempDir()
	start := time.Unix(0, 0).Add(1000 * time.Hour) // a Pi without RTC, say
	fc := &fakeClock{now: start}
	c, err := openClock(dir, fc.logf, fc.write, fc.Now)
	if err != nil {
		t.Fatal(err)
	}
	durableR := readReservation(t, dir)
	if want := uint64(start.UnixNano()) + clockReserve; durableR != want {
		t.Fatalf("first reservation %d, want now + an hour = %d", durableR, want)
	}
	first := c.Next()

	// The wall clock passes the reservation (NTP answered) while /perm fails.
	fc.set(start.Add(5*time.Hour), errors.New("read-only file system"))
	var handed []uint64
	for range 1000 {
		handed = append(handed, c.Next())
	}
	if c.Err() == nil || !strings.Contains(c.Err().Error(), "read-only") || c.Failures() != 1 {
		t.Errorf("Err %v, Failures %d: the failure is not reported (or retried more than once a second)", c.Err(), c.Failures())
	}
	if len(fc.lines) != 1 || !strings.Contains(fc.lines[0], "read-only file system") {
		t.Errorf("log lines %q, want one naming the error", fc.lines)
	}
	if got := readReservation(t, dir); got != durableR {
		t.Fatalf("the reservation on disk changed to %d", got)
	}
	prev := first
	for _, v := range handed {
		if v >= durableR {
			t.Fatalf("handed out %d, at or above the durable reservation %d", v, durableR)
		}
		if v <= prev {
			t.Fatalf("%d after %d", v, prev)
		}
		prev = v
	}

	// A second later it retries; still failing, it counts again.
	fc.set(start.Add(5*time.Hour+clockRetry), errors.New("read-only file system"))
	if v := c.Next(); v >= durableR || c.Failures() != 2 {
		t.Errorf("retry: %d (reservation %d), %d failures", v, durableR, c.Failures())
	}

	// Use up the durable range: the clock must stop below it, not go on.
	c.mu.Lock()
	c.last = durableR - 2
	c.mu.Unlock()
	if v := c.Next(); v != durableR-1 {
		t.Errorf("last durable value: %d, want %d", v, durableR-1)
	}
	for range 3 {
		if v := c.Next(); v >= durableR {
			t.Fatalf("handed out %d with the durable range used up (reservation %d)", v, durableR)
		}
	}

	// A restart (power cut) starts above everything handed out.
	fc2 := &fakeClock{now: start} // the wall clock is back at boot time
	c2, err := openClock(dir, fc2.logf, fc2.write, fc2.Now)
	if err != nil {
		t.Fatal(err)
	}
	if v := c2.Next(); v <= durableR-1 {
		t.Fatalf("after restart: %d, not above %d", v, durableR-1)
	}

	// The disk recovers: the next retry writes a reservation and says so.
	fc.set(start.Add(6*time.Hour), nil)
	v := c.Next()
	if c.Err() != nil || v != uint64(start.Add(6*time.Hour).UnixNano()) {
		t.Errorf("after recovery: %d, Err %v", v, c.Err())
	}
	if got := readReservation(t, dir); got != v+clockReserve {
		t.Errorf("reservation %d after recovery, want %d", got, v+clockReserve)
	}
	if len(fc.lines) != 2 || !strings.Contains(fc.lines[1], "persist again") {
		t.Errorf("log lines %q, want the recovery logged", fc.lines)
	}
}

// The same with a real file system error: the clock file's place is taken by
// a directory, so the rename of every new reservation fails (as root too, where
// a read-only mode would not stop the write).
func TestClockRenameFails(t *testing.T) {
	dir := t.TempDir()
	c, err := OpenClock(dir, func(string, ...any) {})
	if err != nil {
		t.Fatal(err)
	}
	durableR := readReservation(t, dir)
	p := filepath.Join(dir, clockFile)
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(p, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.last = durableR - 10 // as if an hour of handshakes had passed
	c.mu.Unlock()
	for range 20 {
		if v := c.Next(); v >= durableR {
			t.Fatalf("handed out %d at or above the durable reservation %d", v, durableR)
		}
	}
	if err := c.Err(); err == nil || !strings.Contains(err.Error(), clockFile) {
		t.Fatalf("Err() = %v, want the rename's error naming %s", err, clockFile)
	}
	if ents, _ := filepath.Glob(filepath.Join(dir, ".*.tmp")); len(ents) != 0 {
		t.Errorf("failed reservations left %v", ents)
	}
}

// Reservations go through internal/durable, whose WriteFile fsyncs the file
// and, after the rename, the directory (tested in internal/durable).
func TestClockWritesDurably(t *testing.T) {
	dir := t.TempDir()
	c, err := OpenClock(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if reflect.ValueOf(c.write).Pointer() != reflect.ValueOf(durable.WriteFile).Pointer() {
		t.Fatal("OpenClock does not write through durable.WriteFile")
	}
	st, err := os.Stat(filepath.Join(dir, clockFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("clock file: %v, %v", st, err)
	}
}

// A power cut during a reservation leaves a temporary file; the next start
// removes it so that they cannot accumulate.
func TestClockRemovesStaleTemps(t *testing.T) {
	dir := t.TempDir()
	stale := []string{filepath.Join(dir, ".mesh.clock.123.tmp"), filepath.Join(dir, "mesh.clock.tmp")}
	other := filepath.Join(dir, ".node.key.1.tmp")
	for _, p := range append(stale, other) {
		os.WriteFile(p, []byte("1"), 0o600)
	}
	if _, err := OpenClock(dir, nil); err != nil {
		t.Fatal(err)
	}
	for _, p := range stale {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s not removed", p)
		}
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("another store's temporary file was removed: %v", err)
	}
}

// A reservation past 2^63 ns is corrupt: adding to it would wrap around to
// small values that were handed out long ago.
func TestClockRefusesHugeReservation(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, clockFile), []byte("18446744073709551615\n"), 0o600)
	if _, err := Timestamps(dir); err == nil || !strings.Contains(err.Error(), "not a timestamp") {
		t.Fatalf("huge reservation: %v", err)
	}
}
