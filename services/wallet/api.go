package wallet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/skyfleet/skyfleet/wallet/keystore"
)

// HostHeader carries the paired host's public key (66 hex characters) on
// requests the status service forwards: it verified the host's signature
// over a one-time challenge (internal/apiauth) before forwarding, and only
// root's processes can open the wallet's socket.
const HostHeader = "X-Skyfleet-Host"

// Request size limits: a PSBT of up to bitcoin.MaxPSBT bytes in base64 is
// the largest body.
const (
	MaxBody    = 1400 << 10 // bytes of a request body
	MaxName    = 32         // runes of a host's name
	MaxMessage = 1024       // bytes of a message to sign
)

// Routes of Handler, and who may call each. Every path but POST /pair needs
// a paired host (HostHeader naming a key paired on the screen); /pair needs
// a host key (a signed request) and the person's Approve. GET /status is
// also served without HostHeader, to the node's own services (root on the
// node, not through the host API).
//
//	GET  /status          Status
//	POST /pair            PairRequest -> PairAnswer (the screen shows PairCode; 429
//	                      for PairCooldown after a pairing refused or unanswered)
//	POST /unpair          {} -> {"unpaired": true}: forgets the asking host
//	POST /setup           SetupRequest -> {"state": "locked"}
//	POST /unlock          UnlockRequest -> Status (the screen asks the PIN)
//	POST /lock            {} -> Status
//	GET  /accounts        AccountsAnswer (unlocks first)
//	POST /address         AddressRequest -> AddressAnswer
//	POST /sign/psbt       PSBTRequest -> PSBTAnswer
//	POST /sign/skycoin    SkycoinRequest -> SkycoinAnswer
//	POST /sign/message    MessageRequest -> MessageAnswer
//
// Errors are {"error": "..."} with 400 (malformed or refused request, the
// reason given), 401 (no paired host), 403 (the person rejected, or the
// time ran out), 409 (busy, or a seed exists), 412 (no seed), 423 (wrong
// PIN, with the attempts left; the seed erased), 503 (no screen).
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		// Through the host API (the status service always names the
		// signer) only a paired host learns the state, the wrong PINs
		// and the counts; a root service on the node asks without a
		// host.
		if _, ok := s.host(r); !ok && r.Header.Get(HostHeader) != "" {
			writeError(w, 401, errors.New("wallet: this computer is not paired with the wallet (skyfleet wallet pair)"))
			return
		}
		writeJSON(w, 200, s.Status())
	})
	mux.HandleFunc("POST /pair", s.servePair)
	paired := func(pattern string, h func(context.Context, string, []byte) (any, error)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			host, ok := s.host(r)
			if !ok {
				writeError(w, 401, errors.New("wallet: this computer is not paired with the wallet (skyfleet wallet pair)"))
				return
			}
			body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
			if err != nil {
				writeError(w, 400, err)
				return
			}
			if len(body) > MaxBody {
				writeError(w, 400, fmt.Errorf("wallet: the request is over %d bytes", MaxBody))
				return
			}
			out, err := h(r.Context(), host, body)
			if err != nil {
				writeError(w, statusOf(err), err)
				return
			}
			writeJSON(w, 200, out)
		})
	}
	paired("POST /unpair", s.serveUnpair)
	paired("POST /setup", s.serveSetup)
	paired("POST /unlock", s.serveUnlock)
	paired("POST /lock", s.serveLock)
	paired("GET /accounts", s.serveAccounts)
	paired("POST /address", s.serveAddress)
	paired("POST /sign/psbt", s.servePSBT)
	paired("POST /sign/skycoin", s.serveSkycoin)
	paired("POST /sign/message", s.serveMessage)
	return mux
}

// host returns the paired host's key from HostHeader.
func (s *Service) host(r *http.Request) (string, bool) {
	k := strings.ToLower(r.Header.Get(HostHeader))
	if len(k) != 66 {
		return "", false
	}
	return k, s.hosts.paired(k)
}

