package bitcoin

import (
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// BIP340's test vectors (testdata/bips/bip-0340-test-vectors.csv): every
// vector with a secret key and a 32-byte message is signed to exactly the
// BIP's signature, with the BIP's auxiliary randomness; those of other
// lengths (added to BIP340 in 2022) are refused, since btcec's verifier
// takes 32 bytes; the ones without a key (verification only) are checked
// through btcec's verifier, which SignSchnorr relies on.
func TestBIP340Vectors(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "..", "testdata", "bips", "bip-0340-test-vectors.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	signed := 0
	for _, r := range rows[1:] {
		idx, sk, pk, aux, msg, sig, ok := r[0], r[1], r[2], r[3], r[4], r[5], r[6] == "TRUE"
		m, _ := hex.DecodeString(msg)
		if len(m) != 32 {
			kb, _ := hex.DecodeString(sk)
			if _, err := SignSchnorr(secp256k1.PrivKeyFromBytes(kb), m, make([]byte, 32)); err == nil {
				t.Errorf("vector %s: a %d-byte message was signed", idx, len(m))
			}
			continue
		}
		if sk != "" {
			kb, _ := hex.DecodeString(sk)
			ab, _ := hex.DecodeString(aux)
			got, err := SignSchnorr(secp256k1.PrivKeyFromBytes(kb), m, ab)
			if err != nil || !strings.EqualFold(hex.EncodeToString(got[:]), sig) {
				t.Errorf("vector %s: signature %x (%v), want %s", idx, got, err, sig)
			}
			signed++
		}
		pb, _ := hex.DecodeString(pk)
		sb, _ := hex.DecodeString(sig)
		verified := false
		if pub, err := schnorr.ParsePubKey(pb); err == nil {
			if s, err := schnorr.ParseSignature(sb); err == nil {
				verified = s.Verify(m, pub)
			}
		}
		if verified != ok {
			t.Errorf("vector %s: btcec verifies %v, the BIP says %v (%s)", idx, verified, ok, r[7])
		}
	}
	if signed < 4 {
		t.Errorf("signed %d vectors, want at least 4", signed)
	}
}

func TestSignSchnorrRefuses(t *testing.T) {
	if _, err := SignSchnorr(nil, nil, make([]byte, 32)); err == nil {
		t.Error("nil key signed")
	}
	if _, err := SignSchnorr(secp256k1.PrivKeyFromBytes(make([]byte, 32)), nil, make([]byte, 32)); err == nil {
		t.Error("zero key signed")
	}
	if _, err := SignSchnorr(secp256k1.PrivKeyFromBytes([]byte{3}), nil, make([]byte, 31)); err == nil {
		t.Error("31 bytes of aux accepted")
	}
}

// BIP341's key-path spending vector for the one input without a script
// tree: the internal private key, tweaked and signed over the vector's
// sighash (auxiliary randomness zero), gives the vector's witness.
func TestBIP341KeyPathSignature(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "bips", "bip-0341-wallet-test-vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		KeyPathSpending []struct {
			InputSpending []struct {
				Given struct {
					InternalPrivkey string          `json:"internalPrivkey"`
					MerkleRoot      json.RawMessage `json:"merkleRoot"`
					HashType        byte            `json:"hashType"`
				} `json:"given"`
				Intermediary struct {
					SigHash string `json:"sigHash"`
				} `json:"intermediary"`
				Expected struct {
					Witness []string `json:"witness"`
				} `json:"expected"`
			} `json:"inputSpending"`
		} `json:"keyPathSpending"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range v.KeyPathSpending[0].InputSpending {
		if string(e.Given.MerkleRoot) != "null" {
			continue
		}
		n++
		kb, _ := hex.DecodeString(e.Given.InternalPrivkey)
		h, _ := hex.DecodeString(e.Intermediary.SigHash)
		sig, err := SignTaprootKeyPath(secp256k1.PrivKeyFromBytes(kb), h, make([]byte, 32))
		if err != nil {
			t.Fatal(err)
		}
		got := hex.EncodeToString(append(sig[:], e.Given.HashType))
		if got != e.Expected.Witness[0] {
			t.Errorf("witness %s, want %s", got, e.Expected.Witness[0])
		}
	}
	if n != 1 {
		t.Errorf("%d inputs without a script tree, want 1", n)
	}
}
