package boltdb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// The on-disk layout of a bbolt v1.4 file (go.etcd.io/bbolt/internal/common),
// read here with bounds checks instead of through bbolt's memory map. Integers
// are in the host's byte order, as bbolt writes them through unsafe pointers.
//
//	page header (16 bytes): id u64 | flags u16 | count u16 | overflow u32
//	meta (after the header of pages 0 and 1, 64 bytes): magic u32 | version u32 |
//	  page size u32 | flags u32 | root bucket {root page u64, sequence u64} |
//	  freelist page u64 | high-water mark (first page id past the end) u64 |
//	  txid u64 | checksum u64 (FNV-64a of the 56 bytes before it)
//	branch element (16 bytes): key offset u32 | key size u32 | child page u64
//	leaf element (16 bytes): flags u32 | key offset u32 | key size u32 | value size u32
//	  (offsets count from the element itself; the value follows the key)
//	bucket value: root page u64 | sequence u64, then, if root is 0 (an inline
//	  bucket), a leaf page (header and elements) in the value itself
//	freelist page: count page ids u64; a count of 0xFFFF means the real count is
//	  the first u64 and the ids follow it
const (
	pageHeaderSize   = 16
	elementSize      = 16
	metaSize         = 64
	metaSumSize      = 56
	bucketHeaderSize = 16

	magic          = 0xED0CDAED
	formatVersion  = 2
	branchPageFlag = 0x01
	leafPageFlag   = 0x02
	freelistFlag   = 0x10
	bucketLeafFlag = 0x01
	noFreelist     = ^uint64(0)

	// MinPageSize and MaxPageSize bound the page sizes Check accepts: bbolt
	// looks for the second meta page from 1 KiB up, and 64 KiB is the largest
	// page of any Linux kernel a node runs (4 KiB, 16 KiB on a Pi 5, 64 KiB).
	MinPageSize = 1 << 10
	MaxPageSize = 64 << 10

	// maxDepth bounds the nesting of pages and buckets Check follows. A real
	// tree of a few million keys is 5 levels deep per bucket; the bound keeps a
	// hostile file from recursing without end.
	maxDepth = 256
)

var ne = binary.NativeEndian

// meta is a parsed meta page.
type meta struct {
	page     uint64 // 0 or 1
	magic    uint32
	version  uint32
	pageSize uint32
	root     uint64
	freelist uint64
	hwm      uint64
	txid     uint64
	sum      uint64
	want     uint64 // the checksum of the fields
}

func parseMeta(b []byte, page uint64) meta {
	m := b[pageHeaderSize : pageHeaderSize+metaSize]
	h := fnv.New64a()
	h.Write(m[:metaSumSize])
	return meta{
		page:     page,
		magic:    ne.Uint32(m[0:]),
		version:  ne.Uint32(m[4:]),
		pageSize: ne.Uint32(m[8:]),
		root:     ne.Uint64(m[16:]),
		freelist: ne.Uint64(m[32:]),
		hwm:      ne.Uint64(m[40:]),
		txid:     ne.Uint64(m[48:]),
		sum:      ne.Uint64(m[56:]),
		want:     h.Sum64(),
	}
}

// validate is bbolt's Meta.Validate.
func (m meta) validate() error {
	switch {
	case m.magic != magic:
		return errors.New("not a bbolt meta page (magic)")
	case m.version != formatVersion:
		return fmt.Errorf("bbolt format version %d, not %d", m.version, formatVersion)
	case m.sum != m.want:
		return errors.New("checksum mismatch")
	}
	return nil
}

// Report is what Check found in a structurally sound file.
type Report struct {
	PageSize int
	// Txid is the transaction the file opens at; Meta (0 or 1) the meta page
	// holding it.
	Txid uint64
	Meta int
	// HighWater is the number of pages in use or free, the rest of the file is
	// slack that bbolt grows into.
	HighWater uint64
	// Keys counts every key of every bucket, nested buckets' names included:
	// what a cursor walk of the whole database must visit.
	Keys int
	// Buckets counts the buckets below the root.
	Buckets int
	// Damaged is set when one meta page failed validation: bbolt opens the
	// other, the previous transaction, so the last commit before the damage
	// may be missing (a power cut while bbolt wrote the meta page, or decay).
	Damaged error
}

