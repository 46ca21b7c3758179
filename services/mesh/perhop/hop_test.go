package perhop

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestReceiverCopiesAndAck(t *testing.T) {
	var r Receiver
	for _, seq := range []uint32{100, 101, 103, 105} {
		if !r.Accept(seq, 100) {
			t.Fatalf("%d refused", seq)
		}
	}
	if r.Accept(101, 100) || r.Accept(103, 100) || r.Accept(99, 100) {
		t.Fatal("a copy was accepted")
	}
	cum, sack := r.Ack(nil)
	// 100, 101 arrived: cum 102; 103 is bit 0, 105 bit 2.
	if cum != 102 || len(sack) != 1 || sack[0] != 0b101 {
		t.Fatalf("ack %d %b, want 102 101", cum, sack)
	}
	if !r.Accept(102, 100) {
		t.Fatal("102 refused")
	}
	if cum, sack = r.Ack(sack); cum != 104 || len(sack) != 1 || sack[0] != 0b1 {
		t.Fatalf("ack %d %b, want 104 1", cum, sack)
	}
}

func TestReceiverWraps(t *testing.T) {
	var r Receiver
	seq := uint32(1<<32 - 3)
	for i := 0; i < 10; i++ {
		if !r.Accept(seq+uint32(i), seq) {
			t.Fatalf("%d refused", seq+uint32(i))
		}
	}
	if cum, _ := r.Ack(nil); cum != seq+10 {
		t.Fatalf("cum %d, want %d", cum, seq+10)
	}
	if r.Accept(seq+5, seq) {
		t.Fatal("copy across the wrap accepted")
	}
}

// TestLossyLink drives a Sender and a Receiver over a simulated link losing 20% of
// datagrams and 20% of acks each way, with a window: every datagram's frames are
// delivered exactly once, in any order.
func TestLossyLink(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	s := NewSender(rng.Uint32())
	var r Receiver
	now := time.Unix(0, 0)
	const total = 5000
	delivered := make(map[byte]int)
	got := 0
	type inflight struct {
		seq    uint32
		base   uint32
		frames []byte
		at     time.Time
	}
	var wire []inflight
	var acks []struct {
		cum  uint32
		sack []uint64
		at   time.Time
	}
	sent := 0
	const delay = 10 * time.Millisecond
	for step := 0; got < total && step < 200000; step++ {
		now = now.Add(time.Millisecond)
		// Send new datagrams into the window.
		for sent < total && s.CanSend(3, s.Window(30, 3000)) {
			id := []byte{byte(sent), byte(sent >> 8), byte(sent >> 16)}
			p := s.Add(id, nil, now)
			sent++
			if rng.Float64() >= 0.2 {
				wire = append(wire, inflight{p.Seq, s.Base(), p.Frames, now.Add(delay)})
			}
		}
		// Retransmit what is due.
		for _, p := range s.Due(now, s.RTO(10*time.Millisecond)) {
			s.Resent(p, now)
			if rng.Float64() >= 0.2 {
				wire = append(wire, inflight{p.Seq, s.Base(), p.Frames, now.Add(delay)})
			}
		}
		// Deliver what arrived; the receiver acks every millisecond.
		var rest []inflight
		for _, d := range wire {
			if d.at.After(now) {
				rest = append(rest, d)
				continue
			}
			if r.Accept(d.seq, d.base) {
				key := d.frames[0]
				_ = key
				delivered[byte(0)]++
				got++
			}
		}
		wire = rest
		if r.AckDue {
			c, sk := r.Ack(nil)
			if rng.Float64() >= 0.2 {
				acks = append(acks, struct {
					cum  uint32
					sack []uint64
					at   time.Time
				}{c, sk, now.Add(delay)})
			}
		}
		var restAcks = acks[:0]
		for _, a := range acks {
			if a.at.After(now) {
				restAcks = append(restAcks, a)
				continue
			}
			_, lost := s.OnAck(a.cum, a.sack, now)
			for _, p := range lost {
				s.Resent(p, now)
				if rng.Float64() >= 0.2 {
					wire = append(wire, inflight{p.Seq, s.Base(), p.Frames, now.Add(delay)})
				}
			}
		}
		acks = restAcks
	}
	if got != total {
		t.Fatalf("delivered %d of %d", got, total)
	}
	if s.Retransmits() == 0 {
		t.Fatal("no retransmissions over a lossy link")
	}
	if srtt, min := s.RTT(); min < 2*delay-2*time.Millisecond || srtt < 2*delay-2*time.Millisecond {
		t.Fatalf("RTT %v (min %v) below the link's %v", srtt, min, 2*delay)
	}
	t.Logf("5000 datagrams over 20%% loss each way: %d retransmissions, %.0f ms simulated", s.Retransmits(), float64(now.UnixMilli()))
}

