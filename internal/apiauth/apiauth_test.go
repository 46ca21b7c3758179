package apiauth

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

type fixture struct {
	g      *Guard
	node   *secp256k1.PrivateKey
	master *secp256k1.PrivateKey
	token  string
	srv    *httptest.Server
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{node: mustKey(t), master: mustKey(t), token: strings.Repeat("ab", 32)}
	g, err := NewGuard(Config{Node: f.node.PubKey().SerializeCompressed(),
		Master: f.master.PubKey().SerializeCompressed(), Token: f.token})
	if err != nil {
		t.Fatal(err)
	}
	f.g = g
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("served")) })
	f.srv = httptest.NewServer(g.Handler([]Route{
		{Pattern: "GET /status", Access: Public, Handler: ok},
		{Pattern: "/mesh/", Handler: ok}, // Access left zero: must be Control
		{Pattern: "GET /messages", Access: Messaging, Handler: ok},
		{Pattern: "/wallet/", Access: Signed, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%x", SignerKey(r))
		})},
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func mustKey(t testing.TB) *secp256k1.PrivateKey {
	k, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// do sends method path with cred (nil: none) and returns the status code.
func (f *fixture) do(t testing.TB, method, path string, cred Credential) int {
	t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, nil)
	if cred != nil {
		if err := cred.Authorize(f.srv.Client(), req); err != nil {
			t.Fatal(err)
		}
	}
	return f.doReq(t, req)
}

func (f *fixture) doReq(t testing.TB, req *http.Request) int {
	t.Helper()
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestClasses(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct {
		name, method, path string
		cred               Credential
		want               int
	}{
		{"public, no credential", "GET", "/status", nil, 200},
		{"control, no credential", "POST", "/mesh/ping?addr=x", nil, 401},
		{"control, the token", "POST", "/mesh/ping?addr=x", Token(f.token), 200},
		{"control, a wrong token", "GET", "/mesh/graph", Token(strings.Repeat("cd", 32)), 401},
		{"control, a short token", "GET", "/mesh/graph", Token("ab"), 401},
		{"control, the master", "GET", "/mesh/graph", MasterKey{Key: f.master}, 200},
		{"control, another key", "GET", "/mesh/graph", MasterKey{Key: mustKey(t)}, 401},
		{"messaging, the token", "GET", "/messages", Token(f.token), 200},
		{"messaging, no credential (closed by default)", "GET", "/messages", nil, 401},
		{"unknown path", "GET", "/services/mesh/log", Token(f.token), 404},
	} {
		if got := f.do(t, c.method, c.path, c.cred); got != c.want {
			t.Errorf("%s: %s %s answered %d, want %d", c.name, c.method, c.path, got, c.want)
		}
	}
	st := f.g.Stats()
	if st.AdmittedByToken != 2 || st.AdmittedByMaster != 1 || st.Refused != 5 || st.Messaging != MessagingClosed {
		t.Errorf("stats %+v, want 2 by token, 1 by master, 5 refused, messaging closed", st)
	}
}

// Signed paths admit any key's signature over a fresh challenge, once, and
// tell the handler which key; a master signature, the token or no
// credential are refused there, and a host's signature opens no control
// path (its hash is under another domain).
func TestSignedHostRequests(t *testing.T) {
	f := newFixture(t)
	host := mustKey(t)
	req, _ := http.NewRequest("POST", f.srv.URL+"/wallet/sign/psbt", nil)
	if err := (HostKey{Key: host, Node: f.node.PubKey().SerializeCompressed()}).Authorize(f.srv.Client(), req); err != nil {
		t.Fatal(err)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != fmt.Sprintf("%x", host.PubKey().SerializeCompressed()) {
		t.Fatalf("a host's signed request: %d %s", resp.StatusCode, b)
	}
	replay, _ := http.NewRequest("POST", f.srv.URL+"/wallet/sign/psbt", nil)
	replay.Header = req.Header.Clone()
	if got := f.doReq(t, replay); got != 401 {
		t.Errorf("a replayed host signature: %d, want 401", got)
	}
	for _, c := range []struct {
		name, path string
		cred       Credential
	}{
		{"the master's signature on a Signed path", "/wallet/status", MasterKey{Key: f.master}},
		{"the token on a Signed path", "/wallet/status", Token(f.token)},
		{"nothing on a Signed path", "/wallet/status", nil},
	} {
		if got := f.do(t, "GET", c.path, c.cred); got != 401 {
			t.Errorf("%s: %d, want 401", c.name, got)
		}
	}
	// A host's signature presented as the master's, with the master's
	// own key: the hashes differ, so it does not verify.
	hreq, _ := http.NewRequest("GET", f.srv.URL+"/mesh/graph", nil)
	if err := (HostKey{Key: f.master}).Authorize(f.srv.Client(), hreq); err != nil {
		t.Fatal(err)
	}
	hreq.Header.Set("Authorization", Scheme+strings.TrimPrefix(hreq.Header.Get("Authorization"), HostScheme))
	if got := f.doReq(t, hreq); got != 401 {
		t.Errorf("the master key's host-scheme signature passed as a master signature: %d", got)
	}
}

func TestRefusalSaysWhatIsNeeded(t *testing.T) {
	f := newFixture(t)
	resp, err := http.Get(f.srv.URL + "/mesh/links")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if !strings.Contains(resp.Header.Get("WWW-Authenticate"), ChallengePath) {
		t.Errorf("WWW-Authenticate %q does not name the challenge path", resp.Header.Get("WWW-Authenticate"))
	}
	b := make([]byte, 1024)
	n, _ := resp.Body.Read(b)
	if !strings.Contains(string(b[:n]), TokenFile) {
		t.Errorf("refusal %q does not say where the token is", b[:n])
	}
}

// signed returns a request for method path with a fresh master signature.
func (f *fixture) signed(t testing.TB, key *secp256k1.PrivateKey, method, path string) *http.Request {
	t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, nil)
	if err := (MasterKey{Key: key}).Authorize(f.srv.Client(), req); err != nil {
		t.Fatal(err)
	}
	return req
}

func TestSignatureCoversOneRequestOnce(t *testing.T) {
	f := newFixture(t)
	req := f.signed(t, f.master, "POST", "/mesh/ping?addr=A")
	if got := f.doReq(t, req); got != 200 {
		t.Fatalf("signed request answered %d", got)
	}
	replay, _ := http.NewRequest("POST", f.srv.URL+"/mesh/ping?addr=A", nil)
	replay.Header = req.Header.Clone()
	if got := f.doReq(t, replay); got != 401 {
		t.Errorf("replayed signature answered %d, want 401", got)
	}
	// The same signature on another target, method or query is refused.
	for _, c := range []struct{ method, path string }{
		{"POST", "/mesh/ping?addr=B"}, {"GET", "/mesh/ping?addr=A"}, {"POST", "/mesh/send?addr=A"},
	} {
		fresh := f.signed(t, f.master, "POST", "/mesh/ping?addr=A")
		moved, _ := http.NewRequest(c.method, f.srv.URL+c.path, nil)
		moved.Header = fresh.Header.Clone()
		if got := f.doReq(t, moved); got != 401 {
			t.Errorf("signature for POST /mesh/ping?addr=A used on %s %s: %d, want 401", c.method, c.path, got)
		}
	}
}

func TestSignatureForAnotherNodeRefused(t *testing.T) {
	f := newFixture(t)
	other := newFixture(t)
	// The master signs a request against the other node's challenge (a relay
	// presenting it, say); this node must refuse it.
	ch := other.g.NewChallenge()
	h, err := SignRequest(f.master, ch, "GET", "/mesh/graph")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", f.srv.URL+"/mesh/graph", nil)
	req.Header.Set("Authorization", h)
	if got := f.doReq(t, req); got != 401 {
		t.Errorf("a signature over another node's challenge answered %d, want 401", got)
	}
	// And a client that knows which node it means refuses a challenge from another.
	req, _ = http.NewRequest("GET", f.srv.URL+"/mesh/graph", nil)
	err = MasterKey{Key: f.master, Node: other.node.PubKey().SerializeCompressed()}.Authorize(f.srv.Client(), req)
	if err == nil {
		t.Error("MasterKey with another node's key signed anyway")
	}
}

func TestExpiredAndForgedNonces(t *testing.T) {
	f := newFixture(t)
	ch := f.g.NewChallenge()
	// Age the challenge past its TTL by moving the Guard's epoch back.
	f.g.start = f.g.start.Add(-ChallengeTTL - time.Second)
	h, _ := SignRequest(f.master, ch, "GET", "/mesh/graph")
	req, _ := http.NewRequest("GET", f.srv.URL+"/mesh/graph", nil)
	req.Header.Set("Authorization", h)
	if got := f.doReq(t, req); got != 401 {
		t.Errorf("expired challenge answered %d, want 401", got)
	}
	// A nonce this Guard did not make (right length, any bytes) is refused even
	// with a valid master signature over it.
	var n [nonceLen]byte
	rand.Read(n[:])
	forged := Challenge{NodeKey: ch.NodeKey, Nonce: hex.EncodeToString(n[:])}
	h, _ = SignRequest(f.master, forged, "GET", "/mesh/graph")
	req, _ = http.NewRequest("GET", f.srv.URL+"/mesh/graph", nil)
	req.Header.Set("Authorization", h)
	if got := f.doReq(t, req); got != 401 {
		t.Errorf("forged nonce answered %d, want 401", got)
	}
}

func TestNoMasterConfigured(t *testing.T) {
	node, master := mustKey(t), mustKey(t)
	g, err := NewGuard(Config{Node: node.PubKey().SerializeCompressed()})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := SignRequest(master, g.NewChallenge(), "GET", "/x")
	req := httptest.NewRequest("GET", "/x", nil)
	req.Header.Set("Authorization", h)
	if err := g.Authorize(req, Control); !errors.Is(err, ErrBadCredential) {
		t.Errorf("signature with no master configured: %v, want ErrBadCredential", err)
	}
	req.Header.Set("Authorization", "Bearer "+strings.Repeat("00", 32))
	if err := g.Authorize(req, Control); !errors.Is(err, ErrBadCredential) {
		t.Errorf("a token with none configured: %v, want ErrBadCredential", err)
	}
}

func TestUsedNoncesCapped(t *testing.T) {
	f := newFixture(t)
	sign := func() *http.Request {
		h, _ := SignRequest(f.master, f.g.NewChallenge(), "GET", "/x")
		req := httptest.NewRequest("GET", "/x", nil)
		req.Header.Set("Authorization", h)
		return req
	}
	for i := range MaxUsedNonces {
		if err := f.g.Authorize(sign(), Control); err != nil {
			t.Fatalf("signed request %d: %v", i, err)
		}
	}
	if err := f.g.Authorize(sign(), Control); !errors.Is(err, ErrBusy) {
		t.Fatalf("request over the cap: %v, want ErrBusy", err)
	}
	// Once the spent nonces are older than the TTL they make room again.
	f.g.start = f.g.start.Add(-ChallengeTTL - time.Second)
	if err := f.g.Authorize(sign(), Control); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if n := len(f.g.used); n != 1 {
		t.Errorf("%d spent nonces kept after expiry, want 1", n)
	}
}

func TestChallengesCostNoState(t *testing.T) {
	f := newFixture(t)
	for range 10000 {
		if got := f.g.NewChallenge(); len(got.Nonce) != 2*nonceLen {
			t.Fatalf("nonce %q", got.Nonce)
		}
	}
	if len(f.g.used) != 0 {
		t.Errorf("challenges left %d entries behind", len(f.g.used))
	}
}

func TestLoadOrCreateToken(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	toks := make([]string, 8)
	for i := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := LoadOrCreateToken(dir)
			if err != nil {
				t.Error(err)
			}
			toks[i] = tok
		}()
	}
	wg.Wait()
	for _, tok := range toks[1:] {
		if tok != toks[0] || len(tok) != 64 {
			t.Fatalf("concurrent starts got different tokens: %q", toks)
		}
	}
	st, err := os.Stat(filepath.Join(dir, TokenFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v (%v), want 0600", st.Mode().Perm(), err)
	}
	os.Chmod(filepath.Join(dir, TokenFile), 0o644)
	if tok, err := LoadOrCreateToken(dir); err != nil || tok != toks[0] {
		t.Fatalf("reload: %q %v", tok, err)
	}
	if st, _ := os.Stat(filepath.Join(dir, TokenFile)); st.Mode().Perm() != 0o600 {
		t.Errorf("a world-readable token file was left %v", st.Mode().Perm())
	}
	secret := "not-a-token-but-secret-text"
	os.WriteFile(filepath.Join(dir, TokenFile), []byte(secret), 0o600)
	_, err = LoadOrCreateToken(dir)
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("corrupt token file: %v (must fail without echoing the content)", err)
	}
}

