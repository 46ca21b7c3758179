// Package ap runs a Wi-Fi access point on a Linux interface: it builds the
// beacon, starts it through nl80211 and, on drivers without an AP SME in
// firmware (mac80211 drivers), answers probe, authentication and
// association requests itself as hostapd would, then runs the WPA2-PSK
// 4-way handshake as authenticator (drivers/wifi/eapol) over an EAPOL
// packet socket, installs each station's keys and opens its port.
//
// What the AP is for (phones reaching the node's pages, its SSID and
// passphrase, DHCP) is the caller's (services/wifi); this package knows
// IEEE 802.11 and the kernel.
package ap

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/mdlayher/packet"

	"github.com/skyfleet/skyfleet/drivers/wifi/eapol"
	"github.com/skyfleet/skyfleet/drivers/wifi/ie"
	"github.com/skyfleet/skyfleet/drivers/wifi/mgmt"
	"github.com/skyfleet/skyfleet/drivers/wifi/nl80211"
)

// Driver is what an AP needs of the kernel; *nl80211.Conn has it.
type Driver interface {
	StartAP(ifindex int, p nl80211.APParams) error
	StopAP(ifindex int) error
	NewStation(ifindex int, p nl80211.StationParams) error
	DelStation(ifindex int, mac net.HardwareAddr) error
	NewKey(ifindex int, k nl80211.Key) error
	SetDefaultKey(ifindex int, index uint8) error
	AuthorizeStation(ifindex int, peer net.HardwareAddr) error
	ListenFrames(ifindex int, types ...uint16) (*nl80211.Frames, error)
	Stations(ifindex int) ([]nl80211.Station, error)
}

// Config describes the access point.
type Config struct {
	SSID    []byte // 1-32 bytes
	Channel int    // 2.4 GHz channel 1-13
	// PMK is the 32-byte pairwise master key of the passphrase and SSID
	// (eapol.PMK); nil runs an open AP, for a public emergency kit.
	PMK []byte
	// MaxStations caps the stations associated or associating at once;
	// 0 means DefaultMaxStations. When the table is full a new station
	// takes the place of the oldest one whose port is not open yet; with
	// none, authentication is refused with status 17 (AP unable to handle
	// new stations).
	MaxStations int
	// APSME says the driver answers authentication and association
	// itself (nl80211.PHY.APSME): then only the handshake is done here,
	// or nothing if Offload4Way.
	APSME, Offload4Way bool
}

// DefaultMaxStations is the cap on stations when Config.MaxStations is 0:
// a kit's AP serves a handful of phones, and every station costs a key
// slot and a handshake.
const DefaultMaxStations = 16

// Timings of the station state machine.
const (
	// authTimeout drops a station that authenticated but never associated.
	authTimeout = 10 * time.Second
	// retryInterval is the EAPOL-Key retransmission timer (hostapd's
	// 100 ms first, then 1 s: one value, as hwsim and real radios answer
	// within milliseconds).
	retryInterval = time.Second
	beaconTU      = 100
	dtimPeriod    = 2
	// maxInactive drops an associated station the radio has not heard
	// from for this long (hostapd's ap_max_inactivity): a phone that left
	// without a word must not hold one of the MaxStations places forever.
	maxInactive = 5 * time.Minute
	// sweepEvery is how often inactivity is checked.
	sweepEvery = 30 * time.Second
)

// Station is one station the AP knows, for the status page.
type Station struct {
	MAC        net.HardwareAddr
	AID        uint16
	Associated bool
	Authorized bool // port open: keys in (or an open AP)
	Since      time.Time
}

// Stats are the AP's counters since Start.
type Stats struct {
	ProbeResponses uint64
	Auths          uint64
	Assocs         uint64
	Handshakes     uint64 // 4-way handshakes completed
	// WrongKey counts stations whose message 2 failed its MIC: a phone
	// typing the wrong passphrase.
	WrongKey uint64
	// Refused counts authentications or associations refused (full,
	// wrong SSID, unsupported security).
	Refused uint64
	// Malformed counts frames dropped as unparsable.
	Malformed uint64
	// Evicted counts stations dropped before their port opened to make
	// room for a new one (the table was full).
	Evicted uint64
}

