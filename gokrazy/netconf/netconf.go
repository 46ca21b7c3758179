package netconf

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Interface configures one network interface.
type Interface struct {
	// Name is the kernel interface name, e.g. "usb0".
	Name string
	// Address, if valid, is a static IPv4 address with prefix length
	// ("192.0.2.7/24"); otherwise the interface uses DHCPv4.
	Address netip.Prefix
	// Gateway is the static default gateway; ignored with DHCP.
	Gateway netip.Addr
	// DNS are static name servers; ignored with DHCP.
	DNS []netip.Addr
}

// Config configures Start. Zero values take the defaults per field.
type Config struct {
	// Interfaces are brought up in the background; their order sets the
	// default-route metric (first = preferred) and the resolv.conf order.
	Interfaces []Interface
	// Hostname is sent to DHCP servers (option 12); may be empty.
	Hostname string
	// ResolvConf is the file to write name servers to; default
	// "/etc/resolv.conf".
	ResolvConf string
	// AppearTimeout is how long to wait for an interface to exist before
	// reporting it absent; default 10 s.
	AppearTimeout time.Duration
	// CarrierTimeout is how long to wait for link carrier before the
	// first DHCP attempt (which goes ahead anyway); default 5 s.
	CarrierTimeout time.Duration
	// Poll is the interval for the two waits above; default 50 ms.
	Poll time.Duration
	// DHCPTimeout is the wait for each DHCP reply; default 2 s.
	DHCPTimeout time.Duration
	// DHCPRetries is how often each DHCP message is sent; default 3.
	DHCPRetries int
	// RetryMin and RetryMax bound the exponential delay between failed
	// DHCP acquisitions; defaults 1 s and 60 s.
	RetryMin, RetryMax time.Duration
	// Logf receives one line per notable event; nil discards them.
	Logf func(format string, args ...any)
}

// Interface states, as reported in IfaceState.State.
const (
	// StateWaiting: the interface does not exist yet.
	StateWaiting = "waiting"
	// StateAbsent: the interface did not appear within AppearTimeout. It
	// is still watched for (every second) and configured if it comes.
	StateAbsent = "absent"
	// StateConfiguring: up, waiting for a DHCP lease.
	StateConfiguring = "configuring"
	// StateUp: an address is configured.
	StateUp = "up"
	// StateError: configuration failed (see Error); DHCP keeps retrying.
	StateError = "error"
)

// IfaceState is the status of one configured interface.
type IfaceState struct {
	// Name is the interface name.
	Name string `json:"name"`
	// Mode is "dhcp" or "static".
	Mode string `json:"mode"`
	// State is one of the State* constants.
	State string `json:"state"`
	// Address is the configured IPv4 address with prefix, if any.
	Address netip.Prefix `json:"address,omitzero"`
	// Gateway is the default gateway, if any.
	Gateway netip.Addr `json:"gateway,omitzero"`
	// DNS are the name servers learned or configured.
	DNS []netip.Addr `json:"dns,omitempty"`
	// Server is the DHCP server that granted the lease.
	Server netip.Addr `json:"dhcp_server,omitzero"`
	// LeaseExpiry is when the current DHCP lease ends.
	LeaseExpiry time.Time `json:"lease_expiry,omitzero"`
	// Renewals counts successful lease renewals.
	Renewals int `json:"renewals"`
	// Error is the latest error, if any.
	Error string `json:"error,omitempty"`
}

// Net is the running network configuration. Create it with Start.
type Net struct {
	cfg    Config
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	states  []*IfaceState // in Config.Interfaces order
	domains []string      // DHCP search domains per interface index
	changed chan struct{} // closed and replaced on every state change
}

// Start sets lo up (returning an error if that fails) and then configures
// every interface of cfg in the background until ctx ends or Stop is
// called. Interfaces that do not appear within AppearTimeout are reported
// as absent, not as an error, and configured if they appear later.
func Start(ctx context.Context, cfg Config) (*Net, error) {
	if cfg.ResolvConf == "" {
		cfg.ResolvConf = "/etc/resolv.conf"
	}
	if cfg.AppearTimeout <= 0 {
		cfg.AppearTimeout = 10 * time.Second
	}
	if cfg.CarrierTimeout <= 0 {
		cfg.CarrierTimeout = 5 * time.Second
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 50 * time.Millisecond
	}
	if cfg.DHCPTimeout <= 0 {
		cfg.DHCPTimeout = 2 * time.Second
	}
	if cfg.DHCPRetries <= 0 {
		cfg.DHCPRetries = 3
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = time.Second
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(60*time.Second, cfg.RetryMin)
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	lo, err := netlink.LinkByName("lo")
	if err == nil {
		err = netlink.LinkSetUp(lo)
	}
	if err != nil {
		return nil, fmt.Errorf("netconf: lo up: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	n := &Net{cfg: cfg, cancel: cancel, changed: make(chan struct{})}
	n.domains = make([]string, len(cfg.Interfaces))
	for i, ifc := range cfg.Interfaces {
		st := &IfaceState{Name: ifc.Name, Mode: "dhcp", State: StateWaiting}
		if ifc.Address.IsValid() {
			st.Mode = "static"
		}
		n.states = append(n.states, st)
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.run(ctx, i, ifc)
		}()
	}
	return n, nil
}

// Stop ends all background work (leases are not released: the kernel
// drops the addresses when their lifetimes run out) and waits for it.
func (n *Net) Stop() {
	n.cancel()
	n.wg.Wait()
}

// State returns a snapshot of every configured interface, in Config
// order.
func (n *Net) State() []IfaceState {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]IfaceState, len(n.states))
	for i, st := range n.states {
		out[i] = *st
		out[i].DNS = slices.Clone(st.DNS)
	}
	return out
}

