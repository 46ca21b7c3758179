// Package wallet is the node's hardware wallet: the one process that holds
// keys. It keeps the BIP39 seed sealed under the PIN (wallet/keystore), and
// signs Skycoin transactions, Bitcoin PSBTs and messages for a paired host
// computer, each only after the person holding the node has seen what it
// does on the touchscreen and tapped Approve (and typed the PIN, when the
// wallet is locked). The host is assumed hostile: what the screen shows is
// computed here from what is signed, never taken from the host's words.
//
// The service sees the screen through Asker, an interface it owns (the ui
// service's approval API on the node, a script in tests), and is reached
// through Handler, an HTTP API on a Unix socket that only root's processes
// (the status service, which proxies the host API) can open. PID 1 runs it
// as its own uid in a network namespace of its own (docs/architecture.md
// §Wallet).
//
// One request is served at a time; another that arrives meanwhile is
// answered 409 at once, so a host cannot queue screens behind the one the
// person is reading.
package wallet

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/skyfleet/skyfleet/wallet/keystore"
)

// Row is one line of a question: a label and its value.
type Row struct{ Label, Value string }

// Question kinds.
const (
	KindApprove = ""       // Approve or Reject, then the PIN if PIN is set
	KindChoose  = "choose" // one of Choices
	KindWord    = "word"   // a word of the BIP39 English list, typed
)

// Question is what the wallet asks the person at the screen.
type Question struct {
	Kind     string
	Title    string
	Rows     []Row
	Warnings []string
	// PIN asks for the PIN after Approve (KindApprove only).
	PIN bool
	// Choices are the answers of a KindChoose question, 2 to 6.
	Choices []string
	// Approve and Reject label the buttons; "" keeps the screen's own.
	Approve, Reject string
	// Timeout is how long to wait for a decision.
	Timeout time.Duration
}

// Reply is the person's answer.
type Reply struct {
	Approved bool
	// PIN is the PIN typed after Approve; the wallet clears it after use.
	PIN []byte
	// Choice is the index of the choice tapped (KindChoose).
	Choice int
	// Text is the word typed (KindWord); cleared after use.
	Text []byte
	// Reason says why it is not an approval: "rejected", "timed out",
	// "busy", ...
	Reason string
}

// Asker asks the person at the screen. The wallet owns this interface; on
// the node it is the ui service's approval API. Ask returns when the person
// decided, the question's time ran out or ctx ended (which withdraws it).
// Errors: no screen, or the screen service failed; a reply that is not an
// approval is not an error.
type Asker interface {
	Ask(ctx context.Context, q Question) (Reply, error)
}

// Defaults of Config.
const (
	DefaultUnlockFor = 5 * time.Minute
	DefaultTimeout   = 2 * time.Minute
	// MaxHosts is how many host computers may be paired at once; pairing
	// one more forgets the one unused longest.
	MaxHosts = 8
	// HostExpiry forgets a host unused this long.
	HostExpiry = 365 * 24 * time.Hour
)

// Config configures a Service.
type Config struct {
	// Dir is the wallet's own directory (/perm/wallet, mode 0700).
	Dir string
	// MaxAttempts is the wrong PINs in a row that erase the seed
	// (fleet.toml [wallet] max_pin_tries); 0 is keystore's default, 10.
	MaxAttempts int
	// UnlockFor is how long the keys stay open after the last use; 0 is
	// DefaultUnlockFor.
	UnlockFor time.Duration
	// Timeout is how long a question waits on the screen; 0 is
	// DefaultTimeout.
	Timeout time.Duration
	// Params are argon2id's costs for a new seed; zero is keystore's.
	Params keystore.Params
	// Rand is the random source of new seeds and of the questions'
	// decoys; nil is crypto/rand (the kernel's).
	Rand io.Reader
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// Logf receives one line per event. Never a key, a word, a PIN or a
	// passphrase: events say what happened, not with what.
	Logf func(format string, args ...any)
}

