package gopanic

import (
	"testing"
	"time"
)

func TestBackground(t *testing.T) {
	go func() { panic("boom in a goroutine") }()
	time.Sleep(time.Second)
}
