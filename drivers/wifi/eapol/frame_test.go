package eapol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

func TestParseKeyFrameErrors(t *testing.T) {
	good := harkonenFrame(t)
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	for _, tc := range []struct {
		name  string
		frame []byte
		want  error
	}{
		{"empty", nil, ErrShort},
		{"3 bytes", good[:3], ErrShort},
		{"header only", good[:4], ErrShort},
		{"truncated body", good[:len(good)-1], ErrShort},
		{"trailing byte", append(bytes.Clone(good), 0), ErrLength},
		{"EAPOL version 0", mod(func(b []byte) []byte { b[0] = 0; return b }), ErrNotKey},
		{"EAPOL version 4", mod(func(b []byte) []byte { b[0] = 4; return b }), ErrNotKey},
		{"EAP packet", mod(func(b []byte) []byte { b[1] = 0; return b }), ErrNotKey},
		{"EAPOL-Start", []byte{2, 1, 0, 0}, ErrNotKey},
		{"WPA1 descriptor", mod(func(b []byte) []byte { b[4] = 254; return b }), ErrDescriptor},
		{"body shorter than descriptor", []byte{2, 3, 0, 1, 2}, ErrShort},
		{"key data length too long", mod(func(b []byte) []byte { b[offKeyDataLen+1]++; return b }), ErrLength},
		{"key data length too short", mod(func(b []byte) []byte { b[offKeyDataLen+1]--; return b }), ErrLength},
		{"body length too short", mod(func(b []byte) []byte { b[3]--; return b }), ErrLength},
	} {
		f, err := ParseKeyFrame(tc.frame)
		if !errors.Is(err, tc.want) || f != nil {
			t.Errorf("%s: %v, %v; want %v", tc.name, f, err, tc.want)
		}
	}
	// A frame with no Key Data is the smallest valid one.
	f := &KeyFrame{Info: DescVersionHMACSHA1 | InfoPairwise | InfoAck, ReplayCounter: 7}
	b, err := f.Marshal()
	if err != nil || len(b) != MinFrameLen || MinFrameLen != 99 {
		t.Fatalf("Marshal: %d bytes, %v", len(b), err)
	}
	if g, err := ParseKeyFrame(b); err != nil || g.ReplayCounter != 7 || g.ProtocolVersion != ProtocolVersion || len(g.KeyData) != 0 {
		t.Errorf("round trip: %+v, %v", g, err)
	}
	if _, err := (&KeyFrame{KeyData: make([]byte, 0x10000)}).Marshal(); !errors.Is(err, ErrLength) {
		t.Errorf("Marshal of 64 KiB key data: %v", err)
	}
	// MIC functions on bad input.
	if _, err := ComputeMIC(make([]byte, 16), good[:50]); !errors.Is(err, ErrShort) {
		t.Errorf("ComputeMIC of a short frame: %v", err)
	}
	b1 := bytes.Clone(good)
	binary.BigEndian.PutUint16(b1[offInfo:], 0x0109) // version 1, HMAC-MD5/RC4
	if err := VerifyMIC(make([]byte, 16), b1); !errors.Is(err, ErrUnsupportedVersion) {
		t.Errorf("VerifyMIC of a version 1 frame: %v", err)
	}
}

// A descriptor version 3 frame's MIC is AES-128-CMAC over the frame with a
// zero MIC field (IEEE 802.11-2020 §12.7.2).
func TestMICVersion3(t *testing.T) {
	kck := bytes.Repeat([]byte{7}, 16)
	f := &KeyFrame{Info: DescVersionAESCMAC | InfoPairwise | InfoMIC, ReplayCounter: 1, KeyData: testSTARSNE}
	b, _ := f.Marshal()
	want, _ := CMAC(kck, b)
	if err := SetMIC(kck, b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b[offMIC:offMIC+MICLen], want[:]) {
		t.Error("version 3 MIC is not AES-CMAC of the zero-MIC frame")
	}
	if err := VerifyMIC(kck, b); err != nil {
		t.Error(err)
	}
	b[len(b)-1] ^= 1
	if err := VerifyMIC(kck, b); !errors.Is(err, ErrMICFailure) {
		t.Errorf("tampered version 3 frame: %v", err)
	}
}

func TestKeyData(t *testing.T) {
	g := &GroupKey{Index: 2, Tx: true, Key: bytes.Repeat([]byte{0xab}, 16)}
	plain := AppendGTKKDE(bytes.Clone(testAPRSNE), g)
	// RSNE (22) + GTK KDE (2+4+2+16 = 24) = 46 bytes: pads to 48.
	p := PadKeyData(plain)
	if len(p) != 48 || p[46] != 0xdd || p[47] != 0 {
		t.Fatalf("PadKeyData: %d bytes, tail %x", len(p), p[44:])
	}
	kd, err := ParseKeyData(p)
	if err != nil || !bytes.Equal(kd.RSNE, testAPRSNE) || !sameGroupKey(kd.GTK, g) || !kd.GTK.Tx {
		t.Fatalf("ParseKeyData: %+v, %v", kd, err)
	}
	// Already a multiple of 8 and at least 16: unchanged. Short: 16.
	if got := PadKeyData(make([]byte, 24)); len(got) != 24 {
		t.Errorf("PadKeyData(24 bytes) = %d bytes", len(got))
	}
	if got := PadKeyData(nil); len(got) != 16 || got[0] != 0xdd {
		t.Errorf("PadKeyData(nil) = %x", got)
	}
	// Unknown elements and KDEs are skipped.
	other := []byte{0xdd, 0x05, 0x00, 0x0f, 0xac, 0x04, 0x01, 0x7f, 0x01, 0x00}
	if kd, err := ParseKeyData(append(other, plain...)); err != nil || kd.GTK == nil {
		t.Errorf("with other elements first: %+v, %v", kd, err)
	}
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"overrun", []byte{0x30, 0x05, 1, 2}},
		{"lone ID", []byte{0x30}},
		{"two GTKs", append(AppendGTKKDE(nil, g), AppendGTKKDE(nil, g)...)},
		{"empty GTK", []byte{0xdd, 0x06, 0x00, 0x0f, 0xac, 0x01, 0x01, 0x00}},
		{"GTK too long", AppendGTKKDE(nil, &GroupKey{Key: make([]byte, 33)})},
		{"junk after padding", []byte{0xdd, 0x00, 0x00, 0x01}},
	} {
		if _, err := ParseKeyData(tc.b); !errors.Is(err, ErrKeyData) {
			t.Errorf("%s: %v, want ErrKeyData", tc.name, err)
		}
	}
}
