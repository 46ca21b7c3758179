package meshd

import (
	"context"
	"fmt"
	"time"

	"github.com/skyfleet/skyfleet/services/identity"
	"github.com/skyfleet/skyfleet/services/msg"
	"github.com/skyfleet/skyfleet/services/saf"
)

// startMessaging opens the custody store and the inbox in [node] data, and starts
// the store-and-forward engine with messaging as its application. Errors: a store
// cannot be opened, the custody port is taken.
func (n *Node) startMessaging(ctx context.Context, psk [32]byte) error {
	dir := n.opts.Config.Node.Data
	st, err := saf.OpenStore(dir, saf.StoreOptions{Logf: n.opts.Logf, Wall: n.wallNow})
	if err != nil {
		return err
	}
	n.safStore = st
	var svc *msg.Service
	eng := saf.New(saf.Options{Mesh: saf.OverRouter(n.Router), Store: st, Logf: n.opts.Logf,
		Released: func(id saf.ID, to saf.Key, s saf.Status) {
			if svc != nil {
				svc.Released(id, to, s)
			}
		}})
	svc, err = msg.NewService(msg.Config{Dir: dir, Key: n.Key, PSK: psk, Sender: eng, Logf: n.opts.Logf, Wall: n.wallNow})
	if err != nil {
		return err
	}
	n.Msg = svc
	eng.Register(saf.PortMsg, svc.Deliver)
	eng.RegisterClear(saf.PortMsg, msg.IsClear) // only messages in clear cross radio hops
	if err := eng.Start(ctx); err != nil {
		return err
	}
	n.SAF = eng
	if n.opts.USBSticks {
		n.startSticks(ctx)
	}
	go n.learnKeys(ctx)
	return nil
}

// learnKeysEvery is how often the keys of the nodes in the topology are written
// down for messages to nodes that later leave it.
const learnKeysEvery = 30 * time.Second

// learnKeys remembers every node of the topology with its address (msg.Service.
// Learn) until ctx ends.
func (n *Node) learnKeys(ctx context.Context) {
	t := time.NewTicker(learnKeysEvery)
	defer t.Stop()
	for {
		for _, k := range n.Router.Graph().Nodes() {
			if a, err := identity.AddressFromPublicKey(k[:]); err == nil && k != n.Router.Self() {
				n.Msg.Learn(a.String(), [33]byte(k))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// resolve turns a recipient (a node address or a public key in hex) into its key
// through the topology, or through the keys learnt from it before (msg.Service.
// Learn): a node that is off or on another island still gets its messages when it
// comes back.
func (n *Node) resolve(to string) ([33]byte, error) {
	if n.Router == nil {
		return [33]byte{}, fmt.Errorf("this node refuses every link: %s", n.Refused)
	}
	k, err := n.Router.Resolve(to)
	if err != nil {
		if n.Msg != nil {
			if key, ok := n.Msg.KeyOf(to); ok {
				return key, nil
			}
		}
		return [33]byte{}, err
	}
	if k == n.Router.Self() {
		return [33]byte{}, fmt.Errorf("%s is this node", to)
	}
	if n.Msg != nil {
		if a, err := identity.AddressFromPublicKey(k[:]); err == nil {
			n.Msg.Learn(a.String(), [33]byte(k))
		}
	}
	return [33]byte(k), nil
}
