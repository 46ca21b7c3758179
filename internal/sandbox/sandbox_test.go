//go:build linux

package sandbox

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

const modeEnv = "SANDBOX_TEST_MODE"

// TestMain makes the test binary a probe when modeEnv is set: it tries
// what a service must not be able to do to the wallet and prints what the
// kernel said.
func TestMain(m *testing.M) {
	switch os.Getenv(modeEnv) {
	case "probe":
		probe()
		return
	case "listen":
		// The wallet's side: a socket in the set-group-ID directory.
		path := os.Getenv("SOCK")
		os.Remove(path)
		ln, err := net.Listen("unix", path)
		if err == nil {
			err = os.Chmod(path, 0o660)
		}
		if err != nil {
			fmt.Println("listen:", err)
			os.Exit(1)
		}
		fmt.Println("listening")
		c, err := ln.Accept()
		if err == nil {
			c.Close()
		}
		os.Exit(0)
	case "connect":
		if _, err := DropFromEnv(); err != nil {
			fmt.Println("drop:", err)
			os.Exit(1)
		}
		c, err := net.Dial("unix", os.Getenv("SOCK"))
		if err == nil {
			c.Close()
		}
		fmt.Println("connect=" + errName(err))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func probe() {
	did, err := DropFromEnv()
	if err != nil {
		fmt.Println("drop:", err)
		os.Exit(1)
	}
	dir, disk := os.Getenv("WALLET_DIR"), os.Getenv("DISK")
	res := []string{fmt.Sprintf("dropped=%v", did)}
	try := func(what string, err error) {
		res = append(res, what+"="+errName(err))
	}
	_, err = os.ReadDir(dir)
	try("list", err)
	_, err = os.ReadFile(filepath.Join(dir, "seed.json"))
	try("read", err)
	f, err := os.Open(disk)
	if err == nil {
		f.Close()
	}
	try("disk", err)
	if did {
		// The ways around the permissions, for the services' root.
		try("chmod", os.Chmod(dir, 0o755))
		try("chown", os.Chown(filepath.Join(dir, "seed.json"), 0, 0))
		try("setuid", syscall.Setuid(WalletUID))
		try("mknod", unix.Mknod(filepath.Join(os.TempDir(), fmt.Sprintf("sandbox-probe-%d", os.Getpid())), unix.S_IFBLK|0o600, int(unix.Mkdev(7, 0))))
	}
	fmt.Println(strings.Join(res, " "))
}

// The wallet's socket directory as PID 1 makes it (owned by the wallet,
// group root, set-group-ID): the socket the wallet makes there is root's
// group's, so a root service without DAC_OVERRIDE connects and another uid
// does not.
func TestWalletSocketDir(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root, as PID 1 (CI runs as root)")
	}
	base, err := os.MkdirTemp("", "sbx")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755)
	dir := filepath.Join(base, "wallet")
	if err := OwnedDir(dir, WalletUID, 0, os.ModeSetgid|0o770); err != nil {
		t.Fatal(err)
	}
	if err := OwnedDir(dir, WalletUID, 0, 0o2770); err == nil {
		t.Error("OwnedDir took 0o2770, which os.FileMode does not read as set-group-ID")
	}
	if fi, _ := os.Stat(dir); fi.Mode()&os.ModeSetgid == 0 {
		t.Fatalf("mode %v, want set-group-ID", fi.Mode())
	}
	self, _ := os.ReadFile(os.Args[0])
	bin := filepath.Join(base, "probe")
	os.WriteFile(bin, self, 0o755)
	sock := filepath.Join(dir, "w.sock")
	child := func(mode string, cred *syscall.Credential, extra ...string) *exec.Cmd {
		cmd := exec.Command(bin)
		cmd.Env = append(append(os.Environ(), modeEnv+"="+mode, "SOCK="+sock), extra...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		return cmd
	}
	for _, c := range []struct {
		who   string
		cred  *syscall.Credential
		extra []string
		want  string
	}{
		{"a root service of a wallet node", nil, []string{DropEnv + "=1"}, "connect=ok"},
		{"another uid", &syscall.Credential{Uid: 1000, Gid: 1000}, nil, "connect=EACCES"},
	} {
		l := child("listen", &syscall.Credential{Uid: WalletUID, Gid: WalletGID})
		out, err := l.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Start(); err != nil {
			t.Fatal(err)
		}
		line := make([]byte, 64)
		n, _ := out.Read(line)
		if !strings.Contains(string(line[:n]), "listening") {
			l.Process.Kill()
			t.Fatalf("the wallet's side: %q", line[:n])
		}
		if fi, err := os.Stat(sock); err != nil || fi.Sys().(*syscall.Stat_t).Gid != 0 {
			t.Errorf("the socket's group is not root's: %v", err)
		}
		got, _ := child("connect", c.cred, c.extra...).CombinedOutput()
		l.Process.Kill()
		l.Wait()
		if strings.TrimSpace(string(got)) != c.want {
			t.Errorf("%s: %s, want %s", c.who, got, c.want)
		}
	}
}

func errName(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, unix.EACCES):
		return "EACCES"
	case errors.Is(err, unix.EPERM):
		return "EPERM"
	}
	return "other"
}

