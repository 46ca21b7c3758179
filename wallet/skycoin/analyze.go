package skycoin

import (
	"errors"
	"fmt"
	"math/bits"

	"github.com/skyfleet/skyfleet/services/identity"
)

// Caps on what one approval screen shows and one request signs. Skycoin
// itself allows 65535 of each (coin.Transaction's maxlen); 64 inputs and 64
// outputs make a transaction of 8,625 bytes, well inside Skycoin's
// 32 KiB MaxTransactionSize, so no transaction Analyze accepts is too large.
const (
	MaxInputs  = 64
	MaxOutputs = 64
)

// Skycoin's rules for a transaction a user creates, from its
// params.UserVerifyTxn (skycoin/skycoin src/params/params.go) and
// transaction/verify.go's soft constraints. Nodes apply the same values,
// by default, to the transactions they relay (fiber.toml
// unconfirmed_burn_factor = 10, unconfirmed_max_decimals = 3).
const (
	// BurnFactor is the inverse share of the input coin hours a
	// transaction must burn: its fee (input hours not sent to an output)
	// must be at least ⌈input hours / BurnFactor⌉, and not zero
	// (util/fee.VerifyTransactionFeeForHours and RequiredFee).
	BurnFactor = 10
	// MaxDecimals is how many decimal places of a SKY an output may use
	// (params.UserVerifyTxn.MaxDropletPrecision).
	MaxDecimals = 3
	// CoinStep is the droplet amount every output's coins must be a
	// multiple of: 10^(6−MaxDecimals), 0.001 SKY (params.DropletPrecisionCheck).
	CoinStep = 1000
)

// secondsPerHour is the coin-hour accrual's divisor: a whole coin held for
// an hour earns one coin hour (coin.UxOut.CoinHours).
const secondsPerHour = 3600

// ErrRefused wraps every reason Analyze refuses a signing request. The
// reason names the input or output by index and never contains a key.
var ErrRefused = errors.New("skycoin: transaction refused")

// Spent is the unspent output an input spends, as the host claims it: the
// body of a Skycoin coin.UxOut (UxBody: source transaction, address, coins,
// hours), which Analyze checks against the input's UxID (the SHA-256 of
// the body), and the unhashed part of its head (UxHead.Time).
type Spent struct {
	// Source is the ID of the transaction that created the output
	// (UxBody.SrcTransaction; the null hash for the genesis output).
	Source [32]byte
	// Output is the output as that transaction created it: address, coins
	// in droplets, and coin hours at creation.
	Output Output
	// Created is the unix time in seconds of the block that created the
	// output (UxHead.Time), from which it has earned coin hours. Nothing
	// proves it: the UxID does not cover it. 0 means unknown, and then only
	// Output.Hours is counted.
	Created uint64
}

// SummaryInput is one input as the approval screen shows it.
type SummaryInput struct {
	UxID    [32]byte // the output spent (Transaction.In[i])
	Address identity.Address
	Coins   uint64 // droplets, proven by the UxID
	// Hours is the output's coin hours at the head time Analyze was given:
	// Output.Hours, proven by the UxID, plus what it earned since Created,
	// which the host claims.
	Hours   uint64
	Accrued uint64 // the part of Hours earned since Created (0 without Created)
	Path    string // the wallet's name for the key that signs it
}

// SummaryOutput is one output as the approval screen shows it.
type SummaryOutput struct {
	Address identity.Address
	Coins   uint64 // droplets
	Hours   uint64
	// Change: the address is one of the wallet's (the ours callback said
	// so), and Path names its key.
	Change bool
	Path   string
}

