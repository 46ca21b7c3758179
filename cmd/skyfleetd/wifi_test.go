package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skyfleet/skyfleet/services/wifi"
)

// TestPublicWifiHidesAddresses: the public /status shows the radio's state
// and counts, never the MACs of phones and peers or the networks around.
func TestPublicWifiHidesAddresses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wifi.json")
	if publicWifi(path) != nil {
		t.Error("a status before the service wrote one")
	}
	st := wifi.Status{Mode: "ap", State: "ap", SSID: "skyfleet-kit", Leases: 2,
		Peers: []wifi.Peer{{MAC: "a4:5e:60:11:22:33", SignalDBm: -50}, {MAC: "a4:5e:60:44:55:66"}},
		Scan:  []wifi.ScanEntry{{SSID: "neighbour", BSSID: "f8:32:e4:00:00:01"}}}
	if err := writeJSONFile(path, st); err != nil {
		t.Fatal(err)
	}
	raw := publicWifi(path)
	for _, secret := range []string{"a4:5e:60", "f8:32:e4", "neighbour"} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("public Wi-Fi status shows %q: %s", secret, raw)
		}
	}
	var got map[string]any
	json.Unmarshal(raw, &got)
	if got["state"] != "ap" || got["peers"] != float64(2) || got["scan_results"] != float64(1) || got["leases"] != float64(2) {
		t.Errorf("public Wi-Fi status %s", raw)
	}
}
