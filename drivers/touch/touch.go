// Package touch holds what every touch driver shares: a contact in screen
// pixels, the report of all contacts after one hardware scan, and the mapping
// from a controller's raw axes to the screen (axis ranges, the calibration
// matrix, rotation). The drivers are in evdev (the kernel's input devices:
// USB HID panels, QEMU's usb-tablet, any panel with a kernel driver) and
// xpt2046 (the resistive controller of the common SPI hats, read from user
// space). Drivers know hardware and framing; what a touch means is the UI's.
package touch

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Point is one contact.
type Point struct {
	// ID tells contacts apart while they last: the multi-touch slot
	// (Linux MT protocol B), 0 for a single-touch device.
	ID int
	// X and Y are in screen pixels, after Mapping, from the top-left
	// corner of the screen as the UI draws it (rotation applied).
	X, Y int
}

// Report is the state of every contact after one hardware report (an
// evdev SYN_REPORT, one XPT2046 sample): the contacts down now. A report
// with no points says every finger has lifted.
type Report struct {
	Time   time.Time
	Points []Point
}

// Rotation is the clockwise angle, in degrees (0, 90, 180 or 270), by which
// the display driver turns the UI's picture to put it on the panel: at 90,
// the picture's top-left pixel is at the panel's top-right corner. The touch
// mapping undoes the same turn, so that a touch lands on what is drawn
// under it.
type Rotation int

// Valid rotations.
const (
	Rotate0   Rotation = 0
	Rotate90  Rotation = 90
	Rotate180 Rotation = 180
	Rotate270 Rotation = 270
)

// Calibration is a 2x3 affine matrix in libinput's convention
// (LIBINPUT_CALIBRATION_MATRIX, "Static device configuration via udev" in
// libinput's documentation): applied to the position normalised to 0..1 on
// each raw axis, x' = A*x + B*y + C, y' = D*x + E*y + F, before rotation.
// The identity {1, 0, 0, 0, 1, 0} leaves the axes as the controller reports
// them; {-1, 0, 1, 0, 1, 0} mirrors X. A calibration screen computes one
// from three touched targets (Solve).
type Calibration [6]float64

// Identity is the calibration that changes nothing.
var Identity = Calibration{1, 0, 0, 0, 1, 0}

// ErrCalibration is returned by Solve and Mapping.Validate for a
// calibration that cannot map a panel onto the screen (degenerate or not
// finite).
var ErrCalibration = errors.New("touch: unusable calibration")

// Apply maps a normalised position.
func (c Calibration) Apply(x, y float64) (float64, float64) {
	return c[0]*x + c[1]*y + c[2], c[3]*x + c[4]*y + c[5]
}

