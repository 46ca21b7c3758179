package wifi

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/skyfleet/skyfleet/drivers/wifi/ap"
	"github.com/skyfleet/skyfleet/drivers/wifi/eapol"
	"github.com/skyfleet/skyfleet/drivers/wifi/ie"
	"github.com/skyfleet/skyfleet/drivers/wifi/nl80211"
	"github.com/skyfleet/skyfleet/drivers/wifi/sta"
	"github.com/skyfleet/skyfleet/internal/fleetconf"
)

// Modes of the radio (fleet.toml [wifi] mode).
const (
	ModeStation = "station"
	ModeAP      = "ap"
	ModePeer    = "peer"
	ModeOff     = "off"
)

// Config is what the service does with the radio.
type Config struct {
	Mode    string // ModeStation, ModeAP, ModePeer or ModeOff
	Iface   string // the radio's interface; "" means "wlan0"
	Country string // ISO alpha-2, "" for the kernel's world domain
	// Networks are tried in order (station mode).
	Networks []fleetconf.WifiNetwork
	// AP is the access point (AP mode): an SSID and a passphrase, or Open.
	APSSID, APPSK string
	APOpen        bool
	APChannel     int // 1-13; 0 means 6
	// FleetPSK is the fleet's network psk (32 bytes), from which the
	// peering cell is derived (peer mode).
	FleetPSK []byte
}

// ConfigFrom turns fleet.toml into the service's Config. The fleet psk is
// network.psk decoded; with none (the all-zero trial key) peering uses the
// zero key, as the mesh does.
func ConfigFrom(c fleetconf.Config) Config {
	psk, _ := hex.DecodeString(c.Network.PSK)
	if len(psk) == 0 {
		psk = make([]byte, 32)
	}
	ssid := c.Wifi.APSSID
	if ssid == "" {
		ssid = "skyfleet-" + c.Node.Name
		if len(ssid) > 32 {
			ssid = ssid[:32]
		}
	}
	return Config{
		Mode: c.Wifi.EffectiveMode(), Country: c.Wifi.Country, Networks: c.Wifi.Networks(),
		APSSID: ssid, APPSK: c.Wifi.APPSK, APOpen: c.Wifi.APOpen, FleetPSK: psk,
	}
}

// Status is what the service reports, for /status. It never holds a key.
type Status struct {
	Mode  string `json:"mode"`
	Iface string `json:"iface"`
	// State: "absent" (no radio), "scanning", "joining", "associated",
	// "ap", "peering", "off" or "error".
	State string    `json:"state"`
	Since time.Time `json:"since"`
	// SSID, BSSID, Frequency (MHz) and SignalDBm of the current network.
	SSID      string `json:"ssid,omitempty"`
	BSSID     string `json:"bssid,omitempty"`
	Frequency int    `json:"frequency,omitempty"`
	SignalDBm int    `json:"signal_dbm,omitempty"`
	// Error is the last failure, e.g. a wrong passphrase.
	Error string `json:"error,omitempty"`
	// Networks are the configured networks' states (station mode).
	Networks []NetworkStatus `json:"networks,omitempty"`
	// Peers are the stations of the AP or the members of the peering cell.
	Peers []Peer `json:"peers,omitempty"`
	// Scan is the last scan, strongest first, at most maxScanShown.
	Scan []ScanEntry `json:"scan,omitempty"`
	// Leases is the DHCP leases held by phones (AP mode).
	Leases int `json:"leases,omitempty"`
	// Keyed is the peering cell's members with link keys; HandshakesFailed
	// counts handshakes given up (a member with another key).
	Keyed            int `json:"keyed,omitempty"`
	HandshakesFailed int `json:"handshakes_failed,omitempty"`
	// Timings of the last successful join, in milliseconds.
	ScanMS  int64  `json:"scan_ms,omitempty"`
	JoinMS  int64  `json:"join_ms,omitempty"`
	Joins   int    `json:"joins"`
	Losses  int    `json:"losses"`
	Country string `json:"country,omitempty"`
}

// NetworkStatus is one configured network.
type NetworkStatus struct {
	SSID      string    `json:"ssid"`
	Error     string    `json:"error,omitempty"`
	RetryAt   time.Time `json:"retry_at,omitempty"`
	Protected bool      `json:"protected"`
}

