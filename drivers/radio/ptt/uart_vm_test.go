//go:build kernelvm

// This test needs a real UART: it runs in the virtual machine of
// e2e/kernelvm_test.go (TestPTTOnUARTInVM), whose /dev/ttyS1 is QEMU's 16550
// under the kernel's 8250 driver. A pseudo-terminal has no modem lines, so
// it cannot run on a host; it builds only with the kernelvm tag.

package ptt

import (
	"testing"

	"golang.org/x/sys/unix"
)

// RTS and DTR keying on a UART, read back with TIOCMGET twice: the line as
// the driver set it, and, with the UART in loopback (TIOCM_LOOP: the 16550
// wires RTS to CTS and DTR to DSR), the input it drives, which the driver
// reads from the chip's modem status register. Inverted keying drives the
// line the other way.
func TestSerialLinesOnAUART(t *testing.T) {
	const dev = "/dev/ttyS1"
	const tiocmLoop = 0x8000 // TIOCM_LOOP, <asm-generic/termios.h>; x/sys/unix lacks it
	echo := map[Line]int{RTS: unix.TIOCM_CTS, DTR: unix.TIOCM_DSR}
	for _, line := range []Line{RTS, DTR} {
		for _, invert := range []bool{false, true} {
			s, err := OpenSerial(dev, line, invert)
			if err != nil {
				t.Fatal(err)
			}
			fd := int(s.f.Fd())
			if err := unix.IoctlSetPointerInt(fd, unix.TIOCMBIS, tiocmLoop); err != nil {
				t.Fatalf("loopback on %s: %v", dev, err)
			}
			check := func(keyed bool) {
				t.Helper()
				got, err := s.Keyed()
				if err != nil {
					t.Fatal(err)
				}
				bits, err := unix.IoctlGetInt(fd, unix.TIOCMGET)
				if err != nil {
					t.Fatal(err)
				}
				high := keyed != invert
				if got != keyed || (bits&int(line) != 0) != high || (bits&echo[line] != 0) != high {
					t.Errorf("%s invert=%v keyed=%v: Keyed %v, TIOCMGET %#x (%s %v, its loopback input %v, want %v)",
						line, invert, keyed, got, bits, line, bits&int(line) != 0, bits&echo[line] != 0, high)
				}
			}
			check(false) // unkeyed at open
			if err := s.Key(true); err != nil {
				t.Fatal(err)
			}
			check(true)
			if err := s.Key(false); err != nil {
				t.Fatal(err)
			}
			check(false)
			s.Key(true)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s invert=%v: keyed and released, read back from the line and its loopback input", line, invert)
		}
	}
}
