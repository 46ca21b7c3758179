package mesh

import (
	"testing"
	"time"
)

// A source that retried its end-to-end handshake over a lossy path keeps the
// session of the last answer it got, which need not be this node's newest one.
// The sessions this node answered with stay readable (up to maxOldSessions), so
// the source's data still opens, and this node follows the session it uses.
// Before, only the previous session was kept, and a source holding an older one
// sent echoes that were dropped as unknown for ever.
func TestOlderSessionsStayReadable(t *testing.T) {
	m := newMemnet()
	nodes := buildMesh(t, m, 2, line(2), nil)
	src, dst := nodes[0].r, nodes[1].r
	p, err := dst.e2e.peerFor(src.self)
	if err != nil {
		t.Fatal(err)
	}
	// The source's handshake is retried 4 times; this node answers each.
	var idx []uint32
	for i := range 4 {
		msg, _, err := src.e2e.sessions.Initiate(dst.self[:], nil, src.cfg.Clock(), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		ev, err := dst.e2e.sessions.Receive(msg, nil, time.Now(), nil)
		if err != nil {
			t.Fatalf("respond %d: %v", i, err)
		}
		dst.e2e.sessions.Bind(ev.Index, p)
		p.setSession(ev.Session)
		idx = append(idx, ev.Index)
	}
	// Only the first answer reached the source: it sends on session 0.
	first, _ := dst.e2e.sessions.Session(idx[0])
	if first == nil {
		t.Fatal("the first session was forgotten after three newer handshakes")
	}
	p.follow(first)
	p.mu.Lock()
	cur, olds := p.sess, len(p.olds)
	p.mu.Unlock()
	if cur != first || olds != 3 {
		t.Errorf("after following the peer: current is session 0 %v, %d older kept (want 3)", cur == first, olds)
	}
	// Beyond maxOldSessions the oldest is forgotten, index and all.
	for range maxOldSessions + 2 {
		msg, _, _ := src.e2e.sessions.Initiate(dst.self[:], nil, src.cfg.Clock(), time.Now())
		ev, err := dst.e2e.sessions.Receive(msg, nil, time.Now(), nil)
		if err != nil {
			t.Fatal(err)
		}
		dst.e2e.sessions.Bind(ev.Index, p)
		p.setSession(ev.Session)
	}
	p.mu.Lock()
	olds = len(p.olds)
	p.mu.Unlock()
	if olds != maxOldSessions {
		t.Errorf("%d older sessions kept, want %d", olds, maxOldSessions)
	}
	if s, _ := dst.e2e.sessions.Session(idx[1]); s != nil {
		t.Error("the index of a session pushed out of the window is still held")
	}
}
