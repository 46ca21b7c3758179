package saf

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func send(t *testing.T, n *testNode, dst Key, i int, lifetime time.Duration) ID {
	t.Helper()
	id, err := n.eng.Send(&Bundle{Port: PortMsg, Source: n.key, Destination: dst, Seq: uint64(i) + 1,
		Lifetime: lifetime, Payload: []byte{byte(i), byte(i >> 8)}})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// line starts n nodes linked in a line and returns them.
func line(t *testing.T, w *world, n int) []*testNode {
	nodes := make([]*testNode, n)
	for i := range nodes {
		nodes[i] = startNode(t, w, keyN(byte(i+1)), t.TempDir())
		if i > 0 {
			w.link(nodes[i-1].key, nodes[i].key, true)
		}
	}
	return nodes
}

// TestCustodyAlongLine: bundles from one end of a line of 5 reach the other end,
// each exactly once; every custodian on the way has let go of them, and the source
// heard its custody end at the next hop.
func TestCustodyAlongLine(t *testing.T) {
	w := newWorld()
	ns := line(t, w, 5)
	a, e := ns[0], ns[4]
	var ids []ID
	for i := 0; i < 50; i++ {
		ids = append(ids, send(t, a, e.key, i, time.Hour))
	}
	eventually(t, 10*time.Second, "50 bundles at the far end", func() bool { return len(e.received()) == 50 })
	for _, id := range ids {
		if e.received()[id] != 1 {
			t.Fatalf("bundle %s delivered %d times", id, e.received()[id])
		}
	}
	eventually(t, 5*time.Second, "every store empty", func() bool {
		for _, n := range ns {
			if n.store.Stats().Bundles != 0 {
				return false
			}
		}
		return true
	})
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, id := range ids {
		if a.released[id] != StatusAccepted {
			t.Fatalf("source's custody of %s ended with %v", id, a.released[id])
		}
	}
}

// TestDelayTolerance is acceptance 5: B is unreachable when A sends 100 bundles;
// an hour later (A's clock moved) B comes back and gets all of them; a bundle whose
// lifetime ran out meanwhile is dropped, counted, and never delivered.
func TestDelayTolerance(t *testing.T) {
	w := newWorld()
	a := startNode(t, w, keyN(1), t.TempDir())
	b := startNode(t, w, keyN(2), t.TempDir())
	var ids []ID
	for i := 0; i < 100; i++ {
		ids = append(ids, send(t, a, b.key, i, 2*time.Hour))
	}
	short := send(t, a, b.key, 1000, 30*time.Minute)
	a.clock.Advance(time.Hour)
	eventually(t, 5*time.Second, "the short-lived bundle expired at A", func() bool { return a.store.Stats().Expired == 1 })
	w.link(a.key, b.key, true)
	eventually(t, 10*time.Second, "100 bundles at B", func() bool { return len(b.received()) == 100 })
	got := b.received()
	for _, id := range ids {
		if got[id] != 1 {
			t.Fatalf("bundle delivered %d times", got[id])
		}
	}
	if got[short] != 0 {
		t.Fatal("an expired bundle was delivered")
	}
	a.mu.Lock()
	st := a.released[short]
	a.mu.Unlock()
	if st != StatusExpired {
		t.Fatalf("the expired bundle's end was reported as %v", st)
	}
}

// TestRestartKeepsCustody: a custodian stopped with bundles it could not hand on
// (a crash, as far as its store can tell: nothing is flushed at Close that Accept
// had not committed) still has them after restarting and delivers them.
func TestRestartKeepsCustody(t *testing.T) {
	w := newWorld()
	a := startNode(t, w, keyN(1), t.TempDir())
	m := startNode(t, w, keyN(2), t.TempDir())
	cm := w.node(keyN(3)) // C is linked but its engine is not running yet
	w.link(a.key, m.key, true)
	w.link(m.key, cm.self, true)
	for i := 0; i < 20; i++ {
		send(t, a, cm.self, i, time.Hour)
	}
	eventually(t, 5*time.Second, "the middle node holding 20", func() bool { return m.store.Stats().Bundles == 20 })
	dir := m.dir
	m.stop()
	startNode(t, w, m.key, dir)
	c := startNode(t, w, cm.self, t.TempDir())
	eventually(t, 10*time.Second, "20 bundles at C after the restart", func() bool { return len(c.received()) == 20 })
}

// TestRoutesAround: when the next hop's link is cut mid-way the bundles take the
// other path of a square.
func TestRoutesAround(t *testing.T) {
	w := newWorld()
	a := startNode(t, w, keyN(1), t.TempDir())
	b := startNode(t, w, keyN(2), t.TempDir())
	c := startNode(t, w, keyN(3), t.TempDir())
	d := startNode(t, w, keyN(4), t.TempDir())
	w.link(a.key, b.key, true)
	w.link(b.key, d.key, true)
	w.link(a.key, c.key, true)
	w.link(c.key, d.key, true)
	for i := 0; i < 30; i++ {
		send(t, a, d.key, i, time.Hour)
	}
	w.link(b.key, d.key, false)
	for i := 30; i < 60; i++ {
		send(t, a, d.key, i, time.Hour)
	}
	eventually(t, 10*time.Second, "60 bundles at D", func() bool { return len(d.received()) == 60 })
	for id, n := range d.received() {
		if n != 1 {
			t.Fatalf("%s delivered %d times", id, n)
		}
	}
}

// TestBroadcast: a bundle for every node reaches every node of a tree once, and
// one that links later gets it too.
func TestBroadcast(t *testing.T) {
	w := newWorld()
	ns := line(t, w, 4)
	extra := startNode(t, w, keyN(9), t.TempDir())
	w.link(ns[1].key, extra.key, true)
	id := send(t, ns[0], Broadcast, 7, time.Hour)
	for _, n := range append(ns[1:], extra) {
		eventually(t, 10*time.Second, "broadcast everywhere", func() bool { return n.received()[id] == 1 })
	}
	late := startNode(t, w, keyN(10), t.TempDir())
	w.link(ns[3].key, late.key, true)
	eventually(t, 10*time.Second, "broadcast at the late node", func() bool { return late.received()[id] == 1 })
	for _, n := range append(ns, extra, late) {
		if n.received()[id] > 1 {
			t.Fatalf("delivered %d times", n.received()[id])
		}
	}
	if ns[0].received()[id] != 0 {
		t.Fatal("the source delivered its own broadcast to itself")
	}
}

// TestDataMule is acceptance 6 at the engine level: A and C never link. A's
// bundles go to a directory; a third node M imports them, travels to C's island
// and hands them on; C's answers come back to A the same way.
func TestDataMule(t *testing.T) {
	w := newWorld()
	a := startNode(t, w, keyN(1), t.TempDir())
	c := startNode(t, w, keyN(3), t.TempDir())
	m := startNode(t, w, keyN(2), t.TempDir())
	for i := 0; i < 10; i++ {
		send(t, a, c.key, i, time.Hour)
	}
	stick := t.TempDir()
	exportTo := func(n *testNode) int {
		k, err := n.eng.Export(func(id ID, file []byte) error {
			return os.WriteFile(filepath.Join(stick, id.String()+FileExt), file, 0o600)
		})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	importFrom := func(n *testNode) (accepted int) {
		fs, _ := filepath.Glob(filepath.Join(stick, "*"+FileExt))
		for _, f := range fs {
			b, _ := os.ReadFile(f)
			if _, st, err := n.eng.Import(b); err != nil {
				t.Fatal(err)
			} else if st == StatusAccepted {
				accepted++
			}
			os.Remove(f)
		}
		return accepted
	}
	if k := exportTo(a); k != 10 {
		t.Fatalf("exported %d", k)
	}
	if k := importFrom(m); k != 10 {
		t.Fatalf("M took custody of %d", k)
	}
	w.link(m.key, c.key, true) // M arrives on C's island
	eventually(t, 10*time.Second, "10 bundles at C", func() bool { return len(c.received()) == 10 })
	// C answers; with no path to A it holds them, and writes them to the
	// directory M carries back.
	for i := 0; i < 5; i++ {
		send(t, c, a.key, i, time.Hour)
	}
	w.link(m.key, c.key, false)
	if k := exportTo(c); k != 5 {
		t.Fatalf("C exported %d", k)
	}
	importFrom(a)
	eventually(t, 5*time.Second, "5 answers at A", func() bool { return len(a.received()) == 5 })
	// Importing the same files again delivers nothing twice.
	if k := exportTo(c); k != 5 {
		t.Fatalf("C exported %d the second time", k)
	}
	if k := importFrom(a); k != 0 {
		t.Fatalf("A accepted %d duplicates", k)
	}
}
