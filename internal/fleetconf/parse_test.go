package fleetconf

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// pubHex returns the compressed public key of the secret scalar n, derived
// by decred, so tests have valid keys without copying any from elsewhere.
func pubHex(n byte) string {
	var b [32]byte
	b[31] = n
	return hex.EncodeToString(secp256k1.PrivKeyFromBytes(b[:]).PubKey().SerializeCompressed())
}

// gHex is the secp256k1 generator G, compressed (SEC 2, section 2.4.1).
const gHex = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"

func TestPubHexIsG(t *testing.T) {
	if pubHex(1) != gHex {
		t.Fatalf("pubHex(1) = %s, want G", pubHex(1))
	}
}

func TestDefaults(t *testing.T) {
	dev := Defaults(true)
	if dev.Node.Status != "0.0.0.0:80" || dev.Node.Data != "/perm" {
		t.Errorf("device status/data = %q/%q", dev.Node.Status, dev.Node.Data)
	}
	host := Defaults(false)
	if host.Node.Status != "127.0.0.1:8080" || host.Node.Data != "." {
		t.Errorf("host status/data = %q/%q", host.Node.Status, host.Node.Data)
	}
	for name, c := range map[string]Config{"device": dev, "host": host} {
		if !reflect.DeepEqual(c.Node.Listen, []string{"udp://0.0.0.0:5505"}) {
			t.Errorf("%s listen = %q", name, c.Node.Listen)
		}
		if !c.Network.LANDiscovery {
			t.Errorf("%s lan_discovery = false", name)
		}
		if !reflect.DeepEqual(c.Network.Interfaces, []string{"eth0", "usb0", "wlan0"}) {
			t.Errorf("%s interfaces = %q", name, c.Network.Interfaces)
		}
		if !c.System.Watchdog {
			t.Errorf("%s watchdog = false", name)
		}
		if c.Network.PSK != "" || c.Master.PublicKey != "" || c.Radio.Callsign != "" || c.Network.Address != "" {
			t.Errorf("%s has unexpected non-empty defaults: %+v", name, c)
		}
	}
	// Fresh slices: changing one Config does not change the next.
	dev.Node.Listen[0] = "changed"
	dev.Network.Interfaces[0] = "changed"
	again := Defaults(true)
	if again.Node.Listen[0] != DefaultListen || again.Network.Interfaces[0] != "eth0" {
		t.Fatal("Defaults shares slices between calls")
	}
}

func TestParseEmptyIsDefaults(t *testing.T) {
	for _, src := range []string{"", "\n\n", "# only a comment\n", "\xef\xbb\xbf# BOM and comment\r\n"} {
		for _, device := range []bool{true, false} {
			c, probs := Parse([]byte(src), device)
			if len(probs) != 0 {
				t.Errorf("%q: problems %v", src, probs)
			}
			if !reflect.DeepEqual(c, Defaults(device)) {
				t.Errorf("%q device=%v: %+v, want defaults", src, device, c)
			}
		}
	}
}

func fullFile() string {
	return `# A complete fleet.toml
[node]
name = "kit-07"
listen = ["udp://0.0.0.0:5505", "tcp://[::]:5506"]
status = "0.0.0.0:8081"
data = "/perm/skyfleet"

[network]
psk = "00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff"
peers = [
  "udp://192.0.2.10:5505#` + pubHex(2) + `",
  "tcp://relay.example.org:443#` + strings.ToUpper(pubHex(3)) + `",
]
relays = ["UDP://[2001:db8::1]:5505#` + pubHex(4) + `"]
lan_discovery = false
interfaces = ["eth0", "wlan0"]
address = "192.0.2.5/24"
gateway = "192.0.2.1"
dns = ["192.0.2.53", "2001:db8::53"]
link_timeout = "4s"

[master]
public_key = "` + gHex + `"
addresses = ["udp://198.51.100.7:5505"]
report_interval = "30s"

[release]
keys = ["` + pubHex(5) + `", "` + pubHex(6) + `"]

[radio]
callsign = "n0call-7"

[wifi]
ssid = "Field Net"
psk = "correct horse battery"

[display]
screen = "ili9486-waveshare"
rotation = "90"
touch = "xpt2046"
touch_calibration = "-1 0 1 0 1.25 -0.125"
diagonal = "3.5"
dim_after = "90s"

[system]
hostname = "kit-07"
watchdog = false

[wallet]
enabled = true
max_pin_tries = "5"
unlock_for = "90s"
timeout = "3m"
`
}

