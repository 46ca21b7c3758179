package walltime

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The tests run in a fake world: the board's clock starts at boot (a few
// minutes into 1970, as on a Pi without a real-time clock) while the real time
// is realAtBoot; both advance only when the test says so.
var (
	boot = time.Unix(1000, 0).UTC()
	t0   = time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
)

type world struct {
	mu         sync.Mutex
	local      time.Time // what the board's clock (Options.Now) reads
	realAtBoot time.Time
}

func newWorld(realAtBoot time.Time) *world { return &world{local: boot, realAtBoot: realAtBoot} }

func (w *world) Now() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.local
}

func (w *world) Advance(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.local = w.local.Add(d)
}

// Real is the real time now.
func (w *world) Real() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.realAtBoot.Add(w.local.Sub(boot))
}

// ntpAnswer is a fake Options.Query answering the real time with bound unc.
func (w *world) ntpAnswer(unc time.Duration) func(string) (Sample, error) {
	return func(string) (Sample, error) { return Sample{Time: w.Real(), Uncertainty: unc}, nil }
}

type logs struct {
	mu    sync.Mutex
	lines []string
}

func (l *logs) Logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

// With returns the lines containing s.
func (l *logs) With(s string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return out
}

// open opens a Clock in dir on w's clock, logging into the returned logs.
func open(t *testing.T, dir string, w *world, opts Options) (*Clock, *logs) {
	t.Helper()
	l := &logs{}
	opts.Now, opts.Logf = w.Now, l.Logf
	c, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c, l
}

func wantReading(t *testing.T, got Reading, want Reading) {
	t.Helper()
	if !got.Time.Equal(want.Time) || got.Known != want.Known || got.Source != want.Source || got.Uncertainty != want.Uncertainty {
		t.Fatalf("reading %+v, want %+v", got, want)
	}
}

func TestUnknownAtFirst(t *testing.T) {
	w := newWorld(t0)
	c, _ := open(t, t.TempDir(), w, Options{})
	// Unknown: the system clock's own (1970) reading, no bound.
	wantReading(t, c.Now(), Reading{Time: boot, Source: SourceUnknown})
	if _, ok := c.WallOf(w.Now()); ok {
		t.Fatal("WallOf converted an instant while the time is unknown")
	}
	st := c.Status()
	if st.Time != "" || st.Known || st.Source != "unknown" || st.UncertaintyMS != -1 {
		t.Fatalf("status %+v", st)
	}
}

