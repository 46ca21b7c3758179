package transport

import (
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestTCPHangingDialDoesNotBlock: a dial that hangs (its SYN dropped: the peer's
// accept queue is full) holds neither WriteTo nor writes to other peers.
func TestTCPHangingDialDoesNotBlock(t *testing.T) {
	// A listener with backlog 0 that never accepts: one connection fills its
	// queue, and the kernel drops the SYNs of the next.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	full := EndpointOf(netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(sa.(*unix.SockaddrInet4).Port)))

	filler := open(t, "tcp://127.0.0.1:0")
	filler.WriteTo([]byte("x"), full)
	waitUntil(t, 5*time.Second, "the first dial completes", func() bool {
		return stats(filler).Dials != 0 && stats(filler).Conns != 0 && filler.(*TCP).connected(full)
	})

	a := open(t, "tcp://127.0.0.1:0")
	b := open(t, "tcp://127.0.0.1:0")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 200; i++ {
			a.WriteTo([]byte("x"), full)
		}
		a.WriteTo([]byte("to b"), endpointOf(t, b))
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("WriteTo blocked behind a hanging dial")
	}
	buf := make([]byte, 10)
	if n, _ := readTimeout(t, b, buf, 5*time.Second); string(buf[:n]) != "to b" {
		t.Fatalf("got %q", buf[:n])
	}
	s := stats(a)
	if a.(*TCP).connected(full) || s.Dials != 2 || s.Drops != 200-dialQueue {
		t.Fatalf("stats %+v: want the hanging dial pending, %d queued and %d dropped", s, dialQueue, 200-dialQueue)
	}
}
