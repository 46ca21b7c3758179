// Package update is a device's side of A/B updates: it takes a signed bundle
// (package bundle), writes it into the slot that is not running (package slot),
// names that slot for one trial boot and has the board reboot with the firmware's
// tryboot flag; after the trial boot it runs the health check and commits, or
// lets the next normal boot return to the old slot. It keeps the last update's
// outcome in a small state file so that /status can say what happened, also after
// a trial that never got to say it (a crash, a hang the watchdog ended).
//
// The package decides nothing about transport or authority: whoever calls Apply
// has already been allowed to (the node's API gives it to the master key only).
package update

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skyfleet/skyfleet/internal/durable"
	"github.com/skyfleet/skyfleet/services/update/bundle"
	"github.com/skyfleet/skyfleet/services/update/slot"
)

// Outcomes of an update, as Status.Last.Result gives them.
const (
	// ResultTrial: the bundle is in the other slot and the board is (about to
	// be) booting it once.
	ResultTrial = "trial"
	// ResultCommitted: the trial passed its health check; its slot is the default.
	ResultCommitted = "committed"
	// ResultRolledBack: the trial failed its check, or never finished (a crash,
	// a hang), and the board runs the old slot.
	ResultRolledBack = "rolled back"
	// ResultRefused: the bundle was refused before its slot was switched to.
	ResultRefused = "refused"
)

// Updater applies bundles to one card. Fill in the fields; the zero value of
// the hooks means "not available" (Apply then refuses).
type Updater struct {
	// Card is the mounted boot partition.
	Card slot.Card
	// Running is the slot the system booted from (skyfleet.slot= on the kernel
	// command line).
	Running string
	// Policy returns what bundles to accept (release keys from fleet.toml, the
	// board, the running version); asked at each Apply, so a changed
	// fleet.toml counts.
	Policy func() bundle.Policy
	// StateFile keeps the last update's outcome (on /perm; written durably).
	StateFile string
	// SpoolDir is where a bundle is gathered while it streams in (on /perm:
	// journaled, and large enough for a slot); the boot partition is writable
	// only afterwards, for the seconds Install takes. Removed after each
	// update and at boot.
	SpoolDir string
	// Reboot restarts the board; tryboot selects the firmware's one-shot
	// tryboot. It returns only on failure.
	Reboot func(tryboot bool) error
	// Now is the clock for the state's times; nil means time.Now.
	Now func() time.Time
	// Remount makes the boot partition writable (true) for an update's
	// writes and read-only again (false) after them; nil when it is always
	// writable (a test's directory).
	Remount func(writable bool) error
	// Logf, if set, gets a line at each stage of an update (spooled,
	// writing the slot, named for the trial, committing), so that a serial
	// log shows where a power cut struck.
	Logf func(format string, args ...any)

	// busy makes Apply and AfterBoot one at a time; Status does not take it
	// (it reads files that are only ever replaced whole), so /status answers
	// while a bundle streams in.
	busy     sync.Mutex
	applying atomic.Bool
	// rebooting is set while RebootTrial's reboot runs: the status service's
	// request and PID 1's own fallback may both ask for it.
	rebooting atomic.Bool
}

// Outcome is one update's end (or its current stage).
type Outcome struct {
	Result  string    `json:"result"`            // ResultTrial, ResultCommitted, ...
	Version string    `json:"version,omitempty"` // the bundle's version
	Slot    string    `json:"slot,omitempty"`    // the slot it went to
	Reason  string    `json:"reason,omitempty"`  // why it was refused or rolled back
	At      time.Time `json:"at"`
}

// Status is the update part of /status.
type Status struct {
	// Running is the slot that runs; Default the one a normal boot uses;
	// Trial the one a tryboot uses ("" when none).
	Running string `json:"running_slot"`
	Default string `json:"default_slot"`
	Trial   string `json:"trial_slot,omitempty"`
	// OtherVersion is the version in the other slot's VERSION file ("" when
	// unreadable: an empty or half-written slot).
	OtherVersion string `json:"other_slot_version"`
	// Applying is true while a bundle is being received and written.
	Applying bool `json:"applying"`
	// Last is the last update's outcome; nil when there was none.
	Last *Outcome `json:"last_update,omitempty"`
}

// ErrBusy is returned by Apply while another update is being applied.
var ErrBusy = errors.New("update: another update is in progress")

// Apply verifies the bundle read from r against Policy, writes it into the other
// slot and names that slot for one trial boot; the caller then answers whoever
// sent the bundle and calls RebootTrial. A refused bundle (any bundle.Err*)
// leaves the slots and config.txt as they were and is recorded as
// ResultRefused with the reason. progress, if set, gets the bytes written so far
// and the total. It returns the bundle's manifest.
func (u *Updater) Apply(r io.Reader, progress func(done, total int64)) (*bundle.Manifest, error) {
	return u.ApplyResumable(Resume{}, r, progress)
}

