// Package approve is the touchscreen's local approval API: a service of the
// node (the wallet above all) asks the person holding the kit to approve
// something, and the ui service shows the request with the name of the
// service that asks. That name comes from who the caller is, never from the
// request's own words: the kernel gives the caller's process ID on the Unix
// socket (SO_PEERCRED), and PID 1's list of supervised services says which
// service runs as that process.
//
// Who may call: root on the node, and the wallet's group (the socket is
// mode 0660 in a directory of mode 0750), and of their processes only a
// service PID 1 supervises; anything else is refused.
//
// Wire protocol, one request per connection on the Unix stream socket
// SocketPath: the client writes a Request as one line of JSON of at most
// MaxRequest bytes; the server writes one Answer as a line of JSON when the
// person decided, the request's time ran out or it was refused, and closes.
// A client that closes its end before the answer withdraws the request and
// the screen drops it.
//
// A request is one of three kinds of question (Request.Kind): "approve" (the
// default: the rows, then Approve or Reject, then the PIN if asked),
// "choose" (the rows, then one of 2 to MaxChoices choices is tapped, e.g.
// "Which is word 7?" when a seed's backup is checked) and "word" (the rows,
// then one word of the BIP39 English list is typed on the on-screen
// keyboard, e.g. when a seed is restored). What the person tapped or typed
// comes back in the Answer: Choice for "choose", Text for "word", PIN for an
// "approve" that asked for it.
//
// Secrets: a PIN and a typed word travel in the Answer only; the asking
// service must not log or keep them longer than it needs them. The ui
// service logs one line per request with the asking service, the title, the
// kind and the outcome, and never a row, a choice, the choice made, a PIN or
// a word: choices and rows may hold a seed's words (a backup check offers
// the true word among decoys).
package approve

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// SocketPath is where the ui service listens on the node. Its directory is
// root's, mode 0750; on a wallet node PID 1 makes it set-group-ID with the
// wallet's group, so the socket is the wallet's group's too and the
// wallet, which is not root, can ask (docs/architecture.md §Wallet).
const SocketPath = "/run/skyfleet/approve/approve.sock"

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
	// MinChoices and MaxChoices bound a "choose" request's choices;
	// MaxChoice is the longest choice, in runes: six buttons of that
	// fit a 320x240 screen.
	MinChoices = 2
	MaxChoices = 6
	MaxChoice  = 24
	// MaxButtonLabel is the longest ApproveLabel or RejectLabel, in
	// runes: what a button half as wide as a small screen shows whole.
	MaxButtonLabel = 12
	// MaxWaiting is how many requests may wait behind the one on screen;
	// more are answered ReasonBusy at once.
	MaxWaiting = 4
	// DefaultTimeout is how long a request waits for a decision (shown or
	// waiting its turn) when it names none; MaxTimeout the most it may name.
	DefaultTimeout = 2 * time.Minute
	MaxTimeout     = 10 * time.Minute
)

// Kinds of request (Request.Kind).
const (
	// KindApprove shows the rows and asks Approve or Reject (then the
	// PIN if the request asks for it). It is the kind of a request that
	// names none ("").
	KindApprove = "approve"
	// KindChoose shows the rows and the choices as buttons; the person
	// taps one, or the cancel button.
	KindChoose = "choose"
	// KindWord shows the rows and a keyboard of the letters a to z on
	// which the person types one word of the BIP39 English list; the
	// keyboard takes only letters that still lead to a word, and the word
	// is sent by tapping it among the completions offered or by OK once
	// it is whole.
	KindWord = "word"
)

// Default button labels.
const (
	DefaultApproveLabel = "Approve"
	DefaultRejectLabel  = "Reject" // of an "approve" request
	DefaultCancelLabel  = "Cancel" // of a "choose" or "word" request
)

// Row is one line of what is to be approved: a label and its value, the
// value wrapped under the label on the screen.
type Row struct {
	Label string `json:"label"`
	Value string `json:"value"`
}

