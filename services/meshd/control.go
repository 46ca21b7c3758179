package meshd

import (
	"context"
	"net"
	"os"
	"time"

	"github.com/skyfleet/skyfleet/services/control"
	"github.com/skyfleet/skyfleet/services/control/remote"
	"github.com/skyfleet/skyfleet/services/mesh"
	"github.com/skyfleet/skyfleet/services/mesh/topology"
)

// startControl runs fleet control on a node whose fleet.toml names a master: the
// reporting loop to the master's ReportPort and the SSH server on SSHPort that only
// the master's key may use (which also leads to this node's status API, where
// each request still needs the master's signature). Both log through
// Options.Logf, which is the node's log.
func (n *Node) startControl(ctx context.Context, master []byte, seq func() uint64) error {
	var mk topology.Key
	copy(mk[:], master)
	ln, err := n.Router.Listen(control.SSHPort)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{}, 2)
	n.stopControl = func() {
		cancel()
		ln.Close()
		<-done
		<-done
	}
	srv := &remote.Server{Master: master, HostKey: n.Key.PrivateKey(), API: loopback(n.opts.Config.Node.Status), Logf: n.opts.Logf}
	go func() {
		defer func() { done <- struct{}{} }()
		srv.Serve(ln)
	}()
	rep := &control.Reporter{
		Key:    n.Key.PrivateKey(),
		Master: master,
		Dial: func(ctx context.Context) (net.Conn, error) {
			return n.Router.Dial(ctx, mk, control.ReportPort)
		},
		Describe: n.describe,
		Seq:      seq,
		Interval: n.opts.Config.Master.Interval(),
		Logf:     n.opts.Logf,
	}
	go func() {
		defer func() { done <- struct{}{} }()
		rep.Run(ctx)
	}()
	n.logf("control: reporting to master %s every %v; remote shell on mesh port %d for the master's key only",
		mesh.Addr{Key: mk, Port: control.ReportPort}, rep.Interval, control.SSHPort)
	return nil
}

// loopback is the address at which this machine reaches a server listening on
// addr (host:port): a wildcard host becomes the loopback address of its
// family. "" if addr is not host:port.
func loopback(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}

// describe is the node's report: what Options.Describe knows plus the mesh links.
func (n *Node) describe() control.Report {
	var r control.Report
	if n.opts.Describe != nil {
		r = n.opts.Describe()
	} else {
		r = control.Report{
			Board:         "host",
			UptimeSeconds: time.Since(n.started).Seconds(),
			Services:      []control.ServiceState{{Name: "mesh", State: "running"}},
		}
		if h, err := os.Hostname(); err == nil && n.opts.Config.Node.Name == "" {
			r.Name = h
		}
	}
	if r.Name == "" {
		r.Name = n.opts.Config.Node.Name
	}
	if r.Version == "" {
		r.Version = n.opts.Version
	}
	for _, l := range n.Router.Links() {
		r.Links = append(r.Links, control.Link{
			Address: l.Address,
			Up:      l.Up,
			RTTms:   l.RTTms,
			Loss:    l.Loss,
			TxBps:   l.TxBps,
			RxBps:   l.RxBps,
		})
	}
	return r
}
