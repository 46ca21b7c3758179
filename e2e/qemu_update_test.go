//go:build e2e

package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/internal/apiauth"
	"github.com/skyfleet/skyfleet/services/identity"
)

// updateStatus is the update part of GET /status.
type updateStatus struct {
	Version string  `json:"version"`
	Slot    string  `json:"slot"`
	UptimeS float64 `json:"uptime_s"`
	BootMS  int64   `json:"boot_ms"`
	Update  *struct {
		Running      string `json:"running_slot"`
		Default      string `json:"default_slot"`
		Trial        string `json:"trial_slot"`
		OtherVersion string `json:"other_slot_version"`
		Last         *struct {
			Result, Version, Slot, Reason string
		} `json:"last_update"`
	} `json:"update"`
}

// TestQEMUUpdate (issue 11, acceptance 1, 3 and 5): nodes whose fleet.toml
// names a release key and a master take bundles that key signed, pushed with
// `skyfleet update push` or rolled out with `skyfleet update fleet`.
//
//   - 9.9.9, a delta against a full bundle of the same kernel, pushed to node
//     A: it spools it on /perm, writes slot b and reboots into it once with
//     tryboot (which skyfleet qemu follows as the Pi firmware would); its
//     services come up, it commits, and it reports 9.9.9 from slot b. The
//     next cold boot stays on b, and slot a still holds the old version.
//   - a rollout of 9.9.10, whose health check fails, over A, B and C from the
//     master with A as the one canary: A tries it in slot a, fails its check
//     and reboots to b; the rollout stops there, B and C never get it and keep
//     their version, and the master's registry and log say why.
//   - SKYFLEET_QEMU_UPDATE=1 (make soak) then pushes to A one release whose
//     PID 1 exits and one whose kernel panics (the kernel resets the board
//     after panic=10; the firmware's tryboot flag is gone, so slot b runs),
//     and, with the master stopped, a sound one whose trial cannot reach it.
//     Each ends on slot b running 9.9.9, the failure in /status and in
//     push's error.
//
// It measures push-to-commit time, the bundles' sizes, the downtime (the
// longest time /status did not answer while the update ran) and the
// rollout's time to stop.
func TestQEMUUpdate(t *testing.T) {
	m := startMaster(t, "10s")
	dir, img, rel := updatableImage(t, "update-kit", m)
	// B and C start from fresh copies of the card: each makes its own
	// identity on its first boot.
	imgs := []string{filepath.Join(dir, "node-b.img"), filepath.Join(dir, "node-c.img")}
	for _, c := range imgs {
		copyFile(t, img, c)
	}
	// The full bundle is the base the deltas leave their unchanged files to
	// (the kernel, DTBs and overlays the image has too); it is not pushed.
	full := buildBundle(t, dir, rel, "9.9.8", "", "")
	good := buildBundle(t, dir, rel, "9.9.9", "", full)
	canary := buildBundle(t, dir, rel, "9.9.10", "fault_health", good)
	faults := []struct {
		version, tag, says string
		noMaster           bool // the master is stopped before the push
	}{
		{"9.9.11", "fault_pid1", "did not commit", false},
		{"9.9.12", "fault_panic", "did not commit", false},
		// A sound release whose trial boot cannot reach the master: it
		// waits two minutes for a report to be acknowledged, then goes back.
		{"9.9.13", "", "no link to the master", true},
	}
	if os.Getenv("SKYFLEET_QEMU_UPDATE") == "" {
		// CI: the failed health check, in the rollout; make soak
		// (SKYFLEET_QEMU_UPDATE=1) adds the crashed PID 1, the kernel
		// panic and the trial without its master, four minutes each.
		faults = nil
	}
	faulty := map[string]string{}
	for _, f := range faults {
		faulty[f.version] = buildBundle(t, dir, rel, f.version, f.tag, good)
	}
	for _, f := range []string{full, good, canary} {
		fi, _ := os.Stat(f)
		t.Logf("bundle %s: %.1f MiB", filepath.Base(f), float64(fi.Size())/(1<<20))
	}

	v := bootFor(t, img, "update", "60m")
	s0 := v.waitStatus()
	if s0.Slot != "a" || s0.Version == "9.9.9" {
		t.Fatalf("fresh node: slot %s version %s", s0.Slot, s0.Version)
	}
	boots := 0
	push := func(sfu string) (string, time.Duration, time.Duration, error) {
		for attempt := 1; ; attempt++ {
			up := newUptimeWatch(v.port)
			start, from := time.Now(), int64(len(v.log()))
			cmd := exec.Command(skyfleet, "update", "push", "--node", "127.0.0.1:"+fmt.Sprint(v.port), "--key", filepath.Join(dir, "master.key"), "--wait", "12m", sfu)
			out, err, _ := runUnlessStalled(t, cmd, v, from, attempt == 1)
			took := time.Since(start)
			gap := up.longestGap()
			// QEMU's SD host model can lose a transfer on a loaded host, and
			// the guest's card is dead from then on (see skyfleet qemu's
			// sdStall): the node refuses the update with an I/O error. That
			// is the emulator's fault, not the update's: cut the power, boot
			// (PID 1 repairs the boot partition) and push once more.
			if err != nil && attempt == 1 && v.sdStalledSince(from) {
				t.Logf("the emulated SD card stalled during the push of %s (%s): power-cycling the node and pushing again", filepath.Base(sfu), strings.TrimSpace(lastLogLine(out)))
				v.kill()
				boots++
				v = bootFor(t, img, fmt.Sprintf("update-again%d", boots), "60m")
				v.waitStatus()
				continue
			}
			// QEMU's Pi 3 now and then hangs silently while it boots, and
			// skyfleet qemu then cuts the power (see its silentBoot). A cut
			// during the trial boot rolls the update back, as it should on
			// a Pi, but that says nothing of the release: push once more.
			if err != nil && attempt == 1 && v.powerCycledSince(from) {
				t.Logf("skyfleet qemu power-cycled the node during the push of %s (%s): pushing again", filepath.Base(sfu), strings.TrimSpace(lastLogLine(out)))
				v.waitStatus()
				continue
			}
			return out, took, gap, err
		}
	}

	// A link that breaks mid-transfer: the first push of 9.9.9 is killed
	// once the node holds 2 MiB of it; the node keeps what arrived, and the
	// push after resumes there.
	broke, stalled := brokenPush(t, v, filepath.Join(dir, "master.key"), good)
	if stalled {
		// The emulated SD card died (sdStalledSince) before or during the
		// push, and with it /perm: the emulator's fault, not the update's.
		t.Logf("the emulated SD card stalled before the broken push could break: power-cycling the node and breaking a push again")
		v.kill()
		boots++
		v = bootFor(t, img, fmt.Sprintf("update-again%d", boots), "60m")
		v.waitStatus()
		if broke, stalled = brokenPush(t, v, filepath.Join(dir, "master.key"), good); stalled {
			t.Fatal("the emulated SD card stalled twice before the first push: the host is too loaded to emulate a Pi")
		}
	}

	// Acceptance 1: the good update commits.
	out, took, down, err := push(good)
	if err != nil {
		t.Fatalf("update push: %v\n%s\nserial log:\n%s", err, out, v.tail())
	}
	if !strings.Contains(out, "resuming 9.9.9.sfu at") {
		t.Errorf("the push after the broken one did not resume (the node held %d bytes):\n%s", broke, out)
	}
	t.Logf("update push of 9.9.9: %.0f s from push to committed, %.0f s without /status:\n%s", took.Seconds(), down.Seconds(), out)
	var st updateStatus
	v.get("/status", &st)
	if st.Version != "9.9.9" || st.Slot != "b" || st.Update == nil || st.Update.Running != "b" || st.Update.Default != "b" ||
		st.Update.Trial != "" || st.Update.OtherVersion != s0.Version || st.Update.Last == nil || st.Update.Last.Result != "committed" {
		t.Fatalf("after the update: %+v %+v", st, st.Update)
	}
	// PID 1 logs the commit after the updater has recorded it, so /status
	// can say committed before the console does; and in the clean-clone run
	// of ba9aa7d the emulated SD card stalled right after "committing slot
	// b", skyfleet qemu power-cycled the VM, and the line never came, while
	// the commit was on the card (the next boot ran slot b, committed). So
	// the line is waited for, and its absence is a failure only when no
	// power cycle came between.
	log := v.log()
	if at := strings.Index(log, "update: committing slot b"); at >= 0 {
		if _, stalled := v.waitLogOrStall(int64(at), "update: committed 9.9.9 in slot b", time.Minute); stalled ||
			strings.Contains(v.log()[at:], "power-cycling the VM") {
			t.Logf("the emulated SD card stalled after the commit began, and skyfleet qemu power-cycled the VM: /status is the record of the commit")
		} else if !strings.Contains(v.log()[at:], "update: committed 9.9.9 in slot b") {
			t.Errorf("serial log lacks %q", "update: committed 9.9.9 in slot b")
		}
	} else {
		t.Errorf("serial log lacks %q", "update: committing slot b")
	}
	log = v.log()
	for _, want := range []string{"with command '0 tryboot'", "booting again with tryboot"} {
		if !strings.Contains(log, want) {
			t.Errorf("serial log lacks %q", want)
		}
	}
	// A cold boot (a plain reboot: no tryboot) stays on the new slot.
	from := int64(len(v.log()))
	fmt.Fprintln(v.stdin, "reboot")
	v.waitLog(from, "skyfleet: Skyfleet ", 8*time.Minute) // the next boot's first line, after a hung boot's power cycle at worst
	s := v.waitStatus()
	v.get("/status", &st)
	if s.Slot != "b" || st.Version != "9.9.9" || st.Update.OtherVersion != s0.Version {
		t.Fatalf("after a cold boot: slot %s version %s, slot a holds %q", s.Slot, st.Version, st.Update.OtherVersion)
	}

	// Acceptance 5: the rollout over A, B and C stops at its canary, A.
	// Three emulated Pis on two cores load the host most: a clean clone's
	// CI saw A's emulated SD card die while it wrote 9.9.10, and the test
	// waited for it until go test's deadline. powerCycle gives the rollout a
	// fresh A to try once more with.
	powerCycle := func() *vm {
		v.kill()
		boots++
		v = bootFor(t, img, fmt.Sprintf("update-again%d", boots), "60m")
		return v
	}
	rollout(t, m, v, powerCycle, canary, imgs, s0)

	// Acceptance 3: each failing release ends on slot b, running 9.9.9.
	for _, f := range faults {
		if f.noMaster {
			m.cmd.Process.Kill()
		}
		out, took, down, err := push(faulty[f.version])
		if err == nil || !strings.Contains(out, "rolled back version "+f.version) || !strings.Contains(out, f.says) {
			t.Fatalf("push of %s (%s): %v, want a rollback saying %q\n%s\nserial log:\n%s", f.version, f.tag, err, f.says, out, v.tail())
		}
		t.Logf("%s (%s): rolled back %.0f s after the push, %.0f s without /status: %s", f.version, f.tag, took.Seconds(), down.Seconds(), strings.TrimSpace(out))
		v.waitUntil("the node back on slot b", func(s status) bool { return s.BootMS > 0 && s.Slot == "b" })
		v.get("/status", &st)
		if st.Version != "9.9.9" || st.Slot != "b" || st.Update.Default != "b" || st.Update.Trial != "" ||
			st.Update.Last == nil || st.Update.Last.Result != "rolled back" || st.Update.Last.Version != f.version || !strings.Contains(st.Update.Last.Reason, f.says) {
			t.Fatalf("after %s: %+v %+v", f.tag, st, st.Update.Last)
		}
	}
	// Each failure happened as built: the kernel's or PID 1's own words.
	log = v.log()
	for _, tag := range append([]string{"fault_health"}, func() (l []string) {
		for _, f := range faults {
			if f.tag != "" {
				l = append(l, f.tag)
			}
		}
		return
	}()...) {
		if want := faultLine[tag]; !strings.Contains(log, want) {
			t.Errorf("serial log lacks %q", want)
		}
	}
	v.poweroff()
}

