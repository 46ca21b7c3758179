package master

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/skyfleet/skyfleet/services/control/registry"
)

// Client talks to a master's API for the operator's CLI. It speaks plain HTTP
// to a master on loopback and TLS with a pinned key (Pin) to any other; it
// refuses to send the token, or read the fleet, off loopback without a pin.
type Client struct {
	// Addr is the master's host:port ([node] status of its fleet.toml).
	Addr string
	// Token is the API token, needed unless Addr is on loopback.
	Token string
	// Pin is the master's TLS pin (TLSPin, ParsePin's form): required unless
	// Addr is on loopback; when set, the client uses TLS on loopback too.
	Pin string

	once sync.Once
	http *http.Client
}

// ErrNoPin is a master off loopback with no pin given: the client will not
// talk to it in the clear or trust whatever key answers.
var ErrNoPin = errors.New("no TLS pin for the master")

// useTLS reports whether the client speaks TLS to the master, and an error
// (wrapping ErrNoPin) when it must but cannot check the key.
func (c *Client) useTLS() (bool, error) {
	if c.Pin != "" {
		return true, nil
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return false, fmt.Errorf("master address %q: %w", c.Addr, err)
	}
	if OnLoopback(c.Addr) {
		return false, nil
	}
	return true, fmt.Errorf("%w at %s: it serves its API over TLS off loopback; give --pin (tls_pin, printed by `skyfleet master` and in its /api/status) or --key master.key", ErrNoPin, c.Addr)
}

// OnLoopback reports whether addr (host:port) names this machine's loopback:
// localhost or a loopback IP address, where the API may be plain HTTP.
func OnLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// dial opens a connection to the master: TCP, then the TLS handshake with the
// pin check when useTLS says so.
func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	secure, err := c.useTLS()
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.Addr)
	if err != nil {
		return nil, fmt.Errorf("master at %s: %w (is `skyfleet master` running there?)", c.Addr, err)
	}
	if !secure {
		return conn, nil
	}
	pin, err := ParsePin(c.Pin)
	if err != nil {
		conn.Close()
		return nil, err
	}
	tc := tls.Client(conn, clientTLS(c.Addr, pin))
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		var pe *PinError
		if errors.As(err, &pe) {
			return nil, pe
		}
		return nil, fmt.Errorf("master at %s: TLS: %w", c.Addr, err)
	}
	return tc, nil
}

// httpClient is the client's HTTP client, made once: every connection comes
// from dial, so the pin is checked on each.
func (c *Client) httpClient() *http.Client {
	c.once.Do(func() {
		dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
			conn, err := c.dial(ctx)
			if err != nil {
				return nil, &dialError{err}
			}
			return conn, nil
		}
		t := &http.Transport{
			DialContext:         dial,
			DialTLSContext:      dial,
			MaxIdleConnsPerHost: 2,
			IdleConnTimeout:     30 * time.Second,
		}
		c.http = &http.Client{Transport: t}
	})
	return c.http
}

// dialError carries dial's error, which already names the master, through
// net/http's wrapping.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

func (c *Client) url(path string, q url.Values) string {
	scheme := "http"
	if secure, _ := c.useTLS(); secure {
		scheme = "https"
	}
	u := url.URL{Scheme: scheme, Host: c.Addr, Path: path, RawQuery: q.Encode()}
	return u.String()
}

