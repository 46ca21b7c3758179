package discovery

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
)

// testGroup returns DefaultGroup's address with a port free on this host, so that
// tests do not hear real nodes or each other.
func testGroup(t testing.TB) string {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return fmt.Sprintf("239.255.55.55:%d", c.LocalAddr().(*net.UDPAddr).Port)
}

// sighting is one call of Config.Found.
type sighting struct {
	by       string // which instance saw it
	pub      string // hex
	endpoint string
}

// recorder collects Found calls.
type recorder struct {
	mu   sync.Mutex
	seen []sighting
}

func (r *recorder) found(by string) func(pub []byte, ep string) {
	return func(pub []byte, ep string) {
		r.mu.Lock()
		r.seen = append(r.seen, sighting{by, hex.EncodeToString(pub), ep})
		r.mu.Unlock()
	}
}

// has reports whether by reported pub with an endpoint ending in suffix ("" for
// any, "ip:port" for exactly that), and returns that endpoint.
func (r *recorder) has(by string, pub []byte, suffix string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.seen {
		if s.by == by && s.pub == hex.EncodeToString(pub) && strings.HasSuffix(s.endpoint, suffix) {
			return s.endpoint, true
		}
	}
	return "", false
}

func TestStartErrors(t *testing.T) {
	good := Config{PublicKey: testKey(1), MeshPort: 5505, Group: testGroup(t)}
	for _, tc := range []struct {
		name string
		f    func(c *Config)
	}{
		{"no key", func(c *Config) { c.PublicKey = nil }},
		{"bad key", func(c *Config) { c.PublicKey = append([]byte{4}, testKey(1)[1:]...) }},
		{"port 0", func(c *Config) { c.MeshPort = 0 }},
		{"unicast group", func(c *Config) { c.Group = "10.0.0.1:5506" }},
		{"IPv6 group", func(c *Config) { c.Group = "[ff02::1]:5506" }},
		{"no port", func(c *Config) { c.Group = "239.255.55.55" }},
		{"group port 0", func(c *Config) { c.Group = "239.255.55.55:0" }},
	} {
		c := good
		tc.f(&c)
		if d, err := Start(c); err == nil {
			d.Close()
			t.Errorf("%s: Start succeeded", tc.name)
		}
	}
	d, err := Start(good)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err == nil {
		t.Fatal("second Close succeeded")
	}
}

