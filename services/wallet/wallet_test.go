package wallet

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/wire"

	"github.com/skyfleet/skyfleet/wallet/bip32"
	"github.com/skyfleet/skyfleet/wallet/bip39"
	"github.com/skyfleet/skyfleet/wallet/bitcoin/bitcointest"
	"github.com/skyfleet/skyfleet/wallet/keystore"
)

// The BIP84/BIP86 test vectors' mnemonic (BIP84 §Test vectors, BIP86 §Test
// vectors): its first addresses are published there.
const vectorMnemonic = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"

const (
	bip84First = "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu" // BIP84: m/84'/0'/0'/0/0
	bip86First = "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr"
	hostKey    = "02" + "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798" // G: a valid key
	pin        = "246810"
)

// person is a scripted person at the screen: it answers each question as
// its fields say, and keeps what it was shown.
type person struct {
	mu     sync.Mutex
	asked  []Question
	seen   []string // the words shown, in order
	pin    string
	words  []string // what it types for KindWord, in order
	typed  int
	reject func(q Question) bool // rejects the questions it returns true for
	wrong  bool                  // picks a wrong choice
	hold   chan struct{}         // when set, each question waits for it
}

func (p *person) Ask(ctx context.Context, q Question) (Reply, error) {
	p.mu.Lock()
	p.asked = append(p.asked, q)
	hold := p.hold
	p.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return Reply{}, ctx.Err()
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reject != nil && p.reject(q) {
		return Reply{Reason: "rejected"}, nil
	}
	switch q.Kind {
	case KindChoose:
		var n int
		fmt.Sscanf(q.Title, "Which is word %d?", &n)
		for i, c := range q.Choices {
			if (c == p.seen[n-1]) != p.wrong {
				return Reply{Approved: true, Choice: i}, nil
			}
		}
		return Reply{Reason: "no such word"}, nil
	case KindWord:
		w := p.words[p.typed]
		p.typed++
		return Reply{Approved: true, Text: []byte(w)}, nil
	}
	if strings.HasPrefix(q.Title, "Word ") {
		for _, r := range q.Rows {
			p.seen = append(p.seen, r.Value)
		}
	}
	r := Reply{Approved: true}
	if q.PIN {
		r.PIN = []byte(p.pin)
	}
	return r, nil
}

func (p *person) questions() []Question {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Question(nil), p.asked...)
}

// fixture is a wallet service over a temporary directory, with a log kept
// for the secrets scan and every API answer kept likewise.
type fixture struct {
	t      testing.TB
	s      *Service
	h      http.Handler
	p      *person
	mu     sync.Mutex
	logs   []string
	bodies []string
	now    time.Time
}

func newFixture(t testing.TB, max int) *fixture {
	t.Helper()
	f := &fixture{t: t, p: &person{pin: pin}, now: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)}
	s, err := New(Config{Dir: t.TempDir(), MaxAttempts: max, Params: keystore.Params{Time: 1, Memory: 64, Threads: 1},
		Now: f.clock, Logf: func(format string, a ...any) {
			f.mu.Lock()
			f.logs = append(f.logs, fmt.Sprintf(format, a...))
			f.mu.Unlock()
		}}, f.p)
	if err != nil {
		t.Fatal(err)
	}
	f.s, f.h = s, s.Handler()
	return f
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

// call makes one API request as host (no host header when "") and decodes
// the answer into out (when not nil); it returns the status code.
func (f *fixture) call(method, path, host string, body any, out any) (int, string) {
	f.t.Helper()
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	req := httptest.NewRequest(method, path, bytes.NewReader(b))
	if host != "" {
		req.Header.Set(HostHeader, host)
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, req)
	f.mu.Lock()
	f.bodies = append(f.bodies, w.Body.String())
	f.mu.Unlock()
	if out != nil && w.Code == 200 {
		if err := json.Unmarshal(w.Body.Bytes(), out); err != nil {
			f.t.Fatalf("%s %s: %v: %s", method, path, err, w.Body)
		}
	}
	return w.Code, w.Body.String()
}

