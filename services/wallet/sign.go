package wallet

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/btcsuite/btcd/btcutil/psbt"

	"github.com/skyfleet/skyfleet/wallet/bitcoin"
)

// Account is one of the wallet's accounts as GET /accounts lists it.
type Account struct {
	Scheme Scheme `json:"scheme"`
	Coin   string `json:"coin"`
	// Path is the account's path (BIP32) or "skycoin" for Skycoin's
	// deterministic chain.
	Path string `json:"path"`
	// XPub is the account's extended public key (BIP32 schemes).
	XPub string `json:"xpub,omitempty"`
	// First is the account's first receiving address.
	First string `json:"first_address"`
}

// AccountsAnswer lists the wallet's accounts: account 0 of each scheme.
type AccountsAnswer struct {
	Accounts []Account `json:"accounts"`
}

func (s *Service) serveAccounts(ctx context.Context, host string, body []byte) (any, error) {
	done, err := s.take()
	if err != nil {
		return nil, err
	}
	defer done()
	k, err := s.openKeys(ctx, "List the wallet's accounts", s.hostName(host), "")
	if err != nil {
		return nil, err
	}
	var out AccountsAnswer
	for _, first := range []string{"skycoin/0", "m/44'/8000'/0'/0/0", "m/84'/0'/0'/0/0", "m/86'/0'/0'/0/0"} {
		p, err := ParsePath(first)
		if err != nil {
			return nil, must(err, "account path")
		}
		a := Account{Scheme: p.Scheme, Coin: p.Scheme.Coin(), Path: "skycoin"}
		if a.First, err = k.address(p); err != nil {
			return nil, must(err, "first address")
		}
		if p.Scheme != SkycoinChain {
			a.Path = first[:strings.LastIndex(first[:strings.LastIndex(first, "/")], "/")]
			if a.XPub, err = k.account(p); err != nil {
				return nil, must(err, "account key")
			}
		}
		out.Accounts = append(out.Accounts, a)
	}
	return out, nil
}

// AddressRequest asks for the address of a key path, and with Show for it
// to be shown on the screen, where the person checks it against what the
// host shows before giving it to anyone to pay.
type AddressRequest struct {
	Path string `json:"path"` // a Path
	Show bool   `json:"show,omitempty"`
}

// AddressAnswer is an address; Confirmed when the person tapped "Matches".
type AddressAnswer struct {
	Path      string `json:"path"`
	Address   string `json:"address"`
	Confirmed bool   `json:"confirmed,omitempty"`
}

func (s *Service) serveAddress(ctx context.Context, host string, body []byte) (any, error) {
	req, err := decode[AddressRequest](body)
	if err != nil {
		return nil, err
	}
	p, err := ParsePath(req.Path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRequest, err)
	}
	done, err := s.take()
	if err != nil {
		return nil, err
	}
	defer done()
	k, err := s.openKeys(ctx, "Make a receiving address", s.hostName(host), "")
	if err != nil {
		return nil, err
	}
	a, err := k.address(p)
	if err != nil {
		return nil, err
	}
	out := AddressAnswer{Path: p.String(), Address: a}
	if req.Show {
		err := s.confirm(ctx, Question{Title: "Check the address",
			Rows: []Row{{"Address", a}, {"Coin", p.Scheme.Coin()}, {"Path", p.String()},
				{"Check", "it must read the same on the computer"}},
			Approve: "Matches", Reject: "Differs"})
		if err != nil {
			return nil, err
		}
		out.Confirmed = true
	}
	return out, nil
}

// PSBTRequest is a PSBT to sign (BIP174), in base64.
type PSBTRequest struct {
	PSBT string `json:"psbt"`
}

// PSBTAnswer is the signed PSBT (base64), how many inputs the wallet
// signed, and, when that made every input complete, the finalised network
// transaction in hex (BIP174 §Finalizer, §Transaction Extractor).
type PSBTAnswer struct {
	PSBT   string `json:"psbt"`
	Signed int    `json:"signed"`
	Tx     string `json:"tx,omitempty"`
}

