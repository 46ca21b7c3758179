package registry

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	bolt "go.etcd.io/bbolt"

	"github.com/skyfleet/skyfleet/internal/boltdb"
	"github.com/skyfleet/skyfleet/services/control"
)

func signed(t *testing.T, priv *secp256k1.PrivateKey, seq uint64, r control.Report) *control.Signed {
	t.Helper()
	s := &control.Signed{Seq: seq, Report: r}
	copy(s.Node[:], priv.PubKey().SerializeCompressed())
	return s
}

func open(t *testing.T) (*Registry, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "registry.db")
	r, err := Open(path, 80*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, path
}

func events(d Detail) []string {
	var out []string
	for _, e := range d.History {
		out = append(out, e.Event+": "+e.Detail)
	}
	return out
}

func TestRecordHistoryAndOffline(t *testing.T) {
	reg, path := open(t)
	k, _ := secp256k1.GeneratePrivateKey()
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	rep := control.Report{Name: "kit-1", Board: "rpi3b", Version: "v1", Slot: "a", UptimeSeconds: 5,
		Links:    []control.Link{{Address: "sky1peer", Up: true, RTTms: 2}},
		Services: []control.ServiceState{{Name: "mesh", State: "running"}}}
	n, err := reg.Record(signed(t, k, 10, rep), t0)
	if err != nil {
		t.Fatal(err)
	}
	if !n.Online || n.LinksUp != 1 || n.Name != "kit-1" || !n.FirstSeen.Equal(t0) || n.Address == "" {
		t.Fatalf("recorded node: %+v", n)
	}
	// The same seq again is a replay and changes nothing.
	if _, err := reg.Record(signed(t, k, 10, rep), t0.Add(time.Second)); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay: %v", err)
	}
	rep2 := rep
	rep2.Version, rep2.UptimeSeconds = "v2", 65
	rep2.Services = []control.ServiceState{{Name: "mesh", State: "backoff"}, {Name: "radio", State: "running"}}
	if _, err := reg.Record(signed(t, k, 11, rep2), t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	// Not yet overdue at 79 s after the last report, overdue at 81 s.
	last := t0.Add(time.Minute)
	if gone, _ := reg.Sweep(last.Add(79 * time.Second)); len(gone) != 0 {
		t.Fatalf("swept too early: %v", gone)
	}
	gone, err := reg.Sweep(last.Add(81 * time.Second))
	if err != nil || len(gone) != 1 || gone[0].Online {
		t.Fatalf("sweep: %v %+v", err, gone)
	}
	if gone, _ := reg.Sweep(last.Add(90 * time.Second)); len(gone) != 0 {
		t.Fatal("a node was logged offline twice")
	}
	nodes, _ := reg.Nodes(last.Add(90 * time.Second))
	if len(nodes) != 1 || nodes[0].Online {
		t.Fatalf("nodes: %+v", nodes)
	}
	// It comes back: online again.
	if _, err := reg.Record(signed(t, k, 12, rep2), last.Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	// The registry survives a restart.
	reg.Close()
	reg2, err := Open(path, 80*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer reg2.Close()
	d, err := reg2.Lookup("kit-1", last.Add(5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(events(d), "\n")
	for _, want := range []string{"registered: rpi3b v1", `version: "v1" -> "v2"`, "service: mesh: running -> backoff",
		"service: radio: absent -> running", "offline: no report since", "online: reporting again after 5m0s"} {
		if !strings.Contains(got, want) {
			t.Errorf("history lacks %q:\n%s", want, got)
		}
	}
	if !d.Node.Online || d.Node.Seq != 12 || len(d.Metrics) != 3 || d.Metrics[0].Links[0].RTTms != 2 {
		t.Fatalf("detail: %+v", d)
	}
	for _, id := range []string{d.Node.Address, d.Node.PublicKey} {
		if d2, err := reg2.Lookup(id, t0); err != nil || d2.Node.PublicKey != d.Node.PublicKey {
			t.Errorf("lookup %s: %v", id, err)
		}
	}
	if _, err := reg2.Lookup("nobody", t0); !errors.Is(err, ErrUnknownNode) {
		t.Errorf("unknown node: %v", err)
	}
}

func TestMetricsAreCapped(t *testing.T) {
	reg, _ := open(t)
	k, _ := secp256k1.GeneratePrivateKey()
	t0 := time.Now()
	for i := range MaxSamples + 5 {
		rep := control.Report{Board: "host", Links: []control.Link{{Address: "x", RTTms: float64(i)}}}
		if _, err := reg.Record(signed(t, k, uint64(i+1), rep), t0.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	d, err := reg.Lookup(signed(t, k, 0, control.Report{}).Report.Name, t0)
	if err == nil {
		t.Fatal("an empty name matched a node")
	}
	nodes, _ := reg.Nodes(t0)
	d, err = reg.Lookup(nodes[0].PublicKey, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Metrics) != MaxSamples || d.Metrics[0].Links[0].RTTms != 5 || d.Metrics[MaxSamples-1].Links[0].RTTms != MaxSamples+4 {
		t.Fatalf("%d samples, first %v", len(d.Metrics), d.Metrics[0])
	}
}

func TestActionsNewestFirst(t *testing.T) {
	reg, _ := open(t)
	for i, a := range []string{"exec", "refused", "ssh"} {
		if err := reg.LogAction(Action{Time: time.Unix(int64(i), 0), Node: "n", Action: a}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := reg.Actions(2)
	if err != nil || len(got) != 2 || got[0].Action != "ssh" || got[1].Action != "refused" {
		t.Fatalf("%v %+v", err, got)
	}
}

// Names are labels: two nodes may report the same one. Both are marked, and a
// lookup by that name is refused with the candidates rather than answered with
// whichever comes first (the hijack of issue 4: a second kit-07 got the
// operator's exec).
func TestDuplicateNames(t *testing.T) {
	reg, _ := open(t)
	first, second, other := fleetKey(1), fleetKey(2), fleetKey(3)
	rep := control.Report{Name: "kit-07", Board: "rpi4b"}
	if _, err := reg.Record(signed(t, first, 1, rep), t0); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Record(signed(t, second, 1, rep), t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	// A third names itself after the first's address: the address still wins.
	firstAddr := mustNode(t, reg, first).Address
	if _, err := reg.Record(signed(t, other, 1, control.Report{Name: firstAddr}), t0); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(2 * time.Minute)
	nodes, err := reg.Nodes(now)
	if err != nil || len(nodes) != 3 {
		t.Fatal(err, nodes)
	}
	for _, n := range nodes {
		if want := n.Name == "kit-07"; n.DuplicateName != want {
			t.Errorf("%s (%s): duplicate_name %v, want %v", n.Name, n.Address, n.DuplicateName, want)
		}
	}
	_, err = reg.Lookup("kit-07", now)
	var amb *AmbiguousNameError
	if !errors.As(err, &amb) || !errors.Is(err, ErrAmbiguousName) || len(amb.Candidates) != 2 {
		t.Fatalf("lookup of a shared name: %v", err)
	}
	// The one still online (the second) first.
	secondAddr := mustNode(t, reg, second).Address
	if amb.Candidates[0].Address != secondAddr || amb.Candidates[1].Address != firstAddr {
		t.Errorf("candidates %s, %s; want %s first", amb.Candidates[0].Address, amb.Candidates[1].Address, secondAddr)
	}
	for _, want := range []string{firstAddr, secondAddr, `"kit-07"`, "address or public key", "last seen 2026-11-30T12:0"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	for _, id := range []string{firstAddr, mustNode(t, reg, first).PublicKey} {
		if d, err := reg.Lookup(id, now); err != nil || d.Node.Address != firstAddr || !d.Node.DuplicateName {
			t.Errorf("lookup %s: %v %s dup=%v", id, err, d.Node.Address, d.Node.DuplicateName)
		}
	}
}

func mustNode(t *testing.T, reg *Registry, k *secp256k1.PrivateKey) Node {
	t.Helper()
	d, err := reg.Lookup(hex.EncodeToString(k.PubKey().SerializeCompressed()), t0)
	if err != nil {
		t.Fatal(err)
	}
	return d.Node
}

// Refused reports have their own log: a flood of them (anyone with the network
// key can send them) is capped and counted there, and the operator's actions
// stay. On the code before, refusals went into the operator's log and 5000 of
// them pushed every action out.
func TestRefusalsCannotFlushActions(t *testing.T) {
	reg, path := open(t)
	for i := range 10 {
		if err := reg.LogAction(Action{Time: t0.Add(time.Duration(i) * time.Second), Node: "sky1kit", Action: "exec", Detail: fmt.Sprintf("operator %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 6000 {
		reg.LogRefusal(Action{Time: t0.Add(time.Minute + time.Duration(i)*time.Millisecond), Node: "sky1stranger", Action: "refused", Detail: fmt.Sprintf("report: replay %d", i)})
		if i%500 == 499 {
			if _, err := reg.Sweep(t0.Add(time.Minute)); err != nil { // the master's sweep writes them
				t.Fatal(err)
			}
		}
	}
	actions, err := reg.Actions(MaxActions)
	if err != nil || len(actions) != 10 || actions[0].Detail != "operator 9" || actions[9].Detail != "operator 0" {
		t.Fatalf("operator's actions after the flood: %v %d %+v", err, len(actions), actions)
	}
	ref, err := reg.Refusals(MaxRefusals + 10)
	if err != nil || len(ref.Refusals) != MaxRefusals || ref.Dropped != 6000-MaxRefusals || ref.Refusals[0].Detail != "report: replay 5999" {
		t.Fatalf("refusals: %v, %d kept, %d dropped, newest %+v", err, len(ref.Refusals), ref.Dropped, ref.Refusals[0])
	}
	// More than MaxRefusals waiting between two writes: the oldest are dropped
	// and counted before they reach the disk.
	for i := range MaxRefusals + 5 {
		reg.LogRefusal(Action{Time: t0.Add(2 * time.Minute), Action: "refused", Detail: fmt.Sprint("burst ", i)})
	}
	// And a week on, the old ones expire.
	reg.LogRefusal(Action{Time: t0.Add(MaxRefusalAge + 3*time.Minute), Action: "refused", Detail: "late"})
	ref, err = reg.Refusals(MaxRefusals + 10)
	if err != nil || len(ref.Refusals) != 1 || ref.Refusals[0].Detail != "late" || ref.Dropped != 6000+MaxRefusals+5 {
		t.Fatalf("after expiry: %v, %d kept, %d dropped", err, len(ref.Refusals), ref.Dropped)
	}
	// All of it survives a restart, checked.
	reg.Close()
	reg2, err := Open(path, 80*time.Second)
	if err != nil || reg2.Recovery() != nil {
		t.Fatal(err, reg2.Recovery())
	}
	defer reg2.Close()
	if ref, _ := reg2.Refusals(10); ref.Dropped != 6000+MaxRefusals+5 || len(ref.Refusals) != 1 {
		t.Fatalf("after a restart: %+v", ref)
	}
}

// The operator's log is capped in age too.
func TestActionsExpire(t *testing.T) {
	reg, _ := open(t)
	reg.LogAction(Action{Time: t0, Action: "exec", Detail: "old"})
	reg.LogAction(Action{Time: t0.Add(MaxActionAge - time.Hour), Action: "exec", Detail: "recent"})
	reg.LogAction(Action{Time: t0.Add(MaxActionAge + time.Hour), Action: "exec", Detail: "new"})
	got, _ := reg.Actions(10)
	if len(got) != 2 || got[0].Detail != "new" || got[1].Detail != "recent" {
		t.Fatalf("%+v", got)
	}
}

// A registry written before values were sealed opens with its records, sealed
// from then on.
func TestLegacyRegistry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.db")
	k := fleetKey(4)
	pub := k.PubKey().SerializeCompressed()
	s := signed(t, k, 5, control.Report{Name: "old-kit", Board: "rpi3b"})
	db, _, err := boltdb.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range []string{"nodes", "history", "metrics", "actions"} {
			tx.CreateBucket([]byte(b))
		}
		rec, _ := json.Marshal(record{Node: nodeFrom(s, t0), Report: s.Report})
		tx.Bucket([]byte("nodes")).Put(pub, rec)
		for _, b := range []string{"history", "metrics"} {
			nb, _ := tx.Bucket([]byte(b)).CreateBucket(pub)
			seq, _ := nb.NextSequence()
			nb.Put(binary.BigEndian.AppendUint64(nil, seq), []byte(`{"time":"2026-11-30T12:00:00Z","event":"registered","detail":"rpi3b"}`))
		}
		ab := tx.Bucket([]byte("actions"))
		seq, _ := ab.NextSequence()
		return ab.Put(binary.BigEndian.AppendUint64(nil, seq), []byte(`{"time":"2026-11-30T12:00:00Z","node":"x","action":"refused","detail":"report: replay"}`))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		reg, err := Open(path, 80*time.Second)
		if err != nil || reg.Recovery() != nil {
			t.Fatal(err, reg.Recovery())
		}
		d, err := reg.Lookup("old-kit", t0)
		a, _ := reg.Actions(10)
		reg.Close()
		if err != nil || d.Node.Seq != 5 || len(d.History) != 1 || len(a) != 1 || a[0].Detail != "report: replay" {
			t.Fatalf("%v %+v %+v", err, d, a)
		}
	}
}

// A registry of a newer format is refused and left alone, not moved aside.
func TestNewerFormatRefused(t *testing.T) {
	reg, path := open(t)
	reg.db.Update(func(tx *bolt.Tx) error { return top(tx, bucketMeta).put(keyFormat, Format+1) })
	reg.Close()
	if _, err := Open(path, 80*time.Second); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("open of a newer registry: %v", err)
	}
	if m, _ := filepath.Glob(path + ".corrupt-*"); len(m) != 0 {
		t.Fatal("moved aside")
	}
}

// A value damaged while the master runs is counted and left out, never
// served; the node's next report starts its record afresh.
func TestRuntimeDamageCounted(t *testing.T) {
	reg, _ := open(t)
	k := fleetKey(5)
	if _, err := reg.Record(signed(t, k, 1, control.Report{Name: "kit"}), t0); err != nil {
		t.Fatal(err)
	}
	pub := k.PubKey().SerializeCompressed()
	reg.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketNodes)
		v := slices.Clone(b.Get(pub))
		v[len(v)-3] ^= 1
		return b.Put(pub, v)
	})
	reg.Nodes(t0)
	if n, _ := reg.Nodes(t0); len(n) != 0 || reg.CorruptRecords() != 1 {
		t.Fatalf("nodes %+v, %d corrupt (one record, read twice)", n, reg.CorruptRecords())
	}
	if _, err := reg.Lookup(hex.EncodeToString(pub), t0); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("lookup of a damaged record: %v", err)
	}
	n, err := reg.Record(signed(t, k, 2, control.Report{Name: "kit"}), t0.Add(time.Minute))
	if err != nil || !n.FirstSeen.Equal(t0.Add(time.Minute)) {
		t.Fatalf("%v %+v", err, n)
	}
	if d, _ := reg.Lookup("kit", t0); !strings.Contains(events(d)[len(d.History)-1], "damaged") {
		t.Errorf("history: %v", events(d))
	}
}

// The nodes kept are capped, and nodes gone for ForgetAfter are forgotten.
func TestNodesCappedAndForgotten(t *testing.T) {
	reg, path := open(t)
	old, cur := fleetKey(6), fleetKey(7)
	reg.Record(signed(t, old, 1, control.Report{Name: "gone"}), t0)
	reg.Record(signed(t, cur, 1, control.Report{Name: "here"}), t0.Add(ForgetAfter))
	forgotten, err := reg.Forget(t0.Add(ForgetAfter + time.Minute))
	if err != nil || len(forgotten) != 1 || forgotten[0].Name != "gone" {
		t.Fatalf("forget: %v %+v", err, forgotten)
	}
	if nodes, _ := reg.Nodes(t0); len(nodes) != 1 || nodes[0].Name != "here" {
		t.Fatalf("nodes %+v", nodes)
	}
	// Full: a new node is refused, a known one still reports.
	reg.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketNodes).SetSequence(MaxNodes) })
	if _, err := reg.Record(signed(t, fleetKey(8), 1, control.Report{}), t0); !errors.Is(err, ErrFull) {
		t.Fatalf("a new node in a full registry: %v", err)
	}
	if _, err := reg.Record(signed(t, cur, 2, control.Report{Name: "here"}), t0.Add(ForgetAfter+time.Minute)); err != nil {
		t.Fatal(err)
	}
	reg.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketNodes).SetSequence(1) })
	reg.Close()
	reg2, err := Open(path, 80*time.Second)
	if err != nil || reg2.Recovery() != nil {
		t.Fatalf("reopen after forgetting: %v %v", err, reg2.Recovery())
	}
	reg2.Close()
}

