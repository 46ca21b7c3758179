package topology

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestUpdateOrdering(t *testing.T) {
	tp := newTopo(t, "self", "a", "b").chain("self", "a", "b")
	g := NewGraph(tp.k("self"))
	ia := tp.i("a")
	upd := func(seq uint64) bool {
		t.Helper()
		stored, err := g.Update(tp.announcement(ia, seq), t0)
		if err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
		return stored
	}
	if !upd(5) {
		t.Fatal("first announcement not stored")
	}
	if upd(5) {
		t.Error("equal seq stored")
	}
	if upd(4) {
		t.Error("older seq stored")
	}
	if !upd(6) {
		t.Error("newer seq not stored")
	}
	if a, ok := g.Get(tp.k("a")); !ok || a.Seq != 6 {
		t.Errorf("Get = %v %v, want seq 6", a, ok)
	}

	// A bad signature is an error and stores nothing.
	bad := tp.announcement(ia, 9)
	bad.Sig[10] ^= 1
	if stored, err := g.Update(bad, t0); stored || !errors.Is(err, ErrBadSignature) {
		t.Errorf("bad signature: %v %v", stored, err)
	}
	// Invalid content too.
	bad = tp.announcement(ia, 9)
	bad.Properties = []string{"UPPER"}
	if stored, err := g.Update(bad, t0); stored || !errors.Is(err, ErrMalformed) {
		t.Errorf("invalid: %v %v", stored, err)
	}
	if a, _ := g.Get(tp.k("a")); a.Seq != 6 {
		t.Errorf("seq %d after refused updates, want 6", a.Seq)
	}
	if _, err := g.Update(nil, t0); err == nil {
		t.Error("Update(nil) succeeded")
	}

	// Get returns a copy.
	a, _ := g.Get(tp.k("a"))
	a.Neighbours[0].RTT = time.Hour
	if b, _ := g.Get(tp.k("a")); b.Neighbours[0].RTT == time.Hour {
		t.Error("Get returned the stored announcement itself")
	}
	// Update stored a copy.
	in := tp.announcement(ia, 10)
	g.Update(in, t0)
	in.Properties = append(in.Properties, "changed")
	if b, _ := g.Get(tp.k("a")); len(b.Properties) != 0 {
		t.Error("Update kept the caller's announcement")
	}
}

func TestSelfHandling(t *testing.T) {
	tp := newTopo(t, "self", "a").chain("self", "a")
	s := tp.i("self")
	g := NewGraph(tp.k("self"))
	if got := g.HighestSeenSelfSeq(); got != 0 {
		t.Fatalf("HighestSeenSelfSeq = %d, want 0", got)
	}
	if g.Self() != tp.k("self") {
		t.Error("Self")
	}
	// Before SetSelf, self is a node but has no announcement.
	if ns := g.Nodes(); len(ns) != 1 || ns[0] != tp.k("self") {
		t.Errorf("Nodes = %v", ns)
	}
	// A pre-restart announcement of ours, flooded back by a neighbour.
	old := tp.announcement(s, 50)
	if stored, err := g.Update(old, t0); stored || err != nil {
		t.Errorf("self announcement: %v %v, want false nil", stored, err)
	}
	if _, ok := g.Get(tp.k("self")); ok {
		t.Error("self announcement from someone else was stored")
	}
	if got := g.HighestSeenSelfSeq(); got != 50 {
		t.Errorf("HighestSeenSelfSeq = %d, want 50", got)
	}
	// An older or forged one does not move it.
	g.Update(tp.announcement(s, 20), t0)
	forged := tp.announcement(s, 1000)
	forged.Sig[5] ^= 1
	if _, err := g.Update(forged, t0); !errors.Is(err, ErrBadSignature) {
		t.Errorf("forged self announcement: %v", err)
	}
	if got := g.HighestSeenSelfSeq(); got != 50 {
		t.Errorf("HighestSeenSelfSeq = %d after older and forged, want 50", got)
	}
	// The router restarts its count above it.
	mine := tp.announcement(s, g.HighestSeenSelfSeq()+1)
	g.SetSelf(mine, t0)
	if a, ok := g.Get(tp.k("self")); !ok || a.Seq != 51 {
		t.Errorf("Get(self) = %v %v", a, ok)
	}
	if got := g.HighestSeenSelfSeq(); got != 51 {
		t.Errorf("HighestSeenSelfSeq = %d, want 51", got)
	}
	// SetSelf replaces whatever its seq, needs no signature, ignores other origins.
	unsigned := &Announcement{Origin: tp.k("self"), Seq: 3}
	g.SetSelf(unsigned, t0)
	if a, _ := g.Get(tp.k("self")); a.Seq != 3 {
		t.Errorf("SetSelf did not replace: seq %d", a.Seq)
	}
	g.SetSelf(&Announcement{Origin: tp.k("a"), Seq: 99}, t0)
	if _, ok := g.Get(tp.k("a")); ok {
		t.Error("SetSelf stored another origin")
	}
	g.SetSelf(nil, t0)
}

