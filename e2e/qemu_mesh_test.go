//go:build e2e

package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// testQEMUMesh (TestQEMUNode/Mesh): the node booted in QEMU joins a mesh with a
// `skyfleet node` on the host through QEMU's user network (NAT: the guest dials out to
// the host at 10.0.2.2, named in its [network] peers), and the two ping each other by
// address.
func testQEMUMesh(t *testing.T, g *sharedVM) {
	v, s, host, guest := g.vm.in(t), g.status, g.host, g.guest
	for _, svc := range s.Services {
		if svc.Name == "mesh" && svc.State != "running" {
			t.Fatalf("mesh service %s (last exit %q)\n%s", svc.State, svc.LastExit, v.tail())
		}
	}

	// The host pings the guest once the guest's link is up (it dials the host).
	deadline := time.Now().Add(3 * time.Minute)
	for {
		out, err := host.mesh("ping", "--timeout", "10s", s.Address)
		if err == nil {
			t.Logf("host -> guest: %s", strings.TrimSpace(out))
			if !strings.Contains(out, "over 1 hops") {
				t.Errorf("host -> guest: %s (want 1 hop)", out)
			}
			break
		}
		if time.Now().After(deadline) {
			links, _ := guest.mesh("links")
			t.Fatalf("host cannot ping the guest %s: %v %s\nguest links:\n%s\nhost log:\n%s\nserial:\n%s", s.Address, err, out, links, tail(host.log), v.tail())
		}
		time.Sleep(2 * time.Second) // between pings, each of which waits up to 10 s
	}
	// And the guest pings the host, asked through its own status API.
	out, err := guest.mesh("ping", "--timeout", "20s", host.address())
	if err != nil {
		t.Fatalf("guest cannot ping the host: %v %s\n%s", err, out, v.tail())
	}
	t.Logf("guest -> host: %s", strings.TrimSpace(out))
	links, err := guest.mesh("links")
	if err != nil || !strings.Contains(links, host.address()) {
		t.Errorf("guest's links do not show the host: %v\n%s", err, links)
	}
}

// testQEMUMessages is acceptance 7's device half: a message from the host node to
// the QEMU node and one back, each in the other's inbox once, and each sender's
// outbox showing it delivered (the receipt came back). Runs after testQEMUMesh,
// so the link is up.
func testQEMUMessages(t *testing.T, g *sharedVM) {
	v, host, guest := g.vm.in(t), g.host, g.guest
	send := func(from, to *meshNode, toAddr, text string) string {
		t.Helper()
		var out string
		var err error
		deadline := time.Now().Add(time.Minute)
		for {
			out, err = from.cli("msg", "send", "--to", toAddr, text)
			if err == nil {
				return strings.TrimSpace(out)
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: msg send: %v %s\n%s", from.name, err, out, v.tail())
			}
			time.Sleep(time.Second) // the sender may not know the recipient's key yet
		}
	}
	waitFor := func(n *meshNode, box, id, state string) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for {
			out, err := n.cli("msg", box, "--json")
			var entries []struct {
				ID    string `json:"id"`
				State string `json:"state"`
			}
			if err == nil && json.Unmarshal([]byte(out), &entries) == nil {
				seen := 0
				for _, e := range entries {
					if e.ID == id && (state == "" || e.State == state) {
						seen++
					}
				}
				if seen > 1 {
					t.Fatalf("%s's %s holds %s %d times", n.name, box, id, seen)
				}
				if seen == 1 {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s's %s has no %s %s after 2 min: %v %s\n%s", n.name, box, id, state, err, out, v.tail())
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	start := time.Now()
	id := send(host, guest, g.status.Address, "from the host to the kit")
	waitFor(guest, "inbox", id, "")
	t.Logf("host -> guest: message %s in the guest's inbox after %v", id[:16], time.Since(start).Round(time.Millisecond))
	waitFor(host, "outbox", id, "delivered")
	t.Logf("host -> guest: receipt back after %v", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	id = send(guest, host, host.address(), "from the kit to the host")
	waitFor(host, "inbox", id, "")
	waitFor(guest, "outbox", id, "delivered")
	t.Logf("guest -> host: delivered with receipt after %v", time.Since(start).Round(time.Millisecond))
}
