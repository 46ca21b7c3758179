package nl80211

import (
	"errors"
	"fmt"
	"net"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"github.com/mdlayher/wifi"
	"golang.org/x/sys/unix"
)

// ErrNoNL80211 is returned by Dial when the kernel has no nl80211 family:
// cfg80211 is neither built in nor loaded, so there is no Wi-Fi at all.
var ErrNoNL80211 = errors.New("nl80211: the kernel has no nl80211 family (cfg80211 not loaded)")

// Error is a request the kernel refused. Err is the errno (a unix.Errno,
// so errors.Is(err, unix.EBUSY) works); Cmd names the nl80211 command.
type Error struct {
	Cmd string // e.g. "CONNECT"
	Err error
}

// Error returns "nl80211 CONNECT: <errno text>".
func (e *Error) Error() string { return "nl80211 " + e.Cmd + ": " + e.Err.Error() }

// Unwrap returns the errno.
func (e *Error) Unwrap() error { return e.Err }

// Conn is a request socket to nl80211. Its methods may be called from
// several goroutines; each waits for the kernel's answer. A Conn belongs to
// the network namespace of the thread that dialled it and sees only that
// namespace's interfaces.
type Conn struct {
	c      *genetlink.Conn
	family genetlink.Family
	wifi   *wifi.Client
}

// Dial opens a Conn. It fails with ErrNoNL80211 when the kernel has no Wi-Fi
// support loaded.
func Dial() (*Conn, error) {
	c, err := genetlink.Dial(nil)
	if err != nil {
		return nil, fmt.Errorf("nl80211: generic netlink socket: %w", err)
	}
	fam, err := c.GetFamily(unix.NL80211_GENL_NAME)
	if err != nil {
		c.Close()
		if errors.Is(err, unix.ENOENT) {
			return nil, ErrNoNL80211
		}
		return nil, fmt.Errorf("nl80211: family lookup: %w", err)
	}
	w, err := wifi.New()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("nl80211: %w", err)
	}
	return &Conn{c: c, family: fam, wifi: w}, nil
}

// Close closes the sockets.
func (c *Conn) Close() error {
	return errors.Join(c.c.Close(), c.wifi.Close())
}

// execute sends one nl80211 command with the attributes build encodes and
// returns the replies (none for an acknowledged request).
func (c *Conn) execute(cmd uint8, flags netlink.HeaderFlags, build func(ae *netlink.AttributeEncoder)) ([]genetlink.Message, error) {
	data, err := encode(build)
	if err != nil {
		return nil, &Error{Cmd: cmdName(cmd), Err: err}
	}
	msgs, err := c.c.Execute(genetlink.Message{
		Header: genetlink.Header{Command: cmd, Version: c.family.Version},
		Data:   data,
	}, c.family.ID, netlink.Request|flags)
	if err != nil {
		return nil, &Error{Cmd: cmdName(cmd), Err: unwrapOpError(err)}
	}
	return msgs, nil
}

func encode(build func(ae *netlink.AttributeEncoder)) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	if build != nil {
		build(ae)
	}
	return ae.Encode()
}

