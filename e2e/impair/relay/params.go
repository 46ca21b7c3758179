package relay

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Impairment is what one direction of a relay does to the datagrams it carries. The
// zero value forwards every datagram at once, unchanged and in order.
//
// A datagram goes through the steps in this order: Loss may drop it; Dup may add a
// second copy right behind it; each copy waits its turn in the Rate queue (if any),
// then Delay plus a draw of Jitter; Reorder may hold a copy back by Hold so that later
// datagrams overtake it. Without Reorder, datagrams leave in the order they came:
// jitter only ever stretches gaps, it never swaps two datagrams.
type Impairment struct {
	// Loss is the probability, in [0,1], that a datagram is dropped.
	Loss float64 `json:"loss"`
	// Delay is added to every datagram. It is a floor: no datagram leaves sooner.
	Delay time.Duration `json:"delay"`
	// Jitter is an extra delay drawn uniformly from [0, Jitter] for each datagram.
	// Unlike netem's ±jitter it never takes away from Delay.
	Jitter time.Duration `json:"jitter"`
	// Reorder is the probability, in [0,1], that a datagram is held back by Hold on top
	// of its delay, so that datagrams sent after it arrive first.
	Reorder float64 `json:"reorder"`
	// Hold is how long a datagram picked by Reorder is held back. 0 means
	// Delay+4*Jitter, and never less than 10ms.
	Hold time.Duration `json:"hold"`
	// Dup is the probability, in [0,1], that a datagram is sent twice.
	Dup float64 `json:"dup"`
	// Rate caps the direction's throughput in bytes per second; datagrams queue
	// behind each other. 0 is unlimited.
	Rate int64 `json:"rate"`
	// Queue is how many bytes may wait in the Rate queue; a datagram that would
	// make it longer is dropped (counted in DirStats.QueueDropped). 0 means one
	// second's worth at Rate, and never less than 64 KiB.
	Queue int64 `json:"queue"`
}

// Params are a relay's impairments, one for each direction, plus how long a client's
// forwarding socket outlives its last datagram.
type Params struct {
	// AB applies to datagrams from a client to the target.
	AB Impairment `json:"ab"`
	// BA applies to the target's replies on their way back to the client.
	BA Impairment `json:"ba"`
	// Idle is how long a client may be silent (both ways) before its forwarding
	// socket is closed; its next datagram opens a new one. 0 means 2 minutes.
	Idle time.Duration `json:"idle"`
}

// Symmetric returns Params that impair both directions alike.
func Symmetric(i Impairment) Params { return Params{AB: i, BA: i} }

// ParseParams parses a comma-separated list of key=value settings, e.g.
// "loss=0.05,delay=20ms,jitter=2ms". See Params.With for the keys.
func ParseParams(spec string) (Params, error) { return Params{}.With(spec) }

// With returns p changed by the comma-separated key=value settings in spec. A plain
// key sets both directions; the suffix .ab or .ba sets one direction and wins over the
// plain key wherever it stands in the list. The keys:
//
//	loss=P      drop probability: 0.05 or 5%
//	delay=D     fixed delay, a Go duration: 20ms, 1.5s
//	jitter=D    extra delay drawn from [0,D]; order is kept
//	reorder=P   probability of holding a datagram back so later ones overtake it
//	hold=D      how long a reordered datagram is held back (default delay+4*jitter, >=10ms)
//	dup=P       duplication probability
//	rate=B      bytes per second, with an optional k, M or G (x1000): 125k, 1.25M; 0 = unlimited
//	queue=B     bytes allowed to wait for rate before datagrams are dropped
//	idle=D      (no suffix) forget a client silent this long
func (p Params) With(spec string) (Params, error) {
	type kv struct{ key, dir, val string }
	var plain, directed []kv
	for _, field := range strings.Split(spec, ",") {
		field = strings.TrimSpace(field)
		if field == "" {
			continue
		}
		k, v, ok := strings.Cut(field, "=")
		if !ok {
			return p, fmt.Errorf("impairment %q: want key=value", field)
		}
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		key, dir, _ := strings.Cut(k, ".")
		switch dir {
		case "":
			plain = append(plain, kv{key, dir, v})
		case "ab", "ba":
			if key == "idle" {
				return p, fmt.Errorf("impairment %q: idle applies to the whole link, not one direction", field)
			}
			directed = append(directed, kv{key, dir, v})
		default:
			return p, fmt.Errorf("impairment %q: direction must be .ab (client to target) or .ba (target to client)", field)
		}
	}
	for _, s := range append(plain, directed...) {
		if s.key == "idle" {
			d, err := parseDuration(s.key, s.val)
			if err != nil {
				return p, err
			}
			p.Idle = d
			continue
		}
		var targets []*Impairment
		switch s.dir {
		case "ab":
			targets = []*Impairment{&p.AB}
		case "ba":
			targets = []*Impairment{&p.BA}
		default:
			targets = []*Impairment{&p.AB, &p.BA}
		}
		for _, t := range targets {
			if err := t.set(s.key, s.val); err != nil {
				return p, err
			}
		}
	}
	return p, p.Validate()
}