// Request is what a service asks the person: to approve something, to
// choose among a few answers, or to type a word.
type Request struct {
	// Kind is the kind of question: "" or KindApprove, KindChoose or
	// KindWord. Any other is refused.
	Kind string `json:"kind,omitempty"`
	// Title says what is asked, e.g. "Sign transaction" or "Which is
	// word 7?"; required. It is shown in the title bar and logged.
	Title string `json:"title"`
	// Rows are shown in order; Approve (and the choices of a "choose"
	// request) are enabled only once the person has seen them all. An
	// "approve" request needs rows or warnings; for the other kinds they
	// are optional (e.g. "Word" "3 of 12").
	Rows []Row `json:"rows"`
	// Warnings come before the rows, in the warning colour.
	Warnings []string `json:"warnings,omitempty"`
	// Choices are the buttons of a "choose" request, in order:
	// MinChoices to MaxChoices of them, each 1 to MaxChoice runes, no two
	// alike (but for case and the spaces around). Refused for other kinds.
	Choices []string `json:"choices,omitempty"`
	// ApproveLabel and RejectLabel, if set, label the two buttons of an
	// "approve" request (1 to MaxButtonLabel runes, not blank, not alike),
	// e.g. "Pair" and "Refuse"; the defaults are DefaultApproveLabel and
	// DefaultRejectLabel. RejectLabel also labels the cancel button of a
	// "choose" or "word" request (default DefaultCancelLabel);
	// ApproveLabel is refused for those, which have no Approve.
	ApproveLabel string `json:"approve_label,omitempty"`
	RejectLabel  string `json:"reject_label,omitempty"`
	// PIN asks for the PIN on the shuffled keypad after Approve; the
	// Answer then carries it. Only for an "approve" request.
	PIN bool `json:"pin,omitempty"`
	// TimeoutS is how long to wait for a decision, in seconds (0: the
	// default); at most MaxTimeout.
	TimeoutS int `json:"timeout_s,omitempty"`
}

// Reasons an Answer that is not an approval gives.
const (
	ReasonRejected = "rejected"  // the person tapped Reject, or cancel on a "choose" or "word" request
	ReasonTimedOut = "timed out" // no decision within the request's time
	ReasonBusy     = "busy"      // MaxWaiting requests were already waiting
	ReasonInvalid  = "invalid"   // prefix: the request broke a rule (which follows)
	ReasonCaller   = "refused"   // prefix: the caller is not a supervised service
	ReasonClosed   = "closed"    // the ui service is stopping
)

// Answer is the outcome of a request. Approved means the person answered:
// tapped Approve (and typed the PIN, if asked), tapped a choice, or typed a
// word; Choice, Text and PIN are set only then, each for its kind of
// request, and Ask refuses an answer that carries one its request does not
// call for.
type Answer struct {
	Approved bool `json:"approved"`
	// PIN is the PIN the person typed, for a request that asked for one
	// and was approved. The asking service must not log or keep it.
	PIN string `json:"pin,omitempty"`
	// Choice is the index in Request.Choices of the choice tapped. It is
	// present (not nil; in JSON, "choice" is there) exactly when a
	// "choose" request was answered, so a missing choice can never be
	// read as the first one; Chosen reads it.
	Choice *int `json:"choice,omitempty"`
	// Text is the word typed for an answered "word" request: a word of
	// the BIP39 English list, in lower case. It is a secret like the PIN
	// (a word of a seed): the asking service must not log or keep it
	// longer than it needs it.
	Text string `json:"text,omitempty"`
	// Reason says why a request was not approved (one of the Reason
	// constants, those marked prefix followed by ": " and the detail).
	Reason string `json:"reason,omitempty"`
}

// Chosen returns the index of the choice made, and false when a is not an
// answered "choose" request.
func (a Answer) Chosen() (int, bool) {
	if !a.Approved || a.Choice == nil {
		return 0, false
	}
	return *a.Choice, true
}

// ErrInvalid wraps every reason ParseRequest refuses a request for.
var ErrInvalid = errors.New("invalid approval request")

// ParseRequest reads one request line (without or with its newline) and
// checks it against the limits above. Errors wrap ErrInvalid and say which
// rule broke: malformed JSON or unknown fields, an unknown kind, an empty
// title, too many or too long rows, choices or labels, a field its kind does
// not take, control or bidirectional-override characters (which could make
// a value read differently from what it is), a bad timeout.
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