// pair pairs hostKey.
func (f *fixture) pair() {
	f.t.Helper()
	if code, body := f.call("POST", "/pair", hostKey, PairRequest{Name: "test laptop"}, nil); code != 200 {
		f.t.Fatalf("pair: %d %s", code, body)
	}
}

// restore sets up the wallet from mnemonic typed on the screen.
func (f *fixture) restore(mnemonic string) {
	f.t.Helper()
	f.p.words = strings.Fields(mnemonic)
	if code, body := f.call("POST", "/setup", hostKey, SetupRequest{Words: len(f.p.words), Restore: true}, nil); code != 200 {
		f.t.Fatalf("restore: %d %s", code, body)
	}
}

// A new seed: the words are shown one at a time, three asked back, the
// PIN typed twice; the seed kept opens with that PIN to the accounts that
// the words shown make, derived apart from the service.
func TestSetupNewSeed(t *testing.T) {
	f := newFixture(t, 0)
	if code, _ := f.call("POST", "/setup", hostKey, SetupRequest{Words: 12}, nil); code != 401 {
		t.Fatalf("setup from an unpaired host: %d, want 401", code)
	}
	f.pair()
	if code, body := f.call("POST", "/setup", hostKey, SetupRequest{Words: 12}, nil); code != 200 {
		t.Fatalf("setup: %d %s", code, body)
	}
	if len(f.p.seen) != 12 {
		t.Fatalf("%d words shown, want 12", len(f.p.seen))
	}
	mnemonic := strings.Join(f.p.seen, " ")
	if _, err := bip39.EntropyFromMnemonic(mnemonic); err != nil {
		t.Fatalf("the words shown are not a BIP39 mnemonic: %v", err)
	}
	var kinds []string
	for _, q := range f.p.questions() {
		kinds = append(kinds, q.Kind+":"+q.Title)
	}
	want := []string{":Pair with a computer?", ":Make a new wallet"}
	for i := range 12 {
		want = append(want, fmt.Sprintf(":Word %d of 12", i+1)) // one word a screen
	}
	want = append(want, "choose:Which is word", "choose:Which is word", "choose:Which is word", ":Choose a PIN", ":Repeat the PIN")
	if len(kinds) != len(want) {
		t.Fatalf("questions %q", kinds)
	}
	for i := range want {
		if !strings.HasPrefix(kinds[i], want[i]) {
			t.Errorf("question %d is %q, want %q", i, kinds[i], want[i])
		}
	}
	var acc AccountsAnswer
	if code, body := f.call("GET", "/accounts", hostKey, nil, &acc); code != 200 {
		t.Fatalf("accounts: %d %s", code, body)
	}
	m, _ := bip32.NewMaster(bip39.Seed(mnemonic, ""))
	k, _ := m.Derive("m/84'/0'/0'")
	if acc.Accounts[2].XPub != k.Neuter().String() {
		t.Errorf("the BIP84 account's xpub %s differs from the one the shown words make", acc.Accounts[2].XPub)
	}
	if code, _ := f.call("POST", "/setup", hostKey, SetupRequest{Words: 12}, nil); code != 409 {
		t.Errorf("a second setup: %d, want 409 (a seed exists)", code)
	}
	f.scanForSecrets(mnemonic)
}

