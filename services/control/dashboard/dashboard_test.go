package dashboard

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, path string, header ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func TestHandlerServesAssets(t *testing.T) {
	h := Handler()
	for _, tc := range []struct{ path, contentType, contains string }{
		{"/", "text/html; charset=utf-8", "<!doctype html>"},
		{"/index.html", "text/html; charset=utf-8", "<!doctype html>"},
		{"/app.js", "text/javascript; charset=utf-8", "api/status"},
		{"/style.css", "text/css; charset=utf-8", "#topology"},
	} {
		res := get(t, h, tc.path)
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET %s: status %d", tc.path, res.StatusCode)
			continue
		}
		if ct := res.Header.Get("Content-Type"); ct != tc.contentType {
			t.Errorf("GET %s: Content-Type %q, want %q", tc.path, ct, tc.contentType)
		}
		if cc := res.Header.Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q, want no-cache", tc.path, cc)
		}
		if !strings.Contains(string(body), tc.contains) {
			t.Errorf("GET %s: body lacks %q", tc.path, tc.contains)
		}
		// Revalidation with the ETag costs a 304, not the file.
		etag := res.Header.Get("ETag")
		if etag == "" {
			t.Errorf("GET %s: no ETag", tc.path)
		} else if res := get(t, h, tc.path, "If-None-Match", etag); res.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with its ETag: status %d, want 304", tc.path, res.StatusCode)
		}
	}
}

func TestHandlerRefuses(t *testing.T) {
	h := Handler()
	if res := get(t, h, "/nope.js"); res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nope.js: status %d, want 404", res.StatusCode)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /: status %d, want 405", rec.Code)
	}
}

// TestPageContract checks the hooks the e2e tests and the API rely on are in place.
func TestPageContract(t *testing.T) {
	html := string(mustRead(t, "index.html"))
	for _, want := range []string{
		`id="nodes"`, `<tbody>`, `id="node-count"`, `id="online-count"`, `id="topology"`,
		`id="detail"`, `id="banner"`, `id="log"`, `id="updated"`, `id="filter-text"`,
		`id="filter-state"`, `id="filter-version"`, `src="app.js"`, `href="style.css"`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("index.html lacks %s", want)
		}
	}
	js := string(mustRead(t, "app.js"))
	for _, want := range []string{
		`"api/status"`, `"api/nodes"`, `"api/graph"`, `"api/log"`, `"api/nodes/" + encodeURIComponent`,
		`credentials: "same-origin"`, `dataset.loaded = "1"`, `dataset.graph =`, `"metrics-chart"`,
		`"node-row`, `"data-address"`, `#node=`,
	} {
		if !strings.Contains(js, want) {
			t.Errorf("app.js lacks %s", want)
		}
	}
	// Absolute URLs would break a dashboard mounted anywhere but the root.
	if strings.Contains(js, `"/api/`) || strings.Contains(html, `"/app.js"`) {
		t.Error("the app must use relative URLs")
	}
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := static.ReadFile("static/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
