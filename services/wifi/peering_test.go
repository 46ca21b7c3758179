package wifi

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"

	"crypto/sha256"
	xhkdf "golang.org/x/crypto/hkdf"
)

func TestPeeringIsTheFleetsAndOnlyTheFleets(t *testing.T) {
	a1, err := PeeringFor([]byte("fleet one psk, long and random"))
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := PeeringFor([]byte("fleet one psk, long and random"))
	b, _ := PeeringFor([]byte("fleet two psk, long and random"))
	if a1.SSID != a2.SSID || a1.Channel != a2.Channel || !bytes.Equal(a1.BSSID, a2.BSSID) {
		t.Errorf("two kits of one fleet derived %+v and %+v", a1, a2)
	}
	if a1.SSID == b.SSID || bytes.Equal(a1.BSSID, b.BSSID) {
		t.Errorf("two fleets share a cell: %+v and %+v", a1, b)
	}
	if _, err := PeeringFor(nil); err == nil {
		t.Error("an empty psk derived a cell")
	}
}

// TestPeeringDerivation recomputes the parameters with x/crypto's HKDF, an
// implementation independent of the standard library's one PeeringFor uses.
func TestPeeringDerivation(t *testing.T) {
	psk := []byte("0123456789abcdef0123456789abcdef")
	p, _ := PeeringFor(psk)
	b := make([]byte, 16)
	if _, err := io.ReadFull(xhkdf.New(sha256.New, psk, nil, []byte(peeringInfo)), b); err != nil {
		t.Fatal(err)
	}
	if want := "skyfleet-" + strings.ToLower(net.HardwareAddr(b[:4]).String()); strings.ReplaceAll(want, ":", "") != p.SSID {
		t.Errorf("SSID %q, want %q", p.SSID, strings.ReplaceAll(want, ":", ""))
	}
	if want := []int{1, 6, 11}[int(b[4])%3]; p.Channel != want {
		t.Errorf("channel %d, want %d", p.Channel, want)
	}
	if p.BSSID[0]&0x01 != 0 || p.BSSID[0]&0x02 == 0 || !bytes.Equal(p.BSSID[1:], b[6:11]) || p.BSSID[0]&^0x03 != b[5]&^0x03 {
		t.Errorf("BSSID %s is not the derived locally administered unicast address", p.BSSID)
	}
	if len(p.SSID) > 32 {
		t.Errorf("SSID of %d bytes", len(p.SSID))
	}
}

func TestLinkLocal(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 2000; i++ {
		mac := net.HardwareAddr{2, 0, 0, byte(i >> 16), byte(i >> 8), byte(i)}
		a := LinkLocal(mac)
		ip := a.IP.To4()
		if ip[0] != 169 || ip[1] != 254 || ip[2] < 1 || ip[2] > 254 {
			t.Fatalf("%s: %s is outside 169.254.1.0-169.254.254.255 (RFC 3927 §2.1)", mac, a)
		}
		if ones, _ := a.Mask.Size(); ones != 16 {
			t.Fatalf("mask /%d, want /16", ones)
		}
		if !LinkLocal(mac).IP.Equal(a.IP) {
			t.Fatal("not stable")
		}
		seen[a.IP.String()] = true
	}
	if len(seen) < 1900 {
		t.Errorf("2000 MACs gave only %d addresses: the spread is poor", len(seen))
	}
}

// TestPeeringPMK recomputes the cell's PMK with x/crypto's HKDF and checks
// that another fleet's differs.
func TestPeeringPMK(t *testing.T) {
	psk := []byte("0123456789abcdef0123456789abcdef")
	p, _ := PeeringFor(psk)
	want := make([]byte, 32)
	if _, err := io.ReadFull(xhkdf.New(sha256.New, psk, nil, []byte(peeringPMKInfo)), want); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p.PMK, want) {
		t.Error("the cell's PMK is not HKDF-SHA256(psk, info)")
	}
	q, _ := PeeringFor([]byte("another fleet's psk, 32 bytes..."))
	if bytes.Equal(p.PMK, q.PMK) || bytes.Equal(p.PMK, psk) {
		t.Error("the PMK does not depend on the psk, or is the psk itself")
	}
}