// Summary is what a Skycoin transaction does, for the approval screen:
// every input and output, the totals, the coin hours burned as the fee,
// and the warnings. Coins are droplets (DropletsPerCoin to a SKY).
type Summary struct {
	Inputs  []SummaryInput
	Outputs []SummaryOutput
	// CoinsIn and CoinsOut are equal in every transaction Analyze accepts
	// (Skycoin neither creates nor destroys coins).
	CoinsIn, CoinsOut uint64
	// Sent is the coins paid to outputs that are not change.
	Sent uint64
	// HoursIn is the inputs' coin hours at the head time, HoursOut the
	// outputs'. FeeHours = HoursIn − HoursOut, burned; RequiredFee is
	// Skycoin's minimum for HoursIn, ⌈HoursIn / BurnFactor⌉.
	HoursIn, HoursOut     uint64
	FeeHours, RequiredFee uint64
	// HoursClaimed: HoursIn includes coin hours earned since creation
	// times the host claims (Spent.Created), which nothing proves.
	HoursClaimed bool
	// HoursUnknown: some input came without a creation time, so the hours
	// it earned are not in HoursIn, and the hours really burned are more
	// than FeeHours. A fee that meets Skycoin's minimum without them still
	// meets it with them: each uncounted hour is burned too, and raises
	// the minimum by a tenth of an hour at most.
	HoursUnknown bool
	Warnings     []string
}

// CoinHours is the coin hours of output out at unix time t (seconds) when
// it was created at unix time created: Skycoin's coin.UxOut.CoinHours
// (src/coin/outputs.go). It adds one hour per whole coin per 3600 seconds
// held, counting the droplets of a part coin too:
//
//	seconds     = t − created                 (no accrual when t < created)
//	coinSeconds = seconds·⌊coins/10⁶⌋ + ⌊seconds·(coins mod 10⁶) / 10⁶⌋
//	hours       = out.Hours + ⌊coinSeconds / 3600⌋
//
// It returns an error where Skycoin's does (either product overflows
// uint64, or the sum) and also where Skycoin's sum of the two coin-second
// terms would wrap silently; Skycoin refuses to relay a transaction whose
// input hours overflow (transaction.VerifySingleTxnHardConstraints).
func CoinHours(out Output, created, t uint64) (uint64, error) {
	if t < created {
		return out.Hours, nil
	}
	seconds := t - created
	hi, whole := bits.Mul64(seconds, out.Coins/DropletsPerCoin)
	if hi != 0 {
		return 0, errors.New("coin-seconds overflow")
	}
	hi, part := bits.Mul64(seconds, out.Coins%DropletsPerCoin)
	if hi != 0 {
		return 0, errors.New("droplet-seconds overflow")
	}
	coinSeconds, carry := bits.Add64(whole, part/DropletsPerCoin, 0)
	if carry != 0 {
		return 0, errors.New("coin-seconds overflow")
	}
	hours, carry := bits.Add64(out.Hours, coinSeconds/secondsPerHour, 0)
	if carry != 0 {
		return 0, errors.New("earned coin hours overflow")
	}
	return hours, nil
}

// RequiredFee is the fewest coin hours a transaction whose inputs hold
// hours coin hours must burn: ⌈hours / BurnFactor⌉ (Skycoin's
// util/fee.RequiredFee with params.UserVerifyTxn.BurnFactor).
func RequiredFee(hours uint64) uint64 {
	fee := hours / BurnFactor
	if hours%BurnFactor != 0 {
		fee++
	}
	return fee
}

func refuse(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrRefused}, a...)...)
}

