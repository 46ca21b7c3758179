package bitcoin

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/btcsuite/btcd/btcec/v2"
	becdsa "github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/skyfleet/skyfleet/services/identity"
	"github.com/skyfleet/skyfleet/wallet/bip32"
)

// MaxPSBTSize bounds a PSBT the wallet reads: a transaction of a few dozen
// inputs with their previous transactions fits many times over.
const MaxPSBTSize = 1 << 20

// Caps on what one approval screen shows and one request signs.
const (
	MaxInputs  = 64
	MaxOutputs = 64
	// MaxDerivations bounds the BIP32 derivations an input or output may
	// list: each one of this wallet's costs five key derivations to check,
	// and a host could otherwise list thousands.
	MaxDerivations = 16
)

// FeeWarnPercent is the fee, as a share of what is sent, above which the
// approval screen warns.
const FeeWarnPercent = 5

// ErrRefused wraps every reason the wallet refuses a PSBT.
var ErrRefused = errors.New("bitcoin: PSBT refused")

// ParsePSBT reads a PSBT (BIP174 §Serialization: raw bytes, or base64 when
// b64) of at most MaxPSBTSize bytes. It must also serialize back to exactly
// its bytes: btcd's parser does not notice a value whose content is shorter
// than its stated size (one of BIP174's invalid vectors), and a byte the
// parser skipped is a byte the screen would not show. btcd's parser panics
// on some malformed fields (a BIP32 derivation shorter than its
// fingerprint, found by services/wallet's FuzzRequests): the panic is
// recovered and the PSBT refused. Errors wrap ErrRefused with the reason.
func ParsePSBT(b []byte, b64 bool) (p *psbt.Packet, err error) {
	if len(b) > MaxPSBTSize {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrRefused, len(b), MaxPSBTSize)
	}
	raw := b
	if b64 {
		if raw, err = base64.StdEncoding.DecodeString(string(bytes.TrimSpace(b))); err != nil {
			return nil, fmt.Errorf("%w: not base64: %v", ErrRefused, err)
		}
	}
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("%w: not a valid PSBT: the parser failed on a malformed field (%v)", ErrRefused, r)
		}
	}()
	p, err = psbt.NewFromRawBytes(bytes.NewReader(raw), false)
	if err != nil {
		return nil, fmt.Errorf("%w: not a valid PSBT: %v", ErrRefused, err)
	}
	var again bytes.Buffer
	if err := p.Serialize(&again); err != nil || !bytes.Equal(again.Bytes(), raw) {
		return nil, fmt.Errorf("%w: not a canonical PSBT: some bytes are not accounted for by the fields that hold them (a value's stated size does not match its content, or fields are duplicated or out of place)", ErrRefused)
	}
	return p, nil
}

// Kind names an output script's template.
type Kind string

// Script kinds the screen names.
const (
	KindP2WPKH  Kind = "p2wpkh"
	KindP2TR    Kind = "p2tr"
	KindP2PKH   Kind = "p2pkh"
	KindP2SH    Kind = "p2sh"
	KindP2WSH   Kind = "p2wsh"
	KindUnknown Kind = "unknown script"
)

func kindOf(script []byte) Kind {
	switch txscript.GetScriptClass(script) {
	case txscript.WitnessV0PubKeyHashTy:
		return KindP2WPKH
	case txscript.WitnessV1TaprootTy:
		return KindP2TR
	case txscript.PubKeyHashTy:
		return KindP2PKH
	case txscript.ScriptHashTy:
		return KindP2SH
	case txscript.WitnessV0ScriptHashTy:
		return KindP2WSH
	}
	return KindUnknown
}

// SummaryInput is one input as the approval screen shows it.
type SummaryInput struct {
	Outpoint string // txid:index
	Amount   int64  // satoshis
	Kind     Kind
	// Path is the wallet's key that spends it, e.g. "m/84'/0'/0'/0/3";
	// "" for an input the wallet does not sign (another wallet's).
	Path string
}

// SummaryOutput is one output as the approval screen shows it.
type SummaryOutput struct {
	Address string // "" for a script with no address (e.g. OP_RETURN)
	Amount  int64  // satoshis
	Kind    Kind
	// Change: the output pays back to this wallet, proven by re-deriving
	// its key from the BIP32 derivation the PSBT gives for it.
	Change bool
	Path   string // the change key's path
}

