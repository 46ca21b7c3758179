package meshd

import (
	"context"

	"github.com/skyfleet/skyfleet/services/saf/usbstick"
)

// startSticks runs the USB stick watcher on the node's engine (Options.USBSticks)
// until ctx ends or Close, which waits for a visit under way to finish, so the
// stick is unmounted before the store closes. Its counters and last visit are in
// GET /saf/stats as "usb_stick".
func (n *Node) startSticks(ctx context.Context) {
	w := usbstick.New(usbstick.Config{Engine: n.SAF, Logf: n.opts.Logf})
	n.SAF.AddStats("usb_stick", func() any { return w.Stats() })
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx)
	}()
	n.stopSticks = func() { cancel(); <-done }
}
