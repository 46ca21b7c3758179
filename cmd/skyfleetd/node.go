package main

import (
	"encoding/json"
	"net/http"
	"sync"

	"github.com/skyfleet/skyfleet/gokrazy/power"
	"github.com/skyfleet/skyfleet/gokrazy/watchdog"
	"github.com/skyfleet/skyfleet/internal/fleetconf"
	"github.com/skyfleet/skyfleet/services/update"
)

// nodeState is what PID 1 knows about the node and serves as GET /status. Fields set
// during boot are written once under mu; services come live from the supervisor.
type nodeState struct {
	mu           sync.Mutex
	Address      string              `json:"address"`
	PublicKey    string              `json:"public_key"`
	Board        string              `json:"board"`
	Version      string              `json:"version"`
	Slot         string              `json:"slot"`
	Hostname     string              `json:"hostname"`
	BootMS       int64               `json:"boot_ms"` // kernel start to all services ready; 0 until then
	ConfigErrors []fleetconf.Problem `json:"config_errors"`
	// LinksRefused, when set, says the mesh links with nobody because fleet.toml
	// failed closed (fleetconf.FailClosed); config_errors has the fatal problems.
	LinksRefused string `json:"links_refused,omitempty"`
	// Degraded lists what failed at boot that the node runs without, e.g. "perm: ...".
	Degraded []string  `json:"degraded"`
	Perm     permState `json:"perm"`
	// BootRepair is what this boot repaired on the boot partition, which a
	// power cut during an update had left dirty ("" when it was clean).
	BootRepair string `json:"boot_repair,omitempty"`
	watchdog   func() watchdog.Status
	// mesh asks the mesh service for its clock and radio channels
	// (meshStatus); set before the socket is served.
	mesh func() meshParts
	// updater applies update bundles; nil without a boot partition. Set
	// before the socket is served.
	updater *update.Updater
}

// permState says where node state lives and whether it persists.
type permState struct {
	Mounted bool   `json:"mounted"`
	Device  string `json:"device,omitempty"`
	Grown   bool   `json:"grown,omitempty"` // grown to the card's size on this boot
	Error   string `json:"error,omitempty"`
}

// statusDoc is the JSON of GET /status: the node state plus the live parts.
type statusDoc struct {
	*nodeState
	UptimeS  float64          `json:"uptime_s"`
	Services any              `json:"services"`
	Network  any              `json:"network"`
	Watchdog *watchdog.Status `json:"watchdog"`
	// Clock is the node's wall-clock time as the mesh service keeps it
	// (walltime.Status: known or not, source, uncertainty, counts): the node's
	// real time lives in that service, next to the gossip it learns from. null
	// while the mesh service does not answer.
	Clock json.RawMessage `json:"clock"`
	// Radio is the mesh service's radio channels (meshd.RadioChannel: the
	// listen entry, the callsign, frame and error counters, airtime, busy
	// time, why the port is down); left out without a radio channel or
	// while the mesh service does not answer.
	Radio json.RawMessage `json:"radio,omitempty"`
	// Wifi is the Wi-Fi service's state (services/wifi.Status without the
	// scan list and peers' addresses); null until the service has written it.
	Wifi json.RawMessage `json:"wifi"`
	// Update is the A/B update state: running, default and trial slots, the
	// other slot's version and the last update's outcome; null when the node
	// cannot update (no boot partition).
	Update *update.Status `json:"update"`
}

func (n *nodeState) degrade(what string, err error) {
	n.mu.Lock()
	n.Degraded = append(n.Degraded, what+": "+err.Error())
	n.mu.Unlock()
}

// handler serves PID 1's socket API: GET /status and /services/{name}/log for
// everyone, POST /poweroff and /reboot for local processes only, PUT /update
// for what the status service admits (the master or a local credential).
func (n *nodeState) handler(live func() (services, network any), logs func(string) ([]byte, bool), pw *power.Power) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		doc := statusDoc{nodeState: n, UptimeS: kernelUptime().Seconds()}
		doc.Services, doc.Network = live()
		if n.mesh != nil {
			m := n.mesh() // a socket call: not under n.mu
			doc.Clock, doc.Radio = m.Clock, m.Radio
		}
		doc.Wifi = publicWifi(wifiStatusFile)
		if n.updater != nil {
			s := n.updater.Status()
			doc.Update = &s
		}
		n.mu.Lock()
		defer n.mu.Unlock()
		if n.watchdog != nil {
			s := n.watchdog()
			doc.Watchdog = &s
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(doc)
	})
	mux.HandleFunc("GET /services/{name}/log", func(w http.ResponseWriter, r *http.Request) {
		b, ok := logs(r.PathValue("name"))
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(b)
	})
	mux.HandleFunc("POST /poweroff", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		go pw.Poweroff()
	})
	mux.HandleFunc("PUT /update", serveUpdate(n.updater))
	mux.HandleFunc("POST /update/reboot", serveUpdateReboot(n.updater))
	mux.HandleFunc("GET /update/held", serveUpdateHeld(n.updater))
	mux.HandleFunc("POST /reboot", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		go pw.Reboot()
	})
	return mux
}
