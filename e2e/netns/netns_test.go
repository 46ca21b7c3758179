package netns_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/e2e/netns"
)

// TestMain turns the test binary into a small helper program when its first argument
// is "netns-helper", so tests have a UDP echo server and client inside namespaces
// without relying on tools the machine may lack.
func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == "netns-helper" {
		os.Exit(helper(os.Args[2], os.Args[3:]))
	}
	os.Exit(m.Run())
}

// helper runs one helper mode and returns its exit code.
//
//	udp-echo ADDR   echo datagrams on ADDR until killed
//	udp-ping ADDR   send "ping" to ADDR until the echo comes (3 s at most)
//	sleep           wait; exit 3 on SIGTERM
//	fail            print "boom" and exit 1
func helper(mode string, args []string) int {
	switch mode {
	case "udp-echo":
		c, err := net.ListenPacket("udp", args[0])
		if err != nil {
			fmt.Println(err)
			return 1
		}
		fmt.Println("echoing on", c.LocalAddr())
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return 1
			}
			c.WriteTo(buf[:n], from)
		}
	case "udp-ping":
		c, err := net.Dial("udp", args[0])
		if err != nil {
			fmt.Println(err)
			return 1
		}
		buf := make([]byte, 64)
		for range 15 {
			c.Write([]byte("ping"))
			c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			if n, err := c.Read(buf); err == nil && string(buf[:n]) == "ping" {
				fmt.Println("pong from", args[0])
				return 0
			}
		}
		fmt.Println("no echo from", args[0])
		return 1
	case "sleep":
		fmt.Println("sleeping", os.Getpid())
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		<-sig
		fmt.Println("terminated")
		return 3
	case "fail":
		fmt.Println("boom")
		return 1
	}
	fmt.Println("unknown helper mode", mode)
	return 2
}

func self(t testing.TB) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// listNamespaces returns `ip netns list`'s names.
func listNamespaces(t testing.TB) []string {
	t.Helper()
	out, err := exec.Command(ipPath(t), "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v\n%s", err, out)
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names
}

func ipPath(t testing.TB) string {
	for _, p := range []string{"ip", "/usr/sbin/ip", "/sbin/ip"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Skip("no ip command")
	return ""
}

// udpRoundTrip sends "hello" from inside ns to addr and waits for the echo.
func udpRoundTrip(ns *netns.NS, addr string) error {
	var c net.Conn
	if err := ns.Do(func() (err error) {
		c, err = net.Dial("udp", addr)
		return err
	}); err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, 64)
	for range 10 {
		if _, err := c.Write([]byte("hello")); err != nil {
			return err
		}
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if n, err := c.Read(buf); err == nil && string(buf[:n]) == "hello" {
			return nil
		}
	}
	return fmt.Errorf("no echo from %s", addr)
}

