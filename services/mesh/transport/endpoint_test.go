package transport

import (
	"net/netip"
	"testing"
)

// Endpoints compare equal exactly when they name the same socket: a mapped IPv4
// address equals the plain one, and a named endpoint is never an IP one.
func TestEndpointIdentity(t *testing.T) {
	v4 := EndpointOf(netip.MustParseAddrPort("192.0.2.1:5505"))
	mapped := EndpointOf(netip.MustParseAddrPort("[::ffff:192.0.2.1]:5505"))
	if v4 != mapped || mapped.String() != "192.0.2.1:5505" {
		t.Errorf("mapped %v != %v", mapped, v4)
	}
	if p, err := ParseEndpoint("[::ffff:192.0.2.1]:5505"); err != nil || p != v4 {
		t.Errorf("ParseEndpoint of the mapped form = %v, %v; want %v", p, err, v4)
	}
	if v6 := EndpointOf(netip.MustParseAddrPort("[2001:db8::1]:5505")); v6.String() != "[2001:db8::1]:5505" || v6 == v4 {
		t.Errorf("IPv6 endpoint %v", v6)
	}
	if v4 == EndpointOf(netip.MustParseAddrPort("192.0.2.1:5506")) {
		t.Error("different ports compare equal")
	}
	named := NamedEndpoint("N0CALL-7")
	if !named.IsValid() || named.String() != "N0CALL-7" || named.AddrPort().IsValid() || named == v4 {
		t.Errorf("named endpoint %v: valid %v, addr %v", named, named.IsValid(), named.AddrPort())
	}
	var zero Endpoint
	if zero.IsValid() || zero.String() != "" {
		t.Errorf("zero endpoint: valid %v, %q", zero.IsValid(), zero)
	}
	if EndpointOf(netip.MustParseAddrPort("192.0.2.1:0")).IsValid() {
		t.Error("port 0 is valid")
	}
	for _, s := range []string{"", "localhost:1", "1.2.3.4", "1.2.3.4:0", "1.2.3.4:70000", "N0CALL-7"} {
		if e, err := ParseEndpoint(s); err == nil {
			t.Errorf("ParseEndpoint(%q) = %v, want an error", s, e)
		}
	}
}
