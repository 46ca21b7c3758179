package mgmt

import (
	"bytes"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/skyfleet/skyfleet/drivers/wifi/ie"
)

// FuzzParseMgmtFrame: Parse never panics, fails only with the documented
// errors, returns a frame whenever only the elements are at fault, and a
// frame parsed whole is written back byte for byte (an Association Response
// only when its AID field was valid, as Append sets the AID's top bits).
func FuzzParseMgmtFrame(f *testing.F) {
	names, err := filepath.Glob(filepath.Join("testdata", "*.hex"))
	if err != nil || len(names) == 0 {
		f.Fatal("no reference frames", err)
	}
	for _, n := range names {
		b := frame(f, filepath.Base(n))
		f.Add(b)
		if strings.Contains(n, "fcs") {
			f.Add(b[:len(b)-4])
		}
	}
	f.Add(Auth{Algorithm: AuthSAE, Seq: 1, SAE: []byte{19, 0}}.mustAppend(f))
	f.Add(AssocRequest{Reassoc: true, ListenInterval: 1}.mustAppend(f))
	f.Add(Header{FrameControl: MgmtFrameControl(SubtypeAction) | FCOrder}.Append(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := Parse(b)
		if err != nil {
			elemErr := errors.Is(err, ie.ErrTruncated) || errors.Is(err, ie.ErrMalformed)
			if !elemErr && !errors.Is(err, ErrShort) && !errors.Is(err, ErrNotMgmt) {
				t.Fatalf("unexpected error %v", err)
			}
			if elemErr != (fr != nil) {
				t.Fatalf("frame %v with error %v", fr, err)
			}
			return
		}
		a, ok := fr.(appender)
		if !ok {
			if _, isOther := fr.(Other); !isOther {
				t.Fatalf("%T cannot be written", fr)
			}
			return
		}
		out, err := a.Append(nil)
		if resp, isResp := fr.(AssocResponse); isResp {
			if err != nil {
				if !errors.Is(err, ErrInvalid) {
					t.Fatal(err)
				}
				return
			}
			again, err := ParseAssocResponse(out)
			if err != nil || !reflect.DeepEqual(again, resp) {
				t.Fatalf("%+v -> %+v %v", resp, again, err)
			}
			return
		}
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("%T written as % x, %v; was % x", fr, out, err, b)
		}
	})
}

func (f Auth) mustAppend(t testing.TB) []byte {
	b, err := f.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (f AssocRequest) mustAppend(t testing.TB) []byte {
	b, err := f.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
