package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/skyfleet/skyfleet/services/identity"
	"github.com/skyfleet/skyfleet/wallet/bip32"
	"github.com/skyfleet/skyfleet/wallet/bip39"
	"github.com/skyfleet/skyfleet/wallet/bitcoin"
	"github.com/skyfleet/skyfleet/wallet/skycoin"
)

const walletUsage = "wallet derive [--coin skycoin|bitcoin] [--bip44] [--taproot] [--account N] [--change] [-n N] [--mnemonic - | --mnemonic WORDS] [--passphrase-prompt]"

// maxDerive bounds -n: a recovery check lists the addresses a wallet used,
// not a chain's worth.
const maxDerive = 10000

// cmdWallet is "skyfleet wallet derive": the addresses a mnemonic gives, one
// per line, derived on this host without the device, to check a backup
// before trusting it or to find a wallet's funds after losing the device.
// Skycoin: Skycoin's deterministic chain from the seed phrase itself (what
// Skycoin's own wallets make), or with --bip44 the BIP44 chain of coin type
// 8000 from the BIP39 seed. Bitcoin: BIP84 (bc1q) or with --taproot BIP86
// (bc1p). The mnemonic comes from stdin (--mnemonic -, or no flag with stdin
// not a terminal), a prompt without echo, or --mnemonic WORDS with a warning.
// No error quotes it.
func cmdWallet(args []string) error {
	if len(args) > 0 && args[0] != "derive" && !strings.HasPrefix(args[0], "-") {
		return cmdWalletClient(args[0], args[1:])
	}
	if len(args) == 0 || args[0] != "derive" {
		return errors.New("usage: skyfleet " + walletUsage + "\n   or: skyfleet " + walletClientUsage)
	}
	fs := newFlags("wallet derive", walletUsage,
		"skyfleet wallet derive --coin bitcoin -n 5 < backup.txt   or   skyfleet wallet derive --coin skycoin --bip44 -n 3")
	coin := fs.String("coin", "skycoin", "skycoin or bitcoin")
	bip44 := fs.Bool("bip44", false, "Skycoin: the BIP44 chain m/44'/8000'/ACCOUNT'/CHANGE/i of the BIP39 seed, instead of Skycoin's deterministic chain of the seed phrase")
	taproot := fs.Bool("taproot", false, "Bitcoin: BIP86 Taproot addresses (bc1p, m/86'/0'/ACCOUNT'/CHANGE/i) instead of BIP84 (bc1q, m/84'/0'/...)")
	account := fs.Uint("account", 0, "the BIP44/84/86 account `number`")
	change := fs.Bool("change", false, "the change chain (CHANGE = 1) instead of the receiving one")
	n := fs.Int("n", 1, fmt.Sprintf("how many addresses, from the first (1 to %d)", maxDerive))
	mnemonic := fs.String("mnemonic", "", "the mnemonic, or - to read it from stdin. Avoid giving it here: other users see it in ps, and it lands in your shell history")
	askPass := fs.Bool("passphrase-prompt", false, "ask for the BIP39 passphrase (the \"25th word\") on the terminal; without it the passphrase is empty")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return errors.New("unexpected arguments (the mnemonic goes on stdin or in --mnemonic)")
	}
	if *n < 1 || *n > maxDerive {
		return fmt.Errorf("-n %d: want 1 to %d", *n, maxDerive)
	}
	if *account >= uint(bip32.Hardened) {
		return fmt.Errorf("--account %d: want below %d", *account, bip32.Hardened)
	}
	if err := walletFlagsAgree(fs, *coin); err != nil {
		return err
	}
	words, err := readMnemonic(*mnemonic)
	defer clear(words)
	if err != nil {
		return err
	}
	var pass []byte
	defer func() { clear(pass) }()
	if *askPass {
		if !keyIO.isTerminal() {
			return errors.New("--passphrase-prompt needs a terminal on stdin")
		}
		fmt.Fprint(keyIO.stderr, "BIP39 passphrase (not echoed): ")
		pass, err = keyIO.readPassword()
		fmt.Fprintln(keyIO.stderr)
		if err != nil {
			return fmt.Errorf("reading the passphrase: %w", err)
		}
	}
	addrs, err := deriveAddresses(string(bytes.TrimSpace(words)), string(pass), *coin, *bip44, *taproot, uint32(*account), *change, *n)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		fmt.Fprintln(stdout, a)
	}
	return nil
}

