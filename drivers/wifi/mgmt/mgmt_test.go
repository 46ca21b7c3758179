package mgmt

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/skyfleet/skyfleet/drivers/wifi/ie"
)

// frame reads a reference frame from testdata (see testdata/README.md for
// where each comes from): hex octets, '#' lines are comments.
func frame(t testing.TB, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	for line := range strings.Lines(string(raw)) {
		if !strings.HasPrefix(line, "#") {
			sb.WriteString(strings.Join(strings.Fields(line), ""))
		}
	}
	b, err := hex.DecodeString(sb.String())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func addr(t testing.TB, s string) Addr {
	t.Helper()
	b := unhex(t, strings.ReplaceAll(s, ":", ""))
	if len(b) != 6 {
		t.Fatalf("address %q", s)
	}
	return Addr(b)
}

type appender interface {
	Append([]byte) ([]byte, error)
}

// roundTrip checks that f is written back exactly as b.
func roundTrip(t *testing.T, f appender, b []byte) {
	t.Helper()
	out, err := f.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, b) {
		t.Fatalf("Append\n% x\nwant\n% x", out, b)
	}
}

func TestRealBeacons(t *testing.T) {
	b := frame(t, "beacon_wpa2psk.hex")
	f, err := ParseBeacon(b)
	if err != nil {
		t.Fatal(err)
	}
	h := f.Header
	if h.FrameControl != 0x0080 || h.DA != Broadcast || h.SA != addr(t, "f8:32:e4:ad:47:b8") || h.BSSID != h.SA ||
		h.Seq() != 1910 || h.Frag() != 0 || h.Duration != 0 || f.ProbeResponse {
		t.Fatalf("header %+v seq %d", h, h.Seq())
	}
	if f.Timestamp != 0xa5ce27a197 || f.BeaconInterval != 100 || f.Capability != CapESS|CapPrivacy|CapShortSlotTime {
		t.Fatalf("fixed fields %#x %d %#x", f.Timestamp, f.BeaconInterval, f.Capability)
	}
	if s := ie.Summarize(f.Capability&CapPrivacy != 0, f.Elements); s != ie.SecurityWPA2PSK {
		t.Fatal(s)
	}
	roundTrip(t, f, b)

	b = frame(t, "beacon_mixed_tkip_ccmp.hex")
	if f, err = ParseBeacon(b); err != nil {
		t.Fatal(err)
	}
	if ssid, _ := f.Elements.SSID(); string(ssid) != "Coherer" || f.Header.Seq() != 3973 || f.Timestamp != 0x11bd4f189 {
		t.Fatalf("%q %d %#x", ssid, f.Header.Seq(), f.Timestamp)
	}
	roundTrip(t, f, b)

	b = frame(t, "beacon_wpa1.hex")
	if f, err = ParseBeacon(b); err != nil {
		t.Fatal(err)
	}
	if f.Header.Duration != 0x7000 || f.Header.Seq() != 3841 || f.Header.SA.String() != "00:01:e3:41:bd:6e" {
		t.Fatalf("%+v", f.Header)
	}
	roundTrip(t, f, b)

	b = frame(t, "probe_response_wpa1.hex")
	if f, err = ParseBeacon(b); err != nil {
		t.Fatal(err)
	}
	if !f.ProbeResponse || f.Header.DA != addr(t, "00:16:bc:3d:aa:57") || f.Header.Seq() != 430 || f.Elements.HasTIM() {
		t.Fatalf("%+v", f)
	}
	roundTrip(t, f, b)
}

