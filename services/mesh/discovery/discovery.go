// Package discovery finds mesh neighbours on the local network (fleet.toml
// [network] lan_discovery): every node multicasts a small beacon naming its public
// key and mesh UDP port on each suitable IPv4 interface, and reports the beacons of
// other nodes to the router, which then links to them.
//
// Beacons are authenticated with the network key, not encrypted: only nodes holding
// the psk can make one that others accept, but anyone on the link can read the
// public key and port in it. A beacon with a bad tag is counted and dropped, with no
// answer; the node's own beacons and replays of a recent nonce are dropped too. A
// beacon replayed later or from another address can at worst make the router try a
// handshake that fails, since the endpoint's IP is the unauthenticated source.
//
// The group is 239.255.55.55:5506 (administratively scoped, TTL 1: beacons never
// leave the link). Interfaces are rescanned periodically, so that one coming up after
// Start (Wi-Fi joining, a cable plugged in) is used.
package discovery

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
)

// Defaults of Config.
const (
	// DefaultGroup is the multicast group and port beacons go to.
	DefaultGroup = "239.255.55.55:5506"
	// DefaultInterval is how often a node sends its beacon on each interface.
	DefaultInterval = 2 * time.Second
	// DefaultRescan is how often the interfaces are listed again.
	DefaultRescan = 10 * time.Second

	// replayMemory is how many recent nonces a node remembers.
	replayMemory = 4096
)

// Config configures Start.
type Config struct {
	// PSK is the network key; beacons are tagged with a key derived from it.
	PSK [32]byte
	// PublicKey is this node's 33-byte compressed public key, announced in beacons
	// and used to recognise its own beacons.
	PublicKey []byte
	// MeshPort is this node's mesh UDP port, announced in beacons (not 0).
	MeshPort uint16
	// Group is the IPv4 multicast group and port as "ip:port". Default
	// DefaultGroup.
	Group string
	// Interval is the time between two beacons on an interface; each is jittered
	// by up to ±10%. Default DefaultInterval (2 s).
	Interval time.Duration
	// Rescan is the time between two listings of the interfaces. Default
	// DefaultRescan (10 s).
	Rescan time.Duration
	// Interfaces names the interfaces to use. Empty: every interface that is up,
	// multicast-capable, not loopback and has an IPv4 address. A named interface is
	// used when it is up and has an IPv4 address, even loopback (for tests).
	Interfaces []string
	// Found is called for every valid beacon of another node, from the discovery
	// goroutine (one at a time, so it should return quickly): pub is the sender's
	// 33-byte public key (a copy), endpoint its mesh endpoint "ip:port", the
	// beacon's source IP with the advertised port. Nil: beacons are only counted.
	Found func(pub []byte, endpoint string)
}

// Stats are the counters of a Discovery since Start.
type Stats struct {
	// Sent counts beacons sent (one per interface per interval); SendErrors the
	// sends that failed.
	Sent, SendErrors uint64
	// Received counts datagrams received on the group's port, whatever they are.
	Received uint64
	// Found counts valid beacons of other nodes, each passed to Config.Found.
	Found uint64
	// BadTag counts beacons whose tag did not verify: another network key, or a
	// forgery. They are dropped.
	BadTag uint64
	// Malformed counts datagrams that are not beacons of this version (too short or
	// long, bad magic, other version, bad key or port) and beacons from a source
	// address no endpoint can be made of (0.0.0.0). They are dropped.
	Malformed uint64
	// Replays counts beacons whose nonce was seen recently. They are dropped.
	Replays uint64
	// Own counts this node's own beacons looped back. They are dropped.
	Own uint64
	// Interfaces is the number of interfaces in use now.
	Interfaces int
}

// Discovery is a running announcer and listener; Close stops it.
type Discovery struct {
	cfg   Config
	key   tagKey
	group *net.UDPAddr
	conn  *net.UDPConn
	pc    *ipv4.PacketConn

	closed    chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup

	mu     sync.Mutex
	joined map[int]net.Interface // by index; only the send goroutine changes it

	// Recent nonces, a set with FIFO eviction; only the receive goroutine uses them.
	seen     map[[8]byte]struct{}
	seenRing [replayMemory][8]byte
	seenNext int

	sent, sendErrs, received, found, badTag, malformed, replays, own atomic.Uint64
}

