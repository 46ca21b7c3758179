package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/skyfleet/skyfleet/internal/fleetconf"
	"github.com/skyfleet/skyfleet/services/control/registry"
	"github.com/skyfleet/skyfleet/services/control/remote"
	"github.com/skyfleet/skyfleet/services/identity"
	"github.com/skyfleet/skyfleet/services/master"
)

// cmdMaster runs the fleet master: a mesh node with the master key, the registry
// and the dashboard.
func cmdMaster(args []string) error {
	fs := newFlags("master", "master --key master.key --config fleet.toml",
		"skyfleet keygen -o master.key && skyfleet master --key master.key --config fleet.toml")
	keyFile := fs.String("key", envOr("SKYFLEET_MASTER_KEY", "master.key"), "the master's secret key `file` (env SKYFLEET_MASTER_KEY)")
	config := fs.String("config", "fleet.toml", "`fleet.toml`: [node] listen (mesh), status (dashboard, loopback by default), data (registry); [master] report_interval")
	var hosts []string
	fs.Func("allow-host", "a further host `name` the dashboard may be reached by, e.g. master.lan (repeatable; IP addresses, localhost and this machine's name always work; others are refused against DNS rebinding)", func(v string) error {
		for _, h := range strings.Split(v, ",") {
			if h = strings.TrimSpace(h); h != "" {
				if strings.ContainsAny(h, ":/ ") {
					return fmt.Errorf("%q: give a host name without port or scheme", h)
				}
				hosts = append(hosts, h)
			}
		}
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return err
	}
	key, err := identity.LoadKeyFile(*keyFile)
	if err != nil {
		return fmt.Errorf("%w (make one with: skyfleet keygen -o %s)", err, *keyFile)
	}
	cfg, problems := fleetconf.Load(*config, false)
	for _, p := range problems {
		fmt.Fprintf(os.Stderr, "%s: %s\n", *config, p)
	}
	logf := func(format string, a ...any) {
		fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05.000 ")+format+"\n", a...)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return master.Run(ctx, master.Options{
		Config: cfg, Problems: problems, Key: key, Version: version, Logf: logf, AllowedHosts: hosts,
		Ready: func(m *master.Master) {
			fmt.Fprintf(stdout, "master %s\npublic_key %s\ndashboard %s\ntls_pin %s\n",
				m.Node.Router.Address(), key.PublicKeyHex(), m.URL, m.TLSPin)
		},
	})
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// masterFlags are the flags of the commands that talk to a master.
type masterFlags struct {
	addr, token, pin, key *string
}

func addMasterFlags(fs *flag.FlagSet, withKey bool) masterFlags {
	m := masterFlags{
		addr:  fs.String("master", envOr("SKYFLEET_MASTER", fleetconf.HostStatus), "the master's dashboard `host:port` (env SKYFLEET_MASTER)"),
		token: fs.String("token", os.Getenv("SKYFLEET_TOKEN"), "API `token` (master.token in the master's data directory; env SKYFLEET_TOKEN); not needed on the master's host"),
	}
	m.pin = addPinFlag(fs, withKey)
	if withKey {
		m.key = fs.String("key", envOr("SKYFLEET_MASTER_KEY", "master.key"), "the master's secret key `file`: nodes accept only it (env SKYFLEET_MASTER_KEY)")
	}
	return m
}

// addPinFlag adds --pin, the master's TLS pin.
func addPinFlag(fs *flag.FlagSet, withKey bool) *string {
	usage := "the master's TLS `pin` (tls_pin, printed by `skyfleet master`; env SKYFLEET_MASTER_PIN): needed to reach a master on another host"
	if withKey {
		usage += ", unless --key is the master's key, which gives the pin"
	}
	return fs.String("pin", os.Getenv("SKYFLEET_MASTER_PIN"), usage)
}

// client is the API client of the master the flags name. Off loopback it
// speaks TLS: with --pin, or with the pin the master key gives (a key file
// that cannot be read leaves the pin unset, and the client's error says so).
func (m masterFlags) client() *master.Client {
	c := &master.Client{Addr: *m.addr, Token: *m.token}
	if m.pin != nil {
		c.Pin = *m.pin
	}
	if c.Pin == "" && m.key != nil && *m.key != "" {
		if !master.OnLoopback(c.Addr) {
			if k, err := identity.LoadKeyFile(*m.key); err == nil {
				c.Pin, _ = master.TLSPin(k)
				if m.pin != nil {
					*m.pin = c.Pin // once per command
				}
			}
		}
	}
	return c
}

// cmdNodes lists the fleet from the master's registry.
func cmdNodes(args []string) error {
	fs := newFlags("nodes", "nodes [--master HOST:PORT] [--json]", "skyfleet nodes --master 127.0.0.1:8080 --json")
	mf := addMasterFlags(fs, false)
	asJSON := fs.Bool("json", false, "print a JSON array of nodes (address, online, last_seen, version, ...)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	nodes, err := mf.client().Nodes(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(nodes)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tADDRESS\tSTATE\tLAST SEEN\tVERSION\tBOARD\tSLOT\tLINKS")
	online, dup := 0, 0
	for _, n := range nodes {
		state := "offline"
		if n.Online {
			state = "online"
			online++
		}
		name := orDash(terminalSafe(n.Name))
		if n.DuplicateName {
			name += " (!)"
			dup++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s ago\t%s\t%s\t%s\t%d\n", name, n.Address, state,
			time.Since(n.LastSeen).Round(time.Second), orDash(terminalSafe(n.Version)), orDash(terminalSafe(n.Board)), orDash(terminalSafe(n.Slot)), n.LinksUp)
	}
	tw.Flush()
	fmt.Fprintf(stdout, "%d nodes, %d online\n", len(nodes), online)
	if dup > 0 {
		fmt.Fprintf(stdout, "(!) %d nodes report a name another node reports too: reach them by address\n", dup)
	}
	return nil
}

// terminalSafe escapes the characters of s a terminal would act on (control
// characters, line separators, bidirectional overrides): names and versions
// come from the nodes.
func terminalSafe(s string) string {
	if strings.IndexFunc(s, unsafeRune) < 0 {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

func unsafeRune(r rune) bool {
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp) || r == '\uFFFD'
}

// logText is s as the master's logs take it: quoted if it holds a character
// the master refuses there (a newline in a command, say).
func logText(s string) string {
	if strings.IndexFunc(s, unsafeRune) < 0 {
		return s
	}
	return strconv.Quote(s)
}

// ambiguousError is a name several nodes report, as the CLI shows it: the
// candidates, and what to type instead.
type ambiguousError struct{ *registry.AmbiguousNameError }

func (e ambiguousError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d nodes report the name %q, so it names none of them (names are labels any node can claim).\nName the node by its address (or public key):\n\n",
		len(e.Candidates), terminalSafe(e.Name))
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  ADDRESS\tNAME\tSTATE\tLAST SEEN")
	for _, c := range e.Candidates {
		state := "offline"
		if c.Online {
			state = "online"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", terminalSafe(c.Address), terminalSafe(c.Name), state, c.LastSeen.Local().Format(time.DateTime))
	}
	tw.Flush()
	return strings.TrimRight(b.String(), "\n")
}

func (e ambiguousError) Unwrap() error { return e.AmbiguousNameError }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// remoteSession opens an SSH session to node through the master's tunnel, logged
// on the master as action/detail.
func remoteSession(mf masterFlags, node, action, detail string) (*remote.Client, error) {
	key, err := identity.LoadKeyFile(*mf.key)
	if err != nil {
		return nil, fmt.Errorf("%w (the master's key signs the login: --key)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := mf.client().Tunnel(ctx, node, action, detail)
	var amb *registry.AmbiguousNameError
	if errors.As(err, &amb) {
		return nil, ambiguousError{amb}
	}
	if err != nil {
		return nil, err
	}
	if err := matchesNode(node, conn.NodeKey); err != nil {
		conn.Close()
		return nil, err
	}
	// The node proves inside SSH that it holds conn.NodeKey, so whatever sits
	// between here and the node (the master, the network to it) can relay the
	// session but not read or take it over.
	c, err := remote.Dial(conn, key.PrivateKey(), "root", conn.NodeKey)
	if err != nil {
		conn.Close()
		logResult(mf, node, action, fmt.Sprintf("%s: login failed: %v", detail, err))
		return nil, fmt.Errorf("ssh to %s: %w", node, err)
	}
	return c, nil
}

// matchesNode checks the key the master says it connected to against what the
// operator typed: a public key must be that key, an address must be its
// address. A name can only be resolved by the master's registry.
func matchesNode(node string, key []byte) error {
	want := ""
	if b, err := hex.DecodeString(node); err == nil && len(b) == 33 {
		if !bytes.Equal(b, key) {
			want = node
		}
	} else if a, err := identity.ParseAddress(node); err == nil {
		if got, err := identity.AddressFromPublicKey(key); err != nil || got != a {
			want = node
		}
	}
	if want != "" {
		return fmt.Errorf("the master connected to node %x, not %s", key, want)
	}
	return nil
}

// logResult tells the master how a remote action ended, for its action log.
func logResult(mf masterFlags, node, action, detail string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := mf.client().Log(ctx, registry.Action{Node: logText(node), Action: action, Detail: logText(detail)}); err != nil {
		fmt.Fprintf(os.Stderr, "skyfleet: could not log the result on the master: %v\n", err)
	}
}

// cmdSSH opens an interactive shell on a node.
func cmdSSH(args []string) error {
	fs := newFlags("ssh", "ssh [--master HOST:PORT] [--key master.key] NODE",
		"skyfleet ssh pi-kitchen        # NODE is a name, an address or a public key")
	mf := addMasterFlags(fs, true)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("name one NODE")
	}
	node := fs.Arg(0)
	c, err := remoteSession(mf, node, "ssh", "interactive shell")
	if err != nil {
		return err
	}
	defer c.Close()
	status, err := c.Shell(os.Stdin, os.Stdout)
	logResult(mf, node, "ssh", fmt.Sprintf("shell ended: exit %d", status))
	if err != nil {
		return err
	}
	if status != 0 {
		return exitError(status)
	}
	return nil
}

// cmdExec runs one command on a node, exiting with its status.
func cmdExec(args []string) error {
	fs := newFlags("exec", "exec [--master HOST:PORT] [--key master.key] NODE -- CMD [ARGS...]",
		"skyfleet exec pi-kitchen -- uname -a")
	mf := addMasterFlags(fs, true)
	if err := fs.Parse(args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) > 1 && rest[1] == "--" {
		rest = append(rest[:1], rest[2:]...)
	}
	if len(rest) < 2 {
		fs.Usage()
		return errors.New("want NODE -- CMD")
	}
	node, cmd := rest[0], strings.Join(rest[1:], " ")
	c, err := remoteSession(mf, node, "exec", strconv.Quote(cmd))
	if err != nil {
		return err
	}
	defer c.Close()
	status, err := c.Exec(cmd, os.Stdin, os.Stdout, os.Stderr)
	if err != nil {
		logResult(mf, node, "exec", fmt.Sprintf("%q: %v", cmd, err))
		return err
	}
	logResult(mf, node, "exec", fmt.Sprintf("%q: exit %d", cmd, status))
	if status != 0 {
		return exitError(status)
	}
	return nil
}

// cmdCp copies a file to or from a node.
func cmdCp(args []string) error {
	fs := newFlags("cp", "cp [--master HOST:PORT] [--key master.key] SRC DST   (one of them NODE:/path)",
		"skyfleet cp pi-kitchen:/perm/skyfleet/mesh.clock .   or   skyfleet cp fleet.toml pi-kitchen:/boot/fleet.toml")
	mf := addMasterFlags(fs, true)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return errors.New("want SRC and DST")
	}
	src, dst := fs.Arg(0), fs.Arg(1)
	sn, sp, sRemote := splitRemote(src)
	dn, dp, dRemote := splitRemote(dst)
	switch {
	case sRemote == dRemote:
		return errors.New("exactly one of SRC and DST must be NODE:/path")
	case sRemote:
		if fi, err := os.Stat(dst); err == nil && fi.IsDir() {
			dst = filepath.Join(dst, filepath.Base(sp))
		}
		c, err := remoteSession(mf, sn, "cp", "get "+logText(sp))
		if err != nil {
			return err
		}
		defer c.Close()
		// GetFile writes dst durably with mode 0600 from the first byte: a
		// copied node.key is never readable by others, not even while it arrives.
		n, err := c.GetFile(sp, dst)
		if err != nil {
			logResult(mf, sn, "cp", fmt.Sprintf("get %s failed: %v", sp, err))
			return err
		}
		logResult(mf, sn, "cp", fmt.Sprintf("get %s: %d bytes", sp, n))
		fmt.Fprintf(stdout, "%s:%s -> %s (mode 0600)\n", sn, sp, dst)
	default:
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if strings.HasSuffix(dp, "/") {
			dp += filepath.Base(src)
		}
		c, err := remoteSession(mf, dn, "cp", "put "+logText(dp))
		if err != nil {
			return err
		}
		defer c.Close()
		if err := c.Put(f, dp, fi.Mode().Perm()); err != nil {
			logResult(mf, dn, "cp", fmt.Sprintf("put %s failed: %v", dp, err))
			return err
		}
		logResult(mf, dn, "cp", fmt.Sprintf("put %s: %d bytes", dp, fi.Size()))
		fmt.Fprintf(stdout, "%s -> %s:%s\n", src, dn, dp)
	}
	return nil
}

// splitRemote splits NODE:/path; a path with a slash before any colon is local.
func splitRemote(s string) (node, path string, ok bool) {
	i := strings.IndexByte(s, ':')
	if i <= 0 || strings.ContainsRune(s[:i], '/') {
		return "", s, false
	}
	return s[:i], s[i+1:], true
}
