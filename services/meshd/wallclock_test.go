package meshd

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/internal/fleetconf"
	"github.com/skyfleet/skyfleet/internal/walltime"
	"github.com/skyfleet/skyfleet/services/control"
	"github.com/skyfleet/skyfleet/services/mesh/topology"
)

// statusClock reads a node's public /status and returns its clock.
func statusClock(t *testing.T, base string) walltime.Status {
	t.Helper()
	code, body := get(t, "GET", base+"/status", nil)
	var st NodeStatus
	if err := json.Unmarshal([]byte(body), &st); err != nil || code != 200 {
		t.Fatalf("status: %d %v %s", code, err, body)
	}
	if st.Clock == nil {
		t.Fatalf("status has no clock: %s", body)
	}
	if !strings.Contains(body, `"clock": {`) {
		t.Fatalf("status does not show the clock as \"clock\": %s", body)
	}
	return *st.Clock
}

// waitClock polls a node's /status until its clock's source is want, and returns
// that clock; it fails the test after the deadline.
func waitClock(t *testing.T, base, want string, within time.Duration) walltime.Status {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		c := statusClock(t, base)
		if c.Source == want {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("clock still %+v after %v, want source %q", c, within, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A node without a real-time clock and without NTP learns the time from a node
// that has one, through the signed times in gossip: as a peer's, or as the
// master's when that node is its master.
func TestWallTimeFromGossip(t *testing.T) {
	psk := strings.Repeat("ab", 32)
	fast := func(o *Options) { o.AnnounceInterval = 300 * time.Millisecond }
	trust := func(o *Options) { o.TrustSystemClock = true }
	baseA, _, a := runNode(t, "[network]\npsk = \""+psk+"\"\nlan_discovery = false\n", fast, trust)
	if c := statusClock(t, baseA); !c.Known || c.Source != walltime.SourceSystem {
		t.Fatalf("A trusts its host's clock, but its clock is %+v", c)
	}
	// A stands in for B's master in the second case. B reports to it, and a
	// report nobody answers holds B's shutdown for the report's I/O timeout;
	// refusing each report at once keeps the test short.
	reports, err := a.Router.Listen(control.ReportPort)
	if err != nil {
		t.Fatal(err)
	}
	defer reports.Close()
	go func() {
		for {
			c, err := reports.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	peer := a.opts.Config.Node.Listen[0] + "#" + a.Key.PublicKeyHex()
	for _, tc := range []struct {
		name, toml, want string
	}{
		{"peer", "", walltime.SourcePeer},
		{"master", "[master]\npublic_key = \"" + a.Key.PublicKeyHex() + "\"\n", walltime.SourceMaster},
	} {
		t.Run(tc.name, func(t *testing.T) {
			baseB, _, b := runNode(t, "[network]\npsk = \""+psk+"\"\nlan_discovery = false\npeers = [\""+peer+"\"]\n"+tc.toml, fast)
			if c := statusClock(t, baseB); c.Known {
				t.Fatalf("B has no clock to trust and no NTP, yet knows the time: %+v", c)
			}
			// Until B has A's announcement with the time, B must not invent one.
			var at topology.HeldTime
			for deadline := time.Now().Add(10 * time.Second); ; {
				if ts := b.Router.Graph().Times(); len(ts) > 0 {
					at = ts[0]
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("A's announcement with its time never reached B")
				}
				time.Sleep(20 * time.Millisecond)
			}
			if at.Origin != topology.Key(a.Key.PublicKey()) {
				t.Fatalf("the timed announcement is %s's, not A's", at.Origin)
			}
			c := waitClock(t, baseB, tc.want, 15*time.Second)
			got, err := time.Parse(time.RFC3339Nano, c.Time)
			if err != nil {
				t.Fatalf("clock time %q: %v", c.Time, err)
			}
			// B's reading is A's time (this host's clock) within the bound it
			// claims, which covers one announce interval and the margin.
			unc := time.Duration(c.UncertaintyMS) * time.Millisecond
			if d := time.Since(got).Abs(); !c.Known || d > unc+time.Second {
				t.Errorf("B's clock %s is %v off the host's, beyond its bound %v: %+v", c.Time, d, unc, c)
			}
			if unc < 300*time.Millisecond+gossipTimeMargin || unc > time.Minute {
				t.Errorf("uncertainty %v: want about one announce interval (300ms) plus %v", unc, gossipTimeMargin)
			}
			if c.ObservationsTaken == 0 {
				t.Errorf("no observation counted: %+v", c)
			}
			// B learnt it second-hand, so its own announcements carry no time:
			// A's graph holds B's announcement, without one.
			for deadline := time.Now().Add(5 * time.Second); ; {
				bA, ok := a.Router.Graph().Get(topology.Key(b.Key.PublicKey()))
				if ok && bA.Time != 0 {
					t.Fatalf("B passes on a time it learnt from the mesh: %d", bA.Time)
				}
				if ok || time.Now().After(deadline) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// Close writes the floor, a lower bound of the time the node knew, so that after
// a restart the time does not go back past it.
func TestWallFloorAtClose(t *testing.T) {
	data := t.TempDir()
	text := fmt.Sprintf("[node]\nlisten = [\"udp://127.0.0.1:%d\"]\ndata = %q\n[network]\nlan_discovery = false\n", freeUDPPort(t), data)
	cfg, problems := fleetconf.Parse([]byte(text), false)
	n, err := Start(context.Background(), Options{Config: cfg, Problems: problems, TrustSystemClock: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(data, "walltime"))
	if err != nil {
		t.Fatalf("no floor written at Close: %v", err)
	}
	var floor int64
	if _, err := fmt.Sscanf(string(raw), "%d", &floor); err != nil || time.Unix(floor, 0).After(time.Now()) || time.Since(time.Unix(floor, 0)) > time.Minute {
		t.Errorf("floor %q (%v): want a little before now", raw, err)
	}
	// The next start begins from it: not known, but not 1970 either.
	n, err = Start(context.Background(), Options{Config: cfg, Problems: problems})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if c := n.State().Clock; c == nil || c.Known || c.Source != walltime.SourcePersisted || c.Floor == "" {
		t.Errorf("after a restart without a trusted clock: %+v", c)
	}
}

// The feed's rules: the first announcement seen of an origin is only remembered,
// later ones are observed once each, the master's as "master", with the age since
// storage added and the announce interval plus the margin as the bound.
func TestWallFeedStep(t *testing.T) {
	clock, err := walltime.Open(t.TempDir(), walltime.Options{Logf: func(string, ...any) {}})
	if err != nil {
		t.Fatal(err)
	}
	var master, peer topology.Key
	master[0], peer[0] = 2, 3
	f := &wallFeed{clock: clock, master: master, hasMaster: true, interval: 10 * time.Second, seen: map[topology.Key]feedState{}}
	now := time.Now()
	ref := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	held := func(k topology.Key, seq uint64, age time.Duration) topology.HeldTime {
		return topology.HeldTime{Origin: k, Seq: seq, Time: ref.UnixMilli(), Stored: now.Add(-age)}
	}
	f.step([]topology.HeldTime{held(peer, 4, 0)}, now)
	if r := clock.Now(); r.Known {
		t.Fatalf("the first announcement seen was taken: %+v", r)
	}
	f.step([]topology.HeldTime{held(peer, 5, 3*time.Second)}, now)
	r := clock.Now()
	if !r.Known || r.Source != walltime.SourcePeer {
		t.Fatalf("a later announcement was not taken: %+v", r)
	}
	if want := ref.Add(3 * time.Second); r.Time.Sub(want).Abs() > time.Second {
		t.Errorf("time %s, want the announced time plus its 3 s in the graph, %s", r.Time, want)
	}
	if r.Uncertainty < 10*time.Second+gossipTimeMargin || r.Uncertainty > 10*time.Second+gossipTimeMargin+time.Millisecond {
		t.Errorf("uncertainty %v, want the interval plus %v", r.Uncertainty, gossipTimeMargin)
	}
	// The same announcement again is not observed again.
	before := clock.Stats()
	f.step([]topology.HeldTime{held(peer, 5, 5*time.Second)}, now)
	if s := clock.Stats(); s.ObservationsTaken != before.ObservationsTaken || s.ObservationsIgnored != before.ObservationsIgnored {
		t.Errorf("the same Seq was offered again: %+v -> %+v", before, s)
	}
	// The master: first seen, then a newer one, which outranks the peer.
	f.step([]topology.HeldTime{held(master, 1, 0), held(peer, 5, 0)}, now)
	f.step([]topology.HeldTime{held(master, 2, 0), held(peer, 5, 0)}, now)
	if r := clock.Now(); r.Source != walltime.SourceMaster {
		t.Errorf("the master's time was not taken as the master's: %+v", r)
	}
	// An origin that leaves the graph is forgotten: when it comes back, its first
	// announcement is only remembered again.
	f.step(nil, now)
	if len(f.seen) != 0 {
		t.Errorf("forgotten origins still held: %v", f.seen)
	}
}
