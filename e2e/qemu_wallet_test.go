//go:build e2e

package e2e

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/wire"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/skyfleet/skyfleet/internal/apiauth"
	"github.com/skyfleet/skyfleet/services/identity"
	"github.com/skyfleet/skyfleet/services/wallet"
	"github.com/skyfleet/skyfleet/ui/fb"
	"github.com/skyfleet/skyfleet/ui/screens"
	"github.com/skyfleet/skyfleet/wallet/bip32"
	"github.com/skyfleet/skyfleet/wallet/bip39"
	"github.com/skyfleet/skyfleet/wallet/bitcoin/bitcointest"
	"github.com/skyfleet/skyfleet/wallet/skycoin"
)

// walletMnemonic is BIP39's English vector "legal winner thank year..."
// (trezor/python-mnemonic vectors.json), restored on the node's screen.
const walletMnemonic = "legal winner thank year wave sausage worth useful legal winner thank yellow"

// walletPIN is typed on the node's shuffled PIN pad.
const walletPIN = "730519"

// walletFleet is the shared node's [wallet]: the wallet runs, and a
// question waits 30 s (the least allowed) so the time-out is quick to see.
const walletFleet = "\n[wallet]\nenabled = true\ntimeout = \"30s\"\n"

// screenDriver drives the node's screen through QMP with a twin of the UI
// in this process: the twin says where each control is and what the
// screen must show. Every screen the node shows is kept as an artefact.
type screenDriver struct {
	t    *testing.T
	q    *qmp
	v    *vm
	size image.Point
	th   *fb.Theme
	twin *twinScreen
	u    *fb.UI
	app  *screens.App
	art  string
	step int
	top  image.Rectangle // the title bar's left part: the title, not the clock
}

func newScreenDriver(t *testing.T, v *vm) *screenDriver {
	q := dialQMP(t, v.qmp)
	first := q.screendump(t)
	size := first.Rect.Size()
	th, err := fb.NewTheme(size, fb.DefaultDPI(size))
	if err != nil {
		t.Fatal(err)
	}
	d := &screenDriver{t: t, q: q, v: v, size: size, th: th, twin: &twinScreen{pic: image.NewRGBA(first.Rect)}, art: artifacts(t)}
	d.u = fb.New(d.twin, th)
	d.app = screens.NewApp(d.u, time.Now)
	d.app.SetMessenger(noMessages{})
	d.app.Open("Status")
	d.render()
	d.top = image.Rect(0, 0, size.X*2/3, fb.LineHeight(th.Title)+2*th.Pad)
	return d
}

func (d *screenDriver) render() {
	// Twice: a gate enables Approve while the first draws the detail.
	d.u.Render()
	d.u.Render()
}

// ask shows r on the twin (the node's ui service shows the wallet's
// question as this); the twin's answer is dropped.
func (d *screenDriver) ask(r screens.Request) screens.Question {
	r.Service = "wallet"
	q := d.app.Ask(r, func(screens.Decision) {})
	d.render()
	return q
}

