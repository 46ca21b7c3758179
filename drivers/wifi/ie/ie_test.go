package ie

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// frame reads a reference frame from ../mgmt/testdata (see the README
// there for where each comes from): hex octets, '#' lines are comments.
func frame(t testing.TB, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "mgmt", "testdata", name))
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

// beaconElements is where a Beacon's elements start: 24 octets of MAC
// header, 12 of fixed fields.
const beaconElements = 36

// wellKnownWPA2PSK is the RSN element of a WPA2-PSK CCMP-only BSS without
// capabilities, as printed in countless captures and write-ups.
const wellKnownWPA2PSK = "30 14 01 00 00 0f ac 04 01 00 00 0f ac 04 01 00 00 0f ac 02 00 00"

func TestWellKnownWPA2PSK(t *testing.T) {
	b, err := WPA2PSK().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if want := unhex(t, wellKnownWPA2PSK); !bytes.Equal(b, want) {
		t.Fatalf("Marshal = % x\nwant      % x", b, want)
	}
	b2, err := AppendRSN([]byte{0xaa}, WPA2PSK())
	if err != nil || !bytes.Equal(b2[1:], b) || b2[0] != 0xaa {
		t.Fatalf("AppendRSN = % x, %v", b2, err)
	}
}

// The libwifi beacon is a real ASUS router's: WPA2-PSK from hostapd-like
// firmware with WMM on, hence RSN Capabilities 0x000C.
func TestRealBeaconWPA2PSK(t *testing.T) {
	f := frame(t, "beacon_wpa2psk.hex")
	es, err := Parse(f[beaconElements:])
	if err != nil {
		t.Fatal(err)
	}
	var ids []ID
	for _, e := range es {
		ids = append(ids, e.ID)
	}
	if want := []ID{0, 1, 3, 5, 42, 47, 48, 50, 45, 61, 74, 127, 221, 221, 221}; !slices.Equal(ids, want) {
		t.Fatalf("IDs %v, want %v", ids, want)
	}
	ssid, err := es.SSID()
	if err != nil || string(ssid) != "My face when IP" || Hidden(ssid) {
		t.Fatalf("SSID %q %v", ssid, err)
	}
	rates, err := es.SupportedRates()
	if err != nil {
		t.Fatal(err)
	}
	var rs []string
	for _, r := range rates {
		rs = append(rs, r.String())
	}
	if got, want := strings.Join(rs, " "), "1* 2* 5.5* 11* 18 24 36 54 6 9 12 48"; got != want {
		t.Fatalf("rates %q, want %q", got, want)
	}
	if ch, err := es.DSChannel(); ch != 9 || err != nil {
		t.Fatalf("channel %d %v", ch, err)
	}
	if !es.HasTIM() || !es.HasHTCapabilities() {
		t.Fatal("TIM or HT capabilities not seen")
	}
	if _, err := es.Country(); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Country: %v", err)
	}
	r, err := es.RSN()
	if err != nil {
		t.Fatal(err)
	}
	want := WPA2PSK()
	want.Capabilities = RSNCapReplayCounters16
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("RSN %+v\nwant %+v", r, want)
	}
	if r.Capabilities.PTKSAReplayCounters() != 16 || r.Capabilities.GTKSAReplayCounters() != 1 {
		t.Fatalf("replay counters %d %d", r.Capabilities.PTKSAReplayCounters(), r.Capabilities.GTKSAReplayCounters())
	}
	// Byte for byte as the AP sent it.
	e, _ := es.Find(IDRSN)
	b, err := r.Marshal()
	if err != nil || !bytes.Equal(b[2:], e.Body) {
		t.Fatalf("Marshal % x, %v; sent % x", b, err, e.Body)
	}
	if s := Summarize(true, es); s != SecurityWPA2PSK {
		t.Fatalf("Summarize %q", s)
	}
	// The WPS element is Microsoft's type 4, not WPA.
	if _, err := es.WPA(); !errors.Is(err, ErrNotFound) {
		t.Fatalf("WPA: %v", err)
	}
	if _, ok := es.FindVendor(OUIMicrosoft, 4); !ok {
		t.Fatal("WPS element not found")
	}
}

