package forward

import (
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/skyfleet/skyfleet/services/mesh/link"
)

// TestStrangers: probes without the network key, replays and unknown keys get no
// reply and leave no state; replayed data is dropped.
func TestStrangers(t *testing.T) {
	m := newMemnet()
	type capture struct {
		to string
		b  []byte
	}
	var mu sync.Mutex
	var inits, datas []capture
	// Record every handshake and data datagram on the wire, from the start.
	m.SetTap(func(from, to string, b []byte) {
		typ, _, ok := link.Header(b)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case ok && typ == link.TypeInit:
			inits = append(inits, capture{to, b})
		case ok && typ == link.TypeData && len(datas) < 50:
			datas = append(datas, capture{to, b})
		}
	})
	nodes := buildMesh(t, m, 2, line(2), func(i int, c *Config) {
		if i == 1 {
			c.KnownPeersOnly = true
		}
	})
	target := nodes[1]
	waitConverged(t, nodes, 10*time.Second)
	// Replays need something to replay: a handshake and data datagrams the real
	// peer sent the target.
	waitCond(t, 10*time.Second, "a handshake and data to the target on the wire", func() bool {
		mu.Lock()
		defer mu.Unlock()
		var i, d bool
		for _, c := range inits {
			i = i || c.to == target.tr.Addr()
		}
		for _, c := range datas {
			d = d || c.to == target.tr.Addr()
		}
		return i && d
	})

	stranger := m.Transport()
	// reply waits a while for any answer to the stranger. Proving there is none
	// takes waiting: the 300 ms are what is tested, not synchronisation (by then
	// the target has counted every probe, see below, so an answer would be sent).
	reply := func() bool { return stranger.Await(300 * time.Millisecond) }
	before := target.r.Counters()
	statesBefore := target.r.links.Len()

	// What the real peer sent the target, recorded on the wire, to replay below.
	mu.Lock()
	var replayInits, replays [][]byte
	for _, c := range inits {
		if c.to == target.tr.Addr() {
			replayInits = append(replayInits, c.b)
		}
	}
	for _, c := range datas {
		if c.to == target.tr.Addr() {
			replays = append(replays, c.b)
		}
	}
	mu.Unlock()
	if len(replayInits) == 0 || len(replays) == 0 {
		t.Fatalf("recorded %d handshakes and %d data datagrams to the target", len(replayInits), len(replays))
	}
	// 1. random bytes
	junk := make([]byte, 200)
	rand.Read(junk)
	junk[0] = 0xee // not a link message type
	stranger.WriteTo(junk, target.tr.Endpoint())
	// 2. a handshake with the wrong network key
	k, _ := secp256k1.GeneratePrivateKeyFromRand(rand.Reader)
	wrong := link.NewHandshaker(link.Config{Private: k, PSK: [32]byte{9}})
	msg, _, err := wrong.Initiate(target.r.self[:], 1, uint64(time.Now().UnixNano()), nil)
	if err != nil {
		t.Fatal(err)
	}
	stranger.WriteTo(msg, target.tr.Endpoint())
	// 3. a valid handshake from an unknown key (the target takes known peers only)
	right := link.NewHandshaker(link.Config{Private: k, PSK: testPSK})
	msg, _, err = right.Initiate(target.r.self[:], 2, uint64(time.Now().UnixNano()), nil)
	if err != nil {
		t.Fatal(err)
	}
	stranger.WriteTo(msg, target.tr.Endpoint())
	// 4. the real peer's handshakes replayed
	for _, b := range replayInits {
		stranger.WriteTo(b, target.tr.Endpoint())
	}
	// 5. replayed data datagrams
	for _, b := range replays {
		stranger.WriteTo(b, target.tr.Endpoint())
	}
	// Every probe is dropped and counted; wait for the counts (the target reads
	// them asynchronously), then for any reply.
	want := map[string]uint64{
		"drop_malformed":        1,
		"drop_no_psk":           1,
		"drop_refused":          1,
		"drop_handshake_replay": uint64(len(replayInits)),
		"drop_data_replay":      uint64(len(replays)),
	}
	var after map[string]uint64
	counted := func() bool {
		after = target.r.Counters()
		for name, atLeast := range want {
			if after[name]-before[name] < atLeast {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(10 * time.Second)
	for !counted() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	for name, atLeast := range want {
		if d := after[name] - before[name]; d < atLeast {
			t.Errorf("%s rose by %d, want >= %d", name, d, atLeast)
		}
	}
	if reply() {
		t.Error("a stranger got a reply")
	}
	// No state for the strangers.
	got := target.r.links.Len()
	if got != statesBefore {
		t.Errorf("sessions went from %d to %d", statesBefore, got)
	}
	if len(target.r.byKey) != 1 {
		t.Errorf("target knows %d neighbours, want 1", len(target.r.byKey))
	}
}
