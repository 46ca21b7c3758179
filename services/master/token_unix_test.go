//go:build unix

package master

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// A new token file is 0600 whatever the umask, and no temporary file is left.
func TestTokenFileMode(t *testing.T) {
	dir := t.TempDir()
	old := syscall.Umask(0)
	_, err := loadToken(filepath.Join(dir, TokenFile))
	syscall.Umask(old)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, TokenFile)); fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v under umask 0", fi.Mode().Perm())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("left in the data directory: %v", ents)
	}
}