func TestRealProbeRequests(t *testing.T) {
	b := frame(t, "probe_request_ssid.hex")
	f, err := ParseProbeRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	if ssid, _ := f.Elements.SSID(); string(ssid) != "martinet3" || f.Wildcard() || f.Header.Seq() != 4 || f.Header.BSSID != Broadcast {
		t.Fatalf("%q %+v", ssid, f.Header)
	}
	rates, err := f.Elements.SupportedRates()
	if err != nil || len(rates) != 12 {
		t.Fatalf("%v %v", rates, err)
	}
	roundTrip(t, f, b)

	b = frame(t, "probe_request_wildcard.hex")
	if f, err = ParseProbeRequest(b); err != nil {
		t.Fatal(err)
	}
	if !f.Wildcard() || f.Header.SA != addr(t, "c0:ee:fb:4b:cf:3a") {
		t.Fatalf("%+v", f)
	}
	roundTrip(t, f, b)
	if (ProbeRequest{}).Wildcard() {
		t.Fatal("no SSID element is not a wildcard")
	}
}

func TestRealAuth(t *testing.T) {
	for _, name := range []string{"auth_open_request.hex", "auth_open_request_2.hex"} {
		b := frame(t, name)
		f, err := ParseAuth(b)
		if err != nil {
			t.Fatal(err)
		}
		if f.Algorithm != AuthOpenSystem || f.Seq != 1 || f.Status != StatusSuccess || len(f.Elements) != 0 {
			t.Fatalf("%s: %+v", name, f)
		}
		roundTrip(t, f, b)
	}
	req, _ := ParseAuth(frame(t, "auth_open_request_2.hex"))
	resp := OpenAuthResponse(req, req.Header.BSSID, StatusSuccess)
	out, err := resp.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := unhex(t, "b0 00 00 00  00 16 bc 3d aa 57  00 01 e3 41 bd 6e  00 01 e3 41 bd 6e  00 00  00 00 02 00 00 00")
	if !bytes.Equal(out, want) {
		t.Fatalf("% x\nwant % x", out, want)
	}
	// SAE bodies are not elements and stay raw.
	sae := Auth{Algorithm: AuthSAE, Seq: 1, SAE: []byte{0x13, 0x00, 0xff}}
	out, _ = sae.Append(nil)
	got, err := ParseAuth(out)
	if err != nil || !bytes.Equal(got.SAE, sae.SAE) || got.Elements != nil {
		t.Fatalf("%+v %v", got, err)
	}
}

func TestRealAssocRequests(t *testing.T) {
	b := frame(t, "assoc_request_wpa1.hex")
	f, err := ParseAssocRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	if f.Reassoc || f.ListenInterval != 10 || f.Capability != 0x0411 || f.Header.Seq() != 14 || f.Header.Duration != 258 {
		t.Fatalf("%+v", f)
	}
	if _, err := f.Elements.WPA(); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, f, b)

	// Captured with its FCS: the frame comes back with the elements before
	// it, and the error says where the list broke.
	b = frame(t, "assoc_request_rsn_fcs.hex")
	f, err = ParseAssocRequest(b)
	if !errors.Is(err, ie.ErrTruncated) || err.Error() != "mgmt: association request: elements: ie: truncated element: element 0 at offset 100 has length 65, 2 octets left" {
		t.Fatalf("%v", err)
	}
	if len(f.Elements) != 9 || f.Capability != 0x0431 || f.Header.Duration != 0x013a || f.Header.Seq() != 0x773 ||
		f.Header.SA != addr(t, "01:12:23:34:45:56") || f.Header.BSSID != addr(t, "00:11:22:33:44:55") {
		t.Fatalf("%+v", f)
	}
	r, err := f.Elements.RSN()
	if err != nil || r.Capabilities != ie.RSNCapMFPC || r.AKMs[0] != ie.AKMPSK {
		t.Fatalf("%+v %v", r, err)
	}
	f, err = ParseAssocRequest(b[:len(b)-4])
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, f, b[:len(b)-4])

	// Reassociation adds the current AP.
	re := AssocRequest{Reassoc: true, Capability: CapESS, ListenInterval: 3, CurrentAP: addr(t, "02:00:00:00:00:01")}
	re.Elements, _ = ie.Parse(unhex(t, "00 02 73 6b 01 01 82"))
	out, err := re.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	if out[0] != 0x20 || !bytes.Equal(out[24:34], unhex(t, "01 00 03 00 02 00 00 00 00 01")) {
		t.Fatalf("% x", out)
	}
	got, err := ParseAssocRequest(out)
	if err != nil || !reflect.DeepEqual(got, AssocRequest{Header: Header{FrameControl: 0x20}, Reassoc: true, Capability: CapESS, ListenInterval: 3, CurrentAP: re.CurrentAP, Elements: got.Elements}) {
		t.Fatalf("%+v %v", got, err)
	}
}

