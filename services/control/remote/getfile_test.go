package remote

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// withUmask0 runs the test with umask 0, so that a mode that relies on the
// umask for privacy shows up as world-readable.
func withUmask0(t *testing.T) {
	old := syscall.Umask(0)
	t.Cleanup(func() { syscall.Umask(old) })
}

// A downloaded file is 0600 whatever the remote file's mode and the umask: a
// copied node.key must not become world-readable.
func TestGetFileMode(t *testing.T) {
	withUmask0(t)
	f := newFixture(t)
	c := f.client(t)
	remote := filepath.Join(t.TempDir(), "node.key")
	data := make([]byte, 3<<20)
	rand.Read(data)
	if err := os.WriteFile(remote, data, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(remote, 0o644)
	dir := t.TempDir()
	local := filepath.Join(dir, "copy of node.key")
	if err := os.WriteFile(local, []byte("old"), 0o644); err != nil { // replaced, mode too
		t.Fatal(err)
	}
	n, err := c.GetFile(remote, local)
	if err != nil || n != int64(len(data)) {
		t.Fatalf("GetFile = %d, %v", n, err)
	}
	st, err := os.Stat(local)
	if err != nil || st.Mode() != 0o600 {
		t.Fatalf("local file: mode %v, %v; want 0600", st.Mode(), err)
	}
	if got, _ := os.ReadFile(local); !bytes.Equal(got, data) {
		t.Error("content differs")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("directory holds %d entries, want only the file", len(ents))
	}
}

// While a download is in progress, the partial file is not readable by group
// or others either. The remote file is a FIFO, so the test decides when the
// download ends.
func TestGetFilePartialIsPrivate(t *testing.T) {
	withUmask0(t)
	f := newFixture(t)
	c := f.client(t)
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	local := filepath.Join(dir, "secret")
	type result struct {
		n   int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := c.GetFile(fifo, local)
		done <- result{n, err}
	}()
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0) // blocks until the node opens it
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("secret part one\n")); err != nil {
		t.Fatal(err)
	}
	var partial string
	for deadline := time.Now().Add(10 * time.Second); partial == "" && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if b, _ := os.ReadFile(filepath.Join(dir, e.Name())); len(b) > 0 {
				partial = filepath.Join(dir, e.Name())
			}
		}
	}
	if partial == "" {
		t.Fatal("no partial file with content appeared")
	}
	if partial == local {
		t.Fatal("the target appeared before the download ended")
	}
	if st, err := os.Stat(partial); err != nil || st.Mode().Perm()&0o077 != 0 {
		t.Fatalf("partial file %s: mode %v, %v; want no group or other bits", partial, st.Mode(), err)
	}
	w.Write([]byte("part two\n"))
	w.Close()
	r := <-done
	if r.err != nil || r.n != 25 {
		t.Fatalf("GetFile = %d, %v", r.n, r.err)
	}
	if b, _ := os.ReadFile(local); string(b) != "secret part one\npart two\n" {
		t.Errorf("content %q", b)
	}
}

// A failed download leaves the local file as it was, and nothing else.
func TestGetFileFailure(t *testing.T) {
	f := newFixture(t)
	c := f.client(t)
	dir := t.TempDir()
	local := filepath.Join(dir, "f")
	os.WriteFile(local, []byte("old"), 0o640)
	missing := filepath.Join(t.TempDir(), "missing")
	_, err := c.GetFile(missing, local)
	if err == nil || !strings.Contains(err.Error(), "no such file") || !strings.Contains(err.Error(), "exit 1") {
		t.Errorf("GetFile of a missing file: %v; want the node's explanation", err)
	}
	// A directory opens but fails on the first read: the node exits 1 after
	// the stream has started.
	if _, err := c.GetFile(t.TempDir(), local); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("GetFile of a directory: %v", err)
	}
	if _, err := c.GetFile("relative", local); err == nil || !strings.Contains(err.Error(), "not absolute") {
		t.Errorf("GetFile of a relative path: %v", err)
	}
	if b, _ := os.ReadFile(local); string(b) != "old" {
		t.Errorf("local file now %q", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("directory holds %d entries after failures, want 1", len(ents))
	}
	// The local side failing (no such directory) ends the node's side too.
	if _, err := c.GetFile(local, filepath.Join(dir, "no", "such")); err == nil {
		t.Error("GetFile into a missing directory succeeded")
	}
	// The connection is still usable.
	if n, err := c.GetFile(local, filepath.Join(dir, "g")); err != nil || n != 3 {
		t.Errorf("GetFile after failures: %d, %v", n, err)
	}
}

// An upload in progress sits in a 0600 temporary file even when the final
// mode is wider and the umask is 0; only the finished file gets its mode.
func TestPutPartialIsPrivate(t *testing.T) {
	withUmask0(t)
	f := newFixture(t)
	c := f.client(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	s, err := c.ssh.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stdin, err := s.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(copyCommandLine("put", path, "644")); err != nil {
		t.Fatal(err)
	}
	stdin.Write([]byte("part"))
	var tmp string
	for deadline := time.Now().Add(10 * time.Second); tmp == "" && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if b, _ := os.ReadFile(filepath.Join(dir, e.Name())); len(b) > 0 {
				tmp = filepath.Join(dir, e.Name())
			}
		}
	}
	if tmp == "" {
		t.Fatal("no temporary file with content appeared")
	}
	if st, err := os.Stat(tmp); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("upload in progress: mode %v, %v; want 0600", st.Mode(), err)
	}
	stdin.Close()
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode() != 0o644 {
		t.Fatalf("finished upload: %v, %v; want mode 0644", st.Mode(), err)
	}
}
