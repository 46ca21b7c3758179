package reaper

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// helperEnv selects a helper behaviour when the test binary is re-executed.
const helperEnv = "REAPER_TEST_HELPER"

func TestMain(m *testing.M) {
	switch mode := os.Getenv(helperEnv); {
	case mode == "":
		os.Exit(m.Run())
	case strings.HasPrefix(mode, "exit:"):
		code, _ := strconv.Atoi(strings.TrimPrefix(mode, "exit:"))
		os.Exit(code)
	case mode == "print-exit":
		fmt.Println("to stdout")
		fmt.Fprintln(os.Stderr, "to stderr")
		os.Exit(4)
	case mode == "sleep-long":
		time.Sleep(time.Hour)
	case mode == "sleep-exit":
		time.Sleep(200 * time.Millisecond)
		os.Exit(7)
	case mode == "spawn-grandchild":
		spawnGrandchild()
	case mode == "subreaper":
		subreaper()
	default:
		fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
		os.Exit(2)
	}
}

// spawnGrandchild starts a process and exits at once without waiting for
// it, so the grandchild is orphaned.
func spawnGrandchild() {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"=sleep-exit")
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	fmt.Println(cmd.Process.Pid)
	os.Exit(0)
}

// subreaper becomes a child subreaper (a PID 1 stand-in), runs a Reaper,
// starts spawn-grandchild through it and reports what the Reaper saw.
func subreaper() {
	fail := func(format string, args ...any) {
		fmt.Printf("FAIL "+format+"\n", args...)
		os.Exit(1)
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fail("prctl: %v", err)
	}
	orphans := make(chan Exit, 4)
	r := New(Options{OnOrphan: func(e Exit) { orphans <- e }})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)

	pr, pw, err := os.Pipe()
	if err != nil {
		fail("pipe: %v", err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"=spawn-grandchild")
	cmd.Stdout = pw
	cmd.Stderr = os.Stderr
	exitc, err := r.Start(cmd)
	pw.Close()
	if err != nil {
		fail("start: %v", err)
	}
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		fail("read grandchild pid: %v", err)
	}
	gpid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		fail("grandchild pid %q: %v", line, err)
	}
	select {
	case e := <-exitc:
		if e.PID != cmd.Process.Pid || !e.Success() {
			fail("direct child exit = %+v (%v), want pid %d success", e, e, cmd.Process.Pid)
		}
	case <-time.After(30 * time.Second):
		fail("direct child exit never delivered")
	}
	select {
	case e := <-orphans:
		if e.PID != gpid || e.Code() != 7 {
			fail("orphan = pid %d %v, want pid %d exit status 7", e.PID, e, gpid)
		}
	case <-time.After(30 * time.Second):
		fail("orphan %d never reaped", gpid)
	}
	// A reaped process has no /proc entry; a zombie would still have one.
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", gpid)); !os.IsNotExist(err) {
		fail("/proc/%d still exists after reaping (err=%v)", gpid, err)
	}
	if got := r.Orphans(); got != 1 {
		fail("Orphans() = %d, want 1", got)
	}
	fmt.Println("OK")
	os.Exit(0)
}

