package remote

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"golang.org/x/crypto/ssh"
	"golang.org/x/term"

	"github.com/skyfleet/skyfleet/internal/durable"
)

// Client is the master's SSH connection to one node. Its methods may be used
// concurrently; each runs in its own SSH session.
type Client struct {
	ssh     *ssh.Client
	hostKey string
}

// Dial runs the SSH client handshake over conn, an already connected byte
// stream to the node, logging in as user ("root" if empty) by signing the
// server's challenge with master. On error conn is closed.
//
// node is the 33-byte public key of the node the caller means to reach; Dial
// then asks the server to prove it holds that key (NodeProofRequest) and fails
// with an error wrapping ErrNotNode if it cannot, before any command runs. Nil
// skips the check, for a conn that is itself authenticated to the node (a mesh
// stream, whose Noise handshake is).
//
// Both SSH peers write their version line before reading the other's, so conn
// must buffer at least that much: a TCP or mesh stream does, a fully
// synchronous net.Pipe deadlocks.
func Dial(conn net.Conn, master *secp256k1.PrivateKey, user string, node []byte) (*Client, error) {
	if user == "" {
		user = "root"
	}
	var hostKey hostKeyRecorder
	var signed []byte // the session ID the server asked us to sign
	cfg := &ssh.ClientConfig{
		User: user,
		Auth: []ssh.AuthMethod{ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
			answers := make([]string, len(questions))
			for i, q := range questions {
				id, ok := strings.CutPrefix(q, ChallengePrefix)
				sid, err := hex.DecodeString(id)
				if !ok || err != nil || len(sid) == 0 {
					return nil, fmt.Errorf("remote: unexpected question %q", q)
				}
				signed = sid
				answers[i] = hex.EncodeToString(SignChallenge(master, user, sid))
			}
			return answers, nil
		})},
		// The host key is derived from the node key, which only the node
		// can prove it holds (the node proof below), so no key list is
		// kept; the key is recorded for that proof and for display.
		HostKeyCallback: hostKey.check,
	}
	_ = conn.SetDeadline(time.Now().Add(handshakeTimeout))
	c, chans, reqs, err := ssh.NewClientConn(conn, conn.RemoteAddr().String(), cfg)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("remote: ssh handshake: %w", err)
	}
	// The challenge names a session ID the client cannot check before it
	// answers. A server that relayed another connection's challenge to us
	// shows up here, too late to take back the signature but not to stop.
	if signed != nil && !bytes.Equal(signed, c.SessionID()) {
		c.Close()
		return nil, errors.New("remote: server asked to sign another session's ID")
	}
	if node != nil {
		ok, proof, err := c.SendRequest(NodeProofRequest, true, nil)
		if err == nil && !ok {
			err = fmt.Errorf("%w: it refused to prove it", ErrNotNode)
		}
		if err == nil {
			err = VerifyNodeProof(node, c.SessionID(), hostKey.wire(), proof)
		}
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("remote: node %x: %w", node, err)
		}
	}
	_ = conn.SetDeadline(time.Time{}) // the handshake deadline covered the proof too
	return &Client{ssh: ssh.NewClient(c, chans, reqs), hostKey: hostKey.get()}, nil
}

// hostKeyRecorder keeps the fingerprint of the server's host key. The callback
// runs again on every key re-exchange, in the transport's goroutine, and then
// refuses a key that changed.
type hostKeyRecorder struct {
	mu  sync.Mutex
	fp  string
	key []byte // wire format
}

func (h *hostKeyRecorder) check(_ string, _ net.Addr, key ssh.PublicKey) error {
	fp := ssh.FingerprintSHA256(key)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fp != "" && h.fp != fp {
		return fmt.Errorf("remote: host key changed from %s to %s", h.fp, fp)
	}
	h.fp, h.key = fp, key.Marshal()
	return nil
}

func (h *hostKeyRecorder) wire() []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.key
}

func (h *hostKeyRecorder) get() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.fp
}

// HostKeyFingerprint returns the SHA256 fingerprint ("SHA256:" and unpadded
// base64, as ssh-keygen -l prints it) of the host key the node presented.
func (c *Client) HostKeyFingerprint() string { return c.hostKey }

