package meshd

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// One source holding idle connections cannot take every slot of the API: past
// MaxConnsPerSource its connections are closed at once, and a request still gets
// through.
func TestAPIConnectionsPerSource(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }), nil)
	}()
	defer func() { cancel(); <-done }()
	addr := ln.Addr().String()
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	// A stranger's idle connections: the first MaxConnsPerSource stay open, the
	// rest are closed by the server without a byte.
	closed := 0
	for range MaxConnsPerSource + 10 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	// Read every connection at once: the closed ones end at EOF, the kept ones
	// at the deadline (which only bounds the test; it decides nothing).
	eof := make(chan bool, len(idle))
	for _, c := range idle {
		go func() {
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			var b [1]byte
			_, err := c.Read(b[:])
			eof <- err == io.EOF
		}()
	}
	for range idle {
		if <-eof {
			closed++
		}
	}
	if closed != 10 {
		t.Errorf("%d of %d connections from one source closed at once, want 10", closed, MaxConnsPerSource+10)
	}
	// Another source (127.0.0.2 is loopback too) is served while the first holds its share.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	c := http.Client{Transport: &http.Transport{DialContext: d.DialContext}, Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		t.Fatalf("another source was not served: %v", err)
	}
	resp.Body.Close()
}

func TestSourceOf(t *testing.T) {
	for _, c := range []struct {
		addr net.Addr
		want string
		ok   bool
	}{
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 1}, "192.0.2.7", true},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 1}, "192.0.2.7", true},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:3:4:5:6"), Port: 1}, "2001:db8:1:2::/64", true},
		{&net.UnixAddr{Name: "@", Net: "unix"}, "", false},
	} {
		got, ok := sourceOf(c.addr)
		if got != c.want || ok != c.ok {
			t.Errorf("sourceOf(%v) = %q %v, want %q %v", c.addr, got, ok, c.want, c.ok)
		}
	}
}

// Every API server (the node's, the Pi's status service, the master's) gets its
// limits from NewServer: a stranger who connects and sends nothing, or a request
// slowly, is cut off rather than held for ever.
func TestServerTimeouts(t *testing.T) {
	s := NewServer(http.NotFoundHandler())
	if s.ReadHeaderTimeout <= 0 || s.ReadTimeout <= 0 || s.WriteTimeout <= 0 || s.IdleTimeout <= 0 || s.MaxHeaderBytes <= 0 {
		t.Fatalf("server limits %v %v %v %v %d: each must be set", s.ReadHeaderTimeout, s.ReadTimeout, s.WriteTimeout, s.IdleTimeout, s.MaxHeaderBytes)
	}
	if s.WriteTimeout <= time.Minute {
		t.Errorf("WriteTimeout %v would cut POST /mesh/ping's longest wait (60 s)", s.WriteTimeout)
	}
}
