// Package slot writes a verified update bundle into the inactive A/B slot of a
// Skyfleet card and switches slots the way the Raspberry Pi firmware's tryboot
// expects (Raspberry Pi documentation, "Fail-safe OS updates"): config.txt's
// os_prefix names the slot every normal boot uses, its [tryboot] section the slot
// one boot after `reboot "0 tryboot"` uses. An update writes the other slot, names
// it in [tryboot], and reboots with the flag; the trial system commits by making
// its slot the default. Anything that stops it before the commit (a crash, a hang
// the watchdog ends, a failed health check) leaves config.txt naming the old slot,
// which the next boot, a normal one, runs.
//
// The package works on a mounted boot partition (a directory) and knows nothing of
// how the bundle arrived or when to reboot: the updater service decides that.
package slot

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/skyfleet/skyfleet/board"
	"github.com/skyfleet/skyfleet/internal/durable"
	"github.com/skyfleet/skyfleet/services/update/bundle"
)

// Card is a mounted boot partition: config.txt and the slot folders a/ and b/.
type Card struct {
	// Dir is where the boot partition is mounted.
	Dir string
}

// staging and retired name the folders Install writes into and moves the old
// slot to; both are removed when it finishes, and found and removed by the next
// Install if a power cut left them.
const (
	stagingSuffix = ".new"
	retiredSuffix = ".old"
)

// Other returns the slot that is not running: "b" for "a" and "a" for "b".
// Errors: running is not a slot (board.Slots).
func Other(running string) (string, error) {
	switch running {
	case "a":
		return "b", nil
	case "b":
		return "a", nil
	}
	return "", fmt.Errorf("slot: %q is not a slot (a or b)", running)
}

// Install writes the files of r, a bundle whose head verified, into slot target:
// first into a staging folder (target.new); only when every file has arrived and
// matched its digest is the file system synced once (syncfs: one flush for the
// hundreds of files of a slot, where a flush per file took minutes on an
// emulated SD card), the old slot folder replaced by the staging one, and the
// file system synced again. A bundle
// that fails on the way (a modified file, a broken stream) leaves the slot as it
// was and returns the reader's error. cmdline.<target>.txt is written as
// cmdline.txt; the other slot's command line is skipped. progress, if set, gets
// the file bytes written so far and the total.
func (c Card) Install(target string, r *bundle.Reader, progress func(done, total int64)) error {
	if _, err := Other(target); err != nil {
		return err
	}
	// The command line names the slot; a slot booted without its own would not
	// know which it is, and could neither commit nor be rolled back properly.
	hasCmdline := false
	for _, f := range r.Manifest.Files {
		hasCmdline = hasCmdline || f.Name == "cmdline."+target+".txt"
	}
	if !hasCmdline {
		return fmt.Errorf("%w: it has no cmdline.%s.txt, the kernel command line for slot %s", bundle.ErrFormat, target, target)
	}
	stage := filepath.Join(c.Dir, target+stagingSuffix)
	old := filepath.Join(c.Dir, target+retiredSuffix)
	for _, d := range []string{stage, old} {
		if err := os.RemoveAll(d); err != nil {
			return fmt.Errorf("slot: clearing %s: %w", d, err)
		}
	}
	if err := os.Mkdir(stage, 0o755); err != nil {
		return fmt.Errorf("slot: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(stage)
		}
	}()
	if err := writeAll(r, stage, 0o755, func(name string) (string, bool) { return installName(name, target) }, progress); err != nil {
		return err
	}
	if err := syncFS(c.Dir); err != nil {
		return err
	}
	// Every file is in, verified and on the card: swap the folders. A power cut in between
	// leaves the slot missing or as it was, never half written, and neither is
	// named in config.txt yet.
	dst := filepath.Join(c.Dir, target)
	if err := os.Rename(dst, old); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("slot: %w", err)
	}
	if err := os.Rename(stage, dst); err != nil {
		return fmt.Errorf("slot: %w", err)
	}
	if err := syncFS(c.Dir); err != nil {
		return err
	}
	ok = true
	if err := os.RemoveAll(old); err != nil {
		return fmt.Errorf("slot: removing the old slot folder: %w", err)
	}
	return syncFS(c.Dir)
}

