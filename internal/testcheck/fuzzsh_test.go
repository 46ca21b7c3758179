package testcheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// fakeGo stands in for the go command under scripts/fuzz.sh: `go list` names one
// package in $FAKEDIR, whose fuzz_test.go declares the targets; `go env GOCACHE`
// answers $FAKEDIR/cache; `go test -c -fuzz . -o BIN` records a build in
// $FAKEDIR/builds and makes BIN; `go tool test2json -t -p PKG BIN -test.fuzz F
// -test.fuzztime Ns ...` runs the target: it records "F N" in $FAKEDIR/runs, sleeps N
// seconds when FAKESLEEP=1 (as the fuzzer would) and writes a `go test -json` stream
// as the target's mode file $FAKEDIR/mode.F says: ok, race1 (Go's fuzztime deadline
// race on the first run only), race (on every run), found (a failing input) or skip.
const fakeGo = `#!/usr/bin/env bash
set -u
case "$1" in
list) if [ "$2" = -f ]; then echo "$FAKEDIR"; else echo example.com/fz; fi; exit 0 ;;
env) echo "$FAKEDIR/cache"; exit 0 ;;
test)
  while [ $# -gt 0 ]; do case $1 in -o) o=$2 ;; esac; shift; done
  echo build >> "$FAKEDIR/builds"; printf '#!/bin/true\n' > "$o"; chmod +x "$o"; exit 0 ;;
tool) [ "$2" = test2json ] || { echo "fake go: $*" >&2; exit 2; }
  [ -x "$6" ] || { echo "fake go: no test binary $6" >&2; exit 2; } ;;
*) echo "fake go: $*" >&2; exit 2 ;;
esac
while [ $# -gt 0 ]; do case $1 in -test.fuzz) f=$2 ;; -test.fuzztime) ft=$2 ;; esac; shift; done
f=${f#^}; f=${f%$}; ft=${ft%s}
echo "$f $ft" >> "$FAKEDIR/runs"
runs=$(grep -c "^$f " "$FAKEDIR/runs")
mode=$(cat "$FAKEDIR/mode.$f" 2>/dev/null || echo ok)
[ "${FAKESLEEP:-0}" = 1 ] && sleep "$ft"
ev() { printf '{"Action":"%s","Package":"example.com/fz"%s}\n' "$1" "$2"; }
ev start ""
ev run ",\"Test\":\"$f\""
if [ "$mode" = race ] || { [ "$mode" = race1 ] && [ "$runs" = 1 ]; }; then
  ev output ",\"Test\":\"$f\",\"Output\":\"    context deadline exceeded\\n\""
  ev fail ",\"Test\":\"$f\""; ev fail ""; exit 1
fi
if [ "$mode" = found ]; then
  ev output ",\"Test\":\"$f\",\"Output\":\"    Failing input written to testdata/fuzz/$f/1\\n    context deadline exceeded\\n\""
  ev fail ",\"Test\":\"$f\""; ev fail ""; exit 1
fi
if [ "$mode" = skip ]; then
  ev output ",\"Test\":\"$f\",\"Output\":\"    f_test.go:9: not today\\n\""
  ev skip ",\"Test\":\"$f\""; ev pass ""; exit 0
fi
ev pass ",\"Test\":\"$f\""; ev pass ""
`

type fuzzRun struct {
	target string
	secs   int
}

// runFuzzSh runs scripts/fuzz.sh with budget on targets (name -> mode) under
// fakeGo and returns its output, exit code and the runs fakeGo saw.
func runFuzzSh(t *testing.T, testcheck, budget string, sleep bool, env []string, targets ...[2]string) (string, int, []fuzzRun) {
	out, code, runs, _ := runFuzzShBuilds(t, testcheck, budget, sleep, env, targets...)
	return out, code, runs
}

