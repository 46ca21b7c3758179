//go:build kernelvm

// These tests run in the kernel VM (e2e.TestWifiAPInVM: Debian's kernel with
// mac80211_hwsim, Debian's wpa_supplicant as the phone): Skyfleet's access
// point, which answers probes, authentication and association itself and
// runs the 4-way handshake as authenticator, joined by the reference
// station. The AP runs as this test binary re-executed in its own network
// namespace (hwsimtest.StartNode).

package ap

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/drivers/wifi/eapol"
	"github.com/skyfleet/skyfleet/drivers/wifi/nl80211"
	"github.com/skyfleet/skyfleet/internal/hwsimtest"
)

const (
	apSSID      = "skyfleet-kit"
	apPSK       = "emergency kit passphrase"
	stepTimeout = 30 * time.Second
)

type nodeArgs struct {
	Iface, SSID, PSK, Addr string
}

func TestMain(m *testing.M) {
	hwsimtest.NodeMain(apNode)
	os.Exit(m.Run())
}

func ipCmd(args ...string) error {
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// apNode runs Skyfleet's AP on its radio until SIGTERM, printing each
// station event and then the counters on an "AP-STATS" line.
func apNode(raw []byte) error {
	var a nodeArgs
	if err := json.Unmarshal(raw, &a); err != nil {
		return err
	}
	c, err := nl80211.Dial()
	if err != nil {
		return err
	}
	defer c.Close()
	ifi, err := c.InterfaceByName(a.Iface)
	if err != nil {
		return err
	}
	if err := ipCmd("link", "set", a.Iface, "down"); err != nil {
		return err
	}
	if err := c.SetType(ifi.Index, nl80211.IfTypeAP); err != nil {
		return err
	}
	if err := ipCmd("link", "set", a.Iface, "up"); err != nil {
		return err
	}
	cfg := Config{SSID: []byte(a.SSID), Channel: 6}
	if a.PSK != "" {
		if cfg.PMK, err = eapol.PMK(a.PSK, cfg.SSID); err != nil {
			return err
		}
	}
	start := time.Now()
	ap, err := Start(c, ifi, cfg, func(s string) { fmt.Printf("%s %s\n", time.Since(start).Round(time.Millisecond), s) })
	if err != nil {
		return err
	}
	if err := ipCmd("addr", "add", a.Addr, "dev", a.Iface); err != nil {
		return err
	}
	fmt.Println("AP-STARTED")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	<-sig
	st, _ := json.Marshal(ap.Stats())
	fmt.Printf("AP-STATS %s\n", st)
	return ap.Close()
}

func phone(t *testing.T, r hwsimtest.Radio, conf string) *hwsimtest.Daemon {
	t.Helper()
	r.MustRun(t, "ip", "link", "set", r.Iface, "up")
	d, err := hwsimtest.WpaSupplicant(r.NS, t.TempDir(), r.Iface, "p2p_disabled=1\n"+conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.Stop()
		t.Logf("wpa_supplicant's output:\n%s", d.Output())
	})
	return d
}

func ping(t *testing.T, r hwsimtest.Radio, addr string) {
	t.Helper()
	if err := hwsimtest.Poll(stepTimeout, 100*time.Millisecond, func() error {
		out, err := r.NS.Run("ping", "-c", "1", "-W", "1", addr)
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}); err != nil {
		t.Fatalf("ping %s from %s: %v", addr, r.Iface, err)
	}
}

func stats(t *testing.T, d *hwsimtest.Daemon) Stats {
	t.Helper()
	d.Stop()
	l, err := d.WaitFor("AP-STATS ", stepTimeout)
	if err != nil {
		t.Fatal(err)
	}
	var s Stats
	if err := json.Unmarshal([]byte(l.Text[strings.Index(l.Text, "{"):]), &s); err != nil {
		t.Fatal(err)
	}
	if e := hwsimtest.NodeResult(t, d, stepTimeout); e != "" {
		t.Errorf("the AP node ended with: %s", e)
	}
	return s
}