// WaitUp blocks until the named interface has an address (and returns
// its state), or until ctx ends or the interface turns out absent.
func (n *Net) WaitUp(ctx context.Context, name string) (IfaceState, error) {
	for {
		n.mu.Lock()
		var st *IfaceState
		for _, s := range n.states {
			if s.Name == name {
				st = s
			}
		}
		changed := n.changed
		var snap IfaceState
		if st != nil {
			snap = *st
		}
		n.mu.Unlock()
		switch {
		case st == nil:
			return IfaceState{}, fmt.Errorf("netconf: %s is not configured", name)
		case snap.Address.IsValid():
			return snap, nil
		case snap.State == StateAbsent:
			return snap, fmt.Errorf("netconf: %s is absent", name)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return snap, fmt.Errorf("netconf: %s not up (%s): %w", name, snap.State, ctx.Err())
		}
	}
}

// update changes interface i's state under the lock and wakes waiters.
func (n *Net) update(i int, f func(st *IfaceState)) {
	n.mu.Lock()
	f(n.states[i])
	close(n.changed)
	n.changed = make(chan struct{})
	n.mu.Unlock()
}

func (n *Net) setError(i int, err error) {
	n.cfg.Logf("netconf: %s: %v", n.cfg.Interfaces[i].Name, err)
	n.update(i, func(st *IfaceState) {
		if !st.Address.IsValid() {
			st.State = StateError
		}
		st.Error = err.Error()
	})
}

// run configures one interface.
func (n *Net) run(ctx context.Context, i int, ifc Interface) {
	link, err := n.waitLink(ctx, ifc.Name, n.cfg.AppearTimeout, n.cfg.Poll)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		n.cfg.Logf("netconf: %s: %v; still watching for it", ifc.Name, err)
		n.update(i, func(st *IfaceState) { st.State = StateAbsent; st.Error = err.Error() })
		// Absent is reported, not final: a USB adapter can enumerate
		// later than AppearTimeout (behind a hub, or under emulation)
		// or be plugged in while the node runs, and it is configured
		// when it comes.
		if link, err = n.waitLink(ctx, ifc.Name, 0, latePoll); err != nil {
			return
		}
		n.cfg.Logf("netconf: %s appeared", ifc.Name)
		n.update(i, func(st *IfaceState) { st.State = StateWaiting; st.Error = "" })
	}
	if err := netlink.LinkSetUp(link); err != nil {
		n.setError(i, fmt.Errorf("set up: %w", err))
		return
	}
	if ifc.Address.IsValid() {
		if err := n.applyStatic(i, link, ifc); err != nil {
			n.setError(i, err)
		}
		return
	}
	n.update(i, func(st *IfaceState) { st.State = StateConfiguring })
	n.waitCarrier(ctx, link)
	n.dhcpLoop(ctx, i, link)
}

// latePoll is how often an interface reported absent is looked for again.
const latePoll = time.Second

// waitLink polls every poll for the interface to exist, for at most timeout
// (0: until ctx ends).
func (n *Net) waitLink(ctx context.Context, name string, timeout, poll time.Duration) (netlink.Link, error) {
	deadline := time.Now().Add(timeout)
	for {
		link, err := netlink.LinkByName(name)
		if err == nil {
			return link, nil
		}
		var notFound netlink.LinkNotFoundError
		if !errors.As(err, &notFound) {
			return nil, err
		}
		if timeout > 0 && time.Now().After(deadline) {
			return nil, fmt.Errorf("interface did not appear within %v", timeout)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(poll):
		}
	}
}

// waitCarrier waits (bounded) until the link reports carrier, so the
// first DHCP discover is not sent into a dead link.
func (n *Net) waitCarrier(ctx context.Context, link netlink.Link) {
	deadline := time.Now().Add(n.cfg.CarrierTimeout)
	for time.Now().Before(deadline) {
		l, err := netlink.LinkByIndex(link.Attrs().Index)
		if err != nil || l.Attrs().RawFlags&unix.IFF_RUNNING != 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(n.cfg.Poll):
		}
	}
}

// metric is the default-route priority for interface i: earlier
// interfaces are preferred, and every interface keeps its own default
// route instead of replacing another's.
func metric(i int) int { return 100 * (i + 1) }

func (n *Net) applyStatic(i int, link netlink.Link, ifc Interface) error {
	if !ifc.Address.Addr().Is4() {
		return fmt.Errorf("static address %v is not IPv4", ifc.Address)
	}
	addr := &netlink.Addr{IPNet: prefixToIPNet(ifc.Address)}
	if err := netlink.AddrReplace(link, addr); err != nil {
		return fmt.Errorf("add %v: %w", ifc.Address, err)
	}
	if ifc.Gateway.IsValid() {
		r := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: ifc.Gateway.AsSlice(), Priority: metric(i)}
		if err := netlink.RouteReplace(r); err != nil {
			return fmt.Errorf("default route via %v: %w", ifc.Gateway, err)
		}
	}
	n.update(i, func(st *IfaceState) {
		st.State = StateUp
		st.Address = ifc.Address
		st.Gateway = ifc.Gateway
		st.DNS = slices.Clone(ifc.DNS)
		st.Error = ""
	})
	n.cfg.Logf("netconf: %s: static %v gateway %v", ifc.Name, ifc.Address, ifc.Gateway)
	return n.writeResolvConf()
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