type station struct {
	mac        mgmt.Addr
	aid        uint16
	associated bool
	authorized bool
	since      time.Time
	auth       *eapol.Authenticator
	retry      *time.Timer
	lastSeq    uint16 // sequence control of its last management frame
	seenSeq    bool
}

// AP is a running access point.
type AP struct {
	d       Driver
	ifi     nl80211.Interface
	cfg     Config
	bssid   mgmt.Addr
	beacon  mgmt.Beacon
	rsne    []byte // our RSN element, whole; nil for open
	gtk     *eapol.GroupKey
	frames  frameConn // nil when the chip runs the MLME (Config.APSME)
	eap     *packet.Conn
	log     func(string)
	mu      sync.Mutex
	stas    map[mgmt.Addr]*station
	aids    map[uint16]bool
	stats   Stats
	closed  bool
	done    chan struct{}
	wg      sync.WaitGroup
	started time.Time
}

// frameConn is the registration for management frames the AP answers; a
// *nl80211.Frames has it.
type frameConn interface {
	Receive() (nl80211.Frame, error)
	Send(frame []byte) error
	Close() error
}

// rates are the 802.11b/g rates in 500 kb/s units; the 802.11b ones basic,
// as mac80211 expects for 2.4 GHz.
var basicRates = []ie.Rate{0x82, 0x84, 0x8b, 0x96}
var extRates = []ie.Rate{0x0c, 0x12, 0x18, 0x24, 0x30, 0x48, 0x60, 0x6c}

// Start builds the beacon, registers for the management frames the AP must
// answer, starts beaconing and serves stations until Close. ifi must be of
// type nl80211.IfTypeAP and up. log, if not nil, gets one line per station
// event (never a key).
func Start(d Driver, ifi nl80211.Interface, cfg Config, log func(string)) (*AP, error) {
	a, err := newAP(d, ifi, cfg, log)
	if err != nil {
		return nil, err
	}
	if err := a.start(); err != nil {
		return nil, err
	}
	return a, nil
}

// newAP checks cfg and builds the AP's beacon and group key; start opens its
// sockets and starts it.
func newAP(d Driver, ifi nl80211.Interface, cfg Config, log func(string)) (*AP, error) {
	if len(cfg.SSID) == 0 || len(cfg.SSID) > 32 {
		return nil, fmt.Errorf("ap: SSID of %d bytes (want 1-32)", len(cfg.SSID))
	}
	if cfg.Channel < 1 || cfg.Channel > 13 {
		return nil, fmt.Errorf("ap: channel %d: want a 2.4 GHz channel 1-13", cfg.Channel)
	}
	if cfg.PMK != nil && len(cfg.PMK) != eapol.PMKLen {
		return nil, fmt.Errorf("ap: PMK of %d bytes (want %d)", len(cfg.PMK), eapol.PMKLen)
	}
	if cfg.MaxStations <= 0 {
		cfg.MaxStations = DefaultMaxStations
	}
	if log == nil {
		log = func(string) {}
	}
	a := &AP{d: d, ifi: ifi, cfg: cfg, log: log, stas: map[mgmt.Addr]*station{}, aids: map[uint16]bool{}, done: make(chan struct{})}
	copy(a.bssid[:], ifi.MAC)

	caps := mgmt.CapESS | mgmt.CapShortSlotTime
	es := ie.Elements{}
	ssidEl, _ := ie.AppendSSID(nil, cfg.SSID)
	rateEl, _ := ie.AppendRates(nil, basicRates)
	extEl, _ := ie.AppendExtendedRates(nil, extRates)
	var raw []byte
	raw = append(raw, ssidEl...)
	raw = append(raw, rateEl...)
	raw = ie.AppendDSParams(raw, uint8(cfg.Channel))
	raw = append(raw, extEl...)
	if cfg.PMK != nil {
		caps |= mgmt.CapPrivacy
		rsne, err := ie.AppendRSN(nil, ie.WPA2PSK())
		if err != nil {
			return nil, fmt.Errorf("ap: %w", err)
		}
		a.rsne = rsne
		raw = append(raw, rsne...)
		key := make([]byte, 16)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("ap: GTK: %w", err)
		}
		a.gtk = &eapol.GroupKey{Index: 1, Key: key}
	}
	var err error
	if es, err = ie.Parse(raw); err != nil {
		return nil, fmt.Errorf("ap: beacon elements: %w", err)
	}
	a.beacon = mgmt.Beacon{
		Header:         mgmt.Header{FrameControl: mgmt.MgmtFrameControl(mgmt.SubtypeBeacon), DA: mgmt.Broadcast, SA: a.bssid, BSSID: a.bssid},
		BeaconInterval: beaconTU,
		Capability:     caps,
		Elements:       es,
	}
	if _, _, err := a.beacon.HeadTail(); err != nil {
		return nil, fmt.Errorf("ap: beacon: %w", err)
	}
	return a, nil
}

