package netconf

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"github.com/skyfleet/skyfleet/gokrazy/internal/nstest"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"github.com/vishvananda/netlink"
)

// The DHCP test runs a server and a client in two network namespaces of
// their own, joined by a veth pair, using documentation prefixes
// (192.0.2.0/24, 198.51.100.0/24) that exist only inside them.
const modeEnv = "NETCONF_TEST_MODE"

var (
	serverIP  = net.IPv4(192, 0, 2, 1).To4()
	leasedIP  = net.IPv4(192, 0, 2, 50).To4()
	dnsIP     = net.IPv4(192, 0, 2, 53).To4()
	staticPfx = netip.MustParsePrefix("198.51.100.7/24")
	staticGw  = netip.MustParseAddr("198.51.100.1")
	staticDNS = netip.MustParseAddr("198.51.100.53")
)

func TestMain(m *testing.M) {
	switch os.Getenv(modeEnv) {
	case "":
		os.Exit(m.Run())
	case "server":
		if err := dhcpServer(); err != nil {
			fmt.Println("FAIL", err)
			os.Exit(1)
		}
	case "client":
		if err := dhcpClient(); err != nil {
			fmt.Println("FAIL", err)
			os.Exit(1)
		}
	}
	os.Exit(0)
}

func waitLinkByName(name string) (netlink.Link, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		l, err := netlink.LinkByName(name)
		if err == nil {
			return l, nil
		}
		if time.Now().After(deadline) {
			return nil, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// dhcpServer serves one address with a short lease on veth-srv and prints
// a line per ACK.
func dhcpServer() error {
	secs, _ := strconv.Atoi(os.Getenv("LEASE_SECS"))
	link, err := waitLinkByName("veth-srv")
	if err != nil {
		return err
	}
	if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: &net.IPNet{IP: serverIP, Mask: net.CIDRMask(24, 32)}}); err != nil {
		return err
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return err
	}
	var mu sync.Mutex
	handler := func(conn net.PacketConn, peer net.Addr, m *dhcpv4.DHCPv4) {
		var mt dhcpv4.MessageType
		switch m.MessageType() {
		case dhcpv4.MessageTypeDiscover:
			mt = dhcpv4.MessageTypeOffer
		case dhcpv4.MessageTypeRequest:
			mt = dhcpv4.MessageTypeAck
		default:
			return
		}
		resp, err := dhcpv4.NewReplyFromRequest(m,
			dhcpv4.WithMessageType(mt),
			dhcpv4.WithYourIP(leasedIP),
			dhcpv4.WithServerIP(serverIP),
			dhcpv4.WithOption(dhcpv4.OptServerIdentifier(serverIP)),
			dhcpv4.WithNetmask(net.CIDRMask(24, 32)),
			dhcpv4.WithRouter(serverIP),
			dhcpv4.WithDNS(dnsIP),
			dhcpv4.WithOption(dhcpv4.OptDomainName("mesh.test")),
			dhcpv4.WithLeaseTime(uint32(secs)),
		)
		if err != nil {
			return
		}
		if _, err := conn.WriteTo(resp.ToBytes(), peer); err != nil {
			return
		}
		if mt == dhcpv4.MessageTypeAck {
			mu.Lock()
			fmt.Printf("ACK ciaddr=%s hostname=%s\n", m.ClientIPAddr, m.HostName())
			mu.Unlock()
		}
	}
	srv, err := server4.NewServer("veth-srv", nil, handler)
	if err != nil {
		return err
	}
	fmt.Println("SERVING")
	return srv.Serve()
}

// clientReport is what the client helper prints for the test to check.
type clientReport struct {
	State  []IfaceState `json:"state"`
	Resolv string       `json:"resolv"`
	Addrs  []string     `json:"addrs"`
	Lft    int          `json:"valid_lft"`
	Routes []string     `json:"routes"`
}