// The first addresses of BIP84's and BIP86's published vectors, from the
// vectors' mnemonic restored on the screen's keyboard.
func TestRestoreMatchesBIPVectors(t *testing.T) {
	f := newFixture(t, 0)
	f.pair()
	f.restore(vectorMnemonic)
	var acc AccountsAnswer
	if code, body := f.call("GET", "/accounts", hostKey, nil, &acc); code != 200 {
		t.Fatalf("accounts: %d %s", code, body)
	}
	got := map[Scheme]string{}
	for _, a := range acc.Accounts {
		got[a.Scheme] = a.First
	}
	if got[BitcoinBIP84] != bip84First || got[BitcoinBIP86] != bip86First {
		t.Errorf("first addresses %v, want BIP84's %s and BIP86's %s", got, bip84First, bip86First)
	}
	// BIP84's xpub of account 0.
	for _, a := range acc.Accounts {
		if a.Scheme == BitcoinBIP84 && a.XPub != "xpub6CatWdiZiodmUeTDp8LT5or8nmbKNcuyvz7WyksVFkKB4RHwCD3XyuvPEbvqAQY3rAPshWcMLoP2fMFMKHPJ4ZeZXYVUhLv1VMrjPC7PW6V" {
			t.Errorf("BIP84 account xpub %s", a.XPub)
		}
	}
	var addr AddressAnswer
	if code, body := f.call("POST", "/address", hostKey, AddressRequest{Path: "m/84'/0'/0'/0/1", Show: true}, &addr); code != 200 {
		t.Fatalf("address: %d %s", code, body)
	}
	if addr.Address != "bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g" || !addr.Confirmed {
		t.Errorf("m/84'/0'/0'/0/1 = %+v, want BIP84's second address, confirmed", addr)
	}
	qs := f.p.questions()
	if last := qs[len(qs)-1]; last.Title != "Check the address" || last.Rows[0].Value != addr.Address {
		t.Errorf("the screen showed %+v", last)
	}
	f.p.mu.Lock()
	f.p.reject = func(q Question) bool { return q.Title == "Check the address" }
	f.p.mu.Unlock()
	if code, _ := f.call("POST", "/address", hostKey, AddressRequest{Path: "m/84'/0'/0'/0/1", Show: true}, nil); code != 403 {
		t.Errorf("an address the person said differs: %d, want 403", code)
	}
	for _, bad := range []string{"m/84'/0'/0'/2/0", "m/44'/0'/0'/0/0", "m/84'/0'/0/0/0", "skycoin/1000", "skycoin/01", "m/84'/0'/0'/0/100000"} {
		if code, _ := f.call("POST", "/address", hostKey, AddressRequest{Path: bad}, nil); code != 400 {
			t.Errorf("path %q: %d, want 400", bad, code)
		}
	}
	f.scanForSecrets(vectorMnemonic)
}

