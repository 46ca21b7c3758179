package supervise

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/skyfleet/skyfleet/gokrazy/reaper"
)

// Service describes one long-running program to keep alive.
type Service struct {
	// Name identifies the service in Status, Logs and console output; it
	// must be unique within a Supervisor and non-empty.
	Name string
	// Args is the full argv, Args[0] being the program path (e.g.
	// "/proc/self/exe" or os.Args[0] for a re-exec of skyfleetd with a
	// subcommand in Args[1]). It must not be empty.
	Args []string
	// Env is the complete environment of the child ("KEY=value"); nil
	// means the supervisor's own environment.
	Env []string
	// Dir is the working directory; empty means the supervisor's.
	Dir string
	// TTY, if set, is a terminal device (e.g. "/dev/console") that becomes the
	// service's stdin, stdout and stderr and its controlling terminal, in a
	// session of its own: this is how an interactive shell runs. Its output
	// then goes to the terminal, not to Logs.
	TTY string
	// NotifyReady means the service reports readiness itself by calling
	// NotifyReady (which writes to the inherited file descriptor named by
	// $SKYFLEET_READY_FD). Otherwise a service is ready as soon as its
	// program has been executed successfully.
	NotifyReady bool
	// Credential, if set, runs the service as that uid and gid with the
	// supplementary groups it lists (none when empty). A process that
	// changes from uid 0 to another holds no capabilities after exec: this
	// is how the wallet runs as its own user.
	Credential *syscall.Credential
	// Cloneflags are namespaces the service gets of its own, made at fork
	// while the child still has the supervisor's privileges, e.g.
	// syscall.CLONE_NEWNET: a network namespace with nothing but a
	// loopback that stays down, so the service can reach no network.
	Cloneflags uintptr
}

// State is the lifecycle state of a service.
type State string

// Service states, as reported in ServiceStatus.State.
const (
	// Starting: the process is being created.
	Starting State = "starting"
	// Running: the process exists (exec succeeded).
	Running State = "running"
	// Backoff: the process exited and is waiting for its restart delay.
	Backoff State = "backoff"
	// Stopped: the supervisor was stopped; the service will not restart.
	Stopped State = "stopped"
)

// ServiceStatus is a snapshot of one service, shaped for the status API.
type ServiceStatus struct {
	// Name is Service.Name.
	Name string `json:"name"`
	// State is the current lifecycle state.
	State State `json:"state"`
	// PID is the process ID while Running, else 0.
	PID int `json:"pid,omitempty"`
	// Restarts counts how many times the service was started again after
	// its first start.
	Restarts int `json:"restarts"`
	// LastExit describes how the previous run ended ("exit status 1",
	// "signal: killed", "start: <error>"); empty before the first exit.
	LastExit string `json:"last_exit,omitempty"`
	// StartedAt is when the current (or last) run started, from the
	// supervisor's clock.
	StartedAt time.Time `json:"started_at,omitzero"`
	// Ready reports whether the current run is ready (see
	// Service.NotifyReady).
	Ready bool `json:"ready"`
	// BackoffMS is the restart delay chosen after the last exit, in
	// milliseconds; 0 before the first exit.
	BackoffMS int64 `json:"backoff_ms,omitempty"`
}

// ReadyFDEnv names the environment variable that tells a NotifyReady
// service which file descriptor to write to.
const ReadyFDEnv = "SKYFLEET_READY_FD"

// NotifyReady is called by a supervised service (in the child process)
// to report that it is ready. It is a no-op returning nil when the
// service was not started with Service.NotifyReady, so services can call
// it unconditionally.
func NotifyReady() error {
	v := os.Getenv(ReadyFDEnv)
	if v == "" {
		return nil
	}
	var fd int
	if _, err := fmt.Sscanf(v, "%d", &fd); err != nil {
		return fmt.Errorf("supervise: bad %s=%q", ReadyFDEnv, v)
	}
	f := os.NewFile(uintptr(fd), "ready")
	if f == nil {
		return fmt.Errorf("supervise: bad %s=%q", ReadyFDEnv, v)
	}
	defer f.Close()
	os.Unsetenv(ReadyFDEnv)
	_, err := f.Write([]byte{'\n'})
	return err
}

