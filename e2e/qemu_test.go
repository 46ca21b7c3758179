//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/images"
)

// status is the part of GET /status these tests read.
type status struct {
	Address      string  `json:"address"`
	PublicKey    string  `json:"public_key"`
	Board        string  `json:"board"`
	Version      string  `json:"version"`
	Slot         string  `json:"slot"`
	UptimeS      float64 `json:"uptime_s"`
	BootMS       int64   `json:"boot_ms"`
	ConfigErrors []struct {
		Line    int    `json:"line"`
		Message string `json:"message"`
	} `json:"config_errors"`
	Degraded []string `json:"degraded"`
	Perm     struct {
		Mounted bool   `json:"mounted"`
		Device  string `json:"device"`
		Grown   bool   `json:"grown"`
		Error   string `json:"error"`
	} `json:"perm"`
	Services []struct {
		Name     string `json:"name"`
		State    string `json:"state"`
		PID      int    `json:"pid"`
		Restarts int    `json:"restarts"`
		LastExit string `json:"last_exit"`
	} `json:"services"`
}

var skyfleet string // the host CLI, built once

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "skyfleet-e2e-")
	if err != nil {
		panic(err)
	}
	skyfleet = filepath.Join(dir, "skyfleet")
	build := exec.Command("go", "build", "-o", skyfleet, "../cmd/skyfleet")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building skyfleet:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// artifacts is where serial logs are kept for a failed run to be read.
func artifacts(t *testing.T) string {
	d := filepath.Join("artifacts", t.Name())
	os.MkdirAll(d, 0o755)
	return d
}

// buildImage builds an rpi3b card image with the given fleet.toml and returns the
// build's output.
func buildImage(t *testing.T, out string, fleet string) string {
	t.Helper()
	args := []string{"image", "--board", "rpi3b", "-o", out}
	if fleet != "" {
		p := filepath.Join(t.TempDir(), "fleet.toml")
		os.WriteFile(p, []byte(fleet), 0o644)
		args = append(args, "--fleet", p)
	}
	cmd := exec.Command(skyfleet, args...)
	cmd.Dir = ".." // the image build compiles skyfleetd from the source tree
	var outb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outb, &outb
	if err := cmd.Run(); err != nil {
		t.Fatalf("skyfleet image: %v\n%s", err, outb.String())
	}
	t.Logf("skyfleet image:\n%s", outb.String())
	return outb.String()
}

// vm is one node booted with `skyfleet qemu`, as seen by test t.
type vm struct {
	t *testing.T
	*qemu
}

// qemu is the `skyfleet qemu` process behind a vm, shared by the vm's copies for
// subtests (vm.in).
type qemu struct {
	img    string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	serial string
	port   int
	done   chan error
	// timeout is skyfleet qemu's --timeout: the whole run, restarts included.
	timeout string
	// qmp, if set, is the QMP socket of a VM booted with the USB tablet
	// (skyfleet qemu --touch --qmp).
	qmp string
	// display, if set, is skyfleet qemu's --display: the framebuffer's
	// size, as config.txt would set it on a Pi.
	display string
}

func freePort(t *testing.T) int { return freePortOf(t, "tcp") }

func boot(t *testing.T, img, name string) *vm { t.Helper(); return bootFor(t, img, name, "15m") }

// bootFor is boot with skyfleet qemu's --timeout for all the boots it follows.
func bootFor(t *testing.T, img, name, timeout string) *vm {
	t.Helper()
	v := &vm{t: t, qemu: &qemu{img: img, port: freePort(t), serial: filepath.Join(artifacts(t), name+".serial.log"), timeout: timeout}}
	v.start()
	t.Cleanup(func() { v.kill() })
	return v
}

// start starts `skyfleet qemu` on the card image (which truncates the serial log).
func (v *vm) start() {
	v.t.Helper()
	v.done = make(chan error, 1)
	args := []string{"qemu", "--image", v.img, "--status-port", fmt.Sprint(v.port), "--serial", v.serial, "--timeout", v.timeout}
	if v.qmp != "" {
		args = append(args, "--touch", "--qmp", v.qmp)
	}
	if v.display != "" {
		args = append(args, "--display", v.display)
	}
	v.cmd = exec.Command(skyfleet, args...)
	// Its own group, so a power cut kills QEMU too; and killed with the test
	// binary, so a test that times out leaves no emulated Pi running (a
	// CI run's timed-out update test left three eating the fuzz stage's CPU).
	v.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var err error
	if v.stdin, err = v.cmd.StdinPipe(); err != nil {
		v.t.Fatal(err)
	}
	// The serial log has the guest's side (skyfleet qemu copies it to stdout
	// too, so that is dropped); the harness's own messages (QEMU missing, a
	// bad image), on stderr, go to a file beside it.
	harness, err := os.Create(strings.TrimSuffix(v.serial, ".serial.log") + ".harness.log")
	if err != nil {
		v.t.Fatal(err)
	}
	v.cmd.Stdout, v.cmd.Stderr = io.Discard, harness
	err = v.cmd.Start()
	harness.Close()
	if err != nil {
		v.t.Fatal(err)
	}
	go func(cmd *exec.Cmd, done chan error) { done <- cmd.Wait() }(v.cmd, v.done)
}