// CorruptError is a file that is not a sound bbolt database: the reason is
// in Err.
type CorruptError struct{ Err error }

func (e *CorruptError) Error() string { return "corrupt bbolt file: " + e.Err.Error() }
func (e *CorruptError) Unwrap() error { return e.Err }

func corrupt(format string, a ...any) error {
	return &CorruptError{fmt.Errorf(format, a...)}
}

// Check reads a bbolt file of size bytes through r, without mapping it, and
// reports whether bbolt can open and use it without touching memory past the
// file's end or tripping over a damaged page: the meta page bbolt will pick is
// valid (magic, version, FNV-64a checksum); the page size is a power of two in
// [MinPageSize, MaxPageSize]; the size is a whole number of pages, at least two,
// and covers the high-water mark; the freelist holds distinct pages between 2
// and the mark; every page reachable from the root bucket (nested buckets too)
// lies below the mark, says its own id, is a branch or leaf page referenced
// once and not free, has elements, keys and values inside it, and keys in
// strictly increasing order within the ranges of its parents; inline buckets
// are single leaf pages within their value; every page below the mark is in
// use or free. These are the invariants bbolt's own Tx.Check asserts, checked
// before any of them can crash the process. Errors: *CorruptError for a bad
// file, read errors as they come. An empty file (size 0) is not checked: bbolt
// writes a new database into it.
func Check(r io.ReaderAt, size int64) (*Report, error) {
	if size == 0 {
		return &Report{}, nil
	}
	ps, err := pageSize(r, size)
	if err != nil {
		return nil, err
	}
	c := &checker{r: r, ps: uint64(ps)}
	if size%int64(ps) != 0 {
		return nil, corrupt("size %d is not a whole number of %d-byte pages", size, ps)
	}
	if size < 2*int64(ps) {
		return nil, corrupt("size %d is less than two %d-byte meta pages", size, ps)
	}
	var metas [2]meta
	for i := range metas {
		b, err := c.read(uint64(i)*c.ps, pageHeaderSize+metaSize)
		if err != nil {
			return nil, err
		}
		metas[i] = parseMeta(b, uint64(i))
	}
	// bbolt's DB.meta: the higher txid if valid, else the other.
	a, b := metas[0], metas[1]
	if b.txid > a.txid {
		a, b = b, a
	}
	errA, errB := a.validate(), b.validate()
	rep := &Report{PageSize: ps}
	m := a
	switch {
	case errA == nil && errB == nil:
	case errA == nil:
		rep.Damaged = fmt.Errorf("meta page %d: %w", b.page, errB)
	case errB == nil:
		m = b
		rep.Damaged = fmt.Errorf("meta page %d: %w", a.page, errA)
	default:
		return nil, corrupt("meta page %d: %v; meta page %d: %v", a.page, errA, b.page, errB)
	}
	rep.Txid, rep.Meta, rep.HighWater = m.txid, int(m.page), m.hwm
	if m.pageSize != uint32(ps) {
		return nil, corrupt("meta page %d says %d-byte pages, the file has %d", m.page, m.pageSize, ps)
	}
	if m.hwm < 3 || m.hwm > uint64(size)/c.ps {
		return nil, corrupt("high-water mark of %d pages does not fit a file of %d pages (truncated?)", m.hwm, uint64(size)/c.ps)
	}
	c.hwm = m.hwm
	c.used = make([]bool, m.hwm)
	c.used[0], c.used[1] = true, true
	if m.root < 2 || m.root >= m.hwm {
		return nil, corrupt("root bucket page %d outside [2, %d)", m.root, m.hwm)
	}
	synced := m.freelist != noFreelist
	if synced {
		if err := c.freelist(m.freelist); err != nil {
			return nil, err
		}
	}
	if err := c.page(m.root, nil, nil, 0); err != nil {
		return nil, err
	}
	if synced {
		for id := uint64(2); id < m.hwm; id++ {
			if !c.used[id] && !c.free[id] {
				return nil, corrupt("page %d is neither in use nor free", id)
			}
		}
	}
	rep.Keys, rep.Buckets = c.keys, c.buckets
	return rep, nil
}

