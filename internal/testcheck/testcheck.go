// Package testcheck reads the event stream `go test -json` writes (the format of
// cmd/test2json: one JSON object per line with Action, Package, Test, Output, ...),
// prints it for people and decides whether the run passed.
//
// A run fails when a test fails, a package fails to build or set up, a test binary
// panics or dies while a test runs (the test then has no result), a package never
// reports a result (the stream ended early), or the stream holds no package at all.
// A skipped test is listed at the end with its reason; in CI mode it also fails the
// run unless its full name is on the allow-list with a reason, so a test that quietly
// stops running on the CI machine cannot pass for a test that ran.
package testcheck

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Event is one line of `go test -json` output (see `go doc cmd/test2json`).
// ImportPath and FailedBuild come with the build events Go 1.24 added: build-output
// and build-fail lines carry ImportPath, and a package that could not be built ends
// with Action "fail" and FailedBuild naming the ImportPath whose build failed.
type Event struct {
	Time        time.Time `json:",omitempty"`
	Action      string
	Package     string  `json:",omitempty"`
	Test        string  `json:",omitempty"`
	Elapsed     float64 `json:",omitempty"` // seconds
	Output      string  `json:",omitempty"`
	FailedBuild string  `json:",omitempty"`
	ImportPath  string  `json:",omitempty"`
}

// Allowlist maps a test's full name, "<import path>.<test name>" with subtests
// joined by "/" as `go test` names them (for example
// "github.com/skyfleet/skyfleet/gokrazy/growperm.TestGrowFilesystemOnLoopDevice"),
// to the reason it may skip in CI.
type Allowlist map[string]string

// allowName is the shape of an allow-list name: an import path, a dot, and a test,
// fuzz target or example name, optionally with subtests.
var allowName = regexp.MustCompile(`^[^\s.][^\s]*\.(Test|Fuzz|Example)[^\s.]*$`)

// MaxAllowlist caps the allow-list file read by ParseAllowlist, in bytes: the list is
// meant to stay a handful of lines.
const MaxAllowlist = 64 << 10

// ParseAllowlist reads an allow-list: one test per line, its full name (see
// Allowlist), then white space and the reason it may skip in CI. Blank lines and
// lines starting with '#' are ignored. It fails closed: a name without a reason, a
// malformed name, a name listed twice or a list over MaxAllowlist bytes is an error
// naming the line, and no list is returned.
func ParseAllowlist(r io.Reader) (Allowlist, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxAllowlist+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxAllowlist {
		return nil, fmt.Errorf("allow-list is over %d bytes", MaxAllowlist)
	}
	a := Allowlist{}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, reason := line, ""
		if j := strings.IndexAny(line, " \t"); j >= 0 {
			name, reason = line[:j], strings.TrimSpace(line[j:])
		}
		if !allowName.MatchString(name) {
			return nil, fmt.Errorf("allow-list line %d: %q is not <import path>.<TestName>", i+1, name)
		}
		if reason == "" {
			return nil, fmt.Errorf("allow-list line %d: %s has no reason", i+1, name)
		}
		if _, dup := a[name]; dup {
			return nil, fmt.Errorf("allow-list line %d: %s is listed twice", i+1, name)
		}
		a[name] = reason
	}
	return a, nil
}

