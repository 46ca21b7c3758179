//go:build !linux

package relay

import "net"

// setBuffers asks for size-byte socket buffers, as far as the system's limits allow.
func setBuffers(c *net.UDPConn, size int) {
	_ = c.SetReadBuffer(size)
	_ = c.SetWriteBuffer(size)
}
