package sta

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/mdlayher/packet"

	"github.com/skyfleet/skyfleet/drivers/wifi/eapol"
	"github.com/skyfleet/skyfleet/drivers/wifi/ie"
	"github.com/skyfleet/skyfleet/drivers/wifi/nl80211"
)

// These tests run Join on the host against a simulated access point: the
// driver turns CONNECT into the kernel's connect event, and the AP's side of
// the 4-way handshake is the eapol package's Authenticator behind a
// simulated EAPOL socket. The offload path (the firmware runs the
// handshake), which mac80211_hwsim cannot show, is only tested here; the
// radio path with hostapd is TestWifiStationInVM's.

var (
	apMAC  = net.HardwareAddr{0x02, 0xaa, 0, 0, 0, 1}
	staMAC = net.HardwareAddr{0x02, 0x55, 0, 0, 0, 1}
	ifi    = nl80211.Interface{Index: 4, Name: "wlan0", MAC: staMAC}
)

// simAP is the driver and the access point at once.
type simAP struct {
	t      *testing.T
	events chan nl80211.Event
	pmk    []byte // the AP's; nil for an open network
	rsne   []byte
	gtk    *eapol.GroupKey
	status uint16 // of the connect event; 0 accepts

	mu         sync.Mutex
	connect    *nl80211.ConnectParams
	keys       []nl80211.Key
	authorized bool
	auth       *eapol.Authenticator
	ptk        *eapol.PTK
	sta        *simConn // the station's EAPOL socket
	fromSta    int      // EAPOL-Key frames the station sent
	dropped    []error  // frames the AP's authenticator dropped, and why
}

func newSimAP(t *testing.T, pmk []byte) *simAP {
	rsne, _ := ie.AppendRSN(nil, ie.WPA2PSK())
	a := &simAP{t: t, events: make(chan nl80211.Event, 16), pmk: pmk, rsne: rsne,
		gtk: &eapol.GroupKey{Index: 1, Key: bytes.Repeat([]byte{0x47}, 16)}}
	old := listenEAPOL
	listenEAPOL = func(*net.Interface) (eapolConn, error) {
		c := &simConn{ap: a, in: make(chan []byte, 8), done: make(chan struct{})}
		a.mu.Lock()
		a.sta = c
		a.mu.Unlock()
		return c, nil
	}
	t.Cleanup(func() { listenEAPOL = old })
	return a
}

func (a *simAP) Connect(ifindex int, p nl80211.ConnectParams) error {
	a.mu.Lock()
	a.connect = &p
	a.mu.Unlock()
	a.events <- nl80211.Event{Kind: nl80211.EventConnect, Ifindex: ifindex, MAC: apMAC, Status: a.status}
	if a.status != 0 || a.pmk == nil || (p.RSN != nil && p.RSN.PMK != nil) {
		return nil
	}
	// Associated: the AP's authenticator sends message 1.
	var aa, spa [6]byte
	copy(aa[:], apMAC)
	copy(spa[:], staMAC)
	auth, err := eapol.NewAuthenticator(eapol.AuthenticatorConfig{PMK: a.pmk, AA: aa, SPA: spa, RSNE: a.rsne, STARSNE: p.RSN.IE, GTK: a.gtk, MaxAttempts: 1})
	if err != nil {
		a.t.Error(err)
		return nil
	}
	m1, err := auth.Start()
	if err != nil {
		a.t.Error(err)
		return nil
	}
	a.mu.Lock()
	a.auth = auth
	c := a.sta
	a.mu.Unlock()
	c.deliver(m1)
	return nil
}

func (a *simAP) Disconnect(int, uint16) error { return nil }

