package forward

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/skyfleet/skyfleet/services/mesh/link"
	"github.com/skyfleet/skyfleet/services/mesh/transport"
)

// TestReadyAgreesWithPack: whenever the link says it has route data ready, pack
// sends some, whatever room is left in the window. The sender loop relies on it: a
// ready link whose pack sends nothing spins on two cores (BenchmarkForward3HopsUDP
// took 34 s instead of 0.6 s for 40,000 datagrams when the window was a few bytes
// short of full).
func TestReadyAgreesWithPack(t *testing.T) {
	r := bareRouter(t)
	const linkID, rid = 7, 9
	ru := &Rule{in: hop{local, 1}, out: hop{linkID, rid}}
	now := time.Now()
	max := link.PayloadCapacity(1452, 0)
	for _, short := range []int{0, 1, 10, 500, max - 1, max, 5 * max} {
		// A neighbour without its sender goroutine: the test packs.
		n := &neighbour{r: r, id: linkID, sf: newLinkSF(1, false)}
		l := n.sf
		w := l.snd.Window(linkWindowFloor, linkWindowCeil)
		l.snd.Add(make([]byte, w-short), nil, now)
		n.enqueue(ru, rid, false, make([]byte, 1000))
		ready := l.ready()
		if want := short > 0; ready != want {
			t.Fatalf("window %d bytes short of full: ready %v, want %v", short, ready, want)
		}
		out := n.pack(nil, max, now)
		if ready && len(out) == 0 {
			t.Fatalf("window %d bytes short of full: ready, but pack sent nothing", short)
		}
		if !ready && len(out) != 0 {
			t.Fatalf("window full: not ready, but pack sent %d bytes", len(out))
		}
	}
}

// frameTypes lists the frame types of a link datagram's plaintext, and those
// inside its Reliable frame.
func frameTypes(t *testing.T, b []byte) []byte {
	t.Helper()
	var out []byte
	for len(b) > 0 {
		typ, body, rest, err := nextFrame(b)
		if err != nil {
			t.Fatalf("bad datagram: %v", err)
		}
		out = append(out, typ)
		if typ == frameReliable {
			_, _, inner, _ := parseReliable(body)
			out = append(out, frameTypes(t, inner)...)
		}
		b = rest
	}
	return out
}

// TestControlRidesWithData: a link ack or a credit waits up to ctrlHold for a
// datagram that goes anyway, and a full route payload leaves room for both, so a
// link carrying data one way and a little the other (a stream and its acks) sends
// no datagrams of acks alone; an ack goes alone only once ctrlHold has passed or
// ackEvery datagrams wait for it. On an amateur link the same holds with
// radioCtrlHold and radioAckEvery.
func TestControlRidesWithData(t *testing.T) {
	for _, c := range []struct {
		name     string
		amateur  bool
		hold     time.Duration
		ackEvery int
	}{{"ip", false, ctrlHold, ackEvery}, {"amateur", true, radioCtrlHold, radioAckEvery}} {
		t.Run(c.name, func(t *testing.T) { controlRidesWithData(t, c.amateur, c.hold, c.ackEvery) })
	}
}

