package boltdb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// FuzzOpen opens arbitrary bytes as a database file. Whatever the bytes: no
// panic and no fault; Open succeeds (a temporary directory allows everything
// it needs); a file Check refuses is moved aside byte for byte and an empty
// database takes its place; a file Check passes is opened, and bbolt agrees
// with Check (it never fails or panics on it, and walks as many keys as Check
// counted); either way the database works afterwards. With fix set, the meta
// pages' checksums are recomputed first, so the fuzzer gets past them to the
// pages bbolt trusts blindly.
func FuzzOpen(f *testing.F) {
	dir := f.TempDir()
	p := filepath.Join(dir, "seed.db")
	build(f, p)
	sound, err := os.ReadFile(p)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sound, false)
	f.Add(sound, true)
	f.Add([]byte{}, false)
	f.Add([]byte("not a database at all"), false)
	f.Add(sound[:len(sound)/2], false)
	f.Add(sound[:3*testPageSize], true)
	f.Add(append(bytes.Clone(sound), 1, 2, 3), false)
	small := filepath.Join(dir, "small.db")
	db, err := bolt.Open(small, 0o600, &bolt.Options{PageSize: testPageSize})
	if err != nil {
		f.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error {
		b, _ := tx.CreateBucket([]byte("a"))
		b.Put([]byte("k"), []byte("v"))
		n, _ := b.CreateBucket([]byte("inline"))
		return n.Put([]byte("x"), []byte("y"))
	})
	db.Close()
	tiny, _ := os.ReadFile(small)
	f.Add(tiny, false)
	f.Add(tiny, true)

	f.Fuzz(func(t *testing.T, data []byte, fix bool) {
		if len(data) > 1<<20 {
			return
		}
		if fix {
			data = bytes.Clone(data)
			fixMetas(data)
		}
		path := filepath.Join(fastDir(t), "f.db")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		rep, checkErr := Check(bytes.NewReader(data), int64(len(data)))
		var ce *CorruptError
		if checkErr != nil && !errors.As(checkErr, &ce) {
			t.Fatalf("Check of bytes in memory failed without calling them corrupt: %v", checkErr)
		}
		db, rec, err := Open(path, &Options{PageSize: testPageSize})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer db.Close()
		switch {
		case checkErr != nil:
			if rec == nil || rec.MovedTo == "" {
				t.Fatalf("Check refused the file (%v) but Open kept it: %+v", checkErr, rec)
			}
			if moved, err := os.ReadFile(rec.MovedTo); err != nil || !bytes.Equal(moved, data) {
				t.Fatalf("the moved-aside file is not the input: %v", err)
			}
			if n := countKeys(t, db); n != 0 {
				t.Fatalf("the new database holds %d keys", n)
			}
			if len(rec.Reason) > 1000 {
				t.Fatalf("reason of %d bytes", len(rec.Reason))
			}
		case rec != nil && rec.MovedTo != "":
			t.Fatalf("Check passed the file but bbolt did not: %s", rec.Reason)
		default:
			if (rec != nil) != (rep.Damaged != nil) {
				t.Fatalf("Check says damaged=%v, Open reports %+v", rep.Damaged, rec)
			}
			if n := countKeys(t, db); n != rep.Keys {
				t.Fatalf("%d keys, Check counted %d", n, rep.Keys)
			}
		}
		// Whatever happened, the database now works.
		err = db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("fuzz-check"))
			if err != nil {
				return err
			}
			return b.Put([]byte("k"), []byte("v"))
		})
		if err != nil {
			t.Fatalf("writing after Open: %v", err)
		}
		db.Close()
		if _, err := CheckFile(path); err != nil {
			t.Fatalf("the file after a write fails Check: %v", err)
		}
	})
}

// fixMetas recomputes the checksums of the meta pages at 0 and at the page size
// the first one names (if it fits), so mutations behind them are explored.
func fixMetas(b []byte) {
	if len(b) < pageHeaderSize+metaSize {
		return
	}
	fixMeta(b, 0)
	ps := int(binary.NativeEndian.Uint32(b[pageHeaderSize+8:]))
	if ps > 0 && ps <= MaxPageSize && ps+pageHeaderSize+metaSize <= len(b) {
		fixMeta(b, ps)
	}
}

func countKeys(t *testing.T, db *bolt.DB) int {
	n := 0
	var walk func(b *bolt.Bucket)
	walk = func(b *bolt.Bucket) {
		b.ForEach(func(k, v []byte) error {
			n++
			if v == nil {
				walk(b.Bucket(k))
			}
			return nil
		})
	}
	db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(_ []byte, b *bolt.Bucket) error {
			n++
			walk(b)
			return nil
		})
	})
	return n
}

// FuzzCheck holds Check to its promise without Open's safety net: for any
// bytes Check passes, bbolt opens the file, walks every key of every bucket
// and writes to every bucket without a panic or a fault (either would end the
// fuzzer), finding the keys Check counted and leaving a file Check passes.
// Most inputs fail Check in memory, so this runs far faster than FuzzOpen.
func FuzzCheck(f *testing.F) {
	p := filepath.Join(f.TempDir(), "seed.db")
	build(f, p)
	sound, err := os.ReadFile(p)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sound, true)
	f.Add(sound[:len(sound)-testPageSize], true)
	f.Add([]byte{}, false)
	f.Fuzz(func(t *testing.T, data []byte, fix bool) {
		if len(data) > 1<<20 {
			return
		}
		if fix {
			data = bytes.Clone(data)
			fixMetas(data)
		}
		rep, err := Check(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			var ce *CorruptError
			if !errors.As(err, &ce) || len(err.Error()) > 1000 {
				t.Fatalf("not a bounded CorruptError: %v", err)
			}
			return
		}
		if len(data) == 0 {
			return
		}
		path := filepath.Join(fastDir(t), "f.db")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatalf("Check passed, bolt.Open failed: %v", err)
		}
		defer db.Close()
		if n := countKeys(t, db); n != rep.Keys {
			t.Fatalf("bbolt walks %d keys, Check counted %d", n, rep.Keys)
		}
		// bbolt writing to a file Check passed leaves a file Check passes:
		// what bbolt assumes when it changes pages, Check has checked.
		err = db.Update(func(tx *bolt.Tx) error {
			return tx.ForEach(func(_ []byte, b *bolt.Bucket) error {
				for k := range 40 {
					if err := b.Put([]byte{byte(k), 'z'}, bytes.Repeat([]byte{'v'}, 60)); err != nil {
						return err
					}
				}
				if k, v := b.Cursor().Last(); k != nil && v != nil {
					return b.Delete(k)
				}
				return nil
			})
		})
		if err != nil {
			t.Fatalf("writing: %v", err)
		}
		db.Close()
		if _, err := CheckFile(path); err != nil {
			t.Fatalf("after a write, Check refuses what bbolt wrote: %v", err)
		}
	})
}

// fastDir is a temporary directory in memory (/dev/shm) where there is one,
// so the syncs of bbolt and Open cost nothing and the fuzzers run fast.
func fastDir(t testing.TB) string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "boltdb-test-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(d) })
			return d
		}
	}
	return t.TempDir()
}
