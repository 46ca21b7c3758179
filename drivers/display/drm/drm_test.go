package drm

import (
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"strings"
	"testing"
	"unsafe"

	"github.com/skyfleet/skyfleet/drivers/display"
)

// The structures' sizes and the requests' numbers, as a C compiler gives them
// for include/uapi/drm/drm.h and drm_mode.h (libdrm-dev 2.4.114's copies of
// Linux 6.1's, `sizeof` and the DRM_IOCTL_* macros printed by gcc on amd64).
// The kernel checks neither the size nor the direction of a DRM ioctl against
// its own (it copies the smaller and zero-fills), so a wrong one would not fail
// loudly: it would pass garbage.
func TestABI(t *testing.T) {
	sizes := []struct {
		name      string
		got, want uintptr
	}{
		{"drm_get_cap", unsafe.Sizeof(getCap{}), 16},
		{"drm_mode_card_res", unsafe.Sizeof(cardRes{}), 64},
		{"drm_mode_modeinfo", unsafe.Sizeof(modeInfo{}), 68},
		{"drm_mode_get_connector", unsafe.Sizeof(getConnector{}), 80},
		{"drm_mode_get_encoder", unsafe.Sizeof(getEncoder{}), 20},
		{"drm_mode_crtc", unsafe.Sizeof(modeCRTC{}), 104},
		{"drm_mode_create_dumb", unsafe.Sizeof(createDumb{}), 32},
		{"drm_mode_map_dumb", unsafe.Sizeof(mapDumb{}), 16},
		{"drm_mode_destroy_dumb", unsafe.Sizeof(destroyDumb{}), 4},
		{"drm_mode_fb_cmd", unsafe.Sizeof(fbCmd{}), 28},
		{"drm_mode_fb_dirty_cmd", unsafe.Sizeof(fbDirty{}), 24},
		{"drm_clip_rect", unsafe.Sizeof(clipRect{}), 8},
		{"drm_mode_get_property", unsafe.Sizeof(getProperty{}), 64},
		{"drm_mode_connector_set_property", unsafe.Sizeof(connectorSetProperty{}), 16},
	}
	for _, s := range sizes {
		if s.got != s.want {
			t.Errorf("struct %s: %d bytes, the kernel's is %d", s.name, s.got, s.want)
		}
	}
	// Field offsets the kernel reads past the first few.
	if o := unsafe.Offsetof(modeCRTC{}.Mode); o != 36 {
		t.Errorf("drm_mode_crtc.mode at %d, want 36", o)
	}
	if o := unsafe.Offsetof(getConnector{}.Connection); o != 60 {
		t.Errorf("drm_mode_get_connector.connection at %d, want 60", o)
	}
	if o := unsafe.Offsetof(modeInfo{}.Name); o != 36 {
		t.Errorf("drm_mode_modeinfo.name at %d, want 36", o)
	}
	if o := unsafe.Offsetof(createDumb{}.Size); o != 24 {
		t.Errorf("drm_mode_create_dumb.size at %d, want 24", o)
	}
	reqs := []struct {
		name      string
		got, want uintptr
	}{
		{"DRM_IOCTL_GET_CAP", ioctlGetCap, 0xc010640c},
		{"DRM_IOCTL_SET_MASTER", ioctlSetMaster, 0x641e},
		{"DRM_IOCTL_MODE_GETRESOURCES", ioctlGetResources, 0xc04064a0},
		{"DRM_IOCTL_MODE_GETCRTC", ioctlGetCRTC, 0xc06864a1},
		{"DRM_IOCTL_MODE_SETCRTC", ioctlSetCRTC, 0xc06864a2},
		{"DRM_IOCTL_MODE_GETENCODER", ioctlGetEncoder, 0xc01464a6},
		{"DRM_IOCTL_MODE_GETCONNECTOR", ioctlGetConnector, 0xc05064a7},
		{"DRM_IOCTL_MODE_GETPROPERTY", ioctlGetProperty, 0xc04064aa},
		{"DRM_IOCTL_MODE_SETPROPERTY", ioctlSetProperty, 0xc01064ab},
		{"DRM_IOCTL_MODE_ADDFB", ioctlAddFB, 0xc01c64ae},
		{"DRM_IOCTL_MODE_RMFB", ioctlRemoveFB, 0xc00464af},
		{"DRM_IOCTL_MODE_DIRTYFB", ioctlDirtyFB, 0xc01864b1},
		{"DRM_IOCTL_MODE_CREATE_DUMB", ioctlCreateDumb, 0xc02064b2},
		{"DRM_IOCTL_MODE_MAP_DUMB", ioctlMapDumb, 0xc01064b3},
		{"DRM_IOCTL_MODE_DESTROY_DUMB", ioctlDestroyDumb, 0xc00464b4},
	}
	for _, r := range reqs {
		if r.got != r.want {
			t.Errorf("%s = %#x, the kernel's is %#x", r.name, r.got, r.want)
		}
	}
}

func mode(w, h int, typ uint32, name string) modeInfo {
	m := modeInfo{HDisplay: uint16(w), VDisplay: uint16(h), Type: typ}
	copy(m.Name[:], name)
	return m
}

// The preferred mode wins wherever it is in the list; without one, the
// kernel's first.
func TestPickMode(t *testing.T) {
	modes := []modeInfo{mode(1024, 768, 0, "1024x768"), mode(800, 480, modeTypePreferred|1<<6, "800x480"), mode(640, 480, 0, "640x480")}
	if m := pickMode(modes); cstr(m.Name[:]) != "800x480" {
		t.Errorf("picked %s, want the preferred 800x480", cstr(m.Name[:]))
	}
	modes[1].Type = 0
	if m := pickMode(modes); cstr(m.Name[:]) != "1024x768" {
		t.Errorf("without a preferred mode picked %s, want the first", cstr(m.Name[:]))
	}
}