// Options configure a Supervisor. Zero durations and sizes take the
// defaults given per field.
type Options struct {
	// Reaper waits for the children; required, and its Run must be active
	// (see package reaper for why waiting is centralised).
	Reaper *reaper.Reaper
	// LogBytes is the per-service log ring capacity; default 64 KiB.
	LogBytes int
	// Console, if set, receives every output line of every service as
	// "name: line\n", plus the supervisor's own event lines.
	Console io.Writer
	// MinBackoff is the first restart delay; default 100 ms.
	MinBackoff time.Duration
	// MaxBackoff caps the doubling restart delay; default 30 s.
	MaxBackoff time.Duration
	// StableAfter: a run that lasted at least this long resets the delay
	// to MinBackoff; default 10 s.
	StableAfter time.Duration
	// StopGrace is how long Stop waits after SIGTERM before SIGKILL;
	// default 5 s.
	StopGrace time.Duration
	// Now is the clock for StartedAt and run durations; default time.Now.
	Now func() time.Time
	// OnBackoff, if set, is called after each exit of a service that will
	// be restarted, with the chosen delay and the exit description. It
	// runs on the service's goroutine and must not block for long.
	OnBackoff func(name string, delay time.Duration, exit string)
}

// Supervisor keeps a set of services running as child processes. Create
// it with New; all methods are safe for concurrent use.
type Supervisor struct {
	opts    Options
	console *console

	mu       sync.Mutex
	services []*service // in Start order
	byName   map[string]*service
	stopping bool
	stopc    chan struct{} // closed by Stop
	changed  chan struct{} // closed and replaced on every state change
}

type service struct {
	spec Service
	logs *ring
	done chan struct{} // closed when the service loop has ended

	// Guarded by Supervisor.mu.
	state     State
	proc      *os.Process
	pid       int
	restarts  int
	lastExit  string
	startedAt time.Time
	ready     bool
	backoff   time.Duration
}

// New returns a Supervisor with no services.
func New(opts Options) (*Supervisor, error) {
	if opts.Reaper == nil {
		return nil, errors.New("supervise: Options.Reaper is required")
	}
	if opts.LogBytes <= 0 {
		opts.LogBytes = 64 << 10
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 100 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 30 * time.Second
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = opts.MinBackoff
	}
	if opts.StableAfter <= 0 {
		opts.StableAfter = 10 * time.Second
	}
	if opts.StopGrace <= 0 {
		opts.StopGrace = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Supervisor{
		opts:    opts,
		console: &console{w: opts.Console},
		byName:  make(map[string]*service),
		stopc:   make(chan struct{}),
		changed: make(chan struct{}),
	}, nil
}

// Start adds svc and starts it in the background. It returns an error if
// the name is empty or taken, Args is empty, or Stop has been called; a
// program that fails to execute is not an error here but shows up in
// Status as LastExit "start: ..." and is retried with backoff.
func (s *Supervisor) Start(svc Service) error {
	if svc.Name == "" || len(svc.Args) == 0 {
		return errors.New("supervise: service needs a Name and Args")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return errors.New("supervise: supervisor is stopped")
	}
	if _, dup := s.byName[svc.Name]; dup {
		return fmt.Errorf("supervise: duplicate service %q", svc.Name)
	}
	sv := &service{
		spec:  svc,
		logs:  newRing(s.opts.LogBytes),
		done:  make(chan struct{}),
		state: Starting,
	}
	s.services = append(s.services, sv)
	s.byName[svc.Name] = sv
	go s.loop(sv)
	return nil
}

// Status returns a snapshot of every service, in Start order.
func (s *Supervisor) Status() []ServiceStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ServiceStatus, 0, len(s.services))
	for _, sv := range s.services {
		out = append(out, ServiceStatus{
			Name:      sv.spec.Name,
			State:     sv.state,
			PID:       sv.pid,
			Restarts:  sv.restarts,
			LastExit:  sv.lastExit,
			StartedAt: sv.startedAt,
			Ready:     sv.ready,
			BackoffMS: sv.backoff.Milliseconds(),
		})
	}
	return out
}

// Logs returns the tail of the named service's combined stdout and
// stderr (at most Options.LogBytes, starting at a line boundary once
// older output was dropped), or nil for an unknown name.
func (s *Supervisor) Logs(name string) []byte {
	s.mu.Lock()
	sv := s.byName[name]
	s.mu.Unlock()
	if sv == nil {
		return nil
	}
	return sv.logs.Bytes()
}

// Ready reports whether every service is currently ready. A supervisor
// without services is ready.
func (s *Supervisor) Ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.allReadyLocked()
}

