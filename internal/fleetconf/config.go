// Package fleetconf reads fleet.toml, the node configuration that PID 1
// reads from the boot partition on a device and `skyfleet node` reads on a
// host.
//
// The keys are specified in docs/fleet-toml.md §Contract; those keys are a
// contract and are never renamed. This package adds [network] interfaces,
// address, gateway and dns, [wifi] and [system] for PID 1.
//
// Reading never fails: Parse and Load always return a usable Config, built
// from the defaults plus every valid value in the file, together with a list
// of Problems (syntax errors, unknown keys, invalid values) for the status
// API's config_errors, so that a node always boots and can say what is wrong.
//
// A bad file fails closed. A file that cannot be read at all (unreadable,
// larger than MaxFileSize, a TOML syntax error) gives the defaults, and a
// security-relevant key that is invalid keeps its default; where that
// default could be more open than what the operator wrote, the Problem is
// Fatal, and FailClosed tells the caller to refuse every mesh link until
// the file is fixed (schema in parse.go lists those keys and why). A missing
// file or a missing network.psk is not Fatal: that is how a node is tried
// out.
//
// No Problem ever holds any part of a secret value (network.psk, wifi.psk),
// whatever is wrong with the line: see secret.go.
package fleetconf

import (
	"encoding/hex"
	"fmt"
	"time"
)

// Config is the whole of fleet.toml. Field comments give each key's form and
// default; Parse guarantees every field it returns is valid in that form.
type Config struct {
	Node    Node    `toml:"node" json:"node"`       // [node]
	Network Network `toml:"network" json:"network"` // [network]
	Master  Master  `toml:"master" json:"master"`   // [master]
	Release Release `toml:"release" json:"release"` // [release]
	Radio   Radio   `toml:"radio" json:"radio"`     // [radio]
	Wifi    Wifi    `toml:"wifi" json:"wifi"`       // [wifi]
	Display Display `toml:"display" json:"display"` // [display]
	System  System  `toml:"system" json:"system"`   // [system]
	// Messaging is [messaging]: who may use the phone messaging page.
	Messaging Messaging `toml:"messaging" json:"messaging"`
	Time      Time      `toml:"time" json:"time"` // [time]
	// Wallet is [wallet]: the hardware wallet service.
	Wallet Wallet `toml:"wallet" json:"wallet"`
}

// Node is the [node] table.
type Node struct {
	// Name is an optional label shown on screens and in status: at most 64
	// characters, no control characters. Default "".
	Name string `toml:"name" json:"name"`
	// Listen lists transports to listen on as scheme://host:port with scheme
	// udp or tcp; the host may be empty or 0.0.0.0 for all addresses. Radio
	// channels are kiss+tcp://host:port, kiss+serial:///dev/NAME and
	// afsk+fifo:///path?out=/path, with options (radio.go).
	// Default ["udp://0.0.0.0:5505"] on both device and host.
	Listen []string `toml:"listen" json:"listen"`
	// Status is the host:port of the status/API server. Default
	// "0.0.0.0:80" on a device, "127.0.0.1:8080" on a host.
	Status string `toml:"status" json:"status"`
	// Data is the directory for keys and databases. Default "/perm" on a
	// device (where it must be absolute), "." on a host.
	Data string `toml:"data" json:"data"`
}

// Network is the [network] table: mesh settings, and for PID 1 the IP setup.
type Network struct {
	// PSK is the pre-shared network key, 64 hex characters (32 bytes); ""
	// means none is configured. Default "". See PSKBytes.
	PSK string `toml:"psk" json:"psk"`
	// Peers are neighbours to link to, each "udp://host:port#pubkeyhex"
	// (see ParsePeer). Default none.
	Peers []string `toml:"peers" json:"peers"`
	// Relays are public nodes to keep an outbound link to, in the same form
	// as Peers. Default none.
	Relays []string `toml:"relays" json:"relays"`
	// LANDiscovery enables finding neighbours on the local network.
	// Default true on both device and host.
	LANDiscovery bool `toml:"lan_discovery" json:"lan_discovery"`
	// KnownPeersOnly refuses mesh links from any node whose key is not in Peers or
	// Relays, even when it holds the network key. Default false.
	KnownPeersOnly bool `toml:"known_peers_only" json:"known_peers_only"`
	// Roles are properties this node announces to the mesh so that others can
	// find the nearest one, e.g. "gateway" (reaches the Internet) or "relay":
	// each 1-32 characters of a-z, 0-9, '_' and '-'. Default none.
	Roles []string `toml:"roles" json:"roles"`
	// Interfaces are the network interfaces PID 1 brings up, in order.
	// Linux interface names (1-15 bytes, no '/', ':' or white space).
	// Default ["eth0", "usb0", "wlan0"].
	Interfaces []string `toml:"interfaces" json:"interfaces"`
	// Address is a static IPv4 address with prefix length, such as
	// "192.0.2.5/24"; "" means DHCP. Default "".
	Address string `toml:"address" json:"address"`
	// Gateway is the IPv4 default gateway for a static Address; it must lie
	// inside Address's subnet and is only allowed with Address. Default "".
	Gateway string `toml:"gateway" json:"gateway"`
	// DNS lists name server IP addresses (IPv4 or IPv6). Default none.
	DNS []string `toml:"dns" json:"dns"`
	// LinkTimeout is how long an IP link (UDP or TCP; radio links keep their
	// own) may stay silent before it is declared dead and routes move off
	// it: a Go duration from 1s to 1m. Links are pinged six times in that
	// time. Default "1.5s": fast failover between nodes each on its own
	// CPU; a slower value keeps links up through a busy host's stalls (a
	// master serving hundreds of nodes beside other work).
	LinkTimeout string `toml:"link_timeout" json:"link_timeout"`
}

