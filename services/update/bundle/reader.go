package bundle

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"

	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

// Policy is what a device accepts.
type Policy struct {
	// Keys are the accepted release keys (fleet.toml [release] keys), compressed.
	// With none, every bundle is refused (ErrKey).
	Keys [][KeyLen]byte
	// Board is the device's board profile; a bundle for another is refused.
	Board string
	// Running is the version that runs now, "" when unknown (skips the
	// version checks). A bundle whose Minimum is above it is refused, as is one
	// older than it unless AllowDowngrade; a running version that is not a
	// release ("dev") meets no minimum and allows any version.
	Running string
	// AllowDowngrade accepts a bundle older than Running (a deliberate
	// rollback to an earlier release). Without it an old signed bundle cannot
	// be replayed to bring back what a later release fixed.
	AllowDowngrade bool
	// Base holds the running slot's files, by their names in a bundle: a
	// delta bundle's FromRunning files are read from it and checked like
	// carried ones. nil refuses delta bundles (ErrBase).
	Base fs.FS
}

// Reader reads a bundle from a stream: NewReader has verified its manifest and
// signature before it returns; Next then gives each file in turn, hashed as it
// is read. It reads the stream once, front to back, and holds one file's
// digest state at a time.
type Reader struct {
	// Manifest is the verified manifest.
	Manifest *Manifest
	r        io.Reader // the stream; nil for a DirReader
	base     fs.FS     // where FromRunning files are (every file, for a DirReader)
	next     int
	cur      *fileReader
	err      error
}

// NewReader reads a bundle's head from r (magic, manifest, signature) and checks
// it against p, in this order, reading nothing more: format (ErrFormat, or
// ErrTruncated when r ends early), signature under the key the manifest names
// (ErrSignature), that key among p.Keys (ErrKey), board (ErrBoard), versions
// (ErrVersion). Only a bundle that passes them all yields a Reader.
func NewReader(r io.Reader, p Policy) (*Reader, error) {
	m, err := ReadHead(r)
	if err != nil {
		return nil, err
	}
	if err := p.accept(m); err != nil {
		return nil, err
	}
	if m.Delta() {
		if err := checkBase(m, p.Base); err != nil {
			return nil, err
		}
	}
	return &Reader{Manifest: m, r: r, base: p.Base}, nil
}

// ReadHead reads a bundle's head from r (magic, manifest, signature) and returns
// the manifest once the signature verified under the key the manifest names.
// It applies no policy: NewReader does, for a device; the host tools use this
// alone to read a bundle they made (the base of a delta). Errors: ErrFormat,
// ErrTruncated, ErrSignature.
func ReadHead(r io.Reader) (*Manifest, error) {
	var head [len(Magic) + 4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return nil, short(err, "header")
	}
	if string(head[:len(Magic)]) != Magic {
		return nil, fmt.Errorf("%w: not an update bundle (no %q magic)", ErrFormat, Magic)
	}
	n := binary.BigEndian.Uint32(head[len(Magic):])
	if n == 0 || n > MaxManifest {
		return nil, fmt.Errorf("%w: manifest length %d (1..%d)", ErrFormat, n, MaxManifest)
	}
	body := make([]byte, int(n)+SignatureLen)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, short(err, "manifest and signature")
	}
	raw, sig := body[:n], body[n:]
	m, err := Unmarshal(raw)
	if err != nil {
		return nil, err
	}
	// The signature first: nothing a stranger wrote is believed before it.
	digest := sigHash(head[:], raw)
	pub, _, err := ecdsa.RecoverCompact(sig, digest[:])
	if err != nil || !bytes.Equal(pub.SerializeCompressed(), m.Key[:]) {
		return nil, fmt.Errorf("%w (the manifest names key %s)", ErrSignature, hex.EncodeToString(m.Key[:]))
	}
	return m, nil
}

// checkBase checks that base holds every file a delta bundle takes from the
// running slot, at its size (the digests are checked as the files are read).
func checkBase(m *Manifest, base fs.FS) error {
	if base == nil {
		return fmt.Errorf("%w: it is a delta against %s and this device gave no running slot to take files from", ErrBase, m.Base)
	}
	for _, f := range m.Files {
		if !f.FromRunning {
			continue
		}
		fi, err := fs.Stat(base, f.Name)
		if err != nil || !fi.Mode().IsRegular() || fi.Size() != f.Size {
			return fmt.Errorf("%w: the running slot's %s is missing or not the one of %s this delta was built against; send the full bundle", ErrBase, f.Name, m.Base)
		}
	}
	return nil
}

// DirReader reads the files of m, a manifest that verified (NewReader's), from
// fsys by their names, checking each digest as Next does for a stream: the
// device spools a bundle to /perm and installs it from there, and a file that
// changed on the way is caught (ErrDigest).
func DirReader(m *Manifest, fsys fs.FS) *Reader {
	return &Reader{Manifest: m, base: fsys}
}