// start registers for management frames, opens the EAPOL socket, starts
// beaconing and the goroutines that serve stations.
func (a *AP) start() error {
	d, ifi, cfg := a.d, a.ifi, a.cfg
	head, tail, err := a.beacon.HeadTail()
	if err != nil {
		return fmt.Errorf("ap: beacon: %w", err)
	}
	freq := nl80211.ChannelFrequency(cfg.Channel)
	nlRSN := (*nl80211.RSN)(nil)
	if cfg.PMK != nil {
		nlRSN = &nl80211.RSN{Pairwise: nl80211.CipherCCMP, Group: nl80211.CipherCCMP, AKM: nl80211.AKMPSK}
		if cfg.Offload4Way {
			nlRSN.PMK = cfg.PMK
		}
	}
	if !cfg.APSME {
		// Registered before the AP starts, so that no request goes
		// unanswered in between.
		frames, err := d.ListenFrames(ifi.Index, nl80211.FrameProbeReq, nl80211.FrameAuth, nl80211.FrameAssocReq,
			nl80211.FrameReassocReq, nl80211.FrameDisassoc, nl80211.FrameDeauth)
		if err != nil {
			return fmt.Errorf("ap: %w", err)
		}
		a.frames = frames
	}
	if cfg.PMK != nil && !cfg.Offload4Way {
		a.eap, err = packet.Listen(&net.Interface{Index: ifi.Index, Name: ifi.Name, HardwareAddr: ifi.MAC}, packet.Datagram, eapol.EtherType, nil)
		if err != nil {
			a.closeSockets()
			return fmt.Errorf("ap: EAPOL socket on %s: %w", ifi.Name, err)
		}
	}
	if err := d.StartAP(ifi.Index, nl80211.APParams{
		Head: head, Tail: tail, SSID: cfg.SSID, Frequency: freq,
		BeaconInterval: beaconTU, DTIMPeriod: dtimPeriod, RSN: nlRSN,
	}); err != nil {
		a.closeSockets()
		return fmt.Errorf("ap: %w", err)
	}
	if a.gtk != nil && !cfg.Offload4Way {
		if err := d.NewKey(ifi.Index, nl80211.Key{Index: a.gtk.Index, Cipher: nl80211.CipherCCMP, Data: a.gtk.Key}); err != nil {
			d.StopAP(ifi.Index)
			a.closeSockets()
			return fmt.Errorf("ap: installing the group key: %w", err)
		}
		if err := d.SetDefaultKey(ifi.Index, a.gtk.Index); err != nil {
			d.StopAP(ifi.Index)
			a.closeSockets()
			return fmt.Errorf("ap: %w", err)
		}
	}
	a.started = time.Now()
	if a.frames != nil {
		a.wg.Add(1)
		go a.serveFrames()
	}
	if a.eap != nil {
		a.wg.Add(1)
		go a.serveEAPOL()
	}
	if a.frames != nil {
		a.wg.Add(1)
		go a.sweep()
	}
	return nil
}

