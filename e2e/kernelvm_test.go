//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"io"
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
	kernelVMRun.Lock()
	start := time.Now()
	err = cmd.Run()
	kernelVMRun.Unlock()
	t.Logf("kernel VM ran %s (-test.run %q) in %v; console in %s", pkg, run, time.Since(start).Round(time.Millisecond), logPath)
	if err != nil {
		t.Fatalf("kernel VM run of %s: %v; last lines of the console:\n%s", pkg, err, lastLines(out.String(), 60))
	}
	return out.String()
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
