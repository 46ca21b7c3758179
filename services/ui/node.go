package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/skyfleet/skyfleet/internal/apiauth"
	"github.com/skyfleet/skyfleet/ui/screens"
)

// API is the node's HTTP API as the ui service uses it: the public status,
// and with the node's API token (a local credential only root on the node
// can read) the mesh links and the messaging paths. It implements
// screens.Messenger.
type API struct {
	// Base is the status service's URL, e.g. "http://127.0.0.1:80".
	Base string
	// Cred authorizes the control and messaging paths.
	Cred   apiauth.Credential
	Client *http.Client
	// Name is the node's name from fleet.toml, shown on the status page.
	Name string
	// Timeout bounds each request (default 5 s): the screen never waits
	// long on a busy node.
	Timeout time.Duration
}

// maxBody bounds what the ui reads of any answer.
const maxBody = 4 << 20

func (a *API) get(path string, auth bool, v any) error {
	return a.do(http.MethodGet, path, auth, nil, v)
}

func (a *API) do(method, path string, auth bool, body, v any) error {
	timeout := a.Timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(a.Base, "/")+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	c := a.Client
	if c == nil {
		c = http.DefaultClient
	}
	if auth && a.Cred != nil {
		if err := a.Cred.Authorize(c, req); err != nil {
			return err
		}
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s", e.Error)
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	return json.Unmarshal(b, v)
}

// Status gathers what the status page shows: GET /status (public), GET
// /mesh/links and the message counts (control). A part that fails is left
// out and the error of the first returned with what was gathered.
func (a *API) Status() (screens.Status, error) {
	var st struct {
		Address string `json:"address"`
		Version string `json:"version"`
		Slot    string `json:"slot"`
		Update  *struct {
			State string `json:"state"`
		} `json:"update"`
		// Radio is the mesh service's channels (meshd.RadioChannel).
		Radio []struct {
			Listen   string `json:"listen"`
			Callsign string `json:"callsign"`
			Stats    struct {
				FramesIn         uint64        `json:"frames_in"`
				FramesOut        uint64        `json:"frames_out"`
				BadFrames        uint64        `json:"bad_frames"`
				FCSErrors        uint64        `json:"fcs_errors"`
				FramingErrors    uint64        `json:"framing_errors"`
				PortError        string        `json:"port_error"`
				EstimatedAirtime time.Duration `json:"estimated_airtime_ns"`
				Airtime          time.Duration `json:"airtime_ns"`
				BusyTime         time.Duration `json:"busy_time_ns"`
			} `json:"stats"`
		} `json:"radio"`
	}
	var firstErr error
	keep := func(err error) {
		if firstErr == nil {
			firstErr = err
		}
	}
	out := screens.Status{Name: a.Name}
	if err := a.get("/status", false, &st); err != nil {
		keep(fmt.Errorf("status: %w", err))
	}
	out.Address = st.Address
	if out.Name == "" && len(st.Address) > 10 {
		out.Name = "node " + st.Address[:6]
	}
	out.Update = st.Version
	if st.Slot != "" {
		out.Update += ", slot " + st.Slot
	}
	if st.Update != nil && st.Update.State != "" {
		out.Update += " (" + st.Update.State + ")"
	}
	for _, r := range st.Radio {
		s := r.Stats
		ch := screens.RadioChannel{Name: r.Listen, Callsign: r.Callsign, Down: s.PortError,
			FramesIn: s.FramesIn, FramesOut: s.FramesOut, Errors: s.BadFrames + s.FCSErrors + s.FramingErrors,
			Airtime: s.Airtime, Busy: s.BusyTime}
		if ch.Airtime == 0 { // a port that cannot measure it: the estimate
			ch.Airtime = s.EstimatedAirtime
		}
		out.Radio = append(out.Radio, ch)
	}
	var links struct {
		Links []struct {
			Address string          `json:"address"`
			Up      bool            `json:"up"`
			RTTms   float64         `json:"rtt_ms"`
			Loss    float64         `json:"loss"`
			Radio   bool            `json:"radio"`
			Medium  json.RawMessage `json:"medium"`
		} `json:"links"`
	}
	if err := a.get("/mesh/links", true, &links); err != nil {
		keep(fmt.Errorf("links: %w", err))
	}
	for _, l := range links.Links {
		if !l.Up {
			continue
		}
		sl := screens.Link{Peer: shortAddr(l.Address), Medium: "ip", RTTms: int(l.RTTms + 0.5), Loss: l.Loss}
		if l.Radio {
			sl.Medium = "radio"
		}
		var m struct {
			Kind   string `json:"kind"`
			Signal int    `json:"signal_dbm"`
		}
		if len(l.Medium) > 0 && json.Unmarshal(l.Medium, &m) == nil {
			sl.Medium, sl.Signal = "wifi", m.Signal
			if m.Kind != "" {
				sl.Medium = m.Kind
			}
		}
		out.Links = append(out.Links, sl)
	}
	if ob, err := a.outbox(); err == nil {
		for _, e := range ob {
			if e.State == "held" || e.State == "forwarded" {
				out.Waiting++
			}
		}
	} else {
		keep(fmt.Errorf("outbox: %w", err))
	}
	return out, firstErr
}

type inboxEntry struct {
	From, Text, ReceivedAt string
}

type outboxEntry struct {
	To, Text, SentAt, State string
}

func (a *API) inbox() ([]inboxEntry, error) {
	var in []struct {
		From       string `json:"from"`
		Text       string `json:"text"`
		ReceivedAt string `json:"received_at"`
	}
	err := a.get("/msg/inbox", true, &in)
	out := make([]inboxEntry, len(in))
	for i, e := range in {
		out[i] = inboxEntry{e.From, e.Text, e.ReceivedAt}
	}
	return out, err
}

func (a *API) outbox() ([]outboxEntry, error) {
	var ob []struct {
		To     string `json:"to"`
		Text   string `json:"text"`
		SentAt string `json:"sent_at"`
		State  string `json:"state"`
	}
	err := a.get("/msg/outbox", true, &ob)
	out := make([]outboxEntry, len(ob))
	for i, e := range ob {
		out[i] = outboxEntry{e.To, e.Text, e.SentAt, e.State}
	}
	return out, err
}

// Threads implements screens.Messenger: the inbox and the outbox grouped by
// peer, the newest conversation first.
func (a *API) Threads() []screens.Thread {
	in, _ := a.inbox()
	ob, _ := a.outbox()
	type th struct {
		screens.Thread
		at string
	}
	by := map[string]*th{}
	get := func(p string) *th {
		if by[p] == nil {
			by[p] = &th{Thread: screens.Thread{Peer: p}}
		}
		return by[p]
	}
	for _, e := range in {
		t := get(e.From)
		if e.ReceivedAt >= t.at {
			t.Last, t.at = e.Text, e.ReceivedAt
		}
	}
	for _, e := range ob {
		t := get(e.To)
		t.State = e.State
		if e.SentAt >= t.at {
			t.Last, t.at = e.Text, e.SentAt
		}
	}
	list := make([]*th, 0, len(by))
	for _, t := range by {
		list = append(list, t)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].at > list[j].at })
	out := make([]screens.Thread, len(list))
	for i, t := range list {
		out[i] = t.Thread
	}
	return out
}

