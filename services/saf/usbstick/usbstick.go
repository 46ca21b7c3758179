// Package usbstick makes a USB stick a data mule without a computer: on the Pi,
// a stick with a top-level skyfleet-bundles/ folder is imported and exported when
// it is plugged in, so a node that travels between islands carries bundles both
// ways (the same files as `skyfleet saf export/import`, see saf.MarshalFile).
//
// A Watcher looks at the block devices every second (System.Devices). A device
// seen on two looks in a row is mounted once (vfat, then ext4) under a private
// directory; without the folder it is unmounted and left alone. With it, every
// *.sfb file in the folder goes to the engine (saf.Engine.Import: a bad file is
// counted, never fatal; bundles already held are duplicates), then every bundle
// held for other nodes is written into the folder (saf.Engine.Export, each file
// durably and never over an existing one), and the stick is synced and unmounted.
// A device is visited once per plugging: it is visited again only after it has
// gone from the device list.
//
// Reads are capped (MaxFiles files, saf.MaxFile bytes each, MaxBytes in all), and
// the folder is read through an os.Root: nothing on the stick, a symlink least of
// all, leads the node outside it.
package usbstick

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/skyfleet/skyfleet/internal/durable"
	"github.com/skyfleet/skyfleet/services/saf"
)

// Folder is the top-level folder of a stick that holds the bundle files.
const Folder = "skyfleet-bundles"

// Defaults of Config.
const (
	// DefaultMountDir is where sticks are mounted, one directory per device
	// (mode 0700, on the tmpfs /run).
	DefaultMountDir = "/run/skyfleet/usbstick"
	// DefaultPoll is the interval between looks at the device list.
	DefaultPoll = time.Second
	// DefaultMaxFiles caps the bundle files read from one stick: as many as a
	// store holds (saf.DefaultMaxBundles).
	DefaultMaxFiles = saf.DefaultMaxBundles
	// DefaultMaxBytes caps the bytes read from one stick: twice what a store
	// holds (saf.DefaultMaxBytes), room for the new bundles and as many again
	// that the node already has.
	DefaultMaxBytes = 2 * saf.DefaultMaxBytes
	// maxReasons is how many refused files one visit names in the log.
	maxReasons = 5
)

// Engine is what the watcher needs of the store-and-forward engine
// (*saf.Engine).
type Engine interface {
	// Import takes custody of the bundle in a data-mule file; errors wrapping
	// saf.ErrMalformed refuse the file, others (a failed commit) end the visit.
	Import(file []byte) (saf.ID, saf.Status, error)
	// Export calls fn with a data-mule file for each bundle held for other
	// nodes and returns how many it passed; fn's error stops it.
	Export(fn func(id saf.ID, file []byte) error) (int, error)
}

// Device is a block device that may hold a stick's filesystem: a partition, or a
// whole disk without a partition table.
type Device struct {
	// Name is the kernel's name, e.g. "sda1"; it names the stick in the log.
	Name string
	// Path is the device node, e.g. "/dev/sda1".
	Path string
	// Key tells one plugging from another under the same Name (the disk's
	// diskseq when the kernel has it); "" when unknown.
	Key string
}

// System is the machine under the watcher: device discovery and mounts.
// Linux returns the real one; tests use a fake.
type System interface {
	// Devices lists the candidate devices present now. Errors: the list
	// cannot be read (the watcher logs it and looks again later).
	Devices() ([]Device, error)
	// Mount mounts d on the existing directory dir, nosuid, nodev, noexec, and
	// returns the filesystem type. Errors: no filesystem the node knows.
	Mount(d Device, dir string) (fstype string, err error)
	// Unmount flushes the filesystem on dir to the device and unmounts it.
	Unmount(dir string) error
}

// Config configures New; zero values take the defaults.
type Config struct {
	// Engine receives and gives the bundles; required.
	Engine Engine
	// System is the machine (Linux(LinuxOptions{}) by default).
	System System
	// MountDir is where devices are mounted (DefaultMountDir).
	MountDir string
	// Poll is the interval between looks at the devices (DefaultPoll).
	Poll time.Duration
	// MaxFiles caps the *.sfb files read from one stick (DefaultMaxFiles).
	MaxFiles int
	// MaxBytes caps the bytes read from one stick (DefaultMaxBytes).
	MaxBytes int64
	// Logf receives one line per stick, and why a device was left alone.
	// Default: discard.
	Logf func(format string, args ...any)
}

