package topology

import (
	"bytes"
	"errors"
	"slices"
	"sync"
	"time"
)

// MaxNodes caps the origins a Graph holds, self included. Announcements are signed
// by their origin, but anyone with the network key can make keys at will, so the
// graph is bounded like every map keyed by outside input: a new origin beyond the
// cap is refused (ErrGraphFull) until Expire makes room. 16,384 is ~50 times the
// largest fleet tested (300 nodes).
const MaxNodes = 1 << 14

// ErrGraphFull is returned by Update for a new origin when MaxNodes are held.
var ErrGraphFull = errors.New("topology: graph full")

// Graph is one node's view of the mesh: the newest verified announcement of every
// origin it has heard of, and its own. It is safe for concurrent use. Route searches
// run on an immutable adjacency built from the announcements on first use after a
// change, so searches between changes cost only the search itself.
type Graph struct {
	self Key

	mu      sync.Mutex
	nodes   map[Key]*entry
	selfSeq uint64 // highest Seq seen in an announcement about self
	view    *view  // nil when the announcements changed since it was built
}

type entry struct {
	a  *Announcement
	at time.Time // when it was stored
}

// NewGraph returns an empty graph for the node whose key is self.
func NewGraph(self Key) *Graph {
	return &Graph{self: self, nodes: make(map[Key]*entry)}
}

// Self returns the key of the node the graph belongs to.
func (g *Graph) Self() Key { return g.self }

// Update stores a copy of a when it is valid, signed by a.Origin (Announcement.Verify)
// and has a higher Seq than the announcement held for a.Origin, stamped with now for
// Expire. It returns true when a was stored: the caller then floods it to its other
// neighbours.
//
// It returns false and no error when a is not newer than the held one (an older or
// equal Seq, the usual echo of flooding); such announcements are refused before the
// signature is checked, so duplicates cost little. An announcement whose origin is
// self is never stored (SetSelf sets that one): if its signature is good, its Seq is
// recorded for HighestSeenSelfSeq and Update returns false and no error. Errors wrap
// ErrMalformed or ErrBadSignature (from Verify), or are ErrGraphFull for a new
// origin when MaxNodes are held; nothing is stored then.
func (g *Graph) Update(a *Announcement, now time.Time) (stored bool, err error) {
	if a == nil {
		return false, errors.New("topology: Update: nil announcement")
	}
	g.mu.Lock()
	if a.Origin == g.self {
		if a.Seq <= g.selfSeq {
			g.mu.Unlock()
			return false, nil
		}
	} else if e := g.nodes[a.Origin]; e != nil && e.a.Seq >= a.Seq {
		g.mu.Unlock()
		return false, nil
	} else if e == nil && len(g.nodes) >= MaxNodes {
		g.mu.Unlock()
		return false, ErrGraphFull
	}
	g.mu.Unlock()

	if err := a.Verify(); err != nil {
		return false, err
	}
	c := a.clone()

	g.mu.Lock()
	defer g.mu.Unlock()
	if c.Origin == g.self {
		g.selfSeq = max(g.selfSeq, c.Seq)
		return false, nil
	}
	if e := g.nodes[c.Origin]; e != nil && e.a.Seq >= c.Seq { // raced with another Update
		return false, nil
	} else if e == nil && len(g.nodes) >= MaxNodes {
		return false, ErrGraphFull
	}
	g.nodes[c.Origin] = &entry{a: c, at: now}
	g.view = nil
	return true, nil
}

// HighestSeenSelfSeq returns the highest Seq of any announcement about self the graph
// has seen: validly signed ones received through Update and those given to SetSelf;
// 0 when there was none. After a restart the router announces with a Seq above it
// (see "Sequence restart" in the package documentation).
func (g *Graph) HighestSeenSelfSeq() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.selfSeq
}

// SetSelf stores a copy of a as the node's own announcement, replacing the previous
// one whatever its Seq, without checking the signature; now stamps it as in Update.
// It does nothing when a is nil or a.Origin is not the graph's self key. Self's
// announcement never expires.
func (g *Graph) SetSelf(a *Announcement, now time.Time) {
	if a == nil || a.Origin != g.self {
		return
	}
	c := a.clone()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.nodes[g.self] = &entry{a: c, at: now}
	g.selfSeq = max(g.selfSeq, c.Seq)
	g.view = nil
}

// Expire drops the announcements of every origin other than self last stored more
// than maxAge before now, and returns those origins sorted by key bytes (nil when
// none). A later announcement of a dropped origin is accepted whatever its Seq, so
// a stale copy still held by a neighbour that has not expired it yet can bring the
// origin back for another maxAge; no tombstone is kept on purpose, since one would
// also refuse a restarted origin's new, lower-numbered announcements.
func (g *Graph) Expire(now time.Time, maxAge time.Duration) []Key {
	g.mu.Lock()
	defer g.mu.Unlock()
	var dropped []Key
	for k, e := range g.nodes {
		if k != g.self && now.Sub(e.at) > maxAge {
			dropped = append(dropped, k)
			delete(g.nodes, k)
		}
	}
	if len(dropped) > 0 {
		g.view = nil
		slices.SortFunc(dropped, compareKeys)
	}
	return dropped
}

