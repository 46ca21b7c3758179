package skycoin

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/skyfleet/skyfleet/services/identity"
)

// Skycoin's golden files (testdata/README.md gives their source): a seed
// phrase and the keys its deterministic chain gives, with their addresses.
type golden struct {
	Seed []byte `json:"seed"` // base64 in the file
	Keys []struct {
		Address, Secret, Public string
	} `json:"keys"`
}

func load(t testing.TB, name string) golden {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "skycoin", name))
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Keys) == 0 || len(g.Seed) == 0 {
		t.Fatalf("%s: no seed or keys", name)
	}
	return g
}

// The chain gives the golden files' secret keys, public keys and
// addresses, in order: three seeds of ten keys and one of a thousand.
func TestDeterministicKeysGolden(t *testing.T) {
	for _, name := range []string{"seed-0000.golden", "seed-0001.golden", "seed-0002.golden", "many-addresses.golden"} {
		g := load(t, name)
		keys, err := DeterministicKeys(g.Seed, len(g.Keys))
		if err != nil {
			t.Fatal(err)
		}
		for i, k := range keys {
			want := g.Keys[i]
			var sec [32]byte
			k.Key.PutBytes(&sec)
			if got := hex.EncodeToString(sec[:]); got != want.Secret {
				t.Fatalf("%s key %d: secret differs from the golden file's", name, i)
			}
			pub, err := identity.PublicKeyOf(k)
			if err != nil {
				t.Fatal(err)
			}
			if hex.EncodeToString(pub) != want.Public {
				t.Errorf("%s key %d: public %x, want %s", name, i, pub, want.Public)
			}
			addr, err := identity.AddressFromPublicKey(pub)
			if err != nil || addr.String() != want.Address {
				t.Errorf("%s key %d: address %s (%v), want %s", name, i, addr, err, want.Address)
			}
		}
	}
}

func TestDeterministicKeysRefuses(t *testing.T) {
	if _, err := DeterministicKeys(nil, 1); err != ErrEmptySeed {
		t.Errorf("empty seed: %v", err)
	}
	for _, n := range []int{0, -1, maxKeys + 1} {
		if _, err := DeterministicKeys([]byte("x"), n); err == nil {
			t.Errorf("n = %d accepted", n)
		}
	}
}
