package topology

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

func wantNames(t *testing.T, tp *topo, p Path, want ...string) {
	t.Helper()
	if got := tp.pathNames(p); !reflect.DeepEqual(got, want) {
		t.Errorf("path %v, want %v", got, want)
	}
}

func TestLine(t *testing.T) {
	tp := newTopo(t, "n0", "n1", "n2", "n3", "n4").chain("n0", "n1", "n2", "n3", "n4")
	g := tp.graph("n0")
	p, err := g.ShortestByHops(tp.k("n4"))
	if err != nil {
		t.Fatal(err)
	}
	wantNames(t, tp, p, "n0", "n1", "n2", "n3", "n4")
	p, lat, err := g.ShortestByLatency(tp.k("n3"))
	if err != nil {
		t.Fatal(err)
	}
	wantNames(t, tp, p, "n0", "n1", "n2", "n3")
	if lat != 15*time.Millisecond { // 3 links of 10 ms RTT: 5 ms each
		t.Errorf("latency %v, want 15ms", lat)
	}
	ps, err := g.Disjoint(tp.k("n4"), 3, true)
	if err != nil || len(ps) != 1 {
		t.Fatalf("Disjoint on a line: %v %v", ps, err)
	}
	wantNames(t, tp, ps[0], "n0", "n1", "n2", "n3", "n4")

	// From the middle.
	g = tp.graph("n2")
	p, _ = g.ShortestByHops(tp.k("n0"))
	wantNames(t, tp, p, "n2", "n1", "n0")
	p, _ = g.ShortestByHops(tp.k("n4"))
	wantNames(t, tp, p, "n2", "n3", "n4")

	// No route: to self, to an unknown key, with a non-positive k.
	if _, err := g.ShortestByHops(tp.k("n2")); !errors.Is(err, ErrNoRoute) {
		t.Errorf("route to self: %v", err)
	}
	if _, _, err := g.ShortestByLatency(pubKey(testKey(999))); !errors.Is(err, ErrNoRoute) {
		t.Errorf("route to unknown key: %v", err)
	}
	if _, err := g.Disjoint(tp.k("n4"), 0, true); err == nil || errors.Is(err, ErrNoRoute) {
		t.Errorf("Disjoint with k=0: %v", err)
	}
}

// grid returns a 3x3 grid n<row><col> with 10 ms links.
func grid(t *testing.T) *topo {
	var names []string
	for r := range 3 {
		for c := range 3 {
			names = append(names, fmt.Sprintf("n%d%d", r, c))
		}
	}
	tp := newTopo(t, names...)
	for r := range 3 {
		for c := range 3 {
			if c < 2 {
				tp.link(fmt.Sprintf("n%d%d", r, c), fmt.Sprintf("n%d%d", r, c+1), 10*time.Millisecond)
			}
			if r < 2 {
				tp.link(fmt.Sprintf("n%d%d", r, c), fmt.Sprintf("n%d%d", r+1, c), 10*time.Millisecond)
			}
		}
	}
	return tp
}

