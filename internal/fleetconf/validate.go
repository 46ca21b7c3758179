package fleetconf

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Checks for single values. Each returns the value to store (possibly
// normalized) or an error whose text becomes a Problem message; messages for
// secrets never contain the value.

func checkName(s string, _ bool) (string, error) {
	if utf8.RuneCountInString(s) > 64 {
		return "", errors.New("longer than 64 characters")
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return "", errors.New("contains control characters")
	}
	return s, nil
}

func checkListen(s string, _ bool) (string, error) {
	if IsRadioListen(s) {
		return checkRadioListen(s)
	}
	scheme, addr, err := parseTransport(s, true)
	if err != nil {
		return "", err
	}
	return scheme + "://" + addr, nil
}

func checkReportInterval(s string, _ bool) (string, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d < 5*time.Second || d > time.Hour {
		return "", fmt.Errorf("must be a duration from 5s to 1h, such as \"60s\"")
	}
	return d.String(), nil
}

func checkLinkTimeout(s string, _ bool) (string, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Second || d > time.Minute {
		return "", fmt.Errorf("must be a duration from 1s to 1m, such as \"1.5s\"")
	}
	return d.String(), nil
}

func checkHint(s string, _ bool) (string, error) {
	scheme, addr, err := parseTransport(s, false)
	if err != nil {
		return "", err
	}
	return scheme + "://" + addr, nil
}

func checkPeer(s string, _ bool) (string, error) {
	p, err := ParsePeer(s)
	if err != nil {
		return "", err
	}
	return p.String(), nil
}

func checkStatus(s string, _ bool) (string, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return "", errors.New(`want host:port, such as "0.0.0.0:80"`)
	}
	host := s[:i]
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	} else if strings.Contains(host, ":") {
		return "", errors.New("IPv6 addresses need brackets: [::1]:8080")
	}
	if _, err := parsePort(s[i+1:]); err != nil {
		return "", err
	}
	if _, err := canonicalHost(host, true); err != nil {
		return "", err
	}
	return s, nil
}

func checkData(s string, device bool) (string, error) {
	if s == "" {
		return "", errors.New("must not be empty")
	}
	if strings.IndexByte(s, 0) >= 0 {
		return "", errors.New("contains a NUL byte")
	}
	if device && !filepath.IsAbs(s) {
		return "", errors.New("must be an absolute path on a device")
	}
	return s, nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func checkPSK(s string) error {
	if len(s) != 64 {
		return fmt.Errorf("must be 64 hex characters (got %d characters)", len(s))
	}
	if !isHex(s) {
		return errors.New("must be 64 hex characters (found a non-hex character)")
	}
	return nil
}

func checkNetworkPSK(s string, _ bool) (string, error) {
	if s == "" {
		return "", nil
	}
	if err := checkPSK(s); err != nil {
		return "", err
	}
	return strings.ToLower(s), nil
}

func checkPublicKey(s string, _ bool) (string, error) {
	if s == "" {
		return "", nil
	}
	if _, err := parsePublicKeyHex(s); err != nil {
		return "", err
	}
	return strings.ToLower(s), nil
}

func checkReleaseKey(s string, device bool) (string, error) {
	if s == "" {
		return "", errors.New("public key must be 66 hex characters (33-byte compressed key), got 0")
	}
	return checkPublicKey(s, device)
}

// checkInterface applies Linux's rules for interface names
// (dev_valid_name): 1-15 bytes, not "." or "..", no '/', ':' or white space.
func checkInterface(s string, _ bool) (string, error) {
	if s == "" || len(s) > 15 {
		return "", errors.New("interface names are 1-15 characters")
	}
	if s == "." || s == ".." || strings.ContainsAny(s, "/: \t\n\r\v\f") || strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return "", errors.New("not a valid interface name")
	}
	return s, nil
}

