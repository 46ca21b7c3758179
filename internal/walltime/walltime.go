// Package walltime gives a node real (wall-clock) time although the board has
// no real-time clock: a Raspberry Pi boots believing it is 1970, and bundle
// lifetimes, message times and logs need the real date.
//
// A Clock learns the time from sources of different trust: NTP servers (Run),
// signed reports of the master and of peers (Observe), the host's own clock
// when the host has a real one (Options.TrustSystem). Once a source has set
// it, the Clock does not touch the system clock: it keeps the pair (local
// monotonic instant, wall time) of the last fix and reads
//
//	Now = wall time of the fix + monotonic time elapsed since the fix
//
// so nothing that steps the system clock (or fails to) moves it. The error
// bound (Reading.Uncertainty) is the source's own bound plus 100 ppm of the
// time elapsed since the fix, the drift allowed for a board's crystal.
//
// Time never goes back past the floor: the Clock writes a lower bound of the
// time it knows (the known time less its uncertainty, rounded down to the
// second) to the file "walltime" in its directory, at most once a minute and on
// Close, and refuses any source that would set a time below it, because a
// forged or broken source must not make expired bundles live again. A floor is
// itself never a reading: after a restart the Clock reports Source "persisted",
// Known false, and the floor plus the time elapsed since Open as a lower bound.
// The price of the floor is that a source that was believed and was far ahead
// keeps real time out until real time passes the floor it left.
//
// Lifetimes while the time is unknown: callers measure ages with the monotonic
// clock — keep the time.Time from time.Now() and use time.Since — and turn a
// local instant into wall time (WallOf) only when the Clock knows the time.
// A deadline written as wall time while Known is false would be off by the
// whole gap between 1970 (or the floor) and now.
package walltime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/skyfleet/skyfleet/internal/durable"
)

// The sources of a Reading, best first. The ranks decide which source may
// replace which (see Observe); system ranks below NTP, which measures, and
// above the master, because TrustSystem says the host's own clock is good.
const (
	// SourceNTP: an NTP server queried by Run; the uncertainty is the root
	// distance the server and the exchange give (RTT/2 + root delay/2 + root
	// dispersion).
	SourceNTP = "ntp"
	// SourceSystem: the host's own clock, read once at Open and then followed
	// with the monotonic clock; only with Options.TrustSystem, for hosts with a
	// real-time clock. Its uncertainty starts at SystemUncertainty.
	SourceSystem = "system"
	// SourceMaster: a signed report of the fleet master, given to Observe.
	SourceMaster = "master"
	// SourcePeer: a signed report of a peer node, given to Observe; taken only
	// while nothing better is known.
	SourcePeer = "peer"
	// SourcePersisted: no source yet since this start, but a floor was read at
	// Open: the time is at least the floor plus the time elapsed since Open.
	// Known is false.
	SourcePersisted = "persisted"
	// SourceUnknown: no source and no floor; Reading.Time is only what the
	// system clock says (1970 on a board without a real-time clock). Known is
	// false.
	SourceUnknown = "unknown"
)

var rank = map[string]int{
	SourceUnknown:   0,
	SourcePersisted: 1,
	SourcePeer:      2,
	SourceMaster:    3,
	SourceSystem:    4,
	SourceNTP:       5,
}

// SystemUncertainty is the error bound (at Open) given to the host's clock
// when Options.TrustSystem makes it a source: a clock kept by the host's own
// time daemon is good to well under a second.
const SystemUncertainty = time.Second

// DriftPPM is the drift allowed for the local oscillator, in parts per
// million: a reading's uncertainty grows by DriftPPM µs per second since the
// last fix.
const DriftPPM = 100

// minTime is the earliest time any source may set (2026-01-01 UTC, before this
// package was written), a floor every node has without any file: an earlier
// time is broken or forged and is refused like a time below the floor, and a
// floor file holding an earlier time is corrupt.
var minTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// maxTime bounds the times taken and the floors read: past it a source or a
// file is broken, and the NTP library's conversions (Q32.32 seconds since
// 1900 in a time.Duration) would overflow not far beyond.
var maxTime = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)

// floorName is the file in the Clock's directory that holds the floor: the
// Unix time in decimal seconds and a newline.
const floorName = "walltime"

// persistEvery is the least time between two writes of the floor (except the
// one on Close): each write is an fsync on an SD card.
const persistEvery = time.Minute

// maxFloorFile bounds what is read of the floor file, in bytes: a valid one
// holds at most a dozen.
const maxFloorFile = 64

