package remote

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// TestAPIForward: through the SSH connection the master reaches the node's
// status API, and nothing else: another host, a malformed request and more
// than maxForwards at once are refused.
func TestAPIForward(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write([]byte(r.Method + " " + r.URL.Path + " " + string(b)))
	}))
	defer api.Close()
	f := serve(t, newKey(t), newKey(t), func(s *Server) { s.API = api.Listener.Addr().String() })
	c := f.client(t)

	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(_ context.Context, _, _ string) (net.Conn, error) { return c.DialAPI() },
	}}
	for i := range 3 { // the transport reuses the forward, or opens another: both work
		resp, err := hc.Post("http://"+APIHost+"/update", "application/octet-stream", strings.NewReader("bundle"))
		if err != nil {
			t.Fatalf("request %d through the forward: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "POST /update bundle" {
			t.Fatalf("request %d: the API answered %q", i, b)
		}
	}

	var oce *ssh.OpenChannelError
	for _, target := range []string{"127.0.0.1:22", api.Listener.Addr().String(), "localhost:80"} {
		if _, err := c.ssh.Dial("tcp", target); !errors.As(err, &oce) || oce.Reason != ssh.Prohibited {
			t.Errorf("forward to %s: %v, want prohibited", target, err)
		}
	}
	f.log.wait(t, "remote: refused forward from 127.0.0.1:", `not "127.0.0.1"`)
	if _, _, err := c.ssh.OpenChannel("direct-tcpip", []byte{1, 2}); !errors.As(err, &oce) || oce.Reason != ssh.Prohibited {
		t.Errorf("malformed direct-tcpip: %v, want prohibited", err)
	}
	f.log.wait(t, "malformed direct-tcpip request")

	// The cap is per SSH connection; a new one has none open.
	c = f.client(t)
	var held []net.Conn
	for range maxForwards {
		conn, err := c.DialAPI()
		if err != nil {
			t.Fatalf("forward %d of %d: %v", len(held)+1, maxForwards, err)
		}
		held = append(held, conn)
	}
	if _, err := c.DialAPI(); !errors.As(err, &oce) || oce.Reason != ssh.ResourceShortage {
		t.Errorf("forward %d: %v, want a resource shortage", maxForwards+1, err)
	}
	for _, conn := range held {
		conn.Close()
	}
}

// TestForwardTarget: the payload parser takes APIHost only, and nothing when
// the server has no API.
func TestForwardTarget(t *testing.T) {
	s := &Server{API: "127.0.0.1:80"}
	ok := ssh.Marshal(directTCPIP{Host: APIHost, Port: 80, OriginAddr: "0.0.0.0"})
	if got, err := s.forwardTarget(ok); err != nil || got != "127.0.0.1:80" {
		t.Errorf("forwardTarget(%s) = %q, %v", APIHost, got, err)
	}
	if _, err := (&Server{}).forwardTarget(ok); err == nil {
		t.Error("a server without API forwarded")
	}
	for _, p := range [][]byte{nil, ok[:len(ok)-1], ssh.Marshal(directTCPIP{Host: "10.0.0.1", Port: 80})} {
		if got, err := s.forwardTarget(p); err == nil {
			t.Errorf("forwardTarget(%x) = %q, want an error", p, got)
		}
	}
}
