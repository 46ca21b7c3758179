package bundle

import (
	"encoding/binary"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"
)

// Manifest describes a bundle: what it is for and every file it carries.
type Manifest struct {
	// Board is the board profile it was built for ("rpi3b", ...).
	Board string
	// Version is the release's version (ParseVersion's form).
	Version string
	// Minimum is the lowest running version it may update; "" for any.
	Minimum string
	// Base is, for a delta bundle, the version it was built against (shown
	// in errors; the device checks the files themselves, not this); "" for a
	// full bundle, which carries every file.
	Base string
	// Created is when it was built, to the second (shown, not checked).
	Created time.Time
	// Key is the compressed public key of the release key that signed it.
	Key [KeyLen]byte
	// Files are the slot's files, sorted by name.
	Files []File
}

// File is one file of a bundle.
type File struct {
	// Name is the slot-relative path, e.g. "vmlinuz" or "overlays/foo.dtbo".
	Name string
	// Size is its length in bytes.
	Size int64
	// SHA256 is the digest of its content.
	SHA256 [32]byte
	// FromRunning marks a file a delta bundle does not carry: the device
	// takes the running slot's file of the same name, which must have this
	// Size and SHA256 (else ErrBase). A per-slot command line
	// (cmdline.<slot>.txt) is never one.
	FromRunning bool
}

// flagFromRunning is File.FromRunning in a file's flags byte; the other bits
// are zero.
const flagFromRunning = 1

// Delta reports whether the bundle takes some files from the running slot.
func (m *Manifest) Delta() bool {
	for _, f := range m.Files {
		if f.FromRunning {
			return true
		}
	}
	return false
}

// Carried is the sum of the sizes of the files the bundle carries (all but
// FromRunning ones), in bytes: what crosses the network.
func (m *Manifest) Carried() int64 {
	var n int64
	for _, f := range m.Files {
		if !f.FromRunning {
			n += f.Size
		}
	}
	return n
}

// Total is the sum of the files' sizes in bytes.
func (m *Manifest) Total() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

// Marshal returns the manifest's canonical encoding (see the package comment).
// Errors: a field outside its form or a limit (ErrFormat).
func (m *Manifest) Marshal() ([]byte, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	b := []byte{FormatVersion}
	for _, s := range []string{m.Board, m.Version, m.Minimum, m.Base} {
		b = append(b, byte(len(s)))
		b = append(b, s...)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(m.Created.Unix()))
	b = append(b, m.Key[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.Files)))
	for _, f := range m.Files {
		b = append(b, byte(len(f.Name)))
		b = append(b, f.Name...)
		b = binary.BigEndian.AppendUint64(b, uint64(f.Size))
		b = append(b, f.SHA256[:]...)
		var flags byte
		if f.FromRunning {
			flags |= flagFromRunning
		}
		b = append(b, flags)
	}
	if len(b) > MaxManifest {
		return nil, fmt.Errorf("%w: manifest of %d bytes exceeds %d", ErrFormat, len(b), MaxManifest)
	}
	return b, nil
}

// Unmarshal decodes a manifest from its canonical encoding, checking every field
// and limit; bytes that are not the one encoding of a manifest (a field out of
// form, names out of order, trailing bytes) are refused with ErrFormat.
func Unmarshal(b []byte) (*Manifest, error) {
	d := decoder{b: b}
	if v := d.byte(); d.err == nil && v != FormatVersion {
		return nil, fmt.Errorf("%w: manifest format %d, this reader knows %d", ErrFormat, v, FormatVersion)
	}
	m := &Manifest{Board: d.str(), Version: d.str(), Minimum: d.str(), Base: d.str()}
	created := d.u64()
	if created > 1<<40 {
		d.fail("creation time %d out of range", created)
	}
	m.Created = time.Unix(int64(created), 0).UTC()
	copy(m.Key[:], d.take(KeyLen))
	n := int(d.u16())
	if d.err == nil && (n == 0 || n > MaxFiles) {
		d.fail("%d files (1..%d)", n, MaxFiles)
	}
	for i := 0; i < n && d.err == nil; i++ {
		f := File{Name: d.str()}
		size := d.u64()
		if size > MaxFileSize {
			d.fail("%s: %d bytes (at most %d)", f.Name, size, MaxFileSize)
		}
		f.Size = int64(size)
		copy(f.SHA256[:], d.take(32))
		switch flags := d.byte(); flags {
		case 0:
		case flagFromRunning:
			f.FromRunning = true
		default:
			d.fail("%s: flags %#x", f.Name, flags)
		}
		m.Files = append(m.Files, f)
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d bytes after the last file", len(d.b))
	}
	if d.err != nil {
		return nil, d.err
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	return m, nil
}

// check validates every field against its form and the limits.
func (m *Manifest) check() error {
	if err := checkBoard(m.Board); err != nil {
		return err
	}
	if _, err := ParseVersion(m.Version); err != nil {
		return fmt.Errorf("%w: version: %v", ErrFormat, err)
	}
	if m.Minimum != "" {
		if _, err := ParseVersion(m.Minimum); err != nil {
			return fmt.Errorf("%w: minimum version: %v", ErrFormat, err)
		}
	}
	if m.Base != "" {
		if _, err := ParseVersion(m.Base); err != nil {
			return fmt.Errorf("%w: base version: %v", ErrFormat, err)
		}
	}
	if (m.Base != "") != m.Delta() {
		return fmt.Errorf("%w: a delta bundle names its base version, and only a delta bundle does", ErrFormat)
	}
	if m.Created.Unix() < 0 || m.Created.Unix() > 1<<40 {
		return fmt.Errorf("%w: creation time out of range", ErrFormat)
	}
	if len(m.Files) == 0 || len(m.Files) > MaxFiles {
		return fmt.Errorf("%w: %d files (1..%d)", ErrFormat, len(m.Files), MaxFiles)
	}
	var total int64
	// The boot partition is FAT: names differing only in case are one file
	// there, and a file cannot share its name with a folder.
	folded, dirs := map[string]bool{}, map[string]bool{}
	for i, f := range m.Files {
		if err := ValidName(f.Name); err != nil {
			return err
		}
		if i > 0 && f.Name <= m.Files[i-1].Name {
			return fmt.Errorf("%w: file %q after %q: names must be sorted and unique", ErrFormat, f.Name, m.Files[i-1].Name)
		}
		low := strings.ToLower(f.Name)
		if folded[low] {
			return fmt.Errorf("%w: file %q: another name differs only in case (one file on FAT)", ErrFormat, f.Name)
		}
		folded[low] = true
		for d := path.Dir(low); d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
		if f.Size < 0 || f.Size > MaxFileSize {
			return fmt.Errorf("%w: %s: %d bytes (at most %d)", ErrFormat, f.Name, f.Size, MaxFileSize)
		}
		if f.FromRunning && isCmdline(f.Name) {
			return fmt.Errorf("%w: %s cannot come from the running slot (it names its slot)", ErrFormat, f.Name)
		}
		total += f.Size
	}
	for _, f := range m.Files {
		if dirs[strings.ToLower(f.Name)] {
			return fmt.Errorf("%w: %q is both a file and a folder", ErrFormat, f.Name)
		}
	}
	if total > MaxTotal {
		return fmt.Errorf("%w: %d file bytes (at most %d)", ErrFormat, total, MaxTotal)
	}
	return nil
}

// isCmdline reports whether name is a per-slot kernel command line,
// cmdline.<slot>.txt.
func isCmdline(name string) bool {
	return strings.HasPrefix(name, "cmdline.") && strings.HasSuffix(name, ".txt") && name != "cmdline.txt"
}

func checkBoard(s string) error {
	if s == "" || len(s) > maxField {
		return fmt.Errorf("%w: board %q: 1..%d characters", ErrFormat, s, maxField)
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("%w: board %q: only a-z, 0-9 and -", ErrFormat, s)
		}
	}
	return nil
}