func TestCreditAndBuffer(t *testing.T) {
	c := NewCredit()
	var b Buffer
	const capacity = 40 << 10
	// Upstream may send InitialCredit before any update.
	n := 0
	for c.Take(1000) {
		if !b.Arrive(1000) {
			t.Fatal("buffer refused bytes sent within credit")
		}
		n++
	}
	if n != InitialCredit/1000 || c.Stalls != 1 {
		t.Fatalf("sent %d within the initial credit, %d stalls", n, c.Stalls)
	}
	// The next hop has room for capacity: it grants received + room.
	if !c.Grant(b.Limit(capacity)) {
		t.Fatal("grant not applied")
	}
	if got := c.Avail(); got != capacity-int64(b.Held()) {
		t.Fatalf("available %d, want %d", got, capacity-b.Held())
	}
	for c.Take(1000) {
		b.Arrive(1000)
	}
	if b.Held() > capacity {
		t.Fatalf("held %d above the capacity %d", b.Held(), capacity)
	}
	// A stale update (a smaller limit) changes nothing.
	if c.Grant(1) {
		t.Fatal("older limit applied")
	}
	// Bytes leave; the new limit lets upstream send exactly that much more.
	before := c.Avail()
	b.Leave(5000)
	c.Grant(b.Limit(capacity))
	if c.Avail() != before+5000 {
		t.Fatalf("available %d after 5000 left, want %d", c.Avail(), before+5000)
	}
	// A neighbour that ignores its credit is caught.
	if b.Arrive(int(c.Avail()) + 1) {
		t.Fatal("bytes beyond the grant were accepted")
	}
}

func TestRTTSample(t *testing.T) {
	s := NewSender(7)
	now := time.Unix(0, 0)
	p := s.Add([]byte("x"), nil, now)
	var r Receiver
	r.Accept(p.Seq, s.Base())
	cum, sack := r.Ack(nil)
	acked, _ := s.OnAck(cum, sack, now.Add(20*time.Millisecond))
	if len(acked) != 1 {
		t.Fatalf("acked %d", len(acked))
	}
	if srtt, _ := s.RTT(); srtt != 20*time.Millisecond {
		t.Fatalf("srtt %v", srtt)
	}
}