func fullConfig() Config {
	return Config{
		Node: Node{
			Name:   "kit-07",
			Listen: []string{"udp://0.0.0.0:5505", "tcp://[::]:5506"},
			Status: "0.0.0.0:8081",
			Data:   "/perm/skyfleet",
		},
		Network: Network{
			PSK: "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
			Peers: []string{
				"udp://192.0.2.10:5505#" + pubHex(2),
				"tcp://relay.example.org:443#" + pubHex(3),
			},
			Relays:       []string{"udp://[2001:db8::1]:5505#" + pubHex(4)},
			LANDiscovery: false,
			Interfaces:   []string{"eth0", "wlan0"},
			Address:      "192.0.2.5/24",
			Gateway:      "192.0.2.1",
			DNS:          []string{"192.0.2.53", "2001:db8::53"},
			LinkTimeout:  "4s",
		},
		Master:  Master{PublicKey: gHex, Addresses: []string{"udp://198.51.100.7:5505"}, ReportInterval: "30s"},
		Release: Release{Keys: []string{pubHex(5), pubHex(6)}},
		Radio:   Radio{Callsign: "N0CALL-7"},
		Wifi:    Wifi{SSID: "Field Net", PSK: "correct horse battery"},
		Display: Display{Screen: "ili9486-waveshare", Rotation: "90", Touch: "xpt2046",
			TouchCalibration: "-1 0 1 0 1.25 -0.125", Diagonal: "3.5", DimAfter: "1m30s"},
		System: System{Hostname: "kit-07", Watchdog: false},
		Wallet: Wallet{Enabled: true, MaxPINTries: "5", UnlockFor: "1m30s", Timeout: "3m0s"},
	}
}

// Bad [wallet] values are named and keep their defaults: 10 tries, 5
// minutes open, 2 minutes on the screen; none reaches an extreme.
func TestWalletChecks(t *testing.T) {
	c, probs := Parse([]byte(`[wallet]
enabled = true
max_pin_tries = "1000"
unlock_for = "24h"
timeout = "5s"
`), true)
	if len(probs) != 3 {
		t.Fatalf("problems %v, want one per bad key", probs)
	}
	want := Defaults(true).Wallet
	want.Enabled = true
	if c.Wallet != want {
		t.Errorf("wallet = %+v, want %+v", c.Wallet, want)
	}
	if FailClosed(probs) {
		t.Error("a bad [wallet] refused the mesh")
	}
}

// Bad [display] values are named with the reason and keep their defaults:
// the screen stays auto, unturned, and lit for two minutes.
func TestDisplayChecks(t *testing.T) {
	c, probs := Parse([]byte(`[display]
screen = "hdmi"
rotation = "45"
touch = "mouse"
touch_calibration = "1 1 0 1 1 0"
diagonal = "0.2"
dim_after = "-1s"
`), true)
	if len(probs) != 6 {
		t.Fatalf("problems %v, want one per key", probs)
	}
	for _, want := range []string{"display.screen", "display.rotation", "display.touch", "onto a line", "display.diagonal", "display.dim_after"} {
		found := false
		for _, p := range probs {
			found = found || strings.Contains(p.String(), want)
		}
		if !found {
			t.Errorf("no problem mentions %q: %v", want, probs)
		}
	}
	if c.Display != Defaults(true).Display {
		t.Errorf("display = %+v, want the defaults", c.Display)
	}
	if FailClosed(probs) {
		t.Error("a bad [display] refused the mesh: it grants no link")
	}
}

func TestParseFullFile(t *testing.T) {
	for _, device := range []bool{true, false} {
		c, probs := Parse([]byte(fullFile()), device)
		if len(probs) != 0 {
			t.Fatalf("problems: %v", probs)
		}
		if want := fullConfig(); !reflect.DeepEqual(c, want) {
			t.Fatalf("device=%v:\n got %+v\nwant %+v", device, c, want)
		}
	}
}

// TestRoundTrip encodes a parsed Config with the TOML encoder and parses it
// again: the Config's toml tags must name the contract keys.
func TestRoundTrip(t *testing.T) {
	c, probs := Parse([]byte(fullFile()), true)
	if len(probs) != 0 {
		t.Fatal(probs)
	}
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(c); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"[node]", "listen =", "[network]", "lan_discovery =", "peers =", "[master]", "public_key =", "[release]", "keys =", "[radio]", "callsign ="} {
		if !strings.Contains(buf.String(), k) {
			t.Errorf("encoded config lacks %q:\n%s", k, buf.String())
		}
	}
	c2, probs := Parse(buf.Bytes(), true)
	if len(probs) != 0 {
		t.Fatalf("re-parse problems: %v\n%s", probs, buf.String())
	}
	if !reflect.DeepEqual(c, c2) {
		t.Fatalf("round trip changed the config:\n%+v\n%+v", c, c2)
	}
}

func TestParseSyntaxErrorLine(t *testing.T) {
	tests := []struct {
		name string
		src  string
		line int
	}{
		{"missing value", "[node]\nname = \"a\"\n\n[network]\npsk = \n", 5},
		{"unclosed string", "[node]\nname = \"a\"\nstatus = \"x\"\n# comment\nname2 = \"oops\n[radio]\n", 5},
		{"bad header", "[node]\nname = \"a\"\n\n\n[network\npsk = \"\"\n", 5},
		{"duplicate key", "[radio]\ncallsign = \"N0CALL\"\n\n\ncallsign = \"N0CALL-1\"\n", 5},
		{"garbage", "[node]\nname = \"a\"\nthis is not toml\n", 3},
		{"CRLF", "[node]\r\nname = \"a\"\r\n\r\n[network]\r\npsk = \r\n", 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, probs := Parse([]byte(tc.src), true)
			if !reflect.DeepEqual(c, Defaults(true)) {
				t.Errorf("config = %+v, want defaults", c)
			}
			if len(probs) != 1 {
				t.Fatalf("problems = %v, want 1", probs)
			}
			p := probs[0]
			if p.Line != tc.line {
				t.Errorf("line = %d, want %d (%s)", p.Line, tc.line, p)
			}
			if p.Column < 1 {
				t.Errorf("column = %d, want > 0", p.Column)
			}
			if !strings.Contains(p.Message, "syntax error") || len(p.Message) < len("syntax error: x") {
				t.Errorf("message %q lacks the parser's message", p.Message)
			}
			if !p.Fatal || !FailClosed(probs) {
				t.Errorf("syntax error not fatal: %+v", p)
			}
		})
	}
}

