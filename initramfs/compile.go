package initramfs

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Compile builds the Go package pkg (e.g. "./cmd/skyfleetd") in the module at root as a
// static linux/goarch binary and returns it. version is stamped into main.version.
// Errors carry the compiler's output.
func Compile(root, pkg, goarch, version string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "skyfleet-build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "bin")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version="+version, "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+goarch, "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go build %s for linux/%s: %v\n%s", pkg, goarch, err, strings.TrimSpace(stderr.String()))
	}
	return os.ReadFile(out)
}

// Version describes the source tree at root for stamping: `git describe --always
// --dirty`, or "dev" outside a git checkout.
func Version(root string) string {
	cmd := exec.Command("git", "describe", "--always", "--dirty", "--tags")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil || len(bytes.TrimSpace(out)) == 0 {
		return "dev"
	}
	return string(bytes.TrimSpace(out))
}

// KernelRelease returns the single release directory name under kernelDir/lib/modules
// (e.g. "6.12.47-v8"), the kernel's `uname -r`.
func KernelRelease(kernelDir string) (string, error) {
	ents, err := os.ReadDir(filepath.Join(kernelDir, "lib", "modules"))
	if err != nil {
		return "", fmt.Errorf("kernel modules: %w", err)
	}
	var rel []string
	for _, e := range ents {
		if e.IsDir() {
			rel = append(rel, e.Name())
		}
	}
	if len(rel) != 1 {
		return "", fmt.Errorf("kernel modules: want one release under %s/lib/modules, found %v", kernelDir, rel)
	}
	return rel[0], nil
}