// Close closes the connection, ending all its sessions.
func (c *Client) Close() error { return c.ssh.Close() }

// Exec runs cmd with the node's shell (sh -c CMD) and waits until it exits.
// stdin (nil means empty) is sent as its standard input until EOF; stdout and
// stderr (nil means discard) receive its output. A read of stdin may still be
// pending when Exec returns, like ssh without -n. The error is non-nil only for
// transport or protocol failures (exitStatus is then -1); a command that fails
// is reported by its non-zero exitStatus (128+N if killed by signal N).
func (c *Client) Exec(cmd string, stdin io.Reader, stdout, stderr io.Writer) (exitStatus int, err error) {
	sess, err := c.ssh.NewSession()
	if err != nil {
		return -1, err
	}
	defer sess.Close()
	sess.Stdin, sess.Stdout, sess.Stderr = stdin, stdout, stderr
	return exitResult(sess.Run(cmd))
}

// Shell runs the node's login shell interactively and returns its exit
// status when it exits. If in is a terminal, the shell gets a pty of in's size
// and terminal type $TERM (default xterm), in is put into raw mode for the
// duration, and SIGWINCH is forwarded as window changes. Otherwise plain
// pipes are used. Both the shell's stdout and stderr go to out. The error is
// non-nil only for transport or protocol failures.
func (c *Client) Shell(in *os.File, out *os.File) (exitStatus int, err error) {
	sess, err := c.ssh.NewSession()
	if err != nil {
		return -1, err
	}
	defer sess.Close()
	sess.Stdout, sess.Stderr = out, out
	// Our own stdin copy instead of sess.Stdin, so that it can be stopped
	// when the shell exits rather than leaving a read of in pending.
	stdin, err := sess.StdinPipe()
	if err != nil {
		return -1, err
	}
	if fd, ok := terminalFD(in); ok {
		w, h, err := term.GetSize(fd)
		if err != nil {
			return -1, err
		}
		termType := os.Getenv("TERM")
		if termType == "" {
			termType = "xterm"
		}
		if err := sess.RequestPty(termType, h, w, ssh.TerminalModes{}); err != nil {
			return -1, err
		}
		old, err := term.MakeRaw(fd)
		if err != nil {
			return -1, err
		}
		defer term.Restore(fd, old)
		defer forwardResize(sess, fd)()
	}
	if err := sess.Shell(); err != nil {
		return -1, err
	}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(stdin, in)
		stdin.Close() // EOF for a shell without pty
	}()
	err = sess.Wait()
	// Interrupt the pending read of in if in supports deadlines, so that it
	// does not swallow the caller's next input; restore in afterwards.
	if in.SetReadDeadline(time.Now()) == nil {
		<-copied
		_ = in.SetReadDeadline(time.Time{})
	}
	return exitResult(err)
}

// terminalFD returns f's descriptor and whether it is a terminal. It avoids
// f.Fd, which would put f into blocking mode and so make the read in Shell
// impossible to interrupt.
func terminalFD(f *os.File) (int, bool) {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1, false
	}
	fd := -1
	if rc.Control(func(u uintptr) { fd = int(u) }) != nil {
		return -1, false
	}
	return fd, term.IsTerminal(fd)
}

// forwardResize sends the terminal fd's size as a window change whenever
// SIGWINCH arrives, until the returned stop function is called.
func forwardResize(sess *ssh.Session, fd int) (stop func()) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGWINCH)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-sig:
				if w, h, err := term.GetSize(fd); err == nil {
					_ = sess.WindowChange(h, w)
				}
			}
		}
	}()
	return func() {
		signal.Stop(sig)
		close(done)
	}
}

// exitResult splits a session's outcome into exit status and transport error.
func exitResult(err error) (int, error) {
	var exit *ssh.ExitError
	switch {
	case errors.As(err, &exit):
		return exit.ExitStatus(), nil
	case err != nil:
		return -1, err
	}
	return 0, nil
}

// Get writes the contents of the node's file remotePath (absolute) to w. If
// it fails midway, w has received part of the file. The error includes the
// node's explanation, e.g. "open /x: no such file or directory".
func (c *Client) Get(remotePath string, w io.Writer) error {
	return c.copy(w, nil, "get", remotePath)
}

