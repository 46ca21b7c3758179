package forward

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/skyfleet/skyfleet/services/mesh/topology"
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

// Rule is one entry of the forwarding table: packets arriving on in.link with route ID
// in.rid leave on out.link with route ID out.rid (docs/architecture.md §Routes).
type Rule struct {
	in, out hop
	created time.Time
	// used is the last time (unix ns) a packet or keepalive crossed the rule.
	used    atomic.Int64
	packets atomic.Uint64
	bytes   atomic.Uint64
	// route is the source route this rule belongs to when in.link is local.
	route *Route
	// from is the source's key for rules that deliver here (out.link local), learnt
	// from the end-to-end handshake; zero until then.
	from atomic.Pointer[[keyLen]byte]
	// sf is the route's store-and-forward state at this node (sf.go).
	sf sfRule
	// amateur marks a rule whose route crosses an amateur link here: one that
	// delivers here from one, or a source rule whose first link is one (a
	// route of one hop, transport.go).
	amateur bool
	// notice is when (unix ns) this rule last sent an unknown-session notice back
	// (Rule.AllowNotice; package mesh answers an unknown session with a notice).
	notice atomic.Int64
}

// table is the forwarding table: rules indexed by their in-side (to forward) and by
// their out-side (to carry route errors back towards the source).
type table struct {
	mu      sync.RWMutex
	forward map[hop]*Rule
	reverse map[hop]*Rule
}

func newTable() *table {
	return &table{forward: make(map[hop]*Rule), reverse: make(map[hop]*Rule)}
}

func (t *table) lookup(in hop) *Rule {
	t.mu.RLock()
	r := t.forward[in]
	t.mu.RUnlock()
	return r
}

func (t *table) lookupReverse(out hop) *Rule {
	t.mu.RLock()
	r := t.reverse[out]
	t.mu.RUnlock()
	return r
}

// install adds r, replacing any rule with the same in-side or out-side.
func (t *table) install(r *Rule, now time.Time) {
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
func (t *table) remove(r *Rule) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.forward[r.in] != r {
		return false
	}
	t.removeLocked(r)
	return true
}

func (t *table) removeLocked(r *Rule) {
	delete(t.forward, r.in)
	if r.out.link != local && t.reverse[r.out] == r {
		delete(t.reverse, r.out)
	}
}

// takeLink removes and returns every rule whose in-side or out-side uses link.
func (t *table) takeLink(link uint32) []*Rule {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*Rule
	for _, r := range t.forward {
		if r.in.link == link || r.out.link == link {
			out = append(out, r)
			t.removeLocked(r)
		}
	}
	return out
}

// expire removes and returns rules unused since before cutoff, or radioCutoff
// for rules over an amateur link.
func (t *table) expire(cutoff, radioCutoff time.Time) []*Rule {
	c, rc := cutoff.UnixNano(), radioCutoff.UnixNano()
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*Rule
	for _, r := range t.forward {
		if u := r.used.Load(); (!r.amateur && u < c) || (r.amateur && u < rc) {
			out = append(out, r)
			t.removeLocked(r)
		}
	}
	return out
}

func (t *table) all() []*Rule {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]*Rule, 0, len(t.forward))
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

// What the layer above (Upper) uses of the rule a payload arrived on.

// Delivers reports whether the rule delivers here (its out-side is this node):
// the payload came from the route's source. Otherwise it came in a Back frame on a
// route this node set up, and Route is that route.
func (ru *Rule) Delivers() bool { return ru.out.link == local }

// Amateur reports whether the payload crossed an amateur link (transport.go) to
// get here, so is, and may only be, clear: the rule delivers here from such a
// link, or is the source rule of a route whose first link is one.
func (ru *Rule) Amateur() bool { return ru.amateur }

// Route is the source route the rule belongs to when this node set it up; nil for
// rules that forward or deliver here.
func (ru *Rule) Route() *Route { return ru.route }

// SetSource records the route's source, learnt from the end-to-end handshake, for
// the status page (RuleStatus.From).
func (ru *Rule) SetSource(k topology.Key) {
	from := [keyLen]byte(k)
	ru.from.Store(&from)
}

// ID names the rule among this node's rules and routes: the top bit set, then its
// in-link and route ID (a stream path's ID; Route.ID has the top bit clear).
func (ru *Rule) ID() uint64 { return 1<<63 | uint64(ru.in.link)<<32 | uint64(ru.in.rid) }

// AllowNotice is a rate limit for answers sent back along the rule: it reports
// true, and starts a new period, when the last true was at least every ago.
func (ru *Rule) AllowNotice(now time.Time, every time.Duration) bool {
	last := ru.notice.Load()
	return now.UnixNano()-last >= int64(every) && ru.notice.CompareAndSwap(last, now.UnixNano())
}

// DetachedRule returns a rule that delivers here from route ID inRID on link
// inLink but is in no table: what Upper.Deliver holds when the rule was removed
// while the payload was on its way up (SendBack along it reports false). Tests of
// the layer above use it.
func DetachedRule(inLink, inRID uint32) *Rule {
	return &Rule{in: hop{link: inLink, rid: inRID}, out: hop{link: local}}
}
