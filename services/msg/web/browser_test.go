//go:build e2e

package web_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/e2e/browser"
	"github.com/skyfleet/skyfleet/internal/fleetconf"
	"github.com/skyfleet/skyfleet/services/meshd"
)

// These tests drive the messaging page in headless Chromium, at a phone's
// width, against real nodes linked on loopback. A missing Chromium fails them
// (CI installs it).

const passphrase = "kit seven, channel 3"

// TestBrowserMessaging: on node A (a passphrase) a phone logs in, after one
// wrong try, and sends a message to node B's address; a second phone on node B
// (open) sees it in its inbox, and A's outbox shows it delivered. A node with
// no [messaging] shows its page closed. Nothing on the pages breaks the CSP,
// throws, or overflows 360 pixels.
func TestBrowserMessaging(t *testing.T) {
	psk := strings.Repeat("5a", 32)
	baseA, listenA, a := startNode(t, "[network]\npsk = \""+psk+"\"\nlan_discovery = false\n[messaging]\npassphrase = \""+passphrase+"\"\n")
	peer := listenA + "#" + a.Key.PublicKeyHex()
	baseB, _, b := startNode(t, "[network]\npsk = \""+psk+"\"\nlan_discovery = false\npeers = [\""+peer+"\"]\n[messaging]\nopen = true\n")
	baseC, _, _ := startNode(t, "[network]\npsk = \""+psk+"\"\nlan_discovery = false\n")

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	br, err := browser.Launch(ctx, browser.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	phone := func(url string) *browser.Page {
		t.Helper()
		p, err := br.NewPage(ctx, 360, 740, true)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Navigate(ctx, url); err != nil {
			t.Fatal(err)
		}
		return p
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	text := func(p *browser.Page, expr string) string {
		t.Helper()
		var s string
		must(p.Eval(ctx, expr, &s))
		return s
	}

	// Node A asks for the passphrase, and says so when it is wrong.
	pa := phone(baseA + "/msg/")
	must(p(pa).wait(ctx, `document.body.dataset.state === 'login'`))
	if got := text(pa, `document.getElementById('self').textContent`); !strings.Contains(got, a.Address()) {
		t.Errorf("A's page names the node %q, want its address %s", got, a.Address())
	}
	must(pa.Type(ctx, "#passphrase", "kit seven, channel 4"))
	must(pa.Click(ctx, "#login-button"))
	must(p(pa).wait(ctx, `document.getElementById('login-error').textContent === 'Wrong passphrase.'`))
	shot(t, ctx, pa, "msg-login.png")
	must(pa.Eval(ctx, `document.getElementById('passphrase').value = ''`, nil))
	must(pa.Type(ctx, "#passphrase", passphrase))
	must(pa.Click(ctx, "#login-button"))
	must(p(pa).wait(ctx, `document.body.dataset.state === 'app'`))
	var logoutShown bool
	must(pa.Eval(ctx, `!document.getElementById('logout').hidden`, &logoutShown))
	if !logoutShown {
		t.Error("A's page offers no Log out after a login")
	}

	// Node B is open: its page goes straight to the inbox, with no Log out.
	pb := phone(baseB + "/msg/")
	must(p(pb).wait(ctx, `document.body.dataset.state === 'app' && !document.getElementById('inbox-empty').hidden`))
	must(pb.Eval(ctx, `!document.getElementById('logout').hidden`, &logoutShown))
	if logoutShown {
		t.Error("B's open page offers Log out")
	}

	// The counter counts UTF-8 bytes and stops a text over 1000 of them.
	must(pb.Type(ctx, "#to", "*"))
	must(pb.Type(ctx, "#text", strings.Repeat("é", 501)))
	if got := text(pb, `document.getElementById('counter').textContent`); got != "1002 / 1000 bytes" {
		t.Errorf("counter %q, want 1002 / 1000 bytes", got)
	}
	var disabled bool
	must(pb.Eval(ctx, `document.getElementById('send').disabled && document.getElementById('counter').classList.contains('over')`, &disabled))
	if !disabled {
		t.Error("Send is enabled for 1002 bytes")
	}
	must(pb.Eval(ctx, `document.getElementById('text').value = ''; document.getElementById('text').dispatchEvent(new Event('input'))`, nil))

	// A's phone sends to B's address once A knows a way to B.
	deadline := time.Now().Add(20 * time.Second)
	for _, err := a.Router.Resolve(b.Address()); err != nil; _, err = a.Router.Resolve(b.Address()) {
		if time.Now().After(deadline) {
			t.Fatalf("A never learnt B's address: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	const msgText = "Water at the school at 3 pm ✓ — bring cans"
	must(pa.Type(ctx, "#to", b.Address()))
	must(pa.Type(ctx, "#text", msgText))
	if got := text(pa, `document.getElementById('counter').textContent`); got != fmt.Sprintf("%d / 1000 bytes", len(msgText)) {
		t.Errorf("counter %q, want %d bytes", got, len(msgText))
	}
	must(pa.Click(ctx, "#send"))
	must(p(pa).wait(ctx, `document.getElementById('send-status').textContent.startsWith('Sent')`))
	must(p(pa).wait(ctx, `document.querySelectorAll('#outbox li').length === 1`))

	// B's phone sees it, from A, in its inbox.
	must(p(pb).wait(ctx, `document.querySelectorAll('#inbox li').length === 1`))
	if got := text(pb, `document.querySelector('#inbox li .text').textContent`); got != msgText {
		t.Errorf("B's inbox shows %q, want %q", got, msgText)
	}
	if got := text(pb, `document.querySelector('#inbox li .from').textContent`); got != a.Address() {
		t.Errorf("B's inbox shows it from %q, want A %s", got, a.Address())
	}
	shot(t, ctx, pb, "msg-inbox-b.png")

	// A's outbox turns delivered when B's receipt is back.
	must(p(pa).wait(ctx, `document.querySelector('#outbox li').dataset.state === 'delivered'`))
	if got := text(pa, `document.querySelector('#outbox li .state').textContent`); got != "delivered" {
		t.Errorf("A's outbox state shows %q", got)
	}
	shot(t, ctx, pa, "msg-delivered-a.png")

	// A node with no [messaging] says messaging is closed, and how to open it.
	pc := phone(baseC + "/msg/")
	must(p(pc).wait(ctx, `document.body.dataset.state === 'closed'`))
	if got := text(pc, `document.getElementById('closed').textContent`); !strings.Contains(got, "[messaging]") || !strings.Contains(got, "open = true") {
		t.Errorf("closed page says %q", got)
	}
	shot(t, ctx, pc, "msg-closed.png")

	// Logging out on A ends the session: the page asks again.
	must(pa.Click(ctx, "#logout"))
	must(p(pa).wait(ctx, `document.body.dataset.state === 'login'`))
	must(pa.Navigate(ctx, baseA+"/msg/"))
	must(p(pa).wait(ctx, `document.body.dataset.state === 'login'`))

	for name, pg := range map[string]*browser.Page{"A": pa, "B": pb, "C": pc} {
		var w int
		must(pg.Eval(ctx, `document.documentElement.scrollWidth`, &w))
		if w > 360 {
			t.Errorf("%s's page is %d px wide on a 360-px phone", name, w)
		}
		if errs := pg.Errors(ctx); len(errs) > 0 {
			t.Errorf("%s's page: %q", name, errs)
		}
	}
}

// page adds a bounded wait to a browser.Page.
type page struct{ *browser.Page }

func p(pg *browser.Page) page { return page{pg} }

// wait is WaitFor with at most 30 s for this one condition.
func (pg page) wait(ctx context.Context, expr string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return pg.WaitFor(ctx, expr)
}

// shot saves a screenshot of pg as name in $SKYFLEET_ARTEFACTS (the Makefile
// sets it for the browser tier), else in the test's temporary directory.
func shot(t *testing.T, ctx context.Context, pg *browser.Page, name string) {
	t.Helper()
	dir := os.Getenv("SKYFLEET_ARTEFACTS")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := pg.Screenshot(ctx, path); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// startNode runs a node from the fleet.toml text toml on a free loopback UDP
// port until the test ends, and returns its API's base URL, its transport and
// the node.
func startNode(t *testing.T, toml string) (base, listen string, n *meshd.Node) {
	t.Helper()
	// The port was free a moment ago; another test binary may have taken it
	// since, so a few fresh ones are tried.
	for try := 1; ; try++ {
		base, listen, n, err := tryNode(t, toml)
		if err == nil {
			return base, listen, n
		}
		if try == 3 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatalf("node did not start: %v", err)
		}
	}
}

func tryNode(t *testing.T, toml string) (base, listen string, n *meshd.Node, err error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen = "udp://" + pc.LocalAddr().String()
	pc.Close()
	text := fmt.Sprintf("[node]\nlisten = [%q]\ndata = %q\n%s", listen, t.TempDir(), toml)
	cfg, problems := fleetconf.Parse([]byte(text), false)
	if len(problems) > 0 {
		t.Fatalf("fleet.toml: %v", problems)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *meshd.Node, 1)
	done := make(chan struct{})
	var runErr error
	// The node's goroutines may log after the test has ended, when t.Logf
	// would panic.
	var ended atomic.Bool
	logf := func(format string, a ...any) {
		if !ended.Load() {
			t.Logf(format, a...)
		}
	}
	go func() {
		runErr = meshd.Run(ctx, meshd.Options{Config: cfg, Problems: problems, Listener: ln, Logf: logf, TrustSystemClock: true,
			Ready: func(n *meshd.Node) { ready <- n }})
		close(done)
	}()
	t.Cleanup(func() { cancel(); <-done; ended.Store(true) })
	select {
	case n := <-ready:
		return "http://" + ln.Addr().String(), listen, n, nil
	case <-done:
		return "", "", nil, runErr
	}
}