// TestAPWPA2JoinedByWpaSupplicant: a phone (wpa_supplicant) finds Skyfleet's
// WPA2-PSK AP, associates, completes the 4-way handshake against Skyfleet's
// authenticator, and IPv4 crosses both ways.
func TestAPWPA2JoinedByWpaSupplicant(t *testing.T) {
	rs := hwsimtest.Radios(t, 2, stepTimeout)
	apR, ph := rs[0], rs[1]
	node := hwsimtest.StartNode(t, "AP", apR.NS, nodeArgs{Iface: apR.Iface, SSID: apSSID, PSK: apPSK, Addr: "192.168.78.1/24"})
	started, err := node.WaitFor("AP-STARTED", stepTimeout)
	if err != nil {
		t.Fatal(err)
	}
	sup := phone(t, ph, fmt.Sprintf("network={\n\tssid=\"%s\"\n\tpsk=\"%s\"\n\tkey_mgmt=WPA-PSK\n\tproto=RSN\n\tpairwise=CCMP\n\tgroup=CCMP\n}\n", apSSID, apPSK))
	connected, err := sup.WaitFor("CTRL-EVENT-CONNECTED", stepTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("MEASURE AP started to phone connected (scan, association, 4-way handshake): %v", connected.At.Sub(started.At).Round(time.Millisecond))
	ph.MustRun(t, "ip", "addr", "add", "192.168.78.2/24", "dev", ph.Iface)
	ping(t, ph, "192.168.78.1")
	ping(t, apR, "192.168.78.2")
	s := stats(t, node)
	if s.Handshakes != 1 || s.Assocs != 1 || s.WrongKey != 0 {
		t.Errorf("AP counters %+v: want one association and one handshake", s)
	}
}

// TestAPWrongPassphrase: a phone with the wrong passphrase is refused (its
// message 2 fails the MIC, counted), gets no data path, and the AP carries
// on serving a phone with the right one.
func TestAPWrongPassphrase(t *testing.T) {
	rs := hwsimtest.Radios(t, 3, stepTimeout)
	apR, bad, good := rs[0], rs[1], rs[2]
	node := hwsimtest.StartNode(t, "AP", apR.NS, nodeArgs{Iface: apR.Iface, SSID: apSSID, PSK: apPSK, Addr: "192.168.78.1/24"})
	if _, err := node.WaitFor("AP-STARTED", stepTimeout); err != nil {
		t.Fatal(err)
	}
	conf := "network={\n\tssid=\"%s\"\n\tpsk=\"%s\"\n\tkey_mgmt=WPA-PSK\n\tproto=RSN\n\tpairwise=CCMP\n\tgroup=CCMP\n}\n"
	badSup := phone(t, bad, fmt.Sprintf(conf, apSSID, "not the kit passphrase"))
	if _, err := node.WaitFor("failed its MIC", stepTimeout); err != nil {
		t.Fatal(err)
	}
	if _, err := badSup.WaitFor("WRONG_KEY", 2*stepTimeout); err != nil {
		t.Fatal(err)
	}
	goodSup := phone(t, good, fmt.Sprintf(conf, apSSID, apPSK))
	if _, err := goodSup.WaitFor("CTRL-EVENT-CONNECTED", stepTimeout); err != nil {
		t.Fatal(err)
	}
	good.MustRun(t, "ip", "addr", "add", "192.168.78.3/24", "dev", good.Iface)
	ping(t, good, "192.168.78.1")
	s := stats(t, node)
	if s.WrongKey == 0 || s.Handshakes != 1 {
		t.Errorf("AP counters %+v: want wrong-key failures counted and one good handshake", s)
	}
}

// TestAPOpen: an open AP, as a public emergency kit runs, is joined without
// a key.
func TestAPOpen(t *testing.T) {
	rs := hwsimtest.Radios(t, 2, stepTimeout)
	apR, ph := rs[0], rs[1]
	node := hwsimtest.StartNode(t, "AP", apR.NS, nodeArgs{Iface: apR.Iface, SSID: "skyfleet-public", Addr: "192.168.79.1/24"})
	if _, err := node.WaitFor("AP-STARTED", stepTimeout); err != nil {
		t.Fatal(err)
	}
	sup := phone(t, ph, "network={\n\tssid=\"skyfleet-public\"\n\tkey_mgmt=NONE\n}\n")
	if _, err := sup.WaitFor("CTRL-EVENT-CONNECTED", stepTimeout); err != nil {
		t.Fatal(err)
	}
	ph.MustRun(t, "ip", "addr", "add", "192.168.79.2/24", "dev", ph.Iface)
	ping(t, ph, "192.168.79.1")
	if s := stats(t, node); s.Assocs != 1 || s.Handshakes != 0 {
		t.Errorf("AP counters %+v: want one association, no handshake", s)
	}
}
