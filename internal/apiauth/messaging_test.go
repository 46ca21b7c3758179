package apiauth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const testPass = "correct horse battery"

// msgFixture is a Guard with the messaging routes the node serves, called
// in-process so that each request can name its own source address and Host.
type msgFixture struct {
	g     *Guard
	h     http.Handler
	token string
	clock time.Time
}

func newMsgFixture(t *testing.T, mc MessagingConfig) *msgFixture {
	t.Helper()
	node, master := mustKey(t), mustKey(t)
	f := &msgFixture{token: strings.Repeat("ab", 32), clock: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	g, err := NewGuard(Config{Node: node.PubKey().SerializeCompressed(),
		Master: master.PubKey().SerializeCompressed(), Token: f.token, Messaging: mc})
	if err != nil {
		t.Fatal(err)
	}
	g.msg.now = func() time.Time { return f.clock }
	f.g = g
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("served")) })
	f.h = g.Handler([]Route{
		{Pattern: "GET /msg/{$}", Access: Public, Handler: ok},
		{Pattern: "POST " + LoginPath, Access: Public, Handler: g.Login()},
		{Pattern: "POST " + LogoutPath, Access: Public, Handler: g.Logout()},
		{Pattern: "GET /msg/inbox", Access: Messaging, Handler: ok},
		{Pattern: "POST /msg/send", Access: Messaging, Handler: ok},
		{Pattern: "/msg/", Handler: ok},
		{Pattern: "/mesh/", Handler: ok},
	})
	return f
}

// req is one request as a phone's browser on the kit's network sends it: from
// 192.0.2.7, to the node by its IP address, same-origin, JSON for a POST.
type req struct {
	method, path, body string
	cookie             string
	from               string            // source address, default 192.0.2.7:40000
	header             map[string]string // extra or replaced headers ("": removed)
}

func (f *msgFixture) do(t *testing.T, q req) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(q.method, "http://10.0.0.1"+q.path, strings.NewReader(q.body))
	r.RemoteAddr = "192.0.2.7:40000"
	if q.from != "" {
		r.RemoteAddr = q.from
	}
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	if q.method == "POST" {
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Origin", "http://10.0.0.1")
	}
	if q.cookie != "" {
		r.AddCookie(&http.Cookie{Name: SessionCookie, Value: q.cookie})
	}
	for k, v := range q.header {
		if k == "Host" {
			r.Host = v
		} else if v == "" {
			r.Header.Del(k)
		} else {
			r.Header.Set(k, v)
		}
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w
}

// login posts pass and returns the response and the session cookie's value.
func (f *msgFixture) login(t *testing.T, pass, from string) (*httptest.ResponseRecorder, string) {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"passphrase": pass})
	w := f.do(t, req{method: "POST", path: LoginPath, body: string(b), from: from})
	for _, c := range w.Result().Cookies() {
		if c.Name == SessionCookie {
			return w, c.Value
		}
	}
	return w, ""
}

func mode(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	var body map[string]string
	json.Unmarshal(w.Body.Bytes(), &body)
	return body["messaging"]
}

