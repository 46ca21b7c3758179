// Package nstest runs a test binary again as a helper process in new Linux namespaces,
// so tests of mounts and network setup change nothing outside themselves. The helper
// mode travels in an environment variable that the package's TestMain dispatches on.
package nstest

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// Command returns the running test binary as helper mode (named in the environment
// variable modeEnv, plus env), to start in the namespaces cloneflags asks for, e.g.
// syscall.CLONE_NEWNS.
func Command(modeEnv, mode string, cloneflags uintptr, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(append(os.Environ(), modeEnv+"="+mode), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: cloneflags}
	return cmd
}

// RunInMountNS runs helper mode in a new mount namespace and fails t unless it exits 0
// and prints OK.
func RunInMountNS(t testing.TB, modeEnv, mode string, env ...string) {
	t.Helper()
	out, err := Command(modeEnv, mode, syscall.CLONE_NEWNS, env...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK") {
		t.Fatalf("helper %s: %v\n%s", mode, err, out)
	}
}