func (s *Supervisor) allReadyLocked() bool {
	for _, sv := range s.services {
		if !sv.ready {
			return false
		}
	}
	return true
}

// WaitReady blocks until every service is ready at the same time, or
// returns ctx.Err() (naming the services that are not ready) when ctx is
// done first. A crash-looping service may never be ready, so always pass
// a deadline.
func (s *Supervisor) WaitReady(ctx context.Context) error {
	for {
		s.mu.Lock()
		ok := s.allReadyLocked()
		changed := s.changed
		var notReady []string
		for _, sv := range s.services {
			if !sv.ready {
				notReady = append(notReady, sv.spec.Name)
			}
		}
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("supervise: not ready: %s: %w", strings.Join(notReady, ", "), ctx.Err())
		}
	}
}

// Stop ends supervision: no service is restarted any more, every running
// process gets SIGTERM, and whatever still runs after Options.StopGrace
// gets SIGKILL. It returns once all processes have been reaped, or
// ctx.Err() (naming the survivors) if ctx ends first. Calling Stop again
// waits again.
func (s *Supervisor) Stop(ctx context.Context) error {
	s.mu.Lock()
	if !s.stopping {
		s.stopping = true
		close(s.stopc)
	}
	services := append([]*service(nil), s.services...)
	s.signalLocked(syscall.SIGTERM)
	s.mu.Unlock()

	grace := time.NewTimer(s.opts.StopGrace)
	defer grace.Stop()
	if s.waitDone(ctx, services, grace.C) {
		return nil
	}
	if ctx.Err() == nil {
		s.mu.Lock()
		s.signalLocked(syscall.SIGKILL)
		s.mu.Unlock()
		if s.waitDone(ctx, services, nil) {
			return nil
		}
	}
	var left []string
	for _, sv := range services {
		select {
		case <-sv.done:
		default:
			left = append(left, sv.spec.Name)
		}
	}
	return fmt.Errorf("supervise: still running: %s: %w", strings.Join(left, ", "), ctx.Err())
}

func (s *Supervisor) signalLocked(sig syscall.Signal) {
	for _, sv := range s.services {
		if sv.proc != nil {
			// Through the pidfd: a process already reaped yields
			// os.ErrProcessDone rather than signalling a recycled PID.
			sv.proc.Signal(sig)
		}
	}
}

