//go:build e2e

package dashboard

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/skyfleet/skyfleet/e2e/browser"
)

// These tests load the dashboard in headless Chromium against a fake master API and
// check the DOM the app built. A missing Chromium fails them (CI installs it).

func TestBrowserOverview(t *testing.T) {
	f := newFleet(20)
	srv := f.serve(t)
	doc := render(t, srv.URL+"/", "dashboard-overview.png")

	body := find(doc, isTag("body"))[0]
	if attr(body, "data-loaded") != "1" {
		t.Fatalf("body data-loaded = %q, want 1 (the first load failed or never finished)", attr(body, "data-loaded"))
	}
	if b := byID(doc, "banner"); b == nil || !hasAttr(b, "hidden") {
		t.Errorf("error banner shown: %q", text(b))
	}

	rows := find(byID(doc, "nodes"), func(n *html.Node) bool { return isTag("tr")(n) && hasClass(n, "node-row") })
	if len(rows) != len(f.nodes) {
		t.Errorf("%d tr.node-row rows, want %d", len(rows), len(f.nodes))
	}
	for _, r := range rows {
		if _, ok := f.byAddr[attr(r, "data-address")]; !ok {
			t.Errorf("row with data-address %q, not a node", attr(r, "data-address"))
		}
	}
	if got, want := text(byID(doc, "node-count")), fmt.Sprint(len(f.nodes)); got != want {
		t.Errorf("#node-count = %q, want %q", got, want)
	}
	if got, want := text(byID(doc, "online-count")), fmt.Sprint(f.online()); got != want {
		t.Errorf("#online-count = %q, want %q", got, want)
	}

	topo := byID(doc, "topology")
	if topo == nil || topo.Data != "svg" {
		t.Fatal("no svg#topology")
	}
	circles := find(topo, func(n *html.Node) bool { return isTag("circle")(n) && hasClass(n, "node") })
	wantCircles := len(f.graph.Nodes) + 1 // one edge leads to an address the master does not know
	if len(circles) != wantCircles {
		t.Errorf("%d node circles in the topology, want %d", len(circles), wantCircles)
	}
	if got := attr(body, "data-graph"); got != fmt.Sprint(wantCircles) {
		t.Errorf("body data-graph = %q, want %d", got, wantCircles)
	}
	kinds := map[string]int{}
	for _, c := range circles {
		for _, k := range []string{"master", "online", "offline", "unknown"} {
			if hasClass(c, k) {
				kinds[k]++
			}
		}
		if attr(c, "data-address") == "" {
			t.Error("node circle without data-address")
		}
	}
	if kinds["master"] != 1 || kinds["unknown"] != 1 || kinds["offline"] != len(f.nodes)-f.online() {
		t.Errorf("node kinds %v: want 1 master, 1 unknown, %d offline", kinds, len(f.nodes)-f.online())
	}
	edges := find(topo, func(n *html.Node) bool { return isTag("line")(n) && hasClass(n, "edge") })
	if len(edges) != f.uniqueEdges() {
		t.Errorf("%d edges drawn, want %d (A->B and B->A drawn once)", len(edges), f.uniqueEdges())
	}
	if n := len(find(byID(doc, "log"), isTag("tr"))) - 1; n != len(f.log) {
		t.Errorf("%d log rows, want %d", n, len(f.log))
	}
}