func TestParseUnknownKeys(t *testing.T) {
	src := `[node]
name = "kit"
colour = "red"

[network]
lan_discovery = false
Peers = []

[frobnicate]
a = 1
b.c = 2

[radio]
callsign = "N0CALL"
psk = "x"
`
	c, probs := Parse([]byte("psk = \"top\"\n"+src), false)
	// Everything known still applies.
	if c.Node.Name != "kit" || c.Network.LANDiscovery || c.Radio.Callsign != "N0CALL" {
		t.Errorf("known keys not applied: %+v", c)
	}
	want := []struct {
		line int
		key  string
		hint string
	}{
		{1, "psk", "[network] or [wifi]"},
		{4, "node.colour", ""},
		{8, "network.Peers", `did you mean "peers"`},
		{10, "frobnicate", ""},
		{16, "radio.psk", "[network] or [wifi]"},
	}
	if len(probs) != len(want) {
		t.Fatalf("problems:\n%s\nwant %d", joinProblems(probs), len(want))
	}
	for i, w := range want {
		p := probs[i]
		if p.Line != w.line || p.Key != w.key || !strings.Contains(p.Message, "unknown key") || !strings.Contains(p.Message, w.hint) {
			t.Errorf("problem %d = %+v, want line %d key %s hint %q", i, p, w.line, w.key, w.hint)
		}
	}
}

func TestParseManyUnknownKeys(t *testing.T) {
	// 150 unknown keys and one valid one at the end: the first 100 unknown
	// keys are listed with their lines, the rest summed up, and the valid
	// key still applies.
	var b strings.Builder
	for i := range 150 {
		fmt.Fprintf(&b, "k%03d = %d\n", i, i)
	}
	b.WriteString("[radio]\ncallsign = \"N0CALL\"\n")
	c, probs := Parse([]byte(b.String()), true)
	if c.Radio.Callsign != "N0CALL" {
		t.Errorf("callsign %q not applied", c.Radio.Callsign)
	}
	if len(probs) != 101 {
		t.Fatalf("%d problems, want 100 and a summary", len(probs))
	}
	for i, p := range probs[:100] {
		if p.Line != i+1 || p.Key != fmt.Sprintf("k%03d", i) {
			t.Fatalf("problem %d = %s", i, p)
		}
	}
	if last := probs[100]; last.Line != 0 || !strings.Contains(last.Message, "50 more unknown keys") {
		t.Fatalf("summary = %s", last)
	}
}

func TestParseUnknownImplicitTable(t *testing.T) {
	// [a.b] defines "a" only implicitly; its line is the header's.
	src := "[node]\nname = \"x\"\n\n[extra.sub]\nk = 1\n"
	_, probs := Parse([]byte(src), true)
	if len(probs) != 1 || probs[0].Key != "extra" || probs[0].Line != 4 {
		t.Fatalf("problems = %v, want extra at line 4", probs)
	}
	// Dotted keys at the top level.
	_, probs = Parse([]byte("\n\nfoo.bar = 1\n"), true)
	if len(probs) != 1 || probs[0].Key != "foo" || probs[0].Line != 3 {
		t.Fatalf("problems = %v, want foo at line 3", probs)
	}
}

func TestParseBadPSKRestApplies(t *testing.T) {
	src := `[node]
name = "kit-01"
[network]
psk = "secretsecretsecret"
lan_discovery = false
peers = ["udp://192.0.2.10:5505#` + pubHex(9) + `"]
[radio]
callsign = "DL1ABC"
`
	c, probs := Parse([]byte(src), true)
	if len(probs) != 1 {
		t.Fatalf("problems = %v, want 1", probs)
	}
	p := probs[0]
	if p.Line != 4 || p.Key != "network.psk" || !strings.Contains(p.Message, "64 hex characters") {
		t.Errorf("problem = %+v", p)
	}
	if strings.Contains(p.String(), "secret") {
		t.Errorf("problem %q shows the secret", p)
	}
	if got := p.String(); !strings.HasPrefix(got, "fleet.toml:4: network.psk: must be 64 hex characters") {
		t.Errorf("String() = %q", got)
	}
	if c.Network.PSK != "" {
		t.Errorf("psk = %q, want the default (empty)", c.Network.PSK)
	}
	if c.Node.Name != "kit-01" || c.Network.LANDiscovery || len(c.Network.Peers) != 1 || c.Radio.Callsign != "DL1ABC" {
		t.Errorf("rest of the file not applied: %+v", c)
	}
}