// Start opens the multicast socket, joins the group on the suitable interfaces,
// sends the first beacon at once and keeps announcing and listening until Close.
// Having no suitable interface yet is not an error: they are looked for again every
// Rescan. Errors: a bad PublicKey, a zero MeshPort, a Group that is not an IPv4
// multicast "ip:port", or the socket's error (for example another program holding
// the port without SO_REUSEADDR).
func Start(cfg Config) (*Discovery, error) {
	if err := checkKey(cfg.PublicKey); err != nil {
		return nil, err
	}
	if cfg.MeshPort == 0 {
		return nil, errors.New("discovery: MeshPort is 0")
	}
	if cfg.Group == "" {
		cfg.Group = DefaultGroup
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Rescan <= 0 {
		cfg.Rescan = DefaultRescan
	}
	g, err := netip.ParseAddrPort(cfg.Group)
	if err != nil || !g.Addr().Is4() || !g.Addr().IsMulticast() || g.Port() == 0 {
		return nil, fmt.Errorf("discovery: group %q: want an IPv4 multicast ip:port", cfg.Group)
	}
	cfg.PublicKey = slices.Clone(cfg.PublicKey)
	cfg.Interfaces = slices.Clone(cfg.Interfaces)
	// For a multicast address Go binds the port on 0.0.0.0 with SO_REUSEADDR, so
	// several nodes on one host share it; onlyJoinedGroups keeps other groups'
	// traffic to this port out.
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(onlyJoinedGroups)
	}}
	pconn, err := lc.ListenPacket(context.Background(), "udp4", g.String())
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	conn := pconn.(*net.UDPConn)
	pc := ipv4.NewPacketConn(conn)
	if err := pc.SetMulticastTTL(1); err != nil {
		conn.Close()
		return nil, fmt.Errorf("discovery: multicast TTL: %w", err)
	}
	// Loopback on: other nodes on this host (and tests) hear us; we drop our own.
	if err := pc.SetMulticastLoopback(true); err != nil {
		conn.Close()
		return nil, fmt.Errorf("discovery: multicast loopback: %w", err)
	}
	d := &Discovery{
		cfg:    cfg,
		key:    deriveKey(cfg.PSK),
		group:  net.UDPAddrFromAddrPort(g),
		conn:   conn,
		pc:     pc,
		closed: make(chan struct{}),
		joined: make(map[int]net.Interface),
		seen:   make(map[[8]byte]struct{}, replayMemory),
	}
	d.rescan()
	d.wg.Add(2)
	go d.receiveLoop()
	go d.sendLoop()
	return d, nil
}

// Close stops announcing and listening and closes the socket, which leaves the
// group. Found is not called after Close returns (so Found must not call Close).
// Closing twice returns net.ErrClosed.
func (d *Discovery) Close() error {
	err := net.ErrClosed
	d.closeOnce.Do(func() {
		close(d.closed)
		err = d.conn.Close()
		d.wg.Wait()
		d.mu.Lock()
		clear(d.joined)
		d.mu.Unlock()
	})
	return err
}

// Stats returns the counters.
func (d *Discovery) Stats() Stats {
	d.mu.Lock()
	n := len(d.joined)
	d.mu.Unlock()
	return Stats{
		Sent:       d.sent.Load(),
		SendErrors: d.sendErrs.Load(),
		Received:   d.received.Load(),
		Found:      d.found.Load(),
		BadTag:     d.badTag.Load(),
		Malformed:  d.malformed.Load(),
		Replays:    d.replays.Load(),
		Own:        d.own.Load(),
		Interfaces: n,
	}
}

// Interfaces returns the names of the interfaces in use now, sorted.
func (d *Discovery) Interfaces() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var names []string
	for _, ifi := range d.joined {
		names = append(names, ifi.Name)
	}
	slices.Sort(names)
	return names
}

// suitable reports whether ifi should carry beacons.
func (d *Discovery) suitable(ifi net.Interface) bool {
	if ifi.Flags&net.FlagUp == 0 {
		return false
	}
	if len(d.cfg.Interfaces) > 0 {
		if !slices.Contains(d.cfg.Interfaces, ifi.Name) {
			return false
		}
	} else if ifi.Flags&net.FlagMulticast == 0 || ifi.Flags&net.FlagLoopback != 0 {
		return false
	}
	return ipv4Of(ifi) != nil
}

// ipv4Of returns the first (primary) IPv4 address of ifi, nil if it has none.
func ipv4Of(ifi net.Interface) net.IP {
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
			return ipn.IP.To4()
		}
	}
	return nil
}

