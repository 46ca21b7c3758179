package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var (
	_ Transport = (*UDP)(nil)
	_ Transport = (*TCP)(nil)
)

func open(t testing.TB, url string) Transport {
	t.Helper()
	tr, err := Open(url)
	if err != nil {
		t.Fatalf("Open(%q): %v", url, err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// hostPort is the "ip:port" of a transport listening on a specific address.
func hostPort(t testing.TB, tr Transport) string {
	t.Helper()
	_, hp, _ := strings.Cut(tr.LocalAddr(), "://")
	ap, err := netip.ParseAddrPort(hp)
	if err != nil || ap.Port() == 0 {
		t.Fatalf("LocalAddr %q: want scheme://ip:port with a real port (%v)", tr.LocalAddr(), err)
	}
	return hp
}

// mustEP is the endpoint of a numeric "ip:port".
func mustEP(s string) Endpoint { return EndpointOf(netip.MustParseAddrPort(s)) }

// endpointOf is the endpoint of a transport listening on a specific address.
func endpointOf(t testing.TB, tr Transport) Endpoint {
	t.Helper()
	e, err := ParseEndpoint(hostPort(t, tr))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// stats reads the Stats of either transport.
func stats(tr Transport) Stats {
	return tr.(interface{ Stats() Stats }).Stats()
}

// poll reports whether cond comes to hold within d, checking it every
// millisecond. It may be called from any goroutine.
func poll(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond) // the poll interval, not a guess at how long it takes
	}
	return true
}

// waitUntil polls cond until it holds, failing the test after d.
func waitUntil(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	if !poll(d, cond) {
		t.Fatalf("timed out after %v waiting until %s", d, what)
	}
}

// readTimeout reads one datagram or fails after d.
func readTimeout(t testing.TB, tr Transport, p []byte, d time.Duration) (int, Endpoint) {
	t.Helper()
	type res struct {
		n    int
		from Endpoint
		err  error
	}
	ch := make(chan res, 1)
	go func() {
		n, from, err := tr.ReadFrom(p)
		ch <- res{n, from, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("ReadFrom: %v", r.err)
		}
		return r.n, r.from
	case <-time.After(d):
		t.Fatalf("ReadFrom: nothing within %v", d)
		return 0, Endpoint{}
	}
}

func TestOpen(t *testing.T) {
	for _, tc := range []struct{ url, network, host string }{
		{"udp://127.0.0.1:0", "udp", "127.0.0.1"},
		{"tcp://127.0.0.1:0", "tcp", "127.0.0.1"},
		{"udp://0.0.0.0:0", "udp", "0.0.0.0"},
		{"tcp://0.0.0.0:0", "tcp", "0.0.0.0"},
		{"UDP://127.0.0.1:0", "udp", "127.0.0.1"},
	} {
		tr := open(t, tc.url)
		if tr.Network() != tc.network {
			t.Errorf("%s: Network = %q", tc.url, tr.Network())
		}
		ap := endpointOf(t, tr).AddrPort()
		if ap.Addr().String() != tc.host {
			t.Errorf("%s: LocalAddr = %q, want host %s", tc.url, tr.LocalAddr(), tc.host)
		}
		if !strings.HasPrefix(tr.LocalAddr(), tc.network+"://") {
			t.Errorf("%s: LocalAddr = %q", tc.url, tr.LocalAddr())
		}
		want := UDPMTU
		if tc.network == "tcp" {
			want = TCPMTU
		}
		if got := tr.MTU(endpointOf(t, tr)); got != want {
			t.Errorf("%s: MTU = %d, want %d", tc.url, got, want)
		}
	}
	// Empty host: all addresses; the port is real.
	for _, u := range []string{"udp://:0", "tcp://:0"} {
		tr := open(t, u)
		if strings.HasSuffix(tr.LocalAddr(), ":0") {
			t.Errorf("%s: LocalAddr %q does not show the bound port", u, tr.LocalAddr())
		}
	}
	for _, u := range []string{"", "udp", "udp:/127.0.0.1:0", "sctp://127.0.0.1:0", "udp://127.0.0.1", "tcp://127.0.0.1:", "udp://127.0.0.1:99999", "tcp://nonsense host:1"} {
		if tr, err := Open(u); err == nil {
			tr.Close()
			t.Errorf("Open(%q) succeeded", u)
		}
	}
}

// payload fills a datagram of size n from writer w, sequence i; datagrams of at
// least 8 bytes carry w and i in front.
func payload(w, i, n int) []byte {
	b := make([]byte, n)
	for k := range b {
		b[k] = byte(w*31 + i*7 + k)
	}
	if n >= 8 {
		binary.BigEndian.PutUint32(b, uint32(w))
		binary.BigEndian.PutUint32(b[4:], uint32(i))
	}
	return b
}

// roundTrip sends from writers concurrent writers perWriter datagrams each, of
// sizes cycling through 0..mtu, from a to b, and checks what b receives: every
// datagram intact, none twice, each writer's in order, from a's endpoint. With
// lossless it wants all of them; otherwise received + a's drops must add up.
func roundTrip(t *testing.T, a, b Transport, writers, perWriter int, sizes []int, lossless bool) {
	aEP, bEP := hostPort(t, a), endpointOf(t, b)
	want, err := b.Resolve(aEP)
	if err != nil {
		t.Fatal(err)
	}
	total := writers * perWriter
	type got struct {
		n    int
		from Endpoint
		data []byte
	}
	recv := make(chan got, total)
	go func() {
		buf := make([]byte, 1<<16+10)
		for {
			n, from, err := b.ReadFrom(buf)
			if err != nil {
				close(recv)
				return
			}
			recv <- got{n, from, append([]byte(nil), buf[:n]...)}
		}
	}()
	// Flow control: each writer keeps the datagrams sent but not yet read under
	// window, so that four writers do not overrun one reader's socket buffer.
	const window = 64
	inFlight := func() bool { return stats(a).DatagramsOut < stats(b).DatagramsIn+window }
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				if !poll(10*time.Second, inFlight) {
					t.Errorf("writer %d: the receiver stalled; sender %+v, receiver %+v", w, stats(a), stats(b))
					return
				}
				size := sizes[(w*perWriter+i)%len(sizes)]
				if err := a.WriteTo(payload(w, i, size), bEP); err != nil {
					t.Errorf("WriteTo: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	seen := make(map[[2]int]bool)
	last := make([]int, writers)
	for i := range last {
		last[i] = -1
	}
	received, small := 0, 0
	timeout := time.After(10 * time.Second)
	for received < total {
		if !lossless && received+int(stats(a).Drops) >= total {
			// Everything sent has arrived once nothing more is queued.
			if s := stats(a); int(s.DatagramsOut)+int(s.Drops) >= total && received >= int(s.DatagramsOut) {
				break
			}
		}
		select {
		case g := <-recv:
			received++
			if g.from != want {
				t.Fatalf("datagram from %q, want %q (Resolve of %q)", g.from, want, aEP)
			}
			if g.n < 8 {
				small++
				if !bytes.Equal(g.data, payload(0, 0, g.n)[:g.n]) && g.n > 0 {
					// Small datagrams carry no id; check the pattern of some writer.
					ok := false
					for w := 0; w < writers && !ok; w++ {
						for i := 0; i < perWriter && !ok; i++ {
							ok = bytes.Equal(g.data, payload(w, i, g.n))
						}
					}
					if !ok {
						t.Fatalf("corrupt %d-byte datagram %x", g.n, g.data)
					}
				}
				continue
			}
			w := int(binary.BigEndian.Uint32(g.data))
			i := int(binary.BigEndian.Uint32(g.data[4:]))
			if w >= writers || i >= perWriter || !bytes.Equal(g.data, payload(w, i, g.n)) {
				t.Fatalf("corrupt datagram of %d bytes (writer %d, seq %d)", g.n, w, i)
			}
			if seen[[2]int{w, i}] {
				t.Fatalf("datagram %d/%d received twice", w, i)
			}
			seen[[2]int{w, i}] = true
			if _, ok := a.(*TCP); ok && i <= last[w] {
				t.Fatalf("writer %d: seq %d after %d on one TCP connection", w, i, last[w])
			}
			last[w] = i
		case <-time.After(time.Second):
			if lossless {
				t.Fatalf("received %d of %d datagrams; sender stats %+v, receiver %+v", received, total, stats(a), stats(b))
			}
		case <-timeout:
			t.Fatalf("received %d of %d; sender stats %+v", received, total, stats(a))
		}
	}
	s := stats(a)
	t.Logf("%s: received %d of %d (%d shorter than 8 bytes); sender %+v", a.Network(), received, total, small, s)
	if lossless && (s.Drops != 0 || s.Errors != 0 || received != total) {
		t.Fatalf("lost datagrams: received %d of %d, sender %+v", received, total, s)
	}
	if !lossless && received+int(s.Drops) != total {
		t.Fatalf("received %d + dropped %d != sent %d", received, s.Drops, total)
	}
	if rs := stats(b); rs.DatagramsIn != uint64(received) {
		t.Fatalf("receiver counts %d datagrams in, test read %d", rs.DatagramsIn, received)
	}
}

func TestUDPRoundTrip(t *testing.T) {
	a := open(t, "udp://127.0.0.1:0")
	b := open(t, "udp://127.0.0.1:0")
	var sizes []int
	for n := 0; n <= UDPMTU; n += 37 {
		sizes = append(sizes, n)
	}
	sizes = append(sizes, 1, 7, 8, 1280, UDPMTU-1, UDPMTU)
	roundTrip(t, a, b, 4, 400, sizes, true)
}

func TestTCPRoundTrip(t *testing.T) {
	a := open(t, "tcp://127.0.0.1:0")
	b := open(t, "tcp://127.0.0.1:0")
	// Establish the connection first so that the dial queue does not drop.
	if err := a.WriteTo([]byte("hello"), endpointOf(t, b)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	n, from := readTimeout(t, b, buf, 5*time.Second)
	if string(buf[:n]) != "hello" || from != endpointOf(t, a) && from.AddrPort().Addr() != loopback {
		t.Fatalf("got %q from %q", buf[:n], from)
	}
	// b answers on the accepted connection: a sees b's listening endpoint.
	if err := b.WriteTo([]byte("hi"), from); err != nil {
		t.Fatal(err)
	}
	n, from2 := readTimeout(t, a, buf, 5*time.Second)
	if string(buf[:n]) != "hi" || from2 != endpointOf(t, b) {
		t.Fatalf("reply %q from %q, want from %q", buf[:n], from2, endpointOf(t, b))
	}
	sizes := []int{0, 1, 7, 8, 100, 1280, 1452, 4096, 20000, 65534, TCPMTU}
	// Not lossless: concurrent writers may outrun the 256-datagram queue, and what
	// is dropped must be counted.
	roundTripFrom(t, a, b, from, sizes)
}

// roundTripFrom is roundTrip for TCP, where b sees a under the accepted endpoint.
func roundTripFrom(t *testing.T, a, b Transport, aFrom Endpoint, sizes []int) {
	const writers, perWriter = 4, 300
	total := writers * perWriter
	before := stats(a)
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				if err := a.WriteTo(payload(w, i, sizes[(w+i)%len(sizes)]), endpointOf(t, b)); err != nil {
					t.Errorf("WriteTo: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	buf := make([]byte, TCPMTU)
	last := []int{-1, -1, -1, -1}
	received := 0
	for {
		s := stats(a)
		if received+int(s.Drops-before.Drops) == total {
			break
		}
		n, from := readTimeout(t, b, buf, 10*time.Second)
		received++
		if from != aFrom {
			t.Fatalf("from %q, want %q", from, aFrom)
		}
		if n < 8 {
			continue
		}
		w, i := int(binary.BigEndian.Uint32(buf)), int(binary.BigEndian.Uint32(buf[4:]))
		if w >= writers || i >= perWriter || !bytes.Equal(buf[:n], payload(w, i, n)) {
			t.Fatalf("corrupt %d-byte datagram", n)
		}
		if i <= last[w] {
			t.Fatalf("writer %d: seq %d after %d", w, i, last[w])
		}
		last[w] = i
	}
	s := stats(a)
	t.Logf("tcp: received %d of %d, sender %+v", received, total, s)
	if s.DatagramsOut-before.DatagramsOut != uint64(received) || s.Errors != 0 {
		t.Fatalf("sender says %d out, %d errors; receiver read %d", s.DatagramsOut, s.Errors, received)
	}
	if received < writers { // the queue holds 256: most must arrive
		t.Fatalf("only %d of %d arrived", received, total)
	}
}

// TestTCPLossless sends paced datagrams of every size class and wants all of them.
func TestTCPLossless(t *testing.T) {
	a := open(t, "tcp://127.0.0.1:0")
	b := open(t, "tcp://127.0.0.1:0")
	var sizes []int
	for n := 0; n <= TCPMTU; n += 4099 {
		sizes = append(sizes, n)
	}
	sizes = append(sizes, TCPMTU, 0, 1452)
	buf := make([]byte, TCPMTU)
	for round := 0; round < 20; round++ {
		for i, n := range sizes {
			if err := a.WriteTo(payload(round, i, n), endpointOf(t, b)); err != nil {
				t.Fatal(err)
			}
		}
		for i, n := range sizes {
			m, _ := readTimeout(t, b, buf, 10*time.Second)
			if m != n || !bytes.Equal(buf[:m], payload(round, i, n)) {
				t.Fatalf("round %d datagram %d: got %d bytes, want %d", round, i, m, n)
			}
		}
	}
	if s := stats(a); s.Drops != 0 || s.Errors != 0 || s.Dials != 1 {
		t.Fatalf("sender stats %+v: want no drops, no errors, one dial", s)
	}
}

// TestEndpoints: the endpoint ReadFrom reports equals Resolve of the sender's
// configured address, for IPv4, names and a dual-stack listener.
func TestEndpoints(t *testing.T) {
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			b := open(t, network+"://:0") // dual-stack where the system has IPv6
			a := open(t, network+"://127.0.0.1:0")
			_, port, _ := net.SplitHostPort(hostPort(t, b))
			// a reaches b over IPv4; b sees an IPv4 (unmapped) endpoint.
			if err := a.WriteTo([]byte("x"), mustEP("127.0.0.1:"+port)); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 10)
			_, from := readTimeout(t, b, buf, 5*time.Second)
			ap := from.AddrPort()
			if !ap.Addr().Is4() || ap.Addr() != netip.MustParseAddr("127.0.0.1") {
				t.Fatalf("from %q: want an unmapped 127.0.0.1 endpoint", from)
			}
			if network == "udp" {
				for _, cfg := range []string{hostPort(t, a), "localhost:" + fmt.Sprint(ap.Port()), "[::ffff:127.0.0.1]:" + fmt.Sprint(ap.Port())} {
					r, err := b.Resolve(cfg)
					if err != nil || r != from {
						t.Errorf("Resolve(%q) = %q, %v; ReadFrom said %q", cfg, r, err, from)
					}
				}
			}
			// The reverse direction: b answers to from; a sees b's configured endpoint.
			if err := b.WriteTo([]byte("y"), from); err != nil {
				t.Fatal(err)
			}
			_, back := readTimeout(t, a, buf, 5*time.Second)
			want, err := a.Resolve("127.0.0.1:" + port)
			if err != nil || back != want {
				t.Fatalf("reply from %q, want Resolve = %q (%v)", back, want, err)
			}
			// IPv6 when the system has it.
			if c, err := net.ListenPacket("udp6", "[::1]:0"); err == nil {
				c.Close()
				a6 := open(t, network+"://[::1]:0")
				if err := a6.WriteTo([]byte("z"), mustEP("[::1]:"+port)); err != nil {
					t.Fatal(err)
				}
				_, from6 := readTimeout(t, b, buf, 5*time.Second)
				ap6 := from6.AddrPort()
				if ap6.Addr() != netip.IPv6Loopback() || network == "udp" && from6 != endpointOf(t, a6) {
					t.Fatalf("IPv6: from %q, want [::1]:port (a6 is %s)", from6, endpointOf(t, a6))
				}
			}
		})
	}
}

func TestResolveErrors(t *testing.T) {
	u := open(t, "udp://127.0.0.1:0")
	for _, hp := range []string{"", "1.2.3.4", "1.2.3.4:0", ":5505", "1.2.3.4:x-no-such-service", "[::1]:5505", "no-such-host.invalid:5505"} {
		if ep, err := u.Resolve(hp); err == nil {
			t.Errorf("Resolve(%q) = %q, want an error", hp, ep)
		}
	}
	if ep, err := u.Resolve("192.0.2.1:5505"); err != nil || ep != mustEP("192.0.2.1:5505") {
		t.Errorf("Resolve = %q, %v", ep, err)
	}
}

func TestWriteToErrors(t *testing.T) {
	for _, network := range []string{"udp", "tcp"} {
		tr := open(t, network+"://127.0.0.1:0")
		// The zero endpoint, a named one (not IP), port 0, IPv6 on an IPv4 socket.
		for _, to := range []Endpoint{{}, NamedEndpoint("N0CALL-7"), EndpointOf(netip.MustParseAddrPort("1.2.3.4:0")), mustEP("[::1]:5505")} {
			if err := tr.WriteTo([]byte("x"), to); err == nil {
				t.Errorf("%s: WriteTo(%q) succeeded", network, to)
			}
		}
		if err := tr.WriteTo(make([]byte, 70000), mustEP("127.0.0.1:9")); err == nil {
			t.Errorf("%s: WriteTo of 70000 bytes succeeded", network)
		}
	}
	// A UDP send nobody receives is not an error.
	u := open(t, "udp://127.0.0.1:0")
	for i := 0; i < 10; i++ {
		if err := u.WriteTo([]byte("x"), mustEP("127.0.0.1:9")); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTruncation(t *testing.T) {
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			a := open(t, network+"://127.0.0.1:0")
			b := open(t, network+"://127.0.0.1:0")
			long := payload(1, 2, 1000)
			if err := a.WriteTo(long, endpointOf(t, b)); err != nil {
				t.Fatal(err)
			}
			if err := a.WriteTo([]byte("next"), endpointOf(t, b)); err != nil {
				t.Fatal(err)
			}
			small := make([]byte, 10)
			n, _ := readTimeout(t, b, small, 5*time.Second)
			if n != len(small) || !bytes.Equal(small, long[:10]) {
				t.Fatalf("truncated read: n=%d %x, want 10 bytes %x", n, small, long[:10])
			}
			n, _ = readTimeout(t, b, small, 5*time.Second)
			if string(small[:n]) != "next" {
				t.Fatalf("after a truncated datagram got %q, want the next one whole", small[:n])
			}
			if s := stats(b); s.DatagramsIn != 2 || s.BytesIn != 14 {
				t.Fatalf("receiver stats %+v", s)
			}
		})
	}
}

func TestCloseUnblocksRead(t *testing.T) {
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			tr, err := Open(network + "://127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			if network == "tcp" {
				// With a live connection too.
				peer := open(t, "tcp://127.0.0.1:0")
				peer.WriteTo([]byte("x"), endpointOf(t, tr))
				readTimeout(t, tr, make([]byte, 10), 5*time.Second)
			}
			errc := make(chan error, 2)
			for i := 0; i < 2; i++ {
				go func() {
					_, _, err := tr.ReadFrom(make([]byte, 100))
					errc <- err
				}()
			}
			readFrom := "transport.(*" + strings.ToUpper(network) + ").ReadFrom("
			waitUntil(t, 5*time.Second, "both readers block in ReadFrom", func() bool { return blockedIn(readFrom) == 2 })
			if len(errc) != 0 {
				t.Fatalf("ReadFrom returned before Close: %v", <-errc)
			}
			if err := tr.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			for i := 0; i < 2; i++ {
				select {
				case err := <-errc:
					if !errors.Is(err, net.ErrClosed) {
						t.Fatalf("ReadFrom after Close: %v, want net.ErrClosed", err)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("Close did not unblock ReadFrom")
				}
			}
			if _, _, err := tr.ReadFrom(make([]byte, 10)); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("ReadFrom on a closed transport: %v", err)
			}
			if err := tr.WriteTo([]byte("x"), mustEP("127.0.0.1:9")); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("WriteTo on a closed transport: %v", err)
			}
			if err := tr.Close(); err == nil {
				t.Fatal("second Close succeeded")
			}
		})
	}
}

