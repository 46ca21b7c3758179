package boltdb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

const testPageSize = 1024

// build writes a database with the shapes a store has: buckets with many keys
// (branch pages), a nested bucket per node, small nested buckets (inline), a
// value bigger than a page (overflow pages), and a few deletes (free pages).
func build(t testing.TB, path string) map[string]string {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{PageSize: testPageSize})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	want := map[string]string{}
	err = db.Update(func(tx *bolt.Tx) error {
		top, _ := tx.CreateBucket([]byte("nodes"))
		for i := range 200 {
			k, v := fmt.Sprintf("node-%03d", i), fmt.Sprintf(`{"n":%d,"name":"kit-%d"}`, i, i)
			top.Put([]byte(k), []byte(v))
			want["nodes/"+k] = v
		}
		hist, _ := tx.CreateBucket([]byte("history"))
		for n := range 5 {
			b, _ := hist.CreateBucket([]byte(fmt.Sprintf("node-%03d", n)))
			for i := range 3 + n*20 {
				k, v := binary.BigEndian.AppendUint64(nil, uint64(i+1)), fmt.Sprintf("event %d of %d", i, n)
				b.Put(k, []byte(v))
				want[fmt.Sprintf("history/node-%03d/%x", n, k)] = v
			}
		}
		big, _ := tx.CreateBucket([]byte("big"))
		v := strings.Repeat("0123456789abcdef", 300) // 4.8 KB: overflow pages
		big.Put([]byte("blob"), []byte(v))
		want["big/blob"] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("nodes"))
		for i := 0; i < 200; i += 7 {
			k := fmt.Sprintf("node-%03d", i)
			b.Delete([]byte(k))
			delete(want, "nodes/"+k)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return want
}

// contents reads every key of db, as "bucket/.../key" -> value.
func contents(t testing.TB, db *bolt.DB) map[string]string {
	t.Helper()
	got := map[string]string{}
	var walk func(prefix string, b *bolt.Bucket)
	walk = func(prefix string, b *bolt.Bucket) {
		b.ForEach(func(k, v []byte) error {
			if v == nil {
				walk(prefix+string(k)+"/", b.Bucket(k))
			} else if strings.HasPrefix(prefix, "history/") {
				got[fmt.Sprintf("%s%x", prefix, k)] = string(v)
			} else {
				got[prefix+string(k)] = string(v)
			}
			return nil
		})
	}
	if err := db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			walk(string(name)+"/", b)
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestOpenSound(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "s.db")
	want := build(t, p)
	rep, err := CheckFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if rep.PageSize != testPageSize || rep.Damaged != nil || rep.Buckets != 5+3 {
		t.Errorf("report %+v, want %d-byte pages, 8 buckets, no damage", rep, testPageSize)
	}
	db, rec, err := Open(p, nil)
	if err != nil || rec != nil {
		t.Fatalf("open: %v %v", err, rec)
	}
	defer db.Close()
	if got := contents(t, db); !equalMaps(got, want) {
		t.Fatalf("%d keys read back, want %d", len(got), len(want))
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
}

func TestOpenNewAndEmpty(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{filepath.Join(dir, "new.db"), filepath.Join(dir, "empty.db")} {
		if strings.HasSuffix(p, "empty.db") {
			os.WriteFile(p, nil, 0o600)
		}
		db, rec, err := Open(p, nil)
		if err != nil || rec != nil {
			t.Fatalf("%s: %v %v", p, err, rec)
		}
		if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("b")); return err }); err != nil {
			t.Fatal(err)
		}
		db.Close()
		// And it opens again, checked.
		db, rec, err = Open(p, nil)
		if err != nil || rec != nil {
			t.Fatalf("%s again: %v %v", p, err, rec)
		}
		db.Close()
	}
}

