package slot

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/skyfleet/skyfleet/board"
	"github.com/skyfleet/skyfleet/services/update/bundle"
)

var releaseKey = secp256k1.PrivKeyFromBytes(bytes.Repeat([]byte{7}, 32)) // a test vector, not a secret

// card makes a boot partition as skyfleet image writes it, running slot a, with
// an old release in b (and a file the new one does not have).
func card(t *testing.T) (Card, board.Profile) {
	t.Helper()
	p, err := board.Get("rpi3b")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := map[string]string{
		"config.txt":    p.ConfigTXT("a", ""),
		"a/vmlinuz":     "running kernel",
		"a/cmdline.txt": p.CmdlineTXT("a"),
		"b/vmlinuz":     "old kernel",
		"b/stale.dtbo":  "left from an old release",
		"b/VERSION":     "0.9\n",
	}
	for name, c := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return Card{Dir: dir}, p
}

func newBundle(t *testing.T, p board.Profile) []byte {
	t.Helper()
	files := map[string]string{
		"vmlinuz":             "new kernel",
		"overlays/x.dtbo":     "overlay",
		"initrd.gz":           strings.Repeat("initramfs", 1000),
		"VERSION":             "1.0\n",
		"cmdline.a.txt":       p.CmdlineTXT("a"),
		"cmdline.b.txt":       p.CmdlineTXT("b"),
		"bcm2710-rpi-3-b.dtb": "dtb",
	}
	var srcs []bundle.Source
	for n, c := range files {
		srcs = append(srcs, bundle.Source{Name: n, Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(c)), nil }})
	}
	var buf bytes.Buffer
	if _, err := bundle.Write(&buf, releaseKey, bundle.Header{Board: p.Name, Version: "1.0", Created: time.Unix(1, 0)}, srcs); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func reader(t *testing.T, b []byte, p board.Profile) *bundle.Reader {
	t.Helper()
	var k [bundle.KeyLen]byte
	copy(k[:], releaseKey.PubKey().SerializeCompressed())
	r, err := bundle.NewReader(bytes.NewReader(b), bundle.Policy{Keys: [][bundle.KeyLen]byte{k}, Board: p.Name})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// tree lists a directory's files with their contents.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := os.ReadFile(path)
		rel, _ := filepath.Rel(dir, path)
		out[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	return out
}

func TestInstall(t *testing.T) {
	c, p := card(t)
	// A power cut during an earlier install left its folders behind.
	os.MkdirAll(filepath.Join(c.Dir, "b.new", "overlays"), 0o755)
	os.MkdirAll(filepath.Join(c.Dir, "b.old"), 0o755)
	var last int64
	if err := c.Install("b", reader(t, newBundle(t, p), p), func(done, total int64) { last = done }); err != nil {
		t.Fatal(err)
	}
	got := tree(t, filepath.Join(c.Dir, "b"))
	names := make([]string, 0, len(got))
	for n := range got {
		names = append(names, n)
	}
	sort.Strings(names)
	if want := "VERSION bcm2710-rpi-3-b.dtb cmdline.txt initrd.gz overlays/x.dtbo vmlinuz"; strings.Join(names, " ") != want {
		t.Errorf("slot b holds %v, want %s", names, want)
	}
	if got["cmdline.txt"] != p.CmdlineTXT("b") || got["vmlinuz"] != "new kernel" {
		t.Errorf("slot b: cmdline %q, kernel %q", got["cmdline.txt"], got["vmlinuz"])
	}
	if last == 0 {
		t.Error("no progress")
	}
	for _, d := range []string{"b.new", "b.old"} {
		if _, err := os.Stat(filepath.Join(c.Dir, d)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s left behind: %v", d, err)
		}
	}
	if a := tree(t, filepath.Join(c.Dir, "a")); a["vmlinuz"] != "running kernel" {
		t.Error("the running slot was touched")
	}
}

// A bundle that fails while it is read leaves the inactive slot as it was.
func TestInstallRefusedLeavesSlot(t *testing.T) {
	for name, cut := range map[string]func([]byte) []byte{
		"modified file": func(b []byte) []byte { b = bytes.Clone(b); b[len(b)-3] ^= 1; return b },
		"truncated":     func(b []byte) []byte { return b[:len(b)-3] },
	} {
		t.Run(name, func(t *testing.T) {
			c, p := card(t)
			before := tree(t, filepath.Join(c.Dir, "b"))
			err := c.Install("b", reader(t, cut(newBundle(t, p)), p), nil)
			if !errors.Is(err, bundle.ErrDigest) && !errors.Is(err, bundle.ErrTruncated) {
				t.Fatalf("install: %v, want the reader's refusal", err)
			}
			after := tree(t, filepath.Join(c.Dir, "b"))
			if len(after) != len(before) || after["vmlinuz"] != "old kernel" || after["stale.dtbo"] == "" {
				t.Errorf("slot b changed: %v", after)
			}
			if _, err := os.Stat(filepath.Join(c.Dir, "b.new")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("staging folder left: %v", err)
			}
		})
	}
	c, p := card(t)
	if err := c.Install("c", reader(t, newBundle(t, p), p), nil); err == nil {
		t.Error("installed into slot c")
	}
	// A bundle without the command line for the slot it would go to.
	var buf bytes.Buffer
	src := bundle.Source{Name: "vmlinuz", Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("k")), nil }}
	if _, err := bundle.Write(&buf, releaseKey, bundle.Header{Board: p.Name, Version: "1.0", Created: time.Unix(1, 0)}, []bundle.Source{src}); err != nil {
		t.Fatal(err)
	}
	if err := c.Install("b", reader(t, buf.Bytes(), p), nil); !errors.Is(err, bundle.ErrFormat) || !strings.Contains(err.Error(), "cmdline.b.txt") {
		t.Errorf("bundle without cmdline.b.txt: %v", err)
	}
	if after := tree(t, filepath.Join(c.Dir, "b")); after["vmlinuz"] != "old kernel" {
		t.Error("slot b changed")
	}
}

