//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"image"
	"image/draw"
	"image/png"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The DRM driver (drivers/display/drm) in the kernel VM, against the bochs
// DRM driver on QEMU's VGA card with an 800x480 EDID. The guest
// (bochs_vm_test.go) opens the card, draws, blanks and closes; for each picture
// it shows, it sends the picture here over the host link and this side
// compares it with QMP's screendump of the VGA card: what the driver wrote is
// what the card scans out.
func TestDRMDumbBufferInVM(t *testing.T) {
	t.Parallel() // with the radio tests; kernelVMRun keeps one VM at a time
	dir := artifacts(t)
	var shown []string
	out := runInKernelVMWith(t, "./drivers/display/drm/", "kernelvm", "^TestDumbBufferOnBochs$", vmOptions{
		Modules: []string{"bochs"},
		Display: image.Point{800, 480},
		Timeout: 5 * time.Minute,
		Host: func(t *testing.T, q *qmp, link net.Conn) {
			r := bufio.NewReaderSize(link, 1<<20)
			for {
				// The guest's lines come as it runs; it ends by powering
				// off, which closes the link.
				link.SetReadDeadline(time.Now().Add(4 * time.Minute))
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				name, answer := compareShown(t, q, dir, strings.TrimSpace(line))
				shown = append(shown, name)
				fmt.Fprintf(link, "%s\n", answer)
			}
		},
	})
	if want := []string{"full", "partial", "blanked", "unblanked"}; !slices.Equal(shown, want) {
		t.Errorf("the guest showed %q, want %q", shown, want)
	}
	if !strings.Contains(out, "--- PASS: TestDumbBufferOnBochs") {
		t.Error("the VM's output lacks the test's pass")
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "MEASURE") || strings.Contains(l, "opened:") {
			t.Log(strings.TrimSpace(l))
		}
	}
}

// compareShown handles one "SHOW NAME BASE64-PNG" line from the guest: it
// takes QEMU's screendump, keeps both pictures in dir and returns the step's
// name and the answer for the guest, "OK NAME" when every pixel's colour is
// the same.
func compareShown(t *testing.T, q *qmp, dir, line string) (string, string) {
	t.Helper()
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "SHOW" {
		t.Errorf("the guest sent %.80q, want SHOW NAME PNG", line)
		return "?", "FAIL malformed"
	}
	name := f[1]
	raw, err := base64.StdEncoding.DecodeString(f[2])
	var want image.Image
	if err == nil {
		want, err = png.Decode(bytes.NewReader(raw))
	}
	if err != nil {
		t.Errorf("%s: the guest's picture: %v", name, err)
		return name, "FAIL unreadable picture"
	}
	wantRGBA := image.NewRGBA(want.Bounds())
	draw.Draw(wantRGBA, wantRGBA.Rect, want, image.Point{}, draw.Src)
	for i := 3; i < len(wantRGBA.Pix); i += 4 {
		wantRGBA.Pix[i] = 255 // colour only: the screen has no alpha
	}
	got := q.screendump(t)
	savePNG(t, filepath.Join(dir, "drm-"+name+"-screen.png"), got)
	savePNG(t, filepath.Join(dir, "drm-"+name+"-want.png"), wantRGBA)
	if got.Rect != wantRGBA.Rect {
		t.Errorf("%s: the screen is %v, the guest drew %v", name, got.Rect.Size(), wantRGBA.Rect.Size())
		return name, fmt.Sprintf("FAIL screen %v", got.Rect.Size())
	}
	differ := 0
	for i := range got.Pix {
		if got.Pix[i] != wantRGBA.Pix[i] {
			differ++
		}
	}
	if differ > 0 {
		t.Errorf("%s: %d bytes of the screendump differ from the guest's picture (both in %s)", name, differ, dir)
		return name, fmt.Sprintf("FAIL %d bytes differ", differ)
	}
	t.Logf("%s: the screendump (%v) is the guest's picture", name, got.Rect.Size())
	return name, "OK " + name
}
