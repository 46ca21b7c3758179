package wifi

import (
	"bufio"
	"encoding/json"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// Link is the Wi-Fi side of a mesh link, as /mesh/links shows it under
// "medium".
type Link struct {
	Type  string `json:"type"` // "wifi"
	Iface string `json:"iface"`
	Mode  string `json:"mode"`
	// Peer is the neighbour's radio MAC (peer and AP modes) or, for a
	// station, the access point's BSSID the traffic goes through.
	Peer      string `json:"peer"`
	SSID      string `json:"ssid,omitempty"`
	SignalDBm int    `json:"signal_dbm,omitempty"`
	// InactiveMS is the time since the radio last heard the peer.
	InactiveMS uint32 `json:"inactive_ms,omitempty"`
}

// ARPEntry is one line of the kernel's neighbour table as /proc/net/arp
// shows it.
type ARPEntry struct {
	IP     netip.Addr
	MAC    string
	Device string
}

// maxARPLines bounds what ReadARP reads: the kernel's table is bounded
// too (gc_thresh3, 1024 by default).
const maxARPLines = 4096

// ParseARP reads /proc/net/arp's format: a header line, then "IP HW-type
// Flags HW-address Mask Device" per entry. Lines that do not parse are
// skipped; incomplete entries (all-zero MAC) are left out.
func ParseARP(data string) []ARPEntry {
	var out []ARPEntry
	sc := bufio.NewScanner(strings.NewReader(data))
	for n := 0; sc.Scan() && n < maxARPLines; n++ {
		f := strings.Fields(sc.Text())
		if n == 0 || len(f) < 6 {
			continue
		}
		ip, err := netip.ParseAddr(f[0])
		if err != nil || f[3] == "00:00:00:00:00:00" || len(f[3]) != 17 {
			continue
		}
		out = append(out, ARPEntry{IP: ip, MAC: strings.ToLower(f[3]), Device: f[5]})
	}
	return out
}

// LinkOf says which Wi-Fi link carries traffic to endpoint (a transport
// address such as "udp://169.254.3.4:5505"), given the service's status and
// the neighbour table; nil when it is not reached over the radio.
func LinkOf(st Status, arp []ARPEntry, endpoint string) *Link {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil
	}
	ap, err := netip.ParseAddrPort(u.Host)
	if err != nil {
		return nil
	}
	ip := ap.Addr().Unmap()
	for _, e := range arp {
		if e.IP != ip || e.Device != st.Iface {
			continue
		}
		l := &Link{Type: "wifi", Iface: st.Iface, Mode: st.Mode, SSID: st.SSID}
		if st.Mode == ModeStation {
			l.Peer, l.SignalDBm = st.BSSID, st.SignalDBm
			return l
		}
		l.Peer = e.MAC
		for _, p := range st.Peers {
			if strings.EqualFold(p.MAC, e.MAC) {
				l.SignalDBm, l.InactiveMS = p.SignalDBm, p.InactiveMS
			}
		}
		return l
	}
	return nil
}

// LinkInfo returns a function for mesh.Router.SetLinkInfo that reads the
// Wi-Fi service's status file and the neighbour table (arpFile, normally
// /proc/net/arp) at most every 2 seconds.
func LinkInfo(statusFile, arpFile string) func(endpoint string) any {
	var mu sync.Mutex
	var st Status
	var arp []ARPEntry
	var read time.Time
	return func(endpoint string) any {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(read) > 2*time.Second {
			read = time.Now()
			st = Status{}
			if b, err := os.ReadFile(statusFile); err == nil {
				json.Unmarshal(b, &st)
			}
			arp = nil
			if b, err := os.ReadFile(arpFile); err == nil {
				arp = ParseARP(string(b))
			}
		}
		if st.Iface == "" {
			return nil
		}
		if l := LinkOf(st, arp, endpoint); l != nil {
			return l
		}
		return nil
	}
}
