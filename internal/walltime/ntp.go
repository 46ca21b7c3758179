package walltime

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/beevik/ntp"
)

// Polling intervals of Run. 64 s is NTP's shortest customary poll (RFC 5905's
// MINPOLL 2^6 s): often enough to learn the time soon after the network comes
// up without hammering a server; 17 min (about 2^10 s) once NTP has set the
// time, when 100 ppm of drift adds only 0.1 s between polls.
const (
	PollUnknown = 64 * time.Second
	PollKnown   = 17 * time.Minute
)

// queryTimeout bounds one NTP exchange: past it the answer would carry an
// uncertainty (RTT/2) too large to be worth having anyway.
const queryTimeout = 5 * time.Second

// Sample is one server's answer to Options.Query.
type Sample struct {
	// Time is the server's time at the local instant At, already corrected
	// for the network delay.
	Time time.Time
	// At is the local instant, read from Options.Now, at which Time held; the
	// zero value means the moment Query returned.
	At time.Time
	// Uncertainty bounds |Time - real time| at At (for NTP the root distance:
	// RTT/2 + root delay/2 + root dispersion); never negative.
	Uncertainty time.Duration
}

// Run queries the NTP servers of Options.Servers until ctx ends: at once,
// then every PollUnknown (64 s) while the time is not set by NTP, every
// PollKnown (17 min) once it is. Each round asks every server in turn; each
// valid answer is offered under the rules of Observe with source "ntp" (so one
// below the floor is refused). A failing server is logged at most once an hour
// per server. Run also writes the floor, at most once a minute, so run it even
// without servers: a node that loses power never reaches Close. It returns
// when ctx ends; a query under way is abandoned at once.
func (c *Clock) Run(ctx context.Context) {
	next := c.now() // first poll at once
	for {
		if len(c.servers) > 0 && !c.now().Before(next) {
			c.poll(ctx)
			next = c.now().Add(c.pollInterval())
		}
		c.persist() // logged and kept in Stats on failure
		if ctx.Err() != nil {
			return
		}
		wait := persistEvery
		if len(c.servers) > 0 {
			wait = min(wait, max(next.Sub(c.now()), 0))
		}
		if !c.sleep(ctx, wait) {
			return
		}
	}
}

// pollInterval is PollKnown once NTP has set the time, else PollUnknown: a
// time from the master or a peer is worth replacing with NTP's soon.
func (c *Clock) pollInterval() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.src == SourceNTP {
		return PollKnown
	}
	return PollUnknown
}

// poll asks each server once and offers each valid answer.
func (c *Clock) poll(ctx context.Context) {
	for _, server := range c.servers {
		if ctx.Err() != nil {
			return
		}
		s, err := c.ask(ctx, server)
		now := c.now()
		if err == nil && s.Uncertainty < 0 {
			err = fmt.Errorf("negative uncertainty %v", s.Uncertainty)
		}
		if err != nil {
			if ctx.Err() != nil {
				return // abandoned, not the server's fault
			}
			c.mu.Lock()
			c.stats.NTPFailed++
			c.logThrottledLocked("ntp "+server, now, "walltime: NTP server %s: %v", server, err)
			c.mu.Unlock()
			continue
		}
		c.mu.Lock()
		c.stats.NTPOK++
		c.mu.Unlock()
		at := s.At
		if at.IsZero() {
			at = now
		}
		c.offer(SourceNTP, s.Time, at, s.Uncertainty, now)
	}
}

// ask runs Options.Query, or the library's NTP exchange.
func (c *Clock) ask(ctx context.Context, server string) (Sample, error) {
	if c.query != nil {
		return c.query(server)
	}
	return c.queryNTP(ctx, server)
}

// queryNTP is one NTPv4 exchange with server through github.com/beevik/ntp,
// answer validated (no kiss-of-death, synchronised server, sane stratum and
// dispersion). The library measures the offset against the clock it is given:
// that is the Clock's own estimate (the floor plus elapsed time after a
// restart, rather than 1970), so the offset stays small and well within the
// ±68 years NTP's arithmetic can carry. ctx ending closes the socket, so the
// exchange ends at once rather than at the timeout.
func (c *Clock) queryNTP(ctx context.Context, server string) (Sample, error) {
	// Both stamps come from one estimate advanced by the monotonic clock, so
	// a fix taken while the exchange is under way cannot distort its RTT.
	ref := c.now()
	c.mu.Lock()
	refEst := c.readingLocked(ref).Time
	c.mu.Unlock()
	var recv time.Time // local instant of the answer's arrival
	stamp := func() time.Time {
		now := c.now()
		// The library keeps the later of its two stamps as the arrival.
		if recv.IsZero() || !now.Before(recv) {
			recv = now
		}
		return refEst.Add(now.Sub(ref))
	}
	// The exchange, name lookup included, ends at ctx's end or the timeout,
	// whichever comes first: closing the socket ends the library's read.
	qctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	r, err := ntp.QueryWithOptions(server, ntp.QueryOptions{
		Timeout:       queryTimeout,
		GetSystemTime: stamp,
		Dialer: func(_, remote string) (net.Conn, error) {
			var d net.Dialer
			conn, err := d.DialContext(qctx, "udp", remote)
			if err != nil {
				return nil, err
			}
			stop := context.AfterFunc(qctx, func() { conn.Close() })
			return &stopConn{Conn: conn, stop: stop}, nil
		},
	})
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return Sample{}, ctx.Err()
	case qctx.Err() != nil:
		return Sample{}, fmt.Errorf("no answer within %v", queryTimeout)
	default:
		return Sample{}, err
	}
	if err := r.Validate(); err != nil {
		if r.IsKissOfDeath() {
			return Sample{}, fmt.Errorf("%w (%s)", err, r.KissCode)
		}
		return Sample{}, err
	}
	return Sample{
		Time:        refEst.Add(recv.Sub(ref)).Add(r.ClockOffset),
		At:          recv,
		Uncertainty: max(r.RootDistance, r.RTT/2),
	}, nil
}

// stopConn releases the AfterFunc that would close the connection when the
// library closes it first.
type stopConn struct {
	net.Conn
	stop func() bool
}

func (c *stopConn) Close() error {
	c.stop()
	return c.Conn.Close()
}

// sleepCtx waits d or until ctx ends; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
