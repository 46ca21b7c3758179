package update

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/skyfleet/skyfleet/services/update/bundle"
	"github.com/skyfleet/skyfleet/services/update/slot"
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

// TestResumeNoRoom: /perm must hold the spool and the whole raw bundle for a
// resumable transfer. One that does not fit is refused before anything is
// written, with the sizes, and keeps nothing; held bytes that no longer fit
// beside the spool (other data grew meanwhile) are dropped with the refusal,
// where they used to be kept and fail every resume for a week. A transfer that
// keeps nothing for a resume needs only the spool. The spool is on a tmpfs of a
// chosen size (root only: CI runs as root).
func TestResumeNoRoom(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	const big = 2 << 20 // the bundle's one large file, in bytes
	d := newDevice(t)
	b := bigBundle(t, d, "1.1", big)
	m, err := bundle.ReadHead(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	id := idOf(b)
	perm := func(size int64) *Updater {
		dir := t.TempDir()
		if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, fmt.Sprintf("size=%dk,mode=0700", size>>10)); err != nil {
			t.Fatalf("mounting a tmpfs: %v", err)
		}
		t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
		u := d.updater("a", "1.0")
		u.SpoolDir = filepath.Join(dir, "spool")
		return u
	}

	// Room for the spool and the margin, not for the raw bundle as well.
	u := perm(slot.SpoolMargin + m.Total() + m.Carried()/2)
	_, err = u.ApplyResumable(Resume{ID: id}, bytes.NewReader(b), nil)
	if !errors.Is(err, slot.ErrNoRoom) || !strings.Contains(err.Error(), "kept for a resume") {
		t.Fatalf("a resumable transfer without room for the raw bundle: %v, want ErrNoRoom naming the resume's share", err)
	}
	if u.Held(id) != 0 {
		t.Errorf("a refused transfer kept %d bytes", u.Held(id))
	}
	if len(d.reboots) != 0 || mustRead(t, filepath.Join(d.card.Dir, "b", "VERSION")) != "empty\n" {
		t.Fatal("a refused transfer wrote the slot")
	}
	if _, err := u.Apply(bytes.NewReader(b), nil); err != nil {
		t.Fatalf("the same bundle, kept for no resume: %v", err)
	}

	// Room for both; the transfer breaks at half, then other data takes 1 MiB.
	d = newDevice(t)
	u = perm(slot.SpoolMargin + m.Total() + int64(len(b)) + 256<<10)
	half := len(b) / 2
	if _, err := u.ApplyResumable(Resume{ID: id}, io.LimitReader(bytes.NewReader(b), int64(half)), nil); !errors.Is(err, bundle.ErrTruncated) || u.Held(id) != int64(half) {
		t.Fatalf("broken transfer: %v, held %d", err, u.Held(id))
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(u.SpoolDir), "other-state"), make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = u.ApplyResumable(Resume{ID: id, Offset: int64(half)}, bytes.NewReader(b[half:]), nil)
	if !errors.Is(err, slot.ErrNoRoom) {
		t.Fatalf("resume without room: %v, want ErrNoRoom", err)
	}
	if u.Held(id) != 0 {
		t.Errorf("the held bytes stayed after the refusal (%d): every resume would fail the same way", u.Held(id))
	}
	if st := u.Status(); st.Last == nil || st.Last.Result != ResultRefused || !strings.Contains(st.Last.Reason, "MiB free") {
		t.Errorf("the refusal is not in the status with its reason: %+v", st.Last)
	}
}

// bigBundle is d's bundle for version with an initrd of size random bytes.
func bigBundle(t *testing.T, d *device, version string, size int) []byte {
	t.Helper()
	initrd := make([]byte, size)
	rand.Read(initrd)
	files := map[string][]byte{"vmlinuz": []byte("kernel"), "initrd": initrd, "VERSION": []byte(version + "\n"),
		"cmdline.a.txt": []byte(d.p.CmdlineTXT("a")), "cmdline.b.txt": []byte(d.p.CmdlineTXT("b"))}
	var srcs []bundle.Source
	for n, c := range files {
		srcs = append(srcs, bundle.Source{Name: n, Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(c)), nil }})
	}
	var buf bytes.Buffer
	if _, err := bundle.Write(&buf, releaseKey, bundle.Header{Board: "rpi3b", Version: version, Created: time.Unix(1, 0)}, srcs); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
