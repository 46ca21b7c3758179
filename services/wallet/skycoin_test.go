package wallet

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/skyfleet/skyfleet/services/identity"
	"github.com/skyfleet/skyfleet/wallet/bitcoin"
	"github.com/skyfleet/skyfleet/wallet/skycoin"
)

// skycoinAddr is the wallet's Skycoin address at path, derived with
// skycoin.DeterministicKeys or the BIP44 chain apart from the service.
func (f *fixture) skycoinAddr(path string) string {
	f.t.Helper()
	var a AddressAnswer
	if code, body := f.call("POST", "/address", hostKey, AddressRequest{Path: path}, &a); code != 200 {
		f.t.Fatalf("address %s: %d %s", path, code, body)
	}
	return a.Address
}

// A Skycoin transaction spending two of the wallet's outputs (the
// deterministic chain's first key and a BIP44 key), paying 3 SKY out and
// the rest back to skycoin/1: signed after Approve, each signature
// recovers the input's address (Skycoin's rule: the signer of
// SHA256(innerHash ‖ input)), and the screen showed coins, hours and fee.
func TestSignSkycoin(t *testing.T) {
	f := newFixture(t, 0)
	f.pair()
	f.restore(vectorMnemonic)
	// The deterministic chain's first address, from the phrase alone.
	keys, _ := skycoin.DeterministicKeys([]byte(vectorMnemonic), 2)
	pub0, _ := identity.PublicKeyOf(keys[0])
	want0, _ := identity.AddressFromPublicKey(pub0)
	a0, a1 := f.skycoinAddr("skycoin/0"), f.skycoinAddr("m/44'/8000'/0'/0/0")
	if a0 != want0.String() {
		t.Fatalf("skycoin/0 = %s, want %s", a0, want0)
	}
	change := f.skycoinAddr("skycoin/1")
	dest, _ := identity.ParseAddress("2GgFvqoyk9RjwVzj8tqfcXVXB4orBwoc9qv") // Skycoin's genesis address
	ins := []SkycoinInput{
		{Source: strings.Repeat("11", 32), Address: a0, Coins: 2_000_000, Hours: 40, Path: "skycoin/0"},
		{Source: strings.Repeat("22", 32), Address: a1, Coins: 5_000_000, Hours: 60, Path: "m/44'/8000'/0'/0/0"},
	}
	ch, _ := identity.ParseAddress(change)
	req, tx, err := NewSkycoinRequest(ins, []skycoin.Output{{Address: dest, Coins: 3_000_000, Hours: 20}, {Address: ch, Coins: 4_000_000, Hours: 30}}, []string{"skycoin/1"})
	if err != nil {
		t.Fatal(err)
	}
	var out SkycoinAnswer
	if code, body := f.call("POST", "/sign/skycoin", hostKey, req, &out); code != 200 {
		t.Fatalf("sign: %d %s", code, body)
	}
	raw, _ := hex.DecodeString(out.Tx)
	signed, err := skycoin.DecodeTransaction(raw)
	if err != nil {
		t.Fatal(err)
	}
	for i, in := range ins {
		got, err := signed.InputSigner(i)
		if err != nil || got.String() != in.Address {
			t.Errorf("input %d is signed by %v (%v), want %s", i, got, err, in.Address)
		}
	}
	if id := signed.ID(); out.TxID != hex.EncodeToString(id[:]) || signed.InnerHash() != tx.InnerHash() {
		t.Error("the signed transaction is not the one asked for")
	}
	qs := f.p.questions()
	shown := fmt.Sprint(qs[len(qs)-1].Rows, qs[len(qs)-1].Warnings)
	for _, want := range []string{"Send 1 3 SKY and 20 hours to " + dest.String(), "Change 4 SKY and 30 hours back to " + change + " (skycoin/1)",
		"Fee at least 50 coin hours burned", "Inputs 2, 7 SKY and 100 hours"} {
		if !strings.Contains(shown, want) {
			t.Errorf("the screen lacks %q: %s", want, shown)
		}
	}
	// A body that is not the UxID's is refused before the screen.
	n := len(f.p.questions())
	bad := req
	bad.Inputs = append([]SkycoinInput(nil), ins...)
	bad.Inputs[0].Hours = 4000
	if code, body := f.call("POST", "/sign/skycoin", hostKey, bad, nil); code != 400 || !strings.Contains(body, "input 0") {
		t.Errorf("a doctored input: %d %s", code, body)
	}
	// A path that does not make the input's address is refused.
	bad.Inputs[0] = ins[0]
	bad.Inputs[0].Path = "skycoin/5"
	if code, body := f.call("POST", "/sign/skycoin", hostKey, bad, nil); code != 400 || !strings.Contains(body, "not the address") {
		t.Errorf("a wrong path: %d %s", code, body)
	}
	if len(f.p.questions()) != n {
		t.Error("a refused transaction reached the screen")
	}
	f.scanForSecrets(vectorMnemonic)
}

