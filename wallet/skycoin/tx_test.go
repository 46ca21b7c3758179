package skycoin

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"testing"

	"github.com/skyfleet/skyfleet/services/identity"
)

// apiTxn is a transaction as Skycoin's node API prints it (the golden
// files' "txn").
type apiTxn struct {
	Length    int      `json:"length"`
	Type      byte     `json:"type"`
	TxID      string   `json:"txid"`
	InnerHash string   `json:"inner_hash"`
	Sigs      []string `json:"sigs"`
	Inputs    []string `json:"inputs"`
	Outputs   []struct {
		UxID  string `json:"uxid"`
		Dst   string `json:"dst"`
		Coins string `json:"coins"`
		Hours uint64 `json:"hours"`
	} `json:"outputs"`
}

func readJSON(t testing.TB, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "skycoin", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func hash32(t testing.TB, s string) [32]byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		t.Fatalf("%q is not a hash", s)
	}
	return [32]byte(b)
}

// droplets parses the API's "1000000.000000" coins.
func droplets(t testing.TB, s string) uint64 {
	t.Helper()
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		t.Fatalf("coins %q", s)
	}
	r.Mul(r, big.NewRat(DropletsPerCoin, 1))
	if !r.IsInt() {
		t.Fatalf("coins %q are not whole droplets", s)
	}
	return r.Num().Uint64()
}

func fromAPI(t testing.TB, a apiTxn) *Transaction {
	t.Helper()
	tx := &Transaction{Type: a.Type}
	for _, s := range a.Sigs {
		b, err := hex.DecodeString(s)
		if err != nil || len(b) != sigSize {
			t.Fatalf("sig %q", s)
		}
		tx.Sigs = append(tx.Sigs, [sigSize]byte(b))
	}
	for _, in := range a.Inputs {
		tx.In = append(tx.In, hash32(t, in))
	}
	for _, o := range a.Outputs {
		addr, err := identity.ParseAddress(o.Dst)
		if err != nil {
			t.Fatal(err)
		}
		tx.Out = append(tx.Out, Output{Address: addr, Coins: droplets(t, o.Coins), Hours: o.Hours})
	}
	return tx
}

// Block 1 of Skycoin's mainnet (testdata/skycoin/block-seq-1.golden), whose
// one transaction spends the genesis output into 100: its length, inner
// hash and ID are Skycoin's, each output's UxID is, its signature recovers
// the genesis address, and its encoding decodes back to itself. The genesis
// output's UxID (genesis-transaction.golden) is the input block 1 spends.
func TestMainnetBlockOne(t *testing.T) {
	var genesis struct{ Txn apiTxn }
	readJSON(t, "genesis-transaction.golden", &genesis)
	g := fromAPI(t, genesis.Txn)
	// Skycoin's genesis block gives its output the null hash as source
	// transaction (coin.CreateUnspent), not the genesis txid.
	gux := UxID([32]byte{}, g.Out[0])
	if hex.EncodeToString(gux[:]) != genesis.Txn.Outputs[0].UxID {
		t.Fatalf("genesis output UxID %x, want %s", gux, genesis.Txn.Outputs[0].UxID)
	}

	var block struct {
		Body struct{ Txns []apiTxn } `json:"body"`
	}
	readJSON(t, "block-seq-1.golden", &block)
	a := block.Body.Txns[0]
	tx := fromAPI(t, a)
	if tx.Size() != a.Length {
		t.Errorf("size %d, want %d", tx.Size(), a.Length)
	}
	if ih := tx.InnerHash(); hex.EncodeToString(ih[:]) != a.InnerHash {
		t.Errorf("inner hash %x, want %s", ih, a.InnerHash)
	}
	id := tx.ID()
	if hex.EncodeToString(id[:]) != a.TxID {
		t.Errorf("txid %x, want %s", id, a.TxID)
	}
	for i, o := range tx.Out {
		if u := UxID(id, o); hex.EncodeToString(u[:]) != a.Outputs[i].UxID {
			t.Errorf("output %d: UxID %x, want %s", i, u, a.Outputs[i].UxID)
		}
	}
	if tx.In[0] != gux {
		t.Errorf("block 1 spends %x, not the genesis output", tx.In[0])
	}
	signer, err := tx.InputSigner(0)
	if err != nil || signer.String() != genesis.Txn.Outputs[0].Dst {
		t.Errorf("input 0 signed by %v (%v), want the genesis address %s", signer, err, genesis.Txn.Outputs[0].Dst)
	}
	enc := tx.Encode()
	back, err := DecodeTransaction(enc)
	if err != nil || !bytes.Equal(back.Encode(), enc) {
		t.Errorf("decode of the encoding: %v", err)
	}
}

