package wallet

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/skyfleet/skyfleet/services/identity"
	"github.com/skyfleet/skyfleet/wallet/bitcoin"
	"github.com/skyfleet/skyfleet/wallet/skycoin"
)

// SkycoinInput is one input of a Skycoin signing request: the output it
// spends, as the host describes it (checked against the input's UxID, which
// commits to all of it but Created), and the wallet's key for it.
type SkycoinInput struct {
	// Source is the ID of the transaction that made the output, 64 hex.
	Source  string `json:"source"`
	Address string `json:"address"`
	Coins   uint64 `json:"coins"` // droplets
	Hours   uint64 `json:"hours"` // as created
	// Created is the time of the block that made the output (Unix
	// seconds), for the hours it earned since; 0 if unknown. Unverified:
	// the screen says so.
	Created uint64 `json:"created,omitempty"`
	// Path is the wallet's key for Address: "skycoin/N" or
	// m/44'/8000'/a'/c/i.
	Path string `json:"path"`
}

// SkycoinRequest is a Skycoin transaction to sign (Skycoin's binary
// encoding, in hex, without signatures or with empty ones), the outputs it
// spends, and which of its outputs the host says are change (their paths:
// each is checked by deriving its address).
type SkycoinRequest struct {
	Tx     string         `json:"tx"`
	Inputs []SkycoinInput `json:"inputs"`
	Change []string       `json:"change,omitempty"`
	// HeadTime is the chain head's time (Unix seconds), up to which the
	// inputs earned hours; 0 counts none. Unverified.
	HeadTime uint64 `json:"head_time,omitempty"`
}

// NewSkycoinRequest builds the unsigned transaction that spends ins to outs
// (each input named by its UxID, made from its Source and body as Skycoin
// does: UxID) and the request asking the wallet to sign it; change lists
// the wallet's paths that outputs pay back to. Errors: a Source that is not
// 64 hex characters, an address that does not parse.
func NewSkycoinRequest(ins []SkycoinInput, outs []skycoin.Output, change []string) (SkycoinRequest, *skycoin.Transaction, error) {
	tx := &skycoin.Transaction{Out: outs}
	for i, in := range ins {
		sp, err := in.spent()
		if err != nil {
			return SkycoinRequest{}, nil, fmt.Errorf("%w: input %d: %v", ErrRequest, i, err)
		}
		tx.In = append(tx.In, skycoin.UxID(sp.Source, sp.Output))
	}
	return SkycoinRequest{Tx: hex.EncodeToString(tx.Encode()), Inputs: ins, Change: change}, tx, nil
}

// spent reads the output in describes. Errors: a Source that is not 64 hex
// digits, an address that does not parse.
func (in SkycoinInput) spent() (skycoin.Spent, error) {
	src, err := hex.DecodeString(in.Source)
	if err != nil || len(src) != 32 {
		return skycoin.Spent{}, errors.New("source is not 64 hex digits")
	}
	a, err := identity.ParseAddress(in.Address)
	if err != nil {
		return skycoin.Spent{}, err
	}
	return skycoin.Spent{Source: [32]byte(src), Output: skycoin.Output{Address: a, Coins: in.Coins, Hours: in.Hours}, Created: in.Created}, nil
}

// SkycoinAnswer is the signed transaction in hex, and its ID.
type SkycoinAnswer struct {
	Tx   string `json:"tx"`
	TxID string `json:"txid"`
}

// maxChange bounds the change paths of a request.
const maxChange = 8

