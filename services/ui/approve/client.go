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
// errors, a malformed answer. An Answer that is not an approval is not an
// error: its Reason says why.
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
	if _, err := c.Write(append(line, '\n')); err != nil {
		return Answer{}, err
	}
	b, err := bufio.NewReader(c).ReadSlice('\n')
	if err != nil {
		if ctx.Err() != nil {
			return Answer{}, ctx.Err()
		}
		return Answer{}, fmt.Errorf("approve: reading the answer: %w", err)
	}
	var a Answer
	if err := json.Unmarshal(b, &a); err != nil {
		return Answer{}, fmt.Errorf("approve: malformed answer: %w", err)
	}
	return a, nil
}