// GetFile copies the node's file remotePath (absolute) to the local file
// localPath and returns the number of bytes copied. The local file has mode
// 0600 from its first byte to the end, whatever the remote file's mode and the
// umask: a copied secret (node.key, a token) is never readable by others, and
// the caller widens the mode deliberately if it must. It is written durably
// (internal/durable: a temporary file in localPath's directory, fsync, rename,
// fsync of the directory) and appears only once the node has reported success,
// so a failed or interrupted copy leaves localPath as it was and no partial
// file behind. Errors include the node's explanation, as Get's do.
func (c *Client) GetFile(remotePath, localPath string) (int64, error) {
	sess, err := c.ssh.NewSession()
	if err != nil {
		return 0, fmt.Errorf("remote: get %s: %w", remotePath, err)
	}
	defer sess.Close() // also stops the node's side if the local write fails
	out, err := sess.StdoutPipe()
	if err != nil {
		return 0, fmt.Errorf("remote: get %s: %w", remotePath, err)
	}
	var stderr stderrBuffer
	sess.Stderr = &stderr
	if err := sess.Start(copyCommandLine("get", remotePath)); err != nil {
		return 0, fmt.Errorf("remote: get %s: %w", remotePath, err)
	}
	return durable.WriteFrom(localPath, &exitCheckedReader{r: out, sess: sess, stderr: &stderr, path: remotePath}, 0o600)
}

// exitCheckedReader reads a command's stdout and, at its end, waits for the
// command's exit status: a failure turns the EOF into an error, so that a
// reader writing the bytes somewhere (durable.WriteFrom) discards them instead
// of publishing a truncated file.
type exitCheckedReader struct {
	r      io.Reader
	sess   *ssh.Session
	stderr *stderrBuffer
	path   string
	err    error // the final result, once known
}

func (e *exitCheckedReader) Read(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.r.Read(p)
	if err != io.EOF {
		return n, err
	}
	status, werr := exitResult(e.sess.Wait())
	switch {
	case werr != nil:
		e.err = fmt.Errorf("remote: get %s: %w", e.path, werr)
	case status != 0:
		e.err = fmt.Errorf("remote: get %s: exit %d: %s", e.path, status, strings.TrimSpace(e.stderr.String()))
	default:
		e.err = io.EOF
	}
	return n, e.err
}

// Put replaces the node's file remotePath (absolute) atomically with the
// contents of r, with permission bits mode (plus setuid, setgid and sticky;
// other mode bits are ignored). The directory must exist. On error the old
// file, if any, is unchanged.
func (c *Client) Put(r io.Reader, remotePath string, mode os.FileMode) error {
	return c.copy(nil, r, "put", remotePath, formatMode(mode))
}

// maxStderr bounds how much of skyfleet-cp's stderr (one line of explanation)
// is kept for an error message, so a misbehaving node cannot fill memory.
const maxStderr = 4 << 10

// stderrBuffer keeps the first maxStderr bytes written to it and drops the
// rest, reporting them written so that the stream keeps flowing.
type stderrBuffer struct{ b bytes.Buffer }

func (s *stderrBuffer) Write(p []byte) (int, error) {
	if room := maxStderr - s.b.Len(); room > 0 {
		s.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (s *stderrBuffer) String() string { return s.b.String() }

// copyCommandLine is the skyfleet-cp command line for verb on path, with the
// path quoted so that any byte survives splitArgs.
func copyCommandLine(verb, path string, args ...string) string {
	cmd := cpCommand + " " + verb + " " + strconv.Quote(path)
	for _, a := range args {
		cmd += " " + a
	}
	return cmd
}

func (c *Client) copy(w io.Writer, r io.Reader, verb, path string, args ...string) error {
	cmd := copyCommandLine(verb, path, args...)
	var stderr stderrBuffer
	status, err := c.Exec(cmd, r, w, &stderr)
	if err != nil {
		return fmt.Errorf("remote: %s %s: %w", verb, path, err)
	}
	if status != 0 {
		return fmt.Errorf("remote: %s %s: exit %d: %s", verb, path, status, strings.TrimSpace(stderr.String()))
	}
	return nil
}
