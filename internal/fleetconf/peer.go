package fleetconf

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// transports are the URL schemes accepted in node.listen, network.peers,
// network.relays and master.addresses besides the radio ones (radio.go).
var transports = []string{"udp", "tcp"}

// Peer is a parsed network.peers or network.relays entry.
type Peer struct {
	// Scheme is the transport, "udp" or "tcp", or for a radio peer "kiss" or
	// "afsk" (radio.go), in lower case.
	Scheme string
	// Address is host:port in canonical form (IP addresses normalized, IPv6
	// in brackets, port in decimal without leading zeros); for a radio peer
	// the station's callsign and SSID in upper case.
	Address string
	// PublicKey is the peer's 33-byte compressed secp256k1 public key.
	PublicKey []byte
}

// String returns the entry form "scheme://host:port#pubkeyhex", with the key
// in lower-case hex; ParsePeer(p.String()) gives back p.
func (p Peer) String() string {
	return p.Scheme + "://" + p.Address + "#" + hex.EncodeToString(p.PublicKey)
}

// ParsePeer parses "scheme://host:port#pubkeyhex": scheme is udp or tcp
// (any case), host a DNS name or IP address (IPv6 in brackets) and must not
// be empty, port 1-65535, and pubkeyhex 66 hex characters of a compressed
// public key on the secp256k1 curve. Errors say which part is wrong.
func ParsePeer(s string) (Peer, error) {
	rest, keyHex, ok := strings.Cut(s, "#")
	if !ok {
		return Peer{}, errors.New(`missing "#" and the peer's public key (form udp://host:port#pubkeyhex)`)
	}
	var scheme, addr string
	var err error
	if sch, _, _ := strings.Cut(rest, "://"); slices.Contains(radioPeerSchemes, strings.ToLower(sch)) {
		scheme, addr, err = parseRadioPeer(rest) // radio.go: a callsign, not host:port
	} else {
		scheme, addr, err = parseTransport(rest, false)
	}
	if err != nil {
		return Peer{}, err
	}
	pub, err := parsePublicKeyHex(keyHex)
	if err != nil {
		return Peer{}, err
	}
	return Peer{Scheme: scheme, Address: addr, PublicKey: pub}, nil
}

// parseTransport parses "scheme://host:port" and returns the lower-case
// scheme and canonical host:port. An empty host (all addresses) is allowed
// only if emptyHost.
func parseTransport(s string, emptyHost bool) (scheme, addr string, err error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return "", "", fmt.Errorf("missing transport; want %s://host:port", strings.Join(transports, ":// or "))
	}
	scheme = strings.ToLower(scheme)
	known := false
	for _, t := range transports {
		known = known || t == scheme
	}
	if !known {
		return "", "", fmt.Errorf("unsupported transport %q (supported: %s)", scheme, strings.Join(transports, ", "))
	}
	if i := strings.IndexAny(rest, "/?@"); i >= 0 {
		return "", "", fmt.Errorf("unexpected %q after the transport; want %s://host:port", rest[i:i+1], scheme)
	}
	host, port, err := net.SplitHostPort(rest)
	if err != nil {
		return "", "", fmt.Errorf("want host:port after %s://: %v", scheme, trimAddrErr(err))
	}
	p, err := parsePort(port)
	if err != nil {
		return "", "", err
	}
	host, err = canonicalHost(host, emptyHost)
	if err != nil {
		return "", "", err
	}
	return scheme, net.JoinHostPort(host, strconv.Itoa(p)), nil
}

// trimAddrErr drops the repeated address from net.SplitHostPort errors.
func trimAddrErr(err error) string {
	var ae *net.AddrError
	if errors.As(err, &ae) {
		return ae.Err
	}
	return err.Error()
}

// parsePort accepts a decimal port 1-65535.
func parsePort(s string) (int, error) {
	if s == "" {
		return 0, errors.New("missing port")
	}
	if len(s) > 5 || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("port %q is not a number 1-65535", s)
	}
	p, _ := strconv.Atoi(s)
	if p < 1 || p > 65535 {
		return 0, fmt.Errorf("port %s is outside 1-65535", s)
	}
	return p, nil
}

// canonicalHost validates an IP address or DNS name and returns it in
// canonical form.
func canonicalHost(h string, allowEmpty bool) (string, error) {
	if h == "" {
		if allowEmpty {
			return "", nil
		}
		return "", errors.New("missing host")
	}
	if a, err := netip.ParseAddr(h); err == nil {
		return a.String(), nil
	}
	if strings.Contains(h, ":") {
		return "", fmt.Errorf("host %q is not a valid IPv6 address", h)
	}
	if err := checkDNSName(h, 253); err != nil {
		return "", fmt.Errorf("host %q: %v", h, err)
	}
	return h, nil
}

// checkDNSName accepts dot-separated labels of 1-63 letters, digits and '-'
// not starting or ending with '-' (RFC 1123), at most max bytes in all.
func checkDNSName(h string, max int) error {
	if len(h) > max {
		return fmt.Errorf("longer than %d characters", max)
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" {
			return errors.New("empty label")
		}
		if len(label) > 63 {
			return errors.New("label longer than 63 characters")
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return errors.New("label starts or ends with '-'")
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("invalid character %q", rune(c))
			}
		}
	}
	return nil
}

// parsePublicKeyHex decodes a 33-byte compressed secp256k1 public key
// written as 66 hex characters and checks that it is on the curve.
func parsePublicKeyHex(s string) ([]byte, error) {
	if len(s) != 66 {
		return nil, fmt.Errorf("public key must be 66 hex characters (33-byte compressed key), got %d", len(s))
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, errors.New("public key is not hex")
	}
	if b[0] != secp256k1.PubKeyFormatCompressedEven && b[0] != secp256k1.PubKeyFormatCompressedOdd {
		return nil, fmt.Errorf("public key must start with 02 or 03 (compressed), not %02x", b[0])
	}
	if _, err := secp256k1.ParsePubKey(b); err != nil {
		return nil, errors.New("public key is not a point on secp256k1")
	}
	return b, nil
}
