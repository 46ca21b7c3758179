package topology

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

// testTime is a wall time the tests announce: 2026-01-01T00:00:00.123Z.
const testTime = 1767225600123

// timedEncoding is validEncoding with the origin's time: 3 neighbours, "gateway",
// "relay", then the time property.
func timedEncoding(t testing.TB) (*Announcement, []byte) {
	a, _ := validEncoding(t)
	a.Time = testTime
	if err := a.Sign(testKey(0)); err != nil {
		t.Fatal(err)
	}
	b, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

// goldenV1 is validEncoding's bytes as made by the code before announcements could
// carry a time: what every node already in the field sends.
func goldenV1(t testing.TB) []byte {
	b, err := hex.DecodeString("01032419010a859b449676a29b9a18b1e6bb31189e3f81ad27e97c0f30111cf41f80000000000000002a03023251fee411e85e6bd6dcb5ef47819a95929721460139a9bd6b5a1ea657f86e82000003e8028f02029be9b7cadb88e0a1508f5402552965a7f5104da4c4cd92ad50d009b57160c2000007d0028f03edeaec6a284de9f818b4760f1943713a1e482994e3957af4083fb7660143377e00000bb8028f0207676174657761790572656c617920bf3bfc531e59a3ce53acc056c50cbecef42297705367f1dc5aca66f60e8606643cb0f757aa483258250a2b0d115fc97018fb725d23aab683ab2847fb4b6c3951")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// legacyDecode applies the rules of a node that predates the time property to b:
// version 1, the fixed layout, at most 16 properties of 1..32 bytes of [a-z0-9_-]
// without duplicates, no trailing bytes, and a compact signature by the origin over
// SHA-256 of everything before it. It returns the properties such a node sees.
func legacyDecode(b []byte) ([]string, error) {
	if len(b) < headerLen+1 || b[0] != 1 {
		return nil, errors.New("header")
	}
	origin := b[1 : 1+KeyLen]
	rest := b[headerLen:]
	n := int(rest[0])
	rest = rest[1:]
	if len(rest) < n*neighbourLen+1 {
		return nil, errors.New("neighbours")
	}
	rest = rest[n*neighbourLen:]
	m := int(rest[0])
	rest = rest[1:]
	if m > 16 {
		return nil, errors.New("property count")
	}
	var props []string
	for i := 0; i < m; i++ {
		if len(rest) < 1 || rest[0] == 0 || rest[0] > 32 || len(rest) < 1+int(rest[0]) {
			return nil, errors.New("property length")
		}
		p := string(rest[1 : 1+rest[0]])
		rest = rest[1+rest[0]:]
		for _, c := range []byte(p) {
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
				return nil, errors.New("property alphabet")
			}
		}
		if containsString(props, p) {
			return nil, errors.New("duplicate property")
		}
		props = append(props, p)
	}
	if len(rest) != SignatureLen {
		return nil, errors.New("signature length or trailing bytes")
	}
	h := sha256.Sum256(b[:len(b)-SignatureLen])
	pub, compressed, err := ecdsa.RecoverCompact(rest, h[:])
	if err != nil || !compressed || !bytes.Equal(pub.SerializeCompressed(), origin) {
		return nil, errors.New("signature")
	}
	return props, nil
}

// The time rides as the last property, "_t" and decimal milliseconds, and comes back
// as Time with the properties as they were.
func TestTimeRoundTrip(t *testing.T) {
	a, b := timedEncoding(t)
	want := "\x0f_t" + strconv.FormatInt(testTime, 10)
	if !bytes.Contains(b, []byte("\x05relay"+want)) || len(b) != a.EncodedLen() {
		t.Fatalf("encoding does not end its properties with %q (%d bytes, EncodedLen %d): %x", want, len(b), a.EncodedLen(), b)
	}
	if b[offPropCnt] != 3 {
		t.Errorf("property count on the wire = %d, want 3 (two roles and the time)", b[offPropCnt])
	}
	got, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Time != testTime || !reflect.DeepEqual(got.Properties, []string{"gateway", "relay"}) || got.Seq != a.Seq || len(got.Neighbours) != 3 {
		t.Fatalf("decoded %+v, want %+v", got, a)
	}
	if again, err := got.MarshalBinary(); err != nil || !bytes.Equal(again, b) {
		t.Fatalf("re-encoded differently (%v)", err)
	}
	if err := got.Verify(); err != nil {
		t.Fatal(err)
	}
	// The time as the only property decodes to no properties, as it was sent.
	only := &Announcement{Origin: pubKey(testKey(0)), Seq: 1, Time: testTime}
	if err := only.Sign(testKey(0)); err != nil {
		t.Fatal(err)
	}
	enc, _ := only.MarshalBinary()
	if d, err := Unmarshal(enc); err != nil || d.Properties != nil || d.Time != testTime {
		t.Errorf("time alone: %+v, %v", d, err)
	}
}

// Old and new nodes understand each other both ways.
func TestTimeBackwardCompatible(t *testing.T) {
	// What nodes in the field send still decodes, with the time unknown, and
	// re-encodes to the same bytes.
	old := goldenV1(t)
	a, err := Unmarshal(old)
	if err != nil {
		t.Fatalf("a version-1 announcement from before the time: %v", err)
	}
	if a.Time != 0 || !reflect.DeepEqual(a.Properties, []string{"gateway", "relay"}) {
		t.Errorf("decoded %+v", a)
	}
	if err := a.Verify(); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if again, _ := a.MarshalBinary(); !bytes.Equal(again, old) {
		t.Errorf("re-encoded differently:\n got %x\nwant %x", again, old)
	}
	// Without a time the encoding is what it always was.
	if _, b := validEncoding(t); !bytes.Equal(b, old) {
		t.Errorf("an announcement without a time no longer encodes as before")
	}
	// An old node accepts a new announcement: one more property, and the signature
	// over exactly the bytes it hashes.
	_, b := timedEncoding(t)
	props, err := legacyDecode(b)
	if err != nil {
		t.Fatalf("an old node refuses the timed announcement: %v", err)
	}
	if want := []string{"gateway", "relay", "_t" + strconv.FormatInt(testTime, 10)}; !reflect.DeepEqual(props, want) {
		t.Errorf("an old node sees properties %q, want %q", props, want)
	}
	// The same with as many roles as still leave room for the time.
	full := &Announcement{Origin: pubKey(testKey(0)), Seq: 9, Time: testTime}
	for i := range MaxProperties - 1 {
		full.Properties = append(full.Properties, strings.Repeat("r", MaxPropertyLen-i))
	}
	if err := full.Sign(testKey(0)); err != nil {
		t.Fatal(err)
	}
	enc, err := full.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := legacyDecode(enc); err != nil {
		t.Errorf("15 roles and the time: an old node refuses it: %v", err)
	}
}

// The time is signed: changing it, adding it or dropping it breaks the signature.
func TestTimeSigned(t *testing.T) {
	a, b := timedEncoding(t)
	// A different (still canonical) time on the wire.
	tampered := bytes.Clone(b)
	i := bytes.Index(tampered, []byte("_t1767")) + 2
	tampered[i] = '2'
	d, err := Unmarshal(tampered)
	if err != nil {
		t.Fatal(err)
	}
	if d.Time == a.Time {
		t.Fatal("the tampered bytes decode to the same time")
	}
	if err := d.Verify(); !errors.Is(err, ErrBadSignature) {
		t.Errorf("tampered time on the wire: Verify = %v, want ErrBadSignature", err)
	}
	// The same in the struct, one millisecond off.
	c := a.clone()
	c.Time++
	if err := c.Verify(); !errors.Is(err, ErrBadSignature) {
		t.Errorf("time +1 ms: Verify = %v, want ErrBadSignature", err)
	}
	// Dropped: the signature covered its presence.
	c = a.clone()
	c.Time = 0
	if err := c.Verify(); !errors.Is(err, ErrBadSignature) {
		t.Errorf("time dropped: Verify = %v, want ErrBadSignature", err)
	}
	// Added to an announcement signed without one.
	plain, _ := validEncoding(t)
	plain.Time = testTime
	if err := plain.Verify(); !errors.Is(err, ErrBadSignature) {
		t.Errorf("time added: Verify = %v, want ErrBadSignature", err)
	}
	// A graph refuses the tampered announcement.
	g := NewGraph(pubKey(testKey(9)))
	if stored, err := g.Update(d, t0); stored || !errors.Is(err, ErrBadSignature) {
		t.Errorf("Update with a tampered time: stored %v, %v", stored, err)
	}
}

// Malformed times are refused on both sides, naming the field.
func TestTimeRejects(t *testing.T) {
	base, _ := timedEncoding(t)
	for _, c := range []struct {
		name  string
		f     func(a *Announcement)
		field string
	}{
		{"negative", func(a *Announcement) { a.Time = -1 }, "time: -1 is negative"},
		{"no room", func(a *Announcement) {
			a.Properties = nil
			for i := range MaxProperties {
				a.Properties = append(a.Properties, strings.Repeat("p", i+1))
			}
		}, "properties: 16 and the time"},
		{"reserved role", func(a *Announcement) { a.Time = 0; a.Properties = []string{"_t5"} }, "properties[0]: \"_t5\" has the form reserved"},
	} {
		a := base.clone()
		c.f(a)
		if _, err := a.MarshalBinary(); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("Marshal %s: %v, want ErrMalformed naming %q", c.name, err, c.field)
		}
	}
	if ValidProperty("_t5") || !ValidProperty("_t") || !ValidProperty("_tx5") || !ValidProperty("t5") {
		t.Error("ValidProperty and the reserved form")
	}
	// withProps returns the timed encoding with its properties replaced.
	_, good := timedEncoding(t)
	sig := good[len(good)-SignatureLen:]
	withProps := func(props ...string) []byte {
		b := bytes.Clone(good[:offPropCnt])
		b = append(b, byte(len(props)))
		for _, p := range props {
			b = append(b, byte(len(p)))
			b = append(b, p...)
		}
		return append(b, sig...)
	}
	if _, err := Unmarshal(withProps("gateway", "_t42")); err != nil {
		t.Fatalf("the layout of withProps: %v", err)
	}
	for _, c := range []struct {
		name  string
		b     []byte
		field string
	}{
		{"leading zero", withProps("gateway", "_t0123"), "properties[1]: time \"_t0123\": leading zero"},
		{"zero", withProps("_t0"), "properties[0]: time \"_t0\": leading zero"},
		{"20 digits", withProps("_t12345678901234567890"), "more than 19 digits"},
		{"overflow", withProps("_t9999999999999999999"), "out of range"},
		{"not last", withProps("_t42", "gateway"), "properties[0]: \"_t42\" has the form reserved"},
		{"twice", withProps("_t42", "_t43"), "properties[0]: \"_t42\" has the form reserved"},
	} {
		_, err := Unmarshal(c.b)
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("Unmarshal %s: %v, want ErrMalformed naming %q", c.name, err, c.field)
		}
	}
	// Near misses of the form are ordinary properties.
	for _, p := range []string{"_t", "_tx", "_t1x", "t42", "_t-1"} {
		a, err := Unmarshal(withProps("gateway", p))
		if err != nil || a.Time != 0 || a.Properties[1] != p {
			t.Errorf("%q: %+v, %v; want an ordinary property", p, a, err)
		}
	}
}

