//go:build e2e

package e2e

import (
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