func runReaper(t *testing.T, opts Options) *Reaper {
	t.Helper()
	r := New(opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		r.Run(ctx)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return r
}

func helperCmd(mode string) *exec.Cmd {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	return cmd
}

// TestOrphansAreReaped runs a helper that is a child subreaper, so an
// orphaned grandchild is re-parented to it exactly as it would be to PID 1.
func TestOrphansAreReaped(t *testing.T) {
	r := runReaper(t, Options{})
	var out strings.Builder
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := helperCmd("subreaper")
	cmd.Stdout = pw
	cmd.Stderr = pw
	exitc, err := r.Start(cmd)
	pw.Close()
	if err != nil {
		t.Fatal(err)
	}
	readDone := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
		}
		close(readDone)
	}()
	select {
	case e := <-exitc:
		<-readDone
		if !e.Success() || !strings.Contains(out.String(), "OK") {
			t.Fatalf("subreaper helper: %v\n%s", e, out.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("subreaper helper did not finish")
	}
}

// TestExitCodesDispatched starts many children that exit immediately with
// distinct codes, concurrently, while the reaping loop runs: every Start
// must receive its own child's status (no lost or crossed exits, even when
// the child dies before Start returns).
func TestExitCodesDispatched(t *testing.T) {
	r := runReaper(t, Options{})
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(code int) {
			defer wg.Done()
			cmd := helperCmd(fmt.Sprintf("exit:%d", code))
			exitc, err := r.Start(cmd)
			if err != nil {
				errs <- err
				return
			}
			select {
			case e := <-exitc:
				if e.PID != cmd.Process.Pid || e.Code() != code {
					errs <- fmt.Errorf("child %d: got pid %d %v, want exit status %d", cmd.Process.Pid, e.PID, e, code)
				}
				cmd.Process.Release()
			case <-time.After(60 * time.Second):
				errs <- fmt.Errorf("exit %d never delivered", code)
			}
		}(i + 1)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := r.Orphans(); got != 0 {
		t.Errorf("Orphans() = %d, want 0 (all children were registered)", got)
	}
	if got := r.Running(); got != 0 {
		t.Errorf("Running() = %d after all exits", got)
	}
}

func TestSignalledExit(t *testing.T) {
	r := runReaper(t, Options{})
	cmd := helperCmd("sleep-exit")
	exitc, err := r.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-exitc:
		if e.Code() != -1 || e.String() != "signal: killed" {
			t.Fatalf("exit = %v (code %d), want signal: killed", e, e.Code())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit")
	}
	// After reaping, signalling through the pidfd must not reach anyone.
	if err := cmd.Process.Signal(unix.SIGKILL); err != os.ErrProcessDone {
		t.Errorf("Signal after reap = %v, want os.ErrProcessDone", err)
	}
}

func TestStartError(t *testing.T) {
	r := runReaper(t, Options{})
	if _, err := r.Start(exec.Command("/nonexistent/program")); err == nil {
		t.Fatal("Start of missing program succeeded")
	}
	if got := r.Running(); got != 0 {
		t.Fatalf("Running() = %d after failed start", got)
	}
}

func TestExitString(t *testing.T) {
	// Encodings per wait(2): exit code in bits 8-15; signal in bits 0-6;
	// core flag 0x80.
	cases := []struct {
		ws   unix.WaitStatus
		want string
		code int
	}{
		{0, "exit status 0", 0},
		{3 << 8, "exit status 3", 3},
		{unix.WaitStatus(unix.SIGTERM), "signal: terminated", -1},
		{unix.WaitStatus(unix.SIGSEGV) | 0x80, "signal: segmentation fault (core dumped)", -1},
	}
	for _, c := range cases {
		e := Exit{Status: c.ws}
		if e.String() != c.want || e.Code() != c.code {
			t.Errorf("%#x: got %q code %d, want %q code %d", uint32(c.ws), e.String(), e.Code(), c.want, c.code)
		}
	}
}

func TestOutput(t *testing.T) {
	r := runReaper(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, e, err := r.Output(ctx, helperCmd("print-exit"))
	if err != nil || e.Code() != 4 || string(out) != "to stdout\nto stderr\n" {
		t.Fatalf("Output = %q, %v, %v", out, e, err)
	}
	cmd := helperCmd("print-exit")
	cmd.Stdout = os.Stdout
	if _, _, err := r.Output(ctx, cmd); err == nil {
		t.Fatal("Output accepted a preset Stdout")
	}
}

func TestOutputCancel(t *testing.T) {
	r := runReaper(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, e, err := r.Output(ctx, helperCmd("sleep-long"))
	if err != context.DeadlineExceeded || e.String() != "signal: killed" {
		t.Fatalf("Output after deadline = %v, %v; want killed and context.DeadlineExceeded", e, err)
	}
}
