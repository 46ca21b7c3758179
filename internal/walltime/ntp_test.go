package walltime

import (
	"context"
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"
)

// ntpServer is a tiny NTP server on 127.0.0.1 for the tests: it answers each
// client packet with a 48-byte NTPv4 server packet built here per RFC 5905
// §7.3, so the default query path (github.com/beevik/ntp) runs against a real
// protocol peer. answer builds the reply to a request; nil stays silent.
type ntpServer struct {
	conn     *net.UDPConn
	requests chan []byte // each request received, after it is answered
}

func startNTPServer(t *testing.T, answer func(req []byte) []byte) *ntpServer {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s := &ntpServer{conn: conn, requests: make(chan []byte, 16)}
	done := make(chan struct{})
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	go func() {
		defer close(done)
		buf := make([]byte, 1024)
		for {
			n, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				return // closed by the cleanup
			}
			req := append([]byte(nil), buf[:n]...)
			if reply := answer(req); reply != nil {
				conn.WriteToUDP(reply, from)
			}
			select {
			case s.requests <- req:
			default:
			}
		}
	}()
	return s
}

func (s *ntpServer) addr() string { return s.conn.LocalAddr().String() }

// ntpStamp is t as an NTP timestamp: seconds since 1900 (era 0) in the high
// 32 bits, the fraction of a second in the low 32 (RFC 5905 §6).
func ntpStamp(t time.Time) uint64 {
	secs := uint64(t.Unix() + 2208988800)
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return secs<<32 | frac
}

// serverPacket is the answer of a stratum-1 server whose clock reads now to
// the request req, per RFC 5905 §7.3: LI|VN|Mode, stratum, poll, precision,
// root delay, root dispersion, reference ID, then the reference, origin
// (the client's transmit timestamp, echoed), receive and transmit
// timestamps.
func serverPacket(req []byte, now time.Time, leap, stratum byte, refID string) []byte {
	p := make([]byte, 48)
	p[0] = leap<<6 | 4<<3 | 4 // version 4, mode 4 (server)
	p[1] = stratum
	p[2] = 6                                  // poll 2^6 s
	p[3] = 0xec                               // precision 2^-20 s
	binary.BigEndian.PutUint32(p[4:], 0x1000) // root delay 1/16 s
	binary.BigEndian.PutUint32(p[8:], 0x0800) // root dispersion 1/32 s
	copy(p[12:16], refID)                     // reference ID (KoD code at stratum 0)
	binary.BigEndian.PutUint64(p[16:], ntpStamp(now.Add(-16*time.Second)))
	copy(p[24:32], req[40:48])                        // origin = client's transmit
	binary.BigEndian.PutUint64(p[32:], ntpStamp(now)) // receive
	binary.BigEndian.PutUint64(p[40:], ntpStamp(now)) // transmit
	return p
}

// validRequest reports whether req is an NTPv4 client packet.
func validRequest(req []byte) bool {
	return len(req) >= 48 && req[0]&7 == 3 && req[0]>>3&7 == 4
}

// goodServer answers with the real time of w.
func goodServer(w *world) func([]byte) []byte {
	return func(req []byte) []byte {
		if !validRequest(req) {
			return nil
		}
		return serverPacket(req, w.Real(), 0, 1, "GPS")
	}
}

func TestNTPExchange(t *testing.T) {
	w := newWorld(t0)
	srv := startNTPServer(t, goodServer(w))
	// The board's clock reads 1970; the server's 2026. The fake clock stands
	// still during the exchange, so the RTT is 0 and the answer exact.
	c, l := open(t, t.TempDir(), w, Options{Servers: []string{srv.addr()}})
	c.poll(context.Background())
	// Root distance: RTT/2 + root delay/2 (1/32 s) + root dispersion (1/32 s).
	wantReading(t, c.Now(), Reading{Time: t0, Known: true, Source: SourceNTP, Uncertainty: 62500 * time.Microsecond})
	if req := <-srv.requests; !validRequest(req) || len(req) != 48 {
		t.Fatalf("request % x is not a 48-byte NTPv4 client packet", req)
	}
	if s := c.Stats(); s.NTPOK != 1 || s.NTPFailed != 0 {
		t.Fatalf("stats %+v, log %q", s, l.lines)
	}
	w.Advance(time.Hour)
	// A second exchange runs against the Clock's own (known) time, not 1970,
	// and replaces the first fix, whose bound has grown.
	c.poll(context.Background())
	wantReading(t, c.Now(), Reading{Time: t0.Add(time.Hour), Known: true, Source: SourceNTP, Uncertainty: 62500 * time.Microsecond})
}

