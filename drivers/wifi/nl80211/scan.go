package nl80211

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"time"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"github.com/mdlayher/wifi"
	"golang.org/x/sys/unix"
)

// BSSStatus is our relation to a BSS in a scan result (enum nl80211_bss_status).
type BSSStatus int

// The BSS statuses. BSSNone means we are not part of it.
const (
	BSSNone          BSSStatus = -1
	BSSAuthenticated BSSStatus = unix.NL80211_BSS_STATUS_AUTHENTICATED
	BSSAssociated    BSSStatus = unix.NL80211_BSS_STATUS_ASSOCIATED
	BSSIBSSJoined    BSSStatus = unix.NL80211_BSS_STATUS_IBSS_JOINED
)

// BSS is one scan result: an access point or an IBSS heard by the radio.
type BSS struct {
	BSSID     net.HardwareAddr // 6 bytes
	Frequency int              // MHz
	// Capability is the capability information field of its last beacon or
	// probe response (IEEE 802.11-2020 §9.4.1.4): bit 0 ESS, bit 1 IBSS,
	// bit 4 Privacy.
	Capability uint16
	// BeaconInterval in TU (1024 µs).
	BeaconInterval uint16
	// SignalMBm is the received signal in mBm (100 × dBm); 0 when the
	// driver reports none.
	SignalMBm int32
	// Age is how long ago the radio last heard it.
	Age    time.Duration
	Status BSSStatus
	// IEs are its information elements, unparsed (drivers/wifi/ie parses
	// them): from a probe response if one was heard, else the beacon.
	IEs []byte
}

// Capability bits of a BSS (IEEE 802.11-2020 §9.4.1.4).
const (
	CapESS     uint16 = 1 << 0
	CapIBSS    uint16 = 1 << 1
	CapPrivacy uint16 = 1 << 4
)

// Scan asks the radio behind ifindex to scan every channel for every SSID
// and returns what it heard once the kernel reports the scan done. ctx
// bounds the wait (a full 2.4+5 GHz scan takes 2-4 s on real radios). The
// kernel refuses a scan while another runs (unix.EBUSY, wrapped in *Error).
func (c *Conn) Scan(ctx context.Context, ifindex int) ([]BSS, error) {
	if err := c.wifi.Scan(ctx, &wifi.Interface{Index: ifindex}); err != nil {
		return nil, &Error{Cmd: "TRIGGER_SCAN", Err: unwrapOpError(err)}
	}
	return c.ScanResults(ifindex)
}

// ScanResults returns the kernel's current scan results for ifindex (NL80211_CMD_GET_SCAN).
func (c *Conn) ScanResults(ifindex int) ([]BSS, error) {
	msgs, err := c.execute(unix.NL80211_CMD_GET_SCAN, netlink.Dump, func(ae *netlink.AttributeEncoder) {
		ae.Uint32(unix.NL80211_ATTR_IFINDEX, uint32(ifindex))
	})
	if err != nil {
		return nil, err
	}
	return parseScan(msgs)
}

// parseScan reads a GET_SCAN dump: each message holds one NL80211_ATTR_BSS.
// Messages without a BSS are skipped; a malformed one is an error.
func parseScan(msgs []genetlink.Message) ([]BSS, error) {
	var out []BSS
	for _, m := range msgs {
		attrs, err := netlink.UnmarshalAttributes(m.Data)
		if err != nil {
			return nil, fmt.Errorf("nl80211: scan result: %w", err)
		}
		for _, a := range attrs {
			if a.Type&^netlink.Nested != unix.NL80211_ATTR_BSS {
				continue
			}
			b, err := parseBSS(a.Data)
			if err != nil {
				return nil, err
			}
			if b.BSSID != nil {
				out = append(out, b)
			}
		}
	}
	return out, nil
}

// parseBSS reads the NL80211_BSS_* attributes of one scan result; fields of
// the wrong size are an error rather than a guess.
func parseBSS(data []byte) (BSS, error) {
	b := BSS{Status: BSSNone}
	attrs, err := netlink.UnmarshalAttributes(data)
	if err != nil {
		return BSS{}, fmt.Errorf("nl80211: scan result BSS: %w", err)
	}
	var beaconIEs []byte
	for _, a := range attrs {
		d := a.Data
		want := 0
		switch a.Type {
		case unix.NL80211_BSS_BSSID:
			want = 6
			if len(d) == 6 {
				b.BSSID = append(net.HardwareAddr(nil), d...)
			}
		case unix.NL80211_BSS_FREQUENCY:
			want = 4
			if len(d) == 4 {
				b.Frequency = int(binary.NativeEndian.Uint32(d))
			}
		case unix.NL80211_BSS_CAPABILITY:
			want = 2
			if len(d) == 2 {
				b.Capability = binary.NativeEndian.Uint16(d)
			}
		case unix.NL80211_BSS_BEACON_INTERVAL:
			want = 2
			if len(d) == 2 {
				b.BeaconInterval = binary.NativeEndian.Uint16(d)
			}
		case unix.NL80211_BSS_SIGNAL_MBM:
			want = 4
			if len(d) == 4 {
				b.SignalMBm = int32(binary.NativeEndian.Uint32(d))
			}
		case unix.NL80211_BSS_SEEN_MS_AGO:
			want = 4
			if len(d) == 4 {
				b.Age = time.Duration(binary.NativeEndian.Uint32(d)) * time.Millisecond
			}
		case unix.NL80211_BSS_STATUS:
			want = 4
			if len(d) == 4 {
				b.Status = BSSStatus(binary.NativeEndian.Uint32(d))
			}
		case unix.NL80211_BSS_INFORMATION_ELEMENTS:
			b.IEs = append([]byte(nil), d...)
		case unix.NL80211_BSS_BEACON_IES:
			beaconIEs = append([]byte(nil), d...)
		}
		if want != 0 && len(d) != want {
			return BSS{}, fmt.Errorf("nl80211: scan result attribute %d has %d bytes, want %d", a.Type, len(d), want)
		}
	}
	if b.IEs == nil {
		b.IEs = beaconIEs
	}
	return b, nil
}
