package mesh

import (
	"sync"
	"sync/atomic"
	"time"
)

// hop names one side of a forwarding rule: a link (by its router-local link ID; 0 is
// this node itself) and the route ID used on that link.
type hop struct {
	link uint32
	rid  uint32
}

// local is the link ID standing for this node: a rule whose in-side is local was
// originated here; one whose out-side is local delivers here.
const local = 0

// rule is one entry of the forwarding table: packets arriving on in.link with route ID
// in.rid leave on out.link with route ID out.rid (docs/architecture.md §Routes).
type rule struct {
	in, out hop
	created time.Time
	// used is the last time (unix ns) a packet or keepalive crossed the rule.
	used    atomic.Int64
	packets atomic.Uint64
	bytes   atomic.Uint64
	// route is the source route this rule belongs to when in.link is local.
	route *route
	// from is the source's key for rules that deliver here (out.link local), learnt
	// from the end-to-end handshake; zero until then.
	from atomic.Pointer[[keyLen]byte]
	// sf is the route's store-and-forward state at this node (sf.go).
	sf sfRule
	// notice is when (unix ns) this rule last sent an unknown-session notice back
	// (e2e.go noticeUnknown).
	notice atomic.Int64
}

// table is the forwarding table: rules indexed by their in-side (to forward) and by
// their out-side (to carry route errors back towards the source).
type table struct {
	mu      sync.RWMutex
	forward map[hop]*rule
	reverse map[hop]*rule
}

func newTable() *table {
	return &table{forward: make(map[hop]*rule), reverse: make(map[hop]*rule)}
}

func (t *table) lookup(in hop) *rule {
	t.mu.RLock()
	r := t.forward[in]
	t.mu.RUnlock()
	return r
}

func (t *table) lookupReverse(out hop) *rule {
	t.mu.RLock()
	r := t.reverse[out]
	t.mu.RUnlock()
	return r
}

// install adds r, replacing any rule with the same in-side or out-side.
func (t *table) install(r *rule, now time.Time) {
	r.created = now
	r.used.Store(now.UnixNano())
	t.mu.Lock()
	if old := t.forward[r.in]; old != nil {
		t.removeLocked(old)
	}
	if r.out.link != local {
		if old := t.reverse[r.out]; old != nil {
			t.removeLocked(old)
		}
	}
	t.forward[r.in] = r
	if r.out.link != local {
		t.reverse[r.out] = r
	}
	t.mu.Unlock()
}

// remove deletes r if it is still installed and reports whether it was.
func (t *table) remove(r *rule) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.forward[r.in] != r {
		return false
	}
	t.removeLocked(r)
	return true
}

func (t *table) removeLocked(r *rule) {
	delete(t.forward, r.in)
	if r.out.link != local && t.reverse[r.out] == r {
		delete(t.reverse, r.out)
	}
}

// takeLink removes and returns every rule whose in-side or out-side uses link.
func (t *table) takeLink(link uint32) []*rule {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*rule
	for _, r := range t.forward {
		if r.in.link == link || r.out.link == link {
			out = append(out, r)
			t.removeLocked(r)
		}
	}
	return out
}

// expire removes and returns rules unused since before cutoff.
func (t *table) expire(cutoff time.Time) []*rule {
	c := cutoff.UnixNano()
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*rule
	for _, r := range t.forward {
		if r.used.Load() < c {
			out = append(out, r)
			t.removeLocked(r)
		}
	}
	return out
}

func (t *table) all() []*rule {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]*rule, 0, len(t.forward))
	for _, r := range t.forward {
		out = append(out, r)
	}
	return out
}

func (t *table) len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.forward)
}
