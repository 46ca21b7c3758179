//go:build linux

// Package sandbox takes privileges away from a service process of the node,
// as the first thing its subcommand does. The wallet is the reason: it runs
// as its own uid, and the other services, which run as root, must not be able
// to read its files, become its user, trace it, or reach the card's raw
// bytes (docs/architecture.md §Wallet).
package sandbox

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// WalletUID and WalletGID are the wallet service's user and group: it owns
// /perm/wallet (mode 0700). DiskUID owns the card's block devices (mode
// 0600), so that only PID 1, which keeps every capability, opens them.
const (
	WalletUID = 64100
	WalletGID = 64100
	DiskUID   = 64101
)

// ServiceDrops are the capabilities (linux/capability.h) a root service of a
// wallet node gives up: those that get past or around file permissions
// (DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER, CHOWN), that change identity
// (SETUID, SETGID), that read another process (SYS_PTRACE) or the hardware
// and kernel underneath the files (SYS_ADMIN: mounts, idmapped mounts;
// SYS_MODULE; SYS_RAWIO: /dev/mem; MKNOD: a new node for the card).
var ServiceDrops = []uintptr{
	unix.CAP_DAC_OVERRIDE, unix.CAP_DAC_READ_SEARCH, unix.CAP_FOWNER, unix.CAP_CHOWN,
	unix.CAP_SETUID, unix.CAP_SETGID, unix.CAP_SYS_PTRACE, unix.CAP_SYS_ADMIN,
	unix.CAP_SYS_MODULE, unix.CAP_SYS_RAWIO, unix.CAP_MKNOD,
}

// DropEnv is the environment variable PID 1 sets ("1") on a wallet node's
// services; a subcommand that sees it calls DropFromEnv before anything
// else and exits if that fails.
const DropEnv = "SKYFLEET_DROP_CAPS"

// dropped is DropEnv's value after the re-exec that made the drop.
const dropped = "done"

// DropFromEnv drops ServiceDrops when DropEnv is "1": it takes them out of
// the bounding and inheritable sets and executes the program again, with
// the same arguments, so that it starts without them on every thread (a
// capability set belongs to a thread, and the Go runtime has several before
// main runs; root's new program gets the bounding set, no more). It also
// sets no_new_privs, so nothing the service runs, a remote shell included,
// gets them back through a file capability or a set-uid bit. After the
// re-exec it checks the drop and returns true. It returns false when DropEnv
// is unset. Errors: the kernel refused, or the check found a capability
// still held; the caller must exit, as going on would fail open.
func DropFromEnv() (bool, error) {
	switch os.Getenv(DropEnv) {
	case "":
		return false, nil
	case dropped:
		return true, Check(ServiceDrops)
	case "1":
		return true, dropAndExec(ServiceDrops)
	}
	return true, fmt.Errorf("sandbox: %s=%q, want 1", DropEnv, os.Getenv(DropEnv))
}

// dropAndExec returns only on error.
func dropAndExec(caps []uintptr) error {
	// The sets changed are this thread's, and execve runs on it.
	runtime.LockOSThread()
	for _, c := range caps {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, c, 0, 0, 0); err != nil && err != unix.EINVAL {
			return fmt.Errorf("sandbox: dropping capability %d from the bounding set: %w", c, err)
		}
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("sandbox: capget: %w", err)
	}
	for _, c := range caps {
		i, bit := c/32, uint32(1)<<(c%32)
		data[i].Effective &^= bit
		data[i].Permitted &^= bit
		data[i].Inheritable &^= bit
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("sandbox: capset: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("sandbox: no_new_privs: %w", err)
	}
	env := []string{DropEnv + "=" + dropped}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, DropEnv+"=") {
			env = append(env, kv)
		}
	}
	err := unix.Exec("/proc/self/exe", os.Args, env)
	return fmt.Errorf("sandbox: executing itself again: %w", err)
}

// Check reads /proc/self/status and returns an error naming any of caps
// still in the effective, permitted or bounding set.
func Check(caps []uintptr) error {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		name, v, ok := strings.Cut(l, ":")
		if !ok || (name != "CapEff" && name != "CapPrm" && name != "CapBnd") {
			continue
		}
		var set uint64
		if _, err := fmt.Sscanf(strings.TrimSpace(v), "%x", &set); err != nil {
			return fmt.Errorf("sandbox: %s: %q", name, v)
		}
		for _, c := range caps {
			if set&(1<<c) != 0 {
				return fmt.Errorf("sandbox: capability %d is still in %s", c, name)
			}
		}
	}
	return nil
}

// OwnedDir makes dir (and its parents, root's) if missing and gives it to
// uid:gid with mode perm (os.ModeSetgid for the set-group-ID bit: Go's
// FileMode does not read 0o2000 as it), also when it exists with another
// owner or mode:
// PID 1 prepares the wallet's directory this way before each start, so a
// directory left 0755 by an older image, or by hand, is closed again.
// Errors: dir is not a directory, or a step failed.
func OwnedDir(dir string, uid, gid int, perm os.FileMode) error {
	if perm&^(os.ModePerm|os.ModeSetgid|os.ModeSticky) != 0 {
		return fmt.Errorf("sandbox: mode %v for %s: only permission bits, set-group-ID and sticky", perm, dir)
	}
	if err := os.MkdirAll(dir, perm.Perm()); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("sandbox: %s is not a directory", dir)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	// Chmod, unlike Mkdir's mode, is not masked by the umask; it also
	// sets the set-gid bit when perm has it.
	if err := os.Chmod(dir, perm); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	return nil
}

// CloseDisks gives every block device in devDir (the card, its
// partitions, a USB stick) to DiskUID, mode 0600, so that no service's root
// opens one once its capabilities are dropped: the raw card is a way
// around /perm/wallet's permissions. It returns how many it changed.
// Errors: devDir is unreadable; a device that fails is reported, the others
// are still closed.
func CloseDisks(devDir string) (int, error) {
	ents, err := os.ReadDir(devDir)
	if err != nil {
		return 0, fmt.Errorf("sandbox: %w", err)
	}
	n := 0
	var errs []error
	for _, e := range ents {
		if e.Type()&os.ModeDevice == 0 || e.Type()&os.ModeCharDevice != 0 {
			continue
		}
		p := devDir + "/" + e.Name()
		if err := os.Chown(p, DiskUID, 0); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := os.Chmod(p, 0o600); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}
