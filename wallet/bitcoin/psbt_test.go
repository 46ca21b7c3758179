package bitcoin

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/skyfleet/skyfleet/wallet/bip32"
	"github.com/skyfleet/skyfleet/wallet/bip39"
	"github.com/skyfleet/skyfleet/wallet/bitcoin/bitcointest"
)

type bip174Case struct{ Case, Base64 string }

func bip174(t testing.TB) (invalid, valid, failsSigner []bip174Case) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "bips", "bip174-vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Invalid, Valid    []bip174Case
		FailsSignerChecks []bip174Case `json:"fails_signer_checks"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Invalid) != 20 || len(v.Valid) != 10 || len(v.FailsSignerChecks) != 4 {
		t.Fatalf("%d invalid, %d valid, %d failing the signer's checks: want 20, 10, 4", len(v.Invalid), len(v.Valid), len(v.FailsSignerChecks))
	}
	return v.Invalid, v.Valid, v.FailsSignerChecks
}

// BIP174 §Test Vectors: every invalid PSBT is refused with a reason, every
// valid one parses; those that "fail signer checks" get no signature from
// the wallet (its keys are not theirs, and it signs nothing it cannot
// check).
func TestBIP174Vectors(t *testing.T) {
	invalid, valid, failsSigner := bip174(t)
	for _, c := range invalid {
		_, err := ParsePSBT([]byte(c.Base64), true)
		if !errors.Is(err, ErrRefused) || len(err.Error()) < len(ErrRefused.Error())+10 {
			t.Errorf("invalid %q: %v, want a refusal with its reason", c.Case, err)
		}
	}
	w := testWallet(t)
	for _, c := range append(valid, failsSigner...) {
		p, err := ParsePSBT([]byte(c.Base64), true)
		if err != nil {
			t.Errorf("valid %q: %v", c.Case, err)
			continue
		}
		if n, _ := w.Sign(p, nil); n != 0 {
			t.Errorf("%q: the wallet signed %d inputs of a PSBT that is not its own", c.Case, n)
		}
	}
}

const testMnemonic = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"

func testWallet(t testing.TB) Wallet {
	t.Helper()
	m, err := bip32.NewMaster(bip39.Seed(testMnemonic, ""))
	if err != nil {
		t.Fatal(err)
	}
	return Wallet{Master: m}
}

// spend is bitcointest.Spend's PSBT of the test wallet's: a P2WPKH input
// of m/84'/0'/0'/0/0 (60,000 sat) and a P2TR input of m/86'/0'/0'/0/0
// (40,000), paying 70,000 sat out and 28,000 back to m/84'/0'/0'/1/0.
func spend(t testing.TB, w Wallet) (*psbt.Packet, map[wire.OutPoint]*wire.TxOut) {
	t.Helper()
	p, prev, err := bitcointest.Spend(w.Master)
	if err != nil {
		t.Fatal(err)
	}
	return p, prev
}

// A PSBT with a P2WPKH and a P2TR input and a change output: the summary
// shows the amounts, the fee and the change; the wallet signs both inputs;
// the finalised transaction passes btcd's script engine for each input.
func TestSignP2WPKHAndP2TR(t *testing.T) {
	w := testWallet(t)
	p, prev := spend(t, w)
	s, err := w.Analyze(p)
	if err != nil {
		t.Fatal(err)
	}
	if s.Fee != 2_000 || s.Sent != 70_000 || len(s.Outputs) != 2 || !s.Outputs[1].Change || s.Outputs[1].Path != "m/84'/0'/0'/1/0" || s.Outputs[0].Change ||
		s.Outputs[0].Address != "bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g" || s.Inputs[0].Path != "m/84'/0'/0'/0/0" || s.Inputs[1].Kind != KindP2TR {
		t.Fatalf("summary %+v", s)
	}
	if len(s.Warnings) != 1 || !strings.Contains(s.Warnings[0], "mixed inputs") {
		t.Errorf("warnings %q, want only the mixed inputs", s.Warnings)
	}
	n, err := w.Sign(p, nil)
	if err != nil || n != 2 {
		t.Fatalf("signed %d: %v", n, err)
	}
	if err := psbt.MaybeFinalizeAll(p); err != nil {
		t.Fatal(err)
	}
	tx, err := psbt.Extract(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := bitcointest.VerifyTx(tx, prev); err != nil {
		t.Error(err)
	}
	// A changed output breaks both signatures.
	tx.TxOut[0].Value--
	// Each input on its own: VerifyTx stops at the first failure.
	fetcher := txscript.NewMultiPrevOutFetcher(prev)
	hashes := txscript.NewTxSigHashes(tx, fetcher)
	for i, in := range tx.TxIn {
		po := prev[in.PreviousOutPoint]
		vm, _ := txscript.NewEngine(po.PkScript, tx, i, txscript.StandardVerifyFlags, nil, hashes, po.Value, fetcher)
		if vm.Execute() == nil {
			t.Errorf("input %d verifies after the output changed", i)
		}
	}
}

// What the wallet refuses, each with its reason, and what it warns about.
func TestAnalyzeRefusesAndWarns(t *testing.T) {
	w := testWallet(t)
	refuse := map[string]struct {
		edit func(p *psbt.Packet)
		want string
	}{
		"v0 without its previous transaction": {func(p *psbt.Packet) {
			p.Inputs[0].WitnessUtxo = p.Inputs[0].NonWitnessUtxo.TxOut[0]
			p.Inputs[0].NonWitnessUtxo = nil
		}, "without its previous transaction"},
		"no UTXO data": {func(p *psbt.Packet) { p.Inputs[1].WitnessUtxo = nil }, "no UTXO data"},
		"previous transaction of another outpoint": {func(p *psbt.Packet) {
			p.Inputs[0].NonWitnessUtxo = bitcointest.Funding(p.Inputs[0].NonWitnessUtxo.TxOut[0].PkScript, 60_000, 9)
		}, "not the"},
		"witness UTXO disagrees": {func(p *psbt.Packet) {
			p.Inputs[0].WitnessUtxo = wire.NewTxOut(1_000_000, p.Inputs[0].NonWitnessUtxo.TxOut[0].PkScript)
		}, "disagrees"},
		"outputs above inputs": {func(p *psbt.Packet) { p.UnsignedTx.TxOut[0].Value = 90_000 }, "more than the inputs"},
		"SIGHASH_NONE":         {func(p *psbt.Packet) { p.Inputs[0].SighashType = txscript.SigHashNone }, "sighash type"},
		"derivations without end": {func(p *psbt.Packet) {
			for range MaxDerivations {
				p.Inputs[0].Bip32Derivation = append(p.Inputs[0].Bip32Derivation, p.Inputs[0].Bip32Derivation[0])
			}
		}, "key derivations"},
	}
	for name, c := range refuse {
		p, _ := spend(t, w)
		c.edit(p)
		_, err := w.Analyze(p)
		if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want a refusal saying %q", name, err, c.want)
		}
		if n, err := w.Sign(p, nil); n != 0 || err == nil {
			t.Errorf("%s: Sign signed %d (%v)", name, n, err)
		}
	}
	warn := map[string]struct {
		edit func(p *psbt.Packet)
		want string
	}{
		"no change":      {func(p *psbt.Packet) { p.Outputs[1].Bip32Derivation = nil }, "no change"},
		"fee above 5%":   {func(p *psbt.Packet) { p.UnsignedTx.TxOut[1].Value = 10_000 }, "the fee is 28.6%"},
		"unknown script": {func(p *psbt.Packet) { p.UnsignedTx.TxOut[0].PkScript = []byte{txscript.OP_TRUE} }, "unknown script"},
		"foreign input": {func(p *psbt.Packet) {
			p.Inputs[0].Bip32Derivation[0].MasterKeyFingerprint++
		}, "1 of 2 inputs are not this wallet's"},
		"change to a key that is not the path's": {func(p *psbt.Packet) {
			p.Outputs[1].Bip32Derivation[0].Bip32Path[4] = 7
		}, "no change"},
	}
	for name, c := range warn {
		p, _ := spend(t, w)
		c.edit(p)
		s, err := w.Analyze(p)
		if err != nil || !strings.Contains(strings.Join(s.Warnings, "; "), c.want) {
			t.Errorf("%s: warnings %q (%v), want %q", name, s.Warnings, err, c.want)
		}
	}
}

// A PSBT survives serialization with the wallet's fields, and ParsePSBT
// takes raw bytes or base64.
func TestParsePSBTForms(t *testing.T) {
	p, _ := spend(t, testWallet(t))
	var raw bytes.Buffer
	if err := p.Serialize(&raw); err != nil {
		t.Fatal(err)
	}
	if _, err := ParsePSBT(raw.Bytes(), false); err != nil {
		t.Fatal(err)
	}
	if _, err := ParsePSBT([]byte(base64.StdEncoding.EncodeToString(raw.Bytes())), true); err != nil {
		t.Fatal(err)
	}
	if _, err := ParsePSBT(make([]byte, MaxPSBTSize+1), false); !errors.Is(err, ErrRefused) {
		t.Errorf("oversize: %v", err)
	}
}

// Whatever bytes come from the host, parsing and analysing never panic.
// panicky is a PSBT whose input holds a BIP32 derivation shorter than a
// fingerprint: btcd's parser panics on it (psbt v1.1.8, bip32.go:51).
// services/wallet's FuzzRequests found it.
const panicky = "cHNidP8BAJo00000A000000000000000000000000000000000000000000000000AA00000000000000000000000000000000000000000000000000000AA00000000000000000000000000000000000000000000000000000A00000AA000000000000000000000000000000000AAAiBgP002712122100711070080012020018110710810010AA0"

// A parser panic is a refusal with its reason, not a crash of the wallet.
func TestParsePSBTRecoversParserPanic(t *testing.T) {
	_, err := ParsePSBT([]byte(panicky), true)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "malformed field") {
		t.Errorf("ParsePSBT = %v, want a refusal naming the malformed field", err)
	}
}

func FuzzPSBT(f *testing.F) {
	if b, err := base64.StdEncoding.DecodeString(panicky); err == nil {
		f.Add(b)
	}
	invalid, valid, fails := bip174(f)
	for _, c := range append(append(invalid, valid...), fails...) {
		b, _ := base64.StdEncoding.DecodeString(c.Base64)
		f.Add(b)
	}
	w := testWallet(f)
	p, _ := spend(f, w)
	var raw bytes.Buffer
	p.Serialize(&raw)
	f.Add(raw.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePSBT(b, false)
		if err != nil {
			return
		}
		w.Analyze(p)
	})
}
