package netconf

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/vishvananda/netlink"
)

// defaultLease is assumed when a server sends no lease time.
const defaultLease = time.Hour

// dhcpLoop acquires and keeps a lease on interface i until ctx ends.
func (n *Net) dhcpLoop(ctx context.Context, i int, link netlink.Link) {
	delay := n.cfg.RetryMin
	for ctx.Err() == nil {
		start := time.Now()
		lease, err := n.acquire(ctx, link)
		if err == nil {
			err = n.applyLease(i, link, lease.ACK, start)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			n.setError(i, fmt.Errorf("dhcp: %w (retry in %v)", err, delay))
			if !sleep(ctx, delay) {
				return
			}
			delay = min(2*delay, n.cfg.RetryMax)
			continue
		}
		delay = n.cfg.RetryMin
		n.holdLease(ctx, i, link, lease, start)
	}
}

// holdLease renews lease at T1 and keeps it until it is lost (NAK or
// expiry, after which the address is removed) or ctx ends.
func (n *Net) holdLease(ctx context.Context, i int, link netlink.Link, lease *nclient4.Lease, start time.Time) {
	for {
		leaseTime := lease.ACK.IPAddressLeaseTime(defaultLease)
		expiry := start.Add(leaseTime)
		t1 := start.Add(lease.ACK.IPAddressRenewalTime(leaseTime / 2))
		if !sleep(ctx, time.Until(t1)) {
			return
		}
		for {
			now := time.Now()
			if !now.Before(expiry) {
				n.dropLease(i, link, errors.New("lease expired without renewal"))
				return
			}
			renewed, err := n.renew(ctx, link, lease)
			if err == nil {
				if err := n.applyLease(i, link, renewed.ACK, now); err != nil {
					n.setError(i, err)
				} else {
					n.update(i, func(st *IfaceState) { st.Renewals++ })
				}
				lease, start = renewed, now
				break
			}
			if ctx.Err() != nil {
				return
			}
			var nak *nclient4.ErrNak
			if errors.As(err, &nak) {
				n.dropLease(i, link, fmt.Errorf("renewal refused: %w", err))
				return
			}
			n.setError(i, fmt.Errorf("dhcp renew: %w", err))
			// RFC 2131 4.4.5: retry at half the remaining time, here
			// at least a second apart.
			left := time.Until(expiry)
			if !sleep(ctx, max(left/2, min(time.Second, left))) {
				return
			}
		}
	}
}

func (n *Net) clientOpts() []nclient4.ClientOpt {
	return []nclient4.ClientOpt{
		nclient4.WithTimeout(n.cfg.DHCPTimeout),
		nclient4.WithRetry(n.cfg.DHCPRetries),
	}
}

func (n *Net) requestMods() []dhcpv4.Modifier {
	mods := []dhcpv4.Modifier{dhcpv4.WithRequestedOptions(
		dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter, dhcpv4.OptionDomainNameServer,
		dhcpv4.OptionDomainName, dhcpv4.OptionDNSDomainSearchList, dhcpv4.OptionClasslessStaticRoute,
	)}
	if n.cfg.Hostname != "" {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptHostName(n.cfg.Hostname)))
	}
	return mods
}

// acquire runs DISCOVER/OFFER/REQUEST/ACK on link.
func (n *Net) acquire(ctx context.Context, link netlink.Link) (*nclient4.Lease, error) {
	c, err := nclient4.New(link.Attrs().Name, n.clientOpts()...)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Request(ctx, n.requestMods()...)
}

// renew sends a REQUEST for the leased address.
func (n *Net) renew(ctx context.Context, link netlink.Link, lease *nclient4.Lease) (*nclient4.Lease, error) {
	c, err := nclient4.New(link.Attrs().Name, n.clientOpts()...)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Renew(ctx, lease, n.requestMods()...)
}

// lifetime converts a lease time to a netlink address lifetime in
// seconds; 0 (permanent) for infinite leases.
func lifetime(d time.Duration) int {
	secs := d / time.Second
	if secs <= 0 || secs >= math.MaxUint32 {
		return 0
	}
	return int(secs)
}