// LoadAllowlist reads the allow-list file at path with ParseAllowlist.
func LoadAllowlist(path string) (Allowlist, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	a, err := ParseAllowlist(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

// Options says how Check judges and prints a stream.
type Options struct {
	// CI makes a skipped test that is not on Allowed fail the run.
	CI bool
	// Allowed lists the tests that may skip in CI, with the reason.
	Allowed Allowlist
	// Verbose echoes every output line as it arrives (go test -v's progress, for a
	// long tier whose log should show what runs now). Otherwise only failing tests'
	// output, skip reasons and a line per package are printed.
	Verbose bool
}

// Skip is one skipped test.
type Skip struct {
	Name    string // full name, "<import path>.<test name>"
	Reason  string // the test's own output (its t.Skip message), trimmed
	Allowed string // the allow-list's reason; "" when the test is not listed
}

// Result is what Check found. Failures says, one line each, why the run failed;
// the run passed when it is empty.
type Result struct {
	Packages, NoTestFiles   int // packages with a result; of those, without test files
	Passed, Failed, Skipped int // tests (subtests included)
	Failures                []string
	Skips                   []Skip
	NotJSON                 int // lines that were not events, printed as they came
	BuildFailures, Panics   int // build-fail events; packages whose output shows a panic
}

// OK reports whether the run passed.
func (r *Result) OK() bool { return len(r.Failures) == 0 }

// MaxTestOutput caps the output kept per running test, in bytes; beyond it the
// oldest lines are dropped (a failure's cause is usually near its end) and the
// printed log says how much was dropped. Output of a test that passed is dropped as
// soon as it passes.
const MaxTestOutput = 1 << 20

// MaxLine caps one stream line, in bytes. A longer line (a test printing megabytes
// without a newline) is cut and counted, never held whole.
const MaxLine = 4 << 20

type testState struct {
	out     []string
	size    int
	dropped int
}

func (t *testState) add(s string) {
	t.out = append(t.out, s)
	t.size += len(s)
	for t.size > MaxTestOutput && len(t.out) > 1 {
		t.size -= len(t.out[0])
		t.dropped += len(t.out[0])
		t.out = t.out[1:]
	}
}

func (t *testState) text() string {
	s := strings.Join(t.out, "")
	if t.dropped > 0 {
		s = fmt.Sprintf("[... %d bytes of earlier output dropped ...]\n", t.dropped) + s
	}
	return s
}

type pkgState struct {
	running                 map[string]*testState // tests started and not yet ended
	order                   []string              // running tests, in start order
	out                     testState             // package-level output
	passed, failed, skipped int
	panicAt                 string // the first panic line seen and the test it came in; "" if none
}

type checker struct {
	w      io.Writer
	opt    Options
	res    Result
	pkgs   map[string]*pkgState // packages started and not yet ended
	pkgOrd []string
	builds map[string]*testState // build output by ImportPath, until printed
	// buildFailed holds the ImportPaths whose build-fail was counted, so that the
	// packages naming one in FailedBuild do not count it again.
	buildFailed map[string]bool
}

// Check reads a `go test -json` stream from r to its end, writes a readable account
// of it to w and returns what it found. The error is only for reading r or writing
// w; a failing run is a Result whose OK is false.
func Check(r io.Reader, w io.Writer, opt Options) (*Result, error) {
	c := &checker{w: w, opt: opt, pkgs: map[string]*pkgState{}, builds: map[string]*testState{}, buildFailed: map[string]bool{}}
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := readLine(br)
		if len(line) > 0 {
			c.line(line)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return &c.res, err
		}
	}
	c.finish()
	return &c.res, nil
}

// readLine returns the next line without its newline, cut at MaxLine bytes.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		if len(line)+len(frag) <= MaxLine {
			line = append(line, frag...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		return bytes.TrimRight(line, "\r\n"), err
	}
}

func (c *checker) printf(format string, a ...any) { fmt.Fprintf(c.w, format, a...) }

func (c *checker) fail(format string, a ...any) {
	c.res.Failures = append(c.res.Failures, fmt.Sprintf(format, a...))
}

