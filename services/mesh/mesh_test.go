package mesh

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/services/mesh/forward"
	"github.com/skyfleet/skyfleet/services/mesh/stream"
)

func TestLineAllPairsPing(t *testing.T) {
	m := newMemnet()
	nodes := buildMesh(t, m, 5, line(5), nil)
	waitConverged(t, nodes, 10*time.Second)
	for i, a := range nodes {
		for j, b := range nodes {
			if i == j {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			res, err := a.r.Ping(ctx, keyOf(b))
			cancel()
			if err != nil {
				t.Fatalf("ping %d -> %d: %v", i, j, err)
			}
			want := j - i
			if want < 0 {
				want = -want
			}
			if got := len(res.Path) - 1; got != want {
				t.Errorf("ping %d -> %d went %d hops, want %d (%v)", i, j, got, want, res.Path)
			}
		}
	}
	// Every transit rule forwarded something, and the ends see their routes.
	st := nodes[2].r.Routes()
	if len(st.Rules) == 0 {
		t.Error("middle node holds no forwarding rules after all-pairs pings")
	}
	if c := nodes[2].r.Counters()["packets_forwarded"]; c == 0 {
		t.Error("middle node forwarded nothing")
	}
}

// receive accepts one stream on l and reports its SHA-256 once it ends; received
// counts the bytes so far.
func receive(l net.Listener, received *atomic.Int64) <-chan [32]byte {
	got := make(chan [32]byte, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			got <- [32]byte{}
			return
		}
		h := sha256.New()
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			h.Write(buf[:n])
			if received != nil {
				received.Add(int64(n))
			}
			if err != nil {
				break
			}
		}
		var s [32]byte
		copy(s[:], h.Sum(nil))
		got <- s
	}()
	return got
}

// TestNearestRole: the API finds the nearest node announcing a role.
func TestNearestRole(t *testing.T) {
	m := newMemnet()
	nodes := buildMesh(t, m, 5, line(5), func(i int, c *Config) {
		if i == 1 || i == 4 {
			c.Properties = []string{"gateway"}
		}
	})
	waitConverged(t, nodes, 10*time.Second)
	// Convergence needs routes, not the latest announcements: wait until node 3
	// holds nodes 1's and 4's announcements with their role.
	waitCond(t, 10*time.Second, "node 3 to learn both gateways' roles", func() bool {
		for _, i := range []int{1, 4} {
			a, ok := nodes[3].r.graph.Get(keyOf(nodes[i]))
			if !ok || len(a.Properties) != 1 || a.Properties[0] != "gateway" {
				return false
			}
		}
		return true
	})
	srv := httptest.NewServer(nodes[3].r.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/mesh/nearest?role=gateway")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Address string `json:"address"`
	}
	json.NewDecoder(resp.Body).Decode(&doc)
	if doc.Address != nodes[4].r.Address() {
		t.Errorf("nearest gateway from node 3 is %q, want node 4 %s", doc.Address, nodes[4].r.Address())
	}
	resp2, err := http.Get(srv.URL + "/mesh/nearest?role=master")
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusNotFound {
		t.Errorf("nearest master: status %d, want 404", resp2.StatusCode)
	}
}

