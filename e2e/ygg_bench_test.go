//go:build e2e && yggbench

package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/e2e/netns"
)

// The comparison against a peer that the "Measure and report" asks for: a line
// of 4 network namespaces (3 hops) running `skyfleet node`, then Yggdrasil (Debian's
// yggdrasil, static peers, no multicast), alternated round by round. Per run:
//
//   - first ping: from starting the 4 daemons to the first answered end-to-end ping
//     (Skyfleet: POST /mesh/ping at n0, as `skyfleet mesh ping` does, retried until
//     it answers; Yggdrasil: ping -6 every 50 ms from n0 to n3's address on the TUN);
//   - round trip: the median of 20 end-to-end pings 100 ms apart (Skyfleet: the rtt_ms
//     the node measures; Yggdrasil: ping's time=);
//   - goodput: 100 MB (10^8 bytes) from n0 to n3, over the time from the send's start
//     to the receiver's end of stream (Skyfleet: `skyfleet mesh recv` and `mesh send`
//     of a random file, as TestMeshLine; Yggdrasil: one TCP connection through the
//     TUNs, from a sender inside n0 to a receiver inside n3);
//   - CPU seconds of each daemon (utime+stime of /proc/PID/stat) during that transfer,
//     and the share of the machine's CPUs other users took meanwhile (/proc/stat);
//   - goodput of 24 MB through tbf 20 Mbit/s on the middle link n1 - n2, both ways
//     (as TestBottleneckNoDrops shapes its bottleneck), as a fraction of the rate.
//
// It builds only with the tags e2e and yggbench, so neither CI nor `make test-e2e`
// compiles it; bench/ygg.sh (make bench-ygg) runs it as root and installs yggdrasil.
// SKYFLEET_YGG_ROUNDS sets the rounds (default 3). The report goes to stdout between
// the lines "=== ygg report" and "=== end ygg report".
func TestYggComparison(t *testing.T) {
	rounds := 3
	if s := os.Getenv("SKYFLEET_YGG_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("SKYFLEET_YGG_ROUNDS=%q: want a positive number", s)
		}
		rounds = n
	}
	ygg := findSbin(t, "yggdrasil")
	ping := findSbin(t, "ping")
	tc := findTC(t)

	var results []ybResult
	for r := 1; r <= rounds; r++ {
		for _, sys := range []string{"skyfleet", "yggdrasil"} {
			res := ybResult{round: r, system: sys, loadBefore: loadavg()}
			ok := t.Run(fmt.Sprintf("round%d-%s", r, sys), func(t *testing.T) {
				if sys == "skyfleet" {
					ybSkyfleet(t, tc, &res)
				} else {
					ybYggdrasil(t, ygg, ping, tc, &res)
				}
			})
			res.loadAfter = loadavg()
			if !ok {
				t.Fatalf("round %d, %s failed", r, sys)
			}
			t.Logf("round %d %s: %s", r, sys, res.summary())
			results = append(results, res)
		}
	}
	fmt.Print(ybReport(results))
}

// Shape of TestYggComparison.
const (
	ybNodes     = 4
	ybMiddle    = 1 // topo.Links[1], n1 - n2, gets the tbf
	ybBytes     = 100e6
	ybTBFBytes  = 24e6 // about 10 s at the rate
	ybRate      = "20mbit"
	ybRateBytes = 20e6 / 8
	ybPings     = 20
	ybPingGap   = 100 * time.Millisecond
	ybYggPort   = 12345 // Yggdrasil's TCP listener on every node
	ybDataPort  = 5001  // the TCP transfer's port on n3's Yggdrasil address
)

// ybResult is one run of one system.
type ybResult struct {
	round                 int
	system                string
	firstPing             time.Duration
	rttMs                 float64 // median
	goodput               float64 // bytes/s
	cpu                   [ybNodes]float64
	tbfGoodput            float64 // bytes/s
	loadBefore, loadAfter string
	// others is the share of the machine's CPU (all cores) that went to neither the
	// daemons nor the transfer's sender and receiver during the 100 MB: other users.
	others float64
}