// Validate checks r against the limits and the rules of its kind; errors
// wrap ErrInvalid and say which rule broke.
func (r Request) Validate() error {
	kind := r.Kind
	switch kind {
	case "", KindApprove, KindChoose, KindWord:
	default:
		k := []rune(kind)
		if len(k) > 16 {
			k = append(k[:16], '…')
		}
		return fmt.Errorf("%w: unknown kind %q (want %q, %q or %q)", ErrInvalid, string(k), KindApprove, KindChoose, KindWord)
	}
	if kind == "" {
		kind = KindApprove
	}
	if err := text("title", r.Title, MaxTitle, true); err != nil {
		return err
	}
	if len(r.Rows) > MaxRows {
		return fmt.Errorf("%w: %d rows, at most %d", ErrInvalid, len(r.Rows), MaxRows)
	}
	if kind == KindApprove && len(r.Rows) == 0 && len(r.Warnings) == 0 {
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
	for _, l := range []struct{ name, s string }{{"approve_label", r.ApproveLabel}, {"reject_label", r.RejectLabel}} {
		if l.s == "" {
			continue
		}
		if err := text(l.name, l.s, MaxButtonLabel, true); err != nil {
			return err
		}
		if strings.TrimSpace(l.s) == "" {
			return fmt.Errorf("%w: %s is blank", ErrInvalid, l.name)
		}
	}
	if kind != KindApprove {
		switch {
		case r.PIN:
			return fmt.Errorf("%w: pin is for kind %q only, not %q", ErrInvalid, KindApprove, kind)
		case r.ApproveLabel != "":
			return fmt.Errorf("%w: approve_label is for kind %q only, not %q (reject_label labels its cancel button)", ErrInvalid, KindApprove, kind)
		}
	}
	if kind == KindApprove {
		// Two buttons alike would leave the person guessing which is
		// which; a swap of the defaults is caught here too.
		if sameLabel(r.ApproveLabel, DefaultApproveLabel, r.RejectLabel, DefaultRejectLabel) {
			return fmt.Errorf("%w: approve_label and reject_label are alike", ErrInvalid)
		}
	}
	if kind != KindChoose {
		if r.Choices != nil {
			return fmt.Errorf("%w: choices are for kind %q only, not %q", ErrInvalid, KindChoose, kind)
		}
		return nil
	}
	if n := len(r.Choices); n < MinChoices || n > MaxChoices {
		return fmt.Errorf("%w: %d choices, want %d to %d", ErrInvalid, n, MinChoices, MaxChoices)
	}
	// A choice may read as the cancel button does: "cancel" is a word of
	// the BIP39 list, which a backup check may have to offer. The button
	// is told apart by its colour and place.
	for i, c := range r.Choices {
		what := fmt.Sprintf("choice %d", i+1)
		if err := text(what, c, MaxChoice, true); err != nil {
			return err
		}
		if strings.TrimSpace(c) == "" {
			return fmt.Errorf("%w: %s is blank", ErrInvalid, what)
		}
		for j, d := range r.Choices[:i] {
			if sameLabel(c, "", d, "") {
				return fmt.Errorf("%w: choices %d and %d are alike", ErrInvalid, j+1, i+1)
			}
		}
	}
	return nil
}

// sameLabel reports whether two button labels (each its default when
// empty) read alike: the same but for case and the spaces around.
func sameLabel(a, defA, b, defB string) bool {
	return strings.EqualFold(strings.TrimSpace(cmp.Or(a, defA)), strings.TrimSpace(cmp.Or(b, defB)))
}

// checkAnswer reports why a does not answer r: an approval carrying what
// r's kind does not call for (a PIN r did not ask, a choice or word for
// another kind), a choice out of range, a word that is not lower-case
// letters, or a refusal carrying any of them.
func (r Request) checkAnswer(a Answer) error {
	kind := cmp.Or(r.Kind, KindApprove)
	if !a.Approved {
		if a.PIN != "" || a.Choice != nil || a.Text != "" {
			return errors.New("an answer that is not an approval carries a PIN, a choice or a word")
		}
		return nil
	}
	if a.PIN != "" && !(kind == KindApprove && r.PIN) {
		return errors.New("a PIN the request did not ask for")
	}
	if (a.Choice != nil) != (kind == KindChoose) {
		return fmt.Errorf("a choice for a request of kind %q, or none for one of kind %q", kind, KindChoose)
	}
	if a.Choice != nil && (*a.Choice < 0 || *a.Choice >= len(r.Choices)) {
		return fmt.Errorf("choice %d of %d", *a.Choice, len(r.Choices))
	}
	if (a.Text != "") != (kind == KindWord) {
		return fmt.Errorf("a word for a request of kind %q, or none for one of kind %q", kind, KindWord)
	}
	for _, c := range a.Text {
		if c < 'a' || c > 'z' {
			return errors.New("the word is not lower-case letters a to z")
		}
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