// TestLoopback runs three instances in this process on the loopback interface: two
// share a network key and find each other; the third, with another key, is never
// reported and its beacons are counted as bad tags.
func TestLoopback(t *testing.T) {
	group := testGroup(t)
	rec := &recorder{}
	psk, otherPSK := testPSK(7), testPSK(8)
	keys := [][]byte{testKey(1), testKey(2), testKey(3)}
	ports := []uint16{5001, 5002, 5003}
	var ds []*Discovery
	for i, name := range []string{"a", "b", "c"} {
		p := psk
		if name == "c" {
			p = otherPSK
		}
		d, err := Start(Config{PSK: p, PublicKey: keys[i], MeshPort: ports[i], Group: group,
			Interval: 100 * time.Millisecond, Interfaces: []string{"lo"}, Found: rec.found(name)})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		if got := d.Interfaces(); len(got) != 1 || got[0] != "lo" {
			t.Skipf("loopback interface not usable for multicast here (interfaces %v)", got)
		}
		ds = append(ds, d)
	}
	// The endpoint is the beacon's source IP, the interface's address.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, okA := rec.has("a", keys[1], "127.0.0.1:5002")
		_, okB := rec.has("b", keys[0], "127.0.0.1:5001")
		if okA && okB {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a and b did not find each other; stats a %+v b %+v", ds[0].Stats(), ds[1].Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // a few more rounds of c's beacons
	for _, d := range ds {
		d.Close()
	}
	_, ac := rec.has("a", keys[2], "")
	_, bc := rec.has("b", keys[2], "")
	_, ca := rec.has("c", keys[0], "")
	_, cb := rec.has("c", keys[1], "")
	if ac || bc || ca || cb {
		t.Fatalf("a node with another network key was reported: %+v", rec.seen)
	}
	for i, d := range ds {
		s := d.Stats()
		t.Logf("%c: %+v", 'a'+i, s)
		if s.Sent == 0 || s.Own == 0 || s.BadTag == 0 || s.Malformed != 0 {
			t.Errorf("%c: stats %+v: want beacons sent, own ones seen and dropped, bad tags counted, nothing malformed", 'a'+i, s)
		}
	}
	if s := ds[0].Stats(); s.Found == 0 {
		t.Errorf("a found nothing: %+v", s)
	}
}

// TestReplayAndForeign feeds datagrams straight to the group: a replayed beacon is
// dropped once seen, junk is malformed, a forged tag is a bad tag.
func TestReplayAndForeign(t *testing.T) {
	group := testGroup(t)
	rec := &recorder{}
	psk := testPSK(7)
	d, err := Start(Config{PSK: psk, PublicKey: testKey(1), MeshPort: 5001, Group: group,
		Interval: time.Hour, Interfaces: []string{"lo"}, Found: rec.found("a")})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if len(d.Interfaces()) != 1 {
		t.Skipf("loopback interface not usable for multicast here")
	}
	// A sender socket with multicast on loopback.
	gaddr, _ := net.ResolveUDPAddr("udp4", group)
	s, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}, gaddr)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := ipv4.NewPacketConn(s).SetMulticastInterface(lo); err != nil {
		t.Fatal(err)
	}
	b, _ := MarshalBeacon(psk, Beacon{PublicKey: testKey(2), Port: 6000, Nonce: [8]byte{1}})
	forged := append([]byte(nil), b...)
	forged[50] ^= 0x55
	own, _ := MarshalBeacon(psk, Beacon{PublicKey: testKey(1), Port: 5001, Nonce: [8]byte{2}})
	for _, m := range [][]byte{b, b, b, forged, []byte("hello"), own} {
		if _, err := s.Write(m); err != nil {
			t.Fatal(err)
		}
	}
	// Own also counts the node's first beacon, sent at Start, looped back.
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := d.Stats()
		if got.Found == 1 && got.Replays == 2 && got.BadTag == 1 && got.Malformed == 1 && got.Own >= 2 &&
			got.Received == 5+got.Own {
			t.Logf("stats %+v", got)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v, want 1 found, 2 replays, 1 bad tag, 1 malformed, own beacons", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, ok := rec.has("a", testKey(2), "127.0.0.1:6000"); !ok {
		t.Fatalf("beacon not reported with endpoint 127.0.0.1:6000: %+v", rec.seen)
	}
}

// Network-namespace test: two namespaces joined by a veth pair, a node in each and a
// third node with another key beside the first. Each node runs in a child process,
// this test binary re-executed with `ip netns exec` in helper mode.

const helperEnv = "SKYD_DISCOVERY_HELPER"

// TestMain runs the test binary as TestNamespaces' child process when helperEnv
// is set (helperProcess), and the tests otherwise: the child is not a test, so it
// neither runs nor shows up as a skipped one.
func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		helperProcess()
	}
	os.Exit(m.Run())
}

