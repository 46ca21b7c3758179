package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/skyfleet/skyfleet/internal/apiauth"
	"github.com/skyfleet/skyfleet/internal/fleetconf"
	"github.com/skyfleet/skyfleet/services/control/remote"
	"github.com/skyfleet/skyfleet/services/identity"
	"github.com/skyfleet/skyfleet/services/mesh/forward"
	"github.com/skyfleet/skyfleet/services/meshd"
)

// cmdNode runs a mesh node on this host from a fleet.toml, the same code as on a Pi.
func cmdNode(args []string) error {
	fs := newFlags("node", "node --config fleet.toml",
		"skyfleet node --config fleet.toml   # then: skyfleet mesh links")
	config := fs.String("config", "fleet.toml", "the node's `fleet.toml`: [node] listen/status/data, [network] psk/peers/relays/lan_discovery")
	quiet := fs.Bool("quiet", false, "log only errors")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, problems := fleetconf.Load(*config, false)
	for _, p := range problems {
		fmt.Fprintf(os.Stderr, "%s: %s\n", *config, p)
	}
	if err := os.MkdirAll(cfg.Node.Data, 0o700); err != nil {
		return fmt.Errorf("[node] data: %w", err)
	}
	logf := func(format string, a ...any) {
		fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05.000 ")+format+"\n", a...)
	}
	if *quiet {
		logf = func(format string, a ...any) {
			if strings.Contains(format, "WARNING") || strings.Contains(format, "error") {
				fmt.Fprintf(os.Stderr, format+"\n", a...)
			}
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return meshd.Run(ctx, meshd.Options{
		Config:   cfg,
		Problems: problems,
		Version:  version,
		Logf:     logf,
		// A host keeps real time (a real-time clock and its own time daemon),
		// unlike a Pi: its clock is a source for the node and, through its
		// announcements, for the mesh.
		TrustSystemClock: true,
		Ready: func(n *meshd.Node) {
			if n.Created {
				logf("created node key in %s", cfg.Node.Data)
			}
			fmt.Fprintf(stdout, "address %s\npublic_key %s\nstatus http://%s\napi_token %s\n",
				n.Address(), n.State().PublicKey, n.Status, filepath.Join(cfg.Node.Data, apiauth.TokenFile))
		},
	})
}

// cmdMesh talks to a running node's API: ping, route, links, send, recv.
func cmdMesh(args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(os.Stderr, `talk to a running node's mesh API

Usage:
  skyfleet mesh ping  [flags] [--count N] [--timeout D] ADDRESS
  skyfleet mesh route [flags] [--json] ADDRESS
  skyfleet mesh links [flags] [--json]
  skyfleet mesh send  [flags] ADDRESS PORT [FILE]   (stdin without FILE)
  skyfleet mesh recv  [flags] [--out FILE] [--timeout D] PORT

ADDRESS is a node address (as 'skyfleet node' prints) or its public key in hex.
ping exits 1 when the address is unreachable. send and recv carry a byte stream,
end-to-end encrypted and reliable, between two nodes: recv waits for one stream to
PORT and writes it out; send reports the bytes, time and SHA-256 it sent.

Which node, and the credential (every /mesh/ path needs one; only /status is public):
  --config fleet.toml   the node's own fleet.toml: its [node] status address and the
                        API token in its [node] data directory (on the node's machine)
  --node HOST:PORT      the node's status API (default 127.0.0.1:8080, or from --config)
  --token-file FILE     the node's API token, <data>/api.token (env SKYFLEET_NODE_TOKEN
                        holds the token itself); default ./api.token when it exists
  --key master.key      sign each request with the fleet master's key instead: any
                        node whose fleet.toml names that master accepts it, from anywhere

Examples:
  skyfleet mesh ping --config a/fleet.toml 2GgFvqoyk9RjwVzj8tqfcXVXB4orBwoc9qv
  skyfleet mesh links --node 192.0.2.7:80 --key master.key
`)
		if len(args) == 0 {
			return exitError(2)
		}
		return nil
	}
	sub, rest := args[0], args[1:]
	fs := newFlags("mesh", "mesh "+sub+" [flags] [ADDRESS]", "")
	node := fs.String("node", "", "the node's status API `HOST:PORT` (default 127.0.0.1:8080, or [node] status of --config)")
	config := fs.String("config", "", "the node's `fleet.toml`: its status address and API token")
	tokenFile := fs.String("token-file", "", "the node's API token `file` (<data>/api.token)")
	keyFile := fs.String("key", "", "the fleet master's key `file`: sign requests with it")
	asJSON := fs.Bool("json", false, "print the API's JSON")
	count := fs.Int("count", 1, "ping: number of echoes")
	out := fs.String("out", "-", "recv: write the stream to this `file` (- is stdout)")
	timeout := fs.Duration("timeout", 5*time.Second, "ping: wait this long for each answer (route setup included); recv: for the stream")
	if err := fs.Parse(rest); err != nil {
		return err
	}
	c, err := newNodeClient(*node, *config, *tokenFile, *keyFile)
	if err != nil {
		return err
	}
	switch sub {
	case "ping":
		if fs.NArg() != 1 {
			return fmt.Errorf("ping needs one ADDRESS")
		}
		addr := fs.Arg(0)
		lost := 0
		for i := 0; i < *count; i++ {
			var res struct {
				RTT   float64  `json:"rtt_ms"`
				Setup float64  `json:"setup_ms"`
				Hops  int      `json:"hops"`
				Path  []string `json:"path"`
				Error string   `json:"error"`
			}
			path := "/mesh/ping?addr=" + url.QueryEscape(addr) + "&timeout=" + timeout.String()
			raw, code, err := c.call(http.MethodPost, path, nil, *timeout+5*time.Second)
			if err != nil {
				return err
			}
			if err := json.Unmarshal(raw, &res); err != nil {
				return fmt.Errorf("node API: %w", err)
			}
			if code != http.StatusOK {
				fmt.Fprintf(stdout, "%s: unreachable: %s\n", addr, res.Error)
				lost++
				continue
			}
			setup := ""
			if res.Setup > 0 {
				setup = fmt.Sprintf(" (route set up in %.1f ms)", res.Setup)
			}
			fmt.Fprintf(stdout, "%s: rtt %.2f ms over %d hops%s\n", addr, res.RTT, res.Hops, setup)
			if i+1 < *count {
				time.Sleep(time.Second) // ping's interval, as ping(8)
			}
		}
		if lost > 0 {
			return exitError(1)
		}
		return nil
	case "route":
		if fs.NArg() != 1 {
			return fmt.Errorf("route needs one ADDRESS")
		}
		var q forward.RouteQuery
		var e struct {
			Error string `json:"error"`
		}
		raw, code, err := c.call(http.MethodGet, "/mesh/route?addr="+url.QueryEscape(fs.Arg(0)), nil, 10*time.Second)
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			json.Unmarshal(raw, &e)
			fmt.Fprintf(stdout, "%s: no route: %s\n", fs.Arg(0), e.Error)
			return exitError(1)
		}
		if *asJSON {
			stdout.Write(raw)
			return nil
		}
		if err := json.Unmarshal(raw, &q); err != nil {
			return err
		}
		printPath := func(label string, p *forward.PathStatus) {
			if p == nil {
				return
			}
			fmt.Fprintf(stdout, "%-12s %d hops", label, p.Hops)
			if p.LatencyMs > 0 {
				fmt.Fprintf(stdout, ", %.2f ms one way", p.LatencyMs)
			}
			fmt.Fprintf(stdout, "\n  %s\n", strings.Join(p.Path, "\n  -> "))
		}
		printPath("by latency", q.ByLatency)
		printPath("by hops", q.ByHops)
		for i := range q.Disjoint {
			printPath(fmt.Sprintf("disjoint %d", i+1), &q.Disjoint[i])
		}
		for _, a := range q.Active {
			fmt.Fprintf(stdout, "active route %d: %s, %d hops, set up in %.1f ms, %d packets\n", a.ID, a.State, a.Hops, a.SetupMs, a.Packets)
		}
		return nil
	case "links":
		raw, code, err := c.call(http.MethodGet, "/mesh/links", nil, 10*time.Second)
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("%s answered %d: %s", c.host, code, raw)
		}
		if *asJSON {
			stdout.Write(raw)
			return nil
		}
		var doc struct {
			Address  string               `json:"address"`
			Links    []forward.LinkStatus `json:"links"`
			Counters map[string]uint64    `json:"counters"`
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "node %s, %d links\n", doc.Address, len(doc.Links))
		tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "NEIGHBOUR\tSTATE\tENDPOINT\tRTT ms\tLOSS\tTX pkts\tRX pkts\tTX B/s\tRX B/s")
		for _, l := range doc.Links {
			state := "down"
			if l.Up {
				state = "up"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%.2f\t%.0f%%\t%d\t%d\t%.0f\t%.0f\n", l.Address, state, l.Endpoint,
				l.RTTms, 100*l.Loss, l.TxPackets, l.RxPackets, l.TxBps, l.RxBps)
		}
		return tw.Flush()
	case "send":
		if fs.NArg() < 2 || fs.NArg() > 3 {
			return fmt.Errorf("send needs ADDRESS PORT [FILE]")
		}
		var in io.Reader = os.Stdin
		if fs.NArg() == 3 && fs.Arg(2) != "-" {
			f, err := os.Open(fs.Arg(2))
			if err != nil {
				return err
			}
			defer f.Close()
			in = f
		}
		path := "/mesh/send?addr=" + url.QueryEscape(fs.Arg(0)) + "&port=" + url.QueryEscape(fs.Arg(1))
		resp, err := c.do(http.MethodPost, path, in, 0)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var res struct {
			Bytes   int64   `json:"bytes"`
			Seconds float64 `json:"seconds"`
			SHA256  string  `json:"sha256"`
			Error   string  `json:"error"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
			return fmt.Errorf("node API: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("send failed after %d bytes: %s", res.Bytes, res.Error)
		}
		rate := 0.0
		if res.Seconds > 0 {
			rate = float64(res.Bytes) / res.Seconds / 1e6
		}
		fmt.Fprintf(stdout, "sent %d bytes in %.2f s (%.2f MB/s) sha256 %s\n", res.Bytes, res.Seconds, rate, res.SHA256)
		return nil
	case "recv":
		if fs.NArg() != 1 {
			return fmt.Errorf("recv needs PORT")
		}
		path := "/mesh/recv?port=" + url.QueryEscape(fs.Arg(0)) + "&timeout=" + timeout.String()
		resp, err := c.do(http.MethodGet, path, nil, 0)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			return fmt.Errorf("recv: %s", strings.TrimSpace(string(b)))
		}
		var w io.Writer = stdout
		if *out != "-" {
			f, err := os.Create(*out)
			if err != nil {
				return err
			}
			defer f.Close()
			w = f
		}
		n, err := io.Copy(w, resp.Body)
		fmt.Fprintf(os.Stderr, "received %d bytes from %s\n", n, resp.Header.Get("X-Skyfleet-From"))
		return err
	}
	return fmt.Errorf("unknown mesh command %q (ping, route, links, send, recv)", sub)
}

// nodeClient calls one node's API with a credential.
type nodeClient struct {
	host string // HOST:PORT, or the node as named to the master with dial
	cred apiauth.Credential
	// how says where the credential came from, for a refusal's message.
	how string
	// dial, if set, opens each connection to the node's API (through the
	// master's tunnel: remote.Client.DialAPI) instead of dialing host.
	dial func() (net.Conn, error)
}

// httpClient is an HTTP client for the node's API with timeout (0: none), and
// the host its URLs name.
func (c *nodeClient) httpClient(timeout time.Duration) (*http.Client, string) {
	if c.dial == nil {
		return &http.Client{Timeout: timeout}, c.host
	}
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		DialContext:       func(context.Context, string, string) (net.Conn, error) { return c.dial() },
		DisableKeepAlives: true, // a forward per request: nothing idles on the node
	}}, remote.APIHost
}

// newNodeClient picks the node and the credential from the flags: --key (the
// master's signature) first, then $SKYFLEET_NODE_TOKEN, --token-file, the token
// in --config's data directory, ./api.token; with none the node answers its
// public paths only. Errors: a named file cannot be read.
func newNodeClient(node, config, tokenFile, keyFile string) (*nodeClient, error) {
	c := &nodeClient{host: node}
	var dataDir string
	if config != "" {
		cfg, problems := fleetconf.Load(config, false)
		if fleetconf.FailClosed(problems) {
			return nil, fmt.Errorf("%s has errors (run 'skyfleet node --config %s' to see them)", config, config)
		}
		if c.host == "" {
			c.host = cfg.Node.Status
		}
		dataDir = cfg.Node.Data
	}
	if c.host == "" {
		c.host = fleetconf.HostStatus
	}
	switch {
	case keyFile != "":
		k, err := identity.LoadKeyFile(keyFile)
		if err != nil {
			return nil, fmt.Errorf("--key: %w", err)
		}
		c.cred, c.how = apiauth.MasterKey{Key: k.PrivateKey()}, "the master key in "+keyFile
	case os.Getenv("SKYFLEET_NODE_TOKEN") != "":
		c.cred, c.how = apiauth.Token(strings.TrimSpace(os.Getenv("SKYFLEET_NODE_TOKEN"))), "$SKYFLEET_NODE_TOKEN"
	case tokenFile != "":
		t, err := apiauth.ReadToken(tokenFile)
		if err != nil {
			return nil, fmt.Errorf("--token-file: %w", err)
		}
		c.cred, c.how = apiauth.Token(t), "the token in "+tokenFile
	default:
		for _, p := range []string{filepath.Join(dataDir, apiauth.TokenFile), apiauth.TokenFile} {
			if dataDir == "" && p != apiauth.TokenFile {
				continue
			}
			if t, err := apiauth.ReadToken(p); err == nil {
				c.cred, c.how = apiauth.Token(t), "the token in "+p
				break
			}
		}
	}
	return c, nil
}

// do sends one request (timeout 0: none, for transfers) with the credential.
func (c *nodeClient) do(method, path string, body io.Reader, timeout time.Duration) (*http.Response, error) {
	hc, urlHost := c.httpClient(timeout)
	req, err := http.NewRequest(method, "http://"+urlHost+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	if c.cred != nil {
		ac, _ := c.httpClient(10 * time.Second)
		if err := c.cred.Authorize(ac, req); err != nil {
			return nil, fmt.Errorf("node API: %w (is 'skyfleet node' running there? see --node)", err)
		}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("node API: %w (is 'skyfleet node' running there? see --node)", err)
	}
	if resp.StatusCode == http.StatusUnauthorized {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		var e struct {
			Error string `json:"error"`
		}
		json.Unmarshal(b, &e)
		if c.cred == nil {
			return nil, fmt.Errorf("%s needs a credential: give --config with the node's fleet.toml, --token-file DATA/api.token, or --key master.key (%s)", c.host, e.Error)
		}
		return nil, fmt.Errorf("%s refused %s: %s", c.host, c.how, e.Error)
	}
	return resp, nil
}

// call is do for small JSON answers: it returns the body and the status code.
func (c *nodeClient) call(method, path string, body io.Reader, timeout time.Duration) ([]byte, int, error) {
	resp, err := c.do(method, path, body, timeout)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	return b, resp.StatusCode, err
}
