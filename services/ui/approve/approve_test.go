package approve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func validRequest() Request {
	return Request{
		Title: "Sign transaction",
		Rows: []Row{
			{Label: "Send", Value: "0.015 BTC"},
			{Label: "To", Value: "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"},
			{Label: "Fee", Value: "0.00012 BTC (12 sat/vB)"},
		},
		Warnings: []string{"First payment to this address"},
		PIN:      true,
	}
}

func TestParseRequest(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	cases := []struct {
		name, line, want string
	}{
		{"valid", `{"title":"Sign","rows":[{"label":"To","value":"bc1q"}],"pin":true}`, ""},
		{"warnings only", `{"title":"Wipe","warnings":["Erases the wallet"]}`, ""},
		{"not JSON", `hello`, "invalid character"},
		{"unknown field", `{"title":"Sign","rows":[{"label":"a","value":"b"}],"service":"bank"}`, `unknown field "service"`},
		{"two values", `{"title":"a","warnings":["b"]} {}`, "more than one JSON value"},
		{"no title", `{"rows":[{"label":"a","value":"b"}]}`, "title is empty"},
		{"nothing to show", `{"title":"a"}`, "nothing to show"},
		{"empty label", `{"title":"a","rows":[{"label":"","value":"b"}]}`, "row 1 label is empty"},
		{"title too long", `{"title":"` + long(MaxTitle+1) + `","warnings":["b"]}`, "title is 49 characters"},
		{"value too long", `{"title":"a","rows":[{"label":"a","value":"` + long(MaxValue+1) + `"}]}`, "row 1 value is 513 characters"},
		{"newline in a value", `{"title":"a","rows":[{"label":"To","value":"bc1q\nfake"}]}`, "control character U+000A"},
		{"bidi override", `{"title":"a","rows":[{"label":"To","value":"bc1q` + "\u202e" + `abc"}]}`, "control character U+202E"},
		{"isolate", `{"title":"a","rows":[{"label":"To","value":"` + "\u2067" + `x"}]}`, "control character U+2067"},
		{"negative timeout", `{"title":"a","warnings":["b"],"timeout_s":-1}`, "timeout_s -1"},
		{"timeout too long", `{"title":"a","warnings":["b"],"timeout_s":601}`, "timeout_s 601"},
		{"over the size", `{"title":"a","warnings":["` + long(MaxRequest) + `"]}`, "over the 16384 limit"},

		{"approve by name", `{"kind":"approve","title":"Pair","rows":[{"label":"Peer","value":"kit 7"}],"approve_label":"Pair","reject_label":"Refuse"}`, ""},
		{"unknown kind", `{"kind":"sign","title":"a","warnings":["b"]}`, `unknown kind "sign"`},
		{"unknown kind cut", `{"kind":"` + long(40) + `","title":"a","warnings":["b"]}`, `unknown kind "xxxxxxxxxxxxxxxx…"`},
		{"kind in capitals", `{"kind":"Choose","title":"a","choices":["x","y"]}`, `unknown kind "Choose"`},
		{"label too long", `{"title":"a","warnings":["b"],"approve_label":"` + long(MaxButtonLabel+1) + `"}`, "approve_label is 13 characters"},
		{"label blank", `{"title":"a","warnings":["b"],"reject_label":"   "}`, "reject_label is blank"},
		{"label control", `{"title":"a","warnings":["b"],"reject_label":"No` + "\u202e" + `"}`, "reject_label holds the control character U+202E"},
		{"labels alike", `{"title":"a","warnings":["b"],"approve_label":"OK","reject_label":"ok "}`, "approve_label and reject_label are alike"},
		{"labels swapped", `{"title":"a","warnings":["b"],"approve_label":"Reject"}`, "approve_label and reject_label are alike"},
		{"choices on approve", `{"title":"a","warnings":["b"],"choices":["x","y"]}`, `choices are for kind "choose" only, not "approve"`},

		{"choose", `{"kind":"choose","title":"Which is word 7?","choices":["orbit","fabric","lemon","throw"]}`, ""},
		{"choose with rows and cancel label", `{"kind":"choose","title":"Which is word 7?","rows":[{"label":"Word","value":"7 of 12"}],"choices":["a","b","c","d","e","f"],"reject_label":"Stop"}`, ""},
		{"choose one", `{"kind":"choose","title":"a","choices":["x"]}`, "1 choices, want 2 to 6"},
		{"choose none", `{"kind":"choose","title":"a"}`, "0 choices, want 2 to 6"},
		{"choose seven", `{"kind":"choose","title":"a","choices":["1","2","3","4","5","6","7"]}`, "7 choices, want 2 to 6"},
		{"choice empty", `{"kind":"choose","title":"a","choices":["x",""]}`, "choice 2 is empty"},
		{"choice blank", `{"kind":"choose","title":"a","choices":[" ","x"]}`, "choice 1 is blank"},
		{"choice too long", `{"kind":"choose","title":"a","choices":["x","` + long(MaxChoice+1) + `"]}`, "choice 2 is 25 characters, at most 24"},
		{"choice 24", `{"kind":"choose","title":"a","choices":["x","` + long(MaxChoice) + `"]}`, ""},
		{"choice newline", `{"kind":"choose","title":"a","choices":["x","y\nz"]}`, "choice 2 holds the control character U+000A"},
		{"choices alike", `{"kind":"choose","title":"a","choices":["lemon","orbit","Lemon"]}`, "choices 1 and 3 are alike"},
		// "cancel" is a BIP39 word: a backup check may offer it.
		{"choice reads as cancel", `{"kind":"choose","title":"Which is word 2?","choices":["cancel","candy","orbit","zoo"],"reject_label":"Cancel"}`, ""},
		{"choose with PIN", `{"kind":"choose","title":"a","choices":["x","y"],"pin":true}`, `pin is for kind "approve" only, not "choose"`},
		{"choose with approve label", `{"kind":"choose","title":"a","choices":["x","y"],"approve_label":"Go"}`, `approve_label is for kind "approve" only`},

		{"word", `{"kind":"word","title":"Restore wallet","rows":[{"label":"Word","value":"3 of 12"}],"reject_label":"Stop"}`, ""},
		{"word alone", `{"kind":"word","title":"Type word 3"}`, ""},
		{"word with PIN", `{"kind":"word","title":"a","pin":true}`, `pin is for kind "approve" only, not "word"`},
		{"word with choices", `{"kind":"word","title":"a","choices":["x","y"]}`, `choices are for kind "choose" only, not "word"`},
		{"word with empty choices", `{"kind":"word","title":"a","choices":[]}`, `choices are for kind "choose" only`},
		{"word without a title", `{"kind":"word"}`, "title is empty"},
	}
	rows := make([]string, MaxRows+1)
	for i := range rows {
		rows[i] = `{"label":"a","value":"b"}`
	}
	cases = append(cases, struct{ name, line, want string }{"too many rows", `{"title":"a","rows":[` + strings.Join(rows, ",") + `]}`, "33 rows, at most 32"})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := ParseRequest([]byte(c.line + "\n"))
			if c.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if r.Title == "" {
					t.Fatalf("parsed %+v", r)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want ErrInvalid saying %q", err, c.want)
			}
		})
	}
}

