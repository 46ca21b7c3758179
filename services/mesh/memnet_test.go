package mesh

import (
	"context"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/skyfleet/skyfleet/services/mesh/topology"
)

// memnet is an in-process datagram network for router tests: every transport has an
// endpoint "10.0.0.N:1"; a datagram reaches its endpoint unless the pair is cut or
// the random loss takes it, after the delay.
type memnet struct {
	mu    sync.Mutex
	ends  map[string]*memTransport
	cut   map[[2]string]bool
	tap   func(from, to string, b []byte) // sees every datagram delivered
	delay time.Duration                   // one-way delay of every datagram
	loss  float64                         // fraction of datagrams dropped at random
	count int

	// drop, when set, drops every datagram it returns true for (before tap and
	// the random loss): a test's targeted loss.
	drop func(from, to string, b []byte) bool
}

type memDgram struct {
	from string
	b    []byte
}

type memTransport struct {
	net    *memnet
	addr   string
	in     chan memDgram
	closed chan struct{}
	once   sync.Once
}

func newMemnet() *memnet {
	return &memnet{ends: make(map[string]*memTransport), cut: make(map[[2]string]bool)}
}

func (m *memnet) transport() *memTransport {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.count++
	t := &memTransport{net: m, addr: fmt.Sprintf("10.0.0.%d:1", m.count), in: make(chan memDgram, 4096), closed: make(chan struct{})}
	m.ends[t.addr] = t
	return t
}

// setCut cuts or restores both directions between a and b.
func (m *memnet) setCut(a, b string, cut bool) {
	m.mu.Lock()
	m.cut[[2]string{a, b}] = cut
	m.cut[[2]string{b, a}] = cut
	m.mu.Unlock()
}

func (t *memTransport) Network() string   { return "udp" }
func (t *memTransport) LocalAddr() string { return "udp://" + t.addr }
func (t *memTransport) MTU(string) int    { return 1452 }
func (t *memTransport) Resolve(hp string) (string, error) {
	return hp, nil
}

func (t *memTransport) ReadFrom(p []byte) (int, string, error) {
	select {
	case d := <-t.in:
		return copy(p, d.b), d.from, nil
	case <-t.closed:
		return 0, "", net.ErrClosed
	}
}

func (t *memTransport) WriteTo(p []byte, to string) error {
	select {
	case <-t.closed:
		return net.ErrClosed
	default:
	}
	m := t.net
	m.mu.Lock()
	dst := m.ends[to]
	cut := m.cut[[2]string{t.addr, to}]
	tap, drop := m.tap, m.drop
	delay, loss := m.delay, m.loss
	m.mu.Unlock()
	if dst == nil || cut || (drop != nil && drop(t.addr, to, p)) || (loss > 0 && mrand.Float64() < loss) {
		return nil
	}
	b := append([]byte(nil), p...)
	if tap != nil {
		tap(t.addr, to, b)
	}
	if delay > 0 {
		from := t.addr
		time.AfterFunc(delay, func() {
			select {
			case dst.in <- memDgram{from: from, b: b}:
			default:
			}
		})
		return nil
	}
	select {
	case dst.in <- memDgram{from: t.addr, b: b}:
	case <-dst.closed:
	default: // full: dropped, as a network would
	}
	return nil
}

func (t *memTransport) Close() error {
	t.once.Do(func() { close(t.closed) })
	return nil
}

// testNode is a router on a memTransport.
type testNode struct {
	r   *Router
	tr  *memTransport
	key *secp256k1.PrivateKey
}

func (n *testNode) peer() Peer {
	return Peer{Network: "udp", Address: n.tr.addr, Key: n.key.PubKey().SerializeCompressed()}
}

var testPSK = [32]byte{1, 2, 3, 4, 5, 6, 7, 8, 9}

// buildMesh makes len(edges) routers... n routers joined by the given edges (as
// static peers in both directions) and starts them.
func buildMesh(t testing.TB, m *memnet, n int, edges [][2]int, tweak func(i int, c *Config)) []*testNode {
	t.Helper()
	nodes := make([]*testNode, n)
	for i := range nodes {
		k, err := secp256k1.GeneratePrivateKeyFromRand(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = &testNode{tr: m.transport(), key: k}
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

func line(n int) [][2]int {
	var e [][2]int
	for i := 0; i+1 < n; i++ {
		e = append(e, [2]int{i, i + 1})
	}
	return e
}

func grid(rows, cols int) [][2]int {
	var e [][2]int
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			i := r*cols + c
			if c+1 < cols {
				e = append(e, [2]int{i, i + 1})
			}
			if r+1 < rows {
				e = append(e, [2]int{i, i + cols})
			}
		}
	}
	return e
}

// waitConverged waits until every node's graph holds all n nodes with usable paths.
func waitConverged(t testing.TB, nodes []*testNode, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok := true
		for _, a := range nodes {
			for _, b := range nodes {
				if a == b {
					continue
				}
				if _, err := a.r.graph.ShortestByHops(b.r.self); err != nil {
					ok = false
				}
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("mesh of %d did not converge within %v", len(nodes), within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func keyOf(n *testNode) topology.Key { return n.r.self }
