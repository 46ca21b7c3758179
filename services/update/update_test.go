package update

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/skyfleet/skyfleet/board"
	"github.com/skyfleet/skyfleet/services/update/bundle"
	"github.com/skyfleet/skyfleet/services/update/slot"
)

var releaseKey = secp256k1.PrivKeyFromBytes(bytes.Repeat([]byte{9}, 32)) // a test vector, not a secret

// device is a card and the firmware's choice of slot, as the Pi makes it:
// config.txt's os_prefix, or its [tryboot] one after a tryboot request.
type device struct {
	t       *testing.T
	p       board.Profile
	card    slot.Card
	state   string
	reboots []bool // what each Reboot asked for (true: tryboot)
}

func newDevice(t *testing.T) *device {
	p, _ := board.Get("rpi3b")
	dir := t.TempDir()
	for name, c := range map[string]string{"config.txt": p.ConfigTXT("a", ""), "a/VERSION": "1.0\n", "b/VERSION": "empty\n"} {
		path := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(path), 0o755)
		os.WriteFile(path, []byte(c), 0o644)
	}
	return &device{t: t, p: p, card: slot.Card{Dir: dir}, state: filepath.Join(t.TempDir(), "update.json")}
}

// boot is the firmware: the slot it starts, given whether tryboot was asked for.
func (d *device) boot(tryboot bool) string {
	b, _ := os.ReadFile(filepath.Join(d.card.Dir, "config.txt"))
	cfg, err := board.ParseConfigTXT(b, "pi3", tryboot)
	if err != nil {
		d.t.Fatal(err)
	}
	return strings.TrimSuffix(cfg.OSPrefix, "/")
}

func (d *device) updater(running, version string) *Updater {
	var k [bundle.KeyLen]byte
	copy(k[:], releaseKey.PubKey().SerializeCompressed())
	return &Updater{Card: d.card, Running: running, StateFile: d.state, SpoolDir: filepath.Join(filepath.Dir(d.state), "spool"),
		Policy: func() bundle.Policy {
			return bundle.Policy{Keys: [][bundle.KeyLen]byte{k}, Board: "rpi3b", Running: version}
		},
		Reboot: func(tryboot bool) error { d.reboots = append(d.reboots, tryboot); return nil },
	}
}

func (d *device) bundle(version string, key *secp256k1.PrivateKey) []byte {
	return d.bundleAgainst(version, key, nil)
}

// bundleAgainst builds a release whose kernel is the same in every version and
// whose initramfs is not; a delta when base (an earlier bundle) is given.
func (d *device) bundleAgainst(version string, key *secp256k1.PrivateKey, base []byte) []byte {
	files := map[string]string{"vmlinuz": strings.Repeat("kernel ", 1000), "initrd": "initramfs " + version, "VERSION": version + "\n",
		"cmdline.a.txt": d.p.CmdlineTXT("a"), "cmdline.b.txt": d.p.CmdlineTXT("b")}
	h := bundle.Header{Board: "rpi3b", Version: version, Created: time.Unix(1, 0)}
	if base != nil {
		m, err := bundle.ReadHead(bytes.NewReader(base))
		if err != nil {
			d.t.Fatal(err)
		}
		h.Base = m
	}
	var srcs []bundle.Source
	for n, c := range files {
		srcs = append(srcs, bundle.Source{Name: n, Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(c)), nil }})
	}
	var buf bytes.Buffer
	if _, err := bundle.Write(&buf, key, h, srcs); err != nil {
		d.t.Fatal(err)
	}
	return buf.Bytes()
}

var healthy = func(context.Context) error { return nil }

// Acceptance 1's path on a card: the update goes to the other slot, the trial
// boot commits it, every later boot stays on it, the old slot keeps the old version.
func TestUpdateCommits(t *testing.T) {
	d := newDevice(t)
	u := d.updater(d.boot(false), "1.0")
	m, err := u.Apply(bytes.NewReader(d.bundle("1.1", releaseKey)), nil)
	if err != nil || m.Version != "1.1" {
		t.Fatal(m, err)
	}
	if len(d.reboots) != 0 {
		t.Fatal("Apply rebooted before its caller answered")
	}
	if err := u.RebootTrial(); err != nil {
		t.Fatal(err)
	}
	if len(d.reboots) != 1 || !d.reboots[0] {
		t.Fatalf("reboots %v, want one tryboot", d.reboots)
	}
	if d.boot(false) != "a" || d.boot(true) != "b" {
		t.Fatalf("after Apply: normal boot %s, tryboot %s; want a and b", d.boot(false), d.boot(true))
	}
	st, err := d.updater(d.boot(true), "1.1").AfterBoot(context.Background(), healthy)
	if err != nil {
		t.Fatal(err)
	}
	if st.Running != "b" || st.Default != "b" || st.Trial != "" || st.OtherVersion != "1.0" || st.Last == nil || st.Last.Result != ResultCommitted || st.Last.Version != "1.1" {
		t.Errorf("after the trial: %+v %+v", st, st.Last)
	}
	if d.boot(false) != "b" || d.boot(true) != "b" {
		t.Errorf("after commit: cold boot %s, tryboot %s; want b", d.boot(false), d.boot(true))
	}
	if got, want := mustRead(t, filepath.Join(d.card.Dir, "config.txt")), d.p.ConfigTXT("b", ""); got != want {
		t.Errorf("config.txt after commit:\n%s", got)
	}
	// The next cold boot: nothing to do.
	if st, err := d.updater(d.boot(false), "1.1").AfterBoot(context.Background(), healthy); err != nil || st.Default != "b" || st.Last.Result != ResultCommitted {
		t.Errorf("cold boot after the commit: %+v, %v", st, err)
	}
}

