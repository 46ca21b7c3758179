package ratelog

import (
	"testing"
	"time"
)

func TestAllow(t *testing.T) {
	var l Limiter
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	if n, ok := l.Allow(t0); !ok || n != 0 {
		t.Fatalf("first line: %d %v", n, ok)
	}
	for i := range 5 {
		if _, ok := l.Allow(t0.Add(time.Duration(i+1) * time.Second)); ok {
			t.Fatalf("line %d within the interval let through", i)
		}
	}
	if n, ok := l.Allow(t0.Add(Interval)); !ok || n != 5 {
		t.Fatalf("line after the interval: skipped %d, ok %v; want 5, true", n, ok)
	}
}
