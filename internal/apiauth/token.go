package apiauth

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/skyfleet/skyfleet/internal/durable"
)

// TokenFile is the API token's file name in the node's data directory.
const TokenFile = "api.token"

// LoadOrCreateToken returns the API token in dir/api.token (64 hex characters, a
// newline), making a new random one, durably and with mode 0600, if the file does
// not exist. Two processes starting at once get the same token (the file is
// published with link(2), so only one is ever written). A file readable by group
// or others is narrowed to 0600. Errors: the directory is unusable, or the file
// holds no usable token; the message never contains the file's content.
func LoadOrCreateToken(dir string) (string, error) {
	path := filepath.Join(dir, TokenFile)
	for range 2 {
		tok, err := readToken(path)
		if err == nil {
			return tok, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("apiauth: making a token: %w", err)
		}
		err = durable.CreateFile(path, []byte(hex.EncodeToString(b[:])+"\n"), 0o600)
		if err != nil && !errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("apiauth: writing the API token: %w", err)
		}
		// Written, or another process won the race: read what is there.
	}
	return readToken(path)
}

// ReadToken reads an API token file (as a tool on the node or the CLI does).
// Errors: missing (wraps fs.ErrNotExist), unreadable, or not a token.
func ReadToken(path string) (string, error) { return readToken(path) }

func readToken(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var buf [128]byte
	n, _ := f.Read(buf[:])
	tok := strings.TrimSpace(string(buf[:n]))
	if len(tok) != 64 {
		return "", fmt.Errorf("apiauth: %s holds no usable token (delete it and restart the node to make a new one)", path)
	}
	if _, err := hex.DecodeString(tok); err != nil {
		return "", fmt.Errorf("apiauth: %s holds no usable token (delete it and restart the node to make a new one)", path)
	}
	if st, err := f.Stat(); err == nil && st.Mode().Perm()&0o077 != 0 {
		f.Chmod(0o600)
	}
	return tok, nil
}
