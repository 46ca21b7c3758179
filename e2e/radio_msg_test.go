//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/internal/fleetconf"
	"github.com/skyfleet/skyfleet/services/identity"
	"github.com/skyfleet/skyfleet/services/meshd"
	"github.com/skyfleet/skyfleet/services/msg"
)

// radioNode runs a whole node (services/meshd) from a fleet.toml whose only
// transport is the radio channel listen, as the operator callsign ("" for
// none), linked to peers (kiss://CALL#key or afsk://CALL#key entries); its
// config_errors are what fleetconf found. Its log goes to the test's log.
func radioNode(t *testing.T, name, listen, callsign string, key *identity.Key, dir string, peers ...string) *meshd.Node {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "[node]\nname = %q\nlisten = [%q]\nstatus = \"127.0.0.1:0\"\ndata = %q\n\n", name, listen, dir)
	fmt.Fprintf(&b, "[network]\npsk = %q\nlan_discovery = false\npeers = [", meshPSK)
	for i, p := range peers {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", p)
	}
	b.WriteString("]\n")
	if callsign != "" {
		fmt.Fprintf(&b, "\n[radio]\ncallsign = %q\n", callsign)
	}
	cfg, problems := fleetconf.Parse([]byte(b.String()), false)
	for _, p := range problems {
		if p.Fatal {
			t.Fatalf("%s: fleet.toml: %+v\n%s", name, p, b.String())
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	n, err := meshd.Start(ctx, meshd.Options{Config: cfg, Problems: problems, Key: key, Version: "v-radio",
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

// waitFor polls cond every 100 ms until it holds, failing the test after
// limit with what it waited for.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s in %v", what, limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitRadioLink waits for n's radio link to come up.
func waitRadioLink(t *testing.T, n *meshd.Node, limit time.Duration) {
	t.Helper()
	waitFor(t, limit, "radio link", func() bool {
		for _, l := range n.Router.Links() {
			if l.Up && l.Radio {
				return true
			}
		}
		return false
	})
}

// radioLinkState is n's links and counters, its radio channels' counters and
// its store-and-forward counters, for a failure's log.
func radioLinkState(n *meshd.Node) string {
	var b strings.Builder
	for _, l := range n.Router.Links() {
		fmt.Fprintf(&b, "link %s up=%v radio=%v rtt=%.0f ms loss=%.2f store-forward=%+v channel=%+v\n", l.Endpoint, l.Up, l.Radio, l.RTTms, l.Loss, l.StoreForward, l.Channel)
	}
	for _, r := range n.Radios {
		fmt.Fprintf(&b, "radio %s: %+v\n", r.URL(), r.Stats())
	}
	fmt.Fprintf(&b, "counters %v\nsaf %+v\n", n.Router.Counters(), n.SAF.Stats())
	return b.String()
}

// sendClearMessage sends text in clear from a to b (whose key is to) and
// waits for it in b's inbox and for b's receipt at a: up to 10 and 15
// minutes, the pace of a busy 1200 bit/s channel. It returns the message and
// both delays from sending.
func sendClearMessage(t *testing.T, a, b *meshd.Node, to []byte, text string) (msg.OutboxEntry, time.Duration, time.Duration) {
	t.Helper()
	var key [33]byte
	copy(key[:], to)
	sent := time.Now()
	out, err := a.Msg.SendClear(key, text)
	if err != nil {
		t.Fatal(err)
	}
	var got *msg.InboxEntry
	for got == nil {
		if time.Since(sent) > 10*time.Minute {
			t.Fatalf("the message is not in B's inbox after 10 minutes; A's outbox %+v\n--- A\n%s--- B\n%s", a.Msg.Outbox(), radioLinkState(a), radioLinkState(b))
		}
		for _, e := range b.Msg.Inbox() {
			if e.ID == out.ID {
				got = &e
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	arrived := time.Since(sent)
	if got.Text != text || !got.Clear || got.FromKey != a.Key.PublicKeyHex() {
		t.Fatalf("B's inbox entry %+v", got)
	}
	var delivered time.Duration
	for delivered == 0 {
		if time.Since(sent) > 15*time.Minute {
			t.Fatalf("no receipt after 15 minutes; A's outbox %+v\n--- A\n%s--- B\n%s", a.Msg.Outbox(), radioLinkState(a), radioLinkState(b))
		}
		for _, e := range a.Msg.Outbox() {
			if e.ID == out.ID && e.State == msg.StateDelivered {
				delivered = time.Since(sent)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return out, arrived, delivered
}

// sendFile streams a file of random bytes from a to b (whose key is to) over
// the mesh (Router.Dial, port 9) and checks it arrived whole: 2 KB, or
// SKYFLEET_RADIO_FILE bytes (`make soak` sets 20480). It returns the size and
// the time from the dial to the last byte's arrival, and fails after four
// times the file's airtime at 1200 bit/s and two minutes.
func sendFile(t *testing.T, a, b *meshd.Node, to []byte) (int, time.Duration) {
	t.Helper()
	size := 2 << 10
	if s, err := strconv.Atoi(os.Getenv("SKYFLEET_RADIO_FILE")); err == nil && s > 0 {
		size = s
	}
	file := make([]byte, size)
	rand.Read(file)
	ln, err := b.Router.Listen(9)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan [32]byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		h := sha256.New()
		io.Copy(h, c)
		var sum [32]byte
		h.Sum(sum[:0])
		got <- sum
	}()
	var key [33]byte
	copy(key[:], to)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	conn, err := a.Router.Dial(ctx, key, 9)
	if err != nil {
		t.Fatalf("dialling over the radio: %v\n--- A\n%s--- B\n%s", err, radioLinkState(a), radioLinkState(b))
	}
	if _, err := io.Copy(conn, bytes.NewReader(file)); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	limit := 2*time.Minute + time.Duration(4*8*size/1200)*time.Second
	select {
	case h := <-got:
		if h != sha256.Sum256(file) {
			t.Fatal("the file arrived changed")
		}
	case <-time.After(limit):
		t.Fatalf("the %d-byte file did not cross in %v\n--- A\n%s--- B\n%s", size, limit, radioLinkState(a), radioLinkState(b))
	}
	return size, time.Since(start)
}

// TestRadioMessageThroughTwoDirewolves is acceptance 4's second half: two
// whole nodes, each on its own Dire Wolf (A over KISS TCP, B over Dire Wolf's
// pseudo-terminal), the TNCs joined by audio and nothing else. A message sent
// in clear crosses into B's inbox, and B's receipt comes back; a sealed one
// stays at A, counted, and never goes on the air. Latency is logged, and
// every frame A's TNC passes is in artifacts/…/kiss-a.log (kissTap).
func TestRadioMessageThroughTwoDirewolves(t *testing.T) {
	// Parallel: these tests mostly wait for a 1200 bit/s channel; they run
	// together after the others, and CI waits for the longest, not the sum.
	t.Parallel()
	addr, pty := direwolfPair(t)
	dirA, dirB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	ka, kb := radioKey(t, dirA), radioKey(t, dirB)
	start := time.Now()
	a := radioNode(t, "A", "kiss+tcp://"+kissTap(t, addr, filepath.Join(artifacts(t), "kiss-a.log")), "N0SKY-1", ka, dirA, "kiss://N0SKY-2#"+kb.PublicKeyHex())
	b := radioNode(t, "B", "kiss+serial://"+pty+"?baud=9600", "N0SKY-2", kb, dirB, "kiss://N0SKY-1#"+ka.PublicKeyHex())
	waitRadioLink(t, a, 2*time.Minute)
	t.Logf("radio link up after %v", time.Since(start).Round(time.Millisecond))

	var to [33]byte
	copy(to[:], kb.PublicKey())
	sealed, err := a.Msg.Send(to, "sealed: must not go on the air")
	if err != nil {
		t.Fatal(err)
	}
	_, arrived, delivered := sendClearMessage(t, a, b, kb.PublicKey(), "CQ from A: water at the school")
	t.Logf("message in clear: in B's inbox %v after sending, A saw its receipt after %v", arrived.Round(time.Millisecond), delivered.Round(time.Millisecond))
	_, arrived, delivered = sendClearMessage(t, a, b, kb.PublicKey(), "second message, warm link")
	t.Logf("second message on the warm link: in B's inbox after %v, receipt after %v", arrived.Round(time.Millisecond), delivered.Round(time.Millisecond))
	size, took := sendFile(t, a, b, kb.PublicKey())
	t.Logf("file of %d bytes: %v, %.0f bit/s of goodput", size, took.Round(time.Millisecond), float64(8*size)/took.Seconds())
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
	t.Logf("A: %s", radioLinkState(a))
}
