package bip39

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"sort"
	"strings"
	"testing"
)

// The vectors of BIP39's reference implementation (trezor/python-mnemonic's
// vectors.json, which BIP39 §Test vectors names; testdata/README.md has its
// source): entropy, mnemonic, seed with the passphrase "TREZOR", and the
// BIP32 root key (checked in wallet/bip32).
type vector struct{ Entropy, Mnemonic, Seed, XPrv string }

func vectors(t testing.TB) []vector {
	t.Helper()
	b, err := os.ReadFile("../../testdata/bips/bip39-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var all map[string][][4]string
	if err := json.Unmarshal(b, &all); err != nil {
		t.Fatal(err)
	}
	var out []vector
	for _, v := range all["english"] {
		out = append(out, vector{v[0], v[1], v[2], v[3]})
	}
	if len(out) != 24 {
		t.Fatalf("%d English vectors, want 24", len(out))
	}
	return out
}

func TestVectors(t *testing.T) {
	for _, v := range vectors(t) {
		entropy, _ := hex.DecodeString(v.Entropy)
		m, err := NewMnemonic(entropy)
		if err != nil || m != v.Mnemonic {
			t.Errorf("NewMnemonic(%s) = %q, %v; want %q", v.Entropy, m, err, v.Mnemonic)
		}
		back, err := EntropyFromMnemonic(v.Mnemonic)
		if err != nil || !bytes.Equal(back, entropy) {
			t.Errorf("EntropyFromMnemonic(%q) = %x, %v; want %s", v.Mnemonic, back, err, v.Entropy)
		}
		if seed := hex.EncodeToString(Seed(v.Mnemonic, "TREZOR")); seed != v.Seed {
			t.Errorf("Seed(%q, TREZOR) = %s, want %s", v.Mnemonic, seed, v.Seed)
		}
	}
}

// The embedded list is BIP39's: the file's published SHA-256, 2048 sorted
// distinct words, each told apart from the others by its first four letters.
func TestWordlist(t *testing.T) {
	if sum := sha256.Sum256([]byte(englishText)); hex.EncodeToString(sum[:]) != "2f5eed53a4727b4bf8880d8f3f199efc90e58503646d9ff8eff3a2ed3b24dbda" {
		t.Errorf("english.txt's SHA-256 is %x, not BIP39's list", sum)
	}
	if len(words) != 2048 || !sort.StringsAreSorted(words) || len(index) != 2048 {
		t.Fatalf("%d words (%d distinct), sorted %v", len(words), len(index), sort.StringsAreSorted(words))
	}
	seen := map[string]string{}
	for _, w := range words {
		p := w[:min(4, len(w))]
		if o, ok := seen[p]; ok {
			t.Errorf("%q and %q share their first four letters", o, w)
		}
		seen[p] = w
	}
}

func TestErrors(t *testing.T) {
	good := "legal winner thank year wave sausage worth useful legal winner thank yellow"
	cases := []struct {
		mnemonic string
		want     error
	}{
		{"legal winner thank year wave sausage worth useful legal winner thank", ErrWordCount},
		{good + " legal", ErrWordCount},
		{"", ErrWordCount},
		{strings.Replace(good, "sausage", "sausages", 1), ErrUnknownWord},
		{strings.Replace(good, "thank yellow", "yellow thank", 1), ErrChecksum},
		{strings.Replace(good, "yellow", "year", 1), ErrChecksum},
	}
	for _, c := range cases {
		_, err := EntropyFromMnemonic(c.mnemonic)
		if !errors.Is(err, c.want) {
			t.Errorf("%q: %v, want %v", c.mnemonic, err, c.want)
		}
	}
	// An unknown word is named by its place, never by itself: the words
	// are a secret.
	_, err := EntropyFromMnemonic(strings.Replace(good, "sausage", "sausages", 1))
	if err == nil || !strings.Contains(err.Error(), "word 6") || strings.Contains(err.Error(), "sausage") {
		t.Errorf("unknown word: %v, want its place (6) and not the word", err)
	}
	// Case and spacing as typed do not matter.
	if _, err := EntropyFromMnemonic("  LEGAL winner\tthank year wave sausage worth useful legal winner thank Yellow\n"); err != nil {
		t.Errorf("upper case and extra space: %v", err)
	}
	for _, n := range []int{0, 15, 17, 33, 64} {
		if _, err := NewMnemonic(make([]byte, n)); err == nil {
			t.Errorf("NewMnemonic of %d bytes succeeded", n)
		}
	}
}

func TestComplete(t *testing.T) {
	if got := Complete("aba", 5); strings.Join(got, " ") != "abandon" {
		t.Errorf("Complete(aba) = %q", got)
	}
	if got := Complete("ac", 3); strings.Join(got, " ") != "access accident account" {
		t.Errorf("Complete(ac, 3) = %q", got)
	}
	if got := Complete("zz", 5); len(got) != 0 {
		t.Errorf("Complete(zz) = %q", got)
	}
	for _, w := range words {
		got := Complete(w[:min(4, len(w))], 10)
		if len(got) == 0 || got[0] != w || len(w) >= 4 && len(got) != 1 {
			t.Errorf("%q's first four letters complete to %q", w, got)
		}
	}
}

// Whatever is typed, EntropyFromMnemonic either refuses it or returns
// entropy whose mnemonic is the input, cleaned (lower case, single spaces).
func FuzzEntropyFromMnemonic(f *testing.F) {
	for _, v := range vectors(f) {
		f.Add(v.Mnemonic)
	}
	f.Add("abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon")
	f.Add("zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo")
	f.Fuzz(func(t *testing.T, m string) {
		e, err := EntropyFromMnemonic(m)
		if err != nil {
			return
		}
		back, err := NewMnemonic(e)
		if err != nil {
			t.Fatalf("%q gave %d bytes that NewMnemonic refuses: %v", m, len(e), err)
		}
		if want := strings.Join(strings.Fields(strings.ToLower(m)), " "); back != want {
			t.Fatalf("%q -> %x -> %q", m, e, back)
		}
	})
}
