package unixsock

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
)

func TestListenReplacesStaleSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "api.sock")
	old, err := Listen(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	old.SetUnlinkOnClose(false) // as a killed process leaves it
	old.Close()
	ln, err := Listen(path, 0o660)
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	defer ln.Close()
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o660 || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("the socket's mode: %v %v", fi.Mode(), err)
	}
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	c.Close()
}

func TestListenLeavesOtherFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "api.sock")
	os.WriteFile(path, []byte("not a socket"), 0o600)
	if _, err := Listen(path, 0o600); !errors.Is(err, ErrNotSocket) {
		t.Fatalf("over a regular file: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "not a socket" {
		t.Fatal("the regular file was touched")
	}
}