func TestBrowserNodeDetail(t *testing.T) {
	f := newFleet(20)
	srv := f.serve(t)
	sel := f.nodes[3] // online, several neighbours
	doc := render(t, srv.URL+"/#node="+sel.Address, "dashboard-node.png")

	body := find(doc, isTag("body"))[0]
	if attr(body, "data-selected") != sel.Address {
		t.Fatalf("body data-selected = %q, want %s (detail not loaded)", attr(body, "data-selected"), sel.Address)
	}
	selected := find(byID(doc, "nodes"), func(n *html.Node) bool { return hasClass(n, "node-row") && hasClass(n, "selected") })
	if len(selected) != 1 || attr(selected[0], "data-address") != sel.Address {
		t.Errorf("selected rows %d, want one for %s", len(selected), sel.Address)
	}
	chart := byID(doc, "metrics-chart")
	if chart == nil || chart.Data != "svg" {
		t.Fatal("no svg#metrics-chart")
	}
	lines := find(chart, func(n *html.Node) bool { return isTag("polyline")(n) || isTag("path")(n) })
	if len(lines) == 0 {
		t.Error("svg#metrics-chart has no polyline or path")
	}
	detail := text(byID(doc, "detail"))
	for _, want := range []string{"skyfleet ssh " + sel.Address, "skyfleet exec " + sel.Address + " -- uname -a", "mesh", "registered"} {
		if !strings.Contains(detail, want) {
			t.Errorf("detail panel lacks %q", want)
		}
	}
	if n := len(find(byID(doc, "links"), isTag("tr"))) - 1; n != len(f.details[sel.Address].Report.Links) {
		t.Errorf("links table has %d rows, want %d", n, len(f.details[sel.Address].Report.Links))
	}
}

// TestBrowserLargeFleet checks a 300-node fleet lays out within the time budget.
func TestBrowserLargeFleet(t *testing.T) {
	f := newFleet(300)
	srv := f.serve(t)
	start := time.Now()
	doc := render(t, srv.URL+"/", "dashboard-large.png")
	body := find(doc, isTag("body"))[0]
	t.Logf("rendered 300 nodes in %v (two chromium runs)", time.Since(start))
	if got, want := attr(body, "data-graph"), fmt.Sprint(len(f.graph.Nodes)+1); got != want {
		t.Errorf("body data-graph = %q, want %s", got, want)
	}
	if n := len(find(doc, func(n *html.Node) bool { return hasClass(n, "node-row") })); n != 300 {
		t.Errorf("%d rows, want 300", n)
	}
}