func (r *ybResult) cpuTotal() float64 {
	s := 0.0
	for _, c := range r.cpu {
		s += c
	}
	return s
}

func (r *ybResult) summary() string {
	return fmt.Sprintf("first ping %.0f ms, rtt %.3f ms, goodput %.1f MB/s, CPU %.2f s (%.2f %.2f %.2f %.2f), tbf goodput %.2f MB/s = %.2f of the rate; load %s -> %s, other users %.0f%% of the CPUs during the 100 MB",
		r.firstPing.Seconds()*1000, r.rttMs, r.goodput/1e6, r.cpuTotal(), r.cpu[0], r.cpu[1], r.cpu[2], r.cpu[3],
		r.tbfGoodput/1e6, r.tbfGoodput/ybRateBytes, r.loadBefore, r.loadAfter, 100*r.others)
}

// findSbin returns the path of a command, looking beyond PATH in the sbin directories.
func findSbin(t *testing.T, name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p
		}
	}
	t.Fatalf("no %s in PATH or the sbin directories (bench/ygg.sh installs it)", name)
	return ""
}

// loadavg is the 1, 5 and 15 minute load averages, as uptime shows them.
func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// cpuSeconds is the user plus system CPU time the process pid has used so far.
func cpuSeconds(t *testing.T, pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatalf("CPU time of %d: %v", pid, err)
	}
	// Fields after the command name, which is in parentheses and may hold spaces:
	// state is field 3, utime 14 and stime 15.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		t.Fatalf("/proc/%d/stat: %q", pid, s)
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ, 100 on Linux
}

// machineBusy is the CPU seconds all cores have spent busy since boot (/proc/stat:
// everything but idle and iowait).
func machineBusy(t *testing.T) float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		t.Fatal(err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	busy := 0.0
	for i, v := range f[1:] {
		x, _ := strconv.ParseFloat(v, 64)
		if i != 3 && i != 4 && i < 8 { // user nice system idle iowait irq softirq steal
			busy += x
		}
	}
	return busy / 100
}

// othersShare is the share of all cores that processes other than the daemons, this
// test process and the helpers went busy for over elapsed, from the machine's busy
// seconds and those of the daemons, this process and the helpers (each an after less
// before).
func othersShare(busy, daemons, self, helpers float64, elapsed time.Duration) float64 {
	return max(0, busy-daemons-self-helpers) / (elapsed.Seconds() * float64(runtime.NumCPU()))
}

func cpuAll(t *testing.T, pids []int) [ybNodes]float64 {
	var c [ybNodes]float64
	for i, p := range pids {
		c[i] = cpuSeconds(t, p)
	}
	return c
}

func shapeMiddle(t *testing.T, tc string, topo *netns.Topology) {
	l := topo.Links[ybMiddle]
	for _, e := range []netns.End{l.A, l.B} {
		e.NS.Run(t, tc, "qdisc", "add", "dev", e.Dev, "root", "tbf", "rate", ybRate, "burst", "32kbit", "latency", "50ms")
	}
}