func TestRealAssocResponse(t *testing.T) {
	b := frame(t, "assoc_response.hex")
	f, err := ParseAssocResponse(b)
	if err != nil {
		t.Fatal(err)
	}
	if f.Status != StatusSuccess || f.AID != 4 || f.Capability != 0x0411 || f.Header.Seq() != 439 || f.Reassoc {
		t.Fatalf("%+v", f)
	}
	// The top two AID bits go back on the air as the AP sent them.
	roundTrip(t, f, b)

	var rates []ie.Rate
	for _, r := range []byte{0x82, 0x84, 0x8b, 0x96, 0x0c, 0x12, 0x18, 0x24, 0x30, 0x48, 0x60, 0x6c} {
		rates = append(rates, ie.Rate(r))
	}
	body, _ := ie.AppendRates(nil, rates)
	body, _ = ie.AppendExtendedRates(body, rates)
	es, _ := ie.Parse(body)
	resp := AssocResponse{
		Header:     Header{DA: addr(t, "02:00:00:00:00:02"), SA: addr(t, "02:00:00:00:00:01"), BSSID: addr(t, "02:00:00:00:00:01"), SeqCtrl: SeqCtrl(5, 0)},
		Capability: CapESS | CapPrivacy | CapShortSlotTime,
		Status:     StatusSuccess,
		AID:        1,
		Elements:   es,
	}
	out, err := resp.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := unhex(t, "10 00 00 00 02 00 00 00 00 02 02 00 00 00 00 01 02 00 00 00 00 01 50 00"+
		"11 04 00 00 01 c0 01 08 82 84 8b 96 0c 12 18 24 32 04 30 48 60 6c")
	if !bytes.Equal(out, want) {
		t.Fatalf("% x\nwant % x", out, want)
	}
	resp.Reassoc = true
	out, _ = resp.Append(nil)
	if got, err := ParseAssocResponse(out); err != nil || !got.Reassoc || got.AID != 1 || out[0] != 0x30 {
		t.Fatalf("%+v %v", got, err)
	}
	for _, c := range []struct {
		aid    uint16
		status StatusCode
		ok     bool
	}{{0, StatusSuccess, false}, {2008, StatusSuccess, false}, {2007, StatusSuccess, true}, {0, StatusAPUnableToHandleNewSTA, true}} {
		resp.AID, resp.Status = c.aid, c.status
		_, err := resp.Append(nil)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrInvalid)) {
			t.Errorf("AID %d status %v: %v", c.aid, c.status, err)
		}
	}
	resp.AID, resp.Status = 0, StatusSuccess
	if _, err := resp.Append(nil); err.Error() != "mgmt: invalid field: association response: AID 0, want 1 to 2007 on success" {
		t.Fatal(err)
	}
}

func TestRealReasonFrames(t *testing.T) {
	for _, c := range []struct {
		name string
		seq  uint16
	}{{"deauth_leaving.hex", 2350}, {"deauth_leaving_2.hex", 72}} {
		b := frame(t, c.name)
		f, err := ParseReasonFrame(b)
		if err != nil {
			t.Fatal(err)
		}
		if f.Disassoc || f.Reason != ReasonDeauthLeaving || f.Header.Seq() != c.seq {
			t.Fatalf("%s: %+v seq %d", c.name, f, f.Header.Seq())
		}
		if s := f.Reason.String(); s != "deauthenticated because sending STA is leaving (3)" {
			t.Fatal(s)
		}
		roundTrip(t, f, b)
	}
	b := frame(t, "disassoc_fcs.hex")
	f, err := ParseReasonFrame(b)
	if !errors.Is(err, ie.ErrTruncated) || !f.Disassoc || f.Reason != ReasonDisassocLeaving {
		t.Fatalf("%+v %v", f, err)
	}
	if f, err = ParseReasonFrame(b[:len(b)-4]); err != nil || f.Header.Seq() != 181 {
		t.Fatalf("%+v %v", f, err)
	}
	roundTrip(t, f, b[:len(b)-4])
	out, _ := ReasonFrame{Disassoc: true, Reason: ReasonInactivity}.Append(nil)
	if !bytes.Equal(out[:2], []byte{0xa0, 0x00}) || !bytes.Equal(out[24:], []byte{4, 0}) {
		t.Fatalf("% x", out)
	}
}

