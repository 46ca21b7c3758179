//go:build unix

package identity

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestLoadOrCreateModeIgnoresUmask: the key file is exactly 0600 whatever
// the umask (0277 would otherwise make it 0400, 0 would keep 0600).
func TestLoadOrCreateModeIgnoresUmask(t *testing.T) {
	for _, mask := range []int{0o277, 0o000, 0o022} {
		dir := t.TempDir()
		old := syscall.Umask(mask)
		_, created, err := LoadOrCreate(dir, nil)
		syscall.Umask(old)
		if err != nil || !created {
			t.Fatalf("umask %03o: created %v, error %v", mask, created, err)
		}
		st, err := os.Stat(filepath.Join(dir, KeyFileName))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != KeyFileMode {
			t.Errorf("umask %03o: mode %v, want %v", mask, st.Mode().Perm(), KeyFileMode)
		}
	}
}
