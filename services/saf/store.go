package saf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/skyfleet/skyfleet/internal/boltdb"
)

// StoreFile is the custody store's file name in the node's data directory.
const StoreFile = "saf.db"

// Defaults of StoreOptions.
const (
	// DefaultMaxBytes caps the bundle bytes a node holds: 64 MiB, a small part of
	// the smallest card, and what a Pi 3 pages comfortably.
	DefaultMaxBytes = 64 << 20
	// DefaultMaxBundles caps how many bundles a node holds.
	DefaultMaxBundles = 100_000
	// maxDeliveredFactor: the delivered-ID memory holds up to this many times
	// MaxBundles entries (each 40 bytes) before the soonest to expire go.
	maxDeliveredFactor = 4
	// tickSave is how often the tick clock is saved; after a crash it resumes
	// this far (plus a margin) above the last save, so ticks never repeat.
	tickSave = 30 * time.Second
)

// StoreOptions configure OpenStore; zero values take the defaults.
type StoreOptions struct {
	// MaxBytes caps the bytes of held bundles (DefaultMaxBytes). One source may
	// use at most a quarter of it and one neighbour half, so one chatty (or
	// hostile) node holding the network key cannot take the whole store.
	MaxBytes int64
	// MaxBundles caps the number of held bundles (DefaultMaxBundles).
	MaxBundles int
	// Now is the store's monotonic time source (time.Now); tests move it.
	Now func() time.Time
	// Wall, if set, returns the wall-clock time and whether it is known; a known
	// clock also expires bundles whose creation time plus lifetime has passed.
	Wall func() (time.Time, bool)
	// NoGroupCommit commits (and fsyncs) every bundle in a transaction of its own,
	// as a baseline for the group-commit benchmark; never set it in production.
	NoGroupCommit bool
	// Logf receives notable events.
	Logf func(format string, args ...any)
}

var (
	bucketBundles   = []byte("bundles")
	bucketDelivered = []byte("delivered")
	bucketMeta      = []byte("meta")
	keyTicks        = []byte("ticks")
)

// record flags.
const flagDelivered = 1 // delivered to the local application (broadcast bundles stay to be forwarded)

// recordHeader is arrival tick (8) | age at arrival ms (8) | previous hop (33) | flags (1).
const recordHeader = 8 + 8 + KeyLen + 1

// entry is the in-memory index of one held bundle: everything routing needs,
// without the payload (which stays on disk until sent).
type entry struct {
	id        ID
	class     Class
	port      uint16
	src, dst  Key
	prev      Key // the neighbour it came from (zero: made here or imported)
	size      int
	created   int64
	arrival   uint64 // tick (ms) when this node took custody
	ageAt     uint64 // age (ms) when this node took custody
	lifetime  uint64 // ms
	flags     byte
	committed bool // false while its commit is in flight
}

// Store is the custody store: bundles this node is custodian of, in bbolt, with an
// in-memory index. Every method is safe for concurrent use.
type Store struct {
	db   *bolt.DB
	opts StoreOptions
	rec  *boltdb.Recovery

	openedAt  time.Time
	baseTicks uint64

	mu        sync.Mutex
	index     map[ID]*entry
	bytes     int64
	perSource map[Key]int64
	perPrev   map[Key]int64 // by the neighbour a bundle came from (zero: made here or imported)
	delivered map[ID]uint64 // ID -> tick after which it may be forgotten

	// Counters (Stats).
	accepted, duplicates, full, expired, removed, corrupt, commits atomic.Uint64
}

