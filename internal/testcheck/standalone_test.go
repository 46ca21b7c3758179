package testcheck

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The repository stands alone: no code, script, test or document may reach for
// files beside the clone (a team folder next to it), so a
// clone with nothing next to it passes make test. Tests read testdata/ instead.
func TestNoPathsOutsideRepository(t *testing.T) {
	root := filepath.Join("..", "..")
	// Spelt in pieces, so that this file does not itself hold the paths it
	// looks for (a plain search of the tree would then find it).
	sh := "sha" + "red"
	forbidden := []string{"../" + sh, "/work/" + sh, sh + "/testdata", sh + "/DESIGN.md", sh + "/seeds"}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if name == ".git" || name == "artifacts" || name == "bin" || (name == "testdata" && path != filepath.Join(root, "testdata")) {
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(name) {
		case ".go", ".sh", ".md", ".toml", ".js", ".html", ".yml", ".yaml":
		default:
			if name != "Makefile" && name != "run" {
				return nil
			}
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, f := range forbidden {
			if strings.Contains(string(b), f) {
				t.Errorf("%s refers to %q, outside the repository", path, f)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
