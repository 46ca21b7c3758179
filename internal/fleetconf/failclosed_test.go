package fleetconf

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestFailClosed: which problems make the configuration fail closed. Each
// case is one problem; fatal ones must end with the consequence.
func TestFailClosed(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		key   string
		fatal bool
	}{
		// Whole file.
		{"syntax error", "[node]\nname = \"a\" x\n", "", true},
		{"syntax error far from any key", "[network]\nknown_peers_only = true\n[radio]\ncallsign = \"N0CALL\n", "", true},
		// network.psk: malformed is fatal, absent or empty is not.
		{"psk short", "[network]\npsk = \"abcd\"\n", "network.psk", true},
		{"psk not hex", "[network]\npsk = \"" + strings.Repeat("g", 64) + "\"\n", "network.psk", true},
		{"psk integer", "[network]\npsk = 12\n", "network.psk", true},
		{"psk array", "[network]\npsk = [\"" + hexDigitsFirst + "\"]\n", "network.psk", true},
		// Links: defaults more open than what was written.
		{"known_peers_only string", "[network]\nknown_peers_only = \"yes\"\n", "network.known_peers_only", true},
		{"lan_discovery integer", "[network]\nlan_discovery = 0\n", "network.lan_discovery", true},
		{"listen string", "[node]\nlisten = \"udp://127.0.0.1:5505\"\n", "node.listen", true},
		{"listen no valid entry", "[node]\nlisten = [\"udp://127.0.0.1:0\"]\n", "node.listen", true},
		{"network not a table", "network = \"x\"\n", "network", true},
		{"node array of tables", "[[node]]\nname = \"x\"\n", "node", true},
		// Misspelt or misplaced guarded keys.
		{"wrong-case table", "[Network]\nknown_peers_only = true\n", "Network", true},
		{"wrong-case key", "[network]\nKnown_Peers_Only = true\n", "network.Known_Peers_Only", true},
		{"dashes", "[network]\nknown-peers-only = true\n", "network.known-peers-only", true},
		{"guarded key in another table", "[node]\nknown_peers_only = true\n", "node.known_peers_only", true},
		{"psk above every table", "psk = \"" + hexDigitsFirst + "\"\n", "psk", true},
		{"psk in radio", "[radio]\npsk = \"" + hexDigitsFirst + "\"\n", "radio.psk", true},
		// Not fatal: as closed as what was written, or no link granted.
		{"listen one entry dropped", "[node]\nlisten = [\"udp://127.0.0.1:5505\", \"kiss://x\"]\n", "node.listen", false},
		{"peer dropped with known_peers_only", "[network]\nknown_peers_only = true\npeers = [\"udp://192.0.2.1:5505\"]\n", "network.peers", false},
		{"relay wrong type", "[network]\nrelays = \"udp://192.0.2.1:5505\"\n", "network.relays", false},
		{"master key invalid", "[master]\npublic_key = \"03ab\"\n", "master.public_key", false},
		{"master addresses invalid", "[master]\naddresses = [\"x\"]\n", "master.addresses", false},
		{"release key invalid", "[release]\nkeys = [\"03ab\"]\n", "release.keys", false},
		{"status invalid", "[node]\nstatus = \"127.0.0.1\"\n", "node.status", false},
		{"interfaces invalid", "[network]\ninterfaces = \"eth0\"\n", "network.interfaces", false},
		{"address invalid", "[network]\naddress = \"dhcp\"\n", "network.address", false},
		{"wifi psk invalid", "[wifi]\npsk = \"short\"\n", "wifi.psk", false},
		{"callsign invalid", "[radio]\ncallsign = \"x\"\n", "radio.callsign", false},
		{"unknown key", "[network]\nfrobnicate = true\n", "network.frobnicate", false},
		{"unknown table", "[frobnicate]\nknown_peers_only = true\n", "frobnicate", false},
		{"misspelt key that is not guarded", "[network]\nPeers = []\n", "network.Peers", false},
		{"radio not a table", "radio = 1\n", "radio", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, probs := Parse([]byte(tc.src), true)
			// One problem, or for a list, one per entry and then the
			// one about the whole list.
			if len(probs) == 0 || len(probs) > 1 && !strings.Contains(tc.name, "entry") {
				t.Fatalf("problems:\n%s", joinProblems(probs))
			}
			p := probs[len(probs)-1]
			if p.Key != tc.key || p.Fatal != tc.fatal || FailClosed(probs) != tc.fatal {
				t.Errorf("problem %+v; want key %q, fatal %v", p, tc.key, tc.fatal)
			}
			if ends := strings.HasSuffix(p.Message, "; "+failClosedNote); ends != tc.fatal {
				t.Errorf("message %q: ends with the consequence = %v, want %v", p.Message, ends, tc.fatal)
			}
			if tc.fatal && strings.HasPrefix(p.Message, "syntax error") && !reflect.DeepEqual(c, Defaults(true)) {
				t.Errorf("config after a syntax error = %+v, want the defaults", c)
			}
		})
	}
}

