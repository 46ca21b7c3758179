// Package drm draws on a Linux DRM/KMS device (/dev/dri/cardN) through one dumb
// buffer, for boards whose kernel gives a display controller but no fbdev (a Pi
// with the vc4 KMS driver and fbdev emulation off, a panel on a tiny DRM
// driver). Open finds the first connected output (connector), takes its
// preferred mode, a CRTC its encoder can drive, creates a 32-bit dumb buffer,
// maps it and shows it (SETCRTC); Draw writes rectangles of the UI's picture
// into it and tells the driver which part changed (DIRTYFB), which drivers that
// copy to the panel themselves (USB and SPI displays, virtual GPUs) need. Only
// the legacy mode-setting ioctls are used: every KMS driver has them, and one
// buffer shown for good needs no atomic commits or page flips.
//
// The ioctls and structures are those of include/uapi/drm/drm.h and
// drm_mode.h (Linux 6.1); their sizes are checked in the tests.
package drm

import (
	"errors"
	"fmt"
	"image"
	"os"
	"runtime"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/skyfleet/skyfleet/drivers/display"
)

// iowr is the kernel's _IOWR('d', nr, size): the DRM ioctls read and write
// their structure.
func iowr(nr, size uintptr) uintptr { return 3<<30 | size<<16 | 'd'<<8 | nr }

// The ioctl requests (include/uapi/drm/drm.h).
var (
	ioctlGetCap         = iowr(0x0c, unsafe.Sizeof(getCap{}))
	ioctlGetResources   = iowr(0xa0, unsafe.Sizeof(cardRes{}))
	ioctlGetCRTC        = iowr(0xa1, unsafe.Sizeof(modeCRTC{}))
	ioctlSetCRTC        = iowr(0xa2, unsafe.Sizeof(modeCRTC{}))
	ioctlGetEncoder     = iowr(0xa6, unsafe.Sizeof(getEncoder{}))
	ioctlGetConnector   = iowr(0xa7, unsafe.Sizeof(getConnector{}))
	ioctlGetProperty    = iowr(0xaa, unsafe.Sizeof(getProperty{}))
	ioctlSetProperty    = iowr(0xab, unsafe.Sizeof(connectorSetProperty{}))
	ioctlAddFB          = iowr(0xae, unsafe.Sizeof(fbCmd{}))
	ioctlRemoveFB       = iowr(0xaf, 4)
	ioctlDirtyFB        = iowr(0xb1, unsafe.Sizeof(fbDirty{}))
	ioctlCreateDumb     = iowr(0xb2, unsafe.Sizeof(createDumb{}))
	ioctlMapDumb        = iowr(0xb3, unsafe.Sizeof(mapDumb{}))
	ioctlDestroyDumb    = iowr(0xb4, unsafe.Sizeof(destroyDumb{}))
	ioctlSetMaster      = uintptr('d'<<8 | 0x1e) // _IO('d', 0x1e)
	capDumbBuffer       = uint64(1)              // DRM_CAP_DUMB_BUFFER
	modeTypePreferred   = uint32(1 << 3)         // DRM_MODE_TYPE_PREFERRED
	connectionConnected = uint32(1)              // DRM_MODE_CONNECTED
	connectionUnknown   = uint32(3)              // DRM_MODE_UNKNOWNCONNECTION
	dpmsOn, dpmsOff     = uint64(0), uint64(3)   // DRM_MODE_DPMS_ON, _OFF
)

