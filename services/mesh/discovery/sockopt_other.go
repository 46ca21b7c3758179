//go:build !linux

package discovery

// onlyJoinedGroups does nothing where IP_MULTICAST_ALL does not exist; foreign
// datagrams are counted as malformed and dropped.
func onlyJoinedGroups(fd uintptr) {}
