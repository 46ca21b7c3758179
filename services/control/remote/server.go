package remote

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/creack/pty"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
)

// handshakeTimeout bounds the SSH handshake (version exchange, key exchange and
// authentication) so that a peer that stalls cannot pin a goroutine forever.
const handshakeTimeout = 30 * time.Second

// ptyDrain is how long the server keeps reading a pty after the shell exited
// while no more output arrives. Normally the read ends at once with EIO; this
// only matters when a background job still holds the terminal open.
const ptyDrain = 200 * time.Millisecond

// DefaultPath is the PATH of commands when the server's environment has none: the
// image's u-root tools, then the usual places.
const DefaultPath = "/bbin:/bin:/usr/bin:/sbin:/usr/sbin"

// Server is the node's SSH server. Only the master can log in (see the package
// documentation); it then gets shells, commands and file copies running with
// the server's own privileges, and connections to the node's status API. The
// fields must not change once serving started.
type Server struct {
	// Master is the serialized secp256k1 public key (33-byte compressed) of the
	// only authorised operator.
	Master []byte
	// HostKey is the node's secp256k1 key; the SSH host key is derived from it
	// with HostSigner.
	HostKey *secp256k1.PrivateKey
	// Shell is the argv of the login shell. Commands run as Shell[0] -c CMD.
	// Empty means the first that exists of /bin/sh and /bbin/gosh, else "sh"
	// from PATH.
	Shell []string
	// Env is added to the server's own environment (os.Environ) for every
	// command. HOME=/ is added if neither sets HOME, PATH=DefaultPath if neither
	// sets PATH, and the client may set
	// TERM (with its pty request or an env request) and LANG.
	Env []string
	// Dir is the working directory of commands; empty means "/".
	Dir string
	// API is the TCP address (host:port) of the node's own status API, the
	// only place a "direct-tcpip" channel may lead (see APIHost and
	// Client.DialAPI), so the master can reach the API through its tunnel.
	// Empty refuses every such channel.
	API string
	// Logf receives one line per refusal, login, command, shell and copy.
	// Nil means log.Printf. It is called from many goroutines at once.
	Logf func(format string, args ...any)
}

func (s *Server) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
		return
	}
	log.Printf(format, args...)
}

// Serve accepts connections on ln until it is closed and serves each in its
// own goroutine. It returns nil once ln is closed, the Accept error if
// accepting fails otherwise, or an error at once if Master or HostKey is
// unusable. Connections still open when it returns keep being served.
func (s *Server) Serve(ln net.Listener) error {
	cfg, hostKey, err := s.config()
	if err != nil {
		return err
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		go s.serveConn(c, cfg, hostKey)
	}
}

// ServeConn serves one SSH connection on c and returns when it has ended and
// all its sessions are over; c is closed then. Commands still running when the
// client goes away are killed.
func (s *Server) ServeConn(c net.Conn) {
	cfg, hostKey, err := s.config()
	if err != nil {
		s.logf("remote: refused connection from %s: %v", c.RemoteAddr(), err)
		c.Close()
		return
	}
	s.serveConn(c, cfg, hostKey)
}

// config is the server's SSH configuration and its host key in wire format.
func (s *Server) config() (*ssh.ServerConfig, []byte, error) {
	if _, err := secp256k1.ParsePubKey(s.Master); err != nil {
		return nil, nil, fmt.Errorf("remote: bad master key: %w", err)
	}
	signer, err := HostSigner(s.HostKey)
	if err != nil {
		return nil, nil, err
	}
	cfg := &ssh.ServerConfig{
		ServerVersion: "SSH-2.0-skyfleet",
		// Refusing public keys explicitly, rather than leaving the method
		// out, lets us log who tried with which key.
		PublicKeyCallback: func(c ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			s.logf("remote: refused public key %s from %s", ssh.FingerprintSHA256(key), c.RemoteAddr())
			return nil, errors.New("remote: public keys are not accepted")
		},
		KeyboardInteractiveCallback: s.challenge,
	}
	cfg.AddHostKey(signer)
	return cfg, signer.PublicKey().Marshal(), nil
}