// server starts a Server on a socket in a temporary directory whose
// Identify names this test process "wallet" and refuses every other.
func server(t *testing.T) (*Server, string, *logBuf) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "approve.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuf{}
	s := NewServer(func(pid int32) (string, error) {
		if int(pid) == os.Getpid() {
			return "wallet", nil
		}
		return "", fmt.Errorf("process %d is not supervised", pid)
	}, logs.logf)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, path, logs
}

type logBuf struct {
	mu    sync.Mutex
	lines []string
}

func (l *logBuf) logf(f string, a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(f, a...))
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// The screen gets the request with the caller's name from Identify, and the
// caller gets the decision with the PIN; the log names the service and the
// outcome but never holds the PIN.
func TestAskApprovedWithPIN(t *testing.T) {
	s, path, logs := server(t)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket mode %v, %v; want 0660 (root's group, or the wallet's)", fi.Mode().Perm(), err)
	}
	go func() {
		p := <-s.Requests()
		if p.Service != "wallet" || p.Request.Title != "Sign transaction" || len(p.Request.Rows) != 3 || !p.Request.PIN {
			p.Decide(Answer{Reason: fmt.Sprintf("the screen got %q %+v", p.Service, p.Request)})
			return
		}
		p.Decide(Answer{Approved: true, PIN: "2468"})
	}()
	a, err := Ask(context.Background(), path, validRequest())
	if err != nil || !a.Approved || a.PIN != "2468" {
		t.Fatalf("answer %+v, %v", a, err)
	}
	if l := logs.String(); !strings.Contains(l, `wallet's "Sign transaction": approved`) || strings.Contains(l, "2468") {
		t.Errorf("log:\n%s", l)
	}
}

