package stream

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// leakCheck fails the test if goroutines started during it outlive it.
func leakCheck(t testing.TB) {
	base := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= base {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("goroutine leak: %d before, %d after\n%s", base, n, buf)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// payload returns size deterministic pseudo-random bytes.
func payload(size int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 42))
	b := make([]byte, size)
	for i := 0; i+8 <= len(b); i += 8 {
		v := r.Uint64()
		for k := range 8 {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	return b
}

// writeAll writes data in chunks of random size and returns the first error.
func writeAll(c net.Conn, data []byte, seed uint64) error {
	r := rand.New(rand.NewPCG(seed, 7))
	for len(data) > 0 {
		n := min(len(data), 1+r.IntN(64<<10))
		k, err := c.Write(data[:n])
		if err != nil {
			return err
		}
		data = data[k:]
	}
	return nil
}

// readN reads exactly n bytes (in chunks of random size) and returns their
// SHA-256.
func readN(c net.Conn, n int, progress func(int)) ([32]byte, error) {
	h := sha256.New()
	buf := make([]byte, 48<<10)
	got := 0
	for got < n {
		k, err := c.Read(buf[:min(len(buf), n-got)])
		h.Write(buf[:k])
		got += k
		if progress != nil && k > 0 {
			progress(got)
		}
		if err != nil {
			var sum [32]byte
			return sum, fmt.Errorf("after %d of %d bytes: %w", got, n, err)
		}
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

// closeBoth closes both ends and waits until both have finished.
func closeBoth(t testing.TB, tp *testPair, a, b *Conn) {
	t.Helper()
	a.Close()
	b.Close()
	for _, c := range []*Conn{a, b} {
		select {
		case <-c.Done():
		case <-time.After(10 * time.Second):
			t.Errorf("stream did not finish after Close: %s", c.debugState())
		}
	}
	tp.net.Close()
}

func logStats(t testing.TB, name string, c *Conn) {
	st := c.Stats()
	t.Logf("%s: sent %d segs (%d rtx, %d lost, %d spurious, %d timeouts) recv %d segs (%d dup), bytes rtx %d dup %d",
		name, st.SegmentsSent, st.SegmentsRetransmitted, st.SegmentsLost, st.SegmentsSpurious, st.Timeouts,
		st.SegmentsReceived, st.SegmentsDuplicate, st.BytesRetransmitted, st.BytesDuplicate)
	for _, p := range st.Paths {
		t.Logf("   path %d present=%v dead=%v rtt=%v min=%v sent=%d acked=%d lost=%d spurious=%d loss=%.2f cwnd=%d",
			p.ID, p.Present, p.Dead, p.RTT, p.MinRTT, p.Sent, p.Acked, p.Lost, p.Spurious, p.LossRate, p.Window)
	}
}

// transfer sends size bytes each way (or only a->b) and checks SHA-256.
func transfer(t *testing.T, tp *testPair, a, b *Conn, size int, both bool, during func(got int)) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	run := func(w, r *Conn, seed uint64, prog func(int)) {
		data := payload(size, seed)
		want := sha256.Sum256(data)
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := writeAll(w, data, seed); err != nil {
				errs <- fmt.Errorf("write: %w", err)
			}
		}()
		go func() {
			defer wg.Done()
			got, err := readN(r, size, prog)
			if err != nil {
				errs <- fmt.Errorf("read: %w", err)
				return
			}
			if got != want {
				errs <- errors.New("SHA-256 mismatch")
			}
		}()
	}
	start := time.Now()
	run(a, b, 1, during)
	if both {
		run(b, a, 2, nil)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	el := time.Since(start)
	total := size
	if both {
		total *= 2
	}
	t.Logf("%d bytes in %v: %.1f MB/s", total, el.Round(time.Millisecond), float64(total)/el.Seconds()/1e6)
}

func TestCleanBidirectional10MB(t *testing.T) {
	leakCheck(t)
	tp := newTestPair(1, linkCfg{}, Config{})
	a, b, err := tp.dial()
	if err != nil {
		t.Fatal(err)
	}
	transfer(t, tp, a, b, 10<<20, true, nil)
	logStats(t, "a", a)
	logStats(t, "b", b)
	closeBoth(t, tp, a, b)
}

func TestLossy5MB(t *testing.T) {
	leakCheck(t)
	lc := linkCfg{loss: 0.2, delay: 20 * time.Millisecond, jitter: 4 * time.Millisecond, reorder: 0.05, dup: 0.02}
	tp := newTestPair(1, lc, Config{})
	a, b, err := tp.dial()
	if err != nil {
		t.Fatal(err)
	}
	transfer(t, tp, a, b, 5<<20, false, nil)
	logStats(t, "a", a)
	logStats(t, "b", b)
	closeBoth(t, tp, a, b)
}

// Three paths; mid-transfer one starts failing Send and another silently drops
// everything. The transfer completes byte-exact on the third.
func TestMultipathFailover(t *testing.T) {
	leakCheck(t)
	lc := linkCfg{delay: 5 * time.Millisecond, jitter: time.Millisecond}
	tp := newTestPair(3, lc, Config{})
	a, b, err := tp.dial()
	if err != nil {
		t.Fatal(err)
	}
	const size = 8 << 20
	var once sync.Once
	var mu sync.Mutex
	var last, killed time.Time
	var maxGap time.Duration
	transfer(t, tp, a, b, size, false, func(got int) {
		now := time.Now()
		mu.Lock()
		if !killed.IsZero() && now.Sub(last) > maxGap {
			maxGap = now.Sub(last)
		}
		last = now
		mu.Unlock()
		if got > size/3 {
			once.Do(func() {
				tp.path(0, func(l *fakeLink) { l.broken = true })
				tp.path(1, func(l *fakeLink) { l.blackhole = true })
				mu.Lock()
				killed = now
				mu.Unlock()
			})
		}
	})
	t.Logf("longest stall in reading after the failure: %v", maxGap)
	logStats(t, "a", a)
	logStats(t, "b", b)
	// Both failed paths end up out of use (probes find no life in them).
	deadline := time.Now().Add(5 * time.Second)
	for {
		dead := 0
		for _, p := range a.Stats().Paths {
			if (p.ID == 100 || p.ID == 101) && p.Dead {
				dead++
			}
		}
		if dead == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("failed paths not marked dead")
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	closeBoth(t, tp, a, b)
}

// A killed path comes back and is used again.
func TestPathRevives(t *testing.T) {
	leakCheck(t)
	tp := newTestPair(2, linkCfg{delay: 2 * time.Millisecond}, Config{})
	a, b, err := tp.dial()
	if err != nil {
		t.Fatal(err)
	}
	tp.path(0, func(l *fakeLink) { l.blackhole = true })
	transfer(t, tp, a, b, 2<<20, false, nil)
	tp.path(0, func(l *fakeLink) { l.blackhole = false })
	tp.path(1, func(l *fakeLink) { l.broken = true })
	transfer(t, tp, a, b, 2<<20, false, nil)
	logStats(t, "a", a)
	closeBoth(t, tp, a, b)
}

// Paths with very different round trips share one stream without the slow
// one being given up.
func TestMultipathMixedRTT(t *testing.T) {
	leakCheck(t)
	tp := newTestPair(2, linkCfg{}, Config{})
	tp.path(0, func(l *fakeLink) { l.cfg.delay = time.Millisecond })
	tp.path(1, func(l *fakeLink) { l.cfg.delay = 60 * time.Millisecond; l.cfg.loss = 0.05 })
	a, b, err := tp.dial()
	if err != nil {
		t.Fatal(err)
	}
	transfer(t, tp, a, b, 4<<20, true, nil)
	logStats(t, "a", a)
	closeBoth(t, tp, a, b)
}

// A slow link with a deep queue: pacing and the delay signal keep the queue
// short instead of filling it with the whole window.
func TestBottleneckQueue(t *testing.T) {
	leakCheck(t)
	lc := linkCfg{delay: 10 * time.Millisecond, rate: 4e6, queue: time.Second}
	tp := newTestPair(1, lc, Config{})
	a, b, err := tp.dial()
	if err != nil {
		t.Fatal(err)
	}
	transfer(t, tp, a, b, 3<<20, false, nil)
	l := tp.ab[0]
	l.mu.Lock()
	mq := l.maxQueue
	l.mu.Unlock()
	t.Logf("largest queue at the bottleneck: %v (a whole window would be %v); dropped %d",
		mq, time.Duration(float64(DefaultWindow)/4e6*float64(time.Second)), l.dropped.Load())
	logStats(t, "a", a)
	closeBoth(t, tp, a, b)
}

// Paths with different MTUs; retransmissions are re-cut to fit.
func TestMixedMTU(t *testing.T) {
	leakCheck(t)
	tp := newTestPair(2, linkCfg{loss: 0.1, delay: 2 * time.Millisecond}, Config{})
	tp.path(1, func(l *fakeLink) { l.cfg.mtu = 300 })
	a, b, err := tp.dial()
	if err != nil {
		t.Fatal(err)
	}
	transfer(t, tp, a, b, 2<<20, true, nil)
	logStats(t, "a", a)
	closeBoth(t, tp, a, b)
}

// The path set is empty for 500 ms in the middle of a transfer.
func TestPathsEmpty(t *testing.T) {
	leakCheck(t)
	tp := newTestPair(2, linkCfg{delay: 3 * time.Millisecond}, Config{})
	a, b, err := tp.dial()
	if err != nil {
		t.Fatal(err)
	}
	const size = 4 << 20
	var once sync.Once
	done := make(chan struct{})
	transfer(t, tp, a, b, size, false, func(got int) {
		if got > size/4 {
			once.Do(func() {
				tp.a.paths.set(nil)
				tp.b.paths.set(nil)
				go func() {
					defer close(done)
					// The outage's length is the scenario, not synchronisation.
					time.Sleep(500 * time.Millisecond)
					tp.a.paths.set(tp.all)
					tp.b.paths.set(tp.allB)
				}()
			})
		}
	})
	<-done
	logStats(t, "a", a)
	closeBoth(t, tp, a, b)
}

// A new route appears while the only old one is gone.
func TestNewPathAppears(t *testing.T) {
	leakCheck(t)
	tp := newTestPair(2, linkCfg{delay: 2 * time.Millisecond}, Config{})
	tp.a.paths.set(tp.all[:1])
	tp.b.paths.set(tp.allB[:1])
	a, b, err := tp.dial()
	if err != nil {
		t.Fatal(err)
	}
	const size = 3 << 20
	var once sync.Once
	transfer(t, tp, a, b, size, false, func(got int) {
		if got > size/3 {
			once.Do(func() {
				tp.path(0, func(l *fakeLink) { l.blackhole = true })
				go func() {
					// The scenario: 200 ms with no working path before the
					// new one appears.
					time.Sleep(200 * time.Millisecond)
					tp.a.paths.set(tp.all[1:])
					tp.b.paths.set(tp.allB[1:])
				}()
			})
		}
	})
	closeBoth(t, tp, a, b)
}

// Close sends a FIN after all data; the reader gets everything, then io.EOF.
func TestCloseFIN(t *testing.T) {
	leakCheck(t)
	tp := newTestPair(1, linkCfg{loss: 0.1, delay: 5 * time.Millisecond}, Config{})
	a, b, err := tp.dial()
	if err != nil {
		t.Fatal(err)
	}
	data := payload(1<<20+123, 9)
	go func() {
		a.Write(data)
		a.Close()
	}()
	got, err := io.ReadAll(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("got %d bytes, want %d (equal: %v)", len(got), len(data), bytes.Equal(got, data))
	}
	if n, err := b.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Errorf("Read after EOF: %d, %v", n, err)
	}
	if _, err := a.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close: %v", err)
	}
	if _, err := a.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read after Close: %v", err)
	}
	// The other direction still works until b closes.
	if _, err := b.Write([]byte("late")); err != nil {
		t.Errorf("Write to a closed peer: %v", err)
	}
	b.Close()
	for _, c := range []*Conn{a, b} {
		select {
		case <-c.Done():
		case <-time.After(10 * time.Second):
			t.Fatalf("not finished\na: %s\nb: %s", a.debugState(), b.debugState())
		}
	}
	tp.net.Close()
}

// TIME-WAIT: the side that closed last loses all its acknowledgements of the
// peer's final data and FIN for a while; it must still be there to answer the
// peer's retransmissions, so that the peer finishes long before its idle
// timeout instead of retransmitting to a forgotten stream.
func TestTimeWaitAnswersRetransmits(t *testing.T) {
	leakCheck(t)
	tp := newTestPair(1, linkCfg{delay: 5 * time.Millisecond}, Config{IdleTimeout: time.Minute})
	a, b, err := tp.dial()
	if err != nil {
		t.Fatal(err)
	}
	a.Write([]byte("hello"))
	a.Close()
	if got, err := io.ReadAll(b); err != nil || string(got) != "hello" {
		t.Fatalf("b read %q, %v", got, err)
	}
	waitFor(t, "a's FIN acknowledged", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.finState == finAcked
	})
	tp.ab[0].set(func(l *fakeLink) { l.blackhole = true }) // a's acks vanish
	timeouts := b.Stats().Timeouts
	b.Write([]byte("late"))
	b.Close()
	waitFor(t, "a's TIME-WAIT", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return !a.timeWait.IsZero() || a.state == stateDone
	})
	// b retransmits into the void and backs off: two retransmission timeouts.
	waitFor(t, "b's retransmissions to time out twice", func() bool { return b.Stats().Timeouts >= timeouts+2 })
	tp.ab[0].set(func(l *fakeLink) { l.blackhole = false })
	select {
	case <-b.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("b did not finish\na: %s\nb: %s", a.debugState(), b.debugState())
	}
	b.mu.Lock()
	if b.sndUna != 4 || b.finState != finAcked || b.err != nil {
		t.Errorf("b ended with %d of 4 bytes acknowledged, FIN state %d, error %v", b.sndUna, b.finState, b.err)
	}
	b.mu.Unlock()
	<-a.Done()
	tp.net.Close()
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// Empty stream: Close right after Dial's establishment gives EOF.
func TestCloseEmpty(t *testing.T) {
	leakCheck(t)
	tp := newTestPair(1, linkCfg{}, Config{})
	a, b, err := tp.dial()
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	if n, err := b.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Errorf("Read: %d, %v", n, err)
	}
	closeBoth(t, tp, a, b)
}

