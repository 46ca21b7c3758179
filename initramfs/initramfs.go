// Package initramfs writes a board's boot archive: a gzip-compressed newc cpio holding
// skyfleetd as /init, the operator's tools under /bbin, the kernel modules the board
// loads (with their modules.dep closure) and the few directories and device nodes PID 1
// needs before devtmpfs is mounted. The cpio records are written with u-root's pkg/cpio.
package initramfs

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/u-root/u-root/pkg/cpio"
)

// Spec is what goes into one archive.
type Spec struct {
	// Init is the static skyfleetd binary for the target, written as /init (mode 0755).
	Init []byte
	// Tools are extra executables keyed by absolute archive path, e.g. "/bbin/bb".
	Tools map[string][]byte
	// Symlinks maps archive paths to targets, e.g. "/bbin/ls" -> "bb".
	Symlinks map[string]string
	// Files are data files (mode 0644) keyed by absolute archive path, e.g. the Wi-Fi
	// firmware at "/lib/firmware/brcm/brcmfmac43455-sdio.bin"; parent directories are
	// created. A path that Init, Tools or the modules also use is an error.
	Files map[string][]byte
	// KernelRelease is the kernel's `uname -r`, e.g. "6.12.47-v8"; modules go under
	// /lib/modules/<KernelRelease>/.
	KernelRelease string
	// ModulesDir is the host directory holding that release's modules.dep and kernel/ tree.
	ModulesDir string
	// Modules names the modules to include (dash or underscore, no .ko); each pulls in
	// its dependencies from modules.dep.
	Modules []string
}

// Stats describes a written archive.
type Stats struct {
	// Files is the number of regular files, Bytes their uncompressed size.
	Files, Bytes int
	// Modules lists the .ko paths included, relative to ModulesDir, sorted.
	Modules []string
}

// dirs exist in every archive: mount points and the places PID 1 writes to early.
var dirs = []string{"bin", "bbin", "boot", "dev", "etc", "lib", "perm", "proc", "run", "sys", "tmp", "var"}

// Write writes the archive for s to w as gzip(newc cpio). Records carry a zero mtime and
// owner so the same inputs give the same bytes.
func Write(w io.Writer, s Spec) (Stats, error) {
	var st Stats
	if len(s.Init) == 0 {
		return st, fmt.Errorf("initramfs: no init binary")
	}
	var recs []cpio.Record
	for _, d := range dirs {
		recs = append(recs, cpio.Directory(d, 0o755))
	}
	// The kernel opens /dev/console for PID 1's stdio before anything is mounted.
	recs = append(recs, cpio.CharDev("dev/console", 0o600, 5, 1), cpio.CharDev("dev/null", 0o666, 1, 3))
	seen := map[string]bool{}
	var dup []string
	file := func(name string, data []byte, perm uint64) {
		name = strings.TrimPrefix(name, "/")
		if seen[name] {
			dup = append(dup, name)
		}
		seen[name] = true
		recs = append(recs, cpio.StaticRecord(data, cpio.Info{Name: name, Mode: cpio.S_IFREG | perm}))
		st.Files++
		st.Bytes += len(data)
	}
	file("init", s.Init, 0o755)
	file("etc/hostname", []byte("skyfleet\n"), 0o644)
	file("etc/passwd", []byte("root:x:0:0:root:/perm/home:/bbin/elvish\n"), 0o644)
	file("etc/group", []byte("root:x:0:\n"), 0o644)
	for _, name := range sortedKeys(s.Tools) {
		file(name, s.Tools[name], 0o755)
	}
	for _, name := range sortedKeys(s.Files) {
		if !path.IsAbs(name) || path.Clean(name) != name {
			return st, fmt.Errorf("initramfs: file %q: want a clean absolute path", name)
		}
		file(name, s.Files[name], 0o644)
	}
	for _, name := range sortedKeys(s.Symlinks) {
		recs = append(recs, cpio.Symlink(strings.TrimPrefix(name, "/"), s.Symlinks[name]))
	}
	if len(s.Modules) > 0 {
		mods, err := moduleClosure(s.ModulesDir, s.Modules)
		if err != nil {
			return st, err
		}
		st.Modules = mods
		base := path.Join("lib/modules", s.KernelRelease)
		// The index files let kmodule resolve names and dependencies on the device.
		meta := []string{"modules.dep", "modules.alias", "modules.builtin", "modules.builtin.modinfo", "modules.order", "modules.softdep"}
		for _, rel := range append(meta, mods...) {
			data, err := os.ReadFile(filepath.Join(s.ModulesDir, rel))
			if os.IsNotExist(err) && !strings.HasSuffix(rel, ".ko") {
				continue
			}
			if err != nil {
				return st, fmt.Errorf("initramfs: module file: %w", err)
			}
			file(path.Join(base, rel), data, 0o644)
		}
	}
	if len(dup) > 0 {
		return st, fmt.Errorf("initramfs: %s given twice", strings.Join(dup, ", "))
	}
	for i := range recs {
		recs[i] = cpio.MakeReproducible(recs[i])
	}
	gz, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return st, err
	}
	cw := cpio.Newc.Writer(gz)
	if err := cpio.WriteRecordsAndDirs(cw, recs); err != nil {
		return st, fmt.Errorf("initramfs: write: %w", err)
	}
	if err := cpio.WriteTrailer(cw); err != nil {
		return st, fmt.Errorf("initramfs: trailer: %w", err)
	}
	if err := gz.Close(); err != nil {
		return st, err
	}
	return st, nil
}

