package wifi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
)

// Pool is the address pool the access point's DHCP server (RFC 2131) leases
// to phones: a /24 with the node at .1.
type Pool struct {
	// Server is the node's address on the AP interface, e.g. 10.42.0.1.
	Server net.IP
	// First and Last bound the leased addresses, inclusive, in Server's /24.
	First, Last net.IP
	// Lease is how long a lease lasts; phones renew at half of it.
	Lease time.Duration
}

// DefaultPool is what the access point uses: 10.42.0.1 for the node,
// 10.42.0.10-10.42.0.209 for phones (200, more than an AP serves), one-hour
// leases so that a phone that left frees its address soon.
var DefaultPool = Pool{Server: net.IPv4(10, 42, 0, 1).To4(), First: net.IPv4(10, 42, 0, 10).To4(), Last: net.IPv4(10, 42, 0, 209).To4(), Lease: time.Hour}

type lease struct {
	ip      uint32
	expires time.Time
	bound   bool // acknowledged, not just offered
}

// leases hands out a Pool's addresses by client MAC. Its map is bounded by
// the pool's size: a stranger sending DISCOVERs from random MACs can take
// the free addresses for an offer's 60 s, never grow the map beyond them.
type leases struct {
	pool  Pool
	mu    sync.Mutex
	byMAC map[[6]byte]*lease
	now   func() time.Time
}

// offerHold is how long an offered, not yet requested address stays held.
const offerHold = 60 * time.Second

func ip4(ip net.IP) uint32 { return binary.BigEndian.Uint32(ip.To4()) }

func ipOf(u uint32) net.IP { return net.IPv4(byte(u>>24), byte(u>>16), byte(u>>8), byte(u)).To4() }

func newLeases(p Pool) *leases {
	return &leases{pool: p, byMAC: map[[6]byte]*lease{}, now: time.Now}
}

var errPoolFull = errors.New("wifi: DHCP pool exhausted")

// offer returns the address for mac: its current lease, else a free one.
func (l *leases) offer(mac [6]byte) (net.IP, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if le := l.byMAC[mac]; le != nil {
		if !le.bound {
			le.expires = now.Add(offerHold)
		}
		return ipOf(le.ip), nil
	}
	used := map[uint32]bool{}
	for m, le := range l.byMAC {
		if now.After(le.expires) {
			delete(l.byMAC, m)
			continue
		}
		used[le.ip] = true
	}
	for a := ip4(l.pool.First); a <= ip4(l.pool.Last); a++ {
		if !used[a] {
			l.byMAC[mac] = &lease{ip: a, expires: now.Add(offerHold)}
			return ipOf(a), nil
		}
	}
	return nil, errPoolFull
}

// request binds ip to mac if it is mac's (offered or leased) address.
func (l *leases) request(mac [6]byte, ip net.IP) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	le := l.byMAC[mac]
	if le == nil || ip.To4() == nil || le.ip != ip4(ip) || l.now().After(le.expires) && !le.bound {
		return false
	}
	le.bound = true
	le.expires = l.now().Add(l.pool.Lease)
	return true
}

// release frees mac's lease.
func (l *leases) release(mac [6]byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.byMAC, mac)
}

// count returns the bound leases.
func (l *leases) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, le := range l.byMAC {
		if le.bound && l.now().Before(le.expires) {
			n++
		}
	}
	return n
}

// DHCPServer leases addresses to the phones on the access point.
type DHCPServer struct {
	srv    *server4.Server
	leases *leases
}

// ServeDHCP starts a DHCP server on iface for p. The node's address p.Server
// must already be on iface. Router is p.Server so that phones send their
// traffic to the node (which routes nowhere: they reach its pages).
func ServeDHCP(iface string, p Pool) (*DHCPServer, error) {
	if p.Server.To4() == nil || p.First.To4() == nil || p.Last.To4() == nil || ip4(p.First) > ip4(p.Last) || p.Lease <= 0 {
		return nil, fmt.Errorf("wifi: bad DHCP pool %+v", p)
	}
	d := &DHCPServer{leases: newLeases(p)}
	srv, err := server4.NewServer(iface, &net.UDPAddr{IP: net.IPv4zero, Port: dhcpv4.ServerPort}, d.handle)
	if err != nil {
		return nil, fmt.Errorf("wifi: DHCP server on %s: %w", iface, err)
	}
	d.srv = srv
	go srv.Serve()
	return d, nil
}

// Leases returns the number of addresses currently leased.
func (d *DHCPServer) Leases() int { return d.leases.count() }

// Close stops the server.
func (d *DHCPServer) Close() error { return d.srv.Close() }

// handle answers one client message; anything malformed or not for us is
// dropped (server4 already parsed it).
func (d *DHCPServer) handle(conn net.PacketConn, peer net.Addr, m *dhcpv4.DHCPv4) {
	reply := d.reply(m)
	if reply == nil {
		return
	}
	conn.WriteTo(reply.ToBytes(), peer)
}

// reply builds the answer to m, or nil for none (RFC 2131 §4.3).
func (d *DHCPServer) reply(m *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
	if m.OpCode != dhcpv4.OpcodeBootRequest || len(m.ClientHWAddr) != 6 {
		return nil
	}
	var mac [6]byte
	copy(mac[:], m.ClientHWAddr)
	p := d.leases.pool
	mods := []dhcpv4.Modifier{
		dhcpv4.WithServerIP(p.Server),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(p.Server)),
		dhcpv4.WithNetmask(net.CIDRMask(24, 32)),
		dhcpv4.WithRouter(p.Server),
		dhcpv4.WithLeaseTime(uint32(p.Lease / time.Second)),
	}
	switch m.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		ip, err := d.leases.offer(mac)
		if err != nil {
			return nil
		}
		r, err := dhcpv4.NewReplyFromRequest(m, append(mods, dhcpv4.WithMessageType(dhcpv4.MessageTypeOffer), dhcpv4.WithYourIP(ip))...)
		if err != nil {
			return nil
		}
		return r
	case dhcpv4.MessageTypeRequest:
		if sid := m.ServerIdentifier(); sid != nil && !sid.Equal(p.Server) {
			// The client chose another server's offer.
			d.leases.release(mac)
			return nil
		}
		ip := m.RequestedIPAddress()
		if ip == nil || ip.IsUnspecified() {
			ip = m.ClientIPAddr
		}
		if !d.leases.request(mac, ip) {
			// Not this client's address (another network's lease, or
			// expired): a NAK sends it back to DISCOVER.
			r, err := dhcpv4.NewReplyFromRequest(m, dhcpv4.WithServerIP(p.Server),
				dhcpv4.WithOption(dhcpv4.OptServerIdentifier(p.Server)), dhcpv4.WithMessageType(dhcpv4.MessageTypeNak))
			if err != nil {
				return nil
			}
			return r
		}
		r, err := dhcpv4.NewReplyFromRequest(m, append(mods, dhcpv4.WithMessageType(dhcpv4.MessageTypeAck), dhcpv4.WithYourIP(ip))...)
		if err != nil {
			return nil
		}
		return r
	case dhcpv4.MessageTypeRelease, dhcpv4.MessageTypeDecline:
		d.leases.release(mac)
	}
	return nil
}