// CheckFile is Check of the file at path.
func CheckFile(path string) (*Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return Check(f, fi.Size())
}

// pageSize finds the page size the way bbolt's DB.getPageSize does: from the
// first meta page if it is valid, else from the first valid meta page at 1 KiB
// times a power of two. bbolt falls back to the OS page size when neither is
// valid; then it finds no valid meta page either and refuses the file, so here
// that is corrupt at once.
func pageSize(r io.ReaderAt, size int64) (int, error) {
	var buf [pageHeaderSize + metaSize]byte
	readMeta := func(off int64) (meta, error) {
		if off+int64(len(buf)) > size {
			return meta{}, io.ErrUnexpectedEOF
		}
		if _, err := r.ReadAt(buf[:], off); err != nil {
			return meta{}, err
		}
		return parseMeta(buf[:], 0), nil
	}
	var first error
	// bbolt reads 4 KiB for the first meta page and takes it only if all of it
	// is there.
	if size >= 4096 {
		m, err := readMeta(0)
		if err != nil {
			return 0, err
		}
		if first = m.validate(); first == nil {
			return checkPageSize(m.pageSize)
		}
	} else {
		first = fmt.Errorf("file of %d bytes is too short", size)
	}
	for i := 0; i <= 14; i++ {
		pos := int64(1024) << i
		if pos >= size-1024 {
			break
		}
		m, err := readMeta(pos)
		if errors.Is(err, io.ErrUnexpectedEOF) {
			break
		} else if err != nil {
			return 0, err
		}
		if m.validate() == nil {
			return checkPageSize(m.pageSize)
		}
	}
	return 0, corrupt("no valid meta page (first: %v)", first)
}

func checkPageSize(ps uint32) (int, error) {
	if ps < MinPageSize || ps > MaxPageSize || ps&(ps-1) != 0 {
		return 0, corrupt("page size %d is not a power of two in [%d, %d]", ps, MinPageSize, MaxPageSize)
	}
	return int(ps), nil
}

type checker struct {
	r       io.ReaderAt
	ps      uint64
	hwm     uint64
	used    []bool // pages reached from the meta: meta, freelist, tree pages
	free    map[uint64]bool
	keys    int
	buckets int
}

func (c *checker) read(off uint64, n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := c.r.ReadAt(b, int64(off)); err != nil {
		return nil, fmt.Errorf("reading %d bytes at %d: %w", n, off, err)
	}
	return b, nil
}

// span reads page id with its overflow pages after checking they lie below the
// high-water mark and were not reached before, and marks them used.
func (c *checker) span(id uint64, what string) ([]byte, uint16, uint16, error) {
	if id < 2 || id >= c.hwm {
		return nil, 0, 0, corrupt("%s page %d outside [2, %d)", what, id, c.hwm)
	}
	h, err := c.read(id*c.ps, pageHeaderSize)
	if err != nil {
		return nil, 0, 0, err
	}
	if got := ne.Uint64(h[0:]); got != id {
		return nil, 0, 0, corrupt("%s page %d says it is page %d", what, id, got)
	}
	flags, count, overflow := ne.Uint16(h[8:]), ne.Uint16(h[10:]), uint64(ne.Uint32(h[12:]))
	if overflow >= c.hwm-id {
		return nil, 0, 0, corrupt("%s page %d overflows %d pages past the high-water mark %d", what, id, overflow, c.hwm)
	}
	for i := id; i <= id+overflow; i++ {
		if c.used[i] {
			return nil, 0, 0, corrupt("page %d is referenced twice", i)
		}
		if c.free[i] {
			return nil, 0, 0, corrupt("page %d is in use and free", i)
		}
		c.used[i] = true
	}
	// Each page is read once, so all reads together are at most the file.
	b, err := c.read(id*c.ps, int((overflow+1)*c.ps))
	return b, flags, count, err
}