// waitM4 waits up to 10 s for the AP to take message 4: the station opens
// its port and returns from Join as it sends it.
func (a *simAP) waitM4() {
	deadline := time.Now().Add(10 * time.Second)
	for {
		a.mu.Lock()
		done := a.ptk != nil
		a.mu.Unlock()
		if done || time.Now().After(deadline) {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

func (a *simAP) NewKey(_ int, k nl80211.Key) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	k.Data = bytes.Clone(k.Data)
	a.keys = append(a.keys, k)
	return nil
}

func (a *simAP) AuthorizeStation(_ int, peer net.HardwareAddr) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !bytes.Equal(peer, apMAC) {
		a.t.Errorf("authorized %s, want the AP %s", peer, apMAC)
	}
	a.authorized = true
	return nil
}

// fromStation is the AP receiving the station's EAPOL-Key frame: a bad MIC
// (another passphrase) ends the association as hostapd does, with reason 15
// (4-way handshake timeout) after its retries.
func (a *simAP) fromStation(b []byte) {
	a.mu.Lock()
	a.fromSta++
	auth, c := a.auth, a.sta
	a.mu.Unlock()
	if auth == nil {
		return
	}
	reply, keys, err := auth.Handle(b)
	if errors.Is(err, eapol.ErrMICFailure) {
		a.events <- nl80211.Event{Kind: nl80211.EventDisconnect, Ifindex: ifi.Index, MAC: apMAC, Reason: 15, ByAP: true}
		return
	}
	if err != nil {
		a.mu.Lock()
		a.dropped = append(a.dropped, err)
		a.mu.Unlock()
		return
	}
	if keys != nil && keys.PTK != nil {
		ptk := *keys.PTK
		a.mu.Lock()
		a.ptk = &ptk
		a.mu.Unlock()
	}
	if reply != nil {
		c.deliver(reply)
	}
}

// simConn is the station's EAPOL socket; frames come from apMAC unless
// sent with deliverFrom.
type simConn struct {
	ap   *simAP
	in   chan []byte
	from sync.Map // frame pointer -> source, for deliverFrom
	done chan struct{}
	once sync.Once
}

type sourced struct {
	b    []byte
	from net.HardwareAddr
}

func (c *simConn) deliver(b []byte) { c.deliverFrom(apMAC, b) }

func (c *simConn) deliverFrom(from net.HardwareAddr, b []byte) {
	f := &sourced{bytes.Clone(b), from}
	c.from.Store(&f.b[0], f)
	c.in <- f.b
}

func (c *simConn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case f := <-c.in:
		v, _ := c.from.LoadAndDelete(&f[0])
		return copy(b, f), &packet.Addr{HardwareAddr: v.(*sourced).from}, nil
	case <-c.done:
		return 0, nil, net.ErrClosed
	}
}

func (c *simConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if pa, ok := addr.(*packet.Addr); !ok || !bytes.Equal(pa.HardwareAddr, apMAC) {
		c.ap.t.Errorf("the station sent EAPOL to %v, want the AP", addr)
	}
	go c.ap.fromStation(bytes.Clone(b))
	return len(b), nil
}

func (c *simConn) Close() error {
	c.once.Do(func() { close(c.done) })
	return nil
}

func pmkOf(t *testing.T, pass string) []byte {
	t.Helper()
	pmk, err := eapol.PMK(pass, []byte("kit"))
	if err != nil {
		t.Fatal(err)
	}
	return pmk
}

func join(t *testing.T, a *simAP, pmk []byte, offload bool) (*Session, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tg := Target{SSID: []byte("kit"), BSSID: apMAC, Frequency: 2437, PMK: pmk, Offload: offload}
	if pmk != nil {
		tg.APRSNE = a.rsne
	}
	return Join(ctx, a, ifi, tg, a.events)
}

// With the right passphrase the station completes the 4-way handshake with
// the AP's authenticator, installs the very pairwise key the AP derived and
// the AP's group key with its index, then opens the port; a loss reported
// by the kernel ends the session with ErrLost.
func TestJoinWPA2(t *testing.T) {
	a := newSimAP(t, pmkOf(t, "correct horse"))
	s, err := join(t, a, pmkOf(t, "correct horse"), false)
	if err != nil {
		t.Fatal(err)
	}
	// The station opens its port on message 3 and sends message 4; the AP
	// takes its keys on that.
	a.waitM4()
	a.mu.Lock()
	if a.fromSta != 2 || len(a.dropped) != 0 {
		t.Errorf("the station sent %d EAPOL-Key frames, want 2 (messages 2 and 4); the AP dropped %v", a.fromSta, a.dropped)
	}
	if a.ptk == nil || !a.authorized || len(a.keys) != 2 {
		t.Fatalf("AP done %v, authorized %v, %d keys installed", a.ptk != nil, a.authorized, len(a.keys))
	}
	pw, gk := a.keys[0], a.keys[1]
	if !pw.Pairwise || pw.Index != 0 || !bytes.Equal(pw.Data, a.ptk.TK[:]) || !bytes.Equal(pw.Peer, apMAC) {
		t.Errorf("pairwise key %+v does not match the AP's TK", pw)
	}
	if gk.Pairwise || gk.Index != a.gtk.Index || !bytes.Equal(gk.Data, a.gtk.Key) {
		t.Errorf("group key %+v, want index %d and the AP's GTK", gk, a.gtk.Index)
	}
	if c := a.connect; c.RSN == nil || c.RSN.PMK != nil || !bytes.Equal(c.RSN.IE, rsnePSKCCMP) {
		t.Errorf("CONNECT carried %+v, want our RSN element and no PMK", c.RSN)
	}
	a.mu.Unlock()

	a.events <- nl80211.Event{Kind: nl80211.EventDisconnect, Ifindex: ifi.Index, MAC: apMAC, Reason: 4, ByAP: true}
	select {
	case <-s.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the session did not end on the kernel's disconnect")
	}
	if !errors.Is(s.Err(), ErrLost) {
		t.Errorf("Err = %v, want ErrLost", s.Err())
	}
}

