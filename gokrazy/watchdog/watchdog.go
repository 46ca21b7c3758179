package watchdog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// Device is an opened watchdog. The real implementation wraps
// /dev/watchdog; tests supply fakes.
type Device interface {
	// SetTimeout asks for a timeout and returns the one the hardware
	// actually uses (drivers round, and clamp to their maximum).
	SetTimeout(d time.Duration) (time.Duration, error)
	// Keepalive pets the watchdog, restarting its countdown.
	Keepalive() error
	// Disarm stops the watchdog if the driver allows it (magic close) and
	// closes the device.
	Disarm() error
}

// Config configures Start. Zero values take the defaults per field.
type Config struct {
	// Path is the watchdog device; default "/dev/watchdog".
	Path string
	// Timeout is the hardware timeout to request; default 15 s.
	Timeout time.Duration
	// Interval between pets; default a third of the effective timeout.
	Interval time.Duration
	// Health is checked before every pet; a non-nil error skips that pet.
	// Nil means always healthy. It must return well within the interval.
	Health func() error
	// Open opens the device; default opens Path as a Linux watchdog. An
	// error satisfying errors.Is(err, os.ErrNotExist) means "no watchdog".
	Open func(path string) (Device, error)
	// Ticks, if set, replaces the interval ticker (for tests): one pet
	// attempt per received value.
	Ticks <-chan time.Time
	// Now is the clock for Status times; default time.Now.
	Now func() time.Time
}

// Status is a snapshot for the status page.
type Status struct {
	// Enabled is true while a watchdog device is held open.
	Enabled bool `json:"enabled"`
	// Reason says why the watchdog is disabled ("no /dev/watchdog", an
	// open error, "disarmed").
	Reason string `json:"reason,omitempty"`
	// TimeoutS is the effective hardware timeout in seconds.
	TimeoutS float64 `json:"timeout_s,omitempty"`
	// Pets counts successful keepalives.
	Pets uint64 `json:"pets"`
	// LastPet is the time of the last successful keepalive.
	LastPet time.Time `json:"last_pet,omitzero"`
	// Unhealthy counts consecutive skipped pets because of Health.
	Unhealthy int `json:"unhealthy"`
	// LastError is the latest health or keepalive error.
	LastError string `json:"last_error,omitempty"`
}

// Watchdog pets a watchdog device while the system is healthy. Create it
// with Start.
type Watchdog struct {
	cfg  Config
	dev  Device
	done chan struct{}
	stop context.CancelFunc

	mu     sync.Mutex
	status Status
}

// Start opens the watchdog, sets its timeout, pets it once and keeps
// petting it in the background (while cfg.Health passes) until ctx ends
// or Disarm is called. Ending ctx stops petting without disarming, so the
// hardware will reset the board: that is the point of a watchdog.
//
// A missing device yields a disabled Watchdog and a nil error. Any other
// failure to open or configure the device yields a disabled Watchdog and
// the error. The returned Watchdog is never nil.
func Start(ctx context.Context, cfg Config) (*Watchdog, error) {
	if cfg.Path == "" {
		cfg.Path = "/dev/watchdog"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	if cfg.Open == nil {
		cfg.Open = OpenDevice
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	w := &Watchdog{cfg: cfg, done: make(chan struct{})}
	dev, err := cfg.Open(cfg.Path)
	if err != nil {
		close(w.done)
		if errors.Is(err, os.ErrNotExist) {
			w.status.Reason = "no " + cfg.Path
			return w, nil
		}
		w.status.Reason = err.Error()
		return w, fmt.Errorf("watchdog: %w", err)
	}
	eff, err := dev.SetTimeout(cfg.Timeout)
	if err != nil {
		// The driver keeps its default timeout; still usable.
		w.status.LastError = "set timeout: " + err.Error()
		eff = cfg.Timeout
	}
	if eff <= 0 {
		eff = cfg.Timeout
	}
	if cfg.Interval <= 0 {
		cfg.Interval = eff / 3
	}
	w.cfg = cfg
	w.dev = dev
	w.status.Enabled = true
	w.status.TimeoutS = eff.Seconds()
	w.pet()

	ctx, w.stop = context.WithCancel(ctx)
	ticks := cfg.Ticks
	var ticker *time.Ticker
	if ticks == nil {
		ticker = time.NewTicker(cfg.Interval)
		ticks = ticker.C
	}
	go func() {
		defer close(w.done)
		if ticker != nil {
			defer ticker.Stop()
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-ticks:
				w.pet()
			}
		}
	}()
	return w, nil
}

// pet checks health and pets the device if healthy.
func (w *Watchdog) pet() {
	var herr error
	if w.cfg.Health != nil {
		herr = w.cfg.Health()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if herr != nil {
		w.status.Unhealthy++
		w.status.LastError = "health: " + herr.Error()
		return
	}
	if err := w.dev.Keepalive(); err != nil {
		w.status.LastError = "keepalive: " + err.Error()
		return
	}
	w.status.Unhealthy = 0
	w.status.Pets++
	w.status.LastPet = w.cfg.Now()
}

// Status returns a snapshot.
func (w *Watchdog) Status() Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.status
}

// Disarm stops petting and disables the hardware watchdog where the
// driver allows (magic close), for a deliberate poweroff: on a Pi a
// halted CPU with an armed watchdog would be reset and boot again. It is
// a no-op on a disabled Watchdog.
func (w *Watchdog) Disarm() error {
	if w.dev == nil {
		return nil
	}
	w.stop()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.status.Enabled {
		return nil
	}
	w.status.Enabled = false
	w.status.Reason = "disarmed"
	return w.dev.Disarm()
}
