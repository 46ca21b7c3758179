// Command impair relays UDP between endpoints and impairs it on the way: loss, delay,
// jitter, reordering, duplication and a rate limit, separately in each direction. The
// test machines have no sch_netem; tests put this relay between nodes instead.
//
// The relaying itself is package relay beside this file, which Go tests can also use
// directly. Run `impair -help` for the settings and examples.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/skyfleet/skyfleet/e2e/impair/relay"
)

const usage = `impair relays UDP between endpoints and impairs it: loss, delay, jitter,
reordering, duplication and a rate limit, separately in each direction.
It stands in for netem, which the test machines lack.

Usage:
  impair -link LISTEN=TARGET[,key=value...] [-link ...] [-seed N] [-stats ADDR]

Each -link listens on LISTEN. The first datagram from a client address C opens a
socket of C's own that sends to TARGET; TARGET's replies to that socket go back to
C from LISTEN. So point the client at LISTEN instead of TARGET, and TARGET sees one
peer per client. "ab" is the client-to-target direction, "ba" the replies. Peers
that both start conversations need one link each way.

Settings (a plain key sets both directions; key.ab or key.ba sets one, and wins):
  loss=P      drop probability: 0.05 or 5%
  delay=D     delay added to every datagram, a Go duration (20ms); a floor, never less
  jitter=D    extra delay drawn from [0,D] per datagram; order is kept
  reorder=P   probability that a datagram is held back so later ones overtake it
  hold=D      how long such a datagram is held back (default delay+4*jitter, >= 10ms)
  dup=P       probability that a datagram is sent twice
  rate=B      bytes per second, k/M/G = x1000 (125k is 1 Mbit/s); 0 = unlimited
  queue=B     bytes that may wait for rate; more are dropped (default 1 s worth, >= 64k)
  idle=D      forget a client silent this long (default 2m; whole link only)

Flags:
  -link SPEC  a link as above; repeat for more links
  -seed N     seed of the random choices (default 1); link i uses N+i, so the same
              traffic in the same order meets the same fate
  -stats ADDR serve the counters as JSON on ADDR (host:port, port 0 picks one):
                GET  /stats                       every link's counters and settings
                POST /params?link=I&set=SETTINGS  change link I's settings (all links
                                                  without link=); others stay as they are

It prints one line per link, "impair: stats http://..." with -stats, then
"impair: ready" once everything listens. SIGINT or SIGTERM stops it; the final
counters go to stderr.

Examples:
  # a node's API on 7000 behind 5% loss and 20-22ms of delay each way
  impair -link 127.0.0.1:7001=127.0.0.1:7000,loss=0.05,delay=20ms,jitter=2ms

  # lossy uplink, clean replies
  impair -link 127.0.0.1:7001=127.0.0.1:7000,loss.ab=30%

  # a 1 Mbit/s uplink with a 64 KB buffer and 50ms of delay
  impair -link 127.0.0.1:7001=127.0.0.1:7000,rate.ab=125k,queue.ab=64k,delay=50ms

  # two links of a mesh in a namespace, reproducible, with counters
  impair -seed 7 -stats 127.0.0.1:9999 \
    -link 10.77.1.1:7001=10.77.1.2:7000,reorder=0.02 \
    -link 10.77.2.1:7001=10.77.2.2:7000,dup=0.01
  curl -s 127.0.0.1:9999/stats

  # partition link 0, then heal it
  curl -s -X POST '127.0.0.1:9999/params?link=0&set=loss=1'
  curl -s -X POST '127.0.0.1:9999/params?link=0&set=loss=0'
`

// linkFlags collects repeated -link flags.
type linkFlags []string

func (l *linkFlags) String() string     { return strings.Join(*l, " ") }
func (l *linkFlags) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run is the command with its arguments and output; it returns the exit code when ctx
// is done or on a usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" || a == "help" {
			fmt.Fprint(stdout, usage)
			return 0
		}
	}
	fs := flag.NewFlagSet("impair", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: impair -link LISTEN=TARGET[,key=value...] [-link ...] [-seed N] [-stats ADDR]; impair -help explains")
	}
	var links linkFlags
	fs.Var(&links, "link", "LISTEN=TARGET[,key=value...]; repeatable")
	seed := fs.Int64("seed", 1, "seed of the random choices; link i uses seed+i")
	statsAddr := fs.String("stats", "", "serve counters as JSON on this host:port")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "impair: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	if len(links) == 0 {
		fmt.Fprintln(stderr, "impair: no -link given")
		fs.Usage()
		return 2
	}

	var relays []*relay.Relay
	defer func() {
		for _, r := range relays {
			r.Close()
		}
	}()
	for i, spec := range links {
		listen, target, p, err := relay.ParseLink(spec)
		if err != nil {
			fmt.Fprintf(stderr, "impair: %v\n", err)
			return 2
		}
		r, err := relay.Start(listen, target, p, *seed+int64(i))
		if err != nil {
			fmt.Fprintf(stderr, "impair: link %d: %v\n", i, err)
			return 1
		}
		relays = append(relays, r)
		fmt.Fprintf(stdout, "impair: link %d: %s -> %s %v\n", i, r.Addr(), r.Target(), p)
	}

	if *statsAddr != "" {
		ln, err := net.Listen("tcp", *statsAddr)
		if err != nil {
			fmt.Fprintf(stderr, "impair: stats: %v\n", err)
			return 1
		}
		srv := &http.Server{Handler: statsHandler(relays, *seed), ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		fmt.Fprintf(stdout, "impair: stats http://%s/stats\n", ln.Addr())
	}
	fmt.Fprintln(stdout, "impair: ready")

	<-ctx.Done()
	for i, r := range relays {
		r.Close()
		s := r.Stats()
		fmt.Fprintf(stderr, "impair: link %d: ab %s; ba %s\n", i, summary(s.AB), summary(s.BA))
	}
	return 0
}

func summary(d relay.DirStats) string {
	return fmt.Sprintf("received %d forwarded %d dropped %d queue-dropped %d duplicated %d reordered %d errors %d",
		d.Received, d.Forwarded, d.Dropped, d.QueueDropped, d.Duplicated, d.Reordered, d.Errors)
}

// statsReply is the JSON of GET /stats and POST /params.
type statsReply struct {
	Seed  int64         `json:"seed"`
	Links []relay.Stats `json:"links"`
}

func statsHandler(relays []*relay.Relay, seed int64) http.Handler {
	reply := func(w http.ResponseWriter) {
		out := statsReply{Seed: seed}
		for _, r := range relays {
			out.Links = append(out.Links, r.Stats())
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(out)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) { reply(w) })
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { reply(w) })
	mux.HandleFunc("POST /params", func(w http.ResponseWriter, req *http.Request) {
		set := req.FormValue("set")
		targets := relays
		if l := req.FormValue("link"); l != "" {
			i, err := strconv.Atoi(l)
			if err != nil || i < 0 || i >= len(relays) {
				http.Error(w, fmt.Sprintf("link %q: want 0..%d", l, len(relays)-1), http.StatusBadRequest)
				return
			}
			targets = relays[i : i+1]
		}
		var next []relay.Params
		for _, r := range targets {
			p, err := r.Params().With(set)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			next = append(next, p)
		}
		for i, r := range targets {
			if err := r.SetParams(next[i]); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		}
		reply(w)
	})
	return mux
}
