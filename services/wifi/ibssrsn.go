package wifi

import (
	"bytes"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/mdlayher/packet"

	"github.com/skyfleet/skyfleet/drivers/wifi/eapol"
	"github.com/skyfleet/skyfleet/drivers/wifi/ie"
	"github.com/skyfleet/skyfleet/drivers/wifi/nl80211"
)

// The peering cell is an RSN IBSS (IEEE 802.11-2020 §12.6.11, "RSNA
// establishment in an IBSS"): every pair of members runs two 4-way
// handshakes, each member the authenticator of its own and the supplicant
// of the other's, under a PMK all fleet members derive from the network
// psk. Each handshake delivers the authenticator's group key, with which
// that member sends broadcasts; of the two pairwise keys, the one from the
// handshake the member with the larger MAC address started is used. A
// stranger in range without the psk gets no key, so the cell hides even the
// mesh's metadata (who talks to whom, how much) from the air.

// peeringPMKInfo is the HKDF info string of the cell's PMK.
const peeringPMKInfo = "skyfleet wifi peering pmk"

// PeeringPMK derives the cell's 32-byte PMK from the fleet psk.
func PeeringPMK(psk []byte) ([]byte, error) {
	if len(psk) == 0 {
		return nil, errors.New("wifi: peering needs the fleet's network psk")
	}
	return hkdf.Key(sha256.New, psk, nil, peeringPMKInfo, eapol.PMKLen)
}

// Limits of the cell's handshakes.
const (
	maxCellPeers   = 32               // members handshaking or keyed at once
	maxCellWaiting = 64               // members waiting for a handshake slot
	cellRetry      = time.Second      // EAPOL-Key retransmission
	cellRestart    = 10 * time.Second // after a handshake gave up
	cellMaxRestart = time.Minute
)

// The slots are shared fairly: a keyed member keeps its slot, but one whose
// handshake gave up (a stranger in range, another fleet's kit, a spoofed MAC)
// yields it to a member that waits, and queues behind the others. So a
// stranger who makes the kernel report 32 made-up stations cannot keep a
// real member out: every handshake that fails frees a slot for the next in
// line, and the queue, bounded, forgets its oldest first.

// eapolConn is the EAPOL socket the cell sends and receives on; a
// *packet.Conn bound to EtherType 0x888e has it.
type eapolConn interface {
	ReadFrom(b []byte) (int, net.Addr, error)
	WriteTo(b []byte, addr net.Addr) (int, error)
	Close() error
}

// cellDriver is what the cell needs of the kernel; *nl80211.Conn has it.
type cellDriver interface {
	NewKey(ifindex int, k nl80211.Key) error
	SetDefaultKey(ifindex int, index uint8) error
	AuthorizeStation(ifindex int, peer net.HardwareAddr) error
}

// cellPeer is one member's handshake state.
type cellPeer struct {
	mac        [6]byte
	auth       *eapol.Authenticator
	sup        *eapol.Supplicant
	authPTK    *eapol.PTK // from the handshake we started
	supPTK     *eapol.PTK // from the one the peer started
	gtkIn      bool       // the peer's group key is installed
	authorized bool
	retry      *time.Timer
	restarts   int
	failedAt   time.Time // when its last handshake gave up
	since      time.Time
}

// cell runs the handshakes of the RSN peering cell on one interface.
type cell struct {
	d    cellDriver
	ifi  nl80211.Interface
	pmk  []byte
	rsne []byte
	gtk  *eapol.GroupKey
	eap  eapolConn
	log  func(string)
	// retry and restart are cellRetry and cellRestart (shorter in tests).
	retry, restart time.Duration

	mu      sync.Mutex
	peers   map[[6]byte]*cellPeer
	waiting [][6]byte // in arrival order, at most maxCellWaiting
	closed  bool
	keyed   int // peers authorized so far, for the status
	failed  int // handshakes given up
}

// cellRSNE is the RSN element of the cell: WPA2-PSK with CCMP, as every
// member sends it (beacons and handshakes).
func cellRSNE() []byte {
	b, _ := ie.AppendRSN(nil, ie.WPA2PSK())
	return b
}

// startCell installs our group key, opens the EAPOL socket and serves the
// handshakes until close. The interface must have joined the IBSS with
// Privacy.
func startCell(d cellDriver, ifi nl80211.Interface, pmk []byte, log func(string)) (*cell, error) {
	key := make([]byte, 16)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	c := newCell(d, ifi, pmk, key, log)
	if err := d.NewKey(ifi.Index, nl80211.Key{Index: 1, Cipher: nl80211.CipherCCMP, Data: key}); err != nil {
		return nil, fmt.Errorf("wifi: our group key: %w", err)
	}
	if err := d.SetDefaultKey(ifi.Index, 1); err != nil {
		return nil, fmt.Errorf("wifi: %w", err)
	}
	eap, err := packet.Listen(&net.Interface{Index: ifi.Index, Name: ifi.Name, HardwareAddr: ifi.MAC}, packet.Datagram, eapol.EtherType, nil)
	if err != nil {
		return nil, fmt.Errorf("wifi: EAPOL socket on %s: %w", ifi.Name, err)
	}
	c.eap = eap
	go c.serve()
	return c, nil
}