// A transaction signed here verifies under Skycoin's rule: each input's
// signature recovers the address of the key that owns it; changing an
// output afterwards breaks them.
func TestSignInputs(t *testing.T) {
	keys, err := DeterministicKeys([]byte("skyfleet wallet test"), 3)
	if err != nil {
		t.Fatal(err)
	}
	addr := func(i int) identity.Address {
		pub, _ := identity.PublicKeyOf(keys[i])
		a, _ := identity.AddressFromPublicKey(pub)
		return a
	}
	tx := &Transaction{
		In:  [][32]byte{{1}, {2}},
		Out: []Output{{Address: addr(2), Coins: 5 * DropletsPerCoin, Hours: 10}, {Address: addr(0), Coins: 1, Hours: 1}},
	}
	for i := range tx.In {
		if err := tx.SignInput(i, keys[i]); err != nil {
			t.Fatal(err)
		}
	}
	for i := range tx.In {
		if s, err := tx.InputSigner(i); err != nil || s != addr(i) {
			t.Errorf("input %d signed by %v (%v), want %v", i, s, err, addr(i))
		}
	}
	tx.Out[0].Coins++
	if s, _ := tx.InputSigner(0); s == addr(0) {
		t.Error("a changed output still verifies")
	}
	if err := tx.SignInput(2, keys[0]); err == nil {
		t.Error("signing input 2 of 2 succeeded")
	}
}

func TestDecodeRefuses(t *testing.T) {
	var block struct {
		Body struct{ Txns []apiTxn } `json:"body"`
	}
	readJSON(t, "block-seq-1.golden", &block)
	good := fromAPI(t, block.Body.Txns[0]).Encode()
	bad := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	cases := map[string][]byte{
		"empty":         nil,
		"short":         good[:40],
		"length field":  bad(func(b []byte) []byte { b[0]++; return b }),
		"inner hash":    bad(func(b []byte) []byte { b[10] ^= 1; return b }),
		"truncated":     bad(func(b []byte) []byte { b = b[:len(b)-1]; b[0]--; return b }),
		"trailing byte": bad(func(b []byte) []byte { b = append(b, 0); b[0]++; return b }),
		"too many sigs": bad(func(b []byte) []byte { b[37] = 200; return b }),
		"huge count":    bad(func(b []byte) []byte { b[40] = 0xff; return b }),
		"oversize":      make([]byte, MaxTransactionSize+1),
	}
	for name, b := range cases {
		if _, err := DecodeTransaction(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := DecodeTransaction(good); err != nil {
		t.Errorf("block 1: %v", err)
	}
}

// DecodeTransaction never panics, and what it accepts encodes back to the
// same bytes.
func FuzzDecodeTransaction(f *testing.F) {
	tx := &Transaction{In: [][32]byte{{1}}, Sigs: [][sigSize]byte{{2}}, Out: []Output{{Coins: 3, Hours: 4}}}
	f.Add(tx.Encode())
	f.Add((&Transaction{}).Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		tx, err := DecodeTransaction(b)
		if err != nil {
			return
		}
		if !bytes.Equal(tx.Encode(), b) {
			t.Fatalf("%x decodes and encodes to %x", b, tx.Encode())
		}
	})
}
