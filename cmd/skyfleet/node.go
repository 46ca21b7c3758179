package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/skyfleet/skyfleet/internal/fleetconf"
	"github.com/skyfleet/skyfleet/services/mesh"
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
		Ready: func(n *meshd.Node) {
			if n.Created {
				logf("created node key in %s", cfg.Node.Data)
			}
			fmt.Fprintf(stdout, "address %s\npublic_key %s\nstatus http://%s\n",
				n.Router.Address(), n.State().PublicKey, n.Status)
		},
	})
}

// cmdMesh talks to a running node's API: ping, route, links.
func cmdMesh(args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(os.Stderr, `talk to a running node's mesh API

Usage:
  skyfleet mesh ping  [--node HOST:PORT] [--count N] [--timeout D] ADDRESS
  skyfleet mesh route [--node HOST:PORT] [--json] ADDRESS
  skyfleet mesh links [--node HOST:PORT] [--json]
  skyfleet mesh send  [--node HOST:PORT] ADDRESS PORT [FILE]   (stdin without FILE)
  skyfleet mesh recv  [--node HOST:PORT] [--out FILE] [--timeout D] PORT

ADDRESS is a node address (as 'skyfleet node' prints) or its public key in hex.
ping exits 1 when the address is unreachable. send and recv carry a byte stream,
end-to-end encrypted and reliable, between two nodes: recv waits for one stream to
PORT and writes it out; send reports the bytes, time and SHA-256 it sent. --node defaults to 127.0.0.1:8080,
the [node] status address of 'skyfleet node' on a host.

Example:
  skyfleet mesh ping 2GgFvqoyk9RjwVzj8tqfcXVXB4orBwoc9qv
`)
		if len(args) == 0 {
			return exitError(2)
		}
		return nil
	}
	sub, rest := args[0], args[1:]
	fs := newFlags("mesh", "mesh "+sub+" [flags] [ADDRESS]", "")
	node := fs.String("node", "127.0.0.1:8080", "the node's status API `HOST:PORT`")
	asJSON := fs.Bool("json", false, "print the API's JSON")
	count := fs.Int("count", 1, "ping: number of echoes")
	out := fs.String("out", "-", "recv: write the stream to this `file` (- is stdout)")
	timeout := fs.Duration("timeout", 5*time.Second, "ping: wait this long for each answer (route setup included)")
	if err := fs.Parse(rest); err != nil {
		return err
	}
	base := "http://" + *node
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
			u := base + "/mesh/ping?addr=" + url.QueryEscape(addr) + "&timeout=" + timeout.String()
			code, err := apiCall(http.MethodPost, u, *timeout+5*time.Second, &res)
			if err != nil {
				return err
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
				time.Sleep(time.Second)
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
		var q mesh.RouteQuery
		var e struct {
			Error string `json:"error"`
		}
		raw, code, err := apiGet(base + "/mesh/route?addr=" + url.QueryEscape(fs.Arg(0)))
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
		printPath := func(label string, p *mesh.PathStatus) {
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
		raw, code, err := apiGet(base + "/mesh/links")
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("%s answered %d: %s", *node, code, raw)
		}
		if *asJSON {
			stdout.Write(raw)
			return nil
		}
		var doc struct {
			Address  string            `json:"address"`
			Links    []mesh.LinkStatus `json:"links"`
			Counters map[string]uint64 `json:"counters"`
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
		u := base + "/mesh/send?addr=" + url.QueryEscape(fs.Arg(0)) + "&port=" + url.QueryEscape(fs.Arg(1))
		resp, err := http.Post(u, "application/octet-stream", in)
		if err != nil {
			return fmt.Errorf("node API: %w", err)
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
		u := base + "/mesh/recv?port=" + url.QueryEscape(fs.Arg(0)) + "&timeout=" + timeout.String()
		resp, err := http.Get(u)
		if err != nil {
			return fmt.Errorf("node API: %w", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
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

func apiGet(u string) ([]byte, int, error) {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return nil, 0, fmt.Errorf("node API: %w (is 'skyfleet node' running there? see --node)", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return b, resp.StatusCode, err
}

func apiCall(method, u string, timeout time.Duration, v any) (int, error) {
	c := &http.Client{Timeout: timeout}
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, fmt.Errorf("node API: %w (is 'skyfleet node' running there? see --node)", err)
	}
	defer resp.Body.Close()
	return resp.StatusCode, json.NewDecoder(resp.Body).Decode(v)
}
