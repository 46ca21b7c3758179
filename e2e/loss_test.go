//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/skyfleet/skyfleet/e2e/impair/relay"
	"github.com/skyfleet/skyfleet/services/mesh"
	"github.com/skyfleet/skyfleet/services/mesh/stream"
	"github.com/skyfleet/skyfleet/services/mesh/transport"
)

// Shape of TestLossEightHops.
const (
	lossHops = 8
	lossRate = 0.20 // each direction of every link
	// lossDelay is the relays' added delay: none, the loss alone (the links are
	// loopback's, well under a millisecond).
	lossDelay = 0
	lossBytes = 5 << 20
	lossPort  = 9
	// lossSFBound is the generous bound on the store-and-forward transfer.
	lossSFBound = 60 * time.Second
	// lossPlainBound is how long the plain-forwarding transfer may run; it is
	// measured, not asserted.
	lossPlainBound = 30 * time.Second
)

// lossPSK is the network key of the test's routers.
var lossPSK = [32]byte{'s', 'k', 'y', 'f', 'l', 'e', 'e', 't', ' ', 'l', 'o', 's', 's'}

// TestLossEightHops (the acceptance test 2): 9 routers in a line, 8 hops, each
// link through an impair relay (e2e/impair/relay) losing 20% of the datagrams in each
// direction, independently at random; 5 MB cross the 8 hops over one stream and
// arrive byte-exact (SHA-256) within a generous bound. Then the same transfer over a
// line of routers with mesh.Config.PlainForwarding (no link acks, no per-hop
// retransmission: only the stream's end-to-end retransmission recovers a loss), and
// the goodput of both and their ratio go to the log. The plain transfer is measured,
// not asserted; if it does not finish within lossPlainBound the log says so and how
// far it got.
//
// The routers are mesh.Router values in this process, each on its own loopback UDP
// socket (as services/mesh's udpLineMode builds them), since a `skyfleet node` cannot
// be told to forward plainly. Each line is built and its first contact (a ping from
// end to end) made on clean links; the loss is switched on before the stream is
// dialled, so both modes pay for loss only in the transfer.
func TestLossEightHops(t *testing.T) {
	payload := make([]byte, lossBytes)
	mrand.NewChaCha8([32]byte{'l', 'o', 's', 's'}).Read(payload)
	want := sha256.Sum256(payload)

	sf := lossTransfer(t, "store and forward", false, payload, want, lossSFBound)
	if !sf.done {
		t.Errorf("store and forward: %d of %d bytes arrived in %v", sf.n, lossBytes, lossSFBound)
	} else if !sf.exact {
		t.Errorf("store and forward: the bytes that arrived differ from those sent (SHA-256)")
	}
	plain := lossTransfer(t, "plain forwarding", true, payload, want, lossPlainBound)
	if plain.done && !plain.exact {
		t.Errorf("plain forwarding: the bytes that arrived differ from those sent (SHA-256)")
	}
	sfRate, plainRate := sf.goodput(), plain.goodput()
	switch {
	case plain.done:
		t.Logf("8 hops at %.0f%% loss per link: store and forward %.3f MB/s, plain forwarding %.3f MB/s: store and forward is %.1f times as fast",
			100*lossRate, sfRate/1e6, plainRate/1e6, sfRate/plainRate)
	case plain.n > 0:
		t.Logf("8 hops at %.0f%% loss per link: store and forward %.3f MB/s; plain forwarding did not finish in %v (%d of %d bytes, %.4f MB/s): store and forward is at least %.0f times as fast",
			100*lossRate, sfRate/1e6, lossPlainBound, plain.n, lossBytes, plainRate/1e6, sfRate/plainRate)
	default:
		t.Logf("8 hops at %.0f%% loss per link: store and forward %.3f MB/s; plain forwarding delivered nothing in %v (no ratio to give)",
			100*lossRate, sfRate/1e6, lossPlainBound)
	}
}

// lossResult is one transfer's outcome.
type lossResult struct {
	n       int64         // bytes that arrived
	elapsed time.Duration // from Dial to the last byte (or to the bound)
	done    bool          // every byte arrived
	exact   bool          // and their SHA-256 is the sent one's
}

func (r lossResult) goodput() float64 { return float64(r.n) / r.elapsed.Seconds() }