func TestNTPFixAndGrowth(t *testing.T) {
	w := newWorld(t0)
	event := w.Now() // a local instant taken while the time is unknown
	w.Advance(30 * time.Second)
	c, _ := open(t, t.TempDir(), w, Options{Servers: []string{"a"}, Query: w.ntpAnswer(20 * time.Millisecond)})
	c.poll(context.Background())

	fix := t0.Add(30 * time.Second)
	wantReading(t, c.Now(), Reading{Time: fix, Known: true, Source: SourceNTP, Uncertainty: 20 * time.Millisecond})
	// 1000 s later: the time followed the local clock, the bound grew by 100 ppm.
	w.Advance(1000 * time.Second)
	wantReading(t, c.Now(), Reading{Time: fix.Add(1000 * time.Second), Known: true, Source: SourceNTP, Uncertainty: 120 * time.Millisecond})
	// An instant taken before the fix converts to the wall time it was.
	if got, ok := c.WallOf(event); !ok || !got.Equal(t0) {
		t.Fatalf("WallOf(event) = %v, %v; want %v", got, ok, t0)
	}
	if s := c.Stats(); s.NTPOK != 1 || s.NTPFailed != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// A Sample's At is the instant its Time held: a slow query does not shift it.
func TestSampleAt(t *testing.T) {
	w := newWorld(t0)
	c, _ := open(t, t.TempDir(), w, Options{Servers: []string{"a"}, Query: func(string) (Sample, error) {
		at := w.Now()
		s := Sample{Time: w.Real(), At: at, Uncertainty: time.Millisecond}
		w.Advance(3 * time.Second) // the query returns 3 s after its answer held
		return s, nil
	}})
	c.poll(context.Background())
	got := c.Now()
	if !got.Time.Equal(w.Real()) || got.Uncertainty != time.Millisecond+300*time.Microsecond {
		t.Fatalf("reading %+v, want %v ±1.3ms", got, w.Real())
	}
}

func TestRankRules(t *testing.T) {
	type step struct {
		advance time.Duration
		source  string // "ntp" is a poll answering with unc; others Observe
		offset  time.Duration
		unc     time.Duration
		taken   bool
		want    string // the source after the step
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"peer when unknown, master over peer, ntp over master", []step{
			{0, "peer", 0, time.Second, true, "peer"},
			{0, "master", 0, 5 * time.Second, true, "master"},
			{0, "peer", 0, time.Millisecond, false, "master"},
			{0, "ntp", 0, 50 * time.Millisecond, true, "ntp"},
			{0, "master", 0, time.Microsecond, false, "ntp"},
			{0, "peer", 0, time.Microsecond, false, "ntp"},
		}},
		{"same rank replaces only with a smaller bound than the grown one", []step{
			{0, "master", 0, 5 * time.Second, true, "master"},
			{100 * time.Second, "master", time.Second, 6 * time.Second, false, "master"},
			// After 100 s the bound is 5.01 s; 5 s is smaller.
			{0, "master", time.Second, 5 * time.Second, true, "master"},
			{0, "master", 0, 5 * time.Second, false, "master"},
		}},
		{"peer replaces peer with a smaller bound", []step{
			{0, "peer", 0, 2 * time.Second, true, "peer"},
			{0, "peer", 0, 2 * time.Second, false, "peer"},
			{0, "peer", 0, time.Second, true, "peer"},
		}},
		{"unknown sources and negative bounds are ignored", []step{
			{0, "ntp-by-hand", 0, time.Second, false, "unknown"},
			{0, "master", 0, -time.Second, false, "unknown"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t0)
			var unc time.Duration
			var off time.Duration
			c, _ := open(t, t.TempDir(), w, Options{Servers: []string{"a"}, Query: func(string) (Sample, error) {
				return Sample{Time: w.Real().Add(off), Uncertainty: unc}, nil
			}})
			var taken, ignored uint64
			for i, s := range tc.steps {
				w.Advance(s.advance)
				before := c.Now()
				var ok bool
				if s.source == "ntp" {
					unc, off = s.unc, s.offset
					okBefore := c.Stats().NTPOK
					c.poll(context.Background())
					if c.Stats().NTPOK != okBefore+1 {
						t.Fatalf("step %d: the poll did not count", i)
					}
					ok = c.Now().Source == "ntp" && c.Now().Uncertainty == s.unc
				} else {
					ok = c.Observe(s.source, w.Real().Add(s.offset), s.unc)
					if ok {
						taken++
					} else {
						ignored++
					}
				}
				got := c.Now()
				if ok != s.taken || got.Source != s.want {
					t.Fatalf("step %d (%+v): taken %v, source %q; want %v, %q", i, s, ok, got.Source, s.taken, s.want)
				}
				if s.taken {
					if want := w.Real().Add(s.offset); !got.Time.Equal(want) || got.Uncertainty != s.unc {
						t.Fatalf("step %d: reading %+v, want %v ±%v", i, got, want, s.unc)
					}
				} else if !got.Time.Equal(before.Time) || got.Uncertainty != before.Uncertainty {
					t.Fatalf("step %d: an ignored time changed the reading from %+v to %+v", i, before, got)
				}
			}
			if s := c.Stats(); s.ObservationsTaken != taken || s.ObservationsIgnored != ignored || s.RefusedBackwards != 0 {
				t.Fatalf("stats %+v; want %d taken, %d ignored", s, taken, ignored)
			}
		})
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFloorAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	w := newWorld(t0)
	c, _ := open(t, dir, w, Options{Servers: []string{"a"}, Query: w.ntpAnswer(300 * time.Millisecond)})
	c.poll(context.Background())
	w.Advance(10 * time.Minute)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// The floor is the known time less its bound (0.3 s + 60 ms of drift),
	// rounded down to the second.
	floor := t0.Add(10*time.Minute - time.Second)
	if got, want := readFile(t, filepath.Join(dir, "walltime")), strconv.FormatInt(floor.Unix(), 10)+"\n"; got != want {
		t.Fatalf("floor file %q, want %q", got, want)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	// The board restarts an hour later, believing it is 1970 again.
	w = newWorld(t0.Add(time.Hour))
	c, l := open(t, dir, w, Options{Servers: []string{"a"}, Query: func(string) (Sample, error) {
		return Sample{Time: floor.Add(-time.Minute), Uncertainty: time.Millisecond}, nil
	}})
	wantReading(t, c.Now(), Reading{Time: floor, Source: SourcePersisted})
	w.Advance(5 * time.Second)
	if r := c.Now(); r.Known || r.Source != "persisted" || r.Time.Before(floor) || !r.Time.Equal(floor.Add(5*time.Second)) {
		t.Fatalf("after restart: %+v, want unknown, persisted, %v", r, floor.Add(5*time.Second))
	}
	if st := c.Status(); st.Time != "" || st.UncertaintyMS != -1 || st.Floor != floor.Format(time.RFC3339) {
		t.Fatalf("status %+v", st)
	}

	// Sources below the floor are refused, counted and logged once.
	c.poll(context.Background())
	if c.Observe("master", floor.Add(-time.Second), time.Millisecond) {
		t.Fatal("a master time below the floor was taken")
	}
	if c.Observe("master", floor.Add(-2*time.Second), time.Millisecond) {
		t.Fatal("a master time below the floor was taken")
	}
	if r := c.Now(); r.Known || r.Source != "persisted" {
		t.Fatalf("after refusals: %+v", r)
	}
	s := c.Stats()
	if s.RefusedBackwards != 3 || s.NTPOK != 1 || s.ObservationsTaken != 0 || s.ObservationsIgnored != 0 {
		t.Fatalf("stats %+v", s)
	}
	if n := len(l.With("refusing master")); n != 1 {
		t.Fatalf("%d log lines for the refused master times, want 1: %q", n, l.lines)
	}
	if n := len(l.With("refusing ntp")); n != 1 {
		t.Fatalf("%d log lines for the refused NTP time, want 1: %q", n, l.lines)
	}
	// The real time is taken.
	if !c.Observe("master", w.Real(), time.Second) {
		t.Fatal("the master's real time was refused")
	}
	wantReading(t, c.Now(), Reading{Time: w.Real(), Known: true, Source: SourceMaster, Uncertainty: time.Second})
}

// A time before 2026 is refused even without a floor: it is a broken source.
func TestBefore2026Refused(t *testing.T) {
	w := newWorld(t0)
	c, _ := open(t, t.TempDir(), w, Options{})
	if c.Observe("master", boot, 0) {
		t.Fatal("a 1970 time was taken")
	}
	if s := c.Stats(); s.RefusedBackwards != 1 || c.Now().Known {
		t.Fatalf("stats %+v, reading %+v", s, c.Now())
	}
}

func TestPersistAtMostOnceAMinute(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "walltime")
	w := newWorld(t0)
	c, _ := open(t, dir, w, Options{})
	if err := c.persist(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("a floor was written while the time is unknown (%v)", err)
	}
	c.Observe("master", t0, 0)
	if err := c.persist(); err != nil {
		t.Fatal(err)
	}
	first := readFile(t, path)
	if first != strconv.FormatInt(t0.Unix(), 10)+"\n" {
		t.Fatalf("floor %q", first)
	}
	w.Advance(59 * time.Second)
	c.persist()
	if got := readFile(t, path); got != first {
		t.Fatalf("floor rewritten after 59 s: %q", got)
	}
	w.Advance(time.Second)
	c.persist()
	// 60 s on, less 6 ms of drift: 59 s past t0.
	if got, want := readFile(t, path), strconv.FormatInt(t0.Unix()+59, 10)+"\n"; got != want {
		t.Fatalf("floor %q after a minute, want %q", got, want)
	}
	// Close writes whatever the age of the last write.
	w.Advance(10 * time.Second)
	c.Close()
	if got, want := readFile(t, path), strconv.FormatInt(t0.Unix()+69, 10)+"\n"; got != want {
		t.Fatalf("floor %q after Close, want %q", got, want)
	}
	// Nothing is written after Close.
	w.Advance(time.Hour)
	c.persist()
	if got, want := readFile(t, path), strconv.FormatInt(t0.Unix()+69, 10)+"\n"; got != want {
		t.Fatalf("floor %q written after Close", got)
	}
}

func TestCorruptFloor(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content string
	}{
		{"garbage", "hello, world\n"},
		{"empty", ""},
		{"huge", "99999999999999999999999\n"},
		{"beyond 2100", "5000000000\n"},
		{"negative", "-1782907200\n"},
		{"1970", "1000\n"},
		{"signed", "+1782907200\n"},
		{"leading zero", "01782907200\n"},
		{"two lines", "1782907200\n1782907200\n"},
		{"binary", "\x00\xff\x17"},
		{"long", strings.Repeat("1", 100)},
		{"directory", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "walltime")
			var err error
			if tc.name == "directory" {
				err = os.Mkdir(path, 0o700)
			} else {
				err = os.WriteFile(path, []byte(tc.content), 0o600)
			}
			if err != nil {
				t.Fatal(err)
			}
			w := newWorld(t0)
			c, l := open(t, dir, w, Options{})
			wantReading(t, c.Now(), Reading{Time: boot, Source: SourceUnknown})
			aside := filepath.Join(dir, "walltime.corrupt-"+strconv.FormatInt(boot.Unix(), 10))
			s := c.Stats()
			if s.FloorError == "" || !strings.Contains(s.FloorError, filepath.Base(aside)) || s.Floor != "" {
				t.Fatalf("stats %+v", s)
			}
			if len(l.With("unusable")) != 1 {
				t.Fatalf("not logged: %q", l.lines)
			}
			if _, err := os.Lstat(path); !os.IsNotExist(err) {
				t.Fatalf("the corrupt floor is still in place (%v)", err)
			}
			if tc.name != "directory" {
				if got := readFile(t, aside); got != tc.content {
					t.Fatalf("moved aside %q, want %q", got, tc.content)
				}
			} else if fi, err := os.Stat(aside); err != nil || !fi.IsDir() {
				t.Fatalf("directory not moved aside: %v", err)
			}
			// The clock works on: a fix, a new floor.
			c.Observe("master", w.Real(), 0)
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			if got, want := readFile(t, path), strconv.FormatInt(t0.Unix(), 10)+"\n"; got != want {
				t.Fatalf("new floor %q, want %q", got, want)
			}
		})
	}
}

