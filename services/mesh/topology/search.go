package topology

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// ErrNoRoute is wrapped by the errors of the route searches when no path exists: the
// destination is unknown, unreachable over two-way links, or self.
var ErrNoRoute = errors.New("topology: no route")

// Path is a route through the mesh: self first, destination last, each consecutive
// pair joined by a usable two-way link. A path found by a search has no node twice.
type Path []Key

// String returns the path as its keys' first 4 bytes in hex joined by "→".
func (p Path) String() string {
	b := make([]byte, 0, len(p)*11)
	for i, k := range p {
		if i > 0 {
			b = append(b, "→"...)
		}
		b = fmt.Appendf(b, "%x", k[:4])
	}
	return string(b)
}

const unreached = math.MaxInt64

// ShortestByLatency returns the path from self to dst with the least total latency
// weight (see the package documentation) and that total. Among equally short paths,
// every node's predecessor is the candidate with the lowest key bytes. The error
// wraps ErrNoRoute when there is no path.
func (g *Graph) ShortestByLatency(dst Key) (Path, time.Duration, error) {
	v := g.current()
	t, err := v.target(dst)
	if err != nil {
		return nil, 0, err
	}
	dist, pred := v.dijkstra(v.self, t, true, nil, nil)
	if dist[t] == unreached {
		return nil, 0, noRoute(dst)
	}
	return v.path(pred, t), time.Duration(dist[t]), nil
}

// ShortestByHops returns a path from self to dst with the fewest links, ties broken
// as in ShortestByLatency. The error wraps ErrNoRoute when there is no path.
func (g *Graph) ShortestByHops(dst Key) (Path, error) {
	v := g.current()
	t, err := v.target(dst)
	if err != nil {
		return nil, err
	}
	dist, pred := v.dijkstra(v.self, t, false, nil, nil)
	if dist[t] == unreached {
		return nil, noRoute(dst)
	}
	return v.path(pred, t), nil
}

// Avoiding returns the shortest path from self to dst (by latency or by hops, ties
// broken as in ShortestByLatency) whose intermediate nodes include none of avoid:
// the way around a hop that failed. Self and dst in avoid are ignored, as are keys
// not in the graph. The error wraps ErrNoRoute when there is no such path.
func (g *Graph) Avoiding(dst Key, avoid []Key, byLatency bool) (Path, error) {
	return g.AvoidingFirst(dst, avoid, nil, byLatency)
}

// AvoidingFirst is Avoiding whose path also does not start with a link from self
// to any of notFirst (dst included): the way to a neighbour, or past it, that
// does not cross this node's own link to it. Store and forward asks it for a
// sealed bundle whose best next hop is a radio link, where it may not go.
func (g *Graph) AvoidingFirst(dst Key, avoid, notFirst []Key, byLatency bool) (Path, error) {
	v := g.current()
	t, err := v.target(dst)
	if err != nil {
		return nil, err
	}
	banned := make([]bool, len(v.keys))
	for _, k := range avoid {
		if i, ok := v.index[k]; ok && i != v.self && i != t {
			banned[i] = true
		}
	}
	var first []bool
	if len(notFirst) > 0 {
		first = make([]bool, len(v.keys))
		for _, k := range notFirst {
			if i, ok := v.index[k]; ok {
				first[i] = true
			}
		}
	}
	dist, pred := v.dijkstra(v.self, t, byLatency, banned, first)
	if dist[t] == unreached {
		return nil, fmt.Errorf("%w to %x… avoiding %d nodes", ErrNoRoute, dst[:6], len(avoid))
	}
	return v.path(pred, t), nil
}

// Nearest returns the node other than self nearest to self (by latency or by hops)
// whose announcement lists property, and the path to it. Equally near nodes are
// ordered by key bytes. The error wraps ErrNoRoute when no reachable node has the
// property.
func (g *Graph) Nearest(property string, byLatency bool) (Key, Path, error) {
	v := g.current()
	dist, pred := v.dijkstra(v.self, -1, byLatency, nil, nil)
	best := int32(-1)
	for i := range v.keys {
		n := int32(i)
		if n == v.self || dist[n] == unreached || !slices.Contains(v.props[n], property) {
			continue
		}
		if best < 0 || dist[n] < dist[best] {
			best = n
		}
	}
	if best < 0 {
		return Key{}, nil, fmt.Errorf("%w: no reachable node has property %q", ErrNoRoute, property)
	}
	return v.keys[best], v.path(pred, best), nil
}

