package mesh

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/skyfleet/skyfleet/services/mesh/internal/memnet"
	"github.com/skyfleet/skyfleet/services/mesh/topology"
)

// newMemnet is an in-process datagram network for router tests (package
// services/mesh/internal/memnet).
func newMemnet() *memnet.Net { return memnet.New() }

// testNode is a router on a memnet transport.
type testNode struct {
	r   *Router
	tr  *memnet.Transport
	key *secp256k1.PrivateKey
}

func (n *testNode) peer() Peer {
	return Peer{Network: "udp", Address: n.tr.Addr(), Key: n.key.PubKey().SerializeCompressed()}
}

var testPSK = [32]byte{1, 2, 3, 4, 5, 6, 7, 8, 9}

// buildMesh makes len(edges) routers... n routers joined by the given edges (as
// static peers in both directions) and starts them.
func buildMesh(t testing.TB, m *memnet.Net, n int, edges [][2]int, tweak func(i int, c *Config)) []*testNode {
	t.Helper()
	nodes := make([]*testNode, n)
	for i := range nodes {
		k, err := secp256k1.GeneratePrivateKeyFromRand(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = &testNode{tr: m.Transport(), key: k}
	}
	for i, nd := range nodes {
		cfg := Config{Key: nd.key, PSK: testPSK, Transports: []Transport{nd.tr},
			AnnounceInterval: 2 * time.Second}
		for _, e := range edges {
			if e[0] == i {
				cfg.Peers = append(cfg.Peers, nodes[e[1]].peer())
			}
			if e[1] == i {
				cfg.Peers = append(cfg.Peers, nodes[e[0]].peer())
			}
		}
		if tweak != nil {
			tweak(i, &cfg)
		}
		r, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		nd.r = r
	}
	for _, nd := range nodes {
		if err := nd.r.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nd.r.Close() })
	}
	return nodes
}

// startRouter makes and starts a router from cfg, closed when the test ends.
func startRouter(t testing.TB, cfg Config) *Router {
	t.Helper()
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

var (
	line     = memnet.Line
	grid     = memnet.Grid
	waitCond = memnet.WaitFor
)

// waitConverged waits until every node's graph holds all n nodes with usable paths.
func waitConverged(t testing.TB, nodes []*testNode, within time.Duration) {
	t.Helper()
	graphs, keys := make([]*topology.Graph, len(nodes)), make([]topology.Key, len(nodes))
	for i, n := range nodes {
		graphs[i], keys[i] = n.r.graph, n.r.self
	}
	waitCond(t, within, fmt.Sprintf("a mesh of %d to converge", len(nodes)), func() bool { return memnet.Converged(graphs, keys) })
}

func keyOf(n *testNode) topology.Key { return n.r.self }

// linkUp reports whether r's link to the neighbour with key k is up.
func linkUp(r *Router, k topology.Key) bool {
	for _, l := range r.Links() {
		if l.Key == hex.EncodeToString(k[:]) {
			return l.Up
		}
	}
	return false
}