// dhcpClient runs Start and reports once the DHCP lease was renewed.
func dhcpClient() error {
	resolv := filepath.Join(os.Getenv("TMPDIR_FOR_TEST"), "resolv.conf")
	// The carrier wait is longer than the whole deadline: the test fails
	// unless carrier detection ends it as soon as the veth is up.
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	n, err := Start(ctx, Config{
		CarrierTimeout: 45 * time.Second,
		Interfaces: []Interface{
			{Name: "veth-cli"},
			{Name: "veth-st", Address: staticPfx, Gateway: staticGw, DNS: []netip.Addr{staticDNS}},
		},
		Hostname:      "kit-07",
		ResolvConf:    resolv,
		AppearTimeout: 30 * time.Second,
		DHCPTimeout:   time.Second,
		RetryMin:      100 * time.Millisecond,
		RetryMax:      time.Second,
		Logf:          func(f string, a ...any) { fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05.000 ")+f+"\n", a...) },
	})
	if err != nil {
		return err
	}
	defer n.Stop()
	if _, err := n.WaitUp(ctx, "veth-cli"); err != nil {
		return err
	}
	if _, err := n.WaitUp(ctx, "veth-st"); err != nil {
		return err
	}
	for n.State()[0].Renewals < 1 {
		if ctx.Err() != nil {
			return fmt.Errorf("no renewal: %+v", n.State())
		}
		time.Sleep(20 * time.Millisecond)
	}
	var rep clientReport
	rep.State = n.State()
	b, err := os.ReadFile(resolv)
	if err != nil {
		return err
	}
	rep.Resolv = string(b)
	link, _ := netlink.LinkByName("veth-cli")
	addrs, _ := netlink.AddrList(link, netlink.FAMILY_V4)
	for _, a := range addrs {
		rep.Addrs = append(rep.Addrs, a.IPNet.String())
		rep.Lft = a.ValidLft
	}
	routes, _ := netlink.RouteList(nil, netlink.FAMILY_V4)
	for _, r := range routes {
		if r.Dst == nil || r.Dst.IP.IsUnspecified() {
			l, _ := netlink.LinkByIndex(r.LinkIndex)
			rep.Routes = append(rep.Routes, fmt.Sprintf("default via %v dev %s metric %d", r.Gw, l.Attrs().Name, r.Priority))
		}
	}
	out, _ := json.Marshal(rep)
	fmt.Printf("REPORT %s\n", out)
	return nil
}

// startInNetNS starts a helper in a new network namespace and returns it
// with a reader of its stdout.
func startInNetNS(t *testing.T, mode string, env ...string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := nstest.Command(modeEnv, mode, syscall.CLONE_NEWNET, env...)
	cmd.Stderr = &testLogWriter{t: t, prefix: mode}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd, bufio.NewScanner(out)
}

type testLogWriter struct {
	t      *testing.T
	prefix string
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s: %s", w.prefix, strings.TrimSpace(string(p)))
	return len(p), nil
}

func TestDHCPLeaseAndRenewalInNetns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED (not a pass): network namespaces and veth need root")
	}
	srv, srvOut := startInNetNS(t, "server", "LEASE_SECS=4")
	cli, cliOut := startInNetNS(t, "client", "TMPDIR_FOR_TEST="+t.TempDir())

	// The interfaces appear after both processes started: the client's
	// Start must wait for them.
	for _, v := range []*netlink.Veth{
		{LinkAttrs: netlink.LinkAttrs{Name: "veth-srv", Namespace: netlink.NsPid(srv.Process.Pid)},
			PeerName: "veth-cli", PeerNamespace: netlink.NsPid(cli.Process.Pid)},
		{LinkAttrs: netlink.LinkAttrs{Name: "veth-stp", Namespace: netlink.NsPid(srv.Process.Pid)},
			PeerName: "veth-st", PeerNamespace: netlink.NsPid(cli.Process.Pid)},
	} {
		if err := netlink.LinkAdd(v); err != nil {
			t.Fatalf("create veth %s: %v", v.Name, err)
		}
	}

	acks := make(chan string, 16)
	go func() {
		for srvOut.Scan() {
			if l := srvOut.Text(); strings.HasPrefix(l, "ACK") {
				acks <- l
			} else if strings.HasPrefix(l, "FAIL") {
				acks <- l
			}
		}
		close(acks)
	}()

	var rep clientReport
	got := false
	for cliOut.Scan() {
		l := cliOut.Text()
		if strings.HasPrefix(l, "FAIL") {
			t.Fatalf("client: %s", l)
		}
		if r, ok := strings.CutPrefix(l, "REPORT "); ok {
			if err := json.Unmarshal([]byte(r), &rep); err != nil {
				t.Fatal(err)
			}
			got = true
		}
	}
	if !got {
		t.Fatal("client produced no report")
	}

	dh, st := rep.State[0], rep.State[1]
	if dh.Mode != "dhcp" || dh.State != StateUp || dh.Address != netip.MustParsePrefix("192.0.2.50/24") ||
		dh.Gateway != netip.MustParseAddr("192.0.2.1") || dh.Server != netip.MustParseAddr("192.0.2.1") ||
		len(dh.DNS) != 1 || dh.DNS[0] != netip.MustParseAddr("192.0.2.53") || dh.Renewals < 1 || dh.LeaseExpiry.IsZero() {
		t.Errorf("DHCP interface state: %+v", dh)
	}
	if st.Mode != "static" || st.State != StateUp || st.Address != staticPfx || st.Gateway != staticGw {
		t.Errorf("static interface state: %+v", st)
	}
	if len(rep.Addrs) != 1 || rep.Addrs[0] != "192.0.2.50/24" {
		t.Errorf("kernel addresses on veth-cli: %v", rep.Addrs)
	}
	if rep.Lft <= 0 || rep.Lft > 4 {
		t.Errorf("address valid lifetime %d s, want the 4 s lease", rep.Lft)
	}
	wantRoutes := []string{"default via 192.0.2.1 dev veth-cli metric 100", "default via 198.51.100.1 dev veth-st metric 200"}
	for _, w := range wantRoutes {
		found := false
		for _, r := range rep.Routes {
			found = found || r == w
		}
		if !found {
			t.Errorf("route %q missing from %v", w, rep.Routes)
		}
	}
	wantResolv := "# written by skyfleetd (gokrazy/netconf)\nsearch mesh.test\nnameserver 192.0.2.53\nnameserver 198.51.100.53\n"
	if rep.Resolv != wantResolv {
		t.Errorf("resolv.conf:\n%s\nwant:\n%s", rep.Resolv, wantResolv)
	}

	// Server side: the initial ACK (no client address yet) and at least
	// one renewal ACK (client address set), both with our hostname.
	first := <-acks
	second := <-acks
	if first != "ACK ciaddr=0.0.0.0 hostname=kit-07" || second != "ACK ciaddr=192.0.2.50 hostname=kit-07" {
		t.Errorf("server saw %q then %q", first, second)
	}
}

