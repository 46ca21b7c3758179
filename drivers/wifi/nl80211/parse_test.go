package nl80211

import (
	"bytes"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// The kernel's messages are built here attribute by attribute as
// include/uapi/linux/nl80211.h lays them out; the in-VM tests
// (nl80211_vm_test.go) read the real kernel's.

func mustEncode(t testing.TB, build func(ae *netlink.AttributeEncoder)) []byte {
	t.Helper()
	b, err := encode(build)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var bssid = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x01, 0x00}

// A beacon's elements: SSID "skyfleet", rates, DS channel 6, RSN WPA2-PSK.
var sampleIEs = []byte{
	0, 8, 's', 'k', 'y', 'f', 'l', 'e', 'e', 't',
	1, 4, 0x82, 0x84, 0x8b, 0x96,
	3, 1, 6,
	48, 20, 1, 0, 0, 0x0f, 0xac, 4, 1, 0, 0, 0x0f, 0xac, 4, 1, 0, 0, 0x0f, 0xac, 2, 0, 0,
}

func scanMessage(t testing.TB, bss func(ae *netlink.AttributeEncoder)) genetlink.Message {
	return genetlink.Message{Header: genetlink.Header{Command: unix.NL80211_CMD_NEW_SCAN_RESULTS}, Data: mustEncode(t, func(ae *netlink.AttributeEncoder) {
		ae.Uint32(unix.NL80211_ATTR_IFINDEX, 3)
		ae.Nested(unix.NL80211_ATTR_BSS, func(n *netlink.AttributeEncoder) error {
			bss(n)
			return nil
		})
	})}
}

func TestParseScan(t *testing.T) {
	m := scanMessage(t, func(n *netlink.AttributeEncoder) {
		n.Bytes(unix.NL80211_BSS_BSSID, bssid)
		n.Uint32(unix.NL80211_BSS_FREQUENCY, 2437)
		n.Uint16(unix.NL80211_BSS_CAPABILITY, CapESS|CapPrivacy)
		n.Uint16(unix.NL80211_BSS_BEACON_INTERVAL, 100)
		n.Int32(unix.NL80211_BSS_SIGNAL_MBM, -4300)
		n.Uint32(unix.NL80211_BSS_SEEN_MS_AGO, 250)
		n.Uint32(unix.NL80211_BSS_STATUS, unix.NL80211_BSS_STATUS_ASSOCIATED)
		n.Bytes(unix.NL80211_BSS_BEACON_IES, []byte{0, 0})
		n.Bytes(unix.NL80211_BSS_INFORMATION_ELEMENTS, sampleIEs)
	})
	// A second result heard only by its beacon, no status.
	m2 := scanMessage(t, func(n *netlink.AttributeEncoder) {
		n.Bytes(unix.NL80211_BSS_BSSID, net.HardwareAddr{2, 0, 0, 0, 2, 0})
		n.Uint32(unix.NL80211_BSS_FREQUENCY, 2412)
		n.Bytes(unix.NL80211_BSS_BEACON_IES, []byte{0, 1, 'x'})
	})
	got, err := parseScan([]genetlink.Message{m, m2})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d results, want 2", len(got))
	}
	b := got[0]
	if !bytes.Equal(b.BSSID, bssid) || b.Frequency != 2437 || b.Capability != CapESS|CapPrivacy ||
		b.BeaconInterval != 100 || b.SignalMBm != -4300 || b.Age != 250*time.Millisecond ||
		b.Status != BSSAssociated || !bytes.Equal(b.IEs, sampleIEs) {
		t.Errorf("first result %+v", b)
	}
	if got[1].Status != BSSNone || !bytes.Equal(got[1].IEs, []byte{0, 1, 'x'}) {
		t.Errorf("second result %+v: want no status and the beacon's elements", got[1])
	}
}