// in returns v reporting to t: a subtest of the test that booted v uses it, since
// a test may only fail itself from its own goroutine.
func (v *vm) in(t *testing.T) *vm { return &vm{t: t, qemu: v.qemu} }

// waitStatus polls the status API until it answers, QEMU exits, or 8 minutes pass
// (a loaded 2-core machine emulating a Pi 3 can take minutes).
func (v *vm) waitStatus() status {
	v.t.Helper()
	return v.waitUntil("the node to be ready", func(s status) bool { return s.BootMS > 0 })
}

// waitUntil polls the status API until ok accepts a status, QEMU exits, or 8 minutes pass.
func (v *vm) waitUntil(what string, ok func(status) bool) status {
	v.t.Helper()
	deadline := time.Now().Add(8 * time.Minute)
	c := http.Client{Timeout: 5 * time.Second}
	for time.Now().Before(deadline) {
		select {
		case err := <-v.done:
			v.done <- err
			v.t.Fatalf("QEMU exited while waiting for %s (%v); skyfleet qemu said:\n%s\nserial log:\n%s", what, err, v.harnessLog(), v.tail())
		default:
		}
		// A boot that hangs (SD stall, a silent console) is power-cycled by
		// skyfleet qemu itself, which notes it in the serial log.
		resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/status", v.port))
		if err == nil {
			var s status
			err = json.NewDecoder(resp.Body).Decode(&s)
			resp.Body.Close()
			if err == nil && ok(s) {
				return s
			}
		}
		time.Sleep(time.Second)
	}
	v.t.Fatalf("waited 8 minutes for %s; serial log:\n%s", what, v.tail())
	return status{}
}

// poweroff asks the node on its serial console to stop cleanly and waits for QEMU to
// exit on its own (the guest's poweroff ends QEMU).
func (v *vm) poweroff() {
	v.t.Helper()
	fmt.Fprintln(v.stdin, "poweroff")
	select {
	case err := <-v.done:
		v.done <- err
		if err != nil {
			v.t.Fatalf("QEMU after poweroff: %v\n%s", err, v.tail())
		}
	case <-time.After(3 * time.Minute):
		v.t.Fatalf("node did not power off within 3 minutes; serial log:\n%s", v.tail())
	}
	if !strings.Contains(v.log(), "reboot: Power down") {
		v.t.Fatalf("QEMU exited without the kernel powering down:\n%s", v.tail())
	}
}

// kill is a power cut: QEMU and the harness die at once, nothing is flushed.
func (v *vm) kill() {
	if v.cmd.Process != nil {
		syscall.Kill(-v.cmd.Process.Pid, syscall.SIGKILL)
	}
	select {
	case err := <-v.done:
		v.done <- err
	case <-time.After(30 * time.Second):
	}
}

// harnessLog is what skyfleet qemu itself printed.
func (v *vm) harnessLog() string {
	b, _ := os.ReadFile(strings.TrimSuffix(v.serial, ".serial.log") + ".harness.log")
	return string(b)
}

func (v *vm) log() string {
	b, _ := os.ReadFile(v.serial)
	return string(b)
}

func (v *vm) tail() string {
	s := v.log()
	if len(s) > 6000 {
		s = s[len(s)-6000:]
	}
	return s
}

func (v *vm) get(path string, into any) {
	v.t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", v.port, path))
	if err != nil {
		v.t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		v.t.Fatal(err)
	}
}

