package approve

import (
	"context"
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
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, %v; want 0600", fi.Mode().Perm(), err)
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

func FuzzParseRequest(f *testing.F) {
	f.Add([]byte(`{"title":"Sign","rows":[{"label":"To","value":"bc1q"}],"pin":true}` + "\n"))
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
	})
}