// Splitting a real beacon (its TIM taken out) around the TIM must give back
// the beacon when the TIM is put between head and tail, as mac80211 does.
func TestHeadTailRealBeacon(t *testing.T) {
	b := frame(t, "beacon_wpa2psk.hex")
	f, err := ParseBeacon(b)
	if err != nil {
		t.Fatal(err)
	}
	var tim []byte
	var noTIM ie.Elements
	for _, e := range f.Elements {
		if e.ID == ie.IDTIM {
			tim, _ = e.Append(nil)
			continue
		}
		noTIM = append(noTIM, e)
	}
	f.Elements = noTIM
	head, tail, err := f.HeadTail()
	if err != nil {
		t.Fatal(err)
	}
	if got := append(append(append([]byte{}, head...), tim...), tail...); !bytes.Equal(got, b) {
		t.Fatalf("head+TIM+tail\n% x\nwant\n% x", got, b)
	}
	if len(head) != 36+17+10+3 {
		t.Fatalf("head of %d octets", len(head))
	}
}

func TestHeadTailBuilt(t *testing.T) {
	var rates []ie.Rate
	for _, r := range []byte{0x82, 0x84, 0x8b, 0x96, 0x0c, 0x12, 0x18, 0x24, 0x30, 0x48, 0x60, 0x6c} {
		rates = append(rates, ie.Rate(r))
	}
	var head []byte
	head, _ = ie.AppendSSID(head, []byte("skyfleet"))
	head, _ = ie.AppendRates(head, rates)
	head = ie.AppendDSParams(head, 6)
	tail, _ := ie.AppendExtendedRates(nil, rates)
	tail, _ = ie.AppendRSN(tail, ie.WPA2PSK())
	all, _ := ie.Parse(append(append([]byte{}, head...), tail...))
	bssid := addr(t, "02:00:00:00:00:01")
	f := Beacon{
		Header:         Header{DA: Broadcast, SA: bssid, BSSID: bssid},
		BeaconInterval: 100,
		Capability:     CapESS | CapPrivacy | CapShortSlotTime,
		Elements:       all,
		ProbeResponse:  true, // ignored: a beacon head is a beacon
	}
	h, tl, err := f.HeadTail()
	if err != nil {
		t.Fatal(err)
	}
	wantHead := append(unhex(t, "80 00 00 00 ff ff ff ff ff ff 02 00 00 00 00 01 02 00 00 00 00 01 00 00"+
		"00 00 00 00 00 00 00 00 64 00 11 04"), head...)
	if !bytes.Equal(h, wantHead) || !bytes.Equal(tl, tail) {
		t.Fatalf("head % x\nwant % x\ntail % x\nwant % x", h, wantHead, tl, tail)
	}
	// No tail elements at all.
	f.Elements = all[:3]
	if _, tl, err = f.HeadTail(); err != nil || len(tl) != 0 {
		t.Fatalf("% x %v", tl, err)
	}
	f.Elements = append(ie.Elements{all[0], {ID: ie.IDTIM, Body: []byte{0, 1, 0, 0}}}, all[1:]...)
	if _, _, err := f.HeadTail(); err == nil || err.Error() != "mgmt: invalid field: beacon: TIM element given, but the kernel inserts it" {
		t.Fatal(err)
	}
	f.Elements = ie.Elements{all[0], all[3], all[2]}
	if _, _, err := f.HeadTail(); err == nil || err.Error() != "mgmt: invalid field: beacon: element 3 after element 50, but it goes before the TIM" {
		t.Fatal(err)
	}
	f.Elements = ie.Elements{{ID: ie.IDVendorSpecific, Body: make([]byte, 300)}}
	if _, _, err := f.HeadTail(); !errors.Is(err, ie.ErrTooLong) {
		t.Fatal(err)
	}
}