// sweep drops associated stations the radio has not heard for maxInactive,
// until Close.
func (a *AP) sweep() {
	defer a.wg.Done()
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-a.done:
			return
		case <-t.C:
		}
		sts, err := a.d.Stations(a.ifi.Index)
		if err != nil {
			continue
		}
		a.mu.Lock()
		for _, st := range sts {
			var mac mgmt.Addr
			copy(mac[:], st.MAC)
			if s := a.stas[mac]; s != nil && time.Duration(st.InactiveMS)*time.Millisecond > maxInactive {
				a.log(fmt.Sprintf("ap: %s not heard for %v: dropped", s.mac, maxInactive))
				a.dropLocked(s, mgmt.ReasonInactivity, true)
			}
		}
		a.mu.Unlock()
	}
}

func (a *AP) closeSockets() {
	if a.frames != nil {
		a.frames.Close()
	}
	if a.eap != nil {
		a.eap.Close()
	}
}

// BSSID is the AP's address.
func (a *AP) BSSID() net.HardwareAddr { return append(net.HardwareAddr(nil), a.bssid[:]...) }

// Stations lists the stations the AP knows.
func (a *AP) Stations() []Station {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]Station, 0, len(a.stas))
	for _, s := range a.stas {
		out = append(out, Station{MAC: append(net.HardwareAddr(nil), s.mac[:]...), AID: s.aid, Associated: s.associated, Authorized: s.authorized, Since: s.since})
	}
	return out
}

// Stats returns the counters.
func (a *AP) Stats() Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stats
}

// Close stops the AP: stations are told (deauthentication, reason 3),
// beaconing stops and the sockets close.
func (a *AP) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	for _, s := range a.stas {
		a.dropLocked(s, mgmt.ReasonDeauthLeaving, false)
	}
	a.mu.Unlock()
	err := a.d.StopAP(a.ifi.Index)
	close(a.done)
	a.closeSockets()
	a.wg.Wait()
	return err
}

// serveFrames answers the registered management frames until Close.
func (a *AP) serveFrames() {
	defer a.wg.Done()
	for {
		fr, err := a.frames.Receive()
		if err != nil {
			select {
			case <-a.done:
				return
			default:
			}
			var nerr *nl80211.Error
			if errors.As(err, &nerr) {
				// A refused transmission: log it and go on.
				a.log(fmt.Sprintf("ap: %v", err))
				continue
			}
			a.log(fmt.Sprintf("ap: management frames: %v", err))
			return
		}
		a.handleFrame(fr.Data)
	}
}

func (a *AP) send(f interface{ Append([]byte) ([]byte, error) }) {
	b, err := f.Append(nil)
	if err != nil {
		a.log(fmt.Sprintf("ap: building a frame: %v", err))
		return
	}
	if err := a.frames.Send(b); err != nil {
		a.log(fmt.Sprintf("ap: sending a frame: %v", err))
	}
}

// handleFrame answers one management frame. Malformed frames are counted
// and dropped.
func (a *AP) handleFrame(b []byte) {
	f, err := mgmt.Parse(b)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return
	}
	if err != nil {
		a.stats.Malformed++
		return
	}
	a.expireLocked()
	// Duplicate detection (IEEE 802.11-2020 §10.3.2.14): a retransmission
	// of a frame already answered (its ack was lost) is dropped, or an
	// association would be torn down and redone.
	h := f.MACHeader()
	if s := a.stas[h.SA]; s != nil {
		if h.FrameControl&mgmt.FCRetry != 0 && s.seenSeq && h.SeqCtrl == s.lastSeq {
			return
		}
		s.lastSeq, s.seenSeq = h.SeqCtrl, true
	}
	switch f := f.(type) {
	case mgmt.ProbeRequest:
		ssid, err := f.Elements.SSID()
		if err != nil || !(len(ssid) == 0 || string(ssid) == string(a.cfg.SSID)) {
			return
		}
		if f.Header.BSSID != mgmt.Broadcast && f.Header.BSSID != a.bssid {
			return
		}
		a.stats.ProbeResponses++
		resp := a.beacon.AsProbeResponse(f.Header.SA)
		a.send(resp)
	case mgmt.Auth:
		a.handleAuth(f)
	case mgmt.AssocRequest:
		a.handleAssoc(f)
	case mgmt.ReasonFrame:
		if f.Header.BSSID != a.bssid {
			return
		}
		if s := a.stas[f.Header.SA]; s != nil {
			a.log(fmt.Sprintf("ap: %s left (%v)", s.mac, f.Reason))
			a.dropLocked(s, 0, false)
		}
	}
}

