package mesh

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/services/mesh/topology"
)

// BenchmarkRouteSetup4Hops20ms measures route setup (Setup out, Confirm back) over a
// line of 5 nodes with 20 ms one-way delay per link; the ideal is 8 × 20 ms = 160 ms.
func BenchmarkRouteSetup4Hops20ms(b *testing.B) {
	m := newMemnet()
	m.delay = 20 * time.Millisecond
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
			b.Fatalf("route failed: %v", rt.failErr)
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
		rts := make([]*route, 0, n)
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
				b.Fatalf("route failed: %v", rt.failErr)
			}
		}
		after := heap()
		if got := nodes[1].r.table.len(); got < n {
			b.Fatalf("transit node holds %d rules, want %d", got, n)
		}
		b.ReportMetric(float64(after-before)/n, "bytes/route")
		tb := transitBytes(nodes[1].r)
		b.ReportMetric(tb/float64(nodes[1].r.table.len()), "transit-rule-bytes")
		for _, nd := range nodes {
			nd.r.Close()
		}
	}
}

// transitBytes is B's table heap, measured by dropping it.
func transitBytes(r *Router) float64 {
	before := heap()
	r.table.mu.Lock()
	saved := r.table
	r.table = newTable()
	saved.mu.Unlock()
	after := heap()
	runtime.KeepAlive(saved)
	r.table = saved
	return float64(before - after)
}

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkMemoryPerLink links one hub to 200 nodes and reports the hub-side and
// total heap per link.
func BenchmarkMemoryPerLink(b *testing.B) {
	for i := 0; i < b.N; i++ {
		m := newMemnet()
		const n = 200
		before := heap()
		var edges [][2]int
		for j := 1; j <= n; j++ {
			edges = append(edges, [2]int{0, j})
		}
		nodes := buildMesh(b, m, n+1, edges, nil)
		deadline := time.Now().Add(30 * time.Second)
		for {
			up := 0
			for _, l := range nodes[0].r.Links() {
				if l.Up {
					up++
				}
			}
			if up == n {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d links up", up, n)
			}
			time.Sleep(50 * time.Millisecond)
		}
		after := heap()
		// Two routers per link (hub side and leaf side, leaves being full routers),
		// so a link's cost at one node is about half of this.
		b.ReportMetric(float64(after-before)/n/2, "bytes/link-end")
		for _, nd := range nodes {
			nd.r.Close()
		}
	}
	_ = context.Background
}
