package nl80211

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// RSN says how a network is protected with WPA2 (IEEE 802.11-2020 §12.6).
// A nil *RSN means an open network.
type RSN struct {
	// Pairwise and Group are the cipher suites, e.g. CipherCCMP.
	Pairwise, Group uint32
	// AKM is the authentication and key management suite, e.g. AKMPSK.
	AKM uint32
	// IE is the RSN element this side sends: in the association request
	// (station; it must equal the one in EAPOL-Key message 2) or nil for
	// an AP, whose element is in the beacon tail.
	IE []byte
	// PMK, when set, hands the 32-byte PMK to the firmware, which then runs
	// the 4-way handshake itself (PHY.OffloadSTA4Way / OffloadAP4Way). Nil
	// when Skyfleet's own supplicant or authenticator runs it.
	PMK []byte
}

func (r *RSN) encode(ae *netlink.AttributeEncoder) {
	ae.Flag(unix.NL80211_ATTR_PRIVACY, true)
	ae.Uint32(unix.NL80211_ATTR_WPA_VERSIONS, unix.NL80211_WPA_VERSION_2)
	ae.Bytes(unix.NL80211_ATTR_CIPHER_SUITES_PAIRWISE, u32s(r.Pairwise))
	ae.Uint32(unix.NL80211_ATTR_CIPHER_SUITE_GROUP, r.Group)
	ae.Bytes(unix.NL80211_ATTR_AKM_SUITES, u32s(r.AKM))
	// The data path stays closed to everything but EAPOL (802.1X control
	// port) until AuthorizeStation, after the 4-way handshake.
	ae.Flag(unix.NL80211_ATTR_CONTROL_PORT, true)
	if r.PMK != nil {
		ae.Bytes(unix.NL80211_ATTR_PMK, r.PMK)
	}
}

func u32s(v ...uint32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.NativeEndian.PutUint32(b[4*i:], x)
	}
	return b
}

// ConnectParams says which network a station joins.
type ConnectParams struct {
	SSID []byte // 1-32 bytes
	// BSSID and Frequency (MHz) pin one access point; zero values let the
	// kernel choose among those with the SSID.
	BSSID     net.HardwareAddr
	Frequency int
	RSN       *RSN // nil: an open network
}

// Connect starts joining a network (NL80211_CMD_CONNECT: authentication and
// association, done by the kernel or the firmware). It returns once the
// kernel accepts the request; the outcome comes as an EventConnect on an
// Events socket. For a WPA2 network without PMK offload the caller then runs
// the 4-way handshake over EAPOL, installs the keys with NewKey and opens
// the port with AuthorizeStation.
func (c *Conn) Connect(ifindex int, p ConnectParams) error {
	if len(p.SSID) == 0 || len(p.SSID) > 32 {
		return fmt.Errorf("nl80211: SSID of %d bytes (want 1-32)", len(p.SSID))
	}
	_, err := c.execute(unix.NL80211_CMD_CONNECT, netlink.Acknowledge, func(ae *netlink.AttributeEncoder) {
		ae.Uint32(unix.NL80211_ATTR_IFINDEX, uint32(ifindex))
		ae.Bytes(unix.NL80211_ATTR_SSID, p.SSID)
		if len(p.BSSID) == 6 {
			ae.Bytes(unix.NL80211_ATTR_MAC, p.BSSID)
		}
		if p.Frequency != 0 {
			ae.Uint32(unix.NL80211_ATTR_WIPHY_FREQ, uint32(p.Frequency))
		}
		ae.Uint32(unix.NL80211_ATTR_AUTH_TYPE, unix.NL80211_AUTHTYPE_OPEN_SYSTEM)
		if p.RSN != nil {
			p.RSN.encode(ae)
			if p.RSN.PMK != nil {
				ae.Flag(unix.NL80211_ATTR_WANT_1X_4WAY_HS, true)
			}
			if len(p.RSN.IE) > 0 {
				ae.Bytes(unix.NL80211_ATTR_IE, p.RSN.IE)
			}
		}
	})
	return err
}

