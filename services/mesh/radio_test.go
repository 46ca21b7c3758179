package mesh

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/skyfleet/skyfleet/drivers/radio/ax25"
	"github.com/skyfleet/skyfleet/services/mesh/forward"
	"github.com/skyfleet/skyfleet/services/mesh/internal/ether"
	"github.com/skyfleet/skyfleet/services/mesh/link"
	"github.com/skyfleet/skyfleet/services/mesh/radio"
	"github.com/skyfleet/skyfleet/services/mesh/topology"
)

// radioStation is a radio transport on the test channel e, as the operator
// callsign (none: receive only).
func radioStation(t *testing.T, e *ether.Ether, callsign string) *radio.Transport {
	t.Helper()
	var cs ax25.Address
	if callsign != "" {
		var err error
		if cs, err = ax25.ParseAddress(callsign); err != nil {
			t.Fatal(err)
		}
	}
	port := e.Port()
	tr, err := radio.New(radio.Config{URL: "kiss+tcp://ether:8001", Callsign: cs,
		Open: func(context.Context) (radio.Port, error) { return port, nil }})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func radioPeer(key *secp256k1.PrivateKey, callsign string) Peer {
	return Peer{Network: "kiss", Address: callsign, Key: key.PubKey().SerializeCompressed()}
}

// linkTo returns n's link status towards key k over radio or not.
func linkTo(r *Router, k topology.Key, radio bool) (forward.LinkStatus, bool) {
	for _, l := range r.Links() {
		if l.Key == k.String() && l.Radio == radio {
			return l, true
		}
	}
	return forward.LinkStatus{}, false
}

// datagrams joins the ether's fragments of each Skyfleet datagram (frag.go's
// header: 'S', version, number, index|count-1) and returns them in order.
func datagrams(e *ether.Ether) [][]byte {
	type key struct {
		src string
		num uint16
	}
	parts := map[key][][]byte{}
	var out [][]byte
	for _, f := range e.Frames() {
		if len(f.Info) < 5 || f.Info[0] != 'S' {
			continue
		}
		k := key{f.Src.String(), binary.BigEndian.Uint16(f.Info[2:4])}
		idx, count := int(f.Info[4]>>4), int(f.Info[4]&15)+1
		if parts[k] == nil {
			parts[k] = make([][]byte, count)
		}
		if idx < len(parts[k]) {
			parts[k][idx] = f.Info[5:]
		}
		whole := true
		for _, p := range parts[k] {
			whole = whole && p != nil
		}
		if whole {
			out = append(out, bytes.Join(parts[k], nil))
			delete(parts, k)
		}
	}
	return out
}

// TestMeshOverRadio: A and B share an IP link, B and C a radio channel, D is
// on the channel without a callsign. The radio link comes up clear and signed;
// B and C carry a stream of 20 KB across it, readable on the air; a route from
// A through B onto the radio is refused (radio hops carry routes of one hop,
// and store and forward the rest); a datagram whose signature breaks in flight
// is dropped and counted; D transmits nothing.
func TestMeshOverRadio(t *testing.T) {
	m := newMemnet()
	e := ether.New()
	e.SetBitRate(radioTestRate()) // a fast channel keeps the test short; timing is the e2e tests'
	keys := make([]*secp256k1.PrivateKey, 4)
	for i := range keys {
		keys[i], _ = secp256k1.GeneratePrivateKeyFromRand(rand.Reader)
	}
	udpA, udpB := m.Transport(), m.Transport()
	radB, radC, radD := radioStation(t, e, "N0CALL-2"), radioStation(t, e, "N0CALL-3"), radioStation(t, e, "")
	made := 0
	mk := func(key *secp256k1.PrivateKey, trs []Transport, peers ...Peer) *Router {
		name := string(rune('A' + made))
		made++
		return startRouter(t, Config{Key: key, PSK: testPSK, Transports: trs, Peers: peers, AnnounceInterval: 2 * time.Second,
			Logf: func(f string, args ...any) { t.Logf(name+": "+f, args...) }})
	}
	a := mk(keys[0], []Transport{udpA}, Peer{Network: "udp", Address: udpB.Addr(), Key: keys[1].PubKey().SerializeCompressed()})
	b := mk(keys[1], []Transport{udpB, radB}, Peer{Network: "udp", Address: udpA.Addr(), Key: keys[0].PubKey().SerializeCompressed()},
		radioPeer(keys[2], "N0CALL-3"))
	c := mk(keys[2], []Transport{radC}, radioPeer(keys[1], "N0CALL-2"))
	d := mk(keys[3], []Transport{radD}, radioPeer(keys[2], "N0CALL-3"))

	start := time.Now()
	phase := func(what string) { t.Logf("%6.1f s  %s", time.Since(start).Seconds(), what) }
	waitCond(t, 30*time.Second, "the radio link between B and C", func() bool {
		lb, ok1 := linkTo(b, c.Self(), true)
		lc, ok2 := linkTo(c, b.Self(), true)
		return ok1 && ok2 && lb.Up && lc.Up
	})
	waitCond(t, 30*time.Second, "A to learn of C through B", func() bool {
		_, ok := a.Graph().Get(c.Self())
		return ok
	})
	if l, _ := linkTo(b, c.Self(), true); l.Channel == nil || l.Endpoint != "kiss://N0CALL-3" {
		t.Fatalf("B's radio link: endpoint %q, channel stats %v", l.Endpoint, l.Channel)
	}

	phase("link up, A knows C")
	// B streams 20 KB to C over the radio link.
	ln, err := c.Listen(7)
	if err != nil {
		t.Fatal(err)
	}
	file := make([]byte, 20<<10)
	for i := range file {
		file[i] = "SKYFLEET RADIO TEST "[i%20]
	}
	binary.BigEndian.PutUint64(file[10000:], 0x5eed_f00d_cafe_d00d) // a marker to find on the air
	got := receive(ln, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := b.Dial(ctx, c.Self(), 7)
	if err != nil {
		t.Logf("B counters %v\nC counters %v\nB radio %+v\nC radio %+v\non the air: %s",
			b.Counters(), c.Counters(), radB.Stats(), radC.Stats(), airSummary(e))
		t.Fatal(err)
	}
	phase("B dialled C")
	if _, err := io.Copy(conn, bytes.NewReader(file)); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	select {
	case h := <-got:
		if h != sha256.Sum256(file) {
			t.Fatal("the file arrived changed")
		}
	case <-time.After(90*time.Second + time.Duration(4*8*len(file)/radioTestRate())*time.Second):
		t.Fatal("the file did not cross in four times its airtime and 90 s")
	}

	phase("20 KB crossed")
	// On the air: every Skyfleet datagram is a clear link datagram, and the
	// file's bytes are there to read (amateur rules: nothing encrypted).
	var air []byte
	for _, dg := range datagrams(e) {
		if !link.IsClear(dg) {
			t.Fatalf("a datagram of type %d went on the air", dg[0])
		}
		air = append(air, dg...)
	}
	if !bytes.Contains(air, file[9990:10030]) {
		t.Fatal("the file is not readable on the air")
	}

	// No transit onto the radio: A's route to C through B is refused.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	if c2, err := a.Dial(ctx2, c.Self(), 7); err == nil {
		c2.Close()
		t.Fatal("A reached C through B's radio link")
	} else if !errors.Is(err, ErrUnreachable) && !errors.Is(err, ErrNoRoute) {
		t.Fatalf("A to C: %v", err)
	}

	phase("A refused")
	// A signature broken in flight: C drops the datagram and counts it; the
	// next ping still crosses.
	before := c.Counters()["drop_auth"]
	e.SetTamper(func(f []byte) []byte {
		fr, err := ax25.Decode(f)
		if err != nil || fr.Src.String() != "N0CALL-2" || len(fr.Info) < 40 || fr.Info[0] != 'S' {
			return f
		}
		fr.Info[len(fr.Info)-1] ^= 1
		out, _ := fr.Encode()
		return out
	})
	pctx, pcancel := context.WithTimeout(context.Background(), 5*time.Second)
	b.Ping(pctx, c.Self())
	pcancel()
	waitCond(t, 10*time.Second, "C to count a bad signature", func() bool { return c.Counters()["drop_auth"] > before })
	e.SetTamper(nil)
	if _, err := b.Ping(context.Background(), c.Self()); err != nil {
		t.Fatalf("ping after the tampering: %v", err)
	}

	phase("tampering counted")
	// D has no callsign: it has sent nothing, and says why.
	for _, f := range e.Frames() {
		if f.Src.Call == "" || f.Src.String() == "NOCALL" {
			t.Fatalf("a frame from a station without a callsign: %s", f.TNC2())
		}
	}
	if radD.Stats().NoCallsign == 0 {
		t.Fatal("D did not count its refusals to transmit")
	}
	if l, ok := linkTo(d, c.Self(), true); !ok || l.Up {
		t.Fatalf("D's link to C: %+v", l)
	}
}

// radioTestRate is the test channel's bit rate: 38400, or SKYFLEET_RADIO_RATE
// (1200 is the real channel: the 20 KB then take about 11 minutes, and the test
// needs -timeout 40m).
func radioTestRate() int {
	if r, err := strconv.Atoi(os.Getenv("SKYFLEET_RADIO_RATE")); err == nil && r > 0 {
		return r
	}
	return 38400
}

// airSummary lists the datagrams on the air by link type and length, for a
// failure's log.
func airSummary(e *ether.Ether) string {
	var out []string
	for _, dg := range datagrams(e) {
		out = append(out, fmt.Sprintf("%d:%d", dg[0], len(dg)))
	}
	return strings.Join(out, " ")
}