// A caller Identify does not know is refused before its request is read.
func TestUnknownCallerRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "approve.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(func(pid int32) (string, error) { return "", errors.New("no service runs as it") }, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Serve(ctx, ln)
	go func() {
		p := <-s.Requests()
		p.Decide(Answer{Approved: true})
	}()
	a, err := Ask(context.Background(), path, validRequest())
	if err != nil || a.Approved || !strings.HasPrefix(a.Reason, ReasonCaller+": process ") {
		t.Fatalf("answer %+v, %v; want refused", a, err)
	}
}

// A request the caller withdraws (its context ends) is gone from the
// screen; one whose time runs out is answered "timed out".
func TestWithdrawAndTimeout(t *testing.T) {
	s, path, _ := server(t)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := Ask(ctx, path, validRequest())
		errc <- err
	}()
	p := <-s.Requests()
	cancel()
	select {
	case <-p.Gone():
	case <-time.After(10 * time.Second):
		t.Fatal("a withdrawn request stayed")
	}
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("Ask after cancel: %v", err)
	}

	r := validRequest()
	r.TimeoutS = 1
	go func() {
		p := <-s.Requests()
		<-p.Gone() // nobody decides
	}()
	a, err := Ask(context.Background(), path, r)
	if err != nil || a.Approved || a.Reason != ReasonTimedOut {
		t.Fatalf("answer %+v, %v; want timed out", a, err)
	}
}

// One request on screen and MaxWaiting behind it: the next is busy at once.
func TestBusy(t *testing.T) {
	s, path, _ := server(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for range MaxWaiting + 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			Ask(ctx, path, validRequest())
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.waiting.Load() < MaxWaiting+1 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d requests accepted", s.waiting.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	a, err := Ask(context.Background(), path, validRequest())
	if err != nil || a.Reason != ReasonBusy {
		t.Fatalf("answer %+v, %v; want busy", a, err)
	}
}

// What reaches the server unchecked by Ask: an over-long line and a
// malformed one are refused with the reason.
func TestInvalidOnTheWire(t *testing.T) {
	_, path, _ := server(t)
	send := func(line string) string {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		go c.Write([]byte(line))
		b := make([]byte, 4096)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, _ := c.Read(b)
		return string(b[:n])
	}
	if got := send(strings.Repeat("x", MaxRequest+10)); !strings.Contains(got, `"reason":"invalid: 16385 bytes, over the 16384 limit"`) {
		t.Errorf("over-long line: %s", got)
	}
	if got := send(`{"title":"a","rows":[{"label":"To","value":"x` + "\u202e" + `y"}]}` + "\n"); !strings.Contains(got, `control character U+202E`) {
		t.Errorf("bidi override: %s", got)
	}
}

// A request near the size limit (32 rows of long values, about 15 KB of
// JSON) crosses whole.
func TestLargeRequest(t *testing.T) {
	s, path, _ := server(t)
	r := Request{Title: "Sign transaction"}
	for i := range MaxRows {
		r.Rows = append(r.Rows, Row{Label: fmt.Sprintf("Output %d", i+1), Value: strings.Repeat("q", 420)})
	}
	go func() {
		p := <-s.Requests()
		p.Decide(Answer{Approved: len(p.Request.Rows) == MaxRows && p.Request.Rows[MaxRows-1].Value == r.Rows[MaxRows-1].Value})
	}()
	a, err := Ask(context.Background(), path, r)
	if err != nil || !a.Approved {
		t.Fatalf("answer %+v, %v", a, err)
	}
}

// With no ui service there is nobody to ask.
func TestNoScreen(t *testing.T) {
	_, err := Ask(context.Background(), filepath.Join(t.TempDir(), "none.sock"), validRequest())
	if !errors.Is(err, ErrNoScreen) {
		t.Fatalf("Ask without a server: %v", err)
	}
	r := validRequest()
	r.Title = ""
	if _, err := Ask(context.Background(), "/nonexistent", r); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Ask with an invalid request: %v", err)
	}
}