func (s *Service) serveSkycoin(ctx context.Context, host string, body []byte) (any, error) {
	req, err := decode[SkycoinRequest](body)
	if err != nil {
		return nil, err
	}
	raw, err := hex.DecodeString(req.Tx)
	if err != nil {
		return nil, fmt.Errorf("%w: tx is not hex", ErrRequest)
	}
	tx, err := skycoin.DecodeTransaction(raw)
	if err != nil {
		return nil, err
	}
	if len(req.Inputs) != len(tx.In) || len(req.Inputs) > skycoin.MaxInputs {
		return nil, fmt.Errorf("%w: %d inputs described for a transaction of %d (at most %d)", ErrRequest, len(req.Inputs), len(tx.In), skycoin.MaxInputs)
	}
	if len(req.Change) > maxChange {
		return nil, fmt.Errorf("%w: %d change paths, at most %d", ErrRequest, len(req.Change), maxChange)
	}
	spent := make([]skycoin.Spent, len(req.Inputs))
	paths := make([]Path, len(req.Inputs))
	for i, in := range req.Inputs {
		if spent[i], err = in.spent(); err != nil {
			return nil, fmt.Errorf("%w: input %d: %v", ErrRequest, i, err)
		}
		if paths[i], err = skycoinPath(in.Path); err != nil {
			return nil, fmt.Errorf("%w: input %d: %v", ErrRequest, i, err)
		}
	}
	change := make([]Path, len(req.Change))
	for i, c := range req.Change {
		if change[i], err = skycoinPath(c); err != nil {
			return nil, fmt.Errorf("%w: change %d: %v", ErrRequest, i, err)
		}
	}
	done, err := s.take()
	if err != nil {
		return nil, err
	}
	defer done()
	k, err := s.openKeys(ctx, "Sign a Skycoin transaction", s.hostName(host), "")
	if err != nil {
		return nil, err
	}
	// The wallet's addresses the request names, each derived here: an
	// address is the wallet's only if its path makes it.
	ours := map[string]string{}
	for _, p := range append(append([]Path(nil), paths...), change...) {
		a, err := k.address(p)
		if err != nil {
			return nil, err
		}
		ours[a] = p.String()
	}
	for i, in := range req.Inputs {
		if ours[in.Address] != paths[i].String() {
			s.count(false)
			return nil, fmt.Errorf("%w: input %d: %s is not the address of %s in this wallet", skycoin.ErrRefused, i, in.Address, paths[i])
		}
	}
	sum, err := skycoin.Analyze(tx, spent, req.HeadTime, func(a identity.Address) (string, bool) {
		p, ok := ours[a.String()]
		return p, ok
	})
	if err != nil {
		s.count(false)
		return nil, err
	}
	if err := s.confirm(ctx, skycoinQuestion(sum)); err != nil {
		s.count(false)
		return nil, err
	}
	tx.Sigs = nil
	start := time.Now()
	for i, p := range paths {
		key, _, err := k.private(p)
		if err != nil {
			return nil, err
		}
		err = tx.SignInput(i, key)
		key.Zero()
		if err != nil {
			return nil, err
		}
	}
	s.count(true)
	id := tx.ID()
	s.cfg.Logf("wallet: signed a Skycoin transaction of %d inputs in %.1f ms", len(paths), float64(time.Since(start).Microseconds())/1000)
	return SkycoinAnswer{Tx: hex.EncodeToString(tx.Encode()), TxID: hex.EncodeToString(id[:])}, nil
}

// skycoinPath reads a path of one of the Skycoin schemes.
func skycoinPath(s string) (Path, error) {
	p, err := ParsePath(s)
	if err == nil && p.Scheme.Coin() != "skycoin" {
		err = fmt.Errorf("%s is a Bitcoin path", s)
	}
	return p, err
}

// sky writes droplets as SKY, without trailing zeros.
func sky(d uint64) string {
	s := fmt.Sprintf("%d.%06d", d/skycoin.DropletsPerCoin, d%skycoin.DropletsPerCoin)
	return strings.TrimSuffix(strings.TrimRight(s, "0"), ".") + " SKY"
}

