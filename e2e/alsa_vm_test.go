//go:build e2e

package e2e

import (
	"strings"
	"testing"
)

// TestALSALoopbackInVM runs drivers/audio/alsa's kernelvm tests in the kernel
// VM (scripts/kernelvm.sh: Debian's kernel with snd-aloop, under QEMU): the
// driver against a real kernel's ALSA core, which no host here has. A
// transmission played on one side of the loopback card decodes on the other
// at 22050, 44100 and 48000 Hz, and two of Skyfleet's modems, one on each
// side through alsa.Device, exchange frames both ways.
func TestALSALoopbackInVM(t *testing.T) {
	t.Parallel() // with the radio tests; kernelVMRun keeps one VM at a time
	out := runInKernelVM(t, "./drivers/audio/alsa/", "kernelvm", "^TestLoopback")
	for _, want := range []string{"--- PASS: TestLoopbackPCM/22050", "--- PASS: TestLoopbackPCM/44100", "--- PASS: TestLoopbackPCM/48000", "--- PASS: TestLoopbackModems"} {
		if !strings.Contains(out, want) {
			t.Errorf("the VM's output lacks %q", want)
		}
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "loopback_vm_test.go") {
			t.Log(strings.TrimSpace(l))
		}
	}
}
