//go:build e2e

package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/e2e/netns"
	"github.com/skyfleet/skyfleet/internal/apiauth"
	"github.com/skyfleet/skyfleet/services/identity"
	"github.com/skyfleet/skyfleet/services/mesh/link"
)

// The mesh tier: networks of `skyfleet node` processes, in network namespaces joined
// by veth pairs, or on loopback behind the impairment relay (e2e/impair).

const meshPSK = "5e1f1ee75e1f1ee75e1f1ee75e1f1ee75e1f1ee75e1f1ee75e1f1ee75e1f1ee7"

// meshNode is one `skyfleet node` process and its files.
type meshNode struct {
	name   string
	ns     *netns.NS // nil on loopback
	dir    string
	key    *identity.Key
	status string // the API's host:port, inside ns when ns is set
	proc   *netns.Proc
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
	log    string
	// masterKey, if set, is the key file the node's API is asked with (a QEMU
	// guest, whose API token stays on its card); otherwise the token the node
	// wrote in dir.
	masterKey string
}

// credArgs are the `skyfleet mesh` flags that carry the node's credential.
func (m *meshNode) credArgs() []string {
	if m.masterKey != "" {
		return []string{"--key", m.masterKey}
	}
	return []string{"--token-file", filepath.Join(m.dir, apiauth.TokenFile)}
}

// credential is credArgs for a request made by the test itself.
func (m *meshNode) credential(t testing.TB) apiauth.Credential {
	if m.masterKey != "" {
		k, err := identity.LoadKeyFile(m.masterKey)
		if err != nil {
			t.Fatal(err)
		}
		return apiauth.MasterKey{Key: k.PrivateKey()}
	}
	tok, err := apiauth.ReadToken(filepath.Join(m.dir, apiauth.TokenFile))
	if err != nil {
		return nil // not written yet: the request is refused and says so
	}
	return apiauth.Token(tok)
}

// dead reports whether the node's process has exited.
func (m *meshNode) dead() bool {
	var done <-chan struct{}
	switch {
	case m.proc != nil:
		done = m.proc.Done()
	case m.exited != nil:
		done = m.exited
	default:
		return false
	}
	select {
	case <-done:
		return true
	default:
		return false
	}
}

func (m *meshNode) address() string { return m.key.Address().String() }

func (m *meshNode) peerEntry(hostport string) string {
	return "udp://" + hostport + "#" + m.key.PublicKeyHex()
}

// newMeshNode makes the node's data directory and key (so peers can be configured
// before anything runs).
func newMeshNode(t *testing.T, name string, ns *netns.NS) *meshNode {
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	k, _, err := identity.LoadOrCreate(dir, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &meshNode{name: name, ns: ns, dir: dir, key: k, log: filepath.Join(artifacts(t), name+".log")}
}

// start writes fleet.toml and starts the node.
func (m *meshNode) start(t *testing.T, listen, status string, peers []string, discovery bool) {
	m.status = status
	var b strings.Builder
	fmt.Fprintf(&b, "[node]\nname = %q\nlisten = [%q]\nstatus = %q\ndata = %q\n\n", m.name, listen, status, m.dir)
	fmt.Fprintf(&b, "[network]\npsk = %q\nlan_discovery = %v\npeers = [", meshPSK, discovery)
	for i, p := range peers {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", p)
	}
	b.WriteString("]\n")
	cfg := filepath.Join(m.dir, "fleet.toml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if m.ns != nil {
		m.proc = m.ns.Start(t, m.log, skyfleet, "node", "--config", cfg)
		return
	}
	f, err := os.Create(m.log)
	if err != nil {
		t.Fatal(err)
	}
	m.cmd = exec.Command(skyfleet, "node", "--config", cfg)
	m.cmd.Stdout, m.cmd.Stderr = f, f
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) { cmd.Wait(); close(exited) }(m.cmd, m.exited)
	t.Cleanup(func() { m.kill(); f.Close() })
}

