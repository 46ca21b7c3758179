// Package registry is the fleet master's memory, a bbolt database: every node that
// ever reported (its last report and when), each node's history of state changes, a
// ring of link-metric samples per node for the dashboard's plots, the operator's
// log of remote actions, and, apart from it, the log of refused reports. Online is
// not stored as truth: a node is online while its last report is younger than the
// offline threshold, and Sweep writes the "offline" event into the history when one
// goes quiet.
//
// Names are labels, not identities: any node may report any name, so a name can
// belong to several nodes. Nodes and Lookup mark such nodes (DuplicateName), and
// Lookup refuses to pick one (AmbiguousNameError).
//
// The file is opened through internal/boltdb, which moves a damaged file aside and
// starts anew (Recovery says so). What bbolt cannot notice, a value or key changed
// in place, or an entry lost from a page, the registry does: every value carries a
// CRC-32C over its bucket path, key and content, the nodes bucket's sequence
// counts its records, and every log's keys run without a gap up to its bucket's
// sequence. Open checks all of it; a registry that fails is moved aside like a
// broken file, never opened with records silently missing.
package registry

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/skyfleet/skyfleet/internal/boltdb"
	"github.com/skyfleet/skyfleet/services/control"
	"github.com/skyfleet/skyfleet/services/identity"
)

// Buckets. Per-node buckets are nested under history and metrics, keyed by the
// node's 33-byte public key; their entries, like the logs', are keyed by an
// 8-byte big-endian sequence so a cursor walks them in time order.
var (
	bucketNodes    = []byte("nodes")    // public key -> record
	bucketHistory  = []byte("history")  // public key -> {seq -> Event}
	bucketMetrics  = []byte("metrics")  // public key -> {seq -> Sample}
	bucketActions  = []byte("actions")  // seq -> Action (the operator's)
	bucketRefusals = []byte("refusals") // seq -> Action (refused reports)
	bucketMeta     = []byte("meta")     // keyFormat, keyDropped

	keyFormat  = []byte("format")           // Format
	keyDropped = []byte("refusals_dropped") // refusals dropped by cap or age, ever
)

// Format is the registry's on-disk format: 1 is sealed values (registry.db of
// before is migrated on Open).
const Format = 1

// Limits on what is kept, so a master that runs for years stays small: at one
// report a minute MaxSamples is six hours of plots per node. Refusals come from
// outside (anyone holding the network key can send reports), so they have their
// own, smaller log and a short life: a flood of them can never push the
// operator's actions out.
const (
	MaxSamples    = 360
	MaxHistory    = 500
	MaxActions    = 5000
	MaxActionAge  = 365 * 24 * time.Hour
	MaxRefusals   = 1000
	MaxRefusalAge = 7 * 24 * time.Hour
)

// ErrReplay is returned by Record for a report whose seq is not above the last one
// stored for its node: a replayed or reordered report.
var ErrReplay = errors.New("registry: report seq is not above the last one")

// ErrUnknownNode is returned for a node that never reported.
var ErrUnknownNode = errors.New("registry: unknown node")

// ErrAmbiguousName matches (errors.Is) an AmbiguousNameError.
var ErrAmbiguousName = errors.New("registry: name used by more than one node")

// ErrCorrupt is a stored value that fails its checksum or does not decode.
var ErrCorrupt = errors.New("registry: damaged record")

// AmbiguousNameError is Lookup of a name that more than one node reports: names
// are labels anyone can claim, so the registry does not choose. The operator
// names the node by address or key instead.
type AmbiguousNameError struct {
	Name string `json:"name"`
	// Candidates are the nodes of that name, online first, then most recently
	// seen first.
	Candidates []Node `json:"candidates"`
}

// Error lists the candidates by address, with their state and when they were
// last seen, and says to use the address or key.
func (e *AmbiguousNameError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the name %q is used by %d nodes: ", e.Name, len(e.Candidates))
	for i, c := range e.Candidates {
		if i > 0 {
			b.WriteString("; ")
		}
		state := "offline"
		if c.Online {
			state = "online"
		}
		fmt.Fprintf(&b, "%s (%s, last seen %s)", c.Address, state, c.LastSeen.UTC().Format(time.RFC3339))
	}
	b.WriteString(". Name the node by its address or public key")
	return b.String()
}

// Is makes errors.Is(err, ErrAmbiguousName) hold.
func (e *AmbiguousNameError) Is(target error) bool { return target == ErrAmbiguousName }