func TestGrid(t *testing.T) {
	tp := grid(t)
	g := tp.graph("n00")
	// Six shortest paths corner to corner; ties go to the lower key at each step back
	// from the destination: n22 <- n12 (< n21) <- n02 (< n11) <- n01.
	p, err := g.ShortestByHops(tp.k("n22"))
	if err != nil {
		t.Fatal(err)
	}
	wantNames(t, tp, p, "n00", "n01", "n02", "n12", "n22")
	p, lat, _ := g.ShortestByLatency(tp.k("n22"))
	wantNames(t, tp, p, "n00", "n01", "n02", "n12", "n22")
	if lat != 20*time.Millisecond {
		t.Errorf("latency %v, want 20ms", lat)
	}
	p, _ = g.ShortestByHops(tp.k("n11"))
	wantNames(t, tp, p, "n00", "n01", "n11")
	p, _ = g.ShortestByHops(tp.k("n20"))
	wantNames(t, tp, p, "n00", "n10", "n20")

	for _, byLatency := range []bool{false, true} {
		for _, k := range []int{2, 3, 5} {
			ps, err := g.Disjoint(tp.k("n22"), k, byLatency)
			if err != nil {
				t.Fatal(err)
			}
			if len(ps) != 2 { // the corner has two links
				t.Fatalf("k=%d: %d paths, want 2", k, len(ps))
			}
			for _, p := range ps {
				tp.checkPath(p, tp.i("n00"), tp.i("n22"))
				if len(p) != 5 {
					t.Errorf("path %v is not shortest", tp.pathNames(p))
				}
			}
			if e, ok := shareLink(ps); ok {
				t.Errorf("paths %v and %v share link %v", tp.pathNames(ps[0]), tp.pathNames(ps[1]), e)
			}
			if ps[0][1] == ps[1][1] {
				t.Error("both paths leave by the same link")
			}
		}
	}
	// From the centre, four disjoint paths to... the centre's neighbour n01 has
	// three links, so three.
	g = tp.graph("n11")
	ps, err := g.Disjoint(tp.k("n01"), 4, false)
	if err != nil || len(ps) != 3 {
		t.Fatalf("centre to edge: %d paths, %v", len(ps), err)
	}
	wantNames(t, tp, ps[0], "n11", "n01")
	if _, ok := shareLink(ps); ok {
		t.Error("shared link")
	}
}

// trap is the topology where taking the shortest path s-a-b-t first and removing its
// links leaves no second path, although two disjoint ones exist:
// s-a-d-e-t and s-c-f-b-t.
func trap(t *testing.T) *topo {
	tp := newTopo(t, "s", "a", "b", "c", "d", "e", "f", "t")
	tp.chain("s", "a", "b", "t")
	tp.chain("a", "d", "e", "t")
	tp.chain("s", "c", "f", "b")
	return tp
}

// greedyDisjoint is the naive method: repeatedly take a shortest path by hops and
// remove its links.
func greedyDisjoint(tp *topo, s, t, k int) [][]int {
	removed := map[[2]int]bool{}
	var out [][]int
	for range k {
		pred := map[int]int{s: -1}
		queue := []int{s}
		for len(queue) > 0 {
			u := queue[0]
			queue = queue[1:]
			for v := range tp.keys {
				if _, seen := pred[v]; !seen && tp.twoWay(u, v) && !removed[[2]int{min(u, v), max(u, v)}] {
					pred[v] = u
					queue = append(queue, v)
				}
			}
		}
		if _, ok := pred[t]; !ok {
			break
		}
		var p []int
		for x := t; x >= 0; x = pred[x] {
			p = append([]int{x}, p...)
			if pred[x] >= 0 {
				removed[[2]int{min(x, pred[x]), max(x, pred[x])}] = true
			}
		}
		out = append(out, p)
	}
	return out
}

func TestTrap(t *testing.T) {
	tp := trap(t)
	if got := greedyDisjoint(tp, tp.i("s"), tp.i("t"), 2); len(got) != 1 {
		t.Fatalf("greedy removal found %d paths: not a trap", len(got))
	}
	g := tp.graph("s")
	p, _ := g.ShortestByHops(tp.k("t"))
	wantNames(t, tp, p, "s", "a", "b", "t")
	for _, byLatency := range []bool{false, true} {
		ps, err := g.Disjoint(tp.k("t"), 2, byLatency)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) != 2 {
			t.Fatalf("byLatency=%v: %d paths, want 2", byLatency, len(ps))
		}
		wantNames(t, tp, ps[0], "s", "a", "d", "e", "t")
		wantNames(t, tp, ps[1], "s", "c", "f", "b", "t")
		if _, ok := shareLink(ps); ok {
			t.Error("shared link")
		}
		// With k=1 it is the shortest path.
		ps, _ = g.Disjoint(tp.k("t"), 1, byLatency)
		wantNames(t, tp, ps[0], "s", "a", "b", "t")
	}
}

