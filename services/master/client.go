package master

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/skyfleet/skyfleet/services/control/registry"
)

// Client talks to a master's API for the operator's CLI.
type Client struct {
	// Addr is the master's host:port ([node] status of its fleet.toml).
	Addr string
	// Token is the API token, needed unless Addr is on loopback.
	Token string
}

func (c *Client) url(path string, q url.Values) string {
	u := url.URL{Scheme: "http", Host: c.Addr, Path: path, RawQuery: q.Encode()}
	return u.String()
}

func (c *Client) do(ctx context.Context, method, path string, body io.Reader, out any) error {
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
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("master at %s: %w (is `skyfleet master` running there?)", c.Addr, err)
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

func apiError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		return fmt.Errorf("master: %s: %s", resp.Status, e.Error)
	}
	return fmt.Errorf("master: %s: %s", resp.Status, strings.TrimSpace(string(b)))
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
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.Addr)
	if err != nil {
		return nil, fmt.Errorf("master at %s: %w (is `skyfleet master` running there?)", c.Addr, err)
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
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("master at %s: %w", c.Addr, err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer conn.Close()
		return nil, apiError(resp)
	}
	key, err := hex.DecodeString(resp.Header.Get(NodeKeyHeader))
	if err != nil || len(key) != 33 {
		conn.Close()
		return nil, fmt.Errorf("master at %s: tunnel without a valid %s header", c.Addr, NodeKeyHeader)
	}
	conn.SetDeadline(time.Time{})
	return &Tunnel{Conn: conn, NodeKey: key, r: br}, nil
}
