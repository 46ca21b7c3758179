package fatrepair

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// TestTinyClean: the synthetic volume is clean to fsck.vfat and to Repair,
// which writes nothing.
func TestTinyClean(t *testing.T) {
	img, _ := tinyFAT32()
	mustFsckClean(t, writeTemp(t, "tiny.img", img))
	rec := &recorder{ReadWriterAt: memDev(img), failAfter: -1}
	rep, err := Repair(rec, int64(len(img)), true)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Clean() || rec.writes != 0 {
		t.Fatalf("clean tiny image: %v, %d writes", rep, rec.writes)
	}
}

// damageTiny applies one random damage to the tiny volume. It leaves the
// BPB, the boot sector's label and the root's volume label entry alone:
// Repair refuses a bad BPB, and label mismatches are not something a power
// cut causes (fsck.vfat would rewrite the boot sector's label).
func damageTiny(rng *rand.Rand, img []byte) {
	const bps = 512
	fat := func(i int) int { return (tinyReserved + i) * bps }
	clusterOff := func(c int) int { return (tinyReserved + 2 + c - 2) * bps }
	interesting := func() uint32 {
		switch rng.IntN(9) {
		case 0:
			return 0
		case 1:
			return 1
		case 2:
			return fatEOC
		case 3:
			return fatBad
		case 4:
			return uint32(tinyClusters + 2 + rng.IntN(10)) // out of range
		case 5:
			return 0x0FFFFFF0
		case 6:
			return rng.Uint32()
		default:
			return uint32(2 + rng.IntN(tinyClusters))
		}
	}
	dirSlot := func() int { // a slot in root, A or SUB, not the label
		for {
			d, s := 2+rng.IntN(3), rng.IntN(16)
			if d != 2 || s != 0 {
				return clusterOff(d) + 32*s
			}
		}
	}
	switch rng.IntN(16) {
	case 0:
		img[offFlags] |= flagDirty
	case 1, 2, 3:
		c, v := rng.IntN(tinyClusters+2), interesting()
		if c == 0 && rng.IntN(4) != 0 {
			c = 2
		}
		switch rng.IntN(3) {
		case 0:
			put32(img[fat(0)+4*c:], v)
		case 1:
			put32(img[fat(1)+4*c:], v)
		default:
			put32(img[fat(0)+4*c:], v)
			put32(img[fat(1)+4*c:], v)
		}
	case 4, 5:
		e := img[dirSlot():][:32]
		switch rng.IntN(3) {
		case 0:
			e[0] = []byte{0, 0xE5, 'X', '.', '?', ' ', 0x05, 0x41, 0x01, 0x42}[rng.IntN(10)]
		case 1:
			e[rng.IntN(11)] = byte(rng.IntN(256))
		default:
			e[rng.IntN(11)] = []byte{'A', ' ', '.', '~', '1'}[rng.IntN(5)]
		}
	case 6, 7:
		e := img[dirSlot():][:32]
		switch rng.IntN(3) {
		case 0:
			e[11] = []byte{0x0F, 0x10, 0x20, 0x08, 0x18, 0x2F, 0x00, 0x16}[rng.IntN(8)]
		case 1:
			e[12] = []byte{0, 0x20, 0x08, 0x18, 0x28}[rng.IntN(5)]
		default:
			e[13] = byte(rng.IntN(256)) // LFN checksum
		}
	case 8, 9:
		e := img[dirSlot():][:32]
		if rng.IntN(2) == 0 {
			setStart(e, interesting())
		} else {
			put32(e[28:], []uint32{0, 1, 511, 512, 513, 1024, 5000, rng.Uint32()}[rng.IntN(8)])
		}
	case 10:
		copy(img[dirSlot():][:32], img[dirSlot():][:32])
	case 11:
		fsi := img[bps:]
		switch rng.IntN(4) {
		case 0:
			put32(fsi[offFSIFree:], interesting())
		case 1:
			put32(fsi[offFSINext:], interesting())
		case 2:
			fsi[rng.IntN(4)] ^= 0xFF
		default:
			fsi[offFSITrail+3] ^= 0xFF
		}
	case 12:
		if rng.IntN(2) == 0 {
			img[6*bps+rng.IntN(bps)] ^= 1 << rng.IntN(8)
		} else {
			put16(img[offBkBootSec:], 0)
		}
	case 13:
		put32(img[fat(rng.IntN(2))+4:], 0x07FFFFFF) // clean-shutdown bit clear
	case 14:
		d := clusterOff(3 + rng.IntN(2)) // A or SUB
		switch rng.IntN(3) {
		case 0:
			for i := range bps {
				img[d+i] = byte(rng.IntN(256))
			}
		case 1:
			clear(img[d : d+bps])
		default:
			clear(img[d : d+64]) // lose "." and ".."
		}
	case 15:
		e := img[dirSlot():][:32] // LFN fields
		e[0] = byte(1+rng.IntN(3)) | []byte{0, 0x40}[rng.IntN(2)]
		if rng.IntN(2) == 0 {
			e[11] = 0x0F
		}
		if rng.IntN(3) == 0 {
			e[12] = 1
		}
		if rng.IntN(3) == 0 {
			e[26] = 1
		}
	}
}

