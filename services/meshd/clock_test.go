package meshd

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
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
