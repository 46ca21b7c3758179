package wallet

import (
	"context"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/skyfleet/skyfleet/wallet/bip39"
	"github.com/skyfleet/skyfleet/wallet/keystore"
)

// confirmations is how many words the person is asked back, each among
// four, after writing them down: a missed or misspelt word is found before
// the seed is kept (a guess passes all three one time in 64).
const confirmations = 3

// ErrSetup wraps the reasons a setup ended without a seed.
var ErrSetup = errors.New("wallet: setup ended, nothing was kept")

// Setup makes a new seed of words words (12 or 24) on the device, from the
// kernel's random source, and keeps it under a new PIN: the words are shown
// on the screen one at a time, three are asked back, the PIN is typed
// twice. With restore, the person types the words of an existing seed on
// the screen's keyboard instead. Nothing leaves the device: the host learns
// only that it worked. Errors: keystore.ErrExists, ErrBusy, a *Refusal
// (cancelled, timed out), ErrSetup with the reason (a wrong confirmation,
// the PINs differ, the typed words fail BIP39's checksum).
func (s *Service) Setup(ctx context.Context, words int, restore bool) error {
	if words != 12 && words != 24 {
		return fmt.Errorf("%w: a seed has 12 or 24 words, not %d", ErrSetup, words)
	}
	done, err := s.take()
	if err != nil {
		return err
	}
	defer done()
	if s.store.Exists() {
		return keystore.ErrExists
	}
	what := "Make a new wallet"
	rows := []Row{{"Words", fmt.Sprintf("%d, shown on this screen only; have paper and pen ready", words)},
		{"Then", "choose a PIN of 4 to 12 digits"}}
	if restore {
		what = "Restore a wallet"
		rows = []Row{{"Words", fmt.Sprintf("type your %d words on this screen's keyboard", words)},
			{"Then", "choose a PIN of 4 to 12 digits"}}
	}
	if err := s.confirm(ctx, Question{Title: what, Rows: rows, Approve: "Start", Reject: "Cancel"}); err != nil {
		return err
	}
	var entropy []byte
	if restore {
		entropy, err = s.typeWords(ctx, words)
	} else {
		entropy, err = s.newWords(ctx, words)
	}
	defer clear(entropy)
	if err != nil {
		return err
	}
	pin, err := s.newPIN(ctx)
	defer clear(pin)
	if err != nil {
		return err
	}
	err = s.store.Create(entropy, string(pin))
	debug.FreeOSMemory() // argon2id's 64 MiB, as after an unlock
	if err != nil {
		return err
	}
	s.cfg.Logf("wallet: a seed was %s", map[bool]string{false: "made", true: "restored"}[restore])
	return nil
}

// confirm asks q and returns nil when approved, else a *Refusal. q waits
// Config.Timeout, or its own Timeout when that is shorter.
func (s *Service) confirm(ctx context.Context, q Question) error {
	if q.Timeout <= 0 || q.Timeout > s.cfg.Timeout {
		q.Timeout = s.cfg.Timeout
	}
	r, err := s.ask.Ask(ctx, q)
	clear(r.PIN)
	clear(r.Text)
	if err != nil {
		return err
	}
	if !r.Approved {
		return &Refusal{Reason: r.Reason}
	}
	return nil
}

// newWords makes and shows a new mnemonic and asks some of it back.
func (s *Service) newWords(ctx context.Context, words int) ([]byte, error) {
	entropy := make([]byte, words/3*4)
	if _, err := io.ReadFull(s.cfg.Rand, entropy); err != nil {
		return nil, fmt.Errorf("wallet: the random source: %w", err)
	}
	m, err := bip39.NewMnemonic(entropy)
	if err != nil {
		clear(entropy)
		return nil, err
	}
	list := strings.Fields(m)
	defer clear(list)
	// One word a screen ("Word 3 of 12"), as hardware wallets show them:
	// one at a time is hard to photograph whole over a shoulder, and each
	// is written down before the next appears.
	for i, w := range list {
		q := Question{Title: fmt.Sprintf("Word %d of %d", i+1, len(list)),
			Rows: []Row{{fmt.Sprintf("%d", i+1), w}}, Approve: "Next", Reject: "Cancel"}
		if i == 0 {
			q.Warnings = []string{"Write these down in order. Anyone who sees them owns the wallet."}
		}
		if err := s.confirm(ctx, q); err != nil {
			clear(entropy)
			return nil, err
		}
	}
	asked := map[int]bool{}
	for range confirmations {
		i := s.randN(len(list))
		for asked[i] {
			i = s.randN(len(list))
		}
		asked[i] = true
		choices, right := s.decoys(list[i])
		r, err := s.ask.Ask(ctx, Question{Kind: KindChoose, Title: fmt.Sprintf("Which is word %d?", i+1),
			Choices: choices, Reject: "Cancel", Timeout: s.cfg.Timeout})
		if err == nil && !r.Approved {
			err = &Refusal{Reason: r.Reason}
		}
		if err == nil && r.Choice != right {
			err = fmt.Errorf("%w: that was not word %d; start again and check what was written", ErrSetup, i+1)
		}
		if err != nil {
			clear(entropy)
			return nil, err
		}
	}
	return entropy, nil
}

