package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/internal/fleetconf"
	"github.com/skyfleet/skyfleet/services/control"
	"github.com/skyfleet/skyfleet/services/identity"
	"github.com/skyfleet/skyfleet/services/master"
)

// runMaster runs a master on loopback and returns it with its master key file.
func runMaster(t *testing.T) (*master.Master, string) {
	t.Helper()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "master.key")
	key, err := identity.CreateKeyFile(keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := fleetconf.Defaults(false)
	cfg.Node.Data = filepath.Join(dir, "data")
	cfg.Node.Listen = []string{"udp://127.0.0.1:0"}
	cfg.Network.LANDiscovery = false
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *master.Master, 1)
	done := make(chan error, 1)
	go func() {
		done <- master.Run(ctx, master.Options{Config: cfg, Key: key, Version: "test", Listener: ln,
			Ready: func(m *master.Master) { ready <- m }})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	select {
	case m := <-ready:
		return m, keyFile
	case err := <-done:
		t.Fatal(err)
	}
	return nil, ""
}

// Two nodes call themselves kit-07 (the second to hijack the name): exec, ssh
// and cp by that name are refused, listing both by address and saying to use
// the address, before any session is opened. Before, the master connected to
// whichever came first in key order.
func TestNameClaimedTwiceIsRefused(t *testing.T) {
	m, keyFile := runMaster(t)
	var addrs []string
	for i := range 2 {
		k, err := identity.Generate(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		s := &control.Signed{Seq: 1, Report: control.Report{Name: "kit-07", Board: "rpi4b"}}
		copy(s.Node[:], k.PublicKey())
		if _, err := m.Registry.Record(s, time.Now().Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, k.Address().String())
	}
	addr := strings.TrimSuffix(strings.TrimPrefix(m.URL, "http://"), "/")
	flags := []string{"--master", addr, "--key", keyFile}
	for name, run := range map[string]func() error{
		"exec": func() error { return cmdExec(append(flags, "kit-07", "--", "uname", "-a")) },
		"ssh":  func() error { return cmdSSH(append(flags, "kit-07")) },
		"cp":   func() error { return cmdCp(append(flags, "kit-07:/etc/hostname", t.TempDir())) },
	} {
		err := run()
		if err == nil {
			t.Fatalf("%s by a shared name went through", name)
		}
		msg := err.Error()
		for _, want := range append([]string{`2 nodes report the name "kit-07"`, "by its address"}, addrs...) {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: error lacks %q:\n%s", name, want, msg)
			}
		}
	}
	// `skyfleet nodes` marks them.
	var out bytes.Buffer
	saved := stdout
	stdout = &out
	defer func() { stdout = saved }()
	if err := cmdNodes([]string{"--master", addr}); err != nil {
		t.Fatal(err)
	}
	if strings.Count(out.String(), "kit-07 (!)") != 2 || !strings.Contains(out.String(), "reach them by address") {
		t.Errorf("nodes:\n%s", out.String())
	}
}

func TestLogText(t *testing.T) {
	for in, want := range map[string]string{
		"uname -a":           "uname -a",
		"a\nb":               `"a\nb"`,
		"\x1b[2J":            `"\x1b[2J"`,
		"/perm/skyfleet/a b": "/perm/skyfleet/a b",
	} {
		if got := logText(in); got != want {
			t.Errorf("logText(%q) = %q, want %q", in, got, want)
		}
	}
	if got := terminalSafe("kit\x1b]0;x\x07"); strings.ContainsAny(got, "\x1b\x07") {
		t.Errorf("terminalSafe left control characters: %q", got)
	}
}