// ApplyResumable is Apply for a transfer that may break off and be resumed
// (see Resume): with res.ID set, r carries the bundle from res.Offset on, and
// the bytes that arrive are kept on /perm until the bundle is installed or
// refused. A transfer that ends too early is not recorded as a refusal (a
// resume may finish it); its error wraps bundle.ErrTruncated or the read
// error. Further errors: ErrID, *OffsetError (nothing read).
func (u *Updater) ApplyResumable(res Resume, r io.Reader, progress func(done, total int64)) (m *bundle.Manifest, err error) {
	if !u.busy.TryLock() {
		return nil, ErrBusy
	}
	defer u.busy.Unlock()
	u.applying.Store(true)
	defer u.applying.Store(false)
	if u.Policy == nil || u.Reboot == nil || u.SpoolDir == "" {
		return nil, errors.New("update: this node cannot apply updates (no boot partition or no reboot)")
	}
	other, err := slot.Other(u.Running)
	if err != nil {
		return nil, fmt.Errorf("update: the running slot is unknown (%v): refusing to write either", err)
	}
	resumable := res.ID != ""
	var held int64
	if resumable {
		in, finish, h, perr := u.openPart(res, r)
		if perr != nil {
			return nil, perr
		}
		defer func() { finish(err) }() // the named result: how Apply ended
		r, held = in, h
	}
	pos := &counter{r: r}
	r = pos
	// refuse records a refusal, but not a transfer that broke off on the
	// way when a resume can finish it.
	refuse := func(o Outcome, err error) error {
		if !resumable || !broken(err) {
			o.Result, o.Reason = ResultRefused, err.Error()
			u.record(o)
		}
		return err
	}
	pol := u.Policy()
	// A delta bundle takes its unchanged files from the slot that runs.
	pol.Base = os.DirFS(filepath.Join(u.Card.Dir, u.Running))
	br, err := bundle.NewReader(r, pol)
	if err != nil {
		return nil, refuse(Outcome{}, err)
	}
	m = br.Manifest
	// The slow part (the network) fills the spool on /perm; the boot
	// partition stays read-only through it.
	// A resumable transfer also grows the held bytes on /perm to the whole
	// raw bundle: the head read so far and the files it carries.
	var reserve int64
	if resumable {
		reserve = max(0, pos.n+m.Carried()-max(held, pos.n))
	}
	if err := slot.Spool(u.SpoolDir, br, reserve, progress); err != nil {
		return nil, refuse(Outcome{Version: m.Version}, err)
	}
	defer os.RemoveAll(u.SpoolDir)
	u.logf("version %s verified and spooled (%d files, %d bytes); writing slot %s", m.Version, len(m.Files), m.Total(), other)
	// Writable only now that every file is verified and on /perm.
	done, err := u.writable()
	if err != nil {
		return nil, err
	}
	defer done()
	if err := u.Card.Install(other, bundle.DirReader(m, os.DirFS(u.SpoolDir)), nil); err != nil {
		u.record(Outcome{Result: ResultRefused, Version: m.Version, Slot: other, Reason: err.Error()})
		return nil, err
	}
	if err := u.Card.SetTrial(other); err != nil {
		u.record(Outcome{Result: ResultRefused, Version: m.Version, Slot: other, Reason: err.Error()})
		return nil, err
	}
	// Recorded before the reboot: if the trial never reports, the next boot
	// finds this and says the trial failed.
	if err := u.record(Outcome{Result: ResultTrial, Version: m.Version, Slot: other}); err != nil {
		return nil, err
	}
	u.logf("slot %s written and named for one trial boot", other)
	return m, nil
}

// RebootTrial reboots into the slot Apply wrote, once (the firmware's tryboot).
// It returns only on failure, or at once when a reboot it started still runs
// (a second caller must not start another).
func (u *Updater) RebootTrial() error {
	if !u.rebooting.CompareAndSwap(false, true) {
		return nil
	}
	err := u.Reboot(true)
	u.rebooting.Store(false) // it failed (or a test's Reboot returned): another may try
	return err
}

