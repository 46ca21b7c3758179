package builderr

import "testing"

func TestF(t *testing.T) { F() }