// accept applies the policy to a manifest whose signature verified.
func (p Policy) accept(m *Manifest) error {
	if len(p.Keys) == 0 {
		return fmt.Errorf("%w: no release key is configured (fleet.toml [release] keys), so every update is refused", ErrKey)
	}
	listed := false
	for _, k := range p.Keys {
		listed = listed || k == m.Key
	}
	if !listed {
		return fmt.Errorf("%w: signed by %s, which is not among the %d release keys configured", ErrKey, hex.EncodeToString(m.Key[:]), len(p.Keys))
	}
	if m.Board != p.Board {
		return fmt.Errorf("%w: built for %s, this is %s", ErrBoard, m.Board, p.Board)
	}
	if p.Running == "" {
		return nil
	}
	if _, err := ParseVersion(p.Running); err != nil {
		if m.Minimum != "" {
			return fmt.Errorf("%w: it updates %s or later, and the running %q is not a release", ErrVersion, m.Minimum, p.Running)
		}
		return nil
	}
	if m.Minimum != "" {
		if c, _ := CompareVersions(p.Running, m.Minimum); c < 0 {
			return fmt.Errorf("%w: it updates %s or later, this runs %s", ErrVersion, m.Minimum, p.Running)
		}
	}
	if c, _ := CompareVersions(m.Version, p.Running); c < 0 && !p.AllowDowngrade {
		return fmt.Errorf("%w: %s is older than the running %s (a downgrade; allow it explicitly)", ErrVersion, m.Version, p.Running)
	}
	return nil
}

// sigHash is what the signature covers: SHA-256(SigDomain ‖ magic ‖ length ‖ manifest).
func sigHash(head, manifest []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(SigDomain))
	h.Write(head)
	h.Write(manifest)
	var d [32]byte
	h.Sum(d[:0])
	return d
}

// short turns a read error of the head into ErrTruncated when the stream ended.
func short(err error, what string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: the stream ends inside the %s", ErrTruncated, what)
	}
	return fmt.Errorf("bundle: reading the %s: %w", what, err)
}

// Next returns the next file and a reader of its content, or io.EOF after the
// last (once it has checked that nothing follows it, ErrFormat otherwise). The
// content reader returns io.EOF only after the file's last byte matched its
// digest; else its last Read fails with ErrDigest, or ErrTruncated if the stream
// ends early. Next drains and checks what is left of the previous file, so a
// caller that skips one still gets its error.
func (r *Reader) Next() (File, io.Reader, error) {
	if r.err != nil {
		return File{}, nil, r.err
	}
	if r.cur != nil {
		_, err := io.Copy(io.Discard, r.cur)
		r.cur.close()
		r.cur = nil
		if err != nil {
			r.err = err
			return File{}, nil, err
		}
	}
	if r.next == len(r.Manifest.Files) {
		// A stream must end here; a DirReader has none.
		if r.r != nil {
			var b [1]byte
			if n, _ := io.ReadFull(r.r, b[:]); n != 0 {
				r.err = fmt.Errorf("%w: data after the last file", ErrFormat)
				return File{}, nil, r.err
			}
		}
		r.err = io.EOF
		return File{}, nil, io.EOF
	}
	f := r.Manifest.Files[r.next]
	r.next++
	if r.r != nil && !f.FromRunning {
		r.cur = &fileReader{f: f, r: io.LimitReader(r.r, f.Size), left: f.Size, h: sha256.New()}
		return f, r.cur, nil
	}
	// From the running slot (a delta) or the spool (a DirReader).
	file, err := r.base.Open(f.Name)
	if err != nil {
		r.err = r.mismatch(f, err)
		return File{}, nil, r.err
	}
	r.cur = &fileReader{f: f, r: io.LimitReader(file, f.Size), left: f.Size, h: sha256.New(), file: file}
	if r.r != nil {
		r.cur.mismatch = r.mismatch(f, nil)
	}
	return f, r.cur, nil
}

// mismatch is the error for a FromRunning file of the running slot that cannot
// be read or differs; for a DirReader, the error of a spooled file.
func (r *Reader) mismatch(f File, err error) error {
	if r.r == nil {
		return fmt.Errorf("bundle: the spooled %s: %w", f.Name, err)
	}
	return fmt.Errorf("%w: the running slot's %s differs from the one of %s this delta was built against; send the full bundle", ErrBase, f.Name, r.Manifest.Base)
}

// fileReader reads one file's bytes, hashing them.
type fileReader struct {
	f    File
	r    io.Reader
	left int64
	h    hash.Hash
	err  error
	// file is the open file a FromRunning or spooled file is read from
	// (closed at the end), nil for the stream.
	file io.Closer
	// mismatch replaces ErrDigest and ErrTruncated for a running slot's file.
	mismatch error
}

func (fr *fileReader) close() {
	if fr.file != nil {
		fr.file.Close()
		fr.file = nil
	}
}

func (fr *fileReader) Read(p []byte) (int, error) {
	if fr.err != nil {
		return 0, fr.err
	}
	if fr.left == 0 {
		fr.err = fr.finish()
		return 0, fr.err
	}
	n, err := fr.r.Read(p)
	fr.h.Write(p[:n])
	fr.left -= int64(n)
	if fr.left == 0 {
		fr.err = fr.finish()
		return n, fr.errOrNil()
	}
	if errors.Is(err, io.EOF) {
		fr.err = fmt.Errorf("%w: the stream ends %d bytes into %s (%d bytes)", ErrTruncated, fr.f.Size-fr.left, fr.f.Name, fr.f.Size)
		if fr.mismatch != nil {
			fr.err = fr.mismatch
		}
		fr.close()
		return n, fr.err
	}
	return n, err
}

// errOrNil returns the error of a finished file, nil when it ended cleanly (the
// next Read returns io.EOF).
func (fr *fileReader) errOrNil() error {
	if fr.err == io.EOF {
		return nil
	}
	return fr.err
}

// finish checks the digest once the last byte was read.
func (fr *fileReader) finish() error {
	fr.close()
	var d [32]byte
	fr.h.Sum(d[:0])
	if d != fr.f.SHA256 {
		if fr.mismatch != nil {
			return fr.mismatch
		}
		return fmt.Errorf("%w: %s", ErrDigest, fr.f.Name)
	}
	return io.EOF
}
