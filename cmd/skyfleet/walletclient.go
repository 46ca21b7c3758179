package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/skyfleet/skyfleet/internal/apiauth"
	"github.com/skyfleet/skyfleet/services/identity"
	"github.com/skyfleet/skyfleet/services/wallet"
)

const walletClientUsage = `wallet COMMAND --node HOST:PORT [--key FILE] [arguments]

Commands, each asking the node's wallet (the person approves on its screen):
  pair [--name NAME]        pair this computer: compare the code printed here with the screen's
  unpair                    forget this computer on the node
  status                    locked, unlocked or no seed; wrong PINs; signatures made
  setup [--words 12|24] [--restore]
                            make a new seed on the node's screen, or type an existing one there
  unlock [--passphrase-prompt]   ask for the PIN on the screen (and use a BIP39 passphrase)
  lock                      forget the keys now
  accounts                  each scheme's account 0: its xpub and first address
  address PATH [--show]     an address (PATH: skycoin/N, m/44'/8000'/0'/0/N, m/84'/0'/0'/0/N, m/86'/0'/0'/0/N);
                            --show puts it on the screen to compare
  sign-psbt FILE|-          sign a PSBT (base64); prints the signed PSBT, and the final transaction with --tx
  sign-skycoin FILE|-       sign a Skycoin request (JSON: tx, inputs, change, head_time; see services/wallet)
  sign-message --path PATH MESSAGE   Skycoin's rule or BIP322-simple, by the path's coin`

// walletHostKey is the host's own key, which signs each request
// (apiauth.HostKey): made on the first pair, in the user's config
// directory, mode 0600.
func walletHostKey(path string, create bool) (*identity.Key, error) {
	k, err := identity.LoadKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		fmt.Fprintf(keyIO.stderr, "made this computer's wallet key in %s\n", path)
		return identity.CreateKeyFile(path, nil)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no key in %s: pair this computer first (skyfleet wallet pair --node HOST)", path)
	}
	return k, err
}

func defaultHostKeyPath() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		dir = "."
	}
	return filepath.Join(dir, "skyfleet", "wallet-host.key")
}

// walletClient calls the node's /wallet/ API, signing each request.
type walletClient struct {
	base string // http://HOST:PORT/wallet
	cred apiauth.HostKey
	hc   *http.Client
}

// call sends body (JSON; nil for GET) and decodes the answer into out.
// A refusal comes back as an error with the node's reason.
func (c *walletClient) call(method, path string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, c.base+path, r)
	if err != nil {
		return err
	}
	if err := c.cred.Authorize(&http.Client{Timeout: 30 * time.Second}, req); err != nil {
		return err
	}
	if method != "GET" {
		fmt.Fprintln(keyIO.stderr, "waiting for the node's screen...")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return fmt.Errorf("the node refused (%s): %s", resp.Status, e.Error)
		}
		return fmt.Errorf("the node answered %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return json.Unmarshal(b, out)
}

