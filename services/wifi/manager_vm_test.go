//go:build kernelvm

package wifi

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/internal/fleetconf"
	"github.com/skyfleet/skyfleet/internal/hwsimtest"
)

// managerNode runs the Wi-Fi service until SIGTERM, printing a WIFI line
// each time its status changes (and the whole status as JSON).
func managerNode(cfg Config) error {
	m := New(cfg, func(s string) { fmt.Println(time.Now().Format("15:04:05.000"), s) })
	ctx, cancel := context.WithCancel(context.Background())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	go func() { <-sig; cancel() }()
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	last := ""
	for {
		select {
		case err := <-done:
			return err
		case <-m.Changed():
			s := m.Status()
			line := fmt.Sprintf("WIFI state=%s ssid=%s joins=%d losses=%d peers=%d leases=%d error=%q", s.State, s.SSID, s.Joins, s.Losses, len(s.Peers), s.Leases, s.Error)
			if line != last {
				b, _ := json.Marshal(s)
				fmt.Printf("%s\nWIFI-JSON %s\n", line, b)
				last = line
			}
		}
	}
}

func hostapd(t *testing.T, r hwsimtest.Radio, ssid, psk string, channel int) *hwsimtest.Daemon {
	t.Helper()
	d, err := hwsimtest.Hostapd(r.NS, t.TempDir(), fmt.Sprintf("interface=%s\ndriver=nl80211\nssid=%s\nhw_mode=g\nchannel=%d\nwpa=2\nwpa_key_mgmt=WPA-PSK\nrsn_pairwise=CCMP\nwpa_passphrase=%s\n", r.Iface, ssid, channel, psk))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Stop() })
	if _, err := d.WaitFor("AP-ENABLED", stepTimeout); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestManagerStation: the service is given two networks. The first
