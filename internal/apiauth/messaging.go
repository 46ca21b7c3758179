package apiauth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// The messaging class: phones on an emergency kit's network use the messaging
// page (GET /msg/) with a session cookie from LoginPath, or with no credential
// at all when the node is open. Everything here bounds what a stranger on that
// network can make the node keep or compute.

// MessagingConfig says who, besides the control credentials, may call the
// Messaging paths ([messaging] of fleet.toml).
type MessagingConfig struct {
	// Passphrase, when not "", admits a session cookie from POST LoginPath
	// with this passphrase (at least MinPassphrase characters). The Guard
	// keeps only an HMAC of it under a random key of its own.
	Passphrase string
	// Open admits anyone who reaches the port (a public emergency kit).
	// Ignored when Passphrase is set: the more closed setting wins.
	Open bool
}

// Messaging modes, as Stats and the refusals of Messaging paths name them.
const (
	// MessagingClosed: only the control credentials admit Messaging paths.
	MessagingClosed = "closed"
	// MessagingPassphrase: a session cookie from LoginPath admits them too.
	MessagingPassphrase = "passphrase"
	// MessagingOpen: anyone who reaches the port is admitted.
	MessagingOpen = "open"
)

// Paths and limits of the messaging login.
const (
	// LoginPath takes {"passphrase": "..."} as JSON (POST) and answers with a
	// session cookie.
	LoginPath = "/msg/login"
	// LogoutPath forgets the caller's session (POST).
	LogoutPath = "/msg/logout"
	// SessionCookie is the session cookie's name; its value is 32 random bytes
	// in unpadded base64url. It is HttpOnly, SameSite=Strict and sent only to
	// paths under /msg/.
	SessionCookie = "skyfleet_msg"
	// SessionTTL is how long a session lasts from its login.
	SessionTTL = 12 * time.Hour
	// MaxSessions caps the sessions held; a login beyond it ends the session
	// that expires first, so a full table never locks phones out.
	MaxSessions = 256
	// MinPassphrase is the shortest passphrase accepted, in characters.
	MinPassphrase = 8
	// LoginFailures is how many wrong passphrases one source (an IPv4
	// address, an IPv6 /64) may send within LoginWindow; later attempts are
	// refused without being checked until the oldest failure is that old.
	LoginFailures = 5
	// LoginWindow is the window of LoginFailures.
	LoginWindow = time.Minute
	// MaxLoginSources caps the sources whose recent failures are remembered.
	// When it is reached and none has expired, every new source shares one
	// bucket of LoginFailures: memory stays bounded, and so does the rate of
	// guesses (at most MaxLoginSources+1 buckets a minute).
	MaxLoginSources = 1024
	// ModeHeader names the messaging mode on every admitted Messaging answer.
	ModeHeader = "X-Skyfleet-Messaging"
	// maxLoginBody bounds a login request's body.
	maxLoginBody = 4 << 10
)

// Errors of the Messaging class and its login, wrapped with the reason.
var (
	// ErrNoSession means a Messaging path was called without a session
	// cookie on a node with a passphrase.
	ErrNoSession = errors.New("apiauth: log in with the messaging passphrase first (POST " + LoginPath + ")")
	// ErrMessagingClosed means a Messaging path was called without a control
	// credential on a node whose fleet.toml opens messaging to no one else.
	ErrMessagingClosed = errors.New("apiauth: messaging is closed to phones on this node (to open it, set [messaging] passphrase, or open = true, in its fleet.toml and restart it); this path needs the fleet master's signature or the node's API token")
	// ErrCrossSite means a browser request came from another origin, or named
	// a host that could be a DNS-rebinding attacker's.
	ErrCrossSite = errors.New("apiauth: cross-site request refused")
	// ErrNotJSON means a POST that a browser could make came without
	// Content-Type: application/json, which a cross-site form cannot send.
	ErrNotJSON = errors.New("apiauth: the body must be JSON (Content-Type: application/json)")
	// ErrTooManyLogins means the source sent LoginFailures wrong passphrases
	// within LoginWindow.
	ErrTooManyLogins = errors.New("apiauth: too many wrong passphrases from this address; try again in a minute")
)

