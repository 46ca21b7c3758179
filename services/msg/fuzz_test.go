package msg

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/skyfleet/skyfleet/services/identity"
)

// The seed corpora under testdata/fuzz are valid messages and envelopes made by
// fuzzSeeds from fixed keys and fixed randomness, so they are reproducible.
// TestFuzzCorpus checks that the committed files are exactly what fuzzSeeds makes
// today (so a format change cannot leave the fuzzers starting from stale, invalid
// seeds); MSG_WRITE_FUZZ_CORPUS=1 rewrites them:
//
//	MSG_WRITE_FUZZ_CORPUS=1 go test -run '^TestFuzzCorpus$' ./services/msg/

// fuzzKeys are the fixed keys of the fuzz targets: the node that opens (self),
// the sender, and a third node.
func fuzzKeys(t testing.TB) (self, sender, other *identity.Key) {
	return testKey(t, "fuzz self"), testKey(t, "fuzz sender"), testKey(t, "fuzz other")
}

// fuzzPSK is the fleet key FuzzOpen opens broadcasts with.
var fuzzPSK = testPSK

// fuzzSeed is one seed corpus file: the target, the file name and its values.
type fuzzSeed struct {
	target, name string
	data         []byte
	wrap         byte // FuzzOpen only
}

// corpusFile is the seed in the `go test fuzz v1` format that
// internal/fuzz writes (strconv-quoted values, one per line).
func (s fuzzSeed) corpusFile() []byte {
	var b bytes.Buffer
	b.WriteString("go test fuzz v1\n")
	fmt.Fprintf(&b, "[]byte(%q)\n", s.data)
	if s.target == "FuzzOpen" {
		fmt.Fprintf(&b, "byte(%q)\n", s.wrap)
	}
	return b.Bytes()
}

func fuzzSeeds(t testing.TB) []fuzzSeed {
	self, sender, other := fuzzKeys(t)
	text := func(from *identity.Key, to [33]byte, s string, seed string) []byte {
		return mustText(t, from, to, s, 1_700_000_000_000, seed).Bytes()
	}
	seal := func(b []byte, seed string) []byte {
		s, err := ParseSigned(b)
		if err != nil {
			t.Fatal(err)
		}
		return mustSeal(t, s, fuzzPSK, seed)
	}
	uni := text(sender, pubOf(self), "hello, self", "seed uni")
	all := text(sender, [33]byte{}, "hello, fleet \u2713", "seed all")
	toOther := text(sender, pubOf(other), "not for self", "seed other")
	r, err := NewReceipt(sender, pubOf(self), sha256.Sum256(uni), 1_700_000_000_500, 1_700_000_000_600, detRand("seed receipt"))
	if err != nil {
		t.Fatal(err)
	}
	receipt := r.Bytes()
	maxText := text(sender, pubOf(self), strings.Repeat("m", MaxText), "seed max")
	runes := text(sender, [33]byte{}, strings.Repeat("\u20ac", 333), "seed runes")
	badSig := bytes.Clone(uni)
	badSig[len(badSig)-1] ^= 1

	return []fuzzSeed{
		{target: "FuzzParseSigned", name: "text-unicast", data: uni},
		{target: "FuzzParseSigned", name: "text-broadcast", data: all},
		{target: "FuzzParseSigned", name: "receipt", data: receipt},
		{target: "FuzzParseSigned", name: "text-max", data: maxText},
		{target: "FuzzParseSigned", name: "text-3-byte-runes", data: runes},
		{target: "FuzzParseSigned", name: "bad-signature", data: badSig},

		{target: "FuzzOpen", name: "sealed-unicast", data: seal(uni, "seed seal uni")},
		{target: "FuzzOpen", name: "sealed-broadcast", data: seal(all, "seed seal all")},
		{target: "FuzzOpen", name: "sealed-receipt", data: seal(receipt, "seed seal receipt")},
		{target: "FuzzOpen", name: "sealed-max", data: seal(maxText, "seed seal max")},
		{target: "FuzzOpen", name: "sealed-for-other", data: seal(toOther, "seed seal other")},
		{target: "FuzzOpen", name: "plain-unicast-wrapped", data: uni, wrap: 1},
		{target: "FuzzOpen", name: "plain-broadcast-wrapped", data: all, wrap: 2},
		{target: "FuzzOpen", name: "plain-for-other-wrapped", data: toOther, wrap: 1},
		{target: "FuzzOpen", name: "plain-unicast-as-broadcast", data: uni, wrap: 2},
		{target: "FuzzOpen", name: "plain-bad-signature-wrapped", data: badSig, wrap: 1},
	}
}

