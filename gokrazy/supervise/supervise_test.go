package supervise

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/skyfleet/skyfleet/gokrazy/reaper"
)

const modeEnv = "SUPERVISE_TEST_MODE"

// TestMain turns the test binary into a helper service when modeEnv is
// set, so tests supervise real processes.
func TestMain(m *testing.M) {
	mode := os.Getenv(modeEnv)
	if mode == "" {
		os.Exit(m.Run())
	}
	helper(mode)
}

func helper(mode string) {
	switch mode {
	case "sleep":
		fmt.Println("hello from sleep")
		time.Sleep(time.Hour)
	case "tty":
		// Report whether stdin is our controlling terminal in a session we lead.
		_, err := unix.IoctlGetTermios(0, unix.TCGETS)
		sid, _ := unix.Getsid(0)
		fmt.Printf("tty=%v leader=%v\n", err == nil, sid == os.Getpid())
		time.Sleep(time.Hour)
	case "crash":
		fmt.Println("crashing")
		fmt.Fprintln(os.Stderr, "to stderr")
		os.Exit(3)
	case "flood":
		for i := 0; i < 10000; i++ {
			fmt.Printf("line %d\n", i)
		}
		time.Sleep(time.Hour)
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ignoring SIGTERM")
		time.Sleep(time.Hour)
	case "notify":
		// Ready once the file named by $GO_FILE exists.
		for {
			if _, err := os.Stat(os.Getenv("GO_FILE")); err == nil {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		if err := NotifyReady(); err != nil {
			fmt.Println("notify:", err)
			os.Exit(1)
		}
		time.Sleep(time.Hour)
	case "whoami":
		// Who the service runs as, what it may do, what it can reach.
		st, _ := os.ReadFile("/proc/self/status")
		var capEff string
		for _, l := range strings.Split(string(st), "\n") {
			if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
				capEff = strings.TrimSpace(v)
			}
		}
		groups, _ := os.Getgroups()
		ifs, _ := net.Interfaces()
		var up []string
		for _, i := range ifs {
			if i.Flags&net.FlagUp != 0 {
				up = append(up, i.Name)
			}
		}
		fmt.Printf("uid=%d gid=%d groups=%v capeff=%s up=%v\n", os.Getuid(), os.Getgid(), groups, capEff, up)
		time.Sleep(time.Hour)
	case "count":
		// Counts its runs in $COUNT_FILE; runs before $HOLD_RUN exit at
		// once, run $HOLD_RUN waits for $GO_FILE and then exits; later
		// runs exit at once again.
		f := os.Getenv("COUNT_FILE")
		b, _ := os.ReadFile(f)
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		n++
		os.WriteFile(f, []byte(strconv.Itoa(n)), 0o644)
		hold, _ := strconv.Atoi(os.Getenv("HOLD_RUN"))
		if n == hold {
			for {
				if _, err := os.Stat(os.Getenv("GO_FILE")); err == nil {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		os.Exit(1)
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", mode)
		os.Exit(2)
	}
	os.Exit(0)
}

func svc(name, mode string, extraEnv ...string) Service {
	env := append(os.Environ(), modeEnv+"="+mode)
	return Service{Name: name, Args: []string{os.Args[0]}, Env: append(env, extraEnv...)}
}

// newSup returns a Supervisor with a running Reaper; both are stopped at
// test cleanup.
func newSup(t *testing.T, opts Options) *Supervisor {
	t.Helper()
	r := reaper.New(reaper.Options{Poll: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	opts.Reaper = r
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer scancel()
		if err := s.Stop(sctx); err != nil {
			t.Errorf("cleanup Stop: %v", err)
		}
		cancel()
		<-done
	})
	return s
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func status(s *Supervisor, name string) ServiceStatus {
	for _, st := range s.Status() {
		if st.Name == name {
			return st
		}
	}
	return ServiceStatus{}
}

type backoffLog struct {
	mu     sync.Mutex
	delays []time.Duration
	exits  []string
}

func (b *backoffLog) record(name string, d time.Duration, exit string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.delays = append(b.delays, d)
	b.exits = append(b.exits, exit)
}

func (b *backoffLog) snapshot() ([]time.Duration, []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]time.Duration(nil), b.delays...), append([]string(nil), b.exits...)
}

func TestKilledServiceIsRestarted(t *testing.T) {
	var bl backoffLog
	s := newSup(t, Options{MinBackoff: 10 * time.Millisecond, OnBackoff: bl.record})
	if err := s.Start(svc("sleeper", "sleep")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "first run", func() bool {
		st := status(s, "sleeper")
		return st.State == Running && bytes.Contains(s.Logs("sleeper"), []byte("hello from sleep\n"))
	})
	first := status(s, "sleeper")
	if first.Restarts != 0 || !first.Ready {
		t.Fatalf("first run status = %+v", first)
	}
	if err := syscall.Kill(first.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "restart", func() bool {
		st := status(s, "sleeper")
		return st.State == Running && st.Restarts == 1
	})
	second := status(s, "sleeper")
	if second.PID == first.PID {
		t.Errorf("restarted service kept PID %d", first.PID)
	}
	if second.LastExit != "signal: killed" {
		t.Errorf("LastExit = %q, want signal: killed", second.LastExit)
	}
	if second.BackoffMS != 10 {
		t.Errorf("BackoffMS = %d, want 10", second.BackoffMS)
	}
	delays, _ := bl.snapshot()
	if len(delays) != 1 || delays[0] != 10*time.Millisecond {
		t.Errorf("backoff delays = %v, want [10ms]", delays)
	}
	// The killed process must be gone (reaped, not a zombie).
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", first.PID)); !os.IsNotExist(err) {
		t.Errorf("/proc/%d still exists: %v", first.PID, err)
	}
	waitFor(t, "second run's output", func() bool {
		return bytes.Count(s.Logs("sleeper"), []byte("hello from sleep\n")) == 2
	})
}

func TestCrashLoopBackoffGrows(t *testing.T) {
	var bl backoffLog
	s := newSup(t, Options{
		MinBackoff: 2 * time.Millisecond,
		MaxBackoff: 16 * time.Millisecond,
		OnBackoff:  bl.record,
	})
	if err := s.Start(svc("crasher", "crash")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "7 crashes", func() bool {
		d, _ := bl.snapshot()
		return len(d) >= 7
	})
	delays, exits := bl.snapshot()
	want := []time.Duration{2, 4, 8, 16, 16, 16, 16}
	for i, w := range want {
		if delays[i] != w*time.Millisecond {
			t.Fatalf("delays = %v, want prefix %v ms", delays, want)
		}
		if exits[i] != "exit status 3" {
			t.Fatalf("exit %d = %q, want exit status 3", i, exits[i])
		}
	}
	st := status(s, "crasher")
	if st.Restarts < 6 {
		t.Errorf("Restarts = %d after 7 crashes, want >= 6", st.Restarts)
	}
	logs := string(s.Logs("crasher"))
	if !strings.Contains(logs, "crashing\n") || !strings.Contains(logs, "to stderr\n") {
		t.Errorf("stdout and stderr not both captured: %q", logs)
	}
	if !strings.Contains(logs, "[supervise] exit status 3; restarting in 2ms") {
		t.Errorf("supervisor event missing from logs: %q", logs)
	}
}

// fakeClock is a settable clock for run durations.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestBackoffResetsAfterStableRun(t *testing.T) {
	var bl backoffLog
	clock := &fakeClock{now: time.Unix(1000, 0)}
	s := newSup(t, Options{
		MinBackoff:  2 * time.Millisecond,
		MaxBackoff:  time.Second,
		StableAfter: time.Minute,
		Now:         clock.Now,
		OnBackoff:   bl.record,
	})
	dir := t.TempDir()
	goFile := filepath.Join(dir, "go")
	if err := s.Start(svc("flaky", "count",
		"COUNT_FILE="+filepath.Join(dir, "count"), "HOLD_RUN=4", "GO_FILE="+goFile)); err != nil {
		t.Fatal(err)
	}
	// Runs 1-3 crash at once: 2, 4, 8 ms. Run 4 holds.
	waitFor(t, "fourth run", func() bool {
		st := status(s, "flaky")
		return st.State == Running && st.Restarts == 3
	})
	// Run 4 "lasts" two minutes on the supervisor's clock, then crashes.
	clock.Advance(2 * time.Minute)
	if err := os.WriteFile(goFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "6 backoffs", func() bool {
		d, _ := bl.snapshot()
		return len(d) >= 6
	})
	delays, _ := bl.snapshot()
	want := []time.Duration{2, 4, 8, 2, 4, 8} // reset after the stable run 4
	for i, w := range want {
		if delays[i] != w*time.Millisecond {
			t.Fatalf("delays = %v, want prefix %v ms", delays, want)
		}
	}
}

func TestLogsKeepTail(t *testing.T) {
	s := newSup(t, Options{LogBytes: 1024})
	if err := s.Start(svc("flood", "flood")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "last line", func() bool {
		return bytes.HasSuffix(s.Logs("flood"), []byte("line 9999\n"))
	})
	logs := s.Logs("flood")
	if len(logs) > 1024 || len(logs) < 1024-20 {
		t.Errorf("len(logs) = %d, want just under 1024", len(logs))
	}
	if !bytes.HasPrefix(logs, []byte("line ")) {
		t.Errorf("tail does not start at a line boundary: %q", logs[:20])
	}
	if bytes.Contains(logs, []byte("line 0\n")) || bytes.Contains(logs, []byte("line 9000\n")) {
		t.Error("old lines were kept")
	}
	// Every line in the tail is consecutive.
	lines := strings.Split(strings.TrimSuffix(string(logs), "\n"), "\n")
	for i := 1; i < len(lines); i++ {
		a, _ := strconv.Atoi(strings.TrimPrefix(lines[i-1], "line "))
		b, _ := strconv.Atoi(strings.TrimPrefix(lines[i], "line "))
		if b != a+1 {
			t.Fatalf("lines %q then %q are not consecutive", lines[i-1], lines[i])
		}
	}
	if s.Logs("nonexistent") != nil {
		t.Error("Logs of unknown service is not nil")
	}
}

// syncBuffer is a goroutine-safe bytes.Buffer.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestConsoleTee(t *testing.T) {
	var con syncBuffer
	s := newSup(t, Options{Console: &con, MinBackoff: time.Hour})
	if err := s.Start(svc("c1", "crash")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "console lines", func() bool {
		out := con.String()
		return strings.Contains(out, "c1: crashing\n") && strings.Contains(out, "c1: to stderr\n") &&
			strings.Contains(out, "supervise: c1: exit status 3; restarting in 1h0m0s\n")
	})
}

