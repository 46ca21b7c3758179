package radio

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// options are a listen entry's query options (?paclen=256&txdelay=300ms),
// each checked against what the entry's kind takes.
type options struct {
	entry string
	q     url.Values
}

// parseOptions refuses an option not in allowed, or one given twice.
func parseOptions(entry string, u *url.URL, allowed ...string) (options, error) {
	q := u.Query()
	for k, v := range q {
		if !slices.Contains(allowed, k) {
			return options{}, fmt.Errorf("radio: %q: unknown option %q (%s)", entry, k, strings.Join(allowed, ", "))
		}
		if len(v) > 1 {
			return options{}, fmt.Errorf("radio: %q: option %q given %d times", entry, k, len(v))
		}
	}
	return options{entry: entry, q: q}, nil
}

// get is the option's value, "" when absent.
func (o options) get(name string) string { return o.q.Get(name) }

// integer is the option as an integer in [lo, hi], def when absent.
func (o options) integer(name string, def, lo, hi int) (int, error) {
	s := o.q.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("radio: %q: %s=%q (want %d to %d)", o.entry, name, s, lo, hi)
	}
	return n, nil
}

// duration is the option as a duration above 0 and at most hi; ok is false
// when absent.
func (o options) duration(name string, hi time.Duration) (d time.Duration, ok bool, err error) {
	s := o.q.Get(name)
	if s == "" {
		return 0, false, nil
	}
	d, err = time.ParseDuration(s)
	if err != nil || d <= 0 || d > hi {
		return 0, false, fmt.Errorf("radio: %q: %s=%q (want a duration up to %v, such as 300ms)", o.entry, name, s, hi)
	}
	return d, true, nil
}

// probability is the option as a number above 0 and at most 1; ok is false
// when absent.
func (o options) probability(name string) (p float64, ok bool, err error) {
	s := o.q.Get(name)
	if s == "" {
		return 0, false, nil
	}
	p, err = strconv.ParseFloat(s, 64)
	if err != nil || p <= 0 || p > 1 {
		return 0, false, fmt.Errorf("radio: %q: %s=%q (want a probability above 0 and at most 1, such as 0.25)", o.entry, name, s)
	}
	return p, true, nil
}
