package wallet

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/skyfleet/skyfleet/services/identity"
	"github.com/skyfleet/skyfleet/wallet/bip32"
	"github.com/skyfleet/skyfleet/wallet/bip39"
	"github.com/skyfleet/skyfleet/wallet/bitcoin"
	"github.com/skyfleet/skyfleet/wallet/skycoin"
)

// Limits on the key paths a request may name: a host cannot make the
// wallet walk a long chain or derive a million keys for one request.
const (
	// MaxSkycoinIndex bounds "skycoin/N": Skycoin's deterministic chain
	// is walked key by key from the seed, so index N costs N+1 keys.
	MaxSkycoinIndex = 999
	// MaxAccount bounds a BIP44/84/86 path's account.
	MaxAccount = 99
	// MaxIndex bounds a BIP44/84/86 path's address index.
	MaxIndex = 99999
)

// Scheme is how a key path makes its address.
type Scheme string

// The schemes a Path names.
const (
	SkycoinChain Scheme = "skycoin"       // Skycoin's deterministic chain: "skycoin/N"
	SkycoinBIP44 Scheme = "skycoin-bip44" // m/44'/8000'/a'/c/i
	BitcoinBIP84 Scheme = "bitcoin-p2wpkh"
	BitcoinBIP86 Scheme = "bitcoin-p2tr"
)

// Coin is the coin a scheme belongs to: "skycoin" or "bitcoin".
func (s Scheme) Coin() string {
	if s == BitcoinBIP84 || s == BitcoinBIP86 {
		return "bitcoin"
	}
	return "skycoin"
}

// Path is a parsed key path: "skycoin/N" for the Nth key of Skycoin's
// deterministic chain (0-based, as Skycoin's wallets number them), or a
// BIP32 path of the forms m/44'/8000'/a'/c/i (Skycoin, BIP44 coin type
// 8000), m/84'/0'/a'/c/i (BIP84) and m/86'/0'/a'/c/i (BIP86), c being 0
// (receive) or 1 (change).
type Path struct {
	Scheme  Scheme
	Account uint32
	Change  bool
	Index   uint32
}

// String writes p as ParsePath reads it.
func (p Path) String() string {
	if p.Scheme == SkycoinChain {
		return "skycoin/" + strconv.Itoa(int(p.Index))
	}
	purpose, coin := 44, 8000
	switch p.Scheme {
	case BitcoinBIP84:
		purpose, coin = 84, 0
	case BitcoinBIP86:
		purpose, coin = 86, 0
	}
	c := 0
	if p.Change {
		c = 1
	}
	return fmt.Sprintf("m/%d'/%d'/%d'/%d/%d", purpose, coin, p.Account, c, p.Index)
}

// ErrPath is wrapped by every ParsePath error.
var ErrPath = errors.New("wallet: key path")

// ParsePath reads a key path in one of Path's forms, within MaxSkycoinIndex,
// MaxAccount and MaxIndex. Errors wrap ErrPath and say what is wrong.
func ParsePath(s string) (Path, error) {
	if n, ok := strings.CutPrefix(s, "skycoin/"); ok {
		i, err := strconv.ParseUint(n, 10, 32)
		if err != nil || strconv.FormatUint(i, 10) != n || i > MaxSkycoinIndex {
			return Path{}, fmt.Errorf("%w %q: want skycoin/N with N from 0 to %d", ErrPath, s, MaxSkycoinIndex)
		}
		return Path{Scheme: SkycoinChain, Index: uint32(i)}, nil
	}
	if len(s) > 64 {
		return Path{}, fmt.Errorf("%w: %d characters", ErrPath, len(s))
	}
	idx, err := bip32.ParsePath(s)
	if err != nil || len(idx) != 5 {
		return Path{}, fmt.Errorf("%w %q: want m/purpose'/coin'/account'/change/index", ErrPath, s)
	}
	h := uint32(bip32.Hardened)
	var p Path
	switch {
	case idx[0] == 44+h && idx[1] == 8000+h:
		p.Scheme = SkycoinBIP44
	case idx[0] == bitcoin.PurposeP2WPKH+h && idx[1] == h:
		p.Scheme = BitcoinBIP84
	case idx[0] == bitcoin.PurposeP2TR+h && idx[1] == h:
		p.Scheme = BitcoinBIP86
	default:
		return Path{}, fmt.Errorf("%w %q: the wallet keeps m/44'/8000' (Skycoin), m/84'/0' and m/86'/0' (Bitcoin)", ErrPath, s)
	}
	if idx[2] < h || idx[2]-h > MaxAccount {
		return Path{}, fmt.Errorf("%w %q: the account is hardened, 0' to %d'", ErrPath, s, MaxAccount)
	}
	if idx[3] > 1 {
		return Path{}, fmt.Errorf("%w %q: the chain is 0 (receive) or 1 (change)", ErrPath, s)
	}
	if idx[4] > MaxIndex {
		return Path{}, fmt.Errorf("%w %q: the index is unhardened, 0 to %d", ErrPath, s, MaxIndex)
	}
	p.Account, p.Change, p.Index = idx[2]-h, idx[3] == 1, idx[4]
	return p, nil
}