// A second corruption in the same second keeps the first one's evidence.
func TestCorruptFloorTwiceInOneSecond(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "walltime")
	for i, content := range []string{"first", "second"} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		open(t, dir, newWorld(t0), Options{})
		name := "walltime.corrupt-1000"
		if i == 1 {
			name += "-1"
		}
		if got := readFile(t, filepath.Join(dir, name)); got != content {
			t.Fatalf("%s holds %q, want %q", name, got, content)
		}
	}
}

func TestTrustSystem(t *testing.T) {
	t.Run("a real clock is known from the start", func(t *testing.T) {
		w := newWorld(t0)
		w.local = t0 // the host's clock is right
		c, _ := open(t, t.TempDir(), w, Options{TrustSystem: true})
		wantReading(t, c.Now(), Reading{Time: t0, Known: true, Source: SourceSystem, Uncertainty: SystemUncertainty})
		// A master does not override it, NTP does.
		if c.Observe("master", t0.Add(time.Minute), time.Millisecond) {
			t.Fatal("a master time replaced the trusted system clock")
		}
		c.servers, c.query = []string{"a"}, func(string) (Sample, error) { return Sample{Time: t0.Add(time.Second)}, nil }
		c.poll(context.Background())
		if r := c.Now(); r.Source != "ntp" || !r.Time.Equal(t0.Add(time.Second)) {
			t.Fatalf("after NTP: %+v", r)
		}
	})
	t.Run("a clock in 1970 is refused", func(t *testing.T) {
		c, _ := open(t, t.TempDir(), newWorld(t0), Options{TrustSystem: true})
		if r := c.Now(); r.Known || r.Source != "unknown" || c.Stats().RefusedBackwards != 1 {
			t.Fatalf("reading %+v, stats %+v", r, c.Stats())
		}
	})
	t.Run("a clock below the floor is refused", func(t *testing.T) {
		dir := t.TempDir()
		floor := t0.Add(time.Hour)
		if err := os.WriteFile(filepath.Join(dir, "walltime"), formatFloor(floor), 0o600); err != nil {
			t.Fatal(err)
		}
		w := newWorld(t0)
		w.local = t0
		c, _ := open(t, dir, w, Options{TrustSystem: true})
		wantReading(t, c.Now(), Reading{Time: floor, Source: SourcePersisted})
		if c.Stats().RefusedBackwards != 1 {
			t.Fatalf("stats %+v", c.Stats())
		}
	})
}

