package meshd

import (
	"context"
	"encoding/hex"
	"net"
	"os"
	"sync"
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
	n.master.mu.Lock()
	n.master.key = hex.EncodeToString(master)
	n.master.mu.Unlock()
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
		Sent:     func(uint64) { n.master.acked(time.Now()) },
		Failed:   n.master.failed,
	}
	go func() {
		defer func() { done <- struct{}{} }()
		rep.Run(ctx)
	}()
	n.logf("control: reporting to master %s every %v; remote shell on mesh port %d for the master's key only",
		mesh.Addr{Key: mk, Port: control.ReportPort}, rep.Interval, control.SSHPort)
	return nil
}

// masterLink is what the node knows of its link to the master: the reports
// the master acknowledged since the start, when the last was, and the last
// attempt's error. PID 1 waits on it before it commits a trial boot.
type masterLink struct {
	mu      sync.Mutex
	key     string
	reports uint64
	last    time.Time
	err     string
}

// maxMasterErr bounds the error kept (it is shown on the status page).
const maxMasterErr = 256

func (m *masterLink) acked(now time.Time) {
	m.mu.Lock()
	m.reports++
	m.last, m.err = now, ""
	m.mu.Unlock()
}

func (m *masterLink) failed(err error) {
	s := err.Error()
	if len(s) > maxMasterErr {
		s = s[:maxMasterErr]
	}
	m.mu.Lock()
	m.err = s
	m.mu.Unlock()
}

// MasterLink is NodeStatus.Master: the node's reports to the master it is
// configured with.
type MasterLink struct {
	// PublicKey is the master's key, 66 hex characters.
	PublicKey string `json:"public_key"`
	// Reports is how many reports the master acknowledged since the mesh
	// service started; LastReportAgoS how long ago the last was, in seconds.
	Reports        uint64  `json:"reports_acked"`
	LastReportAgoS float64 `json:"last_report_ago_s,omitempty"`
	// LastError is why the latest attempt failed; "" once one succeeds.
	LastError string `json:"last_error,omitempty"`
}

func (m *masterLink) status(now time.Time) *MasterLink {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.key == "" {
		return nil
	}
	st := &MasterLink{PublicKey: m.key, Reports: m.reports, LastError: m.err}
	if !m.last.IsZero() {
		st.LastReportAgoS = now.Sub(m.last).Seconds()
	}
	return st
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
