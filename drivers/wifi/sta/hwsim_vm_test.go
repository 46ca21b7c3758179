//go:build kernelvm

// These tests run in the kernel VM (e2e.TestWifiStationInVM: Debian's kernel
// with mac80211_hwsim's simulated radios, and Debian's hostapd as the access
// point): Skyfleet's station and supplicant against the reference AP. Each
// end has a network namespace of its own, or traffic would never cross the
// radios; Skyfleet's side runs as this test binary re-executed inside its
// namespace (TestMain's node role).

package sta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"golang.org/x/sys/unix"

	"github.com/skyfleet/skyfleet/drivers/wifi/eapol"
	"github.com/skyfleet/skyfleet/drivers/wifi/ie"
	"github.com/skyfleet/skyfleet/drivers/wifi/nl80211"
	"github.com/skyfleet/skyfleet/internal/hwsimtest"
)

const (
	apSSID      = "skyfleet-sta-test"
	apPSK       = "correct horse battery staple"
	stepTimeout = 30 * time.Second
)

// nodeArgs tells a re-executed test binary what to join.
type nodeArgs struct {
	Iface string
	SSID  string
	PSK   string // "" for open
	DHCP  bool
}

// nodeResult is the node's last output line, after "NODE-RESULT ".
type nodeResult struct {
	ScanMS    int64 // until the AP was in a scan result
	AssocMS   int64 // scan result to port open (association + 4-way handshake)
	DHCPMS    int64 // port open to a DHCP lease
	Address   string
	Signal    int32 // mBm of the AP in the scan
	Security  string
	SeenBSSes int
}

func TestMain(m *testing.M) {
	hwsimtest.NodeMain(func(raw []byte) error {
		var args nodeArgs
		if err := json.Unmarshal(raw, &args); err != nil {
			return err
		}
		var res nodeResult
		err := runNode(args, &res)
		b, _ := json.Marshal(res)
		fmt.Printf("STA-RESULT %s\n", b)
		return err
	})
	os.Exit(m.Run())
}

// runNode is Skyfleet's station inside its namespace: scan until the AP is
// heard, join it with the Go supplicant, optionally take a DHCP lease.
func runNode(a nodeArgs, res *nodeResult) error {
	c, err := nl80211.Dial()
	if err != nil {
		return err
	}
	defer c.Close()
	ifi, err := c.InterfaceByName(a.Iface)
	if err != nil {
		return err
	}
	if out, err := exec.Command("ip", "link", "set", a.Iface, "up").CombinedOutput(); err != nil {
		return fmt.Errorf("ip link set up: %v: %s", err, out)
	}
	ev, err := c.Events()
	if err != nil {
		return err
	}
	defer ev.Close()
	events := make(chan nl80211.Event, 64)
	go func() {
		for {
			evs, err := ev.Receive()
			if err != nil {
				close(events)
				return
			}
			for _, e := range evs {
				if e.Ifindex == ifi.Index {
					events <- e
				}
			}
		}
	}()

	start := time.Now()
	var target *nl80211.BSS
	var apRSNE []byte
	for target == nil {
		if time.Since(start) > stepTimeout {
			return errors.New("the AP never showed up in a scan")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		scanStart := time.Now()
		bsses, err := c.Scan(ctx, ifi.Index)
		cancel()
		fmt.Printf("scan took %v: %d results, %v\n", time.Since(scanStart).Round(time.Millisecond), len(bsses), err)
		if errors.Is(err, unix.EBUSY) {
			// The kernel scans on its own too: try again shortly.
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
			continue
		}
		if err != nil {
			return err
		}
		res.SeenBSSes = len(bsses)
		for i := range bsses {
			es, err := ie.Parse(bsses[i].IEs)
			if err != nil {
				continue
			}
			ssid, err := es.SSID()
			if err != nil || string(ssid) != a.SSID {
				continue
			}
			target = &bsses[i]
			if r, ok := es.Find(ie.IDRSN); ok {
				apRSNE, _ = r.Append(nil)
			}
			res.Security = string(ie.Summarize(bsses[i].Capability&nl80211.CapPrivacy != 0, es))
		}
	}
	res.ScanMS = time.Since(start).Milliseconds()
	res.Signal = target.SignalMBm

	t := Target{SSID: []byte(a.SSID), BSSID: target.BSSID, Frequency: target.Frequency}
	if a.PSK != "" {
		if t.PMK, err = eapol.PMK(a.PSK, t.SSID); err != nil {
			return err
		}
		t.APRSNE = apRSNE
	}
	joinStart := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	s, err := Join(ctx, c, ifi, t, events)
	if err != nil {
		return err
	}
	res.AssocMS = time.Since(joinStart).Milliseconds()
	if a.DHCP {
		dstart := time.Now()
		cl, err := nclient4.New(a.Iface, nclient4.WithTimeout(2*time.Second), nclient4.WithRetry(10))
		if err != nil {
			return fmt.Errorf("DHCP client: %w", err)
		}
		defer cl.Close()
		lease, err := cl.Request(ctx)
		if err != nil {
			return fmt.Errorf("DHCP: %w", err)
		}
		res.DHCPMS = time.Since(dstart).Milliseconds()
		ip := lease.ACK.YourIPAddr
		mask := net.IPMask(lease.ACK.SubnetMask())
		ones, _ := mask.Size()
		res.Address = fmt.Sprintf("%s/%d", ip, ones)
		if out, err := exec.Command("ip", "addr", "add", res.Address, "dev", a.Iface).CombinedOutput(); err != nil {
			return fmt.Errorf("ip addr add: %v: %s", err, out)
		}
	}
	fmt.Println("NODE-JOINED")
	// Stay associated until the parent's SIGTERM (Daemon.Stop), then leave.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	select {
	case <-sig:
	case <-s.Done():
		return s.Err()
	}
	return s.Close()
}