// blockedIn counts the goroutines parked (waiting, not running) with fn, a
// "package.(*Type).Method(" prefix as stack traces print it, on their stack.
func blockedIn(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		header, _, _ := strings.Cut(g, "\n")
		// "goroutine 7 [select]:", "goroutine 9 [IO wait]:"; running ones say so.
		if strings.Contains(g, fn) && !strings.Contains(header, "[running]") && !strings.Contains(header, "[runnable]") {
			count++
		}
	}
	return count
}

// TestTCPRedial: a peer restarts on the same port; the old connection breaks and a
// later WriteTo dials again.
func TestTCPRedial(t *testing.T) {
	a := open(t, "tcp://127.0.0.1:0")
	b1, err := ListenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bEP := endpointOf(t, b1)
	buf := make([]byte, 100)
	a.WriteTo([]byte("one"), bEP)
	if n, _ := readTimeout(t, b1, buf, 5*time.Second); string(buf[:n]) != "one" {
		t.Fatalf("got %q", buf[:n])
	}
	b1.Close()
	waitUntil(t, 5*time.Second, "a sees the connection close", func() bool { return stats(a).Conns == 0 })
	// Writes while the peer is down are dropped, never errors, never blocking:
	// the first dials, is refused and starts the back-off, which drops the rest.
	for i := 0; i < 20; i++ {
		if err := a.WriteTo([]byte("lost"), bEP); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, 5*time.Second, "the dial to the stopped peer fails", func() bool { return stats(a).DialFailures == 1 })
	if s := stats(a); s.Dials != 2 || s.Drops < 20 || s.Errors != 0 {
		t.Fatalf("stats %+v: want the redial refused and all 20 datagrams dropped", s)
	}
	b2, err := ListenTCP(bEP.String())
	if err != nil {
		t.Fatalf("relisten on %s: %v", bEP, err)
	}
	defer b2.Close()
	got := make(chan string, 1)
	go func() {
		n, _, err := b2.ReadFrom(buf)
		if err == nil {
			got <- string(buf[:n])
		}
	}()
	deadline := time.After(15 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case s := <-got:
			if s != "two" {
				t.Fatalf("after redial got %q", s)
			}
			st := stats(a)
			t.Logf("sender stats %+v", st)
			if st.Dials < 2 {
				t.Fatalf("Dials = %d, want a redial", st.Dials)
			}
			return
		case <-tick.C:
			if err := a.WriteTo([]byte("two"), bEP); err != nil {
				t.Fatal(err)
			}
		case <-deadline:
			t.Fatalf("no datagram after the peer restarted; sender stats %+v", stats(a))
		}
	}
}