// Node is one node as the master sees it: the JSON objects of `skyfleet nodes
// --json` and GET /api/nodes.
type Node struct {
	Address       string                 `json:"address"`
	PublicKey     string                 `json:"public_key"` // 66 hex characters
	Name          string                 `json:"name"`
	Board         string                 `json:"board"`
	Version       string                 `json:"version"`
	Slot          string                 `json:"slot"`
	Online        bool                   `json:"online"`
	LastSeen      time.Time              `json:"last_seen"`
	FirstSeen     time.Time              `json:"first_seen"`
	UptimeSeconds float64                `json:"uptime_s"` // as of the last report
	LinksUp       int                    `json:"links_up"`
	Services      []control.ServiceState `json:"services"`
	// Update is the node's A/B update state as of its last report; nil
	// when it has none (no boot partition, or an older node).
	Update *control.UpdateState `json:"update,omitempty"`
	Seq    uint64               `json:"seq"`
	// DuplicateName is set when another node reports the same (non-empty)
	// name, judged when read, not stored.
	DuplicateName bool `json:"duplicate_name"`
}

// Event is one state change in a node's history: registered, online, offline,
// version, slot, service, board, name, update (a new outcome: trial,
// committed, rolled back or refused, with the reason).
type Event struct {
	Time   time.Time `json:"time"`
	Event  string    `json:"event"`
	Detail string    `json:"detail"`
}

// Sample is one report's link metrics, for plots over time.
type Sample struct {
	Time  time.Time      `json:"time"`
	Links []control.Link `json:"links"`
}

// Action is one entry of the remote-action log (an operator's exec, shell or
// copy) or of the refusal log (a report from a stranger, a forged report, a
// replay: Action "refused").
type Action struct {
	Time   time.Time `json:"time"`
	Node   string    `json:"node"` // address; "" when unknown
	Action string    `json:"action"`
	Detail string    `json:"detail"`
}

// record is what bucketNodes stores per node.
type record struct {
	Node   Node           `json:"node"`
	Report control.Report `json:"report"`
	// Offline is true once Sweep logged the node offline, so it logs it once.
	Offline bool `json:"offline"`
}

// Registry is an open registry. Its methods are safe for concurrent use.
type Registry struct {
	db           *bolt.DB
	offlineAfter time.Duration
	recovery     *boltdb.Recovery
	mu           sync.Mutex // orders Record's read-check-write per node against Sweep

	cmu     sync.Mutex          // guards corrupt
	corrupt map[string]struct{} // damaged records met, by bucket path and key; at most maxDamaged

	rmu      sync.Mutex // guards pending
	pending  []Action   // refusals not yet written, at most MaxRefusals
	overflow uint64     // refusals dropped before they were written
}

// Open opens or creates the registry at path (a bbolt file, mode 0600). A node is
// online while its last report is at most offlineAfter old. A damaged file, or one
// whose records fail their checks, is moved aside and an empty registry started:
// Recovery says so. Errors: the file cannot be opened (another master holds its
// lock: Open waits up to 2 s) or moved aside, it holds a newer format than this
// master knows, or offlineAfter is not positive.
func Open(path string, offlineAfter time.Duration) (*Registry, error) {
	if offlineAfter <= 0 {
		return nil, fmt.Errorf("registry: offline threshold must be positive, not %v", offlineAfter)
	}
	db, rec, err := boltdb.Open(path, &boltdb.Options{Check: check})
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMeta) != nil {
			return nil // checked by check
		}
		// A new file (or the empty one after a damaged file was moved aside).
		for _, b := range [][]byte{bucketNodes, bucketHistory, bucketMetrics, bucketActions, bucketRefusals, bucketMeta} {
			if _, err := tx.CreateBucket(b); err != nil {
				return err
			}
		}
		return writeMeta(tx, 0)
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("registry %s: %w", path, err)
	}
	return &Registry{db: db, offlineAfter: offlineAfter, recovery: rec}, nil
}

func writeMeta(tx *bolt.Tx, dropped uint64) error {
	m := top(tx, bucketMeta)
	if err := m.put(keyFormat, Format); err != nil {
		return err
	}
	return m.put(keyDropped, dropped)
}

// Recovery says what Open did about a damaged registry file, nil if it was sound.
func (r *Registry) Recovery() *boltdb.Recovery { return r.recovery }

// CorruptRecords counts the damaged records met since Open (each once, up to
// 1000): Open moves a damaged registry aside, so these were damaged while it
// ran.
func (r *Registry) CorruptRecords() uint64 {
	r.cmu.Lock()
	defer r.cmu.Unlock()
	return uint64(len(r.corrupt))
}

const maxDamaged = 1000

// damaged notes the damaged record key of b.
func (r *Registry) damaged(b bucket, key []byte) {
	id := string(bytes.Join(append(slices.Clone(b.path), key), []byte{0}))
	r.cmu.Lock()
	defer r.cmu.Unlock()
	if r.corrupt == nil {
		r.corrupt = map[string]struct{}{}
	}
	if len(r.corrupt) < maxDamaged {
		r.corrupt[id] = struct{}{}
	}
}