// Reading is the Clock's answer to "what time is it".
type Reading struct {
	// Time is the wall time in UTC. When Known is false it is a lower bound
	// (Source "persisted") or just the system clock (Source "unknown").
	Time time.Time
	// Known reports whether Time comes from a source (ntp, system, master,
	// peer) and is within Uncertainty of the real time.
	Known bool
	// Source is where Time comes from: one of the Source constants.
	Source string
	// Uncertainty bounds |Time - real time| when Known; it is the source's
	// own bound plus DriftPPM of the time since the fix. When Known is false
	// it is 0, meaning unbounded.
	Uncertainty time.Duration
}

// Options configure a Clock. The zero value is a Clock without NTP servers
// that does not trust the system clock, logs with log.Printf and reads
// time.Now.
type Options struct {
	// Servers are the NTP servers Run queries, each "host" or "host:port"
	// (default port 123; an IPv6 address with a port in brackets). Empty
	// entries are an error from Open.
	Servers []string
	// Logf receives the Clock's log lines (Printf-style); nil means log.Printf.
	// It may be called with the Clock's lock held, so it must not call the
	// Clock.
	Logf func(format string, args ...any)
	// Now reads the local clock; nil means time.Now. Its monotonic reading is
	// what the Clock counts elapsed time with; tests inject a fake.
	Now func() time.Time
	// Query asks one server for the time; nil means an NTP (v4) exchange with
	// github.com/beevik/ntp, 5 s timeout, answer validated. A Query given
	// here cannot be interrupted: Run's context is checked between queries.
	// Tests inject a fake.
	Query func(server string) (Sample, error)
	// TrustSystem says the host has a real clock: the system clock is a
	// source ("system") from Open on, unless it reads below the floor or
	// before 2026.
	TrustSystem bool
}

// Stats counts what the Clock has seen since Open. JSON names are snake_case
// for the node's /status.
type Stats struct {
	// NTPOK counts NTP queries with a valid answer, whether or not it was
	// taken.
	NTPOK uint64 `json:"ntp_ok"`
	// NTPFailed counts NTP queries with no valid answer (no answer, a
	// malformed one, kiss-of-death, an unsynchronised server).
	NTPFailed uint64 `json:"ntp_failed"`
	// RefusedBackwards counts times refused because they were below the floor
	// or before 2026, from any source (NTP, Observe, the system clock).
	RefusedBackwards uint64 `json:"refused_backwards"`
	// ObservationsTaken counts Observe calls whose time was taken.
	ObservationsTaken uint64 `json:"observations_taken"`
	// ObservationsIgnored counts Observe calls not taken because the clock
	// had a better reading or the call was malformed (not those refused as
	// backwards, which RefusedBackwards counts).
	ObservationsIgnored uint64 `json:"observations_ignored"`
	// Floor is the current floor in RFC 3339, empty when there is none.
	Floor string `json:"floor"`
	// FloorError says why the floor file could not be used at Open (it was
	// moved aside); empty when it was fine or absent.
	FloorError string `json:"floor_error"`
	// FloorWriteError is the last failed write of the floor, empty once one
	// succeeds.
	FloorWriteError string `json:"floor_write_error"`
}

// Status is what the node's /status shows as "clock": the reading and the
// counts of Stats, flattened into one JSON object.
type Status struct {
	// Time is the reading in RFC 3339 (UTC, milliseconds), empty when the
	// time is not known.
	Time string `json:"time"`
	// Known is Reading.Known.
	Known bool `json:"known"`
	// Source is Reading.Source.
	Source string `json:"source"`
	// UncertaintyMS is Reading.Uncertainty in milliseconds, rounded up; -1
	// when the time is not known (unbounded).
	UncertaintyMS int64 `json:"uncertainty_ms"`
	Stats
}

// Clock is the node's wall time. Its methods are safe for concurrent use.
type Clock struct {
	path    string
	servers []string
	logf    func(string, ...any)
	now     func() time.Time
	query   func(server string) (Sample, error) // nil: NTP with the library
	// sleep waits d or until ctx ends and reports whether d passed; tests
	// replace it to drive Run on a fake clock.
	sleep func(ctx context.Context, d time.Duration) bool

	mu       sync.Mutex
	src      string
	baseMono time.Time     // local instant of the fix (from now())
	baseWall time.Time     // wall time at baseMono, UTC, no monotonic reading
	baseUnc  time.Duration // the source's own uncertainty at baseMono
	floor    time.Time     // zero: none
	stats    Stats
	logged   map[string]logState // throttled log lines by key

	writeMu   sync.Mutex // one floor write at a time; taken before mu
	lastWrite time.Time  // local instant of the last floor write
	closed    bool
}

