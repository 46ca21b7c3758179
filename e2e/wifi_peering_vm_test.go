//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestWifiPeeringInVM runs services/wifi's kernelvm tests in the kernel VM
// (Debian's kernel with mac80211_hwsim, under QEMU): two Skyfleet nodes of
// one fleet join the IBSS derived from its psk, find each other by LAN
// discovery and carry a 4 MiB mesh stream across the simulated radios.
func TestWifiPeeringInVM(t *testing.T) {
	out := runInKernelVMWith(t, "./services/wifi/", "kernelvm", "^TestPeering", vmOptions{
		Modules: []string{"mac80211_hwsim"},
		Params:  map[string]string{"mac80211_hwsim": "radios=3"},
		Tools:   []string{"iw"},
		Timeout: 5 * time.Minute,
	})
	if !strings.Contains(out, "--- PASS: TestPeeringMeshStream") {
		t.Errorf("the VM's output lacks the test's PASS")
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "hwsim_vm_test.go:") && (strings.Contains(l, "MEASURE") || strings.Contains(l, "PEERING")) {
			t.Log(strings.TrimSpace(l))
		}
	}
}