// applyLease configures the address, routes and DNS of an ACK on
// interface i. start is when the exchange began (the lease's start).
func (n *Net) applyLease(i int, link netlink.Link, ack *dhcpv4.DHCPv4, start time.Time) error {
	ip4 := ack.YourIPAddr.To4()
	if ip4 == nil || ip4.IsUnspecified() {
		return errors.New("ACK without an address")
	}
	mask := ack.SubnetMask()
	if mask == nil {
		mask = ip4.DefaultMask()
	}
	ones, _ := mask.Size()
	addr, _ := netip.AddrFromSlice(ip4)
	prefix := netip.PrefixFrom(addr, ones)
	leaseTime := ack.IPAddressLeaseTime(defaultLease)
	lft := lifetime(leaseTime)

	n.mu.Lock()
	old := n.states[i].Address
	oldGw := n.states[i].Gateway
	n.mu.Unlock()
	// Valid and preferred lifetimes make the kernel drop the address by
	// itself if renewals stop, even if this process is gone.
	na := &netlink.Addr{IPNet: prefixToIPNet(prefix), ValidLft: lft, PreferedLft: lft}
	if err := netlink.AddrReplace(link, na); err != nil {
		return fmt.Errorf("add %v: %w", prefix, err)
	}
	if old.IsValid() && old != prefix {
		netlink.AddrDel(link, &netlink.Addr{IPNet: prefixToIPNet(old)})
	}

	var gw netip.Addr
	if routes := ack.ClasslessStaticRoute(); len(routes) > 0 {
		// RFC 3442: classless routes, when present, replace the router
		// option.
		for _, r := range routes {
			rt := &netlink.Route{LinkIndex: link.Attrs().Index, Dst: r.Dest, Gw: r.Router, Priority: metric(i)}
			if r.Router == nil || r.Router.IsUnspecified() {
				rt.Gw = nil
				rt.Scope = netlink.SCOPE_LINK
			}
			if ones, _ := r.Dest.Mask.Size(); ones == 0 {
				rt.Dst = nil
				if a, ok := netip.AddrFromSlice(r.Router.To4()); ok {
					gw = a
				}
			}
			if err := netlink.RouteReplace(rt); err != nil {
				return fmt.Errorf("route %v via %v: %w", r.Dest, r.Router, err)
			}
		}
	} else if routers := ack.Router(); len(routers) > 0 {
		gw, _ = netip.AddrFromSlice(routers[0].To4())
		rt := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: routers[0].To4(), Priority: metric(i)}
		if err := netlink.RouteReplace(rt); err != nil {
			return fmt.Errorf("default route via %v: %w", gw, err)
		}
	}
	if oldGw.IsValid() && oldGw != gw {
		netlink.RouteDel(&netlink.Route{LinkIndex: link.Attrs().Index, Gw: oldGw.AsSlice(), Priority: metric(i)})
	}

	var dns []netip.Addr
	for _, s := range ack.DNS() {
		if a, ok := netip.AddrFromSlice(s.To4()); ok {
			dns = append(dns, a)
		}
	}
	var domains []string
	if d := ack.DomainName(); d != "" {
		domains = append(domains, d)
	}
	if sl := ack.DomainSearch(); sl != nil {
		domains = append(domains, sl.Labels...)
	}
	server, _ := netip.AddrFromSlice(ack.ServerIdentifier().To4())
	changed := old != prefix
	n.update(i, func(st *IfaceState) {
		st.State = StateUp
		st.Address = prefix
		st.Gateway = gw
		st.DNS = dns
		st.Server = server
		st.LeaseExpiry = start.Add(leaseTime)
		st.Error = ""
	})
	n.mu.Lock()
	n.domains[i] = strings.Join(domains, " ")
	n.mu.Unlock()
	if changed {
		n.cfg.Logf("netconf: %s: DHCP lease %v from %v, gateway %v, lease %v", link.Attrs().Name, prefix, server, gw, leaseTime)
	}
	return n.writeResolvConf()
}

// dropLease removes a lost lease's address and default route.
func (n *Net) dropLease(i int, link netlink.Link, why error) {
	n.mu.Lock()
	old, oldGw := n.states[i].Address, n.states[i].Gateway
	n.mu.Unlock()
	if old.IsValid() {
		netlink.AddrDel(link, &netlink.Addr{IPNet: prefixToIPNet(old)})
	}
	if oldGw.IsValid() {
		netlink.RouteDel(&netlink.Route{LinkIndex: link.Attrs().Index, Gw: oldGw.AsSlice(), Priority: metric(i)})
	}
	n.cfg.Logf("netconf: %s: %v", link.Attrs().Name, why)
	n.update(i, func(st *IfaceState) {
		st.State = StateConfiguring
		st.Address = netip.Prefix{}
		st.Gateway = netip.Addr{}
		st.DNS = nil
		st.LeaseExpiry = time.Time{}
		st.Error = why.Error()
	})
	n.mu.Lock()
	n.domains[i] = ""
	n.mu.Unlock()
	if err := n.writeResolvConf(); err != nil {
		n.cfg.Logf("netconf: %v", err)
	}
}

// resolvConf renders the name servers and search domains of all
// interfaces, in Config order, without duplicates.
func (n *Net) resolvConf() []byte {
	n.mu.Lock()
	defer n.mu.Unlock()
	var servers []netip.Addr
	var search []string
	for i, st := range n.states {
		for _, s := range st.DNS {
			if !slices.Contains(servers, s) {
				servers = append(servers, s)
			}
		}
		for _, d := range strings.Fields(n.domains[i]) {
			if !slices.Contains(search, d) {
				search = append(search, d)
			}
		}
	}
	var b strings.Builder
	b.WriteString("# written by skyfleetd (gokrazy/netconf)\n")
	if len(search) > 0 {
		b.WriteString("search " + strings.Join(search, " ") + "\n")
	}
	for _, s := range servers {
		b.WriteString("nameserver " + s.String() + "\n")
	}
	return []byte(b.String())
}

// writeResolvConf replaces ResolvConf atomically (write + rename), so
// resolvers never read a half-written file.
func (n *Net) writeResolvConf() error {
	content := n.resolvConf()
	dir := filepath.Dir(n.cfg.ResolvConf)
	f, err := os.CreateTemp(dir, ".resolv.conf.")
	if err != nil {
		return fmt.Errorf("write resolv.conf: %w", err)
	}
	_, werr := f.Write(content)
	cerr := f.Close()
	if err := errors.Join(werr, cerr, os.Chmod(f.Name(), 0o644)); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write resolv.conf: %w", err)
	}
	if err := os.Rename(f.Name(), n.cfg.ResolvConf); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write resolv.conf: %w", err)
	}
	return nil
}

// sleep waits d or until ctx ends; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