// Summary is what one visit of a stick did.
type Summary struct {
	// Device is the kernel's name of the device, FS its filesystem type.
	Device string `json:"device"`
	FS     string `json:"fs"`
	// At is when the visit ended.
	At time.Time `json:"at"`
	// Imported bundles were new to the node; Duplicates it had already (or had
	// delivered); Refused files were not bundle files (malformed, too big, not
	// regular files, unreadable); Expired bundles had outlived their lifetime;
	// Full ones did not fit in the store.
	Imported   int `json:"imported"`
	Duplicates int `json:"duplicates"`
	Refused    int `json:"refused"`
	Expired    int `json:"expired"`
	Full       int `json:"full"`
	// Unread counts the bundle files left unread because of the caps.
	Unread int `json:"unread"`
	// Exported bundle files were written to the stick; Present were there
	// already under their name.
	Exported int `json:"exported"`
	Present  int `json:"present"`
	// Error, if set, is what cut the visit short (a failed write, a stick that
	// is full or read-only, a failed commit); the counts say how far it got.
	Error string `json:"error,omitempty"`
}

// Stats are the watcher's counters since it started (GET /saf/stats "usb_stick").
type Stats struct {
	// Sticks counts visits of sticks with the folder; Ignored devices left
	// alone (no filesystem the node mounts, or no folder).
	Sticks  uint64 `json:"sticks"`
	Ignored uint64 `json:"ignored"`
	// Imported, Refused and Exported sum the visits' counts.
	Imported uint64 `json:"imported"`
	Refused  uint64 `json:"refused"`
	Exported uint64 `json:"exported"`
	// Last is the latest visit of a stick with the folder.
	Last *Summary `json:"last,omitempty"`
}

// Watcher visits the sticks plugged in; see the package comment.
type Watcher struct {
	cfg Config

	// Run's goroutine only.
	pending map[string]bool // devices seen on the last look, not yet visited
	done    map[string]bool // devices visited (or left alone) and still present
	lastErr string          // the last Devices error logged

	mu    sync.Mutex
	stats Stats
}

