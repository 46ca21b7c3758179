package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"time"

	"github.com/skyfleet/skyfleet/internal/apiauth"
	"github.com/skyfleet/skyfleet/internal/fleetconf"
	"github.com/skyfleet/skyfleet/services/mesh"
	"github.com/skyfleet/skyfleet/services/meshd"
	"github.com/skyfleet/skyfleet/services/msg/web"
)

// unixClient talks HTTP to PID 1 over its Unix socket.
var unixClient = &http.Client{Timeout: 10 * time.Second, Transport: unixTransport(initSocket)}

// unixTransport is an HTTP transport whose every connection goes to the Unix
// socket at path (PID 1's or the mesh service's API), whatever the URL's host.
func unixTransport(path string) *http.Transport {
	return &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
}

// runStatus is the status service: the node's API on the network address the
// operator configured. It is a separate, supervised process so that a bug in HTTP
// handling cannot take PID 1 down with it, and it is where access is enforced
// (package apiauth): GET /status is public; a service's log and the mesh API
// need the fleet master's signature or the node's API token (<data>/api.token);
// the phone messaging page and its API are as [messaging] of fleet.toml says.
// Poweroff and reboot stay on PID 1's local socket.
func runStatus(args []string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	listen := fs.String("listen", "0.0.0.0:80", "address to serve the status API on")
	data := fs.String("data", "/perm", "data directory holding the API token (api.token)")
	nodeKey := fs.String("node-key", "", "this node's public key, 66 hex characters (signatures are bound to it)")
	master := fs.String("master", "", "the fleet master's public key, 66 hex characters; empty: no master")
	msgMode := fs.String("messaging", apiauth.MessagingClosed, "who may use the phone messaging page: closed, open, or passphrase (read from --config)")
	config := fs.String("config", bootConfig, "fleet.toml holding the [messaging] passphrase, read with --messaging passphrase (a secret is never passed as an argument)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	mc, err := messagingConfig(*msgMode, *config, log.Printf)
	if err != nil {
		return err
	}
	h, err := statusHandler(*data, *nodeKey, *master, mc, log.Printf)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	fmt.Printf("status API on %s\n", *listen)
	return meshd.Serve(context.Background(), ln, h, nil)
}

// bootConfig is the fleet.toml PID 1 reads.
const bootConfig = "/boot/fleet.toml"

// statusArgs is the status service's command line: the API address, the data
// directory holding the API token, the node's public key and, when fleet.toml
// names one, the master's (Parse only keeps a valid key), and the messaging
// mode. The passphrase itself is no argument, since every process can read
// every command line (ps, /proc/PID/cmdline): with "--messaging passphrase" the
// status service reads it from fleet.toml itself, as the mesh service reads
// the psk.
func statusArgs(cfg fleetconf.Config, nodeKey, dataDir string) []string {
	args := []string{"/init", "status", "--listen", cfg.Node.Status, "--data", dataDir, "--node-key", nodeKey}
	if cfg.Master.PublicKey != "" {
		args = append(args, "--master", cfg.Master.PublicKey)
	}
	switch {
	case cfg.Messaging.Passphrase != "":
		args = append(args, "--messaging", apiauth.MessagingPassphrase, "--config", bootConfig)
	case cfg.Messaging.Open:
		args = append(args, "--messaging", apiauth.MessagingOpen)
	}
	return args
}

// messagingConfig turns the --messaging mode into the Guard's setting, reading
// the passphrase from the fleet.toml at path for MessagingPassphrase. A file
// that no longer holds a valid passphrase leaves messaging closed (logged
// through logf, without any of the file's secrets). Errors: an unknown mode.
func messagingConfig(mode, path string, logf func(string, ...any)) (apiauth.MessagingConfig, error) {
	switch mode {
	case "", apiauth.MessagingClosed:
		return apiauth.MessagingConfig{}, nil
	case apiauth.MessagingOpen:
		return apiauth.MessagingConfig{Open: true}, nil
	case apiauth.MessagingPassphrase:
		cfg, _ := fleetconf.Load(path, true) // PID 1 has shown its problems already
		if cfg.Messaging.Passphrase == "" {
			logf("status: %s holds no valid [messaging] passphrase: messaging stays closed to phones", path)
		}
		return apiauth.MessagingConfig{Passphrase: cfg.Messaging.Passphrase}, nil
	}
	return apiauth.MessagingConfig{}, fmt.Errorf("--messaging %q: want %s, %s or %s", mode,
		apiauth.MessagingClosed, apiauth.MessagingOpen, apiauth.MessagingPassphrase)
}

// maxUpdateTransfer bounds how long PUT /update may take to stream a bundle in.
const maxUpdateTransfer = 30 * time.Minute

// answerGrace is how long the reboot into a trial waits for the caller of PUT
// /update to hang up after its 202: long enough for the answer to cross the
// mesh, short enough that a caller who keeps the connection does not hold
// the update back.
const answerGrace = 10 * time.Second

// statusRoutes is the node's API on a Pi and who may call each path. The README's
// security section lists the same table. g is the Guard they are served behind
// (it serves the messaging login itself); nil only to list the routes.
func statusRoutes(g *apiauth.Guard) []apiauth.Route {
	target, _ := url.Parse("http://init")
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = unixClient.Transport
	proxy.ErrorHandler = proxyError("PID 1")
	meshTarget, _ := url.Parse("http://mesh")
	meshProxy := httputil.NewSingleHostReverseProxy(meshTarget)
	meshProxy.Transport = unixTransport(meshSocket)
	meshProxy.ErrorHandler = proxyError("the mesh service")
	// Transfers outlive the server's default deadlines (which cut off slow
	// strangers); the mesh service bounds them itself.
	transfer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mesh.ExtendDeadlines(w, mesh.MaxRecvWait+mesh.MaxTransfer)
		meshProxy.ServeHTTP(w, r)
	})
	return append([]apiauth.Route{
		{Pattern: "GET /status", Access: apiauth.Public, Handler: proxy},
		{Pattern: "GET /{$}", Access: apiauth.Public, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/status", http.StatusFound)
		})},
		{Pattern: "GET /services/{name}/log", Access: apiauth.Control, Handler: proxy},
		// The Wi-Fi service's whole status: the scan list and the addresses
		// of phones and peers, which /status leaves out.
		{Pattern: "GET /wifi", Access: apiauth.Control, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, err := os.ReadFile(wifiStatusFile)
			if err != nil {
				http.Error(w, "the Wi-Fi service has reported no status yet", http.StatusServiceUnavailable)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Write(b)
		})},
		{Pattern: "/mesh/", Access: apiauth.Control, Handler: meshProxy},
		{Pattern: "POST /mesh/send", Access: apiauth.Control, Handler: transfer},
		{Pattern: "GET /mesh/recv", Access: apiauth.Control, Handler: transfer},
		{Pattern: "/saf/", Access: apiauth.Control, Handler: meshProxy},
		// A bundle streams in for as long as a slow link takes; PID 1 checks
		// it (signature, release key, board, version) before it writes.
		{Pattern: "PUT /update", Access: apiauth.Control, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mesh.ExtendDeadlines(w, maxUpdateTransfer)
			rec := &statusRecorder{ResponseWriter: w}
			// A caller that hangs up once the whole bundle is sent (a link
			// broken while PID 1 installs) must not cancel PID 1's answer:
			// without it the trial reboot below would never be asked for,
			// and the node would sit with a trial pending.
			proxy.ServeHTTP(rec, r.WithContext(context.WithoutCancel(r.Context())))
			if rec.code != http.StatusAccepted {
				return
			}
			// The answer is on its way to the caller; now the reboot, which
			// stops this service too, and with it the mesh that may carry
			// the answer (through the master's tunnel): once the caller
			// hung up, or after answerGrace.
			http.NewResponseController(w).Flush()
			select {
			case <-r.Context().Done():
			case <-time.After(answerGrace):
			}
			if resp, err := unixClient.Post("http://init/update/reboot", "", nil); err == nil {
				resp.Body.Close()
			}
		})},
		// How much of a broken transfer the node holds, to resume it.
		{Pattern: "GET /update/held", Access: apiauth.Control, Handler: proxy},
		// The hardware wallet's host API: any key may sign a request here,
		// and the wallet admits only the keys paired on its screen (and
		// any key to ask for a pairing, which the person approves).
		{Pattern: "/wallet/", Access: apiauth.Signed, Handler: walletProxy(walletSocketPath)},
		// The page is served from here; the messaging API goes to the mesh
		// service once this Guard has admitted the request.
	}, web.Routes(g, meshProxy)...)
}

