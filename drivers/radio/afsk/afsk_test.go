package afsk

import (
	"bytes"
	"testing"
	"time"
)

// Bit stuffing (AX.25 2.2 §3.6): 0xFF goes out as 11111 0 111 (LSB first), a
// 0 after five ones only; 0x7E inside a frame is 0 11111 0 10; flags are never
// stuffed.
func TestStuffing(t *testing.T) {
	bits := func(b []byte) string {
		s := make([]byte, len(b))
		for i, x := range b {
			s[i] = '0' + x
		}
		return string(s)
	}
	for _, c := range []struct {
		in   []byte
		want string
	}{
		{[]byte{0xFF}, "111110111"},
		{[]byte{0x7E}, "0111110" + "10"},
		{[]byte{0xFF, 0xFF}, "11111" + "0" + "11111" + "0" + "11111" + "0" + "1"}, // sixteen ones
		{[]byte{0x1F, 0x00}, "111110" + "000" + "00000000"},
	} {
		if got := bits(appendStuffed(nil, c.in)); got != c.want {
			t.Errorf("% x: %s, want %s", c.in, got, c.want)
		}
	}
	if got := bits(appendFlags(nil, 2)); got != "0111111001111110" {
		t.Errorf("flags %s", got)
	}
}

// A transmission lasts its bits exactly at every rate, with no drift from
// rounding the 18.375 samples of a bit at 22050 Hz, and stays within its
// amplitude.
func TestTransmissionLength(t *testing.T) {
	frame := bytes.Repeat([]byte{0x55}, 100) // no stuffing: 800 bits
	for _, rate := range []int{22050, 44100, 48000} {
		m := &Modulator{Rate: rate, TXDelay: 100 * time.Millisecond, TXTail: 10 * time.Millisecond, Amplitude: 0.25}
		s, err := m.Transmission([][]byte{frame})
		if err != nil {
			t.Fatal(err)
		}
		bitsSent := (15+2)*8 + 800 // 100 ms of flags is 15, 10 ms rounds up to 2
		if want := bitsSent * rate / Baud; len(s) != want {
			t.Errorf("%d Hz: %d samples, want %d", rate, len(s), want)
		}
		for _, x := range s {
			if x > 8192 || x < -8192 {
				t.Fatalf("%d Hz: sample %d above the amplitude", rate, x)
			}
		}
	}
	if _, err := (&Modulator{Rate: 4000}).Transmission(nil); err == nil {
		t.Error("a 4 kHz rate was taken")
	}
}