// runUnlessStalled runs cmd, gathering its output, and when watch is set
// kills it early if v's emulated SD card stalls after offset from of its
// serial log (sdStalledSince): a dead card can keep the node's answer back
// for many minutes. stalled says the stall ended it.
func runUnlessStalled(t *testing.T, cmd *exec.Cmd, v *vm, from int64, watch bool) (out string, err error, stalled bool) {
	t.Helper()
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case err = <-done:
			return b.String(), err, false
		case <-time.After(time.Second):
			if watch && v.sdStalledSince(from) {
				cmd.Process.Kill()
				err = <-done
				return b.String(), err, true
			}
		}
	}
}

// faultLine is what the serial log shows when each fault build fails.
var faultLine = map[string]string{
	"fault_health": "fault_health) fails its health check",
	"fault_pid1":   "Attempted to kill init",
	"fault_panic":  "sysrq triggered crash",
}

// updatableImage makes a release key and a master key in a new directory and
// builds a card image named name whose fleet.toml accepts that release key; it
// returns the directory (release.key, master.key, node.img), the image and
// the release key file. With m, the master key is m's and the node reports to
// m (through QEMU's user network, every 10 s) and meshes with it.
func updatableImage(t *testing.T, name string, m *fleetMaster) (dir, img, rel string) {
	t.Helper()
	dir = t.TempDir()
	keys := map[string]*identity.Key{}
	for _, k := range []string{"release", "master"} {
		f := filepath.Join(dir, k+".key")
		if k == "master" && m != nil {
			b, err := os.ReadFile(m.keyFile)
			if err == nil {
				err = os.WriteFile(f, b, 0o600)
			}
			if err != nil {
				t.Fatal(err)
			}
		} else if out, err := exec.Command(skyfleet, "keygen", "-o", f).CombinedOutput(); err != nil {
			t.Fatalf("keygen: %v\n%s", err, out)
		}
		key, err := identity.LoadKeyFile(f)
		if err != nil {
			t.Fatal(err)
		}
		keys[k] = key
	}
	network, master := "[network]\nlan_discovery = false\n", "[master]\npublic_key = \""+keys["master"].PublicKeyHex()+"\"\n"
	if m != nil {
		network += fmt.Sprintf("psk = %q\n", meshPSK)
		master += fmt.Sprintf("addresses = [\"udp://10.0.2.2:%d\"]\nreport_interval = \"10s\"\n", m.meshPort)
	}
	img = filepath.Join(dir, "node.img")
	buildImage(t, img, "[node]\nname = \""+name+"\"\n\n"+network+"\n"+master+"\n"+
		"[release]\nkeys = [\""+keys["release"].PublicKeyHex()+"\"]\n")
	return dir, img, filepath.Join(dir, "release.key")
}

