package approve

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"
)

// ErrNoScreen is returned by Ask when nothing listens on the socket: the
// node has no screen (or its ui service is not running), so nobody can
// approve.
var ErrNoScreen = errors.New("approve: no screen to ask on (the ui service is not running)")

// Ask sends r to the ui service at path (SocketPath on the node) and waits
// for the answer: the person's decision, or a refusal with its reason. The
// wait ends at r's timeout (plus a margin for the answer to come back) or
// when ctx ends, which withdraws the request from the screen. Errors: r is
// invalid (wrapping ErrInvalid, checked before sending), ErrNoScreen, I/O
// errors, a malformed answer (one that is not JSON, or that does not fit r:
// a choice out of range, a word for a "choose" request, a PIN r did not ask
// for). An Answer that is not an approval is not an error: its Reason says
// why.
func Ask(ctx context.Context, path string, r Request) (Answer, error) {
	if err := r.Validate(); err != nil {
		return Answer{}, err
	}
	line, err := json.Marshal(r)
	if err != nil {
		return Answer{}, err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		var ne *net.OpError
		if errors.As(err, &ne) && ne.Op == "dial" {
			return Answer{}, fmt.Errorf("%w: %v", ErrNoScreen, err)
		}
		return Answer{}, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	c.SetDeadline(time.Now().Add(r.Timeout() + 30*time.Second))
	_, werr := c.Write(append(line, '\n'))
	// A server that refuses the caller answers before it reads the
	// request and closes, so the write may fail with the answer already
	// waiting to be read: the answer is what counts.
	b, err := bufio.NewReader(c).ReadSlice('\n')
	if err != nil {
		if ctx.Err() != nil {
			return Answer{}, ctx.Err()
		}
		if werr != nil {
			return Answer{}, werr
		}
		return Answer{}, fmt.Errorf("approve: reading the answer: %w", err)
	}
	// The line may hold a PIN or a word: it is wiped once decoded.
	defer clear(b)
	var a Answer
	if err := json.Unmarshal(b, &a); err != nil {
		return Answer{}, fmt.Errorf("approve: malformed answer: %w", err)
	}
	if err := r.checkAnswer(a); err != nil {
		return Answer{}, fmt.Errorf("approve: malformed answer: %w", err)
	}
	return a, nil
}
