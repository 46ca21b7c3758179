package mesh

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/services/mesh/internal/memnet"
	"github.com/skyfleet/skyfleet/services/mesh/stream"
)

// TestStoreForwardLossyLinks: with 20% of datagrams lost on every link, per-hop
// store and forward (link acks and retransmission, sf.go) still delivers every
// datagram of a best-effort sender through 3 hops, each exactly once, and no hop
// drops one for lack of room.
func TestStoreForwardLossyLinks(t *testing.T) {
	m := newMemnet()
	nodes := buildMesh(t, m, 4, line(4), nil)
	waitConverged(t, nodes, 10*time.Second)
	src, dst := nodes[0], nodes[3]
	rx, err := dst.r.ListenPacket(9)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := src.r.ListenPacket(9)
	if err != nil {
		t.Fatal(err)
	}
	to := Addr{Key: keyOf(dst), Port: 9}
	// First contact without loss, then 20% on every link.
	if _, err := tx.WriteTo([]byte("hello"), to); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	rx.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := rx.ReadFrom(buf); err != nil {
		t.Fatal(err)
	}
	m.SetLoss(0.2)
	// At most window datagrams in flight: the destination's PacketConn holds
	// 256 for its reader and drops beyond (drop_reader_full, as a UDP socket
	// would), and a burst released by retransmissions can outrun the reader;
	// what is tested here is that the mesh loses none.
	const total, window = 2000, 128
	got := make(map[uint32]int)
	arrived := make(chan struct{}, total)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for len(got) < total {
			rx.SetReadDeadline(time.Now().Add(20 * time.Second))
			n, _, err := rx.ReadFrom(buf)
			if err != nil {
				return
			}
			if n >= 4 {
				got[binary.BigEndian.Uint32(buf)]++
				arrived <- struct{}{}
			}
		}
	}()
	msg := make([]byte, 1000)
send:
	for i := 0; i < total; i++ {
		if i >= window {
			select {
			case <-arrived:
			case <-done:
				break send
			}
		}
		binary.BigEndian.PutUint32(msg, uint32(i))
		if _, err := tx.WriteTo(msg, to); err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
	}
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("receiver did not finish")
	}
	for i := uint32(0); i < total; i++ {
		if got[i] != 1 {
			t.Fatalf("datagram %d delivered %d times (%d of %d arrived); destination's counters %v", i, got[i], len(got), total, dst.r.Counters())
		}
	}
	var retrans uint64
	for _, n := range nodes {
		c := n.r.Counters()
		if c["drop_forward"] != 0 || c["drop_credit_violation"] != 0 {
			t.Fatalf("drops: %v", c)
		}
		for _, l := range n.r.Links() {
			retrans += l.StoreForward.Retransmits
		}
	}
	if retrans == 0 {
		t.Fatal("no link retransmissions at 20% loss")
	}
	// Every byte held for store and forward is given back once acknowledged.
	deadline := time.Now().Add(10 * time.Second)
	for _, n := range nodes {
		for n.r.Held() != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("a node still holds %d route bytes after the transfer", n.r.Held())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	t.Logf("%d datagrams through 3 hops at 20%% loss per link: all delivered once, %d link retransmissions", total, retrans)
}

// TestPlainForwardingLoses: the baseline mode really is the old forwarding: at
// 20% loss per link some datagrams are lost (so the store-and-forward test above
// measures something), and nothing is sent as a Reliable frame.
func TestPlainForwardingLoses(t *testing.T) {
	m := newMemnet()
	nodes := buildMesh(t, m, 4, line(4), func(i int, c *Config) { c.PlainForwarding = true })
	waitConverged(t, nodes, 10*time.Second)
	src, dst := nodes[0], nodes[3]
	rx, _ := dst.r.ListenPacket(9)
	tx, _ := src.r.ListenPacket(9)
	to := Addr{Key: keyOf(dst), Port: 9}
	tx.WriteTo([]byte("hello"), to)
	buf := make([]byte, 2048)
	rx.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := rx.ReadFrom(buf); err != nil {
		t.Fatal(err)
	}
	m.SetLoss(0.2)
	const total = 500
	msg := make([]byte, 1000)
	for i := 0; i < total; i++ {
		binary.BigEndian.PutUint32(msg, uint32(i))
		tx.WriteTo(msg, to)
		time.Sleep(200 * time.Microsecond) // pace below any queue limit: loss only from the links
	}
	got := 0
	for {
		rx.SetReadDeadline(time.Now().Add(time.Second))
		if _, _, err := rx.ReadFrom(buf); err != nil {
			break
		}
		got++
	}
	if got >= total || got < total/4 {
		t.Fatalf("%d of %d arrived; at 20%% loss on 3 links about half should", got, total)
	}
	for _, n := range nodes {
		for _, l := range n.r.Links() {
			if l.StoreForward.Retransmits != 0 {
				t.Fatal("plain forwarding retransmitted")
			}
		}
	}
	t.Logf("plain forwarding, 3 hops at 20%% loss per link: %d of %d arrived", got, total)
}

// TestDestinationRestart: a destination that restarts (same key and address, all
// state lost) within a moment, so its neighbour never sees the link die, forgets
// the end-to-end session the source sends on. The source learns it from the
// destination's route error for the route it no longer knows, handshakes afresh,
// and its datagrams arrive again.
func TestDestinationRestart(t *testing.T) { testDestinationRestart(t, 0) }

