package hwsimtest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Line is one line of a Daemon's output and when it was read.
type Line struct {
	Text string
	At   time.Time
}

// Daemon is a long-running program (hostapd, wpa_supplicant) whose output, stdout
// and stderr together, is kept line by line. The program writes to a
// pseudo-terminal, so C stdio flushes every line as it would on a console rather
// than holding them in a pipe's buffer.
type Daemon struct {
	Name    string    // the program, as started
	Started time.Time // when it was started

	cmd  *exec.Cmd
	mu   sync.Mutex
	log  []Line
	next int           // where the next WaitFor starts looking
	wake chan struct{} // closed and replaced on each line and at exit
	done bool          // the output has ended: the program exited
	err  error         // its exit status, once done
}

// Start starts name with args inside the namespace as a Daemon.
func (n *Netns) Start(name string, args ...string) (*Daemon, error) {
	master, slave, err := openPTY()
	if err != nil {
		return nil, fmt.Errorf("hwsimtest: a terminal for %s: %w", name, err)
	}
	cmd := n.Command(name, args...)
	cmd.Stdout, cmd.Stderr = slave, slave
	d := &Daemon{Name: name, cmd: cmd, wake: make(chan struct{})}
	d.Started = time.Now()
	err = cmd.Start()
	slave.Close()
	if err != nil {
		master.Close()
		return nil, fmt.Errorf("hwsimtest: start %s: %w", name, err)
	}
	go d.read(master)
	return d, nil
}

// read collects the output until the terminal closes (the program and everything
// it started have exited), then reaps the program.
func (d *Daemon) read(master *os.File) {
	sc := bufio.NewScanner(master)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		text := strings.TrimRight(sc.Text(), "\r")
		d.mu.Lock()
		d.log = append(d.log, Line{Text: text, At: time.Now()})
		close(d.wake)
		d.wake = make(chan struct{})
		d.mu.Unlock()
	}
	master.Close()
	err := d.cmd.Wait()
	d.mu.Lock()
	d.done, d.err = true, err
	close(d.wake)
	d.wake = make(chan struct{})
	d.mu.Unlock()
}

// WaitFor waits up to timeout for a line containing substr (e.g. "AP-ENABLED",
// "CTRL-EVENT-CONNECTED") and returns it. It looks only at the lines after the one
// the previous successful WaitFor returned, so successive calls follow the
// program's events in order. It fails, with the output's last lines, when the time
// is up or the program exits first (wrapping ErrExited).
func (d *Daemon) WaitFor(substr string, timeout time.Duration) (Line, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		d.mu.Lock()
		for i := d.next; i < len(d.log); i++ {
			if strings.Contains(d.log[i].Text, substr) {
				d.next = i + 1
				l := d.log[i]
				d.mu.Unlock()
				return l, nil
			}
		}
		done, exitErr, wake := d.done, d.err, d.wake
		d.mu.Unlock()
		if done {
			return Line{}, fmt.Errorf("hwsimtest: %s printed no %q: %w (%v); its last lines:\n%s", d.Name, substr, ErrExited, exitErr, d.tail(20))
		}
		select {
		case <-wake:
		case <-timer.C:
			return Line{}, fmt.Errorf("hwsimtest: %s printed no %q in %v; its last lines:\n%s", d.Name, substr, timeout, d.tail(20))
		}
	}
}

// Output returns everything the program has printed so far, one line each.
func (d *Daemon) Output() string {
	return d.tail(0)
}

// tail returns the last n lines of output, all of them if n is 0.
func (d *Daemon) tail(n int) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	lines := d.log
	if n > 0 && len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	var b strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&b, "%s %s\n", l.At.Format("15:04:05.000"), l.Text)
	}
	return b.String()
}

// Stop ends the program: SIGTERM, and SIGKILL if it has not exited within
// 5 seconds. It returns once the output is complete; the program's exit status on
// SIGTERM is not an error, other failures to end are.
func (d *Daemon) Stop() error {
	d.mu.Lock()
	done := d.done
	d.mu.Unlock()
	if !done {
		d.cmd.Process.Signal(syscall.SIGTERM)
	}
	if err := Poll(5*time.Second, 20*time.Millisecond, d.exited); err != nil {
		d.cmd.Process.Kill()
		if err := Poll(5*time.Second, 20*time.Millisecond, d.exited); err != nil {
			return fmt.Errorf("hwsimtest: %s will not end: %w", d.Name, err)
		}
	}
	return nil
}

func (d *Daemon) exited() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.done {
		return fmt.Errorf("%s is running", d.Name)
	}
	return nil
}

// Hostapd writes conf (a hostapd.conf, with interface= and driver=nl80211) to
// dir/hostapd.conf and starts hostapd on it inside n. Wait for "AP-ENABLED" before
// using the AP.
func Hostapd(n *Netns, dir, conf string) (*Daemon, error) {
	path := filepath.Join(dir, "hostapd.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	return n.Start("hostapd", path)
}

// WpaSupplicant writes conf (a wpa_supplicant.conf; with p2p_disabled=1, as hwsim's
// radios would otherwise get a P2P device that has no interface index) to
// dir/wpa_supplicant-IFACE.conf and starts wpa_supplicant on iface with the
// nl80211 driver inside n. Wait for "CTRL-EVENT-CONNECTED" before using the link.
func WpaSupplicant(n *Netns, dir, iface, conf string) (*Daemon, error) {
	path := filepath.Join(dir, "wpa_supplicant-"+iface+".conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	return n.Start("wpa_supplicant", "-D", "nl80211", "-i", iface, "-c", path)
}

// openPTY returns a new pseudo-terminal's master and slave, the slave raw (no
// "\r\n" for "\n").
func openPTY() (master, slave *os.File, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*os.File, *os.File, error) {
		master.Close()
		return nil, nil, err
	}
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		return fail(err)
	}
	num, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		return fail(err)
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", num), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return fail(err)
	}
	tio, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err == nil {
		tio.Oflag &^= unix.OPOST
		tio.Lflag &^= unix.ECHO | unix.ICANON | unix.ISIG
		err = unix.IoctlSetTermios(int(slave.Fd()), unix.TCSETS, tio)
	}
	if err != nil {
		slave.Close()
		return fail(err)
	}
	return master, slave, nil
}