// TestBrowserWarnings checks that nodes sharing a name are flagged, that each
// node's update state is shown (a rollback marked, its reason in the attention
// list), and that a registry the master moved aside at start is shown with
// where it went.
func TestBrowserWarnings(t *testing.T) {
	f := newFleet(8)
	for _, i := range []int{1, 4} {
		f.nodes[i].Name, f.nodes[i].Duplicate = "pi-twin", true
	}
	// Node 2's update rolled back, node 3's committed, node 5 is on trial.
	outcome := func(result, reason string) *update {
		u := &update{OtherVersion: "v0.4.0"}
		u.Last = &struct {
			Result  string    `json:"result"`
			Version string    `json:"version"`
			Slot    string    `json:"slot"`
			Reason  string    `json:"reason"`
			At      time.Time `json:"at"`
		}{result, "v0.5.0", "b", reason, time.Now()}
		return u
	}
	f.nodes[2].Update = outcome("rolled back", "health check failed: mesh is backoff")
	f.nodes[3].Update = outcome("committed", "")
	f.nodes[5].Update = &update{OtherVersion: "v0.5.0", Trial: "b"}
	moved := "/perm/skyfleet/registry.db.corrupt-20260304T050607Z"
	f.status = map[string]any{"refusals": 40, "refusals_dropped": 5000, "registry_corrupt_records": 0,
		"registry_recovery": map[string]any{"path": "/perm/skyfleet/registry.db", "reason": "page 7 is referenced twice",
			"moved_to": moved, "time": "2026-03-04T05:06:07Z"}}
	srv := f.serve(t)
	doc := render(t, srv.URL+"/", "dashboard-warnings.png")
	var flagged []string
	for _, r := range find(byID(doc, "nodes"), func(n *html.Node) bool { return hasClass(n, "node-row") }) {
		if len(find(r, func(n *html.Node) bool { return hasClass(n, "dup") })) > 0 {
			flagged = append(flagged, attr(r, "data-address"))
		}
	}
	if len(flagged) != 2 || !slices.Contains(flagged, f.nodes[1].Address) || !slices.Contains(flagged, f.nodes[4].Address) {
		t.Errorf("rows flagged as sharing a name: %v, want nodes 1 and 4", flagged)
	}
	if !strings.Contains(text(byID(doc, "detail")), "shares its name") {
		t.Error("the attention list does not mention the shared name")
	}
	for i, want := range map[int]string{2: "rolled back v0.5.0", 3: "committed v0.5.0", 5: "trial of slot b", 0: "—"} {
		var row *html.Node
		for _, r := range find(byID(doc, "nodes"), func(n *html.Node) bool { return hasClass(n, "node-row") }) {
			if attr(r, "data-address") == f.nodes[i].Address {
				row = r
			}
		}
		cells := find(row, isTag("td"))
		if len(cells) < 7 || strings.TrimSpace(text(cells[6])) != want {
			t.Errorf("node %d's update cell: %q, want %q", i, text(cells[min(6, len(cells)-1)]), want)
			continue
		}
		if bad := len(find(cells[6], func(n *html.Node) bool { return hasClass(n, "bad") })) > 0; bad != (i == 2) {
			t.Errorf("node %d's update cell marked bad: %v", i, bad)
		}
	}
	if !strings.Contains(text(byID(doc, "detail")), "rolled back update v0.5.0: health check failed: mesh is backoff") {
		t.Error("the attention list does not give the rollback's reason")
	}
	n := byID(doc, "notice")
	if n == nil || hasAttr(n, "hidden") || !strings.Contains(text(n), moved) || !strings.Contains(text(n), "page 7 is referenced twice") {
		t.Errorf("notice = %q, want the moved registry and why", text(n))
	}
	if got := text(byID(doc, "refusals")); !strings.Contains(got, "40 kept, 5000 dropped") {
		t.Errorf("refusals = %q", got)
	}
}

// TestBrowserUnauthorised checks a 401 from the API is shown, not swallowed.
func TestBrowserUnauthorised(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/", Handler())
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "unauthorised", http.StatusUnauthorized)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	doc := render(t, srv.URL+"/", "")
	b := byID(doc, "banner")
	if b == nil || hasAttr(b, "hidden") || !strings.Contains(text(b), "401") {
		t.Errorf("banner = %q (hidden %v), want a visible 401 message", text(b), b != nil && hasAttr(b, "hidden"))
	}
}

