// Package boltdb opens bbolt databases defensively. bbolt maps the file into
// memory and trusts it: a damaged page panics inside bolt.Open ("invalid freelist
// page"), a truncated file faults (SIGBUS) on the first read past its end, and a
// page pointing into itself recurses until the stack overflows. None of that can
// be recovered once it happens, so Open checks the file first, without mapping
// it (Check: meta pages, sizes, the freelist and every page of every bucket),
// then opens it with a fault turned into a recoverable panic, walks it once more
// through bbolt, and runs the caller's own check of its content. A file that
// fails any step is moved aside to <path>.corrupt-<UTC time>, the move is
// reported (Recovery) for the caller to log and show, and a new, empty database
// takes its place: the service keeps running and the damaged file is kept for a
// post-mortem.
//
// Every bbolt store of the system opens through here, never with bolt.Open.
package boltdb

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/skyfleet/skyfleet/internal/durable"
)

// Options configure Open; the zero value is fine.
type Options struct {
	// Timeout is how long Open waits for another process (another master, say)
	// to let go of the file's lock; 0 means 2 s. Running out is an error, never
	// a reason to move the file.
	Timeout time.Duration
	// Check, if set, checks the content of an existing file after it passed
	// the structural checks, under the same protection against panics and
	// faults. It may update the database (a format migration, say). An error
	// means the content is damaged: the file is moved aside and a new one
	// started; an error made with Refuse instead leaves the file alone and
	// fails Open. Check is not run on a file Open creates (or finds empty,
	// which bbolt initialises): the caller sets that one up. It should name
	// what is wrong without quoting stored values.
	Check func(*bolt.DB) error
	// PageSize is the page size of a new file; 0 means the OS page size.
	// Tests use small pages for small files.
	PageSize int
	// Now gives the time of the moved-aside file's name; nil means time.Now.
	Now func() time.Time
}

// Refuse wraps err for Options.Check: the file is sound but must not be used
// (written by a newer program, say). Open then closes it, leaves it where it
// is, and returns err.
func Refuse(err error) error { return &refusal{err} }

type refusal struct{ err error }

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

// KeepCorrupt is how many moved-aside copies of one database are kept, and
// CorruptMaxAge how long: older ones are deleted when another is moved aside,
// so a file that keeps breaking cannot fill the disk.
const (
	KeepCorrupt   = 3
	CorruptMaxAge = 30 * 24 * time.Hour
)

// Recovery says what Open did about a damaged file. Callers log it and show it
// to the operator (the master's /api/status).
type Recovery struct {
	// Path is the database's path.
	Path string `json:"path"`
	// Reason says what was wrong.
	Reason string `json:"reason"`
	// MovedTo is where the damaged file went; "" when it was kept: one of its
	// two meta pages was damaged and bbolt opened the other one, the state
	// before the last commit, which may therefore be missing.
	MovedTo string `json:"moved_to,omitempty"`
	// Time is when Open found it.
	Time time.Time `json:"time"`
}

// String says what happened, for a log line.
func (r *Recovery) String() string {
	if r.MovedTo == "" {
		return fmt.Sprintf("%s: %s; opened the previous transaction, the last changes before the damage may be missing", r.Path, r.Reason)
	}
	return fmt.Sprintf("%s was damaged (%s): moved it to %s and started an empty database", r.Path, r.Reason, r.MovedTo)
}