// Close writes pending refusals and closes the database.
func (r *Registry) Close() error {
	ferr := r.Flush()
	if err := r.db.Close(); err != nil {
		return err
	}
	return ferr
}

// OfflineAfter returns the offline threshold given to Open.
func (r *Registry) OfflineAfter() time.Duration { return r.offlineAfter }

// ---- sealed values -------------------------------------------------------------

// A stored value is 0x01, the CRC-32C (Castagnoli) of the bucket path, key and
// content, big-endian, then the content (JSON). The path and key are in the sum
// so that a value that moved (a flipped key, a renamed nested bucket) fails it
// too. A CRC, not a MAC: it finds decay and damage, not an attacker who can
// write the file (who could write anything).
const sealVersion = 0x01

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// bucket is a bbolt bucket with its names from the root, which the seal of
// every value in it covers.
type bucket struct {
	*bolt.Bucket
	path [][]byte
}

// top opens a top-level bucket; its Bucket is nil if it does not exist.
func top(tx *bolt.Tx, name []byte) bucket {
	return bucket{tx.Bucket(name), [][]byte{name}}
}

// child opens (or, with create, creates) the nested bucket key; its Bucket is
// nil if it does not exist.
func (b bucket) child(key []byte, create bool) (bucket, error) {
	c := bucket{b.Bucket.Bucket(key), append(slices.Clip(b.path), slices.Clone(key))}
	if c.Bucket == nil && create {
		var err error
		if c.Bucket, err = b.CreateBucket(key); err != nil {
			return c, err
		}
	}
	return c, nil
}

func (b bucket) sum(key, content []byte) uint32 {
	h := crc32.New(castagnoli)
	var n [binary.MaxVarintLen64]byte
	write := func(p []byte) {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(p)))])
		h.Write(p)
	}
	for _, p := range b.path {
		write(p)
	}
	write(key)
	write(content)
	return h.Sum32()
}

// put stores v as sealed JSON under key.
func (b bucket) put(key []byte, v any) error {
	content, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, b.seal(key, content))
}

func (b bucket) seal(key, content []byte) []byte {
	out := make([]byte, 5, 5+len(content))
	out[0] = sealVersion
	binary.BigEndian.PutUint32(out[1:], b.sum(key, content))
	return append(out, content...)
}

