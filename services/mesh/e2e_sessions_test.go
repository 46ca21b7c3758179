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
		msg, _, err := src.e2e.hs.Initiate(dst.self[:], uint32(100+i), src.cfg.Clock(), nil)
		if err != nil {
			t.Fatal(err)
		}
		ref := &e2eRef{p: p, created: time.Now()}
		li := dst.e2e.allocIndex(ref)
		_, s, _, err := dst.e2e.hs.Respond(msg, li, time.Now(), func([]byte) bool { return true })
		if err != nil {
			t.Fatalf("respond %d: %v", i, err)
		}
		ref.s = s
		p.setSession(s)
		idx = append(idx, li)
	}
	// Only the first answer reached the source: it sends on session 0.
	dst.e2e.mu.Lock()
	ref := dst.e2e.byIndex[idx[0]]
	dst.e2e.mu.Unlock()
	if ref == nil || ref.s == nil {
		t.Fatal("the first session was forgotten after three newer handshakes")
	}
	p.follow(ref.s)
	p.mu.Lock()
	cur, olds := p.sess, len(p.olds)
	p.mu.Unlock()
	if cur != ref.s || olds != 3 {
		t.Errorf("after following the peer: current is session 0 %v, %d older kept (want 3)", cur == ref.s, olds)
	}
	// Beyond maxOldSessions the oldest is forgotten, index and all.
	for i := range maxOldSessions + 2 {
		msg, _, _ := src.e2e.hs.Initiate(dst.self[:], uint32(200+i), src.cfg.Clock(), nil)
		r := &e2eRef{p: p, created: time.Now()}
		li := dst.e2e.allocIndex(r)
		_, s, _, err := dst.e2e.hs.Respond(msg, li, time.Now(), func([]byte) bool { return true })
		if err != nil {
			t.Fatal(err)
		}
		r.s = s
		p.setSession(s)
	}
	p.mu.Lock()
	olds = len(p.olds)
	p.mu.Unlock()
	if olds != maxOldSessions {
		t.Errorf("%d older sessions kept, want %d", olds, maxOldSessions)
	}
	dst.e2e.mu.Lock()
	_, kept := dst.e2e.byIndex[idx[1]]
	dst.e2e.mu.Unlock()
	if kept {
		t.Error("the index of a session pushed out of the window is still held")
	}
}