// Open opens or creates the bbolt database at path (mode 0600) as described in
// the package comment. It returns the open database and, if the file was
// damaged, what was done about it (nil otherwise). Errors, which leave the
// file where it is: the file cannot be opened, read or locked (another process
// holds it for longer than Options.Timeout), the directory does not allow the
// move, or the new database cannot be created.
func Open(path string, opts *Options) (*bolt.DB, *Recovery, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	db, reason, err := openChecked(path, &o)
	if err != nil {
		return nil, nil, err
	}
	if db != nil && reason == nil {
		return db, nil, nil
	}
	if db != nil {
		// Opened, but one meta page was damaged: report, keep.
		return db, &Recovery{Path: path, Reason: reason.Error(), Time: o.Now().UTC()}, nil
	}
	rec := &Recovery{Path: path, Reason: reason.Error(), Time: o.Now().UTC()}
	// The checks let go of the lock (bbolt unlocks when it closes); take it
	// again so the file is not moved from under another process that opened
	// it in between.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("boltdb: %s is damaged (%s): %w", path, rec.Reason, err)
	}
	defer f.Close()
	if err := lock(f, o.Timeout); err != nil {
		return nil, nil, fmt.Errorf("boltdb: %s is damaged (%s), but %w", path, rec.Reason, err)
	}
	if rec.MovedTo, err = moveAside(path, rec.Time); err != nil {
		return nil, nil, fmt.Errorf("boltdb: %s is damaged (%s) and could not be moved aside: %w", path, rec.Reason, err)
	}
	pruneCorrupt(path, rec.Time)
	db, err = bolt.Open(path, 0o600, o.boltOptions(nil))
	if err != nil {
		return nil, nil, fmt.Errorf("boltdb: %s: creating a new database after moving the damaged one to %s: %w", path, rec.MovedTo, err)
	}
	return db, rec, nil
}

func (o *Options) boltOptions(f *os.File) *bolt.Options {
	bo := &bolt.Options{Timeout: o.Timeout, PageSize: o.PageSize}
	if f != nil {
		// Hand bbolt the file Open checked and locked: bbolt's own flock on
		// it then succeeds at once, and no other process can slip in between.
		bo.OpenFile = func(string, int, os.FileMode) (*os.File, error) { return f, nil }
	}
	return bo
}

// openChecked opens path if it is sound. It returns the database (and, when
// one meta page was damaged, that as reason), or a nil database and why the
// file must be moved aside, or an error that is not the file's fault.
func openChecked(path string, o *Options) (db *bolt.DB, reason error, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("boltdb: %w", err)
	}
	handed := false
	defer func() {
		if !handed {
			f.Close()
		}
	}()
	if err := lock(f, o.Timeout); err != nil {
		return nil, nil, fmt.Errorf("boltdb: %s: %w", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("boltdb: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("boltdb: %s is not a regular file", path)
	}
	rep, err := Check(f, fi.Size())
	if err != nil {
		var ce *CorruptError
		if errors.As(err, &ce) {
			return nil, ce.Err, nil
		}
		return nil, nil, fmt.Errorf("boltdb: %s: %w", path, err)
	}
	handed = true // bbolt closes f, also when it fails
	err = protect(func() error {
		var err error
		db, err = bolt.Open(path, 0o600, o.boltOptions(f))
		return err
	})
	var pe *panicError
	switch {
	case errors.As(err, &pe):
		// bbolt did not get to close f; its mapping, if any, stays until the
		// process ends.
		f.Close()
		return nil, err, nil
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrChecksum):
		return nil, fmt.Errorf("bbolt: %w", err), nil
	case err != nil:
		return nil, nil, fmt.Errorf("boltdb: %s: %w", path, err)
	}
	check := o.Check
	if fi.Size() == 0 {
		check = nil
	}
	if reason := verify(db, rep, check); reason != nil {
		if err := protect(db.Close); err != nil {
			f.Close()
		}
		var ref *refusal
		if errors.As(reason, &ref) {
			return nil, nil, fmt.Errorf("boltdb: %s: %w", path, ref.err)
		}
		return nil, reason, nil
	}
	return db, rep.Damaged, nil
}

// verify walks every key of db through bbolt (what Check counted must be what
// bbolt finds) and runs the caller's check, both protected.
func verify(db *bolt.DB, rep *Report, check func(*bolt.DB) error) error {
	if err := protect(func() error { return walk(db, rep) }); err != nil {
		return err
	}
	if check == nil {
		return nil
	}
	if err := protect(func() error { return check(db) }); err != nil {
		var ref *refusal
		if errors.As(err, &ref) {
			return ref
		}
		return fmt.Errorf("content: %w", err)
	}
	return nil
}