// New returns a watcher; Run runs it.
func New(cfg Config) *Watcher {
	if cfg.System == nil {
		cfg.System = Linux(LinuxOptions{MountDir: cfg.MountDir})
	}
	if cfg.MountDir == "" {
		cfg.MountDir = DefaultMountDir
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.MaxFiles <= 0 {
		cfg.MaxFiles = DefaultMaxFiles
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	return &Watcher{cfg: cfg, pending: map[string]bool{}, done: map[string]bool{}}
}

// Run looks at the devices every Poll and visits each new stick until ctx ends;
// a visit under way is finished first, so the stick is left unmounted. It
// returns ctx's error.
func (w *Watcher) Run(ctx context.Context) error {
	t := time.NewTicker(w.cfg.Poll)
	defer t.Stop()
	for {
		w.poll()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Stats returns the counters and the last visit's summary.
func (w *Watcher) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := w.stats
	if st.Last != nil {
		l := *st.Last
		st.Last = &l
	}
	return st
}

// poll is one look: devices gone are forgotten, new ones become pending, and
// those pending since the last look (settled: the kernel has had a second to
// read the partition table) are visited.
func (w *Watcher) poll() {
	devs, err := w.cfg.System.Devices()
	if err != nil {
		if err.Error() != w.lastErr {
			w.cfg.Logf("usb sticks: %v", err)
			w.lastErr = err.Error()
		}
		return
	}
	w.lastErr = ""
	sort.Slice(devs, func(i, j int) bool { return devs[i].Name < devs[j].Name })
	present := make(map[string]bool, len(devs))
	for _, d := range devs {
		present[d.Name+"\x00"+d.Key] = true
	}
	for k := range w.done {
		if !present[k] {
			delete(w.done, k)
		}
	}
	pending := w.pending
	w.pending = map[string]bool{}
	for _, d := range devs {
		k := d.Name + "\x00" + d.Key
		switch {
		case w.done[k]:
		case !pending[k]:
			w.pending[k] = true
		default:
			w.done[k] = true
			w.visit(d)
		}
	}
}

// visit mounts d and, if it holds the folder, imports and exports, then
// unmounts it.
func (w *Watcher) visit(d Device) {
	sys := w.cfg.System
	dir := filepath.Join(w.cfg.MountDir, d.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		w.ignore("usb stick %s: mount point: %v", d.Name, err)
		return
	}
	defer os.Remove(dir)
	fstype, err := sys.Mount(d, dir)
	if err != nil {
		w.ignore("usb stick %s: left alone: %v", d.Name, err)
		return
	}
	folder := filepath.Join(dir, Folder)
	if fi, err := os.Lstat(folder); err != nil || !fi.IsDir() {
		if err := sys.Unmount(dir); err != nil {
			w.cfg.Logf("usb stick %s: unmount: %v", d.Name, err)
		}
		w.ignore("usb stick %s (%s): no %s/ folder at the top: left alone", d.Name, fstype, Folder)
		return
	}
	sum := Summary{Device: d.Name, FS: fstype}
	err = w.importAll(folder, &sum)
	if err == nil {
		err = w.exportAll(folder, &sum)
	}
	if uerr := sys.Unmount(dir); uerr != nil && err == nil {
		err = fmt.Errorf("unmount: %w", uerr)
	}
	if err != nil {
		sum.Error = err.Error()
	}
	sum.At = time.Now()
	w.cfg.Logf("%s", sum.line())
	w.mu.Lock()
	w.stats.Sticks++
	w.stats.Imported += uint64(sum.Imported)
	w.stats.Refused += uint64(sum.Refused)
	w.stats.Exported += uint64(sum.Exported)
	w.stats.Last = &sum
	w.mu.Unlock()
}

func (w *Watcher) ignore(format string, args ...any) {
	w.cfg.Logf(format, args...)
	w.mu.Lock()
	w.stats.Ignored++
	w.mu.Unlock()
}

// line is the visit's log line.
func (s *Summary) line() string {
	var b strings.Builder
	fmt.Fprintf(&b, "usb stick %s: imported %d (%d duplicates, %d refused), exported %d", s.Device, s.Imported, s.Duplicates, s.Refused, s.Exported)
	if s.Expired > 0 {
		fmt.Fprintf(&b, "; %d expired", s.Expired)
	}
	if s.Full > 0 {
		fmt.Fprintf(&b, "; %d not taken, the store is full", s.Full)
	}
	if s.Unread > 0 {
		fmt.Fprintf(&b, "; %d files left unread (over the caps)", s.Unread)
	}
	if s.Error != "" {
		fmt.Fprintf(&b, "; stopped: %s", s.Error)
	}
	return b.String()
}

// isBundleFile reports whether a directory entry's name is a bundle file's:
// *.sfb in any case, not hidden (macOS writes "._name" companions on FAT, and
// durable's temporary files start with a dot).
func isBundleFile(name string) bool {
	return !strings.HasPrefix(name, ".") && len(name) > len(saf.FileExt) &&
		strings.EqualFold(name[len(name)-len(saf.FileExt):], saf.FileExt)
}

// importAll gives the engine every bundle file in folder. Refused files are
// counted and the first few named in the log; the error returned (which stops
// the visit) is the folder's being unreadable or a failed commit.
func (w *Watcher) importAll(folder string, sum *Summary) error {
	root, err := os.OpenRoot(folder)
	if err != nil {
		return err
	}
	defer root.Close()
	dir, err := root.Open(".")
	if err != nil {
		return err
	}
	defer dir.Close()
	var files, listed int
	var bytes int64
	refuse := func(name string, why any) {
		sum.Refused++
		if sum.Refused <= maxReasons {
			w.cfg.Logf("usb stick %s: %s refused: %v", sum.Device, name, why)
		}
	}
	for {
		ents, err := dir.ReadDir(256)
		if listed += len(ents); listed > maxListed(w.cfg.MaxFiles) {
			return fmt.Errorf("%s/ holds over %d entries", Folder, maxListed(w.cfg.MaxFiles))
		}
		for _, e := range ents {
			name := e.Name()
			if !isBundleFile(name) {
				continue
			}
			if files >= w.cfg.MaxFiles || bytes >= w.cfg.MaxBytes {
				sum.Unread++
				continue
			}
			files++
			if !e.Type().IsRegular() {
				refuse(name, "not a regular file")
				continue
			}
			b, err := readCapped(root, name, w.cfg.MaxBytes-bytes)
			if errors.Is(err, errOverBudget) {
				files--
				sum.Unread++
				continue
			}
			if err != nil {
				refuse(name, err)
				continue
			}
			bytes += int64(len(b))
			_, st, err := w.cfg.Engine.Import(b)
			switch {
			case errors.Is(err, saf.ErrMalformed):
				refuse(name, err)
				continue
			case err != nil:
				return fmt.Errorf("import %s: %w", name, err)
			}
			switch st {
			case saf.StatusAccepted:
				sum.Imported++
			case saf.StatusDuplicate:
				sum.Duplicates++
			case saf.StatusExpired:
				sum.Expired++
			case saf.StatusFull:
				sum.Full++
			default:
				refuse(name, st)
			}
		}
		if err == io.EOF || (err == nil && len(ents) == 0) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading %s/: %w", Folder, err)
		}
	}
	if sum.Refused > maxReasons {
		w.cfg.Logf("usb stick %s: %d more files refused", sum.Device, sum.Refused-maxReasons)
	}
	return nil
}

// maxListed caps the directory entries of the folder looked at, bundle files
// or not: four for each bundle file read.
func maxListed(maxFiles int) int { return 4 * maxFiles }

var errOverBudget = errors.New("over the stick's byte budget")

// readCapped reads the regular file name in root: at most saf.MaxFile bytes,
// never through a symlink, and errOverBudget if it is bigger than budget.
func readCapped(root *os.Root, name string, budget int64) ([]byte, error) {
	f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, unwrapPath(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, unwrapPath(err)
	}
	switch {
	case !fi.Mode().IsRegular():
		return nil, errors.New("not a regular file")
	case fi.Size() > saf.MaxFile:
		return nil, fmt.Errorf("%d bytes, a bundle file is at most %d", fi.Size(), saf.MaxFile)
	case fi.Size() > budget:
		return nil, errOverBudget
	}
	b, err := io.ReadAll(io.LimitReader(f, saf.MaxFile+1))
	if err != nil {
		return nil, unwrapPath(err)
	}
	if len(b) > saf.MaxFile {
		return nil, fmt.Errorf("grew past %d bytes while read", saf.MaxFile)
	}
	return b, nil
}

// exportAll writes every bundle the engine holds for other nodes into folder as
// <ID>.sfb, skipping names already there, and removes the temporary files an
// interrupted earlier export left. Errors: a write failed (the stick is full,
// read-only or gone); what was written before stays.
func (w *Watcher) exportAll(folder string, sum *Summary) error {
	root, err := os.OpenRoot(folder)
	if err != nil {
		return err
	}
	defer root.Close()
	removeStaleTemps(root, maxListed(w.cfg.MaxFiles))
	_, err = w.cfg.Engine.Export(func(id saf.ID, file []byte) error {
		name := id.String() + saf.FileExt
		if _, err := root.Lstat(name); err == nil {
			sum.Present++
			return nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return unwrapPath(err)
		}
		// folder is our mount point plus a directory checked not to be a
		// symlink, so the path stays on the stick; CreateFile never replaces.
		err := durable.CreateFile(filepath.Join(folder, name), file, 0o644)
		switch {
		case errors.Is(err, fs.ErrExist):
			sum.Present++
		case err != nil:
			return fmt.Errorf("export: %w", err)
		default:
			sum.Exported++
		}
		return nil
	})
	return err
}

// removeStaleTemps removes durable's temporary files of bundle files
// (".<ID>.sfb.<random>.tmp") that a stick pulled during an export kept.
// It looks at most limit entries.
func removeStaleTemps(root *os.Root, limit int) {
	dir, err := root.Open(".")
	if err != nil {
		return
	}
	defer dir.Close()
	var stale []string
	for listed := 0; listed < limit; {
		ents, err := dir.ReadDir(256)
		listed += len(ents)
		for _, e := range ents {
			n := e.Name()
			if e.Type().IsRegular() && strings.HasPrefix(n, ".") && strings.HasSuffix(n, ".tmp") &&
				strings.Contains(strings.ToLower(n), saf.FileExt+".") {
				stale = append(stale, n)
			}
		}
		if err != nil || len(ents) == 0 {
			break
		}
	}
	for _, n := range stale {
		root.Remove(n)
	}
}

// unwrapPath drops the *fs.PathError wrapper, whose path repeats the file name
// the message already gives.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
