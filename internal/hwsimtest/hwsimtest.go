// Package hwsimtest drives the kernel's mac80211_hwsim simulated radios for tests
// inside the kernel VM (scripts/kernelvm.sh with KERNELVM_MODULES=mac80211_hwsim):
// it finds the radios, gives each end of a link its own network namespace (in one
// namespace mac80211 would deliver the traffic locally and never through the
// radios), runs programs there and starts reference daemons (Debian's hostapd and
// wpa_supplicant, KERNELVM_TOOLS) whose output it keeps and waits on.
//
// It runs the guest's programs: iw to move a radio, busybox nsenter to enter a
// namespace. Its tests carry the build tag kernelvm; the package itself builds
// anywhere but does something useful only as root beside mac80211_hwsim.
package hwsimtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// SysClass is where the kernel lists the wireless phys, one directory each.
const SysClass = "/sys/class/ieee80211"

// Phys returns the names of the wireless phys in SysClass ("phy0", "phy1", ...),
// sorted by number. It is an error if there are none (mac80211_hwsim not loaded).
func Phys() ([]string, error) {
	ents, err := os.ReadDir(SysClass)
	if err != nil {
		return nil, fmt.Errorf("hwsimtest: no wireless phys (is mac80211_hwsim loaded?): %w", err)
	}
	var phys []string
	for _, e := range ents {
		phys = append(phys, e.Name())
	}
	if len(phys) == 0 {
		return nil, fmt.Errorf("hwsimtest: %s is empty (is mac80211_hwsim loaded?)", SysClass)
	}
	sort.Slice(phys, func(i, j int) bool {
		if len(phys[i]) != len(phys[j]) {
			return len(phys[i]) < len(phys[j])
		}
		return phys[i] < phys[j]
	})
	return phys, nil
}

// Interfaces returns the names of phy's network interfaces (e.g. ["wlan0"]) as
// the caller's network namespace sees them: read them before moving the phy away.
func Interfaces(phy string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(SysClass, phy, "device", "net"))
	if err != nil {
		return nil, fmt.Errorf("hwsimtest: interfaces of %s: %w", phy, err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names, nil
}

// Netns is a network namespace of its own, kept alive by a child process (a
// `sleep`) that Close ends; the kernel then moves its phys back to the initial
// namespace.
type Netns struct {
	holder *exec.Cmd
}

// NewNetns creates a network namespace with its loopback interface up.
func NewNetns() (*Netns, error) {
	cmd := exec.Command("sleep", "1000000")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("hwsimtest: new network namespace: %w", err)
	}
	n := &Netns{holder: cmd}
	if out, err := n.Run("ip", "link", "set", "lo", "up"); err != nil {
		n.Close()
		return nil, fmt.Errorf("hwsimtest: loopback up in the new namespace: %v: %s", err, out)
	}
	return n, nil
}

// PID returns the process that holds the namespace, for `iw phy X set netns PID`
// or nsenter -t PID.
func (n *Netns) PID() int { return n.holder.Process.Pid }

// MovePhy moves phy, with its interfaces, into the namespace (iw phy PHY set netns
// PID).
func (n *Netns) MovePhy(phy string) error {
	out, err := exec.Command("iw", "phy", phy, "set", "netns", fmt.Sprint(n.PID())).CombinedOutput()
	if err != nil {
		return fmt.Errorf("hwsimtest: iw phy %s set netns %d: %v: %s", phy, n.PID(), err, out)
	}
	return nil
}

// Command returns a command that runs name with args inside the namespace (through
// nsenter, which execs it: signals reach the program itself).
func (n *Netns) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("nsenter", append([]string{"-t", fmt.Sprint(n.PID()), "-n", "-F", "--", name}, args...)...)
}

// Run runs name with args inside the namespace and returns its combined output;
// a non-zero exit is an error.
func (n *Netns) Run(name string, args ...string) (string, error) {
	out, err := n.Command(name, args...).CombinedOutput()
	if err != nil {
		err = fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return string(out), err
}

// Close ends the namespace's holder process. Programs still running inside keep
// the namespace alive.
func (n *Netns) Close() error {
	n.holder.Process.Kill()
	n.holder.Wait()
	return nil
}

// Poll calls cond every interval until it returns nil or timeout has passed since
// the first call, and then returns cond's last error, saying how long it tried.
func Poll(timeout, interval time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still after %v: %w", timeout, err)
		}
		time.Sleep(interval)
	}
}

// ErrExited is wrapped by Daemon.WaitFor's error when the program ended before the
// line came.
var ErrExited = errors.New("the program exited")