// Summary is what a PSBT really does, for the approval screen: every input
// and output, the fee from the inputs' amounts, and the warnings.
type Summary struct {
	Inputs   []SummaryInput
	Outputs  []SummaryOutput
	Fee      int64   // satoshis
	Sent     int64   // satoshis to outputs that are not change
	FeeShare float64 // Fee / Sent, in percent (Fee / total out when nothing is sent)
	Warnings []string
}

// prevOut returns input i's previous output and whether its amount can be
// trusted, from the PSBT's UTXO fields: the full previous transaction (whose
// hash must be the outpoint's) or, for a Taproot input, the witness UTXO
// alone (BIP341 signatures commit to every input's amount and script).
func prevOut(p *psbt.Packet, i int) (*wire.TxOut, error) {
	in := p.Inputs[i]
	op := p.UnsignedTx.TxIn[i].PreviousOutPoint
	var out *wire.TxOut
	if in.NonWitnessUtxo != nil {
		if h := in.NonWitnessUtxo.TxHash(); h != op.Hash {
			return nil, fmt.Errorf("%w: input %d: its previous transaction is %s, not the %s it spends", ErrRefused, i, h, op.Hash)
		}
		if int(op.Index) >= len(in.NonWitnessUtxo.TxOut) {
			return nil, fmt.Errorf("%w: input %d spends output %d of a transaction with %d", ErrRefused, i, op.Index, len(in.NonWitnessUtxo.TxOut))
		}
		out = in.NonWitnessUtxo.TxOut[op.Index]
		if w := in.WitnessUtxo; w != nil && (w.Value != out.Value || !bytes.Equal(w.PkScript, out.PkScript)) {
			return nil, fmt.Errorf("%w: input %d: its witness UTXO disagrees with its previous transaction", ErrRefused, i)
		}
		return out, nil
	}
	if in.WitnessUtxo == nil {
		return nil, fmt.Errorf("%w: input %d has no UTXO data: its amount, and so the fee, cannot be known", ErrRefused, i)
	}
	if kindOf(in.WitnessUtxo.PkScript) != KindP2TR {
		return nil, fmt.Errorf("%w: input %d spends a %s output without its previous transaction: the amount it claims cannot be trusted (only a Taproot signature commits to every input's amount), so the fee shown could be a lie; the host must add the previous transaction (PSBT_IN_NON_WITNESS_UTXO)", ErrRefused, i, kindOf(in.WitnessUtxo.PkScript))
	}
	return in.WitnessUtxo, nil
}

// Wallet is the keys a PSBT is checked and signed against: the BIP32 master
// key. Its fingerprint is what PSBT derivations name.
type Wallet struct {
	Master *bip32.Key
}

// fingerprint is the master key's fingerprint as the psbt package holds it
// (the four bytes read little-endian).
func (w Wallet) fingerprint() uint32 {
	fp := w.Master.Fingerprint()
	return uint32(fp[0]) | uint32(fp[1])<<8 | uint32(fp[2])<<16 | uint32(fp[3])<<24
}

// ours returns the wallet's key for a derivation path the PSBT names with
// the wallet's fingerprint, if the key it derives has the expected script
// (P2WPKH or P2TR key path for the path's purpose).
func (w Wallet) ours(fp uint32, path []uint32, script []byte) (*bip32.Key, string, bool) {
	if fp != w.fingerprint() || len(path) != 5 {
		return nil, "", false
	}
	name := bip32.FormatPath(path)
	k, err := w.Master.Derive(name)
	if err != nil {
		return nil, "", false
	}
	var o Output
	switch path[0] {
	case bip32.Hardened + PurposeP2WPKH:
		o, err = P2WPKH(k.PublicKey())
	case bip32.Hardened + PurposeP2TR:
		o, err = P2TR(k.PublicKey())
	default:
		err = errors.New("purpose")
	}
	if err != nil || !bytes.Equal(o.ScriptPubKey, script) {
		k.Zero()
		return nil, "", false
	}
	return k, name, true
}

// inputKey finds the wallet's key for input i among its BIP32 derivations.
func (w Wallet) inputKey(p *psbt.Packet, i int, script []byte) (*bip32.Key, string, bool) {
	in := p.Inputs[i]
	for _, d := range in.Bip32Derivation {
		if k, name, ok := w.ours(d.MasterKeyFingerprint, d.Bip32Path, script); ok {
			return k, name, true
		}
	}
	for _, d := range in.TaprootBip32Derivation {
		if len(d.LeafHashes) != 0 {
			continue // a script-path key: not what this wallet makes
		}
		if k, name, ok := w.ours(d.MasterKeyFingerprint, d.Bip32Path, script); ok {
			return k, name, true
		}
	}
	return nil, "", false
}