// keys is an unlocked wallet: what the PIN opened, held only between an
// unlock and the next lock.
type keys struct {
	// mnemonic is the seed phrase, Skycoin's deterministic chain's seed
	// (Skycoin's wallets take the phrase as it is, without passphrase).
	mnemonic []byte
	// master is the BIP32 master key of the BIP39 seed with the
	// passphrase given at unlock.
	master *bip32.Key
	// chain is Skycoin's deterministic chain as far as a request has
	// needed it. Each step costs a constant-time scalar multiplication,
	// and a key N deep needs all N before it: derived afresh for each
	// input, a request of many inputs deep in the chain kept the wallet
	// busy for seconds on a Pi. Used only by the request holding the
	// turn (Service.take), so it needs no lock of its own.
	chain []*secp256k1.PrivateKey
}

// openKeys makes the session's keys from the seed's entropy and the BIP39
// passphrase.
func openKeys(entropy []byte, passphrase string) (*keys, error) {
	m, err := bip39.NewMnemonic(entropy)
	if err != nil {
		return nil, err
	}
	seed := bip39.Seed(m, passphrase)
	defer clear(seed)
	master, err := bip32.NewMaster(seed)
	if err != nil {
		return nil, err
	}
	return &keys{mnemonic: []byte(m), master: master}, nil
}

// zero forgets the keys.
func (k *keys) zero() {
	clear(k.mnemonic)
	k.master.Zero()
	for _, c := range k.chain {
		c.Zero()
	}
	k.chain = nil
}

// skycoinKey returns a copy of the chain's key i (the caller zeroes it),
// extending the cached chain to at least twice its length, so a request
// walking up the chain derives it a bounded number of times.
func (k *keys) skycoinKey(i uint32) (*secp256k1.PrivateKey, error) {
	if int(i) >= len(k.chain) {
		n := min(max(int(i)+1, 2*len(k.chain), 8), MaxSkycoinIndex+1)
		ks, err := skycoin.DeterministicKeys(k.mnemonic, n)
		if err != nil {
			return nil, err
		}
		for _, c := range k.chain {
			c.Zero()
		}
		k.chain = ks
	}
	return &secp256k1.PrivateKey{Key: k.chain[i].Key}, nil
}

// private returns the key at p (the caller zeroes it) and its address.
func (k *keys) private(p Path) (*secp256k1.PrivateKey, string, error) {
	if p.Scheme == SkycoinChain {
		key, err := k.skycoinKey(p.Index)
		if err != nil {
			return nil, "", err
		}
		a, err := skycoinAddress(key)
		if err != nil {
			key.Zero()
			return nil, "", err
		}
		return key, a, nil
	}
	bk, err := k.master.Derive(p.String())
	if err != nil {
		return nil, "", err
	}
	defer bk.Zero()
	a, err := addressOf(p.Scheme, bk.PublicKey())
	if err != nil {
		return nil, "", err
	}
	return bk.PrivateKey(), a, nil
}

// address returns p's address. It derives p's private key (constant time)
// and forgets it at once.
func (k *keys) address(p Path) (string, error) {
	key, a, err := k.private(p)
	if key != nil {
		key.Zero()
	}
	return a, err
}

// account returns the extended public key (xpub) of p's account, for the
// BIP32 schemes.
func (k *keys) account(p Path) (string, error) {
	path := p.String()
	path = path[:strings.LastIndex(path[:strings.LastIndex(path, "/")], "/")]
	a, err := k.master.Derive(path)
	if err != nil {
		return "", err
	}
	defer a.Zero()
	return a.Neuter().String(), nil
}

func skycoinAddress(key *secp256k1.PrivateKey) (string, error) {
	pub, err := identity.PublicKeyOf(key)
	if err != nil {
		return "", err
	}
	return addressOf(SkycoinChain, pub)
}

// addressOf is the address of a compressed public key under scheme s.
func addressOf(s Scheme, pub []byte) (string, error) {
	switch s {
	case BitcoinBIP84:
		o, err := bitcoin.P2WPKH(pub)
		return o.Address, err
	case BitcoinBIP86:
		o, err := bitcoin.P2TR(pub)
		return o.Address, err
	}
	a, err := identity.AddressFromPublicKey(pub)
	if err != nil {
		return "", err
	}
	return a.String(), nil
}