// A Wireshark-sample beacon offering WPA and WPA2 with TKIP and CCMP.
func TestRealBeaconMixed(t *testing.T) {
	f := frame(t, "beacon_mixed_tkip_ccmp.hex")
	es, err := Parse(f[beaconElements:])
	if err != nil {
		t.Fatal(err)
	}
	r, err := es.RSN()
	if err != nil {
		t.Fatal(err)
	}
	want := RSN{Version: 1, GroupCipher: CipherTKIP, PairwiseCiphers: []CipherSuite{CipherCCMP128, CipherTKIP}, AKMs: []AKMSuite{AKMPSK}}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("RSN %+v\nwant %+v", r, want)
	}
	w, err := es.WPA()
	if err != nil {
		t.Fatal(err)
	}
	wantW := RSN{Version: 1, GroupCipher: CipherWPATKIP, PairwiseCiphers: []CipherSuite{CipherWPACCMP, CipherWPATKIP}, AKMs: []AKMSuite{AKMWPAPSK}}
	if !reflect.DeepEqual(w, wantW) {
		t.Fatalf("WPA %+v\nwant %+v", w, wantW)
	}
	if got := w.PairwiseCiphers[0].String() + " " + w.AKMs[0].String() + " " + r.GroupCipher.String(); got != "WPA-CCMP WPA-PSK TKIP" {
		t.Fatalf("names %q", got)
	}
	if ch, _ := es.DSChannel(); ch != 1 {
		t.Fatalf("channel %d", ch)
	}
	if s := Summarize(true, es); s != SecurityWPA2PSK {
		t.Fatalf("Summarize %q", s)
	}
	e, _ := es.Find(IDRSN)
	if b, err := r.Marshal(); err != nil || !bytes.Equal(b[2:], e.Body) {
		t.Fatalf("Marshal % x, %v; sent % x", b, err, e.Body)
	}
}

func TestRealBeaconWPA1(t *testing.T) {
	f := frame(t, "beacon_wpa1.hex")
	es, err := Parse(f[beaconElements:])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := es.RSN(); !errors.Is(err, ErrNotFound) || err.Error() != "ie: element not present: RSN" {
		t.Fatalf("RSN: %v", err)
	}
	w, err := es.WPA()
	if err != nil || w.GroupCipher != CipherWPATKIP || !slices.Equal(w.AKMs, []AKMSuite{AKMWPAPSK}) {
		t.Fatalf("WPA %+v %v", w, err)
	}
	if s := Summarize(true, es); s != SecurityWPA1 {
		t.Fatalf("Summarize %q", s)
	}
}

// The zenotec association request was captured with its FCS, which a
// parser then reads as an element: the list is truncated, and everything
// before the FCS must still come back.
func TestRealAssocRequestWithFCS(t *testing.T) {
	f := frame(t, "assoc_request_rsn_fcs.hex")
	es, err := Parse(f[24+4:])
	if !errors.Is(err, ErrTruncated) {
		t.Fatalf("err %v", err)
	}
	if want := "ie: truncated element: element 0 at offset 100 has length 65, 2 octets left"; err.Error() != want {
		t.Fatalf("err %q\nwant %q", err, want)
	}
	if len(es) != 9 {
		t.Fatalf("%d elements", len(es))
	}
	if ssid, _ := es.SSID(); string(ssid) != "GW02" {
		t.Fatalf("SSID %q", ssid)
	}
	r, err := es.RSN()
	if err != nil {
		t.Fatal(err)
	}
	want := WPA2PSK()
	want.Capabilities = RSNCapMFPC
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("RSN %+v", r)
	}
	// Without the FCS the list is whole.
	if es2, err := Parse(f[24+4 : len(f)-4]); err != nil || len(es2) != 9 {
		t.Fatalf("%d elements, %v", len(es2), err)
	}
}

