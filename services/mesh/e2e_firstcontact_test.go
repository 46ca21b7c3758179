package mesh

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/skyfleet/skyfleet/services/mesh/forward"
	"github.com/skyfleet/skyfleet/services/mesh/internal/memnet"
	"github.com/skyfleet/skyfleet/services/mesh/topology"
)

// The first contact with a destination costs two round trips of the path: the
// route's Setup and Confirm, then the end-to-end handshake, whose answer comes
// back along the route the Init arrived on. These tests count what is sent
// rather than time it, and bound the times by the link delays they configure.

// firstContactDelay is the one-way delay of every link in these tests: long enough
// that a round trip of the path dwarfs the nodes' own processing on a loaded machine.
const firstContactDelay = 40 * time.Millisecond

// firstContactLine builds a line of hops+1 nodes with firstContactDelay on every
// link and waits until the topology has converged and every link has an RTT
// sample (retransmission timeouts are scaled from them).
func firstContactLine(t *testing.T, hops int) (*memnet.Net, []*testNode) {
	t.Helper()
	m := newMemnet()
	m.SetDelay(firstContactDelay)
	nodes := buildMesh(t, m, hops+1, line(hops+1), nil)
	waitConverged(t, nodes, 20*time.Second)
	waitCond(t, 10*time.Second, "an RTT sample on every link", func() bool {
		for _, nd := range nodes {
			for _, l := range nd.r.Links() {
				if l.Up && l.RTTms == 0 {
					return false
				}
			}
		}
		return true
	})
	return m, nodes
}

// pathRTT is the configured round trip of a path of hops links.
func pathRTT(hops int) time.Duration { return time.Duration(hops) * 2 * firstContactDelay }

// firstContactBound bounds a first contact's SetupTime by what a third round trip
// of the path would take at least: every round trip crosses the configured delays,
// so a contact that needed three (an answer waiting for a route back, a fixed wait)
// cannot finish under 3 round trips, whatever the machine's load. Two round trips
// leave one whole round trip for the nodes' processing, so the bound holds on a
// busy CI machine without timing the nodes themselves.
func firstContactBound(hops int) time.Duration { return 3 * pathRTT(hops) }

func TestFirstContactOneRoundTrip(t *testing.T) {
	for _, hops := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d hops", hops), func(t *testing.T) {
			_, nodes := firstContactLine(t, hops)
			src, dst := nodes[0].r, nodes[hops].r
			setups, inits := src.SetupsSent(), src.e2e.initsSent.Load()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			res, err := src.Ping(ctx, dst.self)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(res.Path) - 1; got != hops {
				t.Fatalf("the echo went %d hops, want %d", got, hops)
			}
			// A line has one path: one Setup, and one Init, neither resent.
			if n := src.SetupsSent() - setups; n != 1 {
				t.Errorf("%d Setups sent for a first ping without loss, want 1", n)
			}
			if n := src.e2e.initsSent.Load() - inits; n != 1 {
				t.Errorf("%d handshake Inits sent for a first ping without loss, want 1", n)
			}
			if res.RTT < pathRTT(hops) {
				t.Errorf("echo round trip %v is shorter than the configured %v", res.RTT, pathRTT(hops))
			}
			if b := firstContactBound(hops); res.SetupTime >= b {
				t.Errorf("first contact took %v, want < %v (2 round trips of %v, and slack)", res.SetupTime, b, pathRTT(hops))
			}
			t.Logf("%d hops: setup %v, echo %v", hops, res.SetupTime, res.RTT)
		})
	}
}

// A lost Setup, Init or handshake answer costs one retransmission after a timeout
// scaled by the path's round trip, not the contact.
func TestFirstContactRetransmits(t *testing.T) {
	const hops = 3
	type counts struct{ setups, inits uint64 }
	cases := []struct {
		name string
		// lose reports whether a datagram from node from to node to is lost,
		// given what node 0 has sent so far in this contact.
		lose func(from, to int, sent counts) bool
		want counts
	}{
		{"Setup", func(from, to int, sent counts) bool {
			return from == 0 && to == 1 && sent.setups == 1
		}, counts{2, 1}},
		{"Init", func(from, to int, sent counts) bool {
			return from == 0 && to == 1 && sent.inits == 1
		}, counts{1, 2}},
		{"answer", func(from, to int, sent counts) bool {
			return from == 1 && to == 0 && sent.inits == 1
		}, counts{1, 2}},
	}
	for _, c := range cases {
		t.Run("lost "+c.name, func(t *testing.T) {
			m, nodes := firstContactLine(t, hops)
			src, dst := nodes[0].r, nodes[hops].r
			index := make(map[string]int)
			for i, nd := range nodes {
				index[nd.tr.Addr()] = i
			}
			base := counts{src.SetupsSent(), src.e2e.initsSent.Load()}
			sent := func() counts {
				return counts{src.SetupsSent() - base.setups, src.e2e.initsSent.Load() - base.inits}
			}
			m.SetDrop(func(from, to string, _ []byte) bool { return c.lose(index[from], index[to], sent()) })
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			res, err := src.Ping(ctx, dst.self)
			if err != nil {
				t.Fatal(err)
			}
			if got := sent(); got != c.want {
				t.Errorf("sent %d Setups and %d Inits, want %d and %d", got.setups, got.inits, c.want.setups, c.want.inits)
			}
			// One retransmission timeout more than a first contact without loss:
			// the handshake's is 3 round trips of the path and the handshake
			// work (the Setup's is less); one more round trip for slack.
			if b := firstContactBound(hops) + 4*pathRTT(hops) + handshakeWork; res.SetupTime >= b {
				t.Errorf("first contact with a lost %s took %v, want < %v", c.name, res.SetupTime, b)
			}
			t.Logf("lost %s: setup %v", c.name, res.SetupTime)
		})
	}
}

