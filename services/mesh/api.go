package mesh

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/skyfleet/skyfleet/services/mesh/forward"
	"github.com/skyfleet/skyfleet/services/mesh/stream"
)

// Handler serves the mesh part of the status API:
//
//	GET  /mesh/links          {"address","links":[LinkStatus, with "medium" when SetLinkInfo says],"counters":{...}}
//	GET  /mesh/routes         RoutesStatus
//	GET  /mesh/graph          the topology snapshot
//	GET  /mesh/route?addr=A   RouteQuery (404 when A is unknown or unreachable)
//	GET  /mesh/nearest?role=R the nearest node announcing role R (e.g. gateway) and the path
//	POST /mesh/ping?addr=A    {"address","rtt_ms","setup_ms","hops","path"}; 504 when unreachable
//
//	POST /mesh/send?addr=A&port=P   the request body goes to A:P over a stream;
//	                                answers {"bytes","seconds","sha256",...} once the
//	                                far end has acknowledged every byte
//	GET  /mesh/recv?port=P          waits (up to timeout=D, default 60 s, at most
//	                                MaxRecvWait) for one stream to port P and
//	                                answers with its bytes
//
// Errors are {"error": "..."}. Every path changes or reveals the mesh, so the node
// serves them only to the master or a local tool (package apiauth, Control).
// Transfers (send, recv) may last up to MaxTransfer; the handlers extend the HTTP
// server's deadlines for that long.
func (r *Router) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /mesh/send", r.serveSend)
	mux.HandleFunc("GET /mesh/recv", r.serveRecv)
	mux.HandleFunc("GET /mesh/links", func(w http.ResponseWriter, _ *http.Request) {
		var links any = r.Links()
		if f := r.linkInfo.Load(); f != nil {
			type annotated struct {
				forward.LinkStatus
				Medium any `json:"medium,omitempty"`
			}
			ls := r.Links()
			out := make([]annotated, len(ls))
			for i, l := range ls {
				out[i] = annotated{LinkStatus: l, Medium: (*f)(l.Endpoint)}
			}
			links = out
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"address": r.Address(), "key": hex.EncodeToString(r.self[:]),
			"links": links, "counters": r.Counters(),
		})
	})
	mux.HandleFunc("GET /mesh/routes", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, r.Routes())
	})
	mux.HandleFunc("GET /mesh/graph", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, r.graph.Snapshot())
	})
	mux.HandleFunc("GET /mesh/nearest", func(w http.ResponseWriter, req *http.Request) {
		role := req.URL.Query().Get("role")
		k, p, err := r.graph.Nearest(role, true)
		if err != nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("no node with role %q reachable: %v", role, err)})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"role": role, "address": shortKey(k), "path": forward.NewPathStatus(p)})
	})
	mux.HandleFunc("GET /mesh/route", func(w http.ResponseWriter, req *http.Request) {
		k, err := r.Resolve(req.URL.Query().Get("addr"))
		if err != nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
			return
		}
		q, err := r.QueryRoute(k)
		if err != nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, q)
	})
	mux.HandleFunc("POST /mesh/ping", func(w http.ResponseWriter, req *http.Request) {
		addr := req.URL.Query().Get("addr")
		k, err := r.Resolve(addr)
		if err != nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
			return
		}
		timeout := 5 * time.Second
		if t, err := time.ParseDuration(req.URL.Query().Get("timeout")); err == nil && t > 0 && t <= time.Minute {
			timeout = t
		}
		ctx, cancel := context.WithTimeout(req.Context(), timeout)
		defer cancel()
		res, err := r.Ping(ctx, k)
		if err != nil {
			code := http.StatusGatewayTimeout
			if errors.Is(err, ErrNoRoute) {
				code = http.StatusNotFound
			}
			writeJSON(w, code, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"address": shortKey(k), "rtt_ms": ms(res.RTT), "setup_ms": ms(res.SetupTime),
			"hops": len(res.Path) - 1, "path": res.Path,
		})
	})
	return mux
}

