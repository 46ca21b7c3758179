//go:build kernelvm

// These tests run in the kernel VM (e2e.TestWifiPeeringInVM: Debian's kernel
// with mac80211_hwsim): two Skyfleet nodes, each in a network namespace of
// its own with one simulated radio, join the fleet's peering IBSS, find each
// other by the mesh's LAN discovery and carry a mesh stream across. Each
// node is this test binary re-executed in its namespace (hwsimtest.StartNode).

package wifi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/drivers/wifi/nl80211"
	"github.com/skyfleet/skyfleet/internal/fleetconf"
	"github.com/skyfleet/skyfleet/internal/hwsimtest"
	"github.com/skyfleet/skyfleet/services/identity"
	"github.com/skyfleet/skyfleet/services/mesh/topology"
	"github.com/skyfleet/skyfleet/services/meshd"
)

const (
	fleetPSK    = "5f4dcc3b5aa765d61d8327deb882cf99e9c6f1b2a3d4c5b6a7980f1e2d3c4b5a"
	stepTimeout = 60 * time.Second
	streamPort  = 7070
	streamBytes = 4 << 20
)

type nodeArgs struct {
	Name, Iface, Dir string
	// Peer, for the sender: the name of the node to stream to; its address
	// is read from Dir/<Peer>.addr, which every node writes.
	Peer string
	// Manager, if set, runs the Wi-Fi service with this configuration
	// instead (managerNode).
	Manager *Config
}

func TestMain(m *testing.M) {
	hwsimtest.NodeMain(func(raw []byte) error {
		var a nodeArgs
		if err := json.Unmarshal(raw, &a); err != nil {
			return err
		}
		if a.Manager != nil {
			return managerNode(*a.Manager)
		}
		return peerNode(raw)
	})
	os.Exit(m.Run())
}

// peerNode joins the peering cell, runs a mesh node over it and either
// receives a stream (no Peer) or sends one to Peer.
func peerNode(raw []byte) error {
	var a nodeArgs
	if err := json.Unmarshal(raw, &a); err != nil {
		return err
	}
	c, err := nl80211.Dial()
	if err != nil {
		return err
	}
	defer c.Close()
	ifi, err := c.InterfaceByName(a.Iface)
	if err != nil {
		return err
	}
	psk, _ := hex.DecodeString(fleetPSK)
	p, err := PeeringFor(psk)
	if err != nil {
		return err
	}
	// The Wi-Fi service in peer mode joins the RSN cell and keys its members.
	start := time.Now()
	mctx, mcancel := context.WithCancel(context.Background())
	defer mcancel()
	wm := New(Config{Mode: ModePeer, Iface: a.Iface, FleetPSK: psk}, func(s string) { fmt.Println("service:", s) })
	go wm.Run(mctx)
	if err := hwsimtest.Poll(stepTimeout, 50*time.Millisecond, func() error {
		if st := wm.Status(); st.State != "peering" {
			return fmt.Errorf("service state %s %s", st.State, st.Error)
		}
		return nil
	}); err != nil {
		return err
	}
	fmt.Printf("PEERING joined %s (channel %d, BSSID %s) as %s in %v\n", p.SSID, p.Channel, p.BSSID, LinkLocal(ifi.MAC), time.Since(start).Round(time.Millisecond))

	dir := filepath.Join(a.Dir, a.Name)
	os.MkdirAll(dir, 0o700)
	key, _, err := identity.LoadOrCreate(dir, rand.Reader)
	if err != nil {
		return err
	}
	toml := fmt.Sprintf("[node]\nname = %q\nlisten = [\"udp://0.0.0.0:5505\"]\nstatus = \"127.0.0.1:8080\"\ndata = %q\n\n[network]\npsk = %q\nlan_discovery = true\n", a.Name, dir, fleetPSK)
	cfg, problems := fleetconf.Parse([]byte(toml), false)
	if fleetconf.FailClosed(problems) {
		return fmt.Errorf("fleet.toml: %+v", problems)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n, err := meshd.Start(ctx, meshd.Options{Config: cfg, Problems: problems, Key: key, Version: "v-wifi"})
	if err != nil {
		return err
	}
	defer n.Close()
	if err := os.WriteFile(filepath.Join(a.Dir, a.Name+".addr"), []byte(n.Address()), 0o644); err != nil {
		return err
	}
	meshStart := time.Now()
	if a.Peer == "" {
		return receive(n, meshStart)
	}
	return send(ctx, n, a, meshStart)
}

// receive accepts one stream, reads streamBytes and answers one byte.
func receive(n *meshd.Node, meshStart time.Time) error {
	ln, err := n.Router.Listen(streamPort)
	if err != nil {
		return err
	}
	defer ln.Close()
	fmt.Println("PEERING listening")
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		<-sig
		ln.Close()
	}()
	conn, err := ln.Accept()
	if err != nil {
		return err
	}
	defer conn.Close()
	got, err := io.CopyN(io.Discard, conn, streamBytes)
	if err != nil {
		return fmt.Errorf("after %d bytes: %w", got, err)
	}
	_, err = conn.Write([]byte{1})
	fmt.Printf("PEERING received %d bytes\n", got)
	// Wait for the sender to close, so the ack is not cut off.
	conn.Read(make([]byte, 1))
	return err
}

