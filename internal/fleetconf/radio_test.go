package fleetconf

import (
	"reflect"
	"strings"
	"testing"
)

// Radio channels in node.listen and radio stations in network.peers: the
// four listen forms are kept (scheme in lower case), malformed ones are
// refused with the form to use, a peer's address is its callsign, and a radio
// channel without [radio] callsign is a config_errors line saying it will not
// transmit.
func TestParseRadioEntries(t *testing.T) {
	src := `[node]
listen = [
  "udp://0.0.0.0:5505",
  "KISS+TCP://127.0.0.1:8001",
  "kiss+serial:///dev/ttyUSB0?baud=9600",
  "afsk+fifo:///run/rx?out=/run/tx&rate=22050",
  "afsk:///dev/snd/pcmC1D0?rate=48000&ptt=rts:/dev/ttyUSB0",
  "kiss+tcp://127.0.0.1",
  "kiss+serial://ttyUSB0",
  "afsk+fifo:///run/rx",
  "afsk:///dev/dsp",
]
[network]
peers = ["kiss://n0call-3#` + pubHex(2) + `", "afsk://N0CALL-16#` + pubHex(3) + `"]
`
	c, probs := Parse([]byte(src), true)
	wantListen := []string{"udp://0.0.0.0:5505", "kiss+tcp://127.0.0.1:8001",
		"kiss+serial:///dev/ttyUSB0?baud=9600", "afsk+fifo:///run/rx?out=/run/tx&rate=22050",
		"afsk:///dev/snd/pcmC1D0?rate=48000&ptt=rts:/dev/ttyUSB0"}
	if !reflect.DeepEqual(c.Node.Listen, wantListen) {
		t.Errorf("listen = %q", c.Node.Listen)
	}
	if want := []string{"kiss://N0CALL-3#" + pubHex(2)}; !reflect.DeepEqual(c.Network.Peers, want) {
		t.Errorf("peers = %q, want %q", c.Network.Peers, want)
	}
	ps, _ := c.Network.PeerList()
	if len(ps) != 1 || ps[0].Scheme != "kiss" || ps[0].Address != "N0CALL-3" {
		t.Errorf("peer list %+v", ps)
	}
	want := []struct{ key, msg string }{
		{"node.listen", "kiss+tcp://127.0.0.1:8001: receive only: nothing is transmitted there until [radio] callsign is set"},
		{"node.listen", "kiss+serial:///dev/ttyUSB0?baud=9600: receive only"},
		{"node.listen", "afsk+fifo:///run/rx?out=/run/tx&rate=22050: receive only"},
		{"node.listen", "afsk:///dev/snd/pcmC1D0?rate=48000&ptt=rts:/dev/ttyUSB0: receive only"},
		{"node.listen", `entry 6 "kiss+tcp://127.0.0.1": want kiss+tcp://host:port`},
		{"node.listen", `entry 7 "kiss+serial://ttyUSB0": want kiss+serial:///dev/NAME`},
		{"node.listen", `entry 8 "afsk+fifo:///run/rx": want afsk+fifo:///path/receive-audio?out=`},
		{"node.listen", `entry 9 "afsk:///dev/dsp": want afsk:///dev/snd/pcmC<card>D<device>`},
		{"network.peers", `entry 2 "afsk://N0CALL-16#` + pubHex(3) + `": callsign "N0CALL-16": SSID must be 0-15`},
	}
	if len(probs) != len(want) {
		t.Fatalf("problems:\n%s", joinProblems(probs))
	}
	for i, w := range want {
		if probs[i].Key != w.key || !strings.Contains(probs[i].Message, w.msg) || probs[i].Fatal {
			t.Errorf("problem %d = %s; want %s %q, not fatal", i, probs[i], w.key, w.msg)
		}
	}

	// With a callsign the channels transmit, and nothing is said.
	c, probs = Parse([]byte(src+"[radio]\ncallsign = \"n0call-2\"\n"), true)
	if c.Radio.Callsign != "N0CALL-2" {
		t.Errorf("callsign %q", c.Radio.Callsign)
	}
	for _, p := range probs {
		if strings.Contains(p.Message, "receive only") {
			t.Errorf("with a callsign: %s", p)
		}
	}
}
