package forward

import (
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/skyfleet/skyfleet/services/mesh/topology"
)

// A first contact waiting for a destination's announcement (or for the one that
// completes a path to it) is woken by the graph change itself: every change the
// router makes to the graph wakes GraphWatch's waiters.
func TestGraphChangeWakesWatchers(t *testing.T) {
	m := newMemnet()
	nodes := buildMesh(t, m, 2, line(2), nil)
	waitConverged(t, nodes, 10*time.Second)
	r := nodes[0].r
	priv, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	var k topology.Key
	copy(k[:], priv.PubKey().SerializeCompressed())
	// A stored announcement of another node.
	w := r.GraphWatch()
	a := &topology.Announcement{Origin: k, Seq: 1}
	if err := a.Sign(priv); err != nil {
		t.Fatal(err)
	}
	enc, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	r.handleGossip(nil, enc, time.Now())
	select {
	case <-w:
	default:
		t.Error("a stored announcement did not wake the graph's watchers")
	}
	// The same again is not a change.
	w = r.GraphWatch()
	r.handleGossip(nil, enc, time.Now())
	select {
	case <-w:
		t.Error("an announcement already held woke the graph's watchers")
	default:
	}
	// The node's own announcement.
	r.announce(time.Now())
	select {
	case <-w:
	default:
		t.Error("the node's own announcement did not wake the graph's watchers")
	}
}
