package mesh

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/skyfleet/skyfleet/services/mesh/forward"
	"github.com/skyfleet/skyfleet/services/mesh/link"
	"github.com/skyfleet/skyfleet/services/mesh/topology"
)

func randomKey(t testing.TB) topology.Key {
	t.Helper()
	k, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	var out topology.Key
	copy(out[:], k.PubKey().SerializeCompressed())
	return out
}

func peerCount(r *Router) int {
	r.e2e.mu.Lock()
	defer r.e2e.mu.Unlock()
	return len(r.e2e.peers)
}

// Pinging keys the topology does not hold (what POST /mesh/ping?addr=<random key>
// does) must not leave state behind: today's flood grew a node by 55 MB for good.
func TestUnknownKeysCostNoState(t *testing.T) {
	m := newMemnet()
	nodes := buildMesh(t, m, 2, line(2), nil)
	waitConverged(t, nodes, 10*time.Second)
	r := nodes[0].r
	for range 2000 {
		// A caller's short deadline: connect would wait up to topologyWait for
		// the key's announcement, holding no state meanwhile.
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		_, err := r.Ping(ctx, randomKey(t))
		cancel()
		if !errors.Is(err, ErrNoRoute) {
			t.Fatalf("ping of an unknown key: %v, want ErrNoRoute", err)
		}
	}
	// Without a deadline of its own, a ping waits topologyWait for the key.
	start := time.Now()
	if _, err := r.Ping(context.Background(), randomKey(t)); !errors.Is(err, ErrNoRoute) {
		t.Fatalf("ping of an unknown key: %v, want ErrNoRoute", err)
	}
	if d := time.Since(start); d < topologyWait {
		t.Errorf("an unknown key was refused after %v, before its announcement had %v to arrive", d, topologyWait)
	}
	if n := peerCount(r); n != 0 {
		t.Errorf("%d end-to-end peers held after pinging 2001 unknown keys, want 0", n)
	}
	// Through the API, a key off the curve is refused before anything else.
	h := r.Handler()
	off := "02" + strings.Repeat("ff", 32) // x >= p: no point
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/mesh/ping?addr="+off, nil))
	if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "not a public key") {
		t.Errorf("ping of an off-curve key: %d %s", rec.Code, rec.Body)
	}
	var junk [33]byte
	rand.Read(junk[:])
	junk[0] = 0x05
	if _, err := r.Resolve(hex.EncodeToString(junk[:])); err == nil {
		t.Error("Resolve accepted a key with prefix 0x05")
	}
}

// A peer nobody has used for PeerExpiry is forgotten with its session indexes,
// and pinging it again makes a fresh one.
func TestIdlePeersExpire(t *testing.T) {
	m := newMemnet()
	nodes := buildMesh(t, m, 3, line(3), nil)
	waitConverged(t, nodes, 10*time.Second)
	a, c := nodes[0].r, nodes[2].r
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := a.Ping(ctx, c.self); err != nil {
		t.Fatal(err)
	}
	if peerCount(a) != 1 || peerCount(c) != 1 {
		t.Fatalf("peers after a ping: %d at the source, %d at the destination", peerCount(a), peerCount(c))
	}
	later := time.Now().Add(PeerExpiry + 5*time.Minute)
	for _, r := range []*Router{a, c} {
		r.e2e.Tick(later)                  // idle 2 min: routes closed
		r.e2e.Tick(later.Add(time.Second)) // idle, routeless, past the expiry: forgotten
		if n := peerCount(r); n != 0 {
			t.Errorf("%s holds %d peers after %v idle, want 0", shortKey(r.self), n, PeerExpiry)
		}
		kept := 0
		r.e2e.sessions.DropIf(func(x link.Entry[*peer]) bool {
			if x.Owner != nil {
				kept++
			}
			return false
		})
		if kept != 0 {
			t.Errorf("%s: %d session indexes of forgotten peers kept", shortKey(r.self), kept)
		}
	}
	if _, err := a.Ping(ctx, c.self); err != nil {
		t.Fatalf("ping after the peer was forgotten: %v", err)
	}
}

// At MaxPeers, a new peer replaces the idlest idle one, and is refused (and
// counted) when every peer is busy.
func TestPeerCap(t *testing.T) {
	m := newMemnet()
	nodes := buildMesh(t, m, 1, nil, nil)
	r := nodes[0].r
	e := r.e2e
	keys := make([]topology.Key, MaxPeers)
	now := time.Now().UnixNano()
	for i := range keys {
		keys[i] = randomKey(t)
		p, err := e.peerFor(keys[i])
		if err != nil {
			t.Fatalf("peer %d: %v", i, err)
		}
		p.used.Store(now + int64(i)) // keys[0] is the idlest; none past the expiry
	}
	if _, err := e.peerFor(randomKey(t)); err != nil {
		t.Fatalf("new peer at the cap with idle ones: %v", err)
	}
	e.mu.Lock()
	_, kept := e.peers[keys[0]]
	n := len(e.peers)
	e.mu.Unlock()
	if kept || n != MaxPeers {
		t.Errorf("after one eviction: idlest kept %v, %d peers (want it gone, %d)", kept, n, MaxPeers)
	}
	// Make every peer busy: none may be evicted for a stranger. Under p.mu, which
	// the router's tick reads routes under (and after e.mu: the lock order is
	// peer, then endToEnd).
	e.mu.Lock()
	ps := make([]*peer, 0, len(e.peers))
	for _, p := range e.peers {
		ps = append(ps, p)
	}
	e.mu.Unlock()
	for _, p := range ps {
		p.mu.Lock()
		p.routes = []*forward.Route{{}}
		p.mu.Unlock()
	}
	before := r.Counters()["drop_peer_cap"]
	if _, err := e.peerFor(randomKey(t)); !errors.Is(err, ErrTooManyPeers) {
		t.Fatalf("new peer with every peer busy: %v, want ErrTooManyPeers", err)
	}
	if r.Counters()["drop_peer_cap"] != before+1 {
		t.Error("refusal at the cap not counted")
	}
}

// TestReaderFullCounted: datagrams for a local PacketConn whose reader lets its
// queue fill are dropped, as a full UDP socket buffer drops them, and counted.
func TestReaderFullCounted(t *testing.T) {
	m := newMemnet()
	nodes := buildMesh(t, m, 1, nil, nil)
	r := nodes[0].r
	pc, err := r.ListenPacket(9)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	from := Addr{Key: keyOf(nodes[0]), Port: 1}
	for range 300 {
		pc.push(from, []byte("x"))
	}
	if got := r.Counters()["drop_reader_full"]; got != 300-256 {
		t.Fatalf("drop_reader_full %d, want %d", got, 300-256)
	}
	buf := make([]byte, 8)
	pc.SetReadDeadline(time.Now().Add(time.Second))
	if n, _, err := pc.ReadFrom(buf); err != nil || string(buf[:n]) != "x" {
		t.Fatalf("the queued datagrams are lost too: %q %v", buf[:n], err)
	}
}
