package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/skyfleet/skyfleet/internal/fleetconf"
	"github.com/skyfleet/skyfleet/services/meshd"
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
	os.Remove(*socket)
	ln, err := net.Listen("unix", *socket)
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
		Logf: func(format string, a ...any) {
			fmt.Printf(time.Now().Format("15:04:05 ")+format+"\n", a...)
		},
		Ready: func(n *meshd.Node) {
			fmt.Printf("mesh node %s listening on %v\n", n.Router.Address(), cfg.Node.Listen)
		},
	})
}
