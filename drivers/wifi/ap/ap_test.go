package ap

import (
	"errors"
	"net"
	"sync"
	"testing"

	"github.com/skyfleet/skyfleet/drivers/wifi/ie"
	"github.com/skyfleet/skyfleet/drivers/wifi/mgmt"
	"github.com/skyfleet/skyfleet/drivers/wifi/nl80211"
)

// These tests drive the AP's MLME on the host with frames built by the mgmt
// package and a driver that records what the kernel would be told; the
// radio path, with wpa_supplicant as the phone, is TestWifiAPInVM's.

// fakeDriver records the station calls the AP makes.
type fakeDriver struct {
	mu         sync.Mutex
	added      map[string]int // NewStation calls per MAC
	deleted    map[string]int
	authorized map[string]bool
}

func newFakeDriver() *fakeDriver {
	return &fakeDriver{added: map[string]int{}, deleted: map[string]int{}, authorized: map[string]bool{}}
}

func (d *fakeDriver) StartAP(int, nl80211.APParams) error { return nil }
func (d *fakeDriver) StopAP(int) error                    { return nil }
func (d *fakeDriver) NewStation(_ int, p nl80211.StationParams) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.added[p.MAC.String()]++
	return nil
}
func (d *fakeDriver) DelStation(_ int, mac net.HardwareAddr) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.deleted[mac.String()]++
	return nil
}
func (d *fakeDriver) NewKey(int, nl80211.Key) error  { return nil }
func (d *fakeDriver) SetDefaultKey(int, uint8) error { return nil }
func (d *fakeDriver) AuthorizeStation(_ int, mac net.HardwareAddr) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.authorized[mac.String()] = true
	return nil
}
func (d *fakeDriver) ListenFrames(int, ...uint16) (*nl80211.Frames, error) {
	return nil, errors.New("not in this test")
}
func (d *fakeDriver) Stations(int) ([]nl80211.Station, error) { return nil, nil }

// sentFrames keeps the frames the AP sends, parsed.
type sentFrames struct{ sent []mgmt.Frame }

func (f *sentFrames) Receive() (nl80211.Frame, error) { return nl80211.Frame{}, errors.New("closed") }
func (f *sentFrames) Close() error                    { return nil }
func (f *sentFrames) Send(b []byte) error {
	fr, err := mgmt.Parse(b)
	if err != nil {
		return err
	}
	f.sent = append(f.sent, fr)
	return nil
}

// last returns the last frame sent, or nil.
func (f *sentFrames) last() mgmt.Frame {
	if len(f.sent) == 0 {
		return nil
	}
	return f.sent[len(f.sent)-1]
}

var bssid = mgmt.Addr{0x02, 0xaa, 0, 0, 0, 1}