func TestAbsentInterface(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED (not a pass): setting lo up needs root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := Start(ctx, Config{
		Interfaces:    []Interface{{Name: "sfnoexist0"}},
		ResolvConf:    filepath.Join(t.TempDir(), "resolv.conf"),
		AppearTimeout: 20 * time.Millisecond,
		Poll:          time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	st, err := n.WaitUp(ctx, "sfnoexist0")
	if err == nil || st.State != StateAbsent {
		t.Fatalf("WaitUp = %+v, %v; want absent", st, err)
	}
	if _, err := n.WaitUp(ctx, "eth9"); err == nil {
		t.Fatal("WaitUp of an unconfigured interface succeeded")
	}
}

// An interface that comes after AppearTimeout (a USB adapter enumerating
// late, or plugged in later) is configured when it appears.
func TestLateInterfaceIsConfigured(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED (not a pass): creating an interface needs root")
	}
	const name = "sflate0"
	pfx := netip.MustParsePrefix("192.0.2.77/32")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var logs []string
	var mu sync.Mutex
	n, err := Start(ctx, Config{
		Interfaces:    []Interface{{Name: name, Address: pfx}},
		ResolvConf:    filepath.Join(t.TempDir(), "resolv.conf"),
		AppearTimeout: 20 * time.Millisecond,
		Poll:          time.Millisecond,
		Logf: func(f string, a ...any) {
			mu.Lock()
			logs = append(logs, fmt.Sprintf(f, a...))
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	if st, err := n.WaitUp(ctx, name); err == nil || st.State != StateAbsent {
		t.Fatalf("WaitUp = %+v, %v; want absent first", st, err)
	}
	// A veth pair (this kernel has veth for the namespace tests; the dummy
	// driver is not everywhere), in the host's namespace, removed after.
	d := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"}
	if err := netlink.LinkAdd(d); err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	t.Cleanup(func() { netlink.LinkDel(d) })
	// WaitUp returns at once while the state still says absent: wait for
	// the state to leave it, then for the address.
	for n.State()[0].State == StateAbsent {
		if ctx.Err() != nil {
			t.Fatalf("%s never left the absent state: %+v", name, n.State())
		}
		time.Sleep(10 * time.Millisecond)
	}
	st, err := n.WaitUp(ctx, name)
	if err != nil || st.Address != pfx || st.Error != "" {
		t.Fatalf("after it appeared: %+v, %v; want %v and no error", st, err, pfx)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(logs, "\n"); !strings.Contains(got, "still watching") || !strings.Contains(got, name+" appeared") {
		t.Errorf("log does not say it kept watching and saw it appear:\n%s", got)
	}
}

func TestResolvConfRendering(t *testing.T) {
	dir := t.TempDir()
	n := &Net{
		cfg: Config{ResolvConf: filepath.Join(dir, "resolv.conf")},
		states: []*IfaceState{
			{Name: "eth0", DNS: []netip.Addr{netip.MustParseAddr("192.0.2.53"), netip.MustParseAddr("192.0.2.54")}},
			{Name: "wlan0", DNS: []netip.Addr{netip.MustParseAddr("192.0.2.54"), netip.MustParseAddr("198.51.100.1")}},
			{Name: "usb0"},
		},
		domains: []string{"a.test b.test", "b.test c.test", ""},
	}
	if err := n.writeResolvConf(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(n.cfg.ResolvConf)
	if err != nil {
		t.Fatal(err)
	}
	want := "# written by skyfleetd (gokrazy/netconf)\nsearch a.test b.test c.test\n" +
		"nameserver 192.0.2.53\nnameserver 192.0.2.54\nnameserver 198.51.100.1\n"
	if string(b) != want {
		t.Fatalf("got:\n%s\nwant:\n%s", b, want)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
	fi, _ := os.Stat(n.cfg.ResolvConf)
	if fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v", fi.Mode())
	}
}

func TestLifetime(t *testing.T) {
	if lifetime(4*time.Second) != 4 || lifetime(0) != 0 || lifetime(0xffffffff*time.Second) != 0 {
		t.Fatal("lifetime conversion")
	}
}