func (a *AP) handleAuth(f mgmt.Auth) {
	if f.Header.BSSID != a.bssid || f.Seq != 1 {
		return
	}
	status := mgmt.StatusSuccess
	s := a.stas[f.Header.SA]
	switch {
	case f.Algorithm != mgmt.AuthOpenSystem:
		status = mgmt.StatusNotSupportedAuthAlg
	case s == nil && len(a.stas) >= a.cfg.MaxStations && !a.evictHalfOpenLocked():
		status = mgmt.StatusAPUnableToHandleNewSTA
	}
	if status != mgmt.StatusSuccess {
		a.stats.Refused++
		a.send(mgmt.OpenAuthResponse(f, a.bssid, status))
		return
	}
	if s != nil {
		// A station authenticating again starts over.
		a.dropLocked(s, 0, false)
	}
	a.stas[f.Header.SA] = &station{mac: f.Header.SA, since: time.Now()}
	a.stats.Auths++
	a.send(mgmt.OpenAuthResponse(f, a.bssid, status))
}

func (a *AP) handleAssoc(f mgmt.AssocRequest) {
	if f.Header.BSSID != a.bssid {
		return
	}
	s := a.stas[f.Header.SA]
	resp := mgmt.AssocResponse{
		Header:     mgmt.Header{FrameControl: mgmt.MgmtFrameControl(mgmt.SubtypeAssocResponse), DA: f.Header.SA, SA: a.bssid, BSSID: a.bssid},
		Reassoc:    f.Reassoc,
		Capability: a.beacon.Capability,
	}
	refuse := func(st mgmt.StatusCode) {
		a.stats.Refused++
		resp.Status = st
		a.send(resp)
	}
	if s == nil {
		// Class 3 frame from an unauthenticated station: tell it.
		a.send(mgmt.ReasonFrame{Header: mgmt.Header{FrameControl: mgmt.MgmtFrameControl(mgmt.SubtypeDeauth), DA: f.Header.SA, SA: a.bssid, BSSID: a.bssid}, Reason: mgmt.ReasonClass2FromNonauth})
		a.stats.Refused++
		return
	}
	if ssid, err := f.Elements.SSID(); err != nil || string(ssid) != string(a.cfg.SSID) {
		refuse(mgmt.StatusUnspecifiedFailure)
		return
	}
	rates, err := f.Elements.SupportedRates()
	if err != nil || len(rates) == 0 {
		refuse(mgmt.StatusAssocDeniedRates)
		return
	}
	var staRSNE []byte
	if a.rsne != nil {
		el, ok := f.Elements.Find(ie.IDRSN)
		if !ok {
			refuse(mgmt.StatusInvalidElement)
			return
		}
		r, err := ie.ParseRSN(el.Body)
		if err != nil || len(r.PairwiseCiphers) != 1 || r.PairwiseCiphers[0] != ie.CipherCCMP128 ||
			len(r.AKMs) != 1 || r.AKMs[0] != ie.AKMPSK || r.GroupCipher != ie.CipherCCMP128 {
			refuse(mgmt.StatusInvalidRSNCapabilities)
			return
		}
		staRSNE, _ = el.Append(nil)
	}
	if s.aid == 0 {
		for aid := uint16(1); aid <= uint16(a.cfg.MaxStations); aid++ {
			if !a.aids[aid] {
				s.aid = aid
				a.aids[aid] = true
				break
			}
		}
		if s.aid == 0 {
			refuse(mgmt.StatusAPUnableToHandleNewSTA)
			return
		}
	}
	var rateBytes []byte
	for _, r := range rates {
		if !r.Selector() {
			rateBytes = append(rateBytes, r.Units500k())
		}
	}
	mac := net.HardwareAddr(s.mac[:])
	if s.associated {
		// Reassociation: the kernel's station entry goes first.
		a.d.DelStation(a.ifi.Index, mac)
		s.associated, s.authorized = false, false
	}
	if err := a.d.NewStation(a.ifi.Index, nl80211.StationParams{
		MAC: mac, AID: s.aid, ListenInterval: f.ListenInterval, Capability: uint16(f.Capability), Rates: rateBytes,
	}); err != nil {
		a.log(fmt.Sprintf("ap: adding station %s: %v", s.mac, err))
		refuse(mgmt.StatusUnspecifiedFailure)
		return
	}
	s.associated = true
	a.stats.Assocs++
	resp.Status = mgmt.StatusSuccess
	resp.AID = s.aid
	resp.Elements, _ = ie.Parse(mustRates())
	a.send(resp)
	a.log(fmt.Sprintf("ap: %s associated (AID %d)", s.mac, s.aid))

	switch {
	case a.rsne == nil:
		if err := a.d.AuthorizeStation(a.ifi.Index, mac); err != nil {
			a.log(fmt.Sprintf("ap: authorizing %s: %v", s.mac, err))
			return
		}
		s.authorized = true
	case a.eap != nil:
		var aa, spa [6]byte
		copy(aa[:], a.bssid[:])
		copy(spa[:], s.mac[:])
		auth, err := eapol.NewAuthenticator(eapol.AuthenticatorConfig{PMK: a.cfg.PMK, AA: aa, SPA: spa, RSNE: a.rsne, STARSNE: staRSNE, GTK: a.gtk})
		if err != nil {
			a.log(fmt.Sprintf("ap: %s: %v", s.mac, err))
			return
		}
		s.auth = auth
		msg1, err := auth.Start()
		if err != nil {
			a.log(fmt.Sprintf("ap: %s: %v", s.mac, err))
			return
		}
		a.sendEAPOL(s, msg1)
	}
}