// OpenStore opens (or creates) dir/saf.db through internal/boltdb, which moves a
// damaged file aside (reported by Recovery) and starts an empty one. Records that
// do not decode are deleted and counted (Stats.Corrupt). Errors: the file cannot
// be opened or created.
func OpenStore(dir string, opts StoreOptions) (*Store, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.MaxBundles <= 0 {
		opts.MaxBundles = DefaultMaxBundles
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	db, rec, err := boltdb.Open(filepath.Join(dir, StoreFile), nil)
	if err != nil {
		return nil, fmt.Errorf("saf: %w", err)
	}
	if rec != nil {
		opts.Logf("saf: %s", rec)
	}
	// Group commit: concurrent Accepts share one transaction and one fsync. A
	// short delay, since each custody ack waits for it.
	db.MaxBatchDelay = 2 * time.Millisecond
	s := &Store{db: db, opts: opts, rec: rec, openedAt: opts.Now(), index: make(map[ID]*entry),
		perSource: make(map[Key]int64), perPrev: make(map[Key]int64), delivered: make(map[ID]uint64)}
	if err := s.load(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// load reads the tick clock and the index.
func (s *Store) load() error {
	var bad [][]byte
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketBundles, bucketDelivered, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if v := tx.Bucket(bucketMeta).Get(keyTicks); len(v) == 8 {
			// The last save may be up to tickSave old: resume above anything
			// handed out since, with a margin for a slow save.
			s.baseTicks = binary.BigEndian.Uint64(v) + uint64((tickSave+5*time.Second)/time.Millisecond)
		}
		if err := tx.Bucket(bucketMeta).Put(keyTicks, binary.BigEndian.AppendUint64(nil, s.baseTicks)); err != nil {
			return err
		}
		c := tx.Bucket(bucketBundles).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			e, err := decodeRecord(k, v)
			if err != nil {
				bad = append(bad, append([]byte(nil), k...))
				continue
			}
			s.index[e.id] = e
			s.bytes += int64(e.size)
			s.perSource[e.src] += int64(e.size)
			s.perPrev[e.prev] += int64(e.size)
		}
		for _, k := range bad {
			if err := tx.Bucket(bucketBundles).Delete(k); err != nil {
				return err
			}
		}
		dc := tx.Bucket(bucketDelivered).Cursor()
		for k, v := dc.First(); k != nil; k, v = dc.Next() {
			if len(k) == len(ID{}) && len(v) == 8 {
				s.delivered[ID(k)] = binary.BigEndian.Uint64(v)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("saf: reading %s: %w", StoreFile, err)
	}
	if len(bad) > 0 {
		s.corrupt.Add(uint64(len(bad)))
		s.opts.Logf("saf: %d damaged bundle records deleted", len(bad))
	}
	return nil
}

// decodeRecord reads one bundles-bucket record, checking that its encoding parses
// and hashes to its key.
func decodeRecord(k, v []byte) (*entry, error) {
	if len(k) != len(ID{}) || len(v) < recordHeader {
		return nil, errors.New("short record")
	}
	enc := v[recordHeader:]
	if _, err := Parse(enc); err != nil {
		return nil, err
	}
	if IDOf(enc) != ID(k) {
		return nil, errors.New("record does not match its ID")
	}
	e := &entry{id: ID(k), size: len(enc), committed: true}
	e.arrival = binary.BigEndian.Uint64(v)
	e.ageAt = binary.BigEndian.Uint64(v[8:])
	copy(e.prev[:], v[16:])
	e.flags = v[16+KeyLen]
	e.fillHeader(enc)
	return e, nil
}

func (e *entry) fillHeader(enc []byte) {
	var lt time.Duration
	e.class, e.port, e.src, e.dst, lt = headerOf(enc)
	e.lifetime = uint64(lt / time.Millisecond)
	e.created = createdOf(enc)
}

func encodeRecord(e *entry, enc []byte) []byte {
	v := make([]byte, 0, recordHeader+len(enc))
	v = binary.BigEndian.AppendUint64(v, e.arrival)
	v = binary.BigEndian.AppendUint64(v, e.ageAt)
	v = append(v, e.prev[:]...)
	v = append(v, e.flags)
	return append(v, enc...)
}

// Close saves the tick clock and closes the file.
func (s *Store) Close() error {
	s.SaveTicks()
	return s.db.Close()
}

// Recovery says what opening did about a damaged file, nil if nothing.
func (s *Store) Recovery() *boltdb.Recovery { return s.rec }

// Ticks is the store's clock in milliseconds: it runs while the node runs and
// resumes above its last saved value after a restart, so ages measured with it
// never shrink. It knows nothing of the wall clock.
func (s *Store) Ticks() uint64 {
	return s.baseTicks + uint64(max(s.opts.Now().Sub(s.openedAt), 0)/time.Millisecond)
}

// SaveTicks persists the tick clock (the engine calls it every tickSave).
func (s *Store) SaveTicks() error {
	t := s.Ticks()
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyTicks, binary.BigEndian.AppendUint64(nil, t))
	})
}