func TestParseBounds(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string // error text, "" for none
	}{
		{"", 0, ""},
		{"00 00", 1, ""},
		{"00", 0, "ie: truncated element: element header at offset 0 needs 2 octets, 1 left"},
		{"00 01", 0, "ie: truncated element: element 0 at offset 0 has length 1, 0 octets left"},
		{"00 00 30 02 01", 1, "ie: truncated element: element 48 at offset 2 has length 2, 1 octets left"},
		{"00 00 dd", 1, "ie: truncated element: element header at offset 2 needs 2 octets, 1 left"},
		{"ff 00", 0, "ie: malformed element: extension element at offset 0 has no extension ID"},
		{"ff 01 23", 1, ""},
		{"ff 03 23 aa bb 00 00", 2, ""},
	} {
		es, err := Parse(unhex(t, c.in))
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != c.want || len(es) != c.n {
			t.Errorf("Parse(%s) = %d elements, %q; want %d, %q", c.in, len(es), got, c.n, c.want)
		}
	}
	es, _ := Parse(unhex(t, "ff 03 23 aa bb"))
	if e, ok := es.FindExt(0x23); !ok || e.ID != IDExtension || !bytes.Equal(e.Body, []byte{0xaa, 0xbb}) {
		t.Fatalf("FindExt %+v %v", e, ok)
	}
	if b, err := es.Append(nil); err != nil || !bytes.Equal(b, unhex(t, "ff 03 23 aa bb")) {
		t.Fatalf("Append % x %v", b, err)
	}
	// Bodies must not be able to grow into the next element.
	es, _ = Parse(unhex(t, "00 01 41 00 01 42"))
	if cap(es[0].Body) != 1 {
		t.Fatalf("cap %d", cap(es[0].Body))
	}
}

func TestSSID(t *testing.T) {
	long := append([]byte{0, 33}, bytes.Repeat([]byte{'a'}, 33)...)
	es, err := Parse(long)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := es.SSID(); !errors.Is(err, ErrMalformed) || err.Error() != "ie: malformed element: SSID of 33 octets exceeds 32" {
		t.Fatalf("SSID: %v", err)
	}
	if _, err := AppendSSID(nil, long[2:]); !errors.Is(err, ErrTooLong) {
		t.Fatalf("AppendSSID: %v", err)
	}
	b, err := AppendSSID(nil, []byte("skyfleet"))
	if err != nil || !bytes.Equal(b, append([]byte{0, 8}, "skyfleet"...)) {
		t.Fatalf("AppendSSID % x %v", b, err)
	}
	if b, _ := AppendSSID(nil, nil); !bytes.Equal(b, []byte{0, 0}) {
		t.Fatalf("wildcard % x", b)
	}
	for _, c := range []struct {
		s      []byte
		hidden bool
	}{{nil, true}, {[]byte{}, true}, {[]byte{0, 0, 0}, true}, {[]byte{0, 'a'}, false}, {[]byte("x"), false}} {
		if Hidden(c.s) != c.hidden {
			t.Errorf("Hidden(%q) = %v", c.s, !c.hidden)
		}
	}
	if _, err := Elements(nil).SSID(); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
}

func TestRates(t *testing.T) {
	var rates []Rate
	for _, k := range []int{1000, 2000, 5500, 11000, 6000, 9000, 12000, 18000, 24000, 36000, 48000, 54000} {
		r, err := MakeRate(k, k <= 2000)
		if err != nil {
			t.Fatal(err)
		}
		rates = append(rates, r)
	}
	b, err := AppendRates(nil, rates)
	if err != nil {
		t.Fatal(err)
	}
	b = AppendDSParams(b, 6)
	if b, err = AppendExtendedRates(b, rates); err != nil {
		t.Fatal(err)
	}
	if want := unhex(t, "01 08 82 84 0b 16 0c 12 18 24 03 01 06 32 04 30 48 60 6c"); !bytes.Equal(b, want) {
		t.Fatalf("% x\nwant % x", b, want)
	}
	es, _ := Parse(b)
	got, err := es.SupportedRates()
	if err != nil || !slices.Equal(got, rates) {
		t.Fatalf("%v %v", got, err)
	}
	if ch, _ := es.DSChannel(); ch != 6 {
		t.Fatal(ch)
	}
	if b, _ := AppendExtendedRates(nil, rates[:8]); len(b) != 0 {
		t.Fatalf("extended rates for 8: % x", b)
	}
	if _, err := AppendRates(nil, nil); !errors.Is(err, ErrMalformed) {
		t.Fatal(err)
	}
	for _, k := range []int{0, -500, 700, 64000} {
		if _, err := MakeRate(k, false); !errors.Is(err, ErrMalformed) {
			t.Errorf("MakeRate(%d): %v", k, err)
		}
	}
	if r := Rate(0xff); !r.Selector() || r.Units500k() != SelectorHTPHY {
		t.Fatal("HT PHY selector")
	}
	if Rate(0x7f).Selector() || Rate(0x96).Selector() {
		t.Fatal("selector without basic bit, or 11 Mb/s")
	}
	nine, _ := Parse(unhex(t, "01 09 01 02 03 04 05 06 07 08 09"))
	if _, err := nine.SupportedRates(); err == nil || err.Error() != "ie: malformed element: Supported Rates of 9 octets, want 1 to 8" {
		t.Fatal(err)
	}
	empty, _ := Parse(unhex(t, "32 00"))
	if _, err := empty.SupportedRates(); !errors.Is(err, ErrMalformed) {
		t.Fatal(err)
	}
	if _, err := Elements(nil).SupportedRates(); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
}

