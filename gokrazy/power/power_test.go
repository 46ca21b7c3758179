package power

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// recorder logs the shutdown steps in order.
type recorder struct {
	mu    sync.Mutex
	steps []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	r.steps = append(r.steps, s)
	r.mu.Unlock()
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.steps...)
}

type fakeServices struct {
	r        *recorder
	err      error
	deadline bool
}

func (f *fakeServices) Stop(ctx context.Context) error {
	_, f.deadline = ctx.Deadline()
	f.r.add("stop")
	return f.err
}

type fakeWatchdog struct{ r *recorder }

func (f fakeWatchdog) Disarm() error { f.r.add("disarm"); return nil }

func newPower(r *recorder, rebootErr error) *Power {
	return &Power{
		Services:  &fakeServices{r: r},
		Watchdog:  fakeWatchdog{r},
		syncFn:    func() { r.add("sync") },
		unmountFn: func(d string) error { r.add("umount " + d); return nil },
		rebootFn: func(cmd int, arg string) error {
			switch {
			case cmd == unix.LINUX_REBOOT_CMD_POWER_OFF && arg == "":
				r.add("poweroff")
			case cmd == unix.LINUX_REBOOT_CMD_RESTART && arg == "":
				r.add("restart")
			case cmd == unix.LINUX_REBOOT_CMD_RESTART2:
				r.add("restart2 " + arg)
			default:
				r.add("cmd?")
			}
			return rebootErr
		},
	}
}

func TestPoweroffSequence(t *testing.T) {
	r := &recorder{}
	p := newPower(r, nil)
	var con bytes.Buffer
	p.Console = &con
	if err := p.Poweroff(); err != nil {
		t.Fatal(err)
	}
	want := []string{"stop", "disarm", "sync", "umount /perm", "umount /boot", "sync", "poweroff"}
	if got := r.get(); !slices.Equal(got, want) {
		t.Fatalf("steps %v, want %v", got, want)
	}
	if !p.Services.(*fakeServices).deadline {
		t.Error("services were stopped without a deadline")
	}
	if !strings.Contains(con.String(), "power: poweroff now") {
		t.Errorf("console: %q", con.String())
	}
}

func TestRebootKeepsWatchdogArmed(t *testing.T) {
	r := &recorder{}
	p := newPower(r, nil)
	p.Mounts = []string{"/perm"}
	if err := p.Reboot(); err != nil {
		t.Fatal(err)
	}
	want := []string{"stop", "sync", "umount /perm", "sync", "restart"}
	if got := r.get(); !slices.Equal(got, want) {
		t.Fatalf("steps %v, want %v", got, want)
	}
}

// A tryboot is a reboot whose last call carries the firmware's command, and
// which, like a reboot, leaves the watchdog armed (a hung trial must be reset).
func TestTrybootSequence(t *testing.T) {
	r := &recorder{}
	p := newPower(r, nil)
	if err := p.RebootTryboot(); err != nil {
		t.Fatal(err)
	}
	want := []string{"stop", "sync", "umount /perm", "umount /boot", "sync", "restart2 0 tryboot"}
	if got := r.get(); !slices.Equal(got, want) {
		t.Fatalf("steps %v, want %v", got, want)
	}
}

func TestFailuresDoNotStopShutdown(t *testing.T) {
	r := &recorder{}
	p := newPower(r, syscall.EPERM)
	p.Services.(*fakeServices).err = errors.New("mesh still running")
	p.unmountFn = func(d string) error { r.add("umount " + d); return errors.New("busy " + d) }
	err := p.Poweroff()
	if err == nil {
		t.Fatal("no error although reboot(2) failed")
	}
	for _, s := range []string{"mesh still running", "busy /perm", "busy /boot", "operation not permitted"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
	if got := r.get(); got[len(got)-1] != "poweroff" {
		t.Fatalf("sequence did not reach reboot(2): %v", got)
	}
}

func TestActionFor(t *testing.T) {
	cases := map[syscall.Signal]Action{
		syscall.SIGTERM: PowerOff, syscall.SIGUSR2: PowerOff,
		syscall.SIGINT: Restart, syscall.SIGUSR1: Restart,
	}
	for sig, want := range cases {
		if a, ok := ActionFor(sig); !ok || a != want {
			t.Errorf("ActionFor(%v) = %v, %v; want %v", sig, a, ok, want)
		}
	}
	if _, ok := ActionFor(syscall.SIGHUP); ok {
		t.Error("SIGHUP handled")
	}
}

// TestHandleSignals delivers real signals to the test process; the
// handler's signal.Notify keeps them from killing it.
func TestHandleSignals(t *testing.T) {
	r := &recorder{}
	p := newPower(r, errors.New("fake reboot(2) refuses"))
	p.Services = nil
	p.Watchdog = nil
	p.Mounts = []string{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p.HandleSignals(ctx)

	waitSteps := func(n int) []string {
		deadline := time.Now().Add(30 * time.Second)
		for {
			if got := r.get(); len(got) >= n {
				return got
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out; steps %v", r.get())
			}
			time.Sleep(time.Millisecond)
		}
	}
	syscall.Kill(syscall.Getpid(), syscall.SIGUSR2)
	if got := waitSteps(3); got[2] != "poweroff" {
		t.Fatalf("SIGUSR2 led to %v", got)
	}
	syscall.Kill(syscall.Getpid(), syscall.SIGINT)
	if got := waitSteps(6); got[5] != "restart" {
		t.Fatalf("SIGINT led to %v", got)
	}
	syscall.Kill(syscall.Getpid(), syscall.SIGTERM)
	if got := waitSteps(9); got[8] != "poweroff" {
		t.Fatalf("SIGTERM led to %v", got)
	}
}