// stationResult waits for the node's STA-RESULT line and its NODE-RESULT.
func stationResult(t *testing.T, d *hwsimtest.Daemon) (nodeResult, string) {
	t.Helper()
	l, err := d.WaitFor("STA-RESULT ", 2*stepTimeout)
	if err != nil {
		t.Fatal(err)
	}
	var r nodeResult
	if err := json.Unmarshal([]byte(l.Text[strings.Index(l.Text, "{"):]), &r); err != nil {
		t.Fatalf("station result %q: %v", l.Text, err)
	}
	return r, hwsimtest.NodeResult(t, d, stepTimeout)
}

// startAP runs hostapd (WPA2-PSK CCMP, or open) and udhcpd on r.
func startAP(t *testing.T, r hwsimtest.Radio, psk string) {
	t.Helper()
	dir := t.TempDir()
	conf := fmt.Sprintf("interface=%s\ndriver=nl80211\nssid=%s\nhw_mode=g\nchannel=6\n", r.Iface, apSSID)
	if psk != "" {
		conf += fmt.Sprintf("wpa=2\nwpa_key_mgmt=WPA-PSK\nrsn_pairwise=CCMP\nwpa_passphrase=%s\n", psk)
	}
	ap, err := hwsimtest.Hostapd(r.NS, dir, conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ap.Stop()
		t.Logf("hostapd's output:\n%s", ap.Output())
	})
	if _, err := ap.WaitFor("AP-ENABLED", stepTimeout); err != nil {
		t.Fatal(err)
	}
	r.MustRun(t, "ip", "addr", "add", "192.168.77.1/24", "dev", r.Iface)
	leases := dir + "/leases"
	os.WriteFile(leases, nil, 0o644)
	udhcpdConf := dir + "/udhcpd.conf"
	os.WriteFile(udhcpdConf, []byte(fmt.Sprintf("start 192.168.77.100\nend 192.168.77.150\ninterface %s\nlease_file %s\noption subnet 255.255.255.0\noption lease 600\n", r.Iface, leases)), 0o644)
	// Before an offer busybox udhcpd ARP-probes the address it will give and
	// waits up to -a ms for a conflict (2000 by default): that wait, not the
	// station, was the 2.2 s "associated to DHCP" once measured here. 200 ms
	// keeps the probe and measures the client's path.
	dhcpd, err := r.NS.Start("udhcpd", "-f", "-a", "200", udhcpdConf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dhcpd.Stop() })
}

// TestStationJoinsHostapd: Skyfleet's station scans, sees hostapd's
// WPA2-PSK network, joins it with the Go supplicant, gets an address from
// a DHCP server behind the AP and passes traffic both ways.
func TestStationJoinsHostapd(t *testing.T) {
	rs := hwsimtest.Radios(t, 2, stepTimeout)
	ap, st := rs[0], rs[1]
	startAP(t, ap, apPSK)

	d := hwsimtest.StartNode(t, "station", st.NS, nodeArgs{Iface: st.Iface, SSID: apSSID, PSK: apPSK, DHCP: true})
	if _, err := d.WaitFor("NODE-JOINED", 2*stepTimeout); err != nil {
		_, e := stationResult(t, d)
		t.Fatalf("the station did not join: %s", e)
	}
	// The AP's side pings the leased address: traffic crossed both ways
	// under the keys the Go supplicant installed.
	out, err := st.NS.Run("ip", "-4", "-o", "addr", "show", "dev", st.Iface)
	if err != nil || !strings.Contains(out, "192.168.77.1") {
		t.Fatalf("no DHCP address on %s: %v %s", st.Iface, err, out)
	}
	addr := strings.Fields(out[strings.Index(out, "inet ")+5:])[0]
	addr = addr[:strings.Index(addr, "/")]
	if err := hwsimtest.Poll(stepTimeout, 100*time.Millisecond, func() error {
		out, err := ap.NS.Run("ping", "-c", "1", "-W", "1", addr)
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}); err != nil {
		t.Fatalf("ping %s from the AP: %v", addr, err)
	}
	d.Stop()
	r, e := stationResult(t, d)
	if e != "" {
		t.Fatal(e)
	}
	if r.Security != "wpa2-psk" {
		t.Errorf("the scan called the AP %q, want wpa2-psk", r.Security)
	}
	t.Logf("MEASURE scan-to-seen %d ms, scan-to-associated (association + 4-way handshake) %d ms, associated-to-DHCP %d ms, address %s, signal %d mBm",
		r.ScanMS, r.AssocMS, r.DHCPMS, r.Address, r.Signal)
}

// TestStationWrongPSK: a wrong passphrase ends the join with ErrWrongKey's
// message, not a hang or a generic failure.
func TestStationWrongPSK(t *testing.T) {
	rs := hwsimtest.Radios(t, 2, stepTimeout)
	ap, st := rs[0], rs[1]
	startAP(t, ap, apPSK)
	d := hwsimtest.StartNode(t, "station", st.NS, nodeArgs{Iface: st.Iface, SSID: apSSID, PSK: "not the passphrase"})
	_, e := stationResult(t, d)
	if !strings.Contains(e, ErrWrongKey.Error()) {
		t.Fatalf("join with a wrong passphrase ended with %q, want %q", e, ErrWrongKey)
	}
	t.Logf("wrong passphrase: %s", e)
}