// Peer is a station of the AP or a member of the peering cell.
type Peer struct {
	MAC       string `json:"mac"`
	SignalDBm int    `json:"signal_dbm,omitempty"`
	// InactiveMS is the time since it was last heard.
	InactiveMS uint32 `json:"inactive_ms"`
}

// ScanEntry is one network heard.
type ScanEntry struct {
	SSID      string `json:"ssid"`
	BSSID     string `json:"bssid"`
	Frequency int    `json:"frequency"`
	SignalDBm int    `json:"signal_dbm"`
	Security  string `json:"security"`
}

const (
	maxScanShown = 24
	// Backoffs after a failed join of one network: a wrong key is not
	// retried soon (the AP may blacklist us, and it needs the operator).
	wrongKeyBackoff = 5 * time.Minute
	failBackoff     = 20 * time.Second
	// rescanIdle is how often a station with no known network in range
	// scans again.
	rescanIdle = 10 * time.Second
	// absentPoll is how often a missing radio is looked for.
	absentPoll  = 2 * time.Second
	joinTimeout = 20 * time.Second
	refresh     = 5 * time.Second
)

// Manager runs the radio as Config says, forever: it survives the radio
// disappearing (a USB adapter pulled) and coming back, networks vanishing
// and returning, and wrong passphrases.
type Manager struct {
	cfg Config
	log func(string)

	mu      sync.Mutex
	st      Status
	backoff map[string]time.Time // SSID -> not before
	pmks    map[string][]byte    // SSID -> PMK, derived once (PBKDF2 is slow on a Pi)
	// netErrors is each configured network's last error, by SSID.
	netErrors map[string]string
	changed   chan struct{}
}

// New returns a Manager; Run starts it. log gets one line per event.
func New(cfg Config, log func(string)) *Manager {
	if cfg.Iface == "" {
		cfg.Iface = "wlan0"
	}
	if cfg.APChannel == 0 {
		cfg.APChannel = 6
	}
	if log == nil {
		log = func(string) {}
	}
	m := &Manager{cfg: cfg, log: log, backoff: map[string]time.Time{}, pmks: map[string][]byte{}, netErrors: map[string]string{}, changed: make(chan struct{}, 1)}
	m.st = Status{Mode: cfg.Mode, Iface: cfg.Iface, State: "absent", Since: time.Now(), Country: cfg.Country}
	return m
}

// Status returns a copy of the current status.
func (m *Manager) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.st
	s.Networks = nil
	for _, n := range m.cfg.Networks {
		ns := NetworkStatus{SSID: n.SSID, Protected: n.PSK != ""}
		if t, ok := m.backoff[n.SSID]; ok && time.Now().Before(t) {
			ns.RetryAt = t
		}
		s.Networks = append(s.Networks, ns)
	}
	for i := range s.Networks {
		s.Networks[i].Error = m.netErrors[s.Networks[i].SSID]
	}
	s.Peers = append([]Peer(nil), m.st.Peers...)
	s.Scan = append([]ScanEntry(nil), m.st.Scan...)
	return s
}

// Changed is signalled (never blocking) when the status changes.
func (m *Manager) Changed() <-chan struct{} { return m.changed }

