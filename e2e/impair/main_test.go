package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/e2e/netns"
)

// TestMain runs the command itself when the test binary is started with
// IMPAIR_RUN_MAIN=1, so TestSignal can send it real signals.
func TestMain(m *testing.M) {
	if os.Getenv("IMPAIR_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// echoServer answers every datagram with itself until the test ends.
func echoServer(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			c.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	t.Cleanup(func() { c.Close() })
	return c
}

// lineWriter hands each line written to it to a channel.
type lineWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines chan string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		line, err := w.buf.ReadString('\n')
		if err != nil {
			w.buf.WriteString(line)
			return len(p), nil
		}
		w.lines <- strings.TrimSuffix(line, "\n")
	}
}

// awaitReady reads lines up to "impair: ready" and returns the listen address of
// each link and the stats URL.
func awaitReady(t *testing.T, lines <-chan string) (links []string, stats string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l := <-lines:
			t.Log(l)
			if l == "impair: ready" {
				return links, stats
			}
			if rest, ok := strings.CutPrefix(l, "impair: stats "); ok {
				stats = rest
			} else if f := strings.Fields(l); len(f) >= 4 && f[1] == "link" {
				links = append(links, f[3])
			}
		case <-timeout:
			t.Fatal("impair never became ready")
		}
	}
}

func roundTrip(t *testing.T, addr string, wait time.Duration) bool {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("ping"))
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 16)
	n, err := c.Read(buf)
	return err == nil && string(buf[:n]) == "ping"
}

func TestRunRelaysAndServesStats(t *testing.T) {
	e1, e2 := echoServer(t), echoServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	out := &lineWriter{lines: make(chan string, 100)}
	var stderr bytes.Buffer
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, []string{
			"-seed", "3", "-stats", "127.0.0.1:0",
			"-link", "127.0.0.1:0=" + e1.LocalAddr().String() + ",delay=1ms",
			"-link", "127.0.0.1:0=" + e2.LocalAddr().String() + ",loss.ba=0",
		}, out, &stderr)
	}()
	links, stats := awaitReady(t, out.lines)
	if len(links) != 2 || stats == "" {
		t.Fatalf("links %q, stats %q", links, stats)
	}
	for _, l := range links {
		if !roundTrip(t, l, 2*time.Second) {
			t.Fatalf("no echo through %s", l)
		}
	}

	// Partition link 1 only.
	resp, err := http.Post(strings.TrimSuffix(stats, "/stats")+"/params?link=1&set=loss=1", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var got statsReply
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || len(got.Links) != 2 {
		t.Fatalf("POST /params: %d %v %+v", resp.StatusCode, err, got)
	}
	if !strings.Contains(got.Links[1].Params, "loss=1") || strings.Contains(got.Links[0].Params, "loss") {
		t.Errorf("params after partitioning link 1: %q, %q", got.Links[0].Params, got.Links[1].Params)
	}
	if roundTrip(t, links[1], 200*time.Millisecond) {
		t.Error("echo through partitioned link 1")
	}
	if !roundTrip(t, links[0], 2*time.Second) {
		t.Error("link 0 stopped working when link 1 was partitioned")
	}

	resp, err = http.Post(strings.TrimSuffix(stats, "/stats")+"/params?link=1&set=loss=banana", "", nil)
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("bad settings: %d %s", resp.StatusCode, body)
		}
	}

	// The relay counts a datagram just after sending it, so the counters may trail
	// the echoes by a moment.
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err = http.Get(stats)
		if err != nil {
			t.Fatal(err)
		}
		got = statsReply{}
		json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if got.Seed == 3 && len(got.Links) == 2 && got.Links[0].AB.Forwarded == 2 && got.Links[0].BA.Forwarded == 2 && got.Links[1].AB.Dropped == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /stats: %+v", got)
		}
		time.Sleep(5 * time.Millisecond)
	}

	cancel()
	select {
	case c := <-code:
		if c != 0 {
			t.Errorf("exit code %d", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	if !strings.Contains(stderr.String(), "impair: link 1: ab received 2 forwarded 1 dropped 1") {
		t.Errorf("final counters on stderr:\n%s", stderr.String())
	}
}

func TestUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, &stdout, &stderr); code != 0 {
		t.Errorf("--help exit code %d", code)
	}
	for _, want := range []string{"Usage:", "Examples:", "loss.ab", "-link 127.0.0.1:7001=127.0.0.1:7000"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
	for _, args := range [][]string{
		nil,
		{"-link", "127.0.0.1:0"},
		{"-link", "127.0.0.1:0=127.0.0.1:1,loss=3"},
		{"-link", "127.0.0.1:0=127.0.0.1:1", "extra"},
		{"-bogus"},
	} {
		stdout.Reset()
		stderr.Reset()
		if code := run(context.Background(), args, &stdout, &stderr); code != 2 {
			t.Errorf("%q: exit code %d, want 2", args, code)
		}
		if !strings.Contains(stderr.String(), "usage") && !strings.Contains(stderr.String(), "impair:") {
			t.Errorf("%q: stderr %q explains nothing", args, stderr.String())
		}
	}
}

func TestSignalStopsCleanly(t *testing.T) {
	e := echoServer(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		cmd := exec.Command(os.Args[0], "-link", "127.0.0.1:0="+e.LocalAddr().String())
		cmd.Env = append(os.Environ(), "IMPAIR_RUN_MAIN=1")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 10)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		links, _ := awaitReady(t, lines)
		if !roundTrip(t, links[0], 2*time.Second) {
			t.Error("no echo through the command")
		}
		cmd.Process.Signal(sig)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%v: exit %v\n%s", sig, err, stderr.String())
			}
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("%v did not stop impair", sig)
		}
		if !strings.Contains(stderr.String(), "ab received 1 forwarded 1") {
			t.Errorf("%v: final counters:\n%s", sig, stderr.String())
		}
	}
}