func TestMessagingSession(t *testing.T) {
	f := newMsgFixture(t, MessagingConfig{Passphrase: testPass})
	if w := f.do(t, req{method: "GET", path: "/msg/inbox"}); w.Code != 401 || mode(t, w) != MessagingPassphrase {
		t.Fatalf("inbox without a session: %d %s, want 401 naming the passphrase mode", w.Code, w.Body)
	}
	if w := f.do(t, req{method: "GET", path: "/msg/"}); w.Code != 200 {
		t.Errorf("the page: %d, want public", w.Code)
	}
	w, tok := f.login(t, "wrong horse battery", "")
	if w.Code != 401 || tok != "" || strings.Contains(w.Body.String(), "wrong horse") {
		t.Fatalf("wrong passphrase: %d cookie %q body %s", w.Code, tok, w.Body)
	}
	w, tok = f.login(t, testPass, "")
	if w.Code != 200 || tok == "" {
		t.Fatalf("login: %d %s", w.Code, w.Body)
	}
	if raw, err := base64.RawURLEncoding.DecodeString(tok); err != nil || len(raw) != 32 {
		t.Errorf("session token %q is not 32 bytes of base64url", tok)
	}
	c := w.Result().Cookies()[0]
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/msg/" || c.MaxAge != int(SessionTTL/time.Second) {
		t.Errorf("cookie %+v: want HttpOnly, SameSite=Strict, Path /msg/, Max-Age 12 h", c)
	}
	if strings.Contains(w.Body.String(), testPass) || strings.Contains(w.Body.String(), tok) {
		t.Errorf("login answer %s shows a secret", w.Body)
	}

	for _, c := range []struct {
		name string
		q    req
		want int
	}{
		{"inbox with the session", req{method: "GET", path: "/msg/inbox", cookie: tok}, 200},
		{"send with the session", req{method: "POST", path: "/msg/send", body: "{}", cookie: tok}, 200},
		{"a control path with the session", req{method: "GET", path: "/mesh/graph", cookie: tok}, 401},
		{"another /msg/ path with the session", req{method: "GET", path: "/msg/other", cookie: tok}, 401},
		{"send as a form", req{method: "POST", path: "/msg/send", body: "to=x", cookie: tok,
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, 415},
		{"send as text/plain", req{method: "POST", path: "/msg/send", body: "{}", cookie: tok,
			header: map[string]string{"Content-Type": "text/plain"}}, 415},
		{"send without a type", req{method: "POST", path: "/msg/send", body: "{}", cookie: tok,
			header: map[string]string{"Content-Type": ""}}, 415},
		{"send from another origin", req{method: "POST", path: "/msg/send", body: "{}", cookie: tok,
			header: map[string]string{"Origin": "http://evil.example"}}, 403},
		{"send from another port", req{method: "POST", path: "/msg/send", body: "{}", cookie: tok,
			header: map[string]string{"Origin": "http://10.0.0.1:8080"}}, 403},
		{"send with Origin null", req{method: "POST", path: "/msg/send", body: "{}", cookie: tok,
			header: map[string]string{"Origin": "null"}}, 403},
		{"send cross-site", req{method: "POST", path: "/msg/send", body: "{}", cookie: tok,
			header: map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": ""}}, 403},
		{"send same-site", req{method: "POST", path: "/msg/send", body: "{}", cookie: tok,
			header: map[string]string{"Sec-Fetch-Site": "same-site", "Origin": ""}}, 403},
		{"send by an old browser (no Origin, no Sec-Fetch-Site)", req{method: "POST", path: "/msg/send", body: "{}", cookie: tok,
			header: map[string]string{"Sec-Fetch-Site": "", "Origin": ""}}, 200},
		{"inbox typed in the address bar", req{method: "GET", path: "/msg/inbox", cookie: tok,
			header: map[string]string{"Sec-Fetch-Site": "none"}}, 200},
		{"inbox through a rebound DNS name", req{method: "GET", path: "/msg/inbox", cookie: tok,
			header: map[string]string{"Host": "node.evil.example"}}, 403},
		{"a wrong session", req{method: "GET", path: "/msg/inbox", cookie: base64.RawURLEncoding.EncodeToString(make([]byte, 32))}, 401},
		{"a malformed session", req{method: "GET", path: "/msg/inbox", cookie: tok + "x"}, 401},
		{"inbox with the token", req{method: "GET", path: "/msg/inbox", header: map[string]string{"Authorization": "Bearer " + f.token}}, 200},
		{"inbox with a wrong token and the session", req{method: "GET", path: "/msg/inbox", cookie: tok,
			header: map[string]string{"Authorization": "Bearer " + strings.Repeat("cd", 32)}}, 401},
	} {
		if w := f.do(t, c.q); w.Code != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, w.Code, strings.TrimSpace(w.Body.String()), c.want)
		}
	}
	// The CLI's POST (a token, octet-stream, no Origin) needs no browser rules.
	r := httptest.NewRequest("POST", "http://node.example/msg/send", strings.NewReader("{}"))
	r.Header.Set("Content-Type", "application/octet-stream")
	r.Header.Set("Authorization", "Bearer "+f.token)
	w = httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Errorf("send with the token from the CLI: %d %s", w.Code, w.Body)
	}

	// The session expires after SessionTTL, and is forgotten then.
	f.clock = f.clock.Add(SessionTTL - time.Second)
	if w := f.do(t, req{method: "GET", path: "/msg/inbox", cookie: tok}); w.Code != 200 {
		t.Errorf("session just before its expiry: %d", w.Code)
	}
	f.clock = f.clock.Add(time.Second)
	if w := f.do(t, req{method: "GET", path: "/msg/inbox", cookie: tok}); w.Code != 401 || !strings.Contains(w.Body.String(), "expired") {
		t.Errorf("expired session: %d %s, want 401", w.Code, w.Body)
	}
	if n := f.g.Stats().Sessions; n != 0 {
		t.Errorf("%d sessions kept after expiry", n)
	}

	// Logging out ends the session on the node, not only in the browser.
	_, tok = f.login(t, testPass, "")
	if w := f.do(t, req{method: "POST", path: LogoutPath, cookie: tok}); w.Code != 200 {
		t.Fatalf("logout: %d %s", w.Code, w.Body)
	}
	if w := f.do(t, req{method: "GET", path: "/msg/inbox", cookie: tok}); w.Code != 401 {
		t.Errorf("session after logout: %d, want 401", w.Code)
	}
	st := f.g.Stats()
	if st.Messaging != MessagingPassphrase || st.LoginsRefused != 1 || st.AdmittedMessaging == 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestMessagingOpen(t *testing.T) {
	f := newMsgFixture(t, MessagingConfig{Open: true})
	for _, c := range []struct {
		name string
		q    req
		want int
	}{
		{"inbox", req{method: "GET", path: "/msg/inbox"}, 200},
		{"send", req{method: "POST", path: "/msg/send", body: "{}"}, 200},
		{"send cross-site", req{method: "POST", path: "/msg/send", body: "{}", header: map[string]string{"Origin": "http://evil.example"}}, 403},
		{"send as a form", req{method: "POST", path: "/msg/send", body: "a=b", header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, 415},
		{"inbox through a rebound DNS name", req{method: "GET", path: "/msg/inbox", header: map[string]string{"Host": "rebind.evil.example:80"}}, 403},
		{"inbox by a local name", req{method: "GET", path: "/msg/inbox", header: map[string]string{"Host": "kit-07"}}, 200},
		{"inbox by mDNS", req{method: "GET", path: "/msg/inbox", header: map[string]string{"Host": "kit-07.local"}}, 200},
		{"a control path", req{method: "GET", path: "/mesh/graph"}, 401},
		{"another /msg/ path", req{method: "POST", path: "/msg/other", body: "{}"}, 401},
		{"inbox with a wrong token", req{method: "GET", path: "/msg/inbox", header: map[string]string{"Authorization": "Bearer x"}}, 401},
	} {
		if w := f.do(t, c.q); w.Code != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, w.Code, strings.TrimSpace(w.Body.String()), c.want)
		}
	}
	w, tok := f.login(t, "anything at all", "")
	if w.Code != 200 || tok != "" || mode(t, w) != MessagingOpen {
		t.Errorf("login on an open node: %d %s cookie %q, want 200 open without a cookie", w.Code, w.Body, tok)
	}
}

