//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestWifiStationInVM runs drivers/wifi/sta's kernelvm tests in the kernel VM
// (Debian's kernel with mac80211_hwsim's simulated radios, under QEMU):
// Skyfleet's station, with its Go supplicant, scans for and joins Debian's
// hostapd on WPA2-PSK, takes a DHCP lease from a server behind the AP and is
// pinged from the AP's side; a wrong passphrase ends with a clear error.
func TestWifiStationInVM(t *testing.T) {
	t.Parallel() // with the radio tests; kernelVMRun keeps one VM at a time
	out := runInKernelVMWith(t, "./drivers/wifi/sta/", "kernelvm", "^TestStation", vmOptions{
		Modules: []string{"mac80211_hwsim"},
		Params:  map[string]string{"mac80211_hwsim": "radios=3"},
		Tools:   []string{"hostapd", "iw"},
		Timeout: 5 * time.Minute,
	})
	for _, want := range []string{"--- PASS: TestStationJoinsHostapd", "--- PASS: TestStationWrongPSK"} {
		if !strings.Contains(out, want) {
			t.Errorf("the VM's output lacks %q", want)
		}
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "MEASURE") || strings.Contains(l, "wrong passphrase:") {
			t.Log(strings.TrimSpace(l))
		}
	}
}