// An answered "choose" request carries the index tapped, present even when
// it is the first; a refusal carries none. The log says "answered", never
// the choices or the choice.
func TestAskChoose(t *testing.T) {
	s, path, logs := server(t)
	r := Request{Kind: KindChoose, Title: "Which is word 7?", Choices: []string{"orbit", "fabric", "lemon", "throw"}}
	go func() {
		p := <-s.Requests()
		if p.Request.Kind != KindChoose || len(p.Request.Choices) != 4 || p.Request.Choices[2] != "lemon" {
			p.Decide(Answer{Reason: fmt.Sprintf("the screen got %+v", p.Request)})
			return
		}
		zero := 0
		p.Decide(Answer{Approved: true, Choice: &zero})
	}()
	a, err := Ask(context.Background(), path, r)
	if i, ok := a.Chosen(); err != nil || !ok || i != 0 || a.Text != "" || a.PIN != "" {
		t.Fatalf("answer %+v, %v; want choice 0", a, err)
	}
	go func() { (<-s.Requests()).Decide(Answer{Reason: ReasonRejected}) }()
	a, err = Ask(context.Background(), path, r)
	if _, ok := a.Chosen(); err != nil || ok || a.Reason != ReasonRejected {
		t.Fatalf("cancelled: %+v, %v", a, err)
	}
	l := logs.String()
	if !strings.Contains(l, `wallet asks "Which is word 7?" (choose)`) || !strings.Contains(l, `wallet's "Which is word 7?": answered`) {
		t.Errorf("log:\n%s", l)
	}
	for _, c := range r.Choices {
		if strings.Contains(l, c) {
			t.Errorf("the log names the choice %q:\n%s", c, l)
		}
	}
}

// An answered "word" request carries the word, which the log never holds.
func TestAskWord(t *testing.T) {
	s, path, logs := server(t)
	go func() {
		p := <-s.Requests()
		if p.Request.Kind != KindWord || p.Request.RejectLabel != "Stop" {
			p.Decide(Answer{Reason: fmt.Sprintf("the screen got %+v", p.Request)})
			return
		}
		p.Decide(Answer{Approved: true, Text: "abandon"})
	}()
	a, err := Ask(context.Background(), path, Request{Kind: KindWord, Title: "Restore wallet", Rows: []Row{{Label: "Word", Value: "3 of 12"}}, RejectLabel: "Stop"})
	if err != nil || !a.Approved || a.Text != "abandon" || a.Choice != nil {
		t.Fatalf("answer %+v, %v", a, err)
	}
	if l := logs.String(); strings.Contains(l, "abandon") || !strings.Contains(l, "answered") {
		t.Errorf("log:\n%s", l)
	}
}

// Ask refuses an answer that does not fit its request, so a caller never
// reads a choice of 0 that nobody made, or a word where it asked approval.
func TestAskRefusesAnswersNotFitting(t *testing.T) {
	s, path, _ := server(t)
	one, nine := 1, 9
	choose := Request{Kind: KindChoose, Title: "Which?", Choices: []string{"a", "b"}}
	word := Request{Kind: KindWord, Title: "Type"}
	approve := Request{Title: "Sign", Warnings: []string{"x"}}
	cases := []struct {
		name string
		r    Request
		a    Answer
		want string
	}{
		{"choose without a choice", choose, Answer{Approved: true}, "or none for one of kind"},
		{"choice out of range", choose, Answer{Approved: true, Choice: &nine}, "choice 9 of 2"},
		{"choice with a word", choose, Answer{Approved: true, Choice: &one, Text: "abandon"}, `a word for a request of kind "choose"`},
		{"word without a word", word, Answer{Approved: true}, `or none for one of kind "word"`},
		{"word with a choice", word, Answer{Approved: true, Text: "able", Choice: &one}, `a choice for a request of kind "word"`},
		{"word in capitals", word, Answer{Approved: true, Text: "Able"}, "not lower-case letters"},
		{"approve with a word", approve, Answer{Approved: true, Text: "able"}, `a word for a request of kind "approve"`},
		{"approve with an unasked PIN", approve, Answer{Approved: true, PIN: "1234"}, "did not ask for"},
		{"refusal with a choice", choose, Answer{Reason: ReasonRejected, Choice: &one}, "not an approval carries"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			go func() { (<-s.Requests()).Decide(c.a) }()
			a, err := Ask(context.Background(), path, c.r)
			if err == nil || !strings.Contains(err.Error(), "malformed answer") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("answer %+v, %v; want a malformed answer saying %q", a, err, c.want)
			}
		})
	}
}