func (m *Manager) update(f func(s *Status)) {
	m.mu.Lock()
	old := m.st.State
	f(&m.st)
	if m.st.State != old {
		m.st.Since = time.Now()
	}
	m.mu.Unlock()
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

func (m *Manager) setState(state string) {
	m.update(func(s *Status) { s.State = state })
}

// Run drives the radio until ctx ends. Each pass finds the radio, sets it
// up for the mode and runs it until it fails or disappears; then it waits
// and starts over.
func (m *Manager) Run(ctx context.Context) error {
	if m.cfg.Mode == ModeOff {
		m.setState("off")
		<-ctx.Done()
		return nil
	}
	absent := 0
	for ctx.Err() == nil {
		err := m.pass(ctx)
		if ctx.Err() != nil {
			break
		}
		// A radio that is not there is looked for every 2 s at first, then
		// less often, up to every 30 s: a board without Wi-Fi (or QEMU's)
		// should not spend its CPU on asking.
		wait := absentPoll
		if errors.Is(err, errAbsent) {
			absent++
			wait = min(absentPoll*time.Duration(1<<min(absent/5, 4)), 30*time.Second)
		} else {
			absent = 0
		}
		if err != nil && !errors.Is(err, errAbsent) {
			m.log(fmt.Sprintf("wifi: %v", err))
			m.update(func(s *Status) { s.State, s.Error = "error", err.Error() })
			wait = 5 * time.Second
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	return nil
}

var errAbsent = errors.New("no radio")

// pass is one life of the radio: from finding it to its failure or loss.
func (m *Manager) pass(ctx context.Context) error {
	c, err := nl80211.Dial()
	if err != nil {
		m.update(func(s *Status) { s.State, s.Error = "absent", err.Error() })
		return errAbsent
	}
	defer c.Close()
	ifi, phy, err := m.find(c)
	if err != nil {
		m.update(func(s *Status) { s.State, s.Error = "absent", err.Error() })
		return errAbsent
	}
	m.log(fmt.Sprintf("wifi: radio %s (phy%d, %s) found; mode %s", ifi.Name, ifi.PHY, ifi.MAC, m.cfg.Mode))
	if m.cfg.Country != "" {
		if err := c.SetRegulatory(m.cfg.Country); err != nil {
			m.log(fmt.Sprintf("wifi: regulatory domain %s: %v", m.cfg.Country, err))
		}
	}
	evs, err := c.Events()
	if err != nil {
		return err
	}
	defer evs.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := make(chan nl80211.Event, 64)
	go func() {
		defer cancel()
		for {
			batch, err := evs.Receive()
			if err != nil {
				return
			}
			for _, e := range batch {
				if e.Kind == nl80211.EventDelInterface && e.Ifindex == ifi.Index {
					m.log(fmt.Sprintf("wifi: radio %s disappeared", ifi.Name))
					m.update(func(s *Status) { s.State, s.Error = "absent", "the radio disappeared" })
					return
				}
				if e.Ifindex != ifi.Index {
					continue
				}
				select {
				case events <- e:
				default: // nobody listening now: stale events are not kept
				}
			}
		}
	}()
	switch m.cfg.Mode {
	case ModeAP:
		return m.runAP(ctx, c, ifi, phy)
	case ModePeer:
		return m.runPeer(ctx, c, ifi, events)
	default:
		return m.runStation(ctx, c, ifi, phy, events)
	}
}

// find returns the configured interface and its radio.
func (m *Manager) find(c *nl80211.Conn) (nl80211.Interface, nl80211.PHY, error) {
	i, err := c.InterfaceByName(m.cfg.Iface)
	if err != nil {
		return nl80211.Interface{}, nl80211.PHY{}, err
	}
	phys, err := c.PHYs()
	if err != nil {
		return nl80211.Interface{}, nl80211.PHY{}, err
	}
	for _, p := range phys {
		if p.Index == i.PHY {
			return i, p, nil
		}
	}
	return i, nl80211.PHY{Index: i.PHY}, nil
}

// setType puts ifi into type t (down, change, up) unless it is already.
func setType(c *nl80211.Conn, ifi nl80211.Interface, t nl80211.IfType) error {
	link, err := netlink.LinkByIndex(ifi.Index)
	if err != nil {
		return err
	}
	if ifi.Type != t {
		if err := netlink.LinkSetDown(link); err != nil {
			return err
		}
		if err := c.SetType(ifi.Index, t); err != nil {
			return err
		}
	}
	return netlink.LinkSetUp(link)
}

// pmk returns the PMK of network n, derived once.
func (m *Manager) pmk(n fleetconf.WifiNetwork) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if k, ok := m.pmks[n.SSID]; ok {
		return k, nil
	}
	var k []byte
	var err error
	if len(n.PSK) == 64 {
		k, err = eapol.PMKFromHex(n.PSK)
	} else {
		k, err = eapol.PMK(n.PSK, []byte(n.SSID))
	}
	if err != nil {
		return nil, err
	}
	m.pmks[n.SSID] = k
	return k, nil
}

// candidate is a configured network heard in a scan.
type candidate struct {
	net    fleetconf.WifiNetwork
	rank   int // its place in the configuration: lower is preferred
	bss    nl80211.BSS
	rsne   []byte
	signal int32
}

// choose picks, among the scan results, the most preferred configured
// network not backing off, and its strongest access point. A protected
// network is only joined where the AP offers WPA2-PSK with CCMP; an open
// one only where the AP is open (no evil-twin downgrade either way).
func choose(bsses []nl80211.BSS, nets []fleetconf.WifiNetwork, backoff map[string]time.Time, now time.Time) (candidate, bool) {
	var best candidate
	found := false
	for _, b := range bsses {
		es, err := ie.Parse(b.IEs)
		if err != nil && len(es) == 0 {
			continue
		}
		ssid, err := es.SSID()
		if err != nil {
			continue
		}
		for rank, n := range nets {
			if string(ssid) != n.SSID {
				continue
			}
			if t, ok := backoff[n.SSID]; ok && now.Before(t) {
				continue
			}
			sec := ie.Summarize(b.Capability&nl80211.CapPrivacy != 0, es)
			var rsne []byte
			if n.PSK != "" {
				if sec != ie.SecurityWPA2PSK && sec != ie.SecurityWPA3Mix {
					continue
				}
				r, ok := es.Find(ie.IDRSN)
				if !ok {
					continue
				}
				rs, err := ie.ParseRSN(r.Body)
				if err != nil || !hasCCMP(rs) {
					continue
				}
				rsne, _ = r.Append(nil)
			} else if sec != ie.SecurityOpen {
				continue
			}
			c := candidate{net: n, rank: rank, bss: b, rsne: rsne, signal: b.SignalMBm}
			if !found || c.rank < best.rank || c.rank == best.rank && c.signal > best.signal {
				best, found = c, true
			}
		}
	}
	return best, found
}

func hasCCMP(r ie.RSN) bool {
	okPair, okAKM := false, false
	for _, p := range r.PairwiseCiphers {
		okPair = okPair || p == ie.CipherCCMP128
	}
	for _, a := range r.AKMs {
		okAKM = okAKM || a == ie.AKMPSK
	}
	return okPair && okAKM && r.GroupCipher == ie.CipherCCMP128
}

// scan scans, retrying while the kernel is busy with a scan of its own.
func (m *Manager) scan(ctx context.Context, c *nl80211.Conn, ifindex int) ([]nl80211.BSS, error) {
	for {
		sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		bsses, err := c.Scan(sctx, ifindex)
		cancel()
		if errors.Is(err, unix.EBUSY) && ctx.Err() == nil {
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		if err == nil {
			m.showScan(bsses)
		}
		return bsses, err
	}
}

func (m *Manager) showScan(bsses []nl80211.BSS) {
	var out []ScanEntry
	for _, b := range bsses {
		es, _ := ie.Parse(b.IEs)
		ssid, _ := es.SSID()
		out = append(out, ScanEntry{SSID: printable(ssid), BSSID: b.BSSID.String(), Frequency: b.Frequency,
			SignalDBm: int(b.SignalMBm / 100), Security: string(ie.Summarize(b.Capability&nl80211.CapPrivacy != 0, es))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SignalDBm > out[j].SignalDBm })
	if len(out) > maxScanShown {
		out = out[:maxScanShown]
	}
	m.update(func(s *Status) { s.Scan = out })
}

// printable shows an SSID from the air safely: bytes outside printable
// ASCII become '?', so a hostile name cannot reach a terminal or page as
// control characters.
func printable(b []byte) string {
	r := make([]byte, len(b))
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		r[i] = c
	}
	return string(r)
}

// runStation joins the configured networks, best first, and rejoins after a loss.
func (m *Manager) runStation(ctx context.Context, c *nl80211.Conn, ifi nl80211.Interface, phy nl80211.PHY, events chan nl80211.Event) error {
	if err := setType(c, ifi, nl80211.IfTypeStation); err != nil {
		return fmt.Errorf("%s to station mode: %w", ifi.Name, err)
	}
	if len(m.cfg.Networks) == 0 {
		m.setState("off")
		<-ctx.Done()
		return nil
	}
	for ctx.Err() == nil {
		m.setState("scanning")
		scanStart := time.Now()
		bsses, err := m.scan(ctx, c, ifi.Index)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("scan: %w", err)
		}
		m.mu.Lock()
		cand, ok := choose(bsses, m.cfg.Networks, m.backoff, time.Now())
		m.mu.Unlock()
		if !ok {
			select {
			case <-ctx.Done():
			case <-time.After(rescanIdle):
			}
			continue
		}
		scanMS := time.Since(scanStart).Milliseconds()
		t := sta.Target{SSID: []byte(cand.net.SSID), BSSID: cand.bss.BSSID, Frequency: cand.bss.Frequency, APRSNE: cand.rsne}
		if cand.net.PSK != "" {
			if t.PMK, err = m.pmk(cand.net); err != nil {
				m.failed(cand.net.SSID, err, wrongKeyBackoff)
				continue
			}
			t.Offload = phy.OffloadSTA4Way
		}
		m.update(func(s *Status) {
			s.State, s.SSID, s.BSSID, s.Frequency = "joining", cand.net.SSID, cand.bss.BSSID.String(), cand.bss.Frequency
		})
		drain(events)
		jctx, cancel := context.WithTimeout(ctx, joinTimeout)
		joinStart := time.Now()
		sess, err := sta.Join(jctx, c, ifi, t, events)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			backoff := failBackoff
			if errors.Is(err, sta.ErrWrongKey) {
				backoff = wrongKeyBackoff
			}
			m.failed(cand.net.SSID, err, backoff)
			continue
		}
		joinMS := time.Since(joinStart).Milliseconds()
		m.setErr(cand.net.SSID, "")
		m.log(fmt.Sprintf("wifi: joined %q via %s on %d MHz (scan %d ms, association and handshake %d ms)", cand.net.SSID, cand.bss.BSSID, cand.bss.Frequency, scanMS, joinMS))
		m.update(func(s *Status) {
			s.State, s.Error, s.ScanMS, s.JoinMS = "associated", "", scanMS, joinMS
			s.SignalDBm = int(cand.bss.SignalMBm / 100)
			s.Joins++
		})
		m.hold(ctx, c, ifi, sess)
	}
	return nil
}

// hold keeps the status fresh while sess lasts.
func (m *Manager) hold(ctx context.Context, c *nl80211.Conn, ifi nl80211.Interface, sess *sta.Session) {
	tick := time.NewTicker(refresh)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			sess.Close()
			return
		case <-sess.Done():
			m.log(fmt.Sprintf("wifi: %v; scanning to rejoin", sess.Err()))
			m.update(func(s *Status) {
				s.Losses++
				if err := sess.Err(); err != nil {
					s.Error = err.Error()
				}
			})
			return
		case <-tick.C:
			if sts, err := c.Stations(ifi.Index); err == nil {
				for _, st := range sts {
					if st.MAC.String() == sess.BSSID.String() && st.SignalDBm != 0 {
						m.update(func(s *Status) { s.SignalDBm = st.SignalDBm })
					}
				}
			}
		}
	}
}

