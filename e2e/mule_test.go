//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDataMule is acceptance 6 with `skyfleet node` processes: islands A and C
// never link (no peers, no discovery). A's message for C is held at A; `skyfleet
// saf export` writes it to a directory, the third node M takes custody of it with
// `skyfleet saf import`, then "travels": it restarts on the same data directory
// linked to C instead of A, and hands the bundle on. C's answer and the receipt
// come back the same way: exported at C, imported at M, carried back to A. Each
// message reaches its inbox once, and A's outbox shows the first one delivered.
//
// The islands are separated by configuration on loopback, not by namespaces:
// what is tested is custody through a directory and a node that moves.
func TestDataMule(t *testing.T) {
	a := newMeshNode(t, "mule-a", nil)
	c := newMeshNode(t, "mule-c", nil)
	m := newMeshNode(t, "mule-m", nil)
	ap, cp, mp := freeUDPPort(t), freeUDPPort(t), freeUDPPort(t)
	listen := func(p int) string { return fmt.Sprintf("udp://127.0.0.1:%d", p) }
	a.start(t, listen(ap), fmt.Sprintf("127.0.0.1:%d", freePort(t)), nil, false)
	c.start(t, listen(cp), fmt.Sprintf("127.0.0.1:%d", freePort(t)), nil, false)
	mStatus := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	// M starts on A's island.
	m.start(t, listen(mp), mStatus, []string{a.peerEntry(fmt.Sprintf("127.0.0.1:%d", ap))}, false)

	cli := func(n *meshNode, cmd, sub string, args ...string) string {
		t.Helper()
		var out string
		var err error
		deadline := time.Now().Add(30 * time.Second)
		for {
			if out, err = n.cli(cmd, sub, args...); err == nil {
				return strings.TrimSpace(out)
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: skyfleet %s %s: %v %s\n%s", n.name, cmd, sub, err, out, tail(n.log))
			}
			time.Sleep(200 * time.Millisecond) // the node's API may not listen yet
		}
	}
	inbox := func(n *meshNode) map[string]int {
		var es []struct {
			ID string `json:"id"`
		}
		json.Unmarshal([]byte(cli(n, "msg", "inbox", "--json")), &es)
		got := make(map[string]int)
		for _, e := range es {
			got[e.ID]++
		}
		return got
	}
	waitInbox := func(n *meshNode, id string) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for {
			got := inbox(n)
			if got[id] > 1 {
				t.Fatalf("%s's inbox holds %s %d times", n.name, id, got[id])
			}
			if got[id] == 1 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s's inbox has no %s after a minute\n%s", n.name, id, tail(n.log))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	// carry moves every bundle from one node to another through a directory.
	carry := func(from, to *meshNode) {
		t.Helper()
		dir := filepath.Join(t.TempDir(), "stick")
		cli(from, "saf", "export", "--to", dir)
		files, _ := filepath.Glob(filepath.Join(dir, "*.sfb"))
		if len(files) == 0 {
			t.Fatalf("%s exported nothing", from.name)
		}
		cli(to, "saf", "import", "--from", dir)
		os.RemoveAll(dir)
	}
	// travel restarts M on the same data directory, linked to n only.
	travel := func(n *meshNode, port int) {
		m.kill()
		m.start(t, listen(mp), mStatus, []string{n.peerEntry(fmt.Sprintf("127.0.0.1:%d", port))}, false)
	}

	// A writes to C by key: C was never in A's topology.
	start := time.Now()
	id := cli(a, "msg", "send", "--to", c.key.PublicKeyHex(), "water at the school, 3 pm")
	carry(a, m)
	travel(c, cp)
	waitInbox(c, id)
	t.Logf("A -> C through M: in C's inbox %v after the send", time.Since(start).Round(time.Millisecond))

	// C answers; the answer and C's receipt for A's message wait at C (no path
	// to A), go onto M through the directory, and travel back with it.
	answer := cli(c, "msg", "send", "--to", a.key.PublicKeyHex(), "received, on our way")
	carry(c, m)
	travel(a, ap)
	waitInbox(a, answer)
	deadline := time.Now().Add(time.Minute)
	for {
		var es []struct {
			ID    string `json:"id"`
			State string `json:"state"`
		}
		json.Unmarshal([]byte(cli(a, "msg", "outbox", "--json")), &es)
		if len(es) == 1 && es[0].ID == id && es[0].State == "delivered" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("A's outbox after the round trip: %+v", es)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("C -> A through M, with C's receipt for A's message: round trip %v", time.Since(start).Round(time.Millisecond))
}