// TestWalletUnreadable is acceptance 4's "the wallet's files are
// unreadable to every other service (tested as another uid)": the wallet's
// directory as PID 1 prepares it, a seed file in it, and a block device
// closed as PID 1 closes the card's; then probes run as a root service of a
// wallet node (capabilities dropped), as an unrelated uid, as the wallet,
// and, as the control that the probe can see success, as root with every
// capability.
func TestWalletUnreadable(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root, as PID 1 (CI runs as root)")
	}
	base, err := os.MkdirTemp("", "sandbox")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755) // the probes' uids reach the dirs below
	dir := filepath.Join(base, "perm", "wallet")
	if err := os.MkdirAll(dir, 0o755); err != nil { // as an older image might have left it
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "seed.json"), []byte(`{"box":"..."}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := OwnedDir(dir, WalletUID, WalletGID, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(dir, "seed.json"), WalletUID, WalletGID); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(base, "perm"), 0o755)
	devDir := filepath.Join(base, "dev")
	if err := os.Mkdir(devDir, 0o755); err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(devDir, "mmcblk0p4")
	if err := unix.Mknod(disk, unix.S_IFBLK|0o660, int(unix.Mkdev(7, 0))); err != nil {
		t.Fatal(err)
	}
	tty := filepath.Join(devDir, "ttyS0")
	if err := unix.Mknod(tty, unix.S_IFCHR|0o660, int(unix.Mkdev(4, 64))); err != nil {
		t.Fatal(err)
	}
	ttyBefore, _ := os.Stat(tty)
	n, err := CloseDisks(devDir)
	if err != nil || n != 1 {
		t.Fatalf("CloseDisks = %d, %v; want the one block device", n, err)
	}
	if fi, _ := os.Stat(tty); fi.Mode() != ttyBefore.Mode() {
		t.Errorf("CloseDisks changed a character device: %v", fi.Mode())
	}
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(base, "probe")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(cred *syscall.Credential, drop bool) string {
		t.Helper()
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), modeEnv+"=probe", "WALLET_DIR="+dir, "DISK="+disk)
		if drop {
			cmd.Env = append(cmd.Env, DropEnv+"=1")
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("probe: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	for _, c := range []struct {
		who  string
		cred *syscall.Credential
		drop bool
		want string
	}{
		{"a root service of a wallet node", nil, true,
			"dropped=true list=EACCES read=EACCES disk=EACCES chmod=EPERM chown=EACCES setuid=EPERM mknod=EPERM"},
		{"another uid", &syscall.Credential{Uid: 1000, Gid: 1000}, false,
			"dropped=false list=EACCES read=EACCES disk=EACCES"},
		{"the disk's own uid", &syscall.Credential{Uid: DiskUID, Gid: DiskUID}, false,
			"dropped=false list=EACCES read=EACCES disk="},
		{"the wallet", &syscall.Credential{Uid: WalletUID, Gid: WalletGID}, false,
			"dropped=false list=ok read=ok disk=EACCES"},
		{"root with every capability (the control)", nil, false,
			"dropped=false list=ok read=ok disk="},
	} {
		got := run(c.cred, c.drop)
		if !strings.HasPrefix(got, c.want) {
			t.Errorf("%s: %s\n want %s", c.who, got, c.want)
		}
		if strings.HasSuffix(c.want, "disk=") && strings.Contains(got, "disk=EACCES") {
			// The device's permissions must be what refused the
			// others: its owner, and root with every capability, pass.
			t.Errorf("%s could not open the device: the probe proves nothing: %s", c.who, got)
		}
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("the wallet directory is %v after the probes, want 0700", fi.Mode().Perm())
	}
}
