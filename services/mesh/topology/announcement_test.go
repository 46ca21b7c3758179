package topology

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// randomAnnouncement returns a signed announcement by key number ki with random
// content whose values survive encoding exactly.
func randomAnnouncement(t testing.TB, r *rand.Rand, ki int) *Announcement {
	priv := testKey(ki)
	a := &Announcement{Origin: pubKey(priv), Seq: r.Uint64() | 1}
	n := r.IntN(40)
	if r.IntN(10) == 0 {
		n = r.IntN(MaxNeighbours + 1)
	}
	seen := map[Key]bool{a.Origin: true}
	for len(a.Neighbours) < n {
		var k Key
		k[0] = byte(2 + r.IntN(2))
		for i := 1; i < KeyLen; i++ {
			k[i] = byte(r.Uint32())
		}
		if seen[k] {
			continue
		}
		seen[k] = true
		a.Neighbours = append(a.Neighbours, Neighbour{
			Key:  k,
			RTT:  time.Duration(r.Uint32()) * time.Microsecond,
			Loss: float64(r.IntN(math.MaxUint16+1)) / math.MaxUint16,
		})
	}
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789_-"
	switch r.IntN(4) {
	case 0: // unknown
	case 1: // the extremes of the encoding
		a.Time = []int64{1, math.MaxInt64}[r.IntN(2)]
	default:
		a.Time = 1767225600000 + r.Int64N(1e12)
	}
	m := r.IntN(MaxProperties + 1)
	if a.Time > 0 {
		m = min(m, MaxProperties-1) // the time takes one
	}
	for len(a.Properties) < m {
		b := make([]byte, 1+r.IntN(MaxPropertyLen))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		if !containsString(a.Properties, string(b)) && !isTimeProperty(string(b)) {
			a.Properties = append(a.Properties, string(b))
		}
	}
	if err := a.Sign(priv); err != nil {
		t.Fatal(err)
	}
	return a
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		a := randomAnnouncement(t, r, i%8)
		b, err := a.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != a.EncodedLen() || len(b) > MaxEncodedLen {
			t.Fatalf("encoded %d bytes, EncodedLen %d, max %d", len(b), a.EncodedLen(), MaxEncodedLen)
		}
		got, err := Unmarshal(b)
		if err != nil {
			t.Fatalf("Unmarshal: %v", err)
		}
		if !reflect.DeepEqual(got, a) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, a)
		}
		if err := got.Verify(); err != nil {
			t.Fatalf("Verify: %v", err)
		}
		again, err := got.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs (%v)", err)
		}
	}
}

func TestEncodedSizes(t *testing.T) {
	a := &Announcement{Origin: pubKey(testKey(0)), Seq: 1}
	for i := range MaxDatagramNeighbours {
		a.Neighbours = append(a.Neighbours, Neighbour{Key: pubKey(testKey(i + 1)), RTT: time.Millisecond})
	}
	if err := a.Sign(testKey(0)); err != nil {
		t.Fatal(err)
	}
	b, _ := a.MarshalBinary()
	if len(b) != 1357 {
		t.Errorf("32 neighbours, no properties: %d bytes, want 1357", len(b))
	}
	a.Properties = []string{"gateway", "master", "relay"}
	_ = a.Sign(testKey(0))
	b, _ = a.MarshalBinary()
	if len(b) != 1378 || len(b) > 1400 {
		t.Errorf("32 neighbours, 3 properties: %d bytes, want 1378", len(b))
	}
	// The time takes 16 bytes until the year 2286.
	a.Time = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	_ = a.Sign(testKey(0))
	b, _ = a.MarshalBinary()
	if len(b) != 1394 || a.EncodedLen() != len(b) {
		t.Errorf("32 neighbours, 3 properties and the time: %d bytes (EncodedLen %d), want 1394", len(b), a.EncodedLen())
	}
	a.Time = 0
	// 43 bytes of properties still fit 1400, 44 do not.
	a.Properties = []string{strings.Repeat("a", 32), strings.Repeat("b", 9)}
	if n := a.EncodedLen(); n != 1400 {
		t.Errorf("EncodedLen = %d, want 1400", n)
	}
	if MaxEncodedLen != 10582 {
		t.Errorf("MaxEncodedLen = %d, want 10582", MaxEncodedLen)
	}
}