// DefaultLinkTimeout is [network] link_timeout's default.
const DefaultLinkTimeout = 1500 * time.Millisecond

// Timeout returns LinkTimeout as a duration (DefaultLinkTimeout when unset or
// invalid; Load already reported an invalid one).
func (n Network) Timeout() time.Duration {
	if d, err := time.ParseDuration(n.LinkTimeout); err == nil && d >= time.Second && d <= time.Minute {
		return d
	}
	return DefaultLinkTimeout
}

// Master is the [master] table: the fleet master the node reports to.
type Master struct {
	// PublicKey is the master's compressed secp256k1 public key, 66 hex
	// characters; "" means no master. Default "".
	PublicKey string `toml:"public_key" json:"public_key"`
	// Addresses are optional hints to reach the master, each
	// scheme://host:port (udp or tcp). Default none.
	Addresses []string `toml:"addresses" json:"addresses"`
	// ReportInterval is how often a node reports when nothing changed, a Go
	// duration from 5s to 1h; the master marks a node offline when a report is
	// 20 s overdue. Default "60s".
	ReportInterval string `toml:"report_interval" json:"report_interval"`
}

// Interval returns ReportInterval as a duration (60 s when unset or invalid; Load
// already reported an invalid one).
func (m Master) Interval() time.Duration {
	if d, err := time.ParseDuration(m.ReportInterval); err == nil && d >= 5*time.Second && d <= time.Hour {
		return d
	}
	return time.Minute
}

// Release is the [release] table.
type Release struct {
	// Keys are the accepted update-signing keys, each a compressed
	// secp256k1 public key as 66 hex characters. Default none.
	Keys []string `toml:"keys" json:"keys"`
}

// Radio is the [radio] table.
type Radio struct {
	// Callsign is the operator's amateur-radio callsign with optional SSID,
	// such as "N0CALL-7": 1-6 letters and digits with at least one of each,
	// then optionally "-0" to "-15"; stored in upper case. Required before
	// any transmission on amateur links. Default "".
	Callsign string `toml:"callsign" json:"callsign"`
}

// Wifi is the [wifi] table: what the node's Wi-Fi radio (wlan0) does.
type Wifi struct {
	// Mode is "station" (join the networks below), "ap" (an access point
	// for phones), "peer" (the fleet's peering IBSS, where kits find each
	// other without infrastructure) or "off". Default: "station" when ssid
	// is set, else "peer".
	Mode string `toml:"mode" json:"mode"`
	// Country is the regulatory domain, an ISO 3166-1 alpha-2 code in upper
	// case ("DE", "US"); "" keeps the kernel's world domain "00", whose
	// rules every country allows. Default "".
	Country string `toml:"country" json:"country"`
	// SSID is the first network to join, at most 32 bytes; "" means none.
	// Default "".
	SSID string `toml:"ssid" json:"ssid"`
	// PSK is the WPA2 passphrase (8-63 printable ASCII characters) or the
	// raw key as 64 hex characters; "" means an open network. Default "".
	PSK string `toml:"psk" json:"psk"`
	// SSID2/PSK2 and SSID3/PSK3 are the second and third choices, joined
	// when the ones before are out of reach or refuse the key. Default "".
	SSID2 string `toml:"ssid_2" json:"ssid_2"`
	PSK2  string `toml:"psk_2" json:"psk_2"`
	SSID3 string `toml:"ssid_3" json:"ssid_3"`
	PSK3  string `toml:"psk_3" json:"psk_3"`
	// APSSID is the access point's network name in mode "ap"; "" makes
	// it "skyfleet-" and the node's name. Default "".
	APSSID string `toml:"ap_ssid" json:"ap_ssid"`
	// APPSK is the access point's WPA2 passphrase (8-63 printable ASCII
	// characters); "" without ap_open leaves the AP off. Default "".
	APPSK string `toml:"ap_psk" json:"ap_psk"`
	// APOpen runs the access point without a key, for a public emergency
	// kit. Ignored when ap_psk is set. Default false.
	APOpen bool `toml:"ap_open" json:"ap_open"`
}