// TestFuzzCorpus keeps testdata/fuzz equal to fuzzSeeds (see above), and checks
// that each seed is what its name says.
func TestFuzzCorpus(t *testing.T) {
	write := os.Getenv("MSG_WRITE_FUZZ_CORPUS") == "1"
	self, _, _ := fuzzKeys(t)
	for _, s := range fuzzSeeds(t) {
		path := filepath.Join("testdata", "fuzz", s.target, s.name)
		want := s.corpusFile()
		if write {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (regenerate with MSG_WRITE_FUZZ_CORPUS=1)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale (regenerate with MSG_WRITE_FUZZ_CORPUS=1)", path)
		}
		// The seeds mean what their names say.
		var err2 error
		switch {
		case s.target == "FuzzParseSigned":
			_, err2 = ParseSigned(s.data)
		case s.wrap == 0:
			_, err2 = Open(s.data, self, fuzzPSK)
		default:
			continue
		}
		switch {
		case strings.Contains(s.name, "bad-signature"):
			if !errors.Is(err2, ErrSignature) {
				t.Errorf("%s: %v, want ErrSignature", path, err2)
			}
		case strings.Contains(s.name, "for-other"):
			if !errors.Is(err2, ErrDecrypt) {
				t.Errorf("%s: %v, want ErrDecrypt", path, err2)
			}
		case err2 != nil:
			t.Errorf("%s: %v", path, err2)
		}
	}
}

// checkReencodes requires a decoded message to encode back to exactly b (its
// fields through appendUnsigned, then b's signature).
func checkReencodes(t *testing.T, m *Message, b []byte) {
	t.Helper()
	u, err := m.appendUnsigned(nil)
	if err != nil {
		t.Fatalf("accepted message does not encode: %v", err)
	}
	if re := append(u, b[len(b)-sigLen:]...); !bytes.Equal(re, b) {
		t.Fatalf("re-encoding differs:\n in  %x\n out %x", b, re)
	}
}

// FuzzParseSigned: ParseSigned never panics; its errors are ErrMalformed or
// ErrSignature; whatever the layout check (decode) accepts re-encodes to the
// same bytes, so one message has one encoding; whatever ParseSigned accepts
// also has its ID and Bytes from exactly those bytes.
func FuzzParseSigned(f *testing.F) {
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, derr := decode(b)
		s, err := ParseSigned(b)
		if err != nil {
			if s != nil {
				t.Fatal("message returned with an error")
			}
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrSignature) {
				t.Fatalf("error %v wraps neither ErrMalformed nor ErrSignature", err)
			}
			if derr == nil && !errors.Is(err, ErrSignature) {
				t.Fatalf("layout accepted, then %v", err)
			}
			if len(err.Error()) > 200 {
				t.Fatalf("error of %d characters", len(err.Error()))
			}
		}
		if derr != nil {
			if err == nil {
				t.Fatalf("decode refused (%v) what ParseSigned accepted", derr)
			}
			return
		}
		checkReencodes(t, &m, b)
		if err != nil {
			return
		}
		if !reflect.DeepEqual(s.Message, m) || !bytes.Equal(s.Bytes(), b) || s.ID() != ID(sha256.Sum256(b)) {
			t.Fatal("accepted message differs from its bytes")
		}
	})
}

// FuzzOpen: Open never panics; its errors wrap one of its four sentinels; a
// message it accepts is what the documented format gives for those bytes (the
// independent decryption yields Bytes, re-encrypting Bytes under the same header
// gives the input back, the fields re-encode to Bytes) and agrees with its
// envelope's mode. wrap 1 or 2 first seals data (as a plaintext) to self or to
// the fleet, so that the checks after decryption are reached for any plaintext.
func FuzzOpen(f *testing.F) {
	self, _, _ := fuzzKeys(f)
	f.Add([]byte{}, byte(0))
	f.Fuzz(func(t *testing.T, data []byte, wrap byte) {
		sealed := data
		var err error
		switch wrap % 4 {
		case 3:
			sealed = append([]byte{1, 0}, data...) // in clear
		case 1:
			sealed, err = sealTo(data, self.PublicKey(), detRand("fuzz wrap"))
		case 2:
			sealed, err = sealBroadcast(data, fuzzPSK, detRand("fuzz wrap"))
		}
		if err != nil {
			t.Fatalf("wrapping: %v", err)
		}
		s, err := Open(sealed, self, fuzzPSK)
		if err != nil {
			if s != nil {
				t.Fatal("message returned with an error")
			}
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrDecrypt) &&
				!errors.Is(err, ErrSignature) && !errors.Is(err, ErrNotForUs) {
				t.Fatalf("error %v wraps none of the sentinels", err)
			}
			if len(err.Error()) > 200 {
				t.Fatalf("error of %d characters", len(err.Error()))
			}
			return
		}
		raw := s.Bytes()
		plain, err := refOpen(t, sealed, self, fuzzPSK)
		if err != nil || !bytes.Equal(plain, raw) {
			t.Fatalf("independent decryption: %v", err)
		}
		if re := refSeal(t, sealed, raw, self, fuzzPSK); !bytes.Equal(re, sealed) {
			t.Fatal("re-sealing under the same header differs from the input")
		}
		checkReencodes(t, &s.Message, raw)
		if wrap%4 != 0 && !bytes.Equal(raw, data) {
			t.Fatal("opened something other than what was sealed")
		}
		switch sealed[1] {
		case 0:
			if !s.IsBroadcast() && s.To != pubOf(self) {
				t.Fatal("clear message accepted for another recipient")
			}
		case 1:
			if s.To != pubOf(self) {
				t.Fatal("unicast accepted for another recipient")
			}
		case 2:
			if !s.IsBroadcast() {
				t.Fatal("broadcast envelope accepted around a unicast")
			}
		}
	})
}