// messagingMode is the mode cfg selects.
func messagingMode(cfg MessagingConfig) string {
	switch {
	case cfg.Passphrase != "":
		return MessagingPassphrase
	case cfg.Open:
		return MessagingOpen
	}
	return MessagingClosed
}

// messaging is a Guard's state for the Messaging class.
type messaging struct {
	mode    string
	passKey [32]byte // HMAC key of passSum, random per Guard
	passSum [32]byte // HMAC of the passphrase; the passphrase itself is not kept
	now     func() time.Time

	mu       sync.Mutex
	sessions map[[32]byte]time.Time // SHA-256 of a session token -> its expiry
	fails    map[netip.Prefix][]time.Time
}

func newMessaging(cfg MessagingConfig) (*messaging, error) {
	m := &messaging{mode: messagingMode(cfg), now: time.Now,
		sessions: make(map[[32]byte]time.Time), fails: make(map[netip.Prefix][]time.Time)}
	if m.mode != MessagingPassphrase {
		return m, nil
	}
	if utf8.RuneCountInString(cfg.Passphrase) < MinPassphrase {
		return nil, fmt.Errorf("apiauth: the messaging passphrase must have at least %d characters", MinPassphrase)
	}
	if _, err := rand.Read(m.passKey[:]); err != nil {
		return nil, fmt.Errorf("apiauth: passphrase key: %w", err)
	}
	// An HMAC rather than a slow hash (argon2id): the limiter already bounds
	// guesses over the network, and a slow hash would let each stranger's
	// attempt cost the node memory and CPU. The random key means the digest
	// in memory is useless anywhere else.
	m.passSum = m.digest(cfg.Passphrase)
	return m, nil
}

func (m *messaging) digest(pass string) (sum [32]byte) {
	h := hmac.New(sha256.New, m.passKey[:])
	h.Write([]byte("skyfleet messaging passphrase v1\x00"))
	h.Write([]byte(pass))
	copy(sum[:], h.Sum(nil))
	return sum
}

// checkPassphrase compares in constant time (the digests, so not even the
// passphrase's length shows).
func (m *messaging) checkPassphrase(pass string) bool {
	sum := m.digest(pass)
	return hmac.Equal(sum[:], m.passSum[:])
}

// newSession makes a session and returns its token. A full table first
// drops expired sessions, then the one that expires first.
func (m *messaging) newSession() (string, error) {
	var tok [32]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return "", err
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.sessions) >= MaxSessions {
		var oldest [32]byte
		var oldestAt time.Time
		for k, exp := range m.sessions {
			if !now.Before(exp) {
				delete(m.sessions, k)
			} else if oldestAt.IsZero() || exp.Before(oldestAt) {
				oldest, oldestAt = k, exp
			}
		}
		if len(m.sessions) >= MaxSessions {
			delete(m.sessions, oldest)
		}
	}
	m.sessions[sha256.Sum256(tok[:])] = now.Add(SessionTTL)
	return base64.RawURLEncoding.EncodeToString(tok[:]), nil
}

// sessionKey returns the table key of a cookie value. The table is keyed by
// the token's SHA-256, so a map lookup's timing tells nothing about a token.
func sessionKey(value string) ([32]byte, bool) {
	b, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(b) != 32 {
		return [32]byte{}, false
	}
	return sha256.Sum256(b), true
}

// validSession reports whether value is a live session's token.
func (m *messaging) validSession(value string) bool {
	k, ok := sessionKey(value)
	if !ok {
		return false
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	exp, ok := m.sessions[k]
	if ok && !now.Before(exp) {
		delete(m.sessions, k)
		return false
	}
	return ok
}

// endSession forgets the session of value, if any.
func (m *messaging) endSession(value string) {
	if k, ok := sessionKey(value); ok {
		m.mu.Lock()
		delete(m.sessions, k)
		m.mu.Unlock()
	}
}

func (m *messaging) sessionCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sessions)
}

// overflow is the bucket that new sources share while the limiter is full.
var overflow = netip.Prefix{}

