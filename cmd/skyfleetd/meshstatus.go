package main

import (
	"encoding/json"
	"io"
	"net/http"
	"time"
)

// meshStatusTimeout bounds PID 1's question to the mesh service, which a public
// GET /status waits for: a mesh service that is starting, restarting or stuck
// must not hold the status page.
const meshStatusTimeout = time.Second

// meshParts is what PID 1's /status shows of the mesh service's: each part as
// the service wrote it, nil when it has none.
type meshParts struct {
	// Clock is the node's wall clock (walltime.Status): the node's real time
	// lives in the mesh service, next to the gossip it learns from.
	Clock json.RawMessage
	// Radio is the radio channels with their counters and why one is down
	// (meshd.RadioChannel); public, as on `skyfleet node`'s /status.
	Radio json.RawMessage
}

// meshStatus returns a function that asks the mesh service on its Unix socket
// for its /status (meshd.NodeStatus) and returns the parts PID 1's /status
// shows too. The parts are nil, shown as null or left out, when the service
// does not answer in time or has none.
func meshStatus(socket string) func() meshParts {
	c := &http.Client{Timeout: meshStatusTimeout, Transport: unixTransport(socket)}
	return func() meshParts {
		resp, err := c.Get("http://mesh/status")
		if err != nil {
			return meshParts{}
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return meshParts{}
		}
		var st struct {
			Clock json.RawMessage `json:"clock"`
			Radio json.RawMessage `json:"radio"`
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st); err != nil {
			return meshParts{}
		}
		if string(st.Clock) == "null" {
			st.Clock = nil
		}
		if string(st.Radio) == "null" {
			st.Radio = nil
		}
		return meshParts{Clock: st.Clock, Radio: st.Radio}
	}
}
