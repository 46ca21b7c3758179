//go:build e2e

package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/e2e/netns"
	"github.com/skyfleet/skyfleet/services/msg"
	"github.com/skyfleet/skyfleet/services/saf"
)

// TestDataMule is acceptance 6 with `skyfleet node` processes in network
// namespaces. The two islands share no link: A runs in namespace a, C in namespace
// c, and no veth joins anything on A's island to anything on C's, so neither node
// has even a route to the other's addresses (checked first: a UDP send from each
// namespace of one island to each address of the other fails). The mule M stands
// in namespace m-at-a, linked to a only, or in m-at-c, linked to c only; it
// "travels" by being stopped and started again on the same data directory in the
// other one: to C once C shows no live link left from an earlier visit (a journey
// that outlasts a link's dead time), back to A at once, while A still counts its
// old link to M as up. The return leg must not wait for A's next announcement:
// without the greeting of a neighbour that handshakes again (services/mesh), 3 of 5
// runs took 9.9 s, with it 0.4 s.
//
// A's message for C is held at A (no path); `skyfleet saf export` writes it to a
// directory, and M, on A's island, takes custody of it with `skyfleet saf import`
// (its store then holds every exported bundle). M travels to C's island and hands
// the bundle on over its link to C. C's answer and C's receipt for A's message
// come back the same way: exported at C, imported at M, carried back to A's
// island. Each message reaches its inbox exactly once, and A's outbox shows the
// first one delivered.
func TestDataMule(t *testing.T) {
	nw := netns.New(t, "skym")
	nsA, atA, atC, nsC := nw.Node("a"), nw.Node("m-at-a"), nw.Node("m-at-c"), nw.Node("c")
	linkA := nw.Connect(nsA, atA) // 10.77.1.1 - 10.77.1.2
	linkC := nw.Connect(atC, nsC) // 10.77.2.1 - 10.77.2.2

	// The islands do not touch: from no namespace of one can a datagram be sent
	// to any address of the other (there is not even a route).
	island := map[*netns.NS]string{nsA: "A", atA: "A", atC: "C", nsC: "C"}
	var probes int
	var refusal error
	for _, l := range nw.Links() {
		for _, to := range []netns.End{l.A, l.B} {
			for from := range island {
				if island[from] == island[to.NS] {
					continue
				}
				err := from.Do(func() error {
					c, err := net.Dial("udp", to.HostPort(5505))
					if err != nil {
						return err
					}
					defer c.Close()
					_, err = c.Write([]byte("anyone there?"))
					return err
				})
				if err == nil {
					t.Fatalf("%s, on island %s, sent a datagram to %s (%s, on island %s)", from, island[from], to.IP(), to.NS, island[to.NS])
				}
				probes++
				refusal = err
			}
		}
	}
	t.Logf("none of %d sends from one island to the other left its namespace (e.g. %v)", probes, refusal)

	const listen, status = "udp://0.0.0.0:5505", "127.0.0.1:8080" // in each namespace
	a := newMeshNode(t, "mule-a", nsA)
	c := newMeshNode(t, "mule-c", nsC)
	m := newMeshNode(t, "mule-m", atA)
	a.start(t, listen, status, nil, false)
	c.start(t, listen, status, nil, false)
	// M starts on A's island.
	m.start(t, listen, status, []string{a.peerEntry(linkA.Local(nsA).HostPort(5505))}, false)
	callA, callC := nsCaller(t, a), nsCaller(t, c)

	cli := func(n *meshNode, cmd, sub string, args ...string) string {
		t.Helper()
		var out string
		var err error
		deadline := time.Now().Add(30 * time.Second)
		for {
			if out, err = n.cli(cmd, sub, args...); err == nil {
				return strings.TrimSpace(out)
			}
			if n.dead() || time.Now().After(deadline) {
				t.Fatalf("%s: skyfleet %s %s: %v %s\n%s", n.name, cmd, sub, err, out, tail(n.log))
			}
			time.Sleep(200 * time.Millisecond) // the node's API may not listen yet
		}
	}
	// inboxCount returns how many times message id is in a node's inbox.
	inboxCount := func(call apiCaller, id string) (int, error) {
		in, err := inboxVia(call, 5*time.Second)
		got := 0
		for _, e := range in {
			if e.ID == id {
				got++
			}
		}
		return got, err
	}
	waitInbox := func(n *meshNode, call apiCaller, id string) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for {
			got, err := inboxCount(call, id)
			if got > 1 {
				t.Fatalf("%s's inbox holds %s %d times", n.name, id, got)
			}
			if got == 1 {
				return
			}
			for _, x := range []*meshNode{n, m} {
				if x.dead() {
					t.Fatalf("%s exited:\n%s", x.name, tail(x.log))
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s's inbox has no %s after a minute (last poll: %v)\n%s:\n%s\n%s:\n%s", n.name, id, err, n.name, tail(n.log), m.name, tail(m.log))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	// carry moves every bundle the island's node holds for others onto M, on the
	// same island, through a directory, and checks M took custody of each.
	carry := func(from *meshNode) {
		t.Helper()
		dir := filepath.Join(t.TempDir(), "stick")
		cli(from, "saf", "export", "--to", dir)
		files, _ := filepath.Glob(filepath.Join(dir, "*"+saf.FileExt))
		if len(files) == 0 {
			t.Fatalf("%s exported nothing", from.name)
		}
		cli(m, "saf", "import", "--from", dir)
		held := heldVia(nsCaller(t, m), 10*time.Second)
		for _, f := range files {
			if id := strings.TrimSuffix(filepath.Base(f), saf.FileExt); !held[id] {
				t.Fatalf("M imported %d bundles from %s but does not hold %s (holds %v)", len(files), from.name, id, held)
			}
		}
		os.RemoveAll(dir)
	}
	// travel stops M and starts it again on the same data directory in ns, linked
	// to n only (at n's end of link), with a log of its own for the leg. With
	// journey set, M arrives only once n shows no live link to it from an earlier
	// visit (a journey that outlasts a link's dead time); without, it may come
	// back while n still counts the old link as up, which n must take as a new
	// link (services/mesh greets a neighbour that handshakes again).
	travel := func(ns *netns.NS, link *netns.Link, n *meshNode, call apiCaller, logName string, journey bool) {
		t.Helper()
		m.kill()
		left := time.Now()
		deadline := left.Add(30 * time.Second)
		for journey {
			var l bnLinks
			code, err := call("GET", "/mesh/links", nil, &l, 5*time.Second)
			gone := err == nil && code == http.StatusOK
			for _, x := range l.Links {
				if x.Address == m.address() && x.Up {
					gone = false
				}
			}
			if gone {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still has a link to M 30 s after M left (GET /mesh/links: %d %v)\n%s", n.name, code, err, tail(n.log))
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("M stopped, and starts again in %s %v later (waiting for %s to see it gone: %v)", ns, time.Since(left).Round(time.Millisecond), n.name, journey)
		m.ns, m.log = ns, filepath.Join(artifacts(t), logName)
		m.start(t, listen, status, []string{n.peerEntry(link.Local(n.ns).HostPort(5505))}, false)
	}

	// A writes to C by key: C was never in A's topology.
	start := time.Now()
	id := cli(a, "msg", "send", "--to", c.key.PublicKeyHex(), "water at the school, 3 pm")
	carry(a)
	travel(atC, linkC, c, callC, "mule-m-at-c.log", true)
	waitInbox(c, callC, id)
	t.Logf("A -> C through M: in C's inbox %v after the send", time.Since(start).Round(time.Millisecond))

	// C answers; the answer and C's receipt for A's message wait at C (no path
	// to A), go onto M through the directory, and travel back with it.
	answer := cli(c, "msg", "send", "--to", a.key.PublicKeyHex(), "received, on our way")
	carry(c)
	back := time.Now()
	travel(atA, linkA, a, callA, "mule-m-back-at-a.log", false)
	waitInbox(a, callA, answer)
	deadline := time.Now().Add(time.Minute)
	for {
		es, err := outboxVia(callA, 5*time.Second)
		if len(es) == 1 && es[0].ID == id && es[0].State == msg.StateDelivered {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("A's outbox after the round trip: %+v (%v)", es, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("C -> A through M, with C's receipt for A's message: round trip %v; %v after M came back to A", time.Since(start).Round(time.Millisecond), time.Since(back).Round(time.Millisecond))
	// M came back before A saw its old link die. Had A taken the new handshake
	// for nothing new, M would have waited for A's next announcement (10 s) for
	// any route to A (it did, before services/mesh greeted such neighbours).
	if d := time.Since(back); d > muleBackWithin {
		t.Errorf("the receipt reached A's outbox %v after M came back, want within %v", d.Round(time.Millisecond), muleBackWithin)
	}
	// And neither message came a second time meanwhile.
	for _, e := range []struct {
		n    *meshNode
		call apiCaller
		id   string
	}{{c, callC, id}, {a, callA, answer}} {
		if got, err := inboxCount(e.call, e.id); got != 1 {
			t.Errorf("at the end %s's inbox holds %s %d times (%v)", e.n.name, e.id, got, err)
		}
	}
}

// muleBackWithin bounds the return leg of TestDataMule, from M's restart on A's
// island to the receipt in A's outbox: under the 10 s announce interval that a
// neighbour greeted as nothing new would wait for.
const muleBackWithin = 7 * time.Second

// nsCaller returns n's apiCaller: requests made inside n's namespace as it is
// when each connection is dialled (newNSAPI's client), with the token n wrote.
func nsCaller(t *testing.T, n *meshNode) apiCaller {
	api := newNSAPI(t, n)
	return func(method, path string, body, out any, timeout time.Duration) (int, error) {
		cred := n.credential(t)
		if cred == nil {
			return 0, fmt.Errorf("%s has written no API token yet", n.name)
		}
		return apiCall(api.c, cred, n.status, method, path, body, out, timeout)
	}
}