// TestRandomDamage damages the tiny volume at random, repairs it, and
// checks that fsck.vfat -n then finds nothing, that the check-only run wrote
// nothing and found the same, and that a second Repair finds nothing.
func TestRandomDamage(t *testing.T) {
	iterations, seed := 1500, uint64(1)
	if testing.Short() {
		iterations = 200
	}
	// For a longer soak: FATREPAIR_SOAK=<iterations>,<seed>.
	if s := os.Getenv("FATREPAIR_SOAK"); s != "" {
		if _, err := fmt.Sscanf(s, "%d,%d", &iterations, &seed); err != nil {
			t.Fatalf("FATREPAIR_SOAK=%q: %v", s, err)
		}
	}
	orig, _ := tinyFAT32()
	dir := t.TempDir()
	p := filepath.Join(dir, "tiny.img")
	rng := rand.New(rand.NewPCG(seed, 2))
	dirtyBefore, unclean := 0, 0
	defer func() {
		t.Logf("%d of %d damaged images failed fsck.vfat -n, %d reports not clean", dirtyBefore, iterations, unclean)
	}()
	for i := range iterations {
		img := bytes.Clone(orig)
		n := 1 + rng.IntN(4)
		for range n {
			damageTiny(rng, img)
		}
		damaged := bytes.Clone(img)
		check := &recorder{ReadWriterAt: memDev(bytes.Clone(img)), failAfter: -1}
		want, err := Repair(check, int64(len(img)), false)
		if check.writes != 0 {
			t.Fatalf("iteration %d: check-only Repair wrote %d times", i, check.writes)
		}
		if err != nil {
			t.Fatalf("iteration %d: %v", i, err)
		}
		got, err := Repair(memDev(img), int64(len(img)), true)
		if err != nil {
			t.Fatalf("iteration %d: %v", i, err)
		}
		if !got.Clean() {
			unclean++
		}
		if err := sameReport(want, got); err != nil {
			t.Fatalf("iteration %d: check-only and repair %v", i, err)
		}
		if err := os.WriteFile(p, img, 0o644); err != nil {
			t.Fatal(err)
		}
		if code, out := fsck(t, p); code != 0 {
			os.WriteFile(filepath.Join(os.TempDir(), "fatrepair-damaged.img"), damaged, 0o644)
			os.WriteFile(filepath.Join(os.TempDir(), "fatrepair-repaired.img"), img, 0o644)
			t.Fatalf("iteration %d: after %v, fsck.vfat -n exited %d:\n%s\n(images saved in %s)", i, got, code, out, os.TempDir())
		}
		again, err := Repair(memDev(img), int64(len(img)), false)
		if err != nil || !again.Clean() {
			t.Fatalf("iteration %d: second Repair: %v, %v", i, again, err)
		}
	}
}

// lfnSlot builds one long-name slot with ordinal byte ord and checksum sum.
func lfnSlot(ord, sum byte) []byte {
	e := make([]byte, 32)
	e[0], e[11], e[13] = ord, 0x0F, sum
	for _, o := range []int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30} {
		put16(e[o:], 'x')
	}
	return e
}

func checksum(short string) byte {
	var sum byte
	for _, c := range []byte(short) {
		sum = (sum>>1 | sum<<7) + c
	}
	return sum
}

