package forward

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/skyfleet/skyfleet/services/mesh/topology"
	"github.com/skyfleet/skyfleet/services/mesh/transport"
)

func TestFrameRoundTrip(t *testing.T) {
	var k1, k2 [keyLen]byte
	k1[0], k2[0] = 2, 3
	var b []byte
	b = appendFrame(b, frameSetup, setupMsg{nonce: 42, rest: [][keyLen]byte{k1, k2}}.append(nil))
	b = appendFrame(b, frameConfirm, confirmMsg{nonce: 42, rid: 7}.append(nil))
	b = appendFrame(b, frameRouteErr, failMsg{id: 7, reason: ReasonLinkDown, reporter: k1}.appendRouteErr(nil))
	b = appendFrame(b, frameSetupFail, failMsg{id: 42, reason: ReasonNoLink, reporter: k2}.appendSetupFail(nil))
	b = appendFrame(b, frameData, u32(9), []byte("payload"))

	typ, body, rest, err := nextFrame(b)
	if err != nil || typ != frameSetup {
		t.Fatalf("frame 1: %v %d", err, typ)
	}
	s, err := parseSetup(body)
	if err != nil || s.nonce != 42 || len(s.rest) != 2 || s.rest[1] != k2 {
		t.Fatalf("setup: %+v %v", s, err)
	}
	typ, body, rest, _ = nextFrame(rest)
	c, err := parseConfirm(body)
	if typ != frameConfirm || err != nil || c != (confirmMsg{42, 7}) {
		t.Fatalf("confirm: %+v %v", c, err)
	}
	typ, body, rest, _ = nextFrame(rest)
	f, err := parseRouteErr(body)
	if typ != frameRouteErr || err != nil || f.id != 7 || f.reason != ReasonLinkDown || f.reporter != k1 {
		t.Fatalf("route error: %+v %v", f, err)
	}
	typ, body, rest, _ = nextFrame(rest)
	f, err = parseSetupFail(body)
	if typ != frameSetupFail || err != nil || f.id != 42 || f.reporter != k2 {
		t.Fatalf("setup fail: %+v %v", f, err)
	}
	typ, body, rest, _ = nextFrame(rest)
	rid, err := parseRouteID(body, false)
	if typ != frameData || err != nil || rid != 9 || !bytes.Equal(body[4:], []byte("payload")) || len(rest) != 0 {
		t.Fatalf("data: %d %v %q", rid, err, body)
	}
}