// walk reads every key and value of every bucket through bbolt.
func walk(db *bolt.DB, rep *Report) error {
	keys := 0
	var sum uint32 // reads every byte, so a fault would happen here
	var bucket func(b *bolt.Bucket, depth int) error
	bucket = func(b *bolt.Bucket, depth int) error {
		if depth > maxDepth {
			return errors.New("buckets nested too deep")
		}
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			keys++
			sum = crc32.Update(sum, crc32.IEEETable, k)
			sum = crc32.Update(sum, crc32.IEEETable, v)
			if v == nil {
				child := b.Bucket(k)
				if child == nil {
					return fmt.Errorf("bucket %s cannot be opened", name(k))
				}
				if err := bucket(child, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	err := db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(k []byte, b *bolt.Bucket) error {
			keys++
			return bucket(b, 1)
		})
	})
	if err != nil {
		return err
	}
	// An empty file was just initialised: Check saw no keys, nor are there any.
	if keys != rep.Keys {
		return fmt.Errorf("bbolt walks %d keys, the pages hold %d", keys, rep.Keys)
	}
	_ = sum
	return nil
}

// panicError is a panic (or a memory fault turned into one) inside bbolt.
type panicError struct{ v any }

func (e *panicError) Error() string {
	s := fmt.Sprint(e.v)
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return "bbolt panicked: " + s
}

// protect runs fn, turning a panic into an error, and a fault in the memory
// map (a read past the end of a truncated file is SIGBUS) into a panic first:
// debug.SetPanicOnFault holds for this goroutine, where bbolt reads its map
// while opening and walking. What cannot be caught — a stack overflow, running
// out of memory — is what Check rules out before.
func protect(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if v := recover(); v != nil {
			err = &panicError{v}
		}
	}()
	return fn()
}

const (
	corruptSuffix = ".corrupt-"
	stampLayout   = "20060102T150405Z"
)

// moveAside renames path to path.corrupt-<time> (with -2, -3... if taken)
// and syncs the directory, so the move survives a power cut.
func moveAside(path string, t time.Time) (string, error) {
	base := path + corruptSuffix + t.UTC().Format(stampLayout)
	to := base
	for i := 2; ; i++ {
		if _, err := os.Lstat(to); errors.Is(err, fs.ErrNotExist) {
			break
		} else if err != nil {
			return "", err
		}
		to = fmt.Sprintf("%s-%d", base, i)
	}
	if err := os.Rename(path, to); err != nil {
		return "", err
	}
	if err := durable.SyncDir(filepath.Dir(path)); err != nil {
		return "", err
	}
	return to, nil
}

// pruneCorrupt deletes moved-aside copies of path beyond the newest
// KeepCorrupt and those moved more than CorruptMaxAge ago, by the time in
// their names. It is best effort: a copy it cannot delete stays.
func pruneCorrupt(path string, now time.Time) {
	matches, _ := filepath.Glob(globEscape(path) + corruptSuffix + "*")
	type moved struct {
		name string
		at   time.Time
	}
	var copies []moved
	for _, m := range matches {
		stamp, _, _ := strings.Cut(strings.TrimPrefix(m, path+corruptSuffix), "-")
		t, err := time.Parse(stampLayout, stamp)
		if fi, lerr := os.Lstat(m); err == nil && lerr == nil && fi.Mode().IsRegular() {
			copies = append(copies, moved{m, t})
		}
	}
	// Newest first; the same second's copies by their -N, as names sort.
	sort.Slice(copies, func(i, j int) bool {
		if !copies[i].at.Equal(copies[j].at) {
			return copies[i].at.After(copies[j].at)
		}
		return len(copies[i].name) > len(copies[j].name) || len(copies[i].name) == len(copies[j].name) && copies[i].name > copies[j].name
	})
	removed := false
	for i, c := range copies {
		if i >= KeepCorrupt || now.Sub(c.at) > CorruptMaxAge {
			removed = os.Remove(c.name) == nil || removed
		}
	}
	if removed {
		durable.SyncDir(filepath.Dir(path))
	}
}

func globEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`)
	return r.Replace(s)
}
