//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/internal/fleetconf"
	"github.com/skyfleet/skyfleet/services/identity"
	"github.com/skyfleet/skyfleet/services/meshd"
	"github.com/skyfleet/skyfleet/services/msg"
)

// radioNode runs a whole node (services/meshd) whose only transport is the
// radio channel listen, as the operator callsign, linked to peers
// (kiss://CALL#key entries). Its log goes to the test's log.
func radioNode(t *testing.T, name, listen, callsign string, key *identity.Key, dir string, peers ...string) *meshd.Node {
	t.Helper()
	cfg := fleetconf.Defaults(false)
	cfg.Node.Name, cfg.Node.Data = name, dir
	cfg.Node.Listen = []string{listen}
	cfg.Node.Status = "127.0.0.1:0"
	cfg.Network.PSK, cfg.Network.LANDiscovery, cfg.Network.Peers = meshPSK, false, peers
	cfg.Radio.Callsign = callsign
	ctx, cancel := context.WithCancel(context.Background())
	n, err := meshd.Start(ctx, meshd.Options{Config: cfg, Key: key, Version: "v-radio",
		Logf: func(f string, a ...any) { t.Logf(name+": "+f, a...) }})
	if err != nil {
		cancel()
		t.Fatalf("%s: %v", name, err)
	}
	t.Cleanup(func() { cancel(); n.Close() })
	return n
}

func radioKey(t *testing.T, dir string) *identity.Key {
	t.Helper()
	os.MkdirAll(dir, 0o700)
	k, _, err := identity.LoadOrCreate(dir, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestRadioMessageThroughTwoDirewolves is acceptance 4's second half: two
// whole nodes, each on its own Dire Wolf (A over KISS TCP, B over Dire Wolf's
// pseudo-terminal), the TNCs joined by audio and nothing else. A message sent
// in clear crosses into B's inbox, and B's receipt comes back; a sealed one
// stays at A, counted, and never goes on the air. Latency is logged.
func TestRadioMessageThroughTwoDirewolves(t *testing.T) {
	addr, pty := direwolfPair(t)
	dirA, dirB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	ka, kb := radioKey(t, dirA), radioKey(t, dirB)
	start := time.Now()
	a := radioNode(t, "A", "kiss+tcp://"+addr, "N0SKY-1", ka, dirA, "kiss://N0SKY-2#"+kb.PublicKeyHex())
	b := radioNode(t, "B", "kiss+serial://"+pty+"?baud=9600", "N0SKY-2", kb, dirB, "kiss://N0SKY-1#"+ka.PublicKeyHex())
	up := func() bool {
		for _, l := range a.Router.Links() {
			if l.Up && l.Radio {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(2 * time.Minute)
	for !up() {
		if time.Now().After(deadline) {
			t.Fatalf("no radio link in 2 minutes (Dire Wolf logs in %s)", artifacts(t))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("radio link up after %v", time.Since(start).Round(time.Millisecond))

	var to [33]byte
	copy(to[:], kb.PublicKey())
	sealed, err := a.Msg.Send(to, "sealed: must not go on the air")
	if err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	out, err := a.Msg.SendClear(to, "CQ from A: water at the school")
	if err != nil {
		t.Fatal(err)
	}
	var got *msg.InboxEntry
	for got == nil {
		if time.Since(sent) > 2*time.Minute {
			for _, n := range []*meshd.Node{a, b} {
				t.Logf("links %+v\ncounters %v\nsaf %+v\ngraph %d nodes", n.Router.Links(), n.Router.Counters(), n.SAF.Stats(), len(n.Router.Graph().Nodes()))
			}
			t.Fatalf("the message is not in B's inbox after 5 minutes; A's outbox %+v", a.Msg.Outbox())
		}
		for _, e := range b.Msg.Inbox() {
			if e.ID == out.ID {
				got = &e
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	arrived := time.Since(sent)
	if got.Text != "CQ from A: water at the school" || !got.Clear || got.FromKey != ka.PublicKeyHex() {
		t.Fatalf("B's inbox entry %+v", got)
	}
	var delivered time.Duration
	for delivered == 0 {
		if time.Since(sent) > 8*time.Minute {
			t.Fatalf("no receipt after 8 minutes; A's outbox %+v", a.Msg.Outbox())
		}
		for _, e := range a.Msg.Outbox() {
			if e.ID == out.ID && e.State == msg.StateDelivered {
				delivered = time.Since(sent)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("message in clear: in B's inbox %v after sending, A saw its receipt after %v", arrived.Round(time.Millisecond), delivered.Round(time.Millisecond))
	for _, e := range b.Msg.Inbox() {
		if e.ID == sealed.ID {
			t.Fatal("the sealed message crossed the radio link")
		}
	}
	for _, e := range a.Msg.Outbox() {
		if e.ID == sealed.ID && e.State != msg.StateHeld {
			t.Fatalf("the sealed message is %s, want held", e.State)
		}
	}
	if st := a.SAF.Stats(); st.HeldOffRadio == 0 {
		t.Fatalf("A did not count the sealed message held off the radio: %+v", st)
	}
	var links []string
	for _, l := range a.Router.Links() {
		links = append(links, l.Endpoint)
	}
	t.Logf("A's links: %s; counters %v", strings.Join(links, ", "), a.Router.Counters())
}
