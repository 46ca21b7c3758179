// Package apiauth decides who may call each path of a node's HTTP API.
//
// Every path belongs to one access class, declared once where the server lists
// its routes (Route), and the Guard enforces it before the handler runs:
//
//   - Public: anyone who can reach the port. Read-only status that is safe to
//     show a stranger on the LAN (the node's address, version, uptime, the
//     config problems with secrets removed).
//
//   - Control: the fleet master, or a tool on the node itself. The master
//     proves itself with a signature by its secp256k1 key over a one-time
//     challenge from this node (SignRequest), the same kind of signed
//     challenge the SSH login uses; a local tool shows the node's API token,
//     the 32 random bytes in <data>/api.token that only root on the node can
//     read (LoadOrCreateToken).
//
//   - Messaging: the phone-facing messaging page of store-and-forward. The
//     control credentials, and besides them what fleet.toml's [messaging]
//     says (MessagingConfig): a session cookie from POST LoginPath with the
//     passphrase, or anyone when the node is open, or no one else when
//     neither is set. Never the Control paths.
//
//   - Signed: a request signed by a host's own secp256k1 key over a challenge
//     of this node (HostScheme), whatever the key: the handler learns which
//     key (SignerKey) and decides. The hardware wallet's host API is Signed:
//     the wallet admits only the keys paired on its screen.
//
// The zero Access is Control, so a route whose class was forgotten is closed,
// not open. The control credentials are not ambient (no cookie, no trust in the
// source address), so a web page in an operator's browser cannot borrow one:
// cross-site requests and DNS rebinding reach only the public paths. The
// messaging session cookie is ambient, so a request that relies on it (or on an
// open node) must come from the node's own page by a local name (checkBrowser):
// same origin, JSON for anything but GET, and a Host no outside DNS controls.
//
// A master signature authorises exactly one request: it covers this node's
// public key, the challenge nonce, the method and the request URI (path and
// query), and each nonce is accepted once, within ChallengeTTL of being issued.
// The body is not covered: over plain HTTP a man in the middle could change the
// body of a request it relays (POST /mesh/send) but not its target or replay it.
package apiauth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"github.com/skyfleet/skyfleet/internal/ratelog"

	"github.com/skyfleet/skyfleet/services/identity"
)

// Access is the class of caller an API path admits. The zero value is Control.
type Access int

const (
	// Control admits the fleet master (a signed challenge) and tools on the
	// node (the API token). It is the zero value, so an unset class is closed.
	Control Access = iota
	// Public admits anyone who can reach the port.
	Public
	// Messaging admits the control credentials and, as fleet.toml's
	// [messaging] says, a session cookie or anyone (MessagingConfig).
	Messaging
	// Signed admits a request signed by any key (HostScheme); the
	// handler reads the key with SignerKey and decides.
	Signed
)

// String names the class as the README's security table does.
func (a Access) String() string {
	switch a {
	case Public:
		return "public"
	case Control:
		return "control (master key or API token)"
	case Messaging:
		return "messaging (session cookie, open, or control)"
	case Signed:
		return "a paired host (its key's signature)"
	}
	return fmt.Sprintf("Access(%d)", int(a))
}

// Route is one API path and who may call it.
type Route struct {
	// Pattern is an http.ServeMux pattern, such as "GET /status" or "/mesh/".
	Pattern string
	// Access is who may call it; the zero value is Control.
	Access Access
	// Handler serves the path once the caller is admitted.
	Handler http.Handler
}

// Scheme is the Authorization scheme of a master-signed request:
//
//	Authorization: Skyfleet-Master <nonce hex>.<signature hex>
const Scheme = "Skyfleet-Master"

// HostScheme is the Authorization scheme of a request signed by a host's
// key (Signed paths), in the same form as Scheme's; the signature covers
// HostRequestHash, so neither kind can stand for the other.
const HostScheme = "Skyfleet-Host"