// Disconnect leaves the network (NL80211_CMD_DISCONNECT) with a reason code
// (IEEE 802.11-2020 §9.4.1.7; 3 = the station is leaving).
func (c *Conn) Disconnect(ifindex int, reason uint16) error {
	_, err := c.execute(unix.NL80211_CMD_DISCONNECT, netlink.Acknowledge, func(ae *netlink.AttributeEncoder) {
		ae.Uint32(unix.NL80211_ATTR_IFINDEX, uint32(ifindex))
		ae.Uint16(unix.NL80211_ATTR_REASON_CODE, reason)
	})
	return err
}

// Key is a temporal key to install after a handshake.
type Key struct {
	// Index is the key ID: 0 for a pairwise key, 1-3 for group keys.
	Index  uint8
	Cipher uint32 // e.g. CipherCCMP
	Data   []byte // the TK or GTK: 16 bytes for CCMP-128
	// RSC is the receive sequence counter to start from, 6 bytes little
	// endian as EAPOL-Key carries it; nil for 0.
	RSC []byte
	// Pairwise marks the pairwise key of Peer; otherwise a group key
	// (Peer set only for an IBSS member's group key).
	Pairwise bool
	Peer     net.HardwareAddr
}

// ErrKeySize is returned by NewKey for a key whose length does not fit its cipher.
var ErrKeySize = errors.New("nl80211: key length does not match its cipher")

// NewKey installs a key (NL80211_CMD_NEW_KEY). Errors never contain key
// material.
func (c *Conn) NewKey(ifindex int, k Key) error {
	if (k.Cipher == CipherCCMP || k.Cipher == CipherGCMP) && len(k.Data) != 16 {
		return ErrKeySize
	}
	_, err := c.execute(unix.NL80211_CMD_NEW_KEY, netlink.Acknowledge, func(ae *netlink.AttributeEncoder) {
		ae.Uint32(unix.NL80211_ATTR_IFINDEX, uint32(ifindex))
		if len(k.Peer) == 6 {
			ae.Bytes(unix.NL80211_ATTR_MAC, k.Peer)
		}
		ae.Nested(unix.NL80211_ATTR_KEY, func(ke *netlink.AttributeEncoder) error {
			ke.Bytes(unix.NL80211_KEY_DATA, k.Data)
			ke.Uint8(unix.NL80211_KEY_IDX, k.Index)
			ke.Uint32(unix.NL80211_KEY_CIPHER, k.Cipher)
			if len(k.RSC) > 0 {
				ke.Bytes(unix.NL80211_KEY_SEQ, k.RSC)
			}
			if k.Pairwise {
				ke.Uint32(unix.NL80211_KEY_TYPE, unix.NL80211_KEYTYPE_PAIRWISE)
			} else {
				ke.Uint32(unix.NL80211_KEY_TYPE, unix.NL80211_KEYTYPE_GROUP)
			}
			return nil
		})
	})
	return err
}

// SetDefaultKey makes group key index the one used to send group-addressed
// frames (NL80211_CMD_SET_KEY with KEY_DEFAULT_TYPES multicast): an AP or
// IBSS member does this after NewKey of its GTK.
func (c *Conn) SetDefaultKey(ifindex int, index uint8) error {
	_, err := c.execute(unix.NL80211_CMD_SET_KEY, netlink.Acknowledge, func(ae *netlink.AttributeEncoder) {
		ae.Uint32(unix.NL80211_ATTR_IFINDEX, uint32(ifindex))
		ae.Nested(unix.NL80211_ATTR_KEY, func(ke *netlink.AttributeEncoder) error {
			ke.Uint8(unix.NL80211_KEY_IDX, index)
			ke.Flag(unix.NL80211_KEY_DEFAULT, true)
			ke.Nested(unix.NL80211_KEY_DEFAULT_TYPES, func(te *netlink.AttributeEncoder) error {
				te.Flag(unix.NL80211_KEY_DEFAULT_TYPE_MULTICAST, true)
				return nil
			})
			return nil
		})
	})
	return err
}

// staFlags encodes struct nl80211_sta_flag_update {mask, set}.
func staFlags(mask, set uint32) []byte { return u32s(mask, set) }

