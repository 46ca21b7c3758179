package saf

import (
	"context"
	"encoding/hex"
	"net"

	"github.com/skyfleet/skyfleet/services/mesh"
	"github.com/skyfleet/skyfleet/services/mesh/topology"
)

// OverRouter presents a mesh router as the engine's Mesh: next hops from the
// topology's latency-shortest paths, neighbours from the links that are up, and
// custody streams as the router's end-to-end streams to a neighbour (one hop, so
// the stream's retransmission is the link ack seeds/004 describes).
func OverRouter(r *mesh.Router) Mesh { return routerMesh{r} }

type routerMesh struct{ r *mesh.Router }

func (m routerMesh) Self() Key { return Key(m.r.Self()) }

func (m routerMesh) NextHop(dst Key, avoid, notFirst []Key) (Key, bool) {
	g := m.r.Graph()
	var path topology.Path
	var err error
	keys := func(ks []Key) []topology.Key {
		out := make([]topology.Key, len(ks))
		for i, k := range ks {
			out[i] = topology.Key(k)
		}
		return out
	}
	if len(avoid) > 0 || len(notFirst) > 0 {
		path, err = g.AvoidingFirst(topology.Key(dst), keys(avoid), keys(notFirst), true)
		if err != nil && len(avoid) > 0 && len(notFirst) > 0 {
			path, err = g.AvoidingFirst(topology.Key(dst), nil, keys(notFirst), true)
		}
	}
	if len(notFirst) == 0 && (len(avoid) == 0 || err != nil) {
		path, _, err = g.ShortestByLatency(topology.Key(dst))
	}
	if err != nil || len(path) < 2 {
		return Key{}, false
	}
	return Key(path[1]), true
}

func (m routerMesh) Neighbours() []Key {
	var out []Key
	for _, l := range m.r.Links() {
		if !l.Up {
			continue
		}
		b, err := hex.DecodeString(l.Key)
		if err != nil || len(b) != KeyLen {
			continue
		}
		out = append(out, Key(b))
	}
	return out
}

// Radio reports whether k's only up link is over an amateur-radio channel.
// The scheduler asks it for every neighbour every round, so it is the router's
// lookup, not a scan of the link status.
func (m routerMesh) Radio(k Key) bool { return m.r.ViaRadio(topology.Key(k)) }

func (m routerMesh) Dial(ctx context.Context, k Key, port uint16) (net.Conn, error) {
	return m.r.Dial(ctx, topology.Key(k), port)
}

func (m routerMesh) Listen(port uint16) (Listener, error) {
	ln, err := m.r.Listen(port)
	if err != nil {
		return nil, err
	}
	return routerListener{ln}, nil
}

type routerListener struct{ net.Listener }

// Accept returns the next stream and the key its end-to-end session proved.
func (l routerListener) Accept() (net.Conn, Key, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, Key{}, err
		}
		if a, ok := c.RemoteAddr().(mesh.Addr); ok {
			return c, Key(a.Key), nil
		}
		c.Close()
	}
}
