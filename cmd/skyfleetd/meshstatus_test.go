package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/gokrazy/supervise"
	"github.com/skyfleet/skyfleet/internal/walltime"
	"github.com/skyfleet/skyfleet/services/mesh/radio"
	"github.com/skyfleet/skyfleet/services/meshd"
)

// serveUnix serves h on a Unix socket in a fresh directory until the test ends and
// returns the socket's path.
func serveUnix(t *testing.T, h http.Handler) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mesh.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return path
}

// PID 1's /status shows the mesh service's wall clock as "clock" and its radio
// channels as "radio"; the clock is null and the radio left out when the mesh
// service does not answer, without waiting long for it.
func TestStatusShowsMeshClockAndRadio(t *testing.T) {
	channels := []meshd.RadioChannel{{Listen: "kiss+serial:///dev/ttyUSB0?baud=9600", Callsign: "N0CALL-1",
		Stats: radio.Stats{FramesIn: 7, FramesOut: 3, PortError: "open /dev/ttyUSB0: no such file or directory"}}}
	want := walltime.Status{Time: "2026-03-01T12:00:00.000Z", Known: true, Source: walltime.SourcePeer, UncertaintyMS: 12000,
		Stats: walltime.Stats{ObservationsTaken: 3, Floor: "2026-03-01T11:00:00Z"}}
	socket := serveUnix(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/status" {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(meshd.NodeStatus{Address: "x", Clock: &want, Radio: channels})
	}))
	hung := serveUnix(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	noClock := serveUnix(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(meshd.NodeStatus{Address: "x"})
	}))
	live := func() (any, any) { return []supervise.ServiceStatus{}, []string{} }
	for _, c := range []struct {
		name   string
		socket string
		want   *walltime.Status
	}{
		{"mesh answers", socket, &want},
		{"no mesh service", filepath.Join(t.TempDir(), "absent.sock"), nil},
		{"mesh service stuck", hung, nil},
		{"no clock in its status", noClock, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := &nodeState{Degraded: []string{}, mesh: meshStatus(c.socket)}
			srv := httptest.NewServer(st.handler(live, nil, nil))
			defer srv.Close()
			start := time.Now()
			resp, err := http.Get(srv.URL + "/status")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if took := time.Since(start); took > meshStatusTimeout+2*time.Second {
				t.Errorf("status took %v", took)
			}
			var doc map[string]json.RawMessage
			if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
				t.Fatal(err)
			}
			if r, ok := doc["radio"]; c.want == nil && ok {
				t.Errorf("radio = %s, want it left out", r)
			} else if c.want != nil {
				var got []meshd.RadioChannel
				if err := json.Unmarshal(r, &got); err != nil || len(got) != 1 || got[0] != channels[0] {
					t.Errorf("radio = %s (%v), want %+v", r, err, channels)
				}
			}
			raw, ok := doc["clock"]
			if !ok {
				t.Fatalf("status has no \"clock\": %v", doc)
			}
			if c.want == nil {
				if string(raw) != "null" {
					t.Errorf("clock = %s, want null", raw)
				}
				return
			}
			var got walltime.Status
			if err := json.Unmarshal(raw, &got); err != nil || got != *c.want {
				t.Errorf("clock = %s (%v), want %+v", raw, err, *c.want)
			}
		})
	}
}