func TestParseInvalidValuesFallBack(t *testing.T) {
	def := Defaults(true)
	tests := []struct {
		name string
		src  string // line 2 holds the bad value
		key  string
		msg  string
		get  func(Config) any
	}{
		{"psk not hex", "[network]\npsk = \"" + strings.Repeat("g", 64) + "\"", "network.psk", "non-hex", func(c Config) any { return c.Network.PSK }},
		{"psk wrong type", "[network]\npsk = 12", "network.psk", "must be a string, not an integer", func(c Config) any { return c.Network.PSK }},
		{"status no port", "[node]\nstatus = \"0.0.0.0\"", "node.status", "host:port", func(c Config) any { return c.Node.Status }},
		{"status port range", "[node]\nstatus = \"0.0.0.0:99999\"", "node.status", "1-65535", func(c Config) any { return c.Node.Status }},
		{"data relative on device", "[node]\ndata = \"perm\"", "node.data", "absolute", func(c Config) any { return c.Node.Data }},
		{"name control char", "[node]\nname = \"a\\u0007b\"", "node.name", "control", func(c Config) any { return c.Node.Name }},
		{"listen not array", "[node]\nlisten = \"udp://0.0.0.0:5505\"", "node.listen", "must be an array of strings, not a string", func(c Config) any { return c.Node.Listen }},
		{"lan_discovery string", "[network]\nlan_discovery = \"yes\"", "network.lan_discovery", "true or false", func(c Config) any { return c.Network.LANDiscovery }},
		{"watchdog int", "[system]\nwatchdog = 0", "system.watchdog", "true or false", func(c Config) any { return c.System.Watchdog }},
		{"address no prefix", "[network]\naddress = \"192.0.2.5\"", "network.address", "prefix length", func(c Config) any { return c.Network.Address }},
		{"address ipv6", "[network]\naddress = \"2001:db8::5/64\"", "network.address", "IPv4", func(c Config) any { return c.Network.Address }},
		{"address network", "[network]\naddress = \"192.0.2.0/24\"", "network.address", "network address", func(c Config) any { return c.Network.Address }},
		{"address broadcast", "[network]\naddress = \"192.0.2.255/24\"", "network.address", "broadcast", func(c Config) any { return c.Network.Address }},
		{"address junk", "[network]\naddress = \"dhcp\"", "network.address", "CIDR", func(c Config) any { return c.Network.Address }},
		{"gateway junk", "[network]\ngateway = \"router\"", "network.gateway", "IPv4", func(c Config) any { return c.Network.Gateway }},
		{"master key short", "[master]\npublic_key = \"03ab\"", "master.public_key", "66 hex", func(c Config) any { return c.Master.PublicKey }},
		{"master key uncompressed prefix", "[master]\npublic_key = \"04" + gHex[2:] + "\"", "master.public_key", "02 or 03", func(c Config) any { return c.Master.PublicKey }},
		{"master key off curve", "[master]\npublic_key = \"02" + strings.Repeat("0", 63) + "5\"", "master.public_key", "not a point", func(c Config) any { return c.Master.PublicKey }},
		{"link timeout too short", "[network]\nlink_timeout = \"500ms\"", "network.link_timeout", "1s to 1m", func(c Config) any { return c.Network.LinkTimeout }},
		{"link timeout too long", "[network]\nlink_timeout = \"2m\"", "network.link_timeout", "1s to 1m", func(c Config) any { return c.Network.LinkTimeout }},
		{"report interval too short", "[master]\nreport_interval = \"1s\"", "master.report_interval", "5s to 1h", func(c Config) any { return c.Master.ReportInterval }},
		{"report interval no unit", "[master]\nreport_interval = \"60\"", "master.report_interval", "duration", func(c Config) any { return c.Master.ReportInterval }},
		{"callsign too long", "[radio]\ncallsign = \"N0CALLXX\"", "radio.callsign", "1-6", func(c Config) any { return c.Radio.Callsign }},
		{"callsign no digit", "[radio]\ncallsign = \"NOCALL\"", "radio.callsign", "letters and digits", func(c Config) any { return c.Radio.Callsign }},
		{"callsign ssid 16", "[radio]\ncallsign = \"N0CALL-16\"", "radio.callsign", "SSID", func(c Config) any { return c.Radio.Callsign }},
		{"callsign ssid leading zero", "[radio]\ncallsign = \"N0CALL-07\"", "radio.callsign", "SSID", func(c Config) any { return c.Radio.Callsign }},
		{"callsign symbol", "[radio]\ncallsign = \"N0/CAL\"", "radio.callsign", "only letters and digits", func(c Config) any { return c.Radio.Callsign }},
		{"ssid too long", "[wifi]\nssid = \"" + strings.Repeat("s", 33) + "\"", "wifi.ssid", "32 bytes", func(c Config) any { return c.Wifi.SSID }},
		{"wifi psk short", "[wifi]\npsk = \"hunter2\"", "wifi.psk", "8-63", func(c Config) any { return c.Wifi.PSK }},
		{"hostname underscore", "[system]\nhostname = \"kit_07\"", "system.hostname", "invalid character", func(c Config) any { return c.System.Hostname }},
		{"hostname dash", "[system]\nhostname = \"-kit\"", "system.hostname", "'-'", func(c Config) any { return c.System.Hostname }},
		{"section not a table", "\nnode = \"kit\"", "node", "must be a table ([node]), not a string", func(c Config) any { return c.Node }},
		{"section array of tables", "\n[[node]]\nname = \"x\"", "node", "not an array of tables", func(c Config) any { return c.Node }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// A later section must still apply.
			after, got := "\n[node]\nname = \"after\"\n", func(c Config) string { return c.Node.Name }
			if strings.Contains(tc.src, "node") {
				after, got = "\n[wifi]\nssid = \"after\"\n", func(c Config) string { return c.Wifi.SSID }
			}
			c, probs := Parse([]byte(tc.src+after), true)
			if len(probs) != 1 {
				t.Fatalf("problems = %v, want 1", probs)
			}
			p := probs[0]
			if p.Line != 2 || p.Key != tc.key || !strings.Contains(p.Message, tc.msg) {
				t.Errorf("problem = %+v; want line 2, key %s, message containing %q", p, tc.key, tc.msg)
			}
			if got, want := tc.get(c), tc.get(def); !reflect.DeepEqual(got, want) {
				t.Errorf("value = %#v, want the default %#v", got, want)
			}
			if got(c) != "after" {
				t.Errorf("a later key was not applied: %+v", c)
			}
		})
	}
}

