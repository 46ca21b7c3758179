package ax25

// fcsTable is CRC-16/X.25 one byte at a time: the reflected polynomial 0x8408
// (x^16 + x^12 + x^5 + 1, ISO/IEC 13239 / ITU-T X.25 as AX.25 2.2 §3.8 uses it).
var fcsTable = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i)
		for range 8 {
			if c&1 != 0 {
				c = c>>1 ^ 0x8408
			} else {
				c >>= 1
			}
		}
		t[i] = c
	}
	return t
}()

// FCS is the frame check sequence of b: CRC-16/X.25 (initial value 0xFFFF,
// reflected, final XOR 0xFFFF; its check value, over "123456789", is 0x906E).
// AX.25 sends it low byte first after the info field (AX.25 2.2 §3.8).
func FCS(b []byte) uint16 {
	c := uint16(0xFFFF)
	for _, x := range b {
		c = c>>8 ^ fcsTable[byte(c)^x]
	}
	return ^c
}
