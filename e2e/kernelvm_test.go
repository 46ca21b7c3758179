//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"image"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The kernel VM (scripts/kernelvm.sh): Debian's own x86-64 kernel booted under QEMU's
// software emulation with the snd-aloop ALSA loopback driver or the mac80211_hwsim
// simulated radios loaded, for tests that need a real kernel's /dev/snd or
// cfg80211/mac80211, which neither the hosts nor CI have.

var (
	// kernelVMRun is held while a kernel VM runs.
	kernelVMRun  sync.Mutex
	kernelVMOnce sync.Once
	kernelVMDir  string
	kernelVMErr  error
	kernelVMOut  string
)

// kernelVM fills the kernel VM's cache (the kernel, busybox, the sound and Wi-Fi
// modules and the regulatory database,
// fetched with apt-get download into os.UserCacheDir()/skyfleet/kernelvm) once per
// process and returns its directory.
func kernelVM(t *testing.T) string {
	t.Helper()
	kernelVMOnce.Do(func() {
		cache, err := os.UserCacheDir()
		if err != nil {
			kernelVMErr = err
			return
		}
		kernelVMDir = filepath.Join(cache, "skyfleet", "kernelvm")
		start := time.Now()
		out, err := exec.Command("../scripts/kernelvm.sh", "fetch", kernelVMDir).CombinedOutput()
		kernelVMOut, kernelVMErr = string(out), err
		if err == nil {
			t.Logf("kernelvm fetch (%v):\n%s", time.Since(start).Round(time.Millisecond), out)
		}
	})
	if kernelVMErr != nil {
		t.Fatalf("scripts/kernelvm.sh fetch %s: %v\n%s", kernelVMDir, kernelVMErr, kernelVMOut)
	}
	return kernelVMDir
}

// runInKernelVM builds the test binary of package pkg (relative to the repository
// root, e.g. "./drivers/audio/alsa/") static with the build tags tags, runs it in the
// kernel VM with snd-aloop loaded as `test.bin -test.v -test.run run`, keeps the whole
// console in artifacts(t)/console.log and returns it. A non-zero exit of the binary,
// or a VM that never ran it, fails t with the console's tail.
func runInKernelVM(t *testing.T, pkg, tags, run string) string {
	t.Helper()
	return runInKernelVMWith(t, pkg, tags, run, vmOptions{})
}

// vmOptions are a kernel VM run's settings beyond runInKernelVM's defaults; each
// becomes one of scripts/kernelvm.sh's knobs.
type vmOptions struct {
	// Modules are the root modules to load, in order (KERNELVM_MODULES); nil means
	// the script's default, snd-aloop. E.g. {"mac80211_hwsim"}.
	Modules []string
	// Params are module parameters by module name (KERNELVM_ALOOP_PARAMS for
	// "snd-aloop", KERNELVM_HWSIM_PARAMS for "mac80211_hwsim", whose default is
	// "radios=3"); a module not named gets the script's default.
	Params map[string]string
	// Tools are host programs copied into the guest with their libraries
	// (KERNELVM_TOOLS), e.g. {"hostapd", "wpa_supplicant", "iw"}.
	Tools []string
	// Timeout bounds the whole boot and test (KERNELVM_TIMEOUT); zero means the
	// script's 300 s.
	Timeout time.Duration
	// Display, if not zero, is the mode QEMU's VGA card offers first in its
	// EDID (KERNELVM_DISPLAY), e.g. 800x480.
	Display image.Point
	// Host, if set, runs on the test's goroutine while the guest runs, with
	// a QMP client of the VM (KERNELVM_QMP) and link, the stream the guest
	// reads and writes as /dev/ttyS2 (KERNELVM_HOSTLINK). It may fail t; the
	// VM is then stopped.
	Host func(t *testing.T, q *qmp, link net.Conn)
}

