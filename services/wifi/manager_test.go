package wifi

import (
	"net"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/skyfleet/skyfleet/drivers/wifi/ie"
	"github.com/skyfleet/skyfleet/drivers/wifi/nl80211"
	"github.com/skyfleet/skyfleet/internal/fleetconf"
)

// beaconOf returns a scan result for ssid: WPA2-PSK/CCMP when protected,
// else open; signal in dBm.
func beaconOf(t *testing.T, ssid string, mac byte, protected bool, signal int) nl80211.BSS {
	t.Helper()
	b, err := ie.AppendSSID(nil, []byte(ssid))
	if err != nil {
		t.Fatal(err)
	}
	b = ie.AppendDSParams(b, 6)
	caps := nl80211.CapESS
	if protected {
		if b, err = ie.AppendRSN(b, ie.WPA2PSK()); err != nil {
			t.Fatal(err)
		}
		caps |= nl80211.CapPrivacy
	}
	return nl80211.BSS{BSSID: net.HardwareAddr{2, 0, 0, 0, 0, mac}, Frequency: 2437, Capability: caps, SignalMBm: int32(signal * 100), IEs: b}
}

func TestChoosePrefersConfigurationOrderThenSignal(t *testing.T) {
	nets := []fleetconf.WifiNetwork{{SSID: "base", PSK: "base passphrase"}, {SSID: "relief", PSK: "relief passphrase"}, {SSID: "cafe"}}
	now := time.Now()
	scan := []nl80211.BSS{
		beaconOf(t, "relief", 1, true, -40),
		beaconOf(t, "base", 2, true, -80),
		beaconOf(t, "base", 3, true, -60),
		beaconOf(t, "cafe", 4, false, -30),
	}
	c, ok := choose(scan, nets, nil, now)
	if !ok || c.net.SSID != "base" || c.bss.BSSID[5] != 3 {
		t.Fatalf("chose %+v, want base's stronger AP", c)
	}
	if len(c.rsne) < 2 || c.rsne[0] != byte(ie.IDRSN) {
		t.Errorf("the AP's RSN element was not kept for the handshake: % x", c.rsne)
	}
	// base backing off (a wrong passphrase): relief is next.
	c, ok = choose(scan, nets, map[string]time.Time{"base": now.Add(time.Minute)}, now)
	if !ok || c.net.SSID != "relief" {
		t.Fatalf("chose %+v with base backing off, want relief", c)
	}
	// The backoff over, base again.
	if c, _ = choose(scan, nets, map[string]time.Time{"base": now.Add(-time.Second)}, now); c.net.SSID != "base" {
		t.Errorf("chose %s after base's backoff ended", c.net.SSID)
	}
	if _, ok := choose(nil, nets, nil, now); ok {
		t.Error("chose a network from an empty scan")
	}
}

func TestChooseRefusesSecurityMismatch(t *testing.T) {
	now := time.Now()
	// An open AP named like a protected network is an evil twin: never joined.
	if c, ok := choose([]nl80211.BSS{beaconOf(t, "base", 1, false, -20)}, []fleetconf.WifiNetwork{{SSID: "base", PSK: "base passphrase"}}, nil, now); ok {
		t.Errorf("joined %+v, an open AP for a protected network", c)
	}
	// A protected AP for a network configured open: no key to offer.
	if c, ok := choose([]nl80211.BSS{beaconOf(t, "cafe", 1, true, -20)}, []fleetconf.WifiNetwork{{SSID: "cafe"}}, nil, now); ok {
		t.Errorf("chose %+v, a protected AP for an open network", c)
	}
	// A malformed element list is skipped, not fatal.
	bad := beaconOf(t, "base", 1, true, -20)
	bad.IEs = []byte{0, 40, 'b'}
	if _, ok := choose([]nl80211.BSS{bad}, []fleetconf.WifiNetwork{{SSID: "base", PSK: "base passphrase"}}, nil, now); ok {
		t.Error("chose a BSS whose SSID element is cut")
	}
}

