package ie

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// FuzzParseElements: Parse never panics, its errors are the documented
// ones, and a list it accepts is written back byte for byte.
func FuzzParseElements(f *testing.F) {
	for _, name := range []string{"beacon_wpa2psk.hex", "beacon_mixed_tkip_ccmp.hex", "beacon_wpa1.hex", "assoc_request_rsn_fcs.hex"} {
		fr := frame(f, name)
		f.Add(fr[beaconElements:])
		f.Add(fr[28:])
	}
	f.Add([]byte{})
	f.Add([]byte{0xff, 0x00})
	f.Add([]byte{0xff, 0x02, 0x23, 0x01, 0x00})
	f.Add([]byte{0x30, 0x02, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("unexpected error %v", err)
			}
		}
		out, aerr := es.Append(nil)
		if aerr != nil {
			t.Fatalf("Append: %v", aerr)
		}
		if !bytes.HasPrefix(b, out) || (err == nil && len(out) != len(b)) {
			t.Fatalf("Append gave % x for % x", out, b)
		}
		// Accessors must not panic either.
		es.SSID()
		es.SupportedRates()
		es.DSChannel()
		es.Country()
		es.MeshID()
		es.ATIMWindow()
		es.RSN()
		es.WPA()
		Summarize(true, es)
	})
}

// FuzzParseRSN: ParseRSN never panics, and what it accepts marshals to an
// element that parses to the same RSN.
func FuzzParseRSN(f *testing.F) {
	f.Add([]byte{0x01, 0x00})
	f.Add(unhex(f, wellKnownWPA2PSK)[2:])
	for _, name := range []string{"beacon_wpa2psk.hex", "beacon_mixed_tkip_ccmp.hex", "assoc_request_rsn_fcs.hex"} {
		fr := frame(f, name)
		es, _ := Parse(fr[beaconElements:])
		if e, ok := es.Find(IDRSN); ok {
			f.Add(e.Body)
		}
		es, _ = Parse(fr[28:])
		if e, ok := es.Find(IDRSN); ok {
			f.Add(e.Body)
		}
	}
	f.Add(unhex(f, "01 00 00 0f ac 04 01 00 00 0f ac 04 01 00 00 0f ac 02 00 00 01 00 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 00 0f ac 06"))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := ParseRSN(body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		b, err := r.Marshal()
		if err != nil {
			if errors.Is(err, ErrTooLong) && len(body) > 200 {
				return
			}
			t.Fatalf("Marshal: %v", err)
		}
		if int(b[1]) != len(b)-2 {
			t.Fatalf("length octet %d for %d", b[1], len(b)-2)
		}
		r2, err := ParseRSN(b[2:])
		if err != nil || !reflect.DeepEqual(r, r2) {
			t.Fatalf("round trip %+v -> % x -> %+v, %v", r, b, r2, err)
		}
		ParseWPA(append([]byte{0x00, 0x50, 0xf2, 0x01}, body...))
	})
}