// Disjoint returns up to k link-disjoint paths from self to dst, best first: no two
// of them use the same link in either direction.
//
// It uses Bhandari's generalisation of Suurballe's algorithm, that is successive
// shortest paths on the residual graph of a unit-capacity min-cost flow (Dijkstra with
// Johnson potentials): an augmenting path may run backwards over a link an earlier
// path took, cancelling it. So it finds as many disjoint paths as exist, up to k
// (max flow), with the least total weight (latency when byLatency, else hops) among
// all sets of that many, including where removing the edges of the shortest path
// first would leave no second path (the "trap" topology). The flow is then split
// into simple paths, sorted by weight, then hops, then key bytes. With k = 1 the
// result is the shortest path. As a consequence, for k >= 2 the best returned path
// can be longer than the shortest path when the shortest path is in no optimal set.
//
// The error wraps ErrNoRoute when there is no path, and is returned without wrapping
// it when k < 1.
func (g *Graph) Disjoint(dst Key, k int, byLatency bool) ([]Path, error) {
	if k < 1 {
		return nil, fmt.Errorf("topology: Disjoint: k = %d, want at least 1", k)
	}
	v := g.current()
	t, err := v.target(dst)
	if err != nil {
		return nil, err
	}
	paths := v.disjoint(v.self, t, k, byLatency)
	if len(paths) == 0 {
		return nil, noRoute(dst)
	}
	return paths, nil
}

func noRoute(dst Key) error { return fmt.Errorf("%w to %x…", ErrNoRoute, dst[:6]) }

// target returns dst's index, or an error when it is self or not in the graph.
func (v *view) target(dst Key) (int32, error) {
	t, ok := v.index[dst]
	if !ok {
		return 0, fmt.Errorf("%w to %x…: not in the graph", ErrNoRoute, dst[:6])
	}
	if t == v.self {
		return 0, fmt.Errorf("%w to %x…: that is this node", ErrNoRoute, dst[:6])
	}
	return t, nil
}

// path walks pred back from t to the source.
func (v *view) path(pred []int32, t int32) Path {
	n := 0
	for x := t; x >= 0; x = pred[x] {
		n++
	}
	p := make(Path, n)
	for x := t; x >= 0; x = pred[x] {
		n--
		p[n] = v.keys[x]
	}
	return p
}

func (a arc) weight(byLatency bool) int64 {
	if byLatency {
		return a.lat
	}
	return 1
}

// dijkstra computes distances from s (stopping once t is settled, unless t < 0) and
// predecessors (-1 for s and unreached nodes). Banned nodes are never entered, and
// nodes marked in notFirst never straight from s. All
// weights are positive, so every node u with dist[u]+w(u,x) == dist[x] is settled
// before x; choosing the lowest such u makes the paths independent of the order of
// the search.
func (v *view) dijkstra(s, t int32, byLatency bool, banned, notFirst []bool) (dist []int64, pred []int32) {
	n := len(v.keys)
	dist = make([]int64, n)
	pred = make([]int32, n)
	for i := range dist {
		dist[i] = unreached
		pred[i] = -1
	}
	done := make([]bool, n)
	var h nodeHeap
	dist[s] = 0
	h.push(item{0, s})
	for len(h) > 0 {
		it := h.pop()
		u := it.n
		if done[u] || it.d != dist[u] {
			continue
		}
		done[u] = true
		if u == t {
			break
		}
		for _, a := range v.adj[u] {
			x := a.to
			if done[x] || (banned != nil && banned[x]) || (u == s && notFirst != nil && notFirst[x]) {
				continue
			}
			nd := dist[u] + a.weight(byLatency)
			if nd < dist[x] {
				dist[x] = nd
				pred[x] = u
				h.push(item{nd, x})
			} else if nd == dist[x] && u < pred[x] {
				pred[x] = u
			}
		}
	}
	return dist, pred
}