// mustRates is the rates part of an association response.
func mustRates() []byte {
	b, _ := ie.AppendRates(nil, basicRates)
	b, _ = ie.AppendExtendedRates(b, extRates)
	return b
}

// sendEAPOL sends an EAPOL-Key frame to s and arms its retransmission.
func (a *AP) sendEAPOL(s *station, b []byte) {
	a.eap.WriteTo(b, &packet.Addr{HardwareAddr: net.HardwareAddr(s.mac[:])})
	if s.retry != nil {
		s.retry.Stop()
	}
	mac := s.mac
	s.retry = time.AfterFunc(retryInterval, func() { a.retransmit(mac, s) })
}

func (a *AP) retransmit(mac mgmt.Addr, s *station) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed || a.stas[mac] != s || s.auth == nil || s.authorized {
		return
	}
	b, err := s.auth.Retry()
	if err != nil {
		// Retries exhausted (hostapd gives up the same way): the station
		// most likely has another passphrase.
		a.log(fmt.Sprintf("ap: %s: 4-way handshake timed out", s.mac))
		a.dropLocked(s, mgmt.Reason4WayHandshakeTimeout, true)
		return
	}
	a.sendEAPOL(s, b)
}

// serveEAPOL feeds the stations' EAPOL-Key frames to their authenticators.
func (a *AP) serveEAPOL() {
	defer a.wg.Done()
	buf := make([]byte, 2048)
	for {
		n, addr, err := a.eap.ReadFrom(buf)
		if err != nil {
			return
		}
		pa, ok := addr.(*packet.Addr)
		if !ok || pa == nil || len(pa.HardwareAddr) != 6 {
			continue
		}
		var mac mgmt.Addr
		copy(mac[:], pa.HardwareAddr)
		a.handleEAPOL(mac, buf[:n])
	}
}

