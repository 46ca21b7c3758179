package control

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// Mesh ports of fleet control (stream ports on the master and on every node).
const (
	// ReportPort is where the master accepts reports.
	ReportPort = 7
	// SSHPort is where a node's SSH server listens.
	SSHPort = 22
)

// DefaultInterval is how often a node reports when nothing changes.
const DefaultInterval = time.Minute

// Exchange on a report stream: the node writes a 4-byte big-endian length and the
// sealed report; the master answers one status byte (ackOK or ackRefused), a 2-byte
// length and a reason in UTF-8, and both close. One report per stream keeps the
// master stateless between reports.
const (
	ackOK      = 0
	ackRefused = 1
	maxReason  = 512
	maxSealed  = headerLen + MaxReportBody + sigLen
	ioTimeout  = 15 * time.Second
	// dialTimeout bounds one attempt's route and session setup. The master marks
	// a node offline 20 s after a report is due; an attempt stuck in setup for the
	// whole ioTimeout (a link flap under a storm of reconnecting nodes, say) left
	// room for at most one more try in that grace.
	dialTimeout = 5 * time.Second
)

// ErrRefused wraps the master's reason for refusing a report.
var ErrRefused = errors.New("control: master refused the report")

// Reporter is a node's reporting loop: it sends a signed report to the master at
// start, whenever what it reports changes (links up or down, a service's state,
// version, slot), and otherwise after a random wait between three quarters of
// Interval and Interval; a report the master did not acknowledge is retried with
// backoff from 500 ms up to 15 s.
type Reporter struct {
	// Key signs the reports (the node key). Master is the master's 33-byte key.
	Key    *secp256k1.PrivateKey
	Master []byte
	// Dial opens a stream to the master's ReportPort (over the mesh).
	Dial func(ctx context.Context) (net.Conn, error)
	// Describe returns the report to send now.
	Describe func() Report
	// Seq returns a number above every earlier one, also across restarts (the
	// node's monotonic clock).
	Seq func() uint64
	// Interval is the longest time between unchanged reports; default
	// DefaultInterval. Each wait is drawn from [3/4 Interval, Interval] so a
	// fleet powered up together does not report in step: 300 nodes started at
	// once kept reporting within the same second, and the bursts through their
	// relays delayed a quarter of them past the master's offline grace. Poll is how often
	// Describe is checked for changes; default 2 s.
	Interval, Poll time.Duration
	// Logf receives one line per state change of the loop (registered, failing).
	Logf func(format string, args ...any)
	// Sent, if set, is called after each acknowledged report; Failed after
	// each attempt that was not acknowledged, with its error.
	Sent   func(seq uint64)
	Failed func(err error)
}

// Run reports until ctx ends.
func (r *Reporter) Run(ctx context.Context) {
	if r.Interval <= 0 {
		r.Interval = DefaultInterval
	}
	if r.Poll <= 0 {
		r.Poll = 2 * time.Second
	}
	logf := r.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	var (
		acked    [32]byte // fingerprint of the last acknowledged report
		ackedAt  time.Time
		wait     time.Duration // until the next unchanged report
		backoff  time.Duration
		failing  bool
		attempts int
	)
	for {
		rep := r.Describe()
		fp := Fingerprint(rep)
		if fp != acked || time.Since(ackedAt) >= wait {
			seq := r.Seq()
			err := r.send(ctx, rep, seq)
			switch {
			case err == nil:
				if ackedAt.IsZero() || failing {
					logf("control: registered with master (report %d)", seq)
				}
				acked, ackedAt, backoff, failing, attempts = fp, time.Now(), 0, false, 0
				wait = jittered(r.Interval)
				if r.Sent != nil {
					r.Sent(seq)
				}
			case ctx.Err() != nil:
				return
			default:
				if r.Failed != nil {
					r.Failed(err)
				}
				attempts++
				backoff = min(max(2*backoff, 500*time.Millisecond), 15*time.Second)
				// Say it once, then every 20th try, so a node whose master is away
				// does not fill its log.
				if !failing || attempts%20 == 0 {
					logf("control: report to master failed (try %d, next in %v): %v", attempts, backoff, err)
				}
				failing = true
				if !sleep(ctx, backoff) {
					return
				}
				continue
			}
		}
		if !sleep(ctx, r.Poll) {
			return
		}
	}
}