// Service is the wallet.
type Service struct {
	cfg   Config
	store *keystore.Store
	ask   Asker
	hosts *hostList

	turn chan struct{} // held by the request being served

	mu        sync.Mutex
	keys      *keys     // nil while locked
	lastUse   time.Time // of the keys
	timer     *time.Timer
	signed    uint64
	refused   uint64
	pairAfter time.Time // no pairing question before this
}

// New returns the wallet over cfg.Dir, asking through ask. Errors: the
// paired hosts' file is unreadable (it is moved aside and reported by the
// error; the wallet starts with no host paired).
func New(cfg Config, ask Asker) (*Service, error) {
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.UnlockFor <= 0 {
		cfg.UnlockFor = DefaultUnlockFor
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	s := &Service{cfg: cfg, ask: ask, turn: make(chan struct{}, 1),
		store: &keystore.Store{Dir: cfg.Dir, MaxAttempts: cfg.MaxAttempts, Params: cfg.Params, Now: cfg.Now}}
	h, err := loadHosts(cfg.Dir, cfg.Now)
	s.hosts = h
	return s, err
}

// State is the wallet's state as the status path reports it.
type State string

// States.
const (
	NoSeed   State = "no seed"  // set up a wallet (POST /setup)
	Locked   State = "locked"   // the next request asks for the PIN
	Unlocked State = "unlocked" // requests ask for Approve only
)

// state returns the wallet's state.
func (s *Service) state() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys != nil {
		return Unlocked
	}
	if !s.store.Exists() {
		return NoSeed
	}
	return Locked
}

// ErrBusy: another request holds the screen.
var ErrBusy = errors.New("wallet: another request is on the screen; try again when it is done")

// take waits for nothing: it holds the turn or returns ErrBusy.
func (s *Service) take() (func(), error) {
	select {
	case s.turn <- struct{}{}:
		return func() { <-s.turn }, nil
	default:
		return nil, ErrBusy
	}
}

// Lock forgets the keys now. Callers outside a request hold the turn
// first (a request may be signing with them).
func (s *Service) Lock() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lockLocked()
}

func (s *Service) lockLocked() {
	if s.keys != nil {
		s.keys.zero()
		s.keys = nil
		s.cfg.Logf("wallet: locked")
	}
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
}

// useKeys returns the open keys, or nil while locked, and restarts the
// lock timer.
func (s *Service) useKeys() *keys {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys == nil {
		return nil
	}
	s.touchLocked()
	return s.keys
}

func (s *Service) touchLocked() {
	s.lastUse = s.cfg.Now()
	if s.timer != nil {
		s.timer.Stop()
	}
	s.timer = time.AfterFunc(s.cfg.UnlockFor, s.expire)
}

// expire locks the wallet when its time is up, unless a request holds the
// turn (and may be using the keys): then it looks again a second later.
func (s *Service) expire() {
	select {
	case s.turn <- struct{}{}:
		s.Lock()
		<-s.turn
	default:
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.keys != nil {
			s.timer = time.AfterFunc(time.Second, s.expire)
		}
	}
}

// unlock opens the keys with pin (and the BIP39 passphrase), replacing
// those open. Errors are keystore's (*keystore.WrongPIN, ErrWiped, ...).
func (s *Service) unlock(pin []byte, passphrase string) (*keys, error) {
	start := time.Now()
	entropy, err := s.store.Unlock(string(pin))
	// argon2id's 64 MiB are garbage now, whatever the PIN: give them
	// back to the system rather than hold them (a Pi 3 has 1 GiB for
	// everything).
	debug.FreeOSMemory()
	if err != nil {
		var wrong *keystore.WrongPIN
		switch {
		case errors.As(err, &wrong):
			s.cfg.Logf("wallet: wrong PIN; %d attempts left", wrong.Left)
		case errors.Is(err, keystore.ErrWiped):
			s.cfg.Logf("wallet: too many wrong PINs: the seed was erased")
			s.Lock()
		}
		return nil, err
	}
	k, err := openKeys(entropy, passphrase)
	clear(entropy)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lockLocked()
	s.keys = k
	s.touchLocked()
	s.cfg.Logf("wallet: unlocked in %d ms", time.Since(start).Milliseconds())
	return k, nil
}