// AuthorizeStation opens the data path to peer once its keys are in
// (NL80211_CMD_SET_STATION, NL80211_STA_FLAG_AUTHORIZED): a station does it
// for its AP, an AP for each station.
func (c *Conn) AuthorizeStation(ifindex int, peer net.HardwareAddr) error {
	_, err := c.execute(unix.NL80211_CMD_SET_STATION, netlink.Acknowledge, func(ae *netlink.AttributeEncoder) {
		ae.Uint32(unix.NL80211_ATTR_IFINDEX, uint32(ifindex))
		ae.Bytes(unix.NL80211_ATTR_MAC, peer)
		f := uint32(1 << unix.NL80211_STA_FLAG_AUTHORIZED)
		ae.Bytes(unix.NL80211_ATTR_STA_FLAGS2, staFlags(f, f))
	})
	return err
}

// Station is what the kernel says of one peer (NL80211_CMD_GET_STATION).
type Station struct {
	MAC       net.HardwareAddr
	SignalDBm int    // last frame's signal in dBm; 0 when unknown
	RxBytes   uint64 // bytes received from the peer
	TxBytes   uint64 // bytes sent to it
	// Inactive is the time since the peer was last heard, in milliseconds.
	InactiveMS uint32
}

// Stations lists the peers of ifindex: the AP of a station, the members of
// an IBSS, the stations of an AP.
func (c *Conn) Stations(ifindex int) ([]Station, error) {
	msgs, err := c.execute(unix.NL80211_CMD_GET_STATION, netlink.Dump, func(ae *netlink.AttributeEncoder) {
		ae.Uint32(unix.NL80211_ATTR_IFINDEX, uint32(ifindex))
	})
	if err != nil {
		return nil, err
	}
	var out []Station
	for _, m := range msgs {
		s, err := parseStation(m.Data)
		if err != nil {
			return nil, err
		}
		if s.MAC != nil {
			out = append(out, s)
		}
	}
	return out, nil
}

// parseStation reads one GET_STATION message: NL80211_ATTR_MAC and the
// nested NL80211_ATTR_STA_INFO.
func parseStation(data []byte) (Station, error) {
	var s Station
	ad, err := netlink.NewAttributeDecoder(data)
	if err != nil {
		return s, fmt.Errorf("nl80211: station: %w", err)
	}
	for ad.Next() {
		switch ad.Type() {
		case unix.NL80211_ATTR_MAC:
			if b := ad.Bytes(); len(b) == 6 {
				s.MAC = append(net.HardwareAddr(nil), b...)
			}
		case unix.NL80211_ATTR_STA_INFO:
			ad.Nested(func(nd *netlink.AttributeDecoder) error {
				for nd.Next() {
					b := nd.Bytes()
					switch nd.Type() {
					case unix.NL80211_STA_INFO_SIGNAL:
						if len(b) == 1 {
							s.SignalDBm = int(int8(b[0]))
						}
					case unix.NL80211_STA_INFO_RX_BYTES64:
						if len(b) == 8 {
							s.RxBytes = binary.NativeEndian.Uint64(b)
						}
					case unix.NL80211_STA_INFO_TX_BYTES64:
						if len(b) == 8 {
							s.TxBytes = binary.NativeEndian.Uint64(b)
						}
					case unix.NL80211_STA_INFO_INACTIVE_TIME:
						if len(b) == 4 {
							s.InactiveMS = binary.NativeEndian.Uint32(b)
						}
					}
				}
				return nil
			})
		}
	}
	if err := ad.Err(); err != nil {
		return Station{}, fmt.Errorf("nl80211: station: %w", err)
	}
	return s, nil
}

// IBSSParams says which IBSS (ad-hoc network) to join or create.
type IBSSParams struct {
	SSID      []byte // 1-32 bytes
	Frequency int    // MHz; the channel to create it on if none is found
	// BSSID fixes the cell's BSSID, so that nodes started apart merge into
	// one cell instead of forming several with the same SSID; nil lets the
	// kernel pick.
	BSSID net.HardwareAddr
	// BeaconInterval in TU; 0 for the kernel's default (100).
	BeaconInterval uint16
	// Privacy makes an RSN IBSS (IEEE 802.11-2020 §12.6.11): beacons carry
	// the Privacy bit and IE (the RSN element), and each peer's data path
	// stays closed to all but EAPOL until AuthorizeStation, after the
	// caller's 4-way handshakes with it. Basic rates are left to the kernel.
	Privacy bool
	IE      []byte
}

