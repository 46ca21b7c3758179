// Package registry is the fleet master's memory, a bbolt database: every node that
// ever reported (its last report and when), each node's history of state changes, a
// ring of link-metric samples per node for the dashboard's plots, and the log of
// remote actions and refusals. Online is not stored as truth: a node is online while
// its last report is younger than the offline threshold, and Sweep writes the
// "offline" event into the history when one goes quiet.
package registry

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/skyfleet/skyfleet/services/control"
	"github.com/skyfleet/skyfleet/services/identity"
)

// Buckets. Per-node buckets are nested under history and metrics, keyed by the
// node's 33-byte public key; their entries are keyed by an 8-byte big-endian
// sequence so a cursor walks them in time order.
var (
	bucketNodes   = []byte("nodes")   // public key -> record JSON
	bucketHistory = []byte("history") // public key -> {seq -> Event JSON}
	bucketMetrics = []byte("metrics") // public key -> {seq -> Sample JSON}
	bucketActions = []byte("actions") // seq -> Action JSON
)

// Limits on what is kept, so a master that runs for years stays small: at one
// report a minute MaxSamples is six hours of plots per node.
const (
	MaxSamples = 360
	MaxHistory = 500
	MaxActions = 5000
)

// ErrReplay is returned by Record for a report whose seq is not above the last one
// stored for its node: a replayed or reordered report.
var ErrReplay = errors.New("registry: report seq is not above the last one")

// ErrUnknownNode is returned for a node that never reported.
var ErrUnknownNode = errors.New("registry: unknown node")

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
	Seq           uint64                 `json:"seq"`
}

// Event is one state change in a node's history: registered, online, offline,
// version, slot, service, board, name.
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

// Action is one entry of the remote-action log: an operator's exec, shell or copy,
// or a refusal (a report from a stranger, a forged report, a replay).
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
	mu           sync.Mutex // orders Record's read-check-write per node against Sweep
}

// Open opens or creates the registry at path (a bbolt file, mode 0600). A node is
// online while its last report is at most offlineAfter old. Errors: the file cannot
// be opened (another master holds its lock: bbolt waits up to 2 s), is not a
// bbolt database, or offlineAfter is not positive.
func Open(path string, offlineAfter time.Duration) (*Registry, error) {
	if offlineAfter <= 0 {
		return nil, fmt.Errorf("registry: offline threshold must be positive, not %v", offlineAfter)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketNodes, bucketHistory, bucketMetrics, bucketActions} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("registry %s: %w", path, err)
	}
	return &Registry{db: db, offlineAfter: offlineAfter}, nil
}

// Close closes the database.
func (r *Registry) Close() error { return r.db.Close() }

// OfflineAfter returns the offline threshold given to Open.
func (r *Registry) OfflineAfter() time.Duration { return r.offlineAfter }

