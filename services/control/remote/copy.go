package remote

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/skyfleet/skyfleet/internal/durable"
)

// cpCommand is the built-in file copy, answered by the server itself so that
// copies work on a node without any tools:
//
//	skyfleet-cp get PATH              file bytes on stdout
//	skyfleet-cp put PATH OCTAL-MODE   file bytes on stdin, until EOF
//
// PATH is absolute, and double-quoted (strconv.Quote) if it contains spaces.
// Exit status 0 on success, else 1 with the error on stderr.
const cpCommand = "skyfleet-cp"

func isCopy(command string) bool {
	return command == cpCommand || strings.HasPrefix(command, cpCommand+" ")
}

// copyRequest is a parsed skyfleet-cp command line.
type copyRequest struct {
	verb string      // "get" or "put"
	path string      // absolute
	mode os.FileMode // put only: permission, setuid, setgid and sticky bits
}

// copyUsage is the error for a command line that is no skyfleet-cp request.
var copyUsage = errors.New("usage: skyfleet-cp get PATH | skyfleet-cp put PATH OCTAL-MODE")

// parseCopy parses a skyfleet-cp command line (see cpCommand). Errors: not a
// skyfleet-cp command, bad quoting, a wrong verb or argument count, a path
// that is not absolute or holds a NUL, a bad mode.
func parseCopy(command string) (copyRequest, error) {
	if !isCopy(command) {
		return copyRequest{}, copyUsage
	}
	args, err := splitArgs(strings.TrimPrefix(command, cpCommand))
	if err != nil {
		return copyRequest{}, err
	}
	var r copyRequest
	switch {
	case len(args) == 2 && args[0] == "get":
	case len(args) == 3 && args[0] == "put":
		if r.mode, err = parseMode(args[2]); err != nil {
			return copyRequest{}, err
		}
	default:
		return copyRequest{}, copyUsage
	}
	r.verb, r.path = args[0], args[1]
	if err := checkPath(r.path); err != nil {
		return copyRequest{}, err
	}
	return r, nil
}

// runCopy runs a skyfleet-cp command on the session channel and returns its
// exit status.
func (ss *session) runCopy(command string) int {
	r, err := parseCopy(command)
	var n int64
	switch {
	case err != nil:
	case r.verb == "get":
		n, err = ss.get(r.path)
	default:
		n, err = ss.put(r.path, r.mode)
	}
	if err != nil {
		ss.srv.logf("remote: copy %q by master from %s: %v", command, ss.remote, err)
		fmt.Fprintf(ss.ch.Stderr(), "skyfleet-cp: %v\n", err)
		return 1
	}
	ss.srv.logf("remote: copy %s %q by master from %s: %d bytes", r.verb, r.path, ss.remote, n)
	return 0
}

// splitArgs splits s at spaces; an argument starting with a double quote is a
// Go-quoted string, so it may contain spaces and any other byte.
func splitArgs(s string) ([]string, error) {
	var args []string
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return args, nil
		}
		if s[0] != '"' {
			i := strings.IndexAny(s, " \t")
			if i < 0 {
				i = len(s)
			}
			args = append(args, s[:i])
			s = s[i:]
			continue
		}
		q, err := strconv.QuotedPrefix(s)
		if err != nil {
			return nil, fmt.Errorf("bad quoted argument %s", s)
		}
		s = s[len(q):]
		if s != "" && s[0] != ' ' && s[0] != '\t' {
			return nil, fmt.Errorf("no space after quoted argument %s", q)
		}
		a, _ := strconv.Unquote(q) // cannot fail after QuotedPrefix
		args = append(args, a)
	}
}

// checkPath accepts an absolute path without NUL bytes (which no system call
// takes).
func checkPath(path string) error {
	if strings.IndexByte(path, 0) >= 0 {
		return fmt.Errorf("%q: path contains NUL", path)
	}
	if !filepath.IsAbs(path) {
		return fmt.Errorf("%s: path is not absolute", path)
	}
	return nil
}

// get streams the file at path (checked by parseCopy) to the channel.
func (ss *session) get(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return io.Copy(ss.ch, f) // read errors name the path
}

// put replaces the file at path (checked by parseCopy) atomically with the
// channel's input: a reader sees the old file or the complete new one, also
// across a power cut. The upload lands in a temporary file of mode 0600 (a
// secret being copied is never readable by others, even half written); only
// once complete does it get its mode, then it is fsynced and renamed over path,
// and the directory is fsynced.
func (ss *session) put(path string, mode os.FileMode) (n int64, err error) {
	path = filepath.Clean(path)
	dir, base := filepath.Split(path)
	tmp, err := os.CreateTemp(dir, "."+base+".skyfleet-cp-*") // mode 0600
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if n, err = io.Copy(tmp, ss.ch); err != nil {
		return n, err
	}
	// The channel reads EOF both when the client is done and when the channel
	// or connection breaks down. Only a live client answers a request (with a
	// failure, for one it does not know), so this tells a complete upload from
	// a truncated one.
	if _, err = ss.ch.SendRequest("keepalive@openssh.com", true, nil); err != nil {
		return n, fmt.Errorf("%s: upload interrupted: %w", path, err)
	}
	// Chmod, unlike the mode given at creation, is not masked by the umask.
	if err = tmp.Chmod(mode); err != nil {
		return n, err
	}
	if err = tmp.Sync(); err != nil {
		return n, err
	}
	if err = tmp.Close(); err != nil {
		return n, err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return n, err
	}
	// Make the rename itself durable. The new file is in place by now, so a
	// failure is reported but the file is not taken back.
	if err := durable.SyncDir(dir); err != nil {
		return n, fmt.Errorf("%s: fsync of the directory: %w", path, err)
	}
	return n, nil
}

// parseMode parses a Unix mode in octal (permissions plus setuid, setgid and
// sticky bits) into an os.FileMode.
func parseMode(octal string) (os.FileMode, error) {
	m, err := strconv.ParseUint(octal, 8, 32)
	if err != nil || m > 0o7777 {
		return 0, fmt.Errorf("bad mode %q", octal)
	}
	mode := os.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		mode |= os.ModeSetuid
	}
	if m&0o2000 != 0 {
		mode |= os.ModeSetgid
	}
	if m&0o1000 != 0 {
		mode |= os.ModeSticky
	}
	return mode, nil
}

// formatMode is the inverse of parseMode; other mode bits are dropped.
func formatMode(mode os.FileMode) string {
	m := uint32(mode.Perm())
	if mode&os.ModeSetuid != 0 {
		m |= 0o4000
	}
	if mode&os.ModeSetgid != 0 {
		m |= 0o2000
	}
	if mode&os.ModeSticky != 0 {
		m |= 0o1000
	}
	return strconv.FormatUint(uint64(m), 8)
}
