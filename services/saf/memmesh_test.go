package saf

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// world is an in-memory mesh for engine tests: nodes, the links between them,
// and streams as net.Pipe pairs that break when their link is cut.
type world struct {
	mu    sync.Mutex
	nodes map[Key]*memNode
	links map[[2]Key]bool
	radio map[[2]Key]bool // links that are amateur radio (Mesh.Radio)
	pipes map[[2]Key][]net.Conn
}

func newWorld() *world {
	return &world{nodes: make(map[Key]*memNode), links: make(map[[2]Key]bool), radio: make(map[[2]Key]bool),
		pipes: make(map[[2]Key][]net.Conn)}
}

func pair(a, b Key) [2]Key {
	if string(a[:]) > string(b[:]) {
		a, b = b, a
	}
	return [2]Key{a, b}
}

// link connects or cuts a and b; cutting breaks their streams.
func (w *world) link(a, b Key, up bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := pair(a, b)
	if up {
		w.links[p] = true
		return
	}
	delete(w.links, p)
	for _, c := range w.pipes[p] {
		c.Close()
	}
	delete(w.pipes, p)
}

type memNode struct {
	w    *world
	self Key
	ln   *memListener
}

func (w *world) node(k Key) *memNode {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := &memNode{w: w, self: k}
	w.nodes[k] = n
	return n
}

func (n *memNode) Self() Key { return n.self }

func (n *memNode) Radio(k Key) bool {
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	p := pair(n.self, k)
	return n.w.links[p] && n.w.radio[p]
}

func (n *memNode) Neighbours() []Key {
	w := n.w
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []Key
	for p := range w.links {
		if p[0] == n.self {
			out = append(out, p[1])
		} else if p[1] == n.self {
			out = append(out, p[0])
		}
	}
	return out
}

// NextHop runs a breadth-first search over the links that are up.
func (n *memNode) NextHop(dst Key, avoid, notFirst []Key) (Key, bool) {
	w := n.w
	w.mu.Lock()
	defer w.mu.Unlock()
	bad := make(map[Key]bool)
	for _, a := range avoid {
		if a != dst {
			bad[a] = true
		}
	}
	noFirst := make(map[Key]bool)
	for _, k := range notFirst {
		noFirst[k] = true
	}
	first := map[Key]Key{n.self: {}}
	queue := []Key{n.self}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for p := range w.links {
			var nb Key
			switch {
			case p[0] == cur:
				nb = p[1]
			case p[1] == cur:
				nb = p[0]
			default:
				continue
			}
			if _, seen := first[nb]; seen || bad[nb] || (cur == n.self && noFirst[nb]) {
				continue
			}
			if cur == n.self {
				first[nb] = nb
			} else {
				first[nb] = first[cur]
			}
			if nb == dst {
				return first[nb], true
			}
			queue = append(queue, nb)
		}
	}
	return Key{}, false
}

func (n *memNode) Dial(ctx context.Context, k Key, port uint16) (net.Conn, error) {
	w := n.w
	w.mu.Lock()
	defer w.mu.Unlock()
	p := pair(n.self, k)
	if !w.links[p] {
		return nil, errors.New("no link")
	}
	dst := w.nodes[k]
	if dst == nil || dst.ln == nil {
		return nil, errors.New("not listening")
	}
	a, b := net.Pipe()
	w.pipes[p] = append(w.pipes[p], a, b)
	select {
	case dst.ln.ch <- accepted{b, n.self}:
	default:
		return nil, errors.New("backlog full")
	}
	return a, nil
}

type accepted struct {
	c    net.Conn
	from Key
}

type memListener struct {
	ch   chan accepted
	done chan struct{}
	once sync.Once
}

func (n *memNode) Listen(port uint16) (Listener, error) {
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	n.ln = &memListener{ch: make(chan accepted, 16), done: make(chan struct{})}
	return n.ln, nil
}

func (l *memListener) Accept() (net.Conn, Key, error) {
	select {
	case a := <-l.ch:
		return a.c, a.from, nil
	case <-l.done:
		return nil, Key{}, net.ErrClosed
	}
}

func (l *memListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// testNode is one engine with its store, an application inbox on PortMsg, and a
// clock the test moves.
type testNode struct {
	key   Key
	dir   string
	mesh  *memNode
	store *Store
	eng   *Engine
	clock *fakeClock

	mu       sync.Mutex
	got      map[ID]int
	released map[ID]Status
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_000_000, 0)} }
func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func keyN(i byte) Key {
	var k Key
	k[0] = 2
	k[32] = i
	return k
}

func startNode(t *testing.T, w *world, k Key, dir string) *testNode {
	t.Helper()
	n := &testNode{key: k, dir: dir, clock: newFakeClock(), got: make(map[ID]int), released: make(map[ID]Status)}
	if w.nodes[k] != nil {
		n.mesh = w.nodes[k]
	} else {
		n.mesh = w.node(k)
	}
	var err error
	n.store, err = OpenStore(dir, StoreOptions{Now: n.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	n.eng = New(Options{Mesh: n.mesh, Store: n.store, Logf: t.Logf, Released: func(id ID, to Key, st Status) {
		n.mu.Lock()
		n.released[id] = st
		n.mu.Unlock()
	}})
	n.eng.Register(PortMsg, func(id ID, b *Bundle) error {
		n.mu.Lock()
		n.got[id]++
		n.mu.Unlock()
		return nil
	})
	if err := n.eng.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.stop)
	return n
}

func (n *testNode) stop() {
	if n.eng == nil {
		return
	}
	n.eng.Close()
	n.store.Close()
	n.eng = nil
}

func (n *testNode) received() map[ID]int {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[ID]int, len(n.got))
	for k, v := range n.got {
		out[k] = v
	}
	return out
}

// eventually polls cond every 10 ms until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
