package relay

import (
	"strings"
	"testing"
	"time"
)

func TestParseParams(t *testing.T) {
	p, err := ParseParams("loss=5%, delay=20ms,jitter=2ms,reorder=0.01,dup=0,rate=1.5M,queue=64k,delay.ba=1s,hold.ab=40ms,idle=30s")
	if err != nil {
		t.Fatal(err)
	}
	want := Params{
		AB:   Impairment{Loss: 0.05, Delay: 20 * time.Millisecond, Jitter: 2 * time.Millisecond, Reorder: 0.01, Hold: 40 * time.Millisecond, Rate: 1_500_000, Queue: 64_000},
		BA:   Impairment{Loss: 0.05, Delay: time.Second, Jitter: 2 * time.Millisecond, Reorder: 0.01, Rate: 1_500_000, Queue: 64_000},
		Idle: 30 * time.Second,
	}
	if p != want {
		t.Errorf("got  %v\nwant %v", p, want)
	}
	// A direction wins over the plain key wherever it stands.
	p, err = ParseParams("loss.ba=0.2,loss=0.1")
	if err != nil || p.AB.Loss != 0.1 || p.BA.Loss != 0.2 {
		t.Errorf("loss.ba before loss: %v, %v", p, err)
	}
	// With changes only what it names.
	q, err := p.With("delay=5ms")
	if err != nil || q.AB.Loss != 0.1 || q.BA.Loss != 0.2 || q.AB.Delay != 5*time.Millisecond {
		t.Errorf("With: %v, %v", q, err)
	}
	// String round-trips through With.
	for _, dir := range []Impairment{want.AB, want.BA} {
		back, err := ParseParams(dir.String())
		if err != nil || back.AB != dir {
			t.Errorf("%q parsed back as %v, %v", dir.String(), back.AB, err)
		}
	}
	if s := (Params{}).String(); s != "ab[none] ba[none]" {
		t.Errorf("zero Params render as %q", s)
	}
}

func TestParseParamsErrors(t *testing.T) {
	for spec, wantErr := range map[string]string{
		"loss":          "key=value",
		"loss=2":        "probability",
		"loss=-0.1":     "probability",
		"loss=NaN":      "probability",
		"loss=x":        "probability",
		"delay=20":      "duration",
		"delay=-1ms":    "negative",
		"rate=fast":     "bytes",
		"loss.up=0.1":   "direction",
		"idle.ab=1s":    "whole link",
		"latency=10ms":  "unknown",
		"jitter=banana": "duration",
	} {
		_, err := ParseParams(spec)
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("ParseParams(%q) = %v, want an error about %q", spec, err, wantErr)
		}
	}
}

func TestParseLink(t *testing.T) {
	l, tg, p, err := ParseLink("127.0.0.1:7001=127.0.0.1:7000,loss=0.05,delay=20ms")
	if err != nil || l != "127.0.0.1:7001" || tg != "127.0.0.1:7000" || p.AB.Loss != 0.05 || p.BA.Delay != 20*time.Millisecond {
		t.Errorf("got %q %q %v %v", l, tg, p, err)
	}
	l, tg, p, err = ParseLink("[::1]:7001=[::1]:7000")
	if err != nil || l != "[::1]:7001" || tg != "[::1]:7000" || p != (Params{}) {
		t.Errorf("IPv6, no settings: %q %q %v %v", l, tg, p, err)
	}
	for _, bad := range []string{"", "127.0.0.1:7001", "=127.0.0.1:7000", "127.0.0.1:7001=", "127.0.0.1:7001=,loss=1", "a=b,loss=7"} {
		if _, _, _, err := ParseLink(bad); err == nil {
			t.Errorf("ParseLink(%q) accepted", bad)
		}
	}
}