// The structures, laid out as the kernel's (every 64-bit field is 8-aligned in
// both, so the Go and C layouts agree on 32- and 64-bit ARM alike).
type (
	getCap  struct{ Capability, Value uint64 }
	cardRes struct {
		FBIDPtr, CRTCIDPtr, ConnectorIDPtr, EncoderIDPtr     uint64
		CountFBs, CountCRTCs, CountConnectors, CountEncoders uint32
		MinWidth, MaxWidth, MinHeight, MaxHeight             uint32
	}
	modeInfo struct {
		Clock                                         uint32 // kHz
		HDisplay, HSyncStart, HSyncEnd, HTotal, HSkew uint16
		VDisplay, VSyncStart, VSyncEnd, VTotal, VScan uint16
		VRefresh, Flags, Type                         uint32
		Name                                          [32]byte
	}
	getConnector struct {
		EncodersPtr, ModesPtr, PropsPtr, PropValuesPtr uint64
		CountModes, CountProps, CountEncoders          uint32
		EncoderID, ConnectorID                         uint32
		ConnectorType, ConnectorTypeID                 uint32
		Connection, MMWidth, MMHeight, Subpixel, Pad   uint32
	}
	getEncoder struct {
		EncoderID, EncoderType, CRTCID, PossibleCRTCs, PossibleClones uint32
	}
	modeCRTC struct {
		SetConnectorsPtr                                          uint64
		CountConnectors, CRTCID, FBID, X, Y, GammaSize, ModeValid uint32
		Mode                                                      modeInfo
	}
	createDumb struct {
		Height, Width, BPP, Flags, Handle, Pitch uint32
		Size                                     uint64
	}
	mapDumb struct {
		Handle, Pad uint32
		Offset      uint64
	}
	destroyDumb struct{ Handle uint32 }
	fbCmd       struct{ FBID, Width, Height, Pitch, BPP, Depth, Handle uint32 }
	fbDirty     struct {
		FBID, Flags, Color, NumClips uint32
		ClipsPtr                     uint64
	}
	clipRect    struct{ X1, Y1, X2, Y2 uint16 }
	getProperty struct {
		ValuesPtr, EnumBlobPtr     uint64
		PropID, Flags              uint32
		Name                       [32]byte
		CountValues, CountEnumBlob uint32
	}
	connectorSetProperty struct {
		Value               uint64
		PropID, ConnectorID uint32
	}
)

// connectorTypes names DRM_MODE_CONNECTOR_* for messages and Mode.Output.
var connectorTypes = []string{"Unknown", "VGA", "DVI-I", "DVI-D", "DVI-A", "Composite", "SVIDEO", "LVDS",
	"Component", "DIN", "DP", "HDMI-A", "HDMI-B", "TV", "eDP", "Virtual", "DSI", "DPI", "Writeback", "SPI", "USB"}

// Mode is what Open chose.
type Mode struct {
	// Output is the connector's name as the kernel's logs give it, e.g.
	// "HDMI-A-1" or "Virtual-1".
	Output string
	// Name is the mode's name, e.g. "800x480"; Size its pixels and Refresh
	// its frames per second.
	Name    string
	Size    image.Point
	Refresh int
	// PhysicalMM is the panel's size in millimetres as the connector
	// reports it (zero when unknown, as for most virtual outputs).
	PhysicalMM image.Point
	// Stride is the dumb buffer's bytes per line (its pitch).
	Stride int
	// ConnectorID, CRTCID and FBID are the kernel's object IDs.
	ConnectorID, CRTCID, FBID uint32
}

// Stats count what Draw has done since Open.
type Stats struct {
	Draws        uint64 // calls that wrote something
	BytesWritten uint64 // bytes of the dumb buffer written
	DirtyCalls   uint64 // DIRTYFB ioctls made (zero on drivers without it)
}

// Card is a DRM device showing one dumb buffer; it implements display.Screen.
// Draw, Blank and Close may be called from several goroutines.
type Card struct {
	Mode Mode

	mu       sync.Mutex
	f        *os.File
	mem      []byte
	buf      display.Buffer
	rot      display.Rotation
	handle   uint32
	dpmsProp uint32 // the connector's DPMS property, 0 if none
	noDirty  bool   // the driver answered DIRTYFB with ENOSYS: it scans the buffer out itself
	// connIDs and clip are the memory SETCRTC and DIRTYFB point the kernel
	// at: fields of the Card, so on the heap, where nothing moves them.
	connIDs []uint32
	clip    *clipRect
	stats   Stats
}

// ErrNoOutput is returned by Open when no connector is connected with a mode.
var ErrNoOutput = errors.New("drm: no connected output with a mode")