// reserve counts one login attempt from src as a failure before the
// passphrase is checked, so that concurrent attempts cannot pass the limit
// together; a right passphrase takes it back (unreserve). It returns the
// bucket charged and when the oldest failure in it expires, or ok false and
// how long to wait.
func (m *messaging) reserve(src netip.Prefix) (bucket netip.Prefix, at time.Time, wait time.Duration, ok bool) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, known := m.fails[src]; !known && len(m.fails) >= MaxLoginSources {
		for k, ts := range m.fails {
			if ts = recent(ts, now); len(ts) == 0 {
				delete(m.fails, k)
			} else {
				m.fails[k] = ts
			}
		}
		if len(m.fails) >= MaxLoginSources {
			src = overflow
		}
	}
	ts := recent(m.fails[src], now)
	if len(ts) >= LoginFailures {
		m.fails[src] = ts
		return src, now, ts[0].Add(LoginWindow).Sub(now), false
	}
	m.fails[src] = append(ts, now)
	return src, now, 0, true
}

// unreserve takes back the failure reserve counted at at.
func (m *messaging) unreserve(bucket netip.Prefix, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ts := m.fails[bucket]
	for i, t := range ts {
		if t.Equal(at) {
			ts = append(ts[:i:i], ts[i+1:]...)
			break
		}
	}
	if len(ts) == 0 {
		delete(m.fails, bucket)
	} else {
		m.fails[bucket] = ts
	}
}

// recent drops the failures older than LoginWindow (ts is oldest first).
func recent(ts []time.Time, now time.Time) []time.Time {
	i := 0
	for i < len(ts) && now.Sub(ts[i]) >= LoginWindow {
		i++
	}
	return ts[i:]
}

// sourcePrefix is the limiter's bucket of a request's source: its IPv4
// address, or the /64 of its IPv6 address (one host commonly holds a whole
// /64). A source that is no IP address (a Unix socket) shares overflow.
func sourcePrefix(remoteAddr string) netip.Prefix {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return overflow
	}
	a := ap.Addr().Unmap()
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64)
	return p
}

// checkBrowser applies the rules for a request that a browser may have sent
// on its own (no Authorization header: a cookie, or no credential at all), so
// that another site cannot act through a phone's browser:
//   - the Host must be a name no outside DNS can point at the node (see
//     localHost), since a DNS-rebinding page would otherwise be same-origin
//     with the node;
//   - Sec-Fetch-Site, when sent, must be same-origin ("none", a typed
//     address, only for GET and HEAD);
//   - Origin, when sent, must be the host the request names;
//   - any other method than GET and HEAD must carry JSON, which a cross-site
//     form cannot send without a CORS preflight that the node never grants.
func checkBrowser(r *http.Request) error {
	if !localHost(r.Host) {
		return fmt.Errorf("%w: open the page by the node's IP address or local name, not %q (a guard against DNS rebinding)", ErrCrossSite, clipHost(r.Host))
	}
	safe := r.Method == http.MethodGet || r.Method == http.MethodHead
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "", "same-origin":
	case "none":
		if !safe {
			return fmt.Errorf("%w: Sec-Fetch-Site none on %s", ErrCrossSite, r.Method)
		}
	default:
		return fmt.Errorf("%w: the request came from another site (Sec-Fetch-Site %q)", ErrCrossSite, clipHost(site))
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host) {
			return fmt.Errorf("%w: the request came from another origin", ErrCrossSite)
		}
	}
	if !safe {
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "application/json" {
			return ErrNotJSON
		}
	}
	return nil
}

// localDomains are suffixes that public DNS does not serve (mDNS, RFC 8375's
// home network, ICANN's private-use TLD, and the .lan of home routers), so only
// the local network can say where such a name points.
var localDomains = []string{".localhost", ".local", ".home.arpa", ".internal", ".lan"}

// localHost reports whether a Host header names the node in a way that only
// the local network resolves: an IP address, localhost, a single label, or a
// name under localDomains.
func localHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")), ".")
	if host == "" {
		return false
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	for _, d := range localDomains {
		if strings.HasSuffix(host, d) {
			return true
		}
	}
	return !strings.Contains(host, ".")
}