// Record stores a verified report received at now: the node's record, a metrics
// sample, and history events for what changed (registered, online again, version,
// slot, board, name, service states). It returns the node as stored. Errors:
// ErrReplay for a seq not above the stored one (nothing is written), database errors.
func (r *Registry) Record(s *control.Signed, now time.Time) (Node, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out Node
	err := r.db.Update(func(tx *bolt.Tx) error {
		nodes := tx.Bucket(bucketNodes)
		var old *record
		if b := nodes.Get(s.Node[:]); b != nil {
			old = new(record)
			if err := json.Unmarshal(b, old); err != nil {
				return fmt.Errorf("registry: record of %x: %w", s.Node, err)
			}
			if s.Seq <= old.Node.Seq {
				return fmt.Errorf("%w: %d after %d", ErrReplay, s.Seq, old.Node.Seq)
			}
		}
		rec := record{Report: s.Report, Node: nodeFrom(s, now)}
		var events []Event
		if old == nil {
			rec.Node.FirstSeen = now
			events = append(events, Event{now, "registered", fmt.Sprintf("%s %s on %s", s.Report.Board, s.Report.Version, rec.Node.Address)})
		} else {
			rec.Node.FirstSeen = old.Node.FirstSeen
			events = changes(old, &rec, now, r.offlineAfter)
		}
		enc, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		if err := nodes.Put(s.Node[:], enc); err != nil {
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
	b, err := tx.Bucket(parent).CreateBucketIfNotExists(key)
	if err != nil {
		return err
	}
	return appendTo(b, v, limit)
}

func appendTo(b *bolt.Bucket, v any, limit int) error {
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	enc, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := b.Put(binary.BigEndian.AppendUint64(nil, seq), enc); err != nil {
		return err
	}
	// Keys are consecutive and only the oldest are ever deleted, so the count is
	// the distance from the first key.
	// (First again after each Delete: a bbolt cursor may skip a key after Delete.)
	c := b.Cursor()
	for k, _ := c.First(); k != nil && seq-binary.BigEndian.Uint64(k)+1 > uint64(limit); k, _ = c.First() {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}

// Sweep logs an "offline" event for every node whose last report is older than the
// threshold and was not yet logged offline, and returns those nodes. The master
// calls it every few seconds.
func (r *Registry) Sweep(now time.Time) ([]Node, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var gone []Node
	err := r.db.Update(func(tx *bolt.Tx) error {
		nodes := tx.Bucket(bucketNodes)
		type upd struct {
			k, v []byte
			last time.Time
		}
		var ups []upd
		err := nodes.ForEach(func(k, v []byte) error {
			var rec record
			if err := json.Unmarshal(v, &rec); err != nil {
				return nil // a damaged record is skipped, not fatal to the fleet view
			}
			if rec.Offline || now.Sub(rec.Node.LastSeen) <= r.offlineAfter {
				return nil
			}
			rec.Offline = true
			enc, err := json.Marshal(rec)
			if err != nil {
				return err
			}
			ups = append(ups, upd{slices.Clone(k), enc, rec.Node.LastSeen})
			rec.Node.Online = false
			gone = append(gone, rec.Node)
			return nil
		})
		if err != nil {
			return err
		}
		// Written after the walk: bbolt does not allow changing a bucket inside ForEach.
		for _, u := range ups {
			if err := nodes.Put(u.k, u.v); err != nil {
				return err
			}
			e := Event{now, "offline", fmt.Sprintf("no report since %s", u.last.UTC().Format(time.RFC3339))}
			if err := appendCapped(tx, bucketHistory, u.k, e, MaxHistory); err != nil {
				return err
			}
		}
		return nil
	})
	return gone, err
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
// one transaction (the topology graph needs every node's links).
func (r *Registry) Reports(now time.Time) ([]Entry, error) {
	out := []Entry{}
	err := r.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketNodes).ForEach(func(_, v []byte) error {
			var rec record
			if err := json.Unmarshal(v, &rec); err != nil {
				return nil
			}
			rec.Node.Online = r.online(&rec, now)
			out = append(out, Entry{rec.Node, rec.Report})
			return nil
		})
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

// Lookup finds a node by address, public key hex, or name (the first match, in
// that order). Errors: ErrUnknownNode.
func (r *Registry) Lookup(id string, now time.Time) (Detail, error) {
	var d Detail
	found := false
	err := r.db.View(func(tx *bolt.Tx) error {
		nodes := tx.Bucket(bucketNodes)
		var key []byte
		if pub, err := hex.DecodeString(id); err == nil && len(pub) == 33 {
			if nodes.Get(pub) != nil {
				key = pub
			}
		} else {
			// By address, else by the first node of that name.
			c := nodes.Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				var rec record
				if json.Unmarshal(v, &rec) != nil {
					continue
				}
				if rec.Node.Address == id {
					key = slices.Clone(k)
					break
				}
				if key == nil && rec.Node.Name == id && id != "" {
					key = slices.Clone(k)
				}
			}
		}
		if key == nil {
			return nil
		}
		var rec record
		if err := json.Unmarshal(nodes.Get(key), &rec); err != nil {
			return err
		}
		found = true
		rec.Node.Online = r.online(&rec, now)
		d.Node, d.Report = rec.Node, rec.Report
		d.History = []Event{}
		d.Metrics = []Sample{}
		if b := tx.Bucket(bucketHistory).Bucket(key); b != nil {
			b.ForEach(func(_, v []byte) error {
				var e Event
				if json.Unmarshal(v, &e) == nil {
					d.History = append(d.History, e)
				}
				return nil
			})
		}
		if b := tx.Bucket(bucketMetrics).Bucket(key); b != nil {
			b.ForEach(func(_, v []byte) error {
				var s Sample
				if json.Unmarshal(v, &s) == nil {
					d.Metrics = append(d.Metrics, s)
				}
				return nil
			})
		}
		return nil
	})
	if err == nil && !found {
		err = fmt.Errorf("%w: %q", ErrUnknownNode, id)
	}
	return d, err
}

// LogAction appends a to the remote-action log (the oldest entries beyond
// MaxActions are dropped).
func (r *Registry) LogAction(a Action) error {
	return r.db.Update(func(tx *bolt.Tx) error {
		return appendTo(tx.Bucket(bucketActions), a, MaxActions)
	})
}

// Actions returns up to limit entries of the remote-action log, newest first.
func (r *Registry) Actions(limit int) ([]Action, error) {
	out := []Action{}
	err := r.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketActions).Cursor()
		for k, v := c.Last(); k != nil && len(out) < limit; k, v = c.Prev() {
			var a Action
			if json.Unmarshal(v, &a) == nil {
				out = append(out, a)
			}
		}
		return nil
	})
	return out, err
}
