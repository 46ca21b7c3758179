package transport_test

import (
	"context"
	"crypto/rand"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/skyfleet/skyfleet/services/mesh"
	"github.com/skyfleet/skyfleet/services/mesh/topology"
	"github.com/skyfleet/skyfleet/services/mesh/transport"
)

// The mesh imports this package (forward uses transport.Endpoint), so a test with
// real routers lives outside it; export_test.go lends it what it needs.

// TestTCPMeshAuthenticates runs real routers over the TCP transport: the router's
// answer to a handshake made with the network key authenticates the connection, a
// handshake with another key gets no answer and its connection times out, and a
// peer with the key links through a table full of idle strangers.
func TestTCPMeshAuthenticates(t *testing.T) {
	const maxConns, authTimeout = 8, 500 * time.Millisecond
	psk := [32]byte{7, 7, 7}
	router := func(tr mesh.Transport, psk [32]byte, peers ...mesh.Peer) (*mesh.Router, *secp256k1.PrivateKey) {
		k, err := secp256k1.GeneratePrivateKeyFromRand(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		r, err := mesh.New(mesh.Config{Key: k, PSK: psk, Transports: []mesh.Transport{tr}, Peers: peers})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return r, k
	}
	btr := transport.ListenLimits(t, maxConns, 8, authTimeout)
	bEP := transport.HostPort(t, btr)
	bEndpoint, err := transport.ParseEndpoint(bEP)
	if err != nil {
		t.Fatal(err)
	}
	b, bKey := router(btr, psk)
	bPeer := mesh.Peer{Network: "tcp", Address: bEP, Key: bKey.PubKey().SerializeCompressed()}

	// Idle strangers fill b's table.
	var idle []net.Conn
	for i := range maxConns {
		idle = append(idle, transport.DialFrom(t, netip.AddrFrom4([4]byte{127, 3, 0, byte(1 + i)}), bEndpoint))
	}
	transport.WaitUntil(t, 5*time.Second, "strangers fill the table", func() bool { return btr.Stats().Conns == maxConns })

	// A node with another network key is never answered.
	wrong := transport.OpenTCP(t)
	c, _ := router(wrong, [32]byte{9}, bPeer)
	var wrongConn transport.Conn // its connection as b holds it
	transport.WaitUntil(t, 5*time.Second, "the wrong-key node connects", func() bool {
		wrongConn = btr.ConnFor(wrong.LocalEnd(bEndpoint))
		return wrongConn.Held()
	})
	// A node with the key links and reaches b end to end.
	atr := transport.OpenTCP(t)
	a, _ := router(atr, psk, bPeer)
	bKeyT := topology.Key(bKey.PubKey().SerializeCompressed())
	ping := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := a.Ping(ctx, bKeyT)
		return err
	}
	// Ping fails at once until a has learnt b's announcement over the new link.
	transport.WaitUntil(t, 10*time.Second, "a pings b through a table of strangers", func() bool { return ping() == nil })
	aConn := btr.ConnFor(atr.LocalEnd(bEndpoint))
	if !aConn.Held() {
		t.Fatal("b holds no connection from a")
	}
	if !aConn.Authed() {
		t.Fatalf("b holds a's connection %s unauthenticated: the router's answer did not authenticate it", aConn.Endpoint())
	}
	// Every idle stranger and the wrong-key node's connection time out or are
	// evicted; a's connection outlives its deadline.
	for _, s := range idle {
		if !transport.ClosedByPeer(t, s, 10*time.Second) {
			t.Fatalf("idle stranger %s was never closed", s.LocalAddr())
		}
	}
	transport.WaitUntil(t, 10*time.Second, "the wrong-key connection is closed", func() bool {
		return btr.ConnFor(wrongConn.Endpoint()) != wrongConn
	})
	if wrongConn.Authed() {
		t.Fatal("a handshake without the network key authenticated a connection")
	}
	transport.WaitUntil(t, 10*time.Second, "a's authentication deadline passes", func() bool {
		return time.Since(aConn.Accepted()) > 2*authTimeout
	})
	if err := ping(); err != nil {
		t.Fatalf("ping after the deadline: %v; b's transport %+v", err, btr.Stats())
	}
	if btr.ConnFor(aConn.Endpoint()) != aConn || atr.Stats().Dials != 1 {
		t.Fatalf("a's connection did not last: a's transport %+v", atr.Stats())
	}
	st := btr.Stats()
	if st.AuthTimeouts+st.Evicted < uint64(len(idle))+1 {
		t.Fatalf("b's transport %+v: want the %d idle strangers and the wrong-key connection gone", st, len(idle))
	}
	if n := b.Counters()["drop_no_psk"]; n == 0 {
		t.Error("b counted no datagram without the network key")
	}
	for _, l := range c.Links() {
		if l.Up {
			t.Fatalf("the node without the network key linked: %+v", l)
		}
	}
	t.Logf("b's transport %+v", st)
}
