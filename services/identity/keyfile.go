package identity

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/skyfleet/skyfleet/internal/durable"
)

// KeyFileName is the name of the key file inside the data directory.
const KeyFileName = "node.key"

// KeyFileMode is the permission of a key file LoadOrCreate writes.
const KeyFileMode fs.FileMode = 0o600

// tempPrefix starts the names of the temporary files LoadOrCreate writes
// before publishing node.key; leftovers (from a power cut) are removed.
const tempPrefix = ".node.key.tmp-"

// maxKeyFileSize bounds how much of a key file is read: a valid one is 65
// bytes, so anything much larger is corrupt.
const maxKeyFileSize = 4096

// ErrKeyFileCorrupt is returned (wrapped, with the path and the reason) when
// node.key exists but does not hold a valid secret key. The file is left
// untouched: losing an identity is worse than not starting the mesh.
var ErrKeyFileCorrupt = errors.New("identity: key file is corrupt")

// LoadOrCreate returns the node key stored in dir/node.key, creating it on
// first use.
//
// The file holds the secret as 64 lowercase hex characters and a newline
// (surrounding whitespace is tolerated on reading). When the file exists,
// LoadOrCreate parses it and returns created == false; if its permissions
// allow group or other access they are tightened to 0600.
//
// When the file does not exist, LoadOrCreate makes dir (mode 0700) if
// needed, removes stale temporary files of earlier interrupted attempts,
// draws a new key from r (nil means crypto/rand, see Generate), writes it to
// a temporary file in dir (mode 0600), fsyncs and closes it, publishes it as
// node.key and fsyncs dir, then returns created == true. Publishing uses a
// hard link, so an existing node.key (say, written by a concurrent process)
// is never replaced, and falls back to rename on file systems without hard
// links. A power cut at any point leaves either no node.key or a complete one.
//
// Errors: a node.key that cannot be read (other than not existing) is
// reported as is; one with invalid content wraps ErrKeyFileCorrupt. In both
// cases the file is not modified and no new key is made. Failures to create
// the file are returned with no node.key left behind.
func LoadOrCreate(dir string, r io.Reader) (k *Key, created bool, err error) {
	path := filepath.Join(dir, KeyFileName)
	k, err = loadKeyFile(path)
	if err == nil {
		return k, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}

	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("identity: creating key directory: %w", err)
	}
	removeStaleTemps(dir)
	k, err = Generate(r)
	if err != nil {
		return nil, false, err
	}
	if err := publishKeyFile(dir, path, k); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Another process won the race; its key is the identity.
			k, err = loadKeyFile(path)
			return k, false, err
		}
		return nil, false, err
	}
	return k, true, nil
}

// loadKeyFile reads and parses path. A missing file yields an error
// satisfying errors.Is(err, fs.ErrNotExist).
func loadKeyFile(path string) (*Key, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("identity: reading key file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("identity: reading key file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file (%s); move it away to create a new identity", ErrKeyFileCorrupt, path, st.Mode().Type())
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("identity: reading key file %s: %w", path, err)
	}
	defer clear(data)
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes; move it away to create a new identity", ErrKeyFileCorrupt, path, maxKeyFileSize)
	}
	k, err := ParseSecretHex(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v; left untouched, move it away to create a new identity", ErrKeyFileCorrupt, path, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		// Best effort: a read-only file system keeps the old mode.
		_ = f.Chmod(KeyFileMode)
	}
	return k, nil
}

// publishKeyFile writes k to a temporary file and makes it appear as path.
// It returns an error satisfying errors.Is(err, fs.ErrExist) if path appeared
// in the meantime.
func publishKeyFile(dir, path string, k *Key) (err error) {
	f, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return fmt.Errorf("identity: creating key file: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if tmp != "" {
			_ = os.Remove(tmp)
		}
	}()
	if err := writeSync(f, k.SecretHex()+"\n"); err != nil {
		f.Close()
		return fmt.Errorf("identity: writing key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("identity: writing key file: %w", err)
	}

	switch err := os.Link(tmp, path); {
	case err == nil:
		// tmp is removed by the deferred call; the link keeps the data.
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("identity: publishing key file: %w", err)
	default:
		// No hard links here (FAT, some FUSE file systems): rename instead.
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("identity: publishing key file: %w", err)
		}
		tmp = ""
	}
	if err := durable.SyncDir(dir); err != nil {
		return fmt.Errorf("identity: syncing key directory: %w", err)
	}
	// dir itself may be new (MkdirAll); make its entry durable too. Best
	// effort: the parent may not be ours to open.
	_ = durable.SyncDir(filepath.Dir(dir))
	return nil
}

func writeSync(f *os.File, s string) error {
	// CreateTemp's mode is 0600 less the umask; make it exactly 0600.
	if err := f.Chmod(KeyFileMode); err != nil {
		return err
	}
	if _, err := io.WriteString(f, s); err != nil {
		return err
	}
	return f.Sync()
}

// removeStaleTemps deletes temporary key files left by an interrupted
// LoadOrCreate. Errors are ignored: a leftover file does no harm.
func removeStaleTemps(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix) && e.Type().IsRegular() {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// LoadKeyFile reads a key file at path, in the format LoadOrCreate writes (64 hex
// characters and a newline). Errors: a missing file satisfies
// errors.Is(err, fs.ErrNotExist); invalid content wraps ErrKeyFileCorrupt.
func LoadKeyFile(path string) (*Key, error) { return loadKeyFile(path) }

// CreateKeyFile draws a new key from r (nil means crypto/rand) and writes it to path
// with mode 0600, durably (temporary file, fsync, publish, fsync of the directory),
// never replacing an existing file: an existing path is an error satisfying
// errors.Is(err, fs.ErrExist), and the file is left as it was. The directory must
// exist.
func CreateKeyFile(path string, r io.Reader) (*Key, error) {
	if _, err := os.Lstat(path); err == nil {
		return nil, fmt.Errorf("identity: %s: %w; refusing to replace a key", path, fs.ErrExist)
	}
	k, err := Generate(r)
	if err != nil {
		return nil, err
	}
	if err := publishKeyFile(filepath.Dir(path), path, k); err != nil {
		return nil, err
	}
	return k, nil
}