// SetTrial and Commit write exactly what the image builder renders for the same
// slots (board.ConfigTXT), keep lines they do not own, and read back as the
// firmware would.
func TestTrialAndCommit(t *testing.T) {
	c, p := card(t)
	path := filepath.Join(c.Dir, "config.txt")
	read := func() string { b, _ := os.ReadFile(path); return string(b) }
	if n, tr, err := c.Active(); err != nil || n != "a" || tr != "" {
		t.Fatalf("fresh card: normal %q trial %q, %v", n, tr, err)
	}
	if err := c.SetTrial("b"); err != nil {
		t.Fatal(err)
	}
	if got, want := read(), p.ConfigTXT("a", "b"); got != want {
		t.Errorf("after SetTrial:\n%s\nwant\n%s", got, want)
	}
	if n, tr, _ := c.Active(); n != "a" || tr != "b" {
		t.Errorf("after SetTrial: normal %q trial %q", n, tr)
	}
	if err := c.Commit("b"); err != nil {
		t.Fatal(err)
	}
	if got, want := read(), p.ConfigTXT("b", ""); got != want {
		t.Errorf("after Commit:\n%s\nwant\n%s", got, want)
	}
	// Many updates later the file is what it was: nothing piles up.
	for i := 0; i < 5; i++ {
		c.SetTrial("a")
		c.Commit("a")
		c.SetTrial("b")
		c.Commit("b")
	}
	if got, want := read(), p.ConfigTXT("b", ""); got != want {
		t.Errorf("after 10 more updates:\n%s\nwant\n%s", got, want)
	}
	// Each switch writes one byte in place: the same file (inode), the
	// same length, no rename, no cluster allocated or freed on FAT.
	ino := func() uint64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t).Ino
	}
	before, inode := read(), ino()
	for _, step := range []func() error{func() error { return c.SetTrial("a") }, func() error { return c.Commit("a") }} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
		after := read()
		diff := 0
		for i := range min(len(before), len(after)) {
			if before[i] != after[i] {
				diff++
			}
		}
		if len(after) != len(before) || diff != 1 || ino() != inode {
			t.Errorf("a switch changed %d bytes, the length %d -> %d, the inode %v: want one byte in place", diff, len(before), len(after), ino() != inode)
		}
		before = after
	}
	// The operator's lines stay; a file without an os_prefix is not ours to edit.
	os.WriteFile(path, []byte("# mine\ndtparam=audio=on\nos_prefix=b/\n[pi4]\narm_boost=1\n"), 0o644)
	if err := c.SetTrial("a"); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != "# mine\ndtparam=audio=on\nos_prefix=b/\n[pi4]\narm_boost=1\n\n[tryboot]\nos_prefix=a/\n" {
		t.Errorf("operator's config after SetTrial:\n%s", got)
	}
	os.WriteFile(path, []byte("kernel=vmlinuz\n"), 0o644)
	if err := c.Commit("a"); err == nil || !strings.Contains(err.Error(), "no os_prefix") {
		t.Errorf("config.txt without os_prefix: %v", err)
	}
	if err := c.SetTrial("x"); err == nil {
		t.Error("a trial of slot x")
	}
}