// disjoint is the successive-shortest-path min-cost flow behind Graph.Disjoint.
func (v *view) disjoint(s, t int32, k int, byLatency bool) []Path {
	n := len(v.keys)
	// flow[e] is +1 when a path crosses edge e from ea[e] to eb[e], -1 the other way.
	flow := make([]int8, len(v.ea))
	pot := make([]int64, n) // Johnson potentials: reduced costs stay >= 0
	dist := make([]int64, n)
	pred := make([]int32, n) // arc index into adj[pred node], via predArc
	predNode := make([]int32, n)
	done := make([]bool, n)
	units := 0
	for units < k {
		for i := range dist {
			dist[i] = unreached
			predNode[i] = -1
			pred[i] = -1
			done[i] = false
		}
		var h nodeHeap
		dist[s] = 0
		h.push(item{0, s})
		for len(h) > 0 {
			it := h.pop()
			u := it.n
			if done[u] || it.d != dist[u] {
				continue
			}
			done[u] = true
			for ai, a := range v.adj[u] {
				x := a.to
				if done[x] {
					continue
				}
				dir := int8(1)
				if v.ea[a.edge] != u {
					dir = -1
				}
				var c int64
				switch flow[a.edge] {
				case 0:
					c = a.weight(byLatency)
				case -dir:
					c = -a.weight(byLatency) // cancel a path's crossing the other way
				default:
					continue // already used in this direction
				}
				nd := dist[u] + c + pot[u] - pot[x]
				if nd < dist[x] || (nd == dist[x] && u < predNode[x]) {
					dist[x] = nd
					predNode[x] = u
					pred[x] = int32(ai)
					h.push(item{nd, x})
				}
			}
		}
		if dist[t] == unreached {
			break
		}
		for x := t; x != s; x = predNode[x] {
			u := predNode[x]
			a := v.adj[u][pred[x]]
			if v.ea[a.edge] == u {
				flow[a.edge]++
			} else {
				flow[a.edge]--
			}
		}
		for i := range pot {
			if dist[i] != unreached {
				pot[i] += dist[i]
			}
		}
		units++
	}
	if units == 0 {
		return nil
	}

	// Split the flow into paths: from s, follow edges carrying flow away from the
	// current node, lowest neighbour first, using each once.
	type scored struct {
		p    []int32
		cost int64
	}
	var out []scored
	for range units {
		p := []int32{s}
		for u := s; u != t; {
			next := int32(-1)
			for _, a := range v.adj[u] {
				dir := int8(1)
				if v.ea[a.edge] != u {
					dir = -1
				}
				if flow[a.edge] == dir {
					flow[a.edge] = 0
					next = a.to
					break
				}
			}
			if next < 0 { // cannot happen: flow is conserved
				break
			}
			if i := slices.Index(p, next); i >= 0 {
				p = p[:i+1] // drop a loop (none with positive weights)
			} else {
				p = append(p, next)
			}
			u = next
		}
		if p[len(p)-1] != t {
			continue
		}
		var cost int64
		for i := 1; i < len(p); i++ {
			for _, a := range v.adj[p[i-1]] {
				if a.to == p[i] {
					cost += a.weight(byLatency)
					break
				}
			}
		}
		out = append(out, scored{p, cost})
	}
	slices.SortFunc(out, func(a, b scored) int {
		if c := cmp.Compare(a.cost, b.cost); c != 0 {
			return c
		}
		if c := cmp.Compare(len(a.p), len(b.p)); c != 0 {
			return c
		}
		return slices.Compare(a.p, b.p)
	})
	paths := make([]Path, len(out))
	for i, sp := range out {
		paths[i] = make(Path, len(sp.p))
		for j, x := range sp.p {
			paths[i][j] = v.keys[x]
		}
	}
	return paths
}

// item is a heap entry: a node and its tentative distance.
type item struct {
	d int64
	n int32
}

// nodeHeap is a binary min-heap of items ordered by distance, then node index.
type nodeHeap []item

func (h nodeHeap) less(i, j int) bool {
	return h[i].d < h[j].d || h[i].d == h[j].d && h[i].n < h[j].n
}

func (h *nodeHeap) push(it item) {
	*h = append(*h, it)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if !s.less(i, p) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *nodeHeap) pop() item {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(s) && s.less(l, m) {
			m = l
		}
		if r < len(s) && s.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}