// challenge asks the client to sign the session ID with the master key.
func (s *Server) challenge(c ssh.ConnMetadata, ask ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
	answers, err := ask("", "", []string{ChallengePrefix + hex.EncodeToString(c.SessionID())}, []bool{false})
	if err == nil {
		if len(answers) != 1 {
			err = fmt.Errorf("got %d answers to 1 question", len(answers))
		} else {
			var sig []byte
			if sig, err = hex.DecodeString(answers[0]); err == nil {
				err = VerifyChallenge(s.Master, c.User(), c.SessionID(), sig)
			}
		}
	}
	if err != nil {
		s.logf("remote: refused keyboard-interactive for %q from %s: %v", c.User(), c.RemoteAddr(), err)
		return nil, err
	}
	return &ssh.Permissions{}, nil
}

func (s *Server) serveConn(c net.Conn, cfg *ssh.ServerConfig, hostKey []byte) {
	defer c.Close()
	remote := c.RemoteAddr().String()
	// Deadlines are best effort: a byte stream without them still works, it
	// just is not protected against stalled handshakes.
	_ = c.SetDeadline(time.Now().Add(handshakeTimeout))
	conn, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		s.logf("remote: handshake with %s failed: %v", remote, err)
		return
	}
	_ = c.SetDeadline(time.Time{})
	s.logf("remote: master logged in as %q from %s (%q)", conn.User(), remote, conn.ClientVersion())
	go s.globalRequests(conn, reqs, hostKey)

	var wg sync.WaitGroup
	var open forwards
	for nc := range chans {
		switch t := nc.ChannelType(); t {
		case "session":
			wg.Go(func() { s.session(nc, remote) })
		case "direct-tcpip":
			wg.Go(func() { s.forward(nc, remote, &open) })
		default:
			s.logf("remote: refused %q channel from %s", t, remote)
			_ = nc.Reject(ssh.Prohibited, "only session and direct-tcpip channels are allowed")
		}
	}
	wg.Wait()
	s.logf("remote: connection from %s closed", remote)
}

// globalRequests answers NodeProofRequest with the node key's signature over
// this session and refuses every other global request (port forwarding,
// keepalives that want a reply).
func (s *Server) globalRequests(conn *ssh.ServerConn, reqs <-chan *ssh.Request, hostKey []byte) {
	for r := range reqs {
		if !r.WantReply {
			continue
		}
		_ = r.Reply(s.globalReply(r.Type, r.Payload, conn.SessionID(), hostKey))
	}
}

// globalReply is the answer to a global request of type reqType with payload:
// the node proof for a NodeProofRequest without payload (the request carries
// none; anything else is refused rather than ignored), a refusal otherwise.
func (s *Server) globalReply(reqType string, payload, sessionID, hostKey []byte) (bool, []byte) {
	if reqType != NodeProofRequest || len(payload) != 0 {
		return false, nil
	}
	return true, SignNodeProof(s.HostKey, sessionID, hostKey)
}

// session is one SSH session channel: at most one pty and one shell or exec.
type session struct {
	srv    *Server
	ch     ssh.Channel
	remote string
	env    []string // TERM and LANG as asked for by the client, at most one of each
	// ptmx and tty are set by pty-req, before the command starts; ptmx is
	// pollable so that reads from it can time out.
	ptmx, tty *os.File
}

// Request payloads, RFC 4254 section 6.
type ptyRequest struct { // section 6.2
	Term                      string
	Cols, Rows, Width, Height uint32
	Modes                     string // encoded terminal modes (section 8), ignored
}

type windowChange struct { // section 6.7
	Cols, Rows, Width, Height uint32
}

type envRequest struct{ Name, Value string } // section 6.4

type execRequest struct{ Command string } // section 6.5

type exitStatusMsg struct{ Status uint32 } // section 6.10

