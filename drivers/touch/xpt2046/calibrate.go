package xpt2046

import (
	"fmt"
	"image"

	"github.com/skyfleet/skyfleet/drivers/touch"
)

// Calibrate returns the calibration that maps the three raw touches onto
// the three screen targets they were aimed at, for the Mapping's
// Calibration. The UI's calibration screen draws the targets, takes each
// touch as a down Sample (filtered raw, not Read's pixels), and stores the
// result in fleet.toml as [display] touch_calibration, the six numbers of
// a touch.Calibration.
//
// targets are pixels as the UI draws them (rotated by m.Rotation, within
// m.Width x m.Height); the touches are normalised by m's raw axes to 0..1,
// the targets' pixel centres by the screen's size and turned back to the
// unrotated screen, because the calibration applies before the rotation
// (touch.Mapping.Map); then touch.Solve solves for the matrix. m's own
// Calibration is ignored: the touches are raw. So Map, with the result as
// the Calibration, maps each touch onto its target's pixel.
//
// Errors: m invalid (touch.Mapping.Validate), a target off the screen, or
// touch.ErrCalibration (wrapped) for targets or touches on one line.
func Calibrate(m touch.Mapping, touched [3]RawSample, targets [3]image.Point) (touch.Calibration, error) {
	m.Calibration = touch.Calibration{}
	if err := m.Validate(); err != nil {
		return touch.Calibration{}, fmt.Errorf("xpt2046: calibration: %w", err)
	}
	var raw, target [3][2]float64
	for i := range 3 {
		p := targets[i]
		if !p.In(image.Rect(0, 0, m.Width, m.Height)) {
			return touch.Calibration{}, fmt.Errorf("xpt2046: calibration target %d at %v is off the %dx%d screen", i, p, m.Width, m.Height)
		}
		raw[i] = [2]float64{
			float64(touched[i].X-m.X.Min) / float64(m.X.Max-m.X.Min),
			float64(touched[i].Y-m.Y.Min) / float64(m.Y.Max-m.Y.Min),
		}
		u := (float64(p.X) + 0.5) / float64(m.Width)
		v := (float64(p.Y) + 0.5) / float64(m.Height)
		target[i][0], target[i][1] = touch.Unrotate(m.Rotation, u, v)
	}
	c, err := touch.Solve(raw, target)
	if err != nil {
		return touch.Calibration{}, fmt.Errorf("xpt2046: calibration: %w", err)
	}
	return c, nil
}