func TestStopTerminatesAll(t *testing.T) {
	s := newSup(t, Options{StopGrace: 100 * time.Millisecond, MinBackoff: time.Hour})
	for _, sv := range []Service{svc("polite", "sleep"), svc("stubborn", "ignore-term"), svc("waiting", "crash")} {
		if err := s.Start(sv); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "all started", func() bool {
		return status(s, "polite").State == Running &&
			bytes.Contains(s.Logs("stubborn"), []byte("ignoring SIGTERM")) &&
			status(s, "waiting").State == Backoff
	})
	pids := []int{status(s, "polite").PID, status(s, "stubborn").PID}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for _, st := range s.Status() {
		if st.State != Stopped || st.PID != 0 {
			t.Errorf("%s after Stop: %+v", st.Name, st)
		}
	}
	if got := status(s, "polite").LastExit; got != "signal: terminated" {
		t.Errorf("polite LastExit = %q, want signal: terminated", got)
	}
	if got := status(s, "stubborn").LastExit; got != "signal: killed" {
		t.Errorf("stubborn LastExit = %q, want signal: killed (SIGKILL after grace)", got)
	}
	for _, pid := range pids {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); !os.IsNotExist(err) {
			t.Errorf("process %d still exists after Stop", pid)
		}
	}
	if err := s.Start(svc("late", "sleep")); err == nil {
		t.Error("Start after Stop succeeded")
	}
}