func TestParseWifiPSKNotEchoed(t *testing.T) {
	c, probs := Parse([]byte("[wifi]\nssid = \"x\"\npsk = \"pässwörd-with-ümläuts\"\n"), true)
	if len(probs) != 2 || probs[1].Key != "wifi.psk" || probs[1].Line != 3 {
		t.Fatalf("problems = %v", probs)
	}
	if strings.Contains(probs[1].Message, "pässwörd") {
		t.Fatalf("message shows the passphrase: %q", probs[1].Message)
	}
	// Without its key, the node must not join an open network of that
	// name: the network is dropped, and a second problem says so.
	if c.Wifi != (Wifi{}) || len(c.Wifi.Networks()) != 0 {
		t.Errorf("wifi = %+v, want no network", c.Wifi)
	}
	if p := probs[0]; p.Key != "wifi.ssid" || p.Line != 2 || !strings.Contains(p.Message, "not joined until wifi.psk is fixed") || p.Fatal {
		t.Errorf("second problem = %+v", p)
	}
}

func TestParseWifiNetworksAndModes(t *testing.T) {
	c, probs := Parse([]byte(`[wifi]
country = "de"
ssid = "base-camp"
psk = "correct horse battery"
ssid_2 = "relief-hq"
psk_2 = "not valid \u0001 passphrase"
ssid_3 = "cafe"
`), true)
	nets := c.Wifi.Networks()
	if len(nets) != 2 || nets[0] != (WifiNetwork{"base-camp", "correct horse battery"}) || nets[1] != (WifiNetwork{"cafe", ""}) {
		t.Errorf("networks %+v: want base-camp, then cafe (relief-hq dropped with its bad psk)", nets)
	}
	if c.Wifi.Country != "DE" || c.Wifi.EffectiveMode() != "station" {
		t.Errorf("country %q, mode %q", c.Wifi.Country, c.Wifi.EffectiveMode())
	}
	if len(probs) != 2 || probs[0].Key != "wifi.ssid_2" || probs[1].Key != "wifi.psk_2" || FailClosed(probs) {
		t.Errorf("problems %v", probs)
	}
	for _, tc := range []struct {
		src, problemKey string
		apOpen          bool
	}{
		{"[wifi]\nmode = \"ap\"\n", "wifi.mode", false},                                       // no key, not open: off
		{"[wifi]\nmode = \"ap\"\nap_open = true\n", "", true},                                 // public kit
		{"[wifi]\nmode = \"ap\"\nap_open = true\nap_psk = \"short\"\n", "wifi.ap_psk", false}, // a broken key never opens the AP
		{"[wifi]\nmode = \"ap\"\nap_open = true\nap_psk = \"long enough pass\"\n", "wifi.ap_open", false},
		{"[wifi]\nmode = \"mesh\"\n", "wifi.mode", false},
		{"[wifi]\ncountry = \"Germany\"\n", "wifi.country", false},
	} {
		c, probs := Parse([]byte(tc.src), true)
		if c.Wifi.APOpen != tc.apOpen {
			t.Errorf("%q: ap_open %v, want %v", tc.src, c.Wifi.APOpen, tc.apOpen)
		}
		found := tc.problemKey == "" && len(probs) == 0
		for _, p := range probs {
			found = found || p.Key == tc.problemKey
		}
		if !found {
			t.Errorf("%q: problems %v, want one on %q", tc.src, probs, tc.problemKey)
		}
	}
	if (Wifi{}).EffectiveMode() != "peer" {
		t.Error("with no network the default mode is not peer")
	}
}

