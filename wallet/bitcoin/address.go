// Package bitcoin is the wallet's Bitcoin: the addresses of BIP84 (P2WPKH)
// and BIP86 (P2TR, key path only) accounts, and (next) PSBT signing.
// Encodings and script templates come from btcd (btcutil's addresses,
// txscript's Taproot tweak): only public values pass through them.
package bitcoin

import (
	"fmt"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
)

// Purposes of the BIP43 paths the wallet derives Bitcoin keys under.
const (
	PurposeP2WPKH = 84 // BIP84
	PurposeP2TR   = 86 // BIP86
)

// Output is a receiving output's address and what it pays to.
type Output struct {
	Address      string // bc1q... or bc1p...
	ScriptPubKey []byte
	// OutputKey is the x-only Taproot output key (BIP341); nil for P2WPKH.
	OutputKey []byte
}

// P2WPKH returns the mainnet P2WPKH output of a 33-byte compressed public
// key (BIP141 §P2WPKH, BIP173 address): OP_0 <HASH160(pub)>. Errors: a key
// that is not a compressed point on the curve.
func P2WPKH(pub []byte) (Output, error) {
	if _, err := btcec.ParsePubKey(pub); err != nil || len(pub) != 33 {
		return Output{}, fmt.Errorf("bitcoin: not a compressed public key (%d bytes): %v", len(pub), err)
	}
	a, err := btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(pub), &chaincfg.MainNetParams)
	if err != nil {
		return Output{}, err
	}
	script, err := txscript.PayToAddrScript(a)
	if err != nil {
		return Output{}, err
	}
	return Output{Address: a.EncodeAddress(), ScriptPubKey: script}, nil
}

// P2TR returns the mainnet key-path-only Taproot output of an internal key
// (a 33-byte compressed or 32-byte x-only public key): the output key
// Q = P + int(hash_TapTweak(x(P)))·G with P's y made even (BIP341
// §Constructing and spending Taproot outputs, BIP86 §Address derivation),
// paid to by OP_1 <x(Q)> at a BIP350 address. Errors: a key not on the curve.
func P2TR(internal []byte) (Output, error) {
	var p *btcec.PublicKey
	var err error
	switch len(internal) {
	case 32:
		p, err = schnorr.ParsePubKey(internal)
	case 33:
		p, err = btcec.ParsePubKey(internal)
	default:
		err = fmt.Errorf("%d bytes", len(internal))
	}
	if err != nil {
		return Output{}, fmt.Errorf("bitcoin: not a public key: %v", err)
	}
	q := txscript.ComputeTaprootKeyNoScript(p)
	xq := schnorr.SerializePubKey(q)
	a, err := btcutil.NewAddressTaproot(xq, &chaincfg.MainNetParams)
	if err != nil {
		return Output{}, err
	}
	script, err := txscript.PayToAddrScript(a)
	if err != nil {
		return Output{}, err
	}
	return Output{Address: a.EncodeAddress(), ScriptPubKey: script, OutputKey: xq}, nil
}
