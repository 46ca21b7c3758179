// Package topology is the mesh's link-state layer (docs/architecture.md §Topology): the
// signed, sequence-numbered neighbour list every node floods (Announcement), the graph
// each node assembles from the announcements it holds (Graph), and the route searches
// the source-routing router runs locally on it. There is no central route finder.
//
// # Announcements
//
// An Announcement is its origin's list of neighbours with the round-trip time and loss
// it measured to each, plus free-form properties ("gateway", "relay", ...). It is signed
// by the origin with a 65-byte compact secp256k1 signature, so any node can check it no
// matter how many hops it was flooded over. The encoding (all integers big-endian) is
//
//	offset  size      field
//	0       1         version, 1
//	1       33        origin: compressed secp256k1 public key (0x02/0x03 prefix)
//	34      8         seq: uint64, nonzero
//	42      1         neighbour count n, 0..255
//	43      39*n      per neighbour: key 33, rtt uint32 microseconds (saturating at
//	                  2^32-1 µs ≈ 71.6 min), loss uint16 in units of 1/65535
//	...     1         property count m, 0..16
//	...     m*(1+l)   per property: length l (1..32) then l bytes of [a-z0-9_-]; the
//	                  last one may be the time property (see "Wall time")
//	...     65        signature: ecdsa.SignCompact over SHA-256 of every byte above,
//	                  recovery code 31..34 (compressed key)
//
// The size is 43 + 39n + 1 + Σ(1+l) + 65 bytes (Announcement.EncodedLen):
//
//   - with 32 neighbours and no properties: 1357 bytes, which leaves 43 bytes of a
//     1400-byte datagram for properties (e.g. "gateway", "master", "relay" take 22,
//     for 1378 bytes in all);
//   - with 32 neighbours and the most properties (16 of 32 bytes): 1885 bytes, which
//     does not fit; a router that must stay within one 1400-byte datagram keeps
//     EncodedLen() <= 1400 (MaxDatagramNeighbours neighbours and a few short
//     properties);
//   - at every limit (255 neighbours, 16 properties of 32 bytes): MaxEncodedLen,
//     10582 bytes.
//
// With the time property (16 bytes until the year 2286) every size above grows by its
// length; 32 neighbours, "gateway", "master", "relay" and the time take 1394 bytes.
//
// Unmarshal is strict: it accepts exactly the encodings MarshalBinary produces (the
// version, every length and limit, key prefixes, no duplicate neighbours or
// properties, no trailing bytes), so an accepted datagram re-encodes to the same bytes.
// It does not check the signature: Verify (or Graph.Update) does.
//
// # Wall time
//
// A Raspberry Pi has no real-time clock, so nodes learn the date from each other:
// an announcement carries its origin's wall-clock time when it signed
// (Announcement.Time, Unix milliseconds), covered by the signature like everything
// else. The encoding has no room for a new field that older nodes would accept: they
// take only version 1 and refuse trailing bytes, and a version 2 would make every
// node that knows the time invisible to them, splitting a fleet that is being
// updated node by node. So the time travels as the last property, "_t" followed by
// the decimal milliseconds without leading zeros (e.g. "_t1767225600000"): an older
// node sees one more property, which no role query asks for, and verifies, stores
// and forwards the announcement byte for byte. A node that does not know the time
// sends no such property (Time 0). Properties of that form ("_t" and digits only)
// are reserved: anywhere but last, or not in canonical form, they make the
// announcement malformed, so that every accepted encoding still re-encodes to the
// same bytes. The time counts against MaxProperties, leaving 15 for roles.
//
// The router fills nothing itself: Sign stamps the announcement of an origin for
// which a time source was set (SetTimeSource), and Graph.Times lists the times held
// with when each was stored, from which the receiver works out the origin's time now.
//
// # Graph and routes
//
// Graph holds the newest verified announcement of every origin. A directed edge u→v
// is usable only when u's announcement lists v and v's lists u, because a link is a
// two-way session. Its latency weight is RTT/2 averaged over both reports,
// (rtt(u→v)+rtt(v→u))/4, at least 1 µs; its hop weight is 1. Route searches start at
// the graph's own node; ties between equally good paths are broken by key bytes so
// that every node computes the same paths from the same announcements.
//
// # Sequence restart
//
// Announcements replace one another by Seq only, as OSPF LSAs do. A node that reboots
// starts counting at 1 again while the rest of the mesh still holds its pre-restart
// announcement with a higher Seq, and would refuse the new ones until that old one
// expires. To avoid that, Graph.Update does not store announcements whose origin is
// the graph's own node but records the highest such Seq (after checking the
// signature), which HighestSeenSelfSeq reports; the router then announces with a Seq
// above it, and the new announcement replaces the stale one everywhere. A node learns
// its old announcement as soon as a neighbour syncs its graph (Graph.All) to it.
package topology
