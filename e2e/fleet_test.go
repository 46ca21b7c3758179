//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/e2e/browser"
	"github.com/skyfleet/skyfleet/internal/fleetconf"
	"github.com/skyfleet/skyfleet/services/control"
	"github.com/skyfleet/skyfleet/services/identity"
	"github.com/skyfleet/skyfleet/services/mesh/topology"
	"github.com/skyfleet/skyfleet/services/meshd"
)

// The fleet-control tier (issue 4): a `skyfleet master` process and nodes that report
// to it over the mesh on loopback UDP.

// fleetMaster is one `skyfleet master` process.
type fleetMaster struct {
	dir, keyFile, status string
	key                  *identity.Key
	meshPort             int
	cmd                  *exec.Cmd
	log                  string
}

// startMaster makes a master key with `skyfleet keygen` and runs `skyfleet master`
// with reports every interval.
func startMaster(t *testing.T, interval string) *fleetMaster {
	return startMasterLinks(t, interval, "")
}

// startMasterLinks is startMaster with the master's [network] link_timeout
// ("" for the default).
func startMasterLinks(t *testing.T, interval, linkTimeout string) *fleetMaster {
	t.Helper()
	m := &fleetMaster{dir: filepath.Join(t.TempDir(), "master"), meshPort: freeUDPPort(t), log: filepath.Join(artifacts(t), "master.log")}
	m.status = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	os.MkdirAll(m.dir, 0o700)
	m.keyFile = filepath.Join(m.dir, "master.key")
	if out, err := exec.Command(skyfleet, "keygen", "-o", m.keyFile).CombinedOutput(); err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	var err error
	if m.key, err = identity.LoadKeyFile(m.keyFile); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(m.dir, "fleet.toml")
	network := ""
	if linkTimeout != "" {
		network = fmt.Sprintf("link_timeout = %q\n", linkTimeout)
	}
	os.WriteFile(cfg, []byte(fmt.Sprintf("[node]\nname = \"master\"\nlisten = [\"udp://127.0.0.1:%d\"]\nstatus = %q\ndata = %q\n\n"+
		"[network]\npsk = %q\nlan_discovery = false\n%s\n[master]\nreport_interval = %q\n",
		m.meshPort, m.status, m.dir, meshPSK, network, interval)), 0o600)
	f, err := os.Create(m.log)
	if err != nil {
		t.Fatal(err)
	}
	m.cmd = exec.Command(skyfleet, "master", "--key", m.keyFile, "--config", cfg)
	m.cmd.Stdout, m.cmd.Stderr = f, f
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.cmd.Process.Kill()
		m.cmd.Wait()
		f.Close()
	})
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(apiGet(m.status, "/api/status"), "report_interval_s") {
		if time.Now().After(deadline) {
			t.Fatalf("master did not serve its API:\n%s", tail(m.log))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return m
}

// hint is the [master] addresses entry for nodes on this host.
func (m *fleetMaster) hint() string { return fmt.Sprintf("udp://127.0.0.1:%d", m.meshPort) }

// cli runs a skyfleet command against the master.
func (m *fleetMaster) cli(args ...string) (string, error) {
	full := append([]string{args[0], "--master", m.status}, args[1:]...)
	out, err := exec.Command(skyfleet, full...).CombinedOutput()
	return string(out), err
}

type listedNode struct {
	Address  string    `json:"address"`
	Name     string    `json:"name"`
	Online   bool      `json:"online"`
	LastSeen time.Time `json:"last_seen"`
	Version  string    `json:"version"`
}

// nodes is `skyfleet nodes --json`.
func (m *fleetMaster) nodes(t *testing.T) []listedNode {
	t.Helper()
	out, err := exec.Command(skyfleet, "nodes", "--master", m.status, "--json").CombinedOutput()
	if err != nil {
		t.Fatalf("skyfleet nodes: %v\n%s", err, out)
	}
	var ns []listedNode
	if err := json.Unmarshal(out, &ns); err != nil {
		t.Fatalf("skyfleet nodes --json: %v\n%s", err, out)
	}
	return ns
}

// procStat is a process's CPU time and resident memory from /proc.
func procStat(t *testing.T, pid int) (cpu time.Duration, rssKiB int) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.Atoi(f[11])
	st, _ := strconv.Atoi(f[12])
	cpu = time.Duration(ut+st) * time.Second / 100 // USER_HZ
	s, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if m := regexp.MustCompile(`VmRSS:\s+(\d+) kB`).FindSubmatch(s); m != nil {
		rssKiB, _ = strconv.Atoi(string(m[1]))
	}
	return cpu, rssKiB
}