// TestTCPDialFailureBacksOff: a refused dial drops the queue and is not retried
// at once.
func TestTCPDialFailureBacksOff(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := mustEP(l.Addr().String())
	l.Close()
	a := open(t, "tcp://127.0.0.1:0")
	for i := 0; i < 100; i++ {
		if err := a.WriteTo([]byte("x"), dead); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, 5*time.Second, "the dial fails", func() bool { return stats(a).DialFailures != 0 })
	for i := 0; i < 100; i++ {
		a.WriteTo([]byte("x"), dead)
	}
	s := stats(a)
	if s.DialFailures != 1 || s.Dials != 1 || s.Drops != 200 || s.Conns != 0 {
		t.Fatalf("stats %+v: want one failed dial, 200 drops (64 queued then dropped, the rest refused), no connections", s)
	}
}

// TestTCPSlowPeer: a peer that never reads fills only its own queue; WriteTo keeps
// returning and another peer still gets its datagrams.
func TestTCPSlowPeer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // never read
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	}()
	a := open(t, "tcp://127.0.0.1:0")
	b := open(t, "tcp://127.0.0.1:0")
	big := make([]byte, TCPMTU)
	// Connected first, so that what follows fills the connection's queue and the
	// socket buffers rather than the shorter dial queue.
	if err := a.WriteTo(big, mustEP(l.Addr().String())); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "a connects to the peer that never reads", func() bool { return a.(*TCP).connected(mustEP(l.Addr().String())) })
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 3000; i++ { // 196 MB: far beyond the queue and socket buffers
			if err := a.WriteTo(big, mustEP(l.Addr().String())); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("WriteTo to a peer that does not read blocked")
	}
	for i := 0; i < 10; i++ {
		if err := a.WriteTo([]byte(fmt.Sprint(i)), endpointOf(t, b)); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 10)
	for i := 0; i < 10; i++ {
		n, _ := readTimeout(t, b, buf, 5*time.Second)
		if string(buf[:n]) != fmt.Sprint(i) {
			t.Fatalf("got %q, want %d", buf[:n], i)
		}
	}
	if s := stats(a); s.Drops == 0 {
		t.Fatalf("stats %+v: the stuck peer's queue should have overflowed", s)
	}
}

