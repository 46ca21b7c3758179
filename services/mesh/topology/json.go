package topology

import (
	"math"
	"slices"
	"time"
)

// GraphJSON is the graph as the status API shows it (GET /mesh/graph).
type GraphJSON struct {
	// Self is this node's key in hex.
	Self string `json:"self"`
	// HighestSeenSelfSeq is Graph.HighestSeenSelfSeq.
	HighestSeenSelfSeq uint64 `json:"highest_seen_self_seq"`
	// Nodes are the origins whose announcements are held, self's included, sorted by
	// key; never nil.
	Nodes []NodeJSON `json:"nodes"`
	// Edges are every neighbour listing of every held announcement, sorted by from,
	// then to; never nil.
	Edges []EdgeJSON `json:"edges"`
}

// NodeJSON is one held announcement's origin.
type NodeJSON struct {
	// Key is the origin's key in hex.
	Key string `json:"key"`
	// Seq is the held announcement's sequence number.
	Seq uint64 `json:"seq"`
	// AgeSeconds is the time since the announcement was stored, in seconds.
	AgeSeconds float64 `json:"age_seconds"`
	// Properties are the announcement's properties; never nil.
	Properties []string `json:"properties"`
	// TimeMS is the origin's wall time when it signed (Announcement.Time), in Unix
	// milliseconds; absent when it did not know it.
	TimeMS int64 `json:"time_ms,omitempty"`
	// Self is true for this node's own announcement.
	Self bool `json:"self,omitempty"`
}

// EdgeJSON is one neighbour listing: From's announcement lists To.
type EdgeJSON struct {
	// From is the announcing node's key in hex.
	From string `json:"from"`
	// To is the listed neighbour's key in hex.
	To string `json:"to"`
	// RTTMs is the round-trip time From reported, in milliseconds.
	RTTMs float64 `json:"rtt_ms"`
	// Loss is the loss fraction From reported, 0..1, in the encoding's 1/65535 steps.
	Loss float64 `json:"loss"`
	// TwoWay is true when To's held announcement lists From too, that is when the
	// link is usable for routes.
	TwoWay bool `json:"two_way"`
}

// Snapshot returns the graph for the status API, with ages measured from time.Now.
func (g *Graph) Snapshot() GraphJSON { return g.SnapshotAt(time.Now()) }

// SnapshotAt is Snapshot with ages measured from now.
func (g *Graph) SnapshotAt(now time.Time) GraphJSON {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := GraphJSON{
		Self:               g.self.String(),
		HighestSeenSelfSeq: g.selfSeq,
		Nodes:              make([]NodeJSON, 0, len(g.nodes)),
		Edges:              []EdgeJSON{},
	}
	keys := make([]Key, 0, len(g.nodes))
	for k := range g.nodes {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareKeys)
	for _, k := range keys {
		e := g.nodes[k]
		out.Nodes = append(out.Nodes, NodeJSON{
			Key:        k.String(),
			Seq:        e.a.Seq,
			AgeSeconds: now.Sub(e.at).Seconds(),
			Properties: append([]string{}, e.a.Properties...),
			TimeMS:     e.a.Time,
			Self:       k == g.self,
		})
		ns := slices.Clone(e.a.Neighbours)
		slices.SortFunc(ns, func(a, b Neighbour) int { return compareKeys(a.Key, b.Key) })
		for _, n := range ns {
			two := false
			if o := g.nodes[n.Key]; o != nil {
				two = slices.ContainsFunc(o.a.Neighbours, func(m Neighbour) bool { return m.Key == k })
			}
			out.Edges = append(out.Edges, EdgeJSON{
				From:   k.String(),
				To:     n.Key.String(),
				RTTMs:  float64(n.RTT) / float64(time.Millisecond),
				Loss:   float64(lossUnits(n.Loss)) / math.MaxUint16,
				TwoWay: two,
			})
		}
	}
	return out
}
