package apiauth

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// Credential adds a caller's credential to a request for a Control path.
type Credential interface {
	// Authorize sets req's Authorization header. It may ask the node for a
	// challenge first, through c. Errors: the node could not be asked, or its
	// challenge is unusable.
	Authorize(c *http.Client, req *http.Request) error
}

// Token is the node's API token as a Credential (Authorization: Bearer).
type Token string

// Authorize implements Credential.
func (t Token) Authorize(_ *http.Client, req *http.Request) error {
	req.Header.Set("Authorization", "Bearer "+string(t))
	return nil
}

// MasterKey signs each request with the fleet master's key after fetching a
// challenge from the same host (GET ChallengePath).
type MasterKey struct {
	Key *secp256k1.PrivateKey
	// Node, if set, is the 33-byte key the node must have: a challenge from any
	// other key is refused, so the signature cannot be used elsewhere.
	Node []byte
}

// Authorize implements Credential: one GET of the challenge, then the signature
// over req's method and request URI.
func (m MasterKey) Authorize(c *http.Client, req *http.Request) error {
	return authorizeSigned(c, req, m.Node, func(ch Challenge) (string, error) {
		return SignRequest(m.Key, ch, req.Method, req.URL.RequestURI())
	})
}

// HostKey signs each request with a host computer's own key (HostScheme),
// for the Signed paths: the hardware wallet's host API, where the key must
// have been paired on the node's screen.
type HostKey struct {
	Key *secp256k1.PrivateKey
	// Node, if set, is the 33-byte key the node must have.
	Node []byte
}

// Authorize implements Credential as MasterKey's does, with HostScheme.
func (k HostKey) Authorize(c *http.Client, req *http.Request) error {
	return authorizeSigned(c, req, k.Node, func(ch Challenge) (string, error) {
		return SignHostRequest(k.Key, ch, req.Method, req.URL.RequestURI())
	})
}

// authorizeSigned fetches a challenge from req's host and sets the
// Authorization header sign makes from it.
func authorizeSigned(c *http.Client, req *http.Request, node []byte, sign func(Challenge) (string, error)) error {
	u := *req.URL
	u.Path, u.RawPath, u.RawQuery = ChallengePath, "", ""
	creq, err := http.NewRequestWithContext(req.Context(), http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(creq)
	if err != nil {
		return fmt.Errorf("asking %s for a challenge: %w", u.Host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s answered %s to %s: %s", u.Host, resp.Status, ChallengePath, strings.TrimSpace(string(b)))
	}
	var ch Challenge
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&ch); err != nil {
		return fmt.Errorf("%s: unreadable challenge: %w", u.Host, err)
	}
	if node != nil && !strings.EqualFold(ch.NodeKey, fmt.Sprintf("%x", node)) {
		return fmt.Errorf("%s is node %s, not the node expected", u.Host, ch.NodeKey)
	}
	h, err := sign(ch)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", h)
	return nil
}