func TestFrameRejects(t *testing.T) {
	for name, b := range map[string][]byte{
		"short header": {frameData, 0},
		"short body":   {frameData, 0, 9, 1, 2},
	} {
		if _, _, _, err := nextFrame(b); !errors.Is(err, errFrameShort) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := parseSetup(make([]byte, 8)); err == nil {
		t.Error("8-byte setup accepted")
	}
	bad := setupMsg{nonce: 1, rest: make([][keyLen]byte, maxSetupHops+1)}.append(nil)
	if _, err := parseSetup(bad); err == nil {
		t.Error("setup with too many hops accepted")
	}
	if _, err := parseSetup(append(setupMsg{nonce: 1}.append(nil), 0)); err == nil {
		t.Error("setup with a trailing byte accepted")
	}
	if _, err := parseConfirm(confirmMsg{nonce: 1, rid: 0}.append(nil)); err == nil {
		t.Error("confirm with route ID 0 accepted")
	}
	if _, err := parseRouteID([]byte{1, 2, 3, 4, 5}, true); err == nil {
		t.Error("5-byte teardown accepted")
	}
}

func fuzzSeeds(f *testing.F) {
	var k [keyLen]byte
	k[0] = 2
	f.Add(appendFrame(nil, frameSetup, setupMsg{nonce: 1, rest: [][keyLen]byte{k}}.append(nil)))
	f.Add(appendFrame(nil, frameConfirm, confirmMsg{nonce: 1, rid: 5}.append(nil)))
	f.Add(appendFrame(nil, frameSetupFail, failMsg{id: 1, reason: 1, reporter: k}.appendSetupFail(nil)))
	f.Add(appendFrame(nil, frameRouteErr, failMsg{id: 5, reason: 2, reporter: k}.appendRouteErr(nil)))
	f.Add(appendFrame(appendFrame(nil, frameTeardown, u32(5)), frameKeepalive, u32(5)))
	f.Add(appendFrame(nil, frameData, u32(5), []byte("x")))
	f.Add(appendFrame(nil, framePing, u32(1)))
	f.Add([]byte{frameGossip, 0, 1, 0})
	// Store and forward: a Reliable frame around Data and Credit, a LinkAck, a bare
	// Credit (sf.go).
	inner := appendFrame(nil, frameData, u32(5), []byte("payload"))
	inner = appendFrame(inner, frameCredit, u32(5), binary.BigEndian.AppendUint64(nil, 1<<20))
	f.Add(appendReliable(nil, 7, 7, inner))
	f.Add(appendFrame(nil, frameLinkAck, u32(8), binary.BigEndian.AppendUint64(nil, 0b1011)))
	f.Add(appendLinkAck(nil, 9, []uint64{0, 1 << 63, 5}))
	f.Add(appendFrame(nil, frameCredit, u32(5), binary.BigEndian.AppendUint64(nil, 70000)))
	f.Add(appendFrame(nil, frameDataRT, u32(5), []byte("rt")))
}

// FuzzFrames decodes link-datagram plaintexts: the frame splitter and every route
// control decoder. Nothing panics; accepted setups re-encode identically.
func FuzzFrames(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		for len(b) > 0 {
			typ, body, rest, err := nextFrame(b)
			if err != nil {
				return
			}
			b = rest
			switch typ {
			case frameSetup:
				if m, err := parseSetup(body); err == nil && !bytes.Equal(m.append(nil), body) {
					t.Fatalf("setup re-encodes differently")
				}
			case frameConfirm:
				parseConfirm(body)
			case frameSetupFail:
				parseSetupFail(body)
			case frameRouteErr:
				parseRouteErr(body)
			case frameCredit:
				parseCredit(body)
			case frameLinkAck:
				parseLinkAck(body, nil)
			case frameReliable:
				if _, _, inner, err := parseReliable(body); err == nil {
					for len(inner) > 0 {
						_, _, rest, err := nextFrame(inner)
						if err != nil {
							break
						}
						inner = rest
					}
				}
			default:
				parseRouteID(body, false)
			}
		}
	})
}

// FuzzRouteControl feeds route-control frames from a live neighbour into a router:
// no panic, and no rule installed without a confirm from the next hop.
func FuzzRouteControl(f *testing.F) {
	fuzzSeeds(f)
	k, _ := secp256k1.GeneratePrivateKeyFromRand(rand.Reader)
	m := newMemnet()
	r, err := New(Config{Key: k, Transports: []Transport{m.Transport()}})
	if err != nil {
		f.Fatal(err)
	}
	var nk topology.Key
	nk[0] = 2
	nk[1] = 1
	n := r.neighbourFor(nk, false, true)
	n.mu.Lock()
	n.up = true
	n.mu.Unlock()
	f.Fuzz(func(t *testing.T, b []byte) {
		r.handleFrames(n, b, time.Now())
		for _, ru := range r.table.all() {
			if ru.out.link != local && r.neighbourByLink(ru.out.link) == nil {
				t.Fatalf("rule to unknown link %d", ru.out.link)
			}
		}
	})
}

// FuzzDatagram feeds whole transport datagrams (the link decoder's input) to a router.
func FuzzDatagram(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 1, 2, 3, 4})
	f.Add([]byte{2, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Add(append([]byte{3, 0, 0, 0, 1, 2, 3, 4}, make([]byte, 40)...))
	k, _ := secp256k1.GeneratePrivateKeyFromRand(rand.Reader)
	m := newMemnet()
	tr := m.Transport()
	r, err := New(Config{Key: k, PSK: testPSK, Transports: []Transport{tr}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r.handleDatagram(tr, b, transport.EndpointOf(netip.MustParseAddrPort("10.9.9.9:1")), nil)
		if len(r.byKey) != 0 {
			t.Fatal("a datagram without the network key created a neighbour")
		}
	})
}