// buildBundle builds release version of skyfleetd's slot for rpi3b, signed by
// key file rel; tag, if set, compiles skyfleetd with that build tag (a fault,
// see cmd/skyfleetd/fault.go); base, if set, makes it a delta against that
// bundle. It returns the bundle's path.
func buildBundle(t *testing.T, dir, rel, version, tag, base string) string {
	t.Helper()
	sfu := filepath.Join(dir, version+".sfu")
	args := []string{"update", "build", "--board", "rpi3b", "--key", rel, "--version", version, "-o", sfu}
	if base != "" {
		args = append(args, "--delta-from", base)
	}
	cmd := exec.Command(skyfleet, args...)
	cmd.Dir = ".." // it compiles skyfleetd from the source tree, as skyfleet image does
	cmd.Env = os.Environ()
	if tag != "" {
		cmd.Env = append(cmd.Env, "GOFLAGS=-tags="+tag)
	}
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("update build %s: %v\n%s", version, err, out)
	}
	t.Logf("update build %s %s in %.0f s: %s", version, tag, time.Since(start).Seconds(), lastLine(string(out)))
	return sfu
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndexByte(s, '\n')+1:]
}

// uptimeWatch polls a node's /status every half second and keeps the longest
// time it went without an answer: the downtime of an update.
type uptimeWatch struct {
	done chan struct{}
	gap  chan time.Duration
}