// get decodes the sealed value stored under key into v. Errors: ErrCorrupt.
func (b bucket) get(key, sealed []byte, v any) error {
	if len(sealed) < 5 || sealed[0] != sealVersion {
		return fmt.Errorf("%w: not a sealed value", ErrCorrupt)
	}
	content := sealed[5:]
	if binary.BigEndian.Uint32(sealed[1:]) != b.sum(key, content) {
		return fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	if err := json.Unmarshal(content, v); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return nil
}

// ---- nodes ----------------------------------------------------------------------

// MaxNodes bounds the nodes kept: anyone with the network key can make new node
// keys, each of which registers. Record refuses new nodes beyond it (ErrFull);
// Forget frees the places of nodes not seen for ForgetAfter.
const (
	MaxNodes    = 10000
	ForgetAfter = 180 * 24 * time.Hour
)

// ErrFull is Record of a new node when MaxNodes are known.
var ErrFull = fmt.Errorf("registry: %d nodes known, the most it keeps", MaxNodes)

// Record stores a verified report received at now: the node's record, a metrics
// sample, and history events for what changed (registered, online again, version,
// slot, board, name, service states). It returns the node as stored. Errors:
// ErrReplay for a seq not above the stored one, ErrFull for a new node beyond
// MaxNodes (nothing is written for either), database errors.
func (r *Registry) Record(s *control.Signed, now time.Time) (Node, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out Node
	err := r.db.Update(func(tx *bolt.Tx) error {
		nodes := top(tx, bucketNodes)
		var old *record
		damaged := false
		if b := nodes.Get(s.Node[:]); b != nil {
			old = new(record)
			if err := nodes.get(s.Node[:], b, old); err != nil {
				// Damaged while the master ran: counted, and the node's
				// record starts afresh rather than lock the node out.
				r.damaged(nodes, s.Node[:])
				old, damaged = nil, true
			} else if s.Seq <= old.Node.Seq {
				return fmt.Errorf("%w: %d after %d", ErrReplay, s.Seq, old.Node.Seq)
			}
		}
		rec := record{Report: s.Report, Node: nodeFrom(s, now)}
		var events []Event
		if old == nil {
			if !damaged {
				if nodes.Sequence() >= MaxNodes {
					return ErrFull
				}
				// The sequence counts the records, so Open can tell one went missing.
				if _, err := nodes.NextSequence(); err != nil {
					return err
				}
			}
			rec.Node.FirstSeen = now
			detail := fmt.Sprintf("%s %s on %s", s.Report.Board, s.Report.Version, rec.Node.Address)
			if damaged {
				detail += " (its stored record was damaged)"
			}
			events = append(events, Event{now, "registered", detail})
		} else {
			rec.Node.FirstSeen = old.Node.FirstSeen
			events = changes(old, &rec, now, r.offlineAfter)
		}
		if err := nodes.put(s.Node[:], rec); err != nil {
			return err
		}
		for _, e := range events {
			if err := appendCapped(tx, bucketHistory, s.Node[:], e, MaxHistory); err != nil {
				return err
			}
		}
		out = rec.Node
		return appendCapped(tx, bucketMetrics, s.Node[:], Sample{Time: now, Links: s.Report.Links}, MaxSamples)
	})
	out.Online = err == nil
	return out, err
}

func nodeFrom(s *control.Signed, now time.Time) Node {
	n := Node{
		PublicKey:     hex.EncodeToString(s.Node[:]),
		Name:          s.Report.Name,
		Board:         s.Report.Board,
		Version:       s.Report.Version,
		Slot:          s.Report.Slot,
		LastSeen:      now,
		UptimeSeconds: s.Report.UptimeSeconds,
		Services:      s.Report.Services,
		Update:        s.Report.Update,
		Seq:           s.Seq,
	}
	if a, err := identity.AddressFromPublicKey(s.Node[:]); err == nil {
		n.Address = a.String()
	}
	for _, l := range s.Report.Links {
		if l.Up {
			n.LinksUp++
		}
	}
	if n.Services == nil {
		n.Services = []control.ServiceState{}
	}
	return n
}

func lastUpdate(u *control.UpdateState) *control.UpdateOutcome {
	if u == nil {
		return nil
	}
	return u.Last
}

// changes lists the history events between a node's stored record and a new one.
func changes(old, cur *record, now time.Time, offlineAfter time.Duration) []Event {
	var ev []Event
	if old.Offline || now.Sub(old.Node.LastSeen) > offlineAfter {
		ev = append(ev, Event{now, "online", fmt.Sprintf("reporting again after %s", now.Sub(old.Node.LastSeen).Round(time.Second))})
	} else if cur.Report.UptimeSeconds+1 < old.Report.UptimeSeconds {
		ev = append(ev, Event{now, "rebooted", fmt.Sprintf("uptime %.0f s", cur.Report.UptimeSeconds)})
	}
	diff := func(what, a, b string) {
		if a != b {
			ev = append(ev, Event{now, what, fmt.Sprintf("%q -> %q", a, b)})
		}
	}
	diff("version", old.Node.Version, cur.Node.Version)
	diff("slot", old.Node.Slot, cur.Node.Slot)
	diff("board", old.Node.Board, cur.Node.Board)
	if l := lastUpdate(cur.Node.Update); l != nil && (lastUpdate(old.Node.Update) == nil || *l != *lastUpdate(old.Node.Update)) {
		d := fmt.Sprintf("%s %s in slot %s", l.Result, l.Version, l.Slot)
		if l.Reason != "" {
			d += ": " + l.Reason
		}
		ev = append(ev, Event{now, "update", d})
	}
	diff("name", old.Node.Name, cur.Node.Name)
	was := map[string]string{}
	for _, s := range old.Node.Services {
		was[s.Name] = s.State
	}
	for _, s := range cur.Node.Services {
		if prev, ok := was[s.Name]; !ok || prev != s.State {
			if !ok {
				prev = "absent"
			}
			ev = append(ev, Event{now, "service", fmt.Sprintf("%s: %s -> %s", s.Name, prev, s.State)})
		}
		delete(was, s.Name)
	}
	for name, st := range was {
		ev = append(ev, Event{now, "service", fmt.Sprintf("%s: %s -> absent", name, st)})
	}
	return ev
}

// appendCapped appends v under parent/key, dropping the oldest entries beyond limit.
func appendCapped(tx *bolt.Tx, parent, key []byte, v any, limit int) error {
	b, err := top(tx, parent).child(key, true)
	if err != nil {
		return err
	}
	_, err = appendTo(b, v, limit, 0)
	return err
}

// appendTo appends v to a log bucket, then drops its oldest entries beyond limit
// and, if maxAge is set, those more than maxAge older than v (whose JSON must
// then have a "time"). It returns how many it dropped. Keys are consecutive and
// only the oldest are ever deleted, so the keys always run without a gap up to
// the bucket's sequence: what Open checks.
func appendTo(b bucket, v any, limit int, maxAge time.Duration) (int, error) {
	seq, err := b.NextSequence()
	if err != nil {
		return 0, err
	}
	newest := binary.BigEndian.AppendUint64(nil, seq)
	if err := b.put(newest, v); err != nil {
		return 0, err
	}
	var ref time.Time
	if maxAge > 0 {
		var t struct {
			Time time.Time `json:"time"`
		}
		enc, _ := json.Marshal(v)
		json.Unmarshal(enc, &t)
		ref = t.Time
	}
	dropped := 0
	// First again after each Delete: a bbolt cursor may skip a key after Delete.
	c := b.Cursor()
	for k, val := c.First(); k != nil && !bytes.Equal(k, newest); k, val = c.First() {
		over := seq-binary.BigEndian.Uint64(k)+1 > uint64(limit)
		if !over && maxAge > 0 {
			var e struct {
				Time time.Time `json:"time"`
			}
			// A damaged entry is left to its age by count.
			over = b.get(k, val, &e) == nil && ref.Sub(e.Time) > maxAge
		}
		if !over {
			break
		}
		if err := c.Delete(); err != nil {
			return dropped, err
		}
		dropped++
	}
	return dropped, nil
}

// Sweep logs an "offline" event for every node whose last report is older than the
// threshold and was not yet logged offline, and returns those nodes. The master
// calls it every few seconds; it also writes pending refusals (LogRefusal).
func (r *Registry) Sweep(now time.Time) ([]Node, error) {
	ferr := r.Flush()
	r.mu.Lock()
	defer r.mu.Unlock()
	var gone []Node
	err := r.db.Update(func(tx *bolt.Tx) error {
		nodes := top(tx, bucketNodes)
		type upd struct {
			k    []byte
			rec  record
			last time.Time
		}
		var ups []upd
		err := nodes.ForEach(func(k, v []byte) error {
			var rec record
			if err := nodes.get(k, v, &rec); err != nil {
				r.damaged(nodes, k)
				return nil // a damaged record is counted, not fatal to the fleet view
			}
			if rec.Offline || now.Sub(rec.Node.LastSeen) <= r.offlineAfter {
				return nil
			}
			rec.Offline = true
			ups = append(ups, upd{slices.Clone(k), rec, rec.Node.LastSeen})
			rec.Node.Online = false
			gone = append(gone, rec.Node)
			return nil
		})
		if err != nil {
			return err
		}
		// Written after the walk: bbolt does not allow changing a bucket inside ForEach.
		for _, u := range ups {
			if err := nodes.put(u.k, u.rec); err != nil {
				return err
			}
			e := Event{now, "offline", fmt.Sprintf("no report since %s", u.last.UTC().Format(time.RFC3339))}
			if err := appendCapped(tx, bucketHistory, u.k, e, MaxHistory); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = ferr
	}
	return gone, err
}

// Forget deletes the nodes not seen for ForgetAfter at now, with their history
// and metrics, and returns them.
func (r *Registry) Forget(now time.Time) ([]Node, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var old []Node
	err := r.db.Update(func(tx *bolt.Tx) error {
		nodes := top(tx, bucketNodes)
		var keys [][]byte
		err := nodes.ForEach(func(k, v []byte) error {
			var rec record
			if nodes.get(k, v, &rec) == nil && now.Sub(rec.Node.LastSeen) > ForgetAfter {
				keys = append(keys, slices.Clone(k))
				old = append(old, rec.Node)
			}
			return nil
		})
		if err != nil || len(keys) == 0 {
			return err
		}
		for _, k := range keys {
			if err := nodes.Delete(k); err != nil {
				return err
			}
			for _, p := range [][]byte{bucketHistory, bucketMetrics} {
				if err := tx.Bucket(p).DeleteBucket(k); err != nil && !errors.Is(err, bolt.ErrBucketNotFound) {
					return err
				}
			}
		}
		return nodes.SetSequence(nodes.Sequence() - uint64(len(keys)))
	})
	if err != nil {
		old = nil
	}
	return old, err
}

// Nodes returns every node ever seen, online ones first, then by name and address,
// with Online judged at now.
func (r *Registry) Nodes(now time.Time) ([]Node, error) {
	entries, err := r.Reports(now)
	out := make([]Node, len(entries))
	for i, e := range entries {
		out[i] = e.Node
	}
	return out, err
}

// Entry is a node with its last report.
type Entry struct {
	Node   Node
	Report control.Report
}

// Reports returns every node with its last report, in the order of Nodes, read in
// one transaction (the topology graph needs every node's links). Damaged records
// are left out and counted (CorruptRecords).
func (r *Registry) Reports(now time.Time) ([]Entry, error) {
	out := []Entry{}
	err := r.db.View(func(tx *bolt.Tx) error {
		all, err := r.all(tx, now)
		for _, e := range all {
			out = append(out, Entry{e.rec.Node, e.rec.Report})
		}
		return err
	})
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].Node, out[j].Node
		if a.Online != b.Online {
			return a.Online
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Address < b.Address
	})
	return out, err
}

type keyed struct {
	key []byte
	rec record
}

// all reads every node record, with Online judged at now and DuplicateName set.
func (r *Registry) all(tx *bolt.Tx, now time.Time) ([]keyed, error) {
	var out []keyed
	nodes := top(tx, bucketNodes)
	names := map[string]int{}
	err := nodes.ForEach(func(k, v []byte) error {
		var rec record
		if err := nodes.get(k, v, &rec); err != nil {
			r.damaged(nodes, k)
			return nil
		}
		rec.Node.Online = r.online(&rec, now)
		rec.Node.DuplicateName = false
		if rec.Node.Name != "" {
			names[rec.Node.Name]++
		}
		out = append(out, keyed{k, rec})
		return nil
	})
	for i := range out {
		out[i].rec.Node.DuplicateName = names[out[i].rec.Node.Name] > 1
	}
	return out, err
}

func (r *Registry) online(rec *record, now time.Time) bool {
	return !rec.Offline && now.Sub(rec.Node.LastSeen) <= r.offlineAfter
}

// Detail is one node with its last report, history (oldest first) and metric
// samples (oldest first): GET /api/nodes/{address}.
type Detail struct {
	Node    Node           `json:"node"`
	Report  control.Report `json:"report"`
	History []Event        `json:"history"`
	Metrics []Sample       `json:"metrics"`
}

// Lookup finds a node by public key hex, address, or name, in that order. A name
// must belong to exactly one node. Errors: ErrUnknownNode; *AmbiguousNameError
// for a name several nodes report; ErrCorrupt for a damaged record.
func (r *Registry) Lookup(id string, now time.Time) (Detail, error) {
	var d Detail
	err := r.db.View(func(tx *bolt.Tx) error {
		all, err := r.all(tx, now)
		if err != nil {
			return err
		}
		e, err := pick(all, id)
		if err != nil {
			if k := mustKey(id); k != "" && errors.Is(err, ErrUnknownNode) && top(tx, bucketNodes).Get([]byte(k)) != nil {
				return fmt.Errorf("%w: node %s", ErrCorrupt, id)
			}
			return err
		}
		d.Node, d.Report = e.rec.Node, e.rec.Report
		d.History = []Event{}
		d.Metrics = []Sample{}
		if b, _ := top(tx, bucketHistory).child(e.key, false); b.Bucket != nil {
			b.ForEach(func(k, v []byte) error {
				var ev Event
				if b.get(k, v, &ev) == nil {
					d.History = append(d.History, ev)
				} else {
					r.damaged(b, k)
				}
				return nil
			})
		}
		if b, _ := top(tx, bucketMetrics).child(e.key, false); b.Bucket != nil {
			b.ForEach(func(k, v []byte) error {
				var s Sample
				if b.get(k, v, &s) == nil {
					d.Metrics = append(d.Metrics, s)
				} else {
					r.damaged(b, k)
				}
				return nil
			})
		}
		return nil
	})
	return d, err
}

// mustKey is id as a 33-byte public key, or "" if it is not one.
func mustKey(id string) string {
	if b, err := hex.DecodeString(id); err == nil && len(b) == 33 {
		return string(b)
	}
	return ""
}

// pick resolves id among the nodes: a public key or address is exact; a name
// must be one node's.
func pick(all []keyed, id string) (keyed, error) {
	if k := mustKey(id); k != "" {
		for _, e := range all {
			if string(e.key) == k {
				return e, nil
			}
		}
		return keyed{}, fmt.Errorf("%w: %q", ErrUnknownNode, id)
	}
	var named []keyed
	for _, e := range all {
		if e.rec.Node.Address == id {
			return e, nil
		}
		if id != "" && e.rec.Node.Name == id {
			named = append(named, e)
		}
	}
	switch len(named) {
	case 0:
		return keyed{}, fmt.Errorf("%w: %q", ErrUnknownNode, id)
	case 1:
		return named[0], nil
	}
	amb := &AmbiguousNameError{Name: id}
	for _, e := range named {
		amb.Candidates = append(amb.Candidates, e.rec.Node)
	}
	sort.SliceStable(amb.Candidates, func(i, j int) bool {
		a, b := amb.Candidates[i], amb.Candidates[j]
		if a.Online != b.Online {
			return a.Online
		}
		if !a.LastSeen.Equal(b.LastSeen) {
			return a.LastSeen.After(b.LastSeen)
		}
		return a.Address < b.Address
	})
	return keyed{}, amb
}

// ---- logs -----------------------------------------------------------------------

// LogAction appends a to the operator's remote-action log (the oldest entries
// beyond MaxActions, and those more than MaxActionAge older than a, are dropped).
func (r *Registry) LogAction(a Action) error {
	return r.db.Update(func(tx *bolt.Tx) error {
		_, err := appendTo(top(tx, bucketActions), a, MaxActions, MaxActionAge)
		return err
	})
}

// Actions returns up to limit entries of the operator's remote-action log,
// newest first.
func (r *Registry) Actions(limit int) ([]Action, error) {
	return r.read(bucketActions, limit)
}

func (r *Registry) read(name []byte, limit int) ([]Action, error) {
	out := []Action{}
	err := r.db.View(func(tx *bolt.Tx) error {
		b := top(tx, name)
		c := b.Cursor()
		for k, v := c.Last(); k != nil && len(out) < limit; k, v = c.Prev() {
			var a Action
			if b.get(k, v, &a) == nil {
				out = append(out, a)
			} else {
				r.damaged(b, k)
			}
		}
		return nil
	})
	return out, err
}

// LogRefusal queues a refused report for the refusal log, apart from the
// operator's actions. Refusals arrive as fast as anyone with the network key
// sends them, so they are written in batches (Flush, which Sweep, Refusals and
// Close call) rather than with a disk sync each; at most MaxRefusals wait, the
// oldest beyond that are dropped and counted.
func (r *Registry) LogRefusal(a Action) {
	r.rmu.Lock()
	defer r.rmu.Unlock()
	if len(r.pending) >= MaxRefusals {
		r.pending = r.pending[1:]
		r.overflow++
	}
	r.pending = append(r.pending, a)
}

// Flush writes the queued refusals, dropping the oldest stored ones beyond
// MaxRefusals and those older than MaxRefusalAge, and adds what was dropped to
// the count Refusals reports.
func (r *Registry) Flush() error {
	r.rmu.Lock()
	pending, overflow := r.pending, r.overflow
	r.pending, r.overflow = nil, 0
	r.rmu.Unlock()
	if len(pending) == 0 && overflow == 0 {
		return nil
	}
	return r.db.Update(func(tx *bolt.Tx) error {
		b, m := top(tx, bucketRefusals), top(tx, bucketMeta)
		var dropped uint64
		if err := m.get(keyDropped, m.Get(keyDropped), &dropped); err != nil {
			r.damaged(m, keyDropped)
		}
		dropped += overflow
		for _, a := range pending {
			n, err := appendTo(b, a, MaxRefusals, MaxRefusalAge)
			if err != nil {
				return err
			}
			dropped += uint64(n)
		}
		return m.put(keyDropped, dropped)
	})
}

// RefusalLog is the refusal log: GET /api/refusals.
type RefusalLog struct {
	// Dropped counts the refusals dropped, since the registry was created, to
	// keep the log within MaxRefusals and MaxRefusalAge.
	Dropped uint64 `json:"dropped"`
	// Kept is the number of refusals in the log (at most MaxRefusals).
	Kept     int      `json:"kept"`
	Refusals []Action `json:"refusals"` // newest first, at most the limit asked for
}

// Refusals writes the queued refusals and returns up to limit of the refusal
// log, newest first.
func (r *Registry) Refusals(limit int) (RefusalLog, error) {
	if err := r.Flush(); err != nil {
		return RefusalLog{}, err
	}
	var out RefusalLog
	err := r.db.View(func(tx *bolt.Tx) error {
		m := top(tx, bucketMeta)
		if err := m.get(keyDropped, m.Get(keyDropped), &out.Dropped); err != nil {
			r.damaged(m, keyDropped)
		}
		out.Kept = tx.Bucket(bucketRefusals).Stats().KeyN
		return nil
	})
	if err != nil {
		return out, err
	}
	out.Refusals, err = r.read(bucketRefusals, limit)
	return out, err
}

// ---- the check on Open ----------------------------------------------------------

// The buckets of a registry, in bbolt's (byte) order.
var (
	bucketsNow    = []string{"actions", "history", "meta", "metrics", "nodes", "refusals"}
	bucketsLegacy = []string{"actions", "history", "metrics", "nodes"} // before Format 1
)

// check is boltdb's content check of an existing file: the buckets are the
// registry's, every value passes its seal, no record or log entry is missing.
// A registry of before Format 1 (plain JSON values) is sealed first.
func check(db *bolt.DB) error {
	legacy := false
	err := db.View(func(tx *bolt.Tx) error {
		var names, quoted []string
		tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			names = append(names, string(name))
			quoted = append(quoted, fmt.Sprintf("%q", name))
			return nil
		})
		switch {
		case slices.Equal(names, bucketsNow):
			m := top(tx, bucketMeta)
			var f int
			if err := m.get(keyFormat, m.Get(keyFormat), &f); err != nil {
				return fmt.Errorf("format: %w", err)
			}
			if f > Format {
				return boltdb.Refuse(fmt.Errorf("registry format %d is newer than this master's %d", f, Format))
			}
			if f != Format {
				return fmt.Errorf("format %d", f)
			}
		case slices.Equal(names, bucketsLegacy):
			legacy = true
		default:
			return fmt.Errorf("buckets %s are not the registry's", strings.Join(quoted[:min(len(quoted), 10)], ", "))
		}
		return nil
	})
	if err != nil {
		return err
	}
	if legacy {
		if err := db.Update(seal); err != nil {
			return fmt.Errorf("sealing a registry of before format %d: %w", Format, err)
		}
	}
	return db.View(verify)
}

