package browser

import (
	"strings"
	"testing"
	"time"
)

func TestChromiumEnvOverride(t *testing.T) {
	t.Setenv("SKYFLEET_CHROMIUM", "/nonexistent/chromium")
	_, err := Chromium()
	if err == nil || !strings.Contains(err.Error(), "apt-get install chromium") {
		t.Fatalf("Chromium() error = %v, want one with the install hint", err)
	}
}

func TestOptionsDefaults(t *testing.T) {
	o := Options{}.withDefaults()
	if o.Width != 1400 || o.Height != 1000 || o.Wait != 8*time.Second || o.Timeout != time.Minute {
		t.Errorf("defaults = %+v", o)
	}
	o = Options{Width: 800, Wait: time.Second}.withDefaults()
	if o.Width != 800 || o.Height != 1000 || o.Wait != time.Second {
		t.Errorf("partial defaults = %+v", o)
	}
}

func TestTail(t *testing.T) {
	if got := tail("  short\n", 100); got != "short" {
		t.Errorf("tail(short) = %q", got)
	}
	if got := tail("line one\nline two\nline three", 14); got != "…line three" {
		t.Errorf("tail = %q", got)
	}
}
