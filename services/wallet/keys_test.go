package wallet

import (
	"testing"

	"github.com/skyfleet/skyfleet/wallet/bip39"
	"github.com/skyfleet/skyfleet/wallet/skycoin"
)

// The cached Skycoin chain hands out the keys DeterministicKeys derives
// from the phrase, in whatever order they are asked for, as copies the
// caller may zero; zero forgets the chain.
func TestSkycoinChainCache(t *testing.T) {
	e, err := bip39.EntropyFromMnemonic(vectorMnemonic)
	if err != nil {
		t.Fatal(err)
	}
	k, err := openKeys(e, "")
	if err != nil {
		t.Fatal(err)
	}
	want, err := skycoin.DeterministicKeys([]byte(vectorMnemonic), MaxSkycoinIndex+1)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []uint32{5, 0, 300, 17, MaxSkycoinIndex, 301, 2} {
		got, err := k.skycoinKey(i)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Key.Equals(&want[i].Key) {
			t.Fatalf("key %d differs from the chain's", i)
		}
		got.Zero()
		if again, _ := k.skycoinKey(i); !again.Key.Equals(&want[i].Key) {
			t.Fatalf("zeroing the copy of key %d changed the cache", i)
		}
	}
	if len(k.chain) != MaxSkycoinIndex+1 {
		t.Errorf("the chain holds %d keys after asking for key %d", len(k.chain), MaxSkycoinIndex)
	}
	k.zero()
	if k.chain != nil {
		t.Error("zero kept the chain")
	}
}
