//go:build e2e

package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestQEMUMesh: the image booted in QEMU joins a mesh with a `skyfleet node` on the
// host through QEMU's user network (NAT, as behind a home router: the guest dials out
// to 10.0.2.2, the host), and the two ping each other by address.
func TestQEMUMesh(t *testing.T) {
	host := newMeshNode(t, "host", nil)
	hp := freeUDPPort(t)
	host.start(t, fmt.Sprintf("udp://127.0.0.1:%d", hp), fmt.Sprintf("127.0.0.1:%d", freePort(t)), nil, false)

	img := filepath.Join(t.TempDir(), "mesh.img")
	buildImage(t, img, fmt.Sprintf("[node]\nname = \"qemu-mesh\"\n\n[network]\npsk = %q\nlan_discovery = false\npeers = [%q]\n",
		meshPSK, host.peerEntry(fmt.Sprintf("10.0.2.2:%d", hp))))
	v := boot(t, img, "mesh")
	s := v.waitStatus()
	for _, svc := range s.Services {
		if svc.Name == "mesh" && svc.State != "running" {
			t.Fatalf("mesh service %s (last exit %q)\n%s", svc.State, svc.LastExit, v.tail())
		}
	}
	guest := &meshNode{name: "guest", status: fmt.Sprintf("127.0.0.1:%d", v.port)}

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
		time.Sleep(2 * time.Second)
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
	v.poweroff()
}