// TestLongNames writes long-name arrangements into the tiny volume's root
// and checks Repair against fsck.vfat -n: it must fix exactly what fsck.vfat
// would write, and leave alone what it only prints.
func TestLongNames(t *testing.T) {
	x, y := "XFILE   TXT", "YFILE   TXT"
	sx, sy := checksum(x), checksum(y)
	short := func(name string, lcase byte) []byte {
		e := shortEntry(name, 0x20, 0, 0)
		e[12] = lcase
		return e
	}
	withReserved := func(e []byte) []byte { e[12] = 1; return e }
	for _, c := range []struct {
		name    string
		entries [][]byte
		want    Report
	}{
		{"complete", [][]byte{lfnSlot(0x42, sx), lfnSlot(1, sx), short(x, 0)}, Report{}},
		{"wrong checksum is only printed", [][]byte{lfnSlot(0x41, sy), short(x, 0)}, Report{}},
		{"fragment without first slot is only printed", [][]byte{lfnSlot(2, sx), short(x, 0)}, Report{}},
		{"unfinished name is only printed", [][]byte{lfnSlot(0x43, sx), lfnSlot(2, sx), short(x, 0)}, Report{}},
		{"wrong ordinal is only printed", [][]byte{lfnSlot(0x43, sx), lfnSlot(1, sx), short(x, 0)}, Report{}},
		{"ordinal 0 is only printed", [][]byte{lfnSlot(0x40, sx), short(x, 0)}, Report{}},
		{"no-8.3-name flag with a long name", [][]byte{lfnSlot(0x41, sx), short(x, noShortName)}, Report{}},
		{"orphan before a free entry", [][]byte{lfnSlot(0x42, sx), lfnSlot(1, sx)}, Report{LFNSlotsRemoved: 2}},
		{"orphan at the end of the directory", [][]byte{lfnSlot(0x41, sx)}, Report{LFNSlotsRemoved: 1}},
		{"complete name followed by another name", [][]byte{lfnSlot(0x41, sx), lfnSlot(0x41, sy), short(y, 0)}, Report{LFNSlotsRemoved: 1}},
		{"displaced name dies with its orphaned successor", [][]byte{lfnSlot(0x43, sy), lfnSlot(2, sy), lfnSlot(0x42, sx), lfnSlot(1, sx)}, Report{LFNSlotsRemoved: 4}},
		{"displaced name survives when its successor has its entry", [][]byte{lfnSlot(0x43, sy), lfnSlot(2, sy), lfnSlot(0x41, sx), short(x, 0)}, Report{}},
		{"entry removed for a bad name takes its and displaced slots", [][]byte{lfnSlot(0x42, sy), lfnSlot(0x41, checksum("X?FILE  TXT")), short("X?FILE  TXT", 0)}, Report{EntriesRemoved: 1, LFNSlotsRemoved: 2}},
		{"no-8.3-name flag without a long name", [][]byte{short(x, noShortName)}, Report{EntriesRemoved: 1}},
		{"reserved byte set", [][]byte{withReserved(lfnSlot(0x41, sx)), short(x, 0)}, Report{EntriesFixed: 1}},
		{"duplicate name", [][]byte{short(x, 0), lfnSlot(0x41, sx), short(x, 0)}, Report{EntriesRemoved: 1, LFNSlotsRemoved: 1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			img, _ := tinyFAT32()
			root := (tinyReserved + 2) * 512
			if c.name == "orphan at the end of the directory" {
				// Fill the root's single cluster up to its last slot.
				for s := 8; s < 15; s++ {
					copy(img[root+32*s:], short(fmt.Sprintf("F%d      TXT", s), 0))
				}
				copy(img[root+32*15:], c.entries[0])
			} else {
				for i, e := range c.entries {
					copy(img[root+32*(8+i):], e)
				}
			}
			p := writeTemp(t, "tiny.img", img)
			code, out := fsck(t, p)
			if (code == 0) != c.want.Clean() {
				t.Fatalf("fsck.vfat -n exited %d before repair, want clean %v:\n%s", code, c.want.Clean(), out)
			}
			got, err := Repair(memDev(img), int64(len(img)), true)
			if err != nil {
				t.Fatal(err)
			}
			if err := sameReport(got, c.want); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, img, 0o644); err != nil {
				t.Fatal(err)
			}
			mustFsckClean(t, p)
		})
	}
}