func TestExpire(t *testing.T) {
	tp := newTopo(t, "self", "a", "b", "c").chain("self", "a", "b", "c")
	g := NewGraph(tp.k("self"))
	g.SetSelf(tp.announcement(tp.i("self"), 1), t0)
	g.Update(tp.announcement(tp.i("a"), 5), t0)
	g.Update(tp.announcement(tp.i("b"), 5), t0.Add(5*time.Second))
	g.Update(tp.announcement(tp.i("c"), 5), t0)
	g.Update(tp.announcement(tp.i("c"), 6), t0.Add(8*time.Second)) // refreshed

	if got := g.Expire(t0.Add(10*time.Second), 10*time.Second); got != nil {
		t.Errorf("expired at exactly maxAge: %v", got)
	}
	if _, err := g.ShortestByHops(tp.k("c")); err != nil {
		t.Fatalf("c unreachable before expiry: %v", err)
	}
	got := g.Expire(t0.Add(12*time.Second), 10*time.Second)
	if !reflect.DeepEqual(got, []Key{tp.k("a")}) {
		t.Errorf("Expire = %v, want [a]", got)
	}
	if _, ok := g.Get(tp.k("a")); ok {
		t.Error("a still held")
	}
	if _, ok := g.Get(tp.k("self")); !ok {
		t.Error("self expired")
	}
	// The route cache follows.
	if _, err := g.ShortestByHops(tp.k("c")); !errors.Is(err, ErrNoRoute) {
		t.Errorf("c reachable without a: %v", err)
	}
	// After expiry an older announcement is accepted again.
	if stored, err := g.Update(tp.announcement(tp.i("a"), 2), t0.Add(13*time.Second)); !stored || err != nil {
		t.Errorf("re-learning a: %v %v", stored, err)
	}
	got = g.Expire(t0.Add(time.Hour), time.Minute)
	want := []Key{tp.k("a"), tp.k("b"), tp.k("c")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Expire = %v, want a, b, c sorted", got)
	}
	if ns := g.Nodes(); len(ns) != 1 {
		t.Errorf("Nodes after expiry = %v", ns)
	}
}

func TestAllAndNodes(t *testing.T) {
	tp := newTopo(t, "a", "b", "c", "d").chain("a", "b", "c", "d")
	g := tp.graph("c")
	all := g.All()
	if len(all) != 4 {
		t.Fatalf("All: %d announcements", len(all))
	}
	for i, a := range all {
		if a.Origin != tp.keys[i] {
			t.Errorf("All[%d] is not in key order", i)
		}
		if err := a.Verify(); err != nil {
			t.Errorf("All[%d]: %v", i, err)
		}
	}
	if !reflect.DeepEqual(g.Nodes(), tp.keys) {
		t.Errorf("Nodes = %v, want %v", g.Nodes(), tp.keys)
	}
	// A node only listed as a neighbour is not a node.
	tp2 := newTopo(t, "a", "b", "ghost").chain("a", "b", "ghost")
	g = NewGraph(tp2.k("a"))
	g.SetSelf(tp2.announcement(0, 1), t0)
	g.Update(tp2.announcement(1, 1), t0)
	if ns := g.Nodes(); len(ns) != 2 || slices.Contains(ns, tp2.k("ghost")) {
		t.Errorf("Nodes = %v", ns)
	}
}