func newUptimeWatch(port int) *uptimeWatch {
	w := &uptimeWatch{done: make(chan struct{}), gap: make(chan time.Duration, 1)}
	go func() {
		c := http.Client{Timeout: 2 * time.Second}
		last, longest := time.Now(), time.Duration(0)
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.done:
				w.gap <- max(longest, time.Since(last))
				return
			case <-tick.C:
			}
			resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/status", port))
			if err != nil {
				continue
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				longest, last = max(longest, time.Since(last)), time.Now()
			}
		}
	}()
	return w
}

// longestGap stops the watch and returns the longest time without an answer.
func (w *uptimeWatch) longestGap() time.Duration { close(w.done); return <-w.gap }

// testQEMUUpdateRefused (issue 11, acceptance 2 on the device): the shared node's
// fleet.toml names no release key, so a bundle pushed with the master's key goes
// through the status service to PID 1, which refuses it before it writes
// anything, says why, and shows the refusal in /status.
func testQEMUUpdateRefused(t *testing.T, g *sharedVM) {
	v := g.vm.in(t)
	dir := t.TempDir()
	slot := filepath.Join(dir, "slot")
	os.MkdirAll(slot, 0o755)
	for name, c := range map[string]string{"vmlinuz": "not a kernel", "cmdline.a.txt": "skyfleet.slot=a\n", "cmdline.b.txt": "skyfleet.slot=b\n"} {
		os.WriteFile(filepath.Join(slot, name), []byte(c), 0o644)
	}
	rel := filepath.Join(dir, "release.key")
	if out, err := exec.Command(skyfleet, "keygen", "-o", rel).CombinedOutput(); err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	sfu := filepath.Join(dir, "x.sfu")
	if out, err := exec.Command(skyfleet, "update", "build", "--board", "rpi3b", "--key", rel, "--version", "9.9.9", "--from", slot, "-o", sfu).CombinedOutput(); err != nil {
		t.Fatalf("update build: %v\n%s", err, out)
	}
	out, err := exec.Command(skyfleet, "update", "push", "--node", g.guest.status, "--key", g.master.keyFile, sfu).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "refused the update (422)") || !strings.Contains(string(out), "no release key is configured") {
		t.Fatalf("push to a node without release keys: %v\n%s", err, out)
	}
	var st updateStatus
	v.get("/status", &st)
	if st.Update == nil || st.Update.Last == nil || st.Update.Last.Result != "refused" || st.Update.Trial != "" || st.Update.Running != "a" ||
		!strings.Contains(st.Update.Last.Reason, "no release key") || st.Update.OtherVersion != "empty" {
		t.Errorf("status after the refusal: %+v %+v", st.Update, st.Update.Last)
	}
}