// swarmNode is an in-process node (meshd, the same code `skyfleet node` runs).
type swarmNode struct {
	name string
	key  *identity.Key
	dir  string
	port int
	n    *meshd.Node
	stop context.CancelFunc

	mu  sync.Mutex
	log []string
}

func (s *swarmNode) logf(format string, a ...any) {
	s.mu.Lock()
	s.log = append(s.log, time.Now().Format("15:04:05.000 ")+fmt.Sprintf(format, a...))
	s.mu.Unlock()
}

func (s *swarmNode) logText() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.log, "\n")
}

func newSwarmNode(t *testing.T, name string) *swarmNode {
	dir := filepath.Join(t.TempDir(), name)
	os.MkdirAll(dir, 0o700)
	k, _, err := identity.LoadOrCreate(dir, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &swarmNode{name: name, key: k, dir: dir}
}

// start runs the node: peers are mesh peers; masterHint, if set, is a direct link to
// the master.
func (s *swarmNode) start(t *testing.T, master *identity.Key, masterHint string, peers []string, interval string) {
	cfg := fleetconf.Defaults(false)
	cfg.Node.Name, cfg.Node.Data = s.name, s.dir
	s.port = freeUDPPort(t)
	cfg.Node.Listen = []string{fmt.Sprintf("udp://127.0.0.1:%d", s.port)}
	cfg.Network.PSK, cfg.Network.LANDiscovery, cfg.Network.Peers = meshPSK, false, peers
	if master != nil {
		cfg.Master.PublicKey = master.PublicKeyHex()
	}
	if masterHint != "" {
		cfg.Master.Addresses = []string{masterHint}
	}
	cfg.Master.ReportInterval = interval
	ctx, cancel := context.WithCancel(context.Background())
	// 301 nodes share this process and the 2 cores of a CI machine with the
	// master: links die after 10 s without a datagram (1.5 s by default),
	// or the scheduler's delays flap them, as CI saw: a leaf's link to its
	// relay went down four times in a minute and its reports missed the
	// master's grace. What this test times is registration and reporting,
	// not link failover.
	cfg.Network.LinkTimeout = swarmLinkTimeout
	n, err := meshd.Start(ctx, meshd.Options{Config: cfg, Version: "v-swarm", Logf: s.logf})
	if err != nil {
		cancel()
		t.Fatalf("%s: %v", s.name, err)
	}
	s.n, s.stop = n, cancel
	t.Cleanup(s.kill)
}

// swarmLinkTimeout is [network] link_timeout for swarm nodes and their master.
const swarmLinkTimeout = "10s"

func (s *swarmNode) kill() {
	if s.n != nil {
		s.stop()
		s.n.Close()
		s.n = nil
	}
}

// endpoint is the node's peer entry for others, without the scheme.
func (s *swarmNode) endpoint() string {
	return fmt.Sprintf("127.0.0.1:%d#%s", s.port, s.key.PublicKeyHex())
}

// TestFleetScale is acceptance 2 of issue 4: 300 nodes register with one master, 30
// of them through a direct link and 270 through those as relays; all are listed
// within 60 s; the master's CPU and memory at steady state are reported; 30 killed
// nodes show offline within the report interval plus 30 s.
func TestFleetScale(t *testing.T) {
	const (
		relays   = 30
		leaves   = 270
		interval = 30 * time.Second
	)
	// The master's links to the relays need the swarm's link timeout too: with
	// the default 1.5 s, the master dropped its end of a relay's link whenever
	// this process stalled that long, and the relay's leaves missed the grace
	// (a CI run, and a run here beside two busy loops: 799 links went down).
	m := startMasterLinks(t, interval.String(), swarmLinkTimeout)
	relayNodes := make([]*swarmNode, relays)
	for i := range relayNodes {
		relayNodes[i] = newSwarmNode(t, fmt.Sprintf("relay-%02d", i))
	}
	leafNodes := make([]*swarmNode, leaves)
	for i := range leafNodes {
		leafNodes[i] = newSwarmNode(t, fmt.Sprintf("leaf-%03d", i))
	}
	all := append(append([]*swarmNode(nil), relayNodes...), leafNodes...)
	// The nodes start a few at a time, as a fleet powered up together
	// would, rather than one after the other: starting one opens and
	// syncs its stores, and 300 in a row took 33-48 s of the 60 on a slow
	// 2-core machine, leaving the last ones a few seconds to register.
	startAll := func(ns []*swarmNode, start func(*swarmNode)) {
		var wg sync.WaitGroup
		sem := make(chan struct{}, 16)
		for _, s := range ns {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				start(s)
			}()
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
	}
	start := time.Now()
	startAll(relayNodes, func(s *swarmNode) { s.start(t, m.key, m.hint(), nil, interval.String()) })
	startAll(leafNodes, func(s *swarmNode) {
		var i int
		fmt.Sscanf(s.name, "leaf-%d", &i)
		s.start(t, m.key, "", []string{"udp://" + relayNodes[i%relays].endpoint()}, interval.String())
	})
	t.Logf("%d nodes started in %v", len(all), time.Since(start).Round(time.Millisecond))

	want := map[string]*swarmNode{}
	for _, s := range all {
		want[s.key.Address().String()] = s
	}
	online := func(ns []listedNode) (up int, missing []string) {
		seen := map[string]bool{}
		for _, n := range ns {
			if n.Online {
				seen[n.Address] = true
			}
		}
		for a, s := range want {
			if seen[a] {
				up++
			} else {
				missing = append(missing, s.name)
			}
		}
		return up, missing
	}
	var listedIn time.Duration
	for {
		up, missing := online(m.nodes(t))
		if up == len(all) {
			listedIn = time.Since(start)
			break
		}
		if time.Since(start) > 60*time.Second {
			slices.Sort(missing)
			t.Fatalf("after 60 s the master lists %d of %d nodes online; missing %v\nfirst missing node's log:\n%s\nmaster:\n%s",
				up, len(all), head(missing, 20), logOf(all, missing[0]), tail(m.log))
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("all %d nodes listed online %.1f s after the first started", len(all), listedIn.Seconds())

	// Steady state: every node has reported at least once more.
	time.Sleep(interval + 5*time.Second)
	pid := m.cmd.Process.Pid
	cpu0, _ := procStat(t, pid)
	const window = 20 * time.Second
	time.Sleep(window)
	cpu1, rss := procStat(t, pid)
	report := fmt.Sprintf("fleet scale: %d nodes (%d via relays), listed in %.1f s; master at steady state: CPU %.1f%% of one core, RSS %.1f MiB\n",
		len(all), leaves, listedIn.Seconds(), 100*(cpu1-cpu0).Seconds()/window.Seconds(), float64(rss)/1024)
	t.Log(report)
	os.WriteFile(filepath.Join(artifacts(t), "scale.txt"), []byte(report), 0o644)

	// Kill 30 leaves; they go offline within interval + 30 s, the rest stay online.
	killed := map[string]bool{}
	for i := 0; i < 30; i++ {
		s := all[relays+i*9]
		s.kill()
		killed[s.key.Address().String()] = true
	}
	killedAt := time.Now()
	for {
		ns := m.nodes(t)
		off, wrong := 0, []string{}
		for _, n := range ns {
			if killed[n.Address] && !n.Online {
				off++
			}
			if !killed[n.Address] && want[n.Address] != nil && !n.Online {
				wrong = append(wrong, n.Name)
			}
		}
		if len(wrong) > 0 {
			slices.Sort(wrong)
			var link string
			for _, s := range all {
				if s.name == wrong[0] && s.n != nil {
					b, _ := json.Marshal(s.n.State().Master)
					link = string(b)
				}
			}
			t.Fatalf("%.1f s after the kill, live nodes shown offline: %v\nfirst one's master link: %s\nits log:\n%s\nmaster:\n%s",
				time.Since(killedAt).Seconds(), wrong, link, logOf(all, wrong[0]), tail(m.log))
		}
		if off == len(killed) {
			t.Logf("the %d killed nodes were offline %.1f s after the kill (limit %v)", off, time.Since(killedAt).Seconds(), interval+30*time.Second)
			break
		}
		if time.Since(killedAt) > interval+30*time.Second {
			t.Fatalf("%.0f s after the kill only %d of %d killed nodes are offline", time.Since(killedAt).Seconds(), off, len(killed))
		}
		time.Sleep(time.Second)
	}
}

func head(s []string, n int) []string { return s[:min(n, len(s))] }

func logOf(all []*swarmNode, name string) string {
	for _, s := range all {
		if s.name == name {
			return s.logText()
		}
	}
	return ""
}

// TestFleetControl covers acceptance 3 of issue 4 and the remote commands on host
// nodes: exec, cp and a refused login; a report for another master, a forged
// report and a report relayed by another node are refused and logged.
func TestFleetControl(t *testing.T) {
	m := startMaster(t, "10s")
	node := newSwarmNode(t, "kit-1")
	node.start(t, m.key, m.hint(), nil, "10s")
	stranger := newSwarmNode(t, "stranger")
	stranger.start(t, nil, "", []string{m.hint() + "#" + m.key.PublicKeyHex()}, "10s")
	addr := node.key.Address().String()

	deadline := time.Now().Add(30 * time.Second)
	for !listed(m.nodes(t), addr) {
		if time.Now().After(deadline) {
			t.Fatalf("kit-1 not listed:\n%s\nmaster:\n%s", node.logText(), tail(m.log))
		}
		time.Sleep(200 * time.Millisecond)
	}
	out, err := m.cli("nodes")
	if err != nil || !strings.Contains(out, "kit-1") || !strings.Contains(out, "online") || !strings.Contains(out, "1 nodes, 1 online") {
		t.Fatalf("skyfleet nodes: %v\n%s", err, out)
	}
	// The node's status counts the reports the master took (a trial boot
	// commits only once there is one); the stranger has no master.
	// (The master lists a node before its acknowledgement reaches it.)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		ml := node.n.State().Master
		if ml != nil && ml.PublicKey == m.key.PublicKeyHex() && ml.Reports > 0 && ml.LastError == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("kit-1's master link: %+v", ml)
		}
	}
	if ml := stranger.n.State().Master; ml != nil {
		t.Fatalf("a node without a master shows a master link: %+v", ml)
	}

	// exec and cp by name, with the master key.
	out, err = m.cli("exec", "--key", m.keyFile, "kit-1", "--", "echo", "hello-from", "$((6*7))")
	if err != nil || strings.TrimSpace(out) != "hello-from 42" {
		t.Fatalf("exec: %v\n%s", err, out)
	}
	// The same over TLS, as from another host: the pin the master printed
	// (nodes) or the one the master key gives (exec, which also names it).
	masterOut := func() string { b, _ := os.ReadFile(m.log); return string(b) }
	waitLog(t, masterOut, "tls_pin ", "the master's output")
	out = masterOut()
	pin := strings.Fields(out[strings.Index(out, "tls_pin "):])[1]
	if out, err := m.cli("nodes", "--pin", pin); err != nil || !strings.Contains(out, "kit-1") {
		t.Fatalf("skyfleet nodes over TLS: %v\n%s", err, out)
	}
	if out, err := m.cli("exec", "--key", m.keyFile, "--pin", pin, "kit-1", "--", "echo", "over-tls"); err != nil || strings.TrimSpace(out) != "over-tls" {
		t.Fatalf("exec over TLS: %v\n%s", err, out)
	}
	wrongPin := strings.Repeat("0", 64)
	if out, err := m.cli("nodes", "--pin", wrongPin); err == nil || !strings.Contains(out, "not the pinned") {
		t.Fatalf("skyfleet nodes with another pin: %v\n%s", err, out)
	}
	if _, err := m.cli("exec", "--key", m.keyFile, addr, "--", "exit 7"); exitCode(err) != 7 {
		t.Fatalf("exec exit 7: %v", err)
	}
	src, sum := randomFile(t, 300<<10)
	remotePath := filepath.Join(t.TempDir(), "copied in.bin")
	if out, err := m.cli("cp", "--key", m.keyFile, src, "kit-1:"+remotePath); err != nil {
		t.Fatalf("cp in: %v\n%s", err, out)
	}
	back := filepath.Join(t.TempDir(), "back.bin")
	if out, err := m.cli("cp", "--key", m.keyFile, "kit-1:"+remotePath, back); err != nil {
		t.Fatalf("cp out: %v\n%s", err, out)
	}
	if fileSHA(t, remotePath) != sum || fileSHA(t, back) != sum {
		t.Fatal("copied files differ")
	}

	// Any other key is refused by the node, and logged there.
	wrong := filepath.Join(t.TempDir(), "wrong.key")
	exec.Command(skyfleet, "keygen", "-o", wrong).Run()
	out, err = m.cli("exec", "--key", wrong, "kit-1", "--", "true")
	if err == nil {
		t.Fatalf("exec with a wrong key ran:\n%s", out)
	}
	t.Logf("wrong key: %s", strings.TrimSpace(out))
	waitLog(t, node.logText, "refused", "the node's log of a refused login")

	// Reports the master must refuse, sent from the stranger's node over the mesh.
	var mk topology.Key
	copy(mk[:], m.key.PublicKey())
	other, _ := identity.Generate(rand.Reader)
	seq := uint64(time.Now().UnixNano())
	good, _ := control.Seal(stranger.key.PrivateKey(), m.key.PublicKey(), seq, control.Report{Board: "host"})
	toOther, _ := control.Seal(stranger.key.PrivateKey(), other.PublicKey(), seq+1, control.Report{Board: "host"})
	forged := bytes.Clone(good)
	forged[len(forged)-70] ^= 1
	byOther, _ := control.Seal(other.PrivateKey(), m.key.PublicKey(), seq+2, control.Report{Board: "host"})
	for _, c := range []struct {
		name   string
		sealed []byte
		want   string
	}{
		{"a report for another master", toOther, "another master"},
		{"a forged report", forged, "signature"},
		{"a report relayed for another node", byOther, "another node"},
	} {
		var conn net.Conn
		var err error
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			conn, err = stranger.n.Router.Dial(ctx, mk, control.ReportPort)
			cancel()
			if err == nil || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			t.Fatalf("%s: dial master: %v\n%s", c.name, err, stranger.logText())
		}
		err = control.Deliver(conn, c.sealed)
		conn.Close()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want a refusal mentioning %q", c.name, err, c.want)
		}
	}
	logJSON := apiGet(m.status, "/api/log")
	for _, want := range []string{"another master", "signature", "another node", `"action": "exec"`, `"action": "cp"`} {
		if !strings.Contains(logJSON, want) {
			t.Errorf("master's action log lacks %q:\n%s", want, logJSON)
		}
	}
	if strings.Contains(apiGet(m.status, "/api/nodes"), stranger.key.Address().String()) {
		t.Error("the stranger's refused reports put it in the registry")
	}
}