// cmdWalletClient runs the wallet commands that talk to a node.
func cmdWalletClient(cmd string, args []string) error {
	fs := newFlags("wallet "+cmd, walletClientUsage, "skyfleet wallet pair --node 10.42.0.1:80 --name laptop")
	node := fs.String("node", "", "the node's status address, HOST:PORT (required)")
	keyFile := fs.String("key", defaultHostKeyPath(), "this computer's wallet key (made by pair)")
	name := fs.String("name", "", "pair: how the node's screen names this computer (default: the host name)")
	words := fs.Int("words", 24, "setup: 12 or 24 words")
	restore := fs.Bool("restore", false, "setup: type an existing seed's words on the node's screen")
	askPass := fs.Bool("passphrase-prompt", false, "unlock: ask for a BIP39 passphrase here (the computer sees it)")
	show := fs.Bool("show", false, "address: show it on the node's screen to compare")
	withTx := fs.Bool("tx", false, "sign-psbt: also print the final transaction (hex) when every input is signed")
	path := fs.String("path", "", "sign-message: the key's path")
	// Flags may come after the arguments too (skyfleet wallet address
	// PATH --node HOST), which flag.Parse alone stops at.
	var pos []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			return err
		}
		if rest = fs.Args(); len(rest) == 0 {
			break
		}
		pos, rest = append(pos, rest[0]), rest[1:]
	}
	if *node == "" {
		fs.Usage()
		return errors.New("--node HOST:PORT is required")
	}
	k, err := walletHostKey(*keyFile, cmd == "pair")
	if err != nil {
		return err
	}
	c := &walletClient{base: "http://" + *node + "/wallet", cred: apiauth.HostKey{Key: k.PrivateKey()},
		hc: &http.Client{Timeout: 2*10*time.Minute + 2*time.Minute}}
	print := func(v any) error {
		b, _ := json.MarshalIndent(v, "", "  ")
		_, err := fmt.Fprintln(stdout, string(b))
		return err
	}
	arg := func() (string, error) {
		if len(pos) != 1 {
			return "", fmt.Errorf("wallet %s takes one argument, not %d", cmd, len(pos))
		}
		return pos[0], nil
	}
	readArg := func() ([]byte, error) {
		a, err := arg()
		if err != nil {
			return nil, err
		}
		if a == "-" {
			return io.ReadAll(io.LimitReader(keyIO.stdin, wallet.MaxBody))
		}
		return os.ReadFile(a)
	}
	switch cmd {
	case "address", "sign-psbt", "sign-skycoin", "sign-message":
	default:
		if len(pos) > 0 {
			return fmt.Errorf("wallet %s takes no argument (got %q)", cmd, pos[0])
		}
	}
	switch cmd {
	case "pair":
		n := *name
		if n == "" {
			n, _ = os.Hostname()
		}
		fmt.Fprintf(keyIO.stderr, "pairing code: %s\ntap Pair on the node only if its screen shows the same code\n", wallet.PairCode(k.PublicKey()))
		var a wallet.PairAnswer
		if err := c.call("POST", "/pair", wallet.PairRequest{Name: n}, &a); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "paired")
		return nil
	case "unpair":
		var a map[string]bool
		if err := c.call("POST", "/unpair", struct{}{}, &a); err != nil {
			return err
		}
		return print(a)
	case "status":
		var st wallet.Status
		if err := c.call("GET", "/status", nil, &st); err != nil {
			return err
		}
		return print(st)
	case "setup":
		var a map[string]string
		if err := c.call("POST", "/setup", wallet.SetupRequest{Words: *words, Restore: *restore}, &a); err != nil {
			return err
		}
		return print(a)
	case "unlock":
		req := wallet.UnlockRequest{}
		if *askPass {
			if !keyIO.isTerminal() {
				return errors.New("--passphrase-prompt needs a terminal on stdin")
			}
			fmt.Fprint(keyIO.stderr, "BIP39 passphrase (not echoed): ")
			p, err := keyIO.readPassword()
			fmt.Fprintln(keyIO.stderr)
			if err != nil {
				return err
			}
			req.Passphrase = string(p)
			clear(p)
		}
		var st wallet.Status
		if err := c.call("POST", "/unlock", req, &st); err != nil {
			return err
		}
		return print(st)
	case "lock":
		var st wallet.Status
		if err := c.call("POST", "/lock", struct{}{}, &st); err != nil {
			return err
		}
		return print(st)
	case "accounts":
		var a wallet.AccountsAnswer
		if err := c.call("GET", "/accounts", nil, &a); err != nil {
			return err
		}
		return print(a.Accounts)
	case "address":
		p, err := arg()
		if err != nil {
			return err
		}
		var a wallet.AddressAnswer
		if err := c.call("POST", "/address", wallet.AddressRequest{Path: p, Show: *show}, &a); err != nil {
			return err
		}
		fmt.Fprintln(stdout, a.Address)
		return nil
	case "sign-psbt":
		b, err := readArg()
		if err != nil {
			return err
		}
		var a wallet.PSBTAnswer
		if err := c.call("POST", "/sign/psbt", wallet.PSBTRequest{PSBT: strings.TrimSpace(string(b))}, &a); err != nil {
			return err
		}
		fmt.Fprintln(stdout, a.PSBT)
		if *withTx && a.Tx != "" {
			fmt.Fprintln(stdout, a.Tx)
		}
		fmt.Fprintf(keyIO.stderr, "signed %d inputs\n", a.Signed)
		return nil
	case "sign-skycoin":
		b, err := readArg()
		if err != nil {
			return err
		}
		var req wallet.SkycoinRequest
		if err := json.Unmarshal(b, &req); err != nil {
			return fmt.Errorf("the request: %w", err)
		}
		var a wallet.SkycoinAnswer
		if err := c.call("POST", "/sign/skycoin", req, &a); err != nil {
			return err
		}
		return print(a)
	case "sign-message":
		m, err := arg()
		if err != nil {
			return err
		}
		var a wallet.MessageAnswer
		if err := c.call("POST", "/sign/message", wallet.MessageRequest{Path: *path, Message: m}, &a); err != nil {
			return err
		}
		return print(a)
	}
	return fmt.Errorf("unknown wallet command %q\n\nUsage: skyfleet %s", cmd, walletClientUsage)
}