// After a restart the query runs against floor + elapsed, and an answer below
// the floor is refused like any other source.
func TestNTPBelowFloor(t *testing.T) {
	dir := t.TempDir()
	w := newWorld(t0)
	c, _ := open(t, dir, w, Options{})
	c.Observe("master", t0.Add(24*time.Hour), 0) // a clock a day ahead
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	srv := startNTPServer(t, goodServer(w))
	c, l := open(t, dir, newWorld(t0), Options{Servers: []string{srv.addr()}})
	c.poll(context.Background())
	if r := c.Now(); r.Known || r.Source != "persisted" {
		t.Fatalf("reading %+v after an NTP answer below the floor", r)
	}
	if s := c.Stats(); s.NTPOK != 1 || s.RefusedBackwards != 1 {
		t.Fatalf("stats %+v", s)
	}
	if len(l.With("refusing ntp time 2026-07-01T12:00:00Z")) != 1 {
		t.Fatalf("log %q", l.lines)
	}
}

// Answers the library rejects count as failures and leave the clock alone.
func TestNTPBadAnswers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer func(w *world) func([]byte) []byte
		logged string
	}{
		{"kiss of death", func(w *world) func([]byte) []byte {
			return func(req []byte) []byte { return serverPacket(req, w.Real(), 0, 0, "RATE") }
		}, "kiss of death received (RATE)"},
		{"unsynchronised", func(w *world) func([]byte) []byte {
			return func(req []byte) []byte { return serverPacket(req, w.Real(), 3, 1, "GPS") }
		}, "invalid leap second"},
		{"origin not echoed", func(w *world) func([]byte) []byte {
			return func(req []byte) []byte {
				p := serverPacket(req, w.Real(), 0, 1, "GPS")
				p[24] ^= 1
				return p
			}
		}, "didn't match request"},
		{"client mode", func(w *world) func([]byte) []byte {
			return func(req []byte) []byte {
				p := serverPacket(req, w.Real(), 0, 1, "GPS")
				p[0] = 4<<3 | 3
				return p
			}
		}, "invalid mode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t0)
			srv := startNTPServer(t, tc.answer(w))
			c, l := open(t, t.TempDir(), w, Options{Servers: []string{srv.addr()}})
			c.poll(context.Background())
			if r := c.Now(); r.Known {
				t.Fatalf("reading %+v", r)
			}
			if s := c.Stats(); s.NTPOK != 0 || s.NTPFailed != 1 {
				t.Fatalf("stats %+v", s)
			}
			if got := l.With(srv.addr()); len(got) != 1 || !strings.Contains(got[0], tc.logged) {
				t.Fatalf("log %q, want a line with %q", l.lines, tc.logged)
			}
		})
	}
}

// Ending Run's context abandons a query under way at once, well before the
// 5 s timeout, and does not count it as the server's failure.
func TestRunCancelsQuery(t *testing.T) {
	srv := startNTPServer(t, func([]byte) []byte { return nil }) // never answers
	c, l := open(t, t.TempDir(), newWorld(t0), Options{Servers: []string{srv.addr()}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx)
	}()
	<-srv.requests // the query is under way
	cancel()
	select {
	case <-done:
	case <-time.After(queryTimeout - time.Second):
		t.Fatal("Run still waiting for the silent server after its context ended")
	}
	if s := c.Stats(); s.NTPFailed != 0 || len(l.lines) != 0 {
		t.Fatalf("stats %+v, log %q", s, l.lines)
	}
}
