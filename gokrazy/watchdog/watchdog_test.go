package watchdog

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type fakeDevice struct {
	mu          sync.Mutex
	maxTimeout  time.Duration
	setTo       time.Duration
	keepalives  int
	disarms     int
	failKeepAlv error
}

func (f *fakeDevice) SetTimeout(d time.Duration) (time.Duration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setTo = d
	return min(d, f.maxTimeout), nil
}

func (f *fakeDevice) Keepalive() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failKeepAlv != nil {
		return f.failKeepAlv
	}
	f.keepalives++
	return nil
}

func (f *fakeDevice) Disarm() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.disarms++
	return nil
}

func (f *fakeDevice) counts() (int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.keepalives, f.disarms
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestPetsOnlyWhileHealthy(t *testing.T) {
	dev := &fakeDevice{maxTimeout: 10 * time.Second}
	var healthy atomic.Bool
	healthy.Store(true)
	ticks := make(chan time.Time)
	w, err := Start(context.Background(), Config{
		Timeout: 15 * time.Second,
		Open:    func(string) (Device, error) { return dev, nil },
		Health: func() error {
			if healthy.Load() {
				return nil
			}
			return errors.New("mesh not responding")
		},
		Ticks: ticks,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Disarm()
	st := w.Status()
	if !st.Enabled || st.TimeoutS != 10 || dev.setTo != 15*time.Second {
		t.Fatalf("status %+v, requested %v; want enabled with the clamped 10 s", st, dev.setTo)
	}
	if n, _ := dev.counts(); n != 1 {
		t.Fatalf("keepalives after Start = %d, want 1 (immediate pet)", n)
	}
	for i := 0; i < 3; i++ {
		ticks <- time.Time{}
	}
	waitFor(t, "4 pets", func() bool { n, _ := dev.counts(); return n == 4 })

	healthy.Store(false)
	ticks <- time.Time{}
	ticks <- time.Time{}
	waitFor(t, "2 unhealthy ticks", func() bool { return w.Status().Unhealthy == 2 })
	if n, _ := dev.counts(); n != 4 {
		t.Fatalf("keepalives while unhealthy: %d, want still 4", n)
	}
	if st := w.Status(); st.LastError != "health: mesh not responding" || st.Pets != 4 {
		t.Fatalf("status while unhealthy: %+v", st)
	}

	// Recovering before the hardware fires resumes petting.
	healthy.Store(true)
	ticks <- time.Time{}
	waitFor(t, "pet after recovery", func() bool { n, _ := dev.counts(); return n == 5 })
	if st := w.Status(); st.Unhealthy != 0 || st.Pets != 5 {
		t.Fatalf("status after recovery: %+v", st)
	}
}

func TestKeepaliveErrorReported(t *testing.T) {
	dev := &fakeDevice{maxTimeout: time.Minute, failKeepAlv: errors.New("EIO")}
	w, _ := Start(context.Background(), Config{Open: func(string) (Device, error) { return dev, nil }, Ticks: make(chan time.Time)})
	defer w.Disarm()
	if st := w.Status(); st.Pets != 0 || st.LastError != "keepalive: EIO" {
		t.Fatalf("status %+v", st)
	}
}

func TestDisarmAndCancel(t *testing.T) {
	dev := &fakeDevice{maxTimeout: time.Minute}
	ctx, cancel := context.WithCancel(context.Background())
	ticks := make(chan time.Time)
	w, err := Start(ctx, Config{Open: func(string) (Device, error) { return dev, nil }, Ticks: ticks})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	<-w.done // the loop ends with ctx...
	if _, d := dev.counts(); d != 0 {
		t.Fatal("cancelling ctx disarmed the watchdog; it must stay armed")
	}
	select {
	case ticks <- time.Time{}:
		t.Fatal("loop still petting after ctx ended")
	case <-time.After(10 * time.Millisecond):
	}
	if err := w.Disarm(); err != nil {
		t.Fatal(err)
	}
	if err := w.Disarm(); err != nil {
		t.Fatal(err)
	}
	if _, d := dev.counts(); d != 1 {
		t.Fatalf("Disarm called device Disarm %d times, want 1", d)
	}
	if st := w.Status(); st.Enabled || st.Reason != "disarmed" {
		t.Fatalf("status after Disarm: %+v", st)
	}
}

func TestMissingDeviceIsNotAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "watchdog")
	w, err := Start(context.Background(), Config{Path: path})
	if err != nil {
		t.Fatalf("missing device: %v", err)
	}
	if st := w.Status(); st.Enabled || st.Reason != "no "+path {
		t.Fatalf("status %+v", st)
	}
	if err := w.Disarm(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenFailureIsReported(t *testing.T) {
	// A directory cannot be opened for writing: a real open error.
	w, err := Start(context.Background(), Config{Path: t.TempDir()})
	if err == nil {
		t.Fatal("opening a directory as watchdog succeeded")
	}
	if st := w.Status(); st.Enabled || st.Reason == "" {
		t.Fatalf("status %+v", st)
	}
}

func TestDefaultInterval(t *testing.T) {
	dev := &fakeDevice{maxTimeout: 9 * time.Second}
	w, _ := Start(context.Background(), Config{Open: func(string) (Device, error) { return dev, nil }})
	defer w.Disarm()
	if w.cfg.Interval != 3*time.Second {
		t.Fatalf("interval %v, want a third of the effective 9 s timeout", w.cfg.Interval)
	}
}
