//go:build e2e

package e2e

import (
	"strings"
	"testing"
)

// TestPTTOnUARTInVM is issue 12's acceptance 6 for serial keying, on a real
// UART: Linux pseudo-terminals have no modem lines (TIOCMBIS answers ENOTTY),
// so drivers/radio/ptt's kernelvm test keys RTS and DTR on the kernel VM's
// 16550 (QEMU's, under the 8250 driver) and reads them back with TIOCMGET,
// from the driver and through the chip's loopback.
func TestPTTOnUARTInVM(t *testing.T) {
	t.Parallel() // with the radio tests; kernelVMRun keeps one VM at a time
	out := runInKernelVM(t, "./drivers/radio/ptt/", "kernelvm", "^TestSerialLinesOnAUART$")
	if !strings.Contains(out, "--- PASS: TestSerialLinesOnAUART") {
		t.Fatal("the VM's output lacks the test's pass")
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "uart_vm_test.go") {
			t.Log(strings.TrimSpace(l))
		}
	}
}