// brokenPush starts a push of sfu to v, kills it once the node says it holds
// 2 MiB of the bundle (GET /update/held with the master's key in keyFile), and
// waits for the node to log that it kept them. It returns what the node holds,
// or stalled when the emulated SD card has stalled since the node booted
// (sdStalledSince): then the node holds nothing and the caller power-cycles it.
func brokenPush(t *testing.T, v *vm, keyFile, sfu string) (held int64, stalled bool) {
	t.Helper()
	b, err := os.ReadFile(sfu)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	id := hex.EncodeToString(sum[:])
	key, err := identity.LoadKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	cred := apiauth.MasterKey{Key: key.PrivateKey()}
	node := "127.0.0.1:" + fmt.Sprint(v.port)
	heldNow := func() int64 {
		var h struct{ Have int64 }
		json.Unmarshal([]byte(credGet(node, "/update/held?id="+id, cred)), &h)
		return h.Have
	}
	from := int64(len(v.log()))
	cmd := exec.Command(skyfleet, "update", "push", "--node", node, "--key", keyFile, "--retries", "0", sfu)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Minute)
	for heldNow() < 2<<20 {
		// A card that stalled at any time since this boot (its PIO
		// timeouts can come before the node answers /status) holds
		// nothing: say so rather than wait out the deadline.
		if v.sdStalledSince(0) {
			cmd.Process.Kill()
			cmd.Wait()
			return 0, true
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("the node held %d bytes of %s 5 min into its push:\n%s\nserial log:\n%s", heldNow(), filepath.Base(sfu), out.String(), v.tail())
		}
		time.Sleep(time.Second)
	}
	cmd.Process.Kill()
	cmd.Wait()
	v.waitLog(from, "they are kept for a resume", 2*time.Minute)
	h := heldNow()
	t.Logf("push of %s killed mid-transfer: the node keeps %.1f MiB of %.1f MiB for a resume", filepath.Base(sfu), float64(h)/(1<<20), float64(len(b))/(1<<20))
	if h < 2<<20 || h >= int64(len(b)) {
		t.Fatalf("after the broken push the node holds %d bytes of %d", h, len(b))
	}
	return h, false
}