type logState struct {
	last       time.Time // local instant it was last logged
	suppressed int
}

// Open starts a Clock whose floor lives in dir/walltime; dir is created (0700)
// if missing. A missing floor file starts the clock "unknown"; a readable one
// starts it "persisted". A corrupt or unreadable floor file is not an error:
// it is logged, moved aside to dir/walltime.corrupt-<unix seconds>, reported
// in Stats().FloorError, and the clock starts "unknown". Open fails only when
// dir is empty or cannot be created, or a server in opts.Servers is empty.
func Open(dir string, opts Options) (*Clock, error) {
	if dir == "" {
		return nil, errors.New("walltime: no directory for the floor")
	}
	for i, s := range opts.Servers {
		if strings.TrimSpace(s) == "" {
			return nil, fmt.Errorf("walltime: NTP server %d is empty", i)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("walltime: %w", err)
	}
	c := &Clock{
		path:    filepath.Join(dir, floorName),
		servers: append([]string(nil), opts.Servers...),
		logf:    opts.Logf,
		now:     opts.Now,
		query:   opts.Query,
		sleep:   sleepCtx,
		src:     SourceUnknown,
		logged:  make(map[string]logState),
	}
	if c.logf == nil {
		c.logf = log.Printf
	}
	if c.now == nil {
		c.now = time.Now
	}
	now := c.now()
	floor, err := readFloor(c.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// First start: no floor yet.
	case err != nil:
		c.stats.FloorError = err.Error()
		c.logf("walltime: floor file %s unusable, starting with the time unknown: %v", c.path, err)
		if aside, merr := c.moveAside(now); merr != nil {
			c.stats.FloorError += "; moving it aside failed: " + merr.Error()
			c.logf("walltime: moving %s aside: %v", c.path, merr)
		} else {
			c.stats.FloorError += "; moved to " + filepath.Base(aside)
		}
	default:
		c.floor = floor
		c.setBase(SourcePersisted, now, floor, 0)
	}
	if opts.TrustSystem {
		sys := now.Round(0).UTC()
		if c.below(sys) {
			c.refuse(SourceSystem, sys, now)
		} else {
			c.setBase(SourceSystem, now, sys, SystemUncertainty)
		}
	}
	return c, nil
}

// Now returns the current reading. It never blocks on I/O.
func (c *Clock) Now() Reading {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.readingLocked(now)
}

// WallOf converts a local instant — a time.Time taken from Options.Now
// (time.Now) in this process, so with a monotonic reading — into wall time in
// UTC. It reports false, and returns the zero Time, while the time is not
// Known. The result inherits the current reading's uncertainty.
func (c *Clock) WallOf(mono time.Time) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !known(c.src) {
		return time.Time{}, false
	}
	return c.baseWall.Add(mono.Sub(c.baseMono)), true
}

// Observe offers a time from a signed report — source "master" or "peer"; the
// caller has checked the signature. t is the sender's time as of now (the
// caller adds what it knows of the transit) and uncertainty its error bound
// (≥ 0). It reports whether the time was taken:
//
//   - a time below the floor or before 2026 is refused (logged at most once an
//     hour per source, counted in Stats.RefusedBackwards);
//   - a better-ranked source always replaces a worse one (ntp > system >
//     master > peer > persisted, unknown), so a peer is taken only while the
//     clock is unknown, persisted or set by a peer;
//   - the same source replaces the current reading when its uncertainty is
//     smaller than the current reading's (grown) uncertainty;
//   - anything else, an unknown source, a negative uncertainty or a time past
//     2100 is ignored (Stats.ObservationsIgnored).
func (c *Clock) Observe(source string, t time.Time, uncertainty time.Duration) bool {
	now := c.now()
	if source != SourceMaster && source != SourcePeer {
		c.mu.Lock()
		c.stats.ObservationsIgnored++
		c.mu.Unlock()
		c.logThrottled("observe-source", now, "walltime: ignoring an observation from unknown source %q", source)
		return false
	}
	taken, refused := c.offer(source, t, now, uncertainty, now)
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case taken:
		c.stats.ObservationsTaken++
	case !refused:
		c.stats.ObservationsIgnored++
	}
	return taken
}

