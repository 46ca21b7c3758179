// Package netconf brings up the device's IPv4 networking from PID 1.
//
// Start sets the loopback interface up, then handles every configured
// interface (eth0, usb0, wlan0, ...) in the background: it waits for the
// interface to appear (USB and Wi-Fi drivers probe asynchronously), sets
// it up and either applies a static address, gateway and DNS servers or
// runs a DHCPv4 client that keeps renewing its lease. /etc/resolv.conf is
// rewritten from the DNS servers of all interfaces. State reports each
// interface for the status page.
//
// The DHCP protocol is github.com/insomniacslk/dhcp's nclient4 (the
// library u-root's dhclient is built on); the addresses and routes are
// applied with github.com/vishvananda/netlink. u-root's dhclient itself is
// not used because it obtains one lease and never renews it, and writes
// resolv.conf through a package-global path. The client socket (a raw
// packet socket that sees every IPv4 packet of the interface) is opened
// only for each exchange, not held for the life of the lease.
package netconf
