package main

import (
	"crypto/rand"
	"testing"

	"github.com/skyfleet/skyfleet/services/identity"
)

// What the operator typed pins the node the master may connect to: a key must
// be that key, an address that key's address; a name is the master's to resolve.
func TestMatchesNode(t *testing.T) {
	k1, err := identity.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := identity.Generate(rand.Reader)
	key := k1.PublicKey()
	for _, tc := range []struct {
		node string
		ok   bool
	}{
		{k1.PublicKeyHex(), true},
		{k1.Address().String(), true},
		{"pi-kitchen", true},
		{k2.PublicKeyHex(), false},
		{k2.Address().String(), false},
	} {
		if err := matchesNode(tc.node, key); (err == nil) != tc.ok {
			t.Errorf("matchesNode(%s): %v, want ok=%v", tc.node, err, tc.ok)
		}
	}
}
