package main

import (
	"bytes"
	"context"
	"errors"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

// The status proxy answers 502 naming the service when the service behind it
// fails, and stays quiet when the client is the one that left.
func TestProxyError(t *testing.T) {
	var logged bytes.Buffer
	log.SetOutput(&logged)
	defer log.SetOutput(os.Stderr)
	h := proxyError("the mesh service")

	w := httptest.NewRecorder()
	h(w, httptest.NewRequest("GET", "/mesh/status", nil), errors.New("dial unix /run/mesh.sock: connect: no such file"))
	if w.Code != http.StatusBadGateway || !strings.Contains(w.Body.String(), "the mesh service did not answer: dial unix") {
		t.Errorf("service down: %d %q", w.Code, w.Body)
	}
	if !strings.Contains(logged.String(), "GET /mesh/status: the mesh service did not answer") {
		t.Errorf("service down not logged: %q", logged.String())
	}

	logged.Reset()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w = httptest.NewRecorder()
	h(w, httptest.NewRequest("GET", "/status", nil).WithContext(ctx), context.Canceled)
	if logged.Len() != 0 || w.Body.Len() != 0 {
		t.Errorf("client gone: logged %q, answered %q", logged.String(), w.Body)
	}
}