func checkStaticAddress(s string, _ bool) (string, error) {
	if s == "" {
		return "", nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		if _, aerr := netip.ParseAddr(s); aerr == nil {
			return "", errors.New(`missing prefix length: want an IPv4 address in CIDR form, such as "192.0.2.5/24"`)
		}
		return "", errors.New(`want an IPv4 address in CIDR form, such as "192.0.2.5/24"`)
	}
	a := p.Addr()
	if !a.Is4() {
		return "", errors.New("must be an IPv4 address")
	}
	if p.Bits() < 1 {
		return "", errors.New("prefix length must be 1-32")
	}
	if a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return "", fmt.Errorf("%s is not a usable host address", a)
	}
	if p.Bits() <= 30 {
		if a == p.Masked().Addr() {
			return "", fmt.Errorf("%s is the network address of %s, not a host address", a, p.Masked())
		}
		if a == lastAddr(p) {
			return "", fmt.Errorf("%s is the broadcast address of %s, not a host address", a, p.Masked())
		}
	}
	return p.String(), nil
}

// lastAddr returns the highest address of an IPv4 prefix (its broadcast).
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func checkGateway(s string, _ bool) (string, error) {
	if s == "" {
		return "", nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return "", errors.New(`must be an IPv4 address, such as "192.0.2.1"`)
	}
	if a.IsUnspecified() || a.IsMulticast() {
		return "", fmt.Errorf("%s is not a usable gateway", a)
	}
	return a.String(), nil
}

func checkDNS(s string, _ bool) (string, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return "", errors.New("must be an IP address")
	}
	if a.Zone() != "" {
		return "", errors.New("must be an IP address without a zone")
	}
	if a.IsUnspecified() || a.IsMulticast() {
		return "", fmt.Errorf("%s is not a usable name server", a)
	}
	return a.String(), nil
}

// checkCallsign accepts a callsign of 1-6 letters and digits with at least
// one of each, optionally followed by an SSID "-0" to "-15" (AX.25 limits).
// It returns the callsign in upper case.
func checkCallsign(s string, _ bool) (string, error) {
	if s == "" {
		return "", nil
	}
	u := strings.ToUpper(s)
	base, ssid, hasSSID := strings.Cut(u, "-")
	if base == "" || len(base) > 6 {
		return "", fmt.Errorf("callsign %q: the call must be 1-6 letters and digits", s)
	}
	letters, digits := 0, 0
	for i := 0; i < len(base); i++ {
		switch c := base[i]; {
		case c >= 'A' && c <= 'Z':
			letters++
		case c >= '0' && c <= '9':
			digits++
		default:
			return "", fmt.Errorf("callsign %q: only letters and digits are allowed before the SSID", s)
		}
	}
	if letters == 0 || digits == 0 {
		return "", fmt.Errorf("callsign %q: a callsign has both letters and digits", s)
	}
	if hasSSID {
		n, err := strconv.Atoi(ssid)
		if err != nil || n < 0 || n > 15 || strconv.Itoa(n) != ssid {
			return "", fmt.Errorf("callsign %q: SSID must be 0-15", s)
		}
	}
	return u, nil
}

func checkSSID(s string, _ bool) (string, error) {
	if len(s) > 32 {
		return "", fmt.Errorf("longer than 32 bytes (%d)", len(s))
	}
	return s, nil
}

func checkWifiMode(s string, _ bool) (string, error) {
	switch s {
	case "", "station", "ap", "peer", "off":
		return s, nil
	}
	return "", errors.New(`must be "station", "ap", "peer" or "off"`)
}

// checkCountry takes an ISO 3166-1 alpha-2 code, as the kernel's regulatory
// database keys its rules, and stores it in upper case.
func checkCountry(s string, _ bool) (string, error) {
	if s == "" {
		return "", nil
	}
	u := strings.ToUpper(s)
	if len(u) != 2 || u[0] < 'A' || u[0] > 'Z' || u[1] < 'A' || u[1] > 'Z' {
		return "", errors.New(`must be a two-letter ISO 3166-1 country code such as "DE" or "US"`)
	}
	return u, nil
}

// checkAPPSK takes the access point's passphrase: 8-63 printable ASCII
// characters (IEEE 802.11-2020 Annex J.4.1), what phones let a user type.
func checkAPPSK(s string, device bool) (string, error) {
	if len(s) == 64 && isHex(s) {
		return "", errors.New("must be a passphrase of 8-63 characters that phones can type, not a raw key")
	}
	return checkWifiPSK(s, device)
}

