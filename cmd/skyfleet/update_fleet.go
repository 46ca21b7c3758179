package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/skyfleet/skyfleet/internal/apiauth"
	"github.com/skyfleet/skyfleet/services/control"
	"github.com/skyfleet/skyfleet/services/control/registry"
	"github.com/skyfleet/skyfleet/services/identity"
	"github.com/skyfleet/skyfleet/services/update/bundle"
)

// rolloutPoll is how often a push through the master asks the master's
// registry for the nodes' verdicts; they arrive with the nodes' reports.
var rolloutPoll = 5 * time.Second

// rolloutOutput is where a push through the master or a rollout says what it
// does, one line per step.
type rolloutOutput struct{ w io.Writer }

func (o rolloutOutput) say(format string, a ...any) { fmt.Fprintf(o.w, format+"\n", a...) }

// rollout sends one bundle to nodes through the master and waits for their
// verdicts in the master's registry.
type rollout struct {
	mf      masterFlags
	path    string
	m       *bundle.Manifest
	retries int // resumes of a broken transfer, per node
	out     rolloutOutput
}

// pending is a node that took the bundle and has not reported its verdict.
type pending struct {
	node   registry.Node
	before *control.UpdateOutcome // the node's last outcome before the push
}

// result is how a node's update ended: err is nil for a commit.
type result struct {
	node registry.Node
	err  error
}

// label names a node for people: its name and its address.
func label(n registry.Node) string {
	if n.Name == "" {
		return n.Address
	}
	return fmt.Sprintf("%s (%s)", terminalSafe(n.Name), n.Address)
}

// send streams the bundle to node n through the master's tunnel and an SSH
// forward to the node's own status API, signed with the master's key as every
// control request is. Errors: the tunnel, or the node's refusal with its reason.
func (r *rollout) send(n registry.Node) (pending, error) {
	p := pending{node: n}
	key, err := identity.LoadKeyFile(*r.mf.key)
	if err != nil {
		return p, fmt.Errorf("%w (the master's key signs the update: --key)", err)
	}
	pub, err := hex.DecodeString(n.PublicKey)
	if err != nil {
		return p, fmt.Errorf("the master lists %s with a bad public key", n.Address)
	}
	// Each attempt opens a tunnel of its own: after a broken link the last
	// one is gone.
	connect := func() (*nodeClient, func(), error) {
		rs, err := remoteSession(r.mf, n.PublicKey, "update", "push "+r.m.Version)
		if err != nil {
			return nil, nil, err
		}
		return &nodeClient{host: label(n), cred: apiauth.MasterKey{Key: key.PrivateKey(), Node: pub},
			how: "the master key in " + *r.mf.key, dial: rs.DialAPI}, func() { rs.Close() }, nil
	}
	ans, before, err := sendBundle(connect, r.path, r.retries)
	if err != nil {
		return p, err
	}
	// The outcome the node itself had, which its report may not have
	// brought to the master yet: the verdict is a newer one.
	p.before = before.Update.Last
	r.out.say("%s: %s (version %s was %s in slot %s)", label(n), ans.Message, ans.Version, n.Version, n.Slot)
	return p, nil
}