// Analyze checks p and says what it does (BIP174 §Signer: the checks a
// signer makes, and §Change Detection). It refuses, with the reason: a
// PSBT over the caps; an input without trustworthy UTXO data; outputs worth
// more than the inputs; a sighash type other than the default/ALL on an
// input the wallet would sign. It warns: no change, a fee above
// FeeWarnPercent of what is sent, an output of an unknown script, inputs
// that are not all the wallet's, inputs of different kinds.
func (w Wallet) Analyze(p *psbt.Packet) (Summary, error) {
	tx := p.UnsignedTx
	if len(tx.TxIn) == 0 || len(tx.TxOut) == 0 {
		return Summary{}, fmt.Errorf("%w: %d inputs and %d outputs: nothing to sign", ErrRefused, len(tx.TxIn), len(tx.TxOut))
	}
	if len(tx.TxIn) > MaxInputs || len(tx.TxOut) > MaxOutputs {
		return Summary{}, fmt.Errorf("%w: %d inputs and %d outputs; at most %d and %d fit an approval", ErrRefused, len(tx.TxIn), len(tx.TxOut), MaxInputs, MaxOutputs)
	}
	var s Summary
	var in, out int64
	kinds := map[Kind]bool{}
	foreign := 0
	for i, in := range p.Inputs {
		if n := len(in.Bip32Derivation) + len(in.TaprootBip32Derivation); n > MaxDerivations {
			return Summary{}, fmt.Errorf("%w: input %d lists %d key derivations; at most %d", ErrRefused, i, n, MaxDerivations)
		}
	}
	for i, o := range p.Outputs {
		if n := len(o.Bip32Derivation) + len(o.TaprootBip32Derivation); n > MaxDerivations {
			return Summary{}, fmt.Errorf("%w: output %d lists %d key derivations; at most %d", ErrRefused, i, n, MaxDerivations)
		}
	}
	for i, ti := range tx.TxIn {
		po, err := prevOut(p, i)
		if err != nil {
			return Summary{}, err
		}
		if po.Value < 0 || po.Value > btcutil.MaxSatoshi {
			return Summary{}, fmt.Errorf("%w: input %d claims %d satoshis", ErrRefused, i, po.Value)
		}
		si := SummaryInput{Outpoint: ti.PreviousOutPoint.String(), Amount: po.Value, Kind: kindOf(po.PkScript)}
		if k, name, ok := w.inputKey(p, i, po.PkScript); ok {
			k.Zero()
			si.Path = name
			if t := p.Inputs[i].SighashType; t != 0 && t != txscript.SigHashAll && !(si.Kind == KindP2TR && t == txscript.SigHashDefault) {
				return Summary{}, fmt.Errorf("%w: input %d asks for sighash type %#x; the wallet signs only SIGHASH_ALL (or Taproot's default), which commit to the whole transaction", ErrRefused, i, uint32(t))
			}
		} else {
			foreign++
		}
		kinds[si.Kind] = true
		in += po.Value
		s.Inputs = append(s.Inputs, si)
	}
	change := 0
	for i, to := range tx.TxOut {
		if to.Value < 0 || to.Value > btcutil.MaxSatoshi {
			return Summary{}, fmt.Errorf("%w: output %d pays %d satoshis", ErrRefused, i, to.Value)
		}
		so := SummaryOutput{Amount: to.Value, Kind: kindOf(to.PkScript)}
		if _, addrs, _, err := txscript.ExtractPkScriptAddrs(to.PkScript, &chaincfg.MainNetParams); err == nil && len(addrs) == 1 {
			so.Address = addrs[0].EncodeAddress()
		}
		if i < len(p.Outputs) {
			po := p.Outputs[i]
			for _, d := range po.Bip32Derivation {
				if k, name, ok := w.ours(d.MasterKeyFingerprint, d.Bip32Path, to.PkScript); ok {
					k.Zero()
					so.Change, so.Path = true, name
				}
			}
			for _, d := range po.TaprootBip32Derivation {
				if len(d.LeafHashes) != 0 {
					continue
				}
				if k, name, ok := w.ours(d.MasterKeyFingerprint, d.Bip32Path, to.PkScript); ok {
					k.Zero()
					so.Change, so.Path = true, name
				}
			}
		}
		if so.Change {
			change++
		} else {
			s.Sent += to.Value
		}
		if so.Kind == KindUnknown {
			s.Warnings = append(s.Warnings, fmt.Sprintf("output %d pays to an unknown script", i))
		}
		out += to.Value
		s.Outputs = append(s.Outputs, so)
	}
	if out > in {
		return Summary{}, fmt.Errorf("%w: the outputs pay %d satoshis, more than the inputs' %d", ErrRefused, out, in)
	}
	s.Fee = in - out
	base := s.Sent
	if base == 0 {
		base = out
	}
	if base > 0 {
		s.FeeShare = 100 * float64(s.Fee) / float64(base)
	}
	if change == 0 {
		s.Warnings = append(s.Warnings, "no change: every input is spent to the outputs and the fee")
	}
	if s.FeeShare > FeeWarnPercent {
		s.Warnings = append(s.Warnings, fmt.Sprintf("the fee is %.1f%% of what is sent", s.FeeShare))
	}
	if foreign > 0 {
		s.Warnings = append(s.Warnings, fmt.Sprintf("%d of %d inputs are not this wallet's: it signs only its own", foreign, len(tx.TxIn)))
	}
	if len(kinds) > 1 {
		s.Warnings = append(s.Warnings, "mixed inputs: they spend outputs of different kinds")
	}
	return s, nil
}

