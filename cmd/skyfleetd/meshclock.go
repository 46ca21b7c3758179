package main

import (
	"encoding/json"
	"io"
	"net/http"
	"time"
)

// meshClockTimeout bounds PID 1's question to the mesh service, which a public
// GET /status waits for: a mesh service that is starting, restarting or stuck
// must not hold the status page.
const meshClockTimeout = time.Second

// meshClock returns a function that asks the mesh service on its Unix socket for
// its wall clock, the "clock" of its /status (meshd.NodeStatus), so that PID 1's
// /status shows the node's real time too. The function returns nil, shown as null,
// when the service does not answer in time or has no clock.
func meshClock(socket string) func() json.RawMessage {
	c := &http.Client{Timeout: meshClockTimeout, Transport: unixTransport(socket)}
	return func() json.RawMessage {
		resp, err := c.Get("http://mesh/status")
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil
		}
		var st struct {
			Clock json.RawMessage `json:"clock"`
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st); err != nil || len(st.Clock) == 0 || string(st.Clock) == "null" {
			return nil
		}
		return st.Clock
	}
}
