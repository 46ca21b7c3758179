// Package gomod finds the files of modules pinned in Skyfleet's go.mod. The kernel and
// Pi firmware are Go modules (github.com/gokrazy/kernel.rpi, github.com/gokrazy/firmware),
// so `go mod download` fetches and verifies them against go.sum like any other dependency.
package gomod

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Module paths of the boot payload.
const (
	Kernel   = "github.com/gokrazy/kernel.rpi"
	Firmware = "github.com/gokrazy/firmware"
)

// Root returns the directory of Skyfleet's go.mod, searching upward from the working
// directory. Image builds compile skyfleetd from this tree.
func Root() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(data, []byte("module github.com/skyfleet/skyfleet\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("not inside the Skyfleet source tree (no go.mod for github.com/skyfleet/skyfleet above the working directory)")
		}
		dir = parent
	}
}

// Dir returns the extracted directory of module mod at the version go.mod in root pins,
// downloading it through the module proxy if the cache lacks it.
func Dir(root, mod string) (string, error) {
	cmd := exec.Command("go", "mod", "download", "-json", mod)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var info struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &info); jerr == nil && info.Error != "" {
		return "", fmt.Errorf("go mod download %s: %s", mod, info.Error)
	}
	if err != nil {
		return "", fmt.Errorf("go mod download %s: %v: %s", mod, err, strings.TrimSpace(stderr.String()))
	}
	if info.Dir == "" {
		return "", fmt.Errorf("go mod download %s: no directory reported", mod)
	}
	return info.Dir, nil
}

// Payload returns the extracted directories of the kernel and firmware modules pinned in
// the go.mod of the Skyfleet tree around the working directory (see Root and Dir).
func Payload() (kernel, firmware string, err error) {
	root, err := Root()
	if err != nil {
		return "", "", err
	}
	if kernel, err = Dir(root, Kernel); err != nil {
		return "", "", err
	}
	if firmware, err = Dir(root, Firmware); err != nil {
		return "", "", err
	}
	return kernel, firmware, nil
}