func TestHeader(t *testing.T) {
	h := Header{
		FrameControl: MgmtFrameControl(SubtypeAction) | FCOrder | FCProtected,
		Duration:     44,
		DA:           addr(t, "02:00:00:00:00:02"),
		SA:           addr(t, "02:00:00:00:00:01"),
		BSSID:        addr(t, "02:00:00:00:00:01"),
		SeqCtrl:      SeqCtrl(4095, 15),
		HTControl:    0xdeadbeef,
	}
	b := h.Append(nil)
	if len(b) != 28 || h.Len() != 28 {
		t.Fatalf("% x", b)
	}
	got, body, err := ParseHeader(append(b, 0x7f))
	if err != nil || got != h || !bytes.Equal(body, []byte{0x7f}) || got.Seq() != 4095 || got.Frag() != 15 {
		t.Fatalf("%+v % x %v", got, body, err)
	}
	if got.FrameControl.Subtype() != SubtypeAction || got.FrameControl.Type() != 0 || got.FrameControl.Version() != 0 {
		t.Fatal(got.FrameControl)
	}
	for _, c := range []struct{ in, err string }{
		{"", "mgmt: frame too short: MAC header: frame control needs 2 octets, have 0"},
		{"80", "mgmt: frame too short: MAC header: frame control needs 2 octets, have 1"},
		{"08 02 00 00", "mgmt: not a management frame: frame control 0x0208 is type 2 version 0"},
		{"81 00", "mgmt: not a management frame: frame control 0x0081 is type 0 version 1"},
		{"80 00 00 00 ff ff", "mgmt: frame too short: beacon: MAC header needs 24 octets, have 6"},
		{"d0 80" + strings.Repeat(" 00", 24), "mgmt: frame too short: action: MAC header needs 28 octets, have 26"},
	} {
		if _, _, err := ParseHeader(unhex(t, c.in)); err == nil || err.Error() != c.err {
			t.Errorf("ParseHeader(%s): %v, want %q", c.in, err, c.err)
		}
	}
}

func TestFixedFieldsShort(t *testing.T) {
	hdr := func(s Subtype, n int) []byte {
		return append(Header{FrameControl: MgmtFrameControl(s)}.Append(nil), make([]byte, n)...)
	}
	for _, c := range []struct {
		parse func([]byte) error
		in    []byte
		err   string
	}{
		{func(b []byte) error { _, err := ParseBeacon(b); return err }, hdr(SubtypeBeacon, 11),
			"mgmt: frame too short: beacon: timestamp, beacon interval and capability needs 12 octets, have 11"},
		{func(b []byte) error { _, err := ParseBeacon(b); return err }, hdr(SubtypeProbeResponse, 0),
			"mgmt: frame too short: probe response: timestamp, beacon interval and capability needs 12 octets, have 0"},
		{func(b []byte) error { _, err := ParseAuth(b); return err }, hdr(SubtypeAuth, 5),
			"mgmt: frame too short: authentication: algorithm, sequence and status needs 6 octets, have 5"},
		{func(b []byte) error { _, err := ParseAssocRequest(b); return err }, hdr(SubtypeAssocRequest, 3),
			"mgmt: frame too short: association request: capability and listen interval needs 4 octets, have 3"},
		{func(b []byte) error { _, err := ParseAssocRequest(b); return err }, hdr(SubtypeReassocRequest, 9),
			"mgmt: frame too short: reassociation request: capability and listen interval needs 10 octets, have 9"},
		{func(b []byte) error { _, err := ParseAssocResponse(b); return err }, hdr(SubtypeAssocResponse, 5),
			"mgmt: frame too short: association response: capability, status and AID needs 6 octets, have 5"},
		{func(b []byte) error { _, err := ParseReasonFrame(b); return err }, hdr(SubtypeDeauth, 1),
			"mgmt: frame too short: deauthentication: reason code needs 2 octets, have 1"},
		{func(b []byte) error { _, err := ParseReasonFrame(b); return err }, hdr(SubtypeBeacon, 12),
			"mgmt: wrong subtype: want deauthentication or disassociation, have beacon"},
		{func(b []byte) error { _, err := ParseProbeRequest(b); return err }, hdr(SubtypeProbeResponse, 12),
			"mgmt: wrong subtype: want probe request, have probe response"},
		{func(b []byte) error { _, err := ParseProbeRequest(b); return err }, append(hdr(SubtypeProbeRequest, 0), 0, 1),
			"mgmt: probe request: elements: ie: truncated element: element 0 at offset 0 has length 1, 0 octets left"},
		{func(b []byte) error { _, err := ParseAuth(b); return err }, append(hdr(SubtypeAuth, 6), 0xff, 0),
			"mgmt: authentication: elements: ie: malformed element: extension element at offset 0 has no extension ID"},
	} {
		if err := c.parse(c.in); err == nil || err.Error() != c.err {
			t.Errorf("% x: %v\nwant %q", c.in, err, c.err)
		}
	}
}

