package pass

import "testing"

func TestOne(t *testing.T) { t.Log("hello from one") }
func TestTwo(t *testing.T) {
	t.Run("a", func(t *testing.T) {})
	t.Run("b", func(t *testing.T) {})
}
