//go:build !linux

package transport

import "net"

// setBuffers raises the socket's receive and send buffers to size bytes where the
// system allows; failures leave them as they are.
func setBuffers(c *net.UDPConn, size int) {
	c.SetReadBuffer(size)
	c.SetWriteBuffer(size)
}
