// Package durable writes files so that a power cut at any moment leaves either the
// old content or the new, never a mix or an empty file: write a temporary file in
// the same directory, fsync it, rename it over the target, fsync the directory.
// Every store of the node that must survive a power cut (keys, tokens, clocks,
// copied files) writes through here.
package durable

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// WriteFile writes data to path with mode perm (exactly, regardless of the
// umask), durably: a temporary file in path's directory, fsync, rename over
// path, fsync of the directory. On error path is unchanged and the temporary
// file is removed. Errors name the step that failed and never contain data.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	return write(path, perm, false, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// CreateFile is WriteFile that never replaces an existing path: the finished
// temporary file is published with link(2), which fails if path exists, so two
// writers racing for the same path cannot both win (on a file system without
// hard links it checks and renames instead, which a race can defeat). An existing path is an
// error satisfying errors.Is(err, fs.ErrExist), and that file is left as it was.
func CreateFile(path string, data []byte, perm fs.FileMode) error {
	return write(path, perm, true, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteFrom is WriteFile with the content copied from r (a download, say); the
// target appears only once all of r has been written and synced. It returns the
// number of bytes written.
func WriteFrom(path string, r io.Reader, perm fs.FileMode) (int64, error) {
	var n int64
	err := write(path, perm, false, func(w io.Writer) error {
		var err error
		n, err = io.Copy(w, r)
		return err
	})
	return n, err
}

func write(path string, perm fs.FileMode, exclusive bool, fill func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("durable: %s: creating a temporary file: %w", path, unwrapPath(err))
	}
	name := tmp.Name()
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(name)
		}
	}()
	// CreateTemp makes 0600 less the umask; set the mode before any byte lands,
	// so a secret is never readable by others, even for a moment.
	if err := tmp.Chmod(perm); err != nil {
		return fmt.Errorf("durable: %s: chmod: %w", path, unwrapPath(err))
	}
	if err := fill(tmp); err != nil {
		return fmt.Errorf("durable: %s: writing: %w", path, unwrapPath(err))
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("durable: %s: fsync: %w", path, unwrapPath(err))
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("durable: %s: close: %w", path, unwrapPath(err))
	}
	if exclusive {
		switch err := os.Link(name, path); {
		case err == nil:
			os.Remove(name)
		case errors.Is(err, fs.ErrExist):
			return fmt.Errorf("durable: %s: %w", path, fs.ErrExist)
		default:
			// No hard links here (FAT, some FUSE file systems): check, then
			// rename. Two writers racing may then both succeed, the last one
			// winning; each still leaves a whole file.
			if _, err := os.Lstat(path); err == nil {
				return fmt.Errorf("durable: %s: %w", path, fs.ErrExist)
			}
			if err := os.Rename(name, path); err != nil {
				return fmt.Errorf("durable: %s: publishing: %w", path, unwrapPath(err))
			}
		}
	} else if err := os.Rename(name, path); err != nil {
		return fmt.Errorf("durable: %s: rename: %w", path, unwrapPath(err))
	}
	if err := SyncDir(dir); err != nil {
		return fmt.Errorf("durable: %s: fsync of the directory: %w", path, err)
	}
	return nil
}

// SyncDir fsyncs a directory so that a rename, link or unlink in it survives a
// power cut. File systems that cannot sync directories (EINVAL, ENOTSUP) are
// accepted.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return unwrapPath(err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOTSUP) {
		return err
	}
	return nil
}

// unwrapPath drops the *fs.PathError wrapper, whose path would repeat (or, for
// a temporary file, add noise to) the path the message already names.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