// MaxUsedHostNonces caps the nonces remembered as spent by Signed requests,
// apart from the master's: anyone can make a key, so a stranger's signed
// requests must not use up the master's (MaxUsedNonces).
const MaxUsedHostNonces = 1024

// ChallengePath is the public path that hands out challenges (GET).
const ChallengePath = "/auth/challenge"

// ChallengeTTL is how long a challenge nonce may be used after it was issued.
const ChallengeTTL = 60 * time.Second

// MaxUsedNonces caps the nonces remembered as spent within ChallengeTTL. Only
// requests carrying a valid master signature add one, so the cap bounds the
// master's rate (about 68 signed requests a second), not a stranger's; when it
// is reached, signed requests are refused until old nonces expire.
const MaxUsedNonces = 4096

// nonceLen is the length of a challenge nonce: an 8-byte issue time (ns since the
// Guard started, monotonic) and a 16-byte HMAC tag over it, so challenges need no
// state until one is spent and a flood of challenge requests costs no memory.
const nonceLen = 8 + 16

// Errors from Authorize, wrapped with the reason.
var (
	// ErrNoCredential means the request carries no Authorization header.
	ErrNoCredential = errors.New("apiauth: this path needs the fleet master's signature or the node's API token")
	// ErrNoHostSignature means a Signed path's request carries no
	// Authorization header.
	ErrNoHostSignature = errors.New("apiauth: this path needs a request signed by a host's key (" + HostScheme + "; skyfleet wallet pair)")
	// ErrBadCredential means the credential was present but not accepted.
	ErrBadCredential = errors.New("apiauth: credential refused")
	// ErrNotServed means the path's class is unknown and admits nobody.
	ErrNotServed = errors.New("apiauth: this API is not served yet")
	// ErrBusy means too many signed requests were accepted within ChallengeTTL.
	ErrBusy = errors.New("apiauth: too many signed requests in the last minute; try again shortly")
)

// Config configures a Guard.
type Config struct {
	// Node is this node's 33-byte compressed public key; signatures are bound
	// to it, so one made for another node is refused. Required.
	Node []byte
	// Master is the fleet master's 33-byte compressed public key ([master]
	// public_key); nil admits no signature.
	Master []byte
	// Token is the node's API token (LoadOrCreateToken); "" admits no token.
	Token string
	// Messaging says who else may call Messaging paths; the zero value admits
	// only the control credentials.
	Messaging MessagingConfig
	// Logf receives one line per refused request, at most one per 10 s (the
	// rest are counted). Default: discard.
	Logf func(format string, args ...any)
}

// Guard enforces the access classes of an API. It is safe for concurrent use.
type Guard struct {
	node   []byte
	master *secp256k1.PublicKey
	token  [32]byte // SHA-256 of the token, compared in constant time
	hasTok bool
	secret [32]byte // HMAC key of this Guard's challenges
	start  time.Time
	logf   func(string, ...any)

	msg *messaging

	mu       sync.Mutex
	used     map[[nonceLen]byte]time.Duration // spent nonce -> its issue time
	usedHost map[[nonceLen]byte]time.Duration // the same for Signed requests
	logs     ratelog.Limiter                  // refusal lines: one per 10 s

	refused, byToken, byMaster, byMessaging, loginsRefused atomic.Uint64
}

