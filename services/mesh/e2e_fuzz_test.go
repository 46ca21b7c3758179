package mesh

import (
	"encoding/binary"
	"testing"
	"time"
)

// appFrame builds a decrypted end-to-end application frame: kind, source port,
// destination port (big endian), body.
func appFrame(kind byte, sport, dport uint16, body []byte) []byte {
	f := []byte{kind}
	f = binary.BigEndian.AppendUint16(f, sport)
	f = binary.BigEndian.AppendUint16(f, dport)
	return append(f, body...)
}

// FuzzApp feeds decrypted end-to-end frames (what a node holding the network key
// and an end-to-end session can make this node read) to the application
// dispatcher: it must never panic, must count a frame too short or of unknown
// kind as bad, and must keep the state it creates within its caps.
func FuzzApp(f *testing.F) {
	f.Add(appFrame(appDgram, 7, 9, []byte("hello")))
	f.Add(appFrame(appEchoReq, 0, 0, []byte{0, 0, 0, 1}))
	f.Add(appFrame(appEchoResp, 0, 0, []byte{0, 0, 0, 1}))
	f.Add(appFrame(appEchoResp, 0, 0, nil))
	f.Add(appFrame(appStream, 40000, 22, []byte{0x01, 0, 0, 0, 0, 0, 0, 0, 0}))
	f.Add(appFrame(appStream, 40000, 23, nil))
	f.Add(appFrame(0xff, 1, 2, []byte{1}))
	f.Add([]byte{appDgram, 0})
	f.Add([]byte{})

	m := newMemnet()
	nodes := buildMesh(f, m, 1, nil, nil)
	r := nodes[0].r
	pc, err := r.ListenPacket(9)
	if err != nil {
		f.Fatal(err)
	}
	defer pc.Close()
	l, err := r.Listen(22)
	if err != nil {
		f.Fatal(err)
	}
	defer l.Close()
	p, err := r.e2e.peerFor(randomKey(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		before := r.Counters()["drop_bad_frame"]
		r.e2e.app(p, frame, time.Now())
		bad := r.Counters()["drop_bad_frame"] - before
		known := len(frame) >= appHeader && frame[0] >= appDgram && frame[0] <= appEchoResp
		if !known && bad != 1 {
			t.Fatalf("frame %x (too short or unknown kind) counted %d bad, want 1", frame, bad)
		}
		if known && bad != 0 {
			t.Fatalf("frame %x of a known kind counted bad", frame)
		}
		p.mu.Lock()
		n := len(p.streams)
		p.mu.Unlock()
		if n > MaxStreamsPerPeer {
			t.Fatalf("%d streams held for one peer, cap %d", n, MaxStreamsPerPeer)
		}
	})
}