// Display is the [display] table: the touchscreen the ui service drives.
// Every value is a string, as everywhere in fleet.toml.
type Display struct {
	// Screen is the panel: "auto" (the kernel's framebuffer /dev/fb0 when
	// there is one, else the DRM card /dev/dri/card0 when there is one, else
	// none), "fbdev" (/dev/fb0, required), "drm" (/dev/dri/card0's first
	// connected output, through a dumb buffer: drivers/display/drm), an SPI
	// panel driven from user space ("ili9341", "st7789", "st7789-240",
	// "ili9486", "ili9486-waveshare": drivers/display/spipanel) or "none".
	// Default "auto".
	Screen string `toml:"screen" json:"screen"`
	// Rotation turns the picture clockwise: "0", "90", "180" or "270".
	// Default "0".
	Rotation string `toml:"rotation" json:"rotation"`
	// Touch is the touch input: "auto" (the first evdev touch device, a
	// touchscreen before a tablet), "evdev", "xpt2046" (the SPI hats'
	// resistive controller) or "none". Default "auto".
	Touch string `toml:"touch" json:"touch"`
	// TouchCalibration is six numbers "a b c d e f", libinput's
	// calibration matrix on the normalised raw position (drivers/touch
	// Calibration); "" for none. Default "".
	TouchCalibration string `toml:"touch_calibration" json:"touch_calibration"`
	// Diagonal is the panel's diagonal in inches, e.g. "3.5", for the
	// sizes of text and targets; "" guesses from the resolution. Default "".
	Diagonal string `toml:"diagonal" json:"diagonal"`
	// DimAfter is how long the screen stays lit untouched, a Go duration
	// ("2m"); "0s" never dims. Default "2m0s".
	DimAfter string `toml:"dim_after" json:"dim_after"`
}

// WifiNetwork is one network to join, from [wifi] ssid/psk, ssid_2/psk_2
// and ssid_3/psk_3.
type WifiNetwork struct {
	SSID string
	PSK  string // "" for an open network
}

// Networks returns the [wifi] networks in the order the node tries them,
// those with an empty SSID left out.
func (w Wifi) Networks() []WifiNetwork {
	var out []WifiNetwork
	for _, n := range []WifiNetwork{{w.SSID, w.PSK}, {w.SSID2, w.PSK2}, {w.SSID3, w.PSK3}} {
		if n.SSID != "" {
			out = append(out, n)
		}
	}
	return out
}

// EffectiveMode is Mode, or its default when Mode is "".
func (w Wifi) EffectiveMode() string {
	switch {
	case w.Mode != "":
		return w.Mode
	case len(w.Networks()) > 0:
		return "station"
	}
	return "peer"
}

// System is the [system] table.
type System struct {
	// Hostname is the host name PID 1 sets: at most 64 characters of
	// dot-separated labels of letters, digits and '-' (RFC 1123); "" lets
	// PID 1 choose. Default "".
	Hostname string `toml:"hostname" json:"hostname"`
	// Watchdog enables the hardware watchdog. Default true.
	Watchdog bool `toml:"watchdog" json:"watchdog"`
}

// Messaging is the [messaging] table: who may use the messaging page that
// phones on the node's network open at /msg/ (internal/apiauth's messaging
// class). With neither key set, only the fleet master's signature and the
// node's API token admit the messaging API.
type Messaging struct {
	// Passphrase is the secret a phone types on the page to get a session:
	// at least 8 characters, at most 256 bytes, no control characters; ""
	// means none. An invalid one leaves messaging closed. Default "".
	Passphrase string `toml:"passphrase" json:"passphrase"`
	// Open lets anyone who reaches the node's API use messaging (never the
	// control paths): a public emergency kit. Ignored when a passphrase is
	// set or given but invalid. Default false.
	Open bool `toml:"open" json:"open"`
}