// AfterBoot runs once at boot, before services are judged healthy for good.
// When the running slot is the [tryboot] one and not the default, this is a
// trial: health decides (within ctx's deadline) whether the slot is committed,
// or the board reboots normally, back to the old slot. When the default slot
// runs but the state says a trial of the other was pending, that trial died
// before it could commit (a crash, a hang, a failed check) and the outcome is
// recorded as rolled back. It returns the status after its decision.
func (u *Updater) AfterBoot(ctx context.Context, health func(context.Context) error) (Status, error) {
	u.busy.Lock()
	defer u.busy.Unlock()
	if u.SpoolDir != "" {
		// A spool a power cut left behind is tens of MiB of /perm; the
		// bytes of a broken transfer stay a while for its resume.
		os.RemoveAll(u.SpoolDir)
		u.expirePart(u.now())
	}
	def, trial, err := u.Card.Active()
	if err != nil {
		return u.Status(), err
	}
	last := u.load()
	switch {
	case u.Running != def && u.Running == trial:
		v := ""
		if last != nil {
			v = last.Version
		}
		u.logf("trial boot of slot %s (version %s): checking its health", u.Running, v)
		if err := health(ctx); err != nil {
			reason := "health check failed: " + err.Error()
			u.record(Outcome{Result: ResultRolledBack, Version: v, Slot: u.Running, Reason: reason})
			u.logf("rolled back %s in slot %s: %s; rebooting into slot %s", v, u.Running, reason, def)
			// A normal boot runs the default slot: the old one.
			return u.Status(), errors.Join(errors.New("update: "+reason), u.Reboot(false))
		}
		u.logf("committing slot %s", u.Running)
		if err := u.commit(u.Running); err != nil {
			return u.Status(), err
		}
		u.record(Outcome{Result: ResultCommitted, Version: v, Slot: u.Running})
	case u.Running == def:
		if last != nil && last.Result == ResultTrial && last.Slot != def {
			u.record(Outcome{Result: ResultRolledBack, Version: last.Version, Slot: last.Slot,
				Reason: "the trial boot of slot " + last.Slot + " did not commit (it crashed, hung, or was cut off); running the old slot"})
		}
		if last != nil && last.Result == ResultTrial && last.Slot == def {
			// The commit made the trial's slot the default, and the power
			// went before its outcome was written (TestQEMUUpdatePowerCuts
			// found it: 7 of 10 commit cuts landed there). It is committed;
			// left as "trial", the master's rollout would wait for an
			// outcome that never comes.
			u.record(Outcome{Result: ResultCommitted, Version: last.Version, Slot: def})
		}
		// A normal boot of the default slot: no trial is pending any more
		// (it passed, failed, or never started), so drop a [tryboot] section
		// that names one; only Apply names a slot for a trial.
		if trial != "" {
			if err := u.commit(def); err != nil {
				return u.Status(), err
			}
		}
	}
	return u.Status(), nil
}

// Status reports the slots and the last update. It does not wait for an
// update in progress: it reads files that are only ever replaced whole.
func (u *Updater) Status() Status {
	st := Status{Running: u.Running, Applying: u.applying.Load(), Last: u.load()}
	st.Default, st.Trial, _ = u.Card.Active()
	if other, err := slot.Other(u.Running); err == nil {
		if b, err := os.ReadFile(filepath.Join(u.Card.Dir, other, "VERSION")); err == nil && len(b) <= 64 {
			st.OtherVersion = strings.TrimSpace(string(b))
		}
	}
	return st
}

// maxState bounds the state file read: a reason is one error line.
const maxState = 16 << 10

func (u *Updater) load() *Outcome {
	if u.StateFile == "" {
		return nil
	}
	f, err := os.Open(u.StateFile)
	if err != nil {
		return nil
	}
	defer f.Close()
	var o Outcome
	if err := json.NewDecoder(io.LimitReader(f, maxState)).Decode(&o); err != nil {
		return nil
	}
	return &o
}

func (u *Updater) now() time.Time {
	if u.Now != nil {
		return u.Now()
	}
	return time.Now()
}

func (u *Updater) record(o Outcome) error {
	o.At = u.now().UTC()
	if len(o.Reason) > 1024 {
		o.Reason = o.Reason[:1024]
	}
	if u.StateFile == "" {
		return nil
	}
	b, err := json.Marshal(o)
	if err != nil {
		return err
	}
	if err := durable.WriteFile(u.StateFile, b, 0o600); err != nil {
		return fmt.Errorf("update: recording the outcome: %w", err)
	}
	return nil
}

func (u *Updater) logf(format string, args ...any) {
	if u.Logf != nil {
		u.Logf(format, args...)
	}
}

// writable makes the boot partition writable and returns what makes it
// read-only again.
func (u *Updater) writable() (func(), error) {
	if u.Remount == nil {
		return func() {}, nil
	}
	if err := u.Remount(true); err != nil {
		return nil, fmt.Errorf("update: %w", err)
	}
	return func() { u.Remount(false) }, nil
}

// commit is Card.Commit with the boot partition writable for it.
func (u *Updater) commit(s string) error {
	done, err := u.writable()
	if err != nil {
		return err
	}
	defer done()
	return u.Card.Commit(s)
}
