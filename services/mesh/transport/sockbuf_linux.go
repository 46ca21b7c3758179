package transport

import (
	"net"

	"golang.org/x/sys/unix"
)

// setBuffers raises the socket's receive and send buffers to size bytes: first with
// SO_RCVBUF/SO_SNDBUF, capped by net.core.rmem_max/wmem_max, then, if the kernel
// granted less, with SO_RCVBUFFORCE/SO_SNDBUFFORCE, which need CAP_NET_ADMIN (as
// skyfleetd has). Failures leave the buffers as they are.
func setBuffers(c *net.UDPConn, size int) {
	c.SetReadBuffer(size)
	c.SetWriteBuffer(size)
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		// Linux reports twice the size asked for (bookkeeping overhead included).
		if v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF); err == nil && v < 2*size {
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size)
		}
		if v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF); err == nil && v < 2*size {
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, size)
		}
	})
}