// waitDone waits for all services' loops to end; false if ctx or timeout
// fired first.
func (s *Supervisor) waitDone(ctx context.Context, services []*service, timeout <-chan time.Time) bool {
	for _, sv := range services {
		select {
		case <-sv.done:
		case <-timeout:
			return false
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// notifyLocked wakes WaitReady callers after a state change.
func (s *Supervisor) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Supervisor) event(sv *service, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintf(sv.logs, "[supervise] %s\n", msg)
	s.console.writeLine("supervise", []byte(sv.spec.Name+": "+msg))
}

// loop runs one service until the supervisor stops.
func (s *Supervisor) loop(sv *service) {
	defer close(sv.done)
	var delay time.Duration
	for {
		exitDesc, ran, ok := s.runOnce(sv)
		if !ok {
			return // stopping
		}
		if ran >= s.opts.StableAfter || delay == 0 {
			delay = s.opts.MinBackoff
		} else {
			delay = min(2*delay, s.opts.MaxBackoff)
		}
		s.mu.Lock()
		if s.stopping {
			sv.state = Stopped
			s.notifyLocked()
			s.mu.Unlock()
			return
		}
		sv.state = Backoff
		sv.backoff = delay
		sv.lastExit = exitDesc
		s.notifyLocked()
		s.mu.Unlock()
		s.event(sv, "%s; restarting in %v", exitDesc, delay)
		if s.opts.OnBackoff != nil {
			s.opts.OnBackoff(sv.spec.Name, delay, exitDesc)
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-s.stopc:
			t.Stop()
			s.mu.Lock()
			sv.state = Stopped
			s.notifyLocked()
			s.mu.Unlock()
			return
		}
		s.mu.Lock()
		sv.restarts++
		s.mu.Unlock()
	}
}

// runOnce starts the service and waits for it to exit. It returns how the
// run ended and how long it ran; ok is false if the supervisor was stopped
// (then sv.state is already Stopped).
func (s *Supervisor) runOnce(sv *service) (exitDesc string, ran time.Duration, ok bool) {
	cmd := exec.Command(sv.spec.Args[0], sv.spec.Args[1:]...)
	env := sv.spec.Env
	if env == nil {
		env = os.Environ()
	}
	for _, kv := range env {
		// Never pass on a readiness fd the supervisor itself inherited.
		if !strings.HasPrefix(kv, ReadyFDEnv+"=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Dir = sv.spec.Dir
	pr, pw, err := os.Pipe()
	if err != nil {
		return "start: " + err.Error(), 0, s.markStartFailed(sv)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	var tty *os.File
	if sv.spec.TTY != "" {
		if tty, err = os.OpenFile(sv.spec.TTY, os.O_RDWR, 0); err != nil {
			pr.Close()
			pw.Close()
			return "start: " + err.Error(), 0, s.markStartFailed(sv)
		}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	}
	if sv.spec.Credential != nil || sv.spec.Cloneflags != 0 {
		if cmd.SysProcAttr == nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{}
		}
		if c := sv.spec.Credential; c != nil {
			// A copy, so the spec stays the caller's. NoSetGroups stays
			// false: the child's supplementary groups become exactly
			// Groups, not root's.
			cred := *c
			cred.Groups = append([]uint32(nil), c.Groups...)
			cred.NoSetGroups = false
			cmd.SysProcAttr.Credential = &cred
		}
		cmd.SysProcAttr.Cloneflags = sv.spec.Cloneflags
	}
	var readyR, readyW *os.File
	if sv.spec.NotifyReady {
		readyR, readyW, err = os.Pipe()
		if err != nil {
			pr.Close()
			pw.Close()
			if tty != nil {
				tty.Close()
			}
			return "start: " + err.Error(), 0, s.markStartFailed(sv)
		}
		cmd.ExtraFiles = []*os.File{readyW} // fd 3 in the child
		cmd.Env = append(cmd.Env, ReadyFDEnv+"=3")
	}
	closeParentEnds := func() {
		pw.Close()
		if tty != nil {
			tty.Close()
		}
		if readyW != nil {
			readyW.Close()
		}
	}

	s.mu.Lock()
	if s.stopping {
		sv.state = Stopped
		s.notifyLocked()
		s.mu.Unlock()
		closeParentEnds()
		pr.Close()
		if readyR != nil {
			readyR.Close()
		}
		return "", 0, false
	}
	sv.state = Starting
	// Start under s.mu so Stop either sees this process or prevents it.
	exitc, err := s.opts.Reaper.Start(cmd)
	closeParentEnds()
	if err != nil {
		s.mu.Unlock()
		pr.Close()
		if readyR != nil {
			readyR.Close()
		}
		return "start: " + err.Error(), 0, true
	}
	start := s.opts.Now()
	sv.state = Running
	sv.proc = cmd.Process
	sv.pid = cmd.Process.Pid
	sv.startedAt = start
	sv.ready = !sv.spec.NotifyReady
	s.notifyLocked()
	s.mu.Unlock()

	copied := make(chan struct{})
	go func() {
		defer close(copied)
		tee := &lineTee{c: s.console, prefix: sv.spec.Name}
		io.Copy(io.MultiWriter(sv.logs, tee), pr)
		tee.Flush()
		pr.Close()
	}()
	if readyR != nil {
		proc := cmd.Process
		go func() {
			defer readyR.Close()
			var b [1]byte
			if n, _ := readyR.Read(b[:]); n == 1 {
				s.mu.Lock()
				if sv.proc == proc {
					sv.ready = true
					s.notifyLocked()
				}
				s.mu.Unlock()
			}
		}()
	}

	e := <-exitc
	// Let the copier drain what the process wrote before it died; a
	// daemonised grandchild may hold the pipe open, so do not wait forever.
	drain := time.NewTimer(time.Second)
	select {
	case <-copied:
	case <-drain.C:
	}
	drain.Stop()

	s.mu.Lock()
	cmd.Process.Release()
	sv.proc = nil
	sv.pid = 0
	sv.ready = false
	sv.lastExit = e.String()
	ran = s.opts.Now().Sub(start)
	stopping := s.stopping
	if stopping {
		sv.state = Stopped
	}
	s.notifyLocked()
	s.mu.Unlock()
	if stopping {
		s.event(sv, "%s; stopped", e.String())
		return e.String(), ran, false
	}
	return e.String(), ran, true
}

// markStartFailed records a failure to even prepare a start; it reports
// whether the loop should continue (false when stopping).
func (s *Supervisor) markStartFailed(sv *service) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		sv.state = Stopped
		s.notifyLocked()
		return false
	}
	return true
}