func TestLineNeighboursOnly(t *testing.T) {
	n := netns.New(t, "nstline")
	top := n.Line(3)
	if len(top.Nodes) != 3 || len(top.Links) != 2 {
		t.Fatalf("Line(3): %d nodes, %d links", len(top.Nodes), len(top.Links))
	}
	n0, n1, n2 := top.Nodes[0], top.Nodes[1], top.Nodes[2]
	for i, want := range [][2]string{{"10.77.1.1/30", "10.77.1.2/30"}, {"10.77.2.1/30", "10.77.2.2/30"}} {
		l := top.Links[i]
		if l.A.Prefix.String() != want[0] || l.B.Prefix.String() != want[1] || l.A.NS != top.Nodes[i] || l.B.NS != top.Nodes[i+1] {
			t.Errorf("link %d: %s %s=%s - %s %s=%s", i, l.A.NS, l.A.Dev, l.A.Prefix, l.B.NS, l.B.Dev, l.B.Prefix)
		}
	}
	if got := n1.Run(t, "ip", "-o", "-4", "addr", "show", "dev", "eth1"); !strings.Contains(got, "10.77.2.1/30") {
		t.Errorf("n1's eth1 has no 10.77.2.1/30:\n%s", got)
	}

	// An echo server in the middle node, on every address.
	dir := t.TempDir()
	echo := n1.Start(t, filepath.Join(dir, "n1-echo.log"), self(t), "netns-helper", "udp-echo", "0.0.0.0:9000")

	// n0 reaches n1 over link 0, from a helper process (NS.Run)...
	out := n0.Run(t, self(t), "netns-helper", "udp-ping", top.Links[0].Peer(n0).HostPort(9000))
	if !strings.Contains(out, "pong") {
		t.Errorf("n0 -> n1: %s", out)
	}
	// ... and n2 reaches n1 over link 1, from this test process (NS.Do).
	if err := udpRoundTrip(n2, top.Links[1].Peer(n2).HostPort(9000)); err != nil {
		t.Errorf("n2 -> n1: %v", err)
	}
	if !strings.Contains(echo.Log(), "echoing on") {
		t.Errorf("echo server's log: %q", echo.Log())
	}

	// Nodes are not routers: n0 has no route to n2, nor to n1's address on the far link.
	for _, far := range []string{top.Links[1].B.IP(), top.Links[1].A.IP()} {
		out, err := n0.Command("ip", "route", "get", far).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "unreachable") {
			t.Errorf("n0 has a route to %s: %v %s", far, err, out)
		}
		err = n0.Do(func() error {
			c, err := net.Dial("udp", net.JoinHostPort(far, "9000"))
			if err == nil {
				_, err = c.Write([]byte("x"))
				c.Close()
			}
			return err
		})
		if !errors.Is(err, syscall.ENETUNREACH) {
			t.Errorf("UDP from n0 to %s: %v, want network unreachable", far, err)
		}
	}
}

