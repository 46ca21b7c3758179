package approve

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/skyfleet/skyfleet/internal/unixsock"
)

// Identify names the supervised service whose process is pid, or returns an
// error saying why pid is none (on the node: PID 1's list of services).
type Identify func(pid int32) (service string, err error)

// Pending is a request waiting for the person's decision, handed to the
// screen by Server.Requests one at a time.
type Pending struct {
	// Service is the asking service, from Identify.
	Service string
	Request Request
	// Deadline is when the request times out.
	Deadline time.Time

	ctx    context.Context // ends when withdrawn, timed out or the server stops
	answer chan Answer     // buffered 1
	once   sync.Once
}

// Decide answers the request; only the first call counts. A refusal that
// comes once the request has ended (its time ran out, it was withdrawn) is
// not the person's decision but the screen dropping the request on Gone:
// it is ignored, and the caller learns the true reason ("timed out").
func (p *Pending) Decide(a Answer) {
	if !a.Approved && p.ctx.Err() != nil {
		return
	}
	p.once.Do(func() { p.answer <- a })
}

// Gone is closed when the request no longer waits for a decision: the
// caller withdrew it, its time ran out, or the server stopped. The screen
// then drops it.
func (p *Pending) Gone() <-chan struct{} { return p.ctx.Done() }

// Server serves the approval socket: it identifies each caller, checks its
// request and hands it to the screen through Requests, and writes the answer
// back.
type Server struct {
	id       Identify
	logf     func(format string, args ...any)
	requests chan *Pending
	waiting  atomic.Int32 // requests accepted and not yet answered
}

// NewServer returns a server that names callers with id and logs to logf a
// line when a request comes (the service, the title and the kind) and one
// when it ends (the outcome: approved, answered, or the reason), never a
// row, a choice, the choice made, a PIN or a word.
func NewServer(id Identify, logf func(format string, args ...any)) *Server {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return &Server{id: id, logf: logf, requests: make(chan *Pending)}
}

// Requests gives the screen one request at a time: the next is offered only
// when the screen receives again. Unreceived requests time out.
func (s *Server) Requests() <-chan *Pending { return s.requests }

// Listen makes the socket at path (a stale one is removed), mode 0660, and
// its directory when missing (mode 0750).
func Listen(path string) (*net.UnixListener, error) {
	// Made here when PID 1 did not (a node without a wallet): root's only.
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, err
	}
	// The group is the directory's: root's, or on a wallet node the
	// wallet's (set-group-ID), which must be able to connect.
	return unixsock.Listen(path, 0o660)
}

// Serve answers callers on ln until ctx ends, then closes ln; requests still
// waiting are answered ReasonClosed.
func (s *Server) Serve(ctx context.Context, ln *net.UnixListener) error {
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.handle(ctx, c)
		}()
	}
}

// readTimeout bounds the wait for a request line after connecting.
const readTimeout = 10 * time.Second

func (s *Server) handle(ctx context.Context, c *net.UnixConn) {
	defer c.Close()
	answer := func(a Answer) {
		b, _ := json.Marshal(a)
		b = append(b, '\n')
		c.SetWriteDeadline(time.Now().Add(readTimeout))
		c.Write(b)
		clear(b) // it may hold a PIN or a word
	}
	pid, err := peerPID(c)
	if err != nil {
		answer(Answer{Reason: ReasonCaller + ": " + err.Error()})
		return
	}
	service, err := s.id(pid)
	if err != nil {
		s.logf("approve: refused process %d: %v", pid, err)
		answer(Answer{Reason: ReasonCaller + ": process " + fmt.Sprint(pid) + " is not a supervised service"})
		return
	}
	c.SetReadDeadline(time.Now().Add(readTimeout))
	// A line of up to MaxRequest bytes and its newline fit the buffer; a
	// longer one ends at the limit and ParseRequest refuses its size.
	br := bufio.NewReaderSize(io.LimitReader(c, MaxRequest+1), MaxRequest+1)
	line, err := br.ReadSlice('\n')
	if err != nil && !((errors.Is(err, io.EOF) || errors.Is(err, bufio.ErrBufferFull)) && len(line) > 0) {
		answer(Answer{Reason: ReasonInvalid + ": no request line: " + err.Error()})
		return
	}
	req, err := ParseRequest(line)
	if err != nil {
		s.logf("approve: %s sent an invalid request: %v", service, err)
		answer(Answer{Reason: ReasonInvalid + ": " + strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": ")})
		return
	}
	c.SetReadDeadline(time.Time{})
	if s.waiting.Add(1) > MaxWaiting+1 {
		s.waiting.Add(-1)
		s.logf("approve: %s asked %q while %d requests waited: busy", service, req.Title, MaxWaiting)
		answer(Answer{Reason: ReasonBusy})
		return
	}
	defer s.waiting.Add(-1)

	deadline := time.Now().Add(req.Timeout())
	pctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	p := &Pending{Service: service, Request: req, Deadline: deadline, ctx: pctx, answer: make(chan Answer, 1)}
	// The caller sends nothing after its line: a read that ends means it
	// closed its end, which withdraws the request.
	go func() {
		var b [1]byte
		for {
			if _, err := c.Read(b[:]); err != nil {
				cancel()
				return
			}
		}
	}()
	kind := cmp.Or(req.Kind, KindApprove)
	// The title and kind only: rows and choices may hold a seed's words.
	s.logf("approve: %s asks %q (%s)", service, req.Title, kind)
	var a Answer
	select {
	case s.requests <- p:
		select {
		case a = <-p.answer:
		case <-pctx.Done():
			// The screen may have decided at this very moment.
			select {
			case a = <-p.answer:
			default:
				a = s.ended(ctx, pctx)
			}
		}
	case <-pctx.Done():
		a = s.ended(ctx, pctx)
	}
	outcome := "approved"
	if kind != KindApprove {
		outcome = "answered" // never what was chosen or typed
	}
	if !a.Approved {
		outcome = a.Reason
	}
	s.logf("approve: %s's %q: %s", service, req.Title, outcome)
	if pctx.Err() == context.Canceled && ctx.Err() == nil && !a.Approved {
		return // withdrawn: nobody reads the answer
	}
	answer(a)
}

// ended is the answer to a request whose context ended before a decision.
func (s *Server) ended(ctx, pctx context.Context) Answer {
	switch {
	case ctx.Err() != nil:
		return Answer{Reason: ReasonClosed}
	case errors.Is(pctx.Err(), context.DeadlineExceeded):
		return Answer{Reason: ReasonTimedOut}
	}
	return Answer{Reason: "withdrawn"}
}

// peerPID is the process ID of the socket's other end, from the kernel
// (SO_PEERCRED), as it was when that end connected.
func peerPID(c *net.UnixConn) (int32, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if cerr != nil {
		return 0, fmt.Errorf("reading the caller's credentials: %w", cerr)
	}
	return cred.Pid, nil
}
