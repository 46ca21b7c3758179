package identity

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestLoadOrCreateCreatesAndReloads(t *testing.T) {
	g := loadSeedGolden(t, "seed-0002.golden")
	gk := g.Keys[5]
	dir := filepath.Join(t.TempDir(), "perm", "nested") // made by LoadOrCreate

	k, created, err := LoadOrCreate(dir, bytes.NewReader(mustHex(t, gk.Secret)))
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Fatal("created = false on first call")
	}
	if k.Address().String() != gk.Address {
		t.Fatalf("address %s, want %s", k.Address(), gk.Address)
	}

	path := filepath.Join(dir, KeyFileName)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != gk.Secret+"\n" {
		t.Fatalf("key file holds %q, want the secret and a newline", data)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", st.Mode().Perm())
	}
	assertNoTemps(t, dir)

	// Reload: same key, nothing created, reader not touched.
	k2, created, err := LoadOrCreate(dir, iotest.ErrReader(errors.New("reader must not be used")))
	if err != nil {
		t.Fatal(err)
	}
	if created {
		t.Fatal("created = true on reload")
	}
	if k2.SecretHex() != gk.Secret || k2.Address() != k.Address() {
		t.Fatalf("reloaded %s, want %s", k2.Address(), k.Address())
	}
}

func TestLoadOrCreateCryptoRand(t *testing.T) {
	dir := t.TempDir()
	k, created, err := LoadOrCreate(dir, nil)
	if err != nil || !created {
		t.Fatalf("LoadOrCreate = %v, %v", created, err)
	}
	k2, created, err := LoadOrCreate(dir, nil)
	if err != nil || created || k2.SecretHex() != k.SecretHex() {
		t.Fatalf("reload = %v, %v; same key %v", created, err, k2 != nil && k2.SecretHex() == k.SecretHex())
	}
}

func TestLoadOrCreateTightensMode(t *testing.T) {
	dir := t.TempDir()
	g := loadSeedGolden(t, "seed-0000.golden")
	path := filepath.Join(dir, KeyFileName)
	if err := os.WriteFile(path, []byte(g.Keys[2].Secret+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil { // undo the umask
		t.Fatal(err)
	}
	k, created, err := LoadOrCreate(dir, nil)
	if err != nil || created || k.SecretHex() != g.Keys[2].Secret {
		t.Fatalf("LoadOrCreate = %v, %v", created, err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v after load, want 0600", st.Mode().Perm())
	}
}

func TestLoadOrCreateToleratesWhitespace(t *testing.T) {
	g := loadSeedGolden(t, "seed-0001.golden")
	for _, content := range []string{
		g.Keys[0].Secret,                         // no newline
		g.Keys[0].Secret + "\r\n",                // edited on Windows
		"  " + strings.ToUpper(g.Keys[0].Secret), // upper case, indented
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, KeyFileName), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		k, created, err := LoadOrCreate(dir, nil)
		if err != nil || created || k.Address().String() != g.Keys[0].Address {
			t.Fatalf("content %q: LoadOrCreate = %v, %v", content, created, err)
		}
	}
}

func TestLoadOrCreateRefusesCorruptFile(t *testing.T) {
	g := loadSeedGolden(t, "seed-0001.golden")
	cases := map[string][]byte{
		"empty":          {},
		"garbage":        []byte("not a key\n"),
		"truncated":      []byte(g.Keys[1].Secret[:40]),
		"zero scalar":    []byte(strings.Repeat("0", 64) + "\n"),
		"two keys":       []byte(g.Keys[1].Secret + "\n" + g.Keys[2].Secret + "\n"),
		"binary":         bytes.Repeat([]byte{0, 0xff}, 32),
		"huge":           bytes.Repeat([]byte("a"), 1<<20),
		"above the mark": []byte(strings.Repeat("f", 64)),
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, KeyFileName)
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			old := time.Now().Add(-time.Hour).Truncate(time.Second)
			if err := os.Chtimes(path, old, old); err != nil {
				t.Fatal(err)
			}
			k, created, err := LoadOrCreate(dir, bytes.NewReader(mustHex(t, g.Keys[3].Secret)))
			if !errors.Is(err, ErrKeyFileCorrupt) {
				t.Fatalf("error = %v, want ErrKeyFileCorrupt", err)
			}
			if k != nil || created {
				t.Fatalf("got key %v, created %v with error", k, created)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name %s", err, path)
			}
			if strings.Contains(err.Error(), g.Keys[1].Secret[:40]) {
				t.Errorf("error %q repeats the file's content", err)
			}
			after, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(after, content) {
				t.Fatalf("key file changed: %v", err)
			}
			st, _ := os.Stat(path)
			if !st.ModTime().Equal(old) {
				t.Fatalf("key file touched: mtime %v, want %v", st.ModTime(), old)
			}
			assertNoTemps(t, dir)
		})
	}
}

func TestLoadOrCreateRefusesNonRegularFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, KeyFileName)
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreate(dir, nil); !errors.Is(err, ErrKeyFileCorrupt) {
		t.Fatalf("node.key directory: error = %v, want ErrKeyFileCorrupt", err)
	}
	if st, err := os.Stat(path); err != nil || !st.IsDir() {
		t.Fatalf("node.key directory was replaced: %v", err)
	}
}