// fsckPerm extracts the perm partition and runs e2fsck -fn on it: no repairs, exit 0.
func fsckPerm(t *testing.T, img string) {
	t.Helper()
	p2 := filepath.Join(t.TempDir(), "perm.ext4")
	if err := images.ExtractPartition(img, 2, p2); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("e2fsck", "-fn", p2).CombinedOutput()
	if err != nil {
		t.Fatalf("e2fsck -fn on perm: %v\n%s", err, out)
	}
	t.Logf("e2fsck -fn perm: clean\n%s", out)
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// The power-cut path (its own boots: it cuts power and changes the card): a
// malformed fleet.toml still boots and is reported; the node makes its identity on
// first boot; a power cut loses nothing; the next boot, on a bigger card, grows /perm,
// replays the journal, keeps the address and powers off cleanly; the perm partition is
// then clean for e2fsck. The read-only checks of a boot are TestQEMUNode/Status.
func TestBootPowerCutReboot(t *testing.T) {
	img := filepath.Join(t.TempDir(), "node.img")
	// Line 4 is broken TOML: the node must still boot, and say which line.
	buildImage(t, img, "[node]\nname = \"kit-07\"\n\nlisten = [\"udp://0.0.0.0:5505\"\n\n[radio]\ncallsign = \"N0CALL\"\n")

	v := boot(t, img, "boot1")
	s1 := v.waitStatus()
	t.Logf("boot 1: address %s, boot_ms %d, uptime %.1fs, degraded %v", s1.Address, s1.BootMS, s1.UptimeS, s1.Degraded)
	if s1.Address == "" || len(s1.PublicKey) != 66 {
		t.Fatalf("boot 1: no identity: %+v", s1)
	}
	if len(s1.ConfigErrors) == 0 || s1.ConfigErrors[0].Line == 0 {
		t.Errorf("boot 1: malformed fleet.toml not reported with a line: %+v", s1.ConfigErrors)
	}
	if !s1.Perm.Mounted || len(s1.Degraded) != 0 {
		t.Errorf("boot 1: perm %+v, degraded %v", s1.Perm, s1.Degraded)
	}
	v.kill() // power cut

	// A bigger card: the image grows to 1 GiB (still a power of two) and the node must
	// grow /perm into it.
	if err := os.Truncate(img, 1<<30); err != nil {
		t.Fatal(err)
	}
	v = boot(t, img, "boot2")
	s2 := v.waitStatus()
	t.Logf("boot 2: address %s, boot_ms %d, perm %+v", s2.Address, s2.BootMS, s2.Perm)
	if s2.Address != s1.Address || s2.PublicKey != s1.PublicKey {
		t.Fatalf("identity changed across a power cut: %s then %s", s1.Address, s2.Address)
	}
	if !s2.Perm.Grown {
		t.Errorf("perm not grown into the bigger card: %+v", s2.Perm)
	}

	// SIGKILL the status service from the operator's shell on the serial console: the
	// supervisor restarts it (after its backoff) and the status says so.
	pid := 0
	for _, sv := range s2.Services {
		if sv.Name == "status" {
			pid = sv.PID
		}
	}
	if pid == 0 {
		t.Fatalf("no status service in %+v", s2.Services)
	}
	fmt.Fprintf(v.stdin, "kill -9 %d\n", pid)
	s3 := v.waitUntil("the status service to be restarted", func(s status) bool {
		for _, sv := range s.Services {
			if sv.Name == "status" && sv.Restarts >= 1 {
				return true
			}
		}
		return false
	})
	for _, sv := range s3.Services {
		if sv.Name == "status" && (sv.PID == pid || sv.LastExit != "signal: killed" || sv.State != "running") {
			t.Errorf("after SIGKILL: %+v", sv)
		}
	}
	v.poweroff()
	fsckPerm(t, img)
	parts, err := images.Partitions(img)
	if err != nil {
		t.Fatal(err)
	}
	if end := parts[1].Start + parts[1].Size; end < (1<<30)-(4<<20) {
		t.Errorf("perm partition ends at %d, want near the 1 GiB card end", end)
	}
}

// Without a usable perm partition the node still boots, serves its status and says it
// is degraded.
func TestBootWithoutPerm(t *testing.T) {
	img := filepath.Join(t.TempDir(), "noperm.img")
	buildImage(t, img, "")
	parts, err := images.Partitions(img)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Wipe the ext4 superblocks' first megabyte: the partition is there, unmountable.
	if _, err := f.WriteAt(make([]byte, 1<<20), parts[1].Start); err != nil {
		t.Fatal(err)
	}
	f.Close()
	v := boot(t, img, "noperm")
	s := v.waitStatus()
	t.Logf("degraded boot: %v", s.Degraded)
	if s.Perm.Mounted || s.Perm.Error == "" || len(s.Degraded) == 0 {
		t.Fatalf("unmountable perm not reported: perm %+v degraded %v", s.Perm, s.Degraded)
	}
	if s.Address == "" {
		t.Error("no address in degraded mode")
	}
	v.poweroff()
}

// sharedVM is the node TestQEMUNode boots once for every test that needs a running
// node but does not change its card or cut its power. Its fleet.toml both peers it
// with a `skyfleet node` on the host and names a `skyfleet master` on the host, so
// the mesh and fleet tests run against the same boot. The master's key, named in
// [master] public_key, is also the credential the node's API accepts.
type sharedVM struct {
	vm     *vm          // bound to TestQEMUNode; a subtest uses vm.in(t)
	status status       // the first ready status
	ready  time.Time    // when the status API first answered ready
	built  string       // the image build's output
	host   *meshNode    // the host's mesh node, in the guest's [network] peers
	master *fleetMaster // the master named in the guest's [master]
	// guest is the node's API as a meshNode, for `skyfleet mesh ... --node`; its
	// commands authorise with the master's key file, the key the node's fleet.toml
	// names.
	guest *meshNode
}

// TestQEMUNode boots one node in QEMU and runs, as subtests, every test that can share
// a booted node (QEMU boots are the slowest part of the e2e tier; see the power-cut
// and no-perm tests above for the ones that need their own): Status, the read-only
// boot checks; Fleet, the master on the host listing and controlling the node;
// WiFiFirmware, the Wi-Fi modules loaded and their firmware in place; Mesh,
// the node and a host node pinging each other. Fleet runs first because it times how
// soon the node is listed after it was ready. The node then powers off cleanly.
func TestQEMUNode(t *testing.T) {
	host := newMeshNode(t, "host", nil)
	hp := freeUDPPort(t)
	host.start(t, fmt.Sprintf("udp://127.0.0.1:%d", hp), fmt.Sprintf("127.0.0.1:%d", freePort(t)), nil, false)
	m := startMaster(t, "60s")

	// The guest reaches the host through QEMU's user network (NAT, as behind a home
	// router: the guest dials out to 10.0.2.2, the host).
	img := filepath.Join(t.TempDir(), "node.img")
	built := buildImage(t, img, fmt.Sprintf("[node]\nname = \"qemu-kit\"\n\n"+
		"[network]\npsk = %q\nlan_discovery = false\npeers = [%q]\n\n"+
		"[master]\npublic_key = %q\naddresses = [\"udp://10.0.2.2:%d\"]\n"+walletFleet,
		meshPSK, host.peerEntry(fmt.Sprintf("10.0.2.2:%d", hp)), m.key.PublicKeyHex(), m.meshPort))
	// The shared node has the emulated touchscreen: QEMU's framebuffer, at
	// 480x320 as the common 3.5" panels are, and a USB tablet, driven
	// through QMP (the Touchscreen subtest).
	v := &vm{t: t, qemu: &qemu{img: img, port: freePort(t), serial: filepath.Join(artifacts(t), "node.serial.log"), timeout: "15m",
		qmp: filepath.Join(shortTempDir(t), "qmp.sock"), display: "480x320"}}
	v.start()
	t.Cleanup(func() { v.kill() })
	s := v.waitStatus()
	g := &sharedVM{vm: v, status: s, ready: time.Now(), built: built, host: host, master: m,
		guest: &meshNode{name: "guest", status: fmt.Sprintf("127.0.0.1:%d", v.port), masterKey: m.keyFile}}
	t.Logf("node ready: address %s, boot_ms %d, uptime %.1fs", s.Address, s.BootMS, s.UptimeS)

	t.Run("Status", func(t *testing.T) { testQEMUStatus(t, g) })
	t.Run("Fleet", func(t *testing.T) { testQEMUFleet(t, g) })
	t.Run("WiFiFirmware", func(t *testing.T) { testQEMUWiFiFirmware(t, g) })
	t.Run("Mesh", func(t *testing.T) { testQEMUMesh(t, g) })
	t.Run("Messages", func(t *testing.T) { testQEMUMessages(t, g) })
	t.Run("Touchscreen", func(t *testing.T) { testQEMUTouchscreen(t, g) })
	t.Run("Wallet", func(t *testing.T) { testQEMUWallet(t, g) })
	t.Run("UpdateRefused", func(t *testing.T) { testQEMUUpdateRefused(t, g) })
	v.poweroff()
}

// testQEMUStatus: a node with a valid fleet.toml boots from slot a with an identity,
// its perm partition mounted, nothing degraded, no config errors, no service stopped
// or backing off after a crash, and shows its address on the console.
func testQEMUStatus(t *testing.T, g *sharedVM) {
	v, s := g.vm.in(t), g.status
	if s.Address == "" || len(s.PublicKey) != 66 {
		t.Errorf("no identity: address %q, public key %q", s.Address, s.PublicKey)
	}
	if s.Board != "rpi3b" || s.Slot != "a" || s.Version == "" {
		t.Errorf("board %q slot %q version %q", s.Board, s.Slot, s.Version)
	}
	if !s.Perm.Mounted || len(s.Degraded) != 0 || len(s.ConfigErrors) != 0 {
		t.Errorf("perm %+v, degraded %v, config errors %+v", s.Perm, s.Degraded, s.ConfigErrors)
	}
	for _, svc := range s.Services {
		// "starting" is a service the supervisor is bringing up as the status
		// becomes ready; stopped or backoff is one that died.
		if svc.State != "running" && svc.State != "starting" {
			t.Errorf("service %s is %s (last exit %q)", svc.Name, svc.State, svc.LastExit)
		}
	}
	if !strings.Contains(v.log(), s.Address) {
		t.Errorf("the console does not show the address %s", s.Address)
	}
}