// SpoolMargin is the room Spool leaves free on the spool's file system besides
// the bundle's files, in bytes: /perm also holds the node's state.
const SpoolMargin = 8 << 20

// ErrNoRoom is Spool's refusal of a bundle that does not fit on the spool's file
// system with what else must go there.
var ErrNoRoom = errors.New("slot: not enough room")

// Spool writes the files of r, a bundle whose head verified, into dir (created
// afresh, mode 0700) and syncs its file system once: the device gathers a bundle
// on /perm (ext4, journaled) while it streams in, which can take minutes, and only
// then makes the boot partition writable for Install, which reads the spool back
// (bundle.DirReader). A delta bundle's files from the running slot are copied in
// too, so the spool is the whole slot. reserve is how many more bytes the caller
// writes to the same file system while the spool fills (the raw bundle, kept for
// a resume), in bytes. Errors: ErrNoRoom (checked against the manifest and
// reserve before anything is written), or the reader's error for a file that
// fails its digest or a stream that breaks; dir is then removed. progress, if
// set, gets the file bytes so far and the total.
func Spool(dir string, r *bundle.Reader, reserve int64, progress func(done, total int64)) (err error) {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("slot: clearing the spool %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("slot: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	total := r.Manifest.Total()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err == nil {
		if free := int64(st.Bavail) * int64(st.Bsize); free < total+reserve+SpoolMargin {
			also := ""
			if reserve > 0 {
				also = fmt.Sprintf(" and %d MiB more of the bundle kept for a resume", reserve>>20)
			}
			return fmt.Errorf("%w: %s has %d MiB free; this bundle's %d MiB%s need %d MiB there", ErrNoRoom, dir, free>>20, total>>20, also, (total+reserve+SpoolMargin)>>20)
		}
	}
	if err := writeAll(r, dir, 0o700, func(name string) (string, bool) { return name, false }, progress); err != nil {
		return err
	}
	return syncFS(dir)
}

// writeAll writes every file of r under dir, by the name rename gives it (or
// reads it through unwritten when rename says skip, so its digest is still
// checked), creating folders with mode dirMode. progress, if set, gets the
// file bytes so far and the manifest's total. Install and Spool sync after it.
func writeAll(r *bundle.Reader, dir string, dirMode os.FileMode, rename func(string) (string, bool), progress func(done, total int64)) error {
	total, done := r.Manifest.Total(), int64(0)
	for {
		f, fr, err := r.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name, skip := rename(f.Name)
		var n int64
		if skip {
			n, err = io.Copy(io.Discard, fr)
		} else {
			dst := filepath.Join(dir, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(dst), dirMode); err != nil {
				return fmt.Errorf("slot: %w", err)
			}
			n, err = writeFile(dst, fr)
		}
		done += n
		if err != nil {
			return err
		}
		if progress != nil {
			progress(done, total)
		}
	}
}

// syncFS flushes the whole file system holding dir (syncfs(2)).
func syncFS(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("slot: syncing %s: %w", dir, err)
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return fmt.Errorf("slot: syncing %s: %w", dir, err)
	}
	return nil
}

// installName maps a bundle file to its name in slot target, or reports that it
// belongs to the other slot (cmdline.<other>.txt).
func installName(name, target string) (string, bool) {
	for _, s := range board.Slots {
		if name == "cmdline."+s+".txt" {
			return "cmdline.txt", s != target
		}
	}
	return name, false
}

// writeFile writes r to a new file at path (Install syncs the file system once
// for all of them). The file is complete only when r ended cleanly (for a bundle
// file: its digest matched).
func writeFile(path string, r io.Reader) (int64, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return 0, fmt.Errorf("slot: %w", err)
	}
	n, err := io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return n, err
}

// Active reads config.txt and returns the slot a normal boot uses and the one a
// tryboot uses ("" when config.txt has no [tryboot] slot other than the normal one).
func (c Card) Active() (normal, trial string, err error) {
	data, err := os.ReadFile(filepath.Join(c.Dir, "config.txt"))
	if err != nil {
		return "", "", fmt.Errorf("slot: %w", err)
	}
	n, err := board.ParseConfigTXT(data, "", false)
	if err != nil {
		return "", "", fmt.Errorf("slot: %w", err)
	}
	t, err := board.ParseConfigTXT(data, "", true)
	if err != nil {
		return "", "", fmt.Errorf("slot: %w", err)
	}
	normal, trial = strings.TrimSuffix(n.OSPrefix, "/"), strings.TrimSuffix(t.OSPrefix, "/")
	if trial == normal {
		trial = ""
	}
	return normal, trial, nil
}