// A PSBT with a P2WPKH and a P2TR input and a change output, signed
// through the API after the PIN and Approve: the finalised transaction
// passes btcd's script engine, and the screen showed the amounts, the
// change and the fee.
func TestSignPSBT(t *testing.T) {
	f := newFixture(t, 0)
	f.pair()
	f.restore(vectorMnemonic)
	f.s.Lock()
	m, _ := bip32.NewMaster(bip39.Seed(vectorMnemonic, ""))
	p, prev, err := bitcointest.Spend(m)
	if err != nil {
		t.Fatal(err)
	}
	b64, _ := p.B64Encode()
	var out PSBTAnswer
	if code, body := f.call("POST", "/sign/psbt", hostKey, PSBTRequest{PSBT: b64}, &out); code != 200 {
		t.Fatalf("sign: %d %s", code, body)
	}
	if out.Signed != 2 || out.Tx == "" {
		t.Fatalf("answer %+v", out)
	}
	raw, _ := hex.DecodeString(out.Tx)
	var tx wire.MsgTx
	if err := tx.Deserialize(bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	if err := bitcointest.VerifyTx(&tx, prev); err != nil {
		t.Error(err)
	}
	qs := f.p.questions()
	unlock, approve := qs[len(qs)-2], qs[len(qs)-1]
	if !unlock.PIN || unlock.Title != "Unlock the wallet" || approve.PIN {
		t.Errorf("the locked wallet asked %q (PIN %v) then %q (PIN %v)", unlock.Title, unlock.PIN, approve.Title, approve.PIN)
	}
	shown := fmt.Sprint(approve.Rows, approve.Warnings)
	for _, want := range []string{"0.00070000 BTC to " + bitcointest.Destination, "Change 0.00028000 BTC back to", "m/84'/0'/0'/1/0",
		"Fee 0.00002000 BTC (2.86% of what is sent)", "mixed inputs"} {
		if !strings.Contains(shown, want) {
			t.Errorf("the approval screen lacks %q: %s", want, shown)
		}
	}
	// The signed PSBT answered is the request's with the signatures.
	sp, err := psbt.NewFromRawBytes(strings.NewReader(out.PSBT), true)
	if err != nil || len(sp.Inputs[0].PartialSigs) != 1 || len(sp.Inputs[1].TaprootKeySpendSig) != 64 {
		t.Errorf("the signed PSBT: %v", err)
	}
	// Unlocked now: the next asks Approve only, and a rejection is 403.
	f.p.mu.Lock()
	f.p.reject = func(q Question) bool { return q.Title == "Sign Bitcoin transaction" }
	f.p.mu.Unlock()
	n := len(f.p.questions())
	if code, _ := f.call("POST", "/sign/psbt", hostKey, PSBTRequest{PSBT: b64}, nil); code != 403 {
		t.Errorf("a rejected PSBT: %d, want 403", code)
	}
	if qs := f.p.questions()[n:]; len(qs) != 1 || qs[0].PIN {
		t.Errorf("an unlocked wallet asked %d questions (the first with PIN %v), want Approve alone", len(qs), qs[0].PIN)
	}
	if st := f.s.Status(); st.Signed != 1 || st.Refused != 1 || st.State != Unlocked {
		t.Errorf("status %+v", st)
	}
	// A malformed PSBT is refused with its reason, before any screen.
	n = len(f.p.questions())
	if code, body := f.call("POST", "/sign/psbt", hostKey, PSBTRequest{PSBT: "cHNidP8BAAoCAAAAAAAAAAAAAA=="}, nil); code != 400 || !strings.Contains(body, "PSBT") {
		t.Errorf("a malformed PSBT: %d %s", code, body)
	}
	if len(f.p.questions()) != n {
		t.Error("a malformed PSBT reached the screen")
	}
	f.scanForSecrets(vectorMnemonic)
}

// Wrong PINs through the API: each answered 423 with the attempts left,
// and the last erases the seed.
func TestWrongPINsErase(t *testing.T) {
	f := newFixture(t, 3)
	f.pair()
	f.restore(vectorMnemonic)
	f.p.mu.Lock()
	f.p.pin = "1111"
	f.p.mu.Unlock()
	for i := 1; i <= 3; i++ {
		code, body := f.call("POST", "/unlock", hostKey, UnlockRequest{}, nil)
		if code != 423 {
			t.Fatalf("wrong PIN %d: %d %s", i, code, body)
		}
		if i < 3 && !strings.Contains(body, fmt.Sprintf("%d attempts left", 3-i)) {
			t.Errorf("wrong PIN %d: %s", i, body)
		}
		if i == 3 && !strings.Contains(body, "erased") {
			t.Errorf("the last wrong PIN: %s", body)
		}
		f.advance(time.Hour) // past the delay
	}
	if st := f.s.Status(); st.State != NoSeed {
		t.Errorf("after 3 wrong PINs with max 3: %+v", st)
	}
	// The right PIN now finds nothing.
	f.p.mu.Lock()
	f.p.pin = pin
	f.p.mu.Unlock()
	if code, _ := f.call("POST", "/unlock", hostKey, UnlockRequest{}, nil); code != 412 {
		t.Errorf("unlock after the wipe: %d, want 412", code)
	}
}

// One request at a time: a second, while the first is on the screen, is
// answered 409 at once; a host that goes away withdraws its question.
func TestOneAtATime(t *testing.T) {
	f := newFixture(t, 0)
	f.pair()
	f.restore(vectorMnemonic)
	hold := make(chan struct{})
	f.p.mu.Lock()
	f.p.hold = hold
	f.p.mu.Unlock()
	n := len(f.p.questions())
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan int)
	go func() {
		req := httptest.NewRequest("POST", "/unlock", strings.NewReader("{}")).WithContext(ctx)
		req.Header.Set(HostHeader, hostKey)
		w := httptest.NewRecorder()
		f.h.ServeHTTP(w, req)
		first <- w.Code
	}()
	// Wait for the first question to reach the screen.
	for deadline := time.Now().Add(10 * time.Second); len(f.p.questions()) <= n; {
		if time.Now().After(deadline) {
			t.Fatal("the first request never reached the screen")
		}
		time.Sleep(time.Millisecond)
	}
	if code, body := f.call("POST", "/lock", hostKey, nil, nil); code != 409 || !strings.Contains(body, "another request") {
		t.Errorf("a request while the screen is busy: %d %s", code, body)
	}
	cancel()
	if code := <-first; code == 200 {
		t.Error("a withdrawn request succeeded")
	}
	f.p.mu.Lock()
	f.p.hold = nil
	f.p.mu.Unlock()
	if code, _ := f.call("POST", "/lock", hostKey, nil, nil); code != 200 {
		t.Errorf("after the first ended: %d", code)
	}
}