// A damaged file is moved aside byte for byte, reported, and replaced by an
// empty, working database.
func TestOpenMovesDamagedAside(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "d.db")
	build(t, p)
	orig, _ := os.ReadFile(p)
	damaged := bytes.Clone(orig)
	// The root page of the newest meta points outside the file; fix the
	// checksum so only the deeper check can tell.
	for _, off := range []int{0, testPageSize} {
		binary.NativeEndian.PutUint64(damaged[off+pageHeaderSize+16:], 1<<40)
		fixMeta(damaged, off)
	}
	os.WriteFile(p, damaged, 0o600)
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	db, rec, err := Open(p, &Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if rec == nil || rec.MovedTo != p+".corrupt-20260304T050607Z" || !strings.Contains(rec.Reason, "root bucket page") {
		t.Fatalf("recovery %+v", rec)
	}
	if moved, _ := os.ReadFile(rec.MovedTo); !bytes.Equal(moved, damaged) {
		t.Error("the moved file is not the damaged file")
	}
	if got := contents(t, db); len(got) != 0 {
		t.Errorf("the new database holds %d keys", len(got))
	}
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("b")); return err }); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rec.String(), rec.MovedTo) {
		t.Errorf("String %q does not say where the file went", rec.String())
	}
}

// fixMeta recomputes the checksum of the meta page at off.
func fixMeta(b []byte, off int) {
	m := b[off+pageHeaderSize:]
	h := fnv.New64a()
	h.Write(m[:metaSumSize])
	binary.NativeEndian.PutUint64(m[metaSumSize:], h.Sum64())
}

// One damaged meta page: bbolt opens the other (the transaction before); that
// is reported, the file kept.
func TestOpenReportsMetaFallback(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.db")
	want := build(t, p)
	rep, _ := CheckFile(p)
	b, _ := os.ReadFile(p)
	b[rep.Meta*testPageSize+pageHeaderSize+50] ^= 1 // the txid, under the checksum
	os.WriteFile(p, b, 0o600)
	db, rec, err := Open(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if rec == nil || rec.MovedTo != "" || !strings.Contains(rec.Reason, fmt.Sprintf("meta page %d: checksum", rep.Meta)) {
		t.Fatalf("recovery %+v", rec)
	}
	// The previous transaction is the build before the deletes.
	if got := contents(t, db); len(got) <= len(want) {
		t.Errorf("%d keys, want the %d before the last commit's deletes", len(got), len(want))
	}
}

// The caller's check of the content moves a file aside like a broken page.
func TestOpenCallerCheck(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.db")
	build(t, p)
	calls := 0
	check := func(db *bolt.DB) error {
		calls++
		return errors.New("record 7 fails its checksum")
	}
	db, rec, err := Open(p, &Options{Check: check})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if rec == nil || rec.MovedTo == "" || rec.Reason != "content: record 7 fails its checksum" || calls != 1 {
		t.Fatalf("recovery %+v after %d calls", rec, calls)
	}
	// A panic in the check is a damaged file too, not a crash.
	db.Close()
	db, rec, err = Open(p, &Options{Check: func(db *bolt.DB) error {
		db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("x")); return err })
		var m map[string]int
		m["boom"]++
		return nil
	}})
	if err != nil || rec == nil || !strings.Contains(rec.Reason, "panicked") {
		t.Fatalf("%v %+v", err, rec)
	}
	db.Close()
}