func (m *meshNode) kill() {
	if m.proc != nil {
		m.proc.Kill()
	}
	if m.cmd != nil && m.cmd.Process != nil {
		m.cmd.Process.Kill()
		<-m.exited
		m.cmd = nil
	}
}

// command returns `skyfleet mesh ARGS --node STATUS` run where the node runs.
func (m *meshNode) command(args ...string) *exec.Cmd {
	full := append(append([]string{"mesh", args[0], "--node", m.status}, m.credArgs()...), args[1:]...)
	if m.ns != nil {
		return m.ns.Command(skyfleet, full...)
	}
	return exec.Command(skyfleet, full...)
}

// cli runs `skyfleet CMD SUB` against the node's API with its credential, e.g.
// cli("msg", "inbox", "--json").
func (m *meshNode) cli(cmd, sub string, args ...string) (string, error) {
	full := append(append([]string{cmd, sub, "--node", m.status}, m.credArgs()...), args...)
	c := exec.Command(skyfleet, full...)
	if m.ns != nil {
		c = m.ns.Command(skyfleet, full...)
	}
	out, err := c.Output()
	return string(out), err
}

func (m *meshNode) mesh(args ...string) (string, error) {
	out, err := m.command(args...).CombinedOutput()
	return string(out), err
}

// waitRoutes waits until every node has a route to every other.
func waitRoutes(t *testing.T, nodes []*meshNode, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for _, a := range nodes {
		for _, b := range nodes {
			if a == b {
				continue
			}
			for {
				out, err := a.mesh("route", "--json", b.address())
				if err == nil {
					break
				}
				for _, n := range []*meshNode{a, b} {
					if n.dead() {
						t.Fatalf("%s exited:\n%s", n.name, tail(n.log))
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s has no route to %s after %v: %s\n%s", a.name, b.name, within, out, tail(a.log))
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
	}
}

// pingAll pings every node from every other and checks each ping's hop count lies
// within the bounds hops gives.
func pingAll(t *testing.T, nodes []*meshNode, hops func(i, j int) (lo, hi int)) {
	t.Helper()
	for i, a := range nodes {
		for j, b := range nodes {
			if i == j {
				continue
			}
			out, err := a.mesh("ping", "--timeout", "10s", b.address())
			if err != nil {
				t.Fatalf("ping %s -> %s: %v\n%s\n%s", a.name, b.name, err, out, tail(a.log))
			}
			var got int
			if k := strings.Index(out, " over "); k >= 0 {
				fmt.Sscanf(out[k:], " over %d hops", &got)
			}
			if lo, hi := hops(i, j); got < lo || got > hi {
				t.Errorf("ping %s -> %s: %s (want %d to %d hops)", a.name, b.name, strings.TrimSpace(out), lo, hi)
			}
		}
	}
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// randomFile writes size random bytes and returns the path and SHA-256.
func randomFile(t *testing.T, size int) (string, string) {
	path := filepath.Join(t.TempDir(), "payload")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.Reader, int64(size)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return path, hex.EncodeToString(h.Sum(nil))
}

func fileSHA(t *testing.T, path string) string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil))
}

// transfer sends a file from src to dst over the mesh (recv on dst, send on src) and
// checks it arrives byte-exact. during, if set, runs while the transfer goes on, with
// the receiving file's path.
func transfer(t *testing.T, src, dst *meshNode, size int, timeout time.Duration, during func(out string, done <-chan struct{})) {
	t.Helper()
	in, want := randomFile(t, size)
	out := filepath.Join(t.TempDir(), "received")
	recv := dst.command("recv", "--timeout", timeout.String(), "--out", out, "9")
	var recvOut bytes.Buffer
	recv.Stdout, recv.Stderr = &recvOut, &recvOut
	if err := recv.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the listener is up
	var wg sync.WaitGroup
	done := make(chan struct{})
	if during != nil {
		wg.Add(1)
		go func() { defer wg.Done(); during(out, done) }()
	}
	start := time.Now()
	sendOut, err := src.mesh("send", dst.address(), "9", in)
	if err != nil {
		t.Fatalf("send: %v\n%s\n%s", err, sendOut, tail(src.log))
	}
	err = recv.Wait()
	close(done)
	wg.Wait()
	if err != nil {
		t.Fatalf("recv: %v\n%s\n%s", err, recvOut.String(), tail(dst.log))
	}
	t.Logf("%d MB over the mesh in %.1f s: %s", size>>20, time.Since(start).Seconds(), strings.TrimSpace(sendOut))
	if got := fileSHA(t, out); got != want {
		t.Fatalf("SHA-256 at the far end %s, sent %s", got, want)
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// TestMeshLine: five nodes in a line of namespaces find each other by LAN discovery
// alone, every node reaches every other, and 50 MB cross all 4 hops byte-exact.
func TestMeshLine(t *testing.T) {
	nw := netns.New(t, "skyl")
	topo := nw.Line(5)
	var nodes []*meshNode
	for i, ns := range topo.Nodes {
		nodes = append(nodes, newMeshNode(t, fmt.Sprintf("line%d", i), ns))
	}
	for _, n := range nodes {
		n.start(t, "udp://0.0.0.0:5505", "127.0.0.1:8080", nil, true)
	}
	waitRoutes(t, nodes, 30*time.Second)
	pingAll(t, nodes, func(i, j int) (int, int) { return abs(i - j), abs(i - j) }) // one path each
	transfer(t, nodes[0], nodes[4], 50<<20, 5*time.Minute, nil)
}

// TestMeshGridFailover: a 3x3 grid with static peers; every node reaches every other;
// a 50 MB stream from corner to corner survives the death of a node on its route:
// delivery stalls at most 3 s and the bytes arrive exact.
func TestMeshGridFailover(t *testing.T) {
	nw := netns.New(t, "skyg")
	topo := nw.Grid(3, 3)
	var nodes []*meshNode
	byNS := map[*netns.NS]*meshNode{}
	for i, ns := range topo.Nodes {
		n := newMeshNode(t, fmt.Sprintf("grid%d", i), ns)
		nodes = append(nodes, n)
		byNS[ns] = n
	}
	for _, n := range nodes {
		var peers []string
		for _, l := range topo.Links {
			if l.A.NS == n.ns || l.B.NS == n.ns {
				other := l.Peer(n.ns)
				peers = append(peers, byNS[other.NS].peerEntry(other.HostPort(5505)))
			}
		}
		n.start(t, "udp://0.0.0.0:5505", "127.0.0.1:8080", peers, false)
	}
	waitRoutes(t, nodes, 30*time.Second)
	// Routes follow measured link latency, so a ping may take a longer way round than
	// the fewest hops, but never fewer than the grid distance or more than all 8 links.
	pingAll(t, nodes, func(i, j int) (int, int) { return abs(i/3-j/3) + abs(i%3-j%3), 8 })

	src, dst := nodes[0], nodes[8]
	var stall time.Duration
	var victim *meshNode
	transfer(t, src, dst, 50<<20, 5*time.Minute, func(out string, done <-chan struct{}) {
		// Wait for the stream to flow, find a middle node of an active route, kill it.
		waitGrowth(out, 2<<20, 60*time.Second)
		victim = routeMiddle(t, src, dst, nodes)
		if victim == nil {
			t.Error("no active multi-hop route from corner to corner")
			return
		}
		t.Logf("killing %s, on an active route", victim.name)
		victim.kill()
		stall = longestStall(out, done)
	})
	if victim == nil {
		return
	}
	t.Logf("longest delivery stall after killing %s: %v", victim.name, stall)
	if stall > 3*time.Second {
		t.Errorf("traffic took %v to move to another route (want <= 3 s)", stall)
	}
}

// routeMiddle returns a node in the middle of one of src's active routes to dst.
func routeMiddle(t *testing.T, src, dst *meshNode, nodes []*meshNode) *meshNode {
	out, err := src.mesh("route", "--json", dst.address())
	if err != nil {
		t.Logf("route: %v %s", err, out)
		return nil
	}
	var q struct {
		Active []struct {
			State string   `json:"state"`
			Path  []string `json:"path"`
		} `json:"active"`
	}
	if err := json.Unmarshal([]byte(out), &q); err != nil {
		t.Logf("route json: %v", err)
		return nil
	}
	for _, a := range q.Active {
		if a.State != "up" || len(a.Path) < 3 {
			continue
		}
		for _, n := range nodes {
			if n.address() == a.Path[len(a.Path)/2] {
				return n
			}
		}
	}
	return nil
}

// waitGrowth waits until the file at path holds at least n bytes.
func waitGrowth(path string, n int64, within time.Duration) {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if fi, err := os.Stat(path); err == nil && fi.Size() >= n {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// longestStall watches the file at path grow until done and returns the longest
// pause between growths, counted from the call.
func longestStall(path string, done <-chan struct{}) time.Duration {
	var last int64 = -1
	lastGrow := time.Now()
	var longest time.Duration
	for {
		select {
		case <-done:
			return longest
		default:
		}
		fi, err := os.Stat(path)
		if err == nil && fi.Size() != last {
			if last >= 0 {
				if d := time.Since(lastGrow); d > longest {
					longest = d
				}
			}
			last = fi.Size()
			lastGrow = time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMeshImpaired: five nodes on loopback, each link through the impairment relay
// with 5% loss and 20 ms delay each way; the 4-hop stream still delivers byte-exact.
func TestMeshImpaired(t *testing.T) {
	impair := filepath.Join(filepath.Dir(skyfleet), "impair")
	if out, err := exec.Command("go", "build", "-o", impair, "./impair").CombinedOutput(); err != nil {
		t.Fatalf("building impair: %v\n%s", err, out)
	}
	const n = 5
	var nodes []*meshNode
	ports := make([]int, n)
	for i := range n {
		nodes = append(nodes, newMeshNode(t, fmt.Sprintf("lossy%d", i), nil))
		ports[i] = freeUDPPort(t)
	}
	var links []string
	relayPort := make([]int, n)
	for i := 0; i+1 < n; i++ {
		relayPort[i] = freeUDPPort(t)
		links = append(links, "-link", fmt.Sprintf("127.0.0.1:%d=127.0.0.1:%d,loss=0.05,delay=20ms", relayPort[i], ports[i+1]))
	}
	relayLog := filepath.Join(artifacts(t), "impair.log")
	lf, err := os.Create(relayLog)
	if err != nil {
		t.Fatal(err)
	}
	relay := exec.Command(impair, append(links, "-seed", "7")...)
	relay.Stdout, relay.Stderr = lf, lf
	if err := relay.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { relay.Process.Kill(); relay.Wait(); lf.Close() })
	for i, nd := range nodes {
		var peers []string
		if i+1 < n {
			// Node i reaches node i+1 only through the relay; i+1 answers through it.
			peers = append(peers, nodes[i+1].peerEntry(fmt.Sprintf("127.0.0.1:%d", relayPort[i])))
		}
		nd.start(t, fmt.Sprintf("udp://127.0.0.1:%d", ports[i]), fmt.Sprintf("127.0.0.1:%d", freePort(t)), peers, false)
	}
	waitRoutes(t, nodes, 60*time.Second)
	// A first ping can meet a bad run of losses; three tries of 10 s each, and the
	// routes of both ends in the log when one fails.
	var out string
	for try := 1; ; try++ {
		out, err = nodes[0].mesh("ping", "--timeout", "10s", nodes[4].address())
		if err == nil {
			break
		}
		r0, r4 := nodes[0].nodeGet(t, "/mesh/routes"), nodes[4].nodeGet(t, "/mesh/routes")
		t.Logf("ping %d across the lossy line failed: %v %s\nsource routes: %s\ndestination routes: %s", try, err, out, r0, r4)
		if try == 3 {
			t.FailNow()
		}
	}
	if !strings.Contains(out, "over 4 hops") {
		t.Errorf("ping across the lossy line: %s (want 4 hops)", out)
	}
	t.Log(strings.TrimSpace(out))
	probeStranger(t, nodes[0], fmt.Sprintf("127.0.0.1:%d", ports[0]))
	transfer(t, nodes[0], nodes[4], 50<<20, 10*time.Minute, nil)
}

// probeStranger sends a running node what a stranger could over real UDP: random
// bytes, and handshakes made with the wrong network key; nothing may answer, and the
// node's counters must show the drops.
func probeStranger(t *testing.T, n *meshNode, addr string) {
	t.Helper()
	counters := func() map[string]uint64 {
		var doc struct {
			Counters map[string]uint64 `json:"counters"`
		}
		json.Unmarshal([]byte(n.nodeGet(t, "/mesh/links")), &doc)
		return doc.Counters
	}
	before := counters()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	junk := make([]byte, 300)
	for i := 0; i < 10; i++ {
		rand.Read(junk)
		junk[0] = 0xfe // no link message type
		c.Write(junk)
	}
	k, _ := identity.Generate(rand.Reader)
	wrong := link.NewHandshaker(link.Config{Private: k.PrivateKey(), PSK: [32]byte{1}})
	target, _ := hex.DecodeString(n.key.PublicKeyHex())
	for i := 0; i < 10; i++ {
		msg, _, err := wrong.Initiate(target, uint32(i+1), uint64(time.Now().UnixNano()), nil)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(msg)
	}
	c.SetReadDeadline(time.Now().Add(time.Second))
	if m, err := c.Read(junk); err == nil {
		t.Errorf("a stranger got a %d-byte answer", m)
	}
	after := counters()
	if d := after["drop_malformed"] - before["drop_malformed"]; d < 10 {
		t.Errorf("drop_malformed rose by %d, want 10", d)
	}
	if d := after["drop_no_psk"] - before["drop_no_psk"]; d < 10 {
		t.Errorf("drop_no_psk rose by %d, want 10", d)
	}
	if after["handshakes_answered"] != before["handshakes_answered"] {
		t.Errorf("handshakes answered went from %d to %d", before["handshakes_answered"], after["handshakes_answered"])
	}
	t.Logf("stranger probes dropped unanswered: %d malformed, %d without the network key",
		after["drop_malformed"]-before["drop_malformed"], after["drop_no_psk"]-before["drop_no_psk"])
}

// apiGet returns an API document (the master's on loopback, a node's public
// status) as text, or the error, for test logs.
func apiGet(status, path string) string { return credGet(status, path, nil) }

// nodeGet returns a node's API document as text with the node's credential.
func (m *meshNode) nodeGet(t testing.TB, path string) string {
	return credGet(m.status, path, m.credential(t))
}

func credGet(status, path string, cred apiauth.Credential) string {
	req, err := http.NewRequest("GET", "http://"+status+path, nil)
	if err != nil {
		return err.Error()
	}
	c := &http.Client{Timeout: 10 * time.Second}
	if cred != nil {
		if err := cred.Authorize(c, req); err != nil {
			return err.Error()
		}
	}
	resp, err := c.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func freeUDPPort(t *testing.T) int { return freePortOf(t, "udp") }

// freePortOf returns a loopback port that is free now for network ("tcp" or
// "udp") and that no other call in this test binary has returned.
func freePortOf(t *testing.T, network string) int {
	for {
		var port int
		if network == "udp" {
			c, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			port = c.LocalAddr().(*net.UDPAddr).Port
			c.Close()
		} else {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			port = l.Addr().(*net.TCPAddr).Port
			l.Close()
		}
		if claimPort(port) {
			return port
		}
	}
}

// handedOut holds every port freeUDPPort and freePort returned in this test
// binary. The kernel may hand a closed port out again at once; two parts of one
// test then bind the same port and one fails (seen in CI: a node and the impair
// relay).
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// claimPort reports whether port was not handed out before, and claims it.
func claimPort(port int) bool {
	handedOut.Lock()
	defer handedOut.Unlock()
	if handedOut.ports[port] {
		return false
	}
	handedOut.ports[port] = true
	return true
}