func controlRidesWithData(t *testing.T, amateur bool, ctrlHold time.Duration, ackEvery int) {
	r := bareRouter(t)
	const linkID, rid = 7, 9
	max := link.PayloadCapacity(1452, 0)
	t0 := time.Now()
	n := &neighbour{r: r, id: linkID, sf: newLinkSF(1, amateur)}
	l := n.sf
	// A reliable datagram from the neighbour (no frames inside): an ack is due.
	r.reliable(n, appendReliable(nil, 100, 100, nil)[frameHeader:], t0)
	if out := n.pack(nil, max, t0); len(out) != 0 {
		t.Fatalf("the ack went alone at once: %v", frameTypes(t, out))
	}
	if out := n.pack(nil, max, t0.Add(ctrlHold/2)); len(out) != 0 {
		t.Fatalf("the ack went alone within ctrlHold: %v", frameTypes(t, out))
	}
	// A credit for a route arriving over this link is due too; then a full
	// route payload is queued for the link: one datagram carries all three.
	in := &Rule{in: hop{linkID, 3}, out: hop{local, 0}}
	l.mu.Lock()
	l.credits[in] = true
	l.ctrlDue(t0)
	l.mu.Unlock()
	out := &Rule{in: hop{local, 1}, out: hop{linkID, rid}}
	n.enqueue(out, rid, false, make([]byte, RouteMTU))
	got := frameTypes(t, n.pack(nil, max, t0.Add(ctrlHold/2)))
	if want := []byte{frameLinkAck, frameCredit, frameReliable, frameData}; string(got) != string(want) {
		t.Fatalf("datagram with a full route payload: frames %x, want %x (ack, credit, data)", got, want)
	}
	if l.ctrlPending() {
		t.Error("the ack or the credit is still pending after riding with the data")
	}
	// Alone, an ack goes once ctrlHold has passed ...
	r.reliable(n, appendReliable(nil, 101, 101, nil)[frameHeader:], t0)
	if n.pack(nil, max, t0.Add(ctrlHold/2)) != nil || l.ready() && time.Since(t0) < ctrlHold {
		t.Fatal("an ack with nothing to ride on went before ctrlHold")
	}
	if got := frameTypes(t, n.pack(nil, max, t0.Add(ctrlHold))); string(got) != string([]byte{frameLinkAck}) {
		t.Fatalf("after ctrlHold: frames %x, want the ack alone", got)
	}
	// ... or at once when ackEvery datagrams wait for it.
	t1 := t0.Add(2 * ctrlHold)
	for i := range ackEvery {
		if out := n.pack(nil, max, t1); len(out) != 0 {
			t.Fatalf("ack sent after %d datagrams, want after %d", i, ackEvery)
		}
		r.reliable(n, appendReliable(nil, uint32(102+i), 102, nil)[frameHeader:], t1)
	}
	if got := frameTypes(t, n.pack(nil, max, t1)); string(got) != string([]byte{frameLinkAck}) {
		t.Fatalf("after %d datagrams: frames %x, want the ack", ackEvery, got)
	}
}

// bareRouter is a router that is not started, on a transport of its own: a test
// drives its links by hand.
func bareRouter(t *testing.T) *Router {
	t.Helper()
	k, err := secp256k1.GeneratePrivateKeyFromRand(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(Config{Key: k, PSK: testPSK, Transports: []Transport{newMemnet().Transport()}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// slowChannel is a transport that says how long a datagram takes on its air:
// 10 s for a full one.
type slowChannel struct{ Transport }

func (slowChannel) Airtime(n int) time.Duration { return time.Duration(n) * 10 * time.Second / 1500 }
func (slowChannel) MTU(transport.Endpoint) int  { return 1500 }

// On an amateur link a reliable datagram is not sent again before the air of
// two full datagrams and the ack hold have passed (radioRTOFloor), however
// short the link's measured round trip: its ack may be waiting behind the
// neighbour's datagram for the half-duplex channel. An IP link with the same
// round trip sends it again long before.
func TestRadioLinkWaitsForTheAir(t *testing.T) {
	r := bareRouter(t)
	floor := 2*slowChannel{}.Airtime(1500) + radioCtrlHold // 22 s
	for _, amateur := range []bool{false, true} {
		n := &neighbour{r: r, id: 7, sf: newLinkSF(1, amateur), amateur: amateur, srtt: 500 * time.Millisecond}
		n.at.Store(&endpoint{tr: slowChannel{r.cfg.Transports[0]}, ep: transport.NamedEndpoint("N0CALL-2")})
		t0 := time.Now()
		n.enqueue(&Rule{in: hop{local, 1}, out: hop{7, 9}}, 9, false, make([]byte, 100))
		if out := n.pack(nil, 1400, t0); len(out) == 0 {
			t.Fatal("nothing packed")
		}
		due := func(at time.Duration) bool {
			n.sf.nextDue = time.Time{}
			n.sfTimers(t0.Add(at))
			n.sf.mu.Lock()
			defer n.sf.mu.Unlock()
			return len(n.sf.resend) > 0
		}
		if !amateur {
			if !due(5 * time.Second) {
				t.Error("an IP link with a 0.5 s round trip did not send again after 5 s")
			}
			continue
		}
		if due(floor) {
			t.Errorf("the radio link sent again after %v, within the air of two datagrams and the ack hold", floor)
		}
		if !due(3*floor + time.Second) {
			t.Errorf("the radio link did not send again after %v", 3*floor+time.Second)
		}
	}
}
