package forward

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/skyfleet/skyfleet/services/mesh/link"
)

// TestReadyAgreesWithPack: whenever the link says it has route data ready, pack
// sends some, whatever room is left in the window. The sender loop relies on it: a
// ready link whose pack sends nothing spins on two cores (BenchmarkForward3HopsUDP
// took 34 s instead of 0.6 s for 40,000 datagrams when the window was a few bytes
// short of full).
func TestReadyAgreesWithPack(t *testing.T) {
	k, err := secp256k1.GeneratePrivateKeyFromRand(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(Config{Key: k, PSK: testPSK, Transports: []Transport{newMemnet().Transport()}})
	if err != nil {
		t.Fatal(err)
	}
	const linkID, rid = 7, 9
	ru := &Rule{in: hop{local, 1}, out: hop{linkID, rid}}
	now := time.Now()
	max := link.PayloadCapacity(1452, 0)
	for _, short := range []int{0, 1, 10, 500, max - 1, max, 5 * max} {
		// A neighbour without its sender goroutine: the test packs.
		n := &neighbour{r: r, id: linkID, sf: newLinkSF(1)}
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