// ybSkyfleet measures a line of 4 `skyfleet node` processes with static peers.
func ybSkyfleet(t *testing.T, tc string, res *ybResult) {
	nw := netns.New(t, "yggb")
	topo := nw.Line(ybNodes)
	var nodes []*meshNode
	byNS := map[*netns.NS]*meshNode{}
	for i, ns := range topo.Nodes {
		n := newMeshNode(t, fmt.Sprintf("sky%d", i), ns)
		nodes = append(nodes, n)
		byNS[ns] = n
	}
	src, dst := nodes[0], nodes[ybNodes-1]
	payload, want := randomFile(t, ybBytes)
	tbfPayload, tbfWant := randomFile(t, ybTBFBytes)

	start := time.Now()
	for _, n := range nodes {
		var peers []string
		for _, l := range topo.Neighbours(n.ns) {
			other := l.Peer(n.ns)
			peers = append(peers, byNS[other.NS].peerEntry(other.HostPort(5505)))
		}
		n.start(t, "udp://0.0.0.0:5505", "127.0.0.1:8080", peers, false)
	}
	api := newNSAPI(t, src)
	ping := func(timeout time.Duration) (float64, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout+5*time.Second)
		defer cancel()
		resp, err := api.do(ctx, "POST", "/mesh/ping?addr="+url.QueryEscape(dst.address())+"&timeout="+timeout.String(), nil)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		var r struct {
			RTT   float64 `json:"rtt_ms"`
			Hops  int     `json:"hops"`
			Error string  `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&r)
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("%s: %s", resp.Status, r.Error)
		}
		if r.Hops != ybNodes-1 {
			return 0, fmt.Errorf("answered over %d hops, want %d", r.Hops, ybNodes-1)
		}
		return r.RTT, nil
	}
	for {
		_, err := ping(time.Second)
		if err == nil {
			break
		}
		if time.Since(start) > time.Minute {
			t.Fatalf("no end-to-end ping a minute after the start: %v\n%s", err, tail(src.log))
		}
		for _, n := range nodes {
			if n.dead() {
				t.Fatalf("%s exited:\n%s", n.name, tail(n.log))
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	res.firstPing = time.Since(start)

	var rtts []float64
	for range ybPings {
		time.Sleep(ybPingGap)
		rtt, err := ping(5 * time.Second)
		if err != nil {
			t.Fatalf("ping: %v", err)
		}
		rtts = append(rtts, rtt)
	}
	res.rttMs = median(rtts)

	var pids []int
	for _, n := range nodes {
		pids = append(pids, n.proc.Pid())
	}
	var before, after [ybNodes]float64
	var busy0, busy1, self0, self1 float64
	elapsed, helpers := skyTransfer(t, src, dst, payload, want, func() {
		before, busy0, self0 = cpuAll(t, pids), machineBusy(t), cpuSeconds(t, os.Getpid())
	}, func() {
		after, busy1, self1 = cpuAll(t, pids), machineBusy(t), cpuSeconds(t, os.Getpid())
	})
	res.goodput = ybBytes / elapsed.Seconds()
	for i := range res.cpu {
		res.cpu[i] = after[i] - before[i]
	}
	res.others = othersShare(busy1-busy0, res.cpuTotal(), self1-self0, helpers, elapsed)
	var retrans, copies uint64
	for _, n := range nodes {
		l, err := newNSAPI(t, n).links()
		if err != nil {
			t.Fatalf("%s /mesh/links: %v", n.name, err)
		}
		for _, ls := range l.Links {
			retrans += ls.StoreForward.Retransmits
		}
		copies += l.Counters["link_copies"]
	}
	t.Logf("100 MB: %.2f s; link retransmissions on all nodes %d, copies received %d", elapsed.Seconds(), retrans, copies)

	shapeMiddle(t, tc, topo)
	elapsed, _ = skyTransfer(t, src, dst, tbfPayload, tbfWant, nil, nil)
	res.tbfGoodput = ybTBFBytes / elapsed.Seconds()
	nw.Close()
}

// skyTransfer sends the file at payload from src to dst as transfer does (mesh recv
// at dst, then mesh send at src), checks its SHA-256 at the far end and returns the
// time from the send's start to the receiver's exit, and the CPU seconds the two
// commands used. begin and end, if set, run just before the send and just after the
// receiver is done.
func skyTransfer(t *testing.T, src, dst *meshNode, payload, want string, begin, end func()) (time.Duration, float64) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "received")
	recv := dst.command("recv", "--timeout", "5m", "--out", out, "9")
	var recvOut strings.Builder
	recv.Stdout, recv.Stderr = &recvOut, &recvOut
	if err := recv.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the listener is up
	if begin != nil {
		begin()
	}
	start := time.Now()
	send := src.command("send", dst.address(), "9", payload)
	sendOut, err := send.CombinedOutput()
	if err != nil {
		recv.Process.Kill()
		recv.Wait()
		t.Fatalf("send: %v\n%s\n%s", err, sendOut, tail(src.log))
	}
	err = recv.Wait()
	elapsed := time.Since(start)
	if end != nil {
		end()
	}
	if err != nil {
		t.Fatalf("recv: %v\n%s\n%s", err, recvOut.String(), tail(dst.log))
	}
	if got := fileSHA(t, out); got != want {
		t.Fatalf("SHA-256 at the far end %s, sent %s", got, want)
	}
	os.Remove(out)
	helpers := 0.0
	for _, c := range []*exec.Cmd{send, recv} {
		helpers += (c.ProcessState.UserTime() + c.ProcessState.SystemTime()).Seconds()
	}
	return elapsed, helpers
}

// ybYggdrasil measures a line of 4 yggdrasil processes with static TCP peers.
func ybYggdrasil(t *testing.T, ygg, ping, tc string, res *ybResult) {
	nw := netns.New(t, "yggb")
	topo := nw.Line(ybNodes)
	dir := t.TempDir()
	logs := artifacts(t)
	confs := make([]string, ybNodes)
	addrs := make([]string, ybNodes)
	for i, ns := range topo.Nodes {
		out, err := exec.Command(ygg, "-genconf", "-json").Output()
		if err != nil {
			t.Fatalf("yggdrasil -genconf: %v", err)
		}
		var conf map[string]any
		if err := json.Unmarshal(out, &conf); err != nil {
			t.Fatalf("yggdrasil -genconf: %v\n%s", err, out)
		}
		var peers []string
		for _, l := range topo.Neighbours(ns) {
			peers = append(peers, "tcp://"+l.Peer(ns).HostPort(ybYggPort))
		}
		conf["Peers"] = peers
		conf["Listen"] = []string{fmt.Sprintf("tcp://0.0.0.0:%d", ybYggPort)}
		conf["MulticastInterfaces"] = []any{}
		conf["AdminListen"] = "none"
		conf["IfName"] = "ygg0"
		b, _ := json.MarshalIndent(conf, "", "  ")
		confs[i] = filepath.Join(dir, fmt.Sprintf("ygg%d.conf", i))
		if err := os.WriteFile(confs[i], b, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err = exec.Command(ygg, "-useconffile", confs[i], "-address").Output()
		if err != nil {
			t.Fatalf("yggdrasil -address: %v", err)
		}
		addrs[i] = strings.TrimSpace(string(out))
	}
	src, dst := topo.Nodes[0], topo.Nodes[ybNodes-1]

	start := time.Now()
	var procs []*netns.Proc
	for i, ns := range topo.Nodes {
		procs = append(procs, ns.Start(t, filepath.Join(logs, fmt.Sprintf("ygg%d.log", i)), ygg, "-useconffile", confs[i], "-logto", "stdout"))
	}
	dead := func() {
		for i, p := range procs {
			select {
			case <-p.Done():
				t.Fatalf("yggdrasil on n%d exited:\n%s", i, tail(p.LogPath))
			default:
			}
		}
	}
	// ping -6 every 50 ms until the first answer; ping exits at once while n0 has no
	// TUN or route yet, and is started again.
	for first := false; !first; {
		if time.Since(start) > time.Minute {
			t.Fatalf("no end-to-end ping a minute after the start\n%s", tail(procs[0].LogPath))
		}
		dead()
		cmd := src.Command(ping, "-6", "-n", "-i", "0.05", "-w", "60", addrs[ybNodes-1])
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "bytes from") {
				first = true
				res.firstPing = time.Since(start)
				break
			}
		}
		cmd.Process.Kill()
		cmd.Wait()
		if !first {
			time.Sleep(10 * time.Millisecond)
		}
	}

	out := src.Run(t, ping, "-6", "-n", "-c", strconv.Itoa(ybPings), "-i", fmt.Sprint(ybPingGap.Seconds()), addrs[ybNodes-1])
	var rtts []float64
	for _, line := range strings.Split(out, "\n") {
		if _, v, ok := strings.Cut(line, " time="); ok {
			ms, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " ms"), 64)
			if err == nil {
				rtts = append(rtts, ms)
			}
		}
	}
	if len(rtts) < ybPings/2 {
		t.Fatalf("only %d of %d pings answered:\n%s", len(rtts), ybPings, out)
	}
	res.rttMs = median(rtts)

	var pids []int
	for _, p := range procs {
		pids = append(pids, p.Pid())
	}
	before, busy0, self0 := cpuAll(t, pids), machineBusy(t), cpuSeconds(t, os.Getpid())
	elapsed := tcpTransfer(t, src, dst, addrs[ybNodes-1], ybBytes)
	after, busy1, self1 := cpuAll(t, pids), machineBusy(t), cpuSeconds(t, os.Getpid())
	res.goodput = ybBytes / elapsed.Seconds()
	for i := range res.cpu {
		res.cpu[i] = after[i] - before[i]
	}
	// The sender and receiver are this process.
	res.others = othersShare(busy1-busy0, res.cpuTotal(), self1-self0, 0, elapsed)
	dead()

	shapeMiddle(t, tc, topo)
	elapsed = tcpTransfer(t, src, dst, addrs[ybNodes-1], ybTBFBytes)
	res.tbfGoodput = ybTBFBytes / elapsed.Seconds()
	dead()
	nw.Close()
}

// tcpTransfer sends size bytes over one TCP connection from a socket inside src to a
// listener inside dst on addr, and returns the time from the dial to the receiver's
// end of stream.
func tcpTransfer(t *testing.T, src, dst *netns.NS, addr string, size int64) time.Duration {
	t.Helper()
	var ln net.Listener
	if err := dst.Do(func() error {
		var err error
		ln, err = net.Listen("tcp6", net.JoinHostPort(addr, strconv.Itoa(ybDataPort)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		n   int64
		end time.Time
		err error
	}
	got := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- result{err: err}
			return
		}
		defer c.Close()
		n, err := io.Copy(io.Discard, c)
		got <- result{n, time.Now(), err}
	}()
	buf := make([]byte, 1<<20)
	rand.Read(buf)
	start := time.Now()
	var c net.Conn
	if err := src.Do(func() error {
		var err error
		c, err = net.DialTimeout("tcp6", net.JoinHostPort(addr, strconv.Itoa(ybDataPort)), 10*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	c.SetWriteDeadline(time.Now().Add(5 * time.Minute))
	for left := size; left > 0; {
		k := min(left, int64(len(buf)))
		if _, err := c.Write(buf[:k]); err != nil {
			c.Close()
			t.Fatalf("send: %v (%d of %d bytes left)", err, left, size)
		}
		left -= k
	}
	c.(*net.TCPConn).CloseWrite()
	var r result
	select {
	case r = <-got:
	case <-time.After(5 * time.Minute):
		r.err = fmt.Errorf("the receiver had not finished after 5 minutes")
	}
	c.Close()
	if r.err != nil || r.n != size {
		t.Fatalf("receiver: %d of %d bytes: %v", r.n, size, r.err)
	}
	return r.end.Sub(start)
}

// ybReport formats every run, the medians per system and the ratios Skyfleet over
// Yggdrasil.
func ybReport(results []ybResult) string {
	var b strings.Builder
	fmt.Fprintln(&b, "=== ygg report")
	const row = "%-6s %-9s %9s %8s %9s %8s %22s %10s %6s %7s  %s\n"
	fmt.Fprintf(&b, row, "round", "system", "1st ping", "rtt", "goodput", "CPU", "CPU n0/n1/n2/n3", "tbf", "/rate", "others", "load (1 5 15 min) before -> after")
	fmt.Fprintf(&b, row, "", "", "ms", "ms", "MB/s", "s", "s", "MB/s", "", "%CPU", "")
	line := func(round, sys string, r ybResult, load string) {
		fmt.Fprintf(&b, row, round, sys,
			fmt.Sprintf("%.0f", r.firstPing.Seconds()*1000), fmt.Sprintf("%.3f", r.rttMs), fmt.Sprintf("%.1f", r.goodput/1e6),
			fmt.Sprintf("%.2f", r.cpuTotal()), fmt.Sprintf("%.2f/%.2f/%.2f/%.2f", r.cpu[0], r.cpu[1], r.cpu[2], r.cpu[3]),
			fmt.Sprintf("%.2f", r.tbfGoodput/1e6), fmt.Sprintf("%.2f", r.tbfGoodput/ybRateBytes), fmt.Sprintf("%.0f", 100*r.others), load)
	}
	meds := map[string]ybResult{}
	for _, r := range results {
		line(strconv.Itoa(r.round), r.system, r, r.loadBefore+" -> "+r.loadAfter)
	}
	for _, sys := range []string{"skyfleet", "yggdrasil"} {
		var fp, rtt, gp, tbf, oth []float64
		var cpu [ybNodes][]float64
		for _, r := range results {
			if r.system != sys {
				continue
			}
			fp = append(fp, r.firstPing.Seconds())
			rtt = append(rtt, r.rttMs)
			gp = append(gp, r.goodput)
			tbf = append(tbf, r.tbfGoodput)
			oth = append(oth, r.others)
			for i, c := range r.cpu {
				cpu[i] = append(cpu[i], c)
			}
		}
		m := ybResult{system: sys, firstPing: time.Duration(median(fp) * float64(time.Second)), rttMs: median(rtt), goodput: median(gp), tbfGoodput: median(tbf), others: median(oth)}
		for i := range cpu {
			m.cpu[i] = median(cpu[i])
		}
		meds[sys] = m
		line("median", sys, m, "")
	}
	s, y := meds["skyfleet"], meds["yggdrasil"]
	ratio := func(a, b float64) string {
		if b == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2fx", a/b)
	}
	fmt.Fprintln(&b)
	fmt.Fprintln(&b, "ratios of the medians, Skyfleet / Yggdrasil:")
	fmt.Fprintf(&b, "  start to first ping   %s (%.0f ms vs %.0f ms)\n", ratio(s.firstPing.Seconds(), y.firstPing.Seconds()), s.firstPing.Seconds()*1000, y.firstPing.Seconds()*1000)
	fmt.Fprintf(&b, "  round trip            %s (%.3f ms vs %.3f ms)\n", ratio(s.rttMs, y.rttMs), s.rttMs, y.rttMs)
	fmt.Fprintf(&b, "  goodput 100 MB        %s (%.1f MB/s vs %.1f MB/s)\n", ratio(s.goodput, y.goodput), s.goodput/1e6, y.goodput/1e6)
	fmt.Fprintf(&b, "  CPU for 100 MB, all 4 %s (%.2f s vs %.2f s)\n", ratio(s.cpuTotal(), y.cpuTotal()), s.cpuTotal(), y.cpuTotal())
	for i := range ybNodes {
		fmt.Fprintf(&b, "  CPU for 100 MB, n%d    %s (%.2f s vs %.2f s)\n", i, ratio(s.cpu[i], y.cpu[i]), s.cpu[i], y.cpu[i])
	}
	fmt.Fprintf(&b, "  tbf 20 Mbit/s goodput %s (%.2f vs %.2f of the rate)\n", ratio(s.tbfGoodput, y.tbfGoodput), s.tbfGoodput/ybRateBytes, y.tbfGoodput/ybRateBytes)
	fmt.Fprintln(&b, "=== end ygg report")
	return b.String()
}