func TestLatencyVersusHops(t *testing.T) {
	tp := newTopo(t, "s", "a", "b", "c", "t")
	tp.link("s", "a", 100*time.Millisecond).link("a", "t", 100*time.Millisecond)
	// s-b-c-t: three links whose ends disagree on the RTT; the weight is their mean
	// halved: (2+4)/4 = 1.5 ms, (1+1)/4 = 0.5 ms, (3+5)/4 = 2 ms.
	tp.oneWay("s", "b", 2*time.Millisecond).oneWay("b", "s", 4*time.Millisecond)
	tp.link("b", "c", time.Millisecond)
	tp.oneWay("c", "t", 3*time.Millisecond).oneWay("t", "c", 5*time.Millisecond)
	g := tp.graph("s")
	p, err := g.ShortestByHops(tp.k("t"))
	if err != nil {
		t.Fatal(err)
	}
	wantNames(t, tp, p, "s", "a", "t")
	p, lat, err := g.ShortestByLatency(tp.k("t"))
	if err != nil {
		t.Fatal(err)
	}
	wantNames(t, tp, p, "s", "b", "c", "t")
	if lat != 4*time.Millisecond {
		t.Errorf("latency %v, want 4ms", lat)
	}
	// Tiny RTTs weigh at least 1 µs per link.
	tp2 := newTopo(t, "s", "a", "b").link("s", "a", 0).link("a", "b", time.Microsecond)
	_, lat, _ = tp2.graph("s").ShortestByLatency(tp2.k("b"))
	if lat != 2*time.Microsecond {
		t.Errorf("latency over near-zero links %v, want 2µs", lat)
	}
}

func TestNearest(t *testing.T) {
	// s-a-g1 is 2 hops of 50 ms; s-b-c-g2 is 3 hops of 1 ms.
	tp := newTopo(t, "s", "a", "b", "c", "g1", "g2", "far")
	tp.link("s", "a", 50*time.Millisecond).link("a", "g1", 50*time.Millisecond)
	tp.link("s", "b", time.Millisecond).link("b", "c", time.Millisecond).link("c", "g2", time.Millisecond)
	tp.prop("s", "gateway").prop("g1", "gateway", "relay").prop("g2", "gateway").prop("a", "master")
	tp.prop("far", "island") // not linked
	g := tp.graph("s")
	k, p, err := g.Nearest("gateway", false)
	if err != nil || k != tp.k("g1") {
		t.Fatalf("by hops: %v %v", tp.pathNames(Path{k}), err)
	}
	wantNames(t, tp, p, "s", "a", "g1")
	k, p, err = g.Nearest("gateway", true)
	if err != nil || k != tp.k("g2") {
		t.Fatalf("by latency: %v %v", tp.pathNames(Path{k}), err)
	}
	wantNames(t, tp, p, "s", "b", "c", "g2")
	if k, _, _ := g.Nearest("master", true); k != tp.k("a") {
		t.Error("nearest master is not a")
	}
	for _, prop := range []string{"island", "nothing"} {
		if _, _, err := g.Nearest(prop, false); !errors.Is(err, ErrNoRoute) {
			t.Errorf("Nearest(%q): %v", prop, err)
		}
	}
	// Ties go to the lower key: make g2 2 hops away too.
	tp.link("b", "g2", time.Millisecond)
	g = tp.graph("s")
	if k, _, _ := g.Nearest("gateway", false); k != tp.k("g1") {
		t.Error("tie not broken by key")
	}
}

func TestAvoiding(t *testing.T) {
	tp := grid(t)
	g := tp.graph("n00")
	p, err := g.Avoiding(tp.k("n22"), []Key{tp.k("n01")}, false)
	if err != nil {
		t.Fatal(err)
	}
	wantNames(t, tp, p, "n00", "n10", "n11", "n12", "n22")
	p, err = g.Avoiding(tp.k("n22"), []Key{tp.k("n01"), tp.k("n11")}, true)
	if err != nil {
		t.Fatal(err)
	}
	wantNames(t, tp, p, "n00", "n10", "n20", "n21", "n22")
	// Self, the destination and unknown keys in avoid are ignored.
	p, err = g.Avoiding(tp.k("n02"), []Key{tp.k("n00"), tp.k("n02"), pubKey(testKey(500))}, false)
	if err != nil {
		t.Fatal(err)
	}
	wantNames(t, tp, p, "n00", "n01", "n02")
	if _, err := g.Avoiding(tp.k("n22"), []Key{tp.k("n01"), tp.k("n10")}, false); !errors.Is(err, ErrNoRoute) {
		t.Errorf("all ways blocked: %v", err)
	}
	// A long way round when the middle row is down.
	p, err = g.Avoiding(tp.k("n20"), []Key{tp.k("n10"), tp.k("n11")}, false)
	if err != nil {
		t.Fatal(err)
	}
	wantNames(t, tp, p, "n00", "n01", "n02", "n12", "n22", "n21", "n20")
}

