package transport

import (
	"testing"
	"time"
)

// What the external tests (package transport_test, which may import the mesh)
// use of this package's internals.

// ListenLimits opens a TCP transport on 127.0.0.1 with the stranger limits given,
// closed at the end of the test.
func ListenLimits(t testing.TB, maxConns, perSource int, authTimeout time.Duration) *TCP {
	return listenLimits(t, tcpLimits{maxConns: maxConns, perSource: perSource, authTimeout: authTimeout})
}

// OpenTCP opens a TCP transport on 127.0.0.1 with the default limits, closed at
// the end of the test.
func OpenTCP(t testing.TB) *TCP { return open(t, "tcp://127.0.0.1:0").(*TCP) }

// Test helpers of this package's own tests.
var (
	HostPort     = hostPort
	WaitUntil    = waitUntil
	ClosedByPeer = closedByPeer
	DialFrom     = dialFrom
)

// Conn is a connection t holds, as ConnFor found it: comparable, so a test can
// tell whether the same connection is still held.
type Conn struct{ c *tconn }

// ConnFor returns the connection t holds for endpoint ep (Held false if none).
func (t *TCP) ConnFor(ep Endpoint) Conn { return Conn{t.connFor(ep)} }

// LocalEnd is this side's endpoint of the open connection to ep (zero if none).
func (t *TCP) LocalEnd(ep Endpoint) Endpoint { return t.localEnd(ep) }

// Held reports whether ConnFor found a connection.
func (c Conn) Held() bool { return c.c != nil }

// Authed reports whether the connection is authenticated.
func (c Conn) Authed() bool { return c.c != nil && c.c.authed.Load() }

// Endpoint is the connection's endpoint.
func (c Conn) Endpoint() Endpoint { return c.c.ep }

// Accepted is when the connection was accepted.
func (c Conn) Accepted() time.Time { return c.c.accepted }