// JoinIBSS joins, or creates, an IBSS (NL80211_CMD_JOIN_IBSS). The interface
// must be of type IfTypeAdHoc and up. Without Privacy, frames in it are not
// encrypted at the link layer.
func (c *Conn) JoinIBSS(ifindex int, p IBSSParams) error {
	if len(p.SSID) == 0 || len(p.SSID) > 32 {
		return fmt.Errorf("nl80211: SSID of %d bytes (want 1-32)", len(p.SSID))
	}
	_, err := c.execute(unix.NL80211_CMD_JOIN_IBSS, netlink.Acknowledge, func(ae *netlink.AttributeEncoder) {
		ae.Uint32(unix.NL80211_ATTR_IFINDEX, uint32(ifindex))
		ae.Bytes(unix.NL80211_ATTR_SSID, p.SSID)
		ae.Uint32(unix.NL80211_ATTR_WIPHY_FREQ, uint32(p.Frequency))
		if len(p.BSSID) == 6 {
			ae.Bytes(unix.NL80211_ATTR_MAC, p.BSSID)
			ae.Flag(unix.NL80211_ATTR_FREQ_FIXED, true)
		}
		if p.BeaconInterval != 0 {
			ae.Uint32(unix.NL80211_ATTR_BEACON_INTERVAL, uint32(p.BeaconInterval))
		}
		if p.Privacy {
			ae.Flag(unix.NL80211_ATTR_PRIVACY, true)
			ae.Flag(unix.NL80211_ATTR_CONTROL_PORT, true)
		}
		if len(p.IE) > 0 {
			ae.Bytes(unix.NL80211_ATTR_IE, p.IE)
		}
	})
	return err
}

// LeaveIBSS leaves the IBSS (NL80211_CMD_LEAVE_IBSS).
func (c *Conn) LeaveIBSS(ifindex int) error {
	_, err := c.execute(unix.NL80211_CMD_LEAVE_IBSS, netlink.Acknowledge, func(ae *netlink.AttributeEncoder) {
		ae.Uint32(unix.NL80211_ATTR_IFINDEX, uint32(ifindex))
	})
	return err
}

// APParams describes an access point to start.
type APParams struct {
	// Head and Tail are the beacon around the TIM, as the kernel wants them
	// (NL80211_ATTR_BEACON_HEAD/TAIL; drivers/wifi/mgmt builds them).
	Head, Tail []byte
	SSID       []byte // 1-32 bytes, also inside Head
	// Frequency in MHz of the 20 MHz channel (no HT).
	Frequency int
	// BeaconInterval in TU (100 is usual); DTIMPeriod in beacons (2 is usual).
	BeaconInterval uint16
	DTIMPeriod     uint8
	RSN            *RSN // nil: an open AP
}

// StartAP starts beaconing as an access point (NL80211_CMD_START_AP). The
// interface must be of type IfTypeAP and up. Unless the PHY has APSME,
// stations get no answer to their probe, authentication and association
// requests until a Frames socket registered on the interface answers them.
func (c *Conn) StartAP(ifindex int, p APParams) error {
	if len(p.SSID) == 0 || len(p.SSID) > 32 {
		return fmt.Errorf("nl80211: SSID of %d bytes (want 1-32)", len(p.SSID))
	}
	_, err := c.execute(unix.NL80211_CMD_START_AP, netlink.Acknowledge, func(ae *netlink.AttributeEncoder) {
		ae.Uint32(unix.NL80211_ATTR_IFINDEX, uint32(ifindex))
		ae.Bytes(unix.NL80211_ATTR_BEACON_HEAD, p.Head)
		ae.Bytes(unix.NL80211_ATTR_BEACON_TAIL, p.Tail)
		ae.Uint32(unix.NL80211_ATTR_BEACON_INTERVAL, uint32(p.BeaconInterval))
		ae.Uint32(unix.NL80211_ATTR_DTIM_PERIOD, uint32(p.DTIMPeriod))
		ae.Bytes(unix.NL80211_ATTR_SSID, p.SSID)
		ae.Uint32(unix.NL80211_ATTR_HIDDEN_SSID, unix.NL80211_HIDDEN_SSID_NOT_IN_USE)
		ae.Uint32(unix.NL80211_ATTR_WIPHY_FREQ, uint32(p.Frequency))
		ae.Uint32(unix.NL80211_ATTR_CHANNEL_WIDTH, unix.NL80211_CHAN_WIDTH_20_NOHT)
		ae.Uint32(unix.NL80211_ATTR_AUTH_TYPE, unix.NL80211_AUTHTYPE_OPEN_SYSTEM)
		if p.RSN != nil {
			p.RSN.encode(ae)
		}
	})
	return err
}

