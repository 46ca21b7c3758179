package link

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"

	"github.com/flynn/noise"
	"golang.org/x/crypto/curve25519"
)

// The handshake is Noise_IKpsk2_secp256k1_ChaChaPoly_SHA256, for which no published
// vectors exist, and every other test in this package is a round trip between two
// copies of the same code, which a mistake made the same way on both sides passes.
// TestNoiseVectors closes that gap: it runs the package's own Noise layer
// (newNoiseState, writeInit, readInit, writeResp, readResp, newSession: the functions
// Initiate, Respond and Finish call) with Curve25519 in place of secp256k1 against
// published vectors from cacophony (testdata/README.md), compares every byte, and
// checks that the keys newSession installs are the right Noise transport keys.
//
// Covered: the protocol name (it seeds the handshake hash), pattern IK, the psk and
// its placement 2, ChaCha20-Poly1305 and SHA-256 as the Noise functions, the order of
// tokens, the layout of message 1's payload (timestamp then caller payload: the
// vector's payload is split into the two), message 2 carrying a payload, the handshake
// hash, and which Split() key each side sends and receives with.
//
// Not covered by the vectors, and tested elsewhere: the secp256k1 DH function itself
// (dh_test.go checks it against decred's reference implementation on random and edge
// keys), the prologue's content ("skyfleet link v1" plus the Init header, replaced
// here by the vector's prologue; TestTampered checks that changing the header breaks
// the handshake), the datagram framing around the Noise messages (type, indexes, the
// psk-keyed mac: handshake_test.go), the Data datagram format (our nonce is receiver
// index and counter and our ad the header, unlike Noise's transport messages, so only
// the keys are checked here, by sealing the vector's transport messages with Noise's
// nonce and empty ad), and rekeying (session_test.go).

type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	*h = v
	return err
}

// noiseVector is one vector in the Noise wiki's format.
type noiseVector struct {
	ProtocolName     string     `json:"protocol_name"`
	InitPrologue     hexBytes   `json:"init_prologue"`
	InitPSKs         []hexBytes `json:"init_psks"`
	InitStatic       hexBytes   `json:"init_static"`
	InitEphemeral    hexBytes   `json:"init_ephemeral"`
	InitRemoteStatic hexBytes   `json:"init_remote_static"`
	RespPrologue     hexBytes   `json:"resp_prologue"`
	RespPSKs         []hexBytes `json:"resp_psks"`
	RespStatic       hexBytes   `json:"resp_static"`
	RespEphemeral    hexBytes   `json:"resp_ephemeral"`
	HandshakeHash    hexBytes   `json:"handshake_hash"`
	Messages         []struct {
		Payload    hexBytes `json:"payload"`
		Ciphertext hexBytes `json:"ciphertext"`
	} `json:"messages"`
}

