package msg

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/skyfleet/skyfleet/internal/boltdb"
	"github.com/skyfleet/skyfleet/services/identity"
	"github.com/skyfleet/skyfleet/services/saf"
)

// StoreFile is the inbox and outbox database in the node's data directory.
const StoreFile = "msg.db"

// Caps on what other nodes (and API callers) can make this node keep: past them
// the oldest messages go.
const (
	// MaxInbox is how many received messages are kept.
	MaxInbox = 10_000
	// MaxOutbox is how many sent messages are kept with their state.
	MaxOutbox = 10_000
	// Lifetime is how long a message (or receipt) bundle is worth delivering.
	Lifetime = 7 * 24 * time.Hour
)

// Outbox states of a sent message.
const (
	StateHeld      = "held"      // this node holds custody
	StateForwarded = "forwarded" // custody passed to the next hop
	StateDelivered = "delivered" // the recipient's receipt came back
	StateExpired   = "expired"   // its lifetime ended before custody moved on
)

// Sender is what the service needs of the store-and-forward engine.
type Sender interface {
	// Send takes custody of a bundle made here and returns its ID once durable.
	Send(b *saf.Bundle) (saf.ID, error)
}

// Config configures Open.
type Config struct {
	// Dir is the node's data directory (msg.db lives there).
	Dir string
	// Key is the node key: messages are signed with it and sealed to it.
	Key *identity.Key
	// PSK is the fleet's network key; broadcasts are sealed under a key derived
	// from it.
	PSK [32]byte
	// Sender carries the sealed messages as bundles.
	Sender Sender
	// Wall returns the wall-clock time and whether it is known (a Pi boots at
	// 1970); unknown times are sent and shown as unknown. Default: time.Now, known.
	Wall func() (time.Time, bool)
	// Logf receives notable events. Default: discard.
	Logf func(format string, args ...any)
}

var (
	bucketInbox   = []byte("inbox")
	bucketOutbox  = []byte("outbox")
	bucketBundles = []byte("bundles") // saf bundle ID -> message ID, for custody events
	bucketKeys    = []byte("keys")    // node address -> public key, learnt from the topology
)

// MaxKeys caps the addresses remembered with their keys (Learn); beyond it the
// oldest learnt go.
const MaxKeys = 16384

// Service is the node's messaging: it sends, receives and keeps messages.
type Service struct {
	cfg Config
	db  *bolt.DB
	rec *boltdb.Recovery
	mu  sync.Mutex // orders inbox/outbox read-modify-writes

	received, receipts, replayed, refusedDecrypt, refusedSignature, refusedNotForUs, refusedMalformed atomic.Uint64
}

// NewService opens (or creates) the inbox and outbox. A damaged file is moved aside and
// reported (Recovery). Errors: the file cannot be opened.
func NewService(cfg Config) (*Service, error) {
	if cfg.Wall == nil {
		cfg.Wall = func() (time.Time, bool) { return time.Now(), true }
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	db, rec, err := boltdb.Open(filepath.Join(cfg.Dir, StoreFile), nil)
	if err != nil {
		return nil, fmt.Errorf("msg: %w", err)
	}
	if rec != nil {
		cfg.Logf("msg: %s", rec)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketInbox, bucketOutbox, bucketBundles, bucketKeys} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("msg: %w", err)
	}
	return &Service{cfg: cfg, db: db, rec: rec}, nil
}

// Close closes the database.
func (s *Service) Close() error { return s.db.Close() }

// InboxEntry is one received message (GET /msg/inbox).
type InboxEntry struct {
	ID string `json:"id"`
	// From and To are node addresses (Skycoin format); To is "*" for a broadcast.
	From    string `json:"from"`
	FromKey string `json:"from_key"`
	To      string `json:"to"`
	Text    string `json:"text"`
	// SentAt is the sender's time (RFC 3339), "" when its clock was unknown;
	// ReceivedAt this node's, "" likewise.
	SentAt      string `json:"sent_at"`
	ReceivedAt  string `json:"received_at"`
	Broadcast   bool   `json:"broadcast,omitempty"`
	ReceiptSent bool   `json:"receipt_sent,omitempty"`
	// Clear marks a message that came in the clear envelope (Clear): signed,
	// but readable by every node and station on its way.
	Clear bool `json:"clear,omitempty"`
	seq   uint64
}