// ErrRequest wraps every reason a request body is refused before anything
// is shown.
var ErrRequest = errors.New("wallet: bad request")

// decode reads one JSON object of type T with no unknown fields.
func decode[T any](b []byte) (T, error) {
	var v T
	if len(bytes.TrimSpace(b)) == 0 {
		b = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return v, fmt.Errorf("%w: %v", ErrRequest, err)
	}
	if dec.More() {
		return v, fmt.Errorf("%w: more than one JSON value", ErrRequest)
	}
	return v, nil
}

// statusOf maps an error to its HTTP status.
func statusOf(err error) int {
	var ref *Refusal
	var wrong *keystore.WrongPIN
	var soon *keystore.TooSoon
	switch {
	case errors.Is(err, ErrBusy), errors.Is(err, keystore.ErrExists):
		return http.StatusConflict
	case errors.As(err, &ref):
		return http.StatusForbidden
	case errors.Is(err, ErrNoSeed), errors.Is(err, keystore.ErrNoSeed):
		return http.StatusPreconditionFailed
	case errors.As(err, &wrong), errors.As(err, &soon), errors.Is(err, keystore.ErrWiped), errors.Is(err, keystore.ErrPINFormat):
		return http.StatusLocked
	case errors.Is(err, ErrNoScreen):
		return http.StatusServiceUnavailable
	case errors.Is(err, keystore.ErrCorrupt):
		return http.StatusInternalServerError
	}
	return http.StatusBadRequest
}

// ErrNoScreen is what an Asker returns (wrapped) when no screen can ask.
var ErrNoScreen = errors.New("wallet: no screen to ask on")

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

// A pairing question waits at most PairTimeout; after one that was refused
// or not answered, pairing is refused (429) for PairCooldown: any key may
// ask, and a stranger must not be able to keep the screen busy.
const (
	PairTimeout  = time.Minute
	PairCooldown = 30 * time.Second
)

// PairRequest asks to pair the signing host.
type PairRequest struct {
	// Name is how the screen names the host, e.g. "alice's laptop":
	// 1 to MaxName printable runes.
	Name string `json:"name"`
}

// PairAnswer is the answer to an approved pairing.
type PairAnswer struct {
	Paired bool   `json:"paired"`
	Code   string `json:"code"` // PairCode of the key paired
}

// PairCode is what the screen and the host both show at pairing, for the
// person to compare: 60 bits of SHA-256 over the host's public key, as
// 12 base32 characters in three groups. A man in the middle who answers
// with a key of its own shows another code; finding a key with the same
// code takes about 2^59 tries, not possible in the minutes a pairing
// waits.
func PairCode(hostKey []byte) string {
	h := sha256.Sum256(append([]byte("skyfleet wallet pairing v1\x00"), hostKey...))
	c := base32.StdEncoding.EncodeToString(h[:8])[:12]
	return c[:4] + "-" + c[4:8] + "-" + c[8:]
}

func (s *Service) servePair(w http.ResponseWriter, r *http.Request) {
	k := strings.ToLower(r.Header.Get(HostHeader))
	key, err := hex.DecodeString(k)
	if err != nil || len(key) != 33 {
		writeError(w, 401, errors.New("wallet: pairing needs a request signed by the host's key (skyfleet wallet pair)"))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 4096))
	if err != nil {
		writeError(w, 400, err)
		return
	}
	req, err := decode[PairRequest](body)
	if err == nil {
		err = checkText("name", req.Name, MaxName)
	}
	if err != nil {
		writeError(w, 400, err)
		return
	}
	done, err := s.take()
	if err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	defer done()
	s.mu.Lock()
	wait := s.pairAfter.Sub(s.cfg.Now())
	s.mu.Unlock()
	if wait > 0 {
		// Anyone on the network may ask to pair; a stranger asking again
		// and again must not keep the screen from its owner.
		writeError(w, http.StatusTooManyRequests, fmt.Errorf("wallet: a pairing was refused or not answered just now; try again in %d s", int(wait/time.Second)+1))
		return
	}
	code := PairCode(key)
	err = s.confirm(r.Context(), Question{Title: "Pair with a computer?",
		Rows: []Row{{"Computer", req.Name}, {"Code", code},
			{"Check", "pair only if the computer shows the same code"}},
		Warnings: []string{"A paired computer can ask for signatures; each still needs your Approve here."},
		Approve:  "Pair", Reject: "Refuse", Timeout: PairTimeout})
	var ref *Refusal
	if errors.As(err, &ref) {
		s.mu.Lock()
		s.pairAfter = s.cfg.Now().Add(PairCooldown)
		s.mu.Unlock()
	}
	if err == nil {
		err = s.hosts.add(k, req.Name)
	}
	if err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	s.cfg.Logf("wallet: paired a computer (code %s)", code)
	writeJSON(w, 200, PairAnswer{Paired: true, Code: code})
}

