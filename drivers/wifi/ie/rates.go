package ie

import (
	"fmt"
	"strconv"
)

// Rate is one octet of a Supported Rates or Extended Supported Rates element
// (IEEE 802.11-2020 §9.4.2.3): the low 7 bits are a rate in units of
// 500 kb/s, the top bit marks it as a basic rate (one every station in the
// BSS must support). With the top bit set some values are BSS membership
// selectors instead of rates, e.g. 0xFF "HT PHY" (127).
type Rate uint8

// BasicRate is the basic-rate bit of a Rate (IEEE 802.11-2020 §9.4.2.3).
const BasicRate Rate = 0x80

// BSS membership selectors (IEEE 802.11-2020 §9.4.2.3), the 7-bit value
// carried with the basic-rate bit set.
const (
	SelectorHTPHY  = 127 // station must support HT (802.11n)
	SelectorVHTPHY = 126 // station must support VHT (802.11ac)
	SelectorSAEH2E = 123 // SAE hash-to-element only
)

// MakeRate returns the Rate for kbps, with the basic-rate bit if basic.
// ErrMalformed unless kbps is a positive multiple of 500 kb/s up to 63.5 Mb/s.
func MakeRate(kbps int, basic bool) (Rate, error) {
	if kbps <= 0 || kbps%500 != 0 || kbps/500 > 0x7f {
		return 0, fmt.Errorf("%w: rate %d kb/s is not a multiple of 500 kb/s from 500 to 63500", ErrMalformed, kbps)
	}
	r := Rate(kbps / 500)
	if basic {
		r |= BasicRate
	}
	return r, nil
}

// Basic reports whether r has the basic-rate bit.
func (r Rate) Basic() bool { return r&BasicRate != 0 }

// Units500k returns the 7-bit value, in units of 500 kb/s.
func (r Rate) Units500k() uint8 { return uint8(r &^ BasicRate) }

// Kbps returns the rate in kb/s (e.g. 5500 for 0x0B or 0x8B).
func (r Rate) Kbps() int { return int(r.Units500k()) * 500 }

// Selector reports whether r is a BSS membership selector rather
// than a rate: a basic-rate octet whose value is a known selector.
func (r Rate) Selector() bool {
	switch r.Units500k() {
	case SelectorHTPHY, SelectorVHTPHY, SelectorSAEH2E, 122, 121: // 122 HE PHY, 121 GLK
		return r.Basic()
	}
	return false
}

// String formats r in Mb/s with a "*" for a basic rate, as iw does: "5.5*".
func (r Rate) String() string {
	s := strconv.FormatFloat(float64(r.Kbps())/1000, 'f', -1, 64)
	if r.Basic() {
		s += "*"
	}
	return s
}

// SupportedRates returns the rates of the Supported Rates element followed by
// those of the Extended Supported Rates element (IEEE 802.11-2020 §9.4.2.3,
// §9.4.2.12), in the order sent, BSS membership selectors included.
// ErrNotFound if neither is present; ErrMalformed if either is empty or the
// first holds more than 8.
func (es Elements) SupportedRates() ([]Rate, error) {
	var out []Rate
	e, ok := es.Find(IDSupportedRates)
	if ok {
		if len(e.Body) == 0 || len(e.Body) > MaxSupportedRates {
			return nil, fmt.Errorf("%w: Supported Rates of %d octets, want 1 to %d", ErrMalformed, len(e.Body), MaxSupportedRates)
		}
		for _, c := range e.Body {
			out = append(out, Rate(c))
		}
	}
	x, xok := es.Find(IDExtendedRates)
	if xok {
		if len(x.Body) == 0 {
			return nil, fmt.Errorf("%w: Extended Supported Rates is empty", ErrMalformed)
		}
		for _, c := range x.Body {
			out = append(out, Rate(c))
		}
	}
	if !ok && !xok {
		return nil, fmt.Errorf("%w: Supported Rates", ErrNotFound)
	}
	return out, nil
}

// AppendRates appends a Supported Rates element with the first 8 of rates
// (IEEE 802.11-2020 §9.4.2.3). When rates has more, append the rest with
// AppendExtendedRates where the frame's element order puts it: right after
// in a Probe Request or Association Request, but after the TIM, Country,
// ERP... in a Beacon (§9.3.3.2). ErrMalformed if rates is empty: an empty
// element is invalid, so there is nothing right to write.
func AppendRates(b []byte, rates []Rate) ([]byte, error) {
	if len(rates) == 0 {
		return b, fmt.Errorf("%w: Supported Rates needs 1 to %d rates, have 0", ErrMalformed, MaxSupportedRates)
	}
	rates = rates[:min(len(rates), MaxSupportedRates)]
	b = append(b, byte(IDSupportedRates), byte(len(rates)))
	for _, r := range rates {
		b = append(b, byte(r))
	}
	return b, nil
}

// AppendExtendedRates appends an Extended Supported Rates element with
// rates[8:] (IEEE 802.11-2020 §9.4.2.12), and nothing when there are 8 rates
// or fewer: pass the same slice as to AppendRates. ErrTooLong past 255
// extended rates.
func AppendExtendedRates(b []byte, rates []Rate) ([]byte, error) {
	if len(rates) <= MaxSupportedRates {
		return b, nil
	}
	ext := rates[MaxSupportedRates:]
	if len(ext) > maxBody {
		return b, fmt.Errorf("%w: %d extended rates exceed %d", ErrTooLong, len(ext), maxBody)
	}
	b = append(b, byte(IDExtendedRates), byte(len(ext)))
	for _, r := range ext {
		b = append(b, byte(r))
	}
	return b, nil
}
