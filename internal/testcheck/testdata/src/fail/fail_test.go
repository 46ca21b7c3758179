package fail

import "testing"

func TestGood(t *testing.T) { t.Log("fine") }
func TestBad(t *testing.T) {
	t.Log("context line before the failure")
	t.Errorf("got %d, want %d", 1, 2)
}
func TestSub(t *testing.T) {
	t.Run("ok", func(t *testing.T) {})
	t.Run("broken", func(t *testing.T) { t.Fatal("sub broke") })
}
