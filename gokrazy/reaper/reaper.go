package reaper

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Exit describes how a child process ended, as reported by wait4.
type Exit struct {
	// PID is the process ID that was reaped.
	PID int
	// Status is the raw wait status (exit code or terminating signal).
	Status unix.WaitStatus
}

// Code returns the exit code, or -1 if the process was killed by a signal.
func (e Exit) Code() int {
	if e.Status.Exited() {
		return e.Status.ExitStatus()
	}
	return -1
}

// Success reports whether the process exited normally with code 0.
func (e Exit) Success() bool { return e.Status.Exited() && e.Status.ExitStatus() == 0 }

// String renders the exit like os.ProcessState does: "exit status 3" or
// "signal: killed".
func (e Exit) String() string {
	switch {
	case e.Status.Exited():
		return fmt.Sprintf("exit status %d", e.Status.ExitStatus())
	case e.Status.Signaled():
		s := "signal: " + e.Status.Signal().String()
		if e.Status.CoreDump() {
			s += " (core dumped)"
		}
		return s
	default:
		return fmt.Sprintf("wait status %#x", uint32(e.Status))
	}
}

// Reaper owns all waiting for child processes of this process. The zero
// value is not usable; call New. All methods are safe for concurrent use.
type Reaper struct {
	mu       sync.Mutex
	children map[int]*child
	orphans  atomic.Uint64

	onOrphan func(Exit)
	tick     time.Duration
}

type child struct {
	exit chan Exit
}

// Options tune a Reaper; the zero value is fine.
type Options struct {
	// OnOrphan, if set, is called (from the reaping goroutine, so it must
	// not block) for every reaped process that was not started through
	// Start.
	OnOrphan func(Exit)
	// Poll is a safety-net interval at which the loop reaps even without a
	// SIGCHLD; 0 means 5 s. SIGCHLD is the normal wake-up; the poll only
	// guards against a notification lost to a full signal channel.
	Poll time.Duration
}

// New returns a Reaper. It does nothing until Run is called.
func New(opts Options) *Reaper {
	if opts.Poll <= 0 {
		opts.Poll = 5 * time.Second
	}
	return &Reaper{
		children: make(map[int]*child),
		onOrphan: opts.OnOrphan,
		tick:     opts.Poll,
	}
}

// Start starts cmd (via cmd.Start) and registers its PID atomically with
// respect to the reaping loop. The returned channel receives exactly one
// Exit when the process has been reaped and is then never written again.
//
// The caller must not call cmd.Wait. cmd.Stdout and cmd.Stderr should be
// nil or *os.File: other writers make os/exec start copying goroutines
// that only cmd.Wait would finish. Once the Exit has been received the
// caller should call cmd.Process.Release to close the process's pidfd
// promptly (the garbage collector closes it otherwise). Between reaping and
// Release, cmd.Process.Signal is still safe: on Linux >= 5.4 it goes through
// the pidfd and returns os.ErrProcessDone instead of hitting a recycled PID.
func (r *Reaper) Start(cmd *exec.Cmd) (<-chan Exit, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{exit: make(chan Exit, 1)}
	r.children[cmd.Process.Pid] = c
	return c.exit, nil
}

// Orphans returns how many processes not started through Start were
// reaped so far.
func (r *Reaper) Orphans() uint64 { return r.orphans.Load() }

// Running returns how many processes started through Start have not been
// reaped yet.
func (r *Reaper) Running() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.children)
}

// Run reaps children until ctx is done, then returns ctx.Err(). Exactly one
// Run may be active per process; it must be running for Start's exit
// channels to fire.
func (r *Reaper) Run(ctx context.Context) error {
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGCHLD)
	defer signal.Stop(sigc)
	t := time.NewTicker(r.tick)
	defer t.Stop()
	for {
		r.ReapAll()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-sigc:
		case <-t.C:
		}
	}
}

// ReapAll collects every child that has already exited, without blocking,
// and dispatches the exits. Run calls it on every SIGCHLD; it is exported
// for callers that want to reap synchronously (e.g. right before
// poweroff).
func (r *Reaper) ReapAll() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			// ECHILD: no children at all; 0: none exited yet.
			return
		}
		if ws.Stopped() || ws.Continued() {
			continue // not an exit; wait4 without WUNTRACED never reports these
		}
		r.dispatch(Exit{PID: pid, Status: ws})
	}
}

func (r *Reaper) dispatch(e Exit) {
	r.mu.Lock()
	c, ok := r.children[e.PID]
	delete(r.children, e.PID)
	r.mu.Unlock()
	if !ok {
		r.orphans.Add(1)
		if r.onOrphan != nil {
			r.onOrphan(e)
		}
		return
	}
	c.exit <- e
}

// Output runs cmd to completion through r, like exec.Cmd.CombinedOutput
// (which PID 1 must not use, see the package documentation), and returns
// its combined stdout and stderr and how it exited. cmd.Stdout and
// cmd.Stderr must be nil. If ctx ends first the process is killed, still
// reaped, and ctx.Err() is returned with whatever it printed. Output also
// waits for descendants that inherited the output pipe, until ctx ends.
func (r *Reaper) Output(ctx context.Context, cmd *exec.Cmd) ([]byte, Exit, error) {
	if cmd.Stdout != nil || cmd.Stderr != nil {
		return nil, Exit{}, errors.New("reaper: Output needs cmd.Stdout and cmd.Stderr unset")
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, Exit{}, err
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	exitc, err := r.Start(cmd)
	pw.Close()
	if err != nil {
		pr.Close()
		return nil, Exit{}, err
	}
	var out []byte
	read := make(chan struct{})
	go func() {
		defer close(read)
		out, _ = io.ReadAll(pr)
	}()
	var e Exit
	var cerr error
	select {
	case e = <-exitc:
	case <-ctx.Done():
		cmd.Process.Kill()
		e = <-exitc
		cerr = ctx.Err()
	}
	cmd.Process.Release()
	select {
	case <-read:
	case <-ctx.Done():
		cerr = ctx.Err()
	}
	pr.Close() // also unblocks the reader if ctx ended first
	<-read
	return out, e, cerr
}