// All returns copies of every announcement held, self's included, sorted by origin
// key bytes: what to send a new neighbour so that it learns the whole graph.
func (g *Graph) All() []*Announcement {
	g.mu.Lock()
	out := make([]*Announcement, 0, len(g.nodes))
	for _, e := range g.nodes {
		out = append(out, e.a.clone())
	}
	g.mu.Unlock()
	slices.SortFunc(out, func(a, b *Announcement) int { return compareKeys(a.Origin, b.Origin) })
	return out
}

// Get returns a copy of the announcement held for k (self's set by SetSelf included)
// and whether there is one.
func (g *Graph) Get(k Key) (*Announcement, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	e := g.nodes[k]
	if e == nil {
		return nil, false
	}
	return e.a.clone(), true
}

// HeldTime is the wall time one origin announced (Announcement.Time), as a Graph
// holds it.
type HeldTime struct {
	// Origin is the announcing node.
	Origin Key
	// Seq is the held announcement's Seq: a higher one was signed later.
	Seq uint64
	// Time is the origin's wall time when it signed, in Unix milliseconds; never 0.
	Time int64
	// Stored is when the graph stored the announcement (the now given to Update),
	// so the receiver can add the time that passed since.
	Stored time.Time
}

// Times returns the announced wall time of every origin other than self whose held
// announcement carries one, sorted by key bytes: what a node without a real-time
// clock learns the date from.
func (g *Graph) Times() []HeldTime {
	g.mu.Lock()
	var out []HeldTime
	for k, e := range g.nodes {
		if k != g.self && e.a.Time > 0 {
			out = append(out, HeldTime{Origin: k, Seq: e.a.Seq, Time: e.a.Time, Stored: e.at})
		}
	}
	g.mu.Unlock()
	slices.SortFunc(out, func(a, b HeldTime) int { return compareKeys(a.Origin, b.Origin) })
	return out
}

// Nodes returns the graph's nodes sorted by key bytes: self (always, even before
// SetSelf) and every origin whose announcement is held. Nodes that are only listed
// as someone's neighbour are not included.
func (g *Graph) Nodes() []Key {
	g.mu.Lock()
	out := make([]Key, 0, len(g.nodes)+1)
	for k := range g.nodes {
		out = append(out, k)
	}
	if g.nodes[g.self] == nil {
		out = append(out, g.self)
	}
	g.mu.Unlock()
	slices.SortFunc(out, compareKeys)
	return out
}

func compareKeys(a, b Key) int { return bytes.Compare(a[:], b[:]) }

// view is the adjacency built from the announcements: nodes are numbered in key
// order, so comparing indices compares keys.
type view struct {
	keys  []Key
	index map[Key]int32
	self  int32
	adj   [][]arc // sorted by arc.to
	props [][]string
	// edges, one per two-way link, endpoints a < b.
	ea, eb []int32
}

// arc is one direction of a usable two-way link.
type arc struct {
	to   int32
	edge int32
	lat  int64 // latency weight in nanoseconds, >= 1 µs
}

// current returns the view for the announcements now held, building it if needed.
func (g *Graph) current() *view {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.view == nil {
		g.view = g.build()
	}
	return g.view
}

// build makes the view; g.mu is held.
func (g *Graph) build() *view {
	v := &view{index: make(map[Key]int32, len(g.nodes)+1)}
	v.keys = make([]Key, 0, len(g.nodes)+1)
	for k := range g.nodes {
		v.keys = append(v.keys, k)
	}
	if g.nodes[g.self] == nil {
		v.keys = append(v.keys, g.self)
	}
	slices.SortFunc(v.keys, compareKeys)
	for i, k := range v.keys {
		v.index[k] = int32(i)
	}
	v.self = v.index[g.self]
	v.adj = make([][]arc, len(v.keys))
	v.props = make([][]string, len(v.keys))

	// listed[(u,v)] is u's reported RTT to v in µs.
	type pair struct{ u, v int32 }
	listed := make(map[pair]uint32)
	for i, k := range v.keys {
		e := g.nodes[k]
		if e == nil {
			continue
		}
		v.props[i] = e.a.Properties
		for _, n := range e.a.Neighbours {
			if j, ok := v.index[n.Key]; ok && j != int32(i) {
				listed[pair{int32(i), j}] = rttMicros(n.RTT)
			}
		}
	}
	for i, k := range v.keys {
		e := g.nodes[k]
		if e == nil {
			continue
		}
		u := int32(i)
		for _, n := range e.a.Neighbours {
			w, ok := v.index[n.Key]
			if !ok || w <= u {
				continue
			}
			back, ok := listed[pair{w, u}]
			if !ok {
				continue
			}
			fwd := listed[pair{u, w}]
			lat := (int64(fwd) + int64(back)) * int64(time.Microsecond) / 4
			lat = max(lat, int64(time.Microsecond))
			id := int32(len(v.ea))
			v.ea = append(v.ea, u)
			v.eb = append(v.eb, w)
			v.adj[u] = append(v.adj[u], arc{to: w, edge: id, lat: lat})
			v.adj[w] = append(v.adj[w], arc{to: u, edge: id, lat: lat})
		}
	}
	for _, as := range v.adj {
		slices.SortFunc(as, func(a, b arc) int { return int(a.to) - int(b.to) })
	}
	return v
}
