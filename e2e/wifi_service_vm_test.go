//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestWifiServiceInVM runs services/wifi's kernelvm tests in the kernel VM
// (Debian's kernel with mac80211_hwsim, under QEMU): two Skyfleet nodes of
// one fleet join the RSN IBSS derived from its psk, key each other, find each
// other by LAN discovery and carry a 4 MiB mesh stream across the simulated
// radios, while a stranger in the cell without the key gets nothing through; the
// service in station mode survives a wrong passphrase, a vanished network
// and a vanished radio; in AP mode a phone joins and takes a DHCP lease.
func TestWifiServiceInVM(t *testing.T) {
	t.Parallel() // with the radio tests; kernelVMRun keeps one VM at a time
	out := runInKernelVMWith(t, "./services/wifi/", "kernelvm", "^Test(Peering|Manager)", vmOptions{
		Modules: []string{"mac80211_hwsim"},
		Params:  map[string]string{"mac80211_hwsim": "radios=3"},
		Tools:   []string{"iw", "hostapd", "wpa_supplicant"},
		Timeout: 5 * time.Minute,
	})
	for _, want := range []string{"--- PASS: TestPeeringMeshStream", "--- PASS: TestManagerStation", "--- PASS: TestManagerAP"} {
		if !strings.Contains(out, want) {
			t.Errorf("the VM's output lacks %q", want)
		}
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "_vm_test.go:") && (strings.Contains(l, "MEASURE") || strings.Contains(l, "PEERING") || strings.Contains(l, "after")) {
			t.Log(strings.TrimSpace(l))
		}
	}
}
