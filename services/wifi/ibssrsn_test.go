package wifi

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdlayher/packet"

	"github.com/skyfleet/skyfleet/drivers/wifi/nl80211"
)

// These tests run the peering cell's handshakes on the host: each cell gets an
// EAPOL socket on a simulated air that carries frames between MAC addresses,
// and a driver that records the keys and authorizations the kernel would get.
// The real kernel path (mac80211_hwsim) is TestWifiServiceInVM's.

// air delivers EAPOL frames between the sockets attached to it; a frame to an
// address nobody holds is lost, as on the radio.
type air struct {
	mu    sync.Mutex
	socks map[string]*airSock
}

func newAir() *air { return &air{socks: map[string]*airSock{}} }

type airFrame struct {
	from net.HardwareAddr
	b    []byte
}

// airSock is one member's EAPOL socket; it implements eapolConn.
type airSock struct {
	a      *air
	mac    net.HardwareAddr
	in     chan airFrame
	done   chan struct{}
	closed sync.Once
}

func (a *air) attach(mac net.HardwareAddr) *airSock {
	s := &airSock{a: a, mac: mac, in: make(chan airFrame, 256), done: make(chan struct{})}
	a.mu.Lock()
	a.socks[mac.String()] = s
	a.mu.Unlock()
	return s
}

func (s *airSock) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case f := <-s.in:
		return copy(b, f.b), &packet.Addr{HardwareAddr: f.from}, nil
	case <-s.done:
		return 0, nil, net.ErrClosed
	}
}

func (s *airSock) WriteTo(b []byte, addr net.Addr) (int, error) {
	pa, ok := addr.(*packet.Addr)
	if !ok {
		return 0, errors.New("not a packet address")
	}
	s.a.mu.Lock()
	dst := s.a.socks[pa.HardwareAddr.String()]
	s.a.mu.Unlock()
	if dst != nil {
		select {
		case dst.in <- airFrame{from: s.mac, b: bytes.Clone(b)}:
		default: // a full receive queue drops, as the kernel's does
		}
	}
	return len(b), nil
}

func (s *airSock) Close() error {
	s.closed.Do(func() { close(s.done) })
	return nil
}

// keyRecorder is a cellDriver that keeps what would have gone to the kernel.
type keyRecorder struct {
	mu         sync.Mutex
	pairwise   map[string][]byte // peer -> TK
	group      map[string][]byte // peer -> its GTK
	authorized map[string]bool
}

func newKeyRecorder() *keyRecorder {
	return &keyRecorder{pairwise: map[string][]byte{}, group: map[string][]byte{}, authorized: map[string]bool{}}
}

func (k *keyRecorder) NewKey(_ int, key nl80211.Key) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	switch {
	case key.Pairwise:
		k.pairwise[key.Peer.String()] = bytes.Clone(key.Data)
	case key.Peer != nil:
		k.group[key.Peer.String()] = bytes.Clone(key.Data)
	}
	return nil
}

func (k *keyRecorder) SetDefaultKey(int, uint8) error { return nil }

func (k *keyRecorder) AuthorizeStation(_ int, peer net.HardwareAddr) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.authorized[peer.String()] = true
	return nil
}

func (k *keyRecorder) isAuthorized(mac net.HardwareAddr) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.authorized[mac.String()]
}

// member is one cell on the air.
type member struct {
	mac  net.HardwareAddr
	c    *cell
	keys *keyRecorder
	logs *logBuffer
}