// NewGuard returns a Guard for cfg. Errors: Node is not a valid compressed public
// key, Master is set and is not one, or the messaging passphrase is shorter
// than MinPassphrase (the error does not quote it).
func NewGuard(cfg Config) (*Guard, error) {
	if _, err := secp256k1.ParsePubKey(cfg.Node); err != nil || len(cfg.Node) != 33 {
		return nil, fmt.Errorf("apiauth: node key: want a 33-byte compressed public key")
	}
	g := &Guard{node: append([]byte(nil), cfg.Node...), start: time.Now(), logf: cfg.Logf,
		used: make(map[[nonceLen]byte]time.Duration), usedHost: make(map[[nonceLen]byte]time.Duration)}
	if g.logf == nil {
		g.logf = func(string, ...any) {}
	}
	if cfg.Master != nil {
		pk, err := secp256k1.ParsePubKey(cfg.Master)
		if err != nil || len(cfg.Master) != 33 {
			return nil, fmt.Errorf("apiauth: master key: want a 33-byte compressed public key")
		}
		g.master = pk
	}
	if cfg.Token != "" {
		g.token, g.hasTok = sha256.Sum256([]byte(cfg.Token)), true
	}
	if _, err := rand.Read(g.secret[:]); err != nil {
		return nil, fmt.Errorf("apiauth: challenge key: %w", err)
	}
	m, err := newMessaging(cfg.Messaging)
	if err != nil {
		return nil, err
	}
	g.msg = m
	return g, nil
}

// Stats are a Guard's counters since it started.
type Stats struct {
	Refused          uint64 `json:"refused"`           // requests refused for want of a credential
	AdmittedByToken  uint64 `json:"admitted_by_token"` // control requests with the API token
	AdmittedByMaster uint64 `json:"admitted_by_master"`
	MasterConfigured bool   `json:"master_configured"` // a master key can sign requests
	// Messaging is the messaging mode: closed, passphrase or open.
	Messaging string `json:"messaging"`
	// AdmittedMessaging counts messaging requests admitted by a session
	// cookie or on an open node (those with a control credential count above).
	AdmittedMessaging uint64 `json:"admitted_messaging"`
	// Sessions is how many messaging sessions are held (at most MaxSessions).
	Sessions int `json:"messaging_sessions"`
	// LoginsRefused counts wrong messaging passphrases.
	LoginsRefused uint64 `json:"logins_refused"`
}

// Stats returns the Guard's counters.
func (g *Guard) Stats() Stats {
	return Stats{Refused: g.refused.Load(), AdmittedByToken: g.byToken.Load(),
		AdmittedByMaster: g.byMaster.Load(), MasterConfigured: g.master != nil,
		Messaging: g.msg.mode, AdmittedMessaging: g.byMessaging.Load(),
		Sessions: g.msg.sessionCount(), LoginsRefused: g.loginsRefused.Load()}
}

// Handler serves routes, each behind its class, plus GET ChallengePath (public).
// Paths no route matches get 404 from the mux, before any credential is asked.
// It panics on a route with an invalid pattern or a duplicate, as ServeMux does.
func (g *Guard) Handler(routes []Route) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+ChallengePath, g.serveChallenge)
	for _, rt := range routes {
		mux.Handle(rt.Pattern, g.Require(rt.Access, rt.Handler))
	}
	return mux
}

// Require wraps h so that only callers admitted by class a reach it; others get
// 401 with {"error": reason} and a WWW-Authenticate header naming both ways in
// (403 for a cross-site request, 415 for a browser's POST without JSON). A
// Messaging refusal also names the mode, {"messaging": "passphrase"}, so the
// page knows whether to ask for the passphrase or say messaging is closed, and
// an admitted Messaging request's answer carries the mode in ModeHeader.
func (g *Guard) Require(a Access, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := g.Authorize(r, a); err != nil {
			g.refuse(w, r, a, err)
			return
		}
		if a == Messaging {
			// The page shows "Log out" only where there is a session to end.
			w.Header().Set(ModeHeader, g.msg.mode)
		}
		if a == Signed {
			// Authorize spent the nonce: the key is recovered again from
			// the same signature, already verified.
			key, _ := g.hostSigner(r, false)
			r = r.WithContext(context.WithValue(r.Context(), signerKey{}, key))
		}
		h.ServeHTTP(w, r)
	})
}

