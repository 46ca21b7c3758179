package boltdb

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// No store opens bbolt around this package: every bolt.Open of the module
// outside internal/boltdb is a store that a damaged file would crash.
func TestNoPlainBoltOpen(t *testing.T) {
	root := filepath.Join("..", "..")
	self, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	var bad []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "testdata", "vendor", "node_modules":
				return filepath.SkipDir
			}
			if abs, _ := filepath.Abs(p); abs == self {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		if calls := boltOpens(p, b); len(calls) > 0 {
			bad = append(bad, calls...)
		}
		return nil
	})
	if len(bad) > 0 {
		t.Errorf("bbolt opened around internal/boltdb (use boltdb.Open):\n%s", strings.Join(bad, "\n"))
	}
}

// boltOpens lists the calls of go.etcd.io/bbolt's Open in a Go file.
func boltOpens(path string, src []byte) []string {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, parser.SkipObjectResolution)
	if err != nil {
		return nil
	}
	local := ""
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == "go.etcd.io/bbolt" {
			local = "bbolt"
			if imp.Name != nil {
				local = imp.Name.Name
			}
		}
	}
	if local == "" {
		return nil
	}
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		if s, ok := n.(*ast.SelectorExpr); ok && s.Sel.Name == "Open" {
			if id, ok := s.X.(*ast.Ident); ok && id.Name == local {
				out = append(out, fmt.Sprint(fset.Position(s.Pos())))
			}
		}
		return true
	})
	return out
}