// await polls the master until every pending node reported its verdict or wait
// passed, and returns the results in ps's order (a node that said nothing in
// time gets an error saying so).
func (r *rollout) await(ps []pending, wait time.Duration) []result {
	res := make([]result, len(ps))
	done := make([]bool, len(ps))
	left := len(ps)
	deadline := time.Now().Add(wait)
	for left > 0 && time.Now().Before(deadline) {
		time.Sleep(rolloutPoll)
		for i, p := range ps {
			if done[i] {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			d, err := r.mf.client().Node(ctx, p.node.PublicKey)
			cancel()
			if err != nil {
				continue // the master is busy or restarting: ask again
			}
			ok, verr := verdict(label(p.node), r.m.Version, p.before, registryStatus(d.Node))
			if ok {
				res[i], done[i] = result{node: d.Node, err: verr}, true
				left--
			}
		}
	}
	for i, p := range ps {
		if !done[i] {
			res[i] = result{node: p.node, err: fmt.Errorf("%s reported no commit or rollback of %s to the master within %s (see skyfleet nodes)", label(p.node), r.m.Version, wait)}
		}
	}
	return res
}

// registryStatus is the node's update state as its last report to the master
// gave it, in the shape verdict reads.
func registryStatus(n registry.Node) pushStatus {
	var st pushStatus
	st.Version, st.Update.Running = n.Version, n.Slot
	if n.Update != nil {
		st.Update.OtherVersion, st.Update.Last = n.Update.OtherVersion, n.Update.Last
	}
	return st
}

// record logs a node's outcome in the master's action log.
func (r *rollout) record(n registry.Node, detail string) {
	logResult(r.mf, n.PublicKey, "update", detail)
}

// pushViaMaster is update push --master: one node, through the master.
func pushViaMaster(mf masterFlags, node, path string, wait time.Duration, retries int, out rolloutOutput) error {
	m, err := readManifest(path)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	d, err := mf.client().Node(ctx, node)
	cancel()
	var amb *registry.AmbiguousNameError
	if errors.As(err, &amb) {
		return ambiguousError{amb}
	}
	if err != nil {
		return err
	}
	n := d.Node
	if err := eligible(n, m); err != nil {
		return err
	}
	r := &rollout{mf: mf, path: path, m: m, retries: retries, out: out}
	p, err := r.send(n)
	if err != nil {
		r.record(n, fmt.Sprintf("push of %s failed: %v", m.Version, err))
		return err
	}
	if wait == 0 {
		return nil
	}
	res := r.await([]pending{p}, wait)[0]
	r.record(n, outcomeText(m.Version, res.err))
	return res.err
}

// eligible says why node n cannot take bundle m now: another board, offline,
// or it runs that version already (errAlreadyRuns).
func eligible(n registry.Node, m *bundle.Manifest) error {
	switch {
	case n.Board != m.Board:
		return fmt.Errorf("%s is a %s board; the bundle is for %s", label(n), n.Board, m.Board)
	case n.Version == m.Version:
		return fmt.Errorf("%s: %w %s", label(n), errAlreadyRuns, m.Version)
	case !n.Online:
		return fmt.Errorf("%s is offline (last seen %s)", label(n), n.LastSeen.Local().Format(time.DateTime))
	}
	return nil
}

var errAlreadyRuns = errors.New("already runs")

func outcomeText(version string, err error) string {
	if err != nil {
		return fmt.Sprintf("%s not installed: %v", version, err)
	}
	return "committed " + version
}

// updateFleet rolls a bundle out to the fleet in two stages, the canaries and
// then the rest, stopping when a canary does not commit.
func updateFleet(args []string) error {
	fs := newFlags("update fleet", "update fleet [--master HOST:PORT] [--token T] [--key master.key] [--canary N] [--wait D] X.sfu [NODE...]",
		"skyfleet update fleet --master 127.0.0.1:8080 --key master.key --canary 1 skyfleet-1.4.0-rpi3b.sfu")
	mf := addMasterFlags(fs, true)
	canaries := fs.Int("canary", 1, "how many nodes take the update first; the rest only once every one of them committed")
	wait := fs.Duration("wait", 20*time.Minute, "how long each stage may take to commit or roll back after its nodes took the bundle")
	retries := fs.Int("retries", 8, "how many times a transfer to a node that broke off is resumed from where it stopped, or a node that went quiet (rebooting into its trial and back) is asked again; the pauses grow from 5 s to 1 min, about 5 min in all")
	usage := fs.Usage
	fs.Usage = func() {
		usage()
		fmt.Fprint(fs.Output(), `
Without NODE arguments the rollout goes to every node the master knows whose
board is the bundle's, in name order; with them, to those nodes in that order.
The first N online nodes are the canaries: each gets the bundle through the
master's tunnel (as skyfleet exec reaches a node), boots it once on trial and
commits or rolls back on its own; their verdicts come back in their reports.
Only when every canary committed do the others get it. A canary that rolls
back stops the rollout: nothing more is sent, and the reason is printed and
logged on the master. Nodes that already run the version are left alone;
offline ones are listed and left for a later run.
`)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 1 {
		fs.Usage()
		return errors.New("name the bundle file (and, optionally, the nodes)")
	}
	if *canaries < 0 {
		return errors.New("--canary must be 0 or more")
	}
	path := fs.Arg(0)
	m, err := readManifest(path)
	if err != nil {
		return err
	}
	targets, err := rolloutTargets(mf, m, fs.Args()[1:])
	if err != nil {
		return err
	}
	out := rolloutOutput{w: stdout}
	r := &rollout{mf: mf, path: path, m: m, retries: *retries, out: out}
	var ready, offline []registry.Node
	for _, n := range targets {
		switch err := eligible(n, m); {
		case err == nil:
			ready = append(ready, n)
		case errors.Is(err, errAlreadyRuns):
			out.say("%s", err)
		case !n.Online:
			offline = append(offline, n)
			out.say("%s: left for a later run", err)
		default:
			return err
		}
	}
	if len(ready) == 0 {
		out.say("rollout of %s: no node to update", m.Version)
		return nil
	}
	k := min(*canaries, len(ready))
	stages := [][]registry.Node{ready[:k], ready[k:]}
	names := []string{"canary", "fleet"}
	out.say("rollout of %s (%s) to %d nodes: %d canaries, then %d more", m.Version, filepath.Base(path), len(ready), k, len(ready)-k)
	committed := 0
	for si, stage := range stages {
		if len(stage) == 0 {
			continue
		}
		var ps []pending
		var failed []result
		for _, n := range stage {
			out.say("%s %s: sending %s", names[si], label(n), m.Version)
			p, err := r.send(n)
			if err != nil {
				failed = append(failed, result{node: n, err: err})
				continue
			}
			ps = append(ps, p)
		}
		res := append(failed, r.await(ps, *wait)...)
		var bad []result
		for _, x := range res {
			r.record(x.node, fmt.Sprintf("rollout (%s): %s", names[si], outcomeText(m.Version, x.err)))
			if x.err != nil {
				out.say("%s %s: %v", names[si], label(x.node), x.err)
				bad = append(bad, x)
			} else {
				committed++
			}
		}
		if len(bad) == 0 {
			continue
		}
		var rest []string
		for _, later := range stages[si+1:] {
			for _, n := range later {
				rest = append(rest, label(n))
			}
		}
		if si == 0 && len(rest) > 0 {
			why := fmt.Sprintf("rollout of %s stopped: canary %s: %v; not sent to %s", m.Version, label(bad[0].node), bad[0].err, strings.Join(rest, ", "))
			r.record(bad[0].node, why)
			return errors.New(why)
		}
		return fmt.Errorf("rollout of %s: %d of %d nodes committed, %d did not (above)", m.Version, committed, len(ready), len(bad))
	}
	out.say("rollout of %s: all %d nodes committed%s", m.Version, committed, offlineNote(offline))
	return nil
}

func offlineNote(offline []registry.Node) string {
	if len(offline) == 0 {
		return ""
	}
	var l []string
	for _, n := range offline {
		l = append(l, label(n))
	}
	return fmt.Sprintf("; %d offline and not updated: %s", len(offline), strings.Join(l, ", "))
}

// rolloutTargets is the nodes a rollout goes to: those named, in that order,
// or every node of the bundle's board the master knows, in name order.
// Errors: the master cannot be asked, a named node is unknown or ambiguous,
// or a named node is another board.
func rolloutTargets(mf masterFlags, m *bundle.Manifest, named []string) ([]registry.Node, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := mf.client()
	if len(named) == 0 {
		all, err := c.Nodes(ctx)
		if err != nil {
			return nil, err
		}
		var out []registry.Node
		for _, n := range all {
			if n.Board == m.Board {
				out = append(out, n)
			}
		}
		sort.SliceStable(out, func(i, j int) bool {
			if out[i].Name != out[j].Name {
				return out[i].Name < out[j].Name
			}
			return out[i].Address < out[j].Address
		})
		if len(out) == 0 {
			return nil, fmt.Errorf("the master knows no %s node (see skyfleet nodes)", m.Board)
		}
		return out, nil
	}
	seen := map[string]bool{}
	var out []registry.Node
	for _, id := range named {
		d, err := c.Node(ctx, id)
		var amb *registry.AmbiguousNameError
		if errors.As(err, &amb) {
			return nil, ambiguousError{amb}
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", terminalSafe(id), err)
		}
		if d.Node.Board != m.Board {
			return nil, fmt.Errorf("%s is a %s board; the bundle is for %s", label(d.Node), d.Node.Board, m.Board)
		}
		if !seen[d.Node.PublicKey] {
			seen[d.Node.PublicKey] = true
			out = append(out, d.Node)
		}
	}
	return out, nil
}
