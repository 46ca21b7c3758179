package wifi

import (
	"os"
	"path/filepath"
	"testing"
)

// arpSample is /proc/net/arp as Linux 6.1 prints it (net/ipv4/arp.c,
// arp_seq_show): a peer in the cell, an incomplete entry, one on eth0.
const arpSample = `IP address       HW type     Flags       HW address            Mask     Device
169.254.120.16   0x1         0x2         02:00:00:00:01:00     *        wlan0
169.254.9.9      0x1         0x0         00:00:00:00:00:00     *        wlan0
192.168.1.1      0x1         0x2         F8:32:E4:00:00:01     *        eth0
`

func TestLinkOf(t *testing.T) {
	arp := ParseARP(arpSample)
	if len(arp) != 2 || arp[1].MAC != "f8:32:e4:00:00:01" {
		t.Fatalf("ARP entries %+v", arp)
	}
	peer := Status{Mode: ModePeer, Iface: "wlan0", SSID: "skyfleet-e2663530", Peers: []Peer{{MAC: "02:00:00:00:01:00", SignalDBm: -47, InactiveMS: 120}}}
	l := LinkOf(peer, arp, "udp://169.254.120.16:5505")
	if l == nil || l.Peer != "02:00:00:00:01:00" || l.SignalDBm != -47 || l.Mode != ModePeer || l.Iface != "wlan0" {
		t.Errorf("peer link %+v", l)
	}
	if l := LinkOf(peer, arp, "udp://192.168.1.1:5505"); l != nil {
		t.Errorf("an eth0 neighbour shown as Wi-Fi: %+v", l)
	}
	if l := LinkOf(peer, arp, "udp://169.254.9.9:5505"); l != nil {
		t.Errorf("an incomplete ARP entry shown: %+v", l)
	}
	if l := LinkOf(peer, arp, "kiss+tcp://127.0.0.1:8001"); l != nil {
		t.Errorf("a radio link shown as Wi-Fi: %+v", l)
	}
	station := Status{Mode: ModeStation, Iface: "eth0", SSID: "base-camp", BSSID: "02:00:00:00:00:00", SignalDBm: -61}
	if l := LinkOf(station, arp, "udp://192.168.1.1:5505"); l == nil || l.Peer != "02:00:00:00:00:00" || l.SignalDBm != -61 {
		t.Errorf("station link %+v: want the AP's BSSID and signal", l)
	}
}

func TestLinkInfoReadsFiles(t *testing.T) {
	dir := t.TempDir()
	st, arp := filepath.Join(dir, "wifi.json"), filepath.Join(dir, "arp")
	f := LinkInfo(st, arp)
	if f("udp://169.254.120.16:5505") != nil {
		t.Error("information without a status file")
	}
	os.WriteFile(st, []byte(`{"mode":"peer","iface":"wlan0","peers":[{"mac":"02:00:00:00:01:00","signal_dbm":-50}]}`), 0o644)
	os.WriteFile(arp, []byte(arpSample), 0o644)
	f = LinkInfo(st, arp)
	l, ok := f("udp://169.254.120.16:5505").(*Link)
	if !ok || l.SignalDBm != -50 {
		t.Errorf("got %+v", l)
	}
}

func TestParseARPSkipsMalformedLines(t *testing.T) {
	got := ParseARP("header\n1.2.3.4 a b c d e\nnot-an-ip 0x1 0x2 02:00:00:00:01:00 * wlan0\n10.0.0.1 0x1\n")
	if len(got) != 0 {
		t.Errorf("entries from malformed lines: %+v", got)
	}
}
