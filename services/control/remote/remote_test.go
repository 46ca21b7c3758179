package remote

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"golang.org/x/crypto/ssh"
)

// logBuf collects the server's log lines.
type logBuf struct {
	mu    sync.Mutex
	lines []string
}

func (l *logBuf) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

// wait fails the test unless a line containing all of parts is logged soon.
// Polling is needed because the server logs some events (a login, say) after
// the client has already seen them succeed.
func (l *logBuf) wait(t *testing.T, parts ...string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		l.mu.Lock()
		for _, line := range l.lines {
			if containsAll(line, parts) {
				l.mu.Unlock()
				return
			}
		}
		l.mu.Unlock()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Fatalf("no log line with %q in:\n%s", parts, strings.Join(l.lines, "\n"))
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

func newKey(t testing.TB) *secp256k1.PrivateKey {
	t.Helper()
	k, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

type fixture struct {
	addr   string
	master *secp256k1.PrivateKey
	node   *secp256k1.PrivateKey
	log    *logBuf
}

// serve starts a Server for master on a loopback listener; the cleanup checks
// that Serve returns nil once the listener is closed.
func serve(t *testing.T, master *secp256k1.PrivateKey, node *secp256k1.PrivateKey, opts ...func(*Server)) *fixture {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{addr: ln.Addr().String(), master: master, node: node, log: &logBuf{}}
	srv := &Server{Master: master.PubKey().SerializeCompressed(), HostKey: node, Logf: f.log.logf}
	for _, o := range opts {
		o(srv)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ln.Close()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("Serve returned %v after the listener closed, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after the listener closed")
		}
	})
	return f
}

func newFixture(t *testing.T) *fixture {
	return serve(t, newKey(t), newKey(t))
}

func (f *fixture) dial(t *testing.T, key *secp256k1.PrivateKey) (*Client, error) {
	t.Helper()
	return f.dialNode(t, key, f.node.PubKey().SerializeCompressed())
}

// dialNode logs in with key, expecting the server to prove it holds node.
func (f *fixture) dialNode(t *testing.T, key *secp256k1.PrivateKey, node []byte) (*Client, error) {
	t.Helper()
	conn, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Dial(conn, key, "", node)
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

func (f *fixture) client(t *testing.T) *Client {
	t.Helper()
	c, err := f.dial(t, f.master)
	if err != nil {
		t.Fatalf("Dial as master: %v", err)
	}
	return c
}

func TestExec(t *testing.T) {
	f := newFixture(t)
	c := f.client(t)
	f.log.wait(t, `master logged in as "root" from 127.0.0.1:`)

	const cmd = "echo hello; echo oops >&2; exit 3"
	var stdout, stderr bytes.Buffer
	status, err := c.Exec(cmd, nil, &stdout, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if status != 3 || stdout.String() != "hello\n" || stderr.String() != "oops\n" {
		t.Errorf("Exec = %d, stdout %q, stderr %q; want 3, %q, %q", status, stdout.String(), stderr.String(), "hello\n", "oops\n")
	}
	f.log.wait(t, `remote: exec "`+cmd+`" by master from 127.0.0.1:`, ": exit 3")

	// Commands run in "/" by default, and sessions are independent.
	stdout.Reset()
	if status, err := c.Exec("pwd", nil, &stdout, nil); err != nil || status != 0 || stdout.String() != "/\n" {
		t.Errorf("pwd = %d, %v, %q; want 0, nil, \"/\\n\"", status, err, stdout.String())
	}
}

func TestExecStdin(t *testing.T) {
	c := newFixture(t).client(t)
	// More than an SSH window, so that flow control is exercised.
	in := bytes.Repeat([]byte("some input line\n"), 1<<14)
	var out bytes.Buffer
	status, err := c.Exec("cat", bytes.NewReader(in), &out, nil)
	if err != nil || status != 0 {
		t.Fatalf("cat = %d, %v", status, err)
	}
	if !bytes.Equal(out.Bytes(), in) {
		t.Errorf("cat echoed %d bytes, want the %d sent", out.Len(), len(in))
	}
}

func TestDisconnectKillsCommand(t *testing.T) {
	f := newFixture(t)
	c := f.client(t)
	pr, pw := io.Pipe()
	go c.Exec("echo $$; exec sleep 30", nil, pw, nil)
	line := make([]byte, 32)
	n, err := pr.Read(line)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(line[:n])))
	if err != nil {
		t.Fatalf("pid %q: %v", line[:n], err)
	}
	go io.Copy(io.Discard, pr)
	c.Close()
	// The server kills and reaps it, after which the pid is gone.
	for deadline := time.Now().Add(5 * time.Second); syscall.Kill(pid, 0) == nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatal("command still runs after the client disconnected")
		}
	}
}