type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) log(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(s + "\n")
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// join puts a cell for mac on the air under pmk, with short timers.
func (a *air) join(t *testing.T, mac net.HardwareAddr, pmk []byte) *member {
	t.Helper()
	m := &member{mac: mac, keys: newKeyRecorder(), logs: &logBuffer{}}
	gtk := bytes.Repeat([]byte{mac[5]}, 16)
	m.c = newCell(m.keys, nl80211.Interface{Index: 1, Name: "wlan0", MAC: mac}, pmk, gtk, m.logs.log)
	m.c.retry, m.c.restart = 20*time.Millisecond, 50*time.Millisecond
	m.c.eap = a.attach(mac)
	go m.c.serve()
	t.Cleanup(m.c.close)
	return m
}

func mac(i int) net.HardwareAddr { return net.HardwareAddr{0x02, 0, 0, 0, byte(i >> 8), byte(i)} }

func fleetPMK(t *testing.T, psk string) []byte {
	t.Helper()
	pmk, err := PeeringPMK([]byte(psk))
	if err != nil {
		t.Fatal(err)
	}
	return pmk
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Two members of one fleet key each other: each installs the other's group
// key under the other's address and the same pairwise key as the other
// (the one from the handshake the larger address started), then opens the
// data path.
func TestCellKeysTwoMembers(t *testing.T) {
	a := newAir()
	pmk := fleetPMK(t, "fleet network psk 1")
	x, y := a.join(t, mac(1), pmk), a.join(t, mac(2), pmk)
	x.c.newPeer(y.mac)
	y.c.newPeer(x.mac)
	waitFor(t, 10*time.Second, "both members authorized", func() bool {
		return x.keys.isAuthorized(y.mac) && y.keys.isAuthorized(x.mac)
	})
	x.keys.mu.Lock()
	y.keys.mu.Lock()
	defer x.keys.mu.Unlock()
	defer y.keys.mu.Unlock()
	tkX, tkY := x.keys.pairwise[y.mac.String()], y.keys.pairwise[x.mac.String()]
	if len(tkX) != 16 || !bytes.Equal(tkX, tkY) {
		t.Errorf("pairwise keys differ: %x at %s, %x at %s", tkX, x.mac, tkY, y.mac)
	}
	if g := x.keys.group[y.mac.String()]; !bytes.Equal(g, y.c.gtk.Key) {
		t.Errorf("%s installed %x as %s's group key, want %x", x.mac, g, y.mac, y.c.gtk.Key)
	}
	if g := y.keys.group[x.mac.String()]; !bytes.Equal(g, x.c.gtk.Key) {
		t.Errorf("%s installed %x as %s's group key, want %x", y.mac, g, x.mac, x.c.gtk.Key)
	}
	if k, f := x.c.counts(); k != 1 || f != 0 {
		t.Errorf("counts = %d keyed, %d failed; want 1, 0", k, f)
	}
}

// A kit of another fleet (another psk) in range is never authorized, its
// answers are logged as another key, and the failed handshakes are counted.
func TestCellOtherFleetNotKeyed(t *testing.T) {
	a := newAir()
	x, y := a.join(t, mac(1), fleetPMK(t, "fleet one")), a.join(t, mac(2), fleetPMK(t, "fleet two"))
	x.c.newPeer(y.mac)
	y.c.newPeer(x.mac)
	waitFor(t, 10*time.Second, "a failed handshake", func() bool { _, f := x.c.counts(); return f > 0 })
	if x.keys.isAuthorized(y.mac) || y.keys.isAuthorized(x.mac) {
		t.Error("a member of another fleet was authorized")
	}
	if !strings.Contains(x.logs.String(), "answered with another key") {
		t.Errorf("log does not say the key differs:\n%s", x.logs.String())
	}
}

// A stranger who makes the kernel report far more made-up stations than the
// cell has slots cannot keep a real member out: the made-up ones' handshakes
// give up, each yields its slot to the next in line, and the member is keyed;
// the slots and the queue never exceed their caps.
func TestCellStrangersYieldSlots(t *testing.T) {
	a := newAir()
	pmk := fleetPMK(t, "fleet network psk 1")
	x := a.join(t, mac(1), pmk)
	const strangers = 200
	for i := range strangers {
		x.c.newPeer(mac(0x1000 + i)) // nobody answers at these addresses
	}
	y := a.join(t, mac(2), pmk)
	y.c.newPeer(x.mac)
	x.c.newPeer(y.mac)
	check := func() {
		x.c.mu.Lock()
		defer x.c.mu.Unlock()
		if len(x.c.peers) > maxCellPeers || len(x.c.waiting) > maxCellWaiting {
			t.Fatalf("%d slots taken and %d waiting, caps %d and %d", len(x.c.peers), len(x.c.waiting), maxCellPeers, maxCellWaiting)
		}
	}
	check()
	waitFor(t, 20*time.Second, "the member keyed despite the strangers", func() bool {
		check()
		return x.keys.isAuthorized(y.mac) && y.keys.isAuthorized(x.mac)
	})
	if !strings.Contains(x.logs.String(), "yields its slot and waits") {
		t.Errorf("no stranger yielded a slot:\n%.2000s", x.logs.String())
	}
	// The member keeps its slot while strangers keep failing.
	_, f := x.c.counts()
	waitFor(t, 20*time.Second, "more strangers failing", func() bool { _, g := x.c.counts(); return g > f+maxCellPeers })
	x.c.mu.Lock()
	kept := x.c.peers[[6]byte(y.mac)] != nil
	x.c.mu.Unlock()
	if !kept {
		t.Error("the keyed member lost its slot to a stranger")
	}
}

// When the kernel drops a member, its slot goes to the first in line, and a
// member that leaves the queue is forgotten.
func TestCellDelPeerAdmitsWaiting(t *testing.T) {
	a := newAir()
	pmk := fleetPMK(t, "fleet network psk 1")
	x := a.join(t, mac(1), pmk)
	x.c.restart = time.Hour // no handshake gives up in this test's time
	x.c.retry = time.Hour
	for i := range maxCellPeers + 2 {
		x.c.newPeer(mac(0x1000 + i))
	}
	x.c.delPeer(mac(0x1000 + maxCellPeers + 1)) // leaves the queue
	x.c.delPeer(mac(0x1000))                    // frees a slot
	x.c.mu.Lock()
	defer x.c.mu.Unlock()
	if x.c.peers[[6]byte(mac(0x1000+maxCellPeers))] == nil {
		t.Error("the first in line did not get the freed slot")
	}
	if len(x.c.waiting) != 0 || len(x.c.peers) != maxCellPeers {
		t.Errorf("%d waiting and %d slots taken, want 0 and %d", len(x.c.waiting), len(x.c.peers), maxCellPeers)
	}
}