// SetTrial names slot target in config.txt's [tryboot] section, so the next boot
// after `reboot "0 tryboot"` runs it once; normal boots keep their slot. The one
// byte that changes is written in place (overwrite), so a power cut leaves the old
// or the new config.txt and no FAT metadata is touched; a file of another layout
// is replaced whole, once (durable.WriteFile).
func (c Card) SetTrial(target string) error {
	if _, err := Other(target); err != nil {
		return err
	}
	return c.rewrite(func(normal string) (string, string) { return normal, target })
}

// Commit makes slot target the one every boot uses, and its [tryboot] section
// name the same slot, in place as SetTrial.
func (c Card) Commit(target string) error {
	if _, err := Other(target); err != nil {
		return err
	}
	return c.rewrite(func(string) (string, string) { return target, "" })
}

// rewrite replaces config.txt with its lines outside a [tryboot] section, the
// os_prefix of the unconditional part set to what slots returns for it, and a
// [tryboot] section at the end naming the trial slot, or the normal one when
// there is none. Lines it does not own (the board's settings, the operator's)
// stay as they were.
func (c Card) rewrite(slots func(cur string) (normal, trial string)) error {
	path := filepath.Join(c.Dir, "config.txt")
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("slot: %w", err)
	}
	cur, _, err := c.Active()
	if err != nil {
		return err
	}
	normal, trial := slots(cur)
	var out bytes.Buffer
	section, prefixSet := "all", false
	for _, line := range strings.SplitAfter(string(data), "\n") {
		if line == "" {
			continue
		}
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "[") && strings.HasSuffix(t, "]") {
			section = t[1 : len(t)-1]
			if section == "tryboot" {
				continue
			}
		}
		if section == "tryboot" {
			continue
		}
		if key, _, ok := strings.Cut(t, "="); ok && strings.TrimSpace(key) == "os_prefix" && section == "all" {
			if prefixSet {
				continue
			}
			line, prefixSet = "os_prefix="+normal+"/\n", true
		}
		out.WriteString(line)
	}
	if !prefixSet {
		return fmt.Errorf("slot: %s has no os_prefix in its [all] part: not a Skyfleet card's, left as it is", path)
	}
	// The blank line before a [tryboot] section went with it; trim, so that
	// trials and commits do not pile up blank lines.
	text := append(bytes.TrimRight(out.Bytes(), "\n"), '\n')
	// The [tryboot] section stays when no trial is set, naming the normal
	// slot: the file keeps its length, and a switch changes one byte.
	if trial == "" {
		trial = normal
	}
	text = fmt.Appendf(text, "\n[tryboot]\nos_prefix=%s/\n", trial)
	if len(text) == len(data) {
		return overwrite(path, data, text)
	}
	// Another layout (a card from before the [tryboot] section stayed, an
	// operator's edit): replaced whole, once.
	if err := durable.WriteFile(path, text, 0o644); err != nil {
		return fmt.Errorf("slot: %w", err)
	}
	return nil
}

// overwrite writes text over old, the file at path, in place: only the bytes
// that differ (one, for a switch of slots), then fsync. On FAT a rename is not
// atomic: a power cut 0.12 s into a commit once left config.txt's directory
// entry naming clusters the FAT had already freed, a file the Pi's firmware
// cannot read (TestQEMUUpdatePowerCuts). Writing within the file's length
// allocates nothing and changes no cluster chain; the bytes that change lie in
// one 512-byte sector, which the card writes whole.
func overwrite(path string, old, text []byte) error {
	from, to := 0, len(text)
	for from < to && old[from] == text[from] {
		from++
	}
	for to > from && old[to-1] == text[to-1] {
		to--
	}
	if from == to {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("slot: %w", err)
	}
	_, err = f.WriteAt(text[from:to], int64(from))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("slot: rewriting %s in place: %w", path, err)
	}
	return nil
}
