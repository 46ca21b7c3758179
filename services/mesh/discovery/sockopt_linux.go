package discovery

import "golang.org/x/sys/unix"

// onlyJoinedGroups clears IP_MULTICAST_ALL, so that the socket, bound to the port
// on 0.0.0.0, receives only the groups it joined itself rather than every group
// any socket of the host joined. Failure is harmless: foreign datagrams are counted
// as malformed and dropped.
func onlyJoinedGroups(fd uintptr) {
	unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0)
}