// helperProcess is the child side of TestNamespaces: it runs one Discovery
// configured from the environment, prints "SKYD found <pub> <endpoint>" for each
// Found call and, when its stdin closes, "SKYD interfaces <names>" and
// "SKYD stats <json>", then exits.
func helperProcess() {
	var psk [32]byte
	pskb, _ := hex.DecodeString(os.Getenv("SKYD_PSK"))
	copy(psk[:], pskb)
	pub, _ := hex.DecodeString(os.Getenv("SKYD_PUB"))
	port, _ := strconv.Atoi(os.Getenv("SKYD_PORT"))
	interval, _ := time.ParseDuration(os.Getenv("SKYD_INTERVAL"))
	rescan, _ := time.ParseDuration(os.Getenv("SKYD_RESCAN"))
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	d, err := Start(Config{PSK: psk, PublicKey: pub, MeshPort: uint16(port), Group: os.Getenv("SKYD_GROUP"),
		Interval: interval, Rescan: rescan,
		Found: func(pub []byte, ep string) {
			mu.Lock()
			fmt.Fprintf(out, "SKYD found %x %s\n", pub, ep)
			out.Flush()
			mu.Unlock()
		}})
	if err != nil {
		fmt.Printf("SKYD error %v\n", err)
		os.Exit(1)
	}
	io.Copy(io.Discard, os.Stdin) // until the parent closes it
	mu.Lock()
	fmt.Fprintf(out, "SKYD interfaces %s\n", strings.Join(d.Interfaces(), ","))
	out.Flush()
	mu.Unlock()
	d.Close()
	js, _ := json.Marshal(d.Stats())
	mu.Lock()
	fmt.Fprintf(out, "SKYD stats %s\n", js)
	out.Flush()
	mu.Unlock()
	os.Exit(0)
}

// child is a helper process seen from the parent.
type child struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	mu    sync.Mutex
	lines []string
	done  chan struct{}
}

func (c *child) has(prefix string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range c.lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

func (c *child) all() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.lines...)
}