// A node's update outcomes reach the master: each new one is a history event
// with its reason, and the node record carries the update state.
func TestUpdateOutcomesInHistory(t *testing.T) {
	reg, _ := open(t)
	k, _ := secp256k1.GeneratePrivateKey()
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	rep := control.Report{Name: "kit-2", Board: "rpi3b", Version: "1.0", Slot: "a", UptimeSeconds: 5}
	if _, err := reg.Record(signed(t, k, 1, rep), t0); err != nil {
		t.Fatal(err)
	}
	trial := &control.UpdateOutcome{Result: "trial", Version: "1.1", Slot: "b", At: t0}
	rolled := &control.UpdateOutcome{Result: "rolled back", Version: "1.1", Slot: "b", Reason: "health check failed: mesh not ready", At: t0.Add(time.Minute)}
	for i, u := range []*control.UpdateState{
		{OtherVersion: "1.1", Trial: "b", Last: trial},
		{OtherVersion: "1.1", Trial: "b", Last: trial}, // unchanged: no event
		{OtherVersion: "1.1", Last: rolled},
	} {
		rep.Update, rep.UptimeSeconds = u, float64(10+i)
		if _, err := reg.Record(signed(t, k, uint64(2+i), rep), t0.Add(time.Duration(i+1)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	d, err := reg.Lookup("kit-2", t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range events(d) {
		if strings.HasPrefix(e, "update: ") {
			got = append(got, e)
		}
	}
	want := []string{"update: trial 1.1 in slot b", "update: rolled back 1.1 in slot b: health check failed: mesh not ready"}
	if !slices.Equal(got, want) {
		t.Errorf("update events %q, want %q", got, want)
	}
	if d.Node.Update == nil || d.Node.Update.Last == nil || d.Node.Update.Last.Result != "rolled back" || d.Node.Update.OtherVersion != "1.1" {
		t.Errorf("node's update state %+v", d.Node.Update)
	}
}
