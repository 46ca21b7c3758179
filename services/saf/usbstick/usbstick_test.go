package usbstick

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/services/saf"
)

// stubMesh is a node with no neighbours: enough for Import and Export, which
// never touch the mesh (the engine is not started).
type stubMesh struct{ self saf.Key }

func (m stubMesh) Self() saf.Key                                         { return m.self }
func (m stubMesh) NextHop(saf.Key, []saf.Key, []saf.Key) (saf.Key, bool) { return saf.Key{}, false }
func (m stubMesh) Neighbours() []saf.Key                                 { return nil }
func (m stubMesh) Radio(saf.Key) bool                                    { return false }
func (m stubMesh) Dial(context.Context, saf.Key, uint16) (net.Conn, error) {
	return nil, errors.New("no mesh")
}
func (m stubMesh) Listen(uint16) (saf.Listener, error) { return nil, errors.New("no mesh") }

func key(b byte) saf.Key {
	var k saf.Key
	k[0] = 2
	k[1] = b
	return k
}

var self, other = key(1), key(2)

// newEngine returns a real engine over a real store in a temporary directory.
func newEngine(t *testing.T) (*saf.Engine, *saf.Store) {
	t.Helper()
	st, err := saf.OpenStore(t.TempDir(), saf.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return saf.New(saf.Options{Mesh: stubMesh{self}, Store: st}), st
}

// bundleFile returns a data-mule file of a bundle from src to dst and its ID.
func bundleFile(t *testing.T, src, dst saf.Key, seq uint64) (saf.ID, []byte) {
	t.Helper()
	enc, err := (&saf.Bundle{Port: saf.PortMsg, Source: src, Destination: dst, Seq: seq,
		Lifetime: time.Hour, Payload: []byte(fmt.Sprintf("message %d", seq))}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return saf.IDOf(enc), saf.MarshalFile(time.Second, enc)
}

// fakeSystem stands in for the kernel: each device is a directory (the stick's
// content) that Mount makes the mount point by a symlink.
type fakeSystem struct {
	mu      sync.Mutex
	devs    map[string]fakeDev // by Name
	mounts  int
	umounts int
	mounted map[string]bool // mount points
}

type fakeDev struct {
	dev   Device
	stick string // directory with the stick's files; "" = no filesystem
}

func newFake() *fakeSystem {
	return &fakeSystem{devs: map[string]fakeDev{}, mounted: map[string]bool{}}
}

func (f *fakeSystem) plug(name, key, stick string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.devs[name] = fakeDev{Device{Name: name, Path: "/dev/" + name, Key: key}, stick}
}

func (f *fakeSystem) unplug(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.devs, name)
}

func (f *fakeSystem) Devices() ([]Device, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Device
	for _, d := range f.devs {
		out = append(out, d.dev)
	}
	return out, nil
}

func (f *fakeSystem) Mount(d Device, dir string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mounts++
	fd, ok := f.devs[d.Name]
	if !ok || fd.stick == "" {
		return "", errors.New("no filesystem mounts")
	}
	if err := os.Remove(dir); err != nil {
		return "", err
	}
	if err := os.Symlink(fd.stick, dir); err != nil {
		return "", err
	}
	f.mounted[dir] = true
	return "vfat", nil
}

func (f *fakeSystem) Unmount(dir string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.umounts++
	if !f.mounted[dir] {
		return fmt.Errorf("%s not mounted", dir)
	}
	delete(f.mounted, dir)
	return os.Remove(dir)
}

func (f *fakeSystem) counts() (mounts, umounts, mounted int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mounts, f.umounts, len(f.mounted)
}

// logs collects the watcher's lines.
type logs struct {
	mu    sync.Mutex
	lines []string
}

func (l *logs) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logs) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// stick is a temporary directory laid out as a stick with the folder.
func stick(t *testing.T) (root, folder string) {
	root = t.TempDir()
	folder = filepath.Join(root, Folder)
	if err := os.Mkdir(folder, 0o755); err != nil {
		t.Fatal(err)
	}
	return root, folder
}

func newWatcher(t *testing.T, eng Engine, sys System, l *logs) *Watcher {
	return New(Config{Engine: eng, System: sys, MountDir: filepath.Join(t.TempDir(), "mnt"), Logf: l.logf})
}

