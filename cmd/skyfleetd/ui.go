package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
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
	return ui.Run(ctx, scr, src, api, uc, func(s string) { fmt.Println(time.Now().Format("15:04:05 ") + s) })
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
// [display], or it is "auto" and the kernel has a framebuffer.
func wantUI(cfg fleetconf.Config, fbExists func() bool) bool {
	switch cfg.Display.Screen {
	case "none":
		return false
	case "auto", "":
		return fbExists()
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
