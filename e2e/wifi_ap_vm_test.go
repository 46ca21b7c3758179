//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestWifiAPInVM runs drivers/wifi/ap's kernelvm tests in the kernel VM
// (Debian's kernel with mac80211_hwsim, under QEMU): Debian's wpa_supplicant,
// as a phone, joins Skyfleet's WPA2-PSK access point (which answers probes,
// authentication and association itself and runs the authenticator side of
// the 4-way handshake) and its open one; a phone with the wrong passphrase
// is refused while another is served.
func TestWifiAPInVM(t *testing.T) {
	t.Parallel() // with the radio tests; kernelVMRun keeps one VM at a time
	out := runInKernelVMWith(t, "./drivers/wifi/ap/", "kernelvm", "^TestAP", vmOptions{
		Modules: []string{"mac80211_hwsim"},
		Params:  map[string]string{"mac80211_hwsim": "radios=3"},
		Tools:   []string{"wpa_supplicant", "iw"},
		Timeout: 5 * time.Minute,
	})
	for _, want := range []string{"--- PASS: TestAPWPA2JoinedByWpaSupplicant", "--- PASS: TestAPWrongPassphrase", "--- PASS: TestAPOpen"} {
		if !strings.Contains(out, want) {
			t.Errorf("the VM's output lacks %q", want)
		}
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "MEASURE") {
			t.Log(strings.TrimSpace(l))
		}
	}
}
