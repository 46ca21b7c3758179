package transport

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"
)

// listenLimits opens a TCP transport on 127.0.0.1 with the stranger limits given.
func listenLimits(t testing.TB, lim tcpLimits) *TCP {
	t.Helper()
	tr, err := listenTCP("127.0.0.1:0", lim)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// dialFrom opens a raw TCP connection from source address src (any 127.x.y.z
// works on loopback) to the endpoint to; it is closed when the test ends.
func dialFrom(t testing.TB, src netip.Addr, to Endpoint) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))}
	c, err := d.Dial("tcp", to.String())
	if err != nil {
		t.Fatalf("dial %s from %s: %v", to, src, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

var loopback = netip.MustParseAddr("127.0.0.1")

// ep is the endpoint a transport knows the far end of c by: c's local address.
func ep(c net.Conn) Endpoint { return EndpointOf(c.LocalAddr().(*net.TCPAddr).AddrPort()) }

// closedByPeer reports whether the other end closed c within d: a read ends in
// EOF or a reset rather than the deadline.
func closedByPeer(t testing.TB, c net.Conn, d time.Duration) bool {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	defer c.SetReadDeadline(time.Time{})
	var b [1]byte
	for {
		_, err := c.Read(b[:])
		switch {
		case err == nil:
			continue // the transport never sends unasked, but be lenient
		case errors.Is(err, os.ErrDeadlineExceeded):
			return false
		default:
			return true // io.EOF, ECONNRESET
		}
	}
}

// writeFrame sends p framed on the raw connection c.
func writeFrame(t testing.TB, c net.Conn, p []byte) {
	t.Helper()
	if _, err := c.Write(appendFrame(nil, p)); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// readFrame reads one frame from the raw connection c within 5 s.
func readFrame(t testing.TB, c net.Conn) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	fr := frameReader{r: c}
	b, _, err := fr.next()
	if err != nil {
		t.Fatalf("read frame: %v", err)
	}
	defer putBuf(b)
	return append([]byte(nil), *b...)
}

// authenticated opens a raw connection from src to b and has b answer on it, as
// the router does once a datagram authenticated; it returns the connection and
// the endpoint b knows it by.
func authenticated(t testing.TB, b *TCP, src netip.Addr) (net.Conn, Endpoint) {
	t.Helper()
	c := dialFrom(t, src, endpointOf(t, b))
	writeFrame(t, c, []byte("handshake"))
	buf := make([]byte, 64)
	n, from := readTimeout(t, b, buf, 5*time.Second)
	if string(buf[:n]) != "handshake" || from != ep(c) {
		t.Fatalf("b read %q from %q, want \"handshake\" from %s", buf[:n], from, c.LocalAddr())
	}
	if err := b.WriteTo([]byte("answer"), from); err != nil {
		t.Fatal(err)
	}
	if got := readFrame(t, c); string(got) != "answer" {
		t.Fatalf("answer %q", got)
	}
	return c, from
}

// TestTCPStrangersCannotLockOutPeer is the regression test for strangers filling
// the connection table: 300 idle connections without the network key, from 38
// loopback addresses (8 each, the per-source limit), must not keep a real peer
// from linking, and once the peer is answered, 300 more must not push it out.
func TestTCPStrangersCannotLockOutPeer(t *testing.T) {
	b := open(t, "tcp://127.0.0.1:0").(*TCP) // the default limits
	bEP := endpointOf(t, b)
	const strangers = 300
	for i := range strangers {
		dialFrom(t, netip.AddrFrom4([4]byte{127, 1, byte(i / perSourceMax), 1}), bEP)
	}
	// Every stranger is in the table or was evicted by a later one.
	waitUntil(t, 10*time.Second, "the strangers are accepted", func() bool {
		s := stats(b)
		return s.Conns == maxConns && s.Evicted == strangers-maxConns
	})

	a := open(t, "tcp://127.0.0.1:0")
	if err := a.WriteTo([]byte("handshake"), bEP); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, from := readTimeout(t, b, buf, 5*time.Second)
	if string(buf[:n]) != "handshake" {
		t.Fatalf("b read %q", buf[:n])
	}
	// The router answers a datagram it authenticated.
	if err := b.WriteTo([]byte("answer"), from); err != nil {
		t.Fatal(err)
	}
	if n, back := readTimeout(t, a, buf, 5*time.Second); string(buf[:n]) != "answer" || back != bEP {
		t.Fatalf("a read %q from %q", buf[:n], back)
	}
	s := stats(b)
	if s.Conns != maxConns || s.Unauthenticated != maxConns-1 || s.Evicted != strangers-maxConns+1 || s.RefusedFull != 0 || s.RefusedPerSource != 0 {
		t.Fatalf("stats %+v: want the peer in, authenticated, in place of one more stranger", s)
	}

	// 300 more strangers evict each other, never the authenticated peer.
	for i := range strangers {
		dialFrom(t, netip.AddrFrom4([4]byte{127, 2, byte(i / perSourceMax), 1}), bEP)
	}
	waitUntil(t, 10*time.Second, "the second wave is accepted", func() bool {
		return stats(b).Evicted == 2*strangers-maxConns+1
	})
	if !b.connected(from) {
		t.Fatalf("the authenticated peer %s was evicted; stats %+v", from, stats(b))
	}
	if err := a.WriteTo([]byte("still here"), bEP); err != nil {
		t.Fatal(err)
	}
	if n, from2 := readTimeout(t, b, buf, 5*time.Second); string(buf[:n]) != "still here" || from2 != from {
		t.Fatalf("b read %q from %q, want from %q", buf[:n], from2, from)
	}
	if s := stats(b); s.Conns != maxConns || s.Unauthenticated != maxConns-1 || s.RefusedFull != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// TestTCPPerSourceLimit: one source holds at most perSource unauthenticated
// connections; others are refused at once, other sources are not affected, and an
// authenticated connection frees its slot.
func TestTCPPerSourceLimit(t *testing.T) {
	b := listenLimits(t, tcpLimits{maxConns: 64, perSource: 3, authTimeout: time.Minute})
	bEP := endpointOf(t, b)
	var first []net.Conn
	for range 3 {
		first = append(first, dialFrom(t, loopback, bEP))
	}
	waitUntil(t, 5*time.Second, "three accepted", func() bool { return stats(b).Conns == 3 })
	over := []net.Conn{dialFrom(t, loopback, bEP), dialFrom(t, loopback, bEP)}
	for i, c := range over {
		if !closedByPeer(t, c, 5*time.Second) {
			t.Fatalf("connection %d over the per-source limit was not closed", 4+i)
		}
	}
	other := dialFrom(t, netip.MustParseAddr("127.0.0.2"), bEP)
	waitUntil(t, 5*time.Second, "another source accepted", func() bool { return b.connected(ep(other)) })
	if s := stats(b); s.RefusedPerSource != 2 || s.Conns != 4 || s.Unauthenticated != 4 {
		t.Fatalf("stats %+v: want 2 refused, 4 connections, all unauthenticated", s)
	}

	// Authenticating one of the first three frees a slot for its source.
	writeFrame(t, first[0], []byte("hello"))
	buf := make([]byte, 16)
	_, from := readTimeout(t, b, buf, 5*time.Second)
	if err := b.WriteTo([]byte("answer"), from); err != nil {
		t.Fatal(err)
	}
	if got := readFrame(t, first[0]); string(got) != "answer" {
		t.Fatalf("answer %q", got)
	}
	again := dialFrom(t, loopback, bEP)
	waitUntil(t, 5*time.Second, "a fourth from the first source accepted", func() bool { return b.connected(ep(again)) })
	if s := stats(b); s.RefusedPerSource != 2 || s.Conns != 5 || s.Unauthenticated != 4 {
		t.Fatalf("stats %+v: want still 2 refused, 5 connections, 4 unauthenticated", s)
	}
	for _, c := range first[1:] {
		if !b.connected(ep(c)) {
			t.Fatalf("%s was closed", c.LocalAddr())
		}
	}
}

// TestSourceOf: IPv4 addresses count one by one, IPv6 by /64, and an IPv4-mapped
// address counts as its IPv4 address.
func TestSourceOf(t *testing.T) {
	same := [][2]string{
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff"},
		{"192.0.2.1", "::ffff:192.0.2.1"},
		{"fe80::1%eth0", "fe80::2%eth1"},
	}
	differ := [][2]string{
		{"192.0.2.1", "192.0.2.2"},
		{"2001:db8:1:2::1", "2001:db8:1:3::1"},
		{"::ffff:192.0.2.1", "::192.0.2.1"},
	}
	for _, p := range same {
		if a, b := sourceOf(netip.MustParseAddr(p[0])), sourceOf(netip.MustParseAddr(p[1])); a != b {
			t.Errorf("%s -> %s, %s -> %s: want one group", p[0], a, p[1], b)
		}
	}
	for _, p := range differ {
		if a, b := sourceOf(netip.MustParseAddr(p[0])), sourceOf(netip.MustParseAddr(p[1])); a == b {
			t.Errorf("%s and %s share group %s", p[0], p[1], a)
		}
	}
	if got := sourceOf(netip.MustParseAddr("2001:db8:1:2:3:4:5:6")); got != netip.MustParsePrefix("2001:db8:1:2::/64") {
		t.Errorf("sourceOf = %s", got)
	}
	if got := sourceOf(netip.MustParseAddr("::ffff:198.51.100.7")); got != netip.MustParsePrefix("198.51.100.7/32") {
		t.Errorf("sourceOf = %s", got)
	}
}

// TestTCPEvictsOldestStranger: a full table evicts the oldest unauthenticated
// connection for a new connection or a dial, never an authenticated one, and
// refuses a stranger only when every slot is authenticated or dialled.
func TestTCPEvictsOldestStranger(t *testing.T) {
	b := listenLimits(t, tcpLimits{maxConns: 4, perSource: 8, authTimeout: time.Minute})
	bEP := endpointOf(t, b)
	peer, peerEP := authenticated(t, b, loopback)
	// s[0..2] fill the table, accepted one after another so their age is known.
	var s []net.Conn
	stranger := func() net.Conn {
		c := dialFrom(t, loopback, bEP)
		waitUntil(t, 5*time.Second, "stranger accepted", func() bool {
			st := stats(b)
			return b.connected(ep(c)) || st.Evicted+st.RefusedFull > 0 && closedByPeer(t, c, time.Millisecond)
		})
		s = append(s, c)
		return c
	}
	for range 3 {
		stranger()
	}
	if st := stats(b); st.Conns != 4 || st.Unauthenticated != 3 {
		t.Fatalf("stats %+v", st)
	}

	stranger() // s[3] evicts s[0]
	if !closedByPeer(t, s[0], 5*time.Second) || b.connected(ep(s[0])) {
		t.Fatal("the oldest stranger was not evicted")
	}
	// A dial evicts s[1].
	c := open(t, "tcp://127.0.0.1:0")
	if err := b.WriteTo([]byte("out"), endpointOf(t, c)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	if n, _ := readTimeout(t, c, buf, 5*time.Second); string(buf[:n]) != "out" {
		t.Fatalf("dialled peer read %q", buf[:n])
	}
	if !closedByPeer(t, s[1], 5*time.Second) {
		t.Fatal("the dial did not evict the oldest stranger")
	}
	stranger() // s[4] evicts s[2]
	if !closedByPeer(t, s[2], 5*time.Second) {
		t.Fatal("the oldest stranger was not evicted")
	}
	for _, c := range s[3:] {
		if !b.connected(ep(c)) {
			t.Fatalf("a younger stranger %s was evicted", ep(c))
		}
	}
	if st := stats(b); st.Evicted != 3 || st.Conns != 4 || st.Unauthenticated != 2 || !b.connected(peerEP) {
		t.Fatalf("stats %+v: want 3 evicted, the authenticated peer kept", st)
	}

	// Once s[3] and s[4] are answered, every slot is authenticated or dialled: a
	// stranger is refused, a dial to a new endpoint dropped.
	for _, c := range s[3:] {
		if err := b.WriteTo([]byte("answer"), ep(c)); err != nil {
			t.Fatal(err)
		}
		if got := readFrame(t, c); string(got) != "answer" {
			t.Fatalf("answer %q", got)
		}
	}
	late := dialFrom(t, loopback, bEP)
	if !closedByPeer(t, late, 5*time.Second) {
		t.Fatal("a stranger got into a table full of authenticated connections")
	}
	before := stats(b)
	if err := b.WriteTo([]byte("x"), EndpointOf(netip.MustParseAddrPort("127.0.0.1:9"))); err != nil {
		t.Fatal(err)
	}
	st := stats(b)
	if st.RefusedFull != 1 || st.Evicted != 3 || st.Conns != 4 || st.Unauthenticated != 0 ||
		st.Dials != before.Dials || st.Drops != before.Drops+1 {
		t.Fatalf("stats %+v (before the dial %+v): want one refusal, no eviction, the dial dropped", st, before)
	}
	// The authenticated peer still delivers.
	writeFrame(t, peer, []byte("still here"))
	if n, from := readTimeout(t, b, buf, 5*time.Second); string(buf[:n]) != "still here" || from != peerEP {
		t.Fatalf("read %q from %q", buf[:n], from)
	}
}

// TestTCPAuthTimeout: an accepted connection that is not answered within the
// authentication deadline is closed, however much it sends; an answered one stays.
func TestTCPAuthTimeout(t *testing.T) {
	const deadline = 300 * time.Millisecond
	b := listenLimits(t, tcpLimits{maxConns: 64, perSource: 8, authTimeout: deadline})
	peer, peerEP := authenticated(t, b, loopback)
	start := time.Now()
	s := dialFrom(t, loopback, endpointOf(t, b))
	go func() { // garbage frames, one every 15 ms, do not keep it alive
		tick := time.NewTicker(deadline / 20)
		defer tick.Stop()
		for range tick.C {
			if _, err := s.Write(appendFrame(nil, []byte("no psk"))); err != nil {
				return // closed
			}
		}
	}()
	go func() { // drain what the stranger sends, as the router would
		buf := make([]byte, 64)
		for {
			if _, _, err := b.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	if !closedByPeer(t, s, 10*time.Second) {
		t.Fatal("the unauthenticated connection was not closed")
	}
	if d := time.Since(start); d < deadline {
		t.Fatalf("closed after %v, before the %v deadline", d, deadline)
	}
	// The peer was accepted before the stranger: its deadline has passed too.
	waitUntil(t, 5*time.Second, "the timeout is counted", func() bool { return stats(b).AuthTimeouts == 1 })
	if st := stats(b); !b.connected(peerEP) || st.Conns != 1 || st.Unauthenticated != 0 || st.AuthTimeouts != 1 {
		t.Fatalf("stats %+v: want the authenticated peer kept, one timeout", st)
	}
	if err := b.WriteTo([]byte("still here"), peerEP); err != nil {
		t.Fatal(err)
	}
	if got := readFrame(t, peer); string(got) != "still here" {
		t.Fatalf("peer read %q", got)
	}
}

// connFor returns the connection t holds for endpoint ep, or nil.
func (t *TCP) connFor(ep Endpoint) *tconn {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.conns[ep]
}

// localEnd is this side's endpoint of the open connection to ep, zero if none.
func (t *TCP) localEnd(ep Endpoint) Endpoint {
	c := t.connFor(ep)
	if c == nil {
		return Endpoint{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		return Endpoint{}
	}
	return EndpointOf(c.conn.LocalAddr().(*net.TCPAddr).AddrPort())
}
