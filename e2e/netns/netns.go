// Package netns builds networks of Linux network namespaces for tests: one namespace
// per node, veth pairs as links, processes started inside the nodes, and everything
// torn down when the test ends, even when it panics.
//
//	n := netns.New(t, "meshtest")     // skips unless root with iproute2
//	top := n.Line(3)                  // n0 - n1 - n2
//	n1 := top.Nodes[1]
//	p := n1.Start(t, filepath.Join(dir, "n1.log"), daemon, "-listen", "0.0.0.0:7000")
//	peer := top.Links[0].Peer(top.Nodes[0]) // n1's end of the n0-n1 link
//	out := top.Nodes[0].Run(t, client, peer.HostPort(7000)) // 10.77.1.2:7000
//	err := top.Nodes[2].Do(func() error { ...open sockets inside n2... })
//	p.Signal(syscall.SIGTERM)
//
// Addressing: Connect, Line and Grid number their links K = 1, 2, ... per Net and give
// link K the subnet 10.77.K.0/30, its A end 10.77.K.1 and its B end 10.77.K.2 (see
// AutoAddrs for more than 254 links). Link takes whatever addresses the test names. A
// node's interfaces are eth0, eth1, ... in the order its links were made.
//
// Namespaces are named PREFIX-PID-NODE (PREFIX-PID.K-NODE for the K-th open Net of one
// process with the same prefix), so parallel test processes do not collide and New can
// tell namespaces left by a crashed run (their PID is gone) from live ones, and remove
// them. Links exist only inside the namespaces, never in the root namespace, so
// deleting the namespaces deletes the links too.
//
// Nodes are not IP routers: a node reaches only the addresses of the links it is on.
// Forwarding between links is the mesh's job, not the kernel's.
//
// Setup methods (New, Node, Link, Connect, Line, Grid, Start, Run) report failures with
// t.Fatalf, so call them from the test's goroutine.
package netns

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Net is a set of namespaces, links and processes created by one test. Close, which
// New registers with t.Cleanup, kills the processes and deletes the namespaces.
type Net struct {
	tb     testing.TB
	ip     string // path of the ip command
	prefix string
	tag    string // PREFIX-PID or PREFIX-PID.K: every namespace name starts with tag + "-"

	mu     sync.Mutex
	nodes  map[string]*NS
	order  []*NS
	procs  []*Proc
	links  []*Link
	auto   int // links addressed by Connect so far
	closed bool
}

// NS is one node: a network namespace with its loopback up.
type NS struct {
	net   *Net
	name  string // the namespace's name
	label string // the name given to Node
	devs  int    // veths so far; the next one is eth<devs>
}

// End is one end of a link: the node, its interface and the address on it.
type End struct {
	// NS is the node at this end.
	NS *NS
	// Dev is the interface's name inside NS: eth0 for the node's first link, eth1
	// for its second, and so on.
	Dev string
	// Prefix is the address with its prefix length, e.g. 10.77.1.1/30.
	Prefix netip.Prefix
}

// IP is the end's address without prefix length, e.g. "10.77.1.1".
func (e End) IP() string { return e.Prefix.Addr().String() }

// HostPort is the end's address joined with port, e.g. "10.77.1.1:7000".
func (e End) HostPort(port int) string {
	return netip.AddrPortFrom(e.Prefix.Addr(), uint16(port)).String()
}

// Link is a veth pair between two nodes.
type Link struct {
	// A is the end on the first node given to Link or Connect.
	A End
	// B is the end on the second.
	B End
}

// Peer returns the end of l that is not on ns: where ns sends to reach its
// neighbour over l.
func (l *Link) Peer(ns *NS) End {
	if l.A.NS == ns {
		return l.B
	}
	return l.A
}

// Local returns the end of l that is on ns.
func (l *Link) Local(ns *NS) End {
	if l.A.NS == ns {
		return l.A
	}
	return l.B
}

