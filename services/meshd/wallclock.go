package meshd

import (
	"context"
	"encoding/hex"
	"time"

	"github.com/skyfleet/skyfleet/internal/walltime"
	"github.com/skyfleet/skyfleet/services/mesh/topology"
)

// The node's wall-clock time (package walltime). A Pi has no real-time clock and
// boots at 1970; the node learns the date from [time] servers (NTP), from the
// host's own clock where it has one (Options.TrustSystemClock), and from the times
// that the master and peers put in their signed announcements, and puts its own in
// its announcements when it knows it first-hand.

// defaultAnnounceInterval is mesh.Config's default AnnounceInterval, which the
// router uses when Options.AnnounceInterval is 0.
const defaultAnnounceInterval = 10 * time.Second

// gossipTimeMargin is added to the staleness bound of an announced time. It covers
// what the announcement does not say: the origin's own error (an origin announces
// only a time it has first-hand, from NTP or a host clock, see announcedTime, both
// good to about a second), the millisecond the time is truncated to, and the
// flooding's transit across the mesh.
const gossipTimeMargin = 2 * time.Second

// wallFeedEvery is how often the times announced in the graph are offered to the
// clock: a few seconds, well within an announce interval, and each offer costs a
// pass over the graph.
const wallFeedEvery = 2 * time.Second

// openWall opens the wall clock, its floor in [node] data, before anything signs
// an announcement or stamps a message.
func (n *Node) openWall() error {
	c, err := walltime.Open(n.opts.Config.Node.Data, walltime.Options{
		Servers:     n.opts.Config.Time.Servers,
		Logf:        n.opts.Logf,
		TrustSystem: n.opts.TrustSystemClock,
	})
	if err != nil {
		return err
	}
	n.Wall = c
	return nil
}

// runWall runs the clock (NTP from [time] servers, and the floor's writes) and,
// when the node has a router, the feed of announced times, until ctx ends or
// Close.
func (n *Node) runWall(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{}, 2)
	waits := 1
	go func() {
		defer func() { done <- struct{}{} }()
		n.Wall.Run(ctx)
	}()
	if n.Router != nil {
		waits++
		go func() {
			defer func() { done <- struct{}{} }()
			n.feedWall(ctx)
		}()
	}
	n.stopWall = func() {
		cancel()
		for range waits {
			<-done
		}
	}
}

// closeWall stops the clock's goroutines, stops stamping announcements, and writes
// the floor one last time.
func (n *Node) closeWall() {
	if n.stopWall != nil {
		n.stopWall()
		n.stopWall = nil
	}
	if n.untime != nil {
		n.untime()
		n.untime = nil
	}
	if n.Wall != nil {
		if err := n.Wall.Close(); err != nil {
			n.logf("wall clock: %v", err)
		}
	}
}

// stampAnnouncements makes the router's announcements carry the node's time
// (topology.SetTimeSource): the router signs them and knows nothing of clocks.
func (n *Node) stampAnnouncements() {
	n.untime = topology.SetTimeSource(topology.Key(n.Key.PublicKey()), n.announcedTime)
}

// announcedTime is the time the node puts in its announcements, in Unix ms, or 0.
// Only a time it has first-hand (NTP or the host's clock) goes out: a time learnt
// from the mesh is not passed on, because every node hears the first-hand source's
// own announcement anyway (gossip floods), and each hop of passing on would add
// its staleness to an error bound that the announcement cannot carry.
func (n *Node) announcedTime() int64 {
	r := n.Wall.Now()
	if !r.Known || (r.Source != walltime.SourceNTP && r.Source != walltime.SourceSystem) {
		return 0
	}
	return r.Time.UnixMilli()
}

// wallNow is the wall time for store-and-forward and messaging: the reading and
// whether it is known.
func (n *Node) wallNow() (time.Time, bool) {
	r := n.Wall.Now()
	return r.Time, r.Known
}

// feedWall offers the times announced in the graph to the clock every
// wallFeedEvery until ctx ends.
func (n *Node) feedWall(ctx context.Context) {
	var master topology.Key
	hasMaster := false
	if b, err := hex.DecodeString(n.opts.Config.Master.PublicKey); err == nil && len(b) == len(master) {
		copy(master[:], b)
		hasMaster = true
	}
	interval := n.opts.AnnounceInterval
	if interval <= 0 {
		interval = defaultAnnounceInterval
	}
	f := &wallFeed{clock: n.Wall, master: master, hasMaster: hasMaster, interval: interval, seen: map[topology.Key]feedState{}}
	t := time.NewTicker(wallFeedEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f.step(n.Router.Graph().Times(), time.Now())
		}
	}
}

// wallFeed turns announced times into observations for the clock.
type wallFeed struct {
	clock     *walltime.Clock
	master    topology.Key
	hasMaster bool
	interval  time.Duration // the router's announce interval
	seen      map[topology.Key]feedState
}

// feedState is what the feed remembers of one origin.
type feedState struct {
	first uint64 // Seq of the first timed announcement seen from it
	fed   uint64 // Seq last offered to the clock
}

// step offers each announcement in held (Graph.Times) that is new since the last
// step and not the first seen of its origin:
//
//   - the time offered is the announced time plus the time since the announcement
//     was stored, which the local monotonic clock measures;
//   - the uncertainty is how stale the announcement could have been when it was
//     stored: an origin re-signs every announce interval and floods at once, so
//     no copy of a live origin's announcement is older than that interval, plus
//     gossipTimeMargin;
//   - the first announcement seen of an origin is only remembered, because it may
//     be a stale copy from a neighbour's graph, sent when the link came up, of an
//     origin that has gone silent (a neighbour keeps those for 4.5 intervals);
//     a later Seq was announced after it, and a live origin sends one within an
//     interval.
//
// The master's announcements are observed as "master", everyone else's as "peer";
// the clock decides what to take.
func (f *wallFeed) step(held []topology.HeldTime, now time.Time) {
	seen := make(map[topology.Key]feedState, len(held))
	for _, h := range held {
		st, ok := f.seen[h.Origin]
		if !ok {
			st.first = h.Seq
		}
		if h.Seq > st.first && h.Seq != st.fed {
			st.fed = h.Seq
			src := walltime.SourcePeer
			if f.hasMaster && h.Origin == f.master {
				src = walltime.SourceMaster
			}
			age := max(now.Sub(h.Stored), 0)
			f.clock.Observe(src, time.UnixMilli(h.Time).Add(age), f.interval+gossipTimeMargin)
		}
		seen[h.Origin] = st // origins no longer held are forgotten
	}
	f.seen = seen
}