// send waits for the peer's mesh address, for a route to it, then streams
// streamBytes and waits for the one-byte answer.
func send(ctx context.Context, n *meshd.Node, a nodeArgs, meshStart time.Time) error {
	var peer string
	if err := hwsimtest.Poll(stepTimeout, 100*time.Millisecond, func() error {
		b, err := os.ReadFile(filepath.Join(a.Dir, a.Peer+".addr"))
		peer = strings.TrimSpace(string(b))
		return err
	}); err != nil {
		return err
	}
	// LAN discovery finds the peer over the cell; it is in the topology,
	// and a ping answers, once the link is up.
	var k topology.Key
	if err := hwsimtest.Poll(stepTimeout, 200*time.Millisecond, func() (err error) {
		if k, err = n.Router.Resolve(peer); err != nil {
			return err
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err = n.Router.Ping(pctx, k)
		return err
	}); err != nil {
		return fmt.Errorf("no mesh link to %s over the peering cell: %w", a.Peer, err)
	}
	fmt.Printf("PEERING mesh link to %s after %v, over link-layer keys\n", a.Peer, time.Since(meshStart).Round(time.Millisecond))
	dctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	conn, err := n.Router.Dial(dctx, k, streamPort)
	if err != nil {
		return err
	}
	defer conn.Close()
	buf := make([]byte, 32<<10)
	rand.Read(buf)
	start := time.Now()
	for sent := 0; sent < streamBytes; sent += len(buf) {
		if _, err := conn.Write(buf); err != nil {
			return fmt.Errorf("after %d bytes: %w", sent, err)
		}
	}
	conn.SetReadDeadline(time.Now().Add(stepTimeout))
	if _, err := io.ReadFull(conn, make([]byte, 1)); err != nil {
		return fmt.Errorf("no answer after the stream: %w", err)
	}
	d := time.Since(start)
	fmt.Printf("MEASURE mesh stream over the simulated IBSS: %d bytes in %v, %.2f Mbit/s\n", streamBytes, d.Round(time.Millisecond), float64(streamBytes)*8/d.Seconds()/1e6)
	// The kernel's view of the cell while the node is in it: the peer's
	// port opened by the handshakes (the IBSS is RSN, nothing passes before).
	out, err := exec.Command("iw", "dev", a.Iface, "station", "dump").CombinedOutput()
	fmt.Printf("STATIONS %q\n", out)
	return err
}

// TestPeeringMeshStream: two nodes of one fleet join the derived RSN IBSS,
// key each other with the two 4-way handshakes, link by LAN discovery and
// move a 4 MiB mesh stream from one to the other.
func TestPeeringMeshStream(t *testing.T) {
	rs := hwsimtest.Radios(t, 3, stepTimeout)
	dir := t.TempDir()
	recv := hwsimtest.StartNode(t, "receiver", rs[0].NS, nodeArgs{Name: "kit-a", Iface: rs[0].Iface, Dir: dir})
	joined, err := recv.WaitFor("PEERING joined", stepTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := recv.WaitFor("PEERING listening", stepTimeout); err != nil {
		t.Fatal(err)
	}
	// A stranger joins the cell without its key (iw, an open IBSS of the
	// same SSID, channel and BSSID) and tries to reach the receiver: the
	// receiver's kernel drops its frames, as no handshake opened its port.
	recvAddr := strings.Fields(joined.Text[strings.Index(joined.Text, " as ")+4:])[0]
	recvAddr = recvAddr[:strings.Index(recvAddr, "/")]
	psk, _ := hex.DecodeString(fleetPSK)
	p, _ := PeeringFor(psk)
	st := rs[2]
	st.MustRun(t, "iw", "dev", st.Iface, "set", "type", "ibss")
	st.MustRun(t, "ip", "link", "set", st.Iface, "up")
	st.MustRun(t, "iw", "dev", st.Iface, "ibss", "join", p.SSID, fmt.Sprint(nl80211.ChannelFrequency(p.Channel)), "fixed-freq", p.BSSID.String())
	st.MustRun(t, "ip", "addr", "add", "169.254.77.77/16", "dev", st.Iface)
	if out, err := st.NS.Run("ping", "-c", "5", "-W", "1", recvAddr); err == nil {
		t.Errorf("a stranger without the cell's key reached the receiver:\n%s", out)
	} else {
		t.Logf("the stranger's 5 pings to %s got no answer, as they must", recvAddr)
	}
	sender := hwsimtest.StartNode(t, "sender", rs[1].NS, nodeArgs{Name: "kit-b", Iface: rs[1].Iface, Dir: dir, Peer: "kit-a"})
	if e := hwsimtest.NodeResult(t, sender, 3*stepTimeout); e != "" {
		t.Fatalf("sender: %s", e)
	}
	if e := hwsimtest.NodeResult(t, recv, stepTimeout); e != "" {
		t.Fatalf("receiver: %s", e)
	}
	for _, d := range []*hwsimtest.Daemon{recv, sender} {
		for _, l := range strings.Split(d.Output(), "\n") {
			if strings.Contains(l, "PEERING") || strings.Contains(l, "MEASURE") {
				t.Log(l)
			}
		}
	}
	// Both keyed the other; the sender's kernel had the receiver's port open.
	for _, d := range []*hwsimtest.Daemon{recv, sender} {
		if !strings.Contains(d.Output(), "keyed after") {
			t.Errorf("%s's service never keyed its peer", d.Name)
		}
	}
	if out := sender.Output(); !strings.Contains(out, "STATIONS ") || !strings.Contains(out, `authorized:\tyes`) {
		t.Errorf("the sender's station dump shows no authorized peer:\n%s", out)
	}
}