func TestStreamAcrossFourHops(t *testing.T) {
	m := newMemnet()
	nodes := buildMesh(t, m, 5, line(5), nil)
	waitConverged(t, nodes, 10*time.Second)
	src, dst := nodes[0], nodes[4]
	l, err := dst.r.Listen(7)
	if err != nil {
		t.Fatal(err)
	}
	const size = 4 << 20
	data := make([]byte, size)
	rand.Read(data)
	want := sha256.Sum256(data)

	got := receive(l, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := src.r.Dial(ctx, keyOf(dst), 7)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(c, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	select {
	case s := <-got:
		if s != want {
			t.Fatal("SHA-256 differs at the far end")
		}
	case <-time.After(60 * time.Second):
		t.Fatal("stream did not finish in 60 s")
	}
	// The stream went through the three middle nodes.
	for _, mid := range nodes[1:4] {
		if mid.r.Counters()["packets_forwarded"] < size/1500 {
			t.Errorf("node %s forwarded only %d packets", mid.r.Address(), mid.r.Counters()["packets_forwarded"])
		}
	}
}

// TestStreamLossy: 5% loss and 20 ms delay on every link; a stream over 4 hops
// arrives exact and no link is declared dead meanwhile.
func TestStreamLossy(t *testing.T) {
	m := newMemnet()
	m.SetDelay(20 * time.Millisecond)
	m.SetLoss(0.05)
	nodes := buildMesh(t, m, 5, line(5), nil)
	waitConverged(t, nodes, 20*time.Second)
	src, dst := nodes[0], nodes[4]
	l, err := dst.r.Listen(7)
	if err != nil {
		t.Fatal(err)
	}
	const size = 8 << 20
	data := make([]byte, size)
	rand.Read(data)
	want := sha256.Sum256(data)
	got := receive(l, nil)
	linksUp := func() uint64 {
		var n uint64
		for _, nd := range nodes {
			n += nd.r.Counters()["links_up_total"]
		}
		return n
	}
	before := linksUp()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := src.r.Dial(ctx, keyOf(dst), 7)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		io.Copy(c, bytes.NewReader(data))
		c.Close()
	}()
	select {
	case s := <-got:
		if s != want {
			t.Fatal("SHA-256 differs")
		}
	case <-time.After(120 * time.Second):
		t.Fatal("lossy stream did not finish in 120 s")
	}
	t.Logf("%d MB in %v; stream stats %+v", size>>20, time.Since(start), c.(interface{ Stats() stream.Stats }).Stats())
	if after := linksUp(); after != before {
		t.Errorf("links went down and up %d times during the transfer", after-before)
	}
}

func TestDatagrams(t *testing.T) {
	m := newMemnet()
	nodes := buildMesh(t, m, 3, line(3), nil)
	waitConverged(t, nodes, 10*time.Second)
	a, err := nodes[0].r.ListenPacket(100)
	if err != nil {
		t.Fatal(err)
	}
	b, err := nodes[2].r.ListenPacket(200)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nodes[2].r.ListenPacket(200); err == nil {
		t.Error("second ListenPacket on a taken port succeeded")
	}
	msg := []byte("hello over two hops")
	// Datagrams are best effort: retry until one arrives.
	b.SetReadDeadline(time.Now().Add(10 * time.Second))
	var buf [2048]byte
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 50; i++ {
			if _, err := a.WriteTo(msg, Addr{Key: keyOf(nodes[2]), Port: 200}); err != nil {
				t.Logf("write: %v", err)
			}
			select {
			case <-time.After(100 * time.Millisecond):
			case <-done:
				return
			}
		}
	}()
	n, from, err := b.ReadFrom(buf[:])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf[:n], msg) {
		t.Errorf("got %q", buf[:n])
	}
	fa := from.(Addr)
	if fa.Key != keyOf(nodes[0]) || fa.Port != 100 {
		t.Errorf("from %v, want node 0 port 100", from)
	}
	if _, err := a.WriteTo(make([]byte, MaxDatagram+1), fa); err == nil {
		t.Error("oversized datagram accepted")
	}
}

// TestFailover kills a middle node of a 3x3 grid while a stream crosses it; the
// stream must finish byte-exact over the other route.
func TestFailover(t *testing.T) {
	m := newMemnet()
	nodes := buildMesh(t, m, 9, grid(3, 3), nil)
	waitConverged(t, nodes, 10*time.Second)
	src, dst := nodes[0], nodes[8]
	l, err := dst.r.Listen(9)
	if err != nil {
		t.Fatal(err)
	}
	const size = 24 << 20
	data := make([]byte, size)
	rand.Read(data)
	want := sha256.Sum256(data)
	var received atomic.Int64
	got := receive(l, &received)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := src.r.Dial(ctx, keyOf(dst), 9)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		io.Copy(c, bytes.NewReader(data))
		c.Close()
	}()
	waitCond(t, 30*time.Second, "2 MiB to arrive before the node is killed", func() bool { return received.Load() >= 2<<20 })
	// Kill a middle node of a route in use (not a neighbour of the source, so the
	// source learns of it only through a route error).
	var victim *testNode
	for _, rs := range src.r.Routes().Routes {
		if rs.State == "up" && rs.Hops >= 3 && rs.Packets > 0 {
			for _, n := range nodes {
				if n.r.Address() == rs.Path[2] {
					victim = n
				}
			}
		}
	}
	if victim == nil {
		t.Fatal("no multi-hop route in use from corner to corner")
	}
	at := received.Load()
	victim.r.Close() // the node dies: its transport goes silent
	select {
	case s := <-got:
		if s != want {
			t.Fatal("SHA-256 differs after failover")
		}
	case <-time.After(60 * time.Second):
		t.Fatal("stream did not finish after the middle node died")
	}
	if at >= size {
		t.Fatal("the stream had finished before the node died")
	}
	// The source learns of the dead hop (a route error, once the hop's neighbours
	// declare the link dead) and drops the route.
	through := func() []forward.RouteStatus {
		var out []forward.RouteStatus
		for _, rs := range src.r.Routes().Routes {
			for _, hop := range rs.Path {
				if hop == victim.r.Address() && rs.State == "up" {
					out = append(out, rs)
				}
			}
		}
		return out
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(through()) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if rs := through(); len(rs) > 0 {
		t.Errorf("routes through the dead node still up 10 s later: %+v", rs)
	}
	t.Logf("killed %s after %d of %d bytes", victim.r.Address(), at, size)
}
