// Package bitcointest builds the PSBT the wallet's tests sign, and checks a
// signed transaction with btcd's script engine: one builder for the
// libraries' tests (wallet/bitcoin) and the service's (services/wallet). It
// makes its scripts with btcd alone, not with wallet/bitcoin, so it checks
// that package rather than repeating it.
package bitcointest

import (
	"fmt"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/skyfleet/skyfleet/wallet/bip32"
)

// Destination is the outside address Spend pays (BIP173's P2WPKH example
// key's): not the test wallet's.
const Destination = "bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g"

// Funding returns a transaction with one output paying value (satoshis) to
// script; salt makes its txid differ from another's.
func Funding(script []byte, value int64, salt byte) *wire.MsgTx {
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: chainhash.Hash{salt}, Index: 0}, nil, nil))
	tx.AddTxOut(wire.NewTxOut(value, script))
	return tx
}

// fingerprint is master's fingerprint as the psbt package holds it (the
// four bytes read little-endian).
func fingerprint(master *bip32.Key) uint32 {
	fp := master.Fingerprint()
	return uint32(fp[0]) | uint32(fp[1])<<8 | uint32(fp[2])<<16 | uint32(fp[3])<<24
}

func derive(master *bip32.Key, path string) ([]byte, []uint32, error) {
	k, err := master.Derive(path)
	if err != nil {
		return nil, nil, err
	}
	defer k.Zero()
	idx, err := bip32.ParsePath(path)
	return k.PublicKey(), idx, err
}

func p2wpkh(pub []byte) []byte {
	a, _ := btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(pub), &chaincfg.MainNetParams)
	s, _ := txscript.PayToAddrScript(a)
	return s
}

func p2tr(pub []byte) ([]byte, error) {
	p, err := btcec.ParsePubKey(pub)
	if err != nil {
		return nil, err
	}
	q := txscript.ComputeTaprootKeyNoScript(p)
	return txscript.PayToTaprootScript(q)
}

// Spend is a PSBT spending two outputs of master's wallet: input 0 a
// P2WPKH output of m/84'/0'/0'/0/0 worth 60,000 sat (with its previous
// transaction), input 1 a P2TR output of m/86'/0'/0'/0/0 worth 40,000 sat
// (with its witness UTXO only), paying 70,000 sat to Destination and 28,000
// back to m/84'/0'/0'/1/0: a fee of 2,000 sat. It also returns the spent
// outputs, for VerifyTx. Errors: master cannot derive the keys.
func Spend(master *bip32.Key) (*psbt.Packet, map[wire.OutPoint]*wire.TxOut, error) {
	fp := fingerprint(master)
	wpub, wpath, err := derive(master, "m/84'/0'/0'/0/0")
	if err != nil {
		return nil, nil, err
	}
	tpub, tpath, err := derive(master, "m/86'/0'/0'/0/0")
	if err != nil {
		return nil, nil, err
	}
	cpub, cpath, err := derive(master, "m/84'/0'/0'/1/0")
	if err != nil {
		return nil, nil, err
	}
	tscript, err := p2tr(tpub)
	if err != nil {
		return nil, nil, err
	}
	f1 := Funding(p2wpkh(wpub), 60_000, 1)
	f2 := Funding(tscript, 40_000, 2)
	dest, _ := btcutil.DecodeAddress(Destination, &chaincfg.MainNetParams)
	destScript, _ := txscript.PayToAddrScript(dest)
	ops := []*wire.OutPoint{{Hash: f1.TxHash(), Index: 0}, {Hash: f2.TxHash(), Index: 0}}
	p, err := psbt.New(ops, []*wire.TxOut{wire.NewTxOut(70_000, destScript), wire.NewTxOut(28_000, p2wpkh(cpub))}, 2, 0,
		[]uint32{wire.MaxTxInSequenceNum, wire.MaxTxInSequenceNum})
	if err != nil {
		return nil, nil, err
	}
	p.Inputs[0].NonWitnessUtxo = f1
	p.Inputs[0].Bip32Derivation = []*psbt.Bip32Derivation{{PubKey: wpub, MasterKeyFingerprint: fp, Bip32Path: wpath}}
	p.Inputs[1].WitnessUtxo = f2.TxOut[0]
	p.Inputs[1].TaprootInternalKey = tpub[1:]
	p.Inputs[1].TaprootBip32Derivation = []*psbt.TaprootBip32Derivation{{XOnlyPubKey: tpub[1:], MasterKeyFingerprint: fp, Bip32Path: tpath}}
	p.Outputs[1].Bip32Derivation = []*psbt.Bip32Derivation{{PubKey: cpub, MasterKeyFingerprint: fp, Bip32Path: cpath}}
	prev := map[wire.OutPoint]*wire.TxOut{*ops[0]: f1.TxOut[0], *ops[1]: f2.TxOut[0]}
	return p, prev, nil
}

// VerifyTx runs every input of tx through btcd's script engine with the
// standard verification flags, against the outputs it spends (prev).
// Errors name the first input that fails.
func VerifyTx(tx *wire.MsgTx, prev map[wire.OutPoint]*wire.TxOut) error {
	fetcher := txscript.NewMultiPrevOutFetcher(prev)
	hashes := txscript.NewTxSigHashes(tx, fetcher)
	for i, in := range tx.TxIn {
		po := prev[in.PreviousOutPoint]
		if po == nil {
			return fmt.Errorf("input %d spends an output not given", i)
		}
		vm, err := txscript.NewEngine(po.PkScript, tx, i, txscript.StandardVerifyFlags, nil, hashes, po.Value, fetcher)
		if err != nil {
			return fmt.Errorf("input %d: %w", i, err)
		}
		if err := vm.Execute(); err != nil {
			return fmt.Errorf("input %d does not verify: %w", i, err)
		}
	}
	return nil
}