func TestDeadlines(t *testing.T) {
	leakCheck(t)
	tp := newTestPair(1, linkCfg{delay: time.Millisecond}, Config{Window: 64 << 10, RecvBuffer: 64 << 10})
	a, b, err := tp.dial()
	if err != nil {
		t.Fatal(err)
	}
	// Read deadline in the future expires.
	b.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	start := time.Now()
	_, err = b.Read(make([]byte, 10))
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("Read past deadline: %v", err)
	}
	if el := time.Since(start); el < 90*time.Millisecond {
		t.Errorf("Read returned after %v", el)
	}
	// A deadline moved into the past unblocks a pending Read.
	b.SetReadDeadline(time.Time{})
	errc := make(chan error, 1)
	go func() {
		_, err := b.Read(make([]byte, 10))
		errc <- err
	}()
	// SetReadDeadline above woke any reader and cleared rwait; a Read that blocks
	// makes it anew.
	waitFor(t, "the Read to block", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.rwait != nil
	})
	b.SetReadDeadline(time.Now().Add(-time.Second))
	select {
	case err := <-errc:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("unblocked Read: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Read not unblocked by SetReadDeadline")
	}
	// Clearing the deadline makes Read work again.
	b.SetReadDeadline(time.Time{})
	a.Write([]byte("hello"))
	buf := make([]byte, 10)
	n, err := b.Read(buf)
	if err != nil || string(buf[:n]) != "hello" {
		t.Errorf("Read after clearing deadline: %q %v", buf[:n], err)
	}
	// Write deadline: b does not read, so the windows fill and Write blocks.
	a.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
	n, err = a.Write(make([]byte, 1<<20))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Write past deadline: %d, %v", n, err)
	}
	if n < 64<<10 || n >= 1<<20 {
		t.Errorf("Write wrote %d bytes before its deadline", n)
	}
	t.Logf("wrote %d bytes before the write deadline", n)
	// Reading it all drains the pipe; the bytes written are exactly those read.
	a.SetWriteDeadline(time.Time{})
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := readN(b, n, nil); err != nil {
		t.Errorf("drain: %v", err)
	}
	closeBoth(t, tp, a, b)
}