// newCell returns a cell with no socket yet, for startCell (and the tests,
// which give it one of their own).
func newCell(d cellDriver, ifi nl80211.Interface, pmk, gtk []byte, log func(string)) *cell {
	return &cell{d: d, ifi: ifi, pmk: pmk, rsne: cellRSNE(), gtk: &eapol.GroupKey{Index: 1, Key: gtk}, log: log,
		retry: cellRetry, restart: cellRestart, peers: map[[6]byte]*cellPeer{}}
}

func (c *cell) close() {
	c.mu.Lock()
	c.closed = true
	for _, p := range c.peers {
		if p.retry != nil {
			p.retry.Stop()
		}
	}
	c.mu.Unlock()
	c.eap.Close()
}

// counts returns the members keyed and the handshakes given up.
func (c *cell) counts() (keyed, failed int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.keyed, c.failed
}

// newPeer starts the handshakes with a member the kernel reports
// (NL80211_CMD_NEW_STATION). A known one is left alone. With every slot
// taken it takes the slot of the member whose handshake gave up longest
// ago, which queues; with none given up it queues itself.
func (c *cell) newPeer(mac net.HardwareAddr) {
	if len(mac) != 6 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var m [6]byte
	copy(m[:], mac)
	if c.closed || c.peers[m] != nil || slices.Contains(c.waiting, m) {
		return
	}
	if len(c.peers) >= maxCellPeers {
		var victim *cellPeer
		for _, p := range c.peers {
			if !p.authorized && p.restarts > 0 && (victim == nil || p.failedAt.Before(victim.failedAt)) {
				victim = p
			}
		}
		if victim == nil {
			c.enqueueLocked(m)
			c.log(fmt.Sprintf("wifi: peering cell full (%d members handshaking or keyed): %s waits", maxCellPeers, mac))
			return
		}
		c.dropLocked(victim)
		c.enqueueLocked(victim.mac)
	}
	c.addLocked(m)
}

// addLocked gives m a slot and starts its handshakes.
func (c *cell) addLocked(m [6]byte) {
	p := &cellPeer{mac: m, since: time.Now()}
	c.peers[m] = p
	c.startLocked(p)
}

// dropLocked frees p's slot.
func (c *cell) dropLocked(p *cellPeer) {
	if p.retry != nil {
		p.retry.Stop()
	}
	if p.authorized {
		c.keyed--
	}
	delete(c.peers, p.mac)
}

// enqueueLocked puts m at the back of the queue, forgetting the oldest
// when it is full.
func (c *cell) enqueueLocked(m [6]byte) {
	if len(c.waiting) >= maxCellWaiting {
		c.waiting = slices.Delete(c.waiting, 0, 1)
	}
	c.waiting = append(c.waiting, m)
}

// admitLocked gives a free slot to the member first in line.
func (c *cell) admitLocked() {
	if len(c.waiting) == 0 || len(c.peers) >= maxCellPeers {
		return
	}
	m := c.waiting[0]
	c.waiting = slices.Delete(c.waiting, 0, 1)
	c.addLocked(m)
}

// startLocked (re)starts both roles with p.
func (c *cell) startLocked(p *cellPeer) {
	var self [6]byte
	copy(self[:], c.ifi.MAC)
	auth, err := eapol.NewAuthenticator(eapol.AuthenticatorConfig{PMK: c.pmk, AA: self, SPA: p.mac, RSNE: c.rsne, STARSNE: c.rsne, GTK: c.gtk})
	if err != nil {
		c.log(fmt.Sprintf("wifi: cell: %v", err))
		return
	}
	sup, err := eapol.NewSupplicant(eapol.SupplicantConfig{PMK: c.pmk, SPA: self, AA: p.mac, RSNE: c.rsne, APRSNE: c.rsne})
	if err != nil {
		c.log(fmt.Sprintf("wifi: cell: %v", err))
		return
	}
	p.auth, p.sup, p.authPTK, p.supPTK, p.gtkIn, p.authorized = auth, sup, nil, nil, false, false
	msg1, err := auth.Start()
	if err != nil {
		return
	}
	c.sendLocked(p, msg1)
}

// sendLocked sends an EAPOL-Key frame of our authenticator and arms its
// retransmission.
func (c *cell) sendLocked(p *cellPeer, b []byte) {
	c.eap.WriteTo(b, &packet.Addr{HardwareAddr: net.HardwareAddr(p.mac[:])})
	if p.retry != nil {
		p.retry.Stop()
	}
	p.retry = time.AfterFunc(c.retry, func() { c.retransmit(p) })
}