// Open opens the DRM device at path (e.g. /dev/dri/card0), shows a dumb
// buffer of the first connected output's preferred mode on it and returns the
// card; the UI's picture is that mode turned by rot. Errors: opening; a device
// without dumb buffers or mode setting; ErrNoOutput; another program holding
// the display (DRM master, e.g. a compositor); the kernel refusing the buffer
// or the mode.
func Open(path string, rot display.Rotation) (*Card, error) {
	if !rot.Valid() {
		return nil, fmt.Errorf("drm: rotation %d: want 0, 90, 180 or 270", rot)
	}
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	c := &Card{f: f, rot: rot, clip: new(clipRect)}
	if err := c.setUp(path); err != nil {
		c.release()
		return nil, err
	}
	return c, nil
}

// setUp does Open's work on the open device.
func (c *Card) setUp(path string) error {
	gc := getCap{Capability: capDumbBuffer}
	if err := c.ioctl(ioctlGetCap, unsafe.Pointer(&gc)); err != nil || gc.Value == 0 {
		return fmt.Errorf("drm: %s has no dumb buffers (DRM_CAP_DUMB_BUFFER: %d, %v)", path, gc.Value, err)
	}
	// The first opener of a card is its master already; this makes sure and
	// names the likely culprit when another program is.
	if err := c.ioctl(ioctlSetMaster, nil); err != nil {
		return fmt.Errorf("drm: %s: another program drives the display (DRM_IOCTL_SET_MASTER: %w)", path, err)
	}
	res, crtcs, conns, err := c.resources()
	if err != nil {
		return fmt.Errorf("drm: %s: %w", path, err)
	}
	var outs []output
	for _, id := range conns {
		o, err := c.connector(id)
		if err != nil {
			return fmt.Errorf("drm: %s: connector %d: %w", path, id, err)
		}
		outs = append(outs, o)
	}
	o, err := pickOutput(outs)
	if err != nil {
		return fmt.Errorf("%w on %s (%s)", err, path, describe(outs))
	}
	m := pickMode(o.modes)
	crtc, err := c.pickCRTC(o, crtcs)
	if err != nil {
		return fmt.Errorf("drm: %s: %s: %w", path, o.name, err)
	}
	size := image.Point{int(m.HDisplay), int(m.VDisplay)}
	if size.X > int(res.MaxWidth) && res.MaxWidth > 0 || size.Y > int(res.MaxHeight) && res.MaxHeight > 0 {
		return fmt.Errorf("drm: %s: mode %s is larger than the card's %dx%d", path, cstr(m.Name[:]), res.MaxWidth, res.MaxHeight)
	}

	cd := createDumb{Width: uint32(size.X), Height: uint32(size.Y), BPP: 32}
	if err := c.ioctl(ioctlCreateDumb, unsafe.Pointer(&cd)); err != nil {
		return fmt.Errorf("drm: %s: a %dx%d dumb buffer: %w", path, size.X, size.Y, err)
	}
	c.handle = cd.Handle
	if int(cd.Pitch) < size.X*4 || cd.Size < uint64(cd.Pitch)*uint64(size.Y) {
		return fmt.Errorf("drm: %s: the kernel gave a dumb buffer of pitch %d and %d bytes for %dx%d", path, cd.Pitch, cd.Size, size.X, size.Y)
	}
	// XRGB8888: 32 bits per pixel, 24 of colour (the legacy ADDFB's bpp and
	// depth name DRM_FORMAT_XRGB8888).
	fc := fbCmd{Width: uint32(size.X), Height: uint32(size.Y), Pitch: cd.Pitch, BPP: 32, Depth: 24, Handle: cd.Handle}
	if err := c.ioctl(ioctlAddFB, unsafe.Pointer(&fc)); err != nil {
		return fmt.Errorf("drm: %s: ADDFB of the dumb buffer: %w", path, err)
	}
	c.Mode.FBID = fc.FBID // for release, should a later step fail
	md := mapDumb{Handle: cd.Handle}
	if err := c.ioctl(ioctlMapDumb, unsafe.Pointer(&md)); err != nil {
		return fmt.Errorf("drm: %s: MAP_DUMB: %w", path, err)
	}
	mem, err := unix.Mmap(int(c.f.Fd()), int64(md.Offset), int(cd.Size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("drm: %s: mmap %d bytes of the dumb buffer: %w", path, cd.Size, err)
	}
	c.mem = mem
	clear(mem) // black, not whatever the memory held, when the mode is set
	c.buf = display.Buffer{Pix: mem, Stride: int(cd.Pitch), Format: display.XRGB8888, Native: size}

	c.connIDs = []uint32{o.id}
	sc := modeCRTC{SetConnectorsPtr: ptr32(c.connIDs), CountConnectors: 1,
		CRTCID: crtc, FBID: fc.FBID, ModeValid: 1, Mode: m}
	err = c.ioctl(ioctlSetCRTC, unsafe.Pointer(&sc))
	if err != nil {
		return fmt.Errorf("drm: %s: SETCRTC %s on %s: %w", path, cstr(m.Name[:]), o.name, err)
	}
	c.dpmsProp = o.dpms
	c.Mode = Mode{Output: o.name, Name: cstr(m.Name[:]), Size: size, Refresh: int(m.VRefresh),
		PhysicalMM: o.mm, Stride: int(cd.Pitch), ConnectorID: o.id, CRTCID: crtc, FBID: fc.FBID}
	return nil
}

// output is a connector as Open sees it.
type output struct {
	id, typ, typeID, connection uint32
	name                        string
	mm                          image.Point
	modes                       []modeInfo
	encoder                     uint32   // the current one, 0 if none
	encoders                    []uint32 // the possible ones
	dpms                        uint32
}

// resources returns the card's resources and its CRTC and connector IDs.
func (c *Card) resources() (cardRes, []uint32, []uint32, error) {
	for range 5 { // the lists may grow between the two calls (hot plug)
		var r cardRes
		if err := c.ioctl(ioctlGetResources, unsafe.Pointer(&r)); err != nil {
			return r, nil, nil, fmt.Errorf("GETRESOURCES (is this a KMS device?): %w", err)
		}
		want := r
		crtcs, conns := ids(r.CountCRTCs), ids(r.CountConnectors)
		fbs, encs := ids(r.CountFBs), ids(r.CountEncoders)
		r.CRTCIDPtr, r.ConnectorIDPtr, r.FBIDPtr, r.EncoderIDPtr = ptr32(crtcs), ptr32(conns), ptr32(fbs), ptr32(encs)
		err := c.ioctl(ioctlGetResources, unsafe.Pointer(&r))
		runtime.KeepAlive(crtcs)
		runtime.KeepAlive(conns)
		runtime.KeepAlive(fbs)
		runtime.KeepAlive(encs)
		if err != nil {
			return r, nil, nil, fmt.Errorf("GETRESOURCES: %w", err)
		}
		if r.CountCRTCs <= want.CountCRTCs && r.CountConnectors <= want.CountConnectors &&
			r.CountFBs <= want.CountFBs && r.CountEncoders <= want.CountEncoders {
			return r, crtcs[:r.CountCRTCs], conns[:r.CountConnectors], nil
		}
	}
	return cardRes{}, nil, nil, errors.New("GETRESOURCES: the lists kept changing")
}

// connector reads connector id, its modes, encoders and DPMS property.
func (c *Card) connector(id uint32) (output, error) {
	for range 5 {
		g := getConnector{ConnectorID: id}
		if err := c.ioctl(ioctlGetConnector, unsafe.Pointer(&g)); err != nil {
			return output{}, fmt.Errorf("GETCONNECTOR: %w", err)
		}
		want := g
		modes := make([]modeInfo, max(g.CountModes, 1))
		encs, props := ids(g.CountEncoders), ids(g.CountProps)
		values := make([]uint64, max(g.CountProps, 1))
		g.ModesPtr, g.EncodersPtr = ptr(unsafe.Pointer(&modes[0])), ptr32(encs)
		g.PropsPtr, g.PropValuesPtr = ptr32(props), ptr(unsafe.Pointer(&values[0]))
		err := c.ioctl(ioctlGetConnector, unsafe.Pointer(&g))
		runtime.KeepAlive(modes)
		runtime.KeepAlive(encs)
		runtime.KeepAlive(props)
		runtime.KeepAlive(values)
		if err != nil {
			return output{}, fmt.Errorf("GETCONNECTOR: %w", err)
		}
		if g.CountModes > want.CountModes || g.CountEncoders > want.CountEncoders || g.CountProps > want.CountProps {
			continue
		}
		o := output{id: id, typ: g.ConnectorType, typeID: g.ConnectorTypeID, connection: g.Connection,
			mm: image.Point{int(g.MMWidth), int(g.MMHeight)}, modes: modes[:g.CountModes],
			encoder: g.EncoderID, encoders: encs[:g.CountEncoders]}
		o.name = connectorName(g.ConnectorType, g.ConnectorTypeID)
		for _, p := range props[:g.CountProps] {
			if c.propertyName(p) == "DPMS" {
				o.dpms = p
			}
		}
		return o, nil
	}
	return output{}, errors.New("GETCONNECTOR: the lists kept changing")
}

// propertyName returns property id's name, "" if the kernel will not say.
func (c *Card) propertyName(id uint32) string {
	p := getProperty{PropID: id}
	if c.ioctl(ioctlGetProperty, unsafe.Pointer(&p)) != nil {
		return ""
	}
	return cstr(p.Name[:])
}

// pickCRTC returns the CRTC to drive o with: its encoder's current one, else
// the first CRTC one of its encoders can drive.
func (c *Card) pickCRTC(o output, crtcs []uint32) (uint32, error) {
	if o.encoder != 0 {
		e := getEncoder{EncoderID: o.encoder}
		if c.ioctl(ioctlGetEncoder, unsafe.Pointer(&e)) == nil && e.CRTCID != 0 {
			return e.CRTCID, nil
		}
	}
	var masks []uint32
	for _, id := range o.encoders {
		e := getEncoder{EncoderID: id}
		if err := c.ioctl(ioctlGetEncoder, unsafe.Pointer(&e)); err != nil {
			return 0, fmt.Errorf("GETENCODER %d: %w", id, err)
		}
		masks = append(masks, e.PossibleCRTCs)
	}
	return firstCRTC(masks, crtcs)
}

// firstCRTC returns the first of crtcs that one of the encoders' possible-
// CRTC masks (bit i: crtcs[i]) allows.
func firstCRTC(masks []uint32, crtcs []uint32) (uint32, error) {
	for _, m := range masks {
		for i, id := range crtcs {
			if i < 32 && m&(1<<i) != 0 {
				return id, nil
			}
		}
	}
	return 0, fmt.Errorf("none of its %d encoders can drive one of the %d CRTCs", len(masks), len(crtcs))
}

// pickOutput returns the first connected output with a mode, else the first
// whose state is unknown with one (some panels cannot tell), else
// ErrNoOutput.
func pickOutput(outs []output) (output, error) {
	for _, want := range []uint32{connectionConnected, connectionUnknown} {
		for _, o := range outs {
			if o.connection == want && len(o.modes) > 0 {
				return o, nil
			}
		}
	}
	return output{}, ErrNoOutput
}

// pickMode returns the preferred mode, else the first (the kernel lists the
// best first). modes is not empty.
func pickMode(modes []modeInfo) modeInfo {
	for _, m := range modes {
		if m.Type&modeTypePreferred != 0 {
			return m
		}
	}
	return modes[0]
}

// describe lists outs for an error, e.g. "HDMI-A-1 disconnected, 0 modes".
func describe(outs []output) string {
	if len(outs) == 0 {
		return "the card has no connectors"
	}
	var s []string
	for _, o := range outs {
		state := map[uint32]string{1: "connected", 2: "disconnected", 3: "state unknown"}[o.connection]
		s = append(s, fmt.Sprintf("%s %s, %d modes", o.name, state, len(o.modes)))
	}
	return strings.Join(s, "; ")
}

// connectorName is the kernel's name for a connector, e.g. "HDMI-A-1".
func connectorName(typ, typeID uint32) string {
	n := "Unknown"
	if int(typ) < len(connectorTypes) {
		n = connectorTypes[typ]
	}
	return fmt.Sprintf("%s-%d", n, typeID)
}

// Size is the picture's size: the mode turned by the rotation.
func (c *Card) Size() image.Point { return c.rot.PictureSize(c.Mode.Size) }

// Format is the buffer's pixel format, always XRGB8888.
func (c *Card) Format() display.Format { return display.XRGB8888 }

// Draw writes the rectangle r of pic into the dumb buffer and tells the
// driver which part of it changed (display.Screen). pic must be Size() large.
func (c *Card) Draw(pic *image.RGBA, r image.Rectangle) error {
	if pic.Rect.Size() != c.Size() {
		return fmt.Errorf("drm: a %v picture on a %v screen", pic.Rect.Size(), c.Size())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mem == nil {
		return os.ErrClosed
	}
	w := c.buf.Blit(pic, r, c.rot)
	if w.Empty() {
		return nil
	}
	c.stats.Draws++
	c.stats.BytesWritten += uint64(w.Dx() * w.Dy() * 4)
	if c.noDirty {
		return nil
	}
	*c.clip = clipRect{uint16(w.Min.X), uint16(w.Min.Y), uint16(w.Max.X), uint16(w.Max.Y)}
	d := fbDirty{FBID: c.Mode.FBID, NumClips: 1, ClipsPtr: ptr(unsafe.Pointer(c.clip))}
	err := c.ioctl(ioctlDirtyFB, unsafe.Pointer(&d))
	switch {
	case errors.Is(err, unix.ENOSYS):
		// The driver scans the buffer out as it is; no need to ask again.
		c.noDirty = true
	case err != nil:
		return fmt.Errorf("drm: DIRTYFB %v: %w", w, err)
	default:
		c.stats.DirtyCalls++
	}
	return nil
}

// Stats returns the counters.
func (c *Card) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Blank turns the output off (true) or on (false) through the connector's DPMS
// property, for a screen left untouched. An output without one returns an
// error.
func (c *Card) Blank(off bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.f == nil {
		return os.ErrClosed
	}
	if c.dpmsProp == 0 {
		return fmt.Errorf("drm: %s has no DPMS property", c.Mode.Output)
	}
	p := connectorSetProperty{Value: dpmsOn, PropID: c.dpmsProp, ConnectorID: c.Mode.ConnectorID}
	if off {
		p.Value = dpmsOff
	}
	if err := c.ioctl(ioctlSetProperty, unsafe.Pointer(&p)); err != nil {
		return fmt.Errorf("drm: %s: DPMS %d: %w", c.Mode.Output, p.Value, err)
	}
	return nil
}

// Close unmaps and frees the buffer and closes the device. Unlike a
// framebuffer's, the picture does not stay: the kernel takes the buffer down
// with the last reference to it and shows its console again, or nothing.
func (c *Card) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.f == nil {
		return nil
	}
	return c.release()
}

// release undoes what setUp did, in reverse; it is safe on a half set-up card.
func (c *Card) release() error {
	var err error
	if c.mem != nil {
		err = unix.Munmap(c.mem)
		c.mem = nil
	}
	if c.Mode.FBID != 0 {
		id := c.Mode.FBID
		c.ioctl(ioctlRemoveFB, unsafe.Pointer(&id))
	}
	if c.handle != 0 {
		c.ioctl(ioctlDestroyDumb, unsafe.Pointer(&destroyDumb{Handle: c.handle}))
		c.handle = 0
	}
	if cerr := c.f.Close(); err == nil {
		err = cerr
	}
	c.f = nil
	return err
}

// ioctl makes DRM request req with argument p, retrying when a signal
// interrupted it (EINTR and EAGAIN, as libdrm's drmIoctl does).
func (c *Card) ioctl(req uintptr, p unsafe.Pointer) error {
	for {
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, c.f.Fd(), req, uintptr(p))
		if errno == unix.EINTR || errno == unix.EAGAIN {
			continue
		}
		if errno != 0 {
			return errno
		}
		return nil
	}
}

// ids returns a heap array for n object IDs (at least one element, so that
// its address can be taken).
func ids(n uint32) []uint32 { return make([]uint32, max(n, 1)) }

// ptr is p as the kernel's __u64 user pointer. A goroutine's stack may move
// before the ioctl is made, and a uintptr is not updated when it does, so p
// must be heap memory (a Card's field, or made with a length known only at
// run time), kept alive across the ioctl by its caller.
func ptr(p unsafe.Pointer) uint64 { return uint64(uintptr(p)) }

func ptr32(s []uint32) uint64 { return ptr(unsafe.Pointer(&s[0])) }

// cstr is a NUL-terminated C string.
func cstr(b []byte) string {
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
