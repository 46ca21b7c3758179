package eapol

import (
	"bytes"
	"testing"
)

// A complete real WPA2-PSK 4-way handshake, from the wpa-Induction.pcap
// sample on aircrack-ng's and Wireshark's sites (SSID "Coherer",
// passphrase "Induction"), as carried in libtins'
// tests/src/wpa2_decrypt_test.cpp (ccmp_packets): the EAPOL PDUs cut out
// of the radiotap frames (after the LLC/SNAP header, before the FCS), and
// the RSN element of the AP's beacon. Pairwise cipher CCMP, group TKIP,
// so the GTK is 32 bytes.
const (
	inductionSSID = "Coherer"
	inductionPass = "Induction"
	inductionAA   = "000c4182b255"
	inductionSPA  = "000d9382363a"
	inductionM1   = `0203007502008a00100000000000000000 3e8e967dacd960324cac5b6aa721235b
		f57b949771c867989f49d04ed47c6933 00000000000000000000000000000000
		0000000000000000 0000000000000000 00000000000000000000000000000000
		0016 dd14000fac04592da88096c461da246c69001e877f3d`
	inductionM2 = `0203007502010a00100000000000000000 cdf405ceb9d889ef3dec42609828fae5
		46b7add7baecbb1a394eac5214b1d386 00000000000000000000000000000000
		0000000000000000 0000000000000000 a462a7029ad5ba30b6af0df391988e45
		0016 30140100000fac020100000fac040100000fac020000`
	inductionM3 = `020300af0213ca00100000000000000001 3e8e967dacd960324cac5b6aa721235b
		f57b949771c867989f49d04ed47c6933 f57b949771c867989f49d04ed47c6934
		cf02000000000000 0000000000000000 7d0af6df51e99cde7a187453f0f93537
		0050 cfa72cde35b2c1e2319255806ab364179fd9673041b9a5939fa1a2010d2ac794
		e25168055f794ddc1fdfae3521f4446bfd11da98345f543df6ce199df8fe48f8
		cdd17adca87bf45711183c496d41aa0c`
	inductionM4 = `0203005f02030a00100000000000000001 00000000000000000000000000000000
		00000000000000000000000000000000 00000000000000000000000000000000
		0000000000000000 0000000000000000 10bba3bdfbcfde2bc537509d71f2ecd1
		0000`
	// The RSN element of the beacon: group TKIP, pairwise CCMP and TKIP,
	// AKM PSK.
	inductionBeaconRSNE = "30180100000fac020200000fac04000fac020100000fac020000"
)

// Our Supplicant, given the AP's real message 1 and 3 and the station's
// SNonce, must verify the AP's MIC, unwrap its GTK, match the beacon's
// RSNE, and derive the PTK under which the real station's messages 2 and
// 4 verify.
func TestCapturedInductionHandshake(t *testing.T) {
	pmk, err := PMK(inductionPass, []byte(inductionSSID))
	if err != nil {
		t.Fatal(err)
	}
	m1, m2, m3, m4 := unhex(t, inductionM1), unhex(t, inductionM2), unhex(t, inductionM3), unhex(t, inductionM4)
	f2, err := ParseKeyFrame(m2)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSupplicant(SupplicantConfig{PMK: pmk, SPA: mac6(t, inductionSPA), AA: mac6(t, inductionAA),
		RSNE: f2.KeyData, APRSNE: unhex(t, inductionBeaconRSNE), Rand: bytes.NewReader(f2.Nonce[:])})
	if err != nil {
		t.Fatal(err)
	}
	ourM2, keys, err := s.Handle(m1)
	if err != nil || keys != nil {
		t.Fatalf("message 1: %v, %v", keys, err)
	}
	if f, _ := ParseKeyFrame(ourM2); f.Nonce != f2.Nonce || f.ReplayCounter != f2.ReplayCounter || !bytes.Equal(f.KeyData, f2.KeyData) {
		t.Errorf("our message 2 differs from the station's in nonce, counter or RSNE")
	}
	ourM4, keys, err := s.Handle(m3)
	if err != nil {
		t.Fatalf("real message 3 refused: %v", err)
	}
	if keys == nil || keys.PTK == nil || keys.GTK == nil {
		t.Fatalf("keys %v", keys)
	}
	// The real station's frames verify under the PTK we derived.
	if err := VerifyMIC(keys.PTK.KCK[:], m2); err != nil {
		t.Errorf("real message 2: %v", err)
	}
	if err := VerifyMIC(keys.PTK.KCK[:], m4); err != nil {
		t.Errorf("real message 4: %v", err)
	}
	if err := VerifyMIC(keys.PTK.KCK[:], ourM4); err != nil {
		t.Errorf("our message 4: %v", err)
	}
	f4, _ := ParseKeyFrame(m4)
	if g, _ := ParseKeyFrame(ourM4); g.Info != f4.Info || g.ReplayCounter != f4.ReplayCounter {
		t.Errorf("our message 4 key information %#04x counter %d; the station sent %#04x, %d", g.Info, g.ReplayCounter, f4.Info, f4.ReplayCounter)
	}
	// The GTK came out of an AES key unwrap whose integrity check passed,
	// so these bytes are the AP's: key ID 2, 32 bytes for TKIP, and the
	// RSC from message 3.
	g := keys.GTK
	if g.Index != 2 || len(g.Key) != 32 || g.RSC != [8]byte{0xcf, 0x02} {
		t.Errorf("GTK index %d, %d bytes, RSC %x", g.Index, len(g.Key), g.RSC)
	}
}