// unwrapOpError returns the errno inside a netlink.OpError, so that callers
// see "device or resource busy" rather than the socket plumbing.
func unwrapOpError(err error) error {
	var op *netlink.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

// IfType is an interface type (enum nl80211_iftype).
type IfType uint32

// The interface types Skyfleet uses.
const (
	IfTypeStation   IfType = unix.NL80211_IFTYPE_STATION    // a client of an access point
	IfTypeAdHoc     IfType = unix.NL80211_IFTYPE_ADHOC      // an IBSS member
	IfTypeAP        IfType = unix.NL80211_IFTYPE_AP         // an access point
	IfTypeMonitor   IfType = unix.NL80211_IFTYPE_MONITOR    // sees raw frames
	IfTypeMeshPoint IfType = unix.NL80211_IFTYPE_MESH_POINT // an 802.11s mesh point
	IfTypeP2PDevice IfType = unix.NL80211_IFTYPE_P2P_DEVICE // Wi-Fi Direct management only, no netdev
)

// String returns the type as iw names it ("managed", "IBSS", "AP", ...).
func (t IfType) String() string {
	switch t {
	case IfTypeStation:
		return "managed"
	case IfTypeAdHoc:
		return "IBSS"
	case IfTypeAP:
		return "AP"
	case IfTypeMonitor:
		return "monitor"
	case IfTypeMeshPoint:
		return "mesh point"
	case IfTypeP2PDevice:
		return "P2P-device"
	}
	return fmt.Sprintf("iftype %d", uint32(t))
}

// Interface is one Wi-Fi network interface.
type Interface struct {
	Index     int              // kernel ifindex
	Name      string           // e.g. "wlan0"
	MAC       net.HardwareAddr // 6 bytes
	PHY       int              // the wiphy index (phyN)
	Type      IfType
	Frequency int // MHz of the current channel; 0 when not operating
}

// Interfaces lists the Wi-Fi network interfaces of this network namespace.
// A P2P device (which has no network interface and no ifindex) is left out.
func (c *Conn) Interfaces() ([]Interface, error) {
	ifs, err := c.wifi.Interfaces()
	if err != nil {
		return nil, &Error{Cmd: "GET_INTERFACE", Err: unwrapOpError(err)}
	}
	var out []Interface
	for _, i := range ifs {
		if i.Index == 0 {
			continue
		}
		out = append(out, Interface{
			Index: i.Index, Name: i.Name, MAC: i.HardwareAddr, PHY: i.PHY,
			Type: IfType(i.Type), Frequency: i.Frequency,
		})
	}
	return out, nil
}

// ErrNoInterface is returned by InterfaceByName when the namespace has no
// Wi-Fi interface of that name (no radio, or not yet probed).
var ErrNoInterface = errors.New("nl80211: no such Wi-Fi interface")

// InterfaceByName returns the Wi-Fi interface called name, or an error
// wrapping ErrNoInterface.
func (c *Conn) InterfaceByName(name string) (Interface, error) {
	ifs, err := c.Interfaces()
	if err != nil {
		return Interface{}, err
	}
	for _, i := range ifs {
		if i.Name == name {
			return i, nil
		}
	}
	return Interface{}, fmt.Errorf("%w: %s", ErrNoInterface, name)
}

// SetType changes an interface's type (NL80211_CMD_SET_INTERFACE). Most
// drivers need the interface down for this; the caller brings it down and up.
func (c *Conn) SetType(ifindex int, t IfType) error {
	_, err := c.execute(unix.NL80211_CMD_SET_INTERFACE, netlink.Acknowledge, func(ae *netlink.AttributeEncoder) {
		ae.Uint32(unix.NL80211_ATTR_IFINDEX, uint32(ifindex))
		ae.Uint32(unix.NL80211_ATTR_IFTYPE, uint32(t))
	})
	return err
}

// SetRegulatory asks the kernel to use country's regulatory rules
// (NL80211_CMD_REQ_SET_REG, a user hint). country is an ISO 3166-1 alpha-2
// code in upper case, or "00" for the world domain; the kernel applies it
// asynchronously from its regulatory database (regulatory.db).
func (c *Conn) SetRegulatory(country string) error {
	if len(country) != 2 {
		return fmt.Errorf("nl80211: regulatory domain %q is not a two-letter country code", country)
	}
	if err := c.wifi.SetRegulatoryRegion(country, wifi.RegulatoryHintUser); err != nil {
		return &Error{Cmd: "REQ_SET_REG", Err: unwrapOpError(err)}
	}
	return nil
}

// cmdName names the commands this package sends, for errors.
func cmdName(cmd uint8) string {
	switch cmd {
	case unix.NL80211_CMD_GET_WIPHY:
		return "GET_WIPHY"
	case unix.NL80211_CMD_SET_INTERFACE:
		return "SET_INTERFACE"
	case unix.NL80211_CMD_GET_SCAN:
		return "GET_SCAN"
	case unix.NL80211_CMD_TRIGGER_SCAN:
		return "TRIGGER_SCAN"
	case unix.NL80211_CMD_CONNECT:
		return "CONNECT"
	case unix.NL80211_CMD_DISCONNECT:
		return "DISCONNECT"
	case unix.NL80211_CMD_NEW_KEY:
		return "NEW_KEY"
	case unix.NL80211_CMD_SET_KEY:
		return "SET_KEY"
	case unix.NL80211_CMD_SET_STATION:
		return "SET_STATION"
	case unix.NL80211_CMD_NEW_STATION:
		return "NEW_STATION"
	case unix.NL80211_CMD_DEL_STATION:
		return "DEL_STATION"
	case unix.NL80211_CMD_GET_STATION:
		return "GET_STATION"
	case unix.NL80211_CMD_JOIN_IBSS:
		return "JOIN_IBSS"
	case unix.NL80211_CMD_LEAVE_IBSS:
		return "LEAVE_IBSS"
	case unix.NL80211_CMD_START_AP:
		return "START_AP"
	case unix.NL80211_CMD_STOP_AP:
		return "STOP_AP"
	case unix.NL80211_CMD_REGISTER_FRAME:
		return "REGISTER_FRAME"
	case unix.NL80211_CMD_FRAME:
		return "FRAME"
	}
	return fmt.Sprintf("command %d", cmd)
}
