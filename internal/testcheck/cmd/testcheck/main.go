// Command testcheck runs a `go test -json` command (or reads such a stream on its
// standard input), prints the run for people and exits non-zero when it did not
// pass: a failing test, a build failure, a panic, a test or package without a result,
// a command that failed without saying why in its stream, or, in CI mode, a skipped
// test that is not on the allow-list. See package testcheck.
//
// Usage:
//
//	testcheck [-allow FILE] [-ci] [-v] [-- go test -json ARGS...]
//
// CI mode is on when -ci is given or SKYFLEET_CI=1 is in the environment. Exit
// status: 0 passed, 1 failed, 2 usage or allow-list error.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"

	"github.com/skyfleet/skyfleet/internal/testcheck"
)

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("testcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	allow := fs.String("allow", "", "allow-list `file`: tests that may skip in CI, each with its reason")
	ci := fs.Bool("ci", os.Getenv("SKYFLEET_CI") == "1", "CI mode: a skipped test not on the allow-list fails the run (default from SKYFLEET_CI=1)")
	verbose := fs.Bool("v", false, "echo every output line as it arrives (go test -v's progress)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	opt := testcheck.Options{CI: *ci, Verbose: *verbose}
	if *allow != "" {
		a, err := testcheck.LoadAllowlist(*allow)
		if err != nil {
			fmt.Fprintln(stderr, "testcheck:", err)
			return 2
		}
		opt.Allowed = a
	}
	in, wait := stdin, func() error { return nil }
	var cmdline []string
	if fs.NArg() > 0 {
		cmdline = fs.Args()
		cmd := exec.Command(cmdline[0], cmdline[1:]...)
		cmd.Stdin, cmd.Stderr = nil, stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			fmt.Fprintln(stderr, "testcheck:", err)
			return 2
		}
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(stderr, "testcheck:", err)
			return 2
		}
		in, wait = out, cmd.Wait
	}
	res, err := testcheck.Check(in, stdout, opt)
	if err != nil {
		fmt.Fprintln(stderr, "testcheck: reading the stream:", err)
		io.Copy(io.Discard, in) // let the command finish rather than block on a full pipe
		wait()
		return 1
	}
	if err := wait(); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) || res.OK() {
			// go test exits non-zero for every failure it reports; one the stream
			// does not show (a bad flag, no packages matched) still fails the run.
			res.Failures = append(res.Failures, fmt.Sprintf("%q: %v, with no failure in its output (see its stderr above)", cmdline, err))
			fmt.Fprintln(stdout, "testcheck:", res.Failures[len(res.Failures)-1])
		}
	}
	mode := ""
	if opt.CI {
		mode = " [CI: skips must be on the allow-list]"
	}
	fmt.Fprintf(stdout, "testcheck: %s%s\n", res.Summary(), mode)
	if !res.OK() {
		return 1
	}
	return 0
}