// jittered is a random wait in [3/4 interval, interval] (see Reporter.Interval).
func jittered(interval time.Duration) time.Duration {
	return interval - rand.N(interval/4+1)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// send delivers one report and waits for the master's answer.
func (r *Reporter) send(ctx context.Context, rep Report, seq uint64) error {
	sealed, err := Seal(r.Key, r.Master, seq, rep)
	if err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	c, err := r.Dial(dctx)
	cancel()
	if err != nil {
		return err
	}
	defer c.Close()
	return Deliver(c, sealed)
}

// Deliver writes a sealed report (Seal) on a stream to the master's ReportPort and
// reads the answer. Errors: a report over the frame limit, I/O errors, a malformed
// answer, ErrRefused with the master's reason.
func Deliver(c net.Conn, sealed []byte) error {
	frame, err := encodeReportFrame(sealed)
	if err != nil {
		return err
	}
	c.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := c.Write(frame); err != nil {
		return err
	}
	return readAck(c)
}

// encodeReportFrame is a sealed report as the node writes it on a report stream:
// its 4-byte big-endian length, then the bytes. Error: longer than a report can be
// (the master would refuse it unread).
func encodeReportFrame(sealed []byte) ([]byte, error) {
	if len(sealed) > maxSealed {
		return nil, fmt.Errorf("control: sealed report of %d bytes exceeds %d", len(sealed), maxSealed)
	}
	return append(binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(sealed)), uint32(len(sealed))), sealed...), nil
}

// readReportFrame reads one length-prefixed sealed report (encodeReportFrame)
// from a report stream, allocating no more than maxSealed bytes whatever the
// prefix says. Errors wrap ErrMalformed: a short stream, a length over maxSealed.
func readReportFrame(r io.Reader) ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, fmt.Errorf("%w: reading length: %v", ErrMalformed, err)
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > maxSealed {
		return nil, fmt.Errorf("%w: %d bytes is over the %d limit", ErrMalformed, size, maxSealed)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("%w: reading %d bytes: %v", ErrMalformed, size, err)
	}
	return b, nil
}

// encodeAck is the master's answer on a report stream: the status byte, the
// reason's 2-byte big-endian length and the reason, cut to maxReason bytes (and
// to valid UTF-8, so a cut never leaves half a character).
func encodeAck(status byte, reason string) []byte {
	if len(reason) > maxReason {
		reason = strings.ToValidUTF8(reason[:maxReason], "")
	}
	out := append([]byte{status}, binary.BigEndian.AppendUint16(nil, uint16(len(reason)))...)
	return append(out, reason...)
}

// readAck reads the master's answer (encodeAck). It returns nil for ackOK and an
// error wrapping ErrRefused, with the reason (at most maxReason bytes) quoted,
// for ackRefused: the master's text goes into the node's log, so control bytes in
// it are escaped. Errors: a short answer, a status that is neither.
func readAck(r io.Reader) error {
	var hdr [3]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return fmt.Errorf("no answer from master: %w", err)
	}
	// Only maxReason bytes of a longer reason are read: the stream ends here.
	reason := make([]byte, min(int(binary.BigEndian.Uint16(hdr[1:])), maxReason))
	if _, err := io.ReadFull(r, reason); err != nil {
		return fmt.Errorf("short answer from master: %w", err)
	}
	switch hdr[0] {
	case ackOK:
		return nil
	case ackRefused:
		return fmt.Errorf("%w: %q", ErrRefused, reason)
	}
	return fmt.Errorf("control: malformed answer from master: status %d", hdr[0])
}

// Fingerprint hashes what makes a report worth sending at once: identity, version,
// slot, which links are up and each service's state. Uptime and link metrics change
// all the time and ride on the periodic report.
func Fingerprint(r Report) [32]byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%q %q %q %q\n", r.Name, r.Board, r.Version, r.Slot)
	for _, l := range r.Links {
		fmt.Fprintf(&b, "l %q %t\n", l.Address, l.Up)
	}
	for _, s := range r.Services {
		fmt.Fprintf(&b, "s %q %q\n", s.Name, s.State)
	}
	return sha256.Sum256(b.Bytes())
}

// Receiver is the master's end of ReportPort.
type Receiver struct {
	// Master is the master's 33-byte public key; reports to any other are refused.
	Master []byte
	// PeerKey returns the 33-byte key of the node at the other end of a stream
	// (the mesh authenticated it), so a report signed by one node and sent by
	// another is refused.
	PeerKey func(net.Addr) []byte
	// Accept stores a verified report; its error (a replay, say) refuses it.
	Accept func(s *Signed) error
	// Refused, if set, is told of every refused report with the sender's key.
	Refused func(from []byte, err error)
}

// Serve answers report streams from ln until it closes; each in its own goroutine.
func (rc *Receiver) Serve(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		go rc.ServeConn(c)
	}
}

// ErrForwarded means a report arrived from a node other than the one that signed it.
var ErrForwarded = errors.New("control: report signed by another node than its sender")

// ServeConn reads one report from c, checks it and answers.
func (rc *Receiver) ServeConn(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(ioTimeout))
	from := rc.PeerKey(c.RemoteAddr())
	err := func() error {
		b, err := readReportFrame(c)
		if err != nil {
			return err
		}
		s, err := Open(b, rc.Master)
		if err != nil {
			return err
		}
		if !bytes.Equal(s.Node[:], from) {
			return ErrForwarded
		}
		return rc.Accept(s)
	}()
	status, reason := byte(ackOK), "ok"
	if err != nil {
		status, reason = ackRefused, err.Error()
		if rc.Refused != nil {
			rc.Refused(from, err)
		}
	}
	c.Write(encodeAck(status, reason))
}