func (c *checker) line(b []byte) {
	var e Event
	if len(b) == 0 || b[0] != '{' || json.Unmarshal(b, &e) != nil || e.Action == "" {
		// Not an event: go test writes no such line on stdout, but a wrapper might.
		// Shown as it came, so nothing is hidden.
		c.res.NotJSON++
		c.printf("%s\n", b)
		return
	}
	switch e.Action {
	case "build-output":
		c.build(e.ImportPath).add(e.Output)
		return
	case "build-fail":
		c.res.BuildFailures++
		c.printf("--- BUILD FAILED: %s\n%s", e.ImportPath, indent(c.build(e.ImportPath).text()))
		delete(c.builds, e.ImportPath)
		if !c.buildFailed[e.ImportPath] {
			c.buildFailed[e.ImportPath] = true
			c.fail("FAIL %s: build failed", e.ImportPath)
		}
		return
	}
	if e.Package == "" {
		c.res.NotJSON++
		c.printf("%s\n", b)
		return
	}
	p := c.pkg(e.Package)
	if e.Action == "output" && p.panicAt == "" && isPanic(e.Output) {
		p.panicAt = strings.TrimSpace(e.Output)
		if e.Test != "" {
			p.panicAt = e.Test + ": " + p.panicAt
		}
	}
	if e.Test == "" {
		c.pkgEvent(p, e)
		return
	}
	name := e.Package + "." + e.Test
	switch e.Action {
	case "run":
		if _, ok := p.running[e.Test]; !ok {
			p.running[e.Test] = &testState{}
			p.order = append(p.order, e.Test)
		}
	case "output":
		c.echo(e.Output)
		c.test(p, e.Test).add(e.Output)
	case "pass":
		p.passed++
		c.res.Passed++
		c.end(p, e.Test)
	case "fail":
		p.failed++
		c.res.Failed++
		c.fail("FAIL %s (%.2fs)", name, e.Elapsed)
		if !c.opt.Verbose {
			c.printf("--- FAIL: %s (%.2fs)\n%s", name, e.Elapsed, indent(c.test(p, e.Test).text()))
		}
		c.end(p, e.Test)
	case "skip":
		p.skipped++
		c.res.Skipped++
		s := Skip{Name: name, Reason: skipReason(c.test(p, e.Test).out), Allowed: c.opt.Allowed[name]}
		c.res.Skips = append(c.res.Skips, s)
		if c.opt.CI && s.Allowed == "" {
			c.fail("SKIP %s: skipped in CI and not on the allow-list (%s)", name, s.Reason)
		}
		c.end(p, e.Test)
	}
	// start, pause, cont, bench: nothing to keep.
}

// echo prints output as it arrives in verbose mode.
func (c *checker) echo(s string) {
	if c.opt.Verbose {
		c.printf("%s", s)
	}
}

func (c *checker) build(importPath string) *testState {
	b, ok := c.builds[importPath]
	if !ok {
		b = &testState{}
		c.builds[importPath] = b
	}
	return b
}

func (c *checker) pkg(name string) *pkgState {
	p, ok := c.pkgs[name]
	if !ok {
		p = &pkgState{running: map[string]*testState{}}
		c.pkgs[name] = p
		c.pkgOrd = append(c.pkgOrd, name)
	}
	return p
}

// test returns a running test's state, making it if output came before its run line.
func (c *checker) test(p *pkgState, name string) *testState {
	t, ok := p.running[name]
	if !ok {
		t = &testState{}
		p.running[name] = t
		p.order = append(p.order, name)
	}
	return t
}

func (c *checker) end(p *pkgState, name string) {
	delete(p.running, name)
}

func (c *checker) pkgEvent(p *pkgState, e Event) {
	switch e.Action {
	case "output":
		c.echo(e.Output)
		p.out.add(e.Output)
		return
	case "pass", "fail", "skip":
	default:
		return
	}
	c.res.Packages++
	defer c.forget(e.Package)
	// Tests still running when their package ended never got a result: the binary
	// panicked in another goroutine, timed out, or exited.
	var orphans []string
	for _, name := range p.order {
		if t, ok := p.running[name]; ok {
			orphans = append(orphans, name)
			c.fail("FAIL %s.%s: no result (the test binary died while it ran)", e.Package, name)
			if !c.opt.Verbose {
				c.printf("--- NO RESULT: %s.%s\n%s", e.Package, name, indent(t.text()))
			}
		}
	}
	counts := fmt.Sprintf("%d passed", p.passed)
	if p.failed > 0 {
		counts += fmt.Sprintf(", %d failed", p.failed)
	}
	if p.skipped > 0 {
		counts += fmt.Sprintf(", %d skipped", p.skipped)
	}
	if len(orphans) > 0 {
		counts += fmt.Sprintf(", %d without a result", len(orphans))
	}
	switch {
	case e.Action == "skip":
		c.res.NoTestFiles++
		c.printf("?    %s [no test files]\n", e.Package)
	case e.Action == "pass" && p.panicAt == "" && len(orphans) == 0:
		c.printf("ok   %s %.1fs (%s)\n", e.Package, e.Elapsed, counts)
	case e.FailedBuild != "":
		c.printf("FAIL %s [build failed: %s]\n", e.Package, e.FailedBuild)
		if !c.buildFailed[e.FailedBuild] {
			c.buildFailed[e.FailedBuild] = true
			c.fail("FAIL %s: build failed (%s)", e.Package, e.FailedBuild)
		}
	default:
		if !c.opt.Verbose {
			if out := packageOutput(p.out.text()); out != "" {
				c.printf("--- package output: %s\n%s", e.Package, indent(out))
			}
		}
		why := ""
		switch {
		case p.panicAt != "":
			c.res.Panics++
			why = "panicked (" + p.panicAt + ")"
		case p.failed == 0 && len(orphans) == 0:
			why = "failed outside any test (TestMain, init or exit status)"
		}
		if why != "" {
			c.fail("FAIL %s: %s", e.Package, why)
			counts += "; " + why
		}
		c.printf("FAIL %s %.1fs (%s)\n", e.Package, e.Elapsed, counts)
	}
}