func TestStatusJSON(t *testing.T) {
	w := newWorld(t0)
	c, _ := open(t, t.TempDir(), w, Options{})
	c.Observe("master", t0.Add(1500*time.Millisecond), 2*time.Millisecond+time.Microsecond)
	b, err := json.Marshal(c.Status())
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"time": "2026-07-01T12:00:01.500Z", "known": true, "source": "master", "uncertainty_ms": 3.0,
		"ntp_ok": 0.0, "ntp_failed": 0.0, "refused_backwards": 0.0, "observations_taken": 1.0,
		"observations_ignored": 0.0, "floor": "", "floor_error": "", "floor_write_error": "",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("status JSON %s\nwant %v", b, want)
	}
	if _, err := time.Parse(time.RFC3339, got["time"].(string)); err != nil {
		t.Fatalf("time is not RFC 3339: %v", err)
	}
}

// Run's schedule on the fake clock: a poll at once, every 64 s while NTP has
// not set the time, every 17 min once it has; a failing server is logged once
// an hour; the floor is written as time goes on.
func TestRunSchedule(t *testing.T) {
	dir := t.TempDir()
	w := newWorld(t0)
	var polls []time.Duration // local time since boot of each query
	c, l := open(t, dir, w, Options{Servers: []string{"down", "up"}, Query: func(server string) (Sample, error) {
		since := w.Now().Sub(boot)
		if server == "down" {
			return Sample{}, fmt.Errorf("no route to host")
		}
		polls = append(polls, since)
		if since < 2*time.Hour {
			return Sample{}, fmt.Errorf("timeout")
		}
		return Sample{Time: w.Real(), Uncertainty: 10 * time.Millisecond}, nil
	}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var floors []string
	c.sleep = func(_ context.Context, d time.Duration) bool {
		if b, err := os.ReadFile(filepath.Join(dir, "walltime")); err == nil {
			floors = append(floors, string(b))
		}
		if w.Now().Sub(boot) >= 3*time.Hour {
			cancel()
			return false
		}
		w.Advance(d)
		return true
	}
	c.Run(ctx)

	// Unknown until 2 h: every 64 s; the poll at 7232 s (113 × 64) succeeds.
	var want []time.Duration
	for s := time.Duration(0); s < 2*time.Hour; s += PollUnknown {
		want = append(want, s)
	}
	fix := want[len(want)-1] + PollUnknown
	for s := fix; s <= 3*time.Hour; s += PollKnown {
		want = append(want, s)
	}
	if fmt.Sprint(polls) != fmt.Sprint(want) {
		t.Fatalf("polls at %v\nwant %v", polls, want)
	}
	s := c.Stats()
	if s.NTPOK != uint64(len(want)-113) || s.NTPFailed != uint64(113+len(want)) {
		t.Fatalf("stats %+v for %d rounds", s, len(want))
	}
	// Each failing server: a line at 0 s, one at the first poll an hour on
	// (3648 s), one at the first an hour after that (8252 s, the polls being
	// 17 min apart by then); "up" answers from 7232 s.
	if got := l.With("server down:"); len(got) != 3 || !strings.Contains(got[1], "56 more like it") || !strings.Contains(got[2], "56 more like it") {
		t.Fatalf("lines for the server that is down: %q", got)
	}
	if got := l.With("server up:"); len(got) != 2 || !strings.Contains(got[1], "56 more like it") {
		t.Fatalf("lines for the server that came up: %q", got)
	}
	// The first floor once NTP set the time, a later one an hour on.
	if len(floors) < 2 {
		t.Fatalf("floors %q", floors)
	}
	first, _ := parseFloor([]byte(floors[0]))
	last, _ := parseFloor([]byte(floors[len(floors)-1]))
	if want := t0.Add(fix - time.Second); !first.Equal(want) {
		t.Fatalf("first floor %v, want %v", first, want)
	}
	if last.Sub(first) < 50*time.Minute {
		t.Fatalf("floor did not advance: %v then %v", first, last)
	}
}

// Run without servers still writes the floor as the time goes on.
func TestRunWithoutServers(t *testing.T) {
	dir := t.TempDir()
	w := newWorld(t0)
	c, _ := open(t, dir, w, Options{})
	c.Observe("master", t0, 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var waits []time.Duration
	c.sleep = func(_ context.Context, d time.Duration) bool {
		waits = append(waits, d)
		if len(waits) == 3 {
			cancel()
			return false
		}
		w.Advance(d)
		return true
	}
	c.Run(ctx)
	if fmt.Sprint(waits) != fmt.Sprint([]time.Duration{time.Minute, time.Minute, time.Minute}) {
		t.Fatalf("waits %v", waits)
	}
	// At 120 s, less 12 ms of drift.
	if got, want := readFile(t, filepath.Join(dir, "walltime")), strconv.FormatInt(t0.Unix()+119, 10)+"\n"; got != want {
		t.Fatalf("floor %q, want %q", got, want)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open("", Options{}); err == nil {
		t.Error("Open with no directory succeeded")
	}
	if _, err := Open(t.TempDir(), Options{Servers: []string{"pool.ntp.org", " "}}); err == nil {
		t.Error("Open with an empty server succeeded")
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(filepath.Join(file, "sub"), Options{}); err == nil {
		t.Error("Open under a file succeeded")
	}
	// A missing directory is created.
	dir := filepath.Join(t.TempDir(), "a", "b")
	if _, err := Open(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("directory not created: %v", err)
	}
}

// A floor that cannot be written is reported in Stats and by Close, and
// clears once a write succeeds.
func TestFloorWriteError(t *testing.T) {
	dir := t.TempDir()
	w := newWorld(t0)
	c, _ := open(t, dir, w, Options{})
	c.Observe("master", t0, 0)
	// A directory in the file's place makes the rename fail, even as root.
	if err := os.Mkdir(filepath.Join(dir, "walltime"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "walltime", "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.persist(); err == nil {
		t.Fatal("writing over a directory succeeded")
	}
	if s := c.Stats(); s.FloorWriteError == "" || s.Floor != "" {
		t.Fatalf("stats %+v", s)
	}
	if err := os.RemoveAll(filepath.Join(dir, "walltime")); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if s := c.Stats(); s.FloorWriteError != "" || s.Floor != t0.Format(time.RFC3339) {
		t.Fatalf("stats after a good write %+v", s)
	}
}

// Readings, observations, polls and writes from many goroutines (run with
// -race).
func TestConcurrent(t *testing.T) {
	w := newWorld(t0)
	c, _ := open(t, t.TempDir(), w, Options{Servers: []string{"a"}, Query: w.ntpAnswer(time.Millisecond)})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 100 {
				switch (i + j) % 5 {
				case 0:
					c.Observe("peer", w.Real(), time.Second)
				case 1:
					c.poll(context.Background())
				case 2:
					c.Status()
				case 3:
					c.persist()
				default:
					w.Advance(time.Second)
					c.WallOf(w.Now())
				}
			}
		})
	}
	wg.Wait()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if r := c.Now(); r.Source != "ntp" {
		t.Fatalf("reading %+v", r)
	}
}