// ptyOutput collects what a pty master reads.
type ptyOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (p *ptyOutput) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.Write(b)
}

func (p *ptyOutput) waitFor(t *testing.T, s string, timeout time.Duration) bool {
	t.Helper()
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		p.mu.Lock()
		ok := strings.Contains(p.buf.String(), s)
		p.mu.Unlock()
		if ok {
			return true
		}
	}
	return false
}

func (p *ptyOutput) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.String()
}

func TestShellPTY(t *testing.T) {
	t.Setenv("TERM", "vt220")
	f := newFixture(t)
	c := f.client(t)

	// The client side is a terminal too: Shell gets the tty, the test types
	// into and reads from the master.
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	if err := setWinsize(tty, 90, 30); err != nil {
		t.Fatal(err)
	}
	var out ptyOutput
	go io.Copy(&out, ptmx)

	type result struct {
		status int
		err    error
	}
	done := make(chan result, 1)
	go func() {
		status, err := c.Shell(tty, tty)
		done <- result{status, err}
	}()
	typeLine := func(s string) {
		if _, err := io.WriteString(ptmx, s+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(s string) {
		t.Helper()
		if !out.waitFor(t, s, 5*time.Second) {
			t.Fatalf("no %q in shell output:\n%s", s, out.String())
		}
	}
	// Arithmetic, so that the terminal's echo of the input cannot match.
	typeLine("echo pty-ok-$((1+2))")
	expect("pty-ok-3")
	typeLine("[ -t 0 ] && echo is-a-$((4+5))-tty; echo term=$TERM.")
	expect("is-a-9-tty")
	expect("term=vt220.")
	f.log.wait(t, "remote: shell (pty) started by master from 127.0.0.1:")

	if _, err := exec.LookPath("stty"); err == nil {
		typeLine("echo size=$(stty size)")
		expect("size=30 90")
		// A resize of the client's terminal reaches the node's pty. The
		// window change and the typed line travel separately on the server,
		// so retry until the new size shows.
		if err := setWinsize(tty, 120, 40); err != nil {
			t.Fatal(err)
		}
		syscall.Kill(os.Getpid(), syscall.SIGWINCH)
		resized := false
		for i := 0; i < 20 && !resized; i++ {
			typeLine("echo size=$(stty size)")
			resized = out.waitFor(t, "size=40 120", 250*time.Millisecond)
		}
		if !resized {
			t.Errorf("window change not seen:\n%s", out.String())
		}
	}

	typeLine("exit 4")
	select {
	case r := <-done:
		if r.err != nil || r.status != 4 {
			t.Errorf("Shell = %d, %v; want 4, nil", r.status, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("Shell did not return after exit:\n%s", out.String())
	}
	f.log.wait(t, "remote: shell (pty) by master from 127.0.0.1:", ": exit 4")
}

func TestShellPipes(t *testing.T) {
	f := newFixture(t)
	c := f.client(t)
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer inR.Close()
	defer outR.Close()
	go func() {
		io.WriteString(inW, "[ -t 0 ] || echo no-tty-$((2+2))\nexit 5\n")
		inW.Close()
	}()
	var out bytes.Buffer
	copied := make(chan struct{})
	go func() { io.Copy(&out, outR); close(copied) }()
	status, err := c.Shell(inR, outW)
	outW.Close()
	<-copied
	if err != nil || status != 5 {
		t.Errorf("Shell = %d, %v; want 5, nil", status, err)
	}
	if out.String() != "no-tty-4\n" {
		t.Errorf("shell output %q, want %q", out.String(), "no-tty-4\n")
	}
}

func TestPutGet(t *testing.T) {
	f := newFixture(t)
	c := f.client(t)
	dir := filepath.Join(t.TempDir(), "with space")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "my file.bin")
	data := make([]byte, 1<<20)
	rand.Read(data)

	if err := c.Put(bytes.NewReader(data), path, 0o640); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != 0o640 {
		t.Errorf("mode %v, want %v", fi.Mode(), os.FileMode(0o640))
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, data) {
		t.Errorf("file on disk differs from what was put (%d bytes, want %d)", len(got), len(data))
	}
	f.log.wait(t, `remote: copy put "`+path+`" by master from 127.0.0.1:`, "1048576 bytes")

	var got bytes.Buffer
	if err := c.Get(path, &got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), data) {
		t.Errorf("Get returned %d bytes differing from the %d put", got.Len(), len(data))
	}
	f.log.wait(t, `remote: copy get "`+path+`"`, "1048576 bytes")

	// Replacing keeps no temporary files and applies the new mode.
	if err := c.Put(strings.NewReader("new"), path, 0o600|os.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode() != 0o600|os.ModeSetgid {
		t.Errorf("after second put: %v, %v", fi.Mode(), err)
	}
	if b, _ := os.ReadFile(path); string(b) != "new" {
		t.Errorf("after second put: %q", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("directory holds %d entries, want only the file", len(ents))
	}
}

func TestCopyErrors(t *testing.T) {
	f := newFixture(t)
	c := f.client(t)
	missing := filepath.Join(t.TempDir(), "no such file")
	var w bytes.Buffer
	err := c.Get(missing, &w)
	if err == nil || !strings.Contains(err.Error(), "open "+missing+": no such file") {
		t.Errorf("Get of a missing file: %v; want an error naming %s", err, missing)
	}
	f.log.wait(t, "remote: copy", "by master from 127.0.0.1:", "no such file")

	if err := c.Put(strings.NewReader("x"), "relative/path", 0o644); err == nil || !strings.Contains(err.Error(), "not absolute") {
		t.Errorf("Put to a relative path: %v", err)
	}
	if err := c.Put(strings.NewReader("x"), filepath.Join(missing, "f"), 0o644); err == nil {
		t.Error("Put into a missing directory succeeded")
	}
	var stderr bytes.Buffer
	if status, err := c.Exec("skyfleet-cp frob /x", nil, nil, &stderr); err != nil || status != 1 || !strings.Contains(stderr.String(), "usage") {
		t.Errorf("bad skyfleet-cp = %d, %v, %q", status, err, stderr.String())
	}
}

// A client that goes away mid-upload must not leave a truncated file: the
// channel's reads end as if the upload were complete.
func TestPutInterrupted(t *testing.T) {
	f := newFixture(t)
	c := f.client(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	s, err := c.ssh.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := s.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("skyfleet-cp put " + strconv.Quote(path) + " 644"); err != nil {
		t.Fatal(err)
	}
	if _, err := stdin.Write(make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	// Wait for the temporary file, then hang up without sending EOF.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if ents, _ := os.ReadDir(dir); len(ents) > 0 || time.Now().After(deadline) {
			break
		}
	}
	s.Close()
	f.log.wait(t, `remote: copy "skyfleet-cp put `, "upload interrupted")
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("interrupted upload left %s", ents[0].Name())
	}
}

func TestSplitArgs(t *testing.T) {
	for in, want := range map[string][]string{
		` get /a/b`:               {"get", "/a/b"},
		` put "/a b/\"c\"" 644`:   {"put", `/a b/"c"`, "644"},
		` put  "/tab\there"	755 `: {"put", "/tab\there", "755"},
		``:                        nil,
	} {
		got, err := splitArgs(in)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("splitArgs(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{` "unterminated`, ` "a"b`} {
		if got, err := splitArgs(in); err == nil {
			t.Errorf("splitArgs(%q) = %q, want an error", in, got)
		}
	}
}

func TestOtherMasterRefused(t *testing.T) {
	f := newFixture(t)
	if c, err := f.dial(t, newKey(t)); err == nil {
		c.Close()
		t.Fatal("Dial with another key succeeded")
	}
	f.log.wait(t, `remote: refused keyboard-interactive for "root" from 127.0.0.1:`, ErrNotMaster.Error())
	f.log.wait(t, "remote: handshake with 127.0.0.1:", "failed")
}

func TestPublicKeyRefused(t *testing.T) {
	f := newFixture(t)
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cfg := &ssh.ClientConfig{
		User:            "root",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer), ssh.Password("root")},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(),
	}
	if c, _, _, err := ssh.NewClientConn(conn, f.addr, cfg); err == nil {
		c.Close()
		t.Fatal("public key login succeeded")
	}
	f.log.wait(t, "remote: refused public key "+ssh.FingerprintSHA256(signer.PublicKey())+" from 127.0.0.1:")
}

func TestOnlySessionChannels(t *testing.T) {
	f := newFixture(t)
	c := f.client(t)
	var oce *ssh.OpenChannelError
	// A node without an API to forward to refuses every forward.
	if _, err := c.DialAPI(); !errors.As(err, &oce) || oce.Reason != ssh.Prohibited {
		t.Errorf("DialAPI without Server.API: %v, want prohibited", err)
	}
	f.log.wait(t, "remote: refused forward from 127.0.0.1:", "forwards nothing")
	_, _, err := c.ssh.OpenChannel("x11", nil)
	if !errors.As(err, &oce) || oce.Reason != ssh.Prohibited {
		t.Errorf("opening x11: %v, want prohibited", err)
	}
	f.log.wait(t, `remote: refused "x11" channel from 127.0.0.1:`)
}

func TestHostKeyStable(t *testing.T) {
	master, node := newKey(t), newKey(t)
	signer, err := HostSigner(node)
	if err != nil {
		t.Fatal(err)
	}
	if typ := signer.PublicKey().Type(); typ != ssh.KeyAlgoED25519 {
		t.Errorf("host key type %s", typ)
	}
	want := ssh.FingerprintSHA256(signer.PublicKey())
	for i := range 2 {
		f := serve(t, master, node) // a restarted node
		if got := f.client(t).HostKeyFingerprint(); got != want {
			t.Errorf("server %d: host key %s, want %s", i, got, want)
		}
	}
	f := serve(t, master, newKey(t))
	if got := f.client(t).HostKeyFingerprint(); got == want || !strings.HasPrefix(got, "SHA256:") {
		t.Errorf("another node's host key %q (first node's %s)", got, want)
	}
}

func TestChallenge(t *testing.T) {
	master, other := newKey(t), newKey(t)
	pub := master.PubKey().SerializeCompressed()
	sid := []byte("0123456789abcdef0123456789abcdef")
	sig := SignChallenge(master, "root", sid)
	if len(sig) != 65 {
		t.Fatalf("signature is %d bytes, want 65", len(sig))
	}
	if err := VerifyChallenge(pub, "root", sid, sig); err != nil {
		t.Fatalf("valid signature: %v", err)
	}
	if err := VerifyChallenge(master.PubKey().SerializeUncompressed(), "root", sid, sig); err != nil {
		t.Errorf("uncompressed master key: %v", err)
	}
	for name, err := range map[string]error{
		"other user":    VerifyChallenge(pub, "admin", sid, sig),
		"other session": VerifyChallenge(pub, "root", sid[1:], sig),
		"other key":     VerifyChallenge(pub, "root", sid, SignChallenge(other, "root", sid)),
		"short sig":     VerifyChallenge(pub, "root", sid, sig[:64]),
		"empty sig":     VerifyChallenge(pub, "root", sid, nil),
	} {
		if !errors.Is(err, ErrNotMaster) {
			t.Errorf("%s: %v, want ErrNotMaster", name, err)
		}
	}
	if err := VerifyChallenge(pub[:32], "root", sid, sig); err == nil || errors.Is(err, ErrNotMaster) {
		t.Errorf("bad master key: %v", err)
	}
	if err := VerifyChallenge(pub, "ro\x00ot", sid, SignChallenge(master, "ro\x00ot", sid)); err == nil {
		t.Error("user with NUL accepted")
	}
}

// The client checks that the server holds the node key it expects; a server
// with another key (an impostor, or a relay that terminates SSH itself) is
// refused before any command runs, and a proof made for one session is
// worthless on another.
func TestNodeProof(t *testing.T) {
	f := newFixture(t)
	c := f.client(t) // proves f.node
	if _, err := c.Exec("true", nil, io.Discard, io.Discard); err != nil {
		t.Fatalf("exec after the node proof: %v", err)
	}
	other := newKey(t).PubKey().SerializeCompressed()
	if _, err := f.dialNode(t, f.master, other); !errors.Is(err, ErrNotNode) {
		t.Fatalf("Dial expecting another node: %v, want ErrNotNode", err)
	}
	if _, err := f.dialNode(t, f.master, []byte{2, 1}); err == nil || errors.Is(err, ErrNotNode) {
		t.Fatalf("Dial expecting an unparsable key: %v", err)
	}

	node := f.node.PubKey().SerializeCompressed()
	sid, host := bytes.Repeat([]byte{1}, 32), []byte("host key")
	proof := SignNodeProof(f.node, sid, host)
	if err := VerifyNodeProof(node, sid, host, proof); err != nil {
		t.Fatalf("good proof: %v", err)
	}
	for name, err := range map[string]error{
		"other session":  VerifyNodeProof(node, bytes.Repeat([]byte{2}, 32), host, proof),
		"other host key": VerifyNodeProof(node, sid, []byte("host kez"), proof),
		"truncated":      VerifyNodeProof(node, sid, host, proof[:64]),
		"other signer":   VerifyNodeProof(node, sid, host, SignNodeProof(f.master, sid, host)),
	} {
		if !errors.Is(err, ErrNotNode) {
			t.Errorf("%s: %v, want ErrNotNode", name, err)
		}
	}
}

func FuzzVerifyNodeProof(f *testing.F) {
	node := secp256k1.PrivKeyFromBytes(bytes.Repeat([]byte{9}, 32))
	pub := node.PubKey().SerializeCompressed()
	sid, host := bytes.Repeat([]byte{0xcd}, 32), []byte("\x00\x00\x00\x0bssh-ed25519")
	proof := SignNodeProof(node, sid, host)
	f.Add(sid, host, proof)
	f.Add(sid, host, proof[:64])
	f.Add([]byte{}, []byte{}, []byte{})
	f.Add(sid, host, append([]byte{26}, proof[1:]...))
	f.Fuzz(func(t *testing.T, sessionID, hostKey, sig []byte) {
		err := VerifyNodeProof(pub, sessionID, hostKey, sig)
		if err == nil && (!bytes.Equal(sessionID, sid) || !bytes.Equal(hostKey, host)) {
			t.Fatalf("accepted a proof for session %x host key %x that the node never made", sessionID, hostKey)
		}
		if err != nil && !errors.Is(err, ErrNotNode) {
			t.Fatalf("error %v does not wrap ErrNotNode", err)
		}
	})
}

func FuzzVerifyChallenge(f *testing.F) {
	master := secp256k1.PrivKeyFromBytes(bytes.Repeat([]byte{7}, 32))
	pub := master.PubKey().SerializeCompressed()
	sid := bytes.Repeat([]byte{0xab}, 32)
	sig := SignChallenge(master, "root", sid)
	f.Add("root", sid, sig)
	f.Add("root", sid, sig[:64])
	f.Add("", []byte{}, []byte{})
	f.Add("x", []byte{1}, bytes.Repeat([]byte{0xff}, 65))
	f.Add("root", sid, append([]byte{31}, sig[1:]...))
	f.Fuzz(func(t *testing.T, user string, sessionID, sig []byte) {
		err := VerifyChallenge(pub, user, sessionID, sig)
		if err == nil && (user != "root" || !bytes.Equal(sessionID, sid)) {
			t.Fatalf("accepted a signature for user %q session %x that the master never made", user, sessionID)
		}
		if err != nil && !errors.Is(err, ErrNotMaster) && !strings.ContainsRune(user, 0) {
			t.Fatalf("error %v does not wrap ErrNotMaster", err)
		}
	})
}
