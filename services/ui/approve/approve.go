// Package approve is the touchscreen's local approval API: a service of the
// node (the wallet above all) asks the person holding the kit to approve
// something, and the ui service shows the request with the name of the
// service that asks. That name comes from who the caller is, never from the
// request's own words: the kernel gives the caller's process ID on the Unix
// socket (SO_PEERCRED), and PID 1's list of supervised services says which
// service runs as that process.
//
// Who may call: root on the node (the socket is mode 0600), and of root's
// processes only a service PID 1 supervises; anything else is refused.
//
// Wire protocol, one request per connection on the Unix stream socket
// SocketPath: the client writes a Request as one line of JSON of at most
// MaxRequest bytes; the server writes one Answer as a line of JSON when the
// person decided, the request's time ran out or it was refused, and closes.
// A client that closes its end before the answer withdraws the request and
// the screen drops it.
package approve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"
)

// SocketPath is where the ui service listens on the node.
const SocketPath = "/run/skyfleet/approve.sock"

// Limits of a request: what one screen and the person can read, and what a
// caller can make the ui service hold.
const (
	MaxRequest  = 16 << 10 // bytes of the JSON line
	MaxTitle    = 48       // runes
	MaxRows     = 32
	MaxLabel    = 48  // runes
	MaxValue    = 512 // runes
	MaxWarnings = 4
	MaxWarning  = 160 // runes
	// MaxWaiting is how many requests may wait behind the one on screen;
	// more are answered ReasonBusy at once.
	MaxWaiting = 4
	// DefaultTimeout is how long a request waits for a decision (shown or
	// waiting its turn) when it names none; MaxTimeout the most it may name.
	DefaultTimeout = 2 * time.Minute
	MaxTimeout     = 10 * time.Minute
)

// Row is one line of what is to be approved: a label and its value, the
// value wrapped under the label on the screen.
type Row struct {
	Label string `json:"label"`
	Value string `json:"value"`
}

// Request is what a service asks to have approved.
type Request struct {
	// Title says what is asked, e.g. "Sign transaction"; required.
	Title string `json:"title"`
	// Rows are shown in order; Approve is enabled only once the person
	// has seen them all.
	Rows []Row `json:"rows"`
	// Warnings come before the rows, in the warning colour.
	Warnings []string `json:"warnings,omitempty"`
	// PIN asks for the PIN on the shuffled keypad after Approve; the
	// Answer then carries it.
	PIN bool `json:"pin,omitempty"`
	// TimeoutS is how long to wait for a decision, in seconds (0: the
	// default); at most MaxTimeout.
	TimeoutS int `json:"timeout_s,omitempty"`
}

// Reasons an Answer that is not an approval gives.
const (
	ReasonRejected = "rejected"  // the person tapped Reject
	ReasonTimedOut = "timed out" // no decision within the request's time
	ReasonBusy     = "busy"      // MaxWaiting requests were already waiting
	ReasonInvalid  = "invalid"   // prefix: the request broke a rule (which follows)
	ReasonCaller   = "refused"   // prefix: the caller is not a supervised service
	ReasonClosed   = "closed"    // the ui service is stopping
)

// Answer is the outcome of a request.
type Answer struct {
	Approved bool `json:"approved"`
	// PIN is the PIN the person typed, for a request that asked for one
	// and was approved. The asking service must not log or keep it.
	PIN string `json:"pin,omitempty"`
	// Reason says why a request was not approved (one of the Reason
	// constants, those marked prefix followed by ": " and the detail).
	Reason string `json:"reason,omitempty"`
}

// ErrInvalid wraps every reason ParseRequest refuses a request for.
var ErrInvalid = errors.New("invalid approval request")

// ParseRequest reads one request line (without or with its newline) and
// checks it against the limits above. Errors wrap ErrInvalid and say which
// rule broke: malformed JSON or unknown fields, an empty title, too many or
// too long rows, control or bidirectional-override characters (which could
// make a value read differently from what it is), a bad timeout.
func ParseRequest(line []byte) (Request, error) {
	var r Request
	if len(line) > MaxRequest {
		return r, fmt.Errorf("%w: %d bytes, over the %d limit", ErrInvalid, len(line), MaxRequest)
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Request{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if dec.More() {
		return Request{}, fmt.Errorf("%w: more than one JSON value on the line", ErrInvalid)
	}
	if err := r.Validate(); err != nil {
		return Request{}, err
	}
	return r, nil
}

// Validate checks r against the limits; errors wrap ErrInvalid.
func (r Request) Validate() error {
	if err := text("title", r.Title, MaxTitle, true); err != nil {
		return err
	}
	if len(r.Rows) > MaxRows {
		return fmt.Errorf("%w: %d rows, at most %d", ErrInvalid, len(r.Rows), MaxRows)
	}
	if len(r.Rows) == 0 && len(r.Warnings) == 0 {
		return fmt.Errorf("%w: nothing to show (no rows, no warnings)", ErrInvalid)
	}
	for i, row := range r.Rows {
		if err := text(fmt.Sprintf("row %d label", i+1), row.Label, MaxLabel, true); err != nil {
			return err
		}
		if err := text(fmt.Sprintf("row %d value", i+1), row.Value, MaxValue, false); err != nil {
			return err
		}
	}
	if len(r.Warnings) > MaxWarnings {
		return fmt.Errorf("%w: %d warnings, at most %d", ErrInvalid, len(r.Warnings), MaxWarnings)
	}
	for i, w := range r.Warnings {
		if err := text(fmt.Sprintf("warning %d", i+1), w, MaxWarning, true); err != nil {
			return err
		}
	}
	if r.TimeoutS < 0 || time.Duration(r.TimeoutS)*time.Second > MaxTimeout {
		return fmt.Errorf("%w: timeout_s %d, want 0 to %d", ErrInvalid, r.TimeoutS, int(MaxTimeout/time.Second))
	}
	return nil
}

// Timeout is how long r waits for a decision.
func (r Request) Timeout() time.Duration {
	if r.TimeoutS == 0 {
		return DefaultTimeout
	}
	return time.Duration(r.TimeoutS) * time.Second
}

// text checks one string shown on the screen.
func text(what, s string, max int, required bool) error {
	if required && s == "" {
		return fmt.Errorf("%w: %s is empty", ErrInvalid, what)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s is not UTF-8", ErrInvalid, what)
	}
	if n := utf8.RuneCountInString(s); n > max {
		return fmt.Errorf("%w: %s is %d characters, at most %d", ErrInvalid, what, n, max)
	}
	for _, c := range s {
		// Control characters (a newline included: rows wrap by
		// themselves) and the bidirectional controls, which reorder what
		// follows them on the screen (an address would read reversed).
		if unicode.IsControl(c) || unicode.Is(unicode.Bidi_Control, c) || c == '\u2028' || c == '\u2029' {
			return fmt.Errorf("%w: %s holds the control character %U", ErrInvalid, what, c)
		}
	}
	return nil
}