// verify checks every record and log of tx.
func verify(tx *bolt.Tx) error {
	nodes := top(tx, bucketNodes)
	known := map[string]bool{}
	err := nodes.ForEach(func(k, v []byte) error {
		i := len(known)
		if v == nil || len(k) != 33 {
			return fmt.Errorf("nodes: entry %d is not a node record", i)
		}
		var rec record
		if err := nodes.get(k, v, &rec); err != nil {
			return fmt.Errorf("nodes: record %d: %w", i, err)
		}
		if rec.Node.PublicKey != hex.EncodeToString(k) {
			return fmt.Errorf("nodes: record %d is filed under another node's key", i)
		}
		known[string(k)] = true
		return nil
	})
	if err != nil {
		return err
	}
	if n := uint64(len(known)); n != nodes.Sequence() {
		return fmt.Errorf("nodes: %d records, %d were stored", n, nodes.Sequence())
	}
	for _, name := range [][]byte{bucketHistory, bucketMetrics} {
		parent := top(tx, name)
		seen := 0
		err := parent.ForEach(func(k, v []byte) error {
			if v != nil || !known[string(k)] {
				return fmt.Errorf("%s: entry %d is not a known node's log", name, seen)
			}
			seen++
			b, _ := parent.child(k, false)
			if err := chain(b); err != nil {
				return fmt.Errorf("%s of node %x: %w", name, k, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if seen != len(known) {
			return fmt.Errorf("%s: %d of %d nodes have one", name, seen, len(known))
		}
	}
	for _, name := range [][]byte{bucketActions, bucketRefusals} {
		if err := chain(top(tx, name)); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	m := top(tx, bucketMeta)
	var dropped uint64
	if m.Stats().KeyN != 2 || m.get(keyDropped, m.Get(keyDropped), &dropped) != nil {
		return errors.New("meta: damaged")
	}
	return nil
}

// chain checks a log bucket: sealed values under 8-byte keys that run without a
// gap up to the bucket's sequence (appendTo only ever drops the oldest, and
// never the newest).
func chain(b bucket) error {
	var last uint64
	n := 0
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v == nil || len(k) != 8 {
			return fmt.Errorf("entry %d is not a log entry", n)
		}
		s := binary.BigEndian.Uint64(k)
		if n > 0 && s != last+1 {
			return fmt.Errorf("entries %d to %d are missing", last+1, s-1)
		}
		if len(v) < 5 || v[0] != sealVersion || binary.BigEndian.Uint32(v[1:]) != b.sum(k, v[5:]) {
			return fmt.Errorf("entry %d: %w: checksum mismatch", s, ErrCorrupt)
		}
		last = s
		n++
	}
	if seq := b.Sequence(); last != seq {
		return fmt.Errorf("entries %d to %d are missing", last+1, seq)
	}
	return nil
}

// seal rewrites a registry of before Format 1 (plain JSON values) with sealed
// values and a counting nodes sequence, and adds the buckets it lacked. A value
// that is not JSON fails it.
func seal(tx *bolt.Tx) error {
	reseal := func(b bucket) error {
		type kv struct{ k, v []byte }
		var all []kv
		err := b.ForEach(func(k, v []byte) error {
			if v != nil {
				if !json.Valid(v) {
					return fmt.Errorf("%s: entry %d is not JSON", bytes.Join(b.path, []byte("/")), len(all))
				}
				all = append(all, kv{slices.Clone(k), slices.Clone(v)})
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, e := range all {
			if err := b.Put(e.k, b.seal(e.k, e.v)); err != nil {
				return err
			}
		}
		return nil
	}
	nodes := top(tx, bucketNodes)
	if err := reseal(nodes); err != nil {
		return err
	}
	if err := nodes.SetSequence(uint64(nodes.Stats().KeyN)); err != nil {
		return err
	}
	for _, name := range [][]byte{bucketHistory, bucketMetrics} {
		parent := top(tx, name)
		var keys [][]byte
		parent.ForEach(func(k, v []byte) error {
			if v == nil {
				keys = append(keys, slices.Clone(k))
			}
			return nil
		})
		for _, k := range keys {
			b, _ := parent.child(k, false)
			if err := reseal(b); err != nil {
				return err
			}
		}
	}
	if err := reseal(top(tx, bucketActions)); err != nil {
		return err
	}
	for _, b := range [][]byte{bucketRefusals, bucketMeta} {
		if _, err := tx.CreateBucket(b); err != nil {
			return err
		}
	}
	return writeMeta(tx, 0)
}
