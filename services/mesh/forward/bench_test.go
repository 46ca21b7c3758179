package forward

import (
	"crypto/rand"
	"runtime"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/skyfleet/skyfleet/services/mesh/link"
	"github.com/skyfleet/skyfleet/services/mesh/topology"
)

// BenchmarkRouteSetup4Hops20ms measures route setup (Setup out, Confirm back) over a
// line of 5 nodes with 20 ms one-way delay per link; the ideal is 8 × 20 ms = 160 ms.
func BenchmarkRouteSetup4Hops20ms(b *testing.B) {
	m := newMemnet()
	m.SetDelay(20 * time.Millisecond)
	nodes := buildMesh(b, m, 5, line(5), func(_ int, c *Config) { c.DeadAfter = 3 * time.Second })
	waitConverged(b, nodes, 30*time.Second)
	path := topology.Path{}
	for _, n := range nodes {
		path = append(path, n.r.self)
	}
	var total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rt, err := nodes[0].r.routes.start(path, nil)
		if err != nil {
			b.Fatal(err)
		}
		<-rt.done
		if rt.state.Load() != routeUp {
			b.Fatalf("route failed: %v", rt.Err())
		}
		total += rt.setup
		nodes[0].r.routes.close(rt)
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "setup-ms")
	b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000/160, "x-ideal")
}

// BenchmarkMemoryPerRoute sets up 10,000 routes A -> B -> C through one node and
// reports the heap they take (the rules at A, B and C plus A's route objects), per
// route; transit-rule-bytes is B's forwarding rule alone.
func BenchmarkMemoryPerRoute(b *testing.B) {
	for i := 0; i < b.N; i++ {
		m := newMemnet()
		nodes := buildMesh(b, m, 3, line(3), nil)
		waitConverged(b, nodes, 10*time.Second)
		path := topology.Path{nodes[0].r.self, nodes[1].r.self, nodes[2].r.self}
		before := heap()
		const n = 10000
		rts := make([]*Route, 0, n)
		for j := 0; j < n; j++ {
			rt, err := nodes[0].r.routes.start(path, nil)
			if err != nil {
				b.Fatal(err)
			}
			rts = append(rts, rt)
			if j%256 == 255 {
				<-rt.done
			}
		}
		for _, rt := range rts {
			<-rt.done
			if rt.state.Load() != routeUp {
				b.Fatalf("route failed: %v", rt.Err())
			}
		}
		after := heap()
		if got := nodes[1].r.table.len(); got < n {
			b.Fatalf("transit node holds %d rules, want %d", got, n)
		}
		b.ReportMetric(float64(after-before)/n, "bytes/route")
		rules := nodes[1].r.table.len()
		b.ReportMetric(transitBytes(nodes[1].r)/float64(rules), "transit-rule-bytes")
		for _, nd := range nodes {
			nd.r.Close()
		}
	}
}

// transitBytes is the heap B's forwarding table holds, measured by dropping it (the
// router is unusable afterwards).
func transitBytes(r *Router) float64 {
	before := heap()
	r.table.mu.Lock()
	old := r.table
	r.table = newTable()
	old.mu.Unlock()
	old = nil
	after := heap()
	if after > before {
		return 0
	}
	return float64(before - after)
}

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkMemoryPerLink reports the heap one node spends per neighbour link: the
// neighbour's state, queues and sender goroutine, and its link session, for 1,000
// links made by real handshakes against the node.
func BenchmarkMemoryPerLink(b *testing.B) {
	const n = 1000
	for i := 0; i < b.N; i++ {
		m := newMemnet()
		k, _ := secp256k1.GeneratePrivateKeyFromRand(rand.Reader)
		r, err := New(Config{Key: k, PSK: testPSK, Transports: []Transport{m.Transport()}})
		if err != nil {
			b.Fatal(err)
		}
		hub := r.self[:]
		inits := make([][]byte, n+1)
		for j := range inits {
			lk, _ := secp256k1.GeneratePrivateKeyFromRand(rand.Reader)
			msg, _, err := link.NewHandshaker(link.Config{Private: lk, PSK: testPSK}).Initiate(hub, uint32(j+1), 1, nil)
			if err != nil {
				b.Fatal(err)
			}
			inits[j] = msg
		}
		now := time.Now()
		accept := func([]byte) bool { return true }
		respond := func(msg []byte) {
			ev, err := r.links.Receive(msg, nil, now, accept)
			if err != nil {
				b.Fatal(err)
			}
			var key topology.Key
			copy(key[:], ev.Session.Remote())
			n := r.neighbourFor(key, false, true)
			r.links.Bind(ev.Index, n)
			r.installSession(n, ev.Session, now)
		}
		respond(inits[n]) // the first handshake allocates the replay caches
		before := heap()
		for _, msg := range inits[:n] {
			respond(msg)
		}
		after := heap()
		b.ReportMetric(float64(after-before)/n, "bytes/link")
		for _, nb := range r.neighbours() {
			nb.stop()
		}
	}
}
