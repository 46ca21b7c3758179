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

// A calibration screen's arithmetic, at every rotation: a panel whose raw
// position maps to the screen through a known skew (truth) is touched at
// three targets while the driver runs with the identity calibration;
// SolveScreen recovers truth to within what whole pixels allow, and Remap
// then moves each touch, and a fourth one, onto its target.
func TestSolveScreenAndRemap(t *testing.T) {
	truth := Calibration{1.04, 0.03, -0.02, -0.025, 0.96, 0.03}
	for _, r := range []Rotation{Rotate0, Rotate90, Rotate180, Rotate270} {
		m := Mapping{X: Axis{0, 4095}, Y: Axis{0, 4095}, Width: 480, Height: 320, Rotation: r}
		if r == Rotate90 || r == Rotate270 {
			m.Width, m.Height = 320, 480
		}
		// rawAt is the raw position of a touch at the UI's pixel p:
		// un-turn it, invert truth.
		rawAt := func(p [2]int) (int, int) {
			u, v := Unrotate(r, (float64(p[0])+0.5)/float64(m.Width), (float64(p[1])+0.5)/float64(m.Height))
			a, b, c, d, e, f := truth[0], truth[1], truth[2], truth[3], truth[4], truth[5]
			det := a*e - b*d
			x := (e*(u-c) - b*(v-f)) / det
			y := (a*(v-f) - d*(u-c)) / det
			return int(math.Round(x * 4095)), int(math.Round(y * 4095))
		}
		w, h := m.Width, m.Height
		targets := [4][2]int{{w / 10, h / 10}, {w * 9 / 10, h / 2}, {w / 2, h * 9 / 10}, {w / 2, h / 2}}
		var touched [4][2]int
		for i, p := range targets {
			x, y := m.Map(rawAt(p))
			touched[i] = [2]int{x, y}
		}
		got, err := SolveScreen(m, [3][2]int(touched[:3]), [3][2]int(targets[:3]))
		if err != nil {
			t.Fatalf("rotation %d: %v", r, err)
		}
		for i := range got {
			if math.Abs(got[i]-truth[i]) > 0.01 {
				t.Errorf("rotation %d: calibration %v, want %v", r, got, truth)
				break
			}
		}
		m.Calibration = got
		for i, p := range touched {
			x, y := m.Remap(p[0], p[1])
			if abs(x-targets[i][0]) > 2 || abs(y-targets[i][1]) > 2 {
				t.Errorf("rotation %d: touch %d at %v remapped to (%d, %d), target %v", r, i, p, x, y, targets[i])
			}
		}
		// The identity calibration remaps nothing.
		if x, y := (Mapping{Width: w, Height: h, Rotation: r}).Remap(7, 9); x != 7 || y != 9 {
			t.Errorf("rotation %d: identity remapped (7, 9) to (%d, %d)", r, x, y)
		}
	}
	if _, err := SolveScreen(Mapping{Width: 480, Height: 320}, [3][2]int{{10, 10}, {20, 20}, {30, 30}}, [3][2]int{{48, 32}, {432, 160}, {240, 288}}); !errors.Is(err, ErrCalibration) {
		t.Errorf("touches on one line: %v", err)
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