// wait polls screendumps until the regions match the twin's picture, and
// keeps the screen as wallet-N-name.png. A question ignores touches in its
// first 500 ms: wait lets them pass once the screen is up.
func (d *screenDriver) wait(name string, regions ...image.Rectangle) *image.RGBA {
	d.t.Helper()
	d.step++
	deadline := time.Now().Add(60 * time.Second)
	for {
		shot := d.q.screendump(d.t)
		bad := 0
		for _, r := range regions {
			bad += diffIn(shot, d.twin.pic, r)
		}
		if bad <= 20 {
			savePNG(d.t, filepath.Join(d.art, fmt.Sprintf("wallet-%02d-%s.png", d.step, name)), shot)
			time.Sleep(600 * time.Millisecond)
			return shot
		}
		if time.Now().After(deadline) {
			savePNG(d.t, filepath.Join(d.art, fmt.Sprintf("wallet-%02d-%s-GOT.png", d.step, name)), shot)
			savePNG(d.t, filepath.Join(d.art, fmt.Sprintf("wallet-%02d-%s-WANT.png", d.step, name)), d.twin.pic)
			d.t.Fatalf("%s: the screen differs from the expected one in %d pixels after 60 s (artefacts wallet-%02d-*)\n%s", name, bad, d.step, d.v.tail())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// tap touches r on the node and on the twin.
func (d *screenDriver) tap(r image.Rectangle) {
	d.t.Helper()
	d.q.touch(d.t, r, d.size)
	c := r.Min.Add(r.Size().Div(2))
	now := time.Now()
	d.u.TouchAt([]image.Point{c}, now)
	d.u.TouchAt(nil, now.Add(60*time.Millisecond))
	d.render()
}

// drag swipes up over r on the node, to scroll a detail to its end.
func (d *screenDriver) drag(r image.Rectangle) {
	d.t.Helper()
	abs := func(px, n int) int { return (2*px + 1) * tabletMax / (2 * n) }
	x := (r.Min.X + r.Max.X) / 2
	ev := func(y int, btn *bool) {
		evs := []any{map[string]any{"type": "abs", "data": map[string]any{"axis": "x", "value": abs(x, d.size.X)}},
			map[string]any{"type": "abs", "data": map[string]any{"axis": "y", "value": abs(y, d.size.Y)}}}
		if btn != nil {
			evs = append(evs, map[string]any{"type": "btn", "data": map[string]any{"down": *btn, "button": "left"}})
		}
		d.q.do(d.t, "input-send-event", map[string]any{"events": evs})
		time.Sleep(40 * time.Millisecond)
	}
	down, up := true, false
	y0, y1 := r.Max.Y-d.th.Pad, r.Min.Y+d.th.Pad
	ev(y0, &down)
	for i := 1; i <= 6; i++ {
		ev(y0+(y1-y0)*i/6, nil)
	}
	ev(y1, &up)
	time.Sleep(2 * fb.DebounceInterval)
}

// approve waits for an approve question titled title, scrolls its rows to
// the end if the node's Approve is still disabled, and taps the button
// labelled button ("" for Reject). The twin shows a question with the same
// title and labels (its rows may differ: only the title, the asker line
// and the buttons are compared).
func (d *screenDriver) approve(name string, r screens.Request, button string) *screens.ApprovalPage {
	d.t.Helper()
	tq := d.ask(r)
	p := tq.(*screens.ApprovalPage)
	buttons := p.Reject.Bounds().Union(p.Approve.Bounds())
	asker := image.Rect(0, d.top.Max.Y, d.size.X/2, p.Detail.Bounds().Min.Y)
	deadline := time.Now().Add(60 * time.Second)
	d.wait(name, d.top, asker)
	for {
		shot := d.q.screendump(d.t)
		if diffIn(shot, d.twin.pic, buttons) <= 20 {
			// Every row seen, Approve enabled: the screen the person
			// decides on.
			savePNG(d.t, filepath.Join(d.art, fmt.Sprintf("wallet-%02d-%s-ready.png", d.step, name)), shot)
			break
		}
		if time.Now().After(deadline) {
			savePNG(d.t, filepath.Join(d.art, fmt.Sprintf("wallet-%02d-%s-buttons-GOT.png", d.step, name)), shot)
			d.t.Fatalf("%s: Approve never enabled on the node (scrolled to the end?)\n%s", name, d.v.tail())
		}
		d.drag(p.Detail.Bounds())
		time.Sleep(500 * time.Millisecond)
	}
	if button == "" {
		d.tap(p.Reject.Bounds())
	} else {
		d.tap(p.Approve.Bounds())
	}
	return p
}

// pin types walletPIN on the node's shuffled pad: each cell's digit is
// read from the screendump by drawing every digit's key in that cell, as
// the pad draws it, and keeping the one that matches.
func (d *screenDriver) pin(name string, p *screens.ApprovalPage) {
	d.t.Helper()
	pad := p.PIN
	if pad == nil {
		d.t.Fatalf("%s: the twin shows no PIN pad", name)
	}
	var cells []*fb.Button
	var ok *fb.Button
	for _, w := range pad.Items {
		if b, isB := w.(*fb.Button); isB {
			switch {
			case b.Label == "OK":
				ok = b
			case len(b.Label) == 1 && b.Label[0] >= '0' && b.Label[0] <= '9':
				cells = append(cells, b)
			}
		}
	}
	// The keys are drawn: wait for the OK key, which every pad has.
	d.wait(name, ok.Bounds())
	shot := d.q.screendump(d.t)
	where := map[byte]image.Rectangle{}
	for _, c := range cells {
		best, bestDiff := byte(0), 1<<30
		for digit := byte('0'); digit <= '9'; digit++ {
			img := image.NewRGBA(shot.Rect)
			copy(img.Pix, shot.Pix)
			key := &fb.Button{Label: string(digit)}
			key.Rect = c.Bounds()
			key.Draw(img, d.th)
			if n := diffIn(shot, img, c.Bounds()); n < bestDiff {
				best, bestDiff = digit, n
			}
		}
		if _, dup := where[best]; dup || bestDiff > 20 {
			savePNG(d.t, filepath.Join(d.art, "wallet-pinpad-unread.png"), shot)
			d.t.Fatalf("%s: cannot read the PIN pad's key at %v (best %q, %d pixels off)", name, c.Bounds(), best, bestDiff)
		}
		where[best] = c.Bounds()
	}
	for i := range len(walletPIN) {
		d.q.touch(d.t, where[walletPIN[i]], d.size)
	}
	d.q.touch(d.t, ok.Bounds(), d.size)
	p.Cancel() // the twin's question ends; the node's goes on
	d.render()
}

// word types w on the node's word page: letters until the twin offers w
// among the completions, then that completion (or OK once w is whole).
func (d *screenDriver) word(i int, w string) {
	d.t.Helper()
	title := fmt.Sprintf("Word %d of 12", i+1)
	p := d.ask(screens.Request{Kind: screens.KindWord, Title: title, RejectLabel: "Cancel"}).(*screens.WordPage)
	kb := p.Keyboard.Bounds()
	d.wait(fmt.Sprintf("word-%d", i+1), d.top, kb, p.Field.Bounds())
	for n := 0; ; n++ {
		for _, c := range p.Completions {
			if c.Label == w {
				d.tap(c.Bounds())
				return
			}
		}
		if n == len(w) {
			d.tap(p.OK.Bounds())
			return
		}
		key := p.Keyboard.KeyAt(string(w[n]))
		if key == nil {
			d.t.Fatalf("no key %q", w[n])
		}
		d.tap(key.Bounds())
		// The node took the letter when its field shows what the twin's
		// does.
		deadline := time.Now().Add(30 * time.Second)
		for diffIn(d.q.screendump(d.t), d.twin.pic, p.Field.Bounds()) > 20 {
			if time.Now().After(deadline) {
				d.t.Fatalf("word %d: the node did not take %q\n%s", i+1, w[n], d.v.tail())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// walletCall is the host's side: one request signed by key, answered when
// the person has decided on the node's screen.
type walletCall struct {
	code int
	body []byte
	took time.Duration
}

func callWallet(t *testing.T, node string, key *secp256k1.PrivateKey, method, path string, body any) <-chan walletCall {
	out := make(chan walletCall, 1)
	b, _ := json.Marshal(body)
	req, err := http.NewRequest(method, "http://"+node+"/wallet"+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if err := (apiauth.HostKey{Key: key}).Authorize(&http.Client{Timeout: 30 * time.Second}, req); err != nil {
		t.Fatal(err)
	}
	go func() {
		start := time.Now()
		resp, err := (&http.Client{Timeout: 5 * time.Minute}).Do(req)
		if err != nil {
			out <- walletCall{code: -1, body: []byte(err.Error())}
			return
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		out <- walletCall{code: resp.StatusCode, body: buf.Bytes(), took: time.Since(start)}
	}()
	return out
}

func answer(t *testing.T, c <-chan walletCall, what string, want int, into any) walletCall {
	t.Helper()
	select {
	case r := <-c:
		if r.code != want {
			t.Fatalf("%s: %d %s, want %d", what, r.code, r.body, want)
		}
		if into != nil {
			if err := json.Unmarshal(r.body, into); err != nil {
				t.Fatalf("%s: %v: %s", what, err, r.body)
			}
		}
		return r
	case <-time.After(5 * time.Minute):
		t.Fatalf("%s: no answer in 5 minutes", what)
	}
	return walletCall{}
}

// testQEMUWallet is issue 15's acceptance 3 on the emulated Pi: the
// shared node runs the wallet ([wallet] enabled); a host pairs by its own
// key, restores a seed by typing it on the screen's keyboard and sets a
// PIN on the shuffled pad, all through QMP touches; a PSBT posted to the
// host API waits until Unlock, the PIN and Approve, and its transaction
// verifies with btcd's engine; a Skycoin transaction likewise, each
// signature recovering its input's address; Reject returns a refusal, no
// touch a time-out. Then, on the same node: the wallet's files and the
// card refuse a shell run through the fleet master, and neither the serial
// console nor an API answer holds the seed, the words or the PIN.
func testQEMUWallet(t *testing.T, g *sharedVM) {
	v := g.vm.in(t)
	d := newScreenDriver(t, v)
	node := fmt.Sprintf("127.0.0.1:%d", v.port)
	host, _ := secp256k1.GeneratePrivateKey()
	var answers []string
	keep := func(c walletCall) { answers = append(answers, string(c.body)) }

	if !strings.Contains(v.log(), "console shell off: this node holds a wallet") {
		t.Error("the wallet node started a console shell (or did not say it did not)")
	}

	// Pairing: the code the node shows is the host key's.
	pair := callWallet(t, node, host, "POST", "/pair", wallet.PairRequest{Name: "e2e host"})
	d.approve("pair", screens.Request{Title: "Pair with a computer?", Rows: []fb.Pair{{Label: "x", Value: "y"}},
		ApproveLabel: "Pair", RejectLabel: "Refuse"}, "Pair")
	var pa wallet.PairAnswer
	keep(answer(t, pair, "pair", 200, &pa))
	if pa.Code != wallet.PairCode(host.PubKey().SerializeCompressed()) {
		t.Errorf("paired with code %s", pa.Code)
	}

	// Restore: the words typed on the screen's keyboard, then the PIN twice.
	setup := callWallet(t, node, host, "POST", "/setup", wallet.SetupRequest{Words: 12, Restore: true})
	d.approve("restore", screens.Request{Title: "Restore a wallet", Rows: []fb.Pair{{Label: "x", Value: "y"}},
		ApproveLabel: "Start", RejectLabel: "Cancel"}, "Start")
	for i, w := range strings.Fields(walletMnemonic) {
		d.word(i, w)
	}
	for _, title := range []string{"Choose a PIN", "Repeat the PIN"} {
		p := d.approve(strings.ToLower(strings.ReplaceAll(title, " ", "-")), screens.Request{Title: title,
			Rows: []fb.Pair{{Label: "x", Value: "y"}}, NeedPIN: true, ApproveLabel: "Next", RejectLabel: "Cancel"}, "Next")
		d.pin("pin-"+title, p)
	}
	keep(answer(t, setup, "restore", 200, nil))

	// A PSBT with a P2WPKH and a P2TR input: Unlock and the PIN, then
	// Approve; the signed transaction verifies.
	m, _ := bip32.NewMaster(bip39.Seed(walletMnemonic, ""))
	p, prev, err := bitcointest.Spend(m)
	if err != nil {
		t.Fatal(err)
	}
	b64, _ := p.B64Encode()
	sign := callWallet(t, node, host, "POST", "/sign/psbt", wallet.PSBTRequest{PSBT: b64})
	unlock := d.approve("unlock", screens.Request{Title: "Unlock the wallet", Rows: []fb.Pair{{Label: "x", Value: "y"}},
		NeedPIN: true, ApproveLabel: "Unlock", RejectLabel: "Cancel"}, "Unlock")
	d.pin("pin-unlock", unlock)
	approved := time.Now()
	d.approve("sign-psbt", screens.Request{Title: "Sign Bitcoin transaction", Rows: []fb.Pair{{Label: "x", Value: "y"}}}, "Approve")
	var pr wallet.PSBTAnswer
	c := answer(t, sign, "sign psbt", 200, &pr)
	keep(c)
	t.Logf("PSBT signed %.1f s after the unlock's PIN was sent (the approval screen and the tap included)", time.Since(approved).Seconds())
	raw, _ := hex.DecodeString(pr.Tx)
	var tx wire.MsgTx
	if err := tx.Deserialize(bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	if err := bitcointest.VerifyTx(&tx, prev); err != nil {
		t.Errorf("the transaction signed on the node: %v", err)
	}

	// A Skycoin transaction of two inputs, its change back to skycoin/1.
	var ad [3]wallet.AddressAnswer
	for i, path := range []string{"skycoin/0", "m/44'/8000'/0'/0/0", "skycoin/1"} {
		keep(answer(t, callWallet(t, node, host, "POST", "/address", wallet.AddressRequest{Path: path}), "address "+path, 200, &ad[i]))
	}
	sreq, stx := skycoinRequest(t, ad[0].Address, ad[1].Address, ad[2].Address)
	ssign := callWallet(t, node, host, "POST", "/sign/skycoin", sreq)
	d.approve("sign-skycoin", screens.Request{Title: "Sign Skycoin transaction", Rows: []fb.Pair{{Label: "x", Value: "y"}}}, "Approve")
	var sa wallet.SkycoinAnswer
	keep(answer(t, ssign, "sign skycoin", 200, &sa))
	sraw, _ := hex.DecodeString(sa.Tx)
	signed, err := skycoin.DecodeTransaction(sraw)
	if err != nil || signed.InnerHash() != stx.InnerHash() {
		t.Fatalf("the signed Skycoin transaction: %v", err)
	}
	for i, a := range []string{ad[0].Address, ad[1].Address} {
		if got, err := signed.InputSigner(i); err != nil || got.String() != a {
			t.Errorf("Skycoin input %d is signed by %v (%v), want %s", i, got, err, a)
		}
	}

	// Reject: a refusal.
	rej := callWallet(t, node, host, "POST", "/sign/psbt", wallet.PSBTRequest{PSBT: b64})
	d.approve("reject", screens.Request{Title: "Sign Bitcoin transaction", Rows: []fb.Pair{{Label: "x", Value: "y"}}}, "")
	r := answer(t, rej, "rejected psbt", 403, nil)
	keep(r)
	if !strings.Contains(string(r.body), "rejected") {
		t.Errorf("a rejection answered %s", r.body)
	}

	// No touch: the question times out ([wallet] timeout = 30 s).
	to := callWallet(t, node, host, "POST", "/sign/message", wallet.MessageRequest{Path: "skycoin/0", Message: "nobody is there"})
	r = answer(t, to, "unanswered message", 403, nil)
	keep(r)
	if !strings.Contains(string(r.body), "timed out") || r.took < 25*time.Second {
		t.Errorf("an unanswered question: %s after %v, want timed out after about 30 s", r.body, r.took)
	}

	// What the wallet measured of itself on the emulated Pi.
	var st wallet.Status
	keep(answer(t, callWallet(t, node, host, "GET", "/status", nil), "status", 200, &st))
	log := v.log()
	for _, re := range []string{`wallet: unlocked in \d+ ms`, `wallet: signed 2 inputs of a Bitcoin transaction in [\d.]+ ms`,
		`wallet: signed a Skycoin transaction of 2 inputs in [\d.]+ ms`} {
		found := regexp.MustCompile(re).FindAllString(log, -1)
		if len(found) == 0 {
			t.Errorf("the serial log lacks %q", re)
		}
		t.Logf("measured on the emulated Pi: %s", strings.Join(found, "; "))
	}
	t.Logf("the wallet process: %d KiB resident, %d KiB at most; signed %d, refused %d", st.RSSKiB, st.PeakKiB, st.Signed, st.Refused)

	// The wallet's files and the card, tried by a shell the fleet master
	// runs on the node (the mesh service's child: root without the
	// capabilities that pass file permissions).
	card := g.status.Perm.Device
	if card == "" {
		t.Fatal("/status names no device for /perm")
	}
	for _, cmd := range [][]string{{"cat", "/perm/wallet/seed.json"}, {"ls", "/perm/wallet"}, {"head", "-c", "16", card},
		{"mount", "-t", "ext4", card, "/tmp"}} {
		out, _ := g.master.cli(append([]string{"exec", "--key", g.master.keyFile, g.status.Address, "--"}, cmd...)...)
		low := strings.ToLower(out)
		if !strings.Contains(low, "permission denied") && !strings.Contains(low, "operation not permitted") {
			t.Errorf("%s on the node was not refused:\n%s", strings.Join(cmd, " "), out)
		} else {
			t.Logf("%s on the node: %s", strings.Join(cmd, " "), strings.TrimSpace(out))
		}
	}

	// Nothing secret in the console log or the answers.
	seed := bip39.Seed(walletMnemonic, "")
	needles := []string{hex.EncodeToString(seed), m.String(), "xprv"}
	words := strings.Fields(walletMnemonic)
	for i := 0; i+2 <= len(words); i++ {
		needles = append(needles, words[i]+" "+words[i+1])
	}
	for _, h := range append(answers, log) {
		for _, n := range needles {
			if strings.Contains(h, n) {
				t.Errorf("a secret (%.12s...) appears in %.200q", n, h)
			}
		}
	}
	for _, l := range append(answers, walletLines(log)...) {
		if strings.Contains(l, walletPIN) {
			t.Errorf("the PIN appears in %q", l)
		}
	}
}

// walletLines is the wallet's and the ui service's lines of the log.
func walletLines(log string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "wallet") || strings.Contains(l, "ui:") || strings.Contains(l, "approve") {
			out = append(out, l)
		}
	}
	return out
}

// skycoinRequest spends two outputs (a0's and a1's) and pays 3 SKY out,
// the rest back to change.
func skycoinRequest(t *testing.T, a0, a1, change string) (wallet.SkycoinRequest, *skycoin.Transaction) {
	ins := []wallet.SkycoinInput{
		{Source: strings.Repeat("11", 32), Address: a0, Coins: 2_000_000, Hours: 40, Path: "skycoin/0"},
		{Source: strings.Repeat("22", 32), Address: a1, Coins: 5_000_000, Hours: 60, Path: "m/44'/8000'/0'/0/0"},
	}
	dest, _ := identity.ParseAddress("2GgFvqoyk9RjwVzj8tqfcXVXB4orBwoc9qv")
	ch, err := identity.ParseAddress(change)
	if err != nil {
		t.Fatal(err)
	}
	req, tx, err := wallet.NewSkycoinRequest(ins, []skycoin.Output{{Address: dest, Coins: 3_000_000, Hours: 20}, {Address: ch, Coins: 4_000_000, Hours: 30}}, []string{"skycoin/1"})
	if err != nil {
		t.Fatal(err)
	}
	return req, tx
}
