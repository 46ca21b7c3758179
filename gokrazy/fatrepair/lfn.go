package fatrepair

// Long-file-name slots (FAT spec, "FAT Long Directory Entries") precede
// their short entry, last part first: the first slot's ordinal has 0x40 set
// and counts the slots; each following slot carries the next lower ordinal,
// down to 1; every slot carries the checksum of the short name.
//
// Repair leaves long names alone except where fsck.fat -n would want to
// write. In dosfstools 4.2 (lfn.c) that is: a sequence of slots that is in
// progress when the scan reaches a free entry or the end of the directory,
// or a complete sequence followed by another long-name slot instead of its
// short entry, is "orphaned" and deleted; and a slot whose reserved byte or
// cluster field is not 0 is fixed. Everything else odd (a fragment without
// its first slot, a wrong ordinal, a wrong checksum, an unfinished name at a
// short entry) it only prints, and it drops the sequence from its state
// without deleting it.
//
// lfnTracker runs that state machine over the directory as it will be after
// repair, so that fsck.fat finds nothing to change on its next run. The
// subtle part is what deleting slots does to that view: when a sequence is
// deleted, the slots it had displaced (an earlier sequence that was still in
// progress when its first slot came) are now followed by a free entry, and so
// are orphans too. The tracker therefore keeps every slot it has collected
// since its state was last empty, and deletes them all together.
type lfnTracker struct {
	// next is fsck.fat's lfn_slot: -1 when no sequence is in progress,
	// else the ordinal the next slot must carry (0: complete, the short
	// entry must come next).
	next int
	sum  byte
	// parts are the offsets of the current sequence's slots; displaced the
	// offsets of the sequences it displaced since next was last -1.
	parts, displaced []int64
}

func newLFNTracker() lfnTracker { return lfnTracker{next: -1} }

// reset forgets the state without deleting anything.
func (t *lfnTracker) reset() {
	t.next, t.parts, t.displaced = -1, t.parts[:0], t.displaced[:0]
}

// free handles a free entry (or a short entry Repair deletes, or the end of
// the directory) and returns the offsets of the slots to delete as orphans.
func (t *lfnTracker) free() []int64 {
	if t.next == -1 {
		return nil
	}
	del := append(append([]int64(nil), t.displaced...), t.parts...)
	t.reset()
	return del
}

// complete reports whether a whole sequence precedes the short entry being
// looked at, i.e. whether fsck.fat gives that entry a long name.
func (t *lfnTracker) complete() bool { return t.next == 0 }

// short handles a short entry Repair keeps: fsck.fat attaches a complete
// sequence to it (even with a wrong checksum, which it only prints) and
// drops an unfinished one; either way nothing is deleted.
func (t *lfnTracker) short() { t.reset() }

// slot handles the long-name slot e at offset off. It returns the offsets of
// slots to delete as orphans, and whether fsck.fat would check (and so
// Repair must fix) e's reserved byte and cluster field.
func (t *lfnTracker) slot(e []byte, off int64) (del []int64, checkFields bool) {
	ord, first := int(e[0]&0x1F), e[0]&0x40 != 0
	if t.next == 0 {
		// A complete sequence not followed by its short entry.
		del = t.free()
	}
	switch {
	case first && ord != 0:
		if t.next != -1 {
			// A new name starts inside an unfinished one: fsck.fat
			// leaves the old slots; they stay ours to delete if this
			// sequence turns out orphaned.
			t.displaced = append(t.displaced, t.parts...)
		}
		t.next, t.sum, t.parts = ord, e[13], t.parts[:0]
	case t.next == -1 && ord != 0:
		// A fragment outside any sequence: printed, ignored.
		return del, false
	case ord != t.next:
		// Wrong ordinal: fsck.fat drops the sequence so far.
		t.reset()
		return del, false
	}
	// In sequence. A checksum differing from the first slot's is only
	// printed.
	t.next--
	t.parts = append(t.parts, off)
	return del, true
}
