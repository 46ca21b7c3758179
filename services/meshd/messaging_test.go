package meshd

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/internal/apiauth"
	"github.com/skyfleet/skyfleet/services/identity"
	"github.com/skyfleet/skyfleet/services/msg"
)

func call(t *testing.T, method, url string, cred apiauth.Credential, body any, out any) int {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, url, rd)
	if err := cred.Authorize(http.DefaultClient, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

// TestMessageBetweenNodes: a message sent through one node's API reaches the
// other node's inbox over the mesh (custody hop by hop), and the sender's outbox
// shows it delivered once the receipt is back.
func TestMessageBetweenNodes(t *testing.T) {
	psk := strings.Repeat("ab", 32)
	baseA, dataA, a := runNode(t, "[network]\npsk = \""+psk+"\"\n")
	peer := a.opts.Config.Node.Listen[0] + "#" + a.Key.PublicKeyHex()
	baseB, dataB, _ := runNode(t, "[network]\npsk = \""+psk+"\"\npeers = [\""+peer+"\"]\n")
	tokA, _ := apiauth.ReadToken(filepath.Join(dataA, apiauth.TokenFile))
	tokB, _ := apiauth.ReadToken(filepath.Join(dataB, apiauth.TokenFile))

	var sent msg.OutboxEntry
	deadline := time.Now().Add(10 * time.Second)
	for {
		// A's address resolves once its announcement reached B.
		code := call(t, "POST", baseB+"/msg/send", apiauth.Token(tokB), msg.SendRequest{To: a.Address(), Text: "hello from B"}, &sent)
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("send: %d", code)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var inbox []msg.InboxEntry
	for deadline := time.Now().Add(15 * time.Second); ; {
		call(t, "GET", baseA+"/msg/inbox", apiauth.Token(tokA), nil, &inbox)
		if len(inbox) == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(inbox) != 1 || inbox[0].Text != "hello from B" || inbox[0].ID != sent.ID {
		t.Fatalf("A's inbox: %+v", inbox)
	}
	var outbox []msg.OutboxEntry
	for deadline := time.Now().Add(15 * time.Second); ; {
		call(t, "GET", baseB+"/msg/outbox", apiauth.Token(tokB), nil, &outbox)
		if (len(outbox) == 1 && outbox[0].State == msg.StateDelivered) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(outbox) != 1 || outbox[0].State != msg.StateDelivered {
		t.Fatalf("B's outbox: %+v", outbox)
	}
	// Without a credential the messaging API is closed.
	if code, _ := get(t, "GET", baseA+"/msg/inbox", nil); code != http.StatusUnauthorized {
		t.Fatalf("inbox without a credential: %d", code)
	}
}

// TestResolveLearntKey: an address that has left the topology (or was learnt
// from it earlier) still resolves, so messages to a node that is off are kept
// for it.
func TestResolveLearntKey(t *testing.T) {
	_, _, a := runNode(t, "")
	k, err := identity.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	addr := k.Address().String()
	if _, err := a.resolve(addr); err == nil {
		t.Fatal("an unknown address resolved")
	}
	a.Msg.Learn(addr, [33]byte(k.PublicKey()))
	got, err := a.resolve(addr)
	if err != nil || got != [33]byte(k.PublicKey()) {
		t.Fatalf("learnt address: %v", err)
	}
}