func checkWifiPSK(s string, _ bool) (string, error) {
	if s == "" {
		return "", nil
	}
	if len(s) == 64 && isHex(s) {
		return s, nil
	}
	if len(s) < 8 || len(s) > 63 {
		return "", fmt.Errorf("must be a passphrase of 8-63 characters or 64 hex digits (got %d characters)", utf8.RuneCountInString(s))
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return "", errors.New("passphrase must be printable ASCII")
		}
	}
	return s, nil
}

// checkMessagingPassphrase takes the phone page's passphrase as typed on a
// phone: any UTF-8 without control characters (a newline could not be typed
// into the page's field), 8 characters or more so that the login's rate limit
// leaves guessing hopeless, at most 256 bytes. Its messages never quote it.
func checkMessagingPassphrase(s string, _ bool) (string, error) {
	if s == "" {
		return "", nil
	}
	const closed = "; messaging stays closed to phones"
	switch {
	case utf8.RuneCountInString(s) < 8:
		return "", errors.New("must be at least 8 characters" + closed)
	case len(s) > 256:
		return "", errors.New("must be at most 256 bytes" + closed)
	case !utf8.ValidString(s):
		return "", errors.New("must be UTF-8 text" + closed)
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return "", errors.New("must not contain control characters (tabs, newlines)" + closed)
	}
	return s, nil
}

func checkHostname(s string, _ bool) (string, error) {
	if s == "" {
		return "", nil
	}
	if err := checkDNSName(s, 64); err != nil {
		return "", err
	}
	return s, nil
}

// prefixContains reports whether the IPv4 address gw lies inside the subnet
// of the CIDR address addr.
func prefixContains(addr, gw string) bool {
	p, err := netip.ParsePrefix(addr)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(gw)
	if err != nil {
		return false
	}
	return p.Contains(a)
}

// checkRole accepts a mesh role name: 1-32 characters of a-z, 0-9, '_' and '-'
// (the property alphabet of topology announcements).
func checkRole(s string, _ bool) (string, error) {
	if len(s) == 0 || len(s) > 32 {
		return "", fmt.Errorf("role %q must be 1-32 characters", s)
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return "", fmt.Errorf("role %q: only a-z, 0-9, '_' and '-' are allowed", s)
		}
	}
	if len(s) > 2 && s[:2] == "_t" && strings.Trim(s[2:], "0123456789") == "" {
		return "", fmt.Errorf("role %q: \"_t\" followed by digits is reserved for the time in announcements", s)
	}
	return s, nil
}

// checkNTPServer accepts an NTP server as "host" or "host:port": host an IP
// address or a DNS name, an IPv6 address in brackets when a port follows (a
// bare IPv6 address means port 123, as the NTP client reads it). It returns
// the entry with the host in canonical form.
func checkNTPServer(s string, _ bool) (string, error) {
	if s == "" {
		return "", errors.New("empty server")
	}
	if strings.Contains(s, "://") {
		return "", errors.New(`want "host" or "host:port", without a scheme`)
	}
	host, port := s, ""
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", errors.New(`missing "]" after the IPv6 address`)
		}
		host = s[1:end]
		switch rest := s[end+1:]; {
		case rest == "":
		case rest[0] == ':':
			if port = rest[1:]; port == "" {
				return "", errors.New(`missing port after ":"`)
			}
		default:
			return "", fmt.Errorf("unexpected %q after the IPv6 address; want [address]:port", rest[:1])
		}
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() {
			return "", fmt.Errorf("%q in brackets is not an IPv6 address", host)
		}
	case strings.Count(s, ":") == 1:
		host, port, _ = strings.Cut(s, ":")
		if port == "" {
			return "", errors.New(`missing port after ":"`)
		}
	}
	h, err := canonicalHost(host, false)
	if err != nil {
		return "", err
	}
	if a, err := netip.ParseAddr(h); err == nil && (a.IsUnspecified() || a.IsMulticast()) {
		return "", fmt.Errorf("%s is not a usable server address", a)
	}
	if port == "" {
		return h, nil
	}
	p, err := parsePort(port)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(h, strconv.Itoa(p)), nil
}

