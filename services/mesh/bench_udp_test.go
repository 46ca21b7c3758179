//go:build linux || darwin

package mesh_test

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/skyfleet/skyfleet/services/mesh"
	"github.com/skyfleet/skyfleet/services/mesh/transport"
)

// Sizes and counts of BenchmarkForward3HopsUDP.
const (
	// fwdChunk is what one benchmark iteration writes to the stream.
	fwdChunk = 64 << 10
	// fwdPacket is the datagram size of the packet phase.
	fwdPacket = 1280
	// fwdPackets is how many datagrams the packet phase sends, whatever b.N is.
	fwdPackets = 40000
	// fwdWindow is the closed-loop packet phase's limit of datagrams in flight.
	fwdWindow = 128
	// fwdStreamPort and fwdPacketPort are the mesh ports the two phases use.
	fwdStreamPort = 7
	fwdPacketPort = 9
)

// fwdPSK is the network key of the benchmark's routers.
var fwdPSK = [32]byte{'s', 'k', 'y', 'f', 'l', 'e', 'e', 't', ' ', 'b', 'e', 'n', 'c', 'h'}

// BenchmarkForward3HopsUDP measures forwarding through 3 hops on loopback: four
// routers 0 - 1 - 2 - 3 in a line, each on its own real UDP socket (127.0.0.1),
// linked as static peers, with traffic from node 0 to node 3.
//
// Stream phase (the timed part; b.N iterations of 64 KiB): one reliable stream from
// node 0 to port 7 on node 3; the time runs from Dial until node 3 has read every
// byte. Reported: the standard MB/s and fwd-MB/s (the same rate from the phase's own
// clock) and stream-cores, the process CPU time over the wall time.
//
// Packet phases (untimed, each a fixed 40,000 datagrams of 1280 bytes whatever b.N
// is), from a PacketConn on node 0 to one on node 3, which counts arrivals until all
// came or none came for 300 ms:
//
//   - open loop: node 0 sends as fast as its first link's queue takes datagrams
//     (WriteTo's "congested" error is retried, so the source waits rather than
//     drops); what the later hops cannot carry they drop. Reported: pkts/s
//     (delivered datagrams per second, first send to last arrival), loss (fraction
//     sent but not delivered), pkts/s/core (delivered datagrams per CPU second) and
//     pkt-cores (CPU seconds per wall second).
//   - closed loop: the same with at most 128 datagrams in flight, the next sent as
//     one arrives: the rate the path carries without queue overflow. Reported as
//     win-pkts/s, win-loss, win-pkts/s/core and win-pkt-cores.
//
// The loss breakdown (link queue and forwarding drops, link datagrams sent and
// received) goes to the benchmark log (-v).
//
// CPU time is the whole process's user+system time (getrusage RUSAGE_SELF), so it
// counts all 4 routers and the sending and receiving application: every datagram
// is sealed and opened on each of the 3 links and once more end to end, and crosses
// the loopback 3 times. pkts/s/core is therefore the cost of the whole 3-hop path,
// not of one forwarding step (one hop, one decryption and one encryption, costs
// roughly a third of it).
//
// With -benchtime 1x it runs in a few seconds (link setup and route setup first,
// waiting up to 20 s for node 0 to ping node 3).
func BenchmarkForward3HopsUDP(b *testing.B) {
	nodes := udpLine(b, 4)
	defer func() {
		for _, r := range nodes {
			r.Close()
		}
	}()
	src, dst := nodes[0], nodes[len(nodes)-1]
	waitPing(b, src, dst, 20*time.Second)

	mbps, streamCores := streamPhase(b, src, dst)
	b.ReportMetric(mbps, "fwd-MB/s")
	b.ReportMetric(streamCores, "stream-cores")

	pr := packetPhase(b, nodes, src, dst, 0)
	b.ReportMetric(pr.pps, "pkts/s")
	b.ReportMetric(pr.loss, "loss")
	b.ReportMetric(pr.ppsCore, "pkts/s/core")
	b.ReportMetric(pr.cores, "pkt-cores")

	pr = packetPhase(b, nodes, src, dst, fwdWindow)
	b.ReportMetric(pr.pps, "win-pkts/s")
	b.ReportMetric(pr.loss, "win-loss")
	b.ReportMetric(pr.ppsCore, "win-pkts/s/core")
	b.ReportMetric(pr.cores, "win-pkt-cores")
}