func TestNotifyReadyAndWaitReady(t *testing.T) {
	s := newSup(t, Options{})
	goFile := filepath.Join(t.TempDir(), "go")
	if err := s.Start(svc("plain", "sleep")); err != nil {
		t.Fatal(err)
	}
	sv := svc("notifier", "notify", "GO_FILE="+goFile)
	sv.NotifyReady = true
	if err := s.Start(sv); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both running", func() bool {
		return status(s, "plain").State == Running && status(s, "notifier").State == Running
	})
	if status(s, "notifier").Ready || s.Ready() {
		t.Fatal("notifier ready before it notified")
	}
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	err := s.WaitReady(short)
	cancel()
	if err == nil || !strings.Contains(err.Error(), "notifier") || strings.Contains(err.Error(), "plain") {
		t.Fatalf("WaitReady before notify = %v, want an error naming only notifier", err)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		done <- s.WaitReady(ctx)
	}()
	if err := os.WriteFile(goFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !status(s, "notifier").Ready || !s.Ready() {
		t.Fatal("not ready after WaitReady returned")
	}
}

func TestStartFailureIsRetried(t *testing.T) {
	var bl backoffLog
	s := newSup(t, Options{MinBackoff: time.Millisecond, OnBackoff: bl.record})
	if err := s.Start(Service{Name: "missing", Args: []string{"/nonexistent/prog"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "two failed starts", func() bool {
		d, _ := bl.snapshot()
		return len(d) >= 2
	})
	st := status(s, "missing")
	if !strings.HasPrefix(st.LastExit, "start: ") || st.Ready {
		t.Errorf("status = %+v, want LastExit start: ... and not ready", st)
	}
}

func TestStartValidation(t *testing.T) {
	s := newSup(t, Options{MinBackoff: time.Hour})
	if err := s.Start(Service{Name: "x"}); err == nil {
		t.Error("Start without Args succeeded")
	}
	if err := s.Start(Service{Args: []string{"/bin/true"}}); err == nil {
		t.Error("Start without Name succeeded")
	}
	if err := s.Start(svc("dup", "sleep")); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(svc("dup", "sleep")); err == nil {
		t.Error("duplicate name accepted")
	}
	if _, err := New(Options{}); err == nil {
		t.Error("New without Reaper succeeded")
	}
}

func TestStatusJSON(t *testing.T) {
	st := ServiceStatus{Name: "mesh", State: Backoff, PID: 0, Restarts: 2, LastExit: "exit status 1",
		StartedAt: time.Unix(0, 0).UTC(), BackoffMS: 400}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"name": "mesh", "state": "backoff", "restarts": 2.0, "last_exit": "exit status 1",
		"started_at": "1970-01-01T00:00:00Z", "ready": false, "backoff_ms": 400.0,
	}
	if len(m) != len(want) {
		t.Errorf("JSON keys = %v, want %v", m, want)
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("JSON %s = %v, want %v", k, m[k], v)
		}
	}
}