// decoys returns word among three other words of the list, in a random
// order, and where word is.
func (s *Service) decoys(word string) ([]string, int) {
	out := []string{word}
	for len(out) < 4 {
		w := bip39.Word(s.randN(2048))
		dup := false
		for _, o := range out {
			dup = dup || o == w
		}
		if !dup {
			out = append(out, w)
		}
	}
	right := s.randN(4)
	out[0], out[right] = out[right], out[0]
	return out, right
}

// randN is a uniform number below n (n ≤ 2048) from the random source.
func (s *Service) randN(n int) int {
	var b [4]byte
	for {
		if _, err := io.ReadFull(s.cfg.Rand, b[:]); err != nil {
			panic("wallet: the random source failed: " + err.Error())
		}
		// Rejection sampling: no bias toward small numbers.
		v := binary.BigEndian.Uint32(b[:]) >> 11 // 21 bits
		if lim := uint32(1<<21) - uint32(1<<21)%uint32(n); v < lim {
			return int(v % uint32(n))
		}
	}
}

// typeWords asks for words BIP39 words, one screen each, and returns their
// entropy. Errors: a *Refusal, ErrSetup for a failed checksum.
func (s *Service) typeWords(ctx context.Context, words int) ([]byte, error) {
	var typed []byte
	defer func() { clear(typed) }()
	for i := range words {
		r, err := s.ask.Ask(ctx, Question{Kind: KindWord, Title: fmt.Sprintf("Word %d of %d", i+1, words),
			Reject: "Cancel", Timeout: s.cfg.Timeout})
		if err == nil && !r.Approved {
			err = &Refusal{Reason: r.Reason}
		}
		if err != nil {
			clear(r.Text)
			return nil, err
		}
		if i > 0 {
			typed = append(typed, ' ')
		}
		typed = append(typed, r.Text...)
		clear(r.Text)
	}
	entropy, err := bip39.EntropyFromMnemonic(string(typed))
	if err != nil {
		return nil, fmt.Errorf("%w: the words typed are not a seed (%v); start again and check each", ErrSetup, err)
	}
	return entropy, nil
}

// newPIN asks for a new PIN twice.
func (s *Service) newPIN(ctx context.Context) ([]byte, error) {
	ask := func(title string) ([]byte, error) {
		r, err := s.ask.Ask(ctx, Question{Title: title, PIN: true, Approve: "Next", Reject: "Cancel",
			Rows:    []Row{{"PIN", fmt.Sprintf("%d to %d digits; %d wrong in a row erase the wallet", keystore.MinPIN, keystore.MaxPIN, s.maxPINs())}},
			Timeout: s.cfg.Timeout})
		if err == nil && !r.Approved {
			err = &Refusal{Reason: r.Reason}
		}
		if err != nil {
			clear(r.PIN)
			return nil, err
		}
		return r.PIN, nil
	}
	pin, err := ask("Choose a PIN")
	if err != nil {
		return nil, err
	}
	if len(pin) < keystore.MinPIN || len(pin) > keystore.MaxPIN {
		clear(pin)
		return nil, fmt.Errorf("%w: %v", ErrSetup, keystore.ErrPINFormat)
	}
	again, err := ask("Repeat the PIN")
	defer clear(again)
	if err != nil {
		clear(pin)
		return nil, err
	}
	if subtle.ConstantTimeCompare(again, pin) != 1 {
		clear(pin)
		return nil, fmt.Errorf("%w: the two PINs differ", ErrSetup)
	}
	return pin, nil
}

func (s *Service) maxPINs() int {
	if s.cfg.MaxAttempts > 0 {
		return s.cfg.MaxAttempts
	}
	return keystore.DefaultMaxAttempts
}