// forget drops an ended package's state: only the counts in Result stay.
func (c *checker) forget(name string) {
	delete(c.pkgs, name)
	for i, n := range c.pkgOrd {
		if n == name {
			c.pkgOrd = append(c.pkgOrd[:i], c.pkgOrd[i+1:]...)
			break
		}
	}
}

// finish reports packages the stream left without a result, and the skips.
func (c *checker) finish() {
	for _, name := range c.pkgOrd {
		p := c.pkgs[name]
		c.fail("FAIL %s: no result (the stream ended before the package did)", name)
		if c.opt.Verbose {
			continue
		}
		c.printf("--- NO RESULT: %s\n", name)
		for _, t := range p.order {
			if s, ok := p.running[t]; ok {
				c.printf("--- running: %s.%s\n%s", name, t, indent(s.text()))
			}
		}
		if out := p.out.text(); out != "" {
			c.printf("--- package output: %s\n%s", name, indent(out))
		}
	}
	c.pkgOrd, c.pkgs = nil, map[string]*pkgState{}
	if c.res.Packages == 0 && c.res.BuildFailures == 0 {
		c.fail("no package reported a result")
	}
	if len(c.res.Skips) > 0 {
		sort.Slice(c.res.Skips, func(i, j int) bool { return c.res.Skips[i].Name < c.res.Skips[j].Name })
		c.printf("skipped tests (%d):\n", len(c.res.Skips))
		for _, s := range c.res.Skips {
			verdict := "not on the allow-list"
			switch {
			case s.Allowed != "":
				verdict = "allowed: " + s.Allowed
			case c.opt.CI:
				verdict = "NOT ALLOWED in CI: add it to the allow-list with a reason, or make it run"
			}
			c.printf("  SKIP %s: %s\n       %s\n", s.Name, s.Reason, verdict)
		}
	}
	if len(c.res.Failures) > 0 {
		c.printf("failures (%d):\n", len(c.res.Failures))
		for _, f := range c.res.Failures {
			c.printf("  %s\n", f)
		}
	}
}

// isPanic reports whether an output line starts a Go panic or fatal runtime error
// (both begin in the first column; a test's own log lines are indented).
func isPanic(s string) bool {
	return strings.HasPrefix(s, "panic: ") || strings.HasPrefix(s, "fatal error: ")
}

// skipReason is a skipped test's output without go test's own framing lines.
func skipReason(out []string) string {
	var parts []string
	for _, l := range out {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		parts = append(parts, t)
	}
	s := strings.Join(parts, " | ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	if s == "" {
		s = "(no reason given)"
	}
	return s
}

// packageOutput is a failed package's own output without the PASS/FAIL/ok lines
// go test frames it with.
func packageOutput(s string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		t := strings.TrimSpace(l)
		if t == "" || t == "PASS" || t == "FAIL" || strings.HasPrefix(t, "FAIL\t") || strings.HasPrefix(t, "ok  \t") {
			continue
		}
		b.WriteString(l)
	}
	return b.String()
}

func indent(s string) string {
	if s == "" {
		return ""
	}
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		if l == "" {
			continue
		}
		b.WriteString("    ")
		b.WriteString(l)
		if !strings.HasSuffix(l, "\n") {
			b.WriteString("\n")
		}
	}
	return b.String()
}

// Summary is one line for the end of a log: counts and the verdict.
func (r *Result) Summary() string {
	verdict := "PASS"
	if !r.OK() {
		verdict = fmt.Sprintf("FAIL (%d problems)", len(r.Failures))
	}
	return fmt.Sprintf("%d packages (%d without tests): %d tests passed, %d failed, %d skipped: %s",
		r.Packages, r.NoTestFiles, r.Passed, r.Failed, r.Skipped, verdict)
}
