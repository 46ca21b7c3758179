//go:build e2e

package e2e

import (
	"bytes"
	crand "crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/internal/apiauth"
	"github.com/skyfleet/skyfleet/services/identity"
	"github.com/skyfleet/skyfleet/services/msg"
	"github.com/skyfleet/skyfleet/services/saf"
)

// The custody tier (issue acceptance 4): store-and-forward keeps every message whose
// custody a node acknowledged, exactly once, while the nodes carrying it are
// SIGKILLed at random moments, many of them in the middle of custody commits.

// Tunables of TestCustodySurvivesKills.
const (
	// custodyKillsDefault is the number of kills in `make test` (CI); `make soak`
	// sets SKYFLEET_CUSTODY_KILLS=200.
	custodyKillsDefault = 20
	// custodySendEvery paces the sender (25 messages/s): enough to keep custody
	// streams busy at every kill, and few enough that a 200-kill soak stays far
	// below msg.MaxInbox, past which C's inbox would trim the oldest messages.
	custodySendEvery = 40 * time.Millisecond
	// custodyMaxDelay: each kill comes at a uniformly random moment 0 to this long
	// after the previous restart's API answered, while that node's neighbours push
	// it the bundles that piled up: many kills land inside custody commits.
	custodyMaxDelay = 300 * time.Millisecond
	// custodyDrain bounds the wait for C's inbox (and then for A's receipts) after
	// the last kill.
	custodyDrain = 2 * time.Minute
	// custodyReady bounds a restarted node's wait for its API.
	custodyReady = 30 * time.Second
)

// custodyNode is one `skyfleet node` process, killed and restarted on the same data
// directory, mesh port and API port.
type custodyNode struct {
	name, dir, cfg, status, log string
	key                         *identity.Key
	tok                         apiauth.Token

	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
	starts int
}

// custodyClient makes every request on a fresh connection: a node killed under a
// kept-alive connection would otherwise fail the next request made after its restart.
var custodyClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