// valid reports whether c is finite and invertible (a touch panel maps onto
// a plane, not a line).
func (c Calibration) valid() bool {
	for _, v := range c {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return math.Abs(c[0]*c[4]-c[1]*c[3]) > 1e-6
}

// Solve returns the calibration that maps three raw touches (normalised to
// 0..1 on each raw axis) onto the three screen targets they were aimed at
// (also normalised, to the unrotated screen), by solving the two 3x3 linear
// systems exactly. The targets must not be on one line, and neither must the
// touches, else ErrCalibration.
func Solve(touched, target [3][2]float64) (Calibration, error) {
	// | x0 y0 1 |   | A D |   | X0 Y0 |
	// | x1 y1 1 | * | B E | = | X1 Y1 |
	// | x2 y2 1 |   | C F |   | X2 Y2 |
	m := [3][3]float64{}
	for i := range 3 {
		m[i] = [3]float64{touched[i][0], touched[i][1], 1}
	}
	det := det3(m)
	if math.Abs(det) < 1e-9 {
		return Calibration{}, fmt.Errorf("%w: the three touches are on one line", ErrCalibration)
	}
	var c Calibration
	for axis := range 2 {
		var rhs [3]float64
		for i := range 3 {
			rhs[i] = target[i][axis]
		}
		// Cramer's rule, one column at a time.
		for col := range 3 {
			mc := m
			for i := range 3 {
				mc[i][col] = rhs[i]
			}
			c[axis*3+col] = det3(mc) / det
		}
	}
	if !c.valid() {
		return Calibration{}, fmt.Errorf("%w: the three targets are on one line", ErrCalibration)
	}
	return c, nil
}

func det3(m [3][3]float64) float64 {
	return m[0][0]*(m[1][1]*m[2][2]-m[1][2]*m[2][1]) -
		m[0][1]*(m[1][0]*m[2][2]-m[1][2]*m[2][0]) +
		m[0][2]*(m[1][0]*m[2][1]-m[1][1]*m[2][0])
}

// Axis is the range a controller reports on one axis, inclusive (evdev's
// input_absinfo minimum and maximum; 0..4095 for the XPT2046's 12 bits).
type Axis struct{ Min, Max int }

// Mapping turns raw positions into screen pixels.
type Mapping struct {
	// X and Y are the raw axes' ranges.
	X, Y Axis
	// Width and Height are the screen's size in pixels as the UI draws
	// it, that is after Rotation.
	Width, Height int
	// Calibration is applied to the normalised raw position; the zero
	// value means Identity.
	Calibration Calibration
	// Rotation is the screen's.
	Rotation Rotation
}

// Validate says what is wrong with m: an empty axis range, a screen without
// pixels, a rotation that is not a multiple of 90 degrees, or a degenerate
// calibration.
func (m Mapping) Validate() error {
	switch {
	case m.X.Max <= m.X.Min || m.Y.Max <= m.Y.Min:
		return fmt.Errorf("touch: empty axis range (x %d..%d, y %d..%d)", m.X.Min, m.X.Max, m.Y.Min, m.Y.Max)
	case m.Width <= 0 || m.Height <= 0:
		return fmt.Errorf("touch: screen of %dx%d pixels", m.Width, m.Height)
	}
	switch m.Rotation {
	case Rotate0, Rotate90, Rotate180, Rotate270:
	default:
		return fmt.Errorf("touch: rotation %d: want 0, 90, 180 or 270", m.Rotation)
	}
	if m.Calibration != (Calibration{}) && !m.Calibration.valid() {
		return ErrCalibration
	}
	return nil
}

// Map returns the screen pixel of the raw position (rx, ry), clamped to the
// screen: a panel's edges often report a little beyond its range.
func (m Mapping) Map(rx, ry int) (int, int) {
	nx := float64(rx-m.X.Min) / float64(m.X.Max-m.X.Min)
	ny := float64(ry-m.Y.Min) / float64(m.Y.Max-m.Y.Min)
	c := m.Calibration
	if c == (Calibration{}) {
		c = Identity
	}
	// The panel is fixed to the unrotated screen; turn its coordinates
	// as the picture is turned.
	nx, ny = c.Apply(nx, ny)
	nx, ny = rotate(m.Rotation, nx, ny)
	return clamp(int(math.Floor(nx*float64(m.Width))), m.Width-1), clamp(int(math.Floor(ny*float64(m.Height))), m.Height-1)
}

func clamp(v, max int) int {
	if v < 0 {
		return 0
	}
	if v > max {
		return max
	}
	return v
}

// rotate turns a position normalised on the unrotated screen as the picture
// is turned (Map's turn).
func rotate(r Rotation, nx, ny float64) (float64, float64) {
	switch r {
	case Rotate90: // the picture's (x, y) is on the panel at (1-y, x)
		return ny, 1 - nx
	case Rotate180:
		return 1 - nx, 1 - ny
	case Rotate270: // the picture's (x, y) is on the panel at (y, 1-x)
		return 1 - ny, nx
	}
	return nx, ny
}

// Unrotate turns a position normalised on the screen as the UI draws it (u,
// v in 0..1, after rotation r) back to the unrotated screen: the inverse of
// Map's turn.
func Unrotate(r Rotation, u, v float64) (float64, float64) {
	switch r {
	case Rotate90:
		return 1 - v, u
	case Rotate180:
		return 1 - u, 1 - v
	case Rotate270:
		return v, 1 - u
	}
	return u, v
}

// SolveScreen returns the calibration that moves three touches onto the
// targets they were aimed at, both in pixels of the screen as the UI draws
// it (m.Width x m.Height, rotated by m.Rotation), the touches as Map reported
// them with the Identity calibration: a calibration screen that works the
// same for every driver. Each pixel's centre is normalised and turned back
// to the unrotated screen, where the calibration applies, and Solve solves.
// m's axes and Calibration are not used. Errors: ErrCalibration (wrapped)
// for touches or targets on one line, or a screen without pixels.
func SolveScreen(m Mapping, touched, targets [3][2]int) (Calibration, error) {
	if m.Width <= 0 || m.Height <= 0 {
		return Calibration{}, fmt.Errorf("%w: a screen of %dx%d pixels", ErrCalibration, m.Width, m.Height)
	}
	norm := func(p [2]int) [2]float64 {
		x, y := Unrotate(m.Rotation, (float64(p[0])+0.5)/float64(m.Width), (float64(p[1])+0.5)/float64(m.Height))
		return [2]float64{x, y}
	}
	var raw, target [3][2]float64
	for i := range 3 {
		raw[i], target[i] = norm(touched[i]), norm(targets[i])
	}
	return Solve(raw, target)
}

// Remap returns the pixel m maps a touch to that Map reported at (x, y)
// with the Identity calibration (and otherwise m's screen and rotation): how
// a UI applies a calibration it has just made to a driver still running
// without one. Clamped to the screen like Map.
func (m Mapping) Remap(x, y int) (int, int) {
	c := m.Calibration
	if c == (Calibration{}) {
		c = Identity
	}
	nx, ny := Unrotate(m.Rotation, (float64(x)+0.5)/float64(m.Width), (float64(y)+0.5)/float64(m.Height))
	nx, ny = c.Apply(nx, ny)
	nx, ny = rotate(m.Rotation, nx, ny)
	return clamp(int(math.Floor(nx*float64(m.Width))), m.Width-1), clamp(int(math.Floor(ny*float64(m.Height))), m.Height-1)
}
