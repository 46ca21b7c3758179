package update

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/skyfleet/skyfleet/internal/durable"
	"github.com/skyfleet/skyfleet/services/update/bundle"
	"github.com/skyfleet/skyfleet/services/update/slot"
)

// Resume lets a bundle arrive in several transfers, for a link that breaks: a
// transfer that names the bundle keeps its raw bytes on /perm as they arrive,
// and a later one that names it again sends only the rest. Nothing is trusted
// for it: every byte, held or new, is verified as one stream again.
type Resume struct {
	// ID names the bundle: the SHA-256 of the whole file, 64 lower-case hex
	// digits. Empty: this transfer cannot be resumed (Apply's behaviour).
	ID string
	// Offset is how many of the bundle's bytes the transfer skips because
	// the node holds them (Updater.Held); 0 starts over.
	Offset int64
}

// OffsetError is the answer to a transfer whose Offset is not what the node
// holds of that bundle: Have is what it holds (send from there).
type OffsetError struct{ Have int64 }

func (e *OffsetError) Error() string {
	return fmt.Sprintf("update: this node holds %d bytes of that bundle: send from there", e.Have)
}

// ErrID is returned for a Resume.ID that is not 64 lower-case hex digits.
var ErrID = errors.New("update: a bundle ID is the SHA-256 of the file in 64 lower-case hex digits")

// partExpiry is how long the bytes of a broken transfer are kept for a resume.
const partExpiry = 7 * 24 * time.Hour

// partPath and partIDPath hold the raw bytes of a transfer that broke and the
// ID of their bundle, beside the spool on /perm.
func (u *Updater) partPath() string   { return u.SpoolDir + ".part" }
func (u *Updater) partIDPath() string { return u.SpoolDir + ".part.id" }

func validID(id string) bool {
	if len(id) != 64 || strings.ToLower(id) != id {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

// Held is how many bytes of the bundle named id this node holds from transfers
// that broke off (0 for another bundle, an ID that is not valid, or none).
func (u *Updater) Held(id string) int64 {
	if u.SpoolDir == "" || !validID(id) {
		return 0
	}
	b, err := os.ReadFile(u.partIDPath())
	if err != nil || strings.TrimSpace(string(b)) != id {
		return 0
	}
	fi, err := os.Stat(u.partPath())
	if err != nil {
		return 0
	}
	return fi.Size()
}

// dropPart removes a broken transfer's bytes.
func (u *Updater) dropPart() {
	if u.SpoolDir == "" {
		return
	}
	os.Remove(u.partIDPath())
	os.Remove(u.partPath())
}

// expirePart removes a broken transfer's bytes once partExpiry has passed
// since they last grew.
func (u *Updater) expirePart(now time.Time) {
	if fi, err := os.Stat(u.partPath()); err == nil && now.Sub(fi.ModTime()) > partExpiry {
		u.dropPart()
	}
}

// openPart returns the stream Apply verifies for a resumable transfer: the held
// bytes, then r, whose bytes are appended to the held ones as they are read;
// and a finish function to call with Apply's error, which keeps the bytes
// (synced) when the transfer broke off and drops them otherwise; and how many
// bytes were held. Errors: ErrID, *OffsetError, or the part file cannot be made.
func (u *Updater) openPart(res Resume, r io.Reader) (io.Reader, func(error), int64, error) {
	if !validID(res.ID) {
		return nil, nil, 0, ErrID
	}
	u.expirePart(u.now()) // a node that does not reboot for weeks expires them here
	held := u.Held(res.ID)
	if res.Offset != held && res.Offset != 0 {
		return nil, nil, 0, &OffsetError{Have: held}
	}
	if res.Offset == 0 {
		// A new transfer: whatever was held (of this bundle or another)
		// goes. The ID is written first, so bytes are never kept under
		// another bundle's name.
		u.dropPart()
		if err := durable.WriteFile(u.partIDPath(), []byte(res.ID+"\n"), 0o600); err != nil {
			return nil, nil, 0, fmt.Errorf("update: %w", err)
		}
		held = 0
	}
	f, err := os.OpenFile(u.partPath(), os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("update: %w", err)
	}
	finish := func(err error) {
		if err != nil && broken(err) {
			f.Sync()
			f.Close()
			u.logf("the update stopped with %d bytes of the bundle here (%v); they are kept for a resume", u.Held(res.ID), err)
			return
		}
		f.Close()
		u.dropPart()
	}
	return io.MultiReader(io.NewSectionReader(f, 0, held), &teeWriter{r: r, w: f}), finish, held, nil
}

// teeWriter is io.TeeReader that fails the read when the write fails, so a
// full /perm ends the transfer instead of leaving a gap in the held bytes.
type teeWriter struct {
	r io.Reader
	w io.Writer
}

func (t *teeWriter) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		if _, werr := t.w.Write(p[:n]); werr != nil {
			return 0, fmt.Errorf("update: keeping the bundle's bytes for a resume: %w", werr)
		}
	}
	return n, err
}

// broken reports whether Apply's error is a transfer that ended too early (the
// link broke, the sender stopped, /perm filled up), which a resume can finish,
// rather than a bundle that failed a check, whose bytes are worth nothing.
//
// A bundle that does not fit on /perm beside its held bytes is not broken:
// Spool counts what the held bytes still grow by, so a resume would be refused
// the same way; its bytes are dropped and the room is free for the operator's
// next try.
func broken(err error) bool {
	if errors.Is(err, slot.ErrNoRoom) {
		return false
	}
	return errors.Is(err, bundle.ErrTruncated) || !bundle.Refused(err)
}

// counter counts the bytes read through it.
type counter struct {
	r io.Reader
	n int64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
