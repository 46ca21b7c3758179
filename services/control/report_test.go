package control

import (
	"crypto/rand"
	"errors"
	"reflect"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

func keys(t testing.TB) (node *secp256k1.PrivateKey, master []byte) {
	n, err := secp256k1.GeneratePrivateKeyFromRand(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	m, err := secp256k1.GeneratePrivateKeyFromRand(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return n, m.PubKey().SerializeCompressed()
}

var sample = Report{
	Name: "kit-07", Board: "rpi3b", Version: "v1", Slot: "a", UptimeSeconds: 12.5,
	Links:    []Link{{Address: "2GgFvqoyk9RjwVzj8tqfcXVXB4orBwoc9qv", Up: true, RTTms: 1.5, Loss: 0.01}},
	Services: []ServiceState{{Name: "mesh", State: "running", Restarts: 1}},
}

func TestSealOpen(t *testing.T) {
	node, master := keys(t)
	b, err := Seal(node, master, 7, sample)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(b, master)
	if err != nil {
		t.Fatal(err)
	}
	if s.Seq != 7 || string(s.Node[:]) != string(node.PubKey().SerializeCompressed()) {
		t.Errorf("seq %d node %x", s.Seq, s.Node)
	}
	if !reflect.DeepEqual(s.Report, sample) {
		t.Errorf("report %+v, want %+v", s.Report, sample)
	}
}

func TestOpenRefuses(t *testing.T) {
	node, master := keys(t)
	other, otherMaster := keys(t)
	good, err := Seal(node, master, 1, sample)
	if err != nil {
		t.Fatal(err)
	}
	// A forgery: the report claims node's key but is signed by another.
	forged, _ := Seal(other, master, 1, sample)
	copy(forged[5:], node.PubKey().SerializeCompressed())
	tampered := append([]byte(nil), good...)
	tampered[headerLen+5] ^= 1 // inside the JSON body
	toOther, _ := Seal(node, otherMaster, 1, sample)
	for name, c := range map[string]struct {
		b    []byte
		want error
	}{
		"forged key":      {forged, ErrBadSignature},
		"tampered body":   {tampered, ErrBadSignature},
		"other master":    {toOther, ErrWrongMaster},
		"truncated":       {good[:len(good)-1], ErrMalformed},
		"empty":           {nil, ErrMalformed},
		"bad magic":       {append([]byte("XXXX"), good[4:]...), ErrMalformed},
		"trailing byte":   {append(append([]byte(nil), good...), 0), ErrMalformed},
		"unknown version": {append(append([]byte("SKYR"), 9), good[5:]...), ErrMalformed},
	} {
		if _, err := Open(c.b, master); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}

func TestSealRefusesOversizedBody(t *testing.T) {
	node, master := keys(t)
	big := sample
	big.Links = make([]Link, 1000)
	if _, err := Seal(node, master, 1, big); err == nil {
		t.Error("an oversized report was sealed")
	}
}

// FuzzOpen: the master decodes reports from anyone; nothing may panic, and what is
// accepted re-seals to an equal report.
func FuzzOpen(f *testing.F) {
	node, master := keys(f)
	good, _ := Seal(node, master, 3, sample)
	f.Add(good)
	f.Add(good[:headerLen])
	f.Add([]byte("SKYR\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Open(b, master)
		if err != nil {
			return
		}
		if _, err := Seal(node, master, s.Seq, s.Report); err != nil {
			t.Fatalf("accepted report does not re-seal: %v", err)
		}
	})
}
