package registry

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/skyfleet/skyfleet/services/control"
)

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// fleetKey is node i's key, the same on every run.
func fleetKey(i int) *secp256k1.PrivateKey {
	seed := sha256.Sum256([]byte(fmt.Sprintf("registry test node %d", i)))
	return secp256k1.PrivKeyFromBytes(seed[:])
}

// buildRegistry writes a registry of 12 nodes (two named alike), ten reports
// each with history and metrics, 300 operator actions and 40 refusals, closes
// it, and opens and closes it once more, as a master restart does.
func buildRegistry(t *testing.T, path string) {
	t.Helper()
	reg, err := Open(path, 80*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for round := range 10 {
		for i := range 12 {
			rep := control.Report{Name: fmt.Sprintf("kit-%02d", i), Board: "rpi4b", Version: fmt.Sprintf("v1.%d", round/3),
				Slot: "a", UptimeSeconds: float64(60 * round),
				Links:    []control.Link{{Address: fmt.Sprintf("sky1peer%d", (i+1)%12), Up: true, RTTms: float64(i + round), Loss: 0.01}},
				Services: []control.ServiceState{{Name: "mesh", State: []string{"running", "backoff"}[(i+round)%2]}}}
			if i == 11 {
				rep.Name = "kit-07" // a second node claims kit-07
			}
			if _, err := reg.Record(signed(t, fleetKey(i), uint64(round+1), rep), t0.Add(time.Duration(round)*time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range 300 {
		if err := reg.LogAction(Action{Time: t0.Add(time.Duration(i) * time.Second), Node: fmt.Sprintf("kit-%02d", i%12), Action: "exec",
			Detail: fmt.Sprintf("%q: exit %d", "uname -a", i%3)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 40 {
		reg.LogRefusal(Action{Time: t0.Add(time.Duration(i) * time.Second), Node: "sky1stranger", Action: "refused", Detail: fmt.Sprintf("report: replay %d", i)})
	}
	if err := reg.Close(); err != nil {
		t.Fatal(err)
	}
	reg, err = Open(path, 80*time.Second)
	if err != nil || reg.Recovery() != nil {
		t.Fatal(err, reg.Recovery())
	}
	reg.Close()
}

// dump is everything a registry holds, as JSON: the nodes, each node's detail
// (history, metrics), the operator's actions and the refusals.
func dump(t *testing.T, reg *Registry) string {
	t.Helper()
	now := t0.Add(time.Hour)
	nodes, err := reg.Nodes(now)
	if err != nil {
		t.Fatal(err)
	}
	var details []Detail
	for _, n := range nodes {
		d, err := reg.Lookup(n.PublicKey, now)
		if err != nil {
			t.Fatalf("lookup %s: %v", n.Address, err)
		}
		details = append(details, d)
	}
	actions, err := reg.Actions(MaxActions)
	if err != nil {
		t.Fatal(err)
	}
	refusals, err := reg.Refusals(MaxRefusals)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{"nodes": nodes, "details": details, "actions": actions, "refusals": refusals})
	return string(b)
}

// pages classifies a bbolt file's pages by their header flags (a free page
// keeps the flags of what it was), with the meta page in use first.
type pages struct {
	size    int
	meta    int // the meta page in use (higher txid)
	byFlag  map[uint16][]int
	hwm     int
	fileLen int
}

func layout(b []byte) pages {
	ps := int(binary.NativeEndian.Uint32(b[16+8:]))
	p := pages{size: ps, byFlag: map[uint16][]int{}, fileLen: len(b)}
	tx0, tx1 := binary.NativeEndian.Uint64(b[16+48:]), binary.NativeEndian.Uint64(b[ps+16+48:])
	if tx1 > tx0 {
		p.meta = 1
	}
	p.hwm = int(binary.NativeEndian.Uint64(b[p.meta*ps+16+40:]))
	for id := 2; id < p.hwm; id++ {
		f := binary.NativeEndian.Uint16(b[id*ps+8:])
		p.byFlag[f] = append(p.byFlag[f], id)
		id += int(binary.NativeEndian.Uint32(b[id*ps+12:]))
	}
	return p
}

func fixMetaSum(b []byte, off int) {
	h := fnv.New64a()
	h.Write(b[off+16 : off+16+56])
	binary.NativeEndian.PutUint64(b[off+16+56:], h.Sum64())
}

type corruption struct {
	name string
	do   func(b []byte, p pages) []byte
}

// corruptions are the damages of TestCorruptCopies: bit flips and bad values
// in the meta pages, the freelist, branch and leaf pages, zeroed pages,
// truncations, garbage appended, values changed in place where bbolt cannot see
// it, and seeded random bit flips. The recipes are fixed; the pages they hit
// are found in the file at hand, since bbolt's layout varies from run to run
// (it writes a transaction's buckets in map order).
func corruptions(orig []byte) []corruption {
	p := layout(orig)
	ps := p.size
	at := func(page, off int) int { return page*ps + off }
	flip := func(off int, bit byte) func([]byte, pages) []byte {
		return func(b []byte, _ pages) []byte { b[off] ^= 1 << bit; return b }
	}
	first := func(flag uint16) int { return p.byFlag[flag][0] }
	freelist := int(binary.NativeEndian.Uint64(orig[at(p.meta, 16+32):])) // the one in use
	// indexOf finds s in the newest copy of a leaf page: free pages hold older
	// copies, so this takes the last occurrence in a page the meta's tree uses
	// (Check would pass a change to a free page, and so it should).
	indexOf := func(s string) int {
		return bytes.LastIndex(orig, []byte(s))
	}
	cs := []corruption{
		{"meta 0 magic", flip(at(0, 16), 0)},
		{"meta 1 checksum", flip(at(1, 16+56), 3)},
		{"meta in use, txid (checksum fails: previous transaction)", flip(at(p.meta, 16+48), 1)},
		{"both metas zeroed", func(b []byte, _ pages) []byte {
			clear(b[0 : 2*ps])
			return b
		}},
		{"meta in use: root page out of range, checksum fixed", func(b []byte, _ pages) []byte {
			binary.NativeEndian.PutUint64(b[at(p.meta, 16+16):], 1<<33)
			fixMetaSum(b, p.meta*ps)
			return b
		}},
		{"meta in use: high-water mark past the end, checksum fixed", func(b []byte, _ pages) []byte {
			binary.NativeEndian.PutUint64(b[at(p.meta, 16+40):], uint64(len(b)/ps+5))
			fixMetaSum(b, p.meta*ps)
			return b
		}},
		{"meta in use: page size 8192, checksum fixed", func(b []byte, _ pages) []byte {
			binary.NativeEndian.PutUint32(b[at(p.meta, 16+8):], 8192)
			fixMetaSum(b, p.meta*ps)
			return b
		}},
		{"freelist: first id bit flip", flip(at(freelist, 16), 4)},
		{"freelist: count 0xFFFF, huge count", func(b []byte, _ pages) []byte {
			binary.NativeEndian.PutUint16(b[at(freelist, 10):], 0xFFFF)
			binary.NativeEndian.PutUint64(b[at(freelist, 16):], 1<<40)
			return b
		}},
		{"freelist: count - 1", func(b []byte, _ pages) []byte {
			o := at(freelist, 10)
			binary.NativeEndian.PutUint16(b[o:], binary.NativeEndian.Uint16(b[o:])-1)
			return b
		}},
		{"freelist page zeroed", func(b []byte, _ pages) []byte { clear(b[at(freelist, 0):at(freelist+1, 0)]); return b }},
		{"branch: child page id", flip(at(first(0x01), 16+8), 0)},
		{"branch: key byte", flip(at(first(0x01), 16+int(binary.NativeEndian.Uint32(orig[at(first(0x01), 16):]))), 2)},
		{"branch: count + 1", func(b []byte, _ pages) []byte {
			o := at(first(0x01), 10)
			binary.NativeEndian.PutUint16(b[o:], binary.NativeEndian.Uint16(b[o:])+1)
			return b
		}},
		{"branch: flags say freelist", func(b []byte, _ pages) []byte {
			binary.NativeEndian.PutUint16(b[at(first(0x01), 8):], 0x10)
			return b
		}},
		{"node record: a digit of the uptime", func(b []byte, _ pages) []byte {
			i := indexOf(`"uptime_s":540`)
			b[i+len(`"uptime_s":`)] = '7'
			return b
		}},
		{"node record: a letter of the name", func(b []byte, _ pages) []byte {
			i := indexOf(`"name":"kit-03"`)
			b[i+len(`"name":"kit-0`)] = '4'
			return b
		}},
		{"action: a digit of the exit status", func(b []byte, _ pages) []byte {
			i := indexOf(`exit 2`)
			b[i+5] = '0'
			return b
		}},
		{"refusal: a digit", func(b []byte, _ pages) []byte {
			i := indexOf(`replay 39`)
			b[i+7] = '8'
			return b
		}},
	}
	for n, leaf := range p.byFlag[0x02] {
		if n%3 != 0 {
			continue
		}
		cs = append(cs,
			corruption{fmt.Sprintf("leaf page %d: count - 1 (its last entry gone)", leaf), func(b []byte, _ pages) []byte {
				o := at(leaf, 10)
				if c := binary.NativeEndian.Uint16(b[o:]); c > 0 {
					binary.NativeEndian.PutUint16(b[o:], c-1)
				}
				return b
			}},
			corruption{fmt.Sprintf("leaf page %d: first key byte", leaf), func(b []byte, _ pages) []byte {
				o := at(leaf, 16)
				b[o+int(binary.NativeEndian.Uint32(b[o+4:]))] ^= 0x10
				return b
			}},
			corruption{fmt.Sprintf("leaf page %d: value size - 1", leaf), func(b []byte, _ pages) []byte {
				o := at(leaf, 16+12)
				binary.NativeEndian.PutUint32(b[o:], binary.NativeEndian.Uint32(b[o:])-1)
				return b
			}},
			corruption{fmt.Sprintf("leaf page %d zeroed", leaf), func(b []byte, _ pages) []byte { clear(b[at(leaf, 0):at(leaf+1, 0)]); return b }},
			corruption{fmt.Sprintf("leaf page %d: page id", leaf), flip(at(leaf, 0), 5)},
			corruption{fmt.Sprintf("leaf page %d: overflow", leaf), flip(at(leaf, 12), 6)},
		)
	}
	for _, n := range []int{ps*2 + 100, 3 * ps, len(orig) / 2, len(orig) - ps, len(orig) - 1} {
		cs = append(cs, corruption{fmt.Sprintf("truncated to %d bytes", n), func(b []byte, _ pages) []byte { return b[:n] }})
	}
	cs = append(cs,
		corruption{"garbage appended (100 bytes)", func(b []byte, _ pages) []byte { return append(b, bytes.Repeat([]byte{0xA5}, 100)...) }},
		corruption{"a page of garbage appended", func(b []byte, _ pages) []byte { return append(b, bytes.Repeat([]byte{0xA5}, ps)...) }},
	)
	// And single-bit flips at places a seeded generator picks.
	r := rand.New(rand.NewSource(7))
	for range 60 {
		off, bit := r.Intn(p.hwm*ps), byte(r.Intn(8))
		cs = append(cs, corruption{fmt.Sprintf("bit %d of byte %d (page %d)", bit, off, off/ps), flip(off, bit)})
	}
	return cs
}

// Every damaged copy of a real registry either opens with every record equal
// to the original's (a change to a free page, say, or one meta page damaged,
// which is reported), or is moved aside and reported, and the master gets an
// empty registry. Never a panic, never a fault, never a record lost or changed
// without a word.
func TestCorruptCopies(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "registry.db")
	buildRegistry(t, src)
	orig, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := Open(src, 80*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := dump(t, ref)
	ref.Close()
	orig, _ = os.ReadFile(src) // as the reopen left it: its last commit changed nothing
	if !strings.Contains(want, `"duplicate_name":true`) || strings.Count(want, `"action":"exec"`) != 300 {
		t.Fatalf("the reference registry lacks what was written: %.300s", want)
	}
	outcomes := map[string]int{}
	for i, c := range corruptions(orig) {
		path := filepath.Join(dir, fmt.Sprintf("copy-%03d.db", i))
		damaged := c.do(bytes.Clone(orig), layout(orig))
		if err := os.WriteFile(path, damaged, 0o600); err != nil {
			t.Fatal(err)
		}
		reg, err := Open(path, 80*time.Second)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		rec := reg.Recovery()
		got := dump(t, reg)
		reg.Close()
		switch {
		case rec != nil && rec.MovedTo != "":
			outcomes["moved aside"]++
			moved, err := os.ReadFile(rec.MovedTo)
			if err != nil || !bytes.Equal(moved, damaged) {
				t.Errorf("%s: the moved-aside file is not the damaged one (%v)", c.name, err)
			}
			if strings.Contains(got, "kit-") {
				t.Errorf("%s: moved aside, yet the new registry holds records", c.name)
			}
			if rec.Reason == "" {
				t.Errorf("%s: moved aside without a reason", c.name)
			}
		case got != want:
			t.Errorf("%s: opened (recovery %v) with records that differ from the original", c.name, rec)
		case rec != nil:
			outcomes["intact, one meta page damaged (reported)"]++
		default:
			outcomes["intact"]++
		}
		if testing.Verbose() {
			reason := "opened intact"
			if rec != nil {
				reason = rec.Reason
			}
			t.Logf("%-60s %s", c.name, reason)
		}
	}
	t.Logf("outcomes of %d damaged copies: %v", len(corruptions(orig)), outcomes)
	if outcomes["moved aside"] < 20 {
		t.Errorf("only %d copies were moved aside: the damages miss the file", outcomes["moved aside"])
	}
}
