package fatrepair

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

// FuzzRepair runs Repair on arbitrary images, seeded with the tiny FAT32
// volume (13 KiB) and damaged variants of it (see TestMain for why new
// inputs are minimized only briefly). It checks that Repair never
// panics or loops; that a check-only run writes nothing and finds what the
// repairing run then fixes; that a refused volume is not written; and that
// after a repair there is nothing left to fix.
func FuzzRepair(f *testing.F) {
	img, _ := tinyFAT32()
	f.Add(img)
	rng := rand.New(rand.NewPCG(3, 4))
	for range 8 {
		d := bytes.Clone(img)
		for range 3 {
			damageTiny(rng, d)
		}
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, img []byte) {
		orig := bytes.Clone(img)
		size := int64(len(img))

		check := &recorder{ReadWriterAt: memDev(bytes.Clone(img)), failAfter: -1}
		want, checkErr := Repair(check, size, false)
		if check.writes != 0 {
			t.Fatalf("Repair(fix=false) wrote %d times", check.writes)
		}
		if _, err := Dirty(memDev(img)); err != nil && checkErr == nil {
			t.Fatalf("Dirty refuses a volume Repair accepts: %v", err)
		}

		got, err := Repair(memDev(img), size, true)
		if (err == nil) != (checkErr == nil) {
			t.Fatalf("Repair(fix=false): %v; Repair(fix=true): %v", checkErr, err)
		}
		if err != nil {
			// An in-memory device cannot fail, so the only error is a
			// refusal, which must come before any write.
			if !errors.Is(err, ErrNotFAT32) {
				t.Fatalf("error is not ErrNotFAT32: %v", err)
			}
			if !bytes.Equal(img, orig) {
				t.Fatal("refused volume was written")
			}
			return
		}
		if err := sameReport(want, got); err != nil {
			t.Fatalf("check-only and repair: %v", err)
		}
		if got.Clean() != bytes.Equal(img, orig) {
			t.Fatalf("report clean %v, but image changed %v: %v", got.Clean(), !bytes.Equal(img, orig), got)
		}

		rec := &recorder{ReadWriterAt: memDev(img), failAfter: -1}
		again, err := Repair(rec, size, true)
		if err != nil || !again.Clean() || rec.writes != 0 {
			t.Fatalf("second Repair: %v, %d writes, %v; first: %v", again, rec.writes, err, got)
		}
		if dirty, err := Dirty(memDev(img)); err != nil || dirty {
			t.Fatalf("Dirty after repair: %v, %v", dirty, err)
		}
	})
}