// A file another process holds is an error, never moved aside.
func TestOpenLocked(t *testing.T) {
	p := filepath.Join(t.TempDir(), "l.db")
	build(t, p)
	held, err := bolt.Open(p, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	_, rec, err := Open(p, &Options{Timeout: 100 * time.Millisecond})
	if err == nil || rec != nil || !strings.Contains(err.Error(), "lock") {
		t.Fatalf("open of a locked file: %v %+v", err, rec)
	}
	if m, _ := filepath.Glob(p + ".corrupt-*"); len(m) != 0 {
		t.Fatalf("moved aside: %v", m)
	}
}

// Moved-aside copies are capped in number and age.
func TestPruneCorrupt(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "r.db")
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	for _, age := range []time.Duration{40 * 24 * time.Hour, 5 * time.Hour, 4 * time.Hour, 3 * time.Hour, 2 * time.Hour} {
		os.WriteFile(p+corruptSuffix+now.Add(-age).Format(stampLayout), []byte("x"), 0o600)
	}
	os.WriteFile(p+".corrupt-notatime", []byte("x"), 0o600) // not ours: kept
	os.WriteFile(p, []byte("garbage that is no database"), 0o600)
	db, rec, err := Open(p, &Options{Now: func() time.Time { return now }})
	if err != nil || rec == nil {
		t.Fatal(err, rec)
	}
	db.Close()
	m, _ := filepath.Glob(p + ".corrupt-*")
	var left []string
	for _, n := range m {
		left = append(left, strings.TrimPrefix(n, p+".corrupt-"))
	}
	want := []string{"20260531T210000Z", "20260531T220000Z", "20260601T000000Z", "notatime"}
	if strings.Join(left, " ") != strings.Join(want, " ") {
		t.Fatalf("left %v, want %v", left, want)
	}
}

// Files damaged at random (a seeded generator, meta checksums fixed so the
// damage reaches the pages behind them) that Check passes are files bbolt can
// use: it opens them, walks them, writes to every bucket without a panic or a
// fault, and leaves a file Check passes. This found that bbolt relies on a
// branch key being its child's first key, which its own Tx.Check does not
// check.
func TestCheckedFilesSurviveBbolt(t *testing.T) {
	dir := fastDir(t)
	p := filepath.Join(dir, "seed.db")
	build(t, p)
	sound, _ := os.ReadFile(p)
	rep, err := Check(bytes.NewReader(sound), int64(len(sound)))
	if err != nil {
		t.Fatal(err)
	}
	pages := int(rep.HighWater)
	r := rand.New(rand.NewSource(1))
	passed := 0
	for i := range 3000 {
		data := bytes.Clone(sound)
		for range 1 + r.Intn(3) {
			off := r.Intn(pages * testPageSize)
			if r.Intn(2) == 0 { // headers and elements
				off = r.Intn(pages)*testPageSize + r.Intn(160)
			}
			if r.Intn(3) == 0 {
				data[off] = byte(r.Intn(256))
			} else {
				data[off] ^= 1 << r.Intn(8)
			}
		}
		fixMetas(data)
		rep, err := Check(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			continue
		}
		passed++
		path := filepath.Join(dir, "f.db")
		os.WriteFile(path, data, 0o600)
		err = protect(func() error {
			db, err := bolt.Open(path, 0o600, &bolt.Options{NoSync: true})
			if err != nil {
				return err
			}
			defer db.Close()
			if n := countKeys(t, db); n != rep.Keys {
				return fmt.Errorf("bbolt walks %d keys, Check counted %d", n, rep.Keys)
			}
			return db.Update(func(tx *bolt.Tx) error {
				return tx.ForEach(func(_ []byte, b *bolt.Bucket) error {
					for k := range 30 {
						if err := b.Put([]byte{byte(k), 'z'}, bytes.Repeat([]byte{'v'}, 100)); err != nil {
							return err
						}
					}
					if k, v := b.Cursor().First(); k != nil && v != nil {
						return b.Delete(k)
					}
					return nil
				})
			})
		})
		if err != nil {
			t.Fatalf("case %d: Check passed the file, bbolt: %v", i, err)
		}
		if _, err := CheckFile(path); err != nil {
			t.Fatalf("case %d: Check passed the file, but not what bbolt wrote to it: %v", i, err)
		}
	}
	t.Logf("%d of 3000 damaged files passed Check and survived bbolt", passed)
	if passed < 100 {
		t.Errorf("only %d files passed Check: the damage is not exploring", passed)
	}
}