// offer applies the rules of Observe to a time t that held at the local
// instant at, with the source's own uncertainty; now is the current local
// instant. It reports whether t was taken and whether it was refused as
// backwards.
func (c *Clock) offer(source string, t, at time.Time, uncertainty time.Duration, now time.Time) (taken, refused bool) {
	t = t.Round(0).UTC()
	if t.IsZero() || uncertainty < 0 {
		return false, false
	}
	proj := t.Add(now.Sub(at)) // the time t sets, as of now
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.below(proj) {
		c.refuse(source, proj, now)
		return false, true
	}
	if proj.After(maxTime) {
		return false, false
	}
	cur := c.readingLocked(now)
	switch r, rc := rank[source], rank[cur.Source]; {
	case r > rc:
	case r == rc && cur.Known && uncertainty < cur.Uncertainty:
	default:
		return false, false
	}
	if cur.Source != source {
		c.logf("walltime: time now from %s: %s ±%v (was %s, %s)", source, proj.Format(time.RFC3339), uncertainty, cur.Source, cur.Time.Format(time.RFC3339))
	} else if d := proj.Sub(cur.Time); d > time.Second || d < -time.Second {
		c.logf("walltime: %s stepped the time by %v", source, d)
	}
	c.setBase(source, at, t, uncertainty)
	return true, false
}

// below reports whether t is before the floor or minTime. Callers hold mu (or
// own c alone, in Open).
func (c *Clock) below(t time.Time) bool {
	return t.Before(minTime) || (!c.floor.IsZero() && t.Before(c.floor))
}

// refuse counts and logs (at most once an hour per source) a time below the
// floor. Callers hold mu (or own c alone).
func (c *Clock) refuse(source string, t, now time.Time) {
	c.stats.RefusedBackwards++
	limit := minTime
	if c.floor.After(limit) {
		limit = c.floor
	}
	c.logThrottledLocked("backwards "+source, now, "walltime: refusing %s time %s: below the floor %s", source, t.Format(time.RFC3339), limit.Format(time.RFC3339))
}

// setBase makes (at, wall) the fix. Callers hold mu (or own c alone).
func (c *Clock) setBase(source string, at, wall time.Time, uncertainty time.Duration) {
	c.src, c.baseMono, c.baseWall, c.baseUnc = source, at, wall.Round(0).UTC(), uncertainty
}

func known(source string) bool {
	return source != SourceUnknown && source != SourcePersisted
}

// readingLocked is the reading at the local instant now. Callers hold mu.
func (c *Clock) readingLocked(now time.Time) Reading {
	switch c.src {
	case SourceUnknown:
		return Reading{Time: now.Round(0).UTC(), Source: SourceUnknown}
	case SourcePersisted:
		return Reading{Time: c.baseWall.Add(now.Sub(c.baseMono)), Source: SourcePersisted}
	}
	elapsed := now.Sub(c.baseMono)
	growth := elapsed.Abs() / (1e6 / DriftPPM)
	unc := c.baseUnc + growth
	if unc < c.baseUnc { // overflow on an absurd bound from a caller
		unc = math.MaxInt64
	}
	return Reading{Time: c.baseWall.Add(elapsed), Known: true, Source: c.src, Uncertainty: unc}
}

// Stats returns the counts since Open and the state of the floor.
func (c *Clock) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	if !c.floor.IsZero() {
		s.Floor = c.floor.Format(time.RFC3339)
	}
	return s
}

// Status returns the reading and the Stats in the shape of the node's /status.
func (c *Clock) Status() Status {
	r := c.Now()
	s := Status{Known: r.Known, Source: r.Source, UncertaintyMS: -1, Stats: c.Stats()}
	if r.Known {
		s.Time = r.Time.Format("2006-01-02T15:04:05.000Z07:00")
		s.UncertaintyMS = int64(r.Uncertainty / time.Millisecond)
		if r.Uncertainty%time.Millisecond != 0 {
			s.UncertaintyMS++ // rounded up: a bound must not shrink
		}
	}
	return s
}

// Close writes the floor one last time (when the time is known and has moved
// past the stored floor), whatever the once-a-minute limit, and stops all
// later writes; readings keep working. Cancel Run's context before Close. The
// error is the failed write's, naming the file; a second Close returns nil.
func (c *Clock) Close() error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if c.closed {
		return nil
	}
	err := c.persistLocked(true)
	c.closed = true
	return err
}

// persist writes the floor if the time is known, the floor would rise, and
// the last write is at least persistEvery ago.
func (c *Clock) persist() error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if c.closed {
		return nil
	}
	return c.persistLocked(false)
}