func TestSmallElements(t *testing.T) {
	es, err := Parse(unhex(t, "07 06 44 45 20 01 0d 14  06 02 0a 00  72 04 73 6b 79 31  03 02 01 02  2d 00"))
	if err != nil {
		t.Fatal(err)
	}
	if c, err := es.Country(); c != "DE" || err != nil {
		t.Fatalf("Country %q %v", c, err)
	}
	if w, err := es.ATIMWindow(); w != 10 || err != nil {
		t.Fatalf("ATIM %d %v", w, err)
	}
	if m, err := es.MeshID(); string(m) != "sky1" || err != nil {
		t.Fatalf("Mesh ID %q %v", m, err)
	}
	if _, err := es.DSChannel(); err == nil || err.Error() != "ie: malformed element: DS Parameter Set of 2 octets, want 1" {
		t.Fatal(err)
	}
	if !es.HasHTCapabilities() || es.HasTIM() {
		t.Fatal("HT/TIM")
	}
	bad, _ := Parse(unhex(t, "07 03 31 32 20  06 01 00  72 21"+strings.Repeat(" 61", 33)))
	if _, err := bad.Country(); !errors.Is(err, ErrMalformed) {
		t.Fatal(err)
	}
	if _, err := bad.ATIMWindow(); !errors.Is(err, ErrMalformed) {
		t.Fatal(err)
	}
	if _, err := bad.MeshID(); !errors.Is(err, ErrMalformed) {
		t.Fatal(err)
	}
	short, _ := Parse(unhex(t, "07 02 44 45"))
	if _, err := short.Country(); err == nil || err.Error() != "ie: malformed element: Country of 2 octets, want at least 3" {
		t.Fatal(err)
	}
	for _, f := range []func() error{
		func() error { _, err := Elements(nil).Country(); return err },
		func() error { _, err := Elements(nil).ATIMWindow(); return err },
		func() error { _, err := Elements(nil).MeshID(); return err },
		func() error { _, err := Elements(nil).DSChannel(); return err },
		func() error { _, err := Elements(nil).WPA(); return err },
	} {
		if err := f(); !errors.Is(err, ErrNotFound) {
			t.Error(err)
		}
	}
	if _, err := AppendElement(nil, IDVendorSpecific, make([]byte, 256)); !errors.Is(err, ErrTooLong) {
		t.Fatal(err)
	}
	if _, err := (Element{ID: IDExtension, ExtID: 1, Body: make([]byte, 255)}).Append(nil); !errors.Is(err, ErrTooLong) {
		t.Fatal(err)
	}
}