func TestGrid(t *testing.T) {
	n := netns.New(t, "nstgrid")
	top := n.Grid(3, 3)
	if len(top.Nodes) != 9 || len(top.Links) != 12 {
		t.Fatalf("Grid(3,3): %d nodes, %d links; want 9 and 12", len(top.Nodes), len(top.Links))
	}
	seen := map[string]bool{}
	for _, l := range top.Links {
		for _, e := range []netns.End{l.A, l.B} {
			if seen[e.IP()] {
				t.Errorf("address %s used twice", e.IP())
			}
			seen[e.IP()] = true
		}
	}
	// Corners have 2 links, edges 3, the centre 4; each shows up as eth0..ethN-1.
	for r := range 3 {
		for c := range 3 {
			want := 4
			if r != 1 {
				want--
			}
			if c != 1 {
				want--
			}
			ns := top.At(r, c)
			if got := len(top.Neighbours(ns)); got != want {
				t.Errorf("%s: %d links, want %d", ns, got, want)
			}
			out := ns.Run(t, "ip", "-o", "link", "show", "type", "veth")
			if got := strings.Count(out, "state UP"); got != want {
				t.Errorf("%s: %d veths up, want %d:\n%s", ns, got, want, out)
			}
		}
	}
	if top.Between(top.At(0, 0), top.At(1, 1)) != nil {
		t.Error("diagonal neighbours in a grid")
	}

	// A vertical link carries UDP, both ends in this test process.
	l := top.Between(top.At(1, 1), top.At(2, 1))
	if l == nil || l.A.NS != top.At(1, 1) {
		t.Fatalf("link r1c1-r2c1: %+v", l)
	}
	var srv net.PacketConn
	if err := l.B.NS.Do(func() (err error) {
		srv, err = net.ListenPacket("udp", l.B.HostPort(9100))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	go func() {
		buf := make([]byte, 64)
		for {
			n, from, err := srv.ReadFrom(buf)
			if err != nil {
				return
			}
			srv.WriteTo(buf[:n], from)
		}
	}()
	if err := udpRoundTrip(l.A.NS, l.B.HostPort(9100)); err != nil {
		t.Error(err)
	}

	// A link taken down stops carrying traffic, and comes back.
	l.SetUp(t, false)
	if err := udpRoundTrip(l.A.NS, l.B.HostPort(9100)); err == nil {
		t.Error("UDP over a link that is down")
	}
	l.SetUp(t, true)
	if err := udpRoundTrip(l.A.NS, l.B.HostPort(9100)); err != nil {
		t.Errorf("after bringing the link back up: %v", err)
	}
}

func TestCloseRemovesEverything(t *testing.T) {
	ip := ipPath(t)
	rootLinks := func() string {
		out, _ := exec.Command(ip, "-o", "link").CombinedOutput()
		return string(out)
	}
	before := rootLinks()
	n := netns.New(t, "nstclose")
	a, b, c := n.Node("a"), n.Node("b"), n.Node("c")
	n.Connect(a, b)
	n.Link(b, c, "192.168.77.1/24", "192.168.77.2/24")
	p := b.Start(t, filepath.Join(t.TempDir(), "b.log"), self(t), "netns-helper", "sleep")
	// A process started by hand with Command is also found and killed.
	stray := c.Command(self(t), "netns-helper", "sleep")
	if err := stray.Start(); err != nil {
		t.Fatal(err)
	}
	strayDone := make(chan struct{})
	go func() { stray.Wait(); close(strayDone) }()

	names := []string{a.Name(), b.Name(), c.Name()}
	for _, name := range names {
		if !strings.HasPrefix(name, "nstclose-"+strconv.Itoa(os.Getpid())+"-") {
			t.Errorf("namespace name %q lacks prefix and PID", name)
		}
	}
	if got := rootLinks(); got != before {
		t.Errorf("links leaked into the root namespace:\nbefore %s\nafter %s", before, got)
	}

	n.Close()
	n.Close()
	select {
	case <-p.Done():
	default:
		t.Error("Start's process still running after Close")
	}
	select {
	case <-strayDone:
	case <-time.After(5 * time.Second):
		t.Error("a process started with Command survived Close")
		stray.Process.Kill()
	}
	left := listNamespaces(t)
	for _, name := range left {
		for _, gone := range names {
			if name == gone {
				t.Errorf("namespace %s survived Close", name)
			}
		}
	}
	if got := rootLinks(); got != before {
		t.Errorf("root namespace links changed:\nbefore %s\nafter %s", before, got)
	}
}

func TestProcSignalAndKill(t *testing.T) {
	n := netns.New(t, "nstproc")
	a := n.Node("a")
	dir := t.TempDir()
	p := a.Start(t, filepath.Join(dir, "sub", "sleep.log"), self(t), "netns-helper", "sleep")
	waitLog(t, p, "sleeping")
	p.Signal(syscall.SIGTERM)
	err := p.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Errorf("after SIGTERM: %v, want exit status 3", err)
	}
	if !strings.Contains(p.Log(), "terminated") {
		t.Errorf("log: %q", p.Log())
	}
	if !strings.Contains(p.Log(), "sleeping "+strconv.Itoa(p.Pid())) {
		t.Errorf("the process's PID is not the program's: log %q, pid %d", p.Log(), p.Pid())
	}

	q := a.Start(t, filepath.Join(dir, "kill.log"), self(t), "netns-helper", "sleep")
	waitLog(t, q, "sleeping")
	q.Kill()
	q.Kill()
	var qexit *exec.ExitError
	if err := q.Wait(); !errors.As(err, &qexit) || qexit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("after Kill: %v", err)
	}
}