// maxEnvValue bounds TERM and LANG as the client sets them: real values are a
// few dozen bytes.
const maxEnvValue = 256

// parsePtyRequest decodes a pty-req payload (RFC 4254 section 6.2). Errors: a
// malformed payload (short, or with trailing bytes), or a terminal type that
// is no acceptable TERM value (see checkEnvValue).
func parsePtyRequest(payload []byte) (ptyRequest, error) {
	var p ptyRequest
	if err := ssh.Unmarshal(payload, &p); err != nil {
		return ptyRequest{}, fmt.Errorf("pty-req: %w", err)
	}
	if err := checkEnvValue(p.Term); err != nil {
		return ptyRequest{}, fmt.Errorf("pty-req: terminal type: %w", err)
	}
	return p, nil
}

// parseWindowChange decodes a window-change payload (RFC 4254 section 6.7).
func parseWindowChange(payload []byte) (windowChange, error) {
	var wc windowChange
	if err := ssh.Unmarshal(payload, &wc); err != nil {
		return windowChange{}, fmt.Errorf("window-change: %w", err)
	}
	return wc, nil
}

// parseEnv decodes an env payload (RFC 4254 section 6.4). Only TERM and LANG
// may be set, to a value checkEnvValue accepts; every other name is refused,
// as OpenSSH's sshd does without AcceptEnv.
func parseEnv(payload []byte) (name, value string, err error) {
	var e envRequest
	if err := ssh.Unmarshal(payload, &e); err != nil {
		return "", "", fmt.Errorf("env: %w", err)
	}
	if e.Name != "TERM" && e.Name != "LANG" {
		return "", "", fmt.Errorf("env: %q may not be set", e.Name)
	}
	if err := checkEnvValue(e.Value); err != nil {
		return "", "", fmt.Errorf("env: %s: %w", e.Name, err)
	}
	return e.Name, e.Value, nil
}

// checkEnvValue accepts what a TERM or LANG value looks like: at most
// maxEnvValue printable ASCII bytes without space (xterm-256color,
// en_US.UTF-8). A NUL would make the command fail to start, and control bytes
// have no business in either.
func checkEnvValue(v string) error {
	if len(v) > maxEnvValue {
		return fmt.Errorf("%d bytes, at most %d", len(v), maxEnvValue)
	}
	for i := 0; i < len(v); i++ {
		if v[i] <= ' ' || v[i] > '~' {
			return fmt.Errorf("byte %#x at %d is not printable ASCII", v[i], i)
		}
	}
	return nil
}

// parseExec decodes an exec payload (RFC 4254 section 6.5) into the command
// line. Errors: a malformed payload, or a command holding a NUL, which no
// argv can carry.
func parseExec(payload []byte) (string, error) {
	var x execRequest
	if err := ssh.Unmarshal(payload, &x); err != nil {
		return "", fmt.Errorf("exec: %w", err)
	}
	if strings.IndexByte(x.Command, 0) >= 0 {
		return "", errors.New("exec: command contains NUL")
	}
	return x.Command, nil
}