// TestDestinationRestartSlow: a restart slow enough that the neighbour declares the
// link dead first. Its route through the link fails at the neighbour, not at the
// destination, so the source sets up a new route and keeps sealing with the old
// session; the destination's unknown-session notice, sent back along the new
// route, brings the new handshake.
func TestDestinationRestartSlow(t *testing.T) { testDestinationRestart(t, 2500*time.Millisecond) }

func testDestinationRestart(t *testing.T, down time.Duration) {
	m := newMemnet()
	nodes := buildMesh(t, m, 3, line(3), nil)
	waitConverged(t, nodes, 10*time.Second)
	src, dst := nodes[0], nodes[2]
	tx, _ := src.r.ListenPacket(9)
	rx, _ := dst.r.ListenPacket(9)
	to := Addr{Key: keyOf(dst), Port: 9}
	buf := make([]byte, 2048)
	exchange := func(rx *PacketConn, what string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			tx.WriteTo([]byte(what), to)
			rx.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			if n, _, err := rx.ReadFrom(buf); err == nil && string(buf[:n]) == what {
				return
			}
		}
		t.Fatalf("%s: nothing arrived in 15 s", what)
	}
	exchange(rx, "before")
	// A stream open across the restart: the destination forgets it, and must
	// say so (a reset), or the source would send into the void until its idle
	// timeout (30 s).
	sl, err := dst.r.Listen(10)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		if c, err := sl.Accept(); err == nil {
			io.Copy(io.Discard, c)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	sc, err := src.r.Dial(ctx, keyOf(dst), 10)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if _, err := sc.Write([]byte("before the restart")); err != nil {
		t.Fatal(err)
	}
	// Restart: the same key and address, nothing else kept.
	dst.r.Close()
	dst.tr.Close()
	if down > 0 {
		// Off for longer than DeadAfter (1.5 s): the neighbour sees the link die.
		deadline := time.Now().Add(10 * time.Second)
		for linkUp(nodes[1].r, keyOf(dst)) {
			if time.Now().After(deadline) {
				t.Fatal("the neighbour never declared the link dead")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	r := restarted(t, m, dst, 2*time.Second, nodes[1].peer())
	rx2, _ := r.ListenPacket(9)
	exchange(rx2, "after")
	// The stream: writes go on until the reset comes back, then fail with it.
	start := time.Now()
	var werr error
	for time.Since(start) < 15*time.Second {
		sc.SetWriteDeadline(time.Now().Add(time.Second))
		if _, werr = sc.Write(make([]byte, 1000)); errors.Is(werr, stream.ErrReset) {
			break
		}
	}
	if !errors.Is(werr, stream.ErrReset) {
		t.Errorf("the stream open across the restart: %v after %v, want a reset", werr, time.Since(start).Round(time.Millisecond))
	} else {
		t.Logf("the stream open across the restart was reset %v after the restarted node answered", time.Since(start).Round(time.Millisecond))
	}
	if src.r.Counters()["e2e_peer_restarts"] == 0 {
		t.Error("the source did not notice the restart (it may have recovered another way)")
	}
}

// restarted starts a router again in place of the closed node n: the same key
// and memnet address, nothing else kept, peering with peers.
func restarted(t *testing.T, m *memnet.Net, n *testNode, announce time.Duration, peers ...Peer) *Router {
	t.Helper()
	nt := m.Replace(n.tr.Addr())
	return startRouter(t, Config{Key: n.key, PSK: testPSK, Transports: []Transport{nt}, AnnounceInterval: announce, Peers: peers})
}

// TestNeighbourRestartGetsTheGraph: a node restarted within its neighbour's
// DeadAfter (the link never went down there) is greeted as a new link: it gets
// the graph within greetInterval and reaches the far end of the line in well
// under the 30 s AnnounceInterval it would otherwise wait for the far node's
// record.
func TestNeighbourRestartGetsTheGraph(t *testing.T) {
	const announce = 30 * time.Second
	m := newMemnet()
	nodes := buildMesh(t, m, 3, line(3), func(_ int, c *Config) { c.AnnounceInterval = announce })
	waitConverged(t, nodes, 10*time.Second)
	far, mid, end := nodes[0], nodes[1], nodes[2]
	end.r.Close()
	end.tr.Close()
	r := restarted(t, m, end, announce, mid.peer())
	start := time.Now()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := r.Ping(ctx, keyOf(far))
		cancel()
		if err == nil {
			break
		}
		// Ping gives up at once without a route; 5 s is well short of the
		// announce interval the restarted node would otherwise wait for.
		if time.Since(start) > 5*time.Second {
			t.Fatalf("the restarted node could not reach the far end in %v: %v", time.Since(start).Round(time.Millisecond), err)
		}
		time.Sleep(50 * time.Millisecond) // between attempts, not a wait for a condition
	}
	if !linkUp(mid.r, keyOf(end)) || mid.r.Counters()["links_up_total"] != 2 {
		t.Fatalf("the middle node's link went down across the restart (links up %d): the test shows nothing", mid.r.Counters()["links_up_total"])
	}
	t.Logf("the restarted node reached the far end %v after it started", time.Since(start).Round(time.Millisecond))
}