func TestMessagingClosed(t *testing.T) {
	f := newMsgFixture(t, MessagingConfig{})
	w := f.do(t, req{method: "GET", path: "/msg/inbox"})
	if w.Code != 401 || mode(t, w) != MessagingClosed || !strings.Contains(w.Body.String(), "[messaging] passphrase") {
		t.Errorf("inbox on a closed node: %d %s, want 401 saying how to open it", w.Code, w.Body)
	}
	if w := f.do(t, req{method: "GET", path: "/msg/inbox", header: map[string]string{"Authorization": "Bearer " + f.token}}); w.Code != 200 {
		t.Errorf("inbox with the token: %d", w.Code)
	}
	if w, tok := f.login(t, testPass, ""); w.Code != 401 || tok != "" || mode(t, w) != MessagingClosed {
		t.Errorf("login on a closed node: %d %s", w.Code, w.Body)
	}
	if w := f.do(t, req{method: "GET", path: "/msg/"}); w.Code != 200 {
		t.Errorf("the page on a closed node: %d, want it served (it says messaging is closed)", w.Code)
	}
	// A passphrase wins over open: the more closed setting.
	if m := messagingMode(MessagingConfig{Passphrase: testPass, Open: true}); m != MessagingPassphrase {
		t.Errorf("passphrase and open: mode %s", m)
	}
}