func (s *Service) servePSBT(ctx context.Context, host string, body []byte) (any, error) {
	req, err := decode[PSBTRequest](body)
	if err != nil {
		return nil, err
	}
	p, err := bitcoin.ParsePSBT([]byte(req.PSBT), true)
	if err != nil {
		return nil, err
	}
	done, err := s.take()
	if err != nil {
		return nil, err
	}
	defer done()
	k, err := s.openKeys(ctx, "Sign a Bitcoin transaction", s.hostName(host), "")
	if err != nil {
		return nil, err
	}
	w := bitcoin.Wallet{Master: k.master}
	sum, err := w.Analyze(p)
	if err != nil {
		s.count(false)
		return nil, err
	}
	if err := s.confirm(ctx, psbtQuestion(sum)); err != nil {
		s.count(false)
		return nil, err
	}
	start := time.Now()
	n, err := w.Sign(p, s.cfg.Rand)
	if err != nil {
		return nil, err
	}
	s.count(true)
	s.cfg.Logf("wallet: signed %d inputs of a Bitcoin transaction in %.1f ms", n, float64(time.Since(start).Microseconds())/1000)
	out := PSBTAnswer{Signed: n}
	var buf bytes.Buffer
	if err := p.Serialize(&buf); err != nil {
		return nil, err
	}
	out.PSBT, err = p.B64Encode()
	if err != nil {
		return nil, err
	}
	// Finalise a copy: the PSBT answered stays as signed, for a host
	// that combines it with others' signatures.
	if c, err := psbt.NewFromRawBytes(&buf, false); err == nil && psbt.MaybeFinalizeAll(c) == nil {
		if tx, err := psbt.Extract(c); err == nil {
			var raw bytes.Buffer
			if tx.Serialize(&raw) == nil {
				out.Tx = hex.EncodeToString(raw.Bytes())
			}
		}
	}
	return out, nil
}

// btc writes satoshis as BTC with all eight decimals.
func btc(sat int64) string {
	sign := ""
	if sat < 0 {
		sign, sat = "-", -sat
	}
	return fmt.Sprintf("%s%d.%08d BTC", sign, sat/1e8, sat%1e8)
}

// psbtQuestion is the approval screen of a PSBT: what it pays to whom,
// the change, the fee and the warnings, from the Summary (computed from
// what is signed, not from the host's words).
func psbtQuestion(sum bitcoin.Summary) Question {
	q := Question{Title: "Sign Bitcoin transaction", Warnings: sum.Warnings, Approve: "Approve", Reject: "Reject"}
	n := 0
	for _, o := range sum.Outputs {
		if o.Change {
			continue
		}
		n++
		to := o.Address
		if to == "" {
			to = fmt.Sprintf("a %s script", o.Kind)
		}
		q.Rows = append(q.Rows, Row{fmt.Sprintf("Send %d", n), btc(o.Amount) + " to " + to})
	}
	for _, o := range sum.Outputs {
		if o.Change {
			q.Rows = append(q.Rows, Row{"Change", btc(o.Amount) + " back to " + o.Address + " (" + o.Path + ")"})
		}
	}
	q.Rows = append(q.Rows, Row{"Fee", fmt.Sprintf("%s (%.2f%% of what is sent)", btc(sum.Fee), sum.FeeShare)})
	ours := 0
	for _, in := range sum.Inputs {
		if in.Path != "" {
			ours++
		}
	}
	q.Rows = append(q.Rows, Row{"Inputs", fmt.Sprintf("%d, %d of them this wallet's", len(sum.Inputs), ours)})
	if len(q.Warnings) > 4 {
		q.Warnings = append(q.Warnings[:3], strings.Join(q.Warnings[3:], "; "))
	}
	return q
}