// Where the answer cannot go back along the route (a node on it that does not
// know Back frames is like a rule that is gone), the destination answers over a
// route of its own, set up the moment the Init arrives and used the moment it is
// confirmed: two round trips, no timer.
func TestFirstContactAnswerWithoutBack(t *testing.T) {
	const hops = 3
	_, nodes := firstContactLine(t, hops)
	src, dst := nodes[0].r, nodes[hops].r
	sp, err := src.e2e.peerFor(dst.self)
	if err != nil {
		t.Fatal(err)
	}
	msg, _, err := src.e2e.sessions.Initiate(dst.self[:], sp, src.cfg.Clock(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	sp.mu.Lock()
	ready := sp.ready
	sp.mu.Unlock()

	// The Init as if it had come over a route whose rule is no longer in the
	// table: there is no way back along it.
	ghost := forward.DetachedRule(1<<30, 1)
	setups := dst.SetupsSent()
	start := time.Now()
	dst.e2e.Deliver(ghost, msg, start)
	select {
	case <-ready:
	case <-time.After(5 * time.Second):
		t.Fatal("no handshake answer in 5 s")
	}
	took := time.Since(start)
	if n := dst.SetupsSent() - setups; n != 1 {
		t.Errorf("the destination sent %d Setups for its route back, want 1", n)
	}
	// One round trip to set the route back up, half of one for the answer.
	if b := pathRTT(hops) + pathRTT(hops)/2 + pathRTT(hops)/2; took >= b {
		t.Errorf("the answer arrived %v after the Init, want < %v", took, b)
	}
	t.Logf("answer over a route back after %v", took)
}

// A stream dialled on a first contact: the acceptor answers the SYN along the
// route it came on when its own route back is not up yet, so the data follows
// after the connect's two round trips and the stream's one and a half.
func TestFirstContactStream(t *testing.T) {
	const hops = 3
	_, nodes := firstContactLine(t, hops)
	src, dst := nodes[0].r, nodes[hops].r
	l, err := dst.Listen(7)
	if err != nil {
		t.Fatal(err)
	}
	arrived := make(chan time.Time, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		var b [5]byte
		if _, err := io.ReadFull(c, b[:]); err == nil {
			arrived <- time.Now()
		}
	}()
	setups, inits := src.SetupsSent(), src.e2e.initsSent.Load()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := src.Dial(ctx, dst.self, 7)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	var at time.Time
	select {
	case at = <-arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("no data at the acceptor in 5 s")
	}
	if n := src.SetupsSent() - setups; n != 1 {
		t.Errorf("%d Setups sent, want 1", n)
	}
	if n := src.e2e.initsSent.Load() - inits; n != 1 {
		t.Errorf("%d handshake Inits sent, want 1", n)
	}
	// Route setup and handshake (2 round trips), SYN, SYN-ACK and data (1.5),
	// and half a round trip for the nodes' processing.
	if b := 4 * pathRTT(hops); at.Sub(start) >= b {
		t.Errorf("the first bytes arrived %v after Dial, want < %v", at.Sub(start), b)
	}
	t.Logf("first bytes at the acceptor after %v", at.Sub(start))
}

// A first contact waiting for a destination's announcement (awaitTopology)
// returns once the announcement arrives: here from a node that starts after the
// wait has begun. (TestGraphChangeWakesWatchers in package forward shows every
// change to the graph wakes GraphWatch, which awaitTopology waits on.)
func TestAwaitTopologyWakes(t *testing.T) {
	m := newMemnet()
	nodes := buildMesh(t, m, 2, line(2), nil)
	waitConverged(t, nodes, 10*time.Second)
	key, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	late := &testNode{tr: m.Transport(), key: key}
	r := nodes[0].r
	var k topology.Key
	copy(k[:], key.PubKey().SerializeCompressed())
	found := make(chan error, 1)
	go func() { found <- r.e2e.awaitTopology(context.Background(), k) }()
	start := time.Now()
	// The late node links to nodes[1] and announces itself; the announcement
	// reaches nodes[0] by gossip, well within topologyWait.
	lr := restarted(t, m, late, 2*time.Second, nodes[1].peer())
	late.r = lr
	select {
	case err := <-found:
		if err != nil {
			t.Errorf("awaiting the key: %v (%v after the node started)", err, time.Since(start).Round(time.Millisecond))
		}
		if _, ok := r.graph.Get(k); !ok {
			t.Error("awaitTopology returned before the graph held the key")
		}
	case <-time.After(topologyWait + time.Second):
		t.Error("awaitTopology still waiting after the node joined")
	}
}