// Screens are the values of display.screen.
var Screens = []string{"auto", "fbdev", "drm", "ili9341", "st7789", "st7789-240", "ili9486", "ili9486-waveshare", "none"}

func checkScreen(s string, _ bool) (string, error) {
	if slices.Contains(Screens, s) {
		return s, nil
	}
	return "", fmt.Errorf("must be one of %s", strings.Join(quoteAll(Screens), ", "))
}

func checkRotation(s string, _ bool) (string, error) {
	switch s {
	case "0", "90", "180", "270":
		return s, nil
	}
	return "", errors.New(`must be "0", "90", "180" or "270" (degrees clockwise)`)
}

func checkTouch(s string, _ bool) (string, error) {
	switch s {
	case "auto", "evdev", "xpt2046", "none":
		return s, nil
	}
	return "", errors.New(`must be "auto", "evdev", "xpt2046" or "none"`)
}

// FormatCalibration writes a calibration matrix as [display]
// touch_calibration takes it (ParseCalibration reads it back): six numbers
// separated by spaces, each to six significant digits.
func FormatCalibration(m []float64) string {
	f := make([]string, len(m))
	for i, v := range m {
		f[i] = strconv.FormatFloat(v, 'g', 6, 64)
	}
	return strings.Join(f, " ")
}

// ParseCalibration reads display.touch_calibration: six numbers separated
// by spaces, libinput's matrix; "" is none (nil). The matrix must map the
// panel onto a plane, not a line.
func ParseCalibration(s string) ([]float64, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	f := strings.Fields(s)
	if len(f) != 6 {
		return nil, fmt.Errorf("must be six numbers separated by spaces (libinput's calibration matrix), not %d", len(f))
	}
	m := make([]float64, 6)
	for i, v := range f {
		x, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) || math.Abs(x) > 1e3 {
			return nil, fmt.Errorf("number %d is not a finite number", i+1)
		}
		m[i] = x
	}
	if math.Abs(m[0]*m[4]-m[1]*m[3]) < 1e-6 {
		return nil, errors.New("maps the panel onto a line (its 2x2 part has no inverse)")
	}
	return m, nil
}

func checkCalibration(s string, _ bool) (string, error) {
	m, err := ParseCalibration(s)
	if err != nil || m == nil {
		return "", err
	}
	parts := make([]string, 6)
	for i, v := range m {
		parts[i] = strconv.FormatFloat(v, 'g', -1, 64)
	}
	return strings.Join(parts, " "), nil
}

func checkDiagonal(s string, _ bool) (string, error) {
	if s == "" {
		return "", nil
	}
	d, err := strconv.ParseFloat(s, 64)
	if err != nil || !(d >= 1 && d <= 30) {
		return "", errors.New(`must be the panel's diagonal in inches, 1 to 30, e.g. "3.5"`)
	}
	return strconv.FormatFloat(d, 'g', -1, 64), nil
}

// checkPINTries reads wallet.max_pin_tries: 3 to 30 (fewer erase a seed on
// a few slips; more let a thief try more).
func checkPINTries(s string, _ bool) (string, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 3 || n > 30 {
		return "", errors.New(`must be a number from "3" to "30"`)
	}
	return strconv.Itoa(n), nil
}

// durationIn checks a Go duration within [min, max].
func durationIn(min, max time.Duration) func(string, bool) (string, error) {
	return func(s string, _ bool) (string, error) {
		d, err := time.ParseDuration(s)
		if err != nil || d < min || d > max {
			return "", fmt.Errorf("must be a duration from %q to %q", min.String(), max.String())
		}
		return d.String(), nil
	}
}

func checkDimAfter(s string, _ bool) (string, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 || d > 24*time.Hour {
		return "", errors.New(`must be a duration from "0s" (never dim) to "24h", e.g. "2m"`)
	}
	return d.String(), nil
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}