// removeStaleNamespaces deletes the namespaces of earlier runs killed before their
// cleanup (a test timeout): skyd-test-PID-* whose PID no longer runs.
func removeStaleNamespaces() {
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		rest, ok := strings.CutPrefix(name, "skyd-test-")
		if !ok {
			continue
		}
		pid, _, _ := strings.Cut(rest, "-")
		if _, err := strconv.Atoi(pid); err != nil {
			continue
		}
		if _, err := os.Stat("/proc/" + pid); os.IsNotExist(err) {
			exec.Command("ip", "netns", "del", name).Run()
		}
	}
}

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestNamespaces: nodes a (10.231.0.1) and b (10.231.0.2) in two network
// namespaces joined by a veth pair find each other by their addresses on the veth
// within a few beacon intervals, b's end of the veth coming up only after b started;
// node c, beside a with another network key, is never reported, and a, b and c
// count each other's beacons as bad tags. Loopback, up in both, is not used.
func TestNamespaces(t *testing.T) {
	if os.Getenv(helperEnv) == "1" {
		t.Skip("in a helper process")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces and veth pairs (CI runs as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs the ip command (iproute2) to create network namespaces (CI installs it)")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	removeStaleNamespaces()
	pid := os.Getpid()
	nsA, nsB := fmt.Sprintf("skyd-test-%d-a", pid), fmt.Sprintf("skyd-test-%d-b", pid)
	vethA, vethB := fmt.Sprintf("skyd%da", pid), fmt.Sprintf("skyd%db", pid)
	t.Cleanup(func() {
		// Deleting a namespace deletes the veth end in it, and with it the pair.
		exec.Command("ip", "netns", "del", nsA).Run()
		exec.Command("ip", "netns", "del", nsB).Run()
		exec.Command("ip", "link", "del", vethA).Run() // if it never moved
	})
	run(t, "netns", "add", nsA)
	run(t, "netns", "add", nsB)
	run(t, "link", "add", vethA, "type", "veth", "peer", "name", vethB)
	run(t, "link", "set", vethA, "netns", nsA)
	run(t, "link", "set", vethB, "netns", nsB)
	run(t, "-n", nsA, "addr", "add", "10.231.0.1/24", "dev", vethA)
	run(t, "-n", nsB, "addr", "add", "10.231.0.2/24", "dev", vethB)
	for _, ns := range []string{nsA, nsB} {
		run(t, "-n", ns, "link", "set", "lo", "up") // up, and still not used
	}
	run(t, "-n", nsA, "link", "set", vethA, "up")
	// vethB comes up only after the nodes started: b must find it by rescanning.

	const interval = 200 * time.Millisecond
	psk, otherPSK := testPSK(7), testPSK(8)
	keys := [][]byte{testKey(1), testKey(2), testKey(3)}
	start := func(name, ns string, psk [32]byte, pub []byte, port int) *child {
		cmd := exec.Command("ip", "netns", "exec", ns, exe)
		cmd.Env = append(os.Environ(), helperEnv+"=1",
			"SKYD_PSK="+hex.EncodeToString(psk[:]), "SKYD_PUB="+hex.EncodeToString(pub),
			"SKYD_PORT="+strconv.Itoa(port), "SKYD_GROUP="+DefaultGroup, "SKYD_INTERVAL="+interval.String(),
			"SKYD_RESCAN="+(2*interval).String())
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		c := &child{name: name, cmd: cmd, stdin: stdin, done: make(chan struct{})}
		t.Cleanup(func() {
			stdin.Close()
			select {
			case <-c.done:
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
				<-c.done
			}
		})
		go func() {
			defer close(c.done)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if l, ok := strings.CutPrefix(sc.Text(), "SKYD "); ok {
					c.mu.Lock()
					c.lines = append(c.lines, l)
					c.mu.Unlock()
				}
			}
			cmd.Wait()
		}()
		return c
	}
	t0 := time.Now()
	a := start("a", nsA, psk, keys[0], 5505)
	b := start("b", nsB, psk, keys[1], 5506)
	c := start("c", nsA, otherPSK, keys[2], 5507)
	time.Sleep(interval)
	run(t, "-n", nsB, "link", "set", vethB, "up")
	t0 = time.Now()
	foundA := fmt.Sprintf("found %x 10.231.0.2:5506", keys[1])
	foundB := fmt.Sprintf("found %x 10.231.0.1:5505", keys[0])
	deadline := time.Now().Add(10 * time.Second)
	for !(a.has(foundA) && b.has(foundB)) {
		if time.Now().After(deadline) {
			t.Fatalf("no mutual discovery within 10 s:\na: %q\nb: %q\nc: %q", a.all(), b.all(), c.all())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("a and b found each other %v after the link came up (beacon interval %v, rescan %v)",
		time.Since(t0).Round(time.Millisecond), interval, 2*interval)
	time.Sleep(5 * interval) // c keeps beaconing
	stats := map[string]Stats{}
	for _, ch := range []*child{a, b, c} {
		ch.stdin.Close()
		select {
		case <-ch.done:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s did not stop", ch.name)
		}
		for _, l := range ch.all() {
			if js, ok := strings.CutPrefix(l, "stats "); ok {
				var s Stats
				if err := json.Unmarshal([]byte(js), &s); err != nil {
					t.Fatal(err)
				}
				stats[ch.name] = s
			}
		}
		t.Logf("%s: %q", ch.name, ch.all())
	}
	for _, ch := range []*child{a, b, c} {
		for _, l := range ch.all() {
			if strings.HasPrefix(l, "found") && strings.Contains(l, hex.EncodeToString(keys[2])) {
				t.Errorf("%s reported the node with another network key: %s", ch.name, l)
			}
			if ch == c && strings.HasPrefix(l, "found") {
				t.Errorf("c, with another network key, reported %s", l)
			}
			if strings.HasPrefix(l, "interfaces ") && l != "interfaces "+map[*child]string{a: vethA, b: vethB, c: vethA}[ch] {
				t.Errorf("%s: %s, want only its veth", ch.name, l)
			}
		}
		if strings.Contains(strings.Join(ch.all(), "\n"), "found "+hex.EncodeToString(keys[map[*child]int{a: 0, b: 1, c: 2}[ch]])) {
			t.Errorf("%s reported itself", ch.name)
		}
	}
	for _, name := range []string{"a", "b", "c"} {
		s, ok := stats[name]
		if !ok {
			t.Fatalf("%s printed no stats", name)
		}
		if s.BadTag == 0 || s.Sent == 0 {
			t.Errorf("%s: %+v: want beacons sent and bad tags counted", name, s)
		}
	}
	if stats["a"].Found == 0 || stats["b"].Found == 0 || stats["c"].Found != 0 {
		t.Errorf("found counts: a %d, b %d, c %d", stats["a"].Found, stats["b"].Found, stats["c"].Found)
	}
}
