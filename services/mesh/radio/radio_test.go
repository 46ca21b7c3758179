package radio

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/drivers/radio/ax25"
	"github.com/skyfleet/skyfleet/services/mesh/internal/ether"
	"github.com/skyfleet/skyfleet/services/mesh/transport"
)

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func call(t *testing.T, s string) ax25.Address {
	t.Helper()
	a, err := ax25.ParseAddress(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func station(t *testing.T, e *ether.Ether, callsign string, clk *fakeClock) *Transport {
	t.Helper()
	var cs ax25.Address
	if callsign != "" {
		cs = call(t, callsign)
	}
	p := e.Port()
	tr, err := New(Config{URL: "kiss+tcp://test:8001", Callsign: cs, Now: clk.Now,
		Open: func(context.Context) (Port, error) { return p, nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// read returns the next datagram tr delivers, failing after a minute.
func read(t *testing.T, tr *Transport) ([]byte, transport.Endpoint) {
	t.Helper()
	type res struct {
		b    []byte
		from transport.Endpoint
		err  error
	}
	ch := make(chan res, 1)
	go func() {
		buf := make([]byte, 4096)
		n, from, err := tr.ReadFrom(buf)
		ch <- res{buf[:n], from, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.b, r.from
	case <-time.After(time.Minute):
		t.Fatal("no datagram within a minute")
	}
	return nil, transport.Endpoint{}
}

// waitFor polls cond until it holds, failing after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// A datagram of the router's MTU crosses as seven UI frames from the sender's
// callsign to the receiver's, in clear, after one ID frame, and arrives whole
// from the sender's callsign.
func TestDatagramCrosses(t *testing.T) {
	e := ether.New()
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	a := station(t, e, "N0CALL-1", clk)
	b := station(t, e, "n0call-2", clk)
	// UDP's 1452 bytes and 2×49 for two signatures in place of two tags.
	if a.MTU(transport.Endpoint{}) != 1550 {
		t.Fatalf("MTU %d", a.MTU(transport.Endpoint{}))
	}
	p := make([]byte, 1550)
	for i := range p {
		p[i] = byte(i * 7)
	}
	to, err := a.Resolve("N0CALL-2")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.WriteTo(p, to); err != nil {
		t.Fatal(err)
	}
	got, from := read(t, b)
	if !bytes.Equal(got, p) || from != transport.NamedEndpoint("N0CALL-1") {
		t.Fatalf("got %d bytes from %v", len(got), from)
	}
	fs := e.Frames()
	if len(fs) != 8 {
		t.Fatalf("%d frames on the air, want an ID and 7 fragments", len(fs))
	}
	if fs[0].Dst.Call != "ID" || fs[0].Src.String() != "N0CALL-1" || !bytes.HasPrefix(fs[0].Info, []byte("N0CALL-1 ")) {
		t.Fatalf("first frame %s, want the ID", fs[0].TNC2())
	}
	var joined []byte
	for _, f := range fs[1:] {
		if f.Src.String() != "N0CALL-1" || f.Dst.String() != "N0CALL-2" || f.PID != ax25.PIDNoLayer3 || len(f.Info) > DefaultPaclen {
			t.Fatalf("fragment %s (%d info bytes)", f.TNC2(), len(f.Info))
		}
		joined = append(joined, f.Info[fragHeader:]...)
	}
	if !bytes.Equal(joined, p) {
		t.Fatal("the fragments do not carry the datagram in clear")
	}
	if s := a.Stats(); s.FramesOut != 8 || s.DatagramsOut != 1 || s.IDs != 1 || s.EstimatedAirtime < 8*300*time.Millisecond {
		t.Fatalf("sender stats %+v", s)
	}
	if s := b.Stats(); s.FramesIn != 8 || s.DatagramsIn != 1 || s.Foreign != 1 {
		t.Fatalf("receiver stats %+v (the ID is foreign)", s)
	}
	if err := a.WriteTo(make([]byte, MaxFragments*(DefaultPaclen-fragHeader)+1), to); !errors.Is(err, ErrTooLong) {
		t.Fatalf("oversize datagram: %v", err)
	}
}

// 47 CFR 97.119(a): an ID at least every 10 minutes while transmitting, and
// not more often than needed.
func TestIDEveryTenMinutes(t *testing.T) {
	e := ether.New()
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	a := station(t, e, "N0CALL-1", clk)
	b := station(t, e, "N0CALL-2", clk)
	to := transport.NamedEndpoint("N0CALL-2")
	send := func() {
		t.Helper()
		if err := a.WriteTo([]byte("hello"), to); err != nil {
			t.Fatal(err)
		}
		read(t, b)
	}
	send()
	clk.add(9*time.Minute + 59*time.Second)
	send()
	if n := a.Stats().IDs; n != 1 {
		t.Fatalf("%d IDs within 10 minutes", n)
	}
	clk.add(time.Second)
	send()
	if n := a.Stats().IDs; n != 2 {
		t.Fatalf("%d IDs after 10 minutes, want 2", n)
	}
	var ids []int
	for i, f := range e.Frames() {
		if f.Dst.Call == "ID" {
			ids = append(ids, i)
		}
	}
	if len(ids) != 2 || ids[0] != 0 || ids[1] != 3 {
		t.Fatalf("IDs at frames %v, want 0 and 3 (before the first and third datagram)", ids)
	}
}

// Without a callsign a node transmits nothing, says why, and still hears
// broadcasts.
func TestNoCallsignRefusesToTransmit(t *testing.T) {
	e := ether.New()
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	mute := station(t, e, "", clk)
	a := station(t, e, "N0CALL-1", clk)
	if err := mute.WriteTo([]byte("x"), transport.NamedEndpoint("N0CALL-1")); !errors.Is(err, ErrNoCallsign) {
		t.Fatalf("WriteTo without a callsign: %v", err)
	}
	if n := len(e.Frames()); n != 0 {
		t.Fatalf("%d frames sent without a callsign", n)
	}
	if s := mute.Stats(); s.NoCallsign != 1 {
		t.Fatalf("stats %+v", s)
	}
	if err := a.WriteTo([]byte("to all"), transport.NamedEndpoint(Broadcast)); err != nil {
		t.Fatal(err)
	}
	if got, from := read(t, mute); string(got) != "to all" || from.Name() != "N0CALL-1" {
		t.Fatalf("broadcast: %q from %v", got, from)
	}
}

// Other traffic on the channel (APRS, frames for other callsigns, malformed
// fragments, frames that do not decode) is counted and never delivered; a
// digipeated copy of a datagram is delivered once; a datagram that lost a
// fragment is dropped after 90 s and counted.
func TestForeignAndBrokenTraffic(t *testing.T) {
	e := ether.New()
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	b := station(t, e, "N0CALL-2", clk)
	other := e.Port()
	me, src := call(t, "N0CALL-2"), call(t, "W1AW-5")
	ui := func(dst ax25.Address, info []byte) []byte {
		f, err := ax25.NewUI(dst, src, nil, info).Encode()
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	frag := func(num uint16, i, n int, data string) []byte {
		return ui(me, appendFragment(nil, num, i, n, []byte(data)))
	}
	other.Send(ui(call(t, "APRS"), []byte("!4903.50N/07201.75W-"))) // APRS
	other.Send(ui(call(t, "N0CALL-3"), appendFragment(nil, 1, 0, 1, []byte("not mine"))))
	other.Send(ui(me, []byte(">status text")))             // not a fragment
	other.Send(ui(me, []byte{'S', 0x20, 0, 1, 0x00, 'x'})) // version 2
	other.Send(ui(me, []byte{'S', 0x10, 0, 1, 0x10, 'x'})) // index 1 of 1
	other.Send([]byte("garbage that is no frame at all"))
	other.Send(frag(7, 0, 2, "hello, "))
	other.Send(frag(7, 0, 2, "hello, ")) // a digipeater's copy
	other.Send(frag(7, 1, 2, "world"))
	other.Send(frag(7, 1, 2, "world"))
	if got, from := read(t, b); string(got) != "hello, world" || from.Name() != "W1AW-5" {
		t.Fatalf("%q from %v", got, from)
	}
	other.Send(frag(7, 0, 2, "hello, ")) // a late copy of a delivered datagram
	other.Send(frag(7, 1, 2, "world"))
	other.Send(frag(8, 0, 2, "lost ")) // its second fragment never comes
	other.Send(frag(9, 0, 1, "marker"))
	if got, _ := read(t, b); string(got) != "marker" {
		t.Fatalf("%q, want the marker (the late copy delivered again?)", got)
	}
	clk.add(partialExpiry + time.Second)
	other.Send(frag(10, 0, 2, "next ")) // a new datagram makes the expired one go
	waitFor(t, "the lost datagram counted", func() bool { return b.Stats().Incomplete == 1 })
	s := b.Stats()
	if s.Foreign != 3 || s.BadFrames != 3 || s.DatagramsIn != 2 {
		t.Fatalf("stats %+v: want 3 foreign (APRS, another callsign, text), 3 bad (version, index, garbage), 2 datagrams", s)
	}
}

// The reassembler holds at most maxPartials datagrams, maxPartialsPerSource
// of them from one sender, whatever strangers send.
func TestReassemblyLimits(t *testing.T) {
	r := newReassembler()
	now := time.Unix(1e9, 0)
	for i := range 1000 {
		r.add("FLOOD-1", fragment{num: uint16(i), index: 0, count: 2, data: []byte("x")}, now)
		if r.perSrc["FLOOD-1"] > maxPartialsPerSource {
			t.Fatalf("one source holds %d partial datagrams", r.perSrc["FLOOD-1"])
		}
	}
	for i := range 1000 {
		src := string(rune('A'+i%26)) + "1" + string(rune('A'+i/26%26))
		r.add(src, fragment{num: uint16(i), index: 0, count: 16, data: bytes.Repeat([]byte("x"), 250)}, now)
		if len(r.partials) > maxPartials {
			t.Fatalf("%d partial datagrams held", len(r.partials))
		}
	}
	if r.expired == 0 {
		t.Fatal("evictions not counted")
	}
	for i := range 2000 {
		r.add("W1AW", fragment{num: uint16(i), index: 0, count: 1, data: []byte("x")}, now)
	}
	if len(r.done) > maxDone {
		t.Fatalf("%d delivered datagrams remembered", len(r.done))
	}
}

// A port that breaks (Dire Wolf restarted) is reopened, and traffic resumes.
func TestPortReopens(t *testing.T) {
	e := ether.New()
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	b := station(t, e, "N0CALL-2", clk)
	var mu sync.Mutex
	var ports []*ether.Port
	a, err := New(Config{URL: "kiss+tcp://test:8001", Callsign: call(t, "N0CALL-1"), Now: clk.Now,
		Open: func(context.Context) (Port, error) {
			p := e.Port()
			mu.Lock()
			ports = append(ports, p)
			mu.Unlock()
			return p, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	mu.Lock()
	ports[0].Close()
	mu.Unlock()
	waitFor(t, "the port reopened", func() bool { return a.Stats().Reopens == 1 })
	if err := a.WriteTo([]byte("after"), transport.NamedEndpoint("N0CALL-2")); err != nil {
		t.Fatal(err)
	}
	if got, _ := read(t, b); string(got) != "after" {
		t.Fatalf("%q", got)
	}
}

// A port that does not open at first (a TNC not yet up, a sound card not yet
// plugged in) does not stop the transport: PortError says why, datagrams are
// dropped and counted meanwhile, and once it opens the channel works.
func TestPortDownAtStart(t *testing.T) {
	e := ether.New()
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	b := station(t, e, "N0CALL-2", clk)
	var mu sync.Mutex
	plugged := false
	a, err := New(Config{URL: "afsk:///dev/snd/pcmC1D0", Callsign: call(t, "N0CALL-1"), Now: clk.Now,
		Open: func(context.Context) (Port, error) {
			mu.Lock()
			defer mu.Unlock()
			if !plugged {
				return nil, errors.New("open /dev/snd/pcmC1D0p: no such file or directory")
			}
			return e.Port(), nil
		}})
	if err != nil {
		t.Fatalf("New with the port down: %v", err)
	}
	defer a.Close()
	if st := a.Stats(); !strings.Contains(st.PortError, "pcmC1D0p") {
		t.Fatalf("PortError %q, want why the port is down", st.PortError)
	}
	a.WriteTo([]byte("lost"), transport.NamedEndpoint("N0CALL-2"))
	waitFor(t, "the datagram dropped while down", func() bool { return a.Stats().Drops+a.Stats().FramesOut > 0 })
	if a.Stats().FramesOut != 0 {
		t.Fatal("a frame went out on a port that is down")
	}
	mu.Lock()
	plugged = true
	mu.Unlock()
	waitFor(t, "the port opened", func() bool { st := a.Stats(); return st.Reopens == 1 && st.PortError == "" })
	if err := a.WriteTo([]byte("after"), transport.NamedEndpoint("N0CALL-2")); err != nil {
		t.Fatal(err)
	}
	if got, _ := read(t, b); string(got) != "after" {
		t.Fatalf("%q", got)
	}
}

func TestSplit(t *testing.T) {
	for _, n := range []int{0, 1, 250, 251, 1452, 16 * 251} {
		p := bytes.Repeat([]byte{1}, n)
		pieces, err := split(p, 251)
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		total := 0
		for _, q := range pieces {
			if len(q) > 251 || len(q) == 0 && n > 0 {
				t.Fatalf("%d bytes: a piece of %d", n, len(q))
			}
			total += len(q)
		}
		if total != n || len(pieces) != max(1, (n+250)/251) {
			t.Fatalf("%d bytes: %d pieces, %d bytes", n, len(pieces), total)
		}
	}
	if _, err := split(make([]byte, 16*251+1), 251); err == nil {
		t.Fatal("17 pieces accepted")
	}
}

// AX.25 source addresses are not authenticated: a stranger who sends under a
// station's callsign and its next datagram number (which the channel shows
// anyone) cannot make the station's real datagram vanish, whether it sends a
// whole datagram with that number or a fragment with another count; only a
// true copy is dropped.
func TestSpoofedNumbersDoNotBlock(t *testing.T) {
	r := newReassembler()
	now := time.Unix(1e9, 0)
	if d := r.add("N0CALL-1", fragment{num: 5, index: 0, count: 1, data: []byte("forged")}, now); string(d) != "forged" {
		t.Fatalf("%q", d) // delivered: the router's signature check drops it
	}
	r.add("N0CALL-1", fragment{num: 5, index: 0, count: 3, data: []byte("forged")}, now)
	r.add("N0CALL-1", fragment{num: 5, index: 0, count: 2, data: []byte("hello, ")}, now)
	if d := r.add("N0CALL-1", fragment{num: 5, index: 1, count: 2, data: []byte("world")}, now); string(d) != "hello, world" {
		t.Fatalf("the real datagram after forged ones with its number: %q", d)
	}
	r.add("N0CALL-1", fragment{num: 5, index: 0, count: 2, data: []byte("hello, ")}, now)
	if d := r.add("N0CALL-1", fragment{num: 5, index: 1, count: 2, data: []byte("world")}, now); d != nil {
		t.Fatalf("a digipeated copy delivered again: %q", d)
	}
}

// Airtime estimates a datagram's time on the air from its fragments: at
// least its bits at the bit rate plus a TXDELAY per frame, within the frames'
// headers, flags and bit stuffing of that; a bigger datagram takes longer.
func TestAirtime(t *testing.T) {
	tr := &Transport{cfg: Config{BitRate: 1200, TXDelay: 300 * time.Millisecond}, paclen: DefaultPaclen}
	got := tr.Airtime(MTU)
	frames := (MTU + DefaultPaclen - fragHeader - 1) / (DefaultPaclen - fragHeader)
	least := time.Duration(frames)*300*time.Millisecond + time.Duration(MTU*8)*time.Second/1200
	if got < least || got > least*5/4 {
		t.Fatalf("Airtime(%d) = %v at 1200 bit/s, want %v to %v (%d frames)", MTU, got, least, least*5/4, frames)
	}
	if small := tr.Airtime(100); small >= got || small < 300*time.Millisecond+100*8*time.Second/1200 {
		t.Fatalf("Airtime(100) = %v, Airtime(%d) = %v", small, MTU, got)
	}
}

// pacedPort is a KISS TNC for the pacing test: it records when each frame was
// handed over, and plays the frames pushed on heard as another station's.
type pacedPort struct {
	mu    sync.Mutex
	sent  []time.Time
	heard chan []byte
	done  chan struct{}
}

func (p *pacedPort) Send([]byte) error {
	p.mu.Lock()
	p.sent = append(p.sent, time.Now())
	p.mu.Unlock()
	return nil
}

func (p *pacedPort) Receive() ([]byte, error) {
	select {
	case f := <-p.heard:
		return f, nil
	case <-p.done:
		return nil, errors.New("closed")
	}
}

func (p *pacedPort) Close() error { return nil }

// A paced transport hands a KISS TNC its frames about as fast as they go on
// the air, and what it hears from another station meanwhile (the channel is
// half duplex: the TNC holds ours) pushes the rest back by that frame's air.
func TestPacingCountsWhatIsHeard(t *testing.T) {
	for _, hear := range []bool{false, true} {
		port := &pacedPort{heard: make(chan []byte, 1), done: make(chan struct{})}
		tr, err := New(Config{URL: "kiss+tcp://test:8001", Callsign: call(t, "N0CALL-1"), BitRate: 2400, Pace: true,
			TXDelay: time.Millisecond, Open: func(context.Context) (Port, error) { return port, nil }})
		if err != nil {
			t.Fatal(err)
		}
		// Three frames of about 250 bytes, about 0.85 s each at 2400 bit/s.
		if err := tr.WriteTo(bytes.Repeat([]byte{7}, 700), transport.NamedEndpoint("N0CALL-2")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the ID and the first fragment handed over", func() bool { port.mu.Lock(); defer port.mu.Unlock(); return len(port.sent) >= 2 })
		if hear {
			// Another station's 250-byte frame, heard while ours wait.
			f, err := ax25.NewUI(call(t, "N0CALL-1"), call(t, "N0CALL-2"), nil, bytes.Repeat([]byte{'x'}, 234)).Encode()
			if err != nil {
				t.Fatal(err)
			}
			port.heard <- f
		}
		waitFor(t, "the third frame (the second fragment) handed over", func() bool { port.mu.Lock(); defer port.mu.Unlock(); return len(port.sent) >= 3 })
		port.mu.Lock()
		gap := port.sent[2].Sub(port.sent[0])
		port.mu.Unlock()
		close(port.done)
		tr.Close()
		// The frames: the ID (about 0.17 s of air), then the fragments.
		// Unheard, the second fragment goes as the ID ends (about 0.17 s
		// after it); heard, the other station's frame later (about 1.0 s).
		// Only the lower bound is checked: a slow machine makes every frame
		// later, never earlier.
		if hear && gap < 800*time.Millisecond {
			t.Errorf("with a frame heard, the third frame went %v after the first, before the heard frame's air had passed", gap)
		}
		t.Logf("heard %v: third frame %v after the first", hear, gap.Round(time.Millisecond))
	}
}