// OutboxEntry is one sent message and how far it got (GET /msg/outbox).
type OutboxEntry struct {
	ID          string `json:"id"`
	To          string `json:"to"`
	ToKey       string `json:"to_key,omitempty"`
	Text        string `json:"text"`
	SentAt      string `json:"sent_at"`
	State       string `json:"state"`
	Bundle      string `json:"bundle"`
	DeliveredAt string `json:"delivered_at,omitempty"`
	// Clear marks a message sent in clear (SendClear), which may cross
	// amateur-radio hops; a sealed one never does.
	Clear bool `json:"clear,omitempty"`
	seq   uint64
}

func msTime(ms int64) string {
	if ms <= 0 {
		return ""
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano)
}

func addr(k [33]byte) string {
	if k == ([33]byte{}) {
		return "*"
	}
	a, err := identity.AddressFromPublicKey(k[:])
	if err != nil {
		return hex.EncodeToString(k[:])
	}
	return a.String()
}

func (s *Service) nowMs() int64 {
	if t, ok := s.cfg.Wall(); ok {
		return t.UnixMilli()
	}
	return 0
}

// Send signs text, seals it to the node with key to (all zero: every node of the
// fleet, under the network key) and hands it to the store-and-forward engine. It
// returns once the local node holds custody durably. Errors: bad text
// (ErrMalformed: empty, over MaxText bytes, not UTF-8), a store at its cap
// (saf.ErrFull), a failed commit.
func (s *Service) Send(to [33]byte, text string) (OutboxEntry, error) {
	return s.send(to, text, false)
}

// SendClear is Send in the clear envelope (Clear): signed but not encrypted, so
// that it may cross amateur-radio hops, and readable by whoever hears it.
func (s *Service) SendClear(to [33]byte, text string) (OutboxEntry, error) {
	return s.send(to, text, true)
}

// envelope seals m, or wraps it in clear when clear is set.
func (s *Service) envelope(m *Signed, clear bool) ([]byte, error) {
	if clear {
		return Clear(m)
	}
	return Seal(m, s.cfg.PSK, rand.Reader)
}

func (s *Service) send(to [33]byte, text string, clear bool) (OutboxEntry, error) {
	signed, err := NewText(s.cfg.Key, to, text, s.nowMs(), rand.Reader)
	if err != nil {
		return OutboxEntry{}, err
	}
	sealed, err := s.envelope(signed, clear)
	if err != nil {
		return OutboxEntry{}, err
	}
	b := &saf.Bundle{Class: saf.ClassRealTime, Port: saf.PortMsg, Source: saf.Key(s.cfg.Key.PublicKey()),
		Destination: saf.Key(to), Created: signed.SentAt, Lifetime: Lifetime, Payload: sealed}
	bid, err := s.cfg.Sender.Send(b)
	if err != nil {
		return OutboxEntry{}, err
	}
	e := OutboxEntry{ID: signed.ID().String(), To: addr(to), Text: text, SentAt: msTime(signed.SentAt),
		State: StateHeld, Bundle: bid.String(), Clear: clear}
	if to != ([33]byte{}) {
		e.ToKey = hex.EncodeToString(to[:])
	}
	// The bundle is durable before the outbox row: a crash in between sends a
	// message the outbox does not show, never shows one that is not sent.
	err = s.db.Update(func(tx *bolt.Tx) error {
		if err := putJSON(tx.Bucket(bucketOutbox), signed.ID(), &e); err != nil {
			return err
		}
		if err := tx.Bucket(bucketBundles).Put(bid[:], signed.ID().raw()); err != nil {
			return err
		}
		return trim(tx.Bucket(bucketOutbox), MaxOutbox)
	})
	return e, err
}

func (id ID) raw() []byte { return append([]byte(nil), id[:]...) }

// putJSON stores v under id with an 8-byte sequence prefix in the value, so
// trim can find the oldest rows without decoding them all.
func putJSON(b *bolt.Bucket, id ID, v any) error {
	j, err := json.Marshal(v)
	if err != nil {
		return err
	}
	seq, _ := b.NextSequence()
	return b.Put(id[:], append(binary.BigEndian.AppendUint64(nil, seq), j...))
}

// updateJSON rewrites the row id keeping its sequence.
func updateJSON(b *bolt.Bucket, id ID, v any) error {
	old := b.Get(id[:])
	if len(old) < 8 {
		return nil
	}
	j, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(id[:], append(append([]byte(nil), old[:8]...), j...))
}

func getJSON(b *bolt.Bucket, id ID, v any) bool {
	raw := b.Get(id[:])
	if len(raw) < 8 {
		return false
	}
	return json.Unmarshal(raw[8:], v) == nil
}