func (s *Store) commit(fn func(*bolt.Tx) error) error {
	s.commits.Add(1)
	if s.opts.NoGroupCommit {
		return s.db.Update(fn)
	}
	// Batch may run fn more than once (when another call in the batch fails), so
	// every fn here is idempotent: puts and deletes of fixed values.
	return s.db.Batch(fn)
}

// age returns e's age in ms at tick now.
func (e *entry) age(now uint64) uint64 {
	if now < e.arrival {
		return e.ageAt
	}
	return e.ageAt + (now - e.arrival)
}

// expiredAt reports whether e is past its lifetime at tick now (or by the wall
// clock, when it is known and the bundle's creation time is).
func (s *Store) expiredAt(e *entry, now uint64) bool {
	if e.age(now) > e.lifetime {
		return true
	}
	if s.opts.Wall != nil && e.created > 0 {
		if w, ok := s.opts.Wall(); ok && w.UnixMilli() > e.created+int64(e.lifetime) {
			return true
		}
	}
	return false
}

// Accept takes custody of a parsed bundle (enc its canonical encoding) that has
// existed for age, coming from neighbour prev (zero when made here or imported).
// It returns only once the bundle is committed and fsynced, so a StatusAccepted
// may be acknowledged upstream: a power cut after it loses nothing.
//
// Statuses: StatusAccepted; StatusDuplicate when held or already delivered here;
// StatusExpired when its age (or the known wall clock) is past its lifetime;
// StatusFull when MaxBytes, MaxBundles or the source's quarter would be exceeded.
// Errors: the commit failed (the bundle is not held).
func (s *Store) Accept(enc []byte, age time.Duration, prev Key) (ID, Status, error) {
	id := IDOf(enc)
	e := &entry{id: id, size: len(enc), prev: prev, ageAt: uint64(max(age, 0) / time.Millisecond)}
	e.fillHeader(enc)
	now := s.Ticks()
	e.arrival = now
	if s.expiredAt(e, now) {
		s.expired.Add(1)
		return id, StatusExpired, nil
	}
	s.mu.Lock()
	if _, held := s.index[id]; held {
		s.mu.Unlock()
		s.duplicates.Add(1)
		return id, StatusDuplicate, nil
	}
	if _, done := s.delivered[id]; done {
		s.mu.Unlock()
		s.duplicates.Add(1)
		return id, StatusDuplicate, nil
	}
	// The source field is not authenticated at this layer, so a neighbour could
	// spread its bundles over made-up sources: it gets half the store at most.
	if s.bytes+int64(e.size) > s.opts.MaxBytes || len(s.index) >= s.opts.MaxBundles ||
		s.perSource[e.src]+int64(e.size) > s.opts.MaxBytes/4 ||
		(prev != Key{} && s.perPrev[prev]+int64(e.size) > s.opts.MaxBytes/2) {
		s.mu.Unlock()
		s.full.Add(1)
		return id, StatusFull, nil
	}
	// Reserve the room and the ID before the commit, so a concurrent duplicate
	// waits for nothing and the caps hold exactly.
	s.index[id] = e
	s.bytes += int64(e.size)
	s.perSource[e.src] += int64(e.size)
	s.perPrev[e.prev] += int64(e.size)
	s.mu.Unlock()
	rec := encodeRecord(e, enc)
	err := s.commit(func(tx *bolt.Tx) error { return tx.Bucket(bucketBundles).Put(id[:], rec) })
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.unindexLocked(e)
		return id, 0, fmt.Errorf("saf: committing bundle %s: %w", id.String()[:16], err)
	}
	e.committed = true
	s.accepted.Add(1)
	return id, StatusAccepted, nil
}

func (s *Store) unindexLocked(e *entry) {
	if s.index[e.id] != e {
		return
	}
	delete(s.index, e.id)
	s.bytes -= int64(e.size)
	if s.perSource[e.src] -= int64(e.size); s.perSource[e.src] <= 0 {
		delete(s.perSource, e.src)
	}
	if s.perPrev[e.prev] -= int64(e.size); s.perPrev[e.prev] <= 0 {
		delete(s.perPrev, e.prev)
	}
}