func TestParseAny(t *testing.T) {
	for name, want := range map[string]string{
		"beacon_wpa2psk.hex":         "mgmt.Beacon",
		"probe_response_wpa1.hex":    "mgmt.Beacon",
		"probe_request_wildcard.hex": "mgmt.ProbeRequest",
		"auth_open_request.hex":      "mgmt.Auth",
		"assoc_request_wpa1.hex":     "mgmt.AssocRequest",
		"assoc_response.hex":         "mgmt.AssocResponse",
		"deauth_leaving.hex":         "mgmt.ReasonFrame",
		"disassoc_fcs.hex":           "mgmt.ReasonFrame", // with the FCS error
	} {
		f, _ := Parse(frame(t, name))
		if got := reflect.TypeOf(f).String(); got != want {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
	}
	action := append(Header{FrameControl: MgmtFrameControl(SubtypeAction)}.Append(nil), 4, 0)
	f, err := Parse(action)
	if o, ok := f.(Other); err != nil || !ok || !bytes.Equal(o.Body, []byte{4, 0}) || o.MACHeader().FrameControl.Subtype() != SubtypeAction {
		t.Fatalf("%#v %v", f, err)
	}
	if f, err := Parse([]byte{0x08, 0x00}); f != nil || !errors.Is(err, ErrNotMgmt) {
		t.Fatalf("%v %v", f, err)
	}
	if f, err := Parse(append(Header{}.Append(nil), 1)); f != nil || !errors.Is(err, ErrShort) {
		t.Fatalf("%v %v", f, err)
	}
}

func TestNames(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{StatusInvalidAKMP.String(), "invalid AKMP (43)"},
		{StatusCode(999).String(), "status 999"},
		{Reason4WayHandshakeTimeout.String(), "4-way handshake timeout (15)"},
		{ReasonCode(999).String(), "reason 999"},
		{SubtypeReassocResponse.String(), "reassociation response"},
		{Subtype(7).String(), "management subtype 7"},
		{Broadcast.String(), "ff:ff:ff:ff:ff:ff"},
	} {
		if c.got != c.want {
			t.Errorf("%q, want %q", c.got, c.want)
		}
	}
}

func TestAsProbeResponse(t *testing.T) {
	b := frame(t, "probe_response_wpa1.hex")
	pr, _ := ParseBeacon(b)
	bc := pr
	bc.ProbeResponse, bc.Header.DA = false, Broadcast
	bc.Header.FrameControl = MgmtFrameControl(SubtypeBeacon)
	got := bc.AsProbeResponse(pr.Header.DA)
	roundTrip(t, got, b)
	if bc.ProbeResponse || bc.Header.DA != Broadcast {
		t.Fatal("AsProbeResponse changed its receiver")
	}
}
