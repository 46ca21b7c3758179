// Package imagetest checks Skyfleet SD images with the real filesystem
// checkers, for use in tests: partition 1 with `fsck.vfat -n` and partition 2
// with `e2fsck -fn`. Both must exit 0 and print nothing but their banner,
// pass names and summary, i.e. find nothing to fix.
package imagetest

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/skyfleet/skyfleet/images"
)

// checks lists, per partition, the checker, its read-only flags and every
// line it prints when it finds nothing wrong.
var checks = []struct {
	part  int
	tool  string
	args  []string
	clean *regexp.Regexp
}{
	{1, "fsck.vfat", []string{"-n"},
		regexp.MustCompile(`^(fsck\.fat \S+ \(.*\)|.*: \d+ files?, \d+/\d+ clusters)$`)},
	{2, "e2fsck", []string{"-fn"},
		regexp.MustCompile(`^(e2fsck \S+ \(.*\)|Pass [1-5]: [A-Za-z ,]+|.*: \d+/\d+ files \(.*\), \d+/\d+ blocks)$`)},
}

// Fsck extracts partitions 1 and 2 of img into t.TempDir() and checks them
// with fsck.vfat -n and e2fsck -fn. It calls t.Errorf with the checker's
// output unless each exits 0 and prints only clean lines, and t.Fatal if a
// checker is not installed.
func Fsck(t testing.TB, img string) {
	t.Helper()
	dir := t.TempDir()
	for _, c := range checks {
		bin, err := find(c.tool)
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, fmt.Sprintf("p%d", c.part))
		if err := images.ExtractPartition(img, c.part, out); err != nil {
			t.Fatal(err)
		}
		if err := run(bin, c.clean, append(c.args, out)...); err != nil {
			t.Errorf("partition %d of %s: %v", c.part, img, err)
		}
	}
}

// find locates a checker, also in the sbin directories that are not always
// on a user's PATH.
func find(tool string) (string, error) {
	bin, err := exec.LookPath(tool)
	for _, d := range []string{"/usr/sbin", "/sbin"} {
		if err != nil {
			bin, err = exec.LookPath(filepath.Join(d, tool))
		}
	}
	if err != nil {
		return "", fmt.Errorf("%s not found: install dosfstools/e2fsprogs (apt-get install dosfstools e2fsprogs)", tool)
	}
	return bin, nil
}

// run runs bin with args and returns an error quoting its output unless it
// exits 0 and every line it prints matches clean.
func run(bin string, clean *regexp.Regexp, args ...string) error {
	out, err := exec.Command(bin, args...).CombinedOutput()
	var bad []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if !clean.MatchString(l) {
			bad = append(bad, l)
		}
	}
	if err != nil || len(bad) > 0 {
		return fmt.Errorf("%s %s: exit %v, unexpected lines %q; output:\n%s",
			filepath.Base(bin), strings.Join(args, " "), err, bad, out)
	}
	return nil
}