func TestRSNRoundTrip(t *testing.T) {
	r := RSN{
		Version:         1,
		GroupCipher:     CipherCCMP128,
		PairwiseCiphers: []CipherSuite{CipherCCMP128, CipherGCMP256},
		AKMs:            []AKMSuite{AKMSAE, AKMPSK},
		Capabilities:    RSNCapMFPC | RSNCapReplayCounters16,
		PMKIDs:          [][PMKIDLen]byte{{1, 2, 3}, {15: 0xff}},
		GroupMgmtCipher: CipherBIPCMAC128,
	}
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if int(b[1]) != len(b)-2 || len(b) != 2+2+4+2+8+2+8+2+2+32+4 {
		t.Fatalf("length %d/%d", b[1], len(b))
	}
	es, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := es.RSN()
	if err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("%+v %v\nwant %+v", got, err, r)
	}
	if s := Summarize(true, es); s != SecurityWPA3Mix {
		t.Fatalf("Summarize %q", s)
	}
	// Only the group management cipher: a PMKID count of 0 goes before it.
	r2 := WPA2PSK()
	r2.GroupMgmtCipher = CipherBIPCMAC128
	b, _ = r2.Marshal()
	if want := unhex(t, "30 1a 01 00 00 0f ac 04 01 00 00 0f ac 04 01 00 00 0f ac 02 00 00 00 00 00 0f ac 06"); !bytes.Equal(b, want) {
		t.Fatalf("% x", b)
	}
	if _, err := (RSN{GroupCipher: CipherCCMP128}).Marshal(); err == nil || err.Error() != "ie: malformed element: RSN needs at least one pairwise cipher suite and one AKM suite" {
		t.Fatal(err)
	}
	r.PMKIDs = make([][PMKIDLen]byte, 15)
	if _, err := r.Marshal(); !errors.Is(err, ErrTooLong) {
		t.Fatal(err)
	}
	if s := CipherSuite(0x00112205).String(); s != "00-11-22:5" {
		t.Fatal(s)
	}
	if s := NewAKMSuite(OUIIEEE80211, 8); s != AKMSAE || s.String() != "SAE" || s.OUI() != OUIIEEE80211 || s.Type() != 8 {
		t.Fatal(s)
	}
	if c := NewCipherSuite(OUIMicrosoft, 2); c != CipherWPATKIP || c.OUI() != OUIMicrosoft || c.Type() != 2 {
		t.Fatal(c)
	}
}