func TestQuantisation(t *testing.T) {
	priv := testKey(0)
	a := &Announcement{Origin: pubKey(priv), Seq: 7, Neighbours: []Neighbour{
		{Key: pubKey(testKey(1)), RTT: 100 * time.Hour, Loss: 1.5},
		{Key: pubKey(testKey(2)), RTT: -time.Second, Loss: -0.25},
		{Key: pubKey(testKey(3)), RTT: 1500 * time.Nanosecond, Loss: 0.5},
	}}
	if err := a.Sign(priv); err != nil {
		t.Fatal(err)
	}
	b, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		rtt  time.Duration
		loss float64
	}{
		{math.MaxUint32 * time.Microsecond, 1},
		{0, 0},
		{time.Microsecond, 32768.0 / 65535},
	}
	for i, w := range want {
		if n := got.Neighbours[i]; n.RTT != w.rtt || n.Loss != w.loss {
			t.Errorf("neighbour %d: rtt %v loss %v, want %v %v", i, n.RTT, n.Loss, w.rtt, w.loss)
		}
	}
	// The original (unquantised) struct still verifies: the signature is over the
	// encoding.
	if err := a.Verify(); err != nil {
		t.Errorf("Verify of the unquantised struct: %v", err)
	}
	if err := got.Verify(); err != nil {
		t.Errorf("Verify decoded: %v", err)
	}
	a.Neighbours[0].Loss = math.NaN()
	if err := a.Sign(priv); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "neighbours[0].loss") {
		t.Errorf("Sign with NaN loss: %v", err)
	}
}

// validEncoding returns a signed announcement with 3 neighbours and 2 properties and
// its encoding.
func validEncoding(t testing.TB) (*Announcement, []byte) {
	priv := testKey(0)
	a := &Announcement{Origin: pubKey(priv), Seq: 42, Properties: []string{"gateway", "relay"}}
	for i := 1; i <= 3; i++ {
		a.Neighbours = append(a.Neighbours, Neighbour{Key: pubKey(testKey(i)), RTT: time.Duration(i) * time.Millisecond, Loss: 0.01})
	}
	if err := a.Sign(priv); err != nil {
		t.Fatal(err)
	}
	b, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

// Offsets in validEncoding's bytes.
const (
	offSeq      = 34
	offCount    = 42
	offNb0      = 43
	offNb1      = offNb0 + neighbourLen
	offPropCnt  = offNb0 + 3*neighbourLen
	offProp0Len = offPropCnt + 1
	offProp0    = offProp0Len + 1
)

func TestUnmarshalRejects(t *testing.T) {
	_, good := validEncoding(t)
	if _, err := Unmarshal(good); err != nil {
		t.Fatalf("valid encoding refused: %v", err)
	}
	mut := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	cases := []struct {
		name  string
		b     []byte
		field string // the error must name it
	}{
		{"empty", nil, "version"},
		{"bad version", mut(func(b []byte) []byte { b[0] = 2; return b }), "version: 2 is not supported"},
		{"version 0", mut(func(b []byte) []byte { b[0] = 0; return b }), "version"},
		{"origin prefix", mut(func(b []byte) []byte { b[1] = 0x04; return b }), "origin: prefix 0x04"},
		{"seq zero", mut(func(b []byte) []byte { clear(b[offSeq : offSeq+8]); return b }), "seq"},
		{"count beyond data", mut(func(b []byte) []byte { b[offCount] = 200; return b }), "neighbours["},
		{"neighbour prefix", mut(func(b []byte) []byte { b[offNb1] = 0; return b }), "neighbours[1].key: prefix"},
		{"neighbour duplicate", mut(func(b []byte) []byte {
			copy(b[offNb1:offNb1+KeyLen], b[offNb0:offNb0+KeyLen])
			return b
		}), "neighbours[1].key: duplicate"},
		{"neighbour is origin", mut(func(b []byte) []byte { copy(b[offNb1:offNb1+KeyLen], b[1:1+KeyLen]); return b }), "neighbours[1].key: is the origin"},
		{"too many properties", mut(func(b []byte) []byte { b[offPropCnt] = MaxProperties + 1; return b }), "properties: 17 is more than 16"},
		{"property length 0", mut(func(b []byte) []byte { b[offProp0Len] = 0; return b }), "properties[0]: length 0"},
		{"property too long", mut(func(b []byte) []byte { b[offProp0Len] = MaxPropertyLen + 1; return b }), "properties[0]: length 33"},
		{"property upper case", mut(func(b []byte) []byte { b[offProp0] = 'G'; return b }), "properties[0]: byte 0"},
		{"property space", mut(func(b []byte) []byte { b[offProp0+1] = ' '; return b }), "properties[0]: byte 1"},
		{"property duplicate", mut(func(b []byte) []byte {
			sig := bytes.Clone(b[len(b)-SignatureLen:])
			b = append(b[:offPropCnt], "\x02\x05relay\x05relay"...)
			return append(b, sig...)
		}), "properties[1]: duplicate \"relay\""},
		{"trailing byte", append(bytes.Clone(good), 0), "1 trailing bytes"},
		{"trailing signature", append(bytes.Clone(good), good[len(good)-SignatureLen:]...), "trailing"},
		{"sig recovery code", mut(func(b []byte) []byte { b[len(b)-SignatureLen] = 27; return b }), "sig: recovery code 27"},
	}
	for _, c := range cases {
		_, err := Unmarshal(c.b)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", c.name, err)
			continue
		}
		if !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: %q does not name %q", c.name, err, c.field)
		}
	}
	// Every truncation is refused, with the field that was cut.
	for n := range len(good) {
		_, err := Unmarshal(good[:n])
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "truncated") {
			t.Fatalf("truncated to %d of %d: %v", n, len(good), err)
		}
	}
	if _, err := Unmarshal(good[:offNb0+KeyLen+1]); err == nil || !strings.Contains(err.Error(), "neighbours[0].rtt: truncated (1 of 4 bytes)") {
		t.Errorf("truncated in rtt: %v", err)
	}
	if _, err := Unmarshal(good[:len(good)-1]); err == nil || !strings.Contains(err.Error(), "sig: truncated (64 of 65 bytes)") {
		t.Errorf("truncated in sig: %v", err)
	}
}