// TestNeighbourRestarts: a neighbour that restarts numbers its datagrams from a
// new random first seq, while this end keeps the link's state. Its datagrams must
// be taken as new, not as copies, whatever side of the old numbers they fall
// on; and acks from the old receiver must not acknowledge the new sender's
// datagrams, which never reached it.
func TestNeighbourRestarts(t *testing.T) {
	now := time.Unix(1000, 0)
	for _, tc := range []struct {
		name     string
		old, new uint32
	}{
		{"new numbers far after the old", 1000, 1000 + 1<<31 - 5},
		{"new numbers far before the old", 1 << 31, 7},
		{"new numbers just after the old window", 5000, 5000 + MaxInFlight + 3},
		{"new numbers just before the old", 5000, 5000 - 2*MaxInFlight},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r Receiver
			old := NewSender(tc.old)
			for i := 0; i < 10; i++ {
				p := old.Add([]byte{byte(i)}, nil, now)
				if !r.Accept(p.Seq, old.Base()) {
					t.Fatalf("old datagram %d refused", p.Seq)
				}
			}
			staleCum, staleSack := r.Ack(nil)

			// The neighbour restarts: a new sender, the same receiver here.
			s := NewSender(tc.new)
			var sent []*Pending
			for i := 0; i < 5; i++ {
				sent = append(sent, s.Add([]byte{byte(i)}, nil, now))
			}
			// An ack the receiver sent before it saw the new sender arrives
			// late: it must acknowledge nothing of the new sender's.
			if acked, lost := s.OnAck(staleCum, staleSack, now); len(acked)+len(lost) != 0 {
				t.Fatalf("a stale ack (cum %d) acknowledged %d and declared %d lost of datagrams %d..%d",
					staleCum, len(acked), len(lost), tc.new, tc.new+4)
			}
			if d, _ := s.Outstanding(); d != 5 {
				t.Fatalf("%d outstanding after the stale ack, want 5", d)
			}
			for _, p := range sent {
				if !r.Accept(p.Seq, s.Base()) {
					t.Fatalf("datagram %d of the restarted sender taken for a copy", p.Seq)
				}
			}
			if r.Accept(sent[2].Seq, s.Base()) {
				t.Fatal("a copy of the restarted sender's datagram was accepted")
			}
			cum, sack := r.Ack(nil)
			if cum != tc.new+5 || len(sack) != 0 {
				t.Fatalf("ack %d %b, want %d 0", cum, sack, tc.new+5)
			}
			if acked, _ := s.OnAck(cum, sack, now); len(acked) != 5 {
				t.Fatalf("the new receiver's ack acknowledged %d, want 5", len(acked))
			}
		})
	}
}

// TestReceiverRefusesPastWindow: a seq MaxInFlight or more past the sender's own
// base cannot come from a sender keeping the rules; it is refused, and it does
// not move the receiver.
func TestReceiverRefusesPastWindow(t *testing.T) {
	var r Receiver
	if !r.Accept(10, 10) {
		t.Fatal("10 refused")
	}
	if r.Accept(10+MaxInFlight, 10) || r.Accept(1<<31, 10) {
		t.Fatal("a seq past the window was accepted")
	}
	if !r.Accept(11, 10) {
		t.Fatal("11 refused after the bad ones")
	}
	if cum, _ := r.Ack(nil); cum != 12 {
		t.Fatalf("cum %d, want 12", cum)
	}
}

// TestSACKCoversTheWindow: with the first of 600 outstanding datagrams lost, one
// ack acknowledges the other 599, so none of them waits for the hole and times
// out (which a 64-bit bitmap would make every one past the 65th do).
func TestSACKCoversTheWindow(t *testing.T) {
	now := time.Unix(0, 0)
	s := NewSender(1 << 30)
	var r Receiver
	var ps []*Pending
	for i := 0; i < 600; i++ {
		ps = append(ps, s.Add([]byte{1}, nil, now))
	}
	for _, p := range ps[1:] {
		r.Accept(p.Seq, s.Base())
	}
	cum, sack := r.Ack(nil)
	if cum != ps[0].Seq {
		t.Fatalf("cum %d, want %d", cum, ps[0].Seq)
	}
	acked, lost := s.OnAck(cum, sack, now.Add(time.Millisecond))
	if len(acked) != 599 || len(lost) != 0 {
		t.Fatalf("acked %d lost %d, want 599 and 0 (the hole was sent at the same moment as the rest)", len(acked), len(lost))
	}
	if d, _ := s.Outstanding(); d != 1 {
		t.Fatalf("%d outstanding, want only the hole", d)
	}
	if due := s.Due(now.Add(time.Second), 100*time.Millisecond); len(due) != 1 || due[0] != ps[0] {
		t.Fatalf("%d due at the RTO, want only the hole", len(due))
	}
}
