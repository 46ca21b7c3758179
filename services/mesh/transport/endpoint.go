package transport

import (
	"fmt"
	"net/netip"
)

// Endpoint is where a transport reaches a neighbour's socket. For UDP and TCP it
// is an IP address and port, held with IPv4-mapped IPv6 addresses unmapped, so
// that the endpoint a datagram arrives from equals the one a configured peer
// resolved to (== compares them). A transport that is not IP (a radio port,
// whose endpoints are callsigns) uses a named endpoint (NamedEndpoint) instead.
//
// It is a small comparable value: reading or writing a datagram allocates no
// endpoint, and a router may key maps with it. The zero Endpoint is none
// (IsValid false).
type Endpoint struct {
	addr netip.AddrPort
	name string
}

// EndpointOf returns the endpoint of IP address and port ap, unmapping an
// IPv4-mapped IPv6 address.
func EndpointOf(ap netip.AddrPort) Endpoint { return Endpoint{addr: unmap(ap)} }

// NamedEndpoint returns the endpoint a non-IP transport calls name (for a radio
// port, a callsign and SSID such as "N0CALL-7"). It has no AddrPort.
func NamedEndpoint(name string) Endpoint { return Endpoint{name: name} }

// ParseEndpoint parses a numeric "ip:port" ("192.0.2.1:5505",
// "[2001:db8::1]:5505") into an endpoint. Errors: not numeric, or port 0. Names
// need Resolve.
func ParseEndpoint(s string) (Endpoint, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return Endpoint{}, fmt.Errorf("transport: endpoint %q is not a numeric ip:port: %w", s, err)
	}
	if ap.Port() == 0 {
		return Endpoint{}, fmt.Errorf("transport: endpoint %q has port 0", s)
	}
	return EndpointOf(ap), nil
}

// AddrPort is the endpoint's IP address and port; invalid for a named endpoint.
func (e Endpoint) AddrPort() netip.AddrPort { return e.addr }

// Name is a named endpoint's name; "" for an IP endpoint.
func (e Endpoint) Name() string { return e.name }

// IsValid reports whether e names an endpoint: a valid address with a nonzero
// port, or a name.
func (e Endpoint) IsValid() bool { return e.name != "" || (e.addr.IsValid() && e.addr.Port() != 0) }

// String is "ip:port" (netip.AddrPort's form) or the name; "" for the zero
// Endpoint.
func (e Endpoint) String() string {
	if e.name != "" {
		return e.name
	}
	if !e.addr.IsValid() {
		return ""
	}
	return e.addr.String()
}

// ipEndpoint checks that to is an IP endpoint with a port, as UDP and TCP need.
func ipEndpoint(to Endpoint) (netip.AddrPort, error) {
	if to.name != "" || !to.addr.IsValid() || to.addr.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("transport: endpoint %q is not an ip:port with a nonzero port", to)
	}
	return to.addr, nil
}