// Authorize decides whether r may call a path of class a. It returns nil when
// admitted, or an error wrapping ErrNoCredential, ErrBadCredential, ErrBusy,
// ErrNotServed or, for Messaging, ErrNoSession, ErrMessagingClosed,
// ErrCrossSite or ErrNotJSON. A master signature's nonce is spent by this call.
func (g *Guard) Authorize(r *http.Request, a Access) error {
	switch a {
	case Public:
		return nil
	case Messaging:
		return g.authorizeMessaging(r)
	case Control:
		return g.authorizeControl(r)
	case Signed:
		_, err := g.hostSigner(r, true)
		return err
	}
	return ErrNotServed
}

type signerKey struct{}

// SignerKey returns the 33-byte compressed key that signed r, on a Signed
// path's handler; nil elsewhere.
func SignerKey(r *http.Request) []byte {
	k, _ := r.Context().Value(signerKey{}).([]byte)
	return k
}

// hostSigner verifies r's HostScheme credential and returns the key that
// made it; with spend, it also spends the nonce (once per request).
func (g *Guard) hostSigner(r *http.Request, spend bool) ([]byte, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, ErrNoHostSignature
	}
	scheme, cred, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, HostScheme) {
		return nil, fmt.Errorf("%w: this path takes only %s", ErrBadCredential, HostScheme)
	}
	nonce, sig, err := parseCred(strings.TrimSpace(cred))
	if err != nil {
		return nil, err
	}
	issued, ok := g.openNonce(nonce)
	if !ok {
		return nil, fmt.Errorf("%w: the challenge is not this node's, or has expired (ask %s again)", ErrBadCredential, ChallengePath)
	}
	pub, _, err := ecdsa.RecoverCompact(sig, HostRequestHash(g.node, nonce[:], r.Method, r.URL.RequestURI()))
	if err != nil {
		return nil, fmt.Errorf("%w: the signature recovers no key", ErrBadCredential)
	}
	if spend {
		if err := g.spendIn(g.usedHost, MaxUsedHostNonces, nonce, issued); err != nil {
			return nil, err
		}
	}
	return pub.SerializeCompressed(), nil
}

// parseCred reads "<nonce hex>.<sig hex>".
func parseCred(cred string) ([nonceLen]byte, []byte, error) {
	var nonce [nonceLen]byte
	nh, sh, ok := strings.Cut(cred, ".")
	if !ok || len(nh) != 2*nonceLen || len(sh) != 2*65 {
		return nonce, nil, fmt.Errorf("%w: malformed credential", ErrBadCredential)
	}
	if _, err := hex.Decode(nonce[:], []byte(nh)); err != nil {
		return nonce, nil, fmt.Errorf("%w: malformed nonce", ErrBadCredential)
	}
	sig, err := hex.DecodeString(sh)
	if err != nil {
		return nonce, nil, fmt.Errorf("%w: malformed signature", ErrBadCredential)
	}
	return nonce, sig, nil
}

// authorizeControl admits the API token or a master signature.
func (g *Guard) authorizeControl(r *http.Request) error {
	h := r.Header.Get("Authorization")
	if h == "" {
		return ErrNoCredential
	}
	scheme, cred, _ := strings.Cut(h, " ")
	cred = strings.TrimSpace(cred)
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		if !g.hasTok {
			return fmt.Errorf("%w: this node accepts no API token", ErrBadCredential)
		}
		sum := sha256.Sum256([]byte(cred))
		if subtle.ConstantTimeCompare(sum[:], g.token[:]) != 1 {
			return fmt.Errorf("%w: wrong API token", ErrBadCredential)
		}
		g.byToken.Add(1)
		return nil
	case strings.EqualFold(scheme, Scheme):
		if err := g.checkSignature(r, cred); err != nil {
			return err
		}
		g.byMaster.Add(1)
		return nil
	}
	return fmt.Errorf("%w: unknown Authorization scheme (use Bearer or %s)", ErrBadCredential, Scheme)
}