func TestParseListEntries(t *testing.T) {
	src := `[network]
peers = [
  "udp://192.0.2.10:5505#` + pubHex(2) + `",
  "udp://192.0.2.11:5505",
  "udp://192.0.2.12:5505#` + pubHex(7) + `",
  "kiss://ttyUSB0#` + pubHex(8) + `",
  7,
]
dns = ["192.0.2.53", "not-an-ip"]
[node]
listen = ["carrier-pigeon://coop", "udp://0.0.0.0:0"]
`
	c, probs := Parse([]byte(src), true)
	wantPeers := []string{"udp://192.0.2.10:5505#" + pubHex(2), "udp://192.0.2.12:5505#" + pubHex(7)}
	if !reflect.DeepEqual(c.Network.Peers, wantPeers) {
		t.Errorf("peers = %q, want the two valid ones", c.Network.Peers)
	}
	if !reflect.DeepEqual(c.Network.DNS, []string{"192.0.2.53"}) {
		t.Errorf("dns = %q", c.Network.DNS)
	}
	if !reflect.DeepEqual(c.Node.Listen, Defaults(true).Node.Listen) {
		t.Errorf("listen = %q, want the default after all entries failed", c.Node.Listen)
	}
	want := []struct {
		line int
		key  string
		msg  string
	}{
		{4, "network.peers", `entry 2 "udp://192.0.2.11:5505": missing "#"`},
		{6, "network.peers", `entry 4 "kiss://ttyUSB0#` + pubHex(8) + `": callsign "ttyUSB0": the call must be 1-6 letters and digits`},
		{6, "network.peers", "entry 5 must be a string, not an integer"},
		{9, "network.dns", `entry 2 "not-an-ip": must be an IP address`},
		{11, "node.listen", `entry 1 "carrier-pigeon://coop": unsupported transport`},
		{11, "node.listen", `entry 2 "udp://0.0.0.0:0": port 0 is outside 1-65535`},
		{11, "node.listen", `no valid entries; using the default ["udp://0.0.0.0:5505"]`},
	}
	if len(probs) != len(want) {
		t.Fatalf("problems:\n%s", joinProblems(probs))
	}
	for i, w := range want {
		if probs[i].Line != w.line || probs[i].Key != w.key || !strings.Contains(probs[i].Message, w.msg) {
			t.Errorf("problem %d = %s; want line %d %s %q", i, probs[i], w.line, w.key, w.msg)
		}
	}
}

func TestParseEmptyListsAreKept(t *testing.T) {
	c, probs := Parse([]byte("[node]\nlisten = []\n[network]\ninterfaces = []\n"), true)
	if len(probs) != 0 || c.Node.Listen == nil || len(c.Node.Listen) != 0 || len(c.Network.Interfaces) != 0 {
		t.Fatalf("explicit empty lists: %q %q %v", c.Node.Listen, c.Network.Interfaces, probs)
	}
}

func TestParseGateway(t *testing.T) {
	tests := []struct {
		src, gw, msg string
	}{
		{"address = \"192.0.2.5/24\"\ngateway = \"192.0.2.1\"", "192.0.2.1", ""},
		{"address = \"192.0.2.5/24\"\ngateway = \"198.51.100.1\"", "", "outside the subnet"},
		{"address = \"192.0.2.5/24\"\ngateway = \"192.0.2.5\"", "", "own address"},
		{"gateway = \"192.0.2.1\"", "", "only used with a static network.address"},
	}
	for _, tc := range tests {
		c, probs := Parse([]byte("[network]\n"+tc.src+"\n"), true)
		if c.Network.Gateway != tc.gw {
			t.Errorf("%q: gateway %q, want %q", tc.src, c.Network.Gateway, tc.gw)
		}
		if tc.msg == "" {
			if len(probs) != 0 {
				t.Errorf("%q: problems %v", tc.src, probs)
			}
			continue
		}
		gwLine := strings.Count(tc.src[:strings.Index(tc.src, "gateway")], "\n") + 2
		if len(probs) != 1 || probs[0].Key != "network.gateway" || probs[0].Line != gwLine || !strings.Contains(probs[0].Message, tc.msg) {
			t.Errorf("%q: problems %v, want network.gateway at line %d: %s", tc.src, probs, gwLine, tc.msg)
		}
	}
}

func TestParseHostAllowsRelativeData(t *testing.T) {
	c, probs := Parse([]byte("[node]\ndata = \"state\"\n"), false)
	if len(probs) != 0 || c.Node.Data != "state" {
		t.Fatalf("host data = %q, %v", c.Node.Data, probs)
	}
}