func TestOneWayNotUsable(t *testing.T) {
	tp := newTopo(t, "s", "a", "t").chain("s", "a").oneWay("a", "t", time.Millisecond)
	tp.prop("t", "gateway")
	g := tp.graph("s")
	if _, err := g.ShortestByHops(tp.k("t")); !errors.Is(err, ErrNoRoute) {
		t.Errorf("a lists t, t does not list a: %v", err)
	}
	if _, _, err := g.Nearest("gateway", false); !errors.Is(err, ErrNoRoute) {
		t.Errorf("Nearest over a one-way listing: %v", err)
	}
	// The other way round: t lists a, a does not list t.
	tp2 := newTopo(t, "s", "a", "t").chain("s", "a").oneWay("t", "a", time.Millisecond)
	if _, err := tp2.graph("s").ShortestByHops(tp2.k("t")); !errors.Is(err, ErrNoRoute) {
		t.Errorf("t lists a, a does not list t: %v", err)
	}
	// Self listing a neighbour that does not list it back.
	tp3 := newTopo(t, "s", "t").oneWay("s", "t", time.Millisecond)
	if _, err := tp3.graph("s").ShortestByHops(tp3.k("t")); !errors.Is(err, ErrNoRoute) {
		t.Errorf("s lists t only: %v", err)
	}
	// Both listing: usable.
	tp.oneWay("t", "a", time.Millisecond)
	p, err := tp.graph("s").ShortestByHops(tp.k("t"))
	if err != nil {
		t.Fatal(err)
	}
	wantNames(t, tp, p, "s", "a", "t")
}

// randomTopo makes a random mesh of n nodes: two-way links with probability pLink,
// one-way listings with probability pOneWay, random RTTs.
func randomTopo(t *testing.T, r *rand.Rand, n int, pLink, pOneWay float64) *topo {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("n%02d", i)
	}
	tp := newTopo(t, names...)
	tp.signed = false
	for u := range n {
		for v := u + 1; v < n; v++ {
			rtt := func() time.Duration { return time.Duration(1+r.IntN(50)) * time.Millisecond }
			switch x := r.Float64(); {
			case x < pLink:
				tp.oneWay(names[u], names[v], rtt()).oneWay(names[v], names[u], rtt())
			case x < pLink+pOneWay:
				if r.IntN(2) == 0 {
					tp.oneWay(names[u], names[v], rtt())
				} else {
					tp.oneWay(names[v], names[u], rtt())
				}
			}
		}
	}
	return tp
}

// bfsHops is the brute-force reference: hop counts from s over two-way links (-1
// when unreachable).
func bfsHops(tp *topo, s int) []int {
	d := make([]int, len(tp.keys))
	for i := range d {
		d[i] = -1
	}
	d[s] = 0
	q := []int{s}
	for len(q) > 0 {
		u := q[0]
		q = q[1:]
		for v := range tp.keys {
			if d[v] < 0 && tp.twoWay(u, v) {
				d[v] = d[u] + 1
				q = append(q, v)
			}
		}
	}
	return d
}

// weight is the latency weight of the link u-v in the reference computations.
func (tp *topo) weight(u, v int, byLatency bool) int64 {
	if !byLatency {
		return 1
	}
	a, b := tp.lists[[2]int{u, v}], tp.lists[[2]int{v, u}]
	return max(int64(a/time.Microsecond+b/time.Microsecond)*int64(time.Microsecond)/4, int64(time.Microsecond))
}

