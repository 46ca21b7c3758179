// Package keystore keeps the wallet's seed on the card, encrypted under the
// PIN, and counts wrong PINs so that guessing ends in a wipe.
//
// The seed's entropy (the BIP39 mnemonic's, 16 to 32 bytes) is sealed with
// XChaCha20-Poly1305 under a key derived from the PIN by argon2id, whose
// parameters and salt are written in the file, so that a file made on one
// device opens on another and parameters can grow. The AEAD's tag is the PIN
// check: there is no stored hash of the PIN to test guesses against.
//
// The wrong-PIN counter is its own file, and it is written (durably: temp
// file, fsync, rename, fsync the directory) before each comparison, so a
// process killed, or a card pulled, at any moment after an attempt began has
// counted it. An attempt made with the counter at the limit, or the attempt
// that reaches it, wipes the seed. After each wrong PIN the next attempt
// waits a delay that doubles; the delay starts again after a restart, so a
// power cycle does not skip it.
package keystore

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/skyfleet/skyfleet/internal/durable"
)

// File names in the store's directory.
const (
	SeedFile     = "seed.json"
	AttemptsFile = "wrong-pins"
)

// Params are argon2id's costs (RFC 9106 §3.1): passes, memory in KiB, lanes.
type Params struct {
	Time    uint32 `json:"time"`
	Memory  uint32 `json:"memory_kib"`
	Threads uint8  `json:"threads"`
}

// DefaultParams are the costs a new seed file gets: 64 MiB, 3 passes, 4
// lanes, RFC 9106 §4's second recommended option, which fits a Pi 3's
// 1 GiB beside the node. The unlock time they cost is measured and reported
// in the README.
var DefaultParams = Params{Time: 3, Memory: 64 * 1024, Threads: 4}

// Limits the store holds a file's parameters to, so a doctored file cannot
// make an unlock take a day or all the memory.
const (
	maxMemoryKiB = 512 * 1024
	maxTime      = 16
)

// Defaults.
const (
	// DefaultMaxAttempts is how many wrong PINs in a row wipe the seed.
	DefaultMaxAttempts = 10
	// MinPIN and MaxPIN bound a PIN's digits.
	MinPIN, MaxPIN = 4, 12
)

// Errors.
var (
	// ErrNoSeed: the store holds no seed (never made, or wiped).
	ErrNoSeed = errors.New("keystore: no seed on this device")
	// ErrWiped: this attempt reached the limit of wrong PINs and the seed
	// was erased.
	ErrWiped = errors.New("keystore: too many wrong PINs: the seed was erased")
	// ErrPINFormat: a PIN has MinPIN to MaxPIN digits.
	ErrPINFormat = fmt.Errorf("keystore: a PIN has %d to %d digits", MinPIN, MaxPIN)
	// ErrExists: Create would overwrite a seed.
	ErrExists = errors.New("keystore: a seed exists already")
	// ErrCorrupt: the seed file is unreadable. It is left where it is, not
	// moved aside: it is the only copy of the keys on the device, and a
	// person with the backup words or a data recovery service may still
	// want it.
	ErrCorrupt = errors.New("keystore: the seed file is damaged")
)

// WrongPIN is returned for a wrong PIN while attempts are left.
type WrongPIN struct {
	Left int           // attempts left before the wipe
	Wait time.Duration // the delay before the next attempt is taken
}

// Error says how many attempts are left and when the next is taken.
func (e *WrongPIN) Error() string {
	return fmt.Sprintf("keystore: wrong PIN: %d attempts left before the seed is erased; the next in %v", e.Left, e.Wait)
}

// TooSoon is returned for an attempt made before the delay after the last
// wrong PIN has passed; it is not counted.
type TooSoon struct{ Wait time.Duration }

// Error says how long to wait.
func (e *TooSoon) Error() string {
	return fmt.Sprintf("keystore: wait %v before the next PIN", e.Wait.Round(time.Second))
}

