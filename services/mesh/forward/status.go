package forward

import (
	"encoding/hex"
	"sort"
	"time"

	"github.com/skyfleet/skyfleet/services/mesh/topology"
)

// LinkStatus is one neighbour link as /mesh/links shows it.
type LinkStatus struct {
	Address   string  `json:"address"`    // neighbour's node address
	Key       string  `json:"key"`        // its public key, hex
	LinkID    uint32  `json:"link_id"`    // as used in /mesh/routes rules
	Endpoint  string  `json:"endpoint"`   // scheme://ip:port it is reached at
	Config    string  `json:"configured"` // configured address, "" if learnt
	Up        bool    `json:"up"`
	UpSeconds float64 `json:"up_seconds,omitempty"`
	Static    bool    `json:"static"`
	Relay     bool    `json:"relay"`
	RTTms     float64 `json:"rtt_ms"`     // smoothed link round trip
	RTTVarms  float64 `json:"rttvar_ms"`  // its variation
	Loss      float64 `json:"loss"`       // fraction of recent pings unanswered
	TxPackets uint64  `json:"tx_packets"` // link datagrams sent
	TxBytes   uint64  `json:"tx_bytes"`
	RxPackets uint64  `json:"rx_packets"`
	RxBytes   uint64  `json:"rx_bytes"`
	TxBps     float64 `json:"tx_bytes_per_s"` // throughput over the last second
	RxBps     float64 `json:"rx_bytes_per_s"`
	TxDrops   uint64  `json:"tx_drops"` // control frames dropped on a full queue or a dead link
	// StoreForward is the link's per-hop store and forward: route bytes queued for
	// credit or window, unacknowledged, retransmitted, the window and the rate.
	StoreForward sfStatus `json:"store_forward"`
	Session      any      `json:"session,omitempty"`
	// Radio marks a link over an amateur-radio channel (transport.go): clear,
	// signed, one-hop routes only.
	Radio bool `json:"radio,omitempty"`
	// Channel is what the link's transport counts of its channel, when it
	// counts (a radio: frames in and out, FCS errors, busy time, airtime;
	// radio.Stats). Every link on one channel shows the same.
	Channel any `json:"channel,omitempty"`
}

// channelStats is a transport that counts what happens on its channel.
type channelStats interface{ ChannelStats() any }