// trim deletes the oldest rows of b beyond max.
func trim(b *bolt.Bucket, max int) error {
	n := b.Stats().KeyN
	if n <= max {
		return nil
	}
	type row struct {
		k   []byte
		seq uint64
	}
	var rows []row
	b.ForEach(func(k, v []byte) error {
		if len(v) >= 8 {
			rows = append(rows, row{append([]byte(nil), k...), binary.BigEndian.Uint64(v)})
		}
		return nil
	})
	sort.Slice(rows, func(i, j int) bool { return rows[i].seq < rows[j].seq })
	for _, r := range rows[:n-max] {
		if err := b.Delete(r.k); err != nil {
			return err
		}
	}
	return nil
}

// Deliver is the engine's DeliverFunc for saf.PortMsg: it opens, checks and keeps
// a message (answering it with a receipt), or records a receipt in the outbox. A
// message that does not open, is forged or is not for this node is counted and
// dropped (nil, so the engine lets the bundle go: no copy of it would be better).
// A replayed message is recognised by its ID, counted, and not kept twice.
func (s *Service) Deliver(_ saf.ID, b *saf.Bundle) error {
	signed, err := Open(b.Payload, s.cfg.Key, s.cfg.PSK)
	switch {
	case errors.Is(err, ErrDecrypt):
		s.refusedDecrypt.Add(1)
		return nil
	case errors.Is(err, ErrSignature):
		s.refusedSignature.Add(1)
		return nil
	case errors.Is(err, ErrNotForUs):
		s.refusedNotForUs.Add(1)
		return nil
	case err != nil:
		s.refusedMalformed.Add(1)
		return nil
	}
	if signed.Kind == KindReceipt {
		return s.receipt(signed)
	}
	return s.text(signed, IsClear(b.Payload))
}

// text keeps a text message and sends its receipt, in clear when the message came
// in clear (its way back may be the same radio hops).
func (s *Service) text(m *Signed, clear bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := m.ID()
	var e InboxEntry
	var dup bool
	err := s.db.View(func(tx *bolt.Tx) error {
		dup = getJSON(tx.Bucket(bucketInbox), id, &e)
		return nil
	})
	if err != nil {
		return err
	}
	if dup {
		s.replayed.Add(1)
		if e.ReceiptSent || m.IsBroadcast() {
			return nil
		}
		// Kept, but the receipt may not have gone (a crash in between): send it.
	} else {
		e = InboxEntry{ID: id.String(), From: addr(m.From), FromKey: hex.EncodeToString(m.From[:]), To: addr(m.To),
			Text: m.Text, SentAt: msTime(m.SentAt), ReceivedAt: msTime(s.nowMs()), Broadcast: m.IsBroadcast(), Clear: clear}
		err := s.db.Update(func(tx *bolt.Tx) error {
			if err := putJSON(tx.Bucket(bucketInbox), id, &e); err != nil {
				return err
			}
			return trim(tx.Bucket(bucketInbox), MaxInbox)
		})
		if err != nil {
			return err
		}
		s.received.Add(1)
	}
	if m.IsBroadcast() {
		return nil
	}
	r, err := NewReceipt(s.cfg.Key, m.From, id, s.nowMs(), s.nowMs(), rand.Reader)
	if err != nil {
		return nil
	}
	sealed, err := s.envelope(r, clear)
	if err != nil {
		return nil
	}
	_, err = s.cfg.Sender.Send(&saf.Bundle{Class: saf.ClassRealTime, Port: saf.PortMsg, Source: saf.Key(s.cfg.Key.PublicKey()),
		Destination: saf.Key(m.From), Created: r.SentAt, Lifetime: Lifetime, Payload: sealed})
	if err != nil {
		s.cfg.Logf("msg: receipt for %s: %v", id.String()[:16], err)
		return nil
	}
	e.ReceiptSent = true
	return s.db.Update(func(tx *bolt.Tx) error { return updateJSON(tx.Bucket(bucketInbox), id, &e) })
}

func (s *Service) receipt(r *Signed) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.receipts.Add(1)
	return s.db.Update(func(tx *bolt.Tx) error {
		var e OutboxEntry
		if !getJSON(tx.Bucket(bucketOutbox), r.Receipt.Of, &e) {
			return nil // not ours, or trimmed
		}
		// Only the recipient can acknowledge: its key signed the receipt.
		if e.ToKey != hex.EncodeToString(r.From[:]) || e.State == StateDelivered {
			return nil
		}
		e.State = StateDelivered
		e.DeliveredAt = msTime(r.Receipt.ReceivedAt)
		return updateJSON(tx.Bucket(bucketOutbox), r.Receipt.Of, &e)
	})
}