// checkSignature verifies "<nonce hex>.<sig hex>" for r and spends the nonce.
func (g *Guard) checkSignature(r *http.Request, cred string) error {
	if g.master == nil {
		return fmt.Errorf("%w: no [master] public_key is configured on this node", ErrBadCredential)
	}
	nonce, sig, err := parseCred(cred)
	if err != nil {
		return err
	}
	issued, ok := g.openNonce(nonce)
	if !ok {
		return fmt.Errorf("%w: the challenge is not this node's, or has expired (ask %s again)", ErrBadCredential, ChallengePath)
	}
	pub, _, err := ecdsa.RecoverCompact(sig, RequestHash(g.node, nonce[:], r.Method, r.URL.RequestURI()))
	if err != nil || !pub.IsEqual(g.master) {
		return fmt.Errorf("%w: the signature is not the master's for this request", ErrBadCredential)
	}
	return g.spend(nonce, issued)
}

// openNonce checks the nonce's tag and age and returns its issue time.
func (g *Guard) openNonce(n [nonceLen]byte) (time.Duration, bool) {
	tag := g.tag(n[:8])
	if !hmac.Equal(tag, n[8:]) {
		return 0, false
	}
	issued := time.Duration(binary.BigEndian.Uint64(n[:8]))
	age := time.Since(g.start) - issued
	return issued, age >= 0 && age <= ChallengeTTL
}

// spend records n as used by the master; a nonce is accepted once.
func (g *Guard) spend(n [nonceLen]byte, issued time.Duration) error {
	return g.spendIn(g.used, MaxUsedNonces, n, issued)
}

// spendIn records n as used in used, which holds at most max nonces.
func (g *Guard) spendIn(used map[[nonceLen]byte]time.Duration, max int, n [nonceLen]byte, issued time.Duration) error {
	now := time.Since(g.start)
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, dup := used[n]; dup {
		return fmt.Errorf("%w: this challenge was already used (a replay?)", ErrBadCredential)
	}
	if len(used) >= max {
		for k, at := range used {
			if now-at > ChallengeTTL {
				delete(used, k)
			}
		}
		if len(used) >= max {
			return ErrBusy
		}
	}
	used[n] = issued
	return nil
}

func (g *Guard) tag(ts []byte) []byte {
	m := hmac.New(sha256.New, g.secret[:])
	m.Write([]byte("skyfleet api challenge v1\x00"))
	m.Write(ts)
	return m.Sum(nil)[:nonceLen-8]
}

// Challenge is the document of GET ChallengePath.
type Challenge struct {
	// NodeKey is this node's public key, 66 hex characters; the signature
	// covers it, and a client that knows which node it means should check it.
	NodeKey string `json:"node_key"`
	// Nonce is 48 hex characters, valid for ExpiresInS seconds, once.
	Nonce      string `json:"nonce"`
	ExpiresInS int    `json:"expires_in_s"`
}

// NewChallenge returns a fresh challenge. It keeps no state: the nonce carries
// its issue time and a tag only this Guard can make.
func (g *Guard) NewChallenge() Challenge {
	var n [nonceLen]byte
	binary.BigEndian.PutUint64(n[:8], uint64(time.Since(g.start)))
	copy(n[8:], g.tag(n[:8]))
	return Challenge{NodeKey: hex.EncodeToString(g.node), Nonce: hex.EncodeToString(n[:]),
		ExpiresInS: int(ChallengeTTL / time.Second)}
}

func (g *Guard) serveChallenge(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, g.NewChallenge())
}

