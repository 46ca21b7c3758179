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
// --dirty --tags`, or "dev" outside a git checkout. Without a tag, describe gives
// the bare abbreviated commit hash, which is all digits one time in about 27
// (9057919): that would read as release 9057919 to an updater, which would
// then refuse every real release as a downgrade. A bare hash is therefore
// given git's own "g" prefix (g9057919), which is never a release version.
func Version(root string) string {
	cmd := exec.Command("git", "describe", "--always", "--dirty", "--tags")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil || len(bytes.TrimSpace(out)) == 0 {
		return "dev"
	}
	return stampVersion(string(bytes.TrimSpace(out)))
}

// stampVersion prefixes a bare commit hash (with or without -dirty) with "g";
// a tag's description (v1.4.0, v1.4.0-3-gabcdef0) is left as it is.
func stampVersion(describe string) string {
	hash := strings.TrimSuffix(describe, "-dirty")
	if len(hash) < 4 || len(hash) > 40 {
		return describe
	}
	for _, c := range hash {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return describe
		}
	}
	return "g" + describe
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
