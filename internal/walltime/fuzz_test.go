package walltime

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseFloor: the floor file is the one thing this package parses from
// outside bytes (a power cut or a bad SD card writes anything). Any input
// either parses to a floor within 2026..2100 that writes back as the same
// bytes (less an optional newline), or is an error; and Open on such a file
// never fails and never starts from a floor the parser refused.
func FuzzParseFloor(f *testing.F) {
	for _, s := range []string{"1782907200\n", "1782907200", "", "\n", "-1\n", "0\n", "01782907200\n",
		"+1782907200", "1e9", "99999999999999999999", "1782907200\n\n", " 1782907200", "\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ft, err := parseFloor(b)
		if err == nil {
			if ft.Before(minTime) || ft.After(maxTime) || ft.Nanosecond() != 0 {
				t.Fatalf("%q parsed to %v", b, ft)
			}
			if got, want := formatFloor(ft), append(bytes.TrimSuffix(b, []byte("\n")), '\n'); !bytes.Equal(got, want) {
				t.Fatalf("%q parsed to %v, which writes as %q", b, ft, got)
			}
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, floorName), b, 0o600); err != nil {
			t.Fatal(err)
		}
		w := newWorld(t0)
		c, err2 := Open(dir, Options{Now: w.Now, Logf: func(string, ...any) {}})
		if err2 != nil {
			t.Fatalf("Open: %v", err2)
		}
		r := c.Now()
		switch {
		case err == nil && (r.Source != SourcePersisted || !r.Time.Equal(ft)):
			t.Fatalf("valid floor %q: reading %+v", b, r)
		case err != nil && (r.Source != SourceUnknown || c.Stats().FloorError == "" || !r.Time.Equal(boot)):
			t.Fatalf("bad floor %q: reading %+v, stats %+v", b, r, c.Stats())
		}
	})
}