// env returns o as scripts/kernelvm.sh's environment variables.
func (o vmOptions) env(t *testing.T) []string {
	t.Helper()
	var env []string
	if o.Modules != nil {
		env = append(env, "KERNELVM_MODULES="+strings.Join(o.Modules, " "))
	}
	for m, p := range o.Params {
		switch strings.ReplaceAll(m, "_", "-") {
		case "snd-aloop":
			env = append(env, "KERNELVM_ALOOP_PARAMS="+p)
		case "mac80211-hwsim":
			env = append(env, "KERNELVM_HWSIM_PARAMS="+p)
		default:
			t.Fatalf("vmOptions.Params: scripts/kernelvm.sh takes no parameters for module %q", m)
		}
	}
	if o.Tools != nil {
		env = append(env, "KERNELVM_TOOLS="+strings.Join(o.Tools, " "))
	}
	if o.Timeout > 0 {
		env = append(env, fmt.Sprintf("KERNELVM_TIMEOUT=%d", int((o.Timeout+time.Second-1)/time.Second)))
	}
	if o.Display != (image.Point{}) {
		env = append(env, fmt.Sprintf("KERNELVM_DISPLAY=%dx%d", o.Display.X, o.Display.Y))
	}
	return env
}

// runInKernelVMWith is runInKernelVM with the modules, their parameters, the host
// tools and the timeout of opt.
func runInKernelVMWith(t *testing.T, pkg, tags, run string, opt vmOptions) string {
	t.Helper()
	dir := kernelVM(t)
	bin := filepath.Join(t.TempDir(), "test.bin")
	args := []string{"test", "-c", "-o", bin}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	build := exec.Command("go", append(args, pkg)...)
	build.Dir = ".." // the repository root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(build.Args[1:], " "), err, out)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("go test -c %s wrote no binary (no test files with tags %q?): %v", pkg, tags, err)
	}

	testArgs := []string{"-test.v"}
	if run != "" {
		testArgs = append(testArgs, "-test.run", run)
	}
	logPath := filepath.Join(artifacts(t), "console.log")
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	var out bytes.Buffer
	cmd := exec.Command("../scripts/kernelvm.sh", append([]string{"run", dir, bin}, testArgs...)...)
	cmd.Env = append(os.Environ(), opt.env(t)...)
	// Written to the log as it comes, so a run that hangs still leaves its console.
	cmd.Stdout = io.MultiWriter(&out, log)
	cmd.Stderr = cmd.Stdout
	// One VM at a time: each takes both cores under TCG, and the kernel VM
	// tests run in parallel only to overlap with the radio tests, which
	// mostly wait for their 1200 bit/s channels.
	var sockets string
	if opt.Host != nil {
		sockets = shortTempDir(t)
		cmd.Env = append(cmd.Env, "KERNELVM_QMP="+filepath.Join(sockets, "qmp"), "KERNELVM_HOSTLINK="+filepath.Join(sockets, "link"))
	}
	kernelVMRun.Lock()
	start := time.Now()
	func() {
		defer kernelVMRun.Unlock() // also when Host fails t
		if opt.Host == nil {
			err = cmd.Run()
		} else {
			err = runWithHost(t, cmd, sockets, opt.Host)
		}
	}()
	t.Logf("kernel VM ran %s (-test.run %q) in %v; console in %s", pkg, run, time.Since(start).Round(time.Millisecond), logPath)
	if err != nil {
		t.Fatalf("kernel VM run of %s: %v; last lines of the console:\n%s", pkg, err, lastLines(out.String(), 60))
	}
	return out.String()
}

// runWithHost starts cmd, a kernel VM run with the QMP and host-link sockets
// in dir, connects to both once QEMU listens, runs host with them and waits
// for the VM. If host fails t (runtime.Goexit), the VM is killed on the way
// out.
func runWithHost(t *testing.T, cmd *exec.Cmd, dir string, host func(*testing.T, *qmp, net.Conn)) error {
	t.Helper()
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	finished := false
	defer func() {
		if !finished {
			cmd.Process.Kill()
			<-exited
		}
	}()
	// QEMU makes its sockets before the guest starts; the script first packs
	// the initramfs, which takes a few seconds.
	var link net.Conn
	for deadline := time.Now().Add(2 * time.Minute); link == nil; {
		select {
		case err := <-exited:
			finished = true
			return fmt.Errorf("the VM ended before QEMU listened on %s: %v", dir, err)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("QEMU did not listen on %s/link within 2 minutes", dir)
		}
		if _, err := os.Stat(filepath.Join(dir, "qmp")); err != nil {
			continue
		}
		link, _ = net.Dial("unix", filepath.Join(dir, "link"))
	}
	defer link.Close()
	host(t, dialQMP(t, filepath.Join(dir, "qmp")), link)
	err := <-exited
	finished = true
	return err
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