// The peer vanishes: Read fails with a timeout error after IdleTimeout.
func TestIdleTimeout(t *testing.T) {
	leakCheck(t)
	cfg := Config{IdleTimeout: 600 * time.Millisecond, KeepAlive: 100 * time.Millisecond}
	tp := newTestPair(2, linkCfg{delay: time.Millisecond}, cfg)
	a, b, err := tp.dial()
	if err != nil {
		t.Fatal(err)
	}
	// Keepalives hold an idle stream open well past the idle timeout: the idle
	// time is what is tested, so this sleep stays.
	time.Sleep(1200 * time.Millisecond)
	select {
	case <-a.Done():
		t.Fatal("idle stream timed out despite keepalives")
	default:
	}
	for i := range 2 {
		tp.path(i, func(l *fakeLink) { l.blackhole = true })
	}
	start := time.Now()
	_, err = a.Read(make([]byte, 1))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, ErrIdleTimeout) {
		t.Errorf("Read: %v", err)
	}
	t.Logf("idle timeout after %v", time.Since(start))
	if _, err := a.Write([]byte("x")); !errors.Is(err, ErrIdleTimeout) {
		t.Errorf("Write after timeout: %v", err)
	}
	<-a.Done()
	<-b.Done()
	a.Close()
	b.Close()
	tp.net.Close()
}