func (c *cell) retransmit(p *cellPeer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.peers[p.mac] != p || p.authPTK != nil {
		return
	}
	b, err := p.auth.Retry()
	if err == nil {
		c.sendLocked(p, b)
		return
	}
	// The peer never completed ours: another fleet, a key mismatch, or
	// gone. A member waiting for a slot gets this one; else try again later,
	// less and less often.
	c.failed++
	p.restarts++
	p.failedAt = time.Now()
	if len(c.waiting) > 0 {
		c.log(fmt.Sprintf("wifi: cell: no handshake with %s; it yields its slot and waits", net.HardwareAddr(p.mac[:])))
		c.dropLocked(p)
		c.enqueueLocked(p.mac)
		c.admitLocked()
		return
	}
	wait := c.restart * time.Duration(1<<min(p.restarts-1, 3))
	wait = min(wait, max(cellMaxRestart, c.restart))
	c.log(fmt.Sprintf("wifi: cell: no handshake with %s; again in %v", net.HardwareAddr(p.mac[:]), wait))
	p.retry = time.AfterFunc(wait, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if !c.closed && c.peers[p.mac] == p {
			c.startLocked(p)
		}
	})
}

// delPeer forgets a member the kernel dropped (NL80211_CMD_DEL_STATION),
// and gives its slot to the member first in line.
func (c *cell) delPeer(mac net.HardwareAddr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var m [6]byte
	copy(m[:], mac)
	c.waiting = slices.DeleteFunc(c.waiting, func(w [6]byte) bool { return w == m })
	if p := c.peers[m]; p != nil {
		c.dropLocked(p)
		if !c.closed {
			c.admitLocked()
		}
	}
}

// serve reads EAPOL frames until the socket closes. A frame with the Key
// Ack bit comes from the peer's authenticator and goes to our supplicant;
// one without, to our authenticator.
func (c *cell) serve() {
	buf := make([]byte, 2048)
	for {
		n, addr, err := c.eap.ReadFrom(buf)
		if err != nil {
			return
		}
		pa, ok := addr.(*packet.Addr)
		if !ok || pa == nil || len(pa.HardwareAddr) != 6 {
			continue
		}
		f, err := eapol.ParseKeyFrame(buf[:n])
		if err != nil {
			continue
		}
		c.handle(pa.HardwareAddr, f.Info.Has(eapol.InfoAck), buf[:n])
	}
}

func (c *cell) handle(mac net.HardwareAddr, fromAuth bool, b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var m [6]byte
	copy(m[:], mac)
	p := c.peers[m]
	if c.closed || p == nil || p.auth == nil {
		// Handshakes start with the kernel's NEW_STATION, not with a frame
		// from anyone: a stranger cannot make us keep state.
		return
	}
	if fromAuth {
		reply, keys, err := p.sup.Handle(b)
		if err != nil {
			return
		}
		if reply != nil {
			c.eap.WriteTo(reply, &packet.Addr{HardwareAddr: mac})
		}
		if keys != nil {
			if keys.PTK != nil {
				ptk := *keys.PTK
				p.supPTK = &ptk
			}
			if g := keys.GTK; g != nil {
				if err := c.d.NewKey(c.ifi.Index, nl80211.Key{Index: g.Index, Cipher: nl80211.CipherCCMP, Data: g.Key, RSC: g.RSC[:6], Peer: mac}); err != nil {
					c.log(fmt.Sprintf("wifi: cell: %s's group key: %v", mac, err))
				} else {
					p.gtkIn = true
				}
			}
		}
	} else {
		reply, keys, err := p.auth.Handle(b)
		if errors.Is(err, eapol.ErrMICFailure) {
			c.log(fmt.Sprintf("wifi: cell: %s answered with another key (another fleet's cell?)", mac))
			return
		}
		if err != nil {
			return
		}
		if reply != nil {
			c.sendLocked(p, reply)
		}
		if keys != nil && keys.PTK != nil {
			ptk := *keys.PTK
			p.authPTK = &ptk
			if p.retry != nil {
				p.retry.Stop()
			}
		}
	}
	c.keyLocked(p)
}

// keyLocked installs the pairwise key once the handshake that counts is
// done (the one the larger MAC address started) and, with the peer's group
// key in too, opens the data path to it.
func (c *cell) keyLocked(p *cellPeer) {
	if p.authorized {
		return
	}
	ptk := p.supPTK
	if bytes.Compare(c.ifi.MAC, p.mac[:]) > 0 {
		ptk = p.authPTK
	}
	if ptk == nil || !p.gtkIn || p.authPTK == nil {
		return
	}
	mac := net.HardwareAddr(p.mac[:])
	if err := c.d.NewKey(c.ifi.Index, nl80211.Key{Index: 0, Cipher: nl80211.CipherCCMP, Data: ptk.TK[:], Pairwise: true, Peer: mac}); err != nil {
		c.log(fmt.Sprintf("wifi: cell: pairwise key with %s: %v", mac, err))
		return
	}
	if err := c.d.AuthorizeStation(c.ifi.Index, mac); err != nil {
		c.log(fmt.Sprintf("wifi: cell: %s: %v", mac, err))
		return
	}
	p.authorized = true
	p.restarts = 0
	c.keyed++
	c.log(fmt.Sprintf("wifi: cell: %s keyed after %v", mac, time.Since(p.since).Round(time.Millisecond)))
}