func TestSnapshot(t *testing.T) {
	tp := newTopo(t, "self", "a", "b").link("self", "a", 4*time.Millisecond).oneWay("a", "b", 2*time.Millisecond).prop("a", "gateway")
	g := NewGraph(tp.k("self"))
	g.SetSelf(tp.announcement(0, 7), t0)
	a := tp.announcement(1, 3)
	a.Time = 1767225600123
	if err := a.Sign(tp.priv[1]); err != nil {
		t.Fatal(err)
	}
	g.Update(a, t0.Add(-30*time.Second))
	s := g.SnapshotAt(t0)
	if s.Self != tp.k("self").String() || s.HighestSeenSelfSeq != 7 {
		t.Errorf("snapshot header: %+v", s)
	}
	wantNodes := []NodeJSON{
		{Key: tp.k("self").String(), Seq: 7, AgeSeconds: 0, Properties: []string{}, Self: true},
		{Key: tp.k("a").String(), Seq: 3, AgeSeconds: 30, Properties: []string{"gateway"}, TimeMS: 1767225600123},
	}
	if !reflect.DeepEqual(s.Nodes, wantNodes) {
		t.Errorf("nodes:\n got %+v\nwant %+v", s.Nodes, wantNodes)
	}
	wantEdges := []EdgeJSON{
		{From: tp.k("self").String(), To: tp.k("a").String(), RTTMs: 4, TwoWay: true},
		{From: tp.k("a").String(), To: tp.k("self").String(), RTTMs: 4, TwoWay: true},
		{From: tp.k("a").String(), To: tp.k("b").String(), RTTMs: 2},
	}
	if !reflect.DeepEqual(s.Edges, wantEdges) {
		t.Errorf("edges:\n got %+v\nwant %+v", s.Edges, wantEdges)
	}
	b, err := json.Marshal(g.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{`"self":`, `"highest_seen_self_seq":7`, `"nodes":[`, `"edges":[`, `"key":`, `"seq":3`, `"age_seconds":`, `"properties":["gateway"]`, `"time_ms":1767225600123`, `"rtt_ms":4`, `"loss":0`, `"two_way":true`, `"from":`, `"to":`} {
		if !strings.Contains(string(b), tag) {
			t.Errorf("JSON lacks %s: %s", tag, b)
		}
	}
	// An empty graph has empty lists, not nulls.
	b, _ = json.Marshal(NewGraph(tp.k("self")).Snapshot())
	if !strings.Contains(string(b), `"nodes":[]`) || !strings.Contains(string(b), `"edges":[]`) {
		t.Errorf("empty snapshot: %s", b)
	}
}

// TestConcurrent exercises the locking (run with -race).
func TestConcurrent(t *testing.T) {
	names := []string{"n0", "n1", "n2", "n3", "n4", "n5"}
	tp := newTopo(t, names...).chain(names...).link("n0", "n5", time.Millisecond)
	anns := make([][]*Announcement, len(names))
	for i := range names {
		for seq := uint64(1); seq <= 20; seq++ {
			anns[i] = append(anns[i], tp.announcement(i, seq))
		}
	}
	g := NewGraph(tp.k("n0"))
	g.SetSelf(anns[0][0], t0)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for seq := range 20 {
				for i := 1; i < len(names); i++ {
					if _, err := g.Update(anns[i][seq], t0); err != nil {
						t.Error(err)
						return
					}
				}
				if w == 0 {
					g.SetSelf(anns[0][seq], t0)
				}
			}
		})
		wg.Go(func() {
			for range 50 {
				g.ShortestByLatency(tp.k("n3"))
				g.Disjoint(tp.k("n3"), 2, false)
				g.Nearest("x", true)
				g.All()
				g.Snapshot()
				g.Expire(t0, time.Hour)
			}
		})
	}
	wg.Wait()
	ps, err := g.Disjoint(tp.k("n3"), 2, false)
	if err != nil || len(ps) != 2 {
		t.Fatalf("Disjoint on the ring: %v %v", ps, err)
	}
	for i := 1; i < len(names); i++ {
		if a, _ := g.Get(tp.keys[i]); a.Seq != 20 {
			t.Errorf("%s at seq %d, want 20", names[i], a.Seq)
		}
	}
}