// Thread implements screens.Messenger.
func (a *API) Thread(peer string) []screens.Message {
	in, _ := a.inbox()
	ob, _ := a.outbox()
	type msg struct {
		screens.Message
		at string
	}
	var ms []msg
	for _, e := range in {
		if e.From == peer {
			ms = append(ms, msg{screens.Message{Text: e.Text, Time: parseTime(e.ReceivedAt)}, e.ReceivedAt})
		}
	}
	for _, e := range ob {
		if e.To == peer {
			ms = append(ms, msg{screens.Message{Outgoing: true, Text: e.Text, Time: parseTime(e.SentAt), State: e.State}, e.SentAt})
		}
	}
	sort.SliceStable(ms, func(i, j int) bool { return ms[i].at < ms[j].at })
	out := make([]screens.Message, len(ms))
	for i, m := range ms {
		out[i] = m.Message
	}
	return out
}

// Send implements screens.Messenger: POST /msg/send, which returns once
// the node holds the message durably.
func (a *API) Send(peer, text string) error {
	var out map[string]any
	return a.do(http.MethodPost, "/msg/send", true, map[string]string{"to": peer, "text": text}, &out)
}

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

func shortAddr(s string) string {
	if len(s) > 12 {
		return s[:6] + "…" + s[len(s)-4:]
	}
	return s
}