// Setups that end without a seed: a wrong word picked, the PINs differ,
// typed words with a bad checksum, cancelled.
func TestSetupFailures(t *testing.T) {
	f := newFixture(t, 0)
	f.pair()
	f.p.wrong = true
	if code, body := f.call("POST", "/setup", hostKey, SetupRequest{Words: 12}, nil); code != 400 || !strings.Contains(body, "was not word") {
		t.Errorf("a wrong confirmation: %d %s", code, body)
	}
	f.p.wrong, f.p.seen = false, nil
	f.p.words = strings.Fields(strings.Repeat("abandon ", 12))
	if code, body := f.call("POST", "/setup", hostKey, SetupRequest{Words: 12, Restore: true}, nil); code != 400 || !strings.Contains(body, "not a seed") {
		t.Errorf("words with a bad checksum: %d %s", code, body)
	}
	var n int
	f.p.seen, f.p.typed = nil, 0
	f.p.reject = func(q Question) bool {
		if q.Title == "Repeat the PIN" {
			n++
			return true
		}
		return false
	}
	if code, _ := f.call("POST", "/setup", hostKey, SetupRequest{Words: 24}, nil); code != 403 || n != 1 {
		t.Errorf("a cancelled PIN: %d (asked %d)", code, n)
	}
	if f.s.store.Exists() {
		t.Error("a failed setup kept a seed")
	}
	if code, _ := f.call("POST", "/setup", hostKey, SetupRequest{Words: 15}, nil); code != 400 {
		t.Errorf("15 words: %d, want 400", code)
	}
}

// Pairing needs a signed host key and the person's Pair; the code shown
// is the one the host computes; a refused or unsigned pairing pairs
// nothing.
func TestPairing(t *testing.T) {
	f := newFixture(t, 0)
	if code, _ := f.call("POST", "/pair", "", PairRequest{Name: "x"}, nil); code != 401 {
		t.Errorf("pairing without a host key: %d", code)
	}
	f.p.reject = func(q Question) bool { return true }
	if code, _ := f.call("POST", "/pair", hostKey, PairRequest{Name: "laptop"}, nil); code != 403 {
		t.Errorf("a refused pairing: %d", code)
	}
	if q := f.p.questions(); q[len(q)-1].Timeout != PairTimeout {
		t.Errorf("a pairing question waits %v, want %v", q[len(q)-1].Timeout, PairTimeout)
	}
	// A stranger asking again at once is refused without a screen.
	n := len(f.p.questions())
	if code, body := f.call("POST", "/pair", hostKey, PairRequest{Name: "laptop"}, nil); code != 429 || len(f.p.questions()) != n {
		t.Errorf("a pairing right after a refused one: %d %s", code, body)
	}
	f.advance(PairCooldown)
	if code, _ := f.call("GET", "/accounts", hostKey, nil, nil); code != 401 {
		t.Errorf("after a refused pairing: %d", code)
	}
	f.p.reject = nil
	for _, bad := range []string{"", "evil\u202eexe", strings.Repeat("x", 33), "a\nb"} {
		if code, _ := f.call("POST", "/pair", hostKey, PairRequest{Name: bad}, nil); code != 400 {
			t.Errorf("name %q: %d, want 400", bad, code)
		}
	}
	var a PairAnswer
	f.call("POST", "/pair", hostKey, PairRequest{Name: "laptop"}, &a)
	key, _ := hex.DecodeString(hostKey)
	if !a.Paired || a.Code != PairCode(key) || !regexp.MustCompile(`^[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}$`).MatchString(a.Code) {
		t.Errorf("pair answer %+v", a)
	}
	qs := f.p.questions()
	if shown := fmt.Sprint(qs[len(qs)-1].Rows); !strings.Contains(shown, a.Code) || !strings.Contains(shown, "laptop") {
		t.Errorf("the screen showed %s", shown)
	}
	// The pairing survives a restart; unpair forgets it.
	s2, err := New(f.s.cfg, f.p)
	if err != nil || !s2.hosts.paired(hostKey) {
		t.Fatalf("after a restart: paired %v, %v", s2.hosts.paired(hostKey), err)
	}
	if code, _ := f.call("POST", "/unpair", hostKey, nil, nil); code != 200 {
		t.Error("unpair")
	}
	// Once unpaired, the host learns not even the state; a service on
	// the node (no host named) still does.
	if code, _ := f.call("GET", "/status", hostKey, nil, nil); code != 401 {
		t.Errorf("status from an unpaired host: %d, want 401", code)
	}
	if code, _ := f.call("GET", "/status", "", nil, nil); code != 200 {
		t.Errorf("status from the node's own services: %d", code)
	}
	if code, _ := f.call("POST", "/lock", hostKey, nil, nil); code != 401 {
		t.Errorf("after unpair: %d", code)
	}
}