func TestLoginRateLimit(t *testing.T) {
	f := newMsgFixture(t, MessagingConfig{Passphrase: testPass})
	const a, b = "192.0.2.7:1000", "192.0.2.8:1000"
	for i := range LoginFailures - 1 {
		if w, _ := f.login(t, fmt.Sprint("wrong ", i), a); w.Code != 401 {
			t.Fatalf("failure %d: %d", i, w.Code)
		}
	}
	// A right passphrase is not a failure: it takes its own attempt back.
	if w, tok := f.login(t, testPass, a); w.Code != 200 || tok == "" {
		t.Fatalf("right passphrase after %d failures: %d", LoginFailures-1, w.Code)
	}
	if w, _ := f.login(t, "wrong again", a); w.Code != 401 {
		t.Fatalf("failure %d: %d", LoginFailures, w.Code)
	}
	// The limit is reached: even the right passphrase is not checked now.
	w, tok := f.login(t, testPass, a)
	if w.Code != 429 || tok != "" || w.Header().Get("Retry-After") == "" {
		t.Fatalf("attempt over the limit: %d %q Retry-After %q", w.Code, tok, w.Header().Get("Retry-After"))
	}
	if w, _ := f.login(t, testPass, b); w.Code != 200 {
		t.Errorf("another address: %d, want its own limit", w.Code)
	}
	// Other ports of the same address, and the same IPv6 /64, share a limit.
	if w, _ := f.login(t, testPass, "192.0.2.7:2222"); w.Code != 429 {
		t.Errorf("same address, another port: %d, want 429", w.Code)
	}
	for i := range LoginFailures {
		f.login(t, "wrong", fmt.Sprintf("[2001:db8:1:2::%x]:80", i+1))
	}
	if w, _ := f.login(t, testPass, "[2001:db8:1:2:ffff::1]:80"); w.Code != 429 {
		t.Errorf("same /64: %d, want 429", w.Code)
	}
	if w, _ := f.login(t, testPass, "[2001:db8:1:3::1]:80"); w.Code != 200 {
		t.Errorf("another /64: %d, want 200", w.Code)
	}
	f.clock = f.clock.Add(LoginWindow)
	if w, _ := f.login(t, testPass, a); w.Code != 200 {
		t.Errorf("after a minute: %d, want 200", w.Code)
	}
}

// Concurrent attempts cannot slip past the limit together: each is counted
// before the passphrase is checked.
func TestLoginRateLimitConcurrent(t *testing.T) {
	f := newMsgFixture(t, MessagingConfig{Passphrase: testPass})
	var wg sync.WaitGroup
	codes := make(chan int, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, _ := f.login(t, fmt.Sprint("guess ", i), "192.0.2.9:1")
			codes <- w.Code
		}()
	}
	wg.Wait()
	close(codes)
	n := map[int]int{}
	for c := range codes {
		n[c]++
	}
	if n[401] != LoginFailures || n[429] != 50-LoginFailures {
		t.Errorf("answers %v, want %d checked (401) and the rest refused (429)", n, LoginFailures)
	}
	if got := f.g.Stats().LoginsRefused; got != LoginFailures {
		t.Errorf("%d passphrases checked, want %d", got, LoginFailures)
	}
}

// The limiter's map is capped: past MaxLoginSources, new sources share one
// bucket, and expired sources make room again.
func TestLoginLimiterCapped(t *testing.T) {
	f := newMsgFixture(t, MessagingConfig{Passphrase: testPass})
	m := f.g.msg
	src := func(i int) string { return fmt.Sprintf("10.%d.%d.%d:1", i>>16&255, i>>8&255, i&255) }
	for i := range MaxLoginSources + 200 {
		if w, _ := f.login(t, "wrong", src(i)); w.Code != 401 && i < MaxLoginSources+LoginFailures {
			t.Fatalf("source %d: %d", i, w.Code)
		}
	}
	if n := len(m.fails); n > MaxLoginSources+1 {
		t.Fatalf("limiter holds %d sources, cap %d (+1 shared)", n, MaxLoginSources)
	}
	// The shared bucket is full: a new source waits too.
	if w, _ := f.login(t, testPass, "198.51.100.1:1"); w.Code != 429 {
		t.Errorf("new source while full: %d, want 429", w.Code)
	}
	f.clock = f.clock.Add(LoginWindow)
	if w, _ := f.login(t, testPass, "198.51.100.1:1"); w.Code != 200 {
		t.Errorf("new source after expiry: %d, want 200", w.Code)
	}
	if w, _ := f.login(t, "wrong", "198.51.100.2:1"); w.Code != 401 {
		t.Errorf("a failure after expiry: %d", w.Code)
	}
	if n := len(m.fails); n != 1 {
		t.Errorf("limiter holds %d sources after expiry, want 1", n)
	}
}

