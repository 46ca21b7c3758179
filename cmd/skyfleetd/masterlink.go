package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// masterLinkWait is how long a trial boot waits for its first report to reach
// the master before it gives up and goes back to the old slot. The QEMU node
// registers about a second after its services are ready; two minutes leave
// room for a slow radio hop and a master that is busy.
const masterLinkWait = 2 * time.Minute

// masterLinkPoll is how often the mesh service is asked meanwhile.
const masterLinkPoll = time.Second

// meshMaster is the "master" of the mesh service's /status (meshd.MasterLink),
// the fields PID 1 reads.
type meshMaster struct {
	PublicKey string `json:"public_key"`
	Reports   uint64 `json:"reports_acked"`
	LastError string `json:"last_error"`
}

// masterLinked waits until the mesh service on socket says the master
// acknowledged a report from this boot: the health check's "a link to the
// master when one is configured" (issue 11). It returns nil at once when
// master (the configured key, hex) is "", and an error naming the master and
// the last failure when ctx ends first. A mesh service that answers about
// another master (fleet.toml changed under it) does not count.
func masterLinked(ctx context.Context, socket, master string) error {
	if master == "" {
		return nil
	}
	c := &http.Client{Timeout: meshStatusTimeout, Transport: unixTransport(socket)}
	defer c.CloseIdleConnections()
	last := "the mesh service did not answer"
	t := time.NewTicker(masterLinkPoll)
	defer t.Stop()
	for {
		m, err := askMaster(ctx, c)
		switch {
		case err != nil:
			last = "the mesh service: " + err.Error()
		case m == nil:
			last = "the mesh service reports to no master"
		case !strings.EqualFold(m.PublicKey, master):
			last = "the mesh service reports to master " + m.PublicKey
		case m.Reports > 0:
			return nil
		case m.LastError != "":
			last = "the last report failed: " + m.LastError
		default:
			last = "no report has reached it yet"
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no link to the master %.16s…: %s", master, last)
		case <-t.C:
		}
	}
}

// askMaster reads the "master" of the mesh service's /status; nil when the
// status has none.
func askMaster(ctx context.Context, c *http.Client) (*meshMaster, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://mesh/status", nil)
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	var st struct {
		Master *meshMaster `json:"master"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st); err != nil {
		return nil, err
	}
	return st.Master, nil
}
