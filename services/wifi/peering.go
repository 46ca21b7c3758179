// Package wifi is Skyfleet's Wi-Fi service: it decides what the node's
// radio does (joins the operator's networks as a station, runs an access
// point for phones, or peers with the fleet's other kits in an IBSS) and
// keeps it doing so. The radio itself is driven through drivers/wifi.
package wifi

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"

	"github.com/skyfleet/skyfleet/drivers/wifi/nl80211"
)

// Peering is the IBSS in which a fleet's kits find each other without any
// infrastructure. Every kit derives the same one from the fleet's network
// psk, so kits started apart merge into one cell (same SSID, channel and
// BSSID) and the mesh, with LAN discovery, runs over it. It is an RSN IBSS
// keyed from the psk (see ibssrsn.go): a stranger in range gets no key, on
// top of the mesh's own encryption of every packet.
type Peering struct {
	// SSID is "skyfleet-" and 8 hex digits derived from the psk: the same
	// for the whole fleet, and telling nothing of the psk (HKDF is one-way).
	SSID string
	// Channel is 1, 6 or 11 (2.4 GHz, the non-overlapping channels every
	// regulatory domain allows), chosen by the psk so that fleets spread.
	Channel int
	// BSSID is the cell's fixed, locally administered unicast BSSID.
	BSSID net.HardwareAddr
	// PMK is the cell's pairwise master key (PeeringPMK); nil joins the
	// cell open, without link-layer keys.
	PMK []byte
}

// peeringInfo is the HKDF info string of the peering parameters.
const peeringInfo = "skyfleet wifi peering"

// PeeringFor derives the fleet's peering IBSS from its network psk (the
// bytes of fleet.toml's network.psk). It fails for an empty psk: without a
// fleet secret there is no fleet cell to join.
func PeeringFor(psk []byte) (Peering, error) {
	if len(psk) == 0 {
		return Peering{}, errors.New("wifi: peering needs the fleet's network psk")
	}
	b, err := hkdf.Key(sha256.New, psk, nil, peeringInfo, 16)
	if err != nil {
		return Peering{}, fmt.Errorf("wifi: %w", err)
	}
	bssid := net.HardwareAddr(append([]byte(nil), b[5:11]...))
	bssid[0] = bssid[0]&^0x01 | 0x02 // unicast, locally administered (IEEE 802 §8.2.2)
	pmk, err := PeeringPMK(psk)
	if err != nil {
		return Peering{}, err
	}
	return Peering{
		SSID:    "skyfleet-" + hex.EncodeToString(b[:4]),
		Channel: []int{1, 6, 11}[int(b[4])%3],
		BSSID:   bssid,
		PMK:     pmk,
	}, nil
}

// LinkLocal returns the IPv4 link-local address (RFC 3927, 169.254.1.0 to
// 169.254.254.255) a node takes on the peering cell, derived from its MAC
// as RFC 3927 §2.1 suggests so that it is the same at every start. Two
// kits picking the same one is a 1 in 65024 chance per pair.
func LinkLocal(mac net.HardwareAddr) *net.IPNet {
	h := sha256.Sum256(mac)
	n := (int(h[0])<<8 | int(h[1])) % (254 * 256)
	return &net.IPNet{IP: net.IPv4(169, 254, byte(1+n/256), byte(n%256)).To4(), Mask: net.CIDRMask(16, 32)}
}

// IBSSDriver is what joining the peering cell needs of the kernel;
// *nl80211.Conn has it.
type IBSSDriver interface {
	SetType(ifindex int, t nl80211.IfType) error
	JoinIBSS(ifindex int, p nl80211.IBSSParams) error
}

// JoinPeering puts ifi into the fleet's peering cell: IBSS mode, joined,
// with its link-local address, ready for the mesh's LAN discovery. It
// returns the address. With p.PMK the cell is an RSN IBSS and no member's
// data passes until the caller's handshakes with it (startCell) are done.
func JoinPeering(d IBSSDriver, ifi nl80211.Interface, p Peering) (*net.IPNet, error) {
	link, err := netlink.LinkByIndex(ifi.Index)
	if err != nil {
		return nil, fmt.Errorf("wifi: %s: %w", ifi.Name, err)
	}
	// The type changes only while the interface is down.
	if err := netlink.LinkSetDown(link); err != nil {
		return nil, fmt.Errorf("wifi: %s down: %w", ifi.Name, err)
	}
	if err := d.SetType(ifi.Index, nl80211.IfTypeAdHoc); err != nil {
		return nil, fmt.Errorf("wifi: %s to IBSS: %w", ifi.Name, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("wifi: %s up: %w", ifi.Name, err)
	}
	ip := nl80211.IBSSParams{SSID: []byte(p.SSID), Frequency: nl80211.ChannelFrequency(p.Channel), BSSID: p.BSSID}
	if p.PMK != nil {
		ip.Privacy, ip.IE = true, cellRSNE()
	}
	if err := d.JoinIBSS(ifi.Index, ip); err != nil {
		return nil, fmt.Errorf("wifi: joining the peering cell %s: %w", p.SSID, err)
	}
	addr := LinkLocal(ifi.MAC)
	if err := netlink.AddrReplace(link, &netlink.Addr{IPNet: addr}); err != nil {
		return nil, fmt.Errorf("wifi: address %s on %s: %w", addr, ifi.Name, err)
	}
	return addr, nil
}
