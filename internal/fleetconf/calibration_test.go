package fleetconf

import "testing"

// FormatCalibration writes what ParseCalibration reads back, to six digits.
func TestFormatCalibration(t *testing.T) {
	m := []float64{1.0512345678, 0.02, -0.03, -0.0199999, 0.95, 0.08}
	s := FormatCalibration(m)
	if s != "1.05123 0.02 -0.03 -0.0199999 0.95 0.08" {
		t.Fatalf("formatted %q", s)
	}
	back, err := ParseCalibration(s)
	if err != nil || len(back) != 6 {
		t.Fatalf("parsed back %v, %v", back, err)
	}
	for i := range m {
		if d := back[i] - m[i]; d > 1e-5 || d < -1e-5 {
			t.Errorf("number %d: %v, want %v", i+1, back[i], m[i])
		}
	}
}
