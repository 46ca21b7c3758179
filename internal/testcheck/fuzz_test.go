package testcheck

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// FuzzCheck feeds arbitrary streams to Check: it must not panic or fail to read,
// must print output bounded by its input, must judge the same bytes the same way
// twice, and must never call a stream a pass unless some package in it ended.
func FuzzCheck(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false, false)
		f.Add(b, true, true)
	}
	f.Add([]byte("{\"Action\":\"skip\",\"Package\":\"p\",\"Test\":\"T\"}\n{\"Action\":\"pass\",\"Package\":\"p\"}\n"), true, false)
	f.Add([]byte("not json\n{}\n{\"Action\":\"\"}\n"), false, false)
	f.Fuzz(func(t *testing.T, in []byte, ci, verbose bool) {
		opt := Options{CI: ci, Verbose: verbose, Allowed: Allowlist{"p.TestAllowed": "fuzz"}}
		var out1, out2 bytes.Buffer
		r1, err := Check(bytes.NewReader(in), &out1, opt)
		if err != nil {
			t.Fatal(err)
		}
		if limit := 8*len(in) + 4096; out1.Len() > limit {
			t.Fatalf("%d bytes of output for %d of input", out1.Len(), len(in))
		}
		r2, _ := Check(bytes.NewReader(in), &out2, opt)
		if out1.String() != out2.String() || r1.Summary() != r2.Summary() {
			t.Fatalf("two checks of one stream differ:\n%s\n---\n%s", out1.String(), out2.String())
		}
		if r1.OK() {
			if r1.Packages == 0 || r1.Failed != 0 || r1.BuildFailures != 0 {
				t.Fatalf("passed with %+v", r1)
			}
			if !bytes.Contains(in, []byte(`"pass"`)) && !bytes.Contains(in, []byte(`"skip"`)) {
				t.Fatalf("passed a stream in which nothing ended: %q", in)
			}
			if ci {
				for _, s := range r1.Skips {
					if s.Allowed == "" {
						t.Fatalf("CI passed an unlisted skip %s", s.Name)
					}
				}
			}
		}
	})
}

// FuzzParseAllowlist: a list that parses has only well-formed names with reasons,
// and writing it out again parses to the same list.
func FuzzParseAllowlist(f *testing.F) {
	if b, err := os.ReadFile("../../.ci/allowed-skips"); err == nil {
		f.Add(string(b))
	}
	f.Add("example.com/p.TestA reason\n# c\n\nexample.com/p.TestB/sub\tother reason\n")
	f.Add("example.com/p.TestA\n")
	f.Add("TestA x\n")
	f.Fuzz(func(t *testing.T, in string) {
		a, err := ParseAllowlist(strings.NewReader(in))
		if err != nil {
			return
		}
		var names []string
		for name, reason := range a {
			if !allowName.MatchString(name) || reason == "" || reason != strings.TrimSpace(reason) || strings.Contains(reason, "\n") {
				t.Fatalf("accepted %q: %q", name, reason)
			}
			names = append(names, name)
		}
		sort.Strings(names)
		var b strings.Builder
		for _, n := range names {
			b.WriteString(n + " " + a[n] + "\n")
		}
		again, err := ParseAllowlist(strings.NewReader(b.String()))
		if err != nil || len(again) != len(a) {
			t.Fatalf("round trip: %v, %d entries of %d", err, len(again), len(a))
		}
		for n, r := range a {
			if again[n] != r {
				t.Fatalf("round trip: %s: %q became %q", n, r, again[n])
			}
		}
	})
}
