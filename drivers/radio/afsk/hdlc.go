package afsk

// HDLC framing of AX.25 on the air (AX.25 2.2 §3.1, §3.6, §3.9): frames are
// delimited by the flag 01111110, every byte is sent least significant bit
// first, and inside a frame a 0 is stuffed after five 1s in a row, so that a
// flag never appears within one. The bits then go NRZI-coded (§3.9): a 0 is a
// change of tone, a 1 no change.

// Flag is the HDLC flag byte.
const Flag = 0x7E

// appendFlags appends n flags to bits (one bit per byte, 0 or 1).
func appendFlags(bits []byte, n int) []byte {
	for range n {
		for i := range 8 {
			bits = append(bits, Flag>>i&1)
		}
	}
	return bits
}

// appendStuffed appends frame's bits, least significant first, with a 0 after
// every five 1s.
func appendStuffed(bits []byte, frame []byte) []byte {
	ones := 0
	for _, c := range frame {
		for i := range 8 {
			b := c >> i & 1
			bits = append(bits, b)
			if b == 0 {
				ones = 0
				continue
			}
			if ones++; ones == 5 {
				bits = append(bits, 0)
				ones = 0
			}
		}
	}
	return bits
}