// Acceptance 3 on a card: a failed health check, and a trial that never ran
// its check (a crash, a hang), both end on the old slot with the reason recorded.
func TestUpdateRollsBack(t *testing.T) {
	t.Run("failed check", func(t *testing.T) {
		d := newDevice(t)
		d.updater("a", "1.0").Apply(bytes.NewReader(d.bundle("1.1", releaseKey)), nil)
		d.reboots = append(d.reboots, true) // RebootTrial
		st, err := d.updater(d.boot(true), "1.1").AfterBoot(context.Background(), func(context.Context) error {
			return errors.New("mesh service not ready after 60s")
		})
		if err == nil || len(d.reboots) != 2 || d.reboots[1] {
			t.Fatalf("failed check: %v, reboots %v; want an error and a normal reboot", err, d.reboots)
		}
		if st.Last.Result != ResultRolledBack || !strings.Contains(st.Last.Reason, "mesh service not ready") {
			t.Errorf("outcome %+v", st.Last)
		}
		running := d.boot(false)
		st, err = d.updater(running, "1.0").AfterBoot(context.Background(), healthy)
		if err != nil || running != "a" || st.Default != "a" || st.Trial != "" || st.Last.Result != ResultRolledBack {
			t.Errorf("the boot after: running %s, %+v, %v", running, st, err)
		}
	})
	t.Run("trial died", func(t *testing.T) {
		d := newDevice(t)
		d.updater("a", "1.0").Apply(bytes.NewReader(d.bundle("1.1", releaseKey)), nil)
		_ = d.boot(true) // the trial starts, and dies before AfterBoot (panic, hang, watchdog)
		running := d.boot(false)
		st, err := d.updater(running, "1.0").AfterBoot(context.Background(), healthy)
		if err != nil || running != "a" || st.Trial != "" || st.Last.Result != ResultRolledBack || !strings.Contains(st.Last.Reason, "did not commit") {
			t.Errorf("after a dead trial: running %s, %+v %+v, %v", running, st, st.Last, err)
		}
		if d.boot(true) != "a" {
			t.Error("a later tryboot would still run the failed slot")
		}
	})
}

// A bundle is gathered on /perm while it streams in; the boot partition is made
// writable only after its last byte verified, and the spool is gone afterwards.
// A delta bundle takes its unchanged kernel from the running slot.
func TestUpdateSpoolsThenDelta(t *testing.T) {
	d := newDevice(t)
	full := d.bundle("1.1", releaseKey)
	u := d.updater("a", "1.0")
	in := &endReader{r: bytes.NewReader(full)}
	var remounts []bool
	u.Remount = func(w bool) error {
		if w && !in.ended {
			t.Error("the boot partition was made writable before the bundle had arrived")
		}
		remounts = append(remounts, w)
		return nil
	}
	if _, err := u.Apply(in, nil); err != nil {
		t.Fatal(err)
	}
	if len(remounts) != 2 || !remounts[0] || remounts[1] {
		t.Errorf("remounts %v, want writable then read-only", remounts)
	}
	if _, err := os.Stat(u.SpoolDir); !os.IsNotExist(err) {
		t.Errorf("the spool is still there: %v", err)
	}
	d.updater(d.boot(true), "1.1").AfterBoot(context.Background(), healthy)

	// 1.2 as a delta against 1.1, applied by slot b (which runs 1.1): it
	// carries the initramfs, VERSION and the command lines, not the kernel.
	delta := d.bundleAgainst("1.2", releaseKey, full)
	if len(delta) >= len(full) {
		t.Fatalf("delta %d bytes, full %d", len(delta), len(full))
	}
	if _, err := d.updater("b", "1.1").Apply(bytes.NewReader(delta), nil); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, filepath.Join(d.card.Dir, "a", "vmlinuz")); got != strings.Repeat("kernel ", 1000) {
		t.Errorf("slot a's kernel: %d bytes", len(got))
	}
	if got := mustRead(t, filepath.Join(d.card.Dir, "a", "VERSION")); got != "1.2\n" {
		t.Errorf("slot a's VERSION %q", got)
	}
	// The same delta on a device whose running slot lacks the kernel (a
	// damaged or different slot) is refused, and slot b is left alone.
	d2 := newDevice(t)
	u2 := d2.updater("a", "1.1")
	if _, err := u2.Apply(bytes.NewReader(delta), nil); !errors.Is(err, bundle.ErrBase) {
		t.Errorf("delta on another slot: %v, want ErrBase", err)
	}
	if mustRead(t, filepath.Join(d2.card.Dir, "b", "VERSION")) != "empty\n" {
		t.Error("a refused delta changed slot b")
	}
	if st := u2.Status(); st.Last == nil || st.Last.Result != ResultRefused || !strings.Contains(st.Last.Reason, "full bundle") {
		t.Errorf("status %+v", st.Last)
	}
}