func (i *Impairment) set(key, val string) error {
	var err error
	switch key {
	case "loss":
		i.Loss, err = parseProb(key, val)
	case "reorder":
		i.Reorder, err = parseProb(key, val)
	case "dup":
		i.Dup, err = parseProb(key, val)
	case "delay":
		i.Delay, err = parseDuration(key, val)
	case "jitter":
		i.Jitter, err = parseDuration(key, val)
	case "hold":
		i.Hold, err = parseDuration(key, val)
	case "rate":
		i.Rate, err = parseBytes(key, val)
	case "queue":
		i.Queue, err = parseBytes(key, val)
	default:
		return fmt.Errorf("unknown impairment %q (known: loss, delay, jitter, reorder, hold, dup, rate, queue, idle)", key)
	}
	return err
}

func parseProb(key, val string) (float64, error) {
	pct := strings.HasSuffix(val, "%")
	f, err := strconv.ParseFloat(strings.TrimSuffix(val, "%"), 64)
	if err != nil {
		return 0, fmt.Errorf("%s=%s: want a probability like 0.05 or 5%%", key, val)
	}
	if pct {
		f /= 100
	}
	return f, nil
}

func parseDuration(key, val string) (time.Duration, error) {
	if val == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(val)
	if err != nil {
		return 0, fmt.Errorf("%s=%s: want a duration like 20ms", key, val)
	}
	return d, nil
}

func parseBytes(key, val string) (int64, error) {
	mult := 1.0
	switch {
	case strings.HasSuffix(val, "k"), strings.HasSuffix(val, "K"):
		mult = 1e3
	case strings.HasSuffix(val, "M"):
		mult = 1e6
	case strings.HasSuffix(val, "G"):
		mult = 1e9
	}
	num := val
	if mult != 1 {
		num = val[:len(val)-1]
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || f*mult > math.MaxInt64/2 {
		return 0, fmt.Errorf("%s=%s: want bytes like 125000, 125k or 1.5M", key, val)
	}
	return int64(f * mult), nil
}

// Validate reports the first setting out of range.
func (p Params) Validate() error {
	if err := p.AB.Validate(); err != nil {
		return fmt.Errorf("ab: %w", err)
	}
	if err := p.BA.Validate(); err != nil {
		return fmt.Errorf("ba: %w", err)
	}
	if p.Idle < 0 {
		return fmt.Errorf("idle %v is negative", p.Idle)
	}
	return nil
}

// Validate reports the first setting out of range.
func (i Impairment) Validate() error {
	for _, pr := range []struct {
		name string
		v    float64
	}{{"loss", i.Loss}, {"reorder", i.Reorder}, {"dup", i.Dup}} {
		if !(pr.v >= 0 && pr.v <= 1) {
			return fmt.Errorf("%s %v is not a probability in [0,1]", pr.name, pr.v)
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"delay", i.Delay}, {"jitter", i.Jitter}, {"hold", i.Hold}} {
		if d.v < 0 {
			return fmt.Errorf("%s %v is negative", d.name, d.v)
		}
	}
	if i.Rate < 0 {
		return fmt.Errorf("rate %d is negative", i.Rate)
	}
	if i.Queue < 0 {
		return fmt.Errorf("queue %d is negative", i.Queue)
	}
	return nil
}

// String renders the impairment as the key=value list that Params.With reads,
// leaving out zero settings; "none" if all are zero.
func (i Impairment) String() string {
	var parts []string
	add := func(k string, v any) { parts = append(parts, fmt.Sprintf("%s=%v", k, v)) }
	if i.Loss != 0 {
		add("loss", i.Loss)
	}
	if i.Delay != 0 {
		add("delay", i.Delay)
	}
	if i.Jitter != 0 {
		add("jitter", i.Jitter)
	}
	if i.Reorder != 0 {
		add("reorder", i.Reorder)
	}
	if i.Hold != 0 {
		add("hold", i.Hold)
	}
	if i.Dup != 0 {
		add("dup", i.Dup)
	}
	if i.Rate != 0 {
		add("rate", i.Rate)
	}
	if i.Queue != 0 {
		add("queue", i.Queue)
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}

// String renders both directions, e.g. "ab[loss=0.05] ba[none]".
func (p Params) String() string {
	s := "ab[" + p.AB.String() + "] ba[" + p.BA.String() + "]"
	if p.Idle != 0 {
		s += " idle=" + p.Idle.String()
	}
	return s
}

// ParseLink parses the -link syntax of the impair command:
// LISTEN=TARGET[,key=value...], e.g. "127.0.0.1:7001=127.0.0.1:7000,loss=0.05".
func ParseLink(spec string) (listen, target string, p Params, err error) {
	listen, rest, ok := strings.Cut(spec, "=")
	if !ok || listen == "" {
		return "", "", p, fmt.Errorf("link %q: want LISTEN=TARGET[,key=value...]", spec)
	}
	target, settings, _ := strings.Cut(rest, ",")
	if target == "" {
		return "", "", p, fmt.Errorf("link %q: no TARGET after =", spec)
	}
	p, err = ParseParams(settings)
	if err != nil {
		return "", "", p, fmt.Errorf("link %q: %w", spec, err)
	}
	return listen, target, p, nil
}
