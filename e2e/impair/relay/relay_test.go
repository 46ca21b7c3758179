package relay

import (
	"encoding/binary"
	"fmt"
	"math"
	"net"
	"sync"
	"testing"
	"time"
)

// arrival is one datagram seen by a sink.
type arrival struct {
	client uint32
	seq    uint32
	from   string
	at     time.Time
}

// sink is a UDP server on loopback that records what it receives and, when echo is
// set, sends each datagram back to where it came from.
type sink struct {
	conn *net.UDPConn
	mu   sync.Mutex
	got  []arrival
	done chan struct{}
}

func newSink(t *testing.T, echo bool) *sink {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	setBuffers(conn, 4<<20)
	s := &sink{conn: conn, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		buf := make([]byte, maxDatagram)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			now := time.Now()
			if n >= 8 {
				s.mu.Lock()
				s.got = append(s.got, arrival{
					client: binary.BigEndian.Uint32(buf[0:4]),
					seq:    binary.BigEndian.Uint32(buf[4:8]),
					from:   from.String(),
					at:     now,
				})
				s.mu.Unlock()
			}
			if echo {
				conn.WriteToUDPAddrPort(buf[:n], from)
			}
		}
	}()
	t.Cleanup(func() { conn.Close(); <-s.done })
	return s
}

func (s *sink) addr() string { return s.conn.LocalAddr().String() }

func (s *sink) arrivals() []arrival {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]arrival(nil), s.got...)
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

// packetOf makes a datagram of size bytes (at least 8) carrying client and seq.
func packetOf(client, seq uint32, size int) []byte {
	b := make([]byte, max(size, 8))
	binary.BigEndian.PutUint32(b[0:4], client)
	binary.BigEndian.PutUint32(b[4:8], seq)
	return b
}

