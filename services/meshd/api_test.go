package meshd

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/skyfleet/skyfleet/internal/apiauth"
	"github.com/skyfleet/skyfleet/internal/fleetconf"
)

// runNode starts a node from the fleet.toml text toml (its data directory and
// listen port filled in) and returns its API's base URL and data directory; mods
// change its Options.
func runNode(t *testing.T, toml string, mods ...func(*Options)) (base, data string, n *Node) {
	t.Helper()
	// The port was free a moment ago; another test binary running in parallel
	// may have taken it since, so a few fresh ones are tried.
	for try := 1; ; try++ {
		base, data, n, err := startNode(t, fmt.Sprintf("udp://127.0.0.1:%d", freeUDPPort(t)), toml, mods...)
		if err == nil {
			return base, data, n
		}
		if try == 3 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatalf("node did not start: %v", err)
		}
	}
}

// freeUDPPort returns a loopback UDP port that was free a moment ago
// (fleet.toml takes no port 0).
func freeUDPPort(t *testing.T) int {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

func runNodeOn(t *testing.T, listen, toml string) (base, data string, n *Node) {
	t.Helper()
	base, data, n, err := startNode(t, listen, toml)
	if err != nil {
		t.Fatalf("node did not start: %v", err)
	}
	return base, data, n
}

// startNode runs a node on listen with the fleet.toml text toml (Options changed
// by mods) until the test ends, and returns its API's base URL and data directory,
// or why it did not start.
func startNode(t *testing.T, listen, toml string, mods ...func(*Options)) (base, data string, n *Node, err error) {
	t.Helper()
	data = t.TempDir()
	text := fmt.Sprintf("[node]\nlisten = [%q]\ndata = %q\n%s", listen, data, toml)
	cfg, problems := fleetconf.Parse([]byte(text), false)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *Node, 1)
	done := make(chan struct{})
	var runErr error
	opts := Options{Config: cfg, Problems: problems, Listener: ln, Ready: func(n *Node) { ready <- n }}
	for _, mod := range mods {
		mod(&opts)
	}
	go func() {
		runErr = Run(ctx, opts)
		close(done)
	}()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case n = <-ready:
		return "http://" + ln.Addr().String(), data, n, nil
	case <-done:
		return "", "", nil, runErr
	}
}

func get(t *testing.T, method, url string, cred apiauth.Credential) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	if cred != nil {
		if err := cred.Authorize(http.DefaultClient, req); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		k, err := resp.Body.Read(buf)
		b.Write(buf[:k])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, b.String()
}

// controlPaths are the node's API paths that change or reveal the mesh: a
// stranger on the LAN must get none of them.
var controlPaths = []struct{ method, path string }{
	{"GET", "/mesh/links"}, {"GET", "/mesh/routes"}, {"GET", "/mesh/graph"},
	{"GET", "/mesh/route?addr=x"}, {"GET", "/mesh/nearest?role=gateway"},
	{"POST", "/mesh/ping?addr=02" + strings.Repeat("11", 32)},
	{"POST", "/mesh/send?addr=x&port=9"}, {"GET", "/mesh/recv?port=9&timeout=1ms"},
}

// The API has a notion of who is asking: status is public, everything under /mesh/
// needs the node's token or the master's signature.
func TestAPIAccess(t *testing.T) {
	master, _ := secp256k1.GeneratePrivateKey()
	base, data, n := runNode(t, fmt.Sprintf("[master]\npublic_key = %q\n", hex.EncodeToString(master.PubKey().SerializeCompressed())))
	if n.Refused != "" {
		t.Fatalf("node refuses links: %s", n.Refused)
	}
	if code, body := get(t, "GET", base+"/status", nil); code != 200 || !strings.Contains(body, `"public_key"`) {
		t.Fatalf("public status: %d %s", code, body)
	}
	tok, err := apiauth.ReadToken(filepath.Join(data, apiauth.TokenFile))
	if err != nil {
		t.Fatalf("the node made no API token: %v", err)
	}
	stranger, _ := secp256k1.GeneratePrivateKey()
	for _, p := range controlPaths {
		if code, body := get(t, p.method, base+p.path, nil); code != http.StatusUnauthorized {
			t.Errorf("%s %s without a credential: %d %s", p.method, p.path, code, body)
		}
		if code, _ := get(t, p.method, base+p.path, apiauth.MasterKey{Key: stranger}); code != http.StatusUnauthorized {
			t.Errorf("%s %s signed by a stranger's key: %d", p.method, p.path, code)
		}
		for _, cred := range []apiauth.Credential{apiauth.Token(tok), apiauth.MasterKey{Key: master}} {
			if code, body := get(t, p.method, base+p.path, cred); code == http.StatusUnauthorized || code == http.StatusForbidden || code == http.StatusServiceUnavailable {
				t.Errorf("%s %s with %T: refused: %s", p.method, p.path, cred, body)
			}
		}
	}
	code, body := get(t, "GET", base+"/status", nil)
	var st NodeStatus
	json.Unmarshal([]byte(body), &st)
	if code != 200 || st.API == nil || st.API.Refused < uint64(2*len(controlPaths)) {
		t.Errorf("status does not count the refusals: %s", body)
	}
	if strings.Contains(body, tok) {
		t.Error("the public status page shows the API token")
	}
}