// FuzzAuthorize: no Authorization header a stranger can write admits a Control
// request or panics the Guard.
func FuzzAuthorize(f *testing.F) {
	fx := newFixture(f)
	good, _ := SignRequest(fx.master, fx.g.NewChallenge(), "GET", "/mesh/graph")
	for _, s := range []string{"", "Bearer", "Bearer ", "Bearer " + strings.Repeat("ab", 31),
		Scheme, Scheme + " .", Scheme + " " + strings.Repeat("0", 48) + "." + strings.Repeat("0", 130),
		good[:len(good)-2] + "00", "Basic dXNlcjpwYXNz", "bearer\x00" + fx.token[:10]} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		if strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(h, "Bearer"), "bearer")) == fx.token {
			return // the real token, spelt some way: admitted by design
		}
		req := httptest.NewRequest("GET", "/mesh/graph", nil)
		req.Header["Authorization"] = []string{h}
		if err := fx.g.Authorize(req, Control); err == nil {
			t.Fatalf("Authorization %q admitted", h)
		}
	})
}

// A stranger's path cannot write a line of its own into the node's log.
func TestRefusalLogCannotBeForged(t *testing.T) {
	node := mustKey(t)
	var lines []string
	g, err := NewGuard(Config{Node: node.PubKey().SerializeCompressed(), Logf: func(f string, a ...any) {
		lines = append(lines, fmt.Sprintf(f, a...))
	}})
	if err != nil {
		t.Fatal(err)
	}
	h := g.Handler([]Route{{Pattern: "/mesh/", Handler: http.NotFoundHandler()}})
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/mesh/x%0A12:00:00%20api:%20admitted%20master", nil))
	if len(lines) != 1 || strings.Contains(lines[0], "\n") {
		t.Errorf("refusal logged as %q", lines)
	}
}