func startRelay(t *testing.T, target string, p Params, seed int64) *Relay {
	t.Helper()
	r, err := Start("127.0.0.1:0", target, p, seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func dialRelay(t *testing.T, r *Relay) *net.UDPConn {
	t.Helper()
	c, err := net.DialUDP("udp", nil, r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	setBuffers(c, 4<<20)
	t.Cleanup(func() { c.Close() })
	return c
}

// waitFor polls cond until it holds, failing t with what after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// settled reports whether every datagram that came into d has left or been dropped.
func settled(d DirStats) bool {
	return d.Pending == 0 && d.Received+d.Duplicated == d.Forwarded+d.Dropped+d.QueueDropped+d.Errors
}

// sendPaced sends n datagrams from c, waiting every batch datagrams until the relay
// has read them all, so no kernel buffer overflows and every loss is the relay's.
func sendPaced(t *testing.T, c *net.UDPConn, r *Relay, client uint32, n int) {
	t.Helper()
	const batch = 100
	base := r.Stats().AB.Received
	for i := 0; i < n; i++ {
		if _, err := c.Write(packetOf(client, uint32(i), 16)); err != nil {
			t.Fatal(err)
		}
		if (i+1)%batch == 0 || i == n-1 {
			want := base + uint64(i+1)
			waitFor(t, 5*time.Second, "the relay to read its input", func() bool { return r.Stats().AB.Received >= want })
		}
	}
}

// within fails t unless got is within 5 standard deviations of a binomial(n, p) mean.
func within(t *testing.T, what string, got uint64, n int, p float64) {
	t.Helper()
	mean := float64(n) * p
	sd := math.Sqrt(float64(n) * p * (1 - p))
	if math.Abs(float64(got)-mean) > 5*sd {
		t.Errorf("%s = %d of %d, want %.0f ± %.0f (5 sd)", what, got, n, mean, 5*sd)
	} else {
		t.Logf("%s = %d of %d (expected %.0f ± %.0f)", what, got, n, mean, 5*sd)
	}
}

func TestLossFraction(t *testing.T) {
	const n = 20000
	s := newSink(t, false)
	p, err := ParseParams("loss.ab=0.05")
	if err != nil {
		t.Fatal(err)
	}
	r := startRelay(t, s.addr(), p, 42)
	c := dialRelay(t, r)
	sendPaced(t, c, r, 1, n)
	waitFor(t, 5*time.Second, "the relay to settle", func() bool { return settled(r.Stats().AB) })
	st := r.Stats().AB
	waitFor(t, 5*time.Second, "the sink to receive every forwarded datagram", func() bool { return uint64(s.count()) >= st.Forwarded })

	if st.Received != n {
		t.Fatalf("relay received %d, sent %d", st.Received, n)
	}
	within(t, "dropped", st.Dropped, n, 0.05)
	if st.Forwarded+st.Dropped != n || st.Duplicated != 0 || st.Reordered != 0 || st.Errors != 0 {
		t.Errorf("stats don't add up: %+v", st)
	}
	if got := s.count(); got != int(st.Forwarded) {
		t.Errorf("sink got %d datagrams, relay forwarded %d", got, st.Forwarded)
	}
	if ba := r.Stats().BA; ba.Received != 0 {
		t.Errorf("nothing came back, yet BA = %+v", ba)
	}

	// The same seed and the same traffic drop the same datagrams.
	seen := map[uint32]bool{}
	for _, a := range s.arrivals() {
		seen[a.seq] = true
	}
	s2 := newSink(t, false)
	r2 := startRelay(t, s2.addr(), p, 42)
	c2 := dialRelay(t, r2)
	const m = 2000
	sendPaced(t, c2, r2, 1, m)
	waitFor(t, 5*time.Second, "the second relay to settle", func() bool { return settled(r2.Stats().AB) })
	want := r2.Stats().AB.Forwarded
	waitFor(t, 5*time.Second, "the second sink", func() bool { return uint64(s2.count()) >= want })
	for _, a := range s2.arrivals() {
		if !seen[a.seq] {
			t.Fatalf("seed 42 forwarded datagram %d the second time but dropped it the first", a.seq)
		}
	}
}

func TestDelayIsAFloor(t *testing.T) {
	const n = 200
	abDelay, baDelay := 30*time.Millisecond, 20*time.Millisecond
	s := newSink(t, true)
	r := startRelay(t, s.addr(), Params{
		AB: Impairment{Delay: abDelay, Jitter: 10 * time.Millisecond},
		BA: Impairment{Delay: baDelay, Jitter: 5 * time.Millisecond},
	}, 1)
	c := dialRelay(t, r)

	sent := make([]time.Time, n)
	back := make([]time.Time, n)
	got := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		for got < n {
			m, err := c.Read(buf)
			if err != nil {
				return
			}
			now := time.Now()
			if m >= 8 {
				back[binary.BigEndian.Uint32(buf[4:8])] = now
				got++
			}
		}
	}()
	for i := range n {
		sent[i] = time.Now()
		if _, err := c.Write(packetOf(1, uint32(i), 16)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	<-done
	if got != n {
		t.Fatalf("got %d of %d echoes back", got, n)
	}
	var minOne, minRTT time.Duration = time.Hour, time.Hour
	for _, a := range s.arrivals() {
		minOne = min(minOne, a.at.Sub(sent[a.seq]))
		if d := a.at.Sub(sent[a.seq]); d < abDelay {
			t.Errorf("datagram %d reached the target after %v, before the %v delay", a.seq, d, abDelay)
		}
	}
	for i := range n {
		rtt := back[i].Sub(sent[i])
		minRTT = min(minRTT, rtt)
		if rtt < abDelay+baDelay {
			t.Errorf("datagram %d came back after %v, before the %v round trip", i, rtt, abDelay+baDelay)
		}
	}
	t.Logf("shortest one-way %v (floor %v), shortest round trip %v (floor %v)", minOne, abDelay, minRTT, abDelay+baDelay)
}

// inversions counts arrivals whose sequence number is below one seen before them.
func inversions(as []arrival) int {
	n := 0
	highest := -1
	for _, a := range as {
		if int(a.seq) < highest {
			n++
		} else {
			highest = int(a.seq)
		}
	}
	return n
}

func TestReorder(t *testing.T) {
	const n = 1000
	for _, tc := range []struct {
		reorder float64
		wantAny bool
	}{{0.05, true}, {0, false}} {
		s := newSink(t, false)
		r := startRelay(t, s.addr(), Params{AB: Impairment{Delay: 5 * time.Millisecond, Jitter: 3 * time.Millisecond, Reorder: tc.reorder}}, 7)
		c := dialRelay(t, r)
		sendPaced(t, c, r, 1, n)
		waitFor(t, 5*time.Second, "all datagrams", func() bool { return s.count() == n })
		inv := inversions(s.arrivals())
		st := r.Stats().AB
		t.Logf("reorder=%v: %d of %d arrived after a later one; relay held back %d", tc.reorder, inv, n, st.Reordered)
		if tc.wantAny {
			if inv == 0 || st.Reordered == 0 {
				t.Errorf("reorder=%v: %d out-of-order arrivals, %d held back; want some", tc.reorder, inv, st.Reordered)
			}
			within(t, "held back", st.Reordered, n, tc.reorder)
		} else if inv != 0 || st.Reordered != 0 {
			t.Errorf("reorder=0 (jitter 3ms): %d out-of-order arrivals, %d held back; want none", inv, st.Reordered)
		}
	}
}

func TestBothDirections(t *testing.T) {
	const n = 2000
	s := newSink(t, true)
	p, err := ParseParams("loss=0.5,loss.ab=0,delay.ba=1ms")
	if err != nil {
		t.Fatal(err)
	}
	if p.AB.Loss != 0 || p.BA.Loss != 0.5 || p.BA.Delay != time.Millisecond || p.AB.Delay != 0 {
		t.Fatalf("parsed %v", p)
	}
	r := startRelay(t, s.addr(), p, 3)
	c := dialRelay(t, r)
	var mu sync.Mutex
	echoes := 0
	go func() {
		buf := make([]byte, 64)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
			mu.Lock()
			echoes++
			mu.Unlock()
		}
	}()
	sendPaced(t, c, r, 1, n)
	waitFor(t, 5*time.Second, "the target to see every datagram", func() bool { return s.count() == n })
	waitFor(t, 5*time.Second, "both directions to settle", func() bool {
		st := r.Stats()
		return st.BA.Received == n && settled(st.AB) && settled(st.BA)
	})
	st := r.Stats()
	if st.AB.Dropped != 0 || st.AB.Forwarded != n {
		t.Errorf("a→b had loss 0: %+v", st.AB)
	}
	within(t, "b→a dropped", st.BA.Dropped, n, 0.5)
	waitFor(t, 5*time.Second, "the echoes", func() bool { mu.Lock(); defer mu.Unlock(); return uint64(echoes) == st.BA.Forwarded })
	if st.Clients != 1 {
		t.Errorf("clients = %d, want 1", st.Clients)
	}
}

func TestDuplication(t *testing.T) {
	const n = 5000
	s := newSink(t, false)
	r := startRelay(t, s.addr(), Symmetric(Impairment{Dup: 0.2}), 5)
	c := dialRelay(t, r)
	sendPaced(t, c, r, 1, n)
	waitFor(t, 5*time.Second, "the relay to settle", func() bool { return settled(r.Stats().AB) })
	st := r.Stats().AB
	within(t, "duplicated", st.Duplicated, n, 0.2)
	waitFor(t, 5*time.Second, "the copies", func() bool { return s.count() == n+int(st.Duplicated) })
	copies := map[uint32]int{}
	for _, a := range s.arrivals() {
		copies[a.seq]++
	}
	twice := 0
	for seq := range uint32(n) {
		switch copies[seq] {
		case 1:
		case 2:
			twice++
		default:
			t.Fatalf("datagram %d arrived %d times", seq, copies[seq])
		}
	}
	if twice != int(st.Duplicated) {
		t.Errorf("%d datagrams arrived twice, relay counted %d", twice, st.Duplicated)
	}
	if inv := inversions(s.arrivals()); inv != 0 {
		t.Errorf("duplication alone reordered %d datagrams", inv)
	}
}

func TestManyClients(t *testing.T) {
	const clients, each = 64, 20
	s := newSink(t, true)
	r := startRelay(t, s.addr(), Symmetric(Impairment{Delay: 2 * time.Millisecond, Jitter: time.Millisecond}), 9)
	var wg sync.WaitGroup
	errs := make(chan string, clients)
	for id := range uint32(clients) {
		c := dialRelay(t, r)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range uint32(each) {
				c.Write(packetOf(id, i, 32))
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 64)
			for i := range uint32(each) {
				n, err := c.Read(buf)
				if err != nil {
					errs <- fmt.Sprintf("client %d: %v", id, err)
					return
				}
				if n != 32 || binary.BigEndian.Uint32(buf[0:4]) != id || binary.BigEndian.Uint32(buf[4:8]) != i {
					errs <- fmt.Sprintf("client %d got % x as echo %d", id, buf[:8], i)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	peers := map[string]bool{}
	for _, a := range s.arrivals() {
		peers[a.from] = true
	}
	if len(peers) != clients {
		t.Errorf("target saw %d source addresses, want one per client (%d)", len(peers), clients)
	}
	// The last echoes may be read before the relay has counted them.
	waitFor(t, 5*time.Second, "the counters", func() bool { st := r.Stats(); return settled(st.AB) && settled(st.BA) })
	st := r.Stats()
	if st.Clients != clients || st.AB.Forwarded != clients*each || st.BA.Forwarded != clients*each {
		t.Errorf("stats: %+v", st)
	}
}

func TestRate(t *testing.T) {
	const size, n, rate = 1000, 40, 200_000
	s := newSink(t, false)
	r := startRelay(t, s.addr(), Params{AB: Impairment{Rate: rate}}, 1)
	c := dialRelay(t, r)
	start := time.Now()
	for i := range uint32(n) {
		c.Write(packetOf(1, i, size))
	}
	waitFor(t, 5*time.Second, "all datagrams", func() bool { return s.count() == n })
	as := s.arrivals()
	took := as[len(as)-1].at.Sub(start)
	floor := time.Duration(float64((n-1)*size) / rate * float64(time.Second))
	if took < floor {
		t.Errorf("%d bytes at %d B/s took %v, less than %v", n*size, rate, took, floor)
	}
	if inv := inversions(as); inv != 0 {
		t.Errorf("rate limiting reordered %d datagrams", inv)
	}
	t.Logf("%d×%d bytes at %d B/s: last arrival after %v (floor %v)", n, size, rate, took, floor)

	// A full queue drops what does not fit.
	s2 := newSink(t, false)
	r2 := startRelay(t, s2.addr(), Params{AB: Impairment{Rate: 10_000, Queue: 5000}}, 1)
	c2 := dialRelay(t, r2)
	for i := range uint32(20) {
		c2.Write(packetOf(1, i, size))
	}
	waitFor(t, 5*time.Second, "the small queue to drain", func() bool {
		st := r2.Stats().AB
		return st.Received == 20 && settled(st)
	})
	st := r2.Stats().AB
	if st.QueueDropped < 10 || st.Forwarded+st.QueueDropped != 20 {
		t.Errorf("20 KB into a 5 KB queue at 10 KB/s: %+v", st)
	}
}

func TestPartitionAndHeal(t *testing.T) {
	s := newSink(t, true)
	r := startRelay(t, s.addr(), Params{}, 1)
	c := dialRelay(t, r)
	roundTrip := func(wait time.Duration) bool {
		c.Write(packetOf(1, 1, 8))
		c.SetReadDeadline(time.Now().Add(wait))
		buf := make([]byte, 64)
		_, err := c.Read(buf)
		return err == nil
	}
	if !roundTrip(2 * time.Second) {
		t.Fatal("no echo through a clean relay")
	}
	cut, _ := r.Params().With("loss=1")
	if err := r.SetParams(cut); err != nil {
		t.Fatal(err)
	}
	if roundTrip(200 * time.Millisecond) {
		t.Fatal("echo through a partitioned relay")
	}
	healed, _ := r.Params().With("loss=0")
	r.SetParams(healed)
	if !roundTrip(2 * time.Second) {
		t.Fatal("no echo after healing")
	}
	if err := r.SetParams(Symmetric(Impairment{Loss: 2})); err == nil {
		t.Error("SetParams accepted loss 2")
	}
}

func TestCloseReleasesPort(t *testing.T) {
	s := newSink(t, true)
	r := startRelay(t, s.addr(), Params{}, 1)
	c := dialRelay(t, r)
	c.Write(packetOf(1, 1, 8))
	waitFor(t, 2*time.Second, "a client", func() bool { return r.Stats().Clients == 1 })
	addr := r.Addr().String()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r.Close() // twice is fine
	r2, err := Start(addr, s.addr(), Params{}, 1)
	if err != nil {
		t.Fatalf("port not released by Close: %v", err)
	}
	r2.Close()
}

func TestIdleClientForgotten(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the reaper")
	}
	s := newSink(t, true)
	r := startRelay(t, s.addr(), Params{Idle: 100 * time.Millisecond}, 1)
	c := dialRelay(t, r)
	c.Write(packetOf(1, 1, 8))
	waitFor(t, 2*time.Second, "a client", func() bool { return r.Stats().Clients == 1 })
	waitFor(t, 3*time.Second, "the idle client to be forgotten", func() bool { return r.Stats().Clients == 0 })
	c.Write(packetOf(1, 2, 8))
	buf := make([]byte, 64)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(buf); err != nil {
		t.Fatalf("no echo after the client came back: %v", err)
	}
}
