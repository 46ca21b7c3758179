package skip

import "testing"

func TestRuns(t *testing.T)      {}
func TestNeedsCap(t *testing.T)  { t.Skip("needs CAP_SYS_RESOURCE") }
func TestNeedsRoot(t *testing.T) { t.Skip("needs root") }
func TestParent(t *testing.T) {
	t.Run("child", func(t *testing.T) { t.Skipf("child skipped: %d", 1) })
}