// Dialing nobody fails with the idle timeout.
func TestDialNoAnswer(t *testing.T) {
	leakCheck(t)
	n := newFakeNet()
	l := n.newLink(linkCfg{}, 1, func([]byte) {})
	ps := &fakePaths{paths: []Path{&fakePath{l: l, id: 1}}}
	c := Dial(ps, fakeAddr("a"), fakeAddr("b"), Config{IdleTimeout: 500 * time.Millisecond})
	_, err := c.Write([]byte("x"))
	if !errors.Is(err, ErrIdleTimeout) {
		t.Errorf("Write: %v", err)
	}
	<-c.Done()
	n.Close()
}

// Close before the peer answers ends the stream at once.
func TestCloseWhileDialing(t *testing.T) {
	leakCheck(t)
	ps := &fakePaths{}
	c := Dial(ps, fakeAddr("a"), fakeAddr("b"), Config{})
	c.Close()
	select {
	case <-c.Done():
	case <-time.After(time.Second):
		t.Fatal("not done")
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read: %v", err)
	}
}

// RST from the peer (after its idle timeout) fails the local stream.
func TestReset(t *testing.T) {
	leakCheck(t)
	tp := newTestPair(1, linkCfg{}, Config{})
	a, b, err := tp.dial()
	if err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	b.rstPending = true
	b.finishLocked(errors.New("test abort"))
	b.mu.Unlock()
	b.pump()
	_, err = a.Read(make([]byte, 1))
	if !errors.Is(err, ErrReset) {
		t.Errorf("Read: %v", err)
	}
	a.Close()
	tp.net.Close()
}