// floyd is the reference all-pairs latency distance (-1 when unreachable).
func floyd(tp *topo) [][]int64 {
	n := len(tp.keys)
	d := make([][]int64, n)
	for i := range d {
		d[i] = make([]int64, n)
		for j := range d[i] {
			switch {
			case i == j:
			case tp.twoWay(i, j):
				d[i][j] = tp.weight(i, j, true)
			default:
				d[i][j] = -1
			}
		}
	}
	for k := range n {
		for i := range n {
			for j := range n {
				if d[i][k] >= 0 && d[k][j] >= 0 && (d[i][j] < 0 || d[i][k]+d[k][j] < d[i][j]) {
					d[i][j] = d[i][k] + d[k][j]
				}
			}
		}
	}
	return d
}

// maxFlow is the reference number of link-disjoint paths (unit capacities on an
// undirected graph, augmenting paths by DFS).
func maxFlow(tp *topo, s, t int) int {
	n := len(tp.keys)
	capa := make([][]int, n)
	for i := range capa {
		capa[i] = make([]int, n)
		for j := range capa[i] {
			if i != j && tp.twoWay(i, j) {
				capa[i][j] = 1
			}
		}
	}
	flow := 0
	for {
		seen := make([]bool, n)
		var dfs func(u int) bool
		dfs = func(u int) bool {
			if u == t {
				return true
			}
			seen[u] = true
			for v := range n {
				if !seen[v] && capa[u][v] > 0 && dfs(v) {
					capa[u][v]--
					capa[v][u]++
					return true
				}
			}
			return false
		}
		if !dfs(s) {
			return flow
		}
		flow++
	}
}

// bestPair is the reference least total weight of two link-disjoint simple paths
// from s to t, by enumerating all simple paths (-1 when there is no such pair).
func bestPair(tp *topo, s, t int, byLatency bool) int64 {
	type sp struct {
		edges map[[2]int]bool
		cost  int64
	}
	var all []sp
	var walk func(u int, visited []bool, edges [][2]int, cost int64)
	walk = func(u int, visited []bool, edges [][2]int, cost int64) {
		if u == t {
			m := map[[2]int]bool{}
			for _, e := range edges {
				m[e] = true
			}
			all = append(all, sp{m, cost})
			return
		}
		for v := range tp.keys {
			if !visited[v] && tp.twoWay(u, v) {
				visited[v] = true
				walk(v, visited, append(edges, [2]int{min(u, v), max(u, v)}), cost+tp.weight(u, v, byLatency))
				visited[v] = false
			}
		}
	}
	visited := make([]bool, len(tp.keys))
	visited[s] = true
	walk(s, visited, nil, 0)
	best := int64(-1)
	for i := range all {
		for j := i + 1; j < len(all); j++ {
			c := all[i].cost + all[j].cost
			if best >= 0 && c >= best {
				continue
			}
			disjoint := true
			for e := range all[i].edges {
				if all[j].edges[e] {
					disjoint = false
					break
				}
			}
			if disjoint {
				best = c
			}
		}
	}
	return best
}

func (tp *topo) cost(p Path, byLatency bool) int64 {
	var c int64
	for i := 1; i < len(p); i++ {
		c += tp.weight(slices.Index(tp.keys, p[i-1]), slices.Index(tp.keys, p[i]), byLatency)
	}
	return c
}