// Limits of the long-running API calls.
const (
	// MaxRecvWait is the longest GET /mesh/recv may wait for a stream.
	MaxRecvWait = 10 * time.Minute
	// MaxTransfer is the longest a send or recv may take to carry its bytes.
	MaxTransfer = 30 * time.Minute
)

// ExtendDeadlines lets one request read and write for d from now, beyond the
// server's default timeouts (which cut off slow strangers): for transfers, here
// and in the servers that proxy them. Servers that do not support it (a test's
// recorder) are left as they are.
func ExtendDeadlines(w http.ResponseWriter, d time.Duration) {
	rc := http.NewResponseController(w)
	at := time.Now().Add(d)
	rc.SetReadDeadline(at)
	rc.SetWriteDeadline(at)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func (r *Router) serveSend(w http.ResponseWriter, req *http.Request) {
	k, err := r.Resolve(req.URL.Query().Get("addr"))
	if err != nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
		return
	}
	port, err := strconv.ParseUint(req.URL.Query().Get("port"), 10, 16)
	if err != nil || port == 0 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "port must be 1-65535"})
		return
	}
	ExtendDeadlines(w, MaxTransfer)
	ctx, cancel := context.WithTimeout(req.Context(), 10*time.Second)
	c, err := r.Dial(ctx, k, uint16(port))
	cancel()
	if err != nil {
		writeJSON(w, http.StatusGatewayTimeout, map[string]string{"error": err.Error()})
		return
	}
	start := time.Now()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(c, h), req.Body)
	if err != nil {
		c.Close()
		writeJSON(w, http.StatusBadGateway, map[string]any{"error": err.Error(), "bytes": n})
		return
	}
	if err := c.Close(); err != nil {
		writeJSON(w, http.StatusBadGateway, map[string]any{"error": err.Error(), "bytes": n})
		return
	}
	// Close returns at once; the stream ends when the peer has acknowledged
	// everything and closed its side too.
	if sc, ok := c.(*stream.Conn); ok {
		select {
		case <-sc.Done():
		case <-time.After(5 * time.Minute):
			writeJSON(w, http.StatusGatewayTimeout, map[string]any{"error": "the peer did not acknowledge the end of the stream", "bytes": n})
			return
		}
		st := sc.Stats()
		writeJSON(w, http.StatusOK, map[string]any{
			"bytes": n, "seconds": time.Since(start).Seconds(), "sha256": hex.EncodeToString(h.Sum(nil)),
			"retransmitted_bytes": st.BytesRetransmitted, "segments_lost": st.SegmentsLost,
			"paths": len(st.Paths),
		})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"bytes": n, "seconds": time.Since(start).Seconds(), "sha256": hex.EncodeToString(h.Sum(nil)),
	})
}

func (r *Router) serveRecv(w http.ResponseWriter, req *http.Request) {
	port, err := strconv.ParseUint(req.URL.Query().Get("port"), 10, 16)
	if err != nil || port == 0 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "port must be 1-65535"})
		return
	}
	timeout := 60 * time.Second
	if q := req.URL.Query().Get("timeout"); q != "" {
		t, err := time.ParseDuration(q)
		if err != nil || t <= 0 || t > MaxRecvWait {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("timeout must be a duration from 1ns to %v", MaxRecvWait)})
			return
		}
		timeout = t
	}
	ExtendDeadlines(w, timeout+MaxTransfer)
	l, err := r.Listen(uint16(port))
	if err != nil {
		writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
		return
	}
	type accepted struct {
		c   net.Conn
		err error
	}
	ch := make(chan accepted, 1)
	go func() { c, err := l.Accept(); ch <- accepted{c, err} }()
	var a accepted
	select {
	case a = <-ch:
	case <-time.After(timeout):
		a.err = errors.New("no stream arrived before the timeout")
	case <-req.Context().Done():
		a.err = req.Context().Err()
	}
	l.Close()
	if a.err != nil {
		writeJSON(w, http.StatusGatewayTimeout, map[string]string{"error": a.err.Error()})
		return
	}
	defer a.c.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("X-Skyfleet-From", a.c.RemoteAddr().String())
	w.WriteHeader(http.StatusOK)
	io.Copy(w, a.c)
}