// udpLine starts n routers on UDP loopback sockets, node i peering with i-1 and i+1.
func udpLine(b *testing.B, n int) []*mesh.Router { return udpLineMode(b, n, false) }

// udpLineMode is udpLine with Config.PlainForwarding set as given.
func udpLineMode(b *testing.B, n int, plainFwd bool) []*mesh.Router {
	b.Helper()
	keys := make([]*secp256k1.PrivateKey, n)
	trs := make([]mesh.Transport, n)
	for i := range n {
		k, err := secp256k1.GeneratePrivateKeyFromRand(rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		tr, err := transport.Open("udp://127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		keys[i], trs[i] = k, tr
	}
	peer := func(i int) mesh.Peer {
		return mesh.Peer{
			Network: "udp",
			Address: strings.TrimPrefix(trs[i].LocalAddr(), "udp://"),
			Key:     keys[i].PubKey().SerializeCompressed(),
		}
	}
	routers := make([]*mesh.Router, n)
	for i := range n {
		cfg := mesh.Config{Key: keys[i], PSK: fwdPSK, Transports: []mesh.Transport{trs[i]}, PlainForwarding: plainFwd}
		if i > 0 {
			cfg.Peers = append(cfg.Peers, peer(i-1))
		}
		if i+1 < n {
			cfg.Peers = append(cfg.Peers, peer(i+1))
		}
		r, err := mesh.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		routers[i] = r
	}
	for i, r := range routers {
		if err := r.Start(context.Background()); err != nil {
			for _, s := range routers[:i] {
				s.Close()
			}
			b.Fatal(err)
		}
	}
	return routers
}

// waitPing retries src.Ping(dst) until it succeeds, failing the benchmark after within.
func waitPing(b *testing.B, src, dst *mesh.Router, within time.Duration) {
	b.Helper()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		res, err := src.Ping(ctx, dst.Self())
		cancel()
		if err == nil {
			if len(res.Path) != 4 {
				b.Fatalf("ping went over %d nodes (%v), want the 4 of the line", len(res.Path), res.Path)
			}
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("node 0 cannot ping node 3 after %v: %v", within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// streamPhase sends b.N × fwdChunk bytes on one stream from src to dst and returns
// the throughput in MB/s and the CPU cores used.
func streamPhase(b *testing.B, src, dst *mesh.Router) (mbps, cores float64) {
	b.Helper()
	ln, err := dst.Listen(fwdStreamPort)
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	total := int64(b.N) * fwdChunk
	limit := time.Now().Add(time.Minute + time.Duration(b.N)*10*time.Millisecond)
	type result struct {
		n   int64
		err error
	}
	got := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- result{0, err}
			return
		}
		defer c.Close()
		c.SetReadDeadline(limit)
		n, err := io.CopyN(io.Discard, c, total)
		got <- result{n, err}
	}()
	chunk := make([]byte, fwdChunk)
	for i := range chunk {
		chunk[i] = byte(i * 7)
	}

	b.SetBytes(fwdChunk)
	b.ResetTimer()
	cpu0 := cpuTime(b)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	c, err := src.Dial(ctx, dst.Self(), fwdStreamPort)
	cancel()
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	c.SetWriteDeadline(limit)
	for range b.N {
		if _, err := c.Write(chunk); err != nil {
			b.Fatalf("stream write: %v", err)
		}
	}
	r := <-got
	elapsed := time.Since(start)
	cpu := cpuTime(b) - cpu0
	b.StopTimer()
	if r.err != nil || r.n != total {
		b.Fatalf("stream: node 3 read %d of %d bytes: %v", r.n, total, r.err)
	}
	return float64(total) / elapsed.Seconds() / 1e6, cpu.Seconds() / elapsed.Seconds()
}

// packetResult is what packetPhase measured.
type packetResult struct {
	pps, loss, ppsCore, cores float64
}

// packetPhase sends fwdPackets datagrams of fwdPacket bytes from src to dst. With
// window 0 it sends as fast as the first hop's queue takes them (open loop); with a
// window it keeps at most that many datagrams in flight, sending the next one when
// one arrives (closed loop; a window that sees no arrival for 50 ms is refilled, the
// missing datagrams counted lost).
func packetPhase(b *testing.B, nodes []*mesh.Router, src, dst *mesh.Router, window int) packetResult {
	b.Helper()
	port := uint16(fwdPacketPort)
	if window > 0 {
		port++ // not to count stragglers of the other phase
	}
	spc, err := src.ListenPacket(port)
	if err != nil {
		b.Fatal(err)
	}
	defer spc.Close()
	dpc, err := dst.ListenPacket(port)
	if err != nil {
		b.Fatal(err)
	}
	defer dpc.Close()

	credits := make(chan struct{}, max(window, 1))
	refill := func() {
		for range window {
			select {
			case credits <- struct{}{}:
			default:
				return
			}
		}
	}
	refill()

	var (
		arrived  int64
		lastAt   time.Time
		sendDone atomic.Bool
	)
	recvDone := make(chan error, 1)
	go func() {
		buf := make([]byte, 2048)
		seen := make([]bool, fwdPackets)
		for {
			dpc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			n, _, err := dpc.ReadFrom(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if sendDone.Load() {
					recvDone <- nil
					return
				}
				continue
			}
			if err != nil {
				recvDone <- err
				return
			}
			if n != fwdPacket {
				continue
			}
			seq := binary.BigEndian.Uint32(buf)
			if seq >= fwdPackets || seen[seq] {
				continue
			}
			seen[seq] = true
			lastAt = time.Now()
			arrived++
			if window > 0 {
				select {
				case credits <- struct{}{}:
				default:
				}
			}
			if arrived == fwdPackets {
				recvDone <- nil
				return
			}
		}
	}()

	before := snapshot(nodes)
	to := mesh.Addr{Key: dst.Self(), Port: port}
	msg := make([]byte, fwdPacket)
	var retries, refills int64
	wait := time.NewTimer(time.Hour)
	cpu0 := cpuTime(b)
	start := time.Now()
	for i := range fwdPackets {
		if window > 0 {
			select {
			case <-credits:
			default:
				wait.Reset(50 * time.Millisecond)
				select {
				case <-credits:
				case <-wait.C:
					refills++
					refill()
					<-credits
				}
				wait.Stop()
			}
		}
		binary.BigEndian.PutUint32(msg, uint32(i))
		stuck := time.Time{}
		for {
			_, err := spc.WriteTo(msg, to)
			if err == nil {
				break
			}
			// The first hop's queue is full (or, briefly, the route is being
			// replaced): wait for it rather than drop at the source.
			retries++
			if stuck.IsZero() {
				stuck = time.Now()
			} else if time.Since(stuck) > 5*time.Second {
				b.Fatalf("packet %d: cannot send for 5 s: %v", i, err)
			}
			time.Sleep(20 * time.Microsecond)
		}
	}
	sendDone.Store(true)
	if err := <-recvDone; err != nil {
		b.Fatalf("packet receiver: %v", err)
	}
	cpu := cpuTime(b) - cpu0
	if arrived == 0 {
		b.Fatal("no datagram arrived")
	}
	wall := lastAt.Sub(start)
	after := snapshot(nodes)
	mode := "open loop"
	if window > 0 {
		mode = fmt.Sprintf("window %d (refilled %d times)", window, refills)
	}
	b.Logf("packets, %s: %d sent, %d delivered in %v, %v CPU; source retried %d times; "+
		"link queue drops %d, of them forwarding drops %d; dropped for the receiver's full queue %d; link datagrams sent %d, received %d",
		mode, fwdPackets, arrived, wall.Round(time.Millisecond), cpu.Round(time.Millisecond), retries,
		after.txDrops-before.txDrops, after.fwdDrops-before.fwdDrops, after.readerDrops-before.readerDrops,
		after.tx-before.tx, after.rx-before.rx)
	return packetResult{
		pps:     float64(arrived) / wall.Seconds(),
		loss:    1 - float64(arrived)/fwdPackets,
		ppsCore: float64(arrived) / cpu.Seconds(),
		cores:   cpu.Seconds() / wall.Seconds(),
	}
}

// linkTotals sums link and router counters over the routers, to tell where packets
// were lost.
type linkTotals struct {
	tx, rx, txDrops, fwdDrops, readerDrops uint64
}

func snapshot(nodes []*mesh.Router) linkTotals {
	var t linkTotals
	for _, r := range nodes {
		for _, l := range r.Links() {
			t.tx += l.TxPackets
			t.rx += l.RxPackets
			t.txDrops += l.TxDrops
		}
		t.fwdDrops += r.Counters()["drop_forward"]
		t.readerDrops += r.Counters()["drop_reader_full"]
	}
	return t
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkStoreForwardVsPlain runs BenchmarkForward3HopsUDP's phases on two lines
// of 4 routers in the same process, one with per-hop store and forward (the
// default) and one with Config.PlainForwarding (the forwarding before it),
// alternating, and reports store-and-forward's figures as ratios of plain's:
// stream MB/s, closed-loop packets per second and per CPU second (the per-hop
// forwarding cost), and each mode's open-loop loss.
func BenchmarkStoreForwardVsPlain(b *testing.B) {
	type figures struct{ mbps, winPPS, winPPSCore, loss float64 }
	run := func(plainFwd bool) figures {
		nodes := udpLineMode(b, 4, plainFwd)
		defer func() {
			for _, r := range nodes {
				r.Close()
			}
		}()
		src, dst := nodes[0], nodes[len(nodes)-1]
		waitPing(b, src, dst, 20*time.Second)
		mbps, _ := streamPhase(b, src, dst)
		open := packetPhase(b, nodes, src, dst, 0)
		win := packetPhase(b, nodes, src, dst, fwdWindow)
		return figures{mbps, win.pps, win.ppsCore, open.loss}
	}
	var sf, pl figures
	for i := 0; i < b.N; i++ {
		p := run(true)
		s := run(false)
		pl.mbps += p.mbps / float64(b.N)
		pl.winPPS += p.winPPS / float64(b.N)
		pl.winPPSCore += p.winPPSCore / float64(b.N)
		pl.loss += p.loss / float64(b.N)
		sf.mbps += s.mbps / float64(b.N)
		sf.winPPS += s.winPPS / float64(b.N)
		sf.winPPSCore += s.winPPSCore / float64(b.N)
		sf.loss += s.loss / float64(b.N)
	}
	b.ReportMetric(sf.mbps/pl.mbps, "stream-ratio")
	b.ReportMetric(sf.winPPS/pl.winPPS, "pps-ratio")
	b.ReportMetric(sf.winPPSCore/pl.winPPSCore, "pps/core-ratio")
	b.ReportMetric(sf.loss, "sf-open-loss")
	b.ReportMetric(pl.loss, "plain-open-loss")
	b.Logf("store-and-forward vs plain: stream %.1f vs %.1f MB/s, closed loop %.0f vs %.0f pkts/s (%.0f vs %.0f per core), open-loop loss %.3f vs %.3f",
		sf.mbps, pl.mbps, sf.winPPS, pl.winPPS, sf.winPPSCore, pl.winPPSCore, sf.loss, pl.loss)
}
