package radio

import (
	"bytes"
	"context"
	"io"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/skyfleet/skyfleet/drivers/radio/ax25"
	"github.com/skyfleet/skyfleet/drivers/radio/kiss"
	"github.com/skyfleet/skyfleet/drivers/radio/modem"
	"github.com/skyfleet/skyfleet/services/mesh/transport"
)

// Listen refuses entries it cannot honour, saying what is wrong.
func TestListenRefuses(t *testing.T) {
	cs := ax25.Address{Call: "N0CALL", SSID: 1}
	for entry, want := range map[string]string{
		"kiss://127.0.0.1:8001":                           "unknown scheme",
		"kiss+tcp://127.0.0.1":                            "want kiss+tcp://host:port",
		"kiss+tcp://127.0.0.1:8001?baud=9600":             "baud= is for kiss+serial",
		"kiss+tcp://127.0.0.1:8001?paclen=10":             "paclen",
		"kiss+tcp://127.0.0.1:8001?port=16":               "port",
		"kiss+tcp://127.0.0.1:8001?txdelay=forever":       "txdelay",
		"kiss+tcp://127.0.0.1:8001?persist=2":             "persist",
		"kiss+tcp://127.0.0.1:8001?colour=blue":           "unknown option",
		"kiss+serial://dev/ttyUSB0":                       "three slashes",
		"afsk+fifo:///tmp/in":                             "out=",
		"afsk+fifo:///tmp/in?out=/tmp/out&rate=100":       "rate",
		"afsk+fifo:///tmp/in?out=/tmp/out&ptt=rts:COM":    "ptt",
		"afsk+fifo:///tmp/in?out=/tmp/out&ptt=gpio:":      "want gpio:GPIO17",
		"afsk+fifo:///tmp/in?out=/tmp/out&ptt=ptt:/dev/x": "unknown keying",
		"afsk+fifo:///tmp/in?out=/tmp/out&baud=9600":      "unknown option",
		"afsk:///dev/dsp":                                 "want afsk:///dev/snd/pcmC<card>D<device>",
		"afsk://dev/snd/pcmC1D0":                          "three slashes",
		"afsk:///dev/snd/pcmC1D0?out=/tmp/x":              "unknown option",
		"afsk:///dev/snd/pcmC1D0?rate=4000":               "rate",
	} {
		if _, err := Listen(entry, cs, nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error about %q", entry, err, want)
		}
	}
}

// A kiss+tcp entry talks KISS to the TNC: the channel parameters given (the
// others at their defaults) before anything else, then each fragment as a
// data frame without its FCS.
func TestListenKISSTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conns := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			conns <- c
		}
	}()
	tr, err := Listen("kiss+tcp://"+ln.Addr().String()+"?port=2&txdelay=500ms", ax25.Address{Call: "N0CALL", SSID: 1}, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	c := <-conns
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(time.Minute))
	dec := kiss.NewDecoder(c, 0)
	want := []struct{ cmd, val byte }{{kiss.CmdTXDelay, 50}, {kiss.CmdP, 63}, {kiss.CmdSlotTime, 10}, {kiss.CmdTXTail, 3}, {kiss.CmdFullDuplex, 0}}
	for _, w := range want {
		f, err := dec.Next()
		if err != nil || f.Port != 2 || f.Command != w.cmd || len(f.Data) != 1 || f.Data[0] != w.val {
			t.Fatalf("parameter frame %+v %v, want command %d = %d on port 2", f, err, w.cmd, w.val)
		}
	}
	if err := tr.WriteTo([]byte("hello"), transport.NamedEndpoint("W1AW")); err != nil {
		t.Fatal(err)
	}
	for _, what := range []string{"ID", "fragment"} {
		f, err := dec.Next()
		if err != nil || f.Command != kiss.CmdData || f.Port != 2 {
			t.Fatalf("%s: %+v %v", what, f, err)
		}
		fcs := ax25.FCS(f.Data)
		fr, err := ax25.Decode(append(bytes.Clone(f.Data), byte(fcs), byte(fcs>>8)))
		if err != nil || fr.Src.String() != "N0CALL-1" {
			t.Fatalf("%s: %v %v", what, fr, err)
		}
		if what == "fragment" && (fr.Dst.String() != "W1AW" || !bytes.HasSuffix(fr.Info, []byte("hello"))) {
			t.Fatalf("fragment %s", fr.TNC2())
		}
	}
}

