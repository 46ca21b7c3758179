package identity

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

// goldenDir is Skycoin's cipher golden data, copied unchanged into the
// repository (testdata/README.md gives each file's source and licence).
var goldenDir = filepath.Join("..", "..", "testdata", "skycoin")

type goldenKey struct {
	Address        string   `json:"address"`
	BitcoinAddress string   `json:"bitcoin_address"`
	Secret         string   `json:"secret"`
	Public         string   `json:"public"`
	Signatures     []string `json:"signatures"`
}

type goldenSeed struct {
	Seed []byte      `json:"seed"` // base64 in the file
	Keys []goldenKey `json:"keys"`
}

func readGolden(t testing.TB, name string, v any) {
	t.Helper()
	path := filepath.Join(goldenDir, name)
	data, err := os.ReadFile(path)
	if err != nil {
		abs, _ := filepath.Abs(path)
		t.Fatalf("golden file missing or unreadable: %s (%s): %v", path, abs, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func loadSeedGolden(t testing.TB, name string) goldenSeed {
	t.Helper()
	var g goldenSeed
	readGolden(t, name, &g)
	if len(g.Keys) == 0 {
		t.Fatalf("%s: no keys", name)
	}
	return g
}

func loadInputHashes(t testing.TB) [][]byte {
	t.Helper()
	var f struct {
		Hashes []string `json:"hashes"`
	}
	readGolden(t, "input-hashes.golden", &f)
	if len(f.Hashes) == 0 {
		t.Fatal("input-hashes.golden: no hashes")
	}
	out := make([][]byte, len(f.Hashes))
	for i, h := range f.Hashes {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != 32 {
			t.Fatalf("input-hashes.golden: hash %d: %q is not 32 bytes of hex", i, h)
		}
		out[i] = b
	}
	return out
}

// TestGoldenKeys checks, for every key of Skycoin's golden files, that the
// public key, Skycoin address and Bitcoin address derived from the secret
// are the ones Skycoin computed, and that both addresses parse back.
func TestGoldenKeys(t *testing.T) {
	files := []string{"seed-0000.golden", "seed-0001.golden", "seed-0002.golden", "many-addresses.golden"}
	total := 0
	for _, name := range files {
		g := loadSeedGolden(t, name)
		for i, gk := range g.Keys {
			k, err := ParseSecretHex(gk.Secret)
			if err != nil {
				t.Errorf("%s key %d: ParseSecretHex: %v", name, i, err)
				continue
			}
			if got := k.PublicKeyHex(); got != gk.Public {
				t.Errorf("%s key %d: public key %s, want %s", name, i, got, gk.Public)
			}
			if got := k.SecretHex(); got != gk.Secret {
				t.Errorf("%s key %d: SecretHex %s, want %s", name, i, got, gk.Secret)
			}
			if got := k.Address().String(); got != gk.Address {
				t.Errorf("%s key %d: address %s, want %s", name, i, got, gk.Address)
			}
			pub, _ := hex.DecodeString(gk.Public)
			a, err := AddressFromPublicKey(pub)
			if err != nil || a.String() != gk.Address {
				t.Errorf("%s key %d: AddressFromPublicKey = %v, %v; want %s", name, i, a, err, gk.Address)
			}
			btc, err := BitcoinAddress(pub)
			if err != nil || btc != gk.BitcoinAddress {
				t.Errorf("%s key %d: BitcoinAddress = %q, %v; want %s", name, i, btc, err, gk.BitcoinAddress)
			}
			pa, err := ParseAddress(gk.Address)
			if err != nil || pa != a {
				t.Errorf("%s key %d: ParseAddress(%s) = %v, %v; want %v", name, i, gk.Address, pa, err, a)
			}
			// A Bitcoin address has the version first and a double-SHA256
			// checksum, so it must not pass as a Skycoin address.
			if _, err := ParseAddress(gk.BitcoinAddress); err == nil {
				t.Errorf("%s key %d: ParseAddress accepted Bitcoin address %s", name, i, gk.BitcoinAddress)
			}
			info, err := Inspect(gk.Secret)
			if err != nil || info != (Info{PublicKey: gk.Public, Address: gk.Address}) {
				t.Errorf("%s key %d: Inspect = %+v, %v", name, i, info, err)
			}
			total++
		}
	}
	if total < 1030 {
		t.Fatalf("checked only %d golden keys, want at least 1030", total)
	}
}

// skycoinToCompact turns Skycoin's 65-byte recoverable signature
// r ‖ s ‖ recid into decred's compact form (27 + 4 + recid) ‖ r ‖ s, the
// 4 marking a compressed public key.
func skycoinToCompact(sig []byte) []byte {
	out := make([]byte, 65)
	out[0] = 27 + 4 + sig[64]
	copy(out[1:], sig[:64])
	return out
}

// TestGoldenSignatures recovers the signer of every golden signature over
// input-hashes.golden (signature j of a key signs hash j) and checks it is
// the key's public key; a tampered hash must recover someone else.
func TestGoldenSignatures(t *testing.T) {
	hashes := loadInputHashes(t)
	checked := 0
	for _, name := range []string{"seed-0000.golden", "seed-0001.golden", "seed-0002.golden"} {
		g := loadSeedGolden(t, name)
		for i, gk := range g.Keys {
			if len(gk.Signatures) != len(hashes) {
				t.Fatalf("%s key %d: %d signatures for %d hashes", name, i, len(gk.Signatures), len(hashes))
			}
			want, _ := hex.DecodeString(gk.Public)
			for j, sh := range gk.Signatures {
				sig, err := hex.DecodeString(sh)
				if err != nil || len(sig) != 65 || sig[64] > 3 {
					t.Fatalf("%s key %d sig %d: not a 65-byte r‖s‖recid signature: %q", name, i, j, sh)
				}
				pub, compressed, err := ecdsa.RecoverCompact(skycoinToCompact(sig), hashes[j])
				if err != nil {
					t.Errorf("%s key %d sig %d: recover: %v", name, i, j, err)
					continue
				}
				if !compressed || !bytes.Equal(pub.SerializeCompressed(), want) {
					t.Errorf("%s key %d sig %d: recovered %x, want %x", name, i, j, pub.SerializeCompressed(), want)
				}
				bad := bytes.Clone(hashes[j])
				bad[0] ^= 1
				if pub, _, err := ecdsa.RecoverCompact(skycoinToCompact(sig), bad); err == nil && bytes.Equal(pub.SerializeCompressed(), want) {
					t.Errorf("%s key %d sig %d: still recovers the signer over a changed hash", name, i, j)
				}
				checked++
			}
		}
	}
	if checked != 300 {
		t.Fatalf("checked %d signatures, want 300", checked)
	}
}