// moduleClosure resolves module names to .ko paths (relative to dir) plus every
// dependency named in dir/modules.dep (format: "path.ko: dep.ko dep.ko"), sorted.
func moduleClosure(dir string, names []string) ([]string, error) {
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("initramfs: %w", err)
	}
	defer f.Close()
	deps := map[string][]string{}
	byName := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		mod, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		deps[mod] = strings.Fields(rest)
		byName[ModuleName(mod)] = mod
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("initramfs: modules.dep: %w", err)
	}
	seen := map[string]bool{}
	var walk func(string)
	walk = func(m string) {
		if seen[m] {
			return
		}
		seen[m] = true
		for _, d := range deps[m] {
			walk(d)
		}
	}
	var missing []string
	for _, n := range names {
		m, ok := byName[ModuleName(n)]
		if !ok {
			missing = append(missing, n)
			continue
		}
		walk(m)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("initramfs: modules not in %s/modules.dep: %s", dir, strings.Join(missing, ", "))
	}
	out := make([]string, 0, len(seen))
	for m := range seen {
		out = append(out, m)
	}
	sort.Strings(out)
	return out, nil
}

// ModuleName normalises a module file path or name the way the kernel does: base name
// without .ko (and any compression suffix), dashes as underscores.
func ModuleName(p string) string {
	b := path.Base(p)
	for _, suf := range []string{".xz", ".gz", ".zst"} {
		b = strings.TrimSuffix(b, suf)
	}
	b = strings.TrimSuffix(b, ".ko")
	return strings.ReplaceAll(b, "-", "_")
}

// List reads a gzip(newc cpio) archive and returns every record name, for inspection
// and tests. Errors name what was malformed.
func List(r io.Reader) ([]string, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("initramfs: not gzip: %w", err)
	}
	data, err := io.ReadAll(gz)
	if err != nil {
		return nil, fmt.Errorf("initramfs: gzip: %w", err)
	}
	var names []string
	err = cpio.ForEachRecord(cpio.Newc.Reader(bytes.NewReader(data)), func(r cpio.Record) error {
		names = append(names, r.Name)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("initramfs: cpio: %w", err)
	}
	return names, nil
}

func sortedKeys[V any](m map[string]V) []string {
	k := make([]string, 0, len(m))
	for n := range m {
		k = append(k, n)
	}
	sort.Strings(k)
	return k
}
