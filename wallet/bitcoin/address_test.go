package bitcoin

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/skyfleet/skyfleet/wallet/bip32"
	"github.com/skyfleet/skyfleet/wallet/bip39"
)

const abandon = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"

// BIP84 §Test vectors and BIP86 §Test vectors: the same mnemonic's first
// receiving, second receiving and first change addresses, with their keys.
func TestBIP84AndBIP86Vectors(t *testing.T) {
	m, err := bip32.NewMaster(bip39.Seed(abandon, ""))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		path, pub, address string
		taproot            bool
		outputKey          string
	}{
		{"m/84'/0'/0'/0/0", "0330d54fd0dd420a6e5f8d3624f5f3482cae350f79d5f0753bf5beef9c2d91af3c", "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu", false, ""},
		{"m/84'/0'/0'/0/1", "03e775fd51f0dfb8cd865d9ff1cca2a158cf651fe997fdc9fee9c1d3b5e995ea77", "bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g", false, ""},
		{"m/84'/0'/0'/1/0", "03025324888e429ab8e3dbaf1f7802648b9cd01e9b418485c5fa4c1b9b5700e1a6", "bc1q8c6fshw2dlwun7ekn9qwf37cu2rn755upcp6el", false, ""},
		{"m/86'/0'/0'/0/0", "cc8a4bc64d897bddc5fbc2f670f7a8ba0b386779106cf1223c6fc5d7cd6fc115", "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr", true, "a60869f0dbcf1dc659c9cecbaf8050135ea9e8cdc487053f1dc6880949dc684c"},
		{"m/86'/0'/0'/0/1", "83dfe85a3151d2517290da461fe2815591ef69f2b18a2ce63f01697a8b313145", "bc1p4qhjn9zdvkux4e44uhx8tc55attvtyu358kutcqkudyccelu0was9fqzwh", true, "a82f29944d65b86ae6b5e5cc75e294ead6c59391a1edc5e016e3498c67fc7bbb"},
		{"m/86'/0'/0'/1/0", "399f1b2f4393f29a18c937859c5dd8a77350103157eb880f02e8c08214277cef", "bc1p3qkhfews2uk44qtvauqyr2ttdsw7svhkl9nkm9s9c3x4ax5h60wqwruhk7", true, "882d74e5d0572d5a816cef0041a96b6c1de832f6f9676d9605c44d5e9a97d3dc"},
	}
	for _, c := range cases {
		k, err := m.Derive(c.path)
		if err != nil {
			t.Fatal(err)
		}
		pub := k.PublicKey()
		var out Output
		if c.taproot {
			if hex.EncodeToString(pub[1:]) != c.pub { // BIP86 gives the x-only internal key
				t.Errorf("%s: internal key %x, want %s", c.path, pub[1:], c.pub)
			}
			out, err = P2TR(pub)
		} else {
			if hex.EncodeToString(pub) != c.pub {
				t.Errorf("%s: public key %x, want %s", c.path, pub, c.pub)
			}
			out, err = P2WPKH(pub)
		}
		if err != nil || out.Address != c.address || hex.EncodeToString(out.OutputKey) != c.outputKey {
			t.Errorf("%s: %s (output key %x, %v), want %s (%s)", c.path, out.Address, out.OutputKey, err, c.address, c.outputKey)
		}
	}
}

// BIP341's wallet vectors: the one output without a script tree.
func TestBIP341KeyPathOutput(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "bips", "bip-0341-wallet-test-vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		ScriptPubKey []struct {
			Given struct {
				InternalPubkey string          `json:"internalPubkey"`
				ScriptTree     json.RawMessage `json:"scriptTree"`
			} `json:"given"`
			Intermediary struct {
				TweakedPubkey string `json:"tweakedPubkey"`
			} `json:"intermediary"`
			Expected struct {
				ScriptPubKey  string `json:"scriptPubKey"`
				BIP350Address string `json:"bip350Address"`
			} `json:"expected"`
		} `json:"scriptPubKey"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range v.ScriptPubKey {
		if string(e.Given.ScriptTree) != "null" {
			continue // script paths: not what the wallet makes
		}
		n++
		internal, _ := hex.DecodeString(e.Given.InternalPubkey)
		out, err := P2TR(internal)
		if err != nil || out.Address != e.Expected.BIP350Address || hex.EncodeToString(out.ScriptPubKey) != e.Expected.ScriptPubKey ||
			hex.EncodeToString(out.OutputKey) != e.Intermediary.TweakedPubkey {
			t.Errorf("%s: %+v %v", e.Given.InternalPubkey, out, err)
		}
	}
	if n != 1 {
		t.Errorf("%d key-path-only vectors, want 1", n)
	}
}

func TestAddressErrors(t *testing.T) {
	for _, k := range [][]byte{nil, make([]byte, 33), make([]byte, 65), append([]byte{2}, make([]byte, 32)...)} {
		if _, err := P2WPKH(k); err == nil {
			t.Errorf("P2WPKH(%x) accepted", k)
		}
	}
	for _, k := range [][]byte{nil, make([]byte, 31), make([]byte, 32)} {
		if _, err := P2TR(k); err == nil {
			t.Errorf("P2TR(%x) accepted", k)
		}
	}
}
