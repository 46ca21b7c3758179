package touch

import (
	"errors"
	"math"
	"testing"
)

// A 480x320 panel (raw 0..4095 on both axes) turned each way: the raw
// corners land on the screen corners the rotation's definition puts them
// on. At 90 degrees the picture's top-left is the panel's top-right, so a
// touch at the panel's top-right (raw max X, min Y) is the picture's (0, 0).
func TestMapRotations(t *testing.T) {
	raw := Axis{0, 4095}
	type pt struct{ x, y int }
	for _, c := range []struct {
		rot  Rotation
		w, h int
		// where the panel's top-left, top-right and bottom-left corners land
		tl, tr, bl pt
	}{
		{Rotate0, 480, 320, pt{0, 0}, pt{479, 0}, pt{0, 319}},
		{Rotate90, 320, 480, pt{0, 479}, pt{0, 0}, pt{319, 479}},
		{Rotate180, 480, 320, pt{479, 319}, pt{0, 319}, pt{479, 0}},
		{Rotate270, 320, 480, pt{319, 0}, pt{319, 479}, pt{0, 0}},
	} {
		m := Mapping{X: raw, Y: raw, Width: c.w, Height: c.h, Rotation: c.rot}
		if err := m.Validate(); err != nil {
			t.Fatal(err)
		}
		for _, k := range []struct {
			name   string
			rx, ry int
			want   pt
		}{{"top-left", 0, 0, c.tl}, {"top-right", 4095, 0, c.tr}, {"bottom-left", 0, 4095, c.bl}} {
			x, y := m.Map(k.rx, k.ry)
			if (pt{x, y}) != k.want {
				t.Errorf("rotation %d: the panel's %s maps to (%d,%d), want %v", c.rot, k.name, x, y, k.want)
			}
		}
	}
}

// Raw values beyond the axis range, as resistive panels give at the edges,
// are clamped to the screen.
func TestMapClamps(t *testing.T) {
	m := Mapping{X: Axis{200, 3900}, Y: Axis{300, 3800}, Width: 320, Height: 240}
	for _, c := range [][2]int{{0, 0}, {5000, 5000}, {-100, 4000}} {
		x, y := m.Map(c[0], c[1])
		if x < 0 || x >= 320 || y < 0 || y >= 240 {
			t.Errorf("raw %v maps off screen to (%d,%d)", c, x, y)
		}
	}
}

// Solve recovers a calibration from three touches made through it: a panel
// whose X is mirrored and whose Y is squeezed and offset, touched at three
// targets, gives back the matrix that undoes it; three targets on one line
// are refused.
func TestSolve(t *testing.T) {
	// The panel reports target (X, Y) at raw (1-X, 0.8*Y+0.1); the
	// calibration must map raw back to target: X = 1-x, Y = (y-0.1)/0.8.
	want := Calibration{-1, 0, 1, 0, 1.25, -0.125}
	targets := [3][2]float64{{0.1, 0.1}, {0.9, 0.5}, {0.5, 0.9}}
	var touched [3][2]float64
	for i, p := range targets {
		touched[i] = [2]float64{1 - p[0], 0.8*p[1] + 0.1}
	}
	got, err := Solve(touched, targets)
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if math.Abs(got[i]-want[i]) > 1e-9 {
			t.Fatalf("Solve = %v, want %v", got, want)
		}
	}
	line := [3][2]float64{{0.1, 0.1}, {0.5, 0.5}, {0.9, 0.9}}
	if _, err := Solve(line, targets); !errors.Is(err, ErrCalibration) {
		t.Errorf("touches on one line: err = %v", err)
	}
	if _, err := Solve(touched, line); !errors.Is(err, ErrCalibration) {
		t.Errorf("targets on one line: err = %v", err)
	}
}

func TestValidate(t *testing.T) {
	ok := Mapping{X: Axis{0, 10}, Y: Axis{0, 10}, Width: 1, Height: 1}
	for name, m := range map[string]Mapping{
		"empty axis":    {X: Axis{5, 5}, Y: Axis{0, 10}, Width: 1, Height: 1},
		"no pixels":     {X: Axis{0, 10}, Y: Axis{0, 10}},
		"rotation 45":   func() Mapping { m := ok; m.Rotation = 45; return m }(),
		"flat matrix":   func() Mapping { m := ok; m.Calibration = Calibration{1, 1, 0, 1, 1, 0}; return m }(),
		"NaN in matrix": func() Mapping { m := ok; m.Calibration = Calibration{math.NaN(), 0, 0, 0, 1, 0}; return m }(),
	} {
		if m.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := ok.Validate(); err != nil {
		t.Errorf("a good mapping: %v", err)
	}
}