func TestParseAcceptedForms(t *testing.T) {
	src := `[node]
listen = ["UDP://:5505", "tcp://localhost:05506"]
status = "[::1]:8080"
[network]
psk = "` + strings.Repeat("AB", 32) + `"
address = "10.1.2.3/31"
[radio]
callsign = "w1aw"
[wifi]
psk = "` + strings.Repeat("0F", 32) + `"
`
	c, probs := Parse([]byte(src), true)
	if len(probs) != 0 {
		t.Fatalf("problems %v", probs)
	}
	if !reflect.DeepEqual(c.Node.Listen, []string{"udp://:5505", "tcp://localhost:5506"}) {
		t.Errorf("listen = %q", c.Node.Listen)
	}
	if c.Node.Status != "[::1]:8080" || c.Network.PSK != strings.Repeat("ab", 32) || c.Network.Address != "10.1.2.3/31" || c.Radio.Callsign != "W1AW" || c.Wifi.PSK != strings.Repeat("0F", 32) {
		t.Errorf("config %+v", c)
	}
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{Line: 7, Key: "network.psk", Message: "must be 64 hex characters"}, "fleet.toml:7: network.psk: must be 64 hex characters"},
		{Problem{Line: 5, Column: 3, Message: "syntax error: x"}, "fleet.toml:5:3: syntax error: x"},
		{Problem{Message: "file not found; using defaults"}, "fleet.toml: file not found; using defaults"},
		{Problem{Key: "node", Message: "m"}, "fleet.toml: node: m"},
	}
	for _, tc := range tests {
		if got := tc.p.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)

	c, probs := Load(path, true)
	if !reflect.DeepEqual(c, Defaults(true)) || len(probs) != 1 || probs[0].Line != 0 || !strings.Contains(probs[0].Message, "not found") {
		t.Fatalf("missing file: %+v %v", c, probs)
	}
	if strings.Contains(probs[0].Message, ".txt") {
		t.Fatalf("missing file: spurious .txt hint: %v", probs)
	}

	if err := os.WriteFile(path+".txt", []byte("[radio]\ncallsign = \"N0CALL\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, probs = Load(path, true)
	if len(probs) != 1 || !strings.Contains(probs[0].Message, "rename it to fleet.toml") {
		t.Fatalf("fleet.toml.txt: %v", probs)
	}

	if err := os.WriteFile(path, []byte(fullFile()), 0o644); err != nil {
		t.Fatal(err)
	}
	c, probs = Load(path, true)
	if len(probs) != 0 || !reflect.DeepEqual(c, fullConfig()) {
		t.Fatalf("full file: %v\n%+v", probs, c)
	}

	if err := os.WriteFile(path, []byte("[radio]\ncallsign = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, probs = Load(path, false)
	if len(probs) != 1 || probs[0].Line != 2 || probs[0].Key != "radio.callsign" {
		t.Fatalf("bad value through Load: %v", probs)
	}

	dirPath := filepath.Join(dir, "isdir")
	if err := os.Mkdir(dirPath, 0o755); err != nil {
		t.Fatal(err)
	}
	c, probs = Load(dirPath, false)
	if !reflect.DeepEqual(c, Defaults(false)) || len(probs) != 1 || probs[0].Line != 0 || !strings.Contains(probs[0].Message, "cannot read") {
		t.Fatalf("directory: %+v %v", c, probs)
	}

	big := filepath.Join(dir, "big.toml")
	if err := os.WriteFile(big, bytes.Repeat([]byte("# padding\n"), MaxFileSize/10+1), 0o644); err != nil {
		t.Fatal(err)
	}
	c, probs = Load(big, true)
	if !reflect.DeepEqual(c, Defaults(true)) || len(probs) != 1 || !strings.Contains(probs[0].Message, "larger than") {
		t.Fatalf("big file: %v", probs)
	}
}

func TestNetworkHelpers(t *testing.T) {
	c, probs := Parse([]byte(fullFile()), true)
	if len(probs) != 0 {
		t.Fatal(probs)
	}
	psk, err := c.Network.PSKBytes()
	if err != nil || len(psk) != 32 || psk[0] != 0x00 || psk[1] != 0x11 || psk[31] != 0xff {
		t.Fatalf("PSKBytes = %x, %v", psk, err)
	}
	if b, err := (Network{}).PSKBytes(); b != nil || err != nil {
		t.Fatalf("empty PSKBytes = %x, %v", b, err)
	}
	if _, err := (Network{PSK: "abcd"}).PSKBytes(); err == nil {
		t.Fatal("PSKBytes accepted 4 hex characters")
	}
	peers, err := c.Network.PeerList()
	if err != nil || len(peers) != 2 {
		t.Fatalf("PeerList = %v, %v", peers, err)
	}
	if peers[1].Scheme != "tcp" || peers[1].Address != "relay.example.org:443" || hex.EncodeToString(peers[1].PublicKey) != pubHex(3) {
		t.Fatalf("peer 2 = %+v", peers[1])
	}
	relays, err := c.Network.RelayList()
	if err != nil || len(relays) != 1 || relays[0].Address != "[2001:db8::1]:5505" {
		t.Fatalf("RelayList = %v, %v", relays, err)
	}
	if _, err := (Network{Peers: []string{"udp://x:1"}}).PeerList(); err == nil || !strings.Contains(err.Error(), "network.peers[0]") {
		t.Fatalf("PeerList with a bad entry: %v", err)
	}
}

func TestRedacted(t *testing.T) {
	c := fullConfig()
	r := c.Redacted()
	if r.Network.PSK != "(set)" || r.Wifi.PSK != "(set)" {
		t.Fatalf("Redacted left secrets: %q %q", r.Network.PSK, r.Wifi.PSK)
	}
	if c.Network.PSK == "(set)" {
		t.Fatal("Redacted modified its receiver")
	}
	if r.Node.Name != c.Node.Name || r.Master.PublicKey != c.Master.PublicKey {
		t.Fatal("Redacted changed non-secret fields")
	}
	if d := Defaults(true).Redacted(); d.Network.PSK != "" || d.Wifi.PSK != "" {
		t.Fatal("Redacted invented secrets")
	}
}

func joinProblems(ps []Problem) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString(p.String() + "\n")
	}
	return b.String()
}

// FuzzParse: Parse never panics and always returns a Config that is itself
// valid: encoding it and parsing that again gives no problems and the same
// Config. Problems have sane lines; syntax errors fail closed, and every
// fatal message ends with the consequence (unless a secret made part of it
// hidden).
func FuzzParse(f *testing.F) {
	f.Add([]byte(fullFile()), true)
	f.Add([]byte(""), false)
	f.Add([]byte("[node]\nname = \"a\"\n\n[network]\npsk = \n"), true)
	f.Add([]byte("[network]\npeers = [\"udp://[::1]:1#"+gHex+"\", 3]\naddress = \"10.0.0.1/8\"\ngateway = \"10.0.0.254\"\n"), true)
	f.Add([]byte("a.b.c = 1\n[[node]]\nx = 1\n"), false)
	f.Add([]byte("node = {name = \"x\", listen = [\"tcp://h:1\"]}\nradio.callsign = \"n0call-15\"\n"), true)
	f.Add([]byte("\xef\xbb\xbf[system]\r\nhostname = \"a.b\"\r\nwatchdog = false\r\n"), true)
	f.Add([]byte("[wifi]\nssid = \"\"\npsk = 5\n[master]\naddresses = [[1]]\n"), false)
	f.Add([]byte("[network]\npsk = 0x"+hexDigitsFirst+"\n"), true)
	f.Add([]byte("[Network]\nknown_peers_only = true\n[wifi]\nssid = \"x\"\npsk = \"short\"\n"), true)
	f.Fuzz(func(t *testing.T, data []byte, device bool) {
		c, probs := Parse(data, device)
		lines := bytes.Count(data, []byte("\n")) + 1
		for _, p := range probs {
			if p.Line < 0 || p.Line > lines || p.Message == "" {
				t.Fatalf("bad problem %+v for %d lines", p, lines)
			}
			if strings.Contains(p.Message, "internal error") {
				t.Fatalf("Parse panicked: %s", p.Message)
			}
			if strings.HasPrefix(p.Message, "syntax error") && (!p.Fatal || len(probs) != 1) {
				t.Fatalf("syntax error not alone and fatal: %v", probs)
			}
			if p.Fatal && !strings.HasSuffix(p.Message, "; "+failClosedNote) && !strings.Contains(p.Message, hiddenMark) && p.Message != hiddenMessage && p.Message != hiddenLast {
				t.Fatalf("fatal problem without the consequence: %+v", p)
			}
		}
		if FailClosed(probs) && len(probs) == 1 && strings.HasPrefix(probs[0].Message, "syntax error") && !reflect.DeepEqual(c, Defaults(device)) {
			t.Fatalf("config after a syntax error is not the defaults: %+v", c)
		}
		var buf bytes.Buffer
		if err := toml.NewEncoder(&buf).Encode(c); err != nil {
			t.Fatalf("cannot encode result %+v: %v", c, err)
		}
		c2, probs2 := Parse(buf.Bytes(), device)
		if len(probs2) != 0 {
			t.Fatalf("Parse returned an invalid config; re-parse: %v\n%s", probs2, buf.String())
		}
		if !reflect.DeepEqual(normalizeNil(c), normalizeNil(c2)) {
			t.Fatalf("re-parse differs:\n%+v\n%+v", c, c2)
		}
	})
}

// normalizeNil treats nil and empty slices alike (the TOML encoder writes
// neither, so both come back as the default).
func normalizeNil(c Config) Config {
	for _, l := range []*[]string{&c.Node.Listen, &c.Network.Peers, &c.Network.Relays, &c.Network.Interfaces, &c.Network.DNS, &c.Master.Addresses, &c.Release.Keys} {
		if len(*l) == 0 {
			*l = nil
		}
	}
	return c
}

func TestParseMeshKeys(t *testing.T) {
	cfg, problems := Parse([]byte("[network]\nknown_peers_only = true\nroles = [\"gateway\", \"relay\", \"Bad Role\"]\n"), false)
	if !cfg.Network.KnownPeersOnly {
		t.Error("known_peers_only not set")
	}
	if !reflect.DeepEqual(cfg.Network.Roles, []string{"gateway", "relay"}) {
		t.Errorf("roles = %q, want the two valid ones", cfg.Network.Roles)
	}
	if len(problems) != 1 || !strings.Contains(problems[0].Message, "Bad Role") || problems[0].Line != 3 {
		t.Errorf("problems = %+v, want one naming the bad role on line 3", problems)
	}
}

func TestLinkTimeout(t *testing.T) {
	c, problems := Parse([]byte("[network]\nlink_timeout = \"10s\"\n"), false)
	if len(problems) != 0 || c.Network.Timeout() != 10*time.Second || c.Network.LinkTimeout != "10s" {
		t.Fatalf("%v %q %v", problems, c.Network.LinkTimeout, c.Network.Timeout())
	}
	if d := Defaults(true).Network.Timeout(); d != 1500*time.Millisecond {
		t.Fatalf("default link timeout %v", d)
	}
	if d := (Network{LinkTimeout: "junk"}).Timeout(); d != DefaultLinkTimeout {
		t.Fatalf("an invalid link timeout gives %v, not the default", d)
	}
}

func TestReportInterval(t *testing.T) {
	c, problems := Parse([]byte("[master]\nreport_interval = \"90s\"\n"), false)
	if len(problems) != 0 || c.Master.Interval() != 90*time.Second || c.Master.ReportInterval != "1m30s" {
		t.Fatalf("%v %q %v", problems, c.Master.ReportInterval, c.Master.Interval())
	}
	if d := Defaults(true).Master.Interval(); d != time.Minute {
		t.Fatalf("default interval %v", d)
	}
}
