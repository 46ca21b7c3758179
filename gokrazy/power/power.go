package power

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/skyfleet/skyfleet/gokrazy/mounts"
	"golang.org/x/sys/unix"
)

// Stopper stops all services, e.g. *supervise.Supervisor.
type Stopper interface {
	Stop(ctx context.Context) error
}

// Disarmer disables the hardware watchdog, e.g. *watchdog.Watchdog.
type Disarmer interface {
	Disarm() error
}

// Action is what to do after the clean shutdown.
type Action int

// Actions, mapped to reboot(2) commands.
const (
	// PowerOff turns the board off (LINUX_REBOOT_CMD_POWER_OFF).
	PowerOff Action = iota
	// Restart reboots the board (LINUX_REBOOT_CMD_RESTART).
	Restart
	// Tryboot reboots the board once into config.txt's [tryboot] section:
	// LINUX_REBOOT_CMD_RESTART2 with TrybootArg, which the Raspberry Pi
	// firmware's reboot handler turns into its one-shot tryboot flag
	// (Raspberry Pi documentation, "Fail-safe OS updates"). The boot after
	// that one is a normal one again.
	Tryboot
)

// TrybootArg is the restart command that asks the Pi firmware for a tryboot.
// The kernel logs it ("reboot: Restarting system with command '0 tryboot'"),
// which is how skyfleet qemu, standing in for the firmware, sees it.
const TrybootArg = "0 tryboot"

// String names the action for log lines.
func (a Action) String() string {
	switch a {
	case Restart:
		return "reboot"
	case Tryboot:
		return "tryboot"
	}
	return "poweroff"
}

// Power performs clean shutdowns. Fill in the fields and call Poweroff,
// Reboot or HandleSignals; the zero value just syncs, unmounts /perm and
// /boot and calls reboot(2).
type Power struct {
	// Services are stopped first (SIGTERM, then SIGKILL after their
	// grace); nil if none.
	Services Stopper
	// StopTimeout bounds Services.Stop; default 10 s. Shutdown goes on
	// regardless when it expires.
	StopTimeout time.Duration
	// Watchdog, if set, is disarmed before a poweroff so the hardware
	// does not reset a halted board. It is left armed for reboots.
	Watchdog Disarmer
	// Mounts are unmounted in order; nil means /perm then /boot.
	Mounts []string
	// Console receives one line per step; nil discards them.
	Console io.Writer

	mu sync.Mutex

	// Hooks for tests; nil means the real system calls.
	rebootFn  func(cmd int, arg string) error
	syncFn    func()
	unmountFn func(dir string) error
}

// Poweroff shuts down cleanly and powers the board off. It returns only
// if the final reboot(2) fails (e.g. not running as PID 1 / root), with
// that error joined to any earlier step's errors.
func (p *Power) Poweroff() error { return p.Shutdown(PowerOff) }

// Reboot shuts down cleanly and restarts the board. Like Poweroff it
// returns only on failure.
func (p *Power) Reboot() error { return p.Shutdown(Restart) }

// RebootTryboot shuts down cleanly and restarts the board once into the
// [tryboot] slot (see Tryboot). Like Poweroff it returns only on failure.
func (p *Power) RebootTryboot() error { return p.Shutdown(Tryboot) }

// Shutdown runs the clean shutdown sequence and then the action. Steps
// that fail are logged and do not stop the sequence: getting the data
// synced and the machine off matters more than a perfect unmount.
// Concurrent calls are serialised.
func (p *Power) Shutdown(a Action) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	logf := func(format string, args ...any) {
		if p.Console != nil {
			fmt.Fprintf(p.Console, "power: "+format+"\n", args...)
		}
	}
	logf("%s: stopping services", a)
	if p.Services != nil {
		timeout := p.StopTimeout
		if timeout <= 0 {
			timeout = 10 * time.Second
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		if err := p.Services.Stop(ctx); err != nil {
			logf("stopping services: %v", err)
			errs = append(errs, err)
		}
		cancel()
	}
	if a == PowerOff && p.Watchdog != nil {
		if err := p.Watchdog.Disarm(); err != nil {
			logf("disarming watchdog: %v", err)
			errs = append(errs, err)
		}
	}
	syncFn, unmount, reboot := p.syncFn, p.unmountFn, p.rebootFn
	if syncFn == nil {
		syncFn = unix.Sync
	}
	if unmount == nil {
		unmount = mounts.Unmount
	}
	if reboot == nil {
		reboot = sysReboot
	}
	syncFn()
	dirs := p.Mounts
	if dirs == nil {
		dirs = []string{"/perm", "/boot"}
	}
	for _, d := range dirs {
		if err := unmount(d); err != nil {
			logf("%v", err)
			errs = append(errs, err)
		}
	}
	syncFn()
	cmd, arg := unix.LINUX_REBOOT_CMD_POWER_OFF, ""
	switch a {
	case Restart:
		cmd = unix.LINUX_REBOOT_CMD_RESTART
	case Tryboot:
		cmd, arg = unix.LINUX_REBOOT_CMD_RESTART2, TrybootArg
	}
	logf("%s now", a)
	if err := reboot(cmd, arg); err != nil {
		errs = append(errs, fmt.Errorf("reboot(2) %s: %w", a, err))
		return errors.Join(errs...)
	}
	return nil
}

// ActionFor maps a signal to the action PID 1 takes on it (see the
// package documentation); ok is false for signals that are not handled.
func ActionFor(sig os.Signal) (a Action, ok bool) {
	switch sig {
	case syscall.SIGTERM, syscall.SIGUSR2:
		return PowerOff, true
	case syscall.SIGINT, syscall.SIGUSR1:
		return Restart, true
	}
	return 0, false
}

// HandleSignals starts shutting down on SIGTERM/SIGUSR2 (poweroff) and
// SIGINT/SIGUSR1 (reboot) in the background, until ctx ends. The signals
// are registered before it returns, so none sent afterwards is lost.
// When running as PID 1 it first switches ctrl-alt-del from an immediate
// hard reset to a SIGINT (clean reboot). A failed shutdown is reported
// to Console and handling goes on, so a later signal can try again.
func (p *Power) HandleSignals(ctx context.Context) {
	if os.Getpid() == 1 {
		unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF)
	}
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, syscall.SIGUSR2, syscall.SIGINT, syscall.SIGUSR1)
	go func() {
		defer signal.Stop(c)
		for {
			select {
			case <-ctx.Done():
				return
			case sig := <-c:
				a, _ := ActionFor(sig)
				if err := p.Shutdown(a); err != nil && p.Console != nil {
					fmt.Fprintf(p.Console, "power: %s on %v failed: %v\n", a, sig, err)
				}
			}
		}
	}()
}

// sysReboot calls reboot(2): unix.Reboot, or for RESTART2 the raw call with its
// command string, which x/sys/unix has no wrapper for.
func sysReboot(cmd int, arg string) error {
	if cmd != unix.LINUX_REBOOT_CMD_RESTART2 {
		return unix.Reboot(cmd)
	}
	p, err := unix.BytePtrFromString(arg)
	if err != nil {
		return err
	}
	_, _, e := unix.Syscall6(unix.SYS_REBOOT, unix.LINUX_REBOOT_MAGIC1, unix.LINUX_REBOOT_MAGIC2,
		uintptr(cmd), uintptr(unsafe.Pointer(p)), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}
