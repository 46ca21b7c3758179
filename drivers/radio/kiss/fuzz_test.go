package kiss

import (
	"bytes"
	"io"
	"testing"
)

// FuzzDecoder: any byte stream decodes without panicking into frames no longer
// than the limit, each of which frames and decodes again to itself.
func FuzzDecoder(f *testing.F) {
	for _, s := range [][]byte{
		{FEND, 0x00, 'a', FEND},
		{FEND, 0x30, FESC, TFEND, FESC, TFESC, FEND, 0x00, FEND},
		{'x', FEND, FEND, 0xFF, FEND, FESC, FEND, 0x05},
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s []byte) {
		d := NewDecoder(bytes.NewReader(s), 64)
		for {
			fr, err := d.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(fr.Data) > 64 {
				t.Fatalf("a frame of %d bytes past the limit of 64", len(fr.Data))
			}
			b, err := Append(nil, fr)
			if err != nil {
				t.Fatalf("decoded %+v does not frame: %v", fr, err)
			}
			back, err := NewDecoder(bytes.NewReader(b), 64).Next()
			if err != nil || back.Port != fr.Port || back.Command != fr.Command || !bytes.Equal(back.Data, fr.Data) {
				t.Fatalf("%+v framed as % x decodes to %+v (%v)", fr, b, back, err)
			}
		}
	})
}
