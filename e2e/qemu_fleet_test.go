//go:build e2e

package e2e

import (
	"bytes"
	"io"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
)

// testQEMUFleet (TestQEMUNode/Fleet) is acceptance 1 of issue 4: the node booted in
// QEMU, whose fleet.toml names a master on the host (reached through QEMU's NAT at
// 10.0.2.2), appears in `skyfleet nodes` within 10 s of its status becoming ready;
// `skyfleet exec` runs uname -a on the Pi kernel; `skyfleet ssh` gives a working shell
// on a pty.
func testQEMUFleet(t *testing.T, g *sharedVM) {
	v, s, m, built, ready := g.vm.in(t), g.status, g.master, g.built, g.ready
	for {
		if listed(m.nodes(t), s.Address) {
			break
		}
		if time.Since(ready) > 10*time.Second {
			out, _ := m.cli("nodes")
			t.Fatalf("the guest %s is not listed 10 s after it was ready:\n%s\nmaster:\n%s\nserial:\n%s", s.Address, out, tail(m.log), v.tail())
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("guest listed %.1f s after its status was ready", time.Since(ready).Seconds())

	// exec: the kernel's own string, whose release the image build read from the
	// kernel module it put on the card.
	out, err := m.cli("exec", "--key", m.keyFile, s.Address, "--", "uname", "-a")
	if err != nil {
		t.Fatalf("exec uname -a: %v\n%s\nserial:\n%s", err, out, v.tail())
	}
	t.Logf("uname -a: %s", strings.TrimSpace(out))
	rel := regexp.MustCompile(`kernel (\d+\.\d+\.\d+\S*)`).FindStringSubmatch(built)
	if !strings.HasPrefix(out, "Linux qemu-kit") || rel == nil || !strings.Contains(out, rel[1]) {
		t.Errorf("uname -a = %q, want Linux qemu-kit and the booted kernel's release %v", out, rel)
	}

	// ssh on a pty: a shell that runs commands and exits cleanly.
	cmd := exec.Command(skyfleet, "ssh", "--master", m.status, "--key", m.keyFile, "qemu-kit")
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 120})
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	var mu sync.Mutex
	var screen bytes.Buffer
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := tty.Read(b)
			mu.Lock()
			screen.Write(b[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	seen := func(want string, within time.Duration) bool {
		deadline := time.Now().Add(within)
		for time.Now().Before(deadline) {
			mu.Lock()
			ok := strings.Contains(screen.String(), want)
			mu.Unlock()
			if ok {
				return true
			}
			time.Sleep(100 * time.Millisecond)
		}
		return false
	}
	// The answer is computed on the node, so an echo of the typed line cannot match.
	io.WriteString(tty, "echo pty-$((40+2)); tty\n")
	if !seen("pty-42", 60*time.Second) || !seen("/dev/pts/", 10*time.Second) {
		mu.Lock()
		t.Fatalf("no shell output on the pty:\n%q\nserial:\n%s", screen.String(), v.tail())
	}
	io.WriteString(tty, "exit\n")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("skyfleet ssh ended with %v", err)
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Error("skyfleet ssh did not end after exit")
	}
	logJSON := apiGet(m.status, "/api/log")
	if !strings.Contains(logJSON, `"action": "ssh"`) || !strings.Contains(logJSON, "uname -a") {
		t.Errorf("the master's action log lacks the exec and the shell:\n%s", logJSON)
	}
}