func listed(ns []listedNode, addr string) bool {
	for _, n := range ns {
		if n.Address == addr && n.Online {
			return true
		}
	}
	return false
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

func waitLog(t *testing.T, text func() string, want, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(text(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("%s lacks %q:\n%s", what, want, text())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestFleetDashboard is acceptance 4 of issue 4: the dashboard in Debian's chromium
// loads, lists the nodes and draws the topology; screenshots are kept as artefacts.
func TestFleetDashboard(t *testing.T) {
	m := startMaster(t, "10s")
	var nodes []*swarmNode
	hub := newSwarmNode(t, "hub")
	hub.start(t, m.key, m.hint(), nil, "10s")
	nodes = append(nodes, hub)
	for i := range 8 {
		s := newSwarmNode(t, fmt.Sprintf("kit-%d", i+1))
		peers := []string{"udp://" + hub.endpoint()}
		if i > 0 {
			peers = append(peers, "udp://"+nodes[i].endpoint())
		}
		s.start(t, m.key, "", peers, "10s")
		nodes = append(nodes, s)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		up := 0
		for _, n := range m.nodes(t) {
			if n.Online {
				up++
			}
		}
		if up == len(nodes) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d nodes online:\n%s", up, len(nodes), tail(m.log))
		}
		time.Sleep(300 * time.Millisecond)
	}
	// A second report per node gives the metric plots two points.
	time.Sleep(12 * time.Second)
	dir, _ := filepath.Abs(artifacts(t))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	url := "http://" + m.status + "/"
	dom, err := browser.Render(ctx, url, filepath.Join(dir, "dashboard-overview.png"), browser.Options{})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "dashboard-overview.html"), []byte(dom), 0o644)
	if !strings.Contains(dom, `data-loaded="1"`) {
		t.Fatalf("the dashboard did not load its data; DOM in %s", dir)
	}
	rows := regexp.MustCompile(`<tr[^>]*class="[^"]*node-row`).FindAllString(dom, -1)
	if len(rows) != len(nodes) {
		t.Errorf("the node table has %d rows, want %d", len(rows), len(nodes))
	}
	for _, n := range nodes {
		if !strings.Contains(dom, n.key.Address().String()) {
			t.Errorf("the dashboard does not list %s", n.name)
		}
	}
	g := regexp.MustCompile(`data-graph="(\d+)"`).FindStringSubmatch(dom)
	if g == nil || g[1] != strconv.Itoa(len(nodes)+1) {
		t.Errorf("topology graph drew %v node circles, want %d (the nodes and the master)", g, len(nodes)+1)
	}
	if !strings.Contains(dom, `class="edge`) {
		t.Error("the topology graph has no edges")
	}
	dom, err = browser.Render(ctx, url+"#node="+hub.key.Address().String(), filepath.Join(dir, "dashboard-node.png"), browser.Options{})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "dashboard-node.html"), []byte(dom), 0o644)
	if !regexp.MustCompile(`id="metrics-chart"[\s\S]*?<(polyline|path)`).MatchString(dom) {
		t.Errorf("the node view has no link-metrics plot; DOM in %s", dir)
	}
	t.Logf("screenshots: %s/dashboard-overview.png, dashboard-node.png", dir)
}