// checkText refuses what the screen cannot show as it is: empty, too long,
// not UTF-8, control or bidirectional characters.
func checkText(what, v string, max int) error {
	switch {
	case v == "":
		return fmt.Errorf("%w: %s is empty", ErrRequest, what)
	case !utf8.ValidString(v):
		return fmt.Errorf("%w: %s is not UTF-8", ErrRequest, what)
	case utf8.RuneCountInString(v) > max:
		return fmt.Errorf("%w: %s is over %d characters", ErrRequest, what, max)
	}
	for _, c := range v {
		if unicode.IsControl(c) || unicode.Is(unicode.Bidi_Control, c) || c == '\u2028' || c == '\u2029' {
			return fmt.Errorf("%w: %s holds the control character %U", ErrRequest, what, c)
		}
	}
	return nil
}

func (s *Service) serveUnpair(_ context.Context, host string, body []byte) (any, error) {
	if _, err := decode[struct{}](body); err != nil {
		return nil, err
	}
	ok, err := s.hosts.remove(host)
	return map[string]bool{"unpaired": ok}, err
}

// SetupRequest starts making (or restoring) a seed on the screen.
type SetupRequest struct {
	Words   int  `json:"words"`   // 12 or 24; 0 is 24
	Restore bool `json:"restore"` // type existing words instead
}

func (s *Service) serveSetup(ctx context.Context, _ string, body []byte) (any, error) {
	req, err := decode[SetupRequest](body)
	if err != nil {
		return nil, err
	}
	if req.Words == 0 {
		req.Words = 24
	}
	if err := s.Setup(ctx, req.Words, req.Restore); err != nil {
		return nil, err
	}
	return map[string]State{"state": s.state()}, nil
}

// UnlockRequest unlocks the wallet: the screen asks for the PIN.
type UnlockRequest struct {
	// Passphrase is the BIP39 passphrase (a secret: never logged or
	// answered); "" for none. Each passphrase opens another wallet.
	Passphrase string `json:"passphrase,omitempty"`
}

func (s *Service) serveUnlock(ctx context.Context, host string, body []byte) (any, error) {
	req, err := decode[UnlockRequest](body)
	if err != nil {
		return nil, err
	}
	if len(req.Passphrase) > 256 {
		return nil, fmt.Errorf("%w: the passphrase is over 256 bytes", ErrRequest)
	}
	done, err := s.take()
	if err != nil {
		return nil, err
	}
	defer done()
	if req.Passphrase == "" {
		// Unlocking an open wallet again asks for the PIN again: the
		// request is explicit.
		s.Lock()
	}
	if _, err := s.openKeys(ctx, "Open the wallet for this computer", s.hostName(host), req.Passphrase); err != nil {
		return nil, err
	}
	return s.Status(), nil
}

func (s *Service) serveLock(_ context.Context, _ string, body []byte) (any, error) {
	if _, err := decode[struct{}](body); err != nil {
		return nil, err
	}
	done, err := s.take()
	if err != nil {
		return nil, err
	}
	defer done()
	s.Lock()
	return s.Status(), nil
}

// hostName is the name a host was paired under.
func (s *Service) hostName(key string) string { return s.hosts.name(key) }