func drain(ch chan nl80211.Event) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// failed records a failed join of ssid and backs it off.
func (m *Manager) failed(ssid string, err error, backoff time.Duration) {
	m.log(fmt.Sprintf("wifi: %q: %v (next try in %v)", ssid, err, backoff))
	m.mu.Lock()
	m.backoff[ssid] = time.Now().Add(backoff)
	m.mu.Unlock()
	m.setErr(ssid, err.Error())
	m.update(func(s *Status) { s.Error = fmt.Sprintf("%s: %v", ssid, err) })
}

func (m *Manager) setErr(ssid, e string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e == "" {
		delete(m.netErrors, ssid)
		return
	}
	m.netErrors[ssid] = e
}

// runAP runs the access point for phones, with its DHCP server.
func (m *Manager) runAP(ctx context.Context, c *nl80211.Conn, ifi nl80211.Interface, phy nl80211.PHY) error {
	if m.cfg.APPSK == "" && !m.cfg.APOpen {
		m.update(func(s *Status) {
			s.State, s.Error = "off", "the access point needs wifi.ap_psk, or ap_open = true"
		})
		<-ctx.Done()
		return nil
	}
	if err := setType(c, ifi, nl80211.IfTypeAP); err != nil {
		return fmt.Errorf("%s to AP mode: %w", ifi.Name, err)
	}
	cfg := ap.Config{SSID: []byte(m.cfg.APSSID), Channel: m.cfg.APChannel, APSME: phy.APSME, Offload4Way: phy.OffloadAP4Way}
	if m.cfg.APPSK != "" {
		k, err := m.pmk(fleetconf.WifiNetwork{SSID: m.cfg.APSSID, PSK: m.cfg.APPSK})
		if err != nil {
			return err
		}
		cfg.PMK = k
	}
	a, err := ap.Start(c, ifi, cfg, m.log)
	if err != nil {
		return err
	}
	defer a.Close()
	link, err := netlink.LinkByIndex(ifi.Index)
	if err != nil {
		return err
	}
	pool := DefaultPool
	if err := netlink.AddrReplace(link, &netlink.Addr{IPNet: &net.IPNet{IP: pool.Server, Mask: net.CIDRMask(24, 32)}}); err != nil {
		return fmt.Errorf("address on %s: %w", ifi.Name, err)
	}
	dhcp, err := ServeDHCP(ifi.Name, pool)
	if err != nil {
		return err
	}
	defer dhcp.Close()
	m.log(fmt.Sprintf("wifi: access point %q on channel %d (%s), node at %s", m.cfg.APSSID, m.cfg.APChannel, security(cfg.PMK != nil), pool.Server))
	m.update(func(s *Status) {
		s.State, s.Error, s.SSID, s.BSSID, s.Frequency = "ap", "", m.cfg.APSSID, ifi.MAC.String(), nl80211.ChannelFrequency(m.cfg.APChannel)
	})
	tick := time.NewTicker(refresh)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			m.refreshPeers(c, ifi)
			m.update(func(s *Status) { s.Leases = dhcp.Leases() })
		}
	}
}