func newCustodyNode(t *testing.T, name string) *custodyNode {
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	k, _, err := identity.LoadOrCreate(dir, crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	n := &custodyNode{name: name, dir: dir, cfg: filepath.Join(dir, "fleet.toml"), key: k,
		status: fmt.Sprintf("127.0.0.1:%d", freePort(t)), log: filepath.Join(artifacts(t), name+".log")}
	os.Remove(n.log) // a previous run's; every start of this run appends
	t.Cleanup(n.kill)
	return n
}

// configure writes the node's fleet.toml: it listens on udpPort and links to peers.
func (n *custodyNode) configure(t *testing.T, udpPort int, peers ...string) {
	var b strings.Builder
	fmt.Fprintf(&b, "[node]\nname = %q\nlisten = [\"udp://127.0.0.1:%d\"]\nstatus = %q\ndata = %q\n\n", n.name, udpPort, n.status, n.dir)
	fmt.Fprintf(&b, "[network]\npsk = %q\nlan_discovery = false\npeers = [", meshPSK)
	for i, p := range peers {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", p)
	}
	b.WriteString("]\n")
	if err := os.WriteFile(n.cfg, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// start runs the node, its output appended to its log after a line that says which
// start this is.
func (n *custodyNode) start(t *testing.T) {
	f, err := os.OpenFile(n.log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	n.starts++
	fmt.Fprintf(f, "=== start %d of %s at %s\n", n.starts, n.name, time.Now().Format("15:04:05.000"))
	n.cmd = exec.Command(skyfleet, "node", "--config", n.cfg)
	n.cmd.Stdout, n.cmd.Stderr = f, f
	if err := n.cmd.Start(); err != nil {
		f.Close()
		t.Fatal(err)
	}
	n.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) { cmd.Wait(); f.Close(); close(exited) }(n.cmd, n.exited)
}

// kill SIGKILLs the node and waits until it is gone (its files unlocked, its ports
// closed).
func (n *custodyNode) kill() {
	if n.cmd == nil {
		return
	}
	n.cmd.Process.Kill() // SIGKILL
	<-n.exited
	n.cmd = nil
}

func (n *custodyNode) dead() bool {
	if n.exited == nil {
		return true
	}
	select {
	case <-n.exited:
		return true
	default:
		return false
	}
}

// ready waits until the node's API answers an authorised request, which it does only
// once the router, the custody store and the messaging service run.
func (n *custodyNode) ready(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(custodyReady)
	for {
		if n.tok == "" {
			if tok, err := apiauth.ReadToken(filepath.Join(n.dir, apiauth.TokenFile)); err == nil {
				n.tok = apiauth.Token(tok)
			}
		}
		if n.tok != "" {
			if code, err := n.call("GET", "/msg/stats", nil, nil, time.Second); err == nil && code == http.StatusOK {
				return
			}
		}
		if n.dead() {
			t.Fatalf("%s exited before its API answered (start %d):\n%s", n.name, n.starts, tail(n.log))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's API did not answer within %v of start %d:\n%s", n.name, custodyReady, n.starts, tail(n.log))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// call makes an API request with the node's token (apiCall).
func (n *custodyNode) call(method, path string, body, out any, timeout time.Duration) (int, error) {
	return apiCall(custodyClient, n.tok, n.status, method, path, body, out, timeout)
}

func (n *custodyNode) inbox() ([]msg.InboxEntry, error)   { return inboxVia(n.call, 20*time.Second) }
func (n *custodyNode) outbox() ([]msg.OutboxEntry, error) { return outboxVia(n.call, 20*time.Second) }

// apiCaller is a node's call: one API request with the node's credential.
type apiCaller func(method, path string, body, out any, timeout time.Duration) (int, error)

// apiCall makes one request to the node API on hostport with client (a copy of
// it, with timeout) and cred: body, if set, is sent as JSON, and a 200 answer is
// decoded into out, if set. It returns the status code.
func apiCall(client *http.Client, cred apiauth.Credential, hostport, method, path string, body, out any, timeout time.Duration) (int, error) {
	var rd io.Reader
	if body != nil {
		j, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, "http://"+hostport+path, rd)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	c := *client
	c.Timeout = timeout
	if err := cred.Authorize(&c, req); err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || out == nil {
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	return resp.StatusCode, json.NewDecoder(resp.Body).Decode(out)
}

// inboxVia returns the node's inbox (GET /msg/inbox).
func inboxVia(call apiCaller, timeout time.Duration) ([]msg.InboxEntry, error) {
	var in []msg.InboxEntry
	code, err := call("GET", "/msg/inbox", nil, &in, timeout)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("GET /msg/inbox: %d", code)
	}
	return in, err
}

// outboxVia returns the node's outbox (GET /msg/outbox).
func outboxVia(call apiCaller, timeout time.Duration) ([]msg.OutboxEntry, error) {
	var out []msg.OutboxEntry
	code, err := call("GET", "/msg/outbox", nil, &out, timeout)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("GET /msg/outbox: %d", code)
	}
	return out, err
}

// heldVia returns the IDs of the bundles the node holds (GET /saf/bundles; nil
// when it does not answer).
func heldVia(call apiCaller, timeout time.Duration) map[string]bool {
	var in []struct {
		ID string `json:"id"`
	}
	if code, err := call("GET", "/saf/bundles", nil, &in, timeout); err != nil || code != http.StatusOK {
		return nil
	}
	out := make(map[string]bool, len(in))
	for _, b := range in {
		out[b.ID] = true
	}
	return out
}

// towardsVia returns how many bundles the node has queued for, and sent without
// a custody ack yet to, the neighbour with key hex (GET /saf/stats; 0, 0 for a
// neighbour it has no custody stream to; ok false when it does not answer).
func towardsVia(call apiCaller, key string, timeout time.Duration) (queued, inFlight int, ok bool) {
	var st safStats
	if code, err := call("GET", "/saf/stats", nil, &st, timeout); err != nil || code != http.StatusOK {
		return 0, 0, false
	}
	for _, p := range st.Engine.Neighbours {
		if p.Key == key {
			return p.Queued, p.InFlight, true
		}
	}
	return 0, 0, true
}

// safStats is what the test reads of GET /saf/stats.
type safStats struct {
	Store  saf.StoreStats  `json:"store"`
	Engine saf.EngineStats `json:"engine"`
}

// inFlightTo returns how many Transfers n has sent to the node with key hex and
// not yet had a custody ack for (-1 when n does not answer).
func (n *custodyNode) inFlightTo(key string) int {
	_, inFlight, ok := towardsVia(n.call, key, time.Second)
	if !ok {
		return -1
	}
	return inFlight
}

// custodyState says, for each node, how many bundles it holds, its counters since
// its last start and its custody streams towards each neighbour, and whether the
// two ends know a path to each other: what a stalled drain is waiting for.
func custodyState(nodes []*custodyNode) string {
	names := map[string]string{}
	for _, n := range nodes {
		names[n.key.PublicKeyHex()] = n.name
	}
	var parts []string
	for _, n := range nodes {
		var st safStats
		if code, err := n.call("GET", "/saf/stats", nil, &st, 5*time.Second); err != nil || code != http.StatusOK {
			parts = append(parts, n.name+" ?")
			continue
		}
		p := fmt.Sprintf("%s holds %d (since its start: %d accepted, %d duplicates, %d delivered here)",
			n.name, st.Store.Bundles, st.Store.Accepted, st.Store.Duplicates, st.Engine.Delivered)
		for _, nb := range st.Engine.Neighbours {
			p += fmt.Sprintf(", to %s queued %d in flight %d failures %d", names[nb.Key], nb.Queued, nb.InFlight, nb.Failures)
		}
		parts = append(parts, p)
	}
	// Whether the ends know a path to each other (the topology a restarted node
	// has to learn again before it can pick a next hop).
	a, c := nodes[0], nodes[len(nodes)-1]
	for _, e := range [][2]*custodyNode{{a, c}, {c, a}} {
		code, err := e[0].call("GET", "/mesh/route?addr="+e[1].key.PublicKeyHex(), nil, nil, 5*time.Second)
		parts = append(parts, fmt.Sprintf("path %s→%s: %v", e[0].name, e[1].name, err == nil && code == http.StatusOK))
	}
	return strings.Join(parts, "; ")
}

// dumpState writes the node's mesh links (with the router's counters), routes,
// custody stats and messaging stats to NAME-state.txt among the artifacts.
func (n *custodyNode) dumpState(t *testing.T) {
	var b strings.Builder
	for _, path := range []string{"/mesh/links", "/mesh/routes", "/saf/stats", "/msg/stats"} {
		req, err := http.NewRequest("GET", "http://"+n.status+path, nil)
		if err == nil {
			err = n.tok.Authorize(custodyClient, req)
		}
		var body []byte
		if err == nil {
			var resp *http.Response
			c := *custodyClient
			c.Timeout = 10 * time.Second
			if resp, err = c.Do(req); err == nil {
				body, _ = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
		}
		fmt.Fprintf(&b, "GET %s (%v)\n%s\n", path, err, body)
	}
	os.WriteFile(filepath.Join(artifacts(t), n.name+"-state.txt"), []byte(b.String()), 0o644)
}

// heldFor says how many bundles for the node with key hex each node holds.
func heldFor(nodes []*custodyNode, key string) string {
	var parts []string
	for _, n := range nodes {
		var in []saf.Info
		if code, err := n.call("GET", "/saf/bundles", nil, &in, 20*time.Second); err != nil || code != http.StatusOK {
			parts = append(parts, n.name+" ?")
			continue
		}
		k := 0
		for _, b := range in {
			if b.Destination == key {
				k++
			}
		}
		parts = append(parts, fmt.Sprintf("%s %d", n.name, k))
	}
	return strings.Join(parts, ", ")
}

// heldBundles returns the IDs of the bundles n holds (nil when it does not answer).
func (n *custodyNode) heldBundles() map[string]bool { return heldVia(n.call, 20*time.Second) }

// TestCustodySurvivesKills: a line of three nodes, A – B – C, on loopback UDP. A
// sender posts small messages for C to A's /msg/send all along (25 a second); an ID
// counts as acknowledged when A answered 200 (A holds it durably). Meanwhile B (the custodian
// in the middle), C (the destination) and sometimes A are SIGKILLed at random
// moments, each restarted at once on its data directory and ports. Afterwards, with
// all three running, C's inbox must hold every acknowledged message exactly once,
// and A's outbox must show each delivered (receipts are bundles too, C to A).
//
// SKYFLEET_CUSTODY_KILLS sets the number of kills (default 20; `make soak`: 200);
// SKYFLEET_CUSTODY_SEED the random seed (logged, for re-running a sequence).
func TestCustodySurvivesKills(t *testing.T) {
	kills := soakCount(t, "SKYFLEET_CUSTODY_KILLS", custodyKillsDefault)
	rng, seed := soakRand(t, "SKYFLEET_CUSTODY_SEED")
	t.Logf("%d kills, seed %d (SKYFLEET_CUSTODY_SEED to repeat the kill sequence)", kills, seed)

	a, b, c := newCustodyNode(t, "A"), newCustodyNode(t, "B"), newCustodyNode(t, "C")
	nodes := []*custodyNode{a, b, c}
	pa, pb, pc := freeUDPPort(t), freeUDPPort(t), freeUDPPort(t)
	ep := func(n *custodyNode, port int) string {
		return fmt.Sprintf("udp://127.0.0.1:%d#%s", port, n.key.PublicKeyHex())
	}
	a.configure(t, pa, ep(b, pb))
	b.configure(t, pb, ep(a, pa), ep(c, pc))
	c.configure(t, pc, ep(b, pb))
	for _, n := range nodes {
		n.start(t)
	}
	for _, n := range nodes {
		n.ready(t)
	}
	// The messages' recipient as a public key: A takes custody of a message even
	// when it knows no path to C (restarted while B is down), which a node address
	// would not allow (A could not resolve it).
	to := c.key.PublicKeyHex()

	// The sender.
	var (
		mu       sync.Mutex
		acked    []string // IDs A answered 200 for, in order
		refused  = map[string]int{}
		stopSend = make(chan struct{})
		sendDone = make(chan struct{})
	)
	go func() {
		defer close(sendDone)
		tick := time.NewTicker(custodySendEvery)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stopSend:
				return
			case <-tick.C:
			}
			var e msg.OutboxEntry
			code, err := a.call("POST", "/msg/send", msg.SendRequest{To: to, Text: fmt.Sprintf("custody %d", i)}, &e, 15*time.Second)
			mu.Lock()
			switch {
			case err == nil && code == http.StatusOK && e.ID != "":
				acked = append(acked, e.ID)
			case err != nil:
				refused["no answer (A killed or restarting)"]++
			default:
				refused[fmt.Sprintf("HTTP %d", code)]++
			}
			mu.Unlock()
		}
	}()
	defer func() {
		select {
		case <-stopSend:
		default:
			close(stopSend)
		}
		<-sendDone
	}()
	ackedNow := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), acked...)
	}

	// The path works before anything is killed: the first message reaches C.
	warm := time.Now()
	for deadline := warm.Add(60 * time.Second); ; {
		if ids := ackedNow(); len(ids) > 0 {
			if in, err := c.inbox(); err == nil && inboxHas(in, ids[0]) {
				break
			}
		}
		for _, n := range nodes {
			if n.dead() {
				t.Fatalf("%s exited:\n%s", n.name, tail(n.log))
			}
		}
		if time.Now().After(deadline) {
			mu.Lock()
			state := fmt.Sprintf("acked %d, unanswered %v", len(acked), refused)
			mu.Unlock()
			t.Fatalf("no message reached C within 60 s (%s)\nA:\n%s\nB:\n%s\nC:\n%s", state, tail(a.log), tail(b.log), tail(c.log))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("first message through A – B – C in %.1f s", time.Since(warm).Seconds())

	// The killer. Each kill is at a random moment 0–300 ms after the previous
	// restart's API answered; the victim's neighbours are asked just before how many
	// Transfers to it (and it how many of its own) await custody acks, which tells
	// whether the kill lands in the middle of custody traffic.
	killStart := time.Now()
	byName := map[string]int{}
	midTransfer := 0
	var downtime time.Duration
	lastReady := time.Now()
	neighbours := map[*custodyNode][]*custodyNode{a: {b}, b: {a, c}, c: {b}}
	for k := 1; k <= kills; k++ {
		var victim *custodyNode
		switch r := rng.IntN(12); {
		case r < 2:
			victim = a
		case r < 7:
			victim = b
		default:
			victim = c
		}
		time.Sleep(time.Until(lastReady.Add(time.Duration(rng.Int64N(int64(custodyMaxDelay) + 1)))))
		busy := false
		for _, nb := range neighbours[victim] {
			if nb.inFlightTo(victim.key.PublicKeyHex()) > 0 || victim.inFlightTo(nb.key.PublicKeyHex()) > 0 {
				busy = true
			}
		}
		victim.kill()
		down := time.Now()
		victim.start(t)
		victim.ready(t)
		lastReady = time.Now()
		downtime += lastReady.Sub(down)
		byName[victim.name]++
		if busy {
			midTransfer++
		}
		for _, n := range nodes {
			if n.dead() {
				t.Fatalf("%s exited on its own after kill %d:\n%s", n.name, k, tail(n.log))
			}
		}
		if k%20 == 0 || k == kills {
			mu.Lock()
			t.Logf("kills %d/%d (A %d, B %d, C %d; %d with Transfers in flight to or from the victim): %d messages acked by A, %d sends unanswered %v, %.0f s",
				k, kills, byName["A"], byName["B"], byName["C"], midTransfer, len(acked), totalCount(refused), refused, time.Since(killStart).Seconds())
			mu.Unlock()
		}
	}
	close(stopSend)
	<-sendDone
	killTime := time.Since(killStart)
	ids := ackedNow()
	if len(ids) >= msg.MaxInbox {
		t.Fatalf("%d messages acked: past msg.MaxInbox (%d), C's inbox trims the oldest and the check means nothing; slow the sender", len(ids), msg.MaxInbox)
	}
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		if want[id] {
			t.Errorf("A answered the same message ID %s for two sends", id)
		}
		want[id] = true
	}

	// Drain: all three run; C's inbox must come to hold every acked ID.
	drainStart := time.Now()
	var inbox []msg.InboxEntry
	missing := ids // until C's inbox answers
	nextLog := drainStart.Add(5 * time.Second)
	for deadline := drainStart.Add(custodyDrain); ; {
		polled := time.Now()
		in, err := c.inbox()
		took := time.Since(polled)
		if err == nil {
			inbox = in
			missing = missingFrom(ids, in)
			if len(missing) == 0 {
				break
			}
		}
		if time.Now().After(nextLog) {
			nextLog = time.Now().Add(5 * time.Second)
			poll := fmt.Sprintf("GET /msg/inbox took %d ms", took.Milliseconds())
			if err != nil {
				poll = fmt.Sprintf("GET /msg/inbox failed after %d ms: %v", took.Milliseconds(), err)
			}
			t.Logf("draining, %.0f s: %d of %d acked messages in C's inbox (%s); custody: %s", time.Since(drainStart).Seconds(),
				len(ids)-len(missing), len(ids), poll, custodyState(nodes))
		}
		for _, n := range nodes {
			if n.dead() {
				t.Fatalf("%s exited while draining:\n%s", n.name, tail(n.log))
			}
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	drain := time.Since(drainStart)

	// Receipts: A's outbox must come to show every acked message delivered.
	// (When C's inbox did not fill, the test fails anyway: one look, no wait.)
	receiptStart := time.Now()
	var outbox []msg.OutboxEntry
	undelivered := ids // until A's outbox answers
	receiptWait := custodyDrain
	if len(missing) > 0 {
		receiptWait = 0
	}
	for deadline := receiptStart.Add(receiptWait); ; {
		out, err := a.outbox()
		if err == nil {
			outbox = out
			undelivered = notDelivered(ids, out)
			if len(undelivered) == 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	receipts := time.Since(receiptStart)

	// Exactly once: every acked ID in C's inbox, none twice.
	count := map[string]int{}
	for _, e := range inbox {
		count[e.ID]++
	}
	var dups []string
	for id, n := range count {
		if n > 1 {
			dups = append(dups, fmt.Sprintf("%s ×%d", id, n))
		}
	}
	sort.Strings(dups)
	extra := 0 // delivered, but A's answer was lost to a kill: allowed
	for id := range count {
		if !want[id] {
			extra++
		}
	}
	once := 0
	for _, id := range ids {
		if count[id] == 1 {
			once++
		}
	}

	// A store moved aside or rolled back at a restart would lose custody however the
	// counts came out: bbolt must come through every SIGKILL intact.
	var recoveries []string
	for _, n := range nodes {
		raw, _ := os.ReadFile(n.log)
		for _, line := range strings.Split(string(raw), "\n") {
			if strings.Contains(line, "was damaged") || strings.Contains(line, "opened the previous transaction") {
				recoveries = append(recoveries, n.name+": "+line)
			}
		}
	}

	// Where the missing messages are: held by a node (late: custody kept, delivery
	// stuck) or by none (lost).
	var whereMissing, whereUndelivered string
	lostMsgs := 0
	if len(missing) > 0 {
		whereMissing, lostMsgs = whereAre(missing, outbox, inbox, nodes)
	}
	if len(undelivered) > 0 {
		whereUndelivered, _ = whereAre(undelivered, outbox, inbox, nodes)
	}

	killsText := fmt.Sprintf("%d kills in %.0f s (A %d, B %d, C %d; %d with Transfers in flight to or from the victim; mean restart-to-ready %.0f ms)",
		kills, killTime.Seconds(), byName["A"], byName["B"], byName["C"], midTransfer, meanMs(downtime, kills))
	var report string
	switch {
	case len(missing) > 0:
		report = fmt.Sprintf("custody under SIGKILL: %d messages acked by A, %d in C's inbox exactly once, %d duplicated, %d missing %.0f s after the last kill "+
			"(%d held by no node: lost; %d still held: delivery stuck), %s",
			len(ids), once, len(dups), len(missing), drain.Seconds(), lostMsgs, len(missing)-lostMsgs, killsText)
	case len(undelivered) > 0:
		report = fmt.Sprintf("custody under SIGKILL: %d messages acked by A, %d delivered to C exactly once, %d duplicated, %s, inbox complete %.1f s after the last kill, "+
			"but %d not \"delivered\" in A's outbox %.0f s after that",
			len(ids), once, len(dups), killsText, drain.Seconds(), len(undelivered), receipts.Seconds())
	default:
		report = fmt.Sprintf("custody under SIGKILL: %d messages acked by A, %d delivered to C exactly once, 0 lost, %d duplicated, %s, "+
			"inbox complete %.1f s after the last kill, receipts back at A %.1f s after that (%d more delivered whose send got no answer: A was killed)",
			len(ids), once, len(dups), killsText, drain.Seconds(), receipts.Seconds(), extra)
	}
	t.Log(report)
	os.WriteFile(filepath.Join(artifacts(t), "custody.txt"), []byte(report+"\n"), 0o644)

	for _, r := range recoveries {
		t.Errorf("a store was recovered after a SIGKILL: %s", r)
	}
	if len(dups) > 0 {
		t.Errorf("%d message IDs are in C's inbox more than once: %s", len(dups), strings.Join(head(dups, 20), ", "))
	}
	if len(missing) > 0 {
		t.Errorf("%d of %d acked messages are not in C's inbox %v after the last kill:\n%s",
			len(missing), len(ids), custodyDrain, whereMissing)
	}
	if len(undelivered) > 0 {
		t.Errorf("%d of %d acked messages are not \"delivered\" in A's outbox; bundles for A (receipts) held: %s\n%s",
			len(undelivered), len(ids), heldFor(nodes, a.key.PublicKeyHex()), whereUndelivered)
	}
	if t.Failed() {
		for _, n := range nodes {
			n.dumpState(t)
		}
		t.Logf("node logs, and each node's mesh, custody and messaging state at the end (NAME-state.txt): %s", artifacts(t))
	}
}

func totalCount(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func meanMs(d time.Duration, n int) float64 {
	if n == 0 {
		return 0
	}
	return float64(d.Milliseconds()) / float64(n)
}

func inboxHas(in []msg.InboxEntry, id string) bool {
	for _, e := range in {
		if e.ID == id {
			return true
		}
	}
	return false
}

// missingFrom returns the IDs of ids not in the inbox.
func missingFrom(ids []string, in []msg.InboxEntry) []string {
	have := make(map[string]bool, len(in))
	for _, e := range in {
		have[e.ID] = true
	}
	var out []string
	for _, id := range ids {
		if !have[id] {
			out = append(out, id)
		}
	}
	return out
}

// notDelivered returns the IDs of ids that the outbox does not show delivered.
func notDelivered(ids []string, out []msg.OutboxEntry) []string {
	state := make(map[string]string, len(out))
	for _, e := range out {
		state[e.ID] = e.State
	}
	var r []string
	for _, id := range ids {
		if state[id] != msg.StateDelivered {
			r = append(r, id)
		}
	}
	return r
}

// whereAre says, for (at most 20 of) the message IDs, their state in A's outbox,
// whether C's inbox has them, and which nodes still hold their bundle: a message
// held somewhere is late, one held nowhere and not in the inbox is lost. (A
// message in the inbox whose outbox entry is not "delivered" waits for its
// receipt, a bundle of its own: heldFor counts those.)
func whereAre(ids []string, outbox []msg.OutboxEntry, inbox []msg.InboxEntry, nodes []*custodyNode) (string, int) {
	byID := make(map[string]msg.OutboxEntry, len(outbox))
	for _, e := range outbox {
		byID[e.ID] = e
	}
	in := make(map[string]bool, len(inbox))
	for _, e := range inbox {
		in[e.ID] = true
	}
	held := make([]map[string]bool, len(nodes))
	for i, n := range nodes {
		held[i] = n.heldBundles()
	}
	var b strings.Builder
	lost, inInbox := 0, 0
	for i, id := range ids {
		e, ok := byID[id]
		var at []string
		for j, n := range nodes {
			if ok && held[j][e.Bundle] {
				at = append(at, n.name)
			}
		}
		switch {
		case in[id]:
			inInbox++
		case len(at) == 0:
			lost++
		}
		if i < 20 {
			fmt.Fprintf(&b, "  message %s %q: outbox %q, in C's inbox %v, bundle %s held at %v\n", id, e.Text, e.State, in[id], e.Bundle, at)
		}
	}
	fmt.Fprintf(&b, "  of these %d: %d in C's inbox, %d neither in it nor held by any node (lost)", len(ids), inInbox, lost)
	return b.String(), lost
}
