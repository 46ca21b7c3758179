package topology

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// t0 is the fixed clock of the tests.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// testKey returns the deterministic private key number i.
func testKey(i int) *secp256k1.PrivateKey {
	seed := sha256.Sum256(binary.BigEndian.AppendUint64([]byte("topology test key"), uint64(i)))
	return secp256k1.PrivKeyFromBytes(seed[:])
}

func pubKey(p *secp256k1.PrivateKey) Key {
	var k Key
	copy(k[:], p.PubKey().SerializeCompressed())
	return k
}

var (
	poolOnce sync.Once
	pool     []*secp256k1.PrivateKey // sorted by public key
)

// sortedKeys returns n private keys whose public keys are in increasing byte order,
// so that node i of a test topology sorts before node i+1 and the tie-breaking of the
// searches is predictable from the names' order.
func sortedKeys(n int) []*secp256k1.PrivateKey {
	poolOnce.Do(func() {
		for i := range 64 {
			pool = append(pool, testKey(i))
		}
		sort.Slice(pool, func(i, j int) bool {
			a, b := pubKey(pool[i]), pubKey(pool[j])
			return bytes.Compare(a[:], b[:]) < 0
		})
	})
	if n > len(pool) {
		panic("sortedKeys: pool too small")
	}
	return pool[:n]
}

// topo describes a test mesh: named nodes (in key order) and who lists whom.
type topo struct {
	t      testing.TB
	names  []string
	idx    map[string]int
	priv   []*secp256k1.PrivateKey
	keys   []Key
	lists  map[[2]int]time.Duration // lists[{u,v}]: u's announcement lists v with this RTT
	props  map[int][]string
	signed bool // build with Update (signed and verified) rather than put
}

func newTopo(t testing.TB, names ...string) *topo {
	tp := &topo{t: t, names: names, idx: map[string]int{}, lists: map[[2]int]time.Duration{}, props: map[int][]string{}, signed: true}
	tp.priv = sortedKeys(len(names))
	for i, n := range names {
		tp.idx[n] = i
		tp.keys = append(tp.keys, pubKey(tp.priv[i]))
	}
	return tp
}

func (tp *topo) i(name string) int {
	i, ok := tp.idx[name]
	if !ok {
		tp.t.Fatalf("no node %q", name)
	}
	return i
}

func (tp *topo) k(name string) Key { return tp.keys[tp.i(name)] }

// link makes a two-way link whose both ends report rtt.
func (tp *topo) link(a, b string, rtt time.Duration) *topo {
	tp.lists[[2]int{tp.i(a), tp.i(b)}] = rtt
	tp.lists[[2]int{tp.i(b), tp.i(a)}] = rtt
	return tp
}

// chain makes two-way links of 10 ms along the chain of names.
func (tp *topo) chain(names ...string) *topo {
	for i := 1; i < len(names); i++ {
		tp.link(names[i-1], names[i], 10*time.Millisecond)
	}
	return tp
}

func (tp *topo) oneWay(from, to string, rtt time.Duration) *topo {
	tp.lists[[2]int{tp.i(from), tp.i(to)}] = rtt
	return tp
}

func (tp *topo) prop(name string, props ...string) *topo {
	tp.props[tp.i(name)] = props
	return tp
}

// announcement returns node i's announcement, signed.
func (tp *topo) announcement(i int, seq uint64) *Announcement {
	a := &Announcement{Origin: tp.keys[i], Seq: seq, Properties: tp.props[i]}
	for j := range tp.keys {
		if rtt, ok := tp.lists[[2]int{i, j}]; ok {
			a.Neighbours = append(a.Neighbours, Neighbour{Key: tp.keys[j], RTT: rtt})
		}
	}
	if tp.signed {
		if err := a.Sign(tp.priv[i]); err != nil {
			tp.t.Fatal(err)
		}
	}
	return a
}

// graph builds the graph as seen by self.
func (tp *topo) graph(self string) *Graph {
	s := tp.i(self)
	g := NewGraph(tp.keys[s])
	for i := range tp.keys {
		a := tp.announcement(i, 1)
		if i == s {
			g.SetSelf(a, t0)
			continue
		}
		if !tp.signed {
			g.put(a, t0)
			continue
		}
		stored, err := g.Update(a, t0)
		if err != nil || !stored {
			tp.t.Fatalf("Update %s: %v %v", tp.names[i], stored, err)
		}
	}
	return g
}

// put stores a without checking its signature (for large test graphs).
func (g *Graph) put(a *Announcement, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.nodes[a.Origin] = &entry{a: a.clone(), at: now}
	g.view = nil
}

// names turns a path into node names.
func (tp *topo) pathNames(p Path) []string {
	var out []string
	for _, k := range p {
		i := slices.Index(tp.keys, k)
		if i < 0 {
			out = append(out, "?")
			continue
		}
		out = append(out, tp.names[i])
	}
	return out
}

// twoWay reports whether u and v list each other.
func (tp *topo) twoWay(u, v int) bool {
	_, a := tp.lists[[2]int{u, v}]
	_, b := tp.lists[[2]int{v, u}]
	return a && b
}

// checkPath fails unless p runs from src to dst over two-way links without
// repeating a node.
func (tp *topo) checkPath(p Path, src, dst int) {
	tp.t.Helper()
	if len(p) < 2 || p[0] != tp.keys[src] || p[len(p)-1] != tp.keys[dst] {
		tp.t.Fatalf("path %v does not run from %s to %s", tp.pathNames(p), tp.names[src], tp.names[dst])
	}
	seen := map[Key]bool{}
	for i, k := range p {
		if seen[k] {
			tp.t.Fatalf("path %v repeats a node", tp.pathNames(p))
		}
		seen[k] = true
		if i > 0 && !tp.twoWay(slices.Index(tp.keys, p[i-1]), slices.Index(tp.keys, k)) {
			tp.t.Fatalf("path %v uses a link that is not two-way: %d", tp.pathNames(p), i)
		}
	}
}

type undirected [2]Key

func edgeOf(a, b Key) undirected {
	if bytes.Compare(a[:], b[:]) > 0 {
		a, b = b, a
	}
	return undirected{a, b}
}

// shareLink returns a link used by two of the paths, if any.
func shareLink(paths []Path) (undirected, bool) {
	used := map[undirected]bool{}
	for _, p := range paths {
		for i := 1; i < len(p); i++ {
			e := edgeOf(p[i-1], p[i])
			if used[e] {
				return e, true
			}
			used[e] = true
		}
	}
	return undirected{}, false
}