func TestFailClosedAllowsNoPSK(t *testing.T) {
	for _, src := range []string{"", "[network]\npsk = \"\"\n", "[network]\nlan_discovery = false\n", fullFile()} {
		if _, probs := Parse([]byte(src), true); len(probs) != 0 || FailClosed(probs) {
			t.Errorf("%q: problems %v", src, probs)
		}
	}
	if FailClosed(nil) {
		t.Error("FailClosed(nil)")
	}
	if !FailClosed([]Problem{{Message: "a"}, {Message: "b", Fatal: true}}) {
		t.Error("FailClosed misses a fatal problem after another")
	}
}

// TestFatalKeepsRest: an invalid guarded key fails closed, but the rest of
// the file still applies (the status server, the node name), so that the
// node can say what is wrong.
func TestFatalKeepsRest(t *testing.T) {
	src := "[node]\nname = \"kit\"\nstatus = \"0.0.0.0:8081\"\n[network]\npsk = \"abc\"\nknown_peers_only = true\n"
	c, probs := Parse([]byte(src), true)
	if !FailClosed(probs) || len(probs) != 1 || probs[0].Line != 5 {
		t.Fatalf("problems %v", probs)
	}
	if c.Node.Name != "kit" || c.Node.Status != "0.0.0.0:8081" || !c.Network.KnownPeersOnly || c.Network.PSK != "" {
		t.Errorf("config %+v", c)
	}
}

// TestWifiPSKInvalidTurnsWifiOff: an invalid wifi.psk must not leave the
// node joining an open network of the configured name.
func TestWifiPSKInvalidTurnsWifiOff(t *testing.T) {
	for _, psk := range []string{`"short"`, "12345678", `"` + strings.Repeat("x", 64) + `"`, `["a passphrase"]`} {
		for _, order := range []string{"ssid = \"Field Net\"\npsk = " + psk, "psk = " + psk + "\nssid = \"Field Net\""} {
			c, probs := Parse([]byte("[wifi]\n"+order+"\n[system]\nhostname = \"kit\"\n"), true)
			if c.Wifi != (Wifi{}) {
				t.Errorf("%q: wifi %+v, want off", order, c.Wifi)
			}
			if c.System.Hostname != "kit" {
				t.Errorf("%q: rest of the file not applied", order)
			}
			if len(probs) != 2 || FailClosed(probs) {
				t.Errorf("%q: problems %v", order, probs)
			}
		}
	}
	// A valid one is kept.
	c, probs := Parse([]byte("[wifi]\nssid = \"Field Net\"\npsk = \"a passphrase\"\n"), true)
	if len(probs) != 0 || c.Wifi.SSID != "Field Net" || c.Wifi.PSK != "a passphrase" {
		t.Errorf("valid wifi: %+v %v", c.Wifi, probs)
	}
}

// TestFailClosedPastUnknownCap: a misspelt guarded key after 100 other
// unknown keys is not listed, but still makes the file fail closed.
func TestFailClosedPastUnknownCap(t *testing.T) {
	var b strings.Builder
	b.WriteString("[network]\n")
	for i := range maxUnknownKeys {
		fmt.Fprintf(&b, "k%03d = %d\n", i, i)
	}
	b.WriteString("Known_Peers_Only = true\n")
	_, probs := Parse([]byte(b.String()), true)
	if len(probs) != maxUnknownKeys+1 || !FailClosed(probs) {
		t.Fatalf("%d problems, fail closed %v", len(probs), FailClosed(probs))
	}
	if last := probs[len(probs)-1]; !last.Fatal || !strings.Contains(last.Message, "1 more unknown keys") {
		t.Errorf("summary %+v", last)
	}
	// Without it, the summary is not fatal.
	_, probs = Parse([]byte(strings.Replace(b.String(), "Known_Peers_Only", "frobnicate", 1)), true)
	if FailClosed(probs) {
		t.Errorf("fatal without a guarded key: %v", probs[len(probs)-1])
	}
}