// Sign stamps an origin's announcements from its time source, and only its own.
func TestSetTimeSource(t *testing.T) {
	priv, other := testKey(100), testKey(101) // keys no other test signs with
	origin := pubKey(priv)
	var now int64 = testTime
	remove := SetTimeSource(origin, func() int64 { return now })
	defer remove()

	a := &Announcement{Origin: origin, Seq: 1, Properties: []string{"gateway"}}
	if err := a.Sign(priv); err != nil {
		t.Fatal(err)
	}
	if a.Time != testTime {
		t.Fatalf("Sign did not take the time from the source: %d", a.Time)
	}
	b, _ := a.MarshalBinary()
	if d, err := Unmarshal(b); err != nil || d.Time != testTime || d.Verify() != nil {
		t.Fatalf("stamped announcement: %+v, %v", d, err)
	}
	// A time set by the caller stands.
	a = &Announcement{Origin: origin, Seq: 2, Time: 42}
	_ = a.Sign(priv)
	if a.Time != 42 {
		t.Errorf("Sign replaced the caller's time: %d", a.Time)
	}
	// Unknown (0) or nonsense (negative) leaves the announcement without a time.
	for _, v := range []int64{0, -5} {
		now = v
		a = &Announcement{Origin: origin, Seq: 3}
		if err := a.Sign(priv); err != nil || a.Time != 0 {
			t.Errorf("source says %d: Time %d, %v", v, a.Time, err)
		}
	}
	now = testTime
	// No room beside MaxProperties roles: the announcement goes out without the time.
	a = &Announcement{Origin: origin, Seq: 4}
	for i := range MaxProperties {
		a.Properties = append(a.Properties, strings.Repeat("p", i+1))
	}
	if err := a.Sign(priv); err != nil || a.Time != 0 {
		t.Errorf("16 roles: Time %d, %v", a.Time, err)
	}
	// Another origin has no source.
	o := &Announcement{Origin: pubKey(other), Seq: 1}
	if err := o.Sign(other); err != nil || o.Time != 0 {
		t.Errorf("another origin: Time %d, %v", o.Time, err)
	}
	// A newer source for the same origin survives the removal of the older one.
	removeNewer := SetTimeSource(origin, func() int64 { return 7 })
	remove()
	a = &Announcement{Origin: origin, Seq: 5}
	_ = a.Sign(priv)
	if a.Time != 7 {
		t.Errorf("after removing the older source: Time %d, want the newer source's 7", a.Time)
	}
	removeNewer()
	a = &Announcement{Origin: origin, Seq: 6}
	_ = a.Sign(priv)
	if a.Time != 0 {
		t.Errorf("after removing every source: Time %d", a.Time)
	}
}

// Graph.Times lists the held times of others with when each was stored.
func TestGraphTimes(t *testing.T) {
	tp := newTopo(t, "self", "a", "b", "c").chain("self", "a", "b", "c")
	g := NewGraph(tp.k("self"))
	self := tp.announcement(0, 1)
	self.Time = testTime
	_ = self.Sign(tp.priv[0])
	g.SetSelf(self, t0)
	for i, tm := range []int64{0, testTime + 1, testTime + 2} { // a knows no time
		a := tp.announcement(i+1, 5)
		a.Time = tm
		if err := a.Sign(tp.priv[i+1]); err != nil {
			t.Fatal(err)
		}
		if _, err := g.Update(a, t0.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	want := []HeldTime{
		{Origin: tp.k("b"), Seq: 5, Time: testTime + 1, Stored: t0.Add(time.Second)},
		{Origin: tp.k("c"), Seq: 5, Time: testTime + 2, Stored: t0.Add(2 * time.Second)},
	}
	if got := g.Times(); !reflect.DeepEqual(got, want) {
		t.Errorf("Times:\n got %+v\nwant %+v", got, want)
	}
}