// Links returns every neighbour's link status, sorted by address.
func (r *Router) Links() []LinkStatus {
	ns := r.neighbours()
	now := time.Now()
	out := make([]LinkStatus, 0, len(ns))
	for _, n := range ns {
		ls := LinkStatus{
			Address:   shortKey(n.key),
			Key:       hex.EncodeToString(n.key[:]),
			LinkID:    n.id,
			TxPackets: n.txPackets.Load(),
			TxBytes:   n.txBytes.Load(),
			RxPackets: n.rxPackets.Load(),
			RxBytes:   n.rxBytes.Load(),
			TxDrops:   n.txDrops.Load(),

			StoreForward: n.sfStatus(),
		}
		if at := n.at.Load(); at != nil {
			ls.Endpoint = at.tr.Network() + "://" + at.ep.String()
			if cs, ok := at.tr.(channelStats); ok {
				ls.Channel = cs.ChannelStats()
			}
		}
		ls.Radio = n.amateur
		if s := n.sess.Load(); s != nil {
			ls.Session = s.Stats()
		}
		n.mu.Lock()
		ls.Config, ls.Up, ls.Static, ls.Relay = n.configured, n.up, n.static, n.relay
		if n.up {
			ls.UpSeconds = now.Sub(n.upSince).Seconds()
		}
		ls.RTTms = ms(n.srtt)
		ls.RTTVarms = ms(n.rttvar)
		ls.Loss = n.lossLocked(now)
		ls.TxBps, ls.RxBps = n.rateTx, n.rateRx
		n.mu.Unlock()
		out = append(out, ls)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out
}

// RuleStatus is one forwarding rule as /mesh/routes shows it.
type RuleStatus struct {
	InLink      uint32  `json:"in_link"` // 0: originated here
	InRouteID   uint32  `json:"in_route_id"`
	OutLink     uint32  `json:"out_link"` // 0: delivered here
	OutRouteID  uint32  `json:"out_route_id"`
	From        string  `json:"from,omitempty"` // previous hop's address
	To          string  `json:"to,omitempty"`   // next hop's address
	Packets     uint64  `json:"packets"`
	Bytes       uint64  `json:"bytes"`
	AgeSeconds  float64 `json:"age_s"`
	IdleSeconds float64 `json:"idle_s"`
	// Store and forward at this node: the route's bytes held here (queued or
	// unacknowledged by the next hop), the most ever held, sends that found no
	// credit at the next hop, and its frames sent again on the out-link.
	QueueBytes   int    `json:"queue_bytes"`
	PeakBytes    int    `json:"peak_bytes"`
	CreditStalls uint64 `json:"credit_stalls"`
	Retransmits  uint64 `json:"retransmits"`
}

// RouteStatus is one route this node originated.
type RouteStatus struct {
	ID          uint64   `json:"id"`
	Destination string   `json:"destination"`
	Hops        int      `json:"hops"`
	Path        []string `json:"path"` // node addresses, this node first
	State       string   `json:"state"`
	SetupMs     float64  `json:"setup_ms"`         // Setup to Confirm round trip
	RTTms       float64  `json:"rtt_ms,omitempty"` // last end-to-end echo over it
	Packets     uint64   `json:"packets"`
	Bytes       uint64   `json:"bytes"`
	AgeSeconds  float64  `json:"age_s"`
}

// RoutesStatus is the /mesh/routes document.
type RoutesStatus struct {
	Rules  []RuleStatus  `json:"rules"`
	Routes []RouteStatus `json:"routes"`
}

// Routes returns the forwarding rules and the routes originated here.
func (r *Router) Routes() RoutesStatus {
	now := time.Now()
	var st RoutesStatus
	st.Rules = []RuleStatus{}
	st.Routes = []RouteStatus{}
	name := func(link uint32) string {
		if n := r.neighbourByLink(link); n != nil {
			return shortKey(n.key)
		}
		return ""
	}
	for _, ru := range r.table.all() {
		rs := RuleStatus{
			InLink: ru.in.link, InRouteID: ru.in.rid, OutLink: ru.out.link, OutRouteID: ru.out.rid,
			Packets: ru.packets.Load(), Bytes: ru.bytes.Load(),
			AgeSeconds:  now.Sub(ru.created).Seconds(),
			IdleSeconds: now.Sub(time.Unix(0, ru.used.Load())).Seconds(),
			Retransmits: ru.sf.retransmits.Load(),
		}
		ru.sf.mu.Lock()
		rs.QueueBytes, rs.PeakBytes, rs.CreditStalls = ru.sf.buf.Held(), ru.sf.buf.Peak, ru.sf.credit.Stalls
		ru.sf.mu.Unlock()
		if ru.in.link != local {
			rs.From = name(ru.in.link)
		}
		if ru.out.link != local {
			rs.To = name(ru.out.link)
		}
		st.Rules = append(st.Rules, rs)
	}
	sort.Slice(st.Rules, func(i, j int) bool {
		a, b := st.Rules[i], st.Rules[j]
		return a.InLink < b.InLink || (a.InLink == b.InLink && a.InRouteID < b.InRouteID)
	})
	for _, rt := range r.routes.list() {
		rs := RouteStatus{
			ID: rt.id, Destination: shortKey(rt.dst), Hops: len(rt.path) - 1,
			Packets: rt.packets.Load(), Bytes: rt.bytes.Load(),
			AgeSeconds: now.Sub(rt.created).Seconds(),
		}
		for _, k := range rt.path {
			rs.Path = append(rs.Path, shortKey(k))
		}
		switch rt.state.Load() {
		case routePending:
			rs.State = "pending"
		case routeUp:
			rs.State = "up"
			rs.SetupMs = ms(rt.setup)
			rs.RTTms = ms(time.Duration(rt.rtt.Load()))
		default:
			rs.State = "failed"
		}
		st.Routes = append(st.Routes, rs)
	}
	sort.Slice(st.Routes, func(i, j int) bool { return st.Routes[i].ID < st.Routes[j].ID })
	return st
}

// PathStatus is a computed path as /mesh/route shows it.
type PathStatus struct {
	Hops      int      `json:"hops"`
	LatencyMs float64  `json:"latency_ms,omitempty"` // sum of half link RTTs
	Path      []string `json:"path"`
}

// RouteQuery is the /mesh/route document: the paths this node would choose.
type RouteQuery struct {
	Destination string        `json:"destination"`
	ByLatency   *PathStatus   `json:"by_latency"`
	ByHops      *PathStatus   `json:"by_hops"`
	Disjoint    []PathStatus  `json:"disjoint"`
	Active      []RouteStatus `json:"active"`
}

// QueryRoute computes the paths to k by latency, by hops and k link-disjoint ones.
func (r *Router) QueryRoute(k topology.Key) (RouteQuery, error) {
	q := RouteQuery{Destination: shortKey(k), Disjoint: []PathStatus{}, Active: []RouteStatus{}}
	p, lat, err := r.graph.ShortestByLatency(k)
	if err != nil {
		return q, err
	}
	q.ByLatency = NewPathStatus(p)
	q.ByLatency.LatencyMs = ms(lat)
	if p, err := r.graph.ShortestByHops(k); err == nil {
		q.ByHops = NewPathStatus(p)
	}
	if ps, err := r.graph.Disjoint(k, max(r.cfg.Routes, 2), true); err == nil {
		for _, p := range ps {
			q.Disjoint = append(q.Disjoint, *NewPathStatus(p))
		}
	}
	for _, rs := range r.Routes().Routes {
		if rs.Destination == q.Destination {
			q.Active = append(q.Active, rs)
		}
	}
	return q, nil
}

// NewPathStatus describes path p for /mesh/route and /mesh/nearest.
func NewPathStatus(p topology.Path) *PathStatus {
	ps := &PathStatus{Hops: len(p) - 1}
	for _, k := range p {
		ps.Path = append(ps.Path, shortKey(k))
	}
	return ps
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