// persistLocked is persist (force: regardless of the last write's age) with
// writeMu held. The floor is the known time less its uncertainty: a lower bound
// of the real time even if the reading is off by all of its bound.
func (c *Clock) persistLocked(force bool) error {
	now := c.now()
	c.mu.Lock()
	r := c.readingLocked(now)
	cand := r.Time.Add(-r.Uncertainty).Truncate(time.Second)
	due := force || c.lastWrite.IsZero() || now.Sub(c.lastWrite) >= persistEvery
	ok := r.Known && due && cand.After(c.floor) && !cand.Before(minTime) && !cand.After(maxTime)
	c.mu.Unlock()
	if !ok {
		return nil
	}
	err := durable.WriteFile(c.path, formatFloor(cand), 0o600)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.stats.FloorWriteError = err.Error()
		c.logThrottledLocked("floor write", now, "walltime: writing the floor: %v", err)
		return err
	}
	c.stats.FloorWriteError = ""
	c.lastWrite = now
	if cand.After(c.floor) {
		c.floor = cand
	}
	return nil
}

// formatFloor is the floor file's content for t: Unix seconds and a newline.
func formatFloor(t time.Time) []byte {
	return []byte(strconv.FormatInt(t.Unix(), 10) + "\n")
}

// parseFloor reads a floor file's content: decimal Unix seconds without sign
// or leading zero, optionally followed by one newline, between minTime and
// 2100. Anything else is an error describing it (never quoting more than a
// few bytes).
func parseFloor(b []byte) (time.Time, error) {
	s := bytes.TrimSuffix(b, []byte("\n"))
	if len(s) == 0 {
		return time.Time{}, errors.New("empty")
	}
	if len(s) > 12 {
		return time.Time{}, fmt.Errorf("%d bytes, too long for a time", len(b))
	}
	for _, ch := range s {
		if ch < '0' || ch > '9' {
			return time.Time{}, fmt.Errorf("not a decimal number: %.12q", s)
		}
	}
	if s[0] == '0' {
		return time.Time{}, fmt.Errorf("leading zero: %q", s)
	}
	n, err := strconv.ParseInt(string(s), 10, 64)
	if err != nil { // cannot happen with at most 12 digits; kept for safety
		return time.Time{}, err
	}
	t := time.Unix(n, 0).UTC()
	if t.Before(minTime) || t.After(maxTime) {
		return time.Time{}, fmt.Errorf("%d is outside %s..%s", n, minTime.Format(time.DateOnly), maxTime.Format(time.DateOnly))
	}
	return t, nil
}

// readFloor reads and parses the floor file. A missing file is an error
// satisfying errors.Is(err, fs.ErrNotExist).
func readFloor(path string) (time.Time, error) {
	f, err := os.Open(path)
	if err != nil {
		return time.Time{}, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFloorFile+1))
	if err != nil {
		return time.Time{}, fmt.Errorf("reading: %w", err)
	}
	if len(b) > maxFloorFile {
		return time.Time{}, fmt.Errorf("more than %d bytes", maxFloorFile)
	}
	t, err := parseFloor(b)
	if err != nil {
		return time.Time{}, fmt.Errorf("corrupt: %w", err)
	}
	return t, nil
}

// moveAside renames the floor file to walltime.corrupt-<unix> (a free name;
// -N appended if a file of that second exists) so the evidence survives and
// the next write starts clean, and returns the new path.
func (c *Clock) moveAside(now time.Time) (string, error) {
	base := c.path + ".corrupt-" + strconv.FormatInt(now.Unix(), 10)
	name := base
	for i := 1; ; i++ {
		if _, err := os.Lstat(name); errors.Is(err, fs.ErrNotExist) {
			break
		}
		if i > 100 {
			return "", errors.New("no free name for it")
		}
		name = base + "-" + strconv.Itoa(i)
	}
	if err := os.Rename(c.path, name); err != nil {
		return "", err
	}
	return name, durable.SyncDir(filepath.Dir(c.path))
}

// logThrottled logs a line under key at most once an hour (by the local
// clock), telling how many were held back since.
func (c *Clock) logThrottled(key string, now time.Time, format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.logThrottledLocked(key, now, format, args...)
}

// logEvery is the least time between two log lines of one key.
const logEvery = time.Hour

// logThrottledLocked is logThrottled with mu held.
func (c *Clock) logThrottledLocked(key string, now time.Time, format string, args ...any) {
	st, seen := c.logged[key]
	if seen && now.Sub(st.last) < logEvery {
		st.suppressed++
		c.logged[key] = st
		return
	}
	if st.suppressed > 0 {
		format += fmt.Sprintf(" (%d more like it since the last such line)", st.suppressed)
	}
	c.logged[key] = logState{last: now}
	c.logf(format, args...)
}
