// Package unixsock opens the Unix stream sockets the node's services serve
// their local APIs on (PID 1's, the mesh service's, the approval API, the
// wallet's), each with the file mode that says who may connect.
package unixsock

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
)

// Listen listens on a Unix stream socket at path and sets its file mode
// (connecting needs write permission on it: 0o600 for root only, 0o660 for
// the directory's group too). A socket an earlier run left at path is
// removed first; anything else there is left alone and is an error, so a
// wrong path never deletes a file. Errors: ErrNotSocket, and those of
// listen(2) and chmod(2).
func Listen(path string, mode fs.FileMode) (*net.UnixListener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("%w: %s is a %v", ErrNotSocket, path, fi.Mode().Type())
		}
		if err := os.Remove(path); err != nil {
			return nil, err
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, mode.Perm()); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// ErrNotSocket is returned by Listen when something other than a socket is
// at the path.
var ErrNotSocket = errors.New("unixsock: not a socket")
