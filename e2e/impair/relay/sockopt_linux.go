package relay

import (
	"net"
	"syscall"
)

// setBuffers asks for size-byte socket buffers. As root it passes net.core.rmem_max
// and wmem_max (SO_RCVBUFFORCE), so bursts of small datagrams are not lost in the
// kernel before the relay gets to impair them; otherwise it gets what the limits allow.
func setBuffers(c *net.UDPConn, size int) {
	raw, err := c.SyscallConn()
	if err == nil {
		var rerr, werr error
		_ = raw.Control(func(fd uintptr) {
			rerr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, size)
			werr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUFFORCE, size)
		})
		if rerr == nil && werr == nil {
			return
		}
	}
	_ = c.SetReadBuffer(size)
	_ = c.SetWriteBuffer(size)
}