// A connected output beats one whose state is unknown, which beats none;
// outputs without modes are passed over; the error names what was there.
func TestPickOutput(t *testing.T) {
	m := []modeInfo{mode(800, 480, modeTypePreferred, "800x480")}
	hdmi := output{id: 31, name: "HDMI-A-1", connection: 2, modes: m}
	dsi := output{id: 32, name: "DSI-1", connection: connectionUnknown, modes: m}
	empty := output{id: 33, name: "HDMI-A-2", connection: connectionConnected}
	virt := output{id: 34, name: "Virtual-1", connection: connectionConnected, modes: m}
	if o, err := pickOutput([]output{hdmi, dsi, empty, virt}); err != nil || o.id != 34 {
		t.Errorf("picked %d (%v), want the connected Virtual-1 (34)", o.id, err)
	}
	if o, err := pickOutput([]output{hdmi, dsi, empty}); err != nil || o.id != 32 {
		t.Errorf("picked %d (%v), want DSI-1 (32), whose state is unknown", o.id, err)
	}
	outs := []output{hdmi, empty}
	_, err := pickOutput(outs)
	if !errors.Is(err, ErrNoOutput) {
		t.Fatalf("error %v, want ErrNoOutput", err)
	}
	if d := describe(outs); d != "HDMI-A-1 disconnected, 1 modes; HDMI-A-2 connected, 0 modes" {
		t.Errorf("describe = %q", d)
	}
	if d := describe(nil); d != "the card has no connectors" {
		t.Errorf("describe(nil) = %q", d)
	}
}

// Bit i of an encoder's possible_crtcs is the card's i-th CRTC.
func TestFirstCRTC(t *testing.T) {
	crtcs := []uint32{40, 41, 42}
	if id, err := firstCRTC([]uint32{0b100}, crtcs); err != nil || id != 42 {
		t.Errorf("mask 0b100: CRTC %d (%v), want 42", id, err)
	}
	if id, err := firstCRTC([]uint32{0, 0b110}, crtcs); err != nil || id != 41 {
		t.Errorf("masks 0, 0b110: CRTC %d (%v), want 41", id, err)
	}
	if _, err := firstCRTC([]uint32{0b1000}, crtcs); err == nil || !strings.Contains(err.Error(), "3 CRTCs") {
		t.Errorf("a mask naming no CRTC of the card: %v, want an error", err)
	}
}

func TestConnectorName(t *testing.T) {
	for _, c := range []struct {
		typ, id uint32
		want    string
	}{{11, 1, "HDMI-A-1"}, {16, 1, "DSI-1"}, {15, 1, "Virtual-1"}, {19, 2, "SPI-2"}, {99, 1, "Unknown-1"}} {
		if got := connectorName(c.typ, c.id); got != c.want {
			t.Errorf("connectorName(%d, %d) = %q, want %q", c.typ, c.id, got, c.want)
		}
	}
}

// Draw converts into the buffer as XRGB8888 (B, G, R, X in memory) at the
// pitch, turned by the rotation, and counts only what it wrote. The kernel
// side (the mode, DIRTYFB, DPMS) is tested in the kernel VM
// (bochs_vm_test.go).
func TestDraw(t *testing.T) {
	native := image.Point{8, 4}
	pitch := 64 // wider than 8*4: dumb buffers are often padded
	c := &Card{Mode: Mode{Size: native}, rot: 90, noDirty: true, mem: make([]byte, pitch*native.Y)}
	c.buf = display.Buffer{Pix: c.mem, Stride: pitch, Format: display.XRGB8888, Native: native}
	if c.Size() != (image.Point{4, 8}) {
		t.Fatalf("size %v turned 90 degrees, want 4x8", c.Size())
	}
	pic := image.NewRGBA(image.Rect(0, 0, 4, 8))
	pic.SetRGBA(0, 0, color.RGBA{0x11, 0x22, 0x33, 0xff})
	if err := c.Draw(pic, image.Rect(0, 0, 1, 1)); err != nil {
		t.Fatal(err)
	}
	// The picture's top-left is the panel's top-right at 90 degrees.
	o := 0*pitch + 7*4
	if got := binary.LittleEndian.Uint32(c.mem[o:]); got != 0x00112233 {
		t.Errorf("pixel at the panel's top-right = %#08x, want 0x00112233 (XRGB)", got)
	}
	if err := c.Draw(pic, image.Rect(10, 10, 20, 20)); err != nil {
		t.Fatal(err)
	}
	if s := c.Stats(); s.Draws != 1 || s.BytesWritten != 4 || s.DirtyCalls != 0 {
		t.Errorf("stats %+v, want one draw of 4 bytes and no DIRTYFB", s)
	}
	if err := c.Draw(image.NewRGBA(image.Rect(0, 0, 8, 4)), image.Rect(0, 0, 1, 1)); err == nil {
		t.Error("a picture of the unturned size was drawn")
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open("/dev/null", 45); err == nil || !strings.Contains(err.Error(), "rotation 45") {
		t.Errorf("rotation 45: %v", err)
	}
	if _, err := Open("/nonexistent/card0", 0); err == nil {
		t.Error("a missing device opened")
	}
	// Not a DRM device: GET_CAP fails, and the message says what is missing.
	if _, err := Open("/dev/null", 0); err == nil || !strings.Contains(err.Error(), "no dumb buffers") {
		t.Errorf("/dev/null: %v, want a no-dumb-buffers error", err)
	}
}
