package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func streamFile(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "testdata", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// replay is a command that prints a recorded stream and exits with code.
func replay(t *testing.T, name, code string) []string {
	return []string{"--", "sh", "-c", `cat "$0"; exit $1`, streamFile(t, name), code}
}

func TestRunCommand(t *testing.T) {
	t.Setenv("SKYFLEET_CI", "")
	var out, errb bytes.Buffer
	if code := run(replay(t, "pass", "0"), nil, &out, &errb); code != 0 {
		t.Fatalf("passing stream, exit 0: code %d\n%s%s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "4 tests passed") {
		t.Errorf("no summary:\n%s", out.String())
	}
	// go test failing without a failure in its stream (a bad flag, no package
	// matched) still fails.
	out.Reset()
	if code := run(replay(t, "pass", "2"), nil, &out, &errb); code != 1 || !strings.Contains(out.String(), "with no failure in its output") {
		t.Errorf("passing stream, exit 2: code %d\n%s", code, out.String())
	}
	out.Reset()
	if code := run(replay(t, "fail", "1"), nil, &out, &errb); code != 1 || strings.Contains(out.String(), "with no failure in its output") {
		t.Errorf("failing stream: code %d\n%s", code, out.String())
	}
}

func TestRunCIFromEnvironment(t *testing.T) {
	var out bytes.Buffer
	t.Setenv("SKYFLEET_CI", "")
	if code := run(replay(t, "skip", "0"), nil, &out, &out); code != 0 {
		t.Fatalf("skips outside CI: code %d\n%s", code, out.String())
	}
	t.Setenv("SKYFLEET_CI", "1")
	out.Reset()
	if code := run(replay(t, "skip", "0"), nil, &out, &out); code != 1 {
		t.Fatalf("unlisted skips in CI: code %d\n%s", code, out.String())
	}
	list := filepath.Join(t.TempDir(), "allowed")
	os.WriteFile(list, []byte("example.com/tc/skip.TestNeedsCap cap\nexample.com/tc/skip.TestNeedsRoot root\nexample.com/tc/skip.TestParent/child child\n"), 0o644)
	out.Reset()
	if code := run(append([]string{"-allow", list}, replay(t, "skip", "0")...), nil, &out, &out); code != 0 {
		t.Fatalf("listed skips in CI: code %d\n%s", code, out.String())
	}
}

func TestRunStdinAndBadList(t *testing.T) {
	t.Setenv("SKYFLEET_CI", "")
	b, err := os.ReadFile(streamFile(t, "builderr"))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if code := run(nil, bytes.NewReader(b), &out, &out); code != 1 {
		t.Errorf("build error on stdin: code %d\n%s", code, out.String())
	}
	list := filepath.Join(t.TempDir(), "allowed")
	os.WriteFile(list, []byte("example.com/p.TestA\n"), 0o644)
	if code := run([]string{"-allow", list}, strings.NewReader(""), &out, &out); code != 2 || !strings.Contains(out.String(), "has no reason") {
		t.Errorf("list without a reason: code %d\n%s", code, out.String())
	}
	if code := run([]string{"-allow", filepath.Join(t.TempDir(), "missing")}, strings.NewReader(""), &out, &out); code != 2 {
		t.Errorf("missing list: code %d", code)
	}
}