// endReader notes when its reader returned io.EOF.
type endReader struct {
	r     io.Reader
	ended bool
}

func (e *endReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		e.ended = true
	}
	return n, err
}

// A refused bundle switches nothing and says why.
func TestUpdateRefused(t *testing.T) {
	d := newDevice(t)
	before := mustRead(t, filepath.Join(d.card.Dir, "config.txt"))
	other := secp256k1.PrivKeyFromBytes(bytes.Repeat([]byte{3}, 32))
	u := d.updater("a", "1.0")
	_, err := u.Apply(bytes.NewReader(d.bundle("1.1", other)), nil)
	if !errors.Is(err, bundle.ErrKey) || len(d.reboots) != 0 {
		t.Fatalf("unlisted key: %v, reboots %v", err, d.reboots)
	}
	if mustRead(t, filepath.Join(d.card.Dir, "config.txt")) != before || mustRead(t, filepath.Join(d.card.Dir, "b", "VERSION")) != "empty\n" {
		t.Error("a refused bundle changed the card")
	}
	if st := u.Status(); st.Last == nil || st.Last.Result != ResultRefused || !strings.Contains(st.Last.Reason, "not among") {
		t.Errorf("status %+v", st.Last)
	}
	// One update at a time.
	u.busy.Lock()
	if _, err := u.Apply(bytes.NewReader(nil), nil); !errors.Is(err, ErrBusy) {
		t.Errorf("concurrent Apply: %v", err)
	}
	u.busy.Unlock()
	// A node that does not know its slot writes neither.
	if _, err := d.updater("", "1.0").Apply(bytes.NewReader(d.bundle("1.1", releaseKey)), nil); err == nil {
		t.Error("applied with the running slot unknown")
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// RebootTrial starts one reboot: a second caller while it runs (the status
// service's request and PID 1's fallback) starts none; once a reboot returned
// (it failed), another may try.
func TestRebootTrialOnce(t *testing.T) {
	d := newDevice(t)
	u := d.updater("a", "1.0")
	var calls atomic.Int32
	release := make(chan struct{})
	u.Reboot = func(bool) error { calls.Add(1); <-release; return errors.New("no reboot here") }
	first := make(chan error, 1)
	go func() { first <- u.RebootTrial() }()
	for calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	if err := u.RebootTrial(); err != nil || calls.Load() != 1 {
		t.Fatalf("second RebootTrial while the first runs: %v, %d reboots", err, calls.Load())
	}
	close(release)
	if err := <-first; err == nil {
		t.Fatal("the failed reboot's error was lost")
	}
	if err := u.RebootTrial(); err == nil || calls.Load() != 2 {
		t.Fatalf("RebootTrial after a failed one: %v, %d reboots", err, calls.Load())
	}
}

// A power cut after the commit rewrote config.txt but before its outcome was
// written: the next (normal) boot runs the new slot, which is the default, and
// records the update as committed, not as a trial forever pending.
func TestCommitCutBeforeItsRecord(t *testing.T) {
	d := newDevice(t)
	d.updater("a", "1.0").Apply(bytes.NewReader(d.bundle("1.1", releaseKey)), nil)
	trial := d.updater(d.boot(true), "1.1")
	if err := trial.commit("b"); err != nil { // what AfterBoot does, up to the cut
		t.Fatal(err)
	}
	if st := trial.Status(); st.Last == nil || st.Last.Result != ResultTrial {
		t.Fatalf("before the cut: %+v", st.Last)
	}
	running := d.boot(false)
	st, err := d.updater(running, "1.1").AfterBoot(context.Background(), healthy)
	if err != nil || running != "b" || st.Default != "b" || st.Trial != "" || st.Last == nil ||
		st.Last.Result != ResultCommitted || st.Last.Version != "1.1" || st.Last.Slot != "b" {
		t.Fatalf("the boot after the cut: running %s, %+v %+v, %v", running, st, st.Last, err)
	}
}