// rescan joins the group on suitable interfaces not yet joined and leaves it on
// those that went away or down.
func (d *Discovery) rescan() {
	ifs, err := net.Interfaces()
	if err != nil {
		return
	}
	now := make(map[int]net.Interface)
	for _, ifi := range ifs {
		if d.suitable(ifi) {
			now[ifi.Index] = ifi
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for idx, old := range d.joined {
		if ifi, ok := now[idx]; !ok || ifi.Name != old.Name {
			d.pc.LeaveGroup(&old, d.group) // may fail: the interface is gone
			delete(d.joined, idx)
		}
	}
	for idx, ifi := range now {
		if _, ok := d.joined[idx]; ok {
			d.joined[idx] = ifi
			continue
		}
		if err := d.pc.JoinGroup(&ifi, d.group); err != nil && !errors.Is(err, syscall.EADDRINUSE) {
			continue // try again at the next rescan
		}
		d.joined[idx] = ifi
	}
}

// sendLoop sends a beacon on every joined interface each interval and rescans the
// interfaces each Rescan.
func (d *Discovery) sendLoop() {
	defer d.wg.Done()
	lastScan := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-d.closed:
			return
		case <-timer.C:
		}
		if time.Since(lastScan) >= d.cfg.Rescan {
			d.rescan()
			lastScan = time.Now()
		}
		d.announce()
		timer.Reset(jitter(d.cfg.Interval))
	}
}

// announce sends one beacon, with a fresh nonce, on each joined interface, from the
// interface's primary IPv4 address (which receivers take as the endpoint's IP; the
// kernel's own choice would be an address of another interface on loopback, or none).
func (d *Discovery) announce() {
	d.mu.Lock()
	ifs := make([]net.Interface, 0, len(d.joined))
	for _, ifi := range d.joined {
		ifs = append(ifs, ifi)
	}
	d.mu.Unlock()
	for _, ifi := range ifs {
		b := Beacon{PublicKey: d.cfg.PublicKey, Port: d.cfg.MeshPort}
		rand.Read(b.Nonce[:])
		msg, err := d.key.marshal(b)
		if err != nil {
			d.sendErrs.Add(1)
			continue
		}
		src := ipv4Of(ifi)
		if src == nil { // the address went away; the next rescan drops the interface
			d.sendErrs.Add(1)
			continue
		}
		if err := d.pc.SetMulticastInterface(&ifi); err != nil {
			d.sendErrs.Add(1)
			continue
		}
		cm := &ipv4.ControlMessage{IfIndex: ifi.Index, Src: src}
		if _, err := d.pc.WriteTo(msg, cm, d.group); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			d.sendErrs.Add(1)
			continue
		}
		d.sent.Add(1)
	}
}

// jitter returns d changed by a random amount of up to ±10%.
func jitter(d time.Duration) time.Duration {
	span := int64(d) / 5
	if span <= 0 {
		return d
	}
	return d - time.Duration(span/2) + time.Duration(mrand.Int64N(span))
}

// receiveLoop reads the socket until Close, checking every datagram.
func (d *Discovery) receiveLoop() {
	defer d.wg.Done()
	buf := make([]byte, 2048)
	for {
		n, src, err := d.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			select {
			case <-d.closed:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // a transient error
			continue
		}
		d.received.Add(1)
		d.handle(buf[:n], src)
	}
}

// handle checks one datagram and reports a valid beacon of another node.
func (d *Discovery) handle(b []byte, src netip.AddrPort) {
	bc, err := d.key.parse(b)
	switch {
	case errors.Is(err, ErrTag):
		d.badTag.Add(1)
		return
	case err != nil:
		d.malformed.Add(1)
		return
	}
	ip := src.Addr().Unmap()
	if !ip.IsValid() || ip.IsUnspecified() || ip.IsMulticast() {
		d.malformed.Add(1) // no endpoint can be made of this source
		return
	}
	if bytes.Equal(bc.PublicKey, d.cfg.PublicKey) {
		d.own.Add(1)
		return
	}
	if _, ok := d.seen[bc.Nonce]; ok {
		d.replays.Add(1)
		return
	}
	if len(d.seen) >= replayMemory {
		delete(d.seen, d.seenRing[d.seenNext])
	}
	d.seen[bc.Nonce] = struct{}{}
	d.seenRing[d.seenNext] = bc.Nonce
	d.seenNext = (d.seenNext + 1) % replayMemory
	d.found.Add(1)
	if d.cfg.Found != nil {
		select {
		case <-d.closed:
			return
		default:
		}
		d.cfg.Found(bc.PublicKey, netip.AddrPortFrom(ip, bc.Port).String())
	}
}