func (s *Server) session(nc ssh.NewChannel, remote string) {
	ch, reqs, err := nc.Accept()
	if err != nil {
		return
	}
	ss := &session{srv: s, ch: ch, remote: remote}
	var (
		done chan struct{} // closed once the command is over; nil until it starts
		proc *os.Process   // the command's process, nil for built-ins
	)
	for req := range reqs {
		ok := false
		switch req.Type {
		case "pty-req":
			if done == nil && ss.ptmx == nil {
				p, err := parsePtyRequest(req.Payload)
				if err == nil {
					err = ss.openPTY(p)
				}
				if err != nil {
					s.logf("remote: no pty for %s: %v", remote, err)
				}
				ok = err == nil
			}
		case "window-change":
			wc, err := parseWindowChange(req.Payload)
			ok = ss.ptmx != nil && err == nil && setWinsize(ss.ptmx, wc.Cols, wc.Rows) == nil
		case "env":
			// Refused names are not logged: OpenSSH clients send LC_* on
			// every session.
			if name, value, err := parseEnv(req.Payload); err == nil {
				ss.setEnv(name, value)
				ok = true
			}
		case "shell", "exec":
			if done != nil {
				break
			}
			var command string
			if req.Type == "exec" {
				var err error
				if command, err = parseExec(req.Payload); err != nil {
					s.logf("remote: refused exec from %s: %v", remote, err)
					break
				}
			}
			// Reply before starting so that the reply cannot arrive after
			// the command's exit status and channel close.
			_ = req.Reply(true, nil)
			done = make(chan struct{})
			proc = ss.start(req.Type == "shell", command, done)
			continue
		}
		if req.WantReply {
			_ = req.Reply(ok, nil)
		}
	}
	// The channel is closed: by us after the command ended, or by the client
	// (or a broken connection) while it still runs, in which case it is killed.
	if done != nil {
		select {
		case <-done:
		default:
			if proc != nil {
				// Its own process group holds the command and its children.
				_ = syscall.Kill(-proc.Pid, syscall.SIGKILL)
			}
			<-done
		}
	}
	if ss.ptmx != nil {
		ss.ptmx.Close()
		ss.tty.Close()
	}
	ch.Close()
}

// setEnv sets TERM or LANG for the session's command; a later request replaces
// an earlier one, so the list holds at most one of each however many the client
// sends.
func (ss *session) setEnv(name, value string) {
	kv := name + "=" + value
	for i, e := range ss.env {
		if strings.HasPrefix(e, name+"=") {
			ss.env[i] = kv
			return
		}
	}
	ss.env = append(ss.env, kv)
}

// openPTY allocates the session's pseudo-terminal as asked by a pty-req.
func (ss *session) openPTY(p ptyRequest) error {
	ptmx, tty, err := pty.Open()
	if err != nil {
		return err
	}
	if ptmx, err = pollable(ptmx); err != nil {
		tty.Close()
		return err
	}
	ss.ptmx, ss.tty = ptmx, tty
	if p.Term != "" {
		ss.setEnv("TERM", p.Term)
	}
	return setWinsize(ptmx, p.Cols, p.Rows)
}

// pollable returns a non-blocking, close-on-exec duplicate of f and closes f.
// pty.Open hands out a master in blocking mode (it calls Fd), and a blocking
// read can neither time out nor be interrupted, which the drain after the
// shell's exit relies on.
func pollable(f *os.File) (*os.File, error) {
	defer f.Close()
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// setWinsize sets the terminal size of the pty whose master is f. It goes
// through SyscallConn because pty.Setsize would call Fd and so make f blocking.
func setWinsize(f *os.File, cols, rows uint32) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	ws := &unix.Winsize{Row: uint16(min(rows, 0xffff)), Col: uint16(min(cols, 0xffff))}
	var ierr error
	if err := rc.Control(func(fd uintptr) { ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, ws) }); err != nil {
		return err
	}
	return ierr
}