// scanForSecrets fails the test when a log line or an API answer holds
// a secret (secretsIn).
func (f *fixture) scanForSecrets(mnemonic string) {
	f.t.Helper()
	f.mu.Lock()
	hay := append(append([]string(nil), f.logs...), f.bodies...)
	f.mu.Unlock()
	if len(hay) < 3 {
		f.t.Fatalf("only %d lines to scan", len(hay))
	}
	for _, found := range secretsIn(hay, mnemonic) {
		f.t.Error(found)
	}
}

// secretsIn returns a line for each text of hay that holds the mnemonic
// (or any run of three of its words in order), the PIN, the BIP39 seed, the
// master key (xprv) or a private key of the wallet in hex.
func secretsIn(hay []string, mnemonic string) []string {
	words := strings.Fields(mnemonic)
	seed := bip39.Seed(mnemonic, "")
	m, _ := bip32.NewMaster(seed)
	needles := []string{hex.EncodeToString(seed), m.String(), "xprv", "\"" + pin + "\"", " " + pin}
	for i := 0; i+3 <= len(words); i++ {
		run := strings.Join(words[i:i+3], " ")
		if run != "abandon abandon abandon" { // the vectors' mnemonic repeats one word
			needles = append(needles, run)
		}
	}
	for _, path := range []string{"m/84'/0'/0'/0/0", "m/86'/0'/0'/0/0", "m/44'/8000'/0'/0/0"} {
		k, _ := m.Derive(path)
		needles = append(needles, hex.EncodeToString(k.PrivateKey().Serialize()))
	}
	var out []string
	for _, h := range hay {
		for _, n := range needles {
			if strings.Contains(h, n) {
				out = append(out, fmt.Sprintf("a secret (%.12s...) appears in %q", n, h))
			}
		}
	}
	return out
}

// The scan finds what it looks for: a test of the test.
func TestSecretsScanFinds(t *testing.T) {
	m, _ := bip32.NewMaster(bip39.Seed(vectorMnemonic, ""))
	k, _ := m.Derive("m/86'/0'/0'/0/0")
	planted := []string{"restored: abandon abandon about", `{"pin":"` + pin + `"}`, m.String(),
		"key " + hex.EncodeToString(k.PrivateKey().Serialize())}
	clean := []string{"wallet: unlocked", `{"address":"` + bip84First + `"}`}
	if got := secretsIn(append(planted, clean...), vectorMnemonic); len(got) != len(planted)+1 { // the xprv is found twice
		t.Errorf("found %d secrets in %d planted lines: %q", len(got), len(planted), got)
	}
}