// A TTY service gets the terminal as stdio and as its controlling terminal, as an
// interactive shell on the console needs.
// TestCredentialAndNetns runs a service as the wallet does: another uid
// with no supplementary groups and a network namespace of its own. It needs
// root (as PID 1 has); CI runs as root.
func TestCredentialAndNetns(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to change uid and make a network namespace")
	}
	// The test binary must be executable by the other uid: go test keeps
	// it in a 0700 directory.
	dir, err := os.MkdirTemp("", "supervise")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "helper")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	s := newSup(t, Options{})
	sv := svc("wallet", "whoami")
	sv.Args[0] = bin
	sv.Credential = &syscall.Credential{Uid: 64100, Gid: 64100}
	sv.Cloneflags = syscall.CLONE_NEWNET
	if err := s.Start(sv); err != nil {
		t.Fatal(err)
	}
	var line string
	waitFor(t, "the service's line", func() bool {
		line = string(s.Logs("wallet"))
		return strings.Contains(line, "uid=") || strings.Contains(line, "start:")
	})
	// No capability at all, no group of root's, and not even the
	// loopback up: the new namespace's lo starts down.
	want := "uid=64100 gid=64100 groups=[] capeff=0000000000000000 up=[]"
	if !strings.Contains(line, want) {
		t.Errorf("the service reports %q, want %q", line, want)
	}
	// The spec handed in is not changed by the start.
	if sv.Credential.Groups != nil {
		t.Errorf("Start changed the caller's Credential: %+v", sv.Credential)
	}
}

func TestTTYService(t *testing.T) {
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("no pty support: %v", err)
	}
	defer master.Close()
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s := newSup(t, Options{})
	sv := svc("shell", "tty")
	sv.TTY = fmt.Sprintf("/dev/pts/%d", n)
	if err := s.Start(sv); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		buf := make([]byte, 256)
		var acc []byte
		for !bytes.Contains(acc, []byte("\n")) {
			k, err := master.Read(buf)
			if err != nil {
				break
			}
			acc = append(acc, buf[:k]...)
		}
		got <- string(acc)
	}()
	select {
	case line := <-got:
		if !strings.Contains(line, "tty=true leader=true") {
			t.Errorf("service on a TTY saw %q", line)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("nothing from the TTY service")
	}
	if len(s.Logs("shell")) != 0 {
		t.Errorf("TTY output leaked into the log ring: %q", s.Logs("shell"))
	}
}
