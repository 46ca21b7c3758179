package radio

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/skyfleet/skyfleet/drivers/radio/ax25"
	"github.com/skyfleet/skyfleet/drivers/radio/kiss"
)

// kissPort is a KISS TNC's port as a Port: frames go to the TNC without their
// FCS (the TNC adds it on air) and come back without it (the TNC dropped the
// ones whose FCS failed), so the FCS is computed here on the way in.
type kissPort struct {
	tnc  *kiss.TNC
	port uint8
	buf  []byte
}

func (k *kissPort) Send(frame []byte) error {
	if len(frame) < 2 {
		return fmt.Errorf("radio: %d-byte frame", len(frame))
	}
	return k.tnc.Send(k.port, frame[:len(frame)-2])
}

func (k *kissPort) Receive() ([]byte, error) {
	for {
		port, b, err := k.tnc.Receive()
		if err != nil {
			return nil, err
		}
		if port != k.port {
			continue // another radio port of a multi-port TNC
		}
		fcs := ax25.FCS(b)
		k.buf = append(append(k.buf[:0], b...), byte(fcs), byte(fcs>>8))
		return k.buf, nil
	}
}

func (k *kissPort) Close() error { return k.tnc.Close() }

func (k *kissPort) PortStats() PortStats {
	s := k.tnc.Stats()
	return PortStats{FramingErrors: s.BadEscapes + s.Oversize}
}

// Listen opens a listen entry of fleet.toml [node] for callsign (the zero
// Address: receive only):
//
//	kiss+tcp://HOST:PORT[?options]       a KISS TCP server (Dire Wolf: 127.0.0.1:8001)
//	kiss+serial:///dev/ttyUSB0[?options] a KISS TNC on a serial port (baud=, default 9600)
//	afsk:///dev/snd/pcmC1D0              the built-in modem on a sound card (modem.go)
//	afsk+fifo:///path/rx?out=/path/tx    the built-in modem on raw PCM FIFOs (modem.go)
//
// Options: port=N (the TNC's radio port, 0-15), paclen=N (info bytes per
// frame, 64-2048, default 256), bitrate=N (the channel's bit/s for the airtime
// estimate, default 1200), and the KISS channel parameters, sent to the TNC
// when any is given (the others then at these defaults): txdelay=300ms,
// persist=0.25, slottime=100ms, txtail=30ms.
// Errors: a malformed entry or option, or the TNC cannot be reached.
func Listen(entry string, callsign ax25.Address, logf func(string, ...any)) (*Transport, error) {
	u, err := url.Parse(entry)
	if err != nil {
		return nil, fmt.Errorf("radio: %q: %w", entry, err)
	}
	if strings.EqualFold(u.Scheme, "afsk+fifo") || strings.EqualFold(u.Scheme, "afsk") {
		return listenModem(entry, u, callsign, logf)
	}
	o, err := parseOptions(entry, u, "port", "paclen", "bitrate", "baud", "txdelay", "persist", "slottime", "txtail")
	if err != nil {
		return nil, err
	}
	tncPort, err := o.integer("port", 0, 0, kiss.MaxPort)
	if err != nil {
		return nil, err
	}
	paclen, err := o.integer("paclen", DefaultPaclen, MinPaclen, ax25.MaxInfo)
	if err != nil {
		return nil, err
	}
	bitrate, err := o.integer("bitrate", DefaultBitRate, 50, 1_000_000)
	if err != nil {
		return nil, err
	}
	// SetParams sends all four; those not given keep the usual defaults.
	params := kiss.Params{TXDelay: 300 * time.Millisecond, Persistence: 0.25, SlotTime: 100 * time.Millisecond, TXTail: 30 * time.Millisecond}
	set := false
	for _, p := range []struct {
		name string
		to   *time.Duration
	}{{"txdelay", &params.TXDelay}, {"slottime", &params.SlotTime}, {"txtail", &params.TXTail}} {
		d, ok, err := o.duration(p.name, 2550*time.Millisecond)
		if err != nil {
			return nil, err
		}
		if ok {
			*p.to, set = d, true
		}
	}
	if p, ok, err := o.probability("persist"); err != nil {
		return nil, err
	} else if ok {
		params.Persistence, set = p, true
	}
	var dial func(ctx context.Context) (*kiss.TNC, error)
	switch strings.ToLower(u.Scheme) {
	case "kiss+tcp":
		if u.Host == "" || u.Port() == "" || u.Path != "" {
			return nil, fmt.Errorf("radio: %q: want kiss+tcp://host:port (Dire Wolf's is 127.0.0.1:%d)", entry, kiss.DefaultTCPPort)
		}
		if o.get("baud") != "" {
			return nil, fmt.Errorf("radio: %q: baud= is for kiss+serial", entry)
		}
		dial = func(ctx context.Context) (*kiss.TNC, error) {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			return kiss.DialTCP(ctx, u.Host)
		}
	case "kiss+serial":
		if u.Host != "" || !strings.HasPrefix(u.Path, "/dev/") {
			return nil, fmt.Errorf("radio: %q: want kiss+serial:///dev/NAME (three slashes: the device's absolute path)", entry)
		}
		baud, err := o.integer("baud", 9600, 300, 4_000_000)
		if err != nil {
			return nil, err
		}
		dial = func(context.Context) (*kiss.TNC, error) { return kiss.OpenSerial(u.Path, baud) }
	default:
		return nil, fmt.Errorf("radio: %q: unknown scheme %q (kiss+tcp, kiss+serial, afsk or afsk+fifo)", entry, u.Scheme)
	}
	open := func(ctx context.Context) (Port, error) {
		tnc, err := dial(ctx)
		if err != nil {
			return nil, err
		}
		if set {
			if err := tnc.SetParams(uint8(tncPort), params); err != nil {
				tnc.Close()
				return nil, err
			}
		}
		return &kissPort{tnc: tnc, port: uint8(tncPort)}, nil
	}
	return New(Config{URL: entry, Callsign: callsign, Open: open, Paclen: paclen, BitRate: bitrate, TXDelay: params.TXDelay, Pace: true, Logf: logf})
}