// walletFlagsAgree refuses flags that do not apply to the coin, rather than
// ignoring them and printing addresses the user did not ask for.
func walletFlagsAgree(fs *flag.FlagSet, coin string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch coin {
	case "skycoin":
		if set["taproot"] {
			return errors.New("--taproot is for --coin bitcoin")
		}
		if !set["bip44"] && (set["account"] || set["change"]) {
			return errors.New("--account and --change need --bip44: Skycoin's deterministic chain has neither")
		}
	case "bitcoin":
		if set["bip44"] {
			return errors.New("--bip44 is for --coin skycoin (Bitcoin uses BIP84, or BIP86 with --taproot)")
		}
	default:
		return fmt.Errorf("--coin %q: want skycoin or bitcoin", coin)
	}
	return nil
}

// readMnemonic reads the mnemonic from flag (a value, or - for stdin), or
// stdin, or a prompt on the terminal.
func readMnemonic(flagValue string) ([]byte, error) {
	switch {
	case flagValue == "-":
		return readSecret(keyIO.stdin, "stdin")
	case flagValue != "":
		fmt.Fprintln(keyIO.stderr, "skyfleet wallet derive: warning: --mnemonic WORDS shows the mnemonic to every user of this machine (ps) and keeps it in your shell history; pipe it to stdin instead")
		return []byte(flagValue), nil
	case keyIO.isTerminal():
		fmt.Fprint(keyIO.stderr, "mnemonic (not echoed): ")
		b, err := keyIO.readPassword()
		fmt.Fprintln(keyIO.stderr)
		if err != nil {
			return nil, fmt.Errorf("reading the mnemonic from the terminal: %w", err)
		}
		return b, nil
	}
	return readSecret(keyIO.stdin, "stdin")
}

// deriveAddresses returns the first n addresses of the chain the options
// name. Skycoin's deterministic chain takes the seed phrase as it is (any
// text, as Skycoin's wallets accept); the BIP32 chains need a valid BIP39
// mnemonic.
func deriveAddresses(mnemonic, passphrase, coin string, bip44, taproot bool, account uint32, change bool, n int) ([]string, error) {
	if coin == "skycoin" && !bip44 {
		keys, err := skycoin.DeterministicKeys([]byte(mnemonic), n)
		if err != nil {
			return nil, err
		}
		var out []string
		for _, k := range keys {
			pub, err := identity.PublicKeyOf(k)
			k.Zero()
			if err != nil {
				return nil, err
			}
			a, err := identity.AddressFromPublicKey(pub)
			if err != nil {
				return nil, err
			}
			out = append(out, a.String())
		}
		return out, nil
	}
	entropy, err := bip39.EntropyFromMnemonic(mnemonic)
	clear(entropy)
	if err != nil {
		return nil, fmt.Errorf("the mnemonic: %w", err)
	}
	seed := bip39.Seed(mnemonic, passphrase)
	defer clear(seed)
	m, err := bip32.NewMaster(seed)
	if err != nil {
		return nil, err
	}
	defer m.Zero()
	purpose, coinType := uint32(44), uint32(8000)
	if coin == "bitcoin" {
		purpose, coinType = bitcoin.PurposeP2WPKH, 0
		if taproot {
			purpose = bitcoin.PurposeP2TR
		}
	}
	chain := 0
	if change {
		chain = 1
	}
	// The account key is private (hardened steps); the addresses below it
	// come from its public key, so no further private key is made.
	acct, err := m.Derive(fmt.Sprintf("m/%d'/%d'/%d'/%d", purpose, coinType, account, chain))
	if err != nil {
		return nil, err
	}
	pubChain := acct.Neuter()
	acct.Zero()
	var out []string
	for i := uint32(0); len(out) < n; i++ {
		k, err := pubChain.Child(i)
		if errors.Is(err, bip32.ErrInvalidKey) {
			continue // BIP32: skip an index that gives no key
		}
		if err != nil {
			return nil, err
		}
		var addr string
		switch {
		case coin == "skycoin":
			a, err := identity.AddressFromPublicKey(k.PublicKey())
			if err != nil {
				return nil, err
			}
			addr = a.String()
		case taproot:
			o, err := bitcoin.P2TR(k.PublicKey())
			if err != nil {
				return nil, err
			}
			addr = o.Address
		default:
			o, err := bitcoin.P2WPKH(k.PublicKey())
			if err != nil {
				return nil, err
			}
			addr = o.Address
		}
		out = append(out, addr)
	}
	return out, nil
}