func TestLoadOrCreateUnreadableFile(t *testing.T) {
	// A symlink loop cannot be opened (ELOOP), even by root. It is an
	// unreadable key file, not a missing one: no new key may replace it.
	dir := t.TempDir()
	path := filepath.Join(dir, KeyFileName)
	if err := os.Symlink(KeyFileName, path); err != nil {
		t.Fatal(err)
	}
	k, created, err := LoadOrCreate(dir, nil)
	if err == nil || created || k != nil {
		t.Fatalf("unreadable key file: key %v, created %v, error %v", k, created, err)
	}
	if target, err := os.Readlink(path); err != nil || target != KeyFileName {
		t.Fatalf("unreadable key file was replaced: %q, %v", target, err)
	}
}

func TestLoadOrCreateDanglingSymlink(t *testing.T) {
	// node.key pointing at a missing file (say, an unmounted volume): no
	// key may be written through or over the link.
	dir := t.TempDir()
	path := filepath.Join(dir, KeyFileName)
	target := filepath.Join(dir, "missing", "node.key")
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	if _, created, err := LoadOrCreate(dir, nil); err == nil || created {
		t.Fatalf("created %v, error %v; want an error", created, err)
	}
	if got, err := os.Readlink(path); err != nil || got != target {
		t.Fatalf("symlink replaced: %q, %v", got, err)
	}
	if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("key written through the dangling link: %v", err)
	}
	assertNoTemps(t, dir)
}

func TestLoadOrCreateStaleTemp(t *testing.T) {
	g := loadSeedGolden(t, "seed-0000.golden")
	dir := t.TempDir()
	stale := filepath.Join(dir, tempPrefix+"123456")
	// A half-written key from a power cut, and one that looks complete.
	if err := os.WriteFile(stale, []byte("6614f0956f4e"), 0o600); err != nil {
		t.Fatal(err)
	}
	stale2 := filepath.Join(dir, tempPrefix+"999")
	if err := os.WriteFile(stale2, []byte(g.Keys[9].Secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "bbolt.db")
	if err := os.WriteFile(other, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}

	k, created, err := LoadOrCreate(dir, bytes.NewReader(mustHex(t, g.Keys[4].Secret)))
	if err != nil || !created {
		t.Fatalf("LoadOrCreate = %v, %v", created, err)
	}
	if k.SecretHex() != g.Keys[4].Secret {
		t.Fatalf("key %s: a stale temp file was used instead of a new key", k.SecretHex())
	}
	assertNoTemps(t, dir)
	if b, err := os.ReadFile(other); err != nil || string(b) != "keep me" {
		t.Fatalf("unrelated file disturbed: %q, %v", b, err)
	}
}

func TestLoadOrCreateGenerateFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	boom := errors.New("no entropy")
	if _, _, err := LoadOrCreate(dir, iotest.ErrReader(boom)); !errors.Is(err, boom) {
		t.Fatalf("error = %v, want %v", err, boom)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Fatalf("left files behind: %v", entries)
	}
}

func TestLoadOrCreateDirIsFile(t *testing.T) {
	parent := t.TempDir()
	file := filepath.Join(parent, "file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{file, filepath.Join(file, "sub")} {
		k, created, err := LoadOrCreate(dir, nil)
		if err == nil || created || k != nil {
			t.Fatalf("LoadOrCreate(%s): key %v, created %v, error %v; want an error", dir, k, created, err)
		}
	}
	if b, _ := os.ReadFile(file); string(b) != "x" {
		t.Fatal("file changed")
	}
}

func TestPublishDoesNotReplaceExisting(t *testing.T) {
	// If node.key appears between the check and the publish (another process
	// created it), the existing key wins and is not overwritten.
	g := loadSeedGolden(t, "seed-0002.golden")
	dir := t.TempDir()
	path := filepath.Join(dir, KeyFileName)
	existing := g.Keys[0].Secret + "\n"
	if err := os.WriteFile(path, []byte(existing), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := ParseSecretHex(g.Keys[1].Secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := publishKeyFile(dir, path, k); !errors.Is(err, os.ErrExist) {
		t.Fatalf("publishKeyFile over an existing file: %v, want ErrExist", err)
	}
	if b, _ := os.ReadFile(path); string(b) != existing {
		t.Fatalf("existing key replaced by %q", b)
	}
	assertNoTemps(t, dir)
}

func assertNoTemps(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			t.Errorf("temporary file %s left in %s", e.Name(), dir)
		}
	}
}

func TestCreateKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	k, err := CreateKeyFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != KeyFileMode {
		t.Errorf("mode %v, want %v", st.Mode().Perm(), KeyFileMode)
	}
	back, err := LoadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if back.SecretHex() != k.SecretHex() {
		t.Error("the key read back differs from the one made")
	}
	// A second call must not replace the key.
	if _, err := CreateKeyFile(path, nil); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second CreateKeyFile: %v, want fs.ErrExist", err)
	}
	again, _ := LoadKeyFile(path)
	if again.SecretHex() != k.SecretHex() {
		t.Error("an existing key file was replaced")
	}
	if _, err := LoadKeyFile(filepath.Join(t.TempDir(), "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
