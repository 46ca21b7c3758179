//go:build e2e && soak

// In make soak only (the soak build tag): Skyfleet's own Wi-Fi tests already run
// hostapd and wpa_supplicant in the VM in CI, so this proof of the harness and its
// reference figures need not take CI's time.

package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestWifiReferenceInVM runs internal/hwsimtest's kernelvm test in the kernel VM
// (scripts/kernelvm.sh: Debian's kernel with mac80211_hwsim's three simulated
// radios, under QEMU): Debian's hostapd and wpa_supplicant associate with WPA2-PSK
// (CCMP, channel 1) and carry pings, then two radios ping over an open IBSS. It
// proves the harness and the VM that Skyfleet's own Wi-Fi code is tested with.
func TestWifiReferenceInVM(t *testing.T) {
	t.Parallel() // with the radio tests; kernelVMRun keeps one VM at a time
	out := runInKernelVMWith(t, "./internal/hwsimtest/", "kernelvm", "^TestReference$", vmOptions{
		Modules: []string{"mac80211_hwsim"},
		Params:  map[string]string{"mac80211_hwsim": "radios=3"},
		Tools:   []string{"hostapd", "wpa_supplicant", "wpa_cli", "iw"},
		Timeout: 5 * time.Minute,
	})
	for _, want := range []string{"--- PASS: TestReference/WPA2", "--- PASS: TestReference/IBSS", "--- PASS: TestReference "} {
		if !strings.Contains(out, want) {
			t.Errorf("the VM's output lacks %q", want)
		}
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "hwsim_vm_test.go") && !strings.Contains(l, "output:") {
			t.Log(strings.TrimSpace(l))
		}
	}
}