// Messages: Skycoin's rule and BIP322-simple, each verified by the other
// half's verifier; text the screen cannot show is refused.
func TestSignMessage(t *testing.T) {
	f := newFixture(t, 0)
	f.pair()
	f.restore(vectorMnemonic)
	msg := "I own this address, 6 December 2026"
	for _, path := range []string{"skycoin/0", "m/84'/0'/0'/0/0", "m/86'/0'/0'/0/0"} {
		var out MessageAnswer
		if code, body := f.call("POST", "/sign/message", hostKey, MessageRequest{Path: path, Message: msg}, &out); code != 200 {
			t.Fatalf("%s: %d %s", path, code, body)
		}
		var err error
		if path == "skycoin/0" {
			a, _ := identity.ParseAddress(out.Address)
			err = skycoin.VerifyMessage(a, []byte(msg), out.Signature)
		} else {
			err = bitcoin.VerifyMessageSimple(out.Address, []byte(msg), out.Signature, nil)
		}
		if err != nil {
			t.Errorf("%s: the signature does not verify: %v", path, err)
		}
		qs := f.p.questions()
		if shown := fmt.Sprint(qs[len(qs)-1].Rows); !strings.Contains(shown, msg) || !strings.Contains(shown, out.Address) {
			t.Errorf("the screen showed %s", shown)
		}
	}
	for _, bad := range []string{"", "pay\u202eevil", "a\x00b", strings.Repeat("x", MaxMessage+1)} {
		if code, _ := f.call("POST", "/sign/message", hostKey, MessageRequest{Path: "skycoin/0", Message: bad}, nil); code != 400 {
			t.Errorf("message %q: %d, want 400", bad, code)
		}
	}
	f.scanForSecrets(vectorMnemonic)
}

// NewSkycoinRequest refuses a source that is not a 32-byte hash and an
// address that does not parse, naming the input.
func TestNewSkycoinRequestRefuses(t *testing.T) {
	good := SkycoinInput{Source: strings.Repeat("11", 32), Address: "2GgFvqoyk9RjwVzj8tqfcXVXB4orBwoc9qv", Coins: 1_000_000, Path: "skycoin/0"}
	short, badAddr := good, good
	short.Source = "1111"
	badAddr.Address = "2GgFvqoyk9RjwVzj8tqfcXVXB4orBwoc9qw"
	for _, c := range []struct {
		in   SkycoinInput
		want string
	}{{short, "input 1: source is not 64 hex digits"}, {badAddr, "input 1: " + identity.ErrAddressChecksum.Error()}} {
		if _, _, err := NewSkycoinRequest([]SkycoinInput{good, c.in}, nil, nil); !errors.Is(err, ErrRequest) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.in, err, c.want)
		}
	}
	req, tx, err := NewSkycoinRequest([]SkycoinInput{good}, nil, nil)
	if err != nil || len(tx.In) != 1 || req.Tx != hex.EncodeToString(tx.Encode()) {
		t.Fatalf("%v %+v", err, req)
	}
}