// ValidName checks a slot-relative file name: 1..MaxName bytes of A-Z a-z 0-9 . _ - /,
// slash-separated elements that are neither empty, "." nor "..". Such a name
// cannot leave the slot folder it is written into. Errors wrap ErrFormat.
func ValidName(name string) error {
	if name == "" || len(name) > MaxName {
		return fmt.Errorf("%w: file name %q: 1..%d bytes", ErrFormat, name, MaxName)
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == '/') {
			return fmt.Errorf("%w: file name %q: only A-Z a-z 0-9 . _ - /", ErrFormat, name)
		}
	}
	for _, e := range strings.Split(name, "/") {
		if e == "" || e == "." || e == ".." {
			return fmt.Errorf("%w: file name %q: empty, . or .. path element", ErrFormat, name)
		}
	}
	return nil
}

// ParseVersion parses a release version: dotted decimal numbers ("1", "0.4.2",
// "2026.12.4"), 1 to 4 of them, each at most 9 digits without leading zeros,
// with an optional leading "v". Other strings (a "dev" build) are not releases.
func ParseVersion(s string) ([]uint32, error) {
	t := strings.TrimPrefix(s, "v")
	if t == "" || len(s) > maxField {
		return nil, fmt.Errorf("version %q: want dotted numbers such as 1.4.2", s)
	}
	parts := strings.Split(t, ".")
	if len(parts) > 4 {
		return nil, fmt.Errorf("version %q: at most 4 numbers", s)
	}
	out := make([]uint32, len(parts))
	for i, p := range parts {
		if p == "" || len(p) > 9 || len(p) > 1 && p[0] == '0' {
			return nil, fmt.Errorf("version %q: want dotted numbers such as 1.4.2", s)
		}
		n, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("version %q: want dotted numbers such as 1.4.2", s)
		}
		out[i] = uint32(n)
	}
	return out, nil
}

// CompareVersions returns -1, 0 or +1 as version a is lower than, equal to or
// higher than b; missing numbers count as 0 ("1.2" == "1.2.0"). Errors: either is
// not a version (ParseVersion).
func CompareVersions(a, b string) (int, error) {
	va, err := ParseVersion(a)
	if err != nil {
		return 0, err
	}
	vb, err := ParseVersion(b)
	if err != nil {
		return 0, err
	}
	for i := 0; i < max(len(va), len(vb)); i++ {
		var x, y uint32
		if i < len(va) {
			x = va[i]
		}
		if i < len(vb) {
			y = vb[i]
		}
		switch {
		case x < y:
			return -1, nil
		case x > y:
			return 1, nil
		}
	}
	return 0, nil
}

// decoder reads the manifest's fields, remembering the first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: manifest: "+format, append([]any{ErrFormat}, args...)...)
	}
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return make([]byte, n)
	}
	if len(d.b) < n {
		d.fail("ends %d bytes short", n-len(d.b))
		return make([]byte, n)
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte  { return d.take(1)[0] }
func (d *decoder) u16() uint16 { return binary.BigEndian.Uint16(d.take(2)) }
func (d *decoder) u64() uint64 { return binary.BigEndian.Uint64(d.take(8)) }
func (d *decoder) str() string { return string(d.take(int(d.byte()))) }