func TestMarshalRejects(t *testing.T) {
	base, _ := validEncoding(t)
	cases := []struct {
		name  string
		f     func(a *Announcement)
		field string
	}{
		{"too many neighbours", func(a *Announcement) {
			a.Neighbours = nil
			for i := range MaxNeighbours + 1 {
				var k Key
				k[0], k[1], k[2] = 2, byte(i>>8), byte(i)
				a.Neighbours = append(a.Neighbours, Neighbour{Key: k})
			}
		}, "neighbours: 256 is more than 255"},
		{"too many properties", func(a *Announcement) {
			a.Properties = nil
			for i := range MaxProperties + 1 {
				a.Properties = append(a.Properties, strings.Repeat("p", i+1))
			}
		}, "properties: 17"},
		{"empty property", func(a *Announcement) { a.Properties = []string{""} }, "properties[0]: length 0"},
		{"bad property", func(a *Announcement) { a.Properties = []string{"ok", "Not-OK"} }, "properties[1]: byte 0"},
		{"long property", func(a *Announcement) { a.Properties = []string{strings.Repeat("x", 33)} }, "properties[0]: length 33"},
		{"duplicate property", func(a *Announcement) { a.Properties = []string{"relay", "relay"} }, "properties[1]: duplicate"},
		{"seq zero", func(a *Announcement) { a.Seq = 0 }, "seq"},
		{"no signature", func(a *Announcement) { a.Sig = nil }, "sig: missing"},
		{"short signature", func(a *Announcement) { a.Sig = a.Sig[:64] }, "sig: 64 bytes"},
	}
	for _, c := range cases {
		a := base.clone()
		c.f(a)
		_, err := a.MarshalBinary()
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: %v, want ErrMalformed naming %q", c.name, err, c.field)
		}
	}
	if !ValidProperty("gate_way-2") || ValidProperty("Gateway") || ValidProperty("") || ValidProperty(strings.Repeat("a", 33)) {
		t.Error("ValidProperty")
	}
}