// SetUp brings both ends of the link up or down: down cuts the link the way a pulled
// cable would, up restores it (addresses stay).
func (l *Link) SetUp(t testing.TB, up bool) {
	t.Helper()
	state := "down"
	if up {
		state = "up"
	}
	for _, e := range []End{l.A, l.B} {
		if out, err := e.NS.net.run("-n", e.NS.name, "link", "set", e.Dev, state); err != nil {
			t.Fatalf("netns: link %s in %s %s: %v\n%s", e.Dev, e.NS.name, state, err, out)
		}
	}
}

var (
	probeOnce sync.Once
	probeSkip string // why this machine cannot make namespaces; "" if it can

	tagsMu sync.Mutex
	tags   = map[string]bool{} // tags of the open Nets of this process
)

var validName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)

// findIP returns the path of iproute2's ip, looking beyond PATH in the sbin
// directories, which a non-login PATH often lacks.
func findIP() string {
	if p, err := exec.LookPath("ip"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"} {
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// New returns an empty Net whose namespace names start with prefix (letters, digits,
// _ . -). It skips t unless the test runs as root on Linux with iproute2's ip and may
// create namespaces, removes namespaces left with the same prefix by runs that have
// died, and registers Close with t.Cleanup.
func New(t testing.TB, prefix string) *Net {
	t.Helper()
	if !validName.MatchString(prefix) || strings.Contains(prefix, "..") || len(prefix) > 64 {
		t.Fatalf("netns: prefix %q: want 1-64 letters, digits, _ . -", prefix)
		return nil
	}
	if runtime.GOOS != "linux" {
		t.Skipf("netns: network namespaces are Linux only (this is %s)", runtime.GOOS)
	}
	if uid := os.Geteuid(); uid != 0 {
		t.Skipf("netns: creating network namespaces needs root (euid is %d); run the test as root", uid)
	}
	ip := findIP()
	if ip == "" {
		t.Skip("netns: no ip command (iproute2) in PATH, /usr/sbin or /sbin; apt-get install iproute2")
	}
	probeOnce.Do(func() {
		name := fmt.Sprintf("netnsprobe-%d", os.Getpid())
		if out, err := exec.Command(ip, "netns", "add", name).CombinedOutput(); err != nil {
			probeSkip = fmt.Sprintf("netns: `ip netns add` fails here (no CAP_SYS_ADMIN, or no /run/netns?): %v: %s", err, bytes.TrimSpace(out))
			return
		}
		exec.Command(ip, "netns", "del", name).Run()
	})
	if probeSkip != "" {
		t.Skip(probeSkip)
	}
	n := &Net{tb: t, ip: ip, prefix: prefix, nodes: map[string]*NS{}}
	n.removeStale()

	tagsMu.Lock()
	n.tag = fmt.Sprintf("%s-%d", prefix, os.Getpid())
	for k := 2; tags[n.tag]; k++ {
		n.tag = fmt.Sprintf("%s-%d.%d", prefix, os.Getpid(), k)
	}
	tags[n.tag] = true
	tagsMu.Unlock()

	t.Cleanup(n.Close)
	return n
}

// run runs ip with args and returns its combined output.
func (n *Net) run(args ...string) ([]byte, error) {
	return exec.Command(n.ip, args...).CombinedOutput()
}

// namespaces lists the names of every namespace ip knows.
func (n *Net) namespaces() ([]string, error) {
	out, err := n.run("netns", "list")
	if err != nil {
		return nil, fmt.Errorf("ip netns list: %v: %s", err, out)
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names, nil
}

// pidAlive reports whether a process with this PID exists.
func pidAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// removeStale deletes the namespaces named PREFIX-PID... whose PID is gone: they were
// left by a test process that died before its cleanup ran.
func (n *Net) removeStale() {
	names, err := n.namespaces()
	if err != nil {
		n.tb.Fatalf("netns: %v", err)
	}
	for _, name := range names {
		rest, ok := strings.CutPrefix(name, n.prefix+"-")
		if !ok {
			continue
		}
		end := strings.IndexAny(rest, "-.")
		if end <= 0 {
			continue
		}
		pid, err := strconv.Atoi(rest[:end])
		if err != nil || pid <= 0 || pidAlive(pid) {
			continue
		}
		if err := n.deleteNamespace(name); err != nil {
			n.tb.Fatalf("netns: removing stale namespace %s: %v", name, err)
		}
		n.tb.Logf("netns: removed stale namespace %s (its test process %d is gone)", name, pid)
	}
}

// deleteNamespace kills every process in the namespace name and deletes it.
func (n *Net) deleteNamespace(name string) error {
	for range 50 {
		out, err := n.run("netns", "pids", name)
		if err != nil {
			break
		}
		pids := strings.Fields(string(out))
		if len(pids) == 0 {
			break
		}
		for _, p := range pids {
			if pid, err := strconv.Atoi(p); err == nil && pid != os.Getpid() {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if out, err := n.run("netns", "del", name); err != nil {
		return fmt.Errorf("ip netns del %s: %v: %s", name, err, bytes.TrimSpace(out))
	}
	return nil
}

// Node creates the namespace for a node called name (letters, digits, _ . -, unique in
// n) and brings its loopback up. The namespace is named PREFIX-PID-name.
func (n *Net) Node(name string) *NS {
	n.tb.Helper()
	if !validName.MatchString(name) || strings.Contains(name, "..") {
		n.tb.Fatalf("netns: node name %q: want letters, digits, _ . -", name)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		n.tb.Fatalf("netns: Node(%q) after Close", name)
	}
	if n.nodes[name] != nil {
		n.tb.Fatalf("netns: node %q already exists", name)
	}
	ns := &NS{net: n, name: n.tag + "-" + name, label: name}
	if out, err := n.run("netns", "add", ns.name); err != nil {
		n.tb.Fatalf("netns: ip netns add %s: %v\n%s", ns.name, err, out)
	}
	n.nodes[name] = ns
	n.order = append(n.order, ns)
	if out, err := n.run("-n", ns.name, "link", "set", "lo", "up"); err != nil {
		n.tb.Fatalf("netns: lo up in %s: %v\n%s", ns.name, err, out)
	}
	return ns
}

// Nodes returns the nodes made so far, in the order they were made.
func (n *Net) Nodes() []*NS {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]*NS(nil), n.order...)
}

// Links returns the links made so far, in the order they were made.
func (n *Net) Links() []*Link {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]*Link(nil), n.links...)
}

// Link connects a and b with a veth pair, gives a's end the address cidrA and b's
// end cidrB (e.g. "10.1.0.1/30" and "10.1.0.2/30"), brings both up and returns once the
// kernel reports both operationally up (state UP, carrier on). Each node's interfaces
// are named eth0, eth1, ... in the order its links are made.
func (n *Net) Link(a, b *NS, cidrA, cidrB string) *Link {
	n.tb.Helper()
	l := n.link(a, b, cidrA, cidrB)
	n.waitUp([]*Link{l})
	return l
}

// waitUp waits until both ends of every link are operationally up. The kernel sets
// that state asynchronously (linkwatch), up to a second after the link is brought up;
// a daemon that looks for running interfaces at start should not race it.
func (n *Net) waitUp(links []*Link) {
	n.tb.Helper()
	pending := map[*NS][]string{}
	for _, l := range links {
		for _, e := range []End{l.A, l.B} {
			pending[e.NS] = append(pending[e.NS], e.Dev)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for ns, devs := range pending {
		for {
			out, err := n.run("-n", ns.name, "-o", "link", "show", "type", "veth")
			if err != nil {
				n.tb.Fatalf("netns: listing links of %s: %v\n%s", ns.name, err, out)
			}
			var down []string
			for _, dev := range devs {
				if !linkUp(string(out), dev) {
					down = append(down, dev)
				}
			}
			if len(down) == 0 {
				break
			}
			if time.Now().After(deadline) {
				n.tb.Fatalf("netns: %s in %s not up after 5s:\n%s", strings.Join(down, ", "), ns.name, out)
			}
			devs = down
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// linkUp reports whether `ip -o link` output shows dev with state UP.
func linkUp(out, dev string) bool {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		if name == dev {
			return strings.Contains(line, " state UP ")
		}
	}
	return false
}

// link is Link without waiting for the link to be up.
func (n *Net) link(a, b *NS, cidrA, cidrB string) *Link {
	n.tb.Helper()
	if a == b || a.net != n || b.net != n {
		n.tb.Fatalf("netns: Link wants two different nodes of this Net")
	}
	pa, err := netip.ParsePrefix(cidrA)
	if err != nil {
		n.tb.Fatalf("netns: link address %q: %v", cidrA, err)
	}
	pb, err := netip.ParsePrefix(cidrB)
	if err != nil {
		n.tb.Fatalf("netns: link address %q: %v", cidrB, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		n.tb.Fatalf("netns: Link after Close")
	}
	l := &Link{
		A: End{NS: a, Dev: fmt.Sprintf("eth%d", a.devs), Prefix: pa},
		B: End{NS: b, Dev: fmt.Sprintf("eth%d", b.devs), Prefix: pb},
	}
	// Created straight inside the two namespaces, so the pair never appears in the
	// root namespace and goes away with them. The ends get interface indexes of their
	// own (100+2k and 101+2k for the Net's k-th link): when both ends of a veth have
	// the same index (each namespace counts from 1), the kernel treats their carrier
	// change as not urgent and reports them up only up to a second later.
	k := len(n.links)
	idxA, idxB := strconv.Itoa(100+2*k), strconv.Itoa(101+2*k)
	out, err := n.run("link", "add", l.A.Dev, "index", idxA, "netns", a.name, "type", "veth", "peer", "name", l.B.Dev, "index", idxB, "netns", b.name)
	if err != nil {
		// Whatever the reason, try once more the plain way before giving up.
		out, err = n.run("link", "add", l.A.Dev, "netns", a.name, "type", "veth", "peer", "name", l.B.Dev, "netns", b.name)
	}
	if err != nil {
		n.tb.Fatalf("netns: veth %s:%s - %s:%s: %v\n%s", a.name, l.A.Dev, b.name, l.B.Dev, err, out)
	}
	a.devs++
	b.devs++
	for _, e := range []End{l.A, l.B} {
		if out, err := n.run("-n", e.NS.name, "addr", "add", e.Prefix.String(), "dev", e.Dev); err != nil {
			n.tb.Fatalf("netns: address %s on %s in %s: %v\n%s", e.Prefix, e.Dev, e.NS.name, err, out)
		}
		if out, err := n.run("-n", e.NS.name, "link", "set", e.Dev, "up"); err != nil {
			n.tb.Fatalf("netns: %s up in %s: %v\n%s", e.Dev, e.NS.name, err, out)
		}
	}
	n.links = append(n.links, l)
	return l
}

// Close kills the processes started in the nodes (Start's, and any other found inside
// them) and deletes the namespaces, which takes their links along. New registers it
// with t.Cleanup, which runs even when the test fails or panics; calling it earlier is
// fine, and later calls do nothing. Namespaces it cannot delete fail the test.
func (n *Net) Close() {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	n.closed = true
	procs, nodes := n.procs, n.order
	n.mu.Unlock()

	for _, p := range procs {
		p.Kill()
	}
	for _, ns := range nodes {
		if err := n.deleteNamespace(ns.name); err != nil {
			n.tb.Errorf("netns: %v", err)
		}
	}
	tagsMu.Lock()
	delete(tags, n.tag)
	tagsMu.Unlock()
}

// Name is the namespace's name, as `ip netns` shows it: PREFIX-PID-NODE.
func (ns *NS) Name() string { return ns.name }

// Label is the node name given to Node, e.g. "n0".
func (ns *NS) Label() string { return ns.label }

// String is the node's label.
func (ns *NS) String() string { return ns.label }

// Command returns a command that runs name with args inside the namespace, through
// `ip netns exec` (which replaces itself with the command, so the command's PID is
// the process's). name is looked up in PATH inside the namespace's view.
func (ns *NS) Command(name string, args ...string) *exec.Cmd {
	return exec.Command(ns.net.ip, append([]string{"netns", "exec", ns.name, name}, args...)...)
}

// Run runs name with args in the namespace to completion and returns its combined
// output; it fails t, showing the output, if the command fails.
func (ns *NS) Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := ns.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("netns: in %s: %s %s: %v\n%s", ns.label, name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Do runs fn on an OS thread that has entered the namespace, and returns fn's error.
// Sockets that fn opens belong to the namespace for good and may be used from any
// goroutine after Do returns, so a test can be a client or server inside a node
// without a helper process. fn runs on another goroutine: it must not call t.FailNow
// (t.Fatal), and whatever it starts on other goroutines runs in the test's own
// namespace.
func (ns *NS) Do(fn func() error) error {
	target, err := os.Open(filepath.Join("/run/netns", ns.name))
	if err != nil {
		return fmt.Errorf("netns: %w", err)
	}
	defer target.Close()
	result := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The thread is handed back only if it returned to its namespace; otherwise
		// the goroutine ends locked and the runtime discards the thread.
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			result <- fmt.Errorf("netns: %w", err)
			return
		}
		defer orig.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			result <- fmt.Errorf("netns: entering %s: %w", ns.name, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			result <- errors.Join(ferr, fmt.Errorf("netns: leaving %s: %w", ns.name, err))
			return
		}
		runtime.UnlockOSThread()
		result <- ferr
	}()
	return <-result
}

// Proc is a process started by NS.Start.
type Proc struct {
	// Cmd is the started command; its Process is the program itself (ip netns exec
	// replaced itself with it).
	Cmd *exec.Cmd
	// LogPath is the file that has the process's stdout and stderr.
	LogPath string

	ns   *NS
	done chan struct{}
	err  error
	once sync.Once
}

// Start starts a long-running process: name with args inside the namespace, in a
// process group of its own, with stdout and stderr going to logPath (created, or
// truncated, along with its directory). The process and its group are killed when t
// ends, and by Net.Close.
func (ns *NS) Start(t testing.TB, logPath string, name string, args ...string) *Proc {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		t.Fatalf("netns: %v", err)
	}
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("netns: %v", err)
	}
	defer f.Close() // the child has its own copy
	cmd := ns.Command(name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	n := ns.net
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		t.Fatalf("netns: Start after Close")
	}
	if err := cmd.Start(); err != nil {
		n.mu.Unlock()
		t.Fatalf("netns: starting %s in %s: %v", name, ns.label, err)
	}
	p := &Proc{Cmd: cmd, LogPath: logPath, ns: ns, done: make(chan struct{})}
	n.procs = append(n.procs, p)
	n.mu.Unlock()
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.Kill)
	return p
}

// Pid is the process's ID.
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Signal sends sig to the process (not to the rest of its group).
func (p *Proc) Signal(sig os.Signal) {
	p.Cmd.Process.Signal(sig)
}

// Kill sends SIGKILL to the process's group, so children it forked die too, and waits
// for the process to exit. It may be called any number of times.
func (p *Proc) Kill() {
	p.once.Do(func() {
		syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
	})
	<-p.done
}

// Wait waits for the process to exit and returns what exec.Cmd.Wait returned: nil for
// exit status 0, an *exec.ExitError otherwise.
func (p *Proc) Wait() error {
	<-p.done
	return p.err
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Log returns what the process has written to its log so far.
func (p *Proc) Log() string {
	b, _ := os.ReadFile(p.LogPath)
	return string(b)
}