func (c *checker) freelist(id uint64) error {
	b, flags, count, err := c.span(id, "freelist")
	if err != nil {
		return err
	}
	if flags != freelistFlag {
		return corrupt("freelist page %d has flags %#x", id, flags)
	}
	off, n := uint64(pageHeaderSize), uint64(count)
	if count == 0xFFFF {
		if len(b) < pageHeaderSize+8 {
			return corrupt("freelist page %d is too short for its count", id)
		}
		n = ne.Uint64(b[pageHeaderSize:])
		off += 8
	}
	if n > (uint64(len(b))-off)/8 {
		return corrupt("freelist page %d claims %d ids, it has room for %d", id, n, (uint64(len(b))-off)/8)
	}
	c.free = make(map[uint64]bool, n)
	for i := uint64(0); i < n; i++ {
		p := ne.Uint64(b[off+8*i:])
		switch {
		case p < 2 || p >= c.hwm:
			return corrupt("freelist lists page %d, outside [2, %d)", p, c.hwm)
		case c.free[p]:
			return corrupt("freelist lists page %d twice", p)
		case c.used[p]:
			return corrupt("freelist lists its own page %d", p)
		}
		c.free[p] = true
	}
	return nil
}

// page checks the branch or leaf page id, whose keys must lie in [lo, hi) (nil:
// unbounded), and everything below it. A page below a branch page must hold
// keys, the first of them lo: bbolt finds a page's element in its parent by
// that key when it writes the page, and, with another key there, would leave
// the old element pointing at a freed page.
func (c *checker) page(id uint64, lo, hi []byte, depth int) error {
	if depth > maxDepth {
		return corrupt("pages nested more than %d deep at page %d", maxDepth, id)
	}
	b, flags, count, err := c.span(id, "tree")
	if err != nil {
		return err
	}
	switch flags {
	case branchPageFlag:
		if count == 0 {
			return corrupt("branch page %d has no elements", id)
		}
		keys, children, err := branchElements(b, count)
		if err != nil {
			return corrupt("branch page %d: %v", id, err)
		}
		if err := ordered(keys, lo, hi); err != nil {
			return corrupt("branch page %d: %v", id, err)
		}
		if lo != nil && string(keys[0]) != string(lo) {
			return corrupt("branch page %d: its first key is not the one its parent has for it", id)
		}
		for i, child := range children {
			next := hi
			if i+1 < len(keys) {
				next = keys[i+1]
			}
			if err := c.page(child, keys[i], next, depth+1); err != nil {
				return err
			}
		}
		return nil
	case leafPageFlag:
		what := fmt.Sprintf("leaf page %d", id)
		if lo != nil {
			if count == 0 {
				return corrupt("%s below a branch page is empty", what)
			}
			if err := c.leaf(b, count, lo, hi, depth, false, what); err != nil {
				return err
			}
			if string(leafKey(b, 0)) != string(lo) {
				return corrupt("%s: its first key is not the one its parent has for it", what)
			}
			return nil
		}
		return c.leaf(b, count, lo, hi, depth, false, what)
	}
	return corrupt("page %d in a bucket's tree has flags %#x, not a branch or leaf page", id, flags)
}