// A recv that asks to wait longer than MaxRecvWait is refused rather than holding
// a listener and a goroutine for as long as the caller likes.
func TestRecvTimeoutBounded(t *testing.T) {
	base, data, _ := runNode(t, "")
	tok, _ := apiauth.ReadToken(filepath.Join(data, apiauth.TokenFile))
	code, body := get(t, "GET", base+"/mesh/recv?port=9&timeout=100000h", apiauth.Token(tok))
	if code != http.StatusBadRequest {
		t.Errorf("recv with a 100000 h timeout: %d %s, want 400", code, body)
	}
}

// A fleet.toml that fails closed brings up a node that serves its status with the
// errors and links with nobody: no transport is opened at all.
func TestFailClosedOpensNoTransport(t *testing.T) {
	for name, toml := range map[string]string{
		"syntax error":  "[network]\npsk = \"c0ffee11\n",
		"malformed psk": "[network]\npsk = \"" + strings.Repeat("zz", 32) + "\"\n",
	} {
		t.Run(name, func(t *testing.T) {
			// A file that cannot be read gives the defaults, data "." included:
			// keep the key and token it makes out of the source tree.
			t.Chdir(t.TempDir())
			listen := fmt.Sprintf("udp://127.0.0.1:%d", freeUDPPort(t))
			base, _, n := runNodeOn(t, listen, toml)
			// The node holds no socket on its listen address: it is ours to take.
			if pc, err := net.ListenPacket("udp", strings.TrimPrefix(listen, "udp://")); err != nil {
				t.Errorf("the failed-closed node listens on %s: %v", listen, err)
			} else {
				pc.Close()
			}
			if n.Router != nil || n.Refused == "" {
				t.Fatalf("node with %s runs a router (refused %q)", name, n.Refused)
			}
			code, body := get(t, "GET", base+"/status", nil)
			var st NodeStatus
			if err := json.Unmarshal([]byte(body), &st); err != nil || code != 200 {
				t.Fatalf("status: %d %s", code, body)
			}
			if st.LinksRefused == "" || len(st.ConfigErrors) == 0 || !st.ConfigErrors[0].Fatal {
				t.Errorf("status does not say the node refuses links: %s", body)
			}
			if strings.Contains(body, "c0ffee") || strings.Contains(body, "zzzz") {
				t.Errorf("status echoes the psk: %s", body)
			}
		})
	}
}

func TestMain(m *testing.M) { os.Exit(m.Run()) }

// TestLoopback: the SSH server's forward reaches a status API listening on
// every address through the loopback address of its family.
func TestLoopback(t *testing.T) {
	for in, want := range map[string]string{
		"0.0.0.0:80":     "127.0.0.1:80",
		":8080":          "127.0.0.1:8080",
		"[::]:80":        "[::1]:80",
		"127.0.0.1:8080": "127.0.0.1:8080",
		"10.1.2.3:80":    "10.1.2.3:80",
		"no-port":        "",
	} {
		if got := loopback(in); got != want {
			t.Errorf("loopback(%q) = %q, want %q", in, got, want)
		}
	}
}

// A radio entry the radio package cannot honour (paclen 10) leaves that
// channel closed and says so in config_errors; a sound card that is not
// there is a channel that is down, retried, with the reason in /status.
// Neither stops the node or its IP link.
func TestRadioEntriesDoNotStopTheNode(t *testing.T) {
	t.Chdir(t.TempDir())
	listen := fmt.Sprintf("udp://127.0.0.1:%d", freeUDPPort(t))
	base, _, n, err := startNode(t, listen, "[radio]\ncallsign = \"N0CALL-7\"\n", func(o *Options) {
		o.Config.Node.Listen = append(o.Config.Node.Listen, "kiss+tcp://127.0.0.1:1?paclen=10", "afsk:///dev/snd/pcmC7D7")
	})
	if err != nil {
		t.Fatalf("a bad radio entry stopped the node: %v", err)
	}
	if n.Router == nil {
		t.Fatal("no router")
	}
	code, body := get(t, "GET", base+"/status", nil)
	var st NodeStatus
	if err := json.Unmarshal([]byte(body), &st); err != nil || code != 200 {
		t.Fatalf("status: %d %s", code, body)
	}
	said := false
	for _, p := range st.ConfigErrors {
		said = said || p.Key == "node.listen" && strings.Contains(p.Message, "paclen") && !p.Fatal
	}
	if !said {
		t.Errorf("config_errors do not name the bad radio option: %s", body)
	}
	if len(st.Radio) != 1 || st.Radio[0].Listen != "afsk:///dev/snd/pcmC7D7" || st.Radio[0].Callsign != "N0CALL-7" ||
		!strings.Contains(st.Radio[0].Stats.PortError, "pcmC7D7p") {
		t.Errorf("status radio %+v: want the sound card's channel, down, saying why", st.Radio)
	}
}
