package hwsimtest

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// Radio is one hwsim phy moved into a network namespace of its own.
type Radio struct {
	Phy   string // e.g. "phy1"
	Iface string // its interface, e.g. "wlan1"
	NS    *Netns
}

// Radios moves the first n phys of the initial namespace into a new
// namespace each, closed when tb ends. A previous test's namespaces give
// their radios back asynchronously (the kernel's netns cleanup), so it waits
// up to timeout for n phys to be there.
func Radios(tb testing.TB, n int, timeout time.Duration) []Radio {
	tb.Helper()
	var phys []string
	if err := Poll(timeout, 50*time.Millisecond, func() (err error) {
		phys, err = Phys()
		if err == nil && len(phys) < n {
			err = fmt.Errorf("need %d radios, have %v", n, phys)
		}
		return err
	}); err != nil {
		tb.Fatal(err)
	}
	var rs []Radio
	for _, phy := range phys[:n] {
		ifs, err := Interfaces(phy)
		if err != nil || len(ifs) != 1 {
			tb.Fatalf("%s's interfaces: %v %v", phy, ifs, err)
		}
		ns, err := NewNetns()
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { ns.Close() })
		if err := ns.MovePhy(phy); err != nil {
			tb.Fatal(err)
		}
		rs = append(rs, Radio{Phy: phy, Iface: ifs[0], NS: ns})
	}
	return rs
}

// MustRun runs name with args in r's namespace and fails tb if it fails.
func (r Radio) MustRun(tb testing.TB, name string, args ...string) string {
	tb.Helper()
	out, err := r.NS.Run(name, args...)
	if err != nil {
		tb.Fatalf("%s: %v\n%s", r.Phy, err, out)
	}
	return out
}

// NodeEnv is the environment variable that carries a node's JSON arguments
// to the re-executed test binary (see StartNode and NodeMain).
const NodeEnv = "SKYFLEET_HWSIM_NODE"

// StartNode runs this test binary again inside ns, as a node: its TestMain
// calls NodeMain, which hands args (JSON-encoded) to the node function. The
// node's output is kept as a Daemon's; it is stopped (SIGTERM) and its
// output logged when tb ends.
func StartNode(tb testing.TB, name string, ns *Netns, args any) *Daemon {
	tb.Helper()
	b, err := json.Marshal(args)
	if err != nil {
		tb.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	os.Setenv(NodeEnv, string(b))
	d, err := ns.Start(self)
	os.Unsetenv(NodeEnv)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		d.Stop()
		tb.Logf("%s node's output:\n%s", name, d.Output())
	})
	return d
}

// NodeMain runs node when this process was started by StartNode, printing
// its error on a "NODE-RESULT" line, and exits; otherwise it returns. Call
// it first in TestMain. node decodes args itself.
func NodeMain(node func(args []byte) error) {
	a := os.Getenv(NodeEnv)
	if a == "" {
		return
	}
	res := struct{ Err string }{}
	if err := node([]byte(a)); err != nil {
		res.Err = err.Error()
	}
	b, _ := json.Marshal(res)
	fmt.Printf("NODE-RESULT %s\n", b)
	os.Exit(0)
}

// NodeResult waits up to timeout for d's NODE-RESULT line and returns the
// node's error text ("" for success).
func NodeResult(tb testing.TB, d *Daemon, timeout time.Duration) string {
	tb.Helper()
	l, err := d.WaitFor("NODE-RESULT ", timeout)
	if err != nil {
		tb.Fatal(err)
	}
	var res struct{ Err string }
	text := l.Text[strings.Index(l.Text, "NODE-RESULT ")+len("NODE-RESULT "):]
	if err := json.Unmarshal([]byte(text), &res); err != nil {
		tb.Fatalf("node result %q: %v", l.Text, err)
	}
	return res.Err
}
