package radio

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3"

	"github.com/skyfleet/skyfleet/drivers/audio/alsa"
	"github.com/skyfleet/skyfleet/drivers/radio/ax25"
	"github.com/skyfleet/skyfleet/drivers/radio/modem"
	"github.com/skyfleet/skyfleet/drivers/radio/ptt"
)

// modemPort is Skyfleet's own sound-card TNC as a Port.
type modemPort struct{ *modem.TNC }

func (m modemPort) PortStats() PortStats {
	s := m.TNC.Stats()
	return PortStats{FCSErrors: s.FCSErrors, BusyTime: s.BusyTime, Airtime: s.Airtime}
}

// ModemPort opens a Port on the built-in modem with cfg (package modem): what
// a listen entry's audio device becomes, and what tests join with pipes.
func ModemPort(cfg modem.Config) (Port, error) {
	t, err := modem.New(cfg)
	if err != nil {
		return nil, err
	}
	return modemPort{t}, nil
}

// parsePTT reads a ptt= option: "vox" (the default), "rts:/dev/ttyUSB0",
// "dtr:/dev/ttyUSB0" (add "!" after the line to key with it low, "rts!:"),
// "cm108:/dev/hidraw0" or "cm108:/dev/hidraw0:3" (the GPIO pin, default 3),
// "gpio:GPIO17" or "gpio:17" (a pin of the board's header, by its name or BCM
// number, through periph.io; "gpio!:" keys it low). It returns a function that
// opens the keyer.
func parsePTT(s string) (func() (ptt.Keyer, error), error) {
	if s == "" || s == "vox" {
		return func() (ptt.Keyer, error) { return ptt.VOX{}, nil }, nil
	}
	kind, dev, ok := strings.Cut(s, ":")
	if strings.TrimSuffix(kind, "!") == "gpio" {
		name := dev
		if _, err := strconv.Atoi(name); err == nil {
			name = "GPIO" + name // a BCM number, as on the Pi's pinout
		}
		if !ok || name == "" {
			return nil, fmt.Errorf("ptt=%q: want gpio:GPIO17 (or gpio:17: the BCM number)", s)
		}
		invert := strings.HasSuffix(kind, "!")
		return func() (ptt.Keyer, error) { return openGPIO(name, invert) }, nil
	}
	if !ok || !strings.HasPrefix(dev, "/dev/") {
		return nil, fmt.Errorf("ptt=%q: want vox, rts:/dev/NAME, dtr:/dev/NAME or cm108:/dev/hidrawN[:PIN]", s)
	}
	invert := strings.HasSuffix(kind, "!")
	kind = strings.TrimSuffix(kind, "!")
	switch kind {
	case "rts", "dtr":
		line := ptt.RTS
		if kind == "dtr" {
			line = ptt.DTR
		}
		return func() (ptt.Keyer, error) { return ptt.OpenSerial(dev, line, invert) }, nil
	case "cm108":
		pin := 3
		if d, p, ok := strings.Cut(dev, ":"); ok {
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 || n > 8 {
				return nil, fmt.Errorf("ptt=%q: the CM108 GPIO pin is 1 to 8", s)
			}
			dev, pin = d, n
		}
		return func() (ptt.Keyer, error) { return ptt.OpenCM108(dev, pin, invert) }, nil
	}
	return nil, fmt.Errorf("ptt=%q: unknown keying %q (vox, rts, dtr, cm108, gpio)", s, kind)
}

// openGPIO keys by the board's pin called name (periph.io's registry, which
// host.Init fills with the pins of the SoC it finds). Errors: the host's
// drivers do not load, or no pin has that name here (not a Pi, or a name
// the Pi does not have).
func openGPIO(name string, invert bool) (ptt.Keyer, error) {
	if _, err := host.Init(); err != nil {
		return nil, fmt.Errorf("ptt gpio:%s: the board's GPIO drivers: %w", name, err)
	}
	pin := gpioreg.ByName(name)
	if pin == nil {
		return nil, fmt.Errorf("ptt gpio:%s: this board has no such pin", name)
	}
	return ptt.NewGPIO(pin, invert)
}

