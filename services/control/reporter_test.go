package control

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// keyedConn lets a test say which node key a stream is from, as the mesh does.
type keyedConn struct {
	net.Conn
	key []byte
}

type keyAddr struct{ key []byte }

func (keyAddr) Network() string          { return "test" }
func (a keyAddr) String() string         { return string(a.key) }
func (c keyedConn) RemoteAddr() net.Addr { return keyAddr{c.key} }

// harness runs a Receiver for master and returns a Dial for a node with key from.
type harness struct {
	mu       sync.Mutex
	got      []*Signed
	refused  []error
	rc       *Receiver
	received chan struct{}
}

func newHarness(master []byte) *harness {
	h := &harness{received: make(chan struct{}, 100)}
	h.rc = &Receiver{
		Master:  master,
		PeerKey: func(a net.Addr) []byte { return a.(keyAddr).key },
		Accept: func(s *Signed) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			if n := len(h.got); n > 0 && h.got[n-1].Seq >= s.Seq {
				return errors.New("replay")
			}
			h.got = append(h.got, s)
			h.received <- struct{}{}
			return nil
		},
		Refused: func(_ []byte, err error) {
			h.mu.Lock()
			h.refused = append(h.refused, err)
			h.mu.Unlock()
			h.received <- struct{}{}
		},
	}
	return h
}

func (h *harness) dialFrom(key []byte) func(context.Context) (net.Conn, error) {
	return func(context.Context) (net.Conn, error) {
		a, b := net.Pipe()
		go h.rc.ServeConn(keyedConn{b, key})
		return a, nil
	}
}

func (h *harness) wait(t *testing.T) {
	t.Helper()
	select {
	case <-h.received:
	case <-time.After(10 * time.Second):
		t.Fatal("no report arrived")
	}
}

func TestReporterSendsOnStartChangeAndInterval(t *testing.T) {
	node, _ := secp256k1.GeneratePrivateKey()
	master, _ := secp256k1.GeneratePrivateKey()
	mpub := master.PubKey().SerializeCompressed()
	h := newHarness(mpub)
	var state atomic.Value
	state.Store("running")
	var seq atomic.Uint64
	r := &Reporter{
		Key: node, Master: mpub, Dial: h.dialFrom(node.PubKey().SerializeCompressed()),
		Describe: func() Report {
			return Report{Board: "host", Services: []ServiceState{{Name: "mesh", State: state.Load().(string)}}}
		},
		Seq:      func() uint64 { return seq.Add(1) },
		Interval: time.Hour, Poll: 10 * time.Millisecond,
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	h.wait(t)
	// Nothing changed: no second report within many polls.
	select {
	case <-h.received:
		t.Fatal("an unchanged report was resent before the interval")
	case <-time.After(200 * time.Millisecond):
	}
	state.Store("backoff")
	h.wait(t)
	h.mu.Lock()
	if len(h.got) != 2 || h.got[1].Report.Services[0].State != "backoff" || h.got[1].Seq <= h.got[0].Seq {
		t.Fatalf("reports: %+v", h.got)
	}
	h.mu.Unlock()
	cancel()

	// With a short interval an unchanged report repeats.
	r.Interval = 50 * time.Millisecond
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	go r.Run(ctx2)
	h.wait(t)
	h.wait(t)
}

// Unchanged reports wait a random time in [3/4 Interval, Interval], spread
// over that range, so nodes started together drift apart.
func TestReportIntervalJitter(t *testing.T) {
	const interval = 30 * time.Second
	lo, hi := interval, time.Duration(0)
	for range 1000 {
		w := jittered(interval)
		if w < interval*3/4 || w > interval {
			t.Fatalf("wait %v outside [%v, %v]", w, interval*3/4, interval)
		}
		lo, hi = min(lo, w), max(hi, w)
	}
	// 1000 uniform draws over 7.5 s leave gaps at the ends of a few
	// milliseconds; a spread under 7 s means the draws are not spread.
	if hi-lo < 7*time.Second {
		t.Fatalf("1000 waits spread over only %v (from %v to %v)", hi-lo, lo, hi)
	}
}

func TestReceiverRefusals(t *testing.T) {
	node, _ := secp256k1.GeneratePrivateKey()
	other, _ := secp256k1.GeneratePrivateKey()
	master, _ := secp256k1.GeneratePrivateKey()
	mpub := master.PubKey().SerializeCompressed()
	npub := node.PubKey().SerializeCompressed()
	h := newHarness(mpub)
	send := func(from []byte, sealed []byte) error {
		r := &Reporter{Key: node, Master: mpub, Dial: h.dialFrom(from)}
		c, _ := r.Dial(context.Background())
		defer c.Close()
		return Deliver(c, sealed)
	}
	good, _ := Seal(node, mpub, 5, Report{Board: "host"})
	toOther, _ := Seal(node, other.PubKey().SerializeCompressed(), 6, Report{Board: "host"})
	forged := append([]byte(nil), good...)
	forged[len(forged)-70] ^= 1 // a byte of the body
	cases := []struct {
		name string
		from []byte
		b    []byte
		want string
	}{
		{"another master's node", npub, toOther, "another master"},
		{"forged", npub, forged, "signature"},
		{"relayed by another node", other.PubKey().SerializeCompressed(), good, "another node"},
		{"garbage", npub, []byte("hello"), "malformed"},
	}
	for _, c := range cases {
		err := send(c.from, c.b)
		if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want a refusal mentioning %q", c.name, err, c.want)
		}
		h.wait(t)
	}
	if err := send(npub, good); err != nil {
		t.Fatalf("good report: %v", err)
	}
	h.wait(t)
	if err := send(npub, good); err == nil || !strings.Contains(err.Error(), "replay") {
		t.Fatalf("replayed report: %v", err)
	}
	h.wait(t)
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.got) != 1 || len(h.refused) != 5 {
		t.Fatalf("accepted %d, refused %d: %v", len(h.got), len(h.refused), h.refused)
	}
}

// One report attempt's setup is bounded by dialTimeout, not the whole I/O
// timeout: a dial stuck after a link flap must leave room for retries within
// the 20 s the master waits past the interval.
func TestSendBoundsDial(t *testing.T) {
	node, _ := secp256k1.GeneratePrivateKey()
	master, _ := secp256k1.GeneratePrivateKey()
	var left time.Duration
	r := &Reporter{Key: node, Master: master.PubKey().SerializeCompressed(),
		Dial: func(ctx context.Context) (net.Conn, error) {
			d, ok := ctx.Deadline()
			if !ok {
				t.Fatal("the dial has no deadline")
			}
			left = time.Until(d)
			return nil, errors.New("no route")
		}}
	if err := r.send(context.Background(), Report{Board: "host"}, 1); err == nil {
		t.Fatal("send succeeded without a connection")
	}
	if left > dialTimeout || left <= 0 {
		t.Errorf("the dial had %v left, want at most %v", left, dialTimeout)
	}
}
