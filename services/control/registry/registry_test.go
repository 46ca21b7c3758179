package registry

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

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