// TestBetweenNamespaces runs the command on the middle node of a line of three
// namespaces, relaying from n0's side of the line to an echo server on n2: the way
// mesh tests put an impaired hop between two nodes that have no route to each other.
func TestBetweenNamespaces(t *testing.T) {
	n := netns.New(t, "impairtest")
	top := n.Line(3)
	n0, n1, n2 := top.Nodes[0], top.Nodes[1], top.Nodes[2]
	listen := top.Links[0].Peer(n0).HostPort(7001) // n1 on the n0-n1 link
	target := top.Links[1].Peer(n1).HostPort(7000) // n2 on the n1-n2 link

	var echo net.PacketConn
	if err := n2.Do(func() (err error) {
		echo, err = net.ListenPacket("udp", target)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			k, from, err := echo.ReadFrom(buf)
			if err != nil {
				return
			}
			echo.WriteTo(buf[:k], from)
		}
	}()

	// The test binary is the command when IMPAIR_RUN_MAIN=1, which ip netns exec
	// passes on.
	t.Setenv("IMPAIR_RUN_MAIN", "1")
	p := n1.Start(t, filepath.Join(t.TempDir(), "impair.log"), os.Args[0],
		"-link", listen+"="+target+",delay.ab=10ms")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.Log(), "impair: ready") {
		if time.Now().After(deadline) {
			t.Fatalf("impair not ready:\n%s", p.Log())
		}
		time.Sleep(5 * time.Millisecond)
	}

	var c net.Conn
	if err := n0.Do(func() (err error) {
		c, err = net.Dial("udp", listen)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	c.Write([]byte("across"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	k, err := c.Read(buf)
	if err != nil || string(buf[:k]) != "across" {
		t.Fatalf("no echo from n2 through impair on n1: %v\n%s", err, p.Log())
	}
	if rtt := time.Since(start); rtt < 10*time.Millisecond {
		t.Errorf("round trip %v, under the 10ms delay", rtt)
	}
	p.Signal(syscall.SIGTERM)
	if err := p.Wait(); err != nil {
		t.Errorf("impair after SIGTERM: %v\n%s", err, p.Log())
	}
	if !strings.Contains(p.Log(), "ab received 1 forwarded 1") {
		t.Errorf("final counters:\n%s", p.Log())
	}
}