// Many streams opened, used and closed leave no goroutine behind.
func TestNoGoroutineLeak(t *testing.T) {
	leakCheck(t)
	// The pairs run side by side: each spends its TIME-WAIT after closing.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			tp := newTestPair(2, linkCfg{loss: 0.05}, Config{})
			a, b, err := tp.dial()
			if err != nil {
				t.Error(err)
				a.Close()
				tp.net.Close()
				return
			}
			msg := []byte(strings.Repeat("x", 1000*i+1))
			go a.Write(msg)
			if _, err := readN(b, len(msg), nil); err != nil {
				t.Error(err)
			}
			closeBoth(t, tp, a, b)
		})
	}
	wg.Wait()
}

// Garbage delivered to a running stream is dropped without harm.
func TestGarbageDuringTransfer(t *testing.T) {
	leakCheck(t)
	tp := newTestPair(1, linkCfg{delay: time.Millisecond, loss: 0.05}, Config{})
	a, b, err := tp.dial()
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r := rand.New(rand.NewPCG(3, 3))
		seg := segment{flags: flagDATA | flagACK, conn: a.connID, pn: 5, off: 100, data: []byte("evil"),
			ack: ackSection{largest: 10, ranges: []pnRange{{0, 10}}}}
		real := seg.encode(nil)
		for {
			select {
			case <-stop:
				return
			default:
			}
			g := make([]byte, r.IntN(1300))
			for i := range g {
				g[i] = byte(r.Uint32())
			}
			b.Deliver(g, nil)
			a.Deliver(g, nil)
			m := append([]byte(nil), real...)
			m[r.IntN(len(m))] ^= byte(1 + r.IntN(255))
			b.Deliver(m, nil)
			time.Sleep(100 * time.Microsecond) // paces the garbage; not synchronisation
		}
	}()
	transfer(t, tp, a, b, 2<<20, true, nil)
	close(stop)
	wg.Wait()
	if b.Stats().SegmentsInvalid == 0 {
		t.Error("no invalid segments counted")
	}
	closeBoth(t, tp, a, b)
}

