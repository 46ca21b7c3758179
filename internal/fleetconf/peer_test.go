package fleetconf

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"
)

func TestParsePeer(t *testing.T) {
	k := pubHex(2)
	kb, _ := hex.DecodeString(k)
	good := []struct {
		in   string
		want Peer
	}{
		{"udp://192.0.2.10:5505#" + k, Peer{"udp", "192.0.2.10:5505", kb}},
		{"tcp://node.example.org:443#" + k, Peer{"tcp", "node.example.org:443", kb}},
		{"UDP://[2001:DB8::1]:05505#" + strings.ToUpper(k), Peer{"udp", "[2001:db8::1]:5505", kb}},
		{"udp://[fe80::1%eth0]:5505#" + k, Peer{"udp", "[fe80::1%eth0]:5505", kb}},
		{"udp://localhost:65535#" + k, Peer{"udp", "localhost:65535", kb}},
	}
	for _, tc := range good {
		p, err := ParsePeer(tc.in)
		if err != nil {
			t.Errorf("ParsePeer(%q): %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(p, tc.want) {
			t.Errorf("ParsePeer(%q) = %+v, want %+v", tc.in, p, tc.want)
		}
		if want := tc.want.Scheme + "://" + tc.want.Address + "#" + k; p.String() != want {
			t.Errorf("String() = %q, want %q", p.String(), want)
		}
	}

	bad := []struct {
		in, msg string
	}{
		{"", `missing "#"`},
		{"udp://192.0.2.10:5505", `missing "#"`},
		{"192.0.2.10:5505#" + k, "missing transport"},
		{"http://192.0.2.10:5505#" + k, `unsupported transport "http"`},
		{"udp://192.0.2.10#" + k, "host:port"},
		{"udp://:5505#" + k, "missing host"},
		{"udp://192.0.2.10:#" + k, "missing port"},
		{"udp://192.0.2.10:0#" + k, "outside 1-65535"},
		{"udp://192.0.2.10:65536#" + k, "outside 1-65535"},
		{"udp://192.0.2.10:+80#" + k, "not a number"},
		{"udp://192.0.2.10:5505/path#" + k, `unexpected "/"`},
		{"udp://user@192.0.2.10:5505#" + k, `unexpected "@"`},
		{"udp://2001:db8::1:5505#" + k, "host:port"},
		{"udp://[zz::1]:5505#" + k, "IPv6"},
		{"udp://bad_host:5505#" + k, "invalid character"},
		{"udp://-bad.example:5505#" + k, "'-'"},
		{"udp://a..b:5505#" + k, "empty label"},
		{"udp://192.0.2.10:5505#", "66 hex characters"},
		{"udp://192.0.2.10:5505#" + k[:64], "66 hex characters"},
		{"udp://192.0.2.10:5505#" + k + "00", "66 hex characters"},
		{"udp://192.0.2.10:5505#" + strings.Repeat("x", 66), "not hex"},
		{"udp://192.0.2.10:5505#04" + k[2:], "02 or 03"},
		{"udp://192.0.2.10:5505#02" + strings.Repeat("0", 63) + "5", "not a point"},
		{"udp://192.0.2.10:5505#03" + strings.Repeat("f", 64), "not a point"},
	}
	for _, tc := range bad {
		p, err := ParsePeer(tc.in)
		if err == nil {
			t.Errorf("ParsePeer(%q) = %+v, want an error", tc.in, p)
			continue
		}
		if !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("ParsePeer(%q) error %q, want it to mention %q", tc.in, err, tc.msg)
		}
	}
}

func TestCheckStaticAddress(t *testing.T) {
	ok := map[string]string{
		"":              "",
		"192.0.2.5/24":  "192.0.2.5/24",
		"10.0.0.1/8":    "10.0.0.1/8",
		"10.1.2.3/32":   "10.1.2.3/32",
		"10.1.2.2/31":   "10.1.2.2/31",
		"172.16.0.1/30": "172.16.0.1/30",
	}
	for in, want := range ok {
		if got, err := checkStaticAddress(in, true); err != nil || got != want {
			t.Errorf("checkStaticAddress(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"192.0.2.5", "192.0.2.5/33", "192.0.2.5/0", "0.0.0.0/8", "127.0.0.1/8", "224.0.0.1/4", "255.255.255.255/32", "172.16.0.3/30", "172.16.0.0/30", "::1/128", "192.0.2.5/24 "} {
		if got, err := checkStaticAddress(in, true); err == nil {
			t.Errorf("checkStaticAddress(%q) = %q, want an error", in, got)
		}
	}
}

func TestCheckCallsign(t *testing.T) {
	for in, want := range map[string]string{
		"N0CALL": "N0CALL", "n0call-7": "N0CALL-7", "DL1ABC-15": "DL1ABC-15", "W1AW-0": "W1AW-0", "2E0ABC": "2E0ABC", "": "",
	} {
		if got, err := checkCallsign(in, true); err != nil || got != want {
			t.Errorf("checkCallsign(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"N0CALL7X", "NOCALL", "123456", "N0CALL-", "N0CALL-16", "N0CALL--1", "N0CALL-1-2", "N0 CALL", "-7", "N0CALL-+1", "ÄB1CD"} {
		if got, err := checkCallsign(in, true); err == nil {
			t.Errorf("checkCallsign(%q) = %q, want an error", in, got)
		}
	}
}

func TestCheckInterface(t *testing.T) {
	for _, in := range []string{"eth0", "wlan0", "usb0", "enx001122334455", "br-lan"} {
		if _, err := checkInterface(in, true); err != nil {
			t.Errorf("checkInterface(%q): %v", in, err)
		}
	}
	for _, in := range []string{"", "averyveryverylong0", ".", "..", "eth0:1", "a/b", "eth 0", "eth\x000"} {
		if _, err := checkInterface(in, true); err == nil {
			t.Errorf("checkInterface(%q) accepted", in)
		}
	}
}

// FuzzParsePeer: never panics; an accepted peer has a known scheme, a
// 33-byte key, and its String form parses back to the same Peer.
func FuzzParsePeer(f *testing.F) {
	k := pubHex(2)
	f.Add("udp://192.0.2.10:5505#" + k)
	f.Add("TCP://[2001:db8::1]:443#" + strings.ToUpper(k))
	f.Add("udp://[fe80::1%eth0]:5505#" + k)
	f.Add("udp://host.example:1#" + k)
	f.Add("udp://192.0.2.10:5505")
	f.Add("kiss://ttyUSB0#" + k)
	f.Add("#")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePeer(s)
		if err != nil {
			return
		}
		if p.Scheme != "udp" && p.Scheme != "tcp" || len(p.PublicKey) != 33 {
			t.Fatalf("accepted %q as %+v", s, p)
		}
		q, err := ParsePeer(p.String())
		if err != nil {
			t.Fatalf("String() %q of accepted %q does not parse: %v", p.String(), s, err)
		}
		if q.Scheme != p.Scheme || q.Address != p.Address || !bytes.Equal(q.PublicKey, p.PublicKey) {
			t.Fatalf("round trip %q -> %+v -> %+v", s, p, q)
		}
	})
}
