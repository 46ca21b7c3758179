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
		data, err := os.ReadFile("../../testdata/skycoin/" + f)
		if err != nil {
			t.Fatalf("golden file: %v (testdata/skycoin at the repository root)", err)
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

// skyfleet keygen writes a key whose printed public key and address are what
// key inspect derives from the secret in the file, and never replaces a key.
func TestKeygen(t *testing.T) {
	path := t.TempDir() + "/master.key"
	var out bytes.Buffer
	stdout = &out
	if err := cmdKeygen([]string{"-o", path, "--json"}); err != nil {
		t.Fatal(err)
	}
	var made struct {
		PublicKey string `json:"public_key"`
		Address   string `json:"address"`
	}
	if err := json.Unmarshal(out.Bytes(), &made); err != nil {
		t.Fatalf("output is not JSON: %q", out.String())
	}
	secret, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := cmdKey([]string{"inspect", "--secret", string(bytes.TrimSpace(secret))}); err != nil {
		t.Fatal(err)
	}
	var inspected struct {
		PublicKey string `json:"public_key"`
		Address   string `json:"address"`
	}
	json.Unmarshal(out.Bytes(), &inspected)
	if inspected != made || len(made.PublicKey) != 66 {
		t.Errorf("keygen printed %+v, the file's secret gives %+v", made, inspected)
	}
	if err := cmdKeygen([]string{"-o", path}); err == nil {
		t.Error("keygen replaced an existing key file")
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(after, secret) {
		t.Error("the key file changed")
	}
}