// Another passphrase: the AP's authenticator sees message 2 fail its MIC and
// deauthenticates; Join says the key was not accepted and installs nothing.
func TestJoinWrongPassphrase(t *testing.T) {
	a := newSimAP(t, pmkOf(t, "correct horse"))
	_, err := join(t, a, pmkOf(t, "battery staple"), false)
	if !errors.Is(err, ErrWrongKey) {
		t.Fatalf("err = %v, want ErrWrongKey", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.keys) != 0 || a.authorized {
		t.Errorf("%d keys installed, authorized %v after a refused key", len(a.keys), a.authorized)
	}
}

// EAPOL-Key frames from anyone but the AP are never answered: a message 1
// from another address gets no message 2, and the real AP's then completes.
func TestJoinIgnoresOtherSenders(t *testing.T) {
	a := newSimAP(t, pmkOf(t, "correct horse"))
	// A rogue's message 1, waiting in the socket before the AP's.
	var aa, spa [6]byte
	copy(aa[:], net.HardwareAddr{0x02, 0xee, 0, 0, 0, 9})
	copy(spa[:], staMAC)
	rogue, err := eapol.NewAuthenticator(eapol.AuthenticatorConfig{PMK: pmkOf(t, "another fleet"), AA: aa, SPA: spa, RSNE: a.rsne, GTK: a.gtk})
	if err != nil {
		t.Fatal(err)
	}
	m1, err := rogue.Start()
	if err != nil {
		t.Fatal(err)
	}
	orig := listenEAPOL
	listenEAPOL = func(ifc *net.Interface) (eapolConn, error) {
		c, err := orig(ifc)
		c.(*simConn).deliverFrom(net.HardwareAddr(aa[:]), m1)
		return c, err
	}
	if _, err := join(t, a, pmkOf(t, "correct horse"), false); err != nil {
		t.Fatal(err)
	}
	// Message 4 is sent as the port opens; wait for it to reach the AP.
	a.waitM4()
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.authorized || a.fromSta != 2 {
		t.Errorf("authorized %v after sending %d EAPOL-Key frames; want true after 2 (none to the stranger)", a.authorized, a.fromSta)
	}
}

// Where the firmware runs the handshake, CONNECT carries the PMK, no EAPOL
// socket is opened and no key is installed from here: the association is
// done at the connect event.
func TestJoinOffload(t *testing.T) {
	a := newSimAP(t, pmkOf(t, "correct horse"))
	listenEAPOL = func(*net.Interface) (eapolConn, error) {
		t.Error("an EAPOL socket was opened for an offloaded handshake")
		return nil, errors.New("no")
	}
	pmk := pmkOf(t, "correct horse")
	s, err := join(t, a, pmk, true)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a.mu.Lock()
	defer a.mu.Unlock()
	if c := a.connect; c.RSN == nil || !bytes.Equal(c.RSN.PMK, pmk) {
		t.Errorf("CONNECT carried %+v, want the PMK", c.RSN)
	}
	if len(a.keys) != 0 || a.authorized {
		t.Errorf("%d keys installed and authorized %v for an offloaded handshake", len(a.keys), a.authorized)
	}
}

// An open network is joined at the connect event, with no RSN; an AP that
// refuses the association gives ErrRejected with its status; a join without
// a BSSID or, on a protected network, without the AP's RSN element is
// refused before anything is sent.
func TestJoinOpenRejectedAndBadTargets(t *testing.T) {
	a := newSimAP(t, nil)
	s, err := join(t, a, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if a.connect.RSN != nil {
		t.Errorf("CONNECT to an open network carried %+v", a.connect.RSN)
	}

	a = newSimAP(t, nil)
	a.status = 17
	if _, err := join(t, a, nil, false); !errors.Is(err, ErrRejected) {
		t.Errorf("refused association: err = %v, want ErrRejected", err)
	}

	ctx := context.Background()
	if _, err := Join(ctx, a, ifi, Target{SSID: []byte("kit")}, a.events); err == nil {
		t.Error("a target without a BSSID was accepted")
	}
	if _, err := Join(ctx, a, ifi, Target{SSID: []byte("kit"), BSSID: apMAC, PMK: pmkOf(t, "whatever passphrase")}, a.events); err == nil {
		t.Error("a protected target without the AP's RSN element was accepted")
	}
}
