package msg

import (
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/services/identity"
	"github.com/skyfleet/skyfleet/services/saf"
)

// wire carries bundles between services in memory: each Send is a custody
// transfer that ends at once (Released forwarded) and a delivery to the bundle's
// destination (or to every other service for a broadcast).
type wire struct {
	mu   sync.Mutex
	svcs map[saf.Key]*Service
	held []*saf.Bundle // captured bundles, to replay and tamper with
	hold bool
}

type sender struct {
	w    *wire
	self saf.Key
}

func (s sender) Send(b *saf.Bundle) (saf.ID, error) {
	enc, err := b.Marshal()
	if err != nil {
		return saf.ID{}, err
	}
	id := saf.IDOf(enc)
	s.w.mu.Lock()
	s.w.held = append(s.w.held, b)
	hold := s.w.hold
	var dsts []*Service
	for k, svc := range s.w.svcs {
		if k != s.self && (b.Destination.IsBroadcast() || b.Destination == k) {
			dsts = append(dsts, svc)
		}
	}
	src := s.w.svcs[s.self]
	s.w.mu.Unlock()
	if hold {
		return id, nil
	}
	go func() {
		if src != nil {
			src.Released(id, b.Destination, saf.StatusAccepted)
		}
		for _, d := range dsts {
			d.Deliver(id, b)
		}
	}()
	return id, nil
}

func newSvc(t *testing.T, w *wire, psk [32]byte) (*Service, *identity.Key) {
	k, err := identity.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewService(Config{Dir: t.TempDir(), Key: k, PSK: psk, Sender: sender{w, saf.Key(k.PublicKey())}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	w.mu.Lock()
	w.svcs[saf.Key(k.PublicKey())] = s
	w.mu.Unlock()
	return s, k
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSendReceiveReceipt(t *testing.T) {
	w := &wire{svcs: make(map[saf.Key]*Service)}
	var psk [32]byte
	a, ak := newSvc(t, w, psk)
	b, bk := newSvc(t, w, psk)
	e, err := a.Send([33]byte(bk.PublicKey()), "water at the school, 3 pm")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the message in B's inbox", func() bool { return len(b.Inbox()) == 1 })
	in := b.Inbox()[0]
	if in.ID != e.ID || in.Text != "water at the school, 3 pm" || in.From != ak.Address().String() || in.To != bk.Address().String() || in.SentAt == "" || in.ReceivedAt == "" {
		t.Fatalf("inbox entry %+v", in)
	}
	waitFor(t, "delivered in A's outbox", func() bool { return a.Outbox()[0].State == StateDelivered })
	if got := a.Outbox()[0]; got.DeliveredAt == "" || got.ID != e.ID {
		t.Fatalf("outbox %+v", got)
	}
}

// TestRefusals is acceptance 7's refusals: tampered, forged and replayed
// messages are refused and counted, never shown twice.
func TestRefusals(t *testing.T) {
	w := &wire{svcs: make(map[saf.Key]*Service)}
	var psk [32]byte
	a, _ := newSvc(t, w, psk)
	b, bk := newSvc(t, w, psk)
	c, _ := newSvc(t, w, psk)
	w.mu.Lock()
	w.hold = true
	w.mu.Unlock()
	if _, err := a.Send([33]byte(bk.PublicKey()), "hello"); err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	orig := w.held[0]
	w.hold = false
	w.mu.Unlock()

	b.Deliver(saf.ID{}, orig)
	b.Deliver(saf.ID{}, orig) // replayed
	if st := b.Stats(); st.Received != 1 || st.Replayed != 1 || len(b.Inbox()) != 1 {
		t.Fatalf("after a replay: %+v, %d in the inbox", st, len(b.Inbox()))
	}
	tampered := *orig
	tampered.Payload = append([]byte(nil), orig.Payload...)
	tampered.Payload[len(tampered.Payload)-20] ^= 1
	b.Deliver(saf.ID{}, &tampered)
	if st := b.Stats(); st.RefusedDecrypt != 1 {
		t.Fatalf("tampered: %+v", st)
	}
	c.Deliver(saf.ID{}, orig) // sealed for B, not C
	if st := c.Stats(); st.RefusedDecrypt != 1 || len(c.Inbox()) != 0 {
		t.Fatalf("someone else's message: %+v", st)
	}
	// Forged: a message whose signature is not the sender's own key.
	forger, _ := identity.Generate(rand.Reader)
	s, err := NewText(forger, [33]byte(bk.PublicKey()), "send the coins to me", 1, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	raw := s.Bytes()
	copy(raw[2:35], a.cfg.Key.PublicKey()) // claim to be A
	fs := &Signed{raw: raw}
	fs.Message, _ = decode(raw)
	sealed, err := sealTo(raw, bk.PublicKey(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b.Deliver(saf.ID{}, &saf.Bundle{Port: saf.PortMsg, Source: saf.Key(a.cfg.Key.PublicKey()), Destination: saf.Key(bk.PublicKey()), Lifetime: time.Hour, Payload: sealed})
	if st := b.Stats(); st.RefusedSignature != 1 || len(b.Inbox()) != 1 {
		t.Fatalf("forged: %+v", st)
	}
}

func TestBroadcastMessage(t *testing.T) {
	w := &wire{svcs: make(map[saf.Key]*Service)}
	psk := [32]byte{1, 2, 3}
	a, _ := newSvc(t, w, psk)
	b, _ := newSvc(t, w, psk)
	c, _ := newSvc(t, w, psk)
	if _, err := a.Send([33]byte{}, "road to the north is closed"); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Service{b, c} {
		waitFor(t, "the broadcast", func() bool { return len(s.Inbox()) == 1 })
		if in := s.Inbox()[0]; in.To != "*" || !in.Broadcast {
			t.Fatalf("%+v", in)
		}
	}
	if len(a.Inbox()) != 0 {
		t.Fatal("sender got its own broadcast")
	}
}

func TestLearnKeys(t *testing.T) {
	w := &wire{svcs: make(map[saf.Key]*Service)}
	s, _ := newSvc(t, w, [32]byte{})
	k, _ := identity.Generate(rand.Reader)
	addr := k.Address().String()
	if _, ok := s.KeyOf(addr); ok {
		t.Fatal("unknown address resolved")
	}
	s.Learn(addr, [33]byte(k.PublicKey()))
	if got, ok := s.KeyOf(addr); !ok || got != [33]byte(k.PublicKey()) {
		t.Fatal("learnt key not returned")
	}
}