func TestUDPNoAllocs(t *testing.T) {
	a, err := ListenUDP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := ListenUDP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	to := endpointOf(t, b)
	p := make([]byte, 1280)
	buf := make([]byte, 2048)
	allocs := testing.AllocsPerRun(200, func() {
		if err := a.WriteTo(p, to); err != nil {
			t.Fatal(err)
		}
		if _, _, err := b.ReadFrom(buf); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per datagram sent and received, want 0", allocs)
	}
}

// BenchmarkUDPLoopback1280 sends and receives 1280-byte datagrams over loopback,
// keeping at most 256 in flight so that the receive buffer never overflows; lost
// datagrams, if any, are reported as lost/op.
func BenchmarkUDPLoopback1280(b *testing.B) {
	benchLoopback(b, "udp", 1280, 256)
}

// BenchmarkTCPLoopback1280 is the same over the TCP transport.
func BenchmarkTCPLoopback1280(b *testing.B) {
	benchLoopback(b, "tcp", 1280, 128)
}

func benchLoopback(b *testing.B, network string, size, window int) {
	tx := open(b, network+"://127.0.0.1:0")
	rx := open(b, network+"://127.0.0.1:0")
	to := endpointOf(b, rx)
	p := make([]byte, size)
	// Warm up (TCP: dial).
	tx.WriteTo(p, to)
	readTimeout(b, rx, make([]byte, 2048), 5*time.Second)

	var recv atomic.Int64
	progress := make(chan struct{}, 1)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		buf := make([]byte, 2048)
		for {
			if _, _, err := rx.ReadFrom(buf); err != nil {
				return
			}
			recv.Add(1)
			select {
			case progress <- struct{}{}:
			default:
			}
		}
	}()
	stall := time.NewTimer(time.Hour)
	// wait blocks until fewer than limit datagrams are in flight; after 100 ms
	// without progress it counts those in flight as lost.
	var sent, lost int64
	wait := func(limit int64) {
		for sent-recv.Load()-lost >= limit && sent-recv.Load()-lost > 0 {
			stall.Reset(100 * time.Millisecond)
			select {
			case <-progress:
			case <-stall.C:
				lost = sent - recv.Load()
			}
			stall.Stop()
		}
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		wait(int64(window))
		if err := tx.WriteTo(p, to); err != nil {
			b.Fatal(err)
		}
		sent++
	}
	wait(1)
	b.StopTimer()
	rx.Close()
	<-stopped
	b.ReportMetric(float64(lost)/float64(b.N), "lost/op")
}