// TestStickImportExport: valid files are imported, bad ones (garbage, too big,
// a symlink out of the folder, a directory) refused and counted without
// stopping the visit, other names ignored; the node's bundles for other nodes
// are written as <ID>.sfb, byte for byte, except where that name is present.
func TestStickImportExport(t *testing.T) {
	eng, st := newEngine(t)
	// The node's own: two for another node (exported), one for itself (not).
	var own []saf.ID
	for i := uint64(1); i <= 2; i++ {
		id, f := bundleFile(t, self, other, 100+i)
		if _, s, err := eng.Import(f); err != nil || s != saf.StatusAccepted {
			t.Fatal(s, err)
		}
		own = append(own, id)
	}
	if _, f := bundleFile(t, other, self, 200); true {
		eng.Import(f)
	}

	root, folder := stick(t)
	var carried []saf.ID
	for i := uint64(1); i <= 3; i++ {
		id, f := bundleFile(t, other, key(3), i)
		carried = append(carried, id)
		name := id.String() + saf.FileExt
		if i == 3 {
			name = "Letter.SFB" // any name, any case
		}
		write(t, filepath.Join(folder, name), f)
	}
	write(t, filepath.Join(folder, "junk.sfb"), []byte("SFB1 but not a bundle"))
	write(t, filepath.Join(folder, "huge.sfb"), make([]byte, saf.MaxFile+1))
	secret := filepath.Join(t.TempDir(), "secret.sfb")
	_, sf := bundleFile(t, other, key(4), 9)
	write(t, secret, sf)
	if err := os.Symlink(secret, filepath.Join(folder, "escape.sfb")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(folder, "dir.sfb"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(folder, "README.txt"), []byte("hello"))
	write(t, filepath.Join(folder, "._junk.sfb"), []byte("macOS companion"))
	// What an export cut short by pulling the stick leaves behind.
	write(t, filepath.Join(folder, "."+own[0].String()+".sfb.123456.tmp"), []byte("half"))

	sys := newFake()
	var l logs
	w := newWatcher(t, eng, sys, &l)
	sys.plug("sda1", "7", root)
	w.poll()
	if m, _, _ := sys.counts(); m != 0 {
		t.Fatalf("mounted on the first look (%d); a device settles for one look first", m)
	}
	w.poll()
	if m, u, left := sys.counts(); m != 1 || u != 1 || left != 0 {
		t.Fatalf("mounts %d, unmounts %d, still mounted %d; want 1, 1, 0", m, u, left)
	}

	want := "usb stick sda1: imported 3 (0 duplicates, 4 refused), exported 3"
	if !strings.Contains(l.all(), want+"\n") && !strings.HasSuffix(l.all(), want) {
		t.Fatalf("log lacks %q:\n%s", want, l.all())
	}
	for _, name := range []string{"junk.sfb", "huge.sfb", "escape.sfb", "dir.sfb"} {
		if !strings.Contains(l.all(), name+" refused") {
			t.Errorf("log does not name %s as refused:\n%s", name, l.all())
		}
	}
	if strings.Contains(l.all(), "README") || strings.Contains(l.all(), "._junk") {
		t.Errorf("log mentions files that are not bundle files:\n%s", l.all())
	}
	for _, id := range carried {
		if _, _, ok := st.Get(id); !ok {
			t.Errorf("carried bundle %s not in the store", id)
		}
	}
	if n := st.Stats().Bundles; n != 6 {
		t.Errorf("store holds %d bundles, want 6 (3 own, 3 carried; not the symlink's)", n)
	}

	// Exported: the node's two for others and the carried one the stick had
	// under another name; not the one for this node.
	for _, id := range []saf.ID{own[0], own[1], carried[2]} {
		b, err := os.ReadFile(filepath.Join(folder, id.String()+saf.FileExt))
		if err != nil {
			t.Fatalf("export of %s: %v", id, err)
		}
		enc, age, _ := st.Get(id)
		if _, got, err := saf.ParseFile(b); err != nil || saf.IDOf(mustMarshal(t, got)) != id {
			t.Fatalf("exported %s does not parse back to it: %v", id, err)
		}
		if !bytes.Equal(b[12:], enc) || age <= 0 {
			t.Fatalf("exported %s differs from the store's bundle", id)
		}
		fi, _ := os.Stat(filepath.Join(folder, id.String()+saf.FileExt))
		if fi.Mode().Perm() != 0o644 {
			t.Errorf("exported file mode %v, want 0644", fi.Mode().Perm())
		}
	}
	ents, _ := os.ReadDir(folder)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file %s left on the stick", e.Name())
		}
	}
	if b, _ := os.ReadFile(secret); !bytes.Equal(b, sf) {
		t.Error("the file behind the symlink changed")
	}

	s := w.Stats()
	if s.Sticks != 1 || s.Imported != 3 || s.Refused != 4 || s.Exported != 3 || s.Last == nil ||
		s.Last.Device != "sda1" || s.Last.Present != 2 || s.Last.Error != "" {
		t.Fatalf("stats %+v last %+v", s, s.Last)
	}
}