func TestLoadFailClosed(t *testing.T) {
	dir := t.TempDir()

	// Missing: the defaults, not fatal, so a node can be tried out.
	c, probs := Load(filepath.Join(dir, FileName), true)
	if len(probs) != 1 || FailClosed(probs) || !reflect.DeepEqual(c, Defaults(true)) {
		t.Errorf("missing file: %v", probs)
	}

	// Unreadable (a directory): fatal.
	c, probs = Load(dir, true)
	if len(probs) != 1 || !FailClosed(probs) || !strings.HasSuffix(probs[0].Message, failClosedNote) || !reflect.DeepEqual(c, Defaults(true)) {
		t.Errorf("unreadable file: %v", probs)
	}

	// Too large, even when it starts with a valid, closed configuration.
	big := filepath.Join(dir, "big.toml")
	data := append([]byte("[network]\nknown_peers_only = true\n"), bytes.Repeat([]byte("# padding\n"), MaxFileSize/10)...)
	if err := os.WriteFile(big, data, 0o644); err != nil {
		t.Fatal(err)
	}
	c, probs = Load(big, true)
	if len(probs) != 1 || !FailClosed(probs) || c.Network.KnownPeersOnly {
		t.Errorf("big file: %v", probs)
	}
	// One byte less is read.
	if err := os.WriteFile(big, data[:MaxFileSize], 0o644); err != nil {
		t.Fatal(err)
	}
	c, probs = Load(big, true)
	if len(probs) != 0 || !c.Network.KnownPeersOnly {
		t.Errorf("file of MaxFileSize bytes: %v", probs)
	}

	// A syntax error through Load.
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("[network]\npsk = 0x"+hexDigitsFirst+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, probs = Load(bad, true)
	if len(probs) != 1 || !FailClosed(probs) || !reflect.DeepEqual(c, Defaults(true)) || leaks(t, hexDigitsFirst, probs) != "" {
		t.Errorf("syntax error: %v", probs)
	}
}

// TestProblemCap: a list of many bad entries gives maxProblems problems and
// one summary, which keeps the fatal flag of the problems it counts.
func TestProblemCap(t *testing.T) {
	src := "[node]\nlisten = [" + strings.Repeat("1, ", 3*maxProblems) + "]\n"
	_, probs := Parse([]byte(src), true)
	if len(probs) != maxProblems+1 {
		t.Fatalf("%d problems, want %d", len(probs), maxProblems+1)
	}
	last := probs[maxProblems]
	if want := fmt.Sprintf("%d more problems not listed", 3*maxProblems+1-maxProblems); !strings.Contains(last.Message, want) || !last.Fatal {
		t.Errorf("summary %+v, want %q and fatal (the list fell back to the default)", last, want)
	}
	for _, p := range probs[:maxProblems] {
		if p.Fatal {
			t.Fatalf("entry problem fatal: %+v", p)
		}
	}
}

// TestParseHostileInput: files built to make a careless scanner take time
// quadratic in their size (minutes at 1 MiB) are read in linear time. The
// bound is generous, for a loaded machine.
func TestParseHostileInput(t *testing.T) {
	if testing.Short() {
		t.Skip("reads several 1 MiB files")
	}
	n := MaxFileSize - 100
	for name, src := range map[string]string{
		"one long key":            "[network]\n" + strings.Repeat("psk", n/3),
		"keys ending in comments": "[network]\n" + strings.Repeat("psk#", n/4) + "!",
		"nested escapes":          "[network]\n\"\\x5c" + strings.Repeat("x5c", n/3) + "\" = 1",
		"secret on every line":    strings.Repeat("psk = 0x1\n", n/10),
		"unterminated multi-line": "[network]\npsk = \"\"\"\n" + strings.Repeat("abcdefghi\n", n/10),
		"many bad entries":        "[node]\nlisten = [" + strings.Repeat("1,", n/2) + "]\n",
	} {
		start := time.Now()
		_, probs := Parse([]byte(src), true)
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("%s: %v", name, d)
		}
		if len(probs) == 0 || len(probs) > maxProblems+2 {
			t.Errorf("%s: %d problems", name, len(probs))
		}
	}
}
