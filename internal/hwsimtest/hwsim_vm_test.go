//go:build kernelvm

package hwsimtest

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// These run in the kernel VM (e2e.TestWifiReferenceInVM: mac80211_hwsim with three
// radios, hostapd, wpa_supplicant, wpa_cli and iw): the reference implementations
// against each other over the simulated radios, which proves the harness and the
// VM before Skyfleet's own Wi-Fi code is put in their place.

const (
	refSSID = "skyfleet-ref"
	refPSK  = "correct horse battery staple"
	// How long any one step may take under TCG emulation; the trial took ~10 s for
	// a whole scenario.
	stepTimeout = 30 * time.Second
)

// radio is one hwsim phy moved into a namespace of its own.
type radio struct {
	phy, iface string
	ns         *Netns
}

// radios moves the first n hwsim phys into a new namespace each.
func radios(t *testing.T, n int) []radio {
	t.Helper()
	phys, err := Phys()
	if err != nil {
		t.Fatal(err)
	}
	if len(phys) < n {
		t.Fatalf("need %d radios, have %v (KERNELVM_HWSIM_PARAMS=radios=%d)", n, phys, n)
	}
	var rs []radio
	for _, phy := range phys[:n] {
		ifs, err := Interfaces(phy)
		if err != nil || len(ifs) != 1 {
			t.Fatalf("%s's interfaces: %v %v", phy, ifs, err)
		}
		ns, err := NewNetns()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ns.Close() })
		if err := ns.MovePhy(phy); err != nil {
			t.Fatal(err)
		}
		rs = append(rs, radio{phy: phy, iface: ifs[0], ns: ns})
		t.Logf("%s (%s) in namespace %d", phy, ifs[0], ns.PID())
	}
	return rs
}

// run runs a command in r's namespace and fails t if it fails.
func (r radio) run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := r.ns.Run(name, args...)
	if err != nil {
		t.Fatalf("%s: %v\n%s", r.phy, err, out)
	}
	return out
}

// keep stops d when t ends and logs its whole output.
func keep(t *testing.T, d *Daemon) {
	t.Cleanup(func() {
		if err := d.Stop(); err != nil {
			t.Error(err)
		}
		t.Logf("%s's output:\n%s", d.Name, d.Output())
	})
}

// ping pings addr from r until one answer comes, within stepTimeout.
func ping(t *testing.T, r radio, addr string) {
	t.Helper()
	start := time.Now()
	err := Poll(stepTimeout, 100*time.Millisecond, func() error {
		out, err := r.ns.Run("ping", "-c", "1", "-W", "1", addr)
		if err != nil {
			return fmt.Errorf("%v: %s", err, strings.TrimSpace(out))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("ping %s from %s: %v", addr, r.iface, err)
	}
	t.Logf("ping %s from %s answered after %v", addr, r.iface, time.Since(start).Round(time.Millisecond))
}

// TestReference: hostapd (WPA2-PSK, CCMP, 2.4 GHz channel 1) on radio A and
// wpa_supplicant on radio B associate and carry IPv4 both ways; then B leaves
// and joins an open IBSS with radio C, and they ping.
func TestReference(t *testing.T) {
	rs := radios(t, 3)
	a, b, c := rs[0], rs[1], rs[2]
	dir := t.TempDir()

	t.Run("WPA2", func(t *testing.T) {
		ap, err := Hostapd(a.ns, dir, fmt.Sprintf(`interface=%s
driver=nl80211
ssid=%s
hw_mode=g
channel=1
wpa=2
wpa_key_mgmt=WPA-PSK
rsn_pairwise=CCMP
wpa_passphrase=%s
`, a.iface, refSSID, refPSK))
		if err != nil {
			t.Fatal(err)
		}
		keep(t, ap)
		enabled, err := ap.WaitFor("AP-ENABLED", stepTimeout)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("hostapd: AP enabled %v after start", enabled.At.Sub(ap.Started).Round(time.Millisecond))

		b.run(t, "ip", "link", "set", b.iface, "up")
		sta, err := WpaSupplicant(b.ns, dir, b.iface, fmt.Sprintf(`ctrl_interface=%s/wpa
p2p_disabled=1
network={
	ssid="%s"
	psk="%s"
	key_mgmt=WPA-PSK
	proto=RSN
	pairwise=CCMP
	group=CCMP
	scan_freq=2412
}
`, dir, refSSID, refPSK))
		if err != nil {
			t.Fatal(err)
		}
		keep(t, sta)
		// wpa_supplicant prints no scan events at its default level; it scans as
		// soon as it has initialized.
		scan, err := sta.WaitFor("Successfully initialized", stepTimeout)
		if err != nil {
			t.Fatal(err)
		}
		auth, err := sta.WaitFor("Trying to authenticate", stepTimeout)
		if err != nil {
			t.Fatal(err)
		}
		connected, err := sta.WaitFor("CTRL-EVENT-CONNECTED", stepTimeout)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("wpa_supplicant: scan to associated (4-way handshake done) in %v (authentication to that %v)",
			connected.At.Sub(scan.At).Round(time.Millisecond), connected.At.Sub(auth.At).Round(time.Millisecond))
		// The kernel asked /sbin/modprobe for CCMP's cipher when the keys were set.
		if mods, err := os.ReadFile("/proc/modules"); err == nil {
			t.Logf("ccm module loaded on demand: %v", strings.Contains(string(mods), "ccm "))
		}
		if _, err := ap.WaitFor("AP-STA-CONNECTED", stepTimeout); err != nil {
			t.Fatal(err)
		}
		status := b.run(t, "wpa_cli", "-p", dir+"/wpa", "-i", b.iface, "status")
		for _, want := range []string{"wpa_state=COMPLETED", "pairwise_cipher=CCMP", "key_mgmt=WPA2-PSK", "ssid=" + refSSID} {
			if !strings.Contains(status, want) {
				t.Errorf("wpa_cli status lacks %q:\n%s", want, status)
			}
		}

		a.run(t, "ip", "addr", "add", "10.0.0.1/24", "dev", a.iface)
		b.run(t, "ip", "addr", "add", "10.0.0.2/24", "dev", b.iface)
		ping(t, b, "10.0.0.1")
		ping(t, a, "10.0.0.2")
	})

	t.Run("IBSS", func(t *testing.T) {
		// B's wpa_supplicant stopped with WPA2's end; hostapd too.
		for _, r := range []radio{b, c} {
			r.run(t, "ip", "link", "set", r.iface, "down")
			r.run(t, "ip", "addr", "flush", "dev", r.iface)
			r.run(t, "iw", "dev", r.iface, "set", "type", "ibss")
			r.run(t, "ip", "link", "set", r.iface, "up")
			r.run(t, "iw", "dev", r.iface, "ibss", "join", "skyfleet-ibss", "2412", "fixed-freq", "02:11:22:33:44:55")
		}
		b.run(t, "ip", "addr", "add", "10.0.1.2/24", "dev", b.iface)
		c.run(t, "ip", "addr", "add", "10.0.1.3/24", "dev", c.iface)
		for _, r := range []radio{b, c} {
			err := Poll(stepTimeout, 100*time.Millisecond, func() error {
				out, err := r.ns.Run("iw", "dev", r.iface, "link")
				if err != nil || !strings.Contains(out, "Joined IBSS") {
					return fmt.Errorf("%s not joined: %v %s", r.iface, err, strings.TrimSpace(out))
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		ping(t, b, "10.0.1.3")
		ping(t, c, "10.0.1.2")
	})
}
