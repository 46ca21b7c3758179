// Package stream is the mesh's reliable, ordered byte stream: a net.Conn over
// unreliable datagram paths (source routes), able to spread one stream over
// several routes at once.
//
// The router below delivers segments end to end (encrypted, with its own port
// numbers in front) over routes that may lose, delay, reorder and duplicate
// them, and that may die. A Conn numbers its packets, acknowledges what it
// receives, retransmits what is lost, and keeps the stream flowing over
// whichever routes work.
//
// # Segment layout
//
// All integers are big-endian; uvarint is encoding/binary's, minimally encoded.
//
//	off  size  field
//	0    1     version (1)
//	1    1     flags: 0x01 SYN, 0x02 ACK (ack section present),
//	           0x04 DATA (data section present), 0x08 FIN (needs DATA),
//	           0x10 RST, 0x20 PING (ack-eliciting, no data); others must be 0
//	2    4     conn ID, chosen at random by the dialer, in every segment
//	6    8     packet number: per direction, +1 for every segment sent, never
//	           reused (so acks are never ambiguous; a retransmission of
//	           data travels in a new packet)
//	14   8     max data: the receiver window as an absolute byte offset;
//	           the peer may send bytes below it
//	           ack section, if ACK:
//	22   8       largest packet number received
//	     4       ack delay, µs, since that packet arrived
//	     8       cumulative data ack: every byte below it has arrived
//	     1       ack flags: 0x01 the FIN and everything before it arrived
//	     1       N, the number of packet-number ranges (0..255)
//	     uv      length of the first range: [largest-len, largest]
//	     (N-1)x  uvarint gap, uvarint len: the next lower range ends
//	             gap+2 below the previous range's start and spans len+1
//	           data section, if DATA:
//	     8       byte offset of the data in the stream
//	     2       data length n (0 for a bare FIN)
//	     n       data
//	     4     CRC-32C (Castagnoli) of everything before it
//
// A SYN without ACK opens a stream (IsSYN); the acceptor answers SYN|ACK, and
// the dialer is established by any segment carrying its conn ID. FIN marks the
// end of the sender's bytes at offset+length; RST aborts.
//
// Ack ranges are a selective acknowledgement of packet numbers: each ack lists
// the newest range plus the ranges holding recently received packets (so a
// late packet from a slow route is acknowledged though far below the
// largest), then older ranges, as room allows. Absence from an ack means
// nothing. The cumulative data offset backs the ranges up.
//
// # Loss recovery
//
// Random loss is not taken as congestion: flow is bounded by the receiver's
// window, the sender's Window and a per-path window that grows with every
// acknowledged byte and shrinks only when the round trip shows a standing
// queue (srtt well above the path's minimum) or after a timeout; once a
// round trip, if the round's smallest sample shows no queue (under a quarter
// of the minimum) while the window is in use, it also grows by an eighth, so
// a long route fills in seconds.
// With Config.PerHopReliable (routes that keep data at every hop, where a
// packet overtaken by later ones is late, not lost) loss is judged by time
// only, after max(2 RTT, srtt + 4·rttvar).
// Loss is judged per path, since paths differ in delay: a packet is lost
// when packets sent after it on the same path are acknowledged and it is
// either 3 packets or 9/8 of a round trip behind them; a late
// acknowledgement of a packet declared lost widens that tolerance, which
// fades again when reordering stops. A path on which nothing is
// acknowledged for an RTO (srtt + 4·rttvar + max ack delay, within
// [MinRTO, MaxRTO], doubled on each repeat) has everything in flight declared
// lost. Lost bytes go back into a retransmission queue and are resent in new
// packets, preferably on another path. Acks are sent after two ack-eliciting
// packets, at once for anything out of order, SYN, FIN or PING, and at the
// latest 10 ms after the first unacknowledged one; they ride on data when
// there is any, and otherwise rotate over the live paths so a silently dead
// route loses only a share of them.
//
// # Paths
//
// New data goes to the path where it would arrive first: the soonest pacing
// slot plus half the path's round trip, among paths with room in their
// window (unmeasured paths count as 100 ms, so new paths share round-robin
// until measured). Each path is paced by a token bucket filled at twice its
// window per round trip and holding about 4 ms. A path whose Send fails, or
// that times out twice in a row (about three RTOs without a sign of life),
// is dead: it carries only probes (PING, backing off to 1 s) until one of
// them is acknowledged; after one timeout it is suspect and carries data only
// if no sound path exists. A path that leaves the router's set has its
// packets in flight declared lost at once. With no path at all, the Conn
// keeps its state, polls every 50 ms and waits, up to the idle timeout.
// Idle paths are probed every KeepAlive (every 300 ms, or MinRTO if longer,
// while data flows), so
// round trips stay measured and dead routes are found.
//
// # Lifetime
//
// Each Conn runs one timer goroutine. Close sends a FIN after the data
// already written and returns; once both FINs are acknowledged (after a
// short time-wait to re-acknowledge the peer's FIN), or the stream is reset or
// idle for Config.IdleTimeout, the Conn ends: its goroutine exits, its
// buffers are released and Done is closed.
package stream