// lossTransfer builds a lossy line (plain or store and forward), sends payload over
// one stream from end to end and reports what arrived within bound.
func lossTransfer(t *testing.T, mode string, plain bool, payload []byte, want [32]byte, bound time.Duration) lossResult {
	nodes, relays := lossLine(t, lossHops+1, plain)
	defer func() {
		for _, r := range nodes {
			r.Close()
		}
		for _, r := range relays {
			r.Close()
		}
	}()
	src, dst := nodes[0], nodes[len(nodes)-1]
	// First contact on clean links: the route and the end-to-end session.
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		res, err := src.Ping(ctx, dst.Self())
		cancel()
		if err == nil {
			if len(res.Path) != lossHops+1 {
				t.Fatalf("%s: ping went over %d hops (%v), want %d", mode, len(res.Path)-1, res.Path, lossHops)
			}
			t.Logf("%s: ping over %d hops on clean links: rtt %v", mode, len(res.Path)-1, res.RTT.Round(time.Microsecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the first node cannot ping the last after 30 s: %v", mode, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	lossy := relay.Symmetric(relay.Impairment{Loss: lossRate, Delay: lossDelay})
	for _, r := range relays {
		if err := r.SetParams(lossy); err != nil {
			t.Fatal(err)
		}
	}

	ln, err := dst.Listen(lossPort)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var got atomic.Int64
	type recvResult struct {
		sum [32]byte
		err error
	}
	recvDone := make(chan recvResult, 1)
	var conns sync.WaitGroup
	var accepted net.Conn
	var acceptedMu sync.Mutex
	conns.Add(1)
	go func() {
		defer conns.Done()
		c, err := ln.Accept()
		if err != nil {
			recvDone <- recvResult{err: err}
			return
		}
		acceptedMu.Lock()
		accepted = c
		acceptedMu.Unlock()
		h := sha256.New()
		buf := make([]byte, 64<<10)
		for got.Load() < lossBytes {
			k, err := c.Read(buf)
			h.Write(buf[:k])
			got.Add(int64(k))
			if err != nil {
				if got.Load() < lossBytes {
					recvDone <- recvResult{err: err}
					return
				}
				break
			}
		}
		var r recvResult
		copy(r.sum[:], h.Sum(nil))
		recvDone <- r
	}()

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	c, err := src.Dial(ctx, dst.Self(), lossPort)
	if err != nil {
		t.Logf("%s: dial over the lossy line: %v", mode, err)
		return lossResult{elapsed: time.Since(start)}
	}
	defer c.Close()
	c.SetWriteDeadline(start.Add(bound))
	conns.Add(1)
	go func() {
		defer conns.Done()
		c.Write(payload) // an error shows as bytes missing at the far end
	}()
	var res lossResult
	var rr recvResult
	select {
	case rr = <-recvDone:
		res.elapsed = time.Since(start)
	case <-time.After(time.Until(start.Add(bound))):
		res.elapsed = bound
		rr.err = fmt.Errorf("not finished in %v", bound)
	}
	res.n = got.Load()
	res.done = rr.err == nil && res.n == lossBytes
	res.exact = res.done && rr.sum == want
	// End both sides so the goroutines return.
	c.Close()
	acceptedMu.Lock()
	if accepted != nil {
		accepted.Close()
	}
	acceptedMu.Unlock()
	ln.Close()
	cancel()

	// Figures: link retransmissions and drops on every node, the relays' losses.
	var linkRetrans, fwdDrops, linkLost, creditViol uint64
	for _, r := range nodes {
		for _, ls := range r.Links() {
			linkRetrans += ls.StoreForward.Retransmits
		}
		cs := r.Counters()
		fwdDrops += cs["drop_forward"]
		linkLost += cs["drop_link_lost"]
		creditViol += cs["drop_credit_violation"]
	}
	var received, dropped uint64
	for _, r := range relays {
		s := r.Stats()
		received += s.AB.Received + s.BA.Received
		dropped += s.AB.Dropped + s.BA.Dropped
	}
	status := "all bytes arrived, SHA-256 equal"
	switch {
	case !res.done:
		status = fmt.Sprintf("NOT FINISHED: %d of %d bytes (%v)", res.n, lossBytes, rr.err)
	case !res.exact:
		status = "all bytes arrived, SHA-256 DIFFERS"
	}
	t.Logf("%s: %d MB over %d hops at %.0f%% loss per link in %.2f s = %.3f MB/s; %s; relays dropped %d of %d datagrams (%.1f%%); link retransmissions %d, drop_forward %d, drop_link_lost %d, drop_credit_violation %d",
		mode, lossBytes>>20, lossHops, 100*lossRate, res.elapsed.Seconds(), res.goodput()/1e6, status,
		dropped, received, 100*float64(dropped)/float64(max(received, 1)), linkRetrans, fwdDrops, linkLost, creditViol)
	if sc, ok := c.(*stream.Conn); ok {
		st := sc.Stats()
		line := fmt.Sprintf("%s: stream sender: %d segments sent, %d declared lost (%d of them spuriously), %d retransmission timeouts, %.2f MB sent again",
			mode, st.SegmentsSent, st.SegmentsLost, st.SegmentsSpurious, st.Timeouts, float64(st.BytesRetransmitted)/1e6)
		for _, p := range st.Paths {
			line += fmt.Sprintf("; path: srtt %v (min %v, var %v), window %d B, dead %v",
				p.RTT.Round(time.Millisecond), p.MinRTT.Round(time.Millisecond), p.RTTVar.Round(time.Millisecond), p.Window, p.Dead)
		}
		t.Log(line)
	}
	conns.Wait()
	return res
}

// lossLine starts n routers in a line on loopback UDP sockets, router i reaching
// router i+1 only through a relay (which i+1 answers through), the relays clean
// until the caller sets their loss.
func lossLine(t *testing.T, n int, plain bool) ([]*mesh.Router, []*relay.Relay) {
	t.Helper()
	keys := make([]*secp256k1.PrivateKey, n)
	trs := make([]mesh.Transport, n)
	for i := range n {
		k, err := secp256k1.GeneratePrivateKeyFromRand(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := transport.Open("udp://127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		keys[i], trs[i] = k, tr
	}
	relays := make([]*relay.Relay, n-1)
	for i := range n - 1 {
		target := strings.TrimPrefix(trs[i+1].LocalAddr(), "udp://")
		r, err := relay.Start("127.0.0.1:0", target, relay.Params{}, int64(100+i))
		if err != nil {
			t.Fatal(err)
		}
		relays[i] = r
	}
	routers := make([]*mesh.Router, n)
	for i := range n {
		cfg := mesh.Config{Key: keys[i], PSK: lossPSK, Transports: []mesh.Transport{trs[i]}, PlainForwarding: plain}
		if i+1 < n {
			cfg.Peers = []mesh.Peer{{Network: "udp", Address: relays[i].Addr().String(), Key: keys[i+1].PubKey().SerializeCompressed()}}
		}
		r, err := mesh.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		routers[i] = r
	}
	for i, r := range routers {
		if err := r.Start(context.Background()); err != nil {
			for _, s := range routers[:i] {
				s.Close()
			}
			t.Fatal(err)
		}
	}
	return routers, relays
}