// Stats and addresses.
func TestStatsAndAddrs(t *testing.T) {
	leakCheck(t)
	tp := newTestPair(2, linkCfg{delay: 2 * time.Millisecond}, Config{})
	a, b, err := tp.dial()
	if err != nil {
		t.Fatal(err)
	}
	transfer(t, tp, a, b, 256<<10, false, nil)
	if a.LocalAddr().String() != "a" || a.RemoteAddr().String() != "b" {
		t.Errorf("addrs %v %v", a.LocalAddr(), a.RemoteAddr())
	}
	st := a.Stats()
	if st.BytesSent < 256<<10 || st.BytesWritten != 256<<10 || len(st.Paths) != 2 {
		t.Errorf("stats %+v", st)
	}
	for _, p := range st.Paths {
		if p.RTT <= 0 || p.Sent == 0 {
			t.Errorf("path %+v", p)
		}
	}
	if bs := b.Stats(); bs.BytesReceived != 256<<10 {
		t.Errorf("received %d", bs.BytesReceived)
	}
	closeBoth(t, tp, a, b)
}

func BenchmarkStreamClean(b *testing.B) {
	tp := newTestPair(1, linkCfg{}, Config{})
	x, y, err := tp.dial()
	if err != nil {
		b.Fatal(err)
	}
	const chunk = 1 << 20
	data := payload(chunk, 1)
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 64<<10)
		want := int64(b.N) * chunk
		var got int64
		for got < want {
			n, err := y.Read(buf)
			got += int64(n)
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	b.SetBytes(chunk)
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if _, err := x.Write(data); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)*chunk/time.Since(start).Seconds()/1e6, "MB/s")
	b.StopTimer()
	x.Close()
	y.Close()
	<-x.Done()
	<-y.Done()
	tp.net.Close()
}

