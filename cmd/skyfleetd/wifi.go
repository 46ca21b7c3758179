package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/skyfleet/skyfleet/internal/fleetconf"
	"github.com/skyfleet/skyfleet/services/wifi"
)

// wifiStatusFile is where the Wi-Fi service keeps its status for PID 1's
// /status and the status service's GET /wifi; /run is a tmpfs.
const wifiStatusFile = "/run/skyfleet/wifi.json"

// runWifi is the Wi-Fi service: its own process, because in AP and peer
// modes it parses frames from anyone in radio range, and because a crash
// must not take the mesh with it.
func runWifi(args []string) error {
	fs := flag.NewFlagSet("wifi", flag.ContinueOnError)
	config := fs.String("config", "/boot/fleet.toml", "fleet.toml to read ([wifi], [node] name, [network] psk)")
	statusFile := fs.String("status", wifiStatusFile, "file to keep the service's status in, as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, _ := fleetconf.Load(*config, true) // PID 1 reports the problems
	wc := wifi.ConfigFrom(cfg)
	m := wifi.New(wc, func(s string) { fmt.Println(time.Now().Format("15:04:05 ") + s) })
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	fmt.Printf("wifi: mode %s on %s\n", wc.Mode, "wlan0")
	write := func() {
		if err := writeJSONFile(*statusFile, m.Status()); err != nil {
			fmt.Printf("wifi: status file: %v\n", err)
		}
	}
	write()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			write()
			return err
		case <-m.Changed():
			write()
		case <-tick.C:
			write()
		}
	}
}

// writeJSONFile replaces path with v as JSON: written to a temporary file in
// the same directory and renamed over it, so a reader never sees half of it.
func writeJSONFile(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// publicWifi reads the Wi-Fi service's status for the public /status: the
// radio's mode, state, network, signal and counts. The scan list and the
// MAC addresses of phones and peers are left out (GET /wifi, a control
// path, has them): a stranger on the LAN learns no one's device address.
// Nil when the service has not written its status yet.
func publicWifi(path string) json.RawMessage {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var s wifi.Status
	if json.Unmarshal(b, &s) != nil {
		return nil
	}
	pub := struct {
		wifi.Status
		Peers int `json:"peers"`
		Scan  int `json:"scan_results"`
	}{Status: s, Peers: len(s.Peers), Scan: len(s.Scan)}
	pub.Status.Peers, pub.Status.Scan = nil, nil
	out, err := json.Marshal(pub)
	if err != nil {
		return nil
	}
	return out
}