func TestParseScanRejectsWrongSizes(t *testing.T) {
	for _, tc := range []struct {
		name string
		typ  uint16
		data []byte
	}{
		{"short BSSID", unix.NL80211_BSS_BSSID, []byte{1, 2, 3}},
		{"2-byte frequency", unix.NL80211_BSS_FREQUENCY, []byte{1, 2}},
		{"signal of 8 bytes", unix.NL80211_BSS_SIGNAL_MBM, make([]byte, 8)},
	} {
		m := scanMessage(t, func(n *netlink.AttributeEncoder) { n.Bytes(tc.typ, tc.data) })
		if _, err := parseScan([]genetlink.Message{m}); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	if _, err := parseScan([]genetlink.Message{{Data: []byte{1, 2, 3}}}); err == nil {
		t.Error("a truncated attribute list was accepted")
	}
}

func TestParsePHYsMergesSplitDump(t *testing.T) {
	msg := func(build func(ae *netlink.AttributeEncoder)) genetlink.Message {
		return genetlink.Message{Data: mustEncode(t, func(ae *netlink.AttributeEncoder) {
			ae.Uint32(unix.NL80211_ATTR_WIPHY, 1)
			build(ae)
		})}
	}
	ext := make([]byte, 8)
	ext[unix.NL80211_EXT_FEATURE_4WAY_HANDSHAKE_STA_PSK/8] |= 1 << (unix.NL80211_EXT_FEATURE_4WAY_HANDSHAKE_STA_PSK % 8)
	freq := func(ae *netlink.AttributeEncoder, idx uint16, mhz uint32, flags ...uint16) {
		ae.Nested(idx, func(f *netlink.AttributeEncoder) error {
			f.Uint32(unix.NL80211_FREQUENCY_ATTR_FREQ, mhz)
			for _, fl := range flags {
				f.Flag(fl, true)
			}
			return nil
		})
	}
	msgs := []genetlink.Message{
		msg(func(ae *netlink.AttributeEncoder) {
			ae.String(unix.NL80211_ATTR_WIPHY_NAME, "phy1")
			ae.Nested(unix.NL80211_ATTR_SUPPORTED_IFTYPES, func(n *netlink.AttributeEncoder) error {
				n.Flag(unix.NL80211_IFTYPE_STATION, true)
				n.Flag(unix.NL80211_IFTYPE_AP, true)
				return nil
			})
			ae.Bytes(unix.NL80211_ATTR_CIPHER_SUITES, u32s(CipherTKIP, CipherCCMP))
		}),
		msg(func(ae *netlink.AttributeEncoder) {
			ae.Nested(unix.NL80211_ATTR_WIPHY_BANDS, func(bands *netlink.AttributeEncoder) error {
				bands.Nested(unix.NL80211_BAND_2GHZ, func(band *netlink.AttributeEncoder) error {
					band.Nested(unix.NL80211_BAND_ATTR_FREQS, func(fl *netlink.AttributeEncoder) error {
						freq(fl, 0, 2412)
						freq(fl, 1, 2467, unix.NL80211_FREQUENCY_ATTR_NO_IR)
						freq(fl, 2, 2484, unix.NL80211_FREQUENCY_ATTR_DISABLED)
						return nil
					})
					return nil
				})
				return nil
			})
		}),
		msg(func(ae *netlink.AttributeEncoder) {
			ae.Bytes(unix.NL80211_ATTR_EXT_FEATURES, ext)
			ae.Uint32(unix.NL80211_ATTR_DEVICE_AP_SME, 1)
		}),
	}
	phys, err := parsePHYs(msgs)
	if err != nil {
		t.Fatal(err)
	}
	if len(phys) != 1 {
		t.Fatalf("got %d PHYs, want 1 merged", len(phys))
	}
	p := phys[0]
	if p.Index != 1 || p.Name != "phy1" || !p.Supports(IfTypeAP) || p.Supports(IfTypeAdHoc) ||
		len(p.Ciphers) != 2 || p.Ciphers[1] != CipherCCMP || !p.OffloadSTA4Way || p.OffloadAP4Way || !p.APSME {
		t.Errorf("PHY %+v", p)
	}
	if len(p.Frequencies) != 2 || p.Frequencies[0] != 2412 || p.Frequencies[1] != 2467 || len(p.NoIR) != 1 || p.NoIR[0] != 2467 {
		t.Errorf("frequencies %v, no-IR %v: want 2412 and 2467 (no IR), 2484 disabled", p.Frequencies, p.NoIR)
	}
}

func TestParseEvent(t *testing.T) {
	ev, err := ParseEvent(unix.NL80211_CMD_DISCONNECT, mustEncode(t, func(ae *netlink.AttributeEncoder) {
		ae.Uint32(unix.NL80211_ATTR_IFINDEX, 4)
		ae.Bytes(unix.NL80211_ATTR_MAC, bssid)
		ae.Uint16(unix.NL80211_ATTR_REASON_CODE, 15) // 4-way handshake timeout
		ae.Flag(unix.NL80211_ATTR_DISCONNECTED_BY_AP, true)
	}))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Kind != EventDisconnect || ev.Ifindex != 4 || !bytes.Equal(ev.MAC, bssid) || ev.Reason != 15 || !ev.ByAP {
		t.Errorf("disconnect %+v", ev)
	}
	ev, err = ParseEvent(unix.NL80211_CMD_CONNECT, mustEncode(t, func(ae *netlink.AttributeEncoder) {
		ae.Uint32(unix.NL80211_ATTR_IFINDEX, 4)
		ae.Flag(unix.NL80211_ATTR_TIMED_OUT, true)
	}))
	if err != nil || ev.Kind != EventConnect || ev.Status == 0 {
		t.Errorf("a timed-out connect (%+v, %v) must not read as success", ev, err)
	}
	if _, err := ParseEvent(unix.NL80211_CMD_CONNECT, mustEncode(t, func(ae *netlink.AttributeEncoder) {
		ae.Uint32(unix.NL80211_ATTR_STATUS_CODE, 0) // u32 where nl80211 sends a u16
	})); err == nil {
		t.Error("a 4-byte status code was accepted")
	}
	ev, _ = ParseEvent(unix.NL80211_CMD_REG_CHANGE, mustEncode(t, func(ae *netlink.AttributeEncoder) {
		ae.String(unix.NL80211_ATTR_REG_ALPHA2, "DE")
	}))
	if ev.Kind != EventRegChange || ev.Country != "DE" {
		t.Errorf("regulatory change %+v", ev)
	}
}

func TestParseFrameAndStation(t *testing.T) {
	frame := []byte{0xb0, 0, 0, 0, 1, 2, 3, 4, 5, 6}
	fr, err := ParseFrame(mustEncode(t, func(ae *netlink.AttributeEncoder) {
		ae.Bytes(unix.NL80211_ATTR_FRAME, frame)
		ae.Uint32(unix.NL80211_ATTR_WIPHY_FREQ, 2412)
		ae.Int32(unix.NL80211_ATTR_RX_SIGNAL_DBM, -51)
	}))
	if err != nil || !bytes.Equal(fr.Data, frame) || fr.Frequency != 2412 || fr.SignalDBm != -51 {
		t.Errorf("frame %+v, %v", fr, err)
	}
	s, err := parseStation(mustEncode(t, func(ae *netlink.AttributeEncoder) {
		ae.Bytes(unix.NL80211_ATTR_MAC, bssid)
		ae.Nested(unix.NL80211_ATTR_STA_INFO, func(n *netlink.AttributeEncoder) error {
			n.Uint8(unix.NL80211_STA_INFO_SIGNAL, uint8(0xc6)) // -58 dBm as a u8
			n.Uint64(unix.NL80211_STA_INFO_RX_BYTES64, 1<<33)
			n.Uint32(unix.NL80211_STA_INFO_INACTIVE_TIME, 70)
			return nil
		})
	}))
	if err != nil || s.SignalDBm != -58 || s.RxBytes != 1<<33 || s.InactiveMS != 70 || !bytes.Equal(s.MAC, bssid) {
		t.Errorf("station %+v, %v", s, err)
	}
}

func TestChannels(t *testing.T) {
	for ch, mhz := range map[int]int{1: 2412, 6: 2437, 11: 2462, 13: 2472, 14: 2484, 36: 5180, 149: 5745} {
		if got := ChannelFrequency(ch); got != mhz {
			t.Errorf("channel %d = %d MHz, want %d", ch, got, mhz)
		}
		if got := FrequencyChannel(mhz); got != ch {
			t.Errorf("%d MHz = channel %d, want %d", mhz, got, ch)
		}
	}
	if ChannelFrequency(0) != 0 || FrequencyChannel(2400) != 0 {
		t.Error("out-of-band numbers must map to 0")
	}
}

func TestErrorsUnwrapToErrno(t *testing.T) {
	err := error(&Error{Cmd: "TRIGGER_SCAN", Err: unix.EBUSY})
	if !errors.Is(err, unix.EBUSY) || err.Error() != "nl80211 TRIGGER_SCAN: device or resource busy" {
		t.Errorf("%v", err)
	}
}

func TestKeyLengthCheckedBeforeSending(t *testing.T) {
	var c Conn // no socket: NewKey must refuse before using it
	if err := c.NewKey(1, Key{Cipher: CipherCCMP, Data: make([]byte, 15)}); !errors.Is(err, ErrKeySize) {
		t.Errorf("15-byte CCMP key: %v, want ErrKeySize", err)
	}
}

// The fuzz targets feed arbitrary attribute bytes, as a buggy or hostile
// driver could produce, to every parser of kernel messages.

func FuzzParseScan(f *testing.F) {
	m := scanMessage(f, func(n *netlink.AttributeEncoder) {
		n.Bytes(unix.NL80211_BSS_BSSID, bssid)
		n.Uint32(unix.NL80211_BSS_FREQUENCY, 2437)
		n.Bytes(unix.NL80211_BSS_INFORMATION_ELEMENTS, sampleIEs)
	})
	f.Add(m.Data)
	f.Add([]byte{})
	f.Add([]byte{4, 0, 0x2f, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := parseScan([]genetlink.Message{{Data: data}})
		for _, b := range res {
			if err == nil && len(b.BSSID) != 6 {
				t.Fatalf("result with a %d-byte BSSID", len(b.BSSID))
			}
		}
	})
}

func FuzzParseEvent(f *testing.F) {
	f.Add(uint8(unix.NL80211_CMD_DISCONNECT), mustEncode(f, func(ae *netlink.AttributeEncoder) {
		ae.Uint32(unix.NL80211_ATTR_IFINDEX, 4)
		ae.Uint16(unix.NL80211_ATTR_REASON_CODE, 3)
	}))
	f.Add(uint8(unix.NL80211_CMD_FRAME), []byte{8, 0, 0x33, 0, 0xb0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, cmd uint8, data []byte) {
		ev, err := ParseEvent(cmd, data)
		if err == nil && ev.MAC != nil && len(ev.MAC) != 6 {
			t.Fatalf("event with a %d-byte MAC", len(ev.MAC))
		}
		ParseFrame(data)
		parseStation(data)
	})
}

func FuzzParsePHYs(f *testing.F) {
	f.Add(mustEncode(f, func(ae *netlink.AttributeEncoder) {
		ae.Uint32(unix.NL80211_ATTR_WIPHY, 0)
		ae.Bytes(unix.NL80211_ATTR_EXT_FEATURES, []byte{0xff})
		ae.Nested(unix.NL80211_ATTR_WIPHY_BANDS, func(b *netlink.AttributeEncoder) error {
			b.Bytes(0, []byte{8, 0, 1, 0, 1, 0, 0, 0})
			return nil
		})
	}))
	f.Fuzz(func(t *testing.T, data []byte) {
		phys, err := parsePHYs([]genetlink.Message{{Data: data}})
		if err == nil && len(phys) > 1 {
			t.Fatalf("one message gave %d PHYs", len(phys))
		}
	})
}
