package testcheck

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The streams in testdata/*.json were written by Go 1.26.8's own `go test -json
// -count=1 ./NAME/` (timeout.json with -timeout 2s; fzbad.json with -run '^$' -fuzz
// '^FuzzBad$') run in testdata/src, whose packages pass, skip, fail, do not build,
// panic, hang and exit on purpose. They are Go's output, not this package's, so the
// tests below judge real streams.

const skipPkg = "example.com/tc/skip"

func stream(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func check(t *testing.T, in []byte, opt Options) (*Result, string) {
	t.Helper()
	var out bytes.Buffer
	res, err := Check(bytes.NewReader(in), &out, opt)
	if err != nil {
		t.Fatal(err)
	}
	return res, out.String()
}

// failuresMention reports whether some failure line contains every one of want.
func failuresMention(r *Result, want ...string) bool {
	for _, f := range r.Failures {
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(f, w)
		}
		if ok {
			return true
		}
	}
	return false
}

func TestPass(t *testing.T) {
	for _, ci := range []bool{false, true} {
		res, out := check(t, stream(t, "pass"), Options{CI: ci})
		if !res.OK() || res.Passed != 4 || res.Failed != 0 || res.Skipped != 0 || res.Packages != 1 {
			t.Errorf("ci=%v: %+v\n%s", ci, res, out)
		}
		if !strings.Contains(out, "ok   example.com/tc/pass") || !strings.Contains(out, "(4 passed)") {
			t.Errorf("no one-line package summary:\n%s", out)
		}
		// A passing test's log is not printed outside verbose mode.
		if strings.Contains(out, "hello from one") {
			t.Errorf("a passing test's log was printed:\n%s", out)
		}
	}
}

func TestListedSkip(t *testing.T) {
	allowed := Allowlist{
		skipPkg + ".TestNeedsCap":     "the sandbox lacks CAP_SYS_RESOURCE",
		skipPkg + ".TestNeedsRoot":    "runs as a user",
		skipPkg + ".TestParent/child": "child on purpose",
	}
	res, out := check(t, stream(t, "skip"), Options{CI: true, Allowed: allowed})
	if !res.OK() || res.Skipped != 3 || res.Passed != 2 {
		t.Fatalf("listed skips failed the run: %+v\n%s", res, out)
	}
	for _, s := range res.Skips {
		if s.Allowed != allowed[s.Name] {
			t.Errorf("%s: allowed %q, want %q", s.Name, s.Allowed, allowed[s.Name])
		}
	}
	if !strings.Contains(out, "needs CAP_SYS_RESOURCE") || !strings.Contains(out, "allowed: the sandbox lacks CAP_SYS_RESOURCE") {
		t.Errorf("the skip's own reason and the list's are not both printed:\n%s", out)
	}
}

func TestUnlistedSkip(t *testing.T) {
	allowed := Allowlist{skipPkg + ".TestNeedsCap": "the sandbox lacks CAP_SYS_RESOURCE"}
	res, out := check(t, stream(t, "skip"), Options{CI: true, Allowed: allowed})
	if res.OK() || len(res.Failures) != 2 {
		t.Fatalf("CI: want 2 failures for the 2 unlisted skips, got %q\n%s", res.Failures, out)
	}
	if !failuresMention(res, skipPkg+".TestNeedsRoot", "needs root") || !failuresMention(res, skipPkg+".TestParent/child", "child skipped: 1") {
		t.Errorf("failures do not name the unlisted skips with their reasons: %q", res.Failures)
	}
	if failuresMention(res, "TestNeedsCap") {
		t.Errorf("a listed skip failed the run: %q", res.Failures)
	}
	if !strings.Contains(out, "NOT ALLOWED in CI") {
		t.Errorf("the log does not say the skip is not allowed:\n%s", out)
	}

	// Outside CI the same skips are listed at the end but pass.
	res, out = check(t, stream(t, "skip"), Options{})
	if !res.OK() || len(res.Skips) != 3 {
		t.Fatalf("outside CI skips failed the run: %q\n%s", res.Failures, out)
	}
	i := strings.Index(out, "skipped tests (3):")
	if i < 0 || !strings.Contains(out[i:], "TestNeedsRoot: skip_test.go:7: needs root") {
		t.Errorf("skips not listed at the end with their reasons:\n%s", out)
	}
}

func TestFail(t *testing.T) {
	res, out := check(t, stream(t, "fail"), Options{})
	if res.OK() || res.Failed != 3 || res.Passed != 2 {
		t.Fatalf("%+v\n%s", res, out)
	}
	for _, name := range []string{"TestBad", "TestSub/broken", "TestSub"} {
		if !failuresMention(res, "example.com/tc/fail."+name+" ") {
			t.Errorf("no failure for %s in %q", name, res.Failures)
		}
	}
	// The failing tests' logs, the line before the failure included; not the
	// passing test's.
	for _, want := range []string{"context line before the failure", "got 1, want 2", "sub broke", "FAIL example.com/tc/fail"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "fine") {
		t.Errorf("a passing test's log was printed:\n%s", out)
	}
}

func TestBuildError(t *testing.T) {
	for _, name := range []string{"builderr", "vetfail"} {
		res, out := check(t, stream(t, name), Options{})
		if res.OK() || res.BuildFailures != 1 || len(res.Failures) != 1 {
			t.Errorf("%s: %+v\n%s", name, res, out)
		}
		if !strings.Contains(out, "BUILD FAILED") || !strings.Contains(out, "[build failed") {
			t.Errorf("%s: build failure not shown:\n%s", name, out)
		}
	}
	_, out := check(t, stream(t, "builderr"), Options{})
	if !strings.Contains(out, `cannot use "not an int"`) {
		t.Errorf("the compiler's message is not shown:\n%s", out)
	}
	_, out = check(t, stream(t, "vetfail"), Options{})
	if !strings.Contains(out, "wrong type string") {
		t.Errorf("vet's message is not shown:\n%s", out)
	}
}

func TestPanic(t *testing.T) {
	res, out := check(t, stream(t, "panic"), Options{})
	if res.OK() || res.Panics != 1 || !failuresMention(res, "example.com/tc/panic", "panicked", "nil map") {
		t.Fatalf("%+v\n%s", res, out)
	}
	if !strings.Contains(out, "p_test.go:9") {
		t.Errorf("the panic's stack is not shown:\n%s", out)
	}
}

// A panic in a goroutine and a timeout kill the binary while a test runs: the test
// never gets a result, and must not pass for one that did.
func TestNoTestResult(t *testing.T) {
	for name, test := range map[string]string{"gopanic": "TestBackground", "timeout": "TestHangs"} {
		res, out := check(t, stream(t, name), Options{})
		if res.OK() || !failuresMention(res, "example.com/tc/"+name+"."+test, "no result") {
			t.Errorf("%s: %q\n%s", name, res.Failures, out)
		}
		if !strings.Contains(out, "NO RESULT: example.com/tc/"+name+"."+test) || !strings.Contains(out, "panic: ") {
			t.Errorf("%s: the dying test's output is not shown:\n%s", name, out)
		}
	}
}

func TestExitStatus(t *testing.T) {
	res, out := check(t, stream(t, "exit"), Options{})
	if res.OK() || !failuresMention(res, "example.com/tc/exit", "outside any test") {
		t.Fatalf("%q\n%s", res.Failures, out)
	}
}

func TestNoTestFiles(t *testing.T) {
	res, out := check(t, stream(t, "notests"), Options{CI: true})
	if !res.OK() || res.NoTestFiles != 1 || len(res.Skips) != 0 {
		t.Fatalf("a package without tests is not a skipped test: %+v\n%s", res, out)
	}
}

// A stream that stops before the package's result (the go command killed, a pipe
// cut) is no pass.
func TestTruncatedStream(t *testing.T) {
	full := stream(t, "pass")
	lines := bytes.SplitAfter(bytes.TrimRight(full, "\n"), []byte("\n"))
	for _, n := range []int{1, len(lines) / 2, len(lines) - 1} {
		cut := bytes.Join(lines[:n], nil)
		res, out := check(t, cut, Options{})
		if res.OK() || !failuresMention(res, "example.com/tc/pass", "no result") {
			t.Errorf("cut after %d of %d lines: %q\n%s", n, len(lines), res.Failures, out)
		}
	}
	res, _ := check(t, nil, Options{})
	if res.OK() || !failuresMention(res, "no package reported a result") {
		t.Errorf("empty stream: %q", res.Failures)
	}
}

func TestFuzzFailure(t *testing.T) {
	res, out := check(t, stream(t, "fzbad"), Options{})
	if res.OK() || !failuresMention(res, "example.com/tc/fz.FuzzBad") {
		t.Fatalf("%q\n%s", res.Failures, out)
	}
	// scripts/fuzz.sh tells a found input from Go's deadline race by this line.
	if !strings.Contains(out, "Failing input written to testdata/fuzz/FuzzBad/") {
		t.Errorf("the fuzzer's finding is not shown:\n%s", out)
	}
}

func TestVerbose(t *testing.T) {
	res, out := check(t, stream(t, "fail"), Options{Verbose: true})
	if res.OK() {
		t.Fatal("a failing stream passed in verbose mode")
	}
	// Every line as it came, passing tests' included, each failure once.
	for _, want := range []string{"=== RUN   TestGood", "fail_test.go:5: fine", "--- PASS: TestGood"} {
		if !strings.Contains(out, want) {
			t.Errorf("verbose output lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "got 1, want 2"); n != 1 {
		t.Errorf("the failure's log printed %d times, want once:\n%s", n, out)
	}
}

// A panic printed in the first column fails the package even if it says it passed
// (a test that printed a child's crash to stdout and carried on).
func TestPanicInPassingPackage(t *testing.T) {
	in := bytes.Replace(stream(t, "pass"),
		[]byte(`{"Time":`), []byte(`{"Action":"output","Package":"example.com/tc/pass","Test":"TestOne","Output":"panic: in a child\n"}`+"\n"+`{"Time":`), 1)
	res, out := check(t, in, Options{})
	if res.OK() || !failuresMention(res, "example.com/tc/pass", "panicked", "TestOne: panic: in a child") {
		t.Fatalf("%q\n%s", res.Failures, out)
	}
}

func TestNotJSONLinesShown(t *testing.T) {
	in := append([]byte("go: downloading example.com/x v1.0.0\n"), stream(t, "pass")...)
	res, out := check(t, in, Options{})
	if !res.OK() || res.NotJSON != 1 || !strings.Contains(out, "go: downloading example.com/x v1.0.0") {
		t.Fatalf("%+v\n%s", res, out)
	}
}

// A test that logs without end keeps only its last MaxTestOutput bytes, and says so.
func TestOutputCapped(t *testing.T) {
	var b bytes.Buffer
	b.WriteString(`{"Action":"run","Package":"p","Test":"TestLoud"}` + "\n")
	line := strings.Repeat("x", 1000)
	n := 3 * MaxTestOutput / 1000
	for i := range n {
		fmt.Fprintf(&b, `{"Action":"output","Package":"p","Test":"TestLoud","Output":"%d %s\n"}`+"\n", i, line)
	}
	b.WriteString(`{"Action":"fail","Package":"p","Test":"TestLoud"}` + "\n" + `{"Action":"fail","Package":"p"}` + "\n")
	res, out := check(t, b.Bytes(), Options{})
	if res.OK() || len(out) > MaxTestOutput+MaxTestOutput/10 {
		t.Fatalf("ok=%v, %d bytes printed for a test with %d bytes of output", res.OK(), len(out), n*1000)
	}
	if !strings.Contains(out, "bytes of earlier output dropped") || !strings.Contains(out, fmt.Sprintf("%d %s", n-1, line)) {
		t.Errorf("the cut is not marked or the last line is missing")
	}
}

func TestParseAllowlist(t *testing.T) {
	good := "# comment\n\n" +
		"github.com/skyfleet/skyfleet/gokrazy/growperm.TestGrowFilesystemOnLoopDevice   needs CAP_SYS_RESOURCE\n" +
		"example.com/p.TestA/sub_case\tsubtest, tab-separated  \n"
	a, err := ParseAllowlist(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	want := Allowlist{
		"github.com/skyfleet/skyfleet/gokrazy/growperm.TestGrowFilesystemOnLoopDevice": "needs CAP_SYS_RESOURCE",
		"example.com/p.TestA/sub_case": "subtest, tab-separated",
	}
	if fmt.Sprint(a) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", a, want)
	}
	for name, bad := range map[string]string{
		"no reason":  "example.com/p.TestA\n",
		"no package": "TestA because\n",
		"not a test": "example.com/p.helper because\n",
		"twice":      "example.com/p.TestA one\nexample.com/p.TestA two\n",
		"too big":    "# " + strings.Repeat("x", MaxAllowlist) + "\n",
	} {
		if a, err := ParseAllowlist(strings.NewReader(bad)); err == nil {
			t.Errorf("%s: accepted %q as %v", name, bad, a)
		}
	}
}

// The repository's own list parses, and every entry names a test that exists.
func TestRepositoryAllowlist(t *testing.T) {
	a, err := LoadAllowlist("../../.ci/allowed-skips")
	if err != nil {
		t.Fatal(err)
	}
	for name := range a {
		pkg, test, _ := strings.Cut(strings.TrimPrefix(name, "github.com/skyfleet/skyfleet/"), ".")
		test, _, _ = strings.Cut(test, "/")
		files, _ := filepath.Glob(filepath.Join("../..", pkg, "*_test.go"))
		found := false
		for _, f := range files {
			b, _ := os.ReadFile(f)
			found = found || bytes.Contains(b, []byte("func "+test+"("))
		}
		if !found {
			t.Errorf("allow-list entry %s: no func %s in %s", name, test, pkg)
		}
	}
}