// Analyze checks a request to sign transaction t and says what t does.
// spent[i] is the output t.In[i] spends, as the host claims it; headTime
// is the unix time in seconds of the chain's head block, at which Skycoin
// counts the inputs' coin hours (transaction/verify.go: the head block's
// time, not a clock, so that nodes agree); ours says whether an address is
// the wallet's, and its key's name. Nothing here is trusted but what a
// hash proves: an input's body is checked against its UxID, while
// Spent.Created and headTime are the host's word, so the hours they add
// are flagged (Summary.HoursClaimed).
//
// It refuses, with an error wrapping ErrRefused that names the input or
// output, what Skycoin nodes would not accept from a user (coin.Transaction
// Verify, transaction.VerifySingleTxnHardConstraints, its soft constraints
// with params.UserVerifyTxn, and VerifySingleTxnUserConstraints) and what
// this wallet will not sign:
//
//   - a type other than 0; no inputs or no outputs; more than MaxInputs
//     inputs or MaxOutputs outputs; a signature count that is neither 0
//     nor the input count; len(spent) ≠ len(t.In);
//   - an input spent twice; an input whose UxID is not
//     UxID(spent[i].Source, spent[i].Output); an input whose address is
//     not the wallet's (Skycoin needs a signature on every input, and the
//     wallet signs all or nothing);
//   - an output to the null address, of zero coins, of coins not a
//     multiple of CoinStep (more than MaxDecimals decimals), or the same
//     as another output (address, coins and hours: their UxIDs would
//     collide);
//   - coins or hours whose sums overflow uint64, or inputs whose earned
//     hours do (CoinHours);
//   - output coins other than the input coins (Skycoin requires them
//     equal: coin.VerifyTransactionCoinsSpending);
//   - output hours above the input hours, a fee of no hours, or a fee
//     below RequiredFee(HoursIn) (util/fee.VerifyTransactionFee).
//
// It warns: no change output; hours counted from host-claimed creation
// times; inputs without creation times (the fee shown is then a lower
// bound); an output paying an address an input spends from (address
// reuse).
func Analyze(t *Transaction, spent []Spent, headTime uint64, ours func(identity.Address) (path string, ok bool)) (Summary, error) {
	if t == nil || ours == nil {
		return Summary{}, refuse("no transaction, or no wallet to check it against")
	}
	if t.Type != 0 {
		return Summary{}, refuse("transaction type %d; Skycoin has only type 0", t.Type)
	}
	if len(t.In) == 0 || len(t.Out) == 0 {
		return Summary{}, refuse("%d inputs and %d outputs: nothing to sign", len(t.In), len(t.Out))
	}
	if len(t.In) > MaxInputs || len(t.Out) > MaxOutputs {
		return Summary{}, refuse("%d inputs and %d outputs; at most %d and %d fit an approval", len(t.In), len(t.Out), MaxInputs, MaxOutputs)
	}
	if len(t.Sigs) != 0 && len(t.Sigs) != len(t.In) {
		return Summary{}, refuse("%d signatures for %d inputs", len(t.Sigs), len(t.In))
	}
	if len(spent) != len(t.In) {
		return Summary{}, refuse("%d spent outputs given for %d inputs", len(spent), len(t.In))
	}

	s := Summary{
		Inputs:  make([]SummaryInput, 0, len(t.In)),
		Outputs: make([]SummaryOutput, 0, len(t.Out)),
	}
	var carry uint64
	seen := make(map[[32]byte]int, len(t.In))
	inAddr := make(map[identity.Address]int, len(t.In))
	unknown := 0
	for i, id := range t.In {
		if j, dup := seen[id]; dup {
			return Summary{}, refuse("input %d spends the same output as input %d", i, j)
		}
		seen[id] = i
		sp := spent[i]
		if UxID(sp.Source, sp.Output) != id {
			return Summary{}, refuse("input %d: the output the host describes (source transaction, address, coins, hours) is not the one the input spends: its UxID differs", i)
		}
		path, ok := ours(sp.Output.Address)
		if !ok {
			return Summary{}, refuse("input %d spends from %s, which is not this wallet's: every input needs its signature", i, sp.Output.Address)
		}
		if _, ok := inAddr[sp.Output.Address]; !ok {
			inAddr[sp.Output.Address] = i
		}
		si := SummaryInput{UxID: id, Address: sp.Output.Address, Coins: sp.Output.Coins, Hours: sp.Output.Hours, Path: path}
		if sp.Created == 0 {
			unknown++
		} else {
			h, err := CoinHours(sp.Output, sp.Created, headTime)
			if err != nil {
				return Summary{}, refuse("input %d: its coin hours at the head time: %v", i, err)
			}
			si.Hours, si.Accrued = h, h-sp.Output.Hours
			if si.Accrued > 0 {
				s.HoursClaimed = true
			}
		}
		if s.CoinsIn, carry = bits.Add64(s.CoinsIn, si.Coins, 0); carry != 0 {
			return Summary{}, refuse("the input coins overflow at input %d", i)
		}
		if s.HoursIn, carry = bits.Add64(s.HoursIn, si.Hours, 0); carry != 0 {
			return Summary{}, refuse("the input hours overflow at input %d", i)
		}
		s.Inputs = append(s.Inputs, si)
	}

	outs := make(map[Output]int, len(t.Out))
	change := 0
	for i, o := range t.Out {
		if o.Address == (identity.Address{}) {
			return Summary{}, refuse("output %d pays the null address, whose coins no key can spend", i)
		}
		if o.Coins == 0 {
			return Summary{}, refuse("output %d pays no coins; Skycoin refuses zero-coin outputs", i)
		}
		if o.Coins%CoinStep != 0 {
			return Summary{}, refuse("output %d pays %d droplets, not a multiple of %d: Skycoin allows at most %d decimals of a SKY", i, o.Coins, CoinStep, MaxDecimals)
		}
		if j, dup := outs[o]; dup {
			return Summary{}, refuse("output %d repeats output %d (address, coins and hours): Skycoin refuses duplicate outputs", i, j)
		}
		outs[o] = i
		if s.CoinsOut, carry = bits.Add64(s.CoinsOut, o.Coins, 0); carry != 0 {
			return Summary{}, refuse("the output coins overflow at output %d", i)
		}
		if s.HoursOut, carry = bits.Add64(s.HoursOut, o.Hours, 0); carry != 0 {
			return Summary{}, refuse("the output hours overflow at output %d", i)
		}
		so := SummaryOutput{Address: o.Address, Coins: o.Coins, Hours: o.Hours}
		if path, ok := ours(o.Address); ok {
			so.Change, so.Path = true, path
			change++
		} else {
			s.Sent += o.Coins
		}
		if j, reused := inAddr[o.Address]; reused {
			s.Warnings = append(s.Warnings, fmt.Sprintf("output %d pays back to the address input %d spends from (address reuse: it ties the two together on the public chain)", i, j))
		}
		s.Outputs = append(s.Outputs, so)
	}

	if s.CoinsOut != s.CoinsIn {
		return Summary{}, refuse("the outputs pay %d droplets and the inputs hold %d: Skycoin requires them equal (no coins are created, none destroyed; the fee is paid in coin hours)", s.CoinsOut, s.CoinsIn)
	}
	if s.HoursOut > s.HoursIn {
		return Summary{}, refuse("the outputs pay %d coin hours, more than the inputs' %d", s.HoursOut, s.HoursIn)
	}
	s.FeeHours = s.HoursIn - s.HoursOut
	s.RequiredFee = RequiredFee(s.HoursIn)
	if s.FeeHours == 0 {
		return Summary{}, refuse("the transaction burns no coin hours; Skycoin requires a fee of at least %d", s.RequiredFee)
	}
	if s.FeeHours < s.RequiredFee {
		return Summary{}, refuse("the transaction burns %d coin hours of the inputs' %d; Skycoin requires at least 1/%d of them, %d", s.FeeHours, s.HoursIn, BurnFactor, s.RequiredFee)
	}
	s.HoursUnknown = unknown > 0

	if change == 0 {
		s.Warnings = append(s.Warnings, "no change: every coin of the inputs goes to the outputs shown")
	}
	if s.HoursClaimed {
		s.Warnings = append(s.Warnings, "the input coin hours include hours earned since block times the computer claims, which the wallet cannot check: the fee shown depends on them")
	}
	if s.HoursUnknown {
		s.Warnings = append(s.Warnings, fmt.Sprintf("%d of %d inputs came without their block time: the coin hours they earned since are not counted, and every hour not sent to an output is burned, so the fee is at least the %d hours shown", unknown, len(t.In), s.FeeHours))
	}
	return s, nil
}