// clipHost bounds a stranger's text quoted in an error.
func clipHost(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

// authorizeMessaging decides a request for a Messaging path.
func (g *Guard) authorizeMessaging(r *http.Request) error {
	if r.Header.Get("Authorization") != "" {
		// A header is no ambient credential (a page cannot add it cross-site
		// without a preflight), so the browser rules are not needed; a shown
		// credential must be valid, even on an open node.
		return g.authorizeControl(r)
	}
	m := g.msg
	if m.mode == MessagingClosed {
		return ErrMessagingClosed
	}
	if err := checkBrowser(r); err != nil {
		return err
	}
	if m.mode == MessagingOpen {
		g.byMessaging.Add(1)
		return nil
	}
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return ErrNoSession
	}
	if !m.validSession(c.Value) {
		return fmt.Errorf("%w: the session is unknown or has expired; log in again", ErrBadCredential)
	}
	g.byMessaging.Add(1)
	return nil
}

// LoginAnswer is the document of a successful POST LoginPath.
type LoginAnswer struct {
	// Messaging is the node's mode: MessagingPassphrase (a session cookie was
	// set) or MessagingOpen (none is needed).
	Messaging string `json:"messaging"`
	// ExpiresInS is the session's lifetime in seconds; 0 when open.
	ExpiresInS int `json:"expires_in_s,omitempty"`
}

// Login serves POST LoginPath (a Public path: the passphrase is the
// credential). It takes {"passphrase": "..."} as JSON from the node's own
// page only (checkBrowser), counts a wrong passphrase against the caller's
// source (LoginFailures per LoginWindow), and answers a right one with a
// session cookie and a LoginAnswer. On an open node it sets no cookie and
// answers MessagingOpen; on a closed one it refuses with ErrMessagingClosed.
func (g *Guard) Login() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		m := g.msg
		if m.mode == MessagingClosed {
			g.refuse(w, r, Messaging, ErrMessagingClosed)
			return
		}
		if err := checkBrowser(r); err != nil {
			g.refuse(w, r, Messaging, err)
			return
		}
		if m.mode == MessagingOpen {
			writeJSON(w, http.StatusOK, LoginAnswer{Messaging: MessagingOpen})
			return
		}
		bucket, at, wait, ok := m.reserve(sourcePrefix(r.RemoteAddr))
		if !ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(wait.Round(time.Second)/time.Second)+1))
			g.refuse(w, r, Messaging, ErrTooManyLogins)
			return
		}
		var body struct {
			Passphrase string `json:"passphrase"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxLoginBody)).Decode(&body); err != nil {
			g.refuse(w, r, Messaging, fmt.Errorf("%w: the body must be JSON {\"passphrase\": \"...\"}", ErrBadCredential))
			return
		}
		if !m.checkPassphrase(body.Passphrase) {
			g.loginsRefused.Add(1)
			g.refuse(w, r, Messaging, fmt.Errorf("%w: wrong passphrase", ErrBadCredential))
			return
		}
		m.unreserve(bucket, at)
		tok, err := m.newSession()
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "apiauth: no session: " + err.Error()})
			return
		}
		http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: tok, Path: "/msg/",
			MaxAge: int(SessionTTL / time.Second), HttpOnly: true, SameSite: http.SameSiteStrictMode,
			// The kit's page is plain HTTP on its own network; over TLS
			// (a proxy in front) the cookie is kept to TLS.
			Secure: r.TLS != nil})
		writeJSON(w, http.StatusOK, LoginAnswer{Messaging: MessagingPassphrase, ExpiresInS: int(SessionTTL / time.Second)})
	})
}

// Logout serves POST LogoutPath (Public): it forgets the caller's session, if
// any, and clears the cookie, so a phone handed on does not stay logged in.
func (g *Guard) Logout() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if err := checkBrowser(r); err != nil {
			g.refuse(w, r, Messaging, err)
			return
		}
		if c, err := r.Cookie(SessionCookie); err == nil {
			g.msg.endSession(c.Value)
		}
		http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/msg/", MaxAge: -1,
			HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
		writeJSON(w, http.StatusOK, map[string]string{"messaging": g.msg.mode})
	})
}
