package fleetconf

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/skyfleet/skyfleet/drivers/audio/alsa"
)

// Radio entries of node.listen and network.peers (services/mesh/radio has the
// full grammar of each listen entry and its options, and checks them again
// when it opens the channel; here they are checked for shape, so that a typo
// is a config_errors line and not a node that will not start):
//
//	kiss+tcp://HOST:PORT[?options]         a KISS TCP server (Dire Wolf's 127.0.0.1:8001)
//	kiss+serial:///dev/NAME[?options]      a KISS TNC on a serial port
//	afsk:///dev/snd/pcmC1D0[?options]      the built-in modem on a sound card (ALSA)
//	afsk+fifo:///PATH?out=/PATH[&options]  the built-in modem on raw PCM FIFOs
//
// A radio peer is "kiss://CALLSIGN-SSID#pubkeyhex" (or afsk://): the station's
// callsign is its address on the channel.

// radioListenSchemes are the listen schemes of radio channels.
var radioListenSchemes = []string{"kiss+tcp", "kiss+serial", "afsk", "afsk+fifo"}

// radioPeerSchemes are the peer schemes of radio channels: a listen scheme's
// part before "+" (services/mesh/radio Transport.Network).
var radioPeerSchemes = []string{"kiss", "afsk"}

// IsRadioListen reports whether a node.listen entry is a radio channel.
func IsRadioListen(entry string) bool {
	scheme, _, ok := strings.Cut(entry, "://")
	return ok && slices.Contains(radioListenSchemes, strings.ToLower(scheme))
}

// checkRadioListen checks a radio listen entry's shape and returns it with
// the scheme in lower case.
func checkRadioListen(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("not a URL: %v", errors.Unwrap(err))
	}
	u.Scheme = strings.ToLower(u.Scheme)
	switch u.Scheme {
	case "kiss+tcp":
		if _, _, err := net.SplitHostPort(u.Host); err != nil || u.Port() == "" || (u.Path != "" && u.Path != "/") {
			return "", errors.New("want kiss+tcp://host:port, such as kiss+tcp://127.0.0.1:8001 for Dire Wolf")
		}
		if _, err := parsePort(u.Port()); err != nil {
			return "", err
		}
	case "kiss+serial":
		if u.Host != "" || !strings.HasPrefix(u.Path, "/dev/") {
			return "", errors.New("want kiss+serial:///dev/NAME (three slashes: the device's absolute path)")
		}
	case "afsk":
		if u.Host != "" || !alsa.IsDevice(u.Path) {
			return "", errors.New("want afsk:///dev/snd/pcmC<card>D<device>, such as afsk:///dev/snd/pcmC1D0 for card 1 of /proc/asound/cards")
		}
	case "afsk+fifo":
		if u.Host != "" || !strings.HasPrefix(u.Path, "/") || !strings.HasPrefix(u.Query().Get("out"), "/") {
			return "", errors.New("want afsk+fifo:///path/receive-audio?out=/path/transmit-audio")
		}
	}
	if u.User != nil || u.Fragment != "" {
		return "", errors.New("a radio entry has no user or #fragment")
	}
	return u.String(), nil
}

// parseRadioPeer parses the part of a radio peer entry before "#": scheme
// kiss or afsk, and a callsign. It returns the scheme and the callsign in
// upper case.
func parseRadioPeer(s string) (scheme, call string, err error) {
	scheme, rest, _ := strings.Cut(s, "://")
	call, err = checkCallsign(rest, false)
	if err != nil {
		return "", "", err
	}
	if call == "" {
		return "", "", fmt.Errorf("want %s://CALLSIGN-SSID, the station's callsign", scheme)
	}
	return strings.ToLower(scheme), call, nil
}

// radioChecks adds the problems of radio entries that depend on other keys: a
// radio channel without [radio] callsign receives but transmits nothing.
func (p *parser) radioChecks() {
	if p.cfg.Radio.Callsign != "" {
		return
	}
	for _, l := range p.cfg.Node.Listen {
		if IsRadioListen(l) {
			p.add(p.keyLine["node.listen"], "node.listen",
				fmt.Sprintf("%s: receive only: nothing is transmitted there until [radio] callsign is set (47 CFR 97.119: every transmission carries the operator's callsign)", l))
		}
	}
}