// Released is the engine's custody callback: a sent message's bundle passed to
// the next hop (forwarded) or expired.
func (s *Service) Released(bid saf.ID, _ saf.Key, st saf.Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.db.Update(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketBundles).Get(bid[:])
		if len(raw) != len(ID{}) {
			return nil
		}
		id := ID(raw)
		var e OutboxEntry
		if !getJSON(tx.Bucket(bucketOutbox), id, &e) {
			return nil
		}
		switch {
		case st == saf.StatusExpired && e.State != StateDelivered:
			e.State = StateExpired
		case e.State == StateHeld:
			e.State = StateForwarded
		default:
			return nil
		}
		tx.Bucket(bucketBundles).Delete(bid[:])
		return updateJSON(tx.Bucket(bucketOutbox), id, &e)
	})
}

// Learn remembers that address belongs to key, so a message can still be sent to
// a node that has left the topology (it is off, or on another island) and will
// get it when it comes back. Addresses already known cost a read.
func (s *Service) Learn(address string, key [33]byte) {
	var known bool
	s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketKeys).Get([]byte(address))
		known = len(v) == 8+33 && [33]byte(v[8:]) == key
		return nil
	})
	if known {
		return
	}
	s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKeys)
		seq, _ := b.NextSequence()
		if err := b.Put([]byte(address), append(binary.BigEndian.AppendUint64(nil, seq), key[:]...)); err != nil {
			return err
		}
		return trim(b, MaxKeys)
	})
}

// KeyOf returns the key Learn remembered for address.
func (s *Service) KeyOf(address string) ([33]byte, bool) {
	var k [33]byte
	var ok bool
	s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketKeys).Get([]byte(address)); len(v) == 8+33 {
			k, ok = [33]byte(v[8:]), true
		}
		return nil
	})
	return k, ok
}

// Inbox returns the received messages, oldest first.
func (s *Service) Inbox() []InboxEntry { return listRows[InboxEntry](s.db, bucketInbox) }

// Outbox returns the sent messages with their states, oldest first.
func (s *Service) Outbox() []OutboxEntry { return listRows[OutboxEntry](s.db, bucketOutbox) }

// sequenced is a row type listRows can order: its sequence number is set from
// the row's 8-byte prefix (putJSON).
type sequenced[T any] interface {
	*T
	setSeq(uint64)
	getSeq() uint64
}

func (e *InboxEntry) setSeq(n uint64)  { e.seq = n }
func (e *InboxEntry) getSeq() uint64   { return e.seq }
func (e *OutboxEntry) setSeq(n uint64) { e.seq = n }
func (e *OutboxEntry) getSeq() uint64  { return e.seq }

// listRows decodes every row of bucket, oldest first; rows that do not decode
// are skipped. Never nil, so the API answers [] rather than null.
func listRows[T any, PT sequenced[T]](db *bolt.DB, bucket []byte) []T {
	out := []T{}
	db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, v []byte) error {
			var e T
			if len(v) >= 8 && json.Unmarshal(v[8:], &e) == nil {
				PT(&e).setSeq(binary.BigEndian.Uint64(v))
				out = append(out, e)
			}
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return PT(&out[i]).getSeq() < PT(&out[j]).getSeq() })
	return out
}

// Stats counts what the service received and refused (GET /msg/stats).
type Stats struct {
	Received         uint64 `json:"received"`
	Receipts         uint64 `json:"receipts"`
	Replayed         uint64 `json:"refused_replayed"`
	RefusedDecrypt   uint64 `json:"refused_decrypt"`
	RefusedSignature uint64 `json:"refused_signature"`
	RefusedNotForUs  uint64 `json:"refused_not_for_us"`
	RefusedMalformed uint64 `json:"refused_malformed"`
	Recovery         string `json:"recovery,omitempty"`
}

// Stats returns the counters.
func (s *Service) Stats() Stats {
	st := Stats{Received: s.received.Load(), Receipts: s.receipts.Load(), Replayed: s.replayed.Load(),
		RefusedDecrypt: s.refusedDecrypt.Load(), RefusedSignature: s.refusedSignature.Load(),
		RefusedNotForUs: s.refusedNotForUs.Load(), RefusedMalformed: s.refusedMalformed.Load()}
	if s.rec != nil {
		st.Recovery = s.rec.String()
	}
	return st
}
