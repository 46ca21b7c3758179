package meshd

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/internal/apiauth"
	"github.com/skyfleet/skyfleet/services/msg"
)

// phone is an HTTP client with a cookie jar, as a phone's browser on the kit's
// network: no Authorization header, JSON bodies.
type phone struct {
	t    *testing.T
	c    *http.Client
	base string
}

func newPhone(t *testing.T, base string) *phone {
	jar, _ := cookiejar.New(nil)
	return &phone{t: t, c: &http.Client{Jar: jar, Timeout: 10 * time.Second}, base: base}
}

// do sends method path with body (JSON unless ctype says otherwise) and
// decodes the answer into out; it returns the status code and the raw body.
func (p *phone) do(method, path string, body any, ctype string, out any) (int, string) {
	p.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
		if ctype == "" {
			ctype = "application/json"
		}
	}
	req, _ := http.NewRequest(method, p.base+path, rd)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := p.c.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		json.Unmarshal(raw, out)
	}
	return resp.StatusCode, string(raw)
}

// TestMessagingPage: a phone logs in to node A with the passphrase and sends a
// message to node B, which is open; another phone reads it on B without any
// credential, and A's outbox shows it delivered. Neither phone reaches a
// control path, and the passphrase shows nowhere.
func TestMessagingPage(t *testing.T) {
	psk := strings.Repeat("cd", 32)
	const pass = "kit seven, channel 3"
	baseA, _, a := runNode(t, "[network]\npsk = \""+psk+"\"\n[messaging]\npassphrase = \""+pass+"\"\n")
	peer := a.opts.Config.Node.Listen[0] + "#" + a.Key.PublicKeyHex()
	baseB, _, b := runNode(t, "[network]\npsk = \""+psk+"\"\npeers = [\""+peer+"\"]\n[messaging]\nopen = true\n")
	pa, pb := newPhone(t, baseA), newPhone(t, baseB)

	// The page is public, with its CSP.
	resp, err := http.Get(baseA + "/msg/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Fatalf("GET /msg/: %d CSP %q", resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
	}

	var refusal map[string]string
	if code, _ := pa.do("GET", "/msg/inbox", nil, "", &refusal); code != 401 || refusal["messaging"] != apiauth.MessagingPassphrase {
		t.Fatalf("A's inbox before login: %d %v", code, refusal)
	}
	if code, body := pa.do("POST", "/msg/login", map[string]string{"passphrase": "kit seven, channel 4"}, "", nil); code != 401 || strings.Contains(body, "kit seven") {
		t.Fatalf("wrong passphrase: %d %s", code, body)
	}
	if code, body := pa.do("POST", "/msg/login", map[string]string{"passphrase": pass}, "text/plain", nil); code != 415 {
		t.Fatalf("login as text/plain: %d %s", code, body)
	}
	if code, body := pa.do("POST", "/msg/login", map[string]string{"passphrase": pass}, "", nil); code != 200 {
		t.Fatalf("login: %d %s", code, body)
	}

	var sent msg.OutboxEntry
	for deadline := time.Now().Add(10 * time.Second); ; {
		// B's address resolves once its announcement reached A.
		code, body := pa.do("POST", "/msg/send", msg.SendRequest{To: b.Address(), Text: "water at the school, 3 pm ✓"}, "", &sent)
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("send: %d %s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, _ := pa.do("POST", "/msg/send", msg.SendRequest{To: b.Address(), Text: "x"}, "text/plain", nil); code != 415 {
		t.Errorf("send as text/plain with the session: %d, want 415", code)
	}
	for _, p := range []*phone{pa, pb} {
		for _, path := range []string{"/mesh/links", "/saf/stats"} {
			if code, _ := p.do("GET", path, nil, "", nil); code != 401 {
				t.Errorf("%s%s from a phone: %d, want 401", p.base, path, code)
			}
		}
	}

	var inbox []msg.InboxEntry
	for deadline := time.Now().Add(15 * time.Second); ; {
		pb.do("GET", "/msg/inbox", nil, "", &inbox)
		if len(inbox) == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(inbox) != 1 || inbox[0].Text != "water at the school, 3 pm ✓" || inbox[0].From != a.Address() {
		t.Fatalf("B's inbox read by an open phone: %+v", inbox)
	}
	var outbox []msg.OutboxEntry
	for deadline := time.Now().Add(15 * time.Second); ; {
		pa.do("GET", "/msg/outbox", nil, "", &outbox)
		if (len(outbox) == 1 && outbox[0].State == msg.StateDelivered) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(outbox) != 1 || outbox[0].State != msg.StateDelivered || outbox[0].ID != sent.ID {
		t.Fatalf("A's outbox: %+v", outbox)
	}

	var st NodeStatus
	code, body := pa.do("GET", "/status", nil, "", &st)
	if code != 200 || st.API == nil || st.API.Messaging != apiauth.MessagingPassphrase || st.API.Sessions != 1 || strings.Contains(body, "kit seven") {
		t.Errorf("A's status: %d %s", code, body)
	}
	if code, _ := pa.do("POST", "/msg/logout", struct{}{}, "", nil); code != 200 {
		t.Errorf("logout: %d", code)
	}
	if code, _ := pa.do("GET", "/msg/inbox", nil, "", nil); code != 401 {
		t.Errorf("A's inbox after logout: %d, want 401", code)
	}
}