// Store is a seed directory. Its methods may be called from several
// goroutines; attempts are serialised.
type Store struct {
	// Dir holds the files; the wallet's own, mode 0700.
	Dir string
	// MaxAttempts is the wrong PINs in a row that wipe; 0 is
	// DefaultMaxAttempts.
	MaxAttempts int
	// Params are the costs of a seed Create makes; zero is DefaultParams.
	Params Params
	// Now is the clock for the delays; nil is time.Now.
	Now func() time.Time
	// AfterCount, if set, runs after the counter is on the card and before
	// the PIN is tried: tests kill the process there.
	AfterCount func()

	mu       sync.Mutex
	notUntil time.Time // no attempt before this
	started  bool
}

// sealed is the seed file.
type sealed struct {
	Version int    `json:"version"`
	KDF     string `json:"kdf"` // "argon2id"
	Params  Params `json:"params"`
	Salt    []byte `json:"salt"`
	Nonce   []byte `json:"nonce"`
	Box     []byte `json:"box"` // XChaCha20-Poly1305 of the entropy
}

func (s *Store) max() int {
	if s.MaxAttempts > 0 {
		return s.MaxAttempts
	}
	return DefaultMaxAttempts
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func checkPIN(pin string) error {
	if len(pin) < MinPIN || len(pin) > MaxPIN || strings.Trim(pin, "0123456789") != "" {
		return ErrPINFormat
	}
	return nil
}

// delay is the wait after n wrong PINs in a row: none after the first two,
// then 1 s doubling to at most 10 min.
func delay(n int) time.Duration {
	if n < 3 {
		return 0
	}
	d := time.Second << min(n-3, 10)
	return min(d, 10*time.Minute)
}

// Exists reports whether the store holds a seed. A seed file beside a
// counter that reads at the limit is one whose wipe was decided but did not
// finish (a power cut between zeroing the file and unlinking it leaves a
// file of zeros): the wipe is finished here, so setup can make a new seed,
// and Exists reports false. A counter that cannot be read is left to
// Unlock, which counts it as the limit: a status poll meeting a passing
// read error must not erase the seed.
func (s *Store) Exists() bool {
	// Without the lock while the counter is below the limit: an unlock
	// holds it through argon2id (seconds on a Pi), and a status page must
	// not wait for that.
	if _, err := os.Stat(filepath.Join(s.Dir, SeedFile)); err != nil {
		return false
	}
	if n, ok := s.counted(); !ok || n < s.max() {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exists()
}

// exists is Exists with s.mu held.
func (s *Store) exists() bool {
	if _, err := os.Stat(filepath.Join(s.Dir, SeedFile)); err != nil {
		return false
	}
	if n, ok := s.counted(); ok && n >= s.max() {
		// Only an I/O error keeps the file; then it still counts as there.
		return s.wipe() != nil
	}
	return true
}

// Create seals entropy under pin into a new seed file and clears the
// counter. Errors: ErrExists, ErrPINFormat, bad entropy, I/O.
func (s *Store) Create(entropy []byte, pin string) error {
	if err := checkPIN(pin); err != nil {
		return err
	}
	if n := len(entropy); n < 16 || n > 32 || n%4 != 0 {
		return fmt.Errorf("keystore: %d bytes of entropy; a BIP39 seed has 16 to 32", n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exists() {
		return ErrExists
	}
	p := s.Params
	if p == (Params{}) {
		p = DefaultParams
	}
	f := sealed{Version: 1, KDF: "argon2id", Params: p, Salt: make([]byte, 16), Nonce: make([]byte, chacha20poly1305.NonceSizeX)}
	rand.Read(f.Salt)
	rand.Read(f.Nonce)
	key := argon2.IDKey([]byte(pin), f.Salt, p.Time, p.Memory, p.Threads, chacha20poly1305.KeySize)
	aead, _ := chacha20poly1305.NewX(key)
	clear(key)
	f.Box = aead.Seal(nil, f.Nonce, entropy, []byte("skyfleet wallet seed v1"))
	b, _ := json.Marshal(f)
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return err
	}
	if err := durable.WriteFile(filepath.Join(s.Dir, AttemptsFile), []byte("0\n"), 0o600); err != nil {
		return err
	}
	return durable.WriteFile(filepath.Join(s.Dir, SeedFile), b, 0o600)
}

// Attempts returns the wrong PINs counted in a row. A counter file that
// cannot be read counts as the limit: the store fails closed, since a
// counter an attacker could reset by damaging it would make the limit
// worthless (the file is written durably, so a power cut does not damage
// it).
func (s *Store) Attempts() int {
	n, ok := s.counted()
	if !ok {
		return s.max()
	}
	return n
}

// counted reads the counter: ok is false when the file cannot be read or
// does not hold a count (no file is a count of 0).
func (s *Store) counted() (n int, ok bool) {
	b, err := os.ReadFile(filepath.Join(s.Dir, AttemptsFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0, true
	}
	n, perr := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || perr != nil || n < 0 {
		return 0, false
	}
	return n, true
}

func (s *Store) setAttempts(n int) error {
	return durable.WriteFile(filepath.Join(s.Dir, AttemptsFile), []byte(strconv.Itoa(n)+"\n"), 0o600)
}

// wipe erases the seed file and its directory entry, durably. The sealed
// bytes are overwritten with zeros and synced first, so the blocks an
// unlink would leave on the card do not hold the box an offline search of
// the PIN needs (a flash card's wear levelling may still keep an older
// copy; nothing above the card can reach those).
func (s *Store) wipe() error {
	path := filepath.Join(s.Dir, SeedFile)
	if f, err := os.OpenFile(path, os.O_WRONLY, 0); err == nil {
		if fi, err := f.Stat(); err == nil {
			f.WriteAt(make([]byte, fi.Size()), 0)
			f.Sync()
		}
		f.Close()
	}
	err := os.Remove(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return durable.SyncDir(s.Dir)
}

// Unlock tries pin and returns the seed's entropy (the caller zeroes it).
// The attempt is counted on the card before the PIN is tried. Errors:
// ErrNoSeed, ErrPINFormat (not counted), *TooSoon (not counted), *WrongPIN,
// ErrWiped, ErrCorrupt, I/O (an attempt that could not be counted is not
// made).
func (s *Store) Unlock(pin string) ([]byte, error) {
	if err := checkPIN(pin); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := os.ReadFile(filepath.Join(s.Dir, SeedFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoSeed
	} else if err != nil {
		return nil, err
	}
	n := s.Attempts()
	if !s.started {
		// After a restart the delay of the last wrong PIN starts again.
		s.started = true
		s.notUntil = s.now().Add(delay(n))
	}
	if n >= s.max() {
		// The limit was reached and the wipe did not finish (the process
		// was killed in between): finish it.
		clear(b)
		if err := s.wipe(); err != nil {
			return nil, err
		}
		return nil, ErrWiped
	}
	var f sealed
	if err := json.Unmarshal(b, &f); err != nil || f.Version != 1 || f.KDF != "argon2id" || len(f.Salt) < 16 ||
		len(f.Nonce) != chacha20poly1305.NonceSizeX || f.Params.Time == 0 || f.Params.Time > maxTime ||
		f.Params.Memory < 8*uint32(f.Params.Threads) || f.Params.Memory > maxMemoryKiB || f.Params.Threads == 0 {
		return nil, ErrCorrupt
	}
	if wait := s.notUntil.Sub(s.now()); wait > 0 {
		return nil, &TooSoon{Wait: wait}
	}
	// Count first: whatever happens from here on, this attempt is spent.
	n++
	if err := s.setAttempts(n); err != nil {
		return nil, fmt.Errorf("keystore: counting the attempt: %w", err)
	}
	if s.AfterCount != nil {
		s.AfterCount()
	}
	key := argon2.IDKey([]byte(pin), f.Salt, f.Params.Time, f.Params.Memory, f.Params.Threads, chacha20poly1305.KeySize)
	aead, _ := chacha20poly1305.NewX(key)
	clear(key)
	entropy, err := aead.Open(nil, f.Nonce, f.Box, []byte("skyfleet wallet seed v1"))
	if err == nil {
		if err := s.setAttempts(0); err != nil {
			clear(entropy)
			return nil, err
		}
		s.notUntil = time.Time{}
		return entropy, nil
	}
	if n >= s.max() {
		if err := s.wipe(); err != nil {
			return nil, err
		}
		return nil, ErrWiped
	}
	s.notUntil = s.now().Add(delay(n))
	return nil, &WrongPIN{Left: s.max() - n, Wait: delay(n)}
}
