package main

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/services/meshd"
)

// A trial boot's master check, against a mesh service that serves
// meshd.NodeStatus: it passes once the mesh service counts an acknowledged
// report to the configured master, and fails at its deadline with the reason
// (the last report's error, another master, no mesh service); with no master
// configured it passes at once.
func TestMasterLinked(t *testing.T) {
	const master = "02aa00000000000000000000000000000000000000000000000000000000000001"
	var polls atomic.Int32
	var link atomic.Pointer[meshd.MasterLink]
	socket := serveUnix(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		polls.Add(1)
		json.NewEncoder(w).Encode(meshd.NodeStatus{Address: "x", Master: link.Load()})
	}))
	wait := func(d time.Duration, key string) error {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		return masterLinked(ctx, socket, key)
	}

	if err := wait(time.Millisecond, ""); err != nil {
		t.Fatalf("no master configured: %v", err)
	}
	if polls.Load() != 0 {
		t.Fatal("the mesh service was asked although no master is configured")
	}

	link.Store(&meshd.MasterLink{PublicKey: master, LastError: "no route to the master"})
	if err := wait(1500*time.Millisecond, master); err == nil || !strings.Contains(err.Error(), "no route to the master") {
		t.Fatalf("reports failing: %v, want the mesh service's error", err)
	}
	link.Store(&meshd.MasterLink{PublicKey: strings.Replace(master, "01", "02", 1), Reports: 3})
	if err := wait(1500*time.Millisecond, master); err == nil || !strings.Contains(err.Error(), "reports to master") {
		t.Fatalf("another master: %v", err)
	}
	absent := filepath.Join(t.TempDir(), "absent.sock")
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	err := masterLinked(ctx, absent, master)
	cancel()
	if err == nil || !strings.Contains(err.Error(), "the mesh service") {
		t.Fatalf("no mesh service: %v", err)
	}

	// The first acknowledged report arrives while the check waits.
	link.Store(&meshd.MasterLink{PublicKey: master})
	before := polls.Load()
	go func() {
		for polls.Load() < before+2 {
			time.Sleep(10 * time.Millisecond)
		}
		link.Store(&meshd.MasterLink{PublicKey: strings.ToUpper(master[:2]) + master[2:], Reports: 1})
	}()
	if err := wait(time.Minute, strings.ToUpper(master)); err != nil {
		t.Fatalf("after the first report: %v", err)
	}
	if polls.Load() < before+3 {
		t.Fatalf("passed after %d polls, before the report was acknowledged", polls.Load()-before)
	}
}