func mustMarshal(t *testing.T, b *saf.Bundle) []byte {
	t.Helper()
	enc, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

// TestStickPluggedTwice: the same stick again (after it left the device list, or
// under a new key at once) is visited again: everything is a duplicate and
// nothing is written twice; while it stays plugged it is visited once.
func TestStickPluggedTwice(t *testing.T) {
	eng, _ := newEngine(t)
	ownID, f := bundleFile(t, self, other, 1)
	eng.Import(f)
	root, folder := stick(t)
	for i := uint64(1); i <= 2; i++ {
		id, f := bundleFile(t, other, key(3), 10+i)
		write(t, filepath.Join(folder, id.String()+saf.FileExt), f)
	}
	sys := newFake()
	var l logs
	w := newWatcher(t, eng, sys, &l)
	sys.plug("sda1", "1", root)
	for range 5 {
		w.poll()
	}
	exported := filepath.Join(folder, ownID.String()+saf.FileExt)
	fi1, err := os.Stat(exported)
	if err != nil {
		t.Fatal(err)
	}

	sys.unplug("sda1")
	w.poll()
	sys.plug("sda1", "1", root)
	w.poll()
	w.poll()
	// Pulled and plugged between two looks: the disk's sequence number moved.
	sys.plug("sda1", "2", root)
	w.poll()
	w.poll()

	if m, u, _ := sys.counts(); m != 3 || u != 3 {
		t.Fatalf("mounts %d, unmounts %d; want 3 visits", m, u)
	}
	lines := strings.Split(l.all(), "\n")
	want := []string{
		"usb stick sda1: imported 2 (0 duplicates, 0 refused), exported 1",
		"usb stick sda1: imported 0 (3 duplicates, 0 refused), exported 0", // with the one it took
		"usb stick sda1: imported 0 (3 duplicates, 0 refused), exported 0", // with the one it took
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("log:\n%s\nwant:\n%s", l.all(), strings.Join(want, "\n"))
	}
	fi2, _ := os.Stat(exported)
	if !fi2.ModTime().Equal(fi1.ModTime()) || fi2.Size() != fi1.Size() {
		t.Error("the exported file was written again")
	}
	if s := w.Stats(); s.Sticks != 3 || s.Imported != 2 || s.Exported != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// TestStickWithoutFolder: a stick without the folder (or with a file or a symlink
// by its name) and a device without a filesystem are left alone, unmounted, and
// not tried again while they stay plugged.
func TestStickWithoutFolder(t *testing.T) {
	eng, st := newEngine(t)
	plain := t.TempDir()
	write(t, filepath.Join(plain, "holiday.jpg"), []byte("jpeg"))
	asFile := t.TempDir()
	write(t, filepath.Join(asFile, Folder), []byte("not a folder"))
	asLink := t.TempDir()
	_, real := stick(t)
	id, f := bundleFile(t, other, key(3), 1)
	write(t, filepath.Join(real, id.String()+saf.FileExt), f)
	if err := os.Symlink(real, filepath.Join(asLink, Folder)); err != nil {
		t.Fatal(err)
	}
	_, ownFile := bundleFile(t, self, other, 2)
	eng.Import(ownFile)

	sys := newFake()
	var l logs
	w := newWatcher(t, eng, sys, &l)
	sys.plug("sda1", "1", plain)
	sys.plug("sdb1", "2", asFile)
	sys.plug("sdc1", "3", asLink)
	sys.plug("sdd", "4", "") // no filesystem
	for range 10 {
		w.poll()
	}
	if m, u, left := sys.counts(); m != 4 || u != 3 || left != 0 {
		t.Fatalf("mounts %d, unmounts %d, mounted %d; want 4, 3, 0", m, u, left)
	}
	if s := w.Stats(); s.Ignored != 4 || s.Sticks != 0 || s.Last != nil {
		t.Fatalf("stats %+v", s)
	}
	if n := st.Stats().Bundles; n != 1 {
		t.Fatalf("store holds %d bundles, want only the node's own", n)
	}
	for _, d := range []string{plain, asFile, real} {
		ents, _ := os.ReadDir(d)
		if len(ents) != 1 {
			t.Errorf("%s changed: %d entries", d, len(ents))
		}
	}
	if !strings.Contains(l.all(), "usb stick sda1 (vfat): no skyfleet-bundles/ folder at the top: left alone") {
		t.Errorf("log:\n%s", l.all())
	}
}

// TestStickCaps: files past MaxFiles, or past MaxBytes, are left unread and
// counted.
func TestStickCaps(t *testing.T) {
	root, folder := stick(t)
	var size int64
	for i := uint64(1); i <= 5; i++ {
		id, f := bundleFile(t, other, key(3), i)
		size = int64(len(f))
		write(t, filepath.Join(folder, id.String()+saf.FileExt), f)
	}
	for _, c := range []struct {
		files int
		bytes int64
		want  string
	}{
		{3, 0, "usb stick sda1: imported 3 (0 duplicates, 0 refused), exported 0; 2 files left unread (over the caps)"},
		{0, 2*size + size/2, "usb stick sda1: imported 2 (0 duplicates, 0 refused), exported 0; 3 files left unread (over the caps)"},
	} {
		eng, st := newEngine(t)
		sys := newFake()
		var l logs
		w := New(Config{Engine: eng, System: sys, MountDir: filepath.Join(t.TempDir(), "mnt"), Logf: l.logf,
			MaxFiles: c.files, MaxBytes: c.bytes})
		sys.plug("sda1", "1", root)
		w.poll()
		w.poll()
		if l.all() != c.want {
			t.Errorf("log:\n%s\nwant:\n%s", l.all(), c.want)
		}
		if s := w.Stats(); s.Last == nil || s.Last.Imported+s.Last.Unread != 5 || int(st.Stats().Bundles) != s.Last.Imported {
			t.Errorf("stats %+v, store %+v", s.Last, st.Stats())
		}
	}
}

// brokenEngine's Export fails after the first file, like a stick pulled halfway.
type brokenEngine struct{ *saf.Engine }

func (e brokenEngine) Export(fn func(saf.ID, []byte) error) (int, error) {
	n := 0
	_, err := e.Engine.Export(func(id saf.ID, f []byte) error {
		if n++; n > 1 {
			return errors.New("stick pulled")
		}
		return fn(id, f)
	})
	return n - 1, err
}

// TestStickExportFails: a failing export ends the visit with what was done said
// and the stick unmounted; the watcher goes on.
func TestStickExportFails(t *testing.T) {
	eng, _ := newEngine(t)
	for i := uint64(1); i <= 3; i++ {
		_, f := bundleFile(t, self, other, i)
		eng.Import(f)
	}
	root, folder := stick(t)
	sys := newFake()
	var l logs
	w := newWatcher(t, brokenEngine{eng}, sys, &l)
	sys.plug("sda1", "1", root)
	w.poll()
	w.poll()
	want := "usb stick sda1: imported 0 (0 duplicates, 0 refused), exported 1; stopped: stick pulled"
	if l.all() != want {
		t.Fatalf("log:\n%s\nwant:\n%s", l.all(), want)
	}
	if _, _, left := sys.counts(); left != 0 {
		t.Fatal("left mounted")
	}
	if ents, _ := os.ReadDir(folder); len(ents) != 1 {
		t.Fatalf("%d files on the stick, want 1", len(ents))
	}
	if s := w.Stats(); s.Last == nil || s.Last.Error != "stick pulled" {
		t.Fatalf("stats %+v", s.Last)
	}
}

// TestStatsInSAFAPI: the watcher's counters and last visit show in GET
// /saf/stats under "usb_stick" (as meshd wires them), beside the engine's own.
func TestStatsInSAFAPI(t *testing.T) {
	eng, _ := newEngine(t)
	root, folder := stick(t)
	id, f := bundleFile(t, other, key(3), 1)
	write(t, filepath.Join(folder, id.String()+saf.FileExt), f)
	sys := newFake()
	var l logs
	w := newWatcher(t, eng, sys, &l)
	eng.AddStats("usb_stick", func() any { return w.Stats() })
	eng.AddStats("store", func() any { return "not this" })
	sys.plug("sda1", "1", root)
	w.poll()
	w.poll()
	rec := httptest.NewRecorder()
	eng.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/saf/stats", nil))
	var doc struct {
		Store    map[string]any `json:"store"`
		Engine   map[string]any `json:"engine"`
		USBStick Stats          `json:"usb_stick"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatalf("%v: %s", err, rec.Body)
	}
	if doc.Store == nil || doc.Engine == nil || doc.USBStick.Sticks != 1 || doc.USBStick.Last == nil ||
		doc.USBStick.Last.Device != "sda1" || doc.USBStick.Last.Imported != 1 || doc.USBStick.Last.FS != "vfat" {
		t.Fatalf("/saf/stats:\n%s", rec.Body)
	}
}