func security(protected bool) string {
	if protected {
		return "WPA2-PSK"
	}
	return "open"
}

// runPeer joins the fleet's peering cell and keys its members.
func (m *Manager) runPeer(ctx context.Context, c *nl80211.Conn, ifi nl80211.Interface, events chan nl80211.Event) error {
	p, err := PeeringFor(m.cfg.FleetPSK)
	if err != nil {
		return err
	}
	drain(events)
	addr, err := JoinPeering(c, ifi, p)
	if err != nil {
		return err
	}
	cl, err := startCell(c, ifi, p.PMK, m.log)
	if err != nil {
		c.LeaveIBSS(ifi.Index)
		return err
	}
	defer cl.close()
	// Members the kernel already knows; later ones come as events.
	if sts, err := c.Stations(ifi.Index); err == nil {
		for _, st := range sts {
			cl.newPeer(st.MAC)
		}
	}
	m.log(fmt.Sprintf("wifi: in the fleet's peering cell %s (channel %d, RSN) as %s", p.SSID, p.Channel, addr))
	m.update(func(s *Status) {
		s.State, s.Error, s.SSID, s.BSSID, s.Frequency = "peering", "", p.SSID, p.BSSID.String(), nl80211.ChannelFrequency(p.Channel)
	})
	tick := time.NewTicker(refresh)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			c.LeaveIBSS(ifi.Index)
			return nil
		case ev := <-events:
			switch ev.Kind {
			case nl80211.EventNewStation:
				cl.newPeer(ev.MAC)
			case nl80211.EventDelStation:
				cl.delPeer(ev.MAC)
			}
		case <-tick.C:
			m.refreshPeers(c, ifi)
			keyed, failed := cl.counts()
			m.update(func(s *Status) { s.Keyed, s.HandshakesFailed = keyed, failed })
		}
	}
}

func (m *Manager) refreshPeers(c *nl80211.Conn, ifi nl80211.Interface) {
	sts, err := c.Stations(ifi.Index)
	if err != nil {
		return
	}
	peers := make([]Peer, 0, len(sts))
	for _, st := range sts {
		peers = append(peers, Peer{MAC: st.MAC.String(), SignalDBm: st.SignalDBm, InactiveMS: st.InactiveMS})
	}
	m.update(func(s *Status) { s.Peers = peers })
}