// Get returns a held bundle's encoding and its age now. ok is false when the
// bundle is not held (or its commit is still in flight).
func (s *Store) Get(id ID) (enc []byte, age time.Duration, ok bool) {
	s.mu.Lock()
	e := s.index[id]
	s.mu.Unlock()
	if e == nil || !e.committed {
		return nil, 0, false
	}
	s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketBundles).Get(id[:]); len(v) > recordHeader {
			enc = append([]byte(nil), v[recordHeader:]...)
		}
		return nil
	})
	if enc == nil {
		return nil, 0, false
	}
	return enc, time.Duration(e.age(s.Ticks())) * time.Millisecond, true
}

// Release ends this node's custody of id: the next custodian acknowledged it, or
// it is not worth keeping. With delivered set, the ID is remembered until the
// bundle's lifetime ends, so copies still in flight are recognised as duplicates
// (and never delivered twice). Releasing a bundle not held only records delivered.
func (s *Store) Release(id ID, delivered bool) error {
	s.mu.Lock()
	e := s.index[id]
	if e != nil && !e.committed {
		s.mu.Unlock()
		return fmt.Errorf("saf: bundle %s is still being committed", id.String()[:16])
	}
	var until uint64
	if e != nil {
		until = e.arrival + (e.lifetime - min(e.lifetime, e.ageAt)) + 1
	} else {
		until = s.Ticks() + uint64(MaxLifetime/time.Millisecond)
	}
	s.mu.Unlock()
	err := s.commit(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketBundles).Delete(id[:]); err != nil {
			return err
		}
		if delivered {
			return tx.Bucket(bucketDelivered).Put(id[:], binary.BigEndian.AppendUint64(nil, until))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("saf: releasing bundle %s: %w", id.String()[:16], err)
	}
	s.mu.Lock()
	if e != nil {
		s.unindexLocked(e)
		s.removed.Add(1)
	}
	if delivered {
		s.delivered[id] = until
	}
	s.mu.Unlock()
	return nil
}

// MarkDelivered records that a held bundle (a broadcast one, kept to be forwarded)
// was delivered to the local application, so a restart does not deliver it again.
func (s *Store) MarkDelivered(id ID) error {
	s.mu.Lock()
	e := s.index[id]
	s.mu.Unlock()
	if e == nil {
		return nil
	}
	err := s.commit(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketBundles)
		v := b.Get(id[:])
		if len(v) < recordHeader {
			return nil
		}
		nv := append([]byte(nil), v...)
		nv[16+KeyLen] |= flagDelivered
		return b.Put(id[:], nv)
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	e.flags |= flagDelivered
	s.mu.Unlock()
	return nil
}

// Delivered reports whether id was delivered to the local application: a
// bundle released as delivered (while its ID is remembered) or a broadcast
// still held and marked delivered.
func (s *Store) Delivered(id ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.index[id]; e != nil && e.flags&flagDelivered != 0 {
		return true
	}
	_, ok := s.delivered[id]
	return ok
}