func waitLog(t *testing.T, p *netns.Proc, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(p.Log(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("log never said %q: %q", want, p.Log())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fatalRecorder is a testing.TB whose Fatalf records instead of stopping.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Fatalf(format string, args ...any) { f.msg = fmt.Sprintf(format, args...) }
func (f *fatalRecorder) Helper()                           {}

func TestRunFailsWithOutput(t *testing.T) {
	n := netns.New(t, "nstrun")
	a := n.Node("a")
	if out := a.Run(t, "ip", "-o", "link", "show", "lo"); !strings.Contains(out, "UP") {
		t.Errorf("lo is not up: %s", out)
	}
	rec := &fatalRecorder{TB: t}
	a.Run(rec, self(t), "netns-helper", "fail")
	if !strings.Contains(rec.msg, "boom") || !strings.Contains(rec.msg, "exit status 1") {
		t.Errorf("Run's failure says %q; want the output and the exit status", rec.msg)
	}
}

func TestStaleNamespacesRemoved(t *testing.T) {
	ip := ipPath(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dead := 0
	for pid := 4_000_000; pid > 1000; pid -= 997 {
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			dead = pid
			break
		}
	}
	stale := fmt.Sprintf("nststale-%d-x", dead)
	live := fmt.Sprintf("nststale-%d-keep", os.Getppid())
	for _, name := range []string{stale, live} {
		if out, err := exec.Command(ip, "netns", "add", name).CombinedOutput(); err != nil {
			t.Skipf("ip netns add: %v %s", err, out)
		}
	}
	defer exec.Command(ip, "netns", "del", live).Run()
	defer exec.Command(ip, "netns", "del", stale).Run()
	// A process left running in the stale namespace.
	orphan := exec.Command(ip, "netns", "exec", stale, self(t), "netns-helper", "sleep")
	if err := orphan.Start(); err != nil {
		t.Fatal(err)
	}
	orphanDone := make(chan struct{})
	go func() { orphan.Wait(); close(orphanDone) }()

	netns.New(t, "nststale")

	names := strings.Join(listNamespaces(t), " ")
	if strings.Contains(names, stale) {
		t.Errorf("stale namespace %s survived New", stale)
	}
	if !strings.Contains(names, live) {
		t.Errorf("New removed %s, whose PID is alive", live)
	}
	select {
	case <-orphanDone:
	case <-time.After(5 * time.Second):
		orphan.Process.Kill()
		t.Error("the process in the stale namespace survived")
	}
}

// TestCleanupAfterPanic runs TestHelperPanics in a child test process and checks that
// the namespaces and the process it made are gone although the test panicked.
func TestCleanupAfterPanic(t *testing.T) {
	ipPath(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	cmd := exec.Command(self(t), "-test.run=^TestHelperPanics$", "-test.v")
	cmd.Env = append(os.Environ(), "NETNS_TEST_PANIC=1")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "panic: on purpose") {
		t.Fatalf("the helper test did not panic: %v\n%s", err, out)
	}
	var pid int
	for _, line := range strings.Split(string(out), "\n") {
		if _, rest, ok := strings.Cut(line, "sleeper pid "); ok {
			pid, _ = strconv.Atoi(strings.TrimSpace(rest))
		}
	}
	if pid == 0 {
		t.Fatalf("no sleeper pid in\n%s", out)
	}
	if syscall.Kill(pid, 0) != syscall.ESRCH {
		t.Errorf("process %d survived the panic", pid)
	}
	for _, name := range listNamespaces(t) {
		if strings.HasPrefix(name, "nstpanic-") {
			t.Errorf("namespace %s survived the panic", name)
		}
	}
}

// TestHelperPanics panics with a network up; only TestCleanupAfterPanic runs it.
func TestHelperPanics(t *testing.T) {
	if os.Getenv("NETNS_TEST_PANIC") != "1" {
		t.Skip("run by TestCleanupAfterPanic")
	}
	n := netns.New(t, "nstpanic")
	top := n.Line(2)
	p := top.Nodes[1].Start(t, filepath.Join(t.TempDir(), "s.log"), self(t), "netns-helper", "sleep")
	fmt.Printf("sleeper pid %d\n", p.Pid())
	panic("on purpose")
}

func TestNewValidatesPrefix(t *testing.T) {
	rec := &fatalRecorder{TB: t}
	func() {
		defer func() { recover() }()
		netns.New(rec, "bad/prefix")
	}()
	if !strings.Contains(rec.msg, "prefix") {
		t.Errorf("New(%q) said %q", "bad/prefix", rec.msg)
	}
}

func TestAutoAddrs(t *testing.T) {
	for k, want := range map[int][2]string{
		1:   {"10.77.1.1/30", "10.77.1.2/30"},
		12:  {"10.77.12.1/30", "10.77.12.2/30"},
		254: {"10.77.254.1/30", "10.77.254.2/30"},
		255: {"10.78.1.1/30", "10.78.1.2/30"},
	} {
		a, b := netns.AutoAddrs(k)
		if a.String() != want[0] || b.String() != want[1] {
			t.Errorf("AutoAddrs(%d) = %s %s, want %s %s", k, a, b, want[0], want[1])
		}
	}
}