func (a *AP) handleEAPOL(mac mgmt.Addr, b []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.stas[mac]
	if a.closed || s == nil || s.auth == nil {
		return
	}
	reply, keys, err := s.auth.Handle(b)
	if errors.Is(err, eapol.ErrMICFailure) {
		a.stats.WrongKey++
		a.log(fmt.Sprintf("ap: %s: message 2 failed its MIC: the station has another passphrase", s.mac))
		return
	}
	if err != nil {
		return // dropped; the retransmission timer carries on
	}
	if reply != nil {
		a.sendEAPOL(s, reply)
	}
	if keys != nil && keys.PTK != nil {
		if s.retry != nil {
			s.retry.Stop()
		}
		tk := keys.PTK.TK
		mac := net.HardwareAddr(s.mac[:])
		if err := a.d.NewKey(a.ifi.Index, nl80211.Key{Index: 0, Cipher: nl80211.CipherCCMP, Data: tk[:], Pairwise: true, Peer: mac}); err != nil {
			a.log(fmt.Sprintf("ap: %s: installing the pairwise key: %v", s.mac, err))
			a.dropLocked(s, mgmt.ReasonUnspecified, true)
			return
		}
		if err := a.d.AuthorizeStation(a.ifi.Index, mac); err != nil {
			a.log(fmt.Sprintf("ap: %s: %v", s.mac, err))
			return
		}
		s.authorized = true
		a.stats.Handshakes++
		a.log(fmt.Sprintf("ap: %s: 4-way handshake done, port open", s.mac))
	}
}

// dropLocked forgets s, removing its kernel station; with reason != 0 and
// tell, it is sent a deauthentication first.
func (a *AP) dropLocked(s *station, reason mgmt.ReasonCode, tell bool) {
	if s.retry != nil {
		s.retry.Stop()
	}
	if reason != 0 && (tell || a.closed) && a.frames != nil {
		a.send(mgmt.ReasonFrame{Header: mgmt.Header{FrameControl: mgmt.MgmtFrameControl(mgmt.SubtypeDeauth), DA: s.mac, SA: a.bssid, BSSID: a.bssid}, Reason: reason})
	}
	if s.associated {
		a.d.DelStation(a.ifi.Index, net.HardwareAddr(s.mac[:]))
	}
	if s.aid != 0 {
		delete(a.aids, s.aid)
	}
	delete(a.stas, s.mac)
}

// evictHalfOpenLocked makes room for a new station by dropping the one that
// authenticated longest ago and has no open port yet (not associated, or in
// its 4-way handshake), and reports whether there was one. Open System
// authentication and association cost a stranger a frame each from any
// address it makes up; were such stations to keep their places until
// authTimeout or the handshake's retries ran out, 16 of them every few
// seconds would keep every phone out. A real phone gets from
// authentication to an open port in tens of milliseconds, so it is never
// the oldest of them for long. Stations with an open port are never
// evicted.
func (a *AP) evictHalfOpenLocked() bool {
	var oldest *station
	for _, s := range a.stas {
		if !s.authorized && (oldest == nil || s.since.Before(oldest.since)) {
			oldest = s
		}
	}
	if oldest == nil {
		return false
	}
	// Counted, not logged: a flood of made-up stations would flood the log.
	a.stats.Evicted++
	a.dropLocked(oldest, mgmt.ReasonAPBusy, oldest.associated)
	return true
}

// expireLocked drops stations that authenticated and never associated.
func (a *AP) expireLocked() {
	now := time.Now()
	for _, s := range a.stas {
		if !s.associated && now.Sub(s.since) > authTimeout {
			a.dropLocked(s, 0, false)
		}
	}
}
