package eapol

import (
	"bytes"
	"errors"
	"testing"
)

// A real WPA2-PSK 4-way handshake captured by the aircrack-ng project
// (its test capture for the network "Harkonen", passphrase "12345678"), as
// published in aircrack-ng's test/cryptounittest/test-calc-ptk.c and
// test-calc-mic.c: the addresses, both nonces, message 2 as sent by the
// station with its MIC field zeroed, the MIC it carried, the PMK and the
// PTK (PRF-512; CCMP uses its first 48 bytes). test-calc-mic.c also gives
// the PMK, PTK and MIC aircrack computes for the wrong passphrase
// "biscotte", which must not match the captured MIC.
const (
	harkonenSSID   = "Harkonen"
	harkonenPass   = "12345678"
	harkonenAA     = "00146c7e4080"
	harkonenSPA    = "001346fe320c"
	harkonenANonce = "225854b0444de3af06d1492b852984f04cf6274c0e3218b8681756864db7a055"
	harkonenSNonce = "59168bc3a5df18d71efb6423f340088dab9e1ba2bbc58659e07b3764b0de8570"
	harkonenPMK    = "ee51883793a6f68e9615fe73c80a3aa6f2dd0ea537bce627b929183cc6e57925"
	harkonenPTK    = `ea0e404633c802450302868ccaa749de5cba5abcb267e2de1d5e21e57accd507
		9b31e9ff220e132ae4f6ed9ef1acc88545825fc32ee55961395ae43734d6c107`
	harkonenMIC = "d5355382b8a9b806dcaf99cdaf564eb6"
	// Message 2, MIC zeroed (121 bytes).
	harkonenMsg2 = `0103007502010a00100000000000000001 59168bc3a5df18d71efb6423f340088d
		ab9e1ba2bbc58659e07b3764b0de8570 00000000000000000000000000000000
		00000000000000000000000000000000 00000000000000000000000000000000
		0016 30140100000fac040100000fac040100000fac020100`
	// The RSN element the station put in message 2.
	harkonenSTARSNE = "30140100000fac040100000fac040100000fac020100"

	wrongPass   = "biscotte"
	wrongPMK    = "6fe857c0b742dfc2da8a1fe8b1b4b4628d9fbbb060826b83cb43b64b13e103e8"
	wrongPTK384 = `9a75ef0bde7c209ccae13f54b1b33ea3fa0166166e30811f1baaff8d1c1ac163
		82a49b50b86088c5cb793b542661a28a`
	wrongMIC = "6f0489cf7406acf0ae8fcb32bce57c37"
)

// harkonen returns the captured message 2 with its MIC put back, as it was
// on the air.
func harkonenFrame(t testing.TB) []byte {
	b := unhex(t, harkonenMsg2)
	copy(b[offMIC:], unhex(t, harkonenMIC))
	return b
}

func mac6(t testing.TB, s string) (a [6]byte) { return [6]byte(unhex(t, s)) }

func nonce(t testing.TB, s string) (n [NonceLen]byte) { return [NonceLen]byte(unhex(t, s)) }

func TestCapturedHandshake(t *testing.T) {
	pmk, err := PMK(harkonenPass, []byte(harkonenSSID))
	if err != nil || !bytes.Equal(pmk, unhex(t, harkonenPMK)) {
		t.Fatalf("PMK = %x, %v; want %s", pmk, err, harkonenPMK)
	}
	aa, spa := mac6(t, harkonenAA), mac6(t, harkonenSPA)
	an, sn := nonce(t, harkonenANonce), nonce(t, harkonenSNonce)
	ptk, err := DerivePTK(pmk, aa, spa, an, sn)
	if err != nil {
		t.Fatal(err)
	}
	want := unhex(t, harkonenPTK)[:PTKLen]
	got := append(append(ptk.KCK[:], ptk.KEK[:]...), ptk.TK[:]...)
	if !bytes.Equal(got, want) {
		t.Fatalf("PTK = %x, want %x", got, want)
	}
	// The addresses and nonces passed the other way round give the same PTK.
	if p2, _ := DerivePTK(pmk, spa, aa, sn, an); p2 != ptk {
		t.Error("DerivePTK depends on argument order")
	}

	frame := harkonenFrame(t)
	f, err := ParseKeyFrame(frame)
	if err != nil {
		t.Fatalf("ParseKeyFrame(captured message 2): %v", err)
	}
	if f.ProtocolVersion != 1 || f.Info != 0x010a || f.Info.Version() != DescVersionHMACSHA1 ||
		!f.Info.Has(InfoPairwise|InfoMIC) || f.Info.Has(InfoAck) || f.Info.Has(InfoSecure) ||
		f.KeyLength != 16 || f.ReplayCounter != 1 || f.Nonce != sn ||
		!bytes.Equal(f.KeyData, unhex(t, harkonenSTARSNE)) || !bytes.Equal(f.MIC[:], unhex(t, harkonenMIC)) {
		t.Errorf("captured message 2 parsed as %+v", f)
	}
	kd, err := ParseKeyData(f.KeyData)
	if err != nil || !bytes.Equal(kd.RSNE, unhex(t, harkonenSTARSNE)) || kd.GTK != nil {
		t.Errorf("ParseKeyData = %+v, %v", kd, err)
	}
	if out, err := f.Marshal(); err != nil || !bytes.Equal(out, frame) {
		t.Errorf("Marshal does not reproduce the captured frame:\n got %x\nwant %x", out, frame)
	}
	if err := VerifyMIC(ptk.KCK[:], frame); err != nil {
		t.Errorf("captured MIC does not verify: %v", err)
	}
	if mic, err := ComputeMIC(ptk.KCK[:], unhex(t, harkonenMsg2)); err != nil || !bytes.Equal(mic[:], unhex(t, harkonenMIC)) {
		t.Errorf("ComputeMIC = %x, %v; want %s", mic, err, harkonenMIC)
	}

	// The wrong passphrase: aircrack-ng's published PMK, PTK and MIC, and
	// a MIC failure.
	bad, _ := PMK(wrongPass, []byte(harkonenSSID))
	if !bytes.Equal(bad, unhex(t, wrongPMK)) {
		t.Errorf("PMK(%q) = %x, want %s", wrongPass, bad, wrongPMK)
	}
	bptk, _ := DerivePTK(bad, aa, spa, an, sn)
	if got := append(append(bptk.KCK[:], bptk.KEK[:]...), bptk.TK[:]...); !bytes.Equal(got, unhex(t, wrongPTK384)) {
		t.Errorf("wrong-passphrase PTK = %x, want %s", got, wrongPTK384)
	}
	if mic, _ := ComputeMIC(bptk.KCK[:], frame); !bytes.Equal(mic[:], unhex(t, wrongMIC)) {
		t.Errorf("wrong-passphrase MIC = %x, want %s", mic, wrongMIC)
	}
	if err := VerifyMIC(bptk.KCK[:], frame); !errors.Is(err, ErrMICFailure) {
		t.Errorf("VerifyMIC with the wrong passphrase: %v, want ErrMICFailure", err)
	}
	// Every single-bit change to the frame breaks the MIC.
	for i := range frame {
		if i >= offMIC && i < offMIC+MICLen {
			continue // the MIC itself
		}
		b := bytes.Clone(frame)
		b[i] ^= 0x01
		if err := VerifyMIC(ptk.KCK[:], b); !errors.Is(err, ErrMICFailure) {
			t.Fatalf("byte %d flipped: VerifyMIC = %v, want ErrMICFailure", i, err)
		}
	}
}