// render loads url and parses the DOM; a non-empty shot names the screenshot, kept
// in $SKYFLEET_ARTEFACTS when set.
func render(t *testing.T, url, shot string) *html.Node {
	t.Helper()
	path := ""
	if shot != "" {
		dir := os.Getenv("SKYFLEET_ARTEFACTS")
		if dir == "" {
			dir = t.TempDir()
		} else if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		path = filepath.Join(dir, shot)
	}
	dom, err := browser.Render(context.Background(), url, path, browser.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if path != "" {
		t.Logf("screenshot: %s", path)
	}
	doc, err := html.Parse(strings.NewReader(dom))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// ---- DOM helpers ----

func find(root *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	if root == nil {
		return nil
	}
	for n := range root.Descendants() {
		if n.Type == html.ElementNode && match(n) {
			out = append(out, n)
		}
	}
	return out
}

func isTag(tag string) func(*html.Node) bool {
	return func(n *html.Node) bool { return n.Data == tag }
}

func byID(root *html.Node, id string) *html.Node {
	if ns := find(root, func(n *html.Node) bool { return attr(n, "id") == id }); len(ns) > 0 {
		return ns[0]
	}
	return nil
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasAttr(n *html.Node, key string) bool {
	for _, a := range n.Attr {
		if a.Key == key {
			return true
		}
	}
	return false
}

func hasClass(n *html.Node, class string) bool {
	for _, c := range strings.Fields(attr(n, "class")) {
		if c == class {
			return true
		}
	}
	return false
}

func text(n *html.Node) string {
	if n == nil {
		return ""
	}
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return strings.TrimSpace(b.String())
}

// ---- fake master API ----

type svc struct {
	Name     string `json:"name"`
	State    string `json:"state"`
	Restarts int    `json:"restarts"`
}

type node struct {
	Address   string    `json:"address"`
	PublicKey string    `json:"public_key"`
	Name      string    `json:"name"`
	Board     string    `json:"board"`
	Version   string    `json:"version"`
	Slot      string    `json:"slot"`
	Online    bool      `json:"online"`
	LastSeen  time.Time `json:"last_seen"`
	FirstSeen time.Time `json:"first_seen"`
	Uptime    float64   `json:"uptime_s"`
	LinksUp   int       `json:"links_up"`
	Services  []svc     `json:"services"`
	Seq       uint64    `json:"seq"`
	Duplicate bool      `json:"duplicate_name"`
	Update    *update   `json:"update,omitempty"`
}

// update is a node's A/B update state as the master's registry gives it
// (control.UpdateState).
type update struct {
	OtherVersion string `json:"other_slot_version"`
	Trial        string `json:"trial_slot,omitempty"`
	Last         *struct {
		Result  string    `json:"result"`
		Version string    `json:"version"`
		Slot    string    `json:"slot"`
		Reason  string    `json:"reason"`
		At      time.Time `json:"at"`
	} `json:"last_update,omitempty"`
}

type link struct {
	Address string  `json:"address"`
	Up      bool    `json:"up"`
	RTT     float64 `json:"rtt_ms"`
	Loss    float64 `json:"loss"`
	Tx      float64 `json:"tx_bytes_per_s"`
	Rx      float64 `json:"rx_bytes_per_s"`
}

type detail struct {
	Node   node `json:"node"`
	Report struct {
		Name     string  `json:"name"`
		Board    string  `json:"board"`
		Version  string  `json:"version"`
		Slot     string  `json:"slot"`
		Uptime   float64 `json:"uptime_s"`
		Links    []link  `json:"links"`
		Services []svc   `json:"services"`
	} `json:"report"`
	History []event  `json:"history"`
	Metrics []sample `json:"metrics"`
}

type event struct {
	Time   time.Time `json:"time"`
	Event  string    `json:"event"`
	Detail string    `json:"detail"`
}

type sample struct {
	Time  time.Time `json:"time"`
	Links []link    `json:"links"`
}

type edge struct {
	From string  `json:"from"`
	To   string  `json:"to"`
	Up   bool    `json:"up"`
	RTT  float64 `json:"rtt_ms"`
	Loss float64 `json:"loss"`
}

type graphNode struct {
	Address string `json:"address"`
	Name    string `json:"name"`
	Online  bool   `json:"online"`
	Master  bool   `json:"master"`
}

type logEntry struct {
	Time   time.Time `json:"time"`
	Node   string    `json:"node"`
	Action string    `json:"action"`
	Detail string    `json:"detail"`
}

// fleet is a deterministic fake fleet: a master and n nodes in a chain with cross
// links, every seventh node offline, one link to an unregistered address.
type fleet struct {
	master  string
	nodes   []node
	byAddr  map[string]node
	details map[string]detail
	graph   struct {
		Nodes []graphNode `json:"nodes"`
		Edges []edge      `json:"edges"`
	}
	log []logEntry
	// status holds extra fields of api/status.
	status map[string]any
}

func fakeAddr(seed string) (addr, key string) {
	h := sha256.Sum256([]byte(seed))
	return "sky1q" + hex.EncodeToString(h[:])[:38], "02" + hex.EncodeToString(h[:])
}

var names = []string{"pi-kitchen", "pi-garage", "pi-attic", "pi-barn", "pi-roof", "pi-cellar", "pi-gate",
	"pi-orchard", "pi-shed", "pi-porch", "pi-mast-north", "pi-mast-south", "pi-greenhouse", "pi-workshop",
	"pi-pump", "", "pi-hayloft", "pi-office", "pi-tower", "pi-dock"}

func newFleet(n int) *fleet {
	now := time.Now().UTC().Truncate(time.Second)
	f := &fleet{byAddr: map[string]node{}, details: map[string]detail{}}
	f.master, _ = fakeAddr("master")
	f.graph.Nodes = append(f.graph.Nodes, graphNode{Address: f.master, Name: "master", Online: true, Master: true})
	boards := []string{"rpi4b", "rpi3b", "rpi5", "zero2w"}
	for i := range n {
		addr, key := fakeAddr(fmt.Sprint("node", i))
		name := fmt.Sprintf("pi-%03d", i)
		if n <= len(names) {
			name = names[i]
		}
		nd := node{Address: addr, PublicKey: key, Name: name, Board: boards[i%len(boards)], Version: "v0.4.0",
			Slot: []string{"a", "b"}[i%2], Online: i%7 != 6, FirstSeen: now.Add(-72 * time.Hour),
			Uptime: float64(3600*(i+1) + 61*i), Seq: uint64(100 + i),
			Services: []svc{{"mesh", "running", 0}, {"control", "running", 0}, {"ntp", "running", 1}}}
		nd.LastSeen = now.Add(-time.Duration(i%5+1) * time.Second)
		if !nd.Online {
			nd.LastSeen = now.Add(-time.Duration(10+i) * time.Minute)
		}
		switch {
		case i%5 == 4:
			nd.Version = "v0.3.9"
		case i == 2:
			nd.Version, nd.Slot = "v0.4.1-rc1", ""
		}
		if i%4 == 1 {
			nd.Services = append(nd.Services, svc{"camera", "backoff", 7})
		}
		if i%9 == 8 {
			nd.Services = nil
		}
		f.nodes = append(f.nodes, nd)
		f.graph.Nodes = append(f.graph.Nodes, graphNode{Address: addr, Name: name, Online: nd.Online})
	}

	// Links: the first three nodes hang off the master; each node links to the one
	// before it and to node i/3, like a mesh that grew outwards. Each link is
	// reported by both ends when both are online, so the graph has duplicates.
	links := map[string][]link{}
	addLink := func(a, b string, up bool, i int) {
		l := link{Up: up, RTT: 1 + float64(i%7)*0.8, Loss: float64(i%4) * 0.005, Tx: float64(1000 * (i + 1)), Rx: float64(700 * (i + 1))}
		la, lb := l, l
		la.Address, lb.Address = b, a
		links[a] = append(links[a], la)
		links[b] = append(links[b], lb)
	}
	online := func(a string) bool { nd, ok := f.byAddr[a]; return !ok || nd.Online }
	for _, nd := range f.nodes {
		f.byAddr[nd.Address] = nd
	}
	for i, nd := range f.nodes {
		if i < 3 {
			addLink(f.master, nd.Address, nd.Online, i)
			continue
		}
		prev := f.nodes[i-1].Address
		addLink(prev, nd.Address, nd.Online && online(prev), i)
		if j := i / 3; j != i-1 {
			addLink(f.nodes[j].Address, nd.Address, nd.Online && online(f.nodes[j].Address), i+1)
		}
	}
	stranger, _ := fakeAddr("stranger")
	addLink(f.nodes[len(f.nodes)/4].Address, stranger, true, 3)

	for _, a := range append([]string{f.master}, addrs(f.nodes)...) {
		if !online(a) {
			continue // offline nodes report nothing, so only the far end shows the link
		}
		for _, l := range links[a] {
			f.graph.Edges = append(f.graph.Edges, edge{From: a, To: l.Address, Up: l.Up, RTT: l.RTT, Loss: l.Loss})
		}
	}

	for i := range f.nodes {
		nd := &f.nodes[i]
		var d detail
		for _, l := range links[nd.Address] {
			if l.Up {
				nd.LinksUp++
			}
		}
		d.Node = *nd
		d.Report.Board, d.Report.Version, d.Report.Slot, d.Report.Uptime = nd.Board, nd.Version, nd.Slot, nd.Uptime
		d.Report.Links = links[nd.Address]
		d.Report.Services = nd.Services
		for k := range 10 {
			s := sample{Time: now.Add(-time.Duration(9-k) * time.Minute)}
			for j, l := range d.Report.Links {
				l.RTT = l.RTT + float64((k*(j+2))%5)*0.6
				l.Loss = float64((k+j)%4) * 0.01
				if j == 1 && (k == 4 || k == 5) {
					l.Up, l.Loss = false, 1 // a short outage breaks the line
				}
				s.Links = append(s.Links, l)
			}
			d.Metrics = append(d.Metrics, s)
		}
		d.History = []event{
			{now.Add(-72 * time.Hour), "registered", "first report, seq 1"},
			{now.Add(-72 * time.Hour), "online", ""},
			{now.Add(-30 * time.Hour), "version", "v0.3.9 → " + nd.Version},
			{now.Add(-30 * time.Hour), "slot", "booted slot " + nd.Slot},
			{now.Add(-2 * time.Hour), "service", "camera: running → backoff"},
		}
		if !nd.Online {
			d.History = append(d.History, event{nd.LastSeen.Add(3 * time.Minute), "offline", "no report for 3 intervals"})
		}
		f.byAddr[nd.Address] = *nd
		f.details[nd.Address] = d
	}

	actions := []string{"exec", "ssh", "cp", "refused", "exec", "exec"}
	for i := range 12 {
		nd := f.nodes[(i*5)%len(f.nodes)]
		detail := map[string]string{"exec": "uname -a → exit 0", "ssh": "session 2m14s", "cp": "skyfleet.toml → /perm/skyfleet.toml (1.2 kB)",
			"refused": "exec from unknown key 03f1…9a"}[actions[i%len(actions)]]
		f.log = append(f.log, logEntry{now.Add(-time.Duration(i*17) * time.Minute), nd.Address, actions[i%len(actions)], detail})
	}
	return f
}

func addrs(ns []node) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.Address
	}
	return out
}

func (f *fleet) online() int {
	n := 0
	for _, nd := range f.nodes {
		if nd.Online {
			n++
		}
	}
	return n
}

func (f *fleet) uniqueEdges() int {
	seen := map[[2]string]bool{}
	for _, e := range f.graph.Edges {
		k := [2]string{min(e.From, e.To), max(e.From, e.To)}
		seen[k] = true
	}
	return len(seen)
}

// serve starts a server with the dashboard at / and the fake API at /api/, the way
// the master mounts them.
func (f *fleet) serve(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	mux.Handle("/", Handler())
	reply := func(v any) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(v)
		}
	}
	_, masterKey := fakeAddr("master")
	status := map[string]any{"address": f.master, "public_key": masterKey, "version": "v0.4.0",
		"nodes": len(f.nodes), "online": f.online(), "report_interval_s": 60}
	for k, v := range f.status {
		status[k] = v
	}
	mux.Handle("GET /api/status", reply(status))
	mux.Handle("GET /api/nodes", reply(f.nodes))
	mux.Handle("GET /api/graph", reply(f.graph))
	mux.Handle("GET /api/log", reply(f.log))
	mux.HandleFunc("GET /api/nodes/{address}", func(w http.ResponseWriter, r *http.Request) {
		d, ok := f.details[r.PathValue("address")]
		if !ok {
			http.Error(w, "unknown node", http.StatusNotFound)
			return
		}
		reply(d)(w, r)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}