// refuses its passphrase: the status says so, and the service joins the
// second once it is up. The second vanishes and comes back: it is rejoined. The radio
// itself disappears (moved out of the node's namespace, as a USB adapter
// pulled out) and comes back: the service waits, then joins again, and
// the node never stops.
func TestManagerStation(t *testing.T) {
	rs := hwsimtest.Radios(t, 3, stepTimeout)
	apA, apB, node := rs[0], rs[1], rs[2]
	hostapd(t, apA, "base-camp", "the real base passphrase", 1)
	cfg := Config{Mode: ModeStation, Iface: node.Iface, Country: "DE", Networks: []fleetconf.WifiNetwork{
		{SSID: "base-camp", PSK: "a wrong base passphrase"},
		{SSID: "relief-hq", PSK: "relief passphrase"},
	}}
	d := hwsimtest.StartNode(t, "wifi service", node.NS, nodeArgs{Manager: &cfg})
	start := time.Now()
	// Only base-camp is up at first (a busy machine's scan can miss one of
	// two new APs, and the service would then rightly join the other).
	if _, err := d.WaitFor(`base-camp: sta: 4-way handshake`, 2*stepTimeout); err != nil {
		t.Fatal(err)
	}
	b := hostapd(t, apB, "relief-hq", "relief passphrase", 11)
	l, err := d.WaitFor("WIFI state=associated ssid=relief-hq joins=1", 2*stepTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("wrong passphrase on base-camp reported; relief-hq, started after that, joined %v after the service started", l.At.Sub(start).Round(time.Millisecond))
	js, err := d.WaitFor("WIFI-JSON", stepTimeout)
	if err != nil {
		t.Fatal(err)
	}
	var st Status
	json.Unmarshal([]byte(js.Text[strings.Index(js.Text, "{"):]), &st)
	if len(st.Networks) != 2 || !strings.Contains(st.Networks[0].Error, "wrong passphrase") || st.Networks[0].RetryAt.IsZero() {
		t.Errorf("status networks %+v: want base-camp's wrong passphrase and its retry time", st.Networks)
	}
	t.Logf("MEASURE service scan %d ms, association and 4-way handshake %d ms", st.ScanMS, st.JoinMS)

	// relief-hq vanishes, and comes back.
	b.Stop()
	gone := time.Now()
	if _, err := d.WaitFor("losses=1", stepTimeout); err != nil {
		t.Fatal(err)
	}
	t.Logf("loss of relief-hq noticed after %v", time.Since(gone).Round(time.Millisecond))
	hostapd(t, apB, "relief-hq", "relief passphrase", 11)
	back := time.Now()
	if _, err := d.WaitFor("WIFI state=associated ssid=relief-hq joins=2 losses=1", 2*stepTimeout); err != nil {
		t.Fatal(err)
	}
	t.Logf("MEASURE relief-hq rejoined %v after it came back", time.Since(back).Round(time.Millisecond))

	// The radio disappears, and comes back.
	// Inside the namespace, /sys (mounted in the initial one) no longer
	// shows the phy by name: iw addresses it by index, phy#N.
	node.MustRun(t, "iw", "phy#"+strings.TrimPrefix(node.Phy, "phy"), "set", "netns", "1")
	if _, err := d.WaitFor("WIFI state=absent", stepTimeout); err != nil {
		t.Fatal(err)
	}
	if err := node.NS.MovePhy(node.Phy); err != nil {
		t.Fatal(err)
	}
	if _, err := d.WaitFor("WIFI state=associated ssid=relief-hq joins=3", 2*stepTimeout); err != nil {
		t.Fatal(err)
	}
	d.Stop()
	if e := hwsimtest.NodeResult(t, d, stepTimeout); e != "" {
		t.Errorf("the service ended with %s", e)
	}
}

// TestManagerAP: in AP mode the service runs a WPA2 access point with a
// DHCP server; a phone (wpa_supplicant, and busybox's udhcpc as its DHCP
// client, an implementation independent of ours) joins, takes an address
// and reaches the node.
func TestManagerAP(t *testing.T) {
	rs := hwsimtest.Radios(t, 2, stepTimeout)
	node, phone := rs[0], rs[1]
	cfg := Config{Mode: ModeAP, Iface: node.Iface, APSSID: "skyfleet-kit-07", APPSK: "kit passphrase"}
	d := hwsimtest.StartNode(t, "wifi service", node.NS, nodeArgs{Manager: &cfg})
	if _, err := d.WaitFor("WIFI state=ap", stepTimeout); err != nil {
		t.Fatal(err)
	}
	phone.MustRun(t, "ip", "link", "set", phone.Iface, "up")
	sup, err := hwsimtest.WpaSupplicant(phone.NS, t.TempDir(), phone.Iface, "p2p_disabled=1\nnetwork={\n\tssid=\"skyfleet-kit-07\"\n\tpsk=\"kit passphrase\"\n\tkey_mgmt=WPA-PSK\n}\n")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sup.Stop() })
	if _, err := sup.WaitFor("CTRL-EVENT-CONNECTED", stepTimeout); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out, err := phone.NS.Run("udhcpc", "-i", phone.Iface, "-n", "-q", "-t", "10", "-T", "1", "-s", "/bin/true")
	if err != nil || !strings.Contains(out, "lease of 10.42.0.") {
		t.Fatalf("udhcpc: %v\n%s", err, out)
	}
	t.Logf("MEASURE phone's DHCP lease from the node in %v: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(out[strings.Index(out, "lease of"):]))
	ip := strings.Fields(out[strings.Index(out, "lease of ")+len("lease of "):])[0]
	phone.MustRun(t, "ip", "addr", "add", ip+"/24", "dev", phone.Iface)
	if err := hwsimtest.Poll(stepTimeout, 100*time.Millisecond, func() error {
		out, err := phone.NS.Run("ping", "-c", "1", "-W", "1", "10.42.0.1")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.WaitFor("leases=1", stepTimeout); err != nil {
		t.Fatal(err)
	}
}
