package topology

import (
	"errors"
	"testing"
	"time"
)

// The graph holds at most MaxNodes origins: anyone with the network key can make
// keys at will, and each new origin would otherwise cost memory for good (until
// expiry). A known origin's newer announcement is still taken at the cap.
func TestGraphCap(t *testing.T) {
	self := pubKey(testKey(0))
	g := NewGraph(self)
	// Fill to the cap without signing each: the cap is what is tested.
	for i := 1; len(g.nodes) < MaxNodes; i++ {
		var k Key
		k[0], k[1], k[2] = 2, byte(i>>8), byte(i)
		k[3] = byte(i >> 16)
		g.nodes[k] = &entry{a: &Announcement{Origin: k, Seq: 1}, at: t0}
	}
	known := pubKey(testKey(1))
	delete(g.nodes, firstKey(g))
	a := &Announcement{Origin: known, Seq: 1}
	if err := a.Sign(testKey(1)); err != nil {
		t.Fatal(err)
	}
	if stored, err := g.Update(a, t0); !stored || err != nil {
		t.Fatalf("below the cap: stored %v, %v", stored, err)
	}
	// Full now: a new origin is refused, a newer announcement of a held one is not.
	stranger := &Announcement{Origin: pubKey(testKey(2)), Seq: 1}
	if err := stranger.Sign(testKey(2)); err != nil {
		t.Fatal(err)
	}
	if stored, err := g.Update(stranger, t0); stored || !errors.Is(err, ErrGraphFull) {
		t.Errorf("new origin at the cap: stored %v, %v; want ErrGraphFull", stored, err)
	}
	newer := &Announcement{Origin: known, Seq: 2}
	if err := newer.Sign(testKey(1)); err != nil {
		t.Fatal(err)
	}
	if stored, err := g.Update(newer, t0); !stored || err != nil {
		t.Errorf("held origin's newer announcement at the cap: stored %v, %v", stored, err)
	}
	// Expiry makes room again.
	g.Expire(t0.Add(2*time.Minute), time.Minute)
	if stored, err := g.Update(stranger, t0.Add(2*time.Minute)); !stored || err != nil {
		t.Errorf("after expiry: stored %v, %v", stored, err)
	}
}

func firstKey(g *Graph) Key {
	for k := range g.nodes {
		if k != g.self {
			return k
		}
	}
	return Key{}
}