// TestPerHopReliableLateNotLost: over a route that reorders a lot but loses
// nothing (what store and forward looks like end to end: a packet held up by a
// hop's recovery arrives late), PerHopReliable takes late packets for late, and
// sends far less again than the default loss detection, which judges a packet
// lost three packets behind.
func TestPerHopReliableLateNotLost(t *testing.T) {
	leakCheck(t)
	lc := linkCfg{delay: 5 * time.Millisecond, jitter: 3 * time.Millisecond, reorder: 0.2}
	// Typically 3-17 against 61-91; on a loaded machine (CI runs the QEMU
	// tests beside the unit tests) the timers fire late and the late-packet
	// judgement sends more again (45 against 84 seen, once 64 against 81).
	// Up to three rounds: a PerHopReliable that judged like the default would
	// fail every one, a loaded machine rarely two in a row.
	var rounds []string
	for round := 1; round <= 3; round++ {
		resent := map[bool]uint64{}
		for _, hop := range []bool{false, true} {
			tp := newTestPair(1, lc, Config{PerHopReliable: hop})
			a, b, err := tp.dial()
			if err != nil {
				t.Fatal(err)
			}
			transfer(t, tp, a, b, 2<<20, false, nil)
			st := a.Stats()
			resent[hop] = st.SegmentsRetransmitted
			t.Logf("round %d, PerHopReliable %v: %d segments sent, %d sent again, %d declared lost (%d spuriously)",
				round, hop, st.SegmentsSent, st.SegmentsRetransmitted, st.SegmentsLost, st.SegmentsSpurious)
			closeBoth(t, tp, a, b)
		}
		if resent[false] == 0 {
			t.Fatal("the default detection sent nothing again on this reordering route: the test shows nothing")
		}
		if resent[true]*3 <= resent[false]*2 {
			return
		}
		rounds = append(rounds, fmt.Sprintf("%d against %d", resent[true], resent[false]))
	}
	t.Errorf("segments sent again with PerHopReliable against the default, three rounds: %s; want under two thirds", strings.Join(rounds, ", "))
}

// A dialler's SYNs go at 250 ms doubling up to 2 s; on a slow path, whose
// Config.MinRTO and MaxRTO are above those, at MinRTO doubling up to MaxRTO,
// so a radio link is not filled with SYNs before the first can be answered.
func TestSYNScheduleFollowsSlowRTO(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want []time.Duration
	}{
		{Config{}, []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 2 * time.Second}},
		{Config{MinRTO: 25 * time.Second, MaxRTO: 2 * time.Minute}, []time.Duration{25 * time.Second, 50 * time.Second, 100 * time.Second, 2 * time.Minute, 2 * time.Minute}},
	} {
		conn := &Conn{cfg: c.cfg.withDefaults()}
		for tries, want := range c.want {
			if got := conn.synRetry(tries); got != want {
				t.Errorf("MinRTO %v: wait after SYN %d is %v, want %v", c.cfg.MinRTO, tries+1, got, want)
			}
		}
	}
}

// A Window below the old 16 KB floor is honoured (at least MinWindow): on a
// slow link the bytes queued at the bottleneck stay within it, as a radio
// link needs (its queue is its transmitter, seconds a datagram).
func TestSmallWindowBoundsTheQueue(t *testing.T) {
	leakCheck(t)
	const rate = 20e3 // bytes per second
	lc := linkCfg{delay: 5 * time.Millisecond, rate: rate, queue: 10 * time.Second}
	tp := newTestPair(1, lc, Config{Window: 4 << 10})
	a, b, err := tp.dial()
	if err != nil {
		t.Fatal(err)
	}
	if got := (Config{Window: 100}).withDefaults().Window; got != MinWindow {
		t.Errorf("Window 100 became %d, want MinWindow %d", got, MinWindow)
	}
	transfer(t, tp, a, b, 64<<10, false, nil)
	l := tp.ab[0]
	l.mu.Lock()
	mq := l.maxQueue
	l.mu.Unlock()
	// The window and one more segment's worth, as queueing time.
	bound := time.Duration(float64((4<<10)+1500) / rate * float64(time.Second))
	if mq > bound {
		t.Fatalf("the bottleneck queued %v, more than a 4 KB window allows (%v)", mq, bound)
	}
	t.Logf("largest queue %v (bound %v)", mq, bound)
	closeBoth(t, tp, a, b)
}