// refuse answers a refused request for a path of class a and logs it, at most
// one line per 10 s.
func (g *Guard) refuse(w http.ResponseWriter, r *http.Request, a Access, err error) {
	g.refused.Add(1)
	code := http.StatusUnauthorized
	switch {
	case errors.Is(err, ErrNotServed), errors.Is(err, ErrCrossSite):
		code = http.StatusForbidden
	case errors.Is(err, ErrNotJSON):
		code = http.StatusUnsupportedMediaType
	case errors.Is(err, ErrTooManyLogins):
		code = http.StatusTooManyRequests
	case errors.Is(err, ErrBusy):
		code = http.StatusServiceUnavailable
	default:
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="skyfleet node", %s challenge=%q`, Scheme, ChallengePath))
	}
	if skipped, ok := g.logs.Allow(time.Now()); ok {
		more := ""
		if skipped > 0 {
			more = fmt.Sprintf(" (%d more refused since the last line)", skipped)
		}
		// The path is logged quoted and without its query: a stranger chooses
		// both, and a decoded newline must not start a line of its own.
		g.logf("api: refused %q %q from %s: %v%s", r.Method, r.URL.Path, r.RemoteAddr, err, more)
	}
	msg := err.Error()
	if errors.Is(err, ErrNoCredential) || errors.Is(err, ErrMessagingClosed) {
		msg += fmt.Sprintf(": send 'Authorization: Bearer <%s>' from the node, or sign %s with the master key (skyfleet mesh --key master.key)", TokenFile, ChallengePath)
	}
	body := map[string]string{"error": msg}
	if a == Messaging {
		body["messaging"] = g.msg.mode
	}
	writeJSON(w, code, body)
}

// RequestHash is the 32-byte digest the master signs to authorise one request:
// SHA-256 over a domain string, the node's public key, the nonce, the method and
// the request URI, each length-prefixed so no two requests share a digest.
func RequestHash(node, nonce []byte, method, requestURI string) []byte {
	return requestHash("skyfleet api request v1\x00", node, nonce, method, requestURI)
}

// HostRequestHash is RequestHash for a host's key (HostScheme), under
// another domain string, so a master's signature cannot pass for a host's
// or the reverse.
func HostRequestHash(node, nonce []byte, method, requestURI string) []byte {
	return requestHash("skyfleet api host request v1\x00", node, nonce, method, requestURI)
}

func requestHash(domain string, node, nonce []byte, method, requestURI string) []byte {
	h := sha256.New()
	h.Write([]byte(domain))
	for _, b := range [][]byte{node, nonce, []byte(method), []byte(requestURI)} {
		h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(b))))
		h.Write(b)
	}
	return h.Sum(nil)
}

// SignRequest returns the Authorization header value with which master
// authorises one request (method, requestURI such as "/mesh/ping?addr=...") to
// the node whose challenge is c. Errors: c is malformed, or master is nil or
// zero (wrapping identity.ErrPrivateKey).
func SignRequest(master *secp256k1.PrivateKey, c Challenge, method, requestURI string) (string, error) {
	return signRequest(Scheme, RequestHash, master, c, method, requestURI)
}

// SignHostRequest is SignRequest for a host's key on a Signed path
// (HostScheme, HostRequestHash).
func SignHostRequest(key *secp256k1.PrivateKey, c Challenge, method, requestURI string) (string, error) {
	return signRequest(HostScheme, HostRequestHash, key, c, method, requestURI)
}

func signRequest(scheme string, hash func(node, nonce []byte, method, requestURI string) []byte,
	master *secp256k1.PrivateKey, c Challenge, method, requestURI string) (string, error) {
	node, err := hex.DecodeString(c.NodeKey)
	if err != nil || len(node) != 33 {
		return "", errors.New("apiauth: the challenge's node key is malformed")
	}
	nonce, err := hex.DecodeString(c.Nonce)
	if err != nil || len(nonce) != nonceLen {
		return "", errors.New("apiauth: the challenge's nonce is malformed")
	}
	sig, err := identity.SignCompact(master, hash(node, nonce, method, requestURI)) // constant time
	if err != nil {
		return "", fmt.Errorf("apiauth: signing: %w", err)
	}
	return scheme + " " + c.Nonce + "." + hex.EncodeToString(sig), nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