func TestParseRSNBounds(t *testing.T) {
	full := WPA2PSK()
	for _, c := range []struct {
		in   string
		want RSN
		err  string
	}{
		{"01 00", RSN{Version: 1, GroupCipher: CipherCCMP128, PairwiseCiphers: []CipherSuite{CipherCCMP128}, AKMs: []AKMSuite{AKM8021X}}, ""}, // the spec's defaults
		{"01 00 00 0f ac 02", RSN{Version: 1, GroupCipher: CipherTKIP, PairwiseCiphers: []CipherSuite{CipherCCMP128}, AKMs: []AKMSuite{AKM8021X}}, ""},
		{"01 00 00 0f ac 04 01 00 00 0f ac 04 01 00 00 0f ac 02", full, ""},
		{"01 00 00 0f ac 04 01 00 00 0f ac 04 01 00 00 0f ac 02 00 00 00 00", full, ""},
		{"01 00 00 0f ac 04 01 00 00 0f ac 04 01 00 00 0f ac 02 00 00 00 00 00 0f ac 06 99", func() RSN { r := full; r.GroupMgmtCipher = CipherBIPCMAC128; return r }(), ""},
		{"", RSN{}, "ie: malformed element: RSN version needs 2 octets, have 0"},
		{"02 00", RSN{}, "ie: malformed element: RSN version 2, want 1"},
		{"01 00 00 0f", RSN{}, "ie: malformed element: RSN group cipher suite needs 4 octets, have 2"},
		{"01 00 00 0f ac 04 01", RSN{}, "ie: malformed element: RSN pairwise cipher suite count needs 2 octets, have 1"},
		{"01 00 00 0f ac 04 00 00", RSN{}, "ie: malformed element: RSN pairwise cipher suite count is 0"},
		{"01 00 00 0f ac 04 02 00 00 0f ac 04", RSN{}, "ie: malformed element: RSN pairwise cipher suite count 2 needs 8 octets, have 4"},
		{"01 00 00 0f ac 04 01 00 00 0f ac 04 ff ff 00 0f ac 02", RSN{}, "ie: malformed element: RSN AKM suite count 65535 needs 262140 octets, have 4"},
		{"01 00 00 0f ac 04 01 00 00 0f ac 04 01 00 00 0f ac 02 00", RSN{}, "ie: malformed element: RSN capabilities need 2 octets, have 1"},
		{"01 00 00 0f ac 04 01 00 00 0f ac 04 01 00 00 0f ac 02 00 00 01", RSN{}, "ie: malformed element: RSN PMKID count needs 2 octets, have 1"},
		{"01 00 00 0f ac 04 01 00 00 0f ac 04 01 00 00 0f ac 02 00 00 01 00 00", RSN{}, "ie: malformed element: RSN PMKID count 1 needs 16 octets, have 1"},
		{"01 00 00 0f ac 04 01 00 00 0f ac 04 01 00 00 0f ac 02 00 00 00 00 00 0f", RSN{}, "ie: malformed element: RSN group management cipher suite needs 4 octets, have 2"},
	} {
		got, err := ParseRSN(unhex(t, c.in))
		e := ""
		if err != nil {
			e = err.Error()
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("%s: %v is not ErrMalformed", c.in, err)
			}
		}
		if e != c.err || !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseRSN(%s) = %+v, %q\nwant %+v, %q", c.in, got, e, c.want, c.err)
		}
	}
	for _, c := range []struct{ in, err string }{
		{"00 50 f2 02 01 00", "ie: malformed element: WPA element does not start with 00-50-F2 type 1"},
		{"00 50 f2 01 01", "ie: malformed element: WPA version needs 2 octets, have 1"},
		{"00 50 f2 01 02 00", "ie: malformed element: WPA version 2, want 1"},
		{"00 50 f2 01 01 00 00 50 f2 02 01 00 00 50", "ie: malformed element: WPA pairwise cipher suite count 1 needs 4 octets, have 2"},
	} {
		if _, err := ParseWPA(unhex(t, c.in)); err == nil || err.Error() != c.err {
			t.Errorf("ParseWPA(%s): %v, want %q", c.in, err, c.err)
		}
	}
	if r, err := ParseWPA(unhex(t, "00 50 f2 01 01 00")); err != nil || r.GroupCipher != CipherWPATKIP || r.AKMs[0] != AKMWPA8021X {
		t.Fatalf("WPA defaults %+v %v", r, err)
	}
}

func TestSummarize(t *testing.T) {
	rsn := func(akms ...AKMSuite) Elements {
		r := WPA2PSK()
		r.AKMs = akms
		b, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		es, _ := Parse(b)
		return es
	}
	wpa, _ := Parse(unhex(t, "dd 16 00 50 f2 01 01 00 00 50 f2 02 01 00 00 50 f2 02 01 00 00 50 f2 01"))
	badRSN, _ := Parse(unhex(t, "30 02 02 00"))
	badWPA, _ := Parse(unhex(t, "dd 05 00 50 f2 01 01"))
	for _, c := range []struct {
		privacy bool
		es      Elements
		want    Security
	}{
		{false, nil, SecurityOpen},
		{true, nil, SecurityWEP},
		{true, rsn(AKMPSK), SecurityWPA2PSK},
		{true, rsn(AKMFTPSK, AKMPSKSHA256), SecurityWPA2PSK},
		{true, rsn(AKMSAE), SecurityWPA3SAE},
		{true, rsn(AKMPSK, AKMSAE), SecurityWPA3Mix},
		{true, rsn(AKM8021X), SecurityWPA2EAP},
		{true, rsn(AKM8021XSuiteB192), SecurityWPA3EAP},
		{true, rsn(AKMOWE), SecurityOWE},
		{true, rsn(NewAKMSuite([3]byte{1, 2, 3}, 1)), SecurityRSNOther},
		{true, wpa, SecurityWPA1},
		{true, badRSN, SecurityBroken},
		{true, badWPA, SecurityBroken},
	} {
		if got := Summarize(c.privacy, c.es); got != c.want {
			t.Errorf("Summarize(%v, %v) = %q, want %q", c.privacy, c.es, got, c.want)
		}
	}
}