// leaf checks a leaf page's elements (in b, a page with its header; what names
// it in errors), and the buckets they hold. An inline page may not hold
// buckets: bbolt inlines only buckets without any.
func (c *checker) leaf(b []byte, count uint16, lo, hi []byte, depth int, inline bool, what string) error {
	if uint64(len(b)) < pageHeaderSize+uint64(count)*elementSize {
		return corrupt("%s: %d elements do not fit in %d bytes", what, count, len(b))
	}
	keys := make([][]byte, count)
	vals := make([][]byte, count)
	isBucket := make([]bool, count)
	for i := range int(count) {
		e := pageHeaderSize + i*elementSize
		flags := ne.Uint32(b[e:])
		pos, ksize, vsize := uint64(ne.Uint32(b[e+4:])), uint64(ne.Uint32(b[e+8:])), uint64(ne.Uint32(b[e+12:]))
		start := uint64(e) + pos
		if start+ksize+vsize > uint64(len(b)) {
			return corrupt("%s: element %d (key %d + value %d bytes at %d) runs past its %d bytes", what, i, ksize, vsize, start, len(b))
		}
		switch flags {
		case 0:
		case bucketLeafFlag:
			if inline {
				return corrupt("%s: element %d is a bucket inside an inline bucket", what, i)
			}
			isBucket[i] = true
		default:
			return corrupt("%s: element %d has flags %#x", what, i, flags)
		}
		keys[i] = b[start : start+ksize]
		vals[i] = b[start+ksize : start+ksize+vsize]
	}
	if err := ordered(keys, lo, hi); err != nil {
		return corrupt("%s: %v", what, err)
	}
	c.keys += int(count)
	for i := range keys {
		if isBucket[i] {
			if err := c.bucket(vals[i], depth+1, fmt.Sprintf("%s: bucket %s", what, name(keys[i]))); err != nil {
				return err
			}
		}
	}
	return nil
}

// bucket checks a bucket value: its tree, or its inline page.
func (c *checker) bucket(v []byte, depth int, what string) error {
	c.buckets++
	if len(v) < bucketHeaderSize {
		return corrupt("%s: value of %d bytes", what, len(v))
	}
	root := ne.Uint64(v)
	if root != 0 {
		return c.page(root, nil, nil, depth)
	}
	p := v[bucketHeaderSize:]
	if len(p) < pageHeaderSize {
		return corrupt("%s: inline page of %d bytes", what, len(p))
	}
	if flags := ne.Uint16(p[8:]); flags != leafPageFlag {
		return corrupt("%s: inline page has flags %#x", what, flags)
	}
	return c.leaf(p, ne.Uint16(p[10:]), nil, nil, depth, true, what+" (inline)")
}

// leafKey is the key of element i of leaf page b, which leaf has checked.
func leafKey(b []byte, i int) []byte {
	e := pageHeaderSize + i*elementSize
	start := uint64(e) + uint64(ne.Uint32(b[e+4:]))
	return b[start : start+uint64(ne.Uint32(b[e+8:]))]
}

func branchElements(b []byte, count uint16) (keys [][]byte, children []uint64, err error) {
	if uint64(len(b)) < pageHeaderSize+uint64(count)*elementSize {
		return nil, nil, fmt.Errorf("%d elements do not fit in %d bytes", count, len(b))
	}
	for i := range int(count) {
		e := pageHeaderSize + i*elementSize
		pos, ksize := uint64(ne.Uint32(b[e:])), uint64(ne.Uint32(b[e+4:]))
		start := uint64(e) + pos
		if start+ksize > uint64(len(b)) {
			return nil, nil, fmt.Errorf("element %d (key %d bytes at %d) runs past the page's %d bytes", i, ksize, start, len(b))
		}
		keys = append(keys, b[start:start+ksize])
		children = append(children, ne.Uint64(b[e+8:]))
	}
	return keys, children, nil
}

// name quotes a bucket name for an error, shortened: errors name buckets but
// never print keys or values, which may be anything a store keeps.
func name(k []byte) string {
	if len(k) > 24 {
		return fmt.Sprintf("%q…", k[:24])
	}
	return fmt.Sprintf("%q", k)
}

// ordered checks that keys are non-empty, strictly increasing, and in [lo, hi).
func ordered(keys [][]byte, lo, hi []byte) error {
	for i, k := range keys {
		switch {
		case len(k) == 0:
			return fmt.Errorf("key %d is empty", i)
		case i == 0 && lo != nil && string(k) < string(lo):
			return fmt.Errorf("key %d is below its parent's key", i)
		case i > 0 && string(k) <= string(keys[i-1]):
			return fmt.Errorf("key %d is not above key %d", i, i-1)
		case hi != nil && string(k) >= string(hi):
			return fmt.Errorf("key %d is not below the parent's next key", i)
		}
	}
	return nil
}
