package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/skyfleet/skyfleet/board"
	"github.com/skyfleet/skyfleet/images/card"
	"github.com/skyfleet/skyfleet/internal/durable"
	"github.com/skyfleet/skyfleet/internal/progress"
	"github.com/skyfleet/skyfleet/services/control"
	"github.com/skyfleet/skyfleet/services/identity"
	"github.com/skyfleet/skyfleet/services/update/bundle"
	"github.com/skyfleet/skyfleet/services/update/slot"
)

const updateUsage = "update build|verify|push|fleet (see skyfleet update build --help, and so on)"

// cmdUpdate builds and checks signed update bundles (.sfu).
func cmdUpdate(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: skyfleet " + updateUsage)
	}
	switch args[0] {
	case "build":
		return updateBuild(args[1:])
	case "verify":
		return updateVerify(args[1:])
	case "push":
		return updatePush(args[1:])
	case "fleet":
		return updateFleet(args[1:])
	default:
		return fmt.Errorf("unknown update command %q; usage: skyfleet %s", args[0], updateUsage)
	}
}

// updateBuild writes a bundle: the slot of a card built for the board (as
// skyfleet image builds it), or the files of a slot folder given with --from.
func updateBuild(args []string) error {
	fs := newFlags("update build", "update build --board B --key FILE --version V [--minimum V] [--from DIR] [--delta-from OLD.sfu] -o OUT.sfu",
		"skyfleet keygen -o release.key && skyfleet update build --board rpi3b --key release.key --version 1.4.0 --minimum 1.2 -o skyfleet-1.4.0-rpi3b.sfu\n"+
			"  skyfleet update build --board rpi3b --key release.key --version 1.4.1 --delta-from skyfleet-1.4.0-rpi3b.sfu -o skyfleet-1.4.1-delta.sfu")
	boardName := fs.String("board", board.Default, "board profile: "+fmt.Sprint(board.Names()))
	keyFile := fs.String("key", "", "the release key `file` that signs (skyfleet keygen); its public key goes in fleet.toml [release] keys")
	version := fs.String("version", "", "the release's `version`, dotted numbers such as 1.4.0; default the slot folder's VERSION with --from")
	minimum := fs.String("minimum", "", "the lowest running `version` this bundle may update (default: any)")
	from := fs.String("from", "", "take the slot's files from this `dir`ectory (every regular file under it) instead of building them")
	out := fs.String("o", "", "write the bundle to this `file` (replaced atomically)")
	deltaFrom := fs.String("delta-from", "", "make a delta against this earlier `bundle` (the release the nodes run): files it has unchanged are not carried but copied from the node's running slot; a node running anything else refuses the delta and needs the full bundle")
	wifi := addWiFiFlags(fs) // the slot's initramfs carries the Wi-Fi firmware, as on a card
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *keyFile == "" || *out == "" || fs.NArg() != 0 {
		fs.Usage()
		return errors.New("--key and -o are required")
	}
	p, err := board.Get(*boardName)
	if err != nil {
		return err
	}
	key, err := identity.LoadKeyFile(*keyFile)
	if err != nil {
		return fmt.Errorf("release key: %w", err)
	}
	var srcs []bundle.Source
	var total int64 // file bytes, for the progress bar
	if *from != "" {
		if srcs, total, err = dirSources(*from); err != nil {
			return err
		}
		if err := checkCmdlines(srcs, *from); err != nil {
			return err
		}
		if *version == "" {
			v, err := os.ReadFile(filepath.Join(*from, "VERSION"))
			if err != nil {
				return fmt.Errorf("no --version, and %s has no VERSION file: %w", *from, err)
			}
			*version = strings.TrimSpace(string(v))
		}
	}
	if _, err := bundle.ParseVersion(*version); err != nil {
		return fmt.Errorf("--version: %v (a device compares release versions; \"dev\" builds cannot be released)", err)
	}
	if *minimum != "" {
		if _, err := bundle.ParseVersion(*minimum); err != nil {
			return fmt.Errorf("--minimum: %v", err)
		}
	}
	if *from == "" {
		opts, err := prepare(p, nil, *version, wifi.source())
		if err != nil {
			return err
		}
		files, err := card.SlotFiles(opts)
		if err != nil {
			return err
		}
		for _, f := range files {
			srcs = append(srcs, bundle.Source{Name: f.Path, Open: f.Open})
			total += f.Size
		}
	}
	h := bundle.Header{Board: p.Name, Version: *version, Minimum: *minimum}
	if *deltaFrom != "" {
		if h.Base, err = readManifest(*deltaFrom); err != nil {
			return fmt.Errorf("--delta-from: %w", err)
		}
		if h.Base.Board != p.Name {
			return fmt.Errorf("--delta-from: %s is for %s, this bundle for %s", *deltaFrom, h.Base.Board, p.Name)
		}
		if c, _ := bundle.CompareVersions(*version, h.Base.Version); c <= 0 {
			return fmt.Errorf("--delta-from: %s holds %s; a delta goes to a later version than its base, not %s", *deltaFrom, h.Base.Version, *version)
		}
	}
	pr, pw := io.Pipe()
	var m *bundle.Manifest
	go func() {
		var err error
		m, err = bundle.Write(pw, key.PrivateKey(), h, srcs)
		pw.CloseWithError(err)
	}()
	bar := progress.New(os.Stderr, "writing "+filepath.Base(*out))
	n, err := durable.WriteFrom(*out, &countingReader{r: pr, total: total, update: bar.Update}, 0o644)
	pr.CloseWithError(err)
	if err != nil {
		return err
	}
	bar.Done()
	kind := "full"
	if m.Delta() {
		kind = fmt.Sprintf("delta against %s (%s of %s carried; the rest from the running slot)", m.Base, progress.MiB(m.Carried()), progress.MiB(m.Total()))
	}
	fmt.Fprintf(stdout, "%s: update %s for %s, %d files, %s, %s, signed by %s\n", *out, m.Version, m.Board, len(m.Files), progress.MiB(n), kind, key.PublicKeyHex())
	return nil
}

