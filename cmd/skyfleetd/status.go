package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

// unixClient talks HTTP to PID 1 over its Unix socket.
var unixClient = &http.Client{
	Timeout: 10 * time.Second,
	Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", initSocket)
	}},
}

// runStatus is the status service: it serves PID 1's /status on the network address
// the operator configured, read-only. It is a separate, supervised process so that a
// bug in HTTP handling cannot take PID 1 down with it.
func runStatus(args []string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	listen := fs.String("listen", "0.0.0.0:80", "address to serve the status API on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	target, _ := url.Parse("http://init")
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = unixClient.Transport
	proxy.ErrorHandler = proxyError("PID 1")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/status", http.StatusFound)
	})
	// Only reads go through: poweroff and reboot stay on the local socket.
	for _, p := range []string{"GET /status", "GET /services/{name}/log"} {
		mux.Handle(p, proxy)
	}
	// The mesh API lives in the mesh service; ping is a POST but changes nothing.
	meshTarget, _ := url.Parse("http://mesh")
	meshProxy := httputil.NewSingleHostReverseProxy(meshTarget)
	meshProxy.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", meshSocket)
	}}
	meshProxy.ErrorHandler = proxyError("the mesh service")
	mux.Handle("GET /mesh/", meshProxy)
	mux.Handle("POST /mesh/ping", meshProxy)
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("status API on %s\n", *listen)
	return srv.ListenAndServe()
}

// proxyError answers a request the proxy could not complete with 502 and the
// reason, naming the service behind it. A client that went away before the
// answer (a poller's timeout, a closed browser tab) is nobody's error and is
// not logged; httputil's default logs each one as "proxy error".
func proxyError(service string) func(http.ResponseWriter, *http.Request, error) {
	return func(w http.ResponseWriter, r *http.Request, err error) {
		if r.Context().Err() != nil {
			return
		}
		log.Printf("status: %s %s: %s did not answer: %v", r.Method, r.URL.Path, service, err)
		http.Error(w, fmt.Sprintf("%s did not answer: %v", service, err), http.StatusBadGateway)
	}
}

// askInit asks PID 1 to power off or reboot cleanly.
func askInit(what string) error {
	resp, err := unixClient.Post("http://init/"+what, "text/plain", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("PID 1 answered %s", resp.Status)
	}
	return nil
}