// testAP returns an AP built as Start builds it, with recorded frames and no
// sockets; pmk nil makes it open.
func testAP(t *testing.T, pmk []byte, maxStations int) (*AP, *fakeDriver, *sentFrames) {
	t.Helper()
	d := newFakeDriver()
	a, err := newAP(d, nl80211.Interface{Index: 3, Name: "wlan0", MAC: net.HardwareAddr(bssid[:])},
		Config{SSID: []byte("kit"), Channel: 6, PMK: pmk, MaxStations: maxStations}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &sentFrames{}
	a.frames = f
	return a, d, f
}

func sta(i int) mgmt.Addr { return mgmt.Addr{0x02, 0x55, 0, 0, byte(i >> 8), byte(i)} }

func frame(t *testing.T, f interface{ Append([]byte) ([]byte, error) }) []byte {
	t.Helper()
	b, err := f.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func authReq(t *testing.T, from mgmt.Addr, seq uint16) []byte {
	return frame(t, mgmt.Auth{
		Header:    mgmt.Header{FrameControl: mgmt.MgmtFrameControl(mgmt.SubtypeAuth), DA: bssid, SA: from, BSSID: bssid, SeqCtrl: seq << 4},
		Algorithm: mgmt.AuthOpenSystem, Seq: 1,
	})
}

func assocReq(t *testing.T, from mgmt.Addr, seq uint16, ssid string, rsn []byte) []byte {
	t.Helper()
	raw, _ := ie.AppendSSID(nil, []byte(ssid))
	raw, _ = ie.AppendRates(raw, basicRates)
	raw = append(raw, rsn...)
	es, err := ie.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return frame(t, mgmt.AssocRequest{
		Header:     mgmt.Header{FrameControl: mgmt.MgmtFrameControl(mgmt.SubtypeAssocRequest), DA: bssid, SA: from, BSSID: bssid, SeqCtrl: seq << 4},
		Capability: mgmt.CapESS, ListenInterval: 10, Elements: es,
	})
}

func authStatus(t *testing.T, f mgmt.Frame) mgmt.StatusCode {
	t.Helper()
	a, ok := f.(mgmt.Auth)
	if !ok || a.Seq != 2 {
		t.Fatalf("sent %T %+v, want an authentication response", f, f)
	}
	return a.Status
}

func assocStatus(t *testing.T, f mgmt.Frame) (mgmt.StatusCode, uint16) {
	t.Helper()
	r, ok := f.(mgmt.AssocResponse)
	if !ok {
		t.Fatalf("sent %T %+v, want an association response", f, f)
	}
	return r.Status, r.AID
}

// A phone on the open AP authenticates, associates with an AID and gets its
// port opened; a retransmission of its association request (Retry bit, same
// sequence number: its ack was lost) is dropped, not answered by a second
// association.
func TestOpenAPAssociatesOnceDespiteRetransmission(t *testing.T) {
	a, d, f := testAP(t, nil, 0)
	phone := sta(1)
	a.handleFrame(authReq(t, phone, 1))
	if st := authStatus(t, f.last()); st != mgmt.StatusSuccess {
		t.Fatalf("auth status %v", st)
	}
	req := assocReq(t, phone, 2, "kit", nil)
	a.handleFrame(req)
	st, aid := assocStatus(t, f.last())
	if st != mgmt.StatusSuccess || aid != 1 {
		t.Fatalf("association: status %v, AID %d; want success, 1", st, aid)
	}
	retry := append([]byte(nil), req...)
	retry[1] |= byte(mgmt.FCRetry >> 8) // the Retry bit, in the frame control's second octet
	n := len(f.sent)
	a.handleFrame(retry)
	if len(f.sent) != n || d.added[net.HardwareAddr(phone[:]).String()] != 1 {
		t.Errorf("a retransmitted request was answered (%d frames more) or re-added the station (%d NewStation)", len(f.sent)-n, d.added[net.HardwareAddr(phone[:]).String()])
	}
	if !d.authorized[net.HardwareAddr(phone[:]).String()] {
		t.Error("the open AP did not open the phone's port")
	}
}

// A stranger who authenticates from made-up addresses fills the station
// table, but a phone that comes after still gets in: it takes the place of
// the oldest station that never associated. The table never exceeds its cap,
// and the evictions are counted.
func TestAuthFloodDoesNotLockPhonesOut(t *testing.T) {
	const max = 4
	a, d, f := testAP(t, nil, max)
	for i := range 50 {
		a.handleFrame(authReq(t, sta(100+i), 1))
		if len(a.stas) > max {
			t.Fatalf("%d stations in a table capped at %d", len(a.stas), max)
		}
	}
	phone := sta(1)
	a.handleFrame(authReq(t, phone, 1))
	if st := authStatus(t, f.last()); st != mgmt.StatusSuccess {
		t.Fatalf("the phone's authentication: status %v, want success", st)
	}
	a.handleFrame(assocReq(t, phone, 2, "kit", nil))
	if st, _ := assocStatus(t, f.last()); st != mgmt.StatusSuccess || !d.authorized[net.HardwareAddr(phone[:]).String()] {
		t.Fatalf("the phone's association: status %v, authorized %v", st, d.authorized[net.HardwareAddr(phone[:]).String()])
	}
	// More flooding never evicts the phone, whose port is open.
	for i := range 50 {
		a.handleFrame(authReq(t, sta(200+i), 1))
	}
	if s := a.stas[phone]; s == nil || !s.authorized {
		t.Error("the flood evicted a station with an open port")
	}
	if got := a.Stats().Evicted; got != 50-max+1+50 {
		t.Errorf("Evicted = %d, want %d", got, 50-max+1+50)
	}
}

// With every place held by a station whose port is open, a newcomer is
// refused with status 17 and counted; the others keep their places.
func TestFullOfPhonesRefuses(t *testing.T) {
	const max = 2
	a, _, f := testAP(t, nil, max)
	for i := range max {
		a.handleFrame(authReq(t, sta(i), 1))
		a.handleFrame(assocReq(t, sta(i), 2, "kit", nil))
	}
	a.handleFrame(authReq(t, sta(9), 1))
	if st := authStatus(t, f.last()); st != mgmt.StatusAPUnableToHandleNewSTA {
		t.Errorf("newcomer's status %v, want %v", st, mgmt.StatusAPUnableToHandleNewSTA)
	}
	if len(a.stas) != max || a.Stats().Refused != 1 {
		t.Errorf("%d stations, %d refused; want %d, 1", len(a.stas), a.Stats().Refused, max)
	}
}

// On the WPA2 AP, an association without our RSN element, or with TKIP, is
// refused with the matching status and no station is added; one from a
// station that never authenticated is answered with a deauthentication.
func TestWPA2AssociationChecks(t *testing.T) {
	pmk := make([]byte, 32)
	a, d, f := testAP(t, pmk, 0)
	phone := sta(1)
	a.handleFrame(authReq(t, phone, 1))

	a.handleFrame(assocReq(t, phone, 2, "kit", nil))
	if st, _ := assocStatus(t, f.last()); st != mgmt.StatusInvalidElement {
		t.Errorf("no RSN element: status %v, want %v", st, mgmt.StatusInvalidElement)
	}
	tkip := ie.WPA2PSK()
	tkip.PairwiseCiphers = []ie.CipherSuite{ie.CipherTKIP}
	rsn, err := ie.AppendRSN(nil, tkip)
	if err != nil {
		t.Fatal(err)
	}
	a.handleFrame(assocReq(t, phone, 3, "kit", rsn))
	if st, _ := assocStatus(t, f.last()); st != mgmt.StatusInvalidRSNCapabilities {
		t.Errorf("TKIP: status %v, want %v", st, mgmt.StatusInvalidRSNCapabilities)
	}
	a.handleFrame(assocReq(t, phone, 4, "another", a.rsne))
	if st, _ := assocStatus(t, f.last()); st != mgmt.StatusUnspecifiedFailure {
		t.Errorf("another SSID: status %v, want %v", st, mgmt.StatusUnspecifiedFailure)
	}
	if len(d.added) != 0 {
		t.Errorf("stations added after refused associations: %v", d.added)
	}

	stranger := sta(2)
	a.handleFrame(assocReq(t, stranger, 1, "kit", a.rsne))
	r, ok := f.last().(mgmt.ReasonFrame)
	if !ok || r.Reason != mgmt.ReasonClass2FromNonauth || r.Header.DA != stranger {
		t.Errorf("an unauthenticated association got %T %+v, want a deauthentication (reason 6)", f.last(), f.last())
	}
}

// Probe requests for our SSID or any SSID are answered with our SSID; those
// for another network are not; garbage is counted as malformed.
func TestProbesAndMalformed(t *testing.T) {
	a, _, f := testAP(t, nil, 0)
	probe := func(ssid string) []byte {
		raw, _ := ie.AppendSSID(nil, []byte(ssid))
		raw, _ = ie.AppendRates(raw, basicRates)
		es, _ := ie.Parse(raw)
		return frame(t, mgmt.ProbeRequest{Header: mgmt.Header{FrameControl: mgmt.MgmtFrameControl(mgmt.SubtypeProbeRequest), DA: mgmt.Broadcast, SA: sta(1), BSSID: mgmt.Broadcast}, Elements: es})
	}
	for _, c := range []struct {
		ssid   string
		answer bool
	}{{"kit", true}, {"", true}, {"other", false}} {
		n := len(f.sent)
		a.handleFrame(probe(c.ssid))
		if got := len(f.sent) > n; got != c.answer {
			t.Errorf("probe for %q answered: %v, want %v", c.ssid, got, c.answer)
			continue
		}
		if c.answer {
			b, ok := f.last().(mgmt.Beacon)
			if !ok {
				t.Fatalf("answer is %T", f.last())
			}
			if s, _ := b.Elements.SSID(); string(s) != "kit" {
				t.Errorf("probe response SSID %q", s)
			}
		}
	}
	a.handleFrame([]byte{0x40, 0})
	if a.Stats().Malformed != 1 {
		t.Errorf("Malformed = %d, want 1", a.Stats().Malformed)
	}
}