// runFuzzShBuilds is runFuzzSh that also returns how many test binaries were
// built.
func runFuzzShBuilds(t *testing.T, testcheck, budget string, sleep bool, env []string, targets ...[2]string) (string, int, []fuzzRun, int) {
	t.Helper()
	dir := t.TempDir()
	goBin := filepath.Join(dir, "go")
	if err := os.WriteFile(goBin, []byte(fakeGo), 0o755); err != nil {
		t.Fatal(err)
	}
	var src strings.Builder
	src.WriteString("package fz\n\n")
	for _, tg := range targets {
		src.WriteString("func " + tg[0] + "(f *testing.F) {}\n")
		os.WriteFile(filepath.Join(dir, "mode."+tg[0]), []byte(tg[1]), 0o644)
	}
	os.WriteFile(filepath.Join(dir, "fuzz_test.go"), []byte(src.String()), 0o644)
	cmd := exec.Command("bash", "../../scripts/fuzz.sh", budget)
	cmd.Env = append(os.Environ(), "GO="+goBin, "FAKEDIR="+dir, "TESTCHECK="+testcheck, "FUZZFLOOR=1s", "SKYFLEET_CI=")
	if sleep {
		cmd.Env = append(cmd.Env, "FAKESLEEP=1")
	}
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "runs"))
	var runs []fuzzRun
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if name, s, ok := strings.Cut(l, " "); ok {
			n, _ := strconv.Atoi(s)
			runs = append(runs, fuzzRun{name, n})
		}
	}
	builds, _ := os.ReadFile(filepath.Join(dir, "builds"))
	return string(out), code, runs, strings.Count(string(builds), "build\n")
}

// TestFuzzScript checks scripts/fuzz.sh's budget: the targets share one total, a
// repeat after Go's deadline race comes out of that total instead of adding a full
// share, a found input fails, a double race passes with a warning, and a skipped
// target fails in CI.
func TestFuzzScript(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("scripts/fuzz.sh is run on Linux")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatal("bash is needed for scripts/fuzz.sh:", err)
	}
	tc := filepath.Join(t.TempDir(), "testcheck")
	if out, err := exec.Command("go", "build", "-o", tc, "./cmd/testcheck").CombinedOutput(); err != nil {
		t.Fatalf("building testcheck: %v\n%s", err, out)
	}

	// 4 s for two targets, the first racing once: 2 s, then its repeat and the
	// second target share the 2 s left. A fixed share per run would fuzz 6 s.
	// The script reads the clock in whole seconds and counts the build in the
	// budget, so on a loaded machine the first share can be 1 s: the test
	// holds it to at most half the budget, not to exactly 2 s.
	out, code, runs, builds := runFuzzShBuilds(t, tc, "4s", true, nil, [2]string{"FuzzA", "race1"}, [2]string{"FuzzB", "ok"})
	if code != 0 || len(runs) != 3 || runs[0].target != "FuzzA" || runs[0].secs < 1 || runs[0].secs > 2 || runs[1].target != "FuzzA" || runs[2].target != "FuzzB" {
		t.Fatalf("exit %d, runs %v\n%s", code, runs, out)
	}
	// The package's fuzz binary was built once for its two targets and
	// three runs.
	if builds != 1 {
		t.Errorf("the package's fuzz binary was built %d times, want once\n%s", builds, out)
	}
	total := 0
	for _, r := range runs {
		total += r.secs
	}
	// One second of slack: the script reads the clock in whole seconds, and the
	// floor is 1 s.
	if total > 5 || !strings.Contains(out, "running it again") {
		t.Errorf("runs %v fuzz %d s of a 4 s budget\n%s", runs, total, out)
	}

	out, code, _ = runFuzzSh(t, tc, "1s", false, nil, [2]string{"FuzzA", "found"})
	if code == 0 || !strings.Contains(out, "FuzzA FAILED") || !strings.Contains(out, "Failing input written") {
		t.Errorf("found input: exit %d\n%s", code, out)
	}
	out, code, runs = runFuzzSh(t, tc, "1s", false, nil, [2]string{"FuzzA", "race"})
	if code != 0 || len(runs) != 2 || !strings.Contains(out, "WARNING: FuzzA hit the deadline race twice") {
		t.Errorf("double race: exit %d, runs %v\n%s", code, runs, out)
	}
	if _, code, _ = runFuzzSh(t, tc, "1s", false, nil, [2]string{"FuzzA", "skip"}); code != 0 {
		t.Errorf("skipped target outside CI: exit %d", code)
	}
	out, code, _ = runFuzzSh(t, tc, "1s", false, []string{"SKYFLEET_CI=1"}, [2]string{"FuzzA", "skip"})
	if code == 0 || !strings.Contains(out, "not on the allow-list") {
		t.Errorf("skipped target in CI: exit %d\n%s", code, out)
	}
}