// readManifest reads the manifest of a bundle file whose signature verifies
// (under the key it names: the host trusts its own files).
func readManifest(path string) (*bundle.Manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := bundle.ReadHead(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// countingReader reports the bytes read so far to update (a progress bar over
// total, the files' bytes; the bundle's few KiB of head are not counted).
type countingReader struct {
	r      io.Reader
	n      int64
	total  int64
	update func(done, total int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n <= c.total {
		c.update(c.n, c.total)
	}
	return n, err
}

// dirSources lists every regular file under dir as a bundle source named by its
// slash-separated path relative to dir, and their total size. Anything else (a
// symlink, a device) is an error: a slot holds plain files.
func dirSources(dir string) ([]bundle.Source, int64, error) {
	var srcs []bundle.Source
	var total int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: not a regular file", path)
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if err := bundle.ValidName(name); err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		total += info.Size()
		srcs = append(srcs, bundle.Source{Name: name, Open: func() (io.ReadCloser, error) { return os.Open(path) }})
		return nil
	})
	if err == nil && len(srcs) == 0 {
		err = fmt.Errorf("%s holds no files", dir)
	}
	return srcs, total, err
}

// updateVerify checks a bundle exactly as a device would and prints what it holds.
func updateVerify(args []string) error {
	fs := newFlags("update verify", "update verify --release-key PUBHEX [--release-key ...] --board B [--running V] [--slot DIR] X.sfu",
		"skyfleet update verify --release-key 02ab... --board rpi3b --running 1.3.0 skyfleet-1.4.0-rpi3b.sfu && echo a device would take it")
	var keys multiFlag
	fs.Var(&keys, "release-key", "an accepted release `key` (66 hex characters, as in fleet.toml [release] keys); repeat for several")
	boardName := fs.String("board", board.Default, "the device's board profile: "+fmt.Sprint(board.Names()))
	running := fs.String("running", "", "the `version` the device runs (checks the bundle's minimum and refuses a downgrade); default: not checked")
	downgrade := fs.Bool("allow-downgrade", false, "accept a bundle older than --running")
	asJSON := fs.Bool("json", false, "print the manifest as JSON")
	slotDir := fs.String("slot", "", "the running slot's folder (a card's a/ or b/), to check a delta bundle against it as the device does; a delta is refused without it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("one bundle file is required")
	}
	if _, err := board.Get(*boardName); err != nil {
		return err
	}
	pol := bundle.Policy{Board: *boardName, Running: *running, AllowDowngrade: *downgrade}
	if *slotDir != "" {
		pol.Base = os.DirFS(*slotDir)
	}
	for _, k := range keys {
		b, err := hex.DecodeString(k)
		if err != nil || len(b) != bundle.KeyLen {
			return fmt.Errorf("--release-key %q: want %d hex characters (a compressed public key)", k, 2*bundle.KeyLen)
		}
		pol.Keys = append(pol.Keys, [bundle.KeyLen]byte(b))
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := bundle.NewReader(f, pol)
	if err != nil {
		return fmt.Errorf("%s: refused: %w", fs.Arg(0), err)
	}
	for {
		_, fr, err := r.Next()
		if err == io.EOF {
			break
		}
		if err == nil {
			_, err = io.Copy(io.Discard, fr)
		}
		if err != nil {
			return fmt.Errorf("%s: refused: %w", fs.Arg(0), err)
		}
	}
	m := r.Manifest
	if *asJSON {
		type file struct {
			Name        string `json:"name"`
			Size        int64  `json:"size"`
			SHA256      string `json:"sha256"`
			FromRunning bool   `json:"from_running_slot,omitempty"`
		}
		doc := struct {
			Board   string    `json:"board"`
			Version string    `json:"version"`
			Minimum string    `json:"minimum"`
			Base    string    `json:"delta_base,omitempty"`
			Created time.Time `json:"created"`
			Key     string    `json:"key"`
			Files   []file    `json:"files"`
		}{m.Board, m.Version, m.Minimum, m.Base, m.Created, hex.EncodeToString(m.Key[:]), []file{}}
		for _, f := range m.Files {
			doc.Files = append(doc.Files, file{f.Name, f.Size, hex.EncodeToString(f.SHA256[:]), f.FromRunning})
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(doc)
	}
	min := m.Minimum
	if min == "" {
		min = "any"
	}
	fmt.Fprintf(stdout, "%s: accepted: version %s for %s (updates %s), built %s, signed by %s\n",
		fs.Arg(0), m.Version, m.Board, min, m.Created.Format(time.RFC3339), hex.EncodeToString(m.Key[:]))
	if m.Delta() {
		fmt.Fprintf(stdout, "  a delta against %s: %s carried, the files marked * come from the running slot\n", m.Base, progress.MiB(m.Carried()))
	}
	for _, f := range m.Files {
		mark := " "
		if f.FromRunning {
			mark = "*"
		}
		fmt.Fprintf(stdout, "  %10d  %x %s %s\n", f.Size, f.SHA256[:8], mark, f.Name)
	}
	return nil
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// updatePush sends a bundle to a node's PUT /update, straight or through the
// master's tunnel, and follows the node through its trial boot to the commit
// or the rollback.
func updatePush(args []string) error {
	fs := newFlags("update push", "update push [--node HOST:PORT] [--key master.key | --token-file FILE | --config fleet.toml] [--wait D] X.sfu\n"+
		"       skyfleet update push --master HOST:PORT [--token T] --key master.key [--wait D] NODE X.sfu",
		"skyfleet update push --node 192.0.2.7:80 --key master.key skyfleet-1.4.0-rpi3b.sfu\n"+
			"  skyfleet update push --master 127.0.0.1:8080 --key master.key pi-kitchen skyfleet-1.4.0-rpi3b.sfu   # over the mesh")
	client := nodeFlags(fs)
	wait := fs.Duration("wait", 15*time.Minute, "how long to wait for the node to commit or roll back after it took the bundle (0: do not wait)")
	via := fs.String("master", "", "send through the fleet master at `HOST:PORT` (its dashboard address) to NODE, a name, address or public key, over the mesh; --key is then the master's key")
	token := fs.String("token", os.Getenv("SKYFLEET_TOKEN"), "with --master: the master's API `token` (env SKYFLEET_TOKEN); not needed on the master's host")
	pin := addPinFlag(fs, true)
	retries := fs.Int("retries", 8, "how many times a transfer that broke off is resumed from where it stopped, or a node that went quiet (rebooting into its trial and back) is asked again; the pauses grow from 5 s to 1 min, about 5 min in all")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *via != "" {
		if fs.NArg() != 2 {
			fs.Usage()
			return errors.New("with --master, name the NODE and the bundle file")
		}
		key := fs.Lookup("key").Value.String()
		if key == "" {
			return errors.New("with --master, --key names the master's key file: the node takes an update from it only")
		}
		mf := masterFlags{addr: via, token: token, pin: pin, key: &key}
		out := rolloutOutput{w: stdout}
		return pushViaMaster(mf, fs.Arg(0), fs.Arg(1), *wait, *retries, out)
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("one bundle file is required")
	}
	c, err := client()
	if err != nil {
		return err
	}
	ans, before, err := sendBundle(func() (*nodeClient, func(), error) { return c, func() {}, nil }, fs.Arg(0), *retries)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %s (version %s was %s in slot %s)\n", c.host, ans.Message, ans.Version, before.Version, before.Update.Running)
	if *wait == 0 {
		return nil
	}
	// The node reboots twice at most (the trial, and back when it fails): wait
	// through both for its verdict on this version.
	deadline := time.Now().Add(*wait)
	for time.Now().Before(deadline) {
		time.Sleep(updatePoll) // the node is rebooting meanwhile
		st, err := nodeUpdateStatus(c)
		if err != nil || st.BootMS == 0 {
			continue
		}
		if done, err := verdict(c.host, ans.Version, before.Update.Last, st); done {
			return err
		}
	}
	return fmt.Errorf("%s did not report a commit or a rollback of %s within %s (see its /status)", c.host, ans.Version, *wait)
}

// pushAnswer is a node's answer to PUT /update.
type pushAnswer struct{ Result, Version, Slot, Message, Error string }

// sendBundle streams the bundle file at path to the node's PUT /update with a
// progress bar on stderr and returns the node's answer once it took the
// bundle (202), and the node's status from before. connect opens the way to
// the node (again after a broken link: a new tunnel through the master) and
// returns what closes it. The transfer names the bundle by its SHA-256, so a
// node keeps what arrived when the link breaks: up to retries times,
// sendBundle asks the node whether it took the bundle after all (its answer
// can be lost when it reboots into the trial at once) and otherwise how much
// it holds (GET /update/held), and sends only the rest. Errors: the file is
// not a bundle, the node cannot be reached after the last retry, or its
// refusal with its reason.
func sendBundle(connect func() (*nodeClient, func(), error), path string, retries int) (ans pushAnswer, before pushStatus, err error) {
	f, err := os.Open(path)
	if err != nil {
		return ans, before, err
	}
	defer f.Close()
	m, err := bundle.ReadHead(f)
	if err != nil {
		return ans, before, fmt.Errorf("%s: %w", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return ans, before, err
	}
	h := sha256.New()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return ans, before, err
	}
	if _, err := io.Copy(h, f); err != nil {
		return ans, before, err
	}
	id := hex.EncodeToString(h.Sum(nil))
	size := fi.Size()
	haveBefore, sent, wholeAgain := false, false, false
	for attempt := 0; ; attempt++ {
		last := attempt >= retries
		pause := min(time.Minute, retryPause<<attempt) // a reboot into the trial, and back after a failed one, takes minutes
		retry := func(err error) bool {
			if last {
				return false
			}
			fmt.Fprintf(os.Stderr, "\n%v; trying again in %s\n", err, pause)
			time.Sleep(pause)
			return true
		}
		c, closeConn, err := connect()
		if err != nil {
			if retry(err) {
				continue
			}
			return ans, before, err
		}
		st, err := nodeUpdateStatus(c)
		if err != nil {
			closeConn()
			if retry(err) {
				continue
			}
			return ans, before, err
		}
		if !haveBefore {
			before, haveBefore = st, true
		} else if sent && newOutcome(st.Update.Last, before.Update.Last, m.Version) {
			// The transfer broke as it ended, but the node took the bundle.
			closeConn()
			return pushAnswer{Result: st.Update.Last.Result, Version: m.Version, Slot: st.Update.Last.Slot,
				Message: "took the bundle (its answer was lost on the way)"}, before, nil
		}
		offset, resumable, err := heldBytes(c, id)
		if err != nil {
			closeConn()
			if retry(err) {
				continue
			}
			return ans, before, err
		}
		if offset > size {
			offset = 0
		}
		target := "/update"
		if resumable {
			target = fmt.Sprintf("/update?id=%s&offset=%d", id, offset)
		}
		label := "sending " + filepath.Base(path) + " to " + c.host
		if offset > 0 {
			label = fmt.Sprintf("resuming %s at %s of %s to %s", filepath.Base(path), progress.MiB(offset), progress.MiB(size), c.host)
		}
		bar := progress.New(os.Stderr, label)
		sent = true
		body, code, err := c.call(http.MethodPut, target, &countingReader{r: io.NewSectionReader(f, offset, size-offset), n: offset, total: size, update: bar.Update}, 0)
		closeConn()
		if err != nil {
			if resumable && retry(fmt.Errorf("the transfer broke off (%v)", err)) {
				continue
			}
			return ans, before, err
		}
		bar.Done()
		var e struct {
			pushAnswer
			Have *int64 `json:"have"`
		}
		json.Unmarshal(body, &e)
		ans = e.pushAnswer
		switch {
		case code == http.StatusAccepted:
			return ans, before, nil
		case code == http.StatusConflict && e.Have != nil && !last:
			continue // the node holds another count than asked: ask again
		case code == http.StatusConflict && retry(fmt.Errorf("%s is busy with an update (after a broken transfer, ours: it then shows the outcome)", c.host)):
			continue
		case code == http.StatusUnprocessableEntity && offset > 0 && !wholeAgain && !last:
			// The node's held bytes and ours together failed the check
			// (damage on its card, say); it dropped them: once more whole.
			wholeAgain = true
			fmt.Fprintf(os.Stderr, "the resumed bundle failed the node's check (%s); sending it whole\n", ans.Error)
			continue
		}
		if ans.Error == "" {
			ans.Error = strings.TrimSpace(string(body))
		}
		return ans, before, fmt.Errorf("%s refused the update (%d): %s", c.host, code, ans.Error)
	}
}

// newOutcome reports whether last is an outcome for version that the node
// reached after before (a trial, a commit, a rollback or a refusal of it).
func newOutcome(last, before *control.UpdateOutcome, version string) bool {
	return last != nil && last.Version == version && (before == nil || !last.At.Equal(before.At) || last.Result != before.Result)
}

// heldBytes asks the node how many bytes of bundle id it holds from a broken
// transfer; resumable is false for a node that cannot resume (it predates
// GET /update/held, or cannot take updates at all: its PUT /update then
// says why). Errors: the node cannot be reached.
func heldBytes(c *nodeClient, id string) (have int64, resumable bool, err error) {
	body, code, err := c.call(http.MethodGet, "/update/held?id="+id, nil, 30*time.Second)
	if err != nil {
		return 0, false, err
	}
	var h struct{ Have *int64 }
	if code != http.StatusOK || json.Unmarshal(body, &h) != nil || h.Have == nil || *h.Have < 0 {
		return 0, false, nil
	}
	return *h.Have, true, nil
}

// verdict judges a node's update state st after a push of version: done once
// the node reports this push's outcome (not before, the outcome it had before
// the push), with nil for a commit and an error giving the node's reason for a
// rollback or a refusal. A rollback reported by the failed trial itself,
// still running the new slot and about to reboot into the old one, is not done
// yet.
func verdict(host, version string, before *control.UpdateOutcome, st pushStatus) (bool, error) {
	l := st.Update.Last
	if !newOutcome(l, before, version) {
		return false, nil
	}
	switch l.Result {
	case "committed":
		other, _ := slot.Other(st.Update.Running)
		fmt.Fprintf(stdout, "%s: committed: version %s runs from slot %s (slot %s keeps %s)\n", host, st.Version, st.Update.Running, other, st.Update.OtherVersion)
		return true, nil
	case "rolled back", "refused":
		if l.Result == "rolled back" && st.Update.Running == l.Slot {
			return false, nil // the failed trial itself, about to reboot into the old slot
		}
		return true, fmt.Errorf("%s %s version %s: %s; it runs %s from slot %s", host, l.Result, l.Version, l.Reason, st.Version, st.Update.Running)
	}
	return false, nil
}

// retryPause is the first pause before a broken transfer is resumed; each
// later one doubles, up to a minute.
var retryPause = 5 * time.Second

// updatePoll is how often update push asks the node for its verdict.
var updatePoll = 2 * time.Second

// pushStatus is the part of a node's GET /status update push reads.
type pushStatus struct {
	Version string `json:"version"`
	BootMS  int64  `json:"boot_ms"`
	Update  struct {
		Running      string                 `json:"running_slot"`
		OtherVersion string                 `json:"other_slot_version"`
		Last         *control.UpdateOutcome `json:"last_update"`
	} `json:"update"`
}

func nodeUpdateStatus(c *nodeClient) (pushStatus, error) {
	var st pushStatus
	body, code, err := c.call(http.MethodGet, "/status", nil, 10*time.Second)
	if err != nil {
		return st, err
	}
	if code != http.StatusOK {
		return st, fmt.Errorf("%s /status answered %d", c.host, code)
	}
	return st, json.Unmarshal(body, &st)
}

// checkCmdlines wants a slot folder's kernel command line once per slot
// (cmdline.a.txt, cmdline.b.txt: it names the slot), not a cmdline.txt, which
// names the slot it was made for and would be wrong in the other.
func checkCmdlines(srcs []bundle.Source, dir string) error {
	have := map[string]bool{}
	for _, s := range srcs {
		have[s.Name] = true
	}
	if have["cmdline.txt"] {
		return fmt.Errorf("%s has a cmdline.txt: give the command line once per slot as cmdline.a.txt and cmdline.b.txt (each naming its slot, skyfleet.slot=a or b), as skyfleet update build without --from does", dir)
	}
	for _, s := range board.Slots {
		if !have["cmdline."+s+".txt"] {
			return fmt.Errorf("%s has no cmdline.%s.txt: a device installs it as slot %s's command line", dir, s, s)
		}
	}
	return nil
}
