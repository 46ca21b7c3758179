//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// rollout is TestQEMUUpdate's acceptance 5: with node a (running 9.9.9 from
// slot b) up, it boots nodes B and C from the cards in imgs (fresh copies of
// a's, on the version s0 a first had), waits until the master lists all
// three, and rolls bundle (9.9.10, whose health check fails) out to them with
// a as the one canary. The rollout must stop at a with the health check's
// reason; a must be back on slot b running 9.9.9, B and C untouched; the
// master's registry must hold a's rollback with its reason and its log the
// stopped rollout. B and C power off at the end. powerCycle cuts a's power
// and boots it again, for when a's emulated SD card dies (sdStalledSince);
// the rollout is then run once more.
func rollout(t *testing.T, m *fleetMaster, a *vm, powerCycle func() *vm, bundle string, imgs []string, s0 status) {
	t.Helper()
	type node struct {
		v *vm
		s status
	}
	nodes := []node{{v: a, s: a.waitStatus()}}
	for i, img := range imgs {
		v := bootFor(t, img, fmt.Sprintf("update-%c", 'b'+i), "60m")
		nodes = append(nodes, node{v: v, s: v.waitStatus()})
	}
	defer func() {
		for _, n := range nodes[1:] {
			n.v.poweroff()
		}
	}()
	// Every node reports to the master every 10 s once its mesh link is up.
	allOnline := func() {
		t.Helper()
		deadline := time.Now().Add(3 * time.Minute)
		for {
			online := map[string]bool{}
			for _, n := range m.nodes(t) {
				online[n.Address] = n.Online
			}
			all := true
			for _, n := range nodes {
				all = all && online[n.s.Address]
			}
			if all {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the master does not list all three nodes online: %v\nmaster log:\n%s", online, tail(m.log))
			}
			time.Sleep(2 * time.Second)
		}
	}
	allOnline()

	run := func() (out string, from int64, took time.Duration, err error, stalled bool) {
		from = int64(len(a.log()))
		args := []string{"update", "fleet", "--master", m.status, "--key", m.keyFile, "--canary", "1", "--wait", "15m", bundle}
		for _, n := range nodes {
			args = append(args, n.s.Address)
		}
		start := time.Now()
		out, err, stalled = runUnlessStalled(t, exec.Command(skyfleet, args...), a, from, true)
		return out, from, time.Since(start), err, stalled
	}
	out, from, took, err, stalled := run()
	if stalled {
		// The emulator's fault, not the update's (sdStalledSince): A's card
		// is dead until its power is cut. A boots again from its card, on
		// whatever the interrupted install left (slot b, 9.9.9), and the
		// rollout is run once more.
		t.Logf("the canary's emulated SD card stalled during the rollout: power-cycling it and rolling out again\n%s", out)
		a = powerCycle()
		nodes[0] = node{v: a, s: a.waitStatus()}
		allOnline()
		if out, from, took, err, stalled = run(); stalled {
			t.Fatal("the canary's emulated SD card stalled twice during the rollout: the host is too loaded to emulate three Pis")
		}
	}
	// A trial boot that hung in the emulator (skyfleet qemu cut its power)
	// rolls back too, for another reason: try once more.
	if err != nil && !strings.Contains(out, "health check failed") && a.powerCycledSince(from) {
		t.Logf("skyfleet qemu power-cycled the canary during the rollout: rolling out again\n%s", out)
		a.waitStatus()
		out, _, took, err, _ = run()
	}
	t.Logf("update fleet (%.0f s):\n%s", took.Seconds(), out)
	canary := nodes[0].s.Address
	if err == nil || !strings.Contains(out, "rollout of 9.9.10 stopped: canary") || !strings.Contains(out, canary) ||
		!strings.Contains(out, "health check failed") {
		t.Fatalf("update fleet: %v, want a rollout stopped at canary %s by its failed health check\n%s\nserial log:\n%s", err, canary, out, a.tail())
	}
	for _, n := range nodes[1:] {
		if !strings.Contains(out, "not sent to") || !strings.Contains(out[strings.Index(out, "not sent to"):], n.s.Address) {
			t.Errorf("the rollout does not say it left %s alone:\n%s", n.s.Address, out)
		}
	}
	if n := strings.Count(out, ": sending 9.9.10\n"); n != 1 {
		t.Errorf("the rollout sent 9.9.10 to %d nodes, want its one canary:\n%s", n, out)
	}
	t.Logf("rollout of 9.9.10 over 3 nodes: stopped %.0f s after it started, by canary %s", took.Seconds(), canary)

	// A is back on slot b running 9.9.9, the rollback and its reason in /status.
	a.waitUntil("the canary back on slot b", func(s status) bool { return s.BootMS > 0 && s.Slot == "b" })
	var st updateStatus
	a.get("/status", &st)
	if st.Version != "9.9.9" || st.Update == nil || st.Update.Last == nil || st.Update.Last.Result != "rolled back" ||
		st.Update.Last.Version != "9.9.10" || !strings.Contains(st.Update.Last.Reason, "health check failed") {
		t.Fatalf("the canary after the rollout: %+v %+v", st, st.Update)
	}
	// B and C never got it: the version they booted, no update on record.
	for _, n := range nodes[1:] {
		var st updateStatus
		n.v.get("/status", &st)
		if st.Version != s0.Version || st.Slot != "a" || st.Update == nil || st.Update.Last != nil || st.Update.Trial != "" {
			t.Errorf("node %s after the stopped rollout: version %s slot %s update %+v", n.s.Address, st.Version, st.Slot, st.Update)
		}
	}

	// The master says why: the canary's rollback with the node's reason in
	// its registry entry and history, and the stopped rollout in its log.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var d struct {
			Node struct {
				Update *struct {
					Last *struct{ Result, Version, Reason string } `json:"last_update"`
				} `json:"update"`
			} `json:"node"`
			History []struct{ Event, Detail string } `json:"history"`
		}
		json.Unmarshal([]byte(apiGet(m.status, "/api/nodes/"+canary)), &d)
		inHistory := false
		for _, e := range d.History {
			inHistory = inHistory || (e.Event == "update" && strings.Contains(e.Detail, "rolled back") && strings.Contains(e.Detail, "health check failed"))
		}
		u := d.Node.Update
		if inHistory && u != nil && u.Last != nil && u.Last.Result == "rolled back" && u.Last.Version == "9.9.10" && strings.Contains(u.Last.Reason, "health check failed") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the master's registry lacks the canary's rollback: %+v\nhistory %+v", u, d.History)
		}
		time.Sleep(2 * time.Second)
	}
	if l := apiGet(m.status, "/api/log"); !strings.Contains(l, "rollout of 9.9.10 stopped") || !strings.Contains(l, "health check failed") {
		t.Errorf("the master's log lacks the stopped rollout and its reason:\n%s", l)
	}
}