// The session table is capped; a login beyond it ends the oldest session.
func TestSessionsCapped(t *testing.T) {
	f := newMsgFixture(t, MessagingConfig{Passphrase: testPass})
	var toks []string
	for i := range MaxSessions + 10 {
		f.clock = f.clock.Add(time.Second)
		w, tok := f.login(t, testPass, "")
		if w.Code != 200 {
			t.Fatalf("login %d: %d", i, w.Code)
		}
		toks = append(toks, tok)
	}
	if n := f.g.Stats().Sessions; n != MaxSessions {
		t.Errorf("%d sessions held, cap %d", n, MaxSessions)
	}
	if w := f.do(t, req{method: "GET", path: "/msg/inbox", cookie: toks[0]}); w.Code != 401 {
		t.Errorf("the oldest session beyond the cap: %d, want 401", w.Code)
	}
	if w := f.do(t, req{method: "GET", path: "/msg/inbox", cookie: toks[len(toks)-1]}); w.Code != 200 {
		t.Errorf("the newest session: %d, want 200", w.Code)
	}
}

// The Guard keeps no copy of the passphrase, and no error quotes it.
func TestPassphraseNotKept(t *testing.T) {
	f := newMsgFixture(t, MessagingConfig{Passphrase: testPass})
	if s := fmt.Sprintf("%#v %#v", f.g, f.g.msg); strings.Contains(s, testPass) {
		t.Error("the Guard holds the passphrase")
	}
	node := mustKey(t)
	_, err := NewGuard(Config{Node: node.PubKey().SerializeCompressed(), Messaging: MessagingConfig{Passphrase: "s3cret!"}})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("short passphrase: %v, want an error that does not quote it", err)
	}
	var logged []string
	g, _ := NewGuard(Config{Node: node.PubKey().SerializeCompressed(), Messaging: MessagingConfig{Passphrase: testPass},
		Logf: func(format string, a ...any) { logged = append(logged, fmt.Sprintf(format, a...)) }})
	r := httptest.NewRequest("POST", "http://10.0.0.1"+LoginPath, strings.NewReader(`{"passphrase": "correct horse battery!"}`))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	g.Login().ServeHTTP(w, r)
	body, _ := io.ReadAll(w.Body)
	if w.Code != 401 || strings.Contains(string(body), "horse") || len(logged) != 1 || strings.Contains(logged[0], "horse") {
		t.Errorf("wrong passphrase: %d %s, logged %q", w.Code, body, logged)
	}
}

func TestCheckBrowser(t *testing.T) {
	for host, want := range map[string]bool{
		"10.0.0.1": true, "10.0.0.1:8080": true, "[fe80::1]:80": true, "[::1]": true, "localhost:8080": true,
		"kit-07": true, "kit-07.local": true, "KIT-07.LOCAL.": true, "a.localhost": true,
		"node.example.com": false, "10.0.0.1.evil.example": false, "": false, "local": true, "evil.localx": false,
		"kit.home.arpa": true, "kit.lan:80": true, "kit.internal": true, "home.arpa.evil.example": false, "lan.example": false,
	} {
		if got := localHost(host); got != want {
			t.Errorf("localHost(%q) = %v, want %v", host, got, want)
		}
	}
	r := httptest.NewRequest("GET", "http://10.0.0.1/msg/inbox", nil)
	if err := checkBrowser(r); err != nil {
		t.Errorf("a plain GET: %v", err)
	}
	r.Header.Set("Sec-Fetch-Site", "cross-site")
	if err := checkBrowser(r); !errors.Is(err, ErrCrossSite) {
		t.Errorf("cross-site GET: %v", err)
	}
}