func TestVerifyRejects(t *testing.T) {
	a, good := validEncoding(t)
	if err := a.Verify(); err != nil {
		t.Fatal(err)
	}
	// A flipped bit anywhere in the signed body or in the signature's R or S.
	for _, off := range []int{offSeq + 7, offNb0 + KeyLen + 3, offProp0 + 2, len(good) - 1, len(good) - 40} {
		b := bytes.Clone(good)
		b[off] ^= 1
		if off == offProp0+2 {
			b[off] = 'x'
		}
		d, err := Unmarshal(b)
		if err != nil {
			t.Fatalf("offset %d: %v", off, err)
		}
		if err := d.Verify(); !errors.Is(err, ErrBadSignature) {
			t.Errorf("offset %d flipped: Verify = %v, want ErrBadSignature", off, err)
		}
	}
	// Origin mismatch: a valid signature by someone else.
	other := a.clone()
	other.Origin = pubKey(testKey(9))
	if err := other.Verify(); !errors.Is(err, ErrBadSignature) || !strings.Contains(err.Error(), "not by the origin") {
		t.Errorf("origin mismatch: %v", err)
	}
	// Sign refuses a key that is not the origin's.
	if err := other.Sign(testKey(0)); err == nil {
		t.Error("Sign with the wrong key succeeded")
	}
	// Missing signature, uncompressed recovery code.
	b := a.clone()
	b.Sig = nil
	if err := b.Verify(); !errors.Is(err, ErrBadSignature) {
		t.Errorf("no signature: %v", err)
	}
	b.Sig = bytes.Clone(a.Sig)
	b.Sig[0] -= 4
	if err := b.Verify(); !errors.Is(err, ErrBadSignature) {
		t.Errorf("uncompressed recovery code: %v", err)
	}
	// Invalid content is ErrMalformed, not a signature error.
	b = a.clone()
	b.Properties = []string{"BAD"}
	if err := b.Verify(); !errors.Is(err, ErrMalformed) {
		t.Errorf("invalid content: %v", err)
	}
}

func TestKeyString(t *testing.T) {
	k := pubKey(testKey(0))
	if s := k.String(); len(s) != 66 || !strings.HasPrefix(s, "0") {
		t.Errorf("Key.String = %q", s)
	}
}

// FuzzUnmarshal: no input panics Unmarshal or Verify, every error wraps ErrMalformed,
// and whatever is accepted re-encodes to the same bytes.
func FuzzUnmarshal(f *testing.F) {
	r := rand.New(rand.NewPCG(3, 4))
	_, good := validEncoding(f)
	f.Add(good)
	for i := range 6 {
		a := randomAnnouncement(f, r, i)
		b, err := a.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	empty := &Announcement{Origin: pubKey(testKey(1)), Seq: 1}
	_ = empty.Sign(testKey(1))
	b, _ := empty.MarshalBinary()
	f.Add(b)
	_, timed := timedEncoding(f)
	f.Add(timed)
	f.Add(goldenV1(f))
	f.Add(good[:len(good)-1])
	f.Add(append(bytes.Clone(good), 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := Unmarshal(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		again, err := a.MarshalBinary()
		if err != nil {
			t.Fatalf("accepted but cannot re-encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b, again)
		}
		if err := a.Verify(); err != nil && !errors.Is(err, ErrBadSignature) {
			t.Fatalf("Verify: %v", err)
		}
	})
}

func BenchmarkUnmarshalVerify(b *testing.B) {
	priv := testKey(0)
	a := &Announcement{Origin: pubKey(priv), Seq: 1, Properties: []string{"gateway", "relay"}}
	for i := range MaxDatagramNeighbours {
		a.Neighbours = append(a.Neighbours, Neighbour{Key: pubKey(testKey(i + 1)), RTT: time.Duration(i+1) * time.Millisecond, Loss: 0.02})
	}
	if err := a.Sign(priv); err != nil {
		b.Fatal(err)
	}
	enc, err := a.MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		d, err := Unmarshal(enc)
		if err != nil {
			b.Fatal(err)
		}
		if err := d.Verify(); err != nil {
			b.Fatal(err)
		}
	}
}

// The verified-signature memory holds at most its size and forgets the oldest first.
func TestSeenSetEvictsOldest(t *testing.T) {
	s := newSeenSet(3)
	k := func(i byte) [32]byte { return [32]byte{i, 1} }
	for i := range byte(4) {
		s.add(k(i))
	}
	s.add(k(3)) // again: no eviction
	if s.has(k(0)) || !s.has(k(1)) || !s.has(k(2)) || !s.has(k(3)) || len(s.set) != 3 {
		t.Fatalf("after 4 adds to a set of 3: %v", s.set)
	}
}
