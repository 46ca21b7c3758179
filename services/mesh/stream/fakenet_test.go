package stream

import (
	"container/heap"
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// linkCfg shapes one direction of a fake path.
type linkCfg struct {
	loss    float64       // drop probability
	dup     float64       // duplicate probability
	delay   time.Duration // one-way delay
	jitter  time.Duration // extra uniform random delay (reorders)
	reorder float64       // probability of an extra delay of 3*jitter+1ms
	mtu     int
	rate    float64       // bytes per second the link carries (0: unlimited)
	queue   time.Duration // most queueing delay before tail drop (with rate)
}

// fakeNet runs every fake link's delivery goroutine.
type fakeNet struct {
	stop   chan struct{}
	wg     sync.WaitGroup
	nextID atomic.Uint64
	once   sync.Once
}

func newFakeNet() *fakeNet { return &fakeNet{stop: make(chan struct{})} }

// Close stops every link goroutine.
func (n *fakeNet) Close() {
	n.once.Do(func() { close(n.stop) })
	n.wg.Wait()
}

var errBroken = errors.New("fake: route broken")

// fakeLink is one direction of a path: it delays, drops, duplicates and
// reorders segments, then hands them to deliver on its own goroutine.
type fakeLink struct {
	n       *fakeNet
	id      uint64
	deliver func([]byte)

	mu        sync.Mutex
	cfg       linkCfg
	rng       *rand.Rand
	broken    bool // Send returns an error
	blackhole bool // Send silently drops
	seq       uint64
	departs   time.Time // when the link is free again (with rate)
	maxQueue  time.Duration

	in        chan item
	delivered atomic.Uint64
	dropped   atomic.Uint64
}

type item struct {
	at  time.Time
	seq uint64
	seg []byte
}

type itemHeap []item

func (h itemHeap) Len() int { return len(h) }
func (h itemHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h itemHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *itemHeap) Push(x any)   { *h = append(*h, x.(item)) }
func (h *itemHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (n *fakeNet) newLink(cfg linkCfg, seed uint64, deliver func([]byte)) *fakeLink {
	if cfg.mtu == 0 {
		cfg.mtu = 1200
	}
	l := &fakeLink{n: n, id: n.nextID.Add(1), deliver: deliver, cfg: cfg,
		rng: rand.New(rand.NewPCG(seed, 0x5eed)), in: make(chan item, 16384)}
	n.wg.Add(1)
	go l.run()
	return l
}

func (l *fakeLink) set(f func(l *fakeLink)) {
	l.mu.Lock()
	f(l)
	l.mu.Unlock()
}

func (l *fakeLink) send(seg []byte) error {
	l.mu.Lock()
	if l.broken {
		l.mu.Unlock()
		return errBroken
	}
	if len(seg) > l.cfg.mtu {
		l.mu.Unlock()
		panic("fake: segment larger than the MTU")
	}
	if l.blackhole || l.rng.Float64() < l.cfg.loss {
		l.mu.Unlock()
		l.dropped.Add(1)
		return nil
	}
	copies := 1
	if l.rng.Float64() < l.cfg.dup {
		copies = 2
	}
	now := time.Now()
	var items [2]item
	var q time.Duration
	if l.cfg.rate > 0 {
		if l.departs.Before(now) {
			l.departs = now
		}
		q = l.departs.Sub(now)
		if q > l.cfg.queue {
			l.mu.Unlock()
			l.dropped.Add(1) // queue full: tail drop
			return nil
		}
		l.maxQueue = max(l.maxQueue, q)
		l.departs = l.departs.Add(time.Duration(float64(len(seg)) / l.cfg.rate * float64(time.Second)))
		q = l.departs.Sub(now)
	}
	for i := range copies {
		d := l.cfg.delay + q
		if l.cfg.jitter > 0 {
			d += time.Duration(l.rng.Int64N(int64(l.cfg.jitter)))
			if l.rng.Float64() < l.cfg.reorder {
				d += 3*l.cfg.jitter + time.Millisecond
			}
		}
		l.seq++
		items[i] = item{at: now.Add(d), seq: l.seq, seg: append([]byte(nil), seg...)}
	}
	l.mu.Unlock()
	for i := range copies {
		select {
		case l.in <- items[i]:
		default:
			l.dropped.Add(1) // queue full
		}
	}
	return nil
}

func (l *fakeLink) run() {
	defer l.n.wg.Done()
	var h itemHeap
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var tc <-chan time.Time
		if len(h) > 0 {
			d := time.Until(h[0].at)
			if d <= 0 {
				it := heap.Pop(&h).(item)
				l.delivered.Add(1)
				l.deliver(it.seg)
				continue
			}
			timer.Reset(d)
			tc = timer.C
		}
		select {
		case it := <-l.in:
			heap.Push(&h, it)
		case <-tc:
		case <-l.n.stop:
			return
		}
	}
}

// fakePath is what a Conn sees of one direction of a path.
type fakePath struct {
	l  *fakeLink
	id uint64
}

func (p *fakePath) Send(seg []byte) error { return p.l.send(seg) }
func (p *fakePath) MTU() int {
	p.l.mu.Lock()
	defer p.l.mu.Unlock()
	return p.l.cfg.mtu
}
func (p *fakePath) ID() uint64 { return p.id }

// fakePaths is a changeable path set.
type fakePaths struct {
	mu    sync.Mutex
	paths []Path
}

func (f *fakePaths) Paths() []Path {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.paths
}

func (f *fakePaths) set(ps []Path) {
	f.mu.Lock()
	f.paths = ps
	f.mu.Unlock()
}

type fakeAddr string

func (a fakeAddr) Network() string { return "fake" }
func (a fakeAddr) String() string  { return string(a) }

// endpoint plays the router on one side: it hands segments to its Conn and
// accepts a stream from a SYN.
type endpoint struct {
	name     string
	paths    *fakePaths
	cfg      Config
	mu       sync.Mutex
	conn     *Conn
	accepted chan *Conn
	garbage  atomic.Uint64
}

func (e *endpoint) deliver(seg []byte) {
	e.mu.Lock()
	c := e.conn
	if c == nil {
		if !IsSYN(seg) {
			e.mu.Unlock()
			return
		}
		var err error
		c, err = Accept(e.paths, fakeAddr(e.name), fakeAddr("peer"), e.cfg, seg)
		if err != nil {
			e.mu.Unlock()
			return
		}
		e.conn = c
		e.mu.Unlock()
		e.accepted <- c
		return
	}
	e.mu.Unlock()
	c.Deliver(seg, nil)
}

// testPair is two endpoints joined by n fake paths.
type testPair struct {
	net    *fakeNet
	a, b   *endpoint
	ab, ba []*fakeLink // per path, each direction
	all    []Path      // a's paths (the a->b direction)
	allB   []Path
}

func newTestPair(n int, lc linkCfg, cfg Config) *testPair {
	tp := &testPair{net: newFakeNet()}
	tp.a = &endpoint{name: "a", paths: &fakePaths{}, cfg: cfg, accepted: make(chan *Conn, 1)}
	tp.b = &endpoint{name: "b", paths: &fakePaths{}, cfg: cfg, accepted: make(chan *Conn, 1)}
	for i := range n {
		ab := tp.net.newLink(lc, uint64(2*i+1), tp.b.deliver)
		ba := tp.net.newLink(lc, uint64(2*i+2), tp.a.deliver)
		tp.ab = append(tp.ab, ab)
		tp.ba = append(tp.ba, ba)
		id := uint64(100 + i)
		tp.all = append(tp.all, &fakePath{l: ab, id: id})
		tp.allB = append(tp.allB, &fakePath{l: ba, id: id})
	}
	tp.a.paths.set(tp.all)
	tp.b.paths.set(tp.allB)
	return tp
}

// dial opens a stream from a to b and waits for b's side.
func (tp *testPair) dial() (*Conn, *Conn, error) {
	tp.a.mu.Lock()
	c := Dial(tp.a.paths, fakeAddr("a"), fakeAddr("b"), tp.a.cfg)
	tp.a.conn = c
	tp.a.mu.Unlock()
	select {
	case s := <-tp.b.accepted:
		return c, s, nil
	case <-time.After(10 * time.Second):
		return c, nil, errors.New("no accept")
	}
}

// path sets the state of path i in both directions.
func (tp *testPair) path(i int, f func(l *fakeLink)) {
	tp.ab[i].set(f)
	tp.ba[i].set(f)
}

var _ net.Conn = (*Conn)(nil)
