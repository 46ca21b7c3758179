package main

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
)

// skyfleet key inspect reproduces Skycoin's own public keys and addresses from their
// secrets (acceptance: every key of the seed and many-addresses golden files).
func TestKeyInspectGoldens(t *testing.T) {
	for _, f := range []string{"seed-0000.golden", "seed-0001.golden", "seed-0002.golden", "many-addresses.golden"} {
		data, err := os.ReadFile("../../../shared/testdata/skycoin/" + f)
		if err != nil {
			t.Fatalf("golden file: %v (../shared must sit beside the repository)", err)
		}
		var golden struct {
			Keys []struct{ Address, Secret, Public string }
		}
		if err := json.Unmarshal(data, &golden); err != nil || len(golden.Keys) == 0 {
			t.Fatalf("%s: %v (%d keys)", f, err, len(golden.Keys))
		}
		for _, k := range golden.Keys {
			var out bytes.Buffer
			stdout = &out
			if err := cmdKey([]string{"inspect", "--secret", k.Secret}); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			var got struct {
				PublicKey string `json:"public_key"`
				Address   string `json:"address"`
			}
			if err := json.Unmarshal(out.Bytes(), &got); err != nil {
				t.Fatalf("output is not JSON: %q", out.String())
			}
			if got.PublicKey != k.Public || got.Address != k.Address {
				t.Fatalf("%s: secret %s… gives %+v, want %s %s", f, k.Secret[:8], got, k.Public, k.Address)
			}
		}
	}
	stdout = os.Stdout
}

func TestKeyInspectRefusesBadSecret(t *testing.T) {
	stdout = &bytes.Buffer{}
	defer func() { stdout = os.Stdout }()
	if err := cmdKey([]string{"inspect", "--secret", "zz"}); err == nil {
		t.Error("bad secret accepted")
	}
	if err := cmdKey([]string{"generate"}); err == nil {
		t.Error("unknown key subcommand accepted")
	}
}