// The wire form of answers: "choice" is there exactly when a choice was
// made, 0 included; an answer decodes into the same.
func TestAnswerJSON(t *testing.T) {
	zero := 0
	for _, c := range []struct {
		a    Answer
		want string
	}{
		{Answer{Approved: true, Choice: &zero}, `{"approved":true,"choice":0}`},
		{Answer{Reason: ReasonRejected}, `{"approved":false,"reason":"rejected"}`},
		{Answer{Approved: true, Text: "zoo"}, `{"approved":true,"text":"zoo"}`},
		{Answer{Approved: true, PIN: "12"}, `{"approved":true,"pin":"12"}`},
	} {
		b, err := json.Marshal(c.a)
		if err != nil || string(b) != c.want {
			t.Errorf("%+v is %s, %v; want %s", c.a, b, err, c.want)
		}
		var back Answer
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		i, ok := back.Chosen()
		j, wantOK := c.a.Chosen()
		if i != j || ok != wantOK || back.Text != c.a.Text || back.PIN != c.a.PIN || back.Approved != c.a.Approved {
			t.Errorf("%s decodes to %+v", b, back)
		}
	}
}

func FuzzParseRequest(f *testing.F) {
	f.Add([]byte(`{"title":"Sign","rows":[{"label":"To","value":"bc1q"}],"pin":true}` + "\n"))
	f.Add([]byte(`{"kind":"approve","title":"Pair","rows":[{"label":"Peer","value":"kit 7"}],"approve_label":"Pair","reject_label":"Refuse"}`))
	f.Add([]byte(`{"kind":"choose","title":"Which is word 7?","rows":[{"label":"Word","value":"7 of 12"}],"choices":["orbit","fabric","lemon","throw"],"reject_label":"Stop"}`))
	f.Add([]byte(`{"kind":"choose","title":"a","choices":["x","X "],"timeout_s":5}`))
	f.Add([]byte(`{"kind":"choose","title":"a","choices":["x","y"],"pin":true}`))
	f.Add([]byte(`{"kind":"word","title":"Restore wallet","rows":[{"label":"Word","value":"3 of 12"}]}`))
	f.Add([]byte(`{"kind":"word","title":"a","choices":[],"approve_label":"Go"}`))
	f.Add([]byte(`{"kind":"Word","title":"a"}`))
	f.Add([]byte(`{"title":"Wipe","warnings":["Erases the wallet"],"timeout_s":30}`))
	f.Add([]byte(`{"title":"a","rows":[{"label":"To","value":"x` + "\u202e" + `y"}]}`))
	f.Add([]byte(`{"title":"a","rows":null,"warnings":[""]}`))
	f.Add([]byte(`[1,2]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRequest(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error not wrapping ErrInvalid: %v", err)
			}
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("parsed a request that does not validate: %v", err)
		}
		if r.Timeout() <= 0 || r.Timeout() > MaxTimeout {
			t.Fatalf("timeout %v", r.Timeout())
		}
		switch r.Kind {
		case "", KindApprove, KindWord:
			if len(r.Choices) != 0 {
				t.Fatalf("kind %q with choices", r.Kind)
			}
		case KindChoose:
			if len(r.Choices) < MinChoices || len(r.Choices) > MaxChoices || r.PIN {
				t.Fatalf("choose with %d choices, pin %v", len(r.Choices), r.PIN)
			}
		default:
			t.Fatalf("parsed the unknown kind %q", r.Kind)
		}
		if r.Kind != "" && r.Kind != KindApprove && (r.PIN || r.ApproveLabel != "") {
			t.Fatalf("kind %q with a PIN or an approve label", r.Kind)
		}
	})
}

// The screen drops a request when it is Gone, and its drop looks like a
// Reject; it must not overtake the server's own reason. (The QEMU wallet
// test once got "rejected" for a question nobody touched: the screen's
// drop and the server's time-out raced.)
func TestDropAfterTimeoutIsNotARejection(t *testing.T) {
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	p := &Pending{ctx: ctx, answer: make(chan Answer, 1)}
	p.Decide(Answer{Reason: ReasonRejected})
	select {
	case a := <-p.answer:
		t.Fatalf("a drop after the time-out answered %+v", a)
	default:
	}
	// An approval that races the deadline still counts.
	p.Decide(Answer{Approved: true})
	if a := <-p.answer; !a.Approved {
		t.Errorf("the approval at the deadline was lost: %+v", a)
	}
}
