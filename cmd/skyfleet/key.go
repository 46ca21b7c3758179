package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"

	"github.com/skyfleet/skyfleet/services/identity"
)

// maxSecretInput bounds how much is read from a secret file or stdin: a key file
// is 65 bytes, so anything much larger is not one.
const maxSecretInput = 4096

// keyIO is where key inspect reads a secret from and warns to; tests swap it.
var keyIO = struct {
	stdin        io.Reader
	stderr       io.Writer
	isTerminal   func() bool            // is stdin a terminal?
	readPassword func() ([]byte, error) // read a line from the terminal without echo
}{
	stdin:        os.Stdin,
	stderr:       os.Stderr,
	isTerminal:   func() bool { return term.IsTerminal(int(os.Stdin.Fd())) },
	readPassword: func() ([]byte, error) { return term.ReadPassword(int(os.Stdin.Fd())) },
}

const keyUsage = "key inspect [--secret-file FILE | --secret - | --secret HEX]"

// cmdKey is "skyfleet key inspect": it reads a secp256k1 secret key (64 hex
// characters, as in a key file) and prints its public key and address as JSON.
// The secret comes from --secret-file, or stdin (--secret -, or no flag with stdin
// not a terminal), or a prompt without echo on a terminal; --secret HEX still
// works but warns, since any user can read a process's arguments (ps). No error
// message repeats the secret or any character of it.
func cmdKey(args []string) error {
	if len(args) == 0 || args[0] != "inspect" {
		return errors.New("usage: skyfleet " + keyUsage)
	}
	fs := newFlags("key inspect", keyUsage+"   (no flag: stdin, or a prompt on a terminal)",
		"skyfleet key inspect --secret-file /perm/skyfleet/node.key   or   skyfleet key inspect < master.key")
	secret := fs.String("secret", "", "the secret key, 64 hex characters, or - to read it from stdin. "+
		"Avoid giving it here: other users see it in ps, and it lands in your shell history")
	file := fs.String("secret-file", "", "read the secret key from this `file` (a key file: 64 hex characters and a newline)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return errors.New("unexpected arguments (the secret goes in --secret-file or on stdin)")
	}
	if *secret != "" && *file != "" {
		return errors.New("give --secret or --secret-file, not both")
	}
	var hexSecret []byte
	defer func() { clear(hexSecret) }()
	var err error
	switch {
	case *file != "":
		hexSecret, err = readSecretFile(*file)
	case *secret == "-":
		hexSecret, err = readSecret(keyIO.stdin, "stdin")
	case *secret != "":
		fmt.Fprintln(keyIO.stderr, "skyfleet key inspect: warning: --secret HEX shows the secret to every user of this machine (ps) and keeps it in your shell history; use --secret-file FILE or pipe it to stdin")
		hexSecret = []byte(*secret)
	case keyIO.isTerminal():
		fmt.Fprint(keyIO.stderr, "secret key (64 hex characters, not echoed): ")
		hexSecret, err = keyIO.readPassword()
		fmt.Fprintln(keyIO.stderr)
		if err != nil {
			err = fmt.Errorf("reading the secret from the terminal: %w", err)
		}
	default:
		hexSecret, err = readSecret(keyIO.stdin, "stdin")
	}
	if err != nil {
		return err
	}
	info, err := identity.Inspect(string(bytes.TrimSpace(hexSecret)))
	if err != nil {
		return fmt.Errorf("inspect: %w", secretError(err))
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(info)
}

// secretError restates a parse error of identity.ParseSecretHex without its
// detail, which for a non-hex secret quotes the offending character: no part of
// a secret goes into an error message (terminal scrollback, CI logs).
func secretError(err error) error {
	for _, e := range []error{identity.ErrSecretLength, identity.ErrSecretNotHex, identity.ErrSecretRange} {
		if errors.Is(err, e) {
			return e
		}
	}
	return errors.New("not a valid secret key")
}

// readSecretFile reads a secret from a file (see readSecret). Errors name the
// file, never its content.
func readSecretFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readSecret(f, path)
}

// readSecret reads at most maxSecretInput bytes from r, named what in errors.
func readSecret(r io.Reader, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxSecretInput+1))
	if err != nil {
		clear(b)
		return nil, fmt.Errorf("reading the secret from %s: %w", what, err)
	}
	if len(b) > maxSecretInput {
		clear(b)
		return nil, fmt.Errorf("%s holds more than %d bytes: not a secret key", what, maxSecretInput)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, fmt.Errorf("no secret key on %s", what)
	}
	return b, nil
}