func (c *Client) do(ctx context.Context, method, path string, body io.Reader, out any) error {
	if _, err := c.useTLS(); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(path, nil), body)
	if err != nil {
		return err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		var de *dialError
		if errors.As(err, &de) {
			return de.err // it names the master and what failed
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("master at %s: %w", c.Addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return apiError(resp)
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// maxErrorBody bounds how much of an error answer is read, and
// maxCandidates how many candidates of an ambiguous name are kept.
const (
	maxErrorBody  = 16 << 10
	maxCandidates = 100
)

// apiError turns a master's error answer into an error: the master's
// message, with control characters escaped (it is printed on the operator's
// terminal), or for 409 a *registry.AmbiguousNameError with the candidates.
func apiError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	status := printable(resp.Status)
	var e struct {
		Error string `json:"error"`
		registry.AmbiguousNameError
	}
	if json.Unmarshal(b, &e) == nil {
		if resp.StatusCode == http.StatusConflict && len(e.Candidates) > 0 {
			amb := &registry.AmbiguousNameError{Name: printable(e.Name), Candidates: e.Candidates[:min(len(e.Candidates), maxCandidates)]}
			for i := range amb.Candidates {
				c := &amb.Candidates[i]
				c.Address, c.Name, c.PublicKey = printable(c.Address), printable(c.Name), printable(c.PublicKey)
			}
			return amb
		}
		if e.Error != "" {
			return fmt.Errorf("master: %s: %s", status, printable(e.Error))
		}
	}
	return fmt.Errorf("master: %s: %s", status, printable(strings.TrimSpace(string(b))))
}

// printable escapes what a terminal would act on (control characters, line
// separators, bidirectional overrides) and invalid UTF-8, and shortens s to
// about 1000 bytes.
func printable(s string) string {
	const max = 1000
	var b strings.Builder
	for i, r := range s {
		if b.Len() >= max {
			b.WriteString("…")
			break
		}
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				fmt.Fprintf(&b, `\x%02x`, s[i])
				continue
			}
		}
		if unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Nodes returns GET /api/nodes.
func (c *Client) Nodes(ctx context.Context) ([]registry.Node, error) {
	var n []registry.Node
	return n, c.do(ctx, http.MethodGet, "/api/nodes", nil, &n)
}

// Node returns GET /api/nodes/{id}.
func (c *Client) Node(ctx context.Context, id string) (registry.Detail, error) {
	var d registry.Detail
	return d, c.do(ctx, http.MethodGet, "/api/nodes/"+url.PathEscape(id), nil, &d)
}

// Log appends an entry to the master's remote-action log.
func (c *Client) Log(ctx context.Context, a registry.Action) error {
	b, _ := json.Marshal(a)
	return c.do(ctx, http.MethodPost, "/api/log", bytes.NewReader(b), nil)
}

// Tunnel is a byte stream to a node's SSH port through the master.
type Tunnel struct {
	net.Conn
	// NodeKey is the 33-byte public key of the node the master connected to
	// (NodeKeyHeader), as the master says: check it inside the stream.
	NodeKey []byte
	r       *bufio.Reader
}

// Read reads first what the response reader buffered past the headers.
func (t *Tunnel) Read(p []byte) (int, error) { return t.r.Read(p) }

// Tunnel opens a byte stream to node's SSH port through the master, logged there
// as action with detail. Errors: the master is unreachable, refuses the token, does
// not know the node or cannot reach it (the master's reason is in the error), or
// answers without a valid NodeKeyHeader.
func (c *Client) Tunnel(ctx context.Context, node, action, detail string) (*Tunnel, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	q := url.Values{"node": {node}, "action": {action}, "detail": {detail}}
	req, _ := http.NewRequest(http.MethodPost, c.url("/api/tunnel", q), nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", TunnelProtocol)
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	} else {
		conn.SetDeadline(time.Now().Add(30 * time.Second))
	}
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, err
	}
	lim := &headerLimit{r: conn, n: maxTunnelHeader}
	br := bufio.NewReader(lim)
	key, err := readTunnelResponse(br, req)
	if err != nil {
		conn.Close()
		if errors.Is(err, errTunnelResponse) {
			return nil, fmt.Errorf("master at %s: %w", c.Addr, err)
		}
		return nil, err
	}
	lim.n = -1 // the headers are read: the tunnel's bytes are not limited
	conn.SetDeadline(time.Time{})
	return &Tunnel{Conn: conn, NodeKey: key, r: br}, nil
}

// maxTunnelHeader bounds the bytes of the tunnel's HTTP answer (status line
// and headers) the client reads before the stream starts.
const maxTunnelHeader = 64 << 10

// headerLimit reads at most n bytes from r, then reports EOF; n < 0 is no
// limit.
type headerLimit struct {
	r io.Reader
	n int64
}

func (l *headerLimit) Read(p []byte) (int, error) {
	if l.n < 0 {
		return l.r.Read(p)
	}
	if l.n == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

var errTunnelResponse = errors.New("bad tunnel answer")

// readTunnelResponse reads the master's answer to POST /api/tunnel from br and
// returns the 33-byte key of the node the master connected to. Errors: the
// master's refusal (apiError: its message, or a *registry.AmbiguousNameError),
// or errTunnelResponse for an answer that is not HTTP, not 101 Switching
// Protocols to TunnelProtocol, or lacks a valid NodeKeyHeader.
func readTunnelResponse(br *bufio.Reader, req *http.Request) ([]byte, error) {
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", errTunnelResponse, printable(err.Error()))
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return nil, apiError(resp)
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), TunnelProtocol) {
		return nil, fmt.Errorf("%w: upgraded to %q, not %s", errTunnelResponse, printable(resp.Header.Get("Upgrade")), TunnelProtocol)
	}
	key, err := hex.DecodeString(resp.Header.Get(NodeKeyHeader))
	if err != nil || len(key) != 33 {
		return nil, fmt.Errorf("%w: no valid %s header", errTunnelResponse, NodeKeyHeader)
	}
	return key, nil
}