// Expire drops held bundles past their lifetime (counted in Stats.Expired) and
// forgets delivered IDs whose bundles can no longer be in flight. It returns the
// IDs of the dropped bundles.
func (s *Store) Expire() ([]ID, error) {
	now := s.Ticks()
	s.mu.Lock()
	var gone []*entry
	for _, e := range s.index {
		if e.committed && s.expiredAt(e, now) {
			gone = append(gone, e)
		}
	}
	var forget []ID
	for id, until := range s.delivered {
		if now > until {
			forget = append(forget, id)
		}
	}
	if over := len(s.delivered) - len(forget) - maxDeliveredFactor*s.opts.MaxBundles; over > 0 {
		// Beyond the cap the soonest to expire go first: they are the least
		// likely to still be in flight.
		rest := make([]ID, 0, len(s.delivered))
		for id, until := range s.delivered {
			if now <= until {
				rest = append(rest, id)
			}
		}
		sort.Slice(rest, func(i, j int) bool { return s.delivered[rest[i]] < s.delivered[rest[j]] })
		forget = append(forget, rest[:over]...)
	}
	s.mu.Unlock()
	if len(gone) == 0 && len(forget) == 0 {
		return nil, nil
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, e := range gone {
			if err := tx.Bucket(bucketBundles).Delete(e.id[:]); err != nil {
				return err
			}
		}
		for _, id := range forget {
			if err := tx.Bucket(bucketDelivered).Delete(id[:]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("saf: expiring: %w", err)
	}
	ids := make([]ID, 0, len(gone))
	s.mu.Lock()
	for _, e := range gone {
		s.unindexLocked(e)
		ids = append(ids, e.id)
	}
	for _, id := range forget {
		delete(s.delivered, id)
	}
	s.mu.Unlock()
	s.expired.Add(uint64(len(gone)))
	return ids, nil
}

// Info describes one held bundle (GET /saf/bundles).
type Info struct {
	ID          string `json:"id"`
	Source      string `json:"source"`      // hex public key
	Destination string `json:"destination"` // hex public key; "" for broadcast
	Port        uint16 `json:"port"`
	Class       string `json:"class"` // "bulk" or "real-time"
	Bytes       int    `json:"bytes"`
	AgeMs       uint64 `json:"age_ms"`
	LifetimeS   uint64 `json:"lifetime_s"`
	// From is the neighbour it came from (hex), "" when made here or imported.
	From      string `json:"from,omitempty"`
	Delivered bool   `json:"delivered_here,omitempty"`
}

func (e *entry) info(now uint64) Info {
	in := Info{ID: e.id.String(), Source: fmt.Sprintf("%x", e.src[:]), Port: e.port,
		Class: "bulk", Bytes: e.size, AgeMs: e.age(now), LifetimeS: e.lifetime / 1000,
		Delivered: e.flags&flagDelivered != 0}
	if !e.dst.IsBroadcast() {
		in.Destination = fmt.Sprintf("%x", e.dst[:])
	}
	if e.class == ClassRealTime {
		in.Class = "real-time"
	}
	if e.prev != (Key{}) {
		in.From = fmt.Sprintf("%x", e.prev[:])
	}
	return in
}

// List describes every held bundle, oldest custody first.
func (s *Store) List() []Info {
	now := s.Ticks()
	s.mu.Lock()
	es := make([]*entry, 0, len(s.index))
	for _, e := range s.index {
		if e.committed {
			es = append(es, e)
		}
	}
	s.mu.Unlock()
	sort.Slice(es, func(i, j int) bool { return es[i].arrival < es[j].arrival })
	out := make([]Info, 0, len(es))
	for _, e := range es {
		out = append(out, e.info(now))
	}
	return out
}

// lookup returns a copy of the index entry of a held, committed bundle.
func (s *Store) lookup(id ID) (entry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.index[id]
	if e == nil || !e.committed {
		return entry{}, false
	}
	return *e, true
}

// snapshot returns copies of the committed entries (for the engine's scheduling).
func (s *Store) snapshot() []entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]entry, 0, len(s.index))
	for _, e := range s.index {
		if e.committed {
			out = append(out, *e)
		}
	}
	return out
}

// StoreStats are the store's counters and sizes (GET /saf/stats).
type StoreStats struct {
	Bundles    int    `json:"bundles"`
	Bytes      int64  `json:"bytes"`
	MaxBytes   int64  `json:"max_bytes"`
	MaxBundles int    `json:"max_bundles"`
	Delivered  int    `json:"delivered_ids"` // IDs remembered as delivered here
	Accepted   uint64 `json:"accepted"`
	Duplicates uint64 `json:"duplicates"`
	Full       uint64 `json:"refused_full"`
	Expired    uint64 `json:"expired"`
	Released   uint64 `json:"released"`
	Corrupt    uint64 `json:"corrupt_records"`
	Commits    uint64 `json:"commits"`
	TicksMs    uint64 `json:"ticks_ms"`
	// Recovery, when set, says the file was damaged and moved aside at start.
	Recovery string `json:"recovery,omitempty"`
}

// Stats returns the store's counters and sizes.
func (s *Store) Stats() StoreStats {
	s.mu.Lock()
	st := StoreStats{Bundles: len(s.index), Bytes: s.bytes, MaxBytes: s.opts.MaxBytes,
		MaxBundles: s.opts.MaxBundles, Delivered: len(s.delivered)}
	s.mu.Unlock()
	st.Accepted, st.Duplicates, st.Full = s.accepted.Load(), s.duplicates.Load(), s.full.Load()
	st.Expired, st.Released, st.Corrupt = s.expired.Load(), s.removed.Load(), s.corrupt.Load()
	st.Commits, st.TicksMs = s.commits.Load(), s.Ticks()
	if s.rec != nil {
		st.Recovery = s.rec.String()
	}
	return st
}