// StopAP stops the access point (NL80211_CMD_STOP_AP); its stations are dropped.
func (c *Conn) StopAP(ifindex int) error {
	_, err := c.execute(unix.NL80211_CMD_STOP_AP, netlink.Acknowledge, func(ae *netlink.AttributeEncoder) {
		ae.Uint32(unix.NL80211_ATTR_IFINDEX, uint32(ifindex))
	})
	return err
}

// StationParams describes a station an AP has just associated.
type StationParams struct {
	MAC net.HardwareAddr
	// AID is the association ID given in the association response, 1-2007.
	AID uint16
	// ListenInterval (in beacon intervals) and Capability are from its
	// association request; Rates are its supported rates in 500 kb/s
	// units, basic-rate bit cleared.
	ListenInterval uint16
	Capability     uint16
	Rates          []byte
}

// NewStation adds an associated station to an AP (NL80211_CMD_NEW_STATION),
// authenticated and associated but not authorized: only EAPOL passes until
// AuthorizeStation (for an open AP, call it right after).
func (c *Conn) NewStation(ifindex int, p StationParams) error {
	if len(p.MAC) != 6 || p.AID == 0 || p.AID > 2007 || len(p.Rates) == 0 {
		return fmt.Errorf("nl80211: new station needs a MAC, an AID of 1-2007 and its rates")
	}
	_, err := c.execute(unix.NL80211_CMD_NEW_STATION, netlink.Acknowledge, func(ae *netlink.AttributeEncoder) {
		ae.Uint32(unix.NL80211_ATTR_IFINDEX, uint32(ifindex))
		ae.Bytes(unix.NL80211_ATTR_MAC, p.MAC)
		ae.Uint16(unix.NL80211_ATTR_STA_AID, p.AID)
		ae.Uint16(unix.NL80211_ATTR_STA_LISTEN_INTERVAL, p.ListenInterval)
		ae.Uint16(unix.NL80211_ATTR_STA_CAPABILITY, p.Capability)
		ae.Bytes(unix.NL80211_ATTR_STA_SUPPORTED_RATES, p.Rates)
		mask := uint32(1<<unix.NL80211_STA_FLAG_AUTHORIZED | 1<<unix.NL80211_STA_FLAG_AUTHENTICATED |
			1<<unix.NL80211_STA_FLAG_ASSOCIATED | 1<<unix.NL80211_STA_FLAG_SHORT_PREAMBLE)
		set := uint32(1<<unix.NL80211_STA_FLAG_AUTHENTICATED | 1<<unix.NL80211_STA_FLAG_ASSOCIATED)
		if p.Capability&(1<<5) != 0 { // short preamble (IEEE 802.11-2020 §9.4.1.4)
			set |= 1 << unix.NL80211_STA_FLAG_SHORT_PREAMBLE
		}
		ae.Bytes(unix.NL80211_ATTR_STA_FLAGS2, staFlags(mask, set))
	})
	return err
}

// DelStation removes a station from an AP (NL80211_CMD_DEL_STATION), which
// also drops its keys. The caller sends the deauthentication frame first.
func (c *Conn) DelStation(ifindex int, mac net.HardwareAddr) error {
	_, err := c.execute(unix.NL80211_CMD_DEL_STATION, netlink.Acknowledge, func(ae *netlink.AttributeEncoder) {
		ae.Uint32(unix.NL80211_ATTR_IFINDEX, uint32(ifindex))
		ae.Bytes(unix.NL80211_ATTR_MAC, mac)
	})
	return err
}
