// Package nl80211 drives Linux Wi-Fi interfaces through the kernel's nl80211
// generic-netlink family (include/uapi/linux/nl80211.h): listing radios and
// their capabilities, scanning, joining a network as a station, an IBSS, or
// starting an access point, and installing the keys a WPA2 handshake made.
//
// It knows the kernel interface and nothing of policy: which network to
// join, when to rescan or which key to use is the caller's business
// (services/wifi). It never runs a handshake itself (drivers/wifi/eapol
// does) and never parses information elements (drivers/wifi/ie does); a
// scan result carries its elements as bytes.
//
// What github.com/mdlayher/wifi offers (interfaces, PHYs, triggering a
// scan, the regulatory domain) is used through it; what it lacks (scan
// results with their raw elements and capability bits, CONNECT with our own
// RSN element and control port, keys, stations, IBSS, AP start and the
// management frames an AP must answer itself) is encoded here with
// github.com/mdlayher/genetlink.
//
// Two kinds of socket: a Conn makes requests and reads their replies; an
// Events or Frames socket only listens (multicast groups, or the management
// frames registered on it), because the kernel delivers registered frames
// and frame TX status to the socket that asked, and a socket that waits for
// replies must not also be read by a listener.
package nl80211
