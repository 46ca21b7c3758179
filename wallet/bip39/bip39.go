// Package bip39 turns entropy into a mnemonic sentence and back, and a
// mnemonic and passphrase into a wallet seed, as BIP39 specifies, with its
// English wordlist only (BIP39 §Wordlists strongly discourages the others).
// The wallet shows a mnemonic word by word and takes one typed on the
// touchscreen's keyboard; Complete helps there, since every word is told apart
// by its first four letters.
//
// Secrets: the entropy and the seed are byte slices the caller can zero; a
// mnemonic arrives as the words a person typed and is a string, which Go
// cannot wipe, so the wallet keeps it only as long as a screen shows it.
package bip39

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/sha512"
	_ "embed"
	"errors"
	"fmt"
	"sort"
	"strings"

	"golang.org/x/text/unicode/norm"
)

// english.txt is BIP39's English wordlist, 2048 words, sorted (see
// NOTICE.md for its source and licence).
//
//go:embed english.txt
var englishText string

var (
	words = strings.Fields(englishText)
	index = func() map[string]int {
		m := make(map[string]int, len(words))
		for i, w := range words {
			m[w] = i
		}
		return m
	}()
)

// Word returns word i (0-2047) of the English wordlist.
func Word(i int) string { return words[i] }

// Errors of EntropyFromMnemonic, wrapped with the details.
var (
	// ErrWordCount: a mnemonic has 12, 15, 18, 21 or 24 words.
	ErrWordCount = errors.New("bip39: a mnemonic has 12, 15, 18, 21 or 24 words")
	// ErrUnknownWord: a word is not in the English wordlist.
	ErrUnknownWord = errors.New("bip39: not a word of the BIP39 English list")
	// ErrChecksum: the words are all in the list but their checksum does
	// not match: a word is wrong or two are swapped.
	ErrChecksum = errors.New("bip39: the checksum does not match: a word is wrong or out of place")
)

// NewMnemonic returns the mnemonic of entropy (BIP39 §Generating the
// mnemonic): 16, 20, 24, 28 or 32 bytes give 12 to 24 words, the last few
// bits of the last word a checksum (the first len/4 bits of SHA-256 of the
// entropy).
func NewMnemonic(entropy []byte) (string, error) {
	n := len(entropy)
	if n < 16 || n > 32 || n%4 != 0 {
		return "", fmt.Errorf("bip39: %d bytes of entropy; want 16, 20, 24, 28 or 32", n)
	}
	sum := sha256.Sum256(entropy)
	cs := n / 4               // checksum bits
	bits := func(i int) int { // bit i of entropy followed by the checksum
		if i < 8*n {
			return int(entropy[i/8]>>(7-i%8)) & 1
		}
		i -= 8 * n
		return int(sum[i/8]>>(7-i%8)) & 1
	}
	out := make([]string, (8*n+cs)/11)
	for w := range out {
		v := 0
		for b := range 11 {
			v = v<<1 | bits(11*w+b)
		}
		out[w] = words[v]
	}
	return strings.Join(out, " "), nil
}

// EntropyFromMnemonic checks a mnemonic and returns its entropy. Words are
// separated by any white space and compared in lower case. Errors wrap
// ErrWordCount, ErrUnknownWord (naming the word's place, never the word: it
// is part of a secret) or ErrChecksum.
func EntropyFromMnemonic(mnemonic string) ([]byte, error) {
	ws := strings.Fields(strings.ToLower(mnemonic))
	n := len(ws)
	if n < 12 || n > 24 || n%3 != 0 {
		return nil, fmt.Errorf("%w (this one has %d)", ErrWordCount, n)
	}
	total := 11 * n
	cs := total / 33 // checksum bits: ENT/32, with ENT + ENT/32 = total
	ent := total - cs
	buf := make([]byte, (total+7)/8)
	for i, w := range ws {
		v, ok := index[w]
		if !ok {
			return nil, fmt.Errorf("%w: word %d", ErrUnknownWord, i+1)
		}
		for b := range 11 {
			if v>>(10-b)&1 == 1 {
				p := 11*i + b
				buf[p/8] |= 1 << (7 - p%8)
			}
		}
	}
	entropy := append([]byte(nil), buf[:ent/8]...)
	sum := sha256.Sum256(entropy)
	for i := range cs {
		p := ent + i
		if buf[p/8]>>(7-p%8)&1 != sum[i/8]>>(7-i%8)&1 {
			clear(entropy)
			clear(buf)
			return nil, ErrChecksum
		}
	}
	clear(buf)
	return entropy, nil
}

// Seed returns the 64-byte seed of a mnemonic and passphrase (BIP39 §From
// mnemonic to seed): PBKDF2 with HMAC-SHA512, 2048 iterations, the mnemonic
// in NFKD as the password and "mnemonic" + the passphrase in NFKD as the
// salt. It does not check the mnemonic (EntropyFromMnemonic does): BIP39
// seeds any sentence.
func Seed(mnemonic, passphrase string) []byte {
	pw := norm.NFKD.String(strings.Join(strings.Fields(mnemonic), " "))
	salt := "mnemonic" + norm.NFKD.String(passphrase)
	seed, err := pbkdf2.Key(sha512.New, pw, []byte(salt), 2048, 64)
	if err != nil { // only for FIPS 140-only mode's limits, which these are within
		panic("bip39: pbkdf2: " + err.Error())
	}
	return seed
}

// Complete returns the words of the list that begin with prefix (lower
// case), in order, at most max of them: what the keyboard offers while a
// word is typed. The first four letters of a word leave only it; a word of
// three letters is the first of those it begins.
func Complete(prefix string, max int) []string {
	i := sort.SearchStrings(words, prefix)
	var out []string
	for ; i < len(words) && len(out) < max && strings.HasPrefix(words[i], prefix); i++ {
		out = append(out, words[i])
	}
	return out
}
