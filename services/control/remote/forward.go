package remote

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// APIHost is the one destination a "direct-tcpip" channel (RFC 4254 §7.2) may
// name: the node's own status API, wherever Server.API says it listens. The
// master asks for this name, not an address, so it needs not know the node's
// port, and the node never dials anywhere the master picks.
const APIHost = "skyfleet-api"

// maxForwards caps the API channels open at once on one SSH connection: an
// HTTP client needs one or two.
const maxForwards = 8

// forwardDialTimeout bounds the node's dial of its own status API.
const forwardDialTimeout = 10 * time.Second

// directTCPIP is the payload of a "direct-tcpip" channel open (RFC 4254 §7.2):
// the host and port to connect to, and the originator's address and port.
type directTCPIP struct {
	Host       string
	Port       uint32
	OriginAddr string
	OriginPort uint32
}

// forwardTarget checks a "direct-tcpip" channel's payload and returns the
// address to dial: Server.API, when the payload names APIHost and the server
// has an API. Errors say why the channel is refused.
func (s *Server) forwardTarget(payload []byte) (string, error) {
	if s.API == "" {
		return "", errors.New("this node forwards nothing")
	}
	var d directTCPIP
	if err := ssh.Unmarshal(payload, &d); err != nil {
		return "", fmt.Errorf("malformed direct-tcpip request: %w", err)
	}
	if d.Host != APIHost {
		return "", fmt.Errorf("only %s, the node's own status API, can be reached, not %q", APIHost, d.Host)
	}
	return s.API, nil
}

// forwards counts one connection's open API channels.
type forwards struct {
	mu sync.Mutex
	n  int
}

func (f *forwards) take() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n >= maxForwards {
		return false
	}
	f.n++
	return true
}

func (f *forwards) put() {
	f.mu.Lock()
	f.n--
	f.mu.Unlock()
}

// forward serves one "direct-tcpip" channel: it connects to the node's status
// API and copies bytes both ways until either side ends.
func (s *Server) forward(nc ssh.NewChannel, remote string, open *forwards) {
	target, err := s.forwardTarget(nc.ExtraData())
	if err != nil {
		s.logf("remote: refused forward from %s: %v", remote, err)
		_ = nc.Reject(ssh.Prohibited, err.Error())
		return
	}
	if !open.take() {
		s.logf("remote: refused forward from %s: %d already open", remote, maxForwards)
		_ = nc.Reject(ssh.ResourceShortage, "too many forwards open")
		return
	}
	defer open.put()
	api, err := net.DialTimeout("tcp", target, forwardDialTimeout)
	if err != nil {
		s.logf("remote: forward from %s: the status API does not answer: %v", remote, err)
		_ = nc.Reject(ssh.ConnectionFailed, "the node's status API does not answer")
		return
	}
	defer api.Close()
	ch, reqs, err := nc.Accept()
	if err != nil {
		return
	}
	defer ch.Close()
	go ssh.DiscardRequests(reqs)
	done := make(chan struct{}, 2)
	go func() {
		io.Copy(api, ch)
		if tc, ok := api.(*net.TCPConn); ok {
			tc.CloseWrite() // the client finished its request; the answer may still come
		}
		done <- struct{}{}
	}()
	go func() {
		io.Copy(ch, api)
		ch.Close() // the API hung up: so does the channel, both ways
		done <- struct{}{}
	}()
	<-done
	<-done
}

// DialAPI opens a connection to the node's own status API through the SSH
// connection ("direct-tcpip" to APIHost), for an HTTP client to use as its
// transport. The API still wants its own credential on each request (the
// master's signature): the SSH login alone grants nothing there. Errors: the
// node refuses (it has no API to forward to, or too many are open) or the
// connection is gone.
func (c *Client) DialAPI() (net.Conn, error) {
	conn, err := c.ssh.Dial("tcp", net.JoinHostPort(APIHost, strconv.Itoa(80)))
	if err != nil {
		return nil, fmt.Errorf("remote: the node's status API: %w", err)
	}
	return conn, nil
}