// Skyfleet's modem on both ends, audio through FIFOs (afsk+fifo entries, as
// two nodes without sound cards would be configured): a datagram of three
// frames crosses, one comes back, and the ports count airtime and busy time.
func TestListenModemFIFOs(t *testing.T) {
	dir := t.TempDir()
	ab, ba := filepath.Join(dir, "a2b"), filepath.Join(dir, "b2a")
	for _, f := range []string{ab, ba} {
		if err := syscall.Mkfifo(f, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	a, err := Listen("afsk+fifo://"+ba+"?out="+ab+"&rate=22050&txdelay=200ms", ax25.Address{Call: "N0CALL", SSID: 1}, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Listen("afsk+fifo://"+ab+"?out="+ba, ax25.Address{Call: "N0CALL", SSID: 2}, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	p := make([]byte, 600)
	for i := range p {
		p[i] = byte(i ^ 0x5a)
	}
	if err := a.WriteTo(p, transport.NamedEndpoint("N0CALL-2")); err != nil {
		t.Fatal(err)
	}
	if got, from := read(t, b); !bytes.Equal(got, p) || from.Name() != "N0CALL-1" {
		t.Fatalf("%d bytes from %v", len(got), from)
	}
	if err := b.WriteTo([]byte("73"), transport.NamedEndpoint("N0CALL-1")); err != nil {
		t.Fatal(err)
	}
	if got, _ := read(t, a); string(got) != "73" {
		t.Fatalf("%q", got)
	}
	sa, sb := a.Stats(), b.Stats()
	if sa.FramesOut != 4 || sa.Airtime < 2*time.Second || sb.BusyTime < 2*time.Second || sb.DatagramsIn != 1 {
		t.Fatalf("a %+v\nb %+v", sa, sb)
	}
}

// ModemPort joins the modem to the transport with any audio device: here
// in-process pipes.
func TestModemPortPipes(t *testing.T) {
	abR, abW := io.Pipe()
	baR, baW := io.Pipe()
	mk := func(call string, in io.Reader, out io.Writer) *Transport {
		cs, _ := ax25.ParseAddress(call)
		tr, err := New(Config{URL: "afsk+test://", Callsign: cs, Open: func(context.Context) (Port, error) {
			return ModemPort(modem.Config{Rate: 22050, Audio: modem.NewStream(22050, in, out)})
		}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		return tr
	}
	a := mk("N0CALL-1", baR, abW)
	b := mk("N0CALL-2", abR, baW)
	if err := a.WriteTo([]byte("over the modem"), transport.NamedEndpoint("N0CALL-2")); err != nil {
		t.Fatal(err)
	}
	if got, _ := read(t, b); string(got) != "over the modem" {
		t.Fatalf("%q", got)
	}
	if a.Network() != "afsk" {
		t.Fatalf("network %q", a.Network())
	}
}

// ptt=gpio:NAME keys the board's pin of that name from periph.io's registry
// (here a test double registered under a name no board has), and gpio!: keys
// it low; a name the board lacks is an error when the keyer opens.
func TestPTTByGPIOName(t *testing.T) {
	pin := &gpiotest.Pin{N: "SKYFLEET_TEST_PTT", Num: 1017, L: gpio.High}
	if err := gpioreg.Register(pin); err != nil {
		t.Fatal(err)
	}
	defer gpioreg.Unregister(pin.N)
	for _, c := range []struct {
		opt      string
		keyed    gpio.Level
		released gpio.Level
	}{{"gpio:SKYFLEET_TEST_PTT", gpio.High, gpio.Low}, {"gpio!:SKYFLEET_TEST_PTT", gpio.Low, gpio.High}} {
		open, err := parsePTT(c.opt)
		if err != nil {
			t.Fatal(err)
		}
		k, err := open()
		if err != nil {
			t.Fatalf("%s: %v", c.opt, err)
		}
		if pin.Read() != c.released {
			t.Errorf("%s: %v at open, want %v (unkeyed)", c.opt, pin.Read(), c.released)
		}
		k.Key(true)
		if pin.Read() != c.keyed {
			t.Errorf("%s: %v keyed, want %v", c.opt, pin.Read(), c.keyed)
		}
		k.Close()
		if pin.Read() != c.released {
			t.Errorf("%s: %v after close, want %v", c.opt, pin.Read(), c.released)
		}
	}
	open, err := parsePTT("gpio:SKYFLEET_NO_SUCH_PIN")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := open(); err == nil || !strings.Contains(err.Error(), "no such pin") {
		t.Fatalf("a pin the board lacks: %v", err)
	}
}
