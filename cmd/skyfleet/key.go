package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/skyfleet/skyfleet/services/identity"
)

func cmdKey(args []string) error {
	if len(args) == 0 || args[0] != "inspect" {
		return errors.New("usage: skyfleet key inspect --secret HEX")
	}
	fs := newFlags("key inspect", "key inspect --secret HEX",
		"skyfleet key inspect --secret 6614f0956f4e08e07ec2d4c2767b9f7121449fc2269e2b22f1a549d63e9f719b")
	secret := fs.String("secret", "", "secp256k1 secret key, 64 hex characters")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *secret == "" {
		fs.Usage()
		return errors.New("--secret is required")
	}
	info, err := identity.Inspect(*secret)
	if err != nil {
		return fmt.Errorf("inspect: %w", err)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(info)
}
