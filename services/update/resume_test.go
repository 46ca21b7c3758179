package update

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/services/update/bundle"
)

// brokenLink is a transfer that stops after n bytes with err.
type brokenLink struct {
	r   io.Reader
	n   int
	err error
}

func (b *brokenLink) Read(p []byte) (int, error) {
	if b.n == 0 {
		return 0, b.err
	}
	if len(p) > b.n {
		p = p[:b.n]
	}
	n, err := b.r.Read(p)
	b.n -= n
	return n, err
}

func idOf(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// TestResume: a transfer that breaks off twice (a reset link, then a sender
// that stopped) is finished by a third that sends only the rest; nothing is
// recorded as refused on the way, and the card ends as after one transfer.
func TestResume(t *testing.T) {
	d := newDevice(t)
	u := d.updater("a", "1.0")
	b := d.bundle("1.1", releaseKey)
	id := idOf(b)
	if h := u.Held(id); h != 0 {
		t.Fatalf("held %d before any transfer", h)
	}
	third := len(b) / 3
	_, err := u.ApplyResumable(Resume{ID: id}, &brokenLink{r: bytes.NewReader(b), n: third, err: errors.New("connection reset by peer")}, nil)
	if err == nil || u.Held(id) != int64(third) {
		t.Fatalf("first transfer: %v, held %d of %d", err, u.Held(id), third)
	}
	_, err = u.ApplyResumable(Resume{ID: id, Offset: int64(third)}, io.LimitReader(bytes.NewReader(b[third:]), int64(third)), nil)
	if !errors.Is(err, bundle.ErrTruncated) || u.Held(id) != int64(2*third) {
		t.Fatalf("second transfer: %v, held %d of %d", err, u.Held(id), 2*third)
	}
	if st := u.Status(); st.Last != nil {
		t.Errorf("a broken transfer was recorded: %+v", st.Last)
	}
	if len(d.reboots) != 0 || mustRead(t, filepath.Join(d.card.Dir, "b", "VERSION")) != "empty\n" {
		t.Fatal("a broken transfer wrote the slot")
	}
	// Resuming from anywhere but what the node holds is refused, reading nothing.
	var oe *OffsetError
	if _, err := u.ApplyResumable(Resume{ID: id, Offset: 5}, bytes.NewReader(b[5:]), nil); !errors.As(err, &oe) || oe.Have != int64(2*third) {
		t.Fatalf("resume at 5: %v, want an OffsetError saying %d", err, 2*third)
	}
	m, err := u.ApplyResumable(Resume{ID: id, Offset: int64(2 * third)}, bytes.NewReader(b[2*third:]), nil)
	if err != nil || m.Version != "1.1" {
		t.Fatalf("third transfer: %v", err)
	}
	if u.Held(id) != 0 {
		t.Error("the held bytes stayed after the install")
	}
	if _, err := os.Stat(u.partPath()); !os.IsNotExist(err) {
		t.Errorf("the part file stayed: %v", err)
	}
	if d.boot(true) != "b" || mustRead(t, filepath.Join(d.card.Dir, "b", "VERSION")) != "1.1\n" {
		t.Error("the resumed bundle is not the trial slot")
	}
}

// TestResumeRefusals: held bytes of another bundle are dropped by a new
// transfer; held bytes that were damaged fail the check like any others and
// are dropped; a malformed ID is refused; held bytes expire.
func TestResumeRefusals(t *testing.T) {
	d := newDevice(t)
	u := d.updater("a", "1.0")
	b1, b2 := d.bundle("1.1", releaseKey), d.bundle("1.2", releaseKey)
	id1, id2 := idOf(b1), idOf(b2)
	half := len(b1) / 2
	u.ApplyResumable(Resume{ID: id1}, io.LimitReader(bytes.NewReader(b1), int64(half)), nil)
	if u.Held(id1) != int64(half) || u.Held(id2) != 0 {
		t.Fatalf("held %d of bundle 1, %d of bundle 2", u.Held(id1), u.Held(id2))
	}
	// Another bundle from offset 0 replaces them.
	u.ApplyResumable(Resume{ID: id2}, io.LimitReader(bytes.NewReader(b2), 100), nil)
	if u.Held(id1) != 0 || u.Held(id2) != 100 {
		t.Fatalf("after bundle 2's start: held %d of 1, %d of 2", u.Held(id1), u.Held(id2))
	}
	// Damage in the held bytes (a power cut mid-append, a bad card) fails
	// the check after the resume, is recorded, and drops what was held.
	u.ApplyResumable(Resume{ID: id1}, io.LimitReader(bytes.NewReader(b1), int64(half)), nil)
	f, _ := os.OpenFile(u.partPath(), os.O_RDWR, 0)
	f.WriteAt([]byte{0xff, 0xfe}, int64(half-10))
	f.Close()
	_, err := u.ApplyResumable(Resume{ID: id1, Offset: int64(half)}, bytes.NewReader(b1[half:]), nil)
	if !errors.Is(err, bundle.ErrDigest) && !errors.Is(err, bundle.ErrFormat) {
		t.Fatalf("resume over damaged bytes: %v, want a failed check", err)
	}
	if u.Held(id1) != 0 {
		t.Error("damaged held bytes were kept")
	}
	if st := u.Status(); st.Last == nil || st.Last.Result != ResultRefused {
		t.Errorf("the failed check was not recorded: %+v", st.Last)
	}
	for _, bad := range []string{"", "abc", id1[:63] + "G", "ABCDEF" + id1[6:]} {
		if _, err := u.ApplyResumable(Resume{ID: bad}, bytes.NewReader(b1), nil); bad != "" && !errors.Is(err, ErrID) {
			t.Errorf("ID %q: %v, want ErrID", bad, err)
		}
	}
	// Held bytes expire a week after they last grew.
	u2 := d.updater("a", "1.0")
	u2.ApplyResumable(Resume{ID: id1}, io.LimitReader(bytes.NewReader(b1), 50), nil)
	old := time.Now().Add(-partExpiry - time.Hour)
	os.Chtimes(u2.partPath(), old, old)
	u2.expirePart(time.Now())
	if u2.Held(id1) != 0 {
		t.Error("held bytes older than a week were kept")
	}
}
