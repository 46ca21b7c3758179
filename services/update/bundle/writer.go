package bundle

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/skyfleet/skyfleet/services/identity"
)

// Source is a file to put in a bundle.
type Source struct {
	// Name is its slot-relative name (ValidName).
	Name string
	// Open returns its content; Write opens it twice (to hash, then to copy),
	// and both must give the same bytes.
	Open func() (io.ReadCloser, error)
}

// Header is what Write puts in the manifest besides the files and the key.
type Header struct {
	Board   string
	Version string
	Minimum string    // "" for any running version
	Created time.Time // zero: now
	// Base, when set, makes a delta bundle against that release's manifest
	// (ReadHead of its bundle): a file with the same name, size and digest
	// there is not carried but taken from the running slot, so the bundle
	// installs only on a device whose running slot holds those files.
	// Command lines are always carried.
	Base *Manifest
}

// Write builds a bundle of files, signed by key, to w, and returns its manifest
// (a delta when h.Base is set and some file is unchanged since it).
// It hashes every file first, so nothing is written when a file cannot be read or
// a field is out of form (ErrFormat); a file whose second reading differs is an
// error and leaves a bundle the reader refuses (ErrDigest).
func Write(w io.Writer, key *secp256k1.PrivateKey, h Header, files []Source) (*Manifest, error) {
	if key == nil {
		return nil, fmt.Errorf("bundle: no release key")
	}
	m := &Manifest{Board: h.Board, Version: h.Version, Minimum: h.Minimum, Created: h.Created.UTC().Truncate(time.Second)}
	base := map[string]File{}
	if h.Base != nil {
		if h.Base.Board != h.Board {
			return nil, fmt.Errorf("bundle: the delta's base was built for %s, not %s", h.Base.Board, h.Board)
		}
		for _, f := range h.Base.Files {
			base[f.Name] = f
		}
	}
	if h.Created.IsZero() {
		m.Created = time.Now().UTC().Truncate(time.Second)
	}
	copy(m.Key[:], key.PubKey().SerializeCompressed())
	srcs := append([]Source(nil), files...)
	sort.Slice(srcs, func(i, j int) bool { return srcs[i].Name < srcs[j].Name })
	for _, s := range srcs {
		if err := ValidName(s.Name); err != nil {
			return nil, err
		}
		f := File{Name: s.Name}
		if err := readSource(s, func(r io.Reader) error {
			d := sha256.New()
			n, err := io.Copy(d, r)
			f.Size = n
			d.Sum(f.SHA256[:0])
			return err
		}); err != nil {
			return nil, err
		}
		if b, ok := base[f.Name]; ok && b.Size == f.Size && b.SHA256 == f.SHA256 && !isCmdline(f.Name) {
			f.FromRunning = true
			m.Base = h.Base.Version
		}
		m.Files = append(m.Files, f)
	}
	raw, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	head := binary.BigEndian.AppendUint32([]byte(Magic), uint32(len(raw)))
	digest := sigHash(head, raw)
	sig, err := identity.SignCompact(key, digest[:])
	if err != nil {
		return nil, fmt.Errorf("bundle: signing: %w", err)
	}
	for _, b := range [][]byte{head, raw, sig} {
		if _, err := w.Write(b); err != nil {
			return nil, err
		}
	}
	for i, s := range srcs {
		if m.Files[i].FromRunning {
			continue
		}
		want := m.Files[i].Size
		if err := readSource(s, func(r io.Reader) error {
			n, err := io.Copy(w, r)
			if err == nil && n != want {
				err = fmt.Errorf("bundle: %s changed while the bundle was built (%d bytes, then %d)", s.Name, want, n)
			}
			return err
		}); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func readSource(s Source, use func(io.Reader) error) error {
	rc, err := s.Open()
	if err != nil {
		return fmt.Errorf("bundle: %s: %w", s.Name, err)
	}
	defer rc.Close()
	if err := use(rc); err != nil {
		return fmt.Errorf("bundle: %s: %w", s.Name, err)
	}
	return nil
}