func loadNoiseVectors(t *testing.T) []noiseVector {
	t.Helper()
	b, err := os.ReadFile("testdata/noise_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ Vectors []noiseVector }
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return f.Vectors
}

// key25519 is the Curve25519 key pair of a private key.
func key25519(t *testing.T, priv []byte) noise.DHKey {
	t.Helper()
	pub, err := curve25519.X25519(priv, curve25519.Basepoint)
	if err != nil {
		t.Fatal(err)
	}
	return noise.DHKey{Private: priv, Public: pub}
}

// noiseNonce is a Noise transport nonce for ChaChaPoly (Noise rev 34 §12.3): 32 zero
// bits then the counter n, little endian.
func noiseNonce(n uint64) []byte {
	var b [12]byte
	binary.LittleEndian.PutUint64(b[4:], n)
	return b[:]
}

func TestNoiseVectors(t *testing.T) {
	vectors := loadNoiseVectors(t)
	want := map[string]bool{
		"Noise_IKpsk2_25519_ChaChaPoly_SHA256": true,
		"Noise_IK_25519_ChaChaPoly_SHA256":     true,
	}
	for _, v := range vectors {
		if !want[v.ProtocolName] {
			t.Errorf("unexpected vector %s", v.ProtocolName)
			continue
		}
		delete(want, v.ProtocolName)
		t.Run(v.ProtocolName, func(t *testing.T) { runNoiseVector(t, v) })
	}
	for name := range want {
		t.Errorf("vector %s missing from testdata", name)
	}
}

func runNoiseVector(t *testing.T, v noiseVector) {
	if len(v.Messages) < 4 || len(v.Messages[0].Payload) < 8 {
		t.Fatalf("vector too short: %d messages", len(v.Messages))
	}
	var psk *[32]byte // nil: plain IK
	switch len(v.InitPSKs) {
	case 0:
	case 1:
		if len(v.InitPSKs[0]) != 32 {
			t.Fatalf("psk of %d bytes", len(v.InitPSKs[0]))
		}
		psk = (*[32]byte)(v.InitPSKs[0])
	default:
		t.Fatalf("%d psks: our handshake has one", len(v.InitPSKs))
	}
	if len(v.RespPSKs) != len(v.InitPSKs) || (psk != nil && !bytes.Equal(v.RespPSKs[0], psk[:])) {
		t.Fatal("initiator and responder psks differ")
	}
	cs := noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashSHA256)
	initStatic, respStatic := key25519(t, v.InitStatic), key25519(t, v.RespStatic)
	if !bytes.Equal(v.InitRemoteStatic, respStatic.Public) {
		t.Fatal("init_remote_static is not the responder's public key")
	}
	// The ephemerals come from the rng: Curve25519 key generation reads 32 bytes.
	rngI, rngR := bytes.NewReader(v.InitEphemeral), bytes.NewReader(v.RespEphemeral)

	hsI, err := newNoiseState(cs, true, initStatic, v.InitRemoteStatic, psk, v.InitPrologue, rngI)
	if err != nil {
		t.Fatal(err)
	}
	hsR, err := newNoiseState(cs, false, respStatic, nil, psk, v.RespPrologue, rngR)
	if err != nil {
		t.Fatal(err)
	}

	// Message 1: its payload is our timestamp followed by the caller's payload.
	m := v.Messages[0]
	ts := binary.BigEndian.Uint64(m.Payload[:8])
	got, err := writeInit(hsI, nil, ts, m.Payload[8:])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, m.Ciphertext) {
		t.Fatalf("message 1:\n got  %x\n want %x", got, m.Ciphertext)
	}
	gotTS, payload, remote, err := readInit(hsR, m.Ciphertext)
	if err != nil {
		t.Fatalf("readInit of the vector's message 1: %v", err)
	}
	if gotTS != ts || !bytes.Equal(payload, m.Payload[8:]) {
		t.Errorf("message 1 read as ts %x payload %x, want %x", gotTS, payload, m.Payload)
	}
	if !bytes.Equal(remote, initStatic.Public) {
		t.Errorf("responder learnt static %x, want %x", remote, initStatic.Public)
	}

	// Message 2 completes the handshake on both sides.
	m = v.Messages[1]
	got, kR, err := writeResp(hsR, nil, m.Payload)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, m.Ciphertext) {
		t.Fatalf("message 2:\n got  %x\n want %x", got, m.Ciphertext)
	}
	payload, kI, err := readResp(hsI, m.Ciphertext)
	if err != nil {
		t.Fatalf("readResp of the vector's message 2: %v", err)
	}
	if !bytes.Equal(payload, m.Payload) {
		t.Errorf("message 2 payload %x, want %x", payload, m.Payload)
	}
	if rngI.Len() != 0 || rngR.Len() != 0 {
		t.Errorf("ephemeral keys not used whole: %d and %d bytes left", rngI.Len(), rngR.Len())
	}
	for _, k := range []handshakeKeys{kI, kR} {
		if !bytes.Equal(k.hash, v.HandshakeHash) {
			t.Errorf("handshake hash %x, want %x", k.hash, v.HandshakeHash)
		}
	}
	if kI.i2r != kR.i2r || kI.r2i != kR.r2i || kI.i2r == kI.r2i {
		t.Error("the two sides split different keys, or the same key both ways")
	}

	// Transport: the keys newSession installs must be Noise's, the right way round.
	// Messages alternate initiator, responder; each direction counts from nonce 0.
	hh := &Handshaker{rand: newDetRand("vectors")}
	sI := newSession(hh, true, [KeyLen]byte{}, 1, 2, kI, testTime)
	sR := newSession(hh, false, [KeyLen]byte{}, 2, 1, kR, testTime)
	for i, m := range v.Messages[2:] {
		from, to := sI, sR
		if i%2 == 1 {
			from, to = sR, sI
		}
		n := noiseNonce(uint64(i / 2))
		ct := from.keys.Load().cur.send.Seal(nil, n, m.Payload, nil)
		if !bytes.Equal(ct, m.Ciphertext) {
			t.Errorf("transport message %d (initiator sends: %v):\n got  %x\n want %x", i+3, from == sI, ct, m.Ciphertext)
		}
		pt, err := to.keys.Load().cur.recv.Open(nil, n, m.Ciphertext, nil)
		if err != nil || !bytes.Equal(pt, m.Payload) {
			t.Errorf("transport message %d: receiver opens %x, %v", i+3, pt, err)
		}
	}
}

// TestNoiseVectorsMismatch shows the vector checks can fail: a responder with the
// wrong psk must not reproduce the vector's message 2, and one without the psk
// modifier or with another prologue must not even read message 1.
func TestNoiseVectorsMismatch(t *testing.T) {
	var v noiseVector
	for _, x := range loadNoiseVectors(t) {
		if x.ProtocolName == "Noise_IKpsk2_25519_ChaChaPoly_SHA256" {
			v = x
		}
	}
	if v.ProtocolName == "" {
		t.Fatal("IKpsk2 vector missing")
	}
	cs := noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashSHA256)
	psk := [32]byte(v.RespPSKs[0])
	badPSK := psk
	badPSK[0] ^= 1
	for _, c := range []struct {
		name     string
		psk      *[32]byte
		prologue []byte
	}{
		{"psk", &badPSK, v.RespPrologue},
		{"no psk", nil, v.RespPrologue},
		{"prologue", &psk, append(append([]byte(nil), v.RespPrologue...), 0)},
	} {
		hsR, err := newNoiseState(cs, false, key25519(t, v.RespStatic), nil, c.psk, c.prologue, bytes.NewReader(v.RespEphemeral))
		if err != nil {
			t.Fatal(err)
		}
		_, _, _, err = readInit(hsR, v.Messages[0].Ciphertext)
		if c.name != "psk" {
			// The protocol name and the prologue are in the hash that authenticates
			// message 1's ciphertexts.
			if err != ErrAuth {
				t.Errorf("%s: readInit: %v, want ErrAuth", c.name, err)
			}
			continue
		}
		// The psk enters only at the end of message 2 (psk2): message 1 still reads.
		if err != nil {
			t.Fatalf("%s: readInit: %v", c.name, err)
		}
		got, _, err := writeResp(hsR, nil, v.Messages[1].Payload)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(got, v.Messages[1].Ciphertext) {
			t.Errorf("%s: a different psk reproduced the vector's message 2", c.name)
		}
	}
}