func TestPrintableSSID(t *testing.T) {
	if got := printable([]byte("kit\x1b[2J\xff")); got != "kit?[2J?" {
		t.Errorf("printable = %q", got)
	}
}

func TestConfigFrom(t *testing.T) {
	cfg, probs := fleetconf.Parse([]byte("[node]\nname = \"kit-07\"\n[wifi]\nmode = \"ap\"\nap_open = true\n"), true)
	if len(probs) != 0 {
		t.Fatal(probs)
	}
	c := ConfigFrom(cfg)
	if c.Mode != ModeAP || c.APSSID != "skyfleet-kit-07" || !c.APOpen || len(c.FleetPSK) != 32 {
		t.Errorf("config %+v", c)
	}
}

func TestLeases(t *testing.T) {
	p := Pool{Server: net.IPv4(10, 42, 0, 1), First: net.IPv4(10, 42, 0, 10), Last: net.IPv4(10, 42, 0, 11), Lease: time.Hour}
	l := newLeases(p)
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }
	a, b, c := [6]byte{1}, [6]byte{2}, [6]byte{3}
	ipA, err := l.offer(a)
	if err != nil || !ipA.Equal(net.IPv4(10, 42, 0, 10)) {
		t.Fatalf("offer A: %v %v", ipA, err)
	}
	if again, _ := l.offer(a); !again.Equal(ipA) {
		t.Errorf("A's second DISCOVER got %v, want its offer %v", again, ipA)
	}
	ipB, _ := l.offer(b)
	if _, err := l.offer(c); err != errPoolFull {
		t.Errorf("a third client in a pool of two: %v, want errPoolFull", err)
	}
	if l.request(b, ipA) {
		t.Error("B was given A's address")
	}
	if !l.request(a, ipA) || !l.request(b, ipB) || l.count() != 2 {
		t.Fatal("requests of offered addresses refused")
	}
	// Offers not taken up expire; bound leases last their lease time.
	now = now.Add(2 * time.Hour)
	if ip, err := l.offer(c); err != nil || !ip.Equal(net.IPv4(10, 42, 0, 10)) {
		t.Errorf("after the leases expired, C got %v, %v", ip, err)
	}
	l.release(c)
	if l.count() != 0 {
		t.Errorf("%d leases after expiry and release", l.count())
	}
}

func TestDHCPReplies(t *testing.T) {
	d := &DHCPServer{leases: newLeases(DefaultPool)}
	mac := net.HardwareAddr{2, 0, 0, 0, 9, 9}
	disc, err := dhcpv4.NewDiscovery(mac)
	if err != nil {
		t.Fatal(err)
	}
	offer := d.reply(disc)
	if offer == nil || offer.MessageType() != dhcpv4.MessageTypeOffer || !offer.ServerIdentifier().Equal(DefaultPool.Server) {
		t.Fatalf("offer %v", offer)
	}
	yi := offer.YourIPAddr
	if yi.To4() == nil || yi.To4()[3] < 10 || yi.To4()[3] > 209 || offer.SubnetMask().String() != "ffffff00" {
		t.Errorf("offered %v/%v outside the pool", yi, offer.SubnetMask())
	}
	req, err := dhcpv4.NewRequestFromOffer(offer)
	if err != nil {
		t.Fatal(err)
	}
	ack := d.reply(req)
	if ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck || !ack.YourIPAddr.Equal(yi) || ack.IPAddressLeaseTime(0) != time.Hour {
		t.Fatalf("ack %v", ack)
	}
	// A phone asking for an address it had on another network: NAK.
	other, _ := dhcpv4.NewRequestFromOffer(offer, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(192, 168, 1, 5))))
	if r := d.reply(other); r == nil || r.MessageType() != dhcpv4.MessageTypeNak {
		t.Errorf("request of a foreign address answered %v, want NAK", r)
	}
	// A request for another server's offer releases ours.
	elsewhere, _ := dhcpv4.NewRequestFromOffer(offer, dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(10, 0, 0, 1))))
	if r := d.reply(elsewhere); r != nil {
		t.Errorf("answered a request meant for another server: %v", r)
	}
}