// skycoinQuestion is the approval screen of a Skycoin transaction.
func skycoinQuestion(sum skycoin.Summary) Question {
	q := Question{Title: "Sign Skycoin transaction", Warnings: sum.Warnings, Approve: "Approve", Reject: "Reject"}
	n := 0
	for _, o := range sum.Outputs {
		if !o.Change {
			n++
			q.Rows = append(q.Rows, Row{fmt.Sprintf("Send %d", n), fmt.Sprintf("%s and %d hours to %s", sky(o.Coins), o.Hours, o.Address)})
		}
	}
	for _, o := range sum.Outputs {
		if o.Change {
			q.Rows = append(q.Rows, Row{"Change", fmt.Sprintf("%s and %d hours back to %s (%s)", sky(o.Coins), o.Hours, o.Address, o.Path)})
		}
	}
	fee := fmt.Sprintf("%d coin hours burned", sum.FeeHours)
	if sum.HoursUnknown {
		fee = fmt.Sprintf("at least %d coin hours burned", sum.FeeHours)
	}
	q.Rows = append(q.Rows, Row{"Fee", fee}, Row{"Inputs", fmt.Sprintf("%d, %s and %d hours", len(sum.Inputs), sky(sum.CoinsIn), sum.HoursIn)})
	if len(q.Warnings) > 4 {
		q.Warnings = append(q.Warnings[:3], strings.Join(q.Warnings[3:], "; "))
	}
	return q
}

// MessageRequest is a message to sign with the key at Path: Skycoin's
// rule for the Skycoin schemes (skycoin.SignMessage), BIP322-simple for
// Bitcoin's (bitcoin.SignMessageSimple). The message must be text the
// screen can show, at most MaxMessage bytes.
type MessageRequest struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

// MessageAnswer is the signature: 130 hex digits (Skycoin's r‖s‖recovery
// id) or BIP322's "smp"-prefixed base64 witness.
type MessageAnswer struct {
	Address   string `json:"address"`
	Signature string `json:"signature"`
}

func (s *Service) serveMessage(ctx context.Context, host string, body []byte) (any, error) {
	req, err := decode[MessageRequest](body)
	if err != nil {
		return nil, err
	}
	p, err := ParsePath(req.Path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRequest, err)
	}
	msg := []byte(req.Message)
	if len(msg) == 0 || len(msg) > MaxMessage {
		return nil, fmt.Errorf("%w: a message has 1 to %d bytes", ErrRequest, MaxMessage)
	}
	if err := bitcoin.CheckMessageText(msg); err != nil {
		return nil, fmt.Errorf("%w: the screen cannot show the message as it is: %v", ErrRequest, err)
	}
	done, err := s.take()
	if err != nil {
		return nil, err
	}
	defer done()
	k, err := s.openKeys(ctx, "Sign a message", s.hostName(host), "")
	if err != nil {
		return nil, err
	}
	key, addr, err := k.private(p)
	if err != nil {
		return nil, err
	}
	defer key.Zero()
	q := Question{Title: "Sign message", Approve: "Sign", Reject: "Reject",
		Rows: []Row{{"With", addr + " (" + p.String() + ")"}}}
	for i, part := range chunks(req.Message, 400) {
		label := "Message"
		if i > 0 {
			label = "(continued)"
		}
		q.Rows = append(q.Rows, Row{label, part})
	}
	if err := s.confirm(ctx, q); err != nil {
		s.count(false)
		return nil, err
	}
	var sig string
	if p.Scheme.Coin() == "skycoin" {
		sig, err = skycoin.SignMessage(key, msg)
	} else {
		// The public key through identity's constant-time path.
		var pub []byte
		var out bitcoin.Output
		if pub, err = identity.PublicKeyOf(key); err == nil && p.Scheme == BitcoinBIP86 {
			out, err = bitcoin.P2TR(pub)
		} else if err == nil {
			out, err = bitcoin.P2WPKH(pub)
		}
		if err == nil {
			sig, err = bitcoin.SignMessageSimple(key, out.ScriptPubKey, msg, s.cfg.Rand)
		}
	}
	if err != nil {
		return nil, err
	}
	s.count(true)
	s.cfg.Logf("wallet: signed a message")
	return MessageAnswer{Address: addr, Signature: sig}, nil
}

// chunks splits s into pieces of at most n runes, whole runes each.
func chunks(s string, n int) []string {
	var out []string
	for s != "" {
		i, c := 0, 0
		for i < len(s) && c < n {
			_, size := utf8.DecodeRuneInString(s[i:])
			i += size
			c++
		}
		out = append(out, s[:i])
		s = s[i:]
	}
	return out
}
