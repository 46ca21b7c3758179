package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/skyfleet/skyfleet/internal/apiauth"
	"github.com/skyfleet/skyfleet/internal/fleetconf"
	"github.com/skyfleet/skyfleet/services/ui"
	"github.com/skyfleet/skyfleet/services/ui/approve"
)

// runUI is the touchscreen service: its own process, so a fault in a driver
// or in drawing restarts the screen and nothing else. It reads the node
// through the status service's API like any client, with the node's API
// token (a local credential: only root on the node can read it).
func runUI(args []string) error {
	fs := flag.NewFlagSet("ui", flag.ContinueOnError)
	config := fs.String("config", "/boot/fleet.toml", "fleet.toml to read ([display], [node] name and status)")
	data := fs.String("data", "/perm/skyfleet", "the node's data directory, for its API token")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, _ := fleetconf.Load(*config, true) // PID 1 reports the problems
	uc := ui.ConfigFrom(cfg)
	uc.StatsFile = "/run/skyfleet/ui.json"
	calFile := filepath.Join(*data, ui.CalibrationFile)
	if err := ui.UseSavedCalibration(&uc, calFile); err != nil {
		fmt.Printf("ui: %v\n", err)
	}
	scr, err := ui.OpenScreen(uc)
	if errors.Is(err, ui.ErrNoScreen) {
		// PID 1 starts the service only with a screen; one that went
		// away is waited for by the supervisor's back-off.
		return err
	}
	if err != nil {
		return err
	}
	defer scr.Close()
	if _, err := ui.ReleaseFramebufferConsole("/sys"); err != nil {
		fmt.Printf("%v: the kernel's console may draw over the screen\n", err)
	}
	src, err := ui.OpenTouch(uc, scr.Size())
	if err != nil {
		fmt.Printf("ui: no touch input: %v\n", err)
	}
	if src != nil {
		defer src.Close()
	}
	api := &ui.API{Base: "http://" + loopbackOf(cfg.Node.Status), Cred: &tokenFile{path: filepath.Join(*data, apiauth.TokenFile)}, Name: cfg.Node.Name}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	logf := func(f string, a ...any) { fmt.Println(time.Now().Format("15:04:05 ") + fmt.Sprintf(f, a...)) }
	// The local approval API: other services (the wallet) ask the person
	// at the screen; PID 1 names who asks.
	if ln, err := approve.Listen(approve.SocketPath); err != nil {
		logf("ui: no approval API: %v", err)
	} else {
		as := approve.NewServer(supervisedService(initStatus), logf)
		uc.Approvals = as.Requests()
		go as.Serve(ctx, ln)
	}
	return ui.Run(ctx, scr, src, api, uc, func(s string) { logf("%s", s) })
}

// initStatus is PID 1's status document, from its socket.
func initStatus() ([]byte, error) {
	resp, err := unixClient.Get("http://init/status")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("PID 1 answered %s", resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
}

// supervisedService names callers of the approval API from PID 1's own
// list of the services it runs (get returns its status document): the
// caller is the service whose process it is, and a process PID 1 did not
// start as a service (a shell's, a service's child) is none.
func supervisedService(get func() ([]byte, error)) approve.Identify {
	return func(pid int32) (string, error) {
		if pid <= 1 {
			return "", fmt.Errorf("process %d is not a service", pid)
		}
		b, err := get()
		if err != nil {
			return "", fmt.Errorf("asking PID 1 for its services: %w", err)
		}
		var doc struct {
			Services []struct {
				Name  string `json:"name"`
				State string `json:"state"`
				PID   int32  `json:"pid"`
			} `json:"services"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			return "", fmt.Errorf("PID 1's status: %w", err)
		}
		for _, s := range doc.Services {
			if s.PID == pid && s.State == "running" {
				return s.Name, nil
			}
		}
		return "", fmt.Errorf("no service of PID 1 runs as process %d", pid)
	}
}

// loopbackOf turns the status service's listen address into one to dial on
// this node: an unspecified host (0.0.0.0, ::, "") is the loopback.
func loopbackOf(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "127.0.0.1:80"
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// wantUI reports whether PID 1 starts the ui service: a screen is named in
// [display], or it is "auto" and the kernel has a framebuffer or a DRM card.
func wantUI(cfg fleetconf.Config, screenExists func() bool) bool {
	switch cfg.Display.Screen {
	case "none":
		return false
	case "auto", "":
		return screenExists()
	}
	return true
}

// tokenFile is the node's API token read from its file when first needed,
// and again until it is there: the status service makes it at its start,
// which may come after the ui service's.
type tokenFile struct {
	path string
	mu   sync.Mutex
	tok  apiauth.Token
}

// Authorize implements apiauth.Credential. Errors: no token yet (its
// message never holds the file's content).
func (f *tokenFile) Authorize(c *http.Client, req *http.Request) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tok == "" {
		tok, err := apiauth.ReadToken(f.path)
		if err != nil {
			return fmt.Errorf("the node's API token is not there yet: %w", errors.Unwrap(err))
		}
		f.tok = apiauth.Token(tok)
	}
	return f.tok.Authorize(c, req)
}