// TestRandomGraphs checks the searches against brute force on random meshes.
func TestRandomGraphs(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for iter := range 300 {
		n := 2 + r.IntN(24)
		small := iter%3 == 0
		if small {
			n = 2 + r.IntN(7)
		}
		tp := randomTopo(t, r, n, 0.1+r.Float64()*0.4, 0.1)
		s := r.IntN(n)
		g := tp.graph(tp.names[s])
		hops := bfsHops(tp, s)
		lat := floyd(tp)[s]
		for d := range n {
			if d == s {
				continue
			}
			p, err := g.ShortestByHops(tp.keys[d])
			if hops[d] < 0 {
				if !errors.Is(err, ErrNoRoute) {
					t.Fatalf("iter %d: %d unreachable but ShortestByHops = %v, %v", iter, d, tp.pathNames(p), err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("iter %d: ShortestByHops to %d: %v", iter, d, err)
			}
			tp.checkPath(p, s, d)
			if len(p)-1 != hops[d] {
				t.Fatalf("iter %d: %d hops to %d, BFS says %d", iter, len(p)-1, d, hops[d])
			}
			pl, l, err := g.ShortestByLatency(tp.keys[d])
			if err != nil {
				t.Fatal(err)
			}
			tp.checkPath(pl, s, d)
			if int64(l) != lat[d] || tp.cost(pl, true) != lat[d] {
				t.Fatalf("iter %d: latency %v (path %d) to %d, Floyd says %d", iter, l, tp.cost(pl, true), d, lat[d])
			}

			k := 1 + r.IntN(4)
			byLatency := r.IntN(2) == 0
			ps, err := g.Disjoint(tp.keys[d], k, byLatency)
			if err != nil {
				t.Fatalf("iter %d: Disjoint: %v", iter, err)
			}
			if want := min(k, maxFlow(tp, s, d)); len(ps) != want {
				t.Fatalf("iter %d: %d disjoint paths, want %d", iter, len(ps), want)
			}
			for i, p := range ps {
				tp.checkPath(p, s, d)
				if i > 0 && tp.cost(p, byLatency) < tp.cost(ps[i-1], byLatency) {
					t.Fatalf("iter %d: paths not best first", iter)
				}
			}
			if e, ok := shareLink(ps); ok {
				t.Fatalf("iter %d: paths share link %v", iter, e)
			}
			if k == 1 {
				want := p
				if byLatency {
					want = pl
				}
				if !reflect.DeepEqual(ps[0], want) {
					t.Fatalf("iter %d: Disjoint k=1 %v, shortest %v", iter, tp.pathNames(ps[0]), tp.pathNames(want))
				}
			}
			if small && len(ps) >= 2 {
				ps2, _ := g.Disjoint(tp.keys[d], 2, byLatency)
				got := tp.cost(ps2[0], byLatency) + tp.cost(ps2[1], byLatency)
				if want := bestPair(tp, s, d, byLatency); got != want {
					t.Fatalf("iter %d: disjoint pair costs %d, brute force %d", iter, got, want)
				}
			}
		}
	}
}

// benchGraph returns a graph of n nodes, each linked to its successor on a ring and
// to 3 random others, with signed announcements, as seen by node 0.
func benchGraph(b *testing.B, n int) (*Graph, []Key) {
	r := rand.New(rand.NewPCG(9, 10))
	privs := make([]*secp256k1.PrivateKey, n)
	keys := make([]Key, n)
	for i := range n {
		privs[i] = testKey(10000 + i)
		keys[i] = pubKey(privs[i])
	}
	adj := make([]map[int]time.Duration, n)
	for i := range adj {
		adj[i] = map[int]time.Duration{}
	}
	add := func(u, v int) {
		if u == v {
			return
		}
		rtt := time.Duration(1000+r.IntN(100000)) * time.Microsecond
		adj[u][v], adj[v][u] = rtt, rtt
	}
	for i := range n {
		add(i, (i+1)%n)
		for range 3 {
			add(i, r.IntN(n))
		}
	}
	g := NewGraph(keys[0])
	for i := range n {
		a := &Announcement{Origin: keys[i], Seq: 1}
		for j, rtt := range adj[i] {
			a.Neighbours = append(a.Neighbours, Neighbour{Key: keys[j], RTT: rtt})
		}
		if err := a.Sign(privs[i]); err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			g.SetSelf(a, t0)
		} else if _, err := g.Update(a, t0); err != nil {
			b.Fatal(err)
		}
	}
	return g, keys
}

func BenchmarkShortestByLatency(b *testing.B) {
	g, keys := benchGraph(b, 1000)
	g.current() // build the adjacency once, as between announcements
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, _, err := g.ShortestByLatency(keys[1+i%(len(keys)-1)]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuild measures rebuilding the adjacency after a change (1000 nodes).
func BenchmarkBuild(b *testing.B) {
	g, _ := benchGraph(b, 1000)
	b.ReportAllocs()
	for b.Loop() {
		g.mu.Lock()
		g.view = g.build()
		g.mu.Unlock()
	}
}

func BenchmarkDisjoint3(b *testing.B) {
	g, keys := benchGraph(b, 1000)
	g.current()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, err := g.Disjoint(keys[1+i%(len(keys)-1)], 3, true); err != nil {
			b.Fatal(err)
		}
	}
}
