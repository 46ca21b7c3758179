package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/skyfleet/skyfleet/services/identity"
)

// cmdKeygen makes a new secp256k1 key file (a fleet master's, say) and prints its
// public key and address.
func cmdKeygen(args []string) error {
	fs := newFlags("keygen", "keygen -o FILE [--json]",
		"skyfleet keygen -o master.key   # then put the public key in fleet.toml [master] public_key")
	out := fs.String("o", "", "write the secret key to this `file` (mode 0600; never replaces one)")
	asJSON := fs.Bool("json", false, "print public key and address as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() != 0 {
		fs.Usage()
		return errors.New("-o FILE is required")
	}
	k, err := identity.CreateKeyFile(*out, nil)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]string{"file": *out, "public_key": k.PublicKeyHex(), "address": k.Address().String()})
	}
	fmt.Fprintf(stdout, "wrote %s (keep it secret: it controls every node that names this key)\npublic_key %s\naddress    %s\n",
		*out, k.PublicKeyHex(), k.Address())
	return nil
}