// Sign signs every input of p that the wallet owns (as Analyze found them),
// P2WPKH by BIP143 with ECDSA (identity.SignCompact, constant time, low S)
// and P2TR key path by BIP341 with BIP340 (SignTaprootKeyPath; aux from
// rand, crypto/rand when nil), and returns how many it signed. It analyses
// first and refuses what Analyze refuses. Call it only after the approval.
func (w Wallet) Sign(p *psbt.Packet, aux io.Reader) (int, error) {
	if _, err := w.Analyze(p); err != nil {
		return 0, err
	}
	if aux == nil {
		aux = rand.Reader
	}
	tx := p.UnsignedTx
	prev := make(map[wire.OutPoint]*wire.TxOut, len(tx.TxIn))
	for i, ti := range tx.TxIn {
		po, _ := prevOut(p, i) // checked by Analyze
		prev[ti.PreviousOutPoint] = po
	}
	fetcher := txscript.NewMultiPrevOutFetcher(prev)
	hashes := txscript.NewTxSigHashes(tx, fetcher)
	u, err := psbt.NewUpdater(p)
	if err != nil {
		return 0, err
	}
	signed := 0
	for i, ti := range tx.TxIn {
		po := prev[ti.PreviousOutPoint]
		k, _, ok := w.inputKey(p, i, po.PkScript)
		if !ok {
			continue
		}
		priv := k.PrivateKey()
		pub := k.PublicKey()
		k.Zero()
		switch kindOf(po.PkScript) {
		case KindP2WPKH:
			sub, err := txscript.NewScriptBuilder().AddOp(txscript.OP_DUP).AddOp(txscript.OP_HASH160).
				AddData(btcutil.Hash160(pub)).AddOp(txscript.OP_EQUALVERIFY).AddOp(txscript.OP_CHECKSIG).Script()
			if err != nil {
				priv.Zero()
				return signed, err
			}
			h, err := txscript.CalcWitnessSigHash(sub, hashes, txscript.SigHashAll, tx, i, po.Value)
			if err != nil {
				priv.Zero()
				return signed, fmt.Errorf("bitcoin: input %d: BIP143 sighash: %w", i, err)
			}
			c, err := identity.SignCompact(priv, h)
			priv.Zero()
			if err != nil {
				return signed, err
			}
			var r, s btcec.ModNScalar
			r.SetByteSlice(c[1:33])
			s.SetByteSlice(c[33:65])
			der := append(becdsa.NewSignature(&r, &s).Serialize(), byte(txscript.SigHashAll))
			if _, err := u.Sign(i, der, pub, nil, nil); err != nil {
				return signed, fmt.Errorf("bitcoin: input %d: %w", i, err)
			}
		case KindP2TR:
			h, err := txscript.CalcTaprootSignatureHash(hashes, txscript.SigHashDefault, tx, i, fetcher)
			if err != nil {
				priv.Zero()
				return signed, fmt.Errorf("bitcoin: input %d: BIP341 sighash: %w", i, err)
			}
			var a [32]byte
			if _, err := io.ReadFull(aux, a[:]); err != nil {
				priv.Zero()
				return signed, err
			}
			sig, err := SignTaprootKeyPath(priv, h, a[:])
			priv.Zero()
			if err != nil {
				return signed, err
			}
			p.Inputs[i].TaprootKeySpendSig = slices.Clone(sig[:])
		default:
			priv.Zero()
			continue
		}
		signed++
	}
	return signed, nil
}