// Wallet is the [wallet] table: the hardware wallet service
// (services/wallet), its own process under its own uid. Its seed lives in
// /perm/wallet, not here: nothing in this file is secret to the wallet.
type Wallet struct {
	// Enabled runs the wallet service. A node with a wallet (enabled, or
	// with a seed in /perm/wallet) also starts no console shell and runs
	// its other services without the capabilities that get past file
	// permissions. Default false.
	Enabled bool `toml:"enabled" json:"enabled"`
	// MaxPINTries is how many wrong PINs in a row erase the seed, "3" to
	// "30". Default "10".
	MaxPINTries string `toml:"max_pin_tries" json:"max_pin_tries"`
	// UnlockFor is how long the keys stay open unused after the PIN, a Go
	// duration from "30s" to "1h". Default "5m0s".
	UnlockFor string `toml:"unlock_for" json:"unlock_for"`
	// Timeout is how long a request waits on the screen for the person,
	// from "30s" to "10m". Default "2m0s".
	Timeout string `toml:"timeout" json:"timeout"`
}

// Time is the [time] table: where a node without a real-time clock gets the
// date (package walltime). The signed announcements of peers and of the
// master give it too, so NTP is optional.
type Time struct {
	// Servers are the NTP servers to ask, each "host" or "host:port" (port
	// 123 when left out): host an IP address (IPv6 in brackets when a port
	// follows) or a DNS name; stored with the host in canonical form.
	// Default none, meaning no NTP: a Pi often has no Internet, and a public
	// pool should not be asked without the operator saying so.
	Servers []string `toml:"servers" json:"servers"`
}

// Default values shared by device and host.
const (
	// DefaultListen is the default transport to listen on.
	DefaultListen = "udp://0.0.0.0:5505"
	// DeviceStatus is the default status address on a device.
	DeviceStatus = "0.0.0.0:80"
	// HostStatus is the default status address on a host.
	HostStatus = "127.0.0.1:8080"
	// DeviceData is the default data directory on a device.
	DeviceData = "/perm"
	// HostData is the default data directory on a host (the working
	// directory).
	HostData = "."
)

// Defaults returns the configuration used when fleet.toml is missing or
// says nothing: device selects the Raspberry Pi defaults (PID 1), otherwise
// those of `skyfleet node` on a host. Each call returns fresh slices.
func Defaults(device bool) Config {
	c := Config{
		Node: Node{
			Listen: []string{DefaultListen},
			Status: HostStatus,
			Data:   HostData,
		},
		Network: Network{
			LANDiscovery: true,
			Interfaces:   []string{"eth0", "usb0", "wlan0"},
			LinkTimeout:  "1.5s",
		},
		Master:  Master{ReportInterval: "1m0s"},
		Display: Display{Screen: "auto", Rotation: "0", Touch: "auto", DimAfter: "2m0s"},
		System:  System{Watchdog: true},
		Wallet:  Wallet{MaxPINTries: "10", UnlockFor: "5m0s", Timeout: "2m0s"},
	}
	if device {
		c.Node.Status = DeviceStatus
		c.Node.Data = DeviceData
	}
	return c
}

// PSKBytes returns the 32-byte pre-shared key, or nil if none is set. It
// returns an error only for a PSK that is not 64 hex characters, which a
// Config from Parse never holds.
func (n Network) PSKBytes() ([]byte, error) {
	if n.PSK == "" {
		return nil, nil
	}
	if err := checkPSK(n.PSK); err != nil {
		return nil, fmt.Errorf("network.psk: %v", err)
	}
	return hex.DecodeString(n.PSK)
}

// PeerList parses Peers with ParsePeer. A Config from Parse holds only valid
// peers; for others the first invalid entry is returned as an error.
func (n Network) PeerList() ([]Peer, error) { return parsePeers("network.peers", n.Peers) }

// RelayList parses Relays with ParsePeer, like PeerList.
func (n Network) RelayList() ([]Peer, error) { return parsePeers("network.relays", n.Relays) }

func parsePeers(key string, ss []string) ([]Peer, error) {
	out := make([]Peer, 0, len(ss))
	for i, s := range ss {
		p, err := ParsePeer(s)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", key, i, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// Redacted returns a copy of c with the secrets (network.psk, wifi.psk and
// messaging.passphrase) replaced by "(set)" when present, for showing the
// configuration in status output and logs.
func (c Config) Redacted() Config {
	if c.Network.PSK != "" {
		c.Network.PSK = "(set)"
	}
	for _, p := range []*string{&c.Wifi.PSK2, &c.Wifi.PSK3, &c.Wifi.APPSK} {
		if *p != "" {
			*p = "(set)"
		}
	}
	if c.Wifi.PSK != "" {
		c.Wifi.PSK = "(set)"
	}
	if c.Messaging.Passphrase != "" {
		c.Messaging.Passphrase = "(set)"
	}
	return c
}