// statusHandler builds the status service's handler: statusRoutes behind a Guard
// with the API token in dataDir (made on first use), the master key and the
// messaging setting. Errors: the node key is missing or malformed, the master
// key is malformed (fleet.toml failed closed, so PID 1 passes none rather than
// a bad one), the passphrase is too short, or the token cannot be made.
func statusHandler(dataDir, nodeKey, master string, mc apiauth.MessagingConfig, logf func(string, ...any)) (http.Handler, error) {
	node, err := hex.DecodeString(nodeKey)
	if err != nil {
		return nil, fmt.Errorf("--node-key: %v", err)
	}
	var mk []byte
	if master != "" {
		if mk, err = hex.DecodeString(master); err != nil {
			return nil, fmt.Errorf("--master: %v", err)
		}
	}
	tok, err := apiauth.LoadOrCreateToken(dataDir)
	if err != nil {
		// Without a token (no /perm) the master can still sign requests.
		logf("status: no API token, only the master's signature admits control requests: %v", err)
		tok = ""
	}
	g, err := apiauth.NewGuard(apiauth.Config{Node: node, Master: mk, Token: tok, Logf: logf, Messaging: mc})
	if err != nil {
		return nil, err
	}
	return g.Handler(statusRoutes(g)), nil
}

// proxyError answers a request the proxy could not complete with 502 and the
// reason, naming the service behind it. A client that went away before the
// answer (a poller's timeout, a closed browser tab) is nobody's error and is
// not logged; httputil's default logs each one as "proxy error".
func proxyError(service string) func(http.ResponseWriter, *http.Request, error) {
	return func(w http.ResponseWriter, r *http.Request, err error) {
		if r.Context().Err() != nil {
			return
		}
		log.Printf("status: %s %s: %s did not answer: %v", r.Method, r.URL.Path, service, err)
		http.Error(w, fmt.Sprintf("%s did not answer: %v", service, err), http.StatusBadGateway)
	}
}

// askInit asks PID 1 to power off or reboot cleanly.
func askInit(what string) error {
	resp, err := unixClient.Post("http://init/"+what, "text/plain", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("PID 1 answered %s", resp.Status)
	}
	return nil
}

// statusRecorder remembers the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap gives http.ResponseController the connection's writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Flush passes a flush on (the reverse proxy flushes what it copies).
func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