// listenModem opens an afsk:// or afsk+fifo:// entry: the built-in modem on
// a sound card through ALSA (afsk:///dev/snd/pcmC1D0: card 1, device 0, its
// playback and capture; drivers/audio/alsa), or on raw 16-bit mono PCM in two
// FIFOs (modem.Stream): the receive audio from the entry's path and the
// transmit audio to out=. The FIFOs are how two nodes share a channel without
// sound cards, and how a host feeds the modem from sox or arecord. Both take
// rate= Hz (default 22050; USB sound dongles often take only 44100 or 48000)
// and ptt= keying (default vox), and paclen=, txdelay=, txtail=, persist=,
// slottime=.
func listenModem(entry string, u *url.URL, callsign ax25.Address, logf func(string, ...any)) (*Transport, error) {
	fifo := strings.EqualFold(u.Scheme, "afsk+fifo")
	allowed := []string{"rate", "ptt", "paclen", "txdelay", "txtail", "persist", "slottime"}
	if fifo {
		allowed = append(allowed, "out")
	}
	o, err := parseOptions(entry, u, allowed...)
	if err != nil {
		return nil, err
	}
	switch {
	case fifo && (u.Host != "" || !strings.HasPrefix(u.Path, "/") || !strings.HasPrefix(o.get("out"), "/")):
		return nil, fmt.Errorf("radio: %q: want afsk+fifo:///path/receive-audio?out=/path/transmit-audio", entry)
	case !fifo && (u.Host != "" || !alsa.IsDevice(u.Path)):
		return nil, fmt.Errorf("radio: %q: want afsk:///dev/snd/pcmC<card>D<device> (three slashes; the card numbers are in /proc/asound/cards)", entry)
	}
	rate, err := o.integer("rate", 22050, 8000, 192000)
	if err != nil {
		return nil, err
	}
	paclen, err := o.integer("paclen", DefaultPaclen, MinPaclen, ax25.MaxInfo)
	if err != nil {
		return nil, err
	}
	key, err := parsePTT(o.get("ptt"))
	if err != nil {
		return nil, fmt.Errorf("radio: %q: %w", entry, err)
	}
	var times [3]time.Duration
	for i, name := range []string{"txdelay", "txtail", "slottime"} {
		if times[i], _, err = o.duration(name, 2550*time.Millisecond); err != nil {
			return nil, err
		}
	}
	persist, _, err := o.probability("persist")
	if err != nil {
		return nil, err
	}
	openAudio := func() (modem.Audio, error) { return alsa.OpenDevice(u.Path, rate) }
	if fifo {
		in, out := u.Path, o.get("out")
		openAudio = func() (modem.Audio, error) {
			// Read-write opens: a FIFO opened for reading alone waits for
			// a writer, and the other node waits for this one.
			rx, err := os.OpenFile(in, os.O_RDWR, 0)
			if err != nil {
				return nil, err
			}
			tx, err := os.OpenFile(out, os.O_RDWR, 0)
			if err != nil {
				rx.Close()
				return nil, err
			}
			return modem.NewStream(rate, rx, tx), nil
		}
	}
	open := func(context.Context) (Port, error) {
		audio, err := openAudio()
		if err != nil {
			return nil, err
		}
		k, err := key()
		if err != nil {
			audio.Close()
			return nil, err
		}
		return ModemPort(modem.Config{Rate: rate, Audio: audio, Keyer: k,
			Channel: ptt.Params{SlotTime: times[2], Persistence: persist},
			TXDelay: times[0], TXTail: times[1]})
	}
	txdelay := times[0]
	if txdelay == 0 {
		txdelay = 300 * time.Millisecond
	}
	return New(Config{URL: entry, Callsign: callsign, Open: open, Paclen: paclen, TXDelay: txdelay, Logf: logf})
}
