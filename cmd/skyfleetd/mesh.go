package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/skyfleet/skyfleet/internal/fleetconf"
	"github.com/skyfleet/skyfleet/internal/unixsock"
	"github.com/skyfleet/skyfleet/services/control"
	"github.com/skyfleet/skyfleet/services/meshd"
	"github.com/skyfleet/skyfleet/services/wifi"
)

// meshSocket is the mesh service's HTTP/JSON API; the status service proxies /mesh/.
const meshSocket = "/run/skyfleet/mesh.sock"

// runMesh is the mesh service: the same node code as `skyfleet node` on a host, with
// fleet.toml from the boot partition and the key in the data directory PID 1 chose.
func runMesh(args []string) error {
	fs := flag.NewFlagSet("mesh", flag.ContinueOnError)
	config := fs.String("config", "/boot/fleet.toml", "fleet.toml to read")
	data := fs.String("data", "", "data directory holding node.key (default: [node] data)")
	socket := fs.String("socket", meshSocket, "Unix socket to serve the mesh API on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, problems := fleetconf.Load(*config, true)
	if *data != "" {
		cfg.Node.Data = *data
	}
	// The socket serves every path without a credential (TrustedListener), so
	// only root may connect to it.
	ln, err := unixsock.Listen(*socket, 0o600)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return meshd.Run(ctx, meshd.Options{
		Config:   cfg,
		Problems: problems,
		Version:  version,
		Listener: ln,
		// Only root reaches the socket; the status service enforces access.
		TrustedListener: true,
		// The Pi imports and exports the bundles of USB sticks plugged in.
		USBSticks: true,
		Logf: func(format string, a ...any) {
			fmt.Printf(time.Now().Format("15:04:05 ")+format+"\n", a...)
		},
		Describe: describeNode,
		Ready: func(n *meshd.Node) {
			if n.Router != nil {
				// /mesh/links says which links the Wi-Fi radio carries, and their signal.
				n.Router.SetLinkInfo(wifi.LinkInfo(wifiStatusFile, "/proc/net/arp"))
			}
			if n.Refused != "" {
				fmt.Printf("mesh node %s links with nobody: %s\n", n.Address(), n.Refused)
				return
			}
			fmt.Printf("mesh node %s listening on %v\n", n.Address(), cfg.Node.Listen)
		},
	})
}

// describeNode is what the node reports to its master beyond the mesh, from PID 1's
// /status: board, version, slot, uptime since the kernel started and the services.
// If PID 1 does not answer, the report says so in a service state rather than
// failing: the master should still hear from the node.
func describeNode() control.Report {
	var st struct {
		Board    string  `json:"board"`
		Version  string  `json:"version"`
		Slot     string  `json:"slot"`
		Hostname string  `json:"hostname"`
		UptimeS  float64 `json:"uptime_s"`
		Services []struct {
			Name     string `json:"name"`
			State    string `json:"state"`
			Restarts int    `json:"restarts"`
		} `json:"services"`
		Update *control.UpdateState `json:"update"`
	}
	r := control.Report{Board: "unknown", Version: version}
	resp, err := unixClient.Get("http://init/status")
	if err == nil {
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
	}
	if err != nil {
		r.Services = []control.ServiceState{{Name: "init", State: "unreachable: " + err.Error()}}
		return r
	}
	r.Board, r.Version, r.Slot, r.UptimeSeconds = st.Board, st.Version, st.Slot, st.UptimeS
	r.Name, r.Update = st.Hostname, st.Update
	for _, s := range st.Services {
		r.Services = append(r.Services, control.ServiceState{Name: s.Name, State: s.State, Restarts: s.Restarts})
	}
	return r
}