// openKeys returns the open keys, asking for the PIN on the screen first
// when the wallet is locked (why says what the keys are wanted for, e.g.
// "Sign a Bitcoin transaction"). The caller holds the turn, so the keys
// stay open until it ends. Errors: ErrNoSeed, a *Refusal, the Asker's,
// unlock's (*keystore.WrongPIN, keystore.ErrWiped, ...).
func (s *Service) openKeys(ctx context.Context, why, host, passphrase string) (*keys, error) {
	if k := s.useKeys(); k != nil && passphrase == "" {
		return k, nil
	}
	if !s.store.Exists() {
		return nil, ErrNoSeed
	}
	rows := []Row{{"For", why}}
	if host != "" {
		rows = append(rows, Row{"Asked by", host})
	}
	if passphrase != "" {
		rows = append(rows, Row{"Passphrase", "given by the computer (the wallet it opens depends on it)"})
	}
	if n := s.store.Attempts(); n > 0 {
		rows = append(rows, Row{"Wrong PINs", fmt.Sprintf("%d in a row; %d more erase the wallet", n, s.maxPINs()-n)})
	}
	r, err := s.ask.Ask(ctx, Question{Title: "Unlock the wallet", Rows: rows, PIN: true,
		Approve: "Unlock", Reject: "Cancel", Timeout: s.cfg.Timeout})
	defer clear(r.PIN)
	if err != nil {
		return nil, err
	}
	if !r.Approved {
		return nil, &Refusal{Reason: r.Reason}
	}
	return s.unlock(r.PIN, passphrase)
}

// ErrNoSeed: the wallet has no seed yet (set one up first).
var ErrNoSeed = errors.New("wallet: no seed on this device: set one up first (skyfleet wallet setup)")

// Refusal is a request the person did not approve.
type Refusal struct{ Reason string }

// Error says why.
func (r *Refusal) Error() string {
	if r.Reason == "" {
		return "wallet: not approved"
	}
	return "wallet: not approved: " + r.Reason
}

// count notes a signature made or refused, for the status.
func (s *Service) count(ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok {
		s.signed++
	} else {
		s.refused++
	}
}

// Status is the wallet's status document: nothing secret, nothing about
// the keys beyond whether they are open.
type Status struct {
	State State `json:"state"`
	// WrongPINs is the wrong PINs in a row so far; MaxPINs erase.
	WrongPINs int `json:"wrong_pins"`
	MaxPINs   int `json:"max_pins"`
	// UnlockedForS is how long the keys stay open unused, in seconds.
	UnlockedForS int    `json:"unlocked_for_s"`
	PairedHosts  int    `json:"paired_hosts"`
	Signed       uint64 `json:"signed"`
	Refused      uint64 `json:"refused"`
	// RSSKiB and PeakKiB are the process's resident memory now and at
	// most (VmRSS, VmHWM), in KiB; 0 where /proc does not say.
	RSSKiB  int `json:"rss_kib"`
	PeakKiB int `json:"peak_kib"`
}

// Status returns the wallet's status.
func (s *Service) Status() Status {
	st := Status{State: s.state(), WrongPINs: s.store.Attempts(), MaxPINs: s.cfg.MaxAttempts,
		PairedHosts: s.hosts.count()}
	if st.MaxPINs == 0 {
		st.MaxPINs = keystore.DefaultMaxAttempts
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st.Signed, st.Refused = s.signed, s.refused
	st.RSSKiB, st.PeakKiB = memory()
	if s.keys != nil {
		st.UnlockedForS = int((s.cfg.UnlockFor - s.cfg.Now().Sub(s.lastUse)) / time.Second)
	}
	return st
}

// must is the message of an error that cannot happen with valid input.
func must(err error, what string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("wallet: %s: %w", what, err)
}

// memory reads VmRSS and VmHWM from /proc/self/status, in KiB.
func memory() (rss, peak int) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(l, ":")
		n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		switch k {
		case "VmRSS":
			rss = n
		case "VmHWM":
			peak = n
		}
	}
	return rss, peak
}