// start runs the shell (shell true) or command, closes done when it is over
// and the channel is closed, and returns its process (nil if none was started).
func (ss *session) start(shell bool, command string, done chan<- struct{}) *os.Process {
	s := ss.srv
	if !shell && isCopy(command) {
		go func() {
			defer close(done)
			ss.exit(ss.runCopy(command))
		}()
		return nil
	}

	argv := s.shell()
	what := "shell"
	if !shell {
		argv = []string{argv[0], "-c", command}
		what = fmt.Sprintf("exec %q", command)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = s.Dir
	if cmd.Dir == "" {
		cmd.Dir = "/"
	}
	cmd.Env = ss.environ()

	// wait is run in the command's goroutine; it returns once the command
	// exited and its output has been forwarded.
	var wait func() error
	var err error
	if ss.ptmx != nil {
		what += " (pty)"
		wait, err = ss.startPTY(cmd)
	} else {
		wait, err = ss.startPipes(cmd)
	}
	if err != nil {
		s.logf("remote: %s by master from %s: %v", what, ss.remote, err)
		go func() {
			defer close(done)
			fmt.Fprintf(ss.ch.Stderr(), "skyfleet: %v\n", err)
			ss.exit(127) // the shell's status for "command not found"
		}()
		return nil
	}
	if shell {
		s.logf("remote: %s started by master from %s", what, ss.remote)
	}
	go func() {
		defer close(done)
		_ = wait() // I/O errors only mean the client went away
		status := exitStatus(cmd.ProcessState)
		s.logf("remote: %s by master from %s: exit %d", what, ss.remote, status)
		ss.exit(status)
	}()
	return cmd.Process
}

// startPipes starts cmd with its stdio connected to the channel through pipes.
func (ss *session) startPipes(cmd *exec.Cmd) (wait func() error, err error) {
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = ss.ch, ss.ch.Stderr()
	// A process group of its own, so that a disconnect kills its children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	// Not part of wait: the client may never send EOF, and cmd.Wait closes
	// stdin anyway once the command exited.
	go func() {
		_, _ = io.Copy(stdin, ss.ch)
		stdin.Close()
	}()
	return cmd.Wait, nil
}

// startPTY starts cmd as the leader of a new session whose controlling
// terminal is the session's pty.
func (ss *session) startPTY(cmd *exec.Cmd) (wait func() error, err error) {
	cmd.Stdin, cmd.Stdout, cmd.Stderr = ss.tty, ss.tty, ss.tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true} // Ctty 0: the child's stdin
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	// Only the command's session holds the terminal now, so reading the
	// master ends with EIO once that session is gone.
	ss.tty.Close()
	go func() { _, _ = io.Copy(ss.ptmx, ss.ch) }() // ends when the channel closes
	var exited atomic.Bool
	out := make(chan struct{})
	go func() {
		defer close(out)
		buf := make([]byte, 32<<10)
		for {
			if exited.Load() {
				_ = ss.ptmx.SetReadDeadline(time.Now().Add(ptyDrain))
			}
			n, err := ss.ptmx.Read(buf)
			if n > 0 {
				if _, werr := ss.ch.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	return func() error {
		err := cmd.Wait()
		// Let the reader drain what the command left in the terminal, and
		// stop it once nothing more arrives (see ptyDrain).
		exited.Store(true)
		_ = ss.ptmx.SetReadDeadline(time.Now().Add(ptyDrain))
		<-out
		return err
	}, nil
}

// exit reports the exit status and closes the channel, after an EOF so that
// the client knows it has seen all output.
func (ss *session) exit(status int) {
	_ = ss.ch.CloseWrite()
	_, _ = ss.ch.SendRequest("exit-status", false, ssh.Marshal(exitStatusMsg{uint32(status)}))
	_ = ss.ch.Close()
}

// exitStatus turns a finished process's state into a shell-style status:
// the exit code, or 128+signal if it was killed.
func exitStatus(ps *os.ProcessState) int {
	if ps == nil {
		return 255
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// shell returns the argv of the login shell (see Server.Shell).
func (s *Server) shell() []string {
	if len(s.Shell) > 0 {
		return s.Shell
	}
	for _, p := range []string{"/bin/sh", "/bbin/gosh"} {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return []string{p}
		}
	}
	if p, err := exec.LookPath("sh"); err == nil {
		return []string{p}
	}
	return []string{"sh"} // fails to start, and the client is told so
}

// environ is the environment of the session's command; later entries win.
func (ss *session) environ() []string {
	env := append(os.Environ(), ss.srv.Env...)
	home, path := false, false
	for _, kv := range env {
		home = home || strings.HasPrefix(kv, "HOME=")
		path = path || strings.HasPrefix(kv, "PATH=")
	}
	if !home {
		env = append(env, "HOME=/")
	}
	if !path {
		// A service under PID 1 starts with an empty environment; the image's
		// tools are in /bbin.
		env = append(env, "PATH="+DefaultPath)
	}
	return append(env, ss.env...)
}
